/** The guards in Conversa's reusable constructs, each in a bare stack. */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { BufferedQueue } from '../../lib/constructs/buffered-queue';
import { ConversaHttpApi } from '../../lib/constructs/http-api';
import { ConversaTable } from '../../lib/constructs/conversa-table';
import { ConversaFunction } from '../../lib/constructs/conversa-function';
import { FUNCTIONS } from '../../src/manifest';
import { HttpApi, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { AlarmedDeadLetterQueue } from '../../lib/constructs/dead-letter-queue';
import { OperationalAlarms, type OperationalAlarmsProps } from '../../lib/constructs/operational-alarms';
import { OperationsDashboard, type OperationsDashboardProps } from '../../lib/constructs/operations-dashboard';
import { testOutdir } from '../support/cdk-outdir';

const newStack = (): Stack => new Stack(new App({ builtinCloudFormationValidation: false, outdir: testOutdir }), 'Test');
const fn = (stack: Stack, timeoutSeconds: number): LambdaFunction =>
  new LambdaFunction(stack, `Fn${timeoutSeconds}`, {
    runtime: Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: Code.fromInline('export const handler = async () => {};'),
    timeout: Duration.seconds(timeoutSeconds),
  });

describe('BufferedQueue', () => {
  it('refuses fewer than 5 receives before dead-lettering', () => {
    const stack = newStack();
    expect(() => new BufferedQueue(stack, 'Q', { visibilityTimeout: Duration.seconds(60), maxReceiveCount: 4 })).toThrow(/at least 5/);
  });

  it('refuses a consumer whose timeout × 6 exceeds the visibility timeout', () => {
    const stack = newStack();
    const queue = new BufferedQueue(stack, 'Q', { visibilityTimeout: Duration.seconds(60) });
    expect(() => queue.addConsumer(fn(stack, 11))).toThrow(/under 6 × the consumer's 11s timeout/);
  });

  it('accepts a consumer at exactly 6 × and reports partial batch failures', () => {
    const stack = newStack();
    const queue = new BufferedQueue(stack, 'Q', { visibilityTimeout: Duration.seconds(60) });
    queue.addConsumer(fn(stack, 10), { batchSize: 7 });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 7,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('bounds the consumer\'s concurrency: 50 by default, maxConcurrency when given', () => {
    const stack = newStack();
    new BufferedQueue(stack, 'A', { visibilityTimeout: Duration.seconds(60) }).addConsumer(fn(stack, 10));
    new BufferedQueue(stack, 'B', { visibilityTimeout: Duration.seconds(60) }).addConsumer(fn(stack, 5), { maxConcurrency: 7 });
    const concurrency = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::EventSourceMapping')).map(
      (m) => (m.Properties as { ScalingConfig: { MaximumConcurrency: number } }).ScalingConfig.MaximumConcurrency,
    );
    expect(concurrency.sort((a, b) => a - b)).toEqual([7, 50]);
  });
});

describe('ConversaHttpApi', () => {
  it('refuses a route whose function was not given', () => {
    const stack = newStack();
    expect(
      () =>
        new ConversaHttpApi(stack, 'Api', {
          routes: [{ method: 'GET', path: '/x', fn: 'api', auth: 'agent' }],
          handlers: {},
          jwtIssuer: 'https://issuer.example',
          jwtAudience: ['client'],
        }),
    ).toThrow(/no handler for function 'api'/);
  });
});

describe('ConversaFunction', () => {
  // Bundling skipped: only the function's configuration is under test.
  const stackWithout = () => new Stack(new App({ builtinCloudFormationValidation: false, outdir: testOutdir, context: { 'aws:cdk:bundling-stacks': [] } }), 'Test');
  const nodeOptions = (sourceMaps?: boolean) => {
    const stack = stackWithout();
    new ConversaFunction(stack, 'Fn', { spec: FUNCTIONS.webhook, projectRoot: process.cwd(), ...(sourceMaps === undefined ? {} : { sourceMaps }) });
    const [fn] = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'));
    return (fn?.Properties.Environment.Variables as Record<string, string>).NODE_OPTIONS;
  };

  it('maps stack traces to the sources unless sourceMaps is false (shorter cold starts)', () => {
    expect(nodeOptions()).toBe('--enable-source-maps');
    expect(nodeOptions(true)).toBe('--enable-source-maps');
    expect(nodeOptions(false)).toBeUndefined();
  });
});

describe('ConversaTable', () => {
  it('pins its logical id wherever it sits in the tree', () => {
    const stack = newStack();
    new ConversaTable(stack, 'SomewhereElse');
    expect(Object.keys(Template.fromStack(stack).toJSON().Resources as object)).toEqual([ConversaTable.DEFAULT_LOGICAL_ID]);
  });
});

/** OperationalAlarms in a bare stack, with one of each thing it watches. */
const operational = (options: Partial<OperationalAlarmsProps>): Stack => {
  const stack = newStack();
  const lambda = fn(stack, 10);
  const webSocketApi = new WebSocketApi(stack, 'Ws');
  new OperationalAlarms(stack, 'Alarms', {
    alarmTopic: new Topic(stack, 'Topic'),
    httpStage: new HttpApi(stack, 'Http').defaultStage!,
    webSocketStage: new WebSocketStage(stack, 'Live', { webSocketApi, stageName: 'live' }),
    webSocketAuthorizer: lambda,
    functions: { one: lambda },
    consumers: { one: lambda },
    queues: { one: new Queue(stack, 'Q') },
    table: new ConversaTable(stack, 'Data').table,
    ...options,
  });
  return stack;
};

describe('alarm notifications when an alarm clears', () => {
  /** Each alarm of `stack` as [has alarm actions, has OK actions]. */
  const actions = (stack: Stack): [boolean, boolean][] =>
    Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm')).map((a) => [a.Properties.AlarmActions !== undefined, a.Properties.OKActions !== undefined]);

  it('leaves the operational alarms without OK actions by default, and adds them with notifyOnOk', () => {
    const quiet = actions(operational({}));
    expect(quiet.length).toBeGreaterThan(0);
    expect(quiet.every(([alarm, ok]) => alarm && !ok)).toBe(true);
    expect(actions(operational({ notifyOnOk: true })).every(([alarm, ok]) => alarm && ok)).toBe(true);
  });

  it('tells when a dead-letter queue is empty again, unless notifyOnOk is false', () => {
    const queue = (notifyOnOk?: boolean): Stack => {
      const stack = newStack();
      new AlarmedDeadLetterQueue(stack, 'Dlq', { alarmTopic: new Topic(stack, 'Topic'), ...(notifyOnOk === undefined ? {} : { notifyOnOk }) });
      return stack;
    };
    expect(actions(queue())).toEqual([[true, true]]);
    expect(actions(queue(false))).toEqual([[true, false]]);
  });
});

describe('OperationalAlarms: table throttling', () => {
  it('alarms on the throttling of the table and of the indexes named, at tableThrottleThreshold, and refuses more indexes than one alarm can read', () => {
    const stack = operational({ tableIndexNames: ['byStatus', 'by-day'], tableThrottleThreshold: 3 });
    const throttles = Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm'))
      .map((a) => a.Properties as { Threshold: number; Metrics?: { MetricStat?: { Metric: { MetricName: string; Dimensions: { Name: string; Value: unknown }[] } } }[] })
      .filter((a) => JSON.stringify(a.Metrics ?? []).includes('ThrottleEvents'));
    expect(throttles.map((a) => a.Threshold)).toEqual([3, 3]);
    for (const alarm of throttles) {
      const indexes = (alarm.Metrics ?? []).flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.Dimensions.find((d) => d.Name === 'GlobalSecondaryIndexName')?.Value ?? 'table'] : []));
      expect(indexes).toEqual(['table', 'byStatus', 'by-day']);
    }
    const ten = Array.from({ length: 10 }, (_, i) => `gsi${i}`);
    expect(() => operational({ tableIndexNames: ten })).toThrow('a metric math alarm reads at most 10 metrics: the table and 9 indexes, got 10 indexes');
    expect(() => operational({ tableIndexNames: ten.slice(1) })).not.toThrow();
  });
});

