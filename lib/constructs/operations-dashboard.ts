import { Duration, Stack, Token } from 'aws-cdk-lib';
import type { IHttpStage, IWebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  type IAlarm,
  type IMetric,
  type IWidget,
  MathExpression,
  Metric,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Function as LambdaFunction, type IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { AlarmedDeadLetterQueue } from './dead-letter-queue';
import { COUNT_STATISTIC, oldestMessageAge, TABLE_INDEX_NAMES, tableAndIndexMetrics } from './operational-alarms';

/** Write units a second one partition key takes (DynamoDB's per-partition limit): the inbox index's ceiling. */
const PARTITION_WRITE_UNITS = 1_000;
const ONE_MINUTE = Duration.minutes(1);
const FULL = 24;

/** Properties of {@link OperationsDashboard}. */
export interface OperationsDashboardProps {
  /**
   * Name of the dashboard. Dashboards are global to the account (their ARN names no region), so
   * the default names the region as well as the stack: two deployments never collide.
   * @default `<stack name>-Operations-<region>`
   */
  readonly dashboardName?: string;
  /** Every function, by name: invocations, errors, throttles, duration p50/p99, concurrency. */
  readonly functions: Readonly<Record<string, IFunction>>;
  /** The work queues, by name: messages visible and in flight, age of the oldest. */
  readonly queues: Readonly<Record<string, IQueue>>;
  /** The dead-letter queues, by name: their depth, as their alarms read it. */
  readonly deadLetterQueues: Readonly<Record<string, AlarmedDeadLetterQueue>>;
  /** The HTTP API's stage: requests, 4xx, 5xx, latency p50/p99. */
  readonly httpStage: IHttpStage;
  /** The WebSocket API's stage: connections, messages, client, integration and execution errors. */
  readonly webSocketStage: IWebSocketStage;
  /** The table: consumed read and write capacity, read and write throttle events, table and indexes. */
  readonly table: ITable;
  /**
   * Names of the table's global secondary indexes, each graphed beside the table.
   * @default TABLE_INDEX_NAMES, every index of src/store/table.ts
   */
  readonly tableIndexNames?: readonly string[];
  /**
   * Alarms whose state the dashboard shows first, in one alarm status widget.
   * @default - no alarm status widget
   */
  readonly alarms?: readonly IAlarm[];
}

/**
 * One CloudWatch dashboard with what whoever is on call looks at first: alarm states, the queues
 * and their dead-letter queues, the functions, both APIs and the table. Count metrics are summed
 * as the alarms sum them and the queue ages and table throttles come from the alarms' own
 * helpers, so a graph and the alarm on it show the same numbers.
 */
export class OperationsDashboard extends Construct {
  public readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const dashboardName = props.dashboardName ?? (Token.isUnresolved(stack.stackName) ? undefined : `${stack.stackName}-Operations-${stack.region}`);
    this.dashboard = new Dashboard(this, 'Dashboard', { ...(dashboardName ? { dashboardName } : {}) });

    if (props.alarms?.length) {
      this.dashboard.addWidgets(
        new AlarmStatusWidget({ title: 'Alarms', alarms: [...props.alarms], width: FULL, height: Math.min(2 + Math.ceil(props.alarms.length / 4), 8) }),
      );
    }
    this.dashboard.addWidgets(...this.queueWidgets(props));
    this.dashboard.addWidgets(...this.httpWidgets(props.httpStage));
    this.dashboard.addWidgets(...this.webSocketWidgets(props.webSocketStage));
    this.dashboard.addWidgets(...this.functionWidgets(props.functions));
    this.dashboard.addWidgets(...this.tableWidgets(props.table, props.tableIndexNames ?? TABLE_INDEX_NAMES));
  }

  /** The dashboard's name (a token when CloudFormation names it). */
  public get dashboardName(): string {
    return this.dashboard.dashboardName;
  }

  private queueWidgets(props: OperationsDashboardProps): IWidget[] {
    const queues = Object.entries(props.queues);
    const width = Math.floor(FULL / (queues.length + 1));
    const max = { period: ONE_MINUTE, statistic: 'Maximum' };
    return [
      heading('Queues'),
      ...queues.map(
        ([name, queue]) =>
          new GraphWidget({
            title: `${name} queue: messages (left), age of oldest in s (right)`,
            width,
            left: [
              queue.metricApproximateNumberOfMessagesVisible({ ...max, label: 'visible' }),
              queue.metricApproximateNumberOfMessagesNotVisible({ ...max, label: 'in flight' }),
            ],
            right: [labelled(oldestMessageAge(queue), 'age of oldest (s)')],
          }),
      ),
      new GraphWidget({
        title: 'Dead-letter queues: messages waiting',
        width,
        left: Object.entries(props.deadLetterQueues).map(([name, dlq]) => labelled(dlq.alarm.metric, name)),
      }),
    ];
  }

  private httpWidgets(stage: IHttpStage): IWidget[] {
    return [
      heading('HTTP API'),
      new GraphWidget({
        title: `HTTP API: requests, 4xx, 5xx (sum per ${COUNT_STATISTIC.period.toMinutes()} min)`,
        width: FULL / 2,
        left: [
          stage.metricCount({ ...COUNT_STATISTIC, label: 'requests' }),
          stage.metricClientError({ ...COUNT_STATISTIC, label: '4xx' }),
          stage.metricServerError({ ...COUNT_STATISTIC, label: '5xx' }),
        ],
      }),
      new GraphWidget({
        title: 'HTTP API: latency (ms)',
        width: FULL / 2,
        left: ['p50', 'p99'].map((statistic) => stage.metricLatency({ statistic, label: statistic })),
      }),
    ];
  }

  private webSocketWidgets(stage: IWebSocketStage): IWidget[] {
    return [
      heading('WebSocket API'),
      new GraphWidget({
        title: `WebSocket API: connections and messages (sum per ${COUNT_STATISTIC.period.toMinutes()} min)`,
        width: FULL / 2,
        left: [stage.metric('ConnectCount', { ...COUNT_STATISTIC, label: 'connects' }), stage.metric('MessageCount', { ...COUNT_STATISTIC, label: 'messages' })],
      }),
      new GraphWidget({
        title: 'WebSocket API: errors',
        width: FULL / 2,
        left: ['IntegrationError', 'ExecutionError', 'ClientError'].map((name) => stage.metric(name, { ...COUNT_STATISTIC, label: name })),
      }),
    ];
  }

  private functionWidgets(functions: Readonly<Record<string, IFunction>>): IWidget[] {
    const each = (title: string, metric: (fn: IFunction, name: string) => IMetric, extra: Partial<{ right: IMetric[] }> = {}): GraphWidget =>
      new GraphWidget({ title, width: FULL / 3, left: Object.entries(functions).map(([name, fn]) => metric(fn, name)), ...extra });
    return [
      heading('Functions'),
      each('Invocations', (fn, label) => fn.metricInvocations({ ...COUNT_STATISTIC, label })),
      each('Errors', (fn, label) => fn.metricErrors({ ...COUNT_STATISTIC, label })),
      each('Throttles', (fn, label) => fn.metricThrottles({ ...COUNT_STATISTIC, label })),
      each('Duration p50 (ms)', (fn, label) => fn.metricDuration({ statistic: 'p50', label })),
      each('Duration p99 (ms)', (fn, label) => fn.metricDuration({ statistic: 'p99', label })),
      // The account's total beside them: throttles come from the account's quota as well.
      each('Concurrent executions (max)', (fn, label) => fn.metric('ConcurrentExecutions', { period: ONE_MINUTE, statistic: 'Maximum', label }), {
        right: [LambdaFunction.metricAllConcurrentExecutions({ period: ONE_MINUTE, statistic: 'Maximum', label: 'whole account (right)' })],
      }),
    ];
  }

  private tableWidgets(table: ITable, indexNames: readonly string[]): IWidget[] {
    /** Consumed units a second, table and each index (a minute's sum over its seconds). */
    const perSecond = (metricName: string): IMetric[] =>
      Object.entries(tableAndIndexMetrics(table, indexNames, metricName, { period: ONE_MINUTE, statistic: 'Sum' })).map(
        ([id, metric]) => new MathExpression({ expression: `${id} / PERIOD(${id})`, usingMetrics: { [id]: metric }, label: metric.label ?? id, period: ONE_MINUTE }),
      );
    const throttles = (kind: 'Read' | 'Write'): GraphWidget =>
      new GraphWidget({
        title: `${kind} throttle events (sum per ${COUNT_STATISTIC.period.toMinutes()} min, stacked: the top is what the alarm sums)`,
        width: FULL / 4,
        stacked: true,
        left: Object.values(tableAndIndexMetrics(table, indexNames, `${kind}ThrottleEvents`, COUNT_STATISTIC)),
      });
    return [
      heading('DynamoDB table'),
      new GraphWidget({ title: 'Consumed read units per second', width: FULL / 4, left: perSecond('ConsumedReadCapacityUnits') }),
      new GraphWidget({
        title: 'Consumed write units per second',
        width: FULL / 4,
        left: perSecond('ConsumedWriteCapacityUnits'),
        // The inbox index puts every message on one partition key (README, Single-table design).
        leftAnnotations: [{ value: PARTITION_WRITE_UNITS, label: 'one partition key\'s limit' }],
      }),
      throttles('Read'),
      throttles('Write'),
    ];
  }
}

/** A full-width section title. */
function heading(title: string): TextWidget {
  return new TextWidget({ markdown: `## ${title}`, width: FULL, height: 1 });
}

/** `metric` under `label` when it can carry one (an alarm's metric is typed as any metric). */
function labelled(metric: IMetric, label: string): IMetric {
  return metric instanceof Metric || metric instanceof MathExpression ? metric.with({ label }) : metric;
}