describe('OperationsDashboard', () => {
  /** The dashboard's properties in a bare stack (in `region`), showing its dead-letter queue's alarm with `alarmed`. */
  const dashboard = (options: Partial<OperationsDashboardProps>, { region, alarmed = false }: { region?: string; alarmed?: boolean } = {}): Record<string, unknown> => {
    const stack = new Stack(new App({ builtinCloudFormationValidation: false, outdir: testOutdir }), 'Ops', region ? { env: { account: '111111111111', region } } : {});
    const lambda = fn(stack, 10);
    const dlq = new AlarmedDeadLetterQueue(stack, 'Dlq');
    new OperationsDashboard(stack, 'Dashboard', {
      functions: { one: lambda },
      queues: { one: new Queue(stack, 'Q') },
      deadLetterQueues: { one: dlq },
      ...(alarmed ? { alarms: [dlq.alarm] } : {}),
      httpStage: new HttpApi(stack, 'Http').defaultStage!,
      webSocketStage: new WebSocketStage(stack, 'Live', { webSocketApi: new WebSocketApi(stack, 'Ws'), stageName: 'live' }),
      table: new ConversaTable(stack, 'Data').table,
      ...options,
    });
    const [resource] = Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Dashboard'));
    return resource!.Properties as Record<string, unknown>;
  };

  // Dashboards are global to the account: the same stack deployed in two regions needs two names.
  it('names itself after its stack and region unless given a name', () => {
    expect(dashboard({}, { region: 'eu-west-1' }).DashboardName).toBe('Ops-Operations-eu-west-1');
    expect(dashboard({}).DashboardName).toEqual({ 'Fn::Join': ['', ['Ops-Operations-', { Ref: 'AWS::Region' }]] });
    expect(dashboard({ dashboardName: 'oncall' }, { region: 'eu-west-1' }).DashboardName).toBe('oncall');
  });

  it('shows an alarm status widget only when given alarms', () => {
    const hasAlarmWidget = (properties: Record<string, unknown>): boolean => JSON.stringify(properties.DashboardBody).includes('\\"type\\":\\"alarm\\"');
    expect(hasAlarmWidget(dashboard({}))).toBe(false);
    expect(hasAlarmWidget(dashboard({}, { alarmed: true }))).toBe(true);
  });
});
