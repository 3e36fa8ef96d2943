/**
 * The synthesized Conversa stacks, with asset bundling skipped so the file runs in seconds.
 * Expectations come from the declarations the app is built from (src/manifest.ts,
 * src/store/table.ts, src/config.ts), so a route, queue or index added there is checked too.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { App, type Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildConversa, type ConversaAppConfig, type ConversaStacks } from '../../lib/app';
import { adapters } from '../../src/channels/registry';
import { ENV, TIMER_MAX_SECONDS } from '../../src/config';
import { PROVIDER_CHANNELS } from '../../src/domain/types';
import { FUNCTIONS, type FunctionName, HTTP_FALLBACK_FN, HTTP_ROUTES, PROVIDER_UNAVAILABLE, QUEUES, RECURRING, WS_ROUTE_THROTTLES, WS_TOKEN_QUERY_PARAM } from '../../src/manifest';
import { TABLE } from '../../src/store/table';
import { PLACEHOLDER_WARNINGS } from '../../lib/placeholder-warnings';
import { QUEUE_MAX_CONCURRENCY } from '../../lib/stateless-stack';
import { ConversaTable } from '../../lib/constructs/conversa-table';
import { testOutdir } from '../support/cdk-outdir';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const cdkJsonContext = (JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> }).context;

type Json = Record<string, any>;  
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

function build(config: Partial<ConversaAppConfig> = {}): { app: App; stacks: ConversaStacks } {
  const app = new App({
    context: { ...cdkJsonContext, 'aws:cdk:bundling-stacks': [] },
    // CDK's built-in CloudFormation schema check costs half a minute per process; `npm run synth` runs it.
    builtinCloudFormationValidation: false,
    outdir: testOutdir,
  });
  return { app, stacks: buildConversa(app, { projectRoot, ...config }) };
}

const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
const actionsOf = (statement: Statement): string[] => asArray(statement.Action);
/** An ARN of the template as one string, each `Ref` as `<name>`. */
const flatArn = (value: unknown): string => {
  if (typeof value === 'string') return value;
  const node = value as Json;
  if (node.Ref) return `<${node.Ref}>`;
  if (node['Fn::Join']) return (node['Fn::Join'][1] as unknown[]).map(flatArn).join(node['Fn::Join'][0]);
  throw new Error(`not an ARN: ${JSON.stringify(value)}`);
};

/** Helpers over one synthesized template. */
class Inspect {
  readonly json: Json;
  constructor(readonly template: Template) {
    this.json = template.toJSON();
  }

  resources(type: string): [string, Json][] {
    return Object.entries(this.json.Resources as Json).filter(([, r]) => r.Type === type);
  }

  functionId(name: FunctionName): string {
    const matches = this.resources('AWS::Lambda::Function').filter(([, r]) => r.Properties.Description === FUNCTIONS[name].description);
    expect(matches, `function ${name}`).toHaveLength(1);
    return matches[0]![0];
  }

  fn(name: FunctionName): Json {
    return this.json.Resources[this.functionId(name)];
  }

  roleIdOf(name: FunctionName): string {
    return this.fn(name).Properties.Role['Fn::GetAtt'][0];
  }

  statementsOfRole(roleId: string): Statement[] {
    const role = this.json.Resources[roleId];
    const inline = ((role.Properties.Policies ?? []) as Json[]).flatMap((p) => p.PolicyDocument.Statement);
    const attached = this.resources('AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties.Roles as Json[]).some((r) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
    return [...inline, ...attached];
  }

  statementsOf(name: FunctionName): Statement[] {
    return this.statementsOfRole(this.roleIdOf(name));
  }

  actionsOf(name: FunctionName): string[] {
    return this.statementsOf(name).flatMap(actionsOf);
  }
}

/** Every unsuppressed AwsSolutions finding in `stack`, as `severity rule path`. */
function nagFindings(stack: Stack): string[] {
  const report = new AwsSolutionsChecks().validateScope(stack);
  return report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.severity} ${v.ruleName} ${r.constructPath ?? ''}`));
}

/** The acknowledgeable warnings of `stack`, as `id path`. */
function warningsOf(stack: Stack): string[] {
  return Annotations.fromStack(stack)
    .findWarning('*', Match.anyValue())
    .map((m) => `${/\[ack: ([^\]]+)\]$/.exec(String(m.entry.data))?.[1] ?? String(m.entry.data)} ${m.id}`)
    .sort();
}

/** Names a cycle among resources (Ref, GetAtt, DependsOn), or returns undefined. */
function findCycle(json: Json): string[] | undefined {
  const ids = new Set(Object.keys(json.Resources));
  const edges = new Map<string, Set<string>>();
  const collect = (node: unknown, into: Set<string>): void => {
    if (Array.isArray(node)) node.forEach((n) => collect(n, into));
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'Ref' && typeof value === 'string' && ids.has(value)) into.add(value);
        else if (key === 'Fn::GetAtt' && Array.isArray(value) && ids.has(value[0])) into.add(value[0]);
        else collect(value, into);
      }
    }
  };
  for (const [id, resource] of Object.entries(json.Resources as Json)) {
    const to = new Set<string>();
    collect(resource.Properties, to);
    for (const dep of asArray(resource.DependsOn ?? [])) to.add(dep);
    edges.set(id, to);
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'visiting');
    path.push(id);
    for (const next of edges.get(id) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of ids) {
    const cycle = visit(id);
    if (cycle) return cycle;
  }
  return undefined;
}

let stacks: ConversaStacks;
let stateful: Inspect;
let stateless: Inspect;

beforeAll(() => {
  ({ stacks } = build());
  stateful = new Inspect(Template.fromStack(stacks.stateful));
  stateless = new Inspect(Template.fromStack(stacks.stateless));
});

/** The stateful stack's resource behind an `Fn::ImportValue` of the stateless stack. */
function exportedRef(imported: Json): string {
  const name = imported['Fn::ImportValue'];
  const output = Object.values(stateful.json.Outputs as Record<string, Json>).find((o) => o.Export?.Name === name);
  return output?.Value?.Ref;
}

describe('stateful stack: what it keeps', () => {
  // A changed logical id (a construct moved or renamed in a refactor) makes CloudFormation create a
  // new, empty resource and orphan the retained one: the table, the files, the typed-in credentials
  // and the HMAC keys behind every reply-to address would all start over. These are literals on purpose.
  it('keeps the logical id of every retained resource', () => {
    const retained = Object.entries(stateful.json.Resources as Json).filter(([, r]) => r.DeletionPolicy === 'Retain').map(([id, r]) => `${id} ${r.Type}`);
    expect(retained.sort()).toEqual(
      [
        'AgentUserPool AWS::Cognito::UserPool',
        'ChannelSecretsinstagramB13D4AC7 AWS::SecretsManager::Secret',
        'ChannelSecretsmessenger8A3F87CD AWS::SecretsManager::Secret',
        'ChannelSecretssms87E83A0D AWS::SecretsManager::Secret',
        'ChannelSecretstelegram979D4F79 AWS::SecretsManager::Secret',
        'ChannelSecretswhatsapp63E19ED6 AWS::SecretsManager::Secret',
        'ConversaTable AWS::DynamoDB::Table',
        'MediaBucket4022EBBF AWS::S3::Bucket',
        'ReplyAddressKeyD63806F9 AWS::SecretsManager::Secret',
        'WidgetIdentityKey67ED8F3C AWS::SecretsManager::Secret',
      ].sort(),
    );
  });
});

describe('stateful stack: the table', () => {
  it('keeps the logical id ConversaTable, so a deploy never swaps in an empty table', () => {
    expect(stateful.json.Resources.ConversaTable?.Type).toBe('AWS::DynamoDB::Table');
    stateful.template.resourceCountIs('AWS::DynamoDB::Table', 1);
  });

  it('is retained on delete and on replacement', () => {
    expect(stateful.json.Resources.ConversaTable.DeletionPolicy).toBe('Retain');
    expect(stateful.json.Resources.ConversaTable.UpdateReplacePolicy).toBe('Retain');
  });

  it('is on-demand with point-in-time recovery, deletion protection and TTL', () => {
    stateful.template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
      KeySchema: [
        { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
      ],
    });
    expect(TABLE.ttlAttribute).toBe('expiresAt');
  });

  it('has exactly the GSIs of src/store/table.ts with their projections', () => {
    const gsis = stateful.json.Resources.ConversaTable.Properties.GlobalSecondaryIndexes as Json[];
    expect(gsis.map((g) => g.IndexName).sort()).toEqual(TABLE.indexes.map((i) => i.name).sort());
    for (const index of TABLE.indexes) {
      expect(gsis.find((g) => g.IndexName === index.name)).toEqual({
        IndexName: index.name,
        KeySchema: [
          { AttributeName: index.partitionKey, KeyType: 'HASH' },
          { AttributeName: index.sortKey, KeyType: 'RANGE' },
        ],
        Projection: {
          ProjectionType: index.projection,
          ...(index.projection === 'INCLUDE' ? { NonKeyAttributes: index.nonKeyAttributes } : {}),
        },
      });
    }
    // The projections are deliberate: the inbox and assignee indexes hold no more than their
    // lookups filter on, so a conversation item's size never multiplies their writes.
    expect(gsis.find((g) => g.IndexName === 'gsi1')?.Projection).toEqual({ ProjectionType: 'INCLUDE', NonKeyAttributes: ['id', 'channel', 'team', 'labels'] });
    expect(gsis.find((g) => g.IndexName === 'gsi2')?.Projection.ProjectionType).toBe('KEYS_ONLY');
  });

  it('keeps the inbox index projecting every attribute with inboxIndexAll, and the others as they are', () => {
    const gsis = (new Inspect(Template.fromStack(build({ inboxIndexAll: true }).stacks.stateful)).json.Resources.ConversaTable.Properties.GlobalSecondaryIndexes) as Json[];
    const slim = stateful.json.Resources.ConversaTable.Properties.GlobalSecondaryIndexes as Json[];
    expect(gsis.find((g) => g.IndexName === 'gsi1')?.Projection).toEqual({ ProjectionType: 'ALL' });
    expect(gsis.filter((g) => g.IndexName !== 'gsi1')).toEqual(slim.filter((g) => g.IndexName !== 'gsi1'));
  });
});

describe('stateful stack: agents', () => {
  it('keeps a retained user pool with a pinned logical id, MFA and no self sign-up', () => {
    const pool = stateful.json.Resources.AgentUserPool;
    expect(pool?.Type).toBe('AWS::Cognito::UserPool');
    expect(pool.DeletionPolicy).toBe('Retain');
    expect(pool.Properties).toMatchObject({ MfaConfiguration: 'ON', AdminCreateUserConfig: { AllowAdminCreateUserOnly: true } });
  });

  it('has the admin and agent groups', () => {
    const groups = stateful.resources('AWS::Cognito::UserPoolGroup').map(([, g]) => g.Properties.GroupName);
    expect(groups.sort()).toEqual(['admin', 'agent']);
  });

  const consoleClient = (inspect: Inspect): [string, Json] => {
    inspect.template.resourceCountIs('AWS::Cognito::UserPoolClient', 1);
    return inspect.resources('AWS::Cognito::UserPoolClient')[0]!;
  };

  it('has a console client with SRP auth only (the password never sent to Cognito) and no secret', () => {
    const [, client] = consoleClient(stateful);
    expect(client.Properties.GenerateSecret ?? false).toBe(false);
    expect([...client.Properties.ExplicitAuthFlows].sort()).toEqual(['ALLOW_REFRESH_TOKEN_AUTH', 'ALLOW_USER_SRP_AUTH']);
    expect(client.Properties.UserPoolId).toEqual({ Ref: 'AgentUserPool' });
  });

  it('lets the console client take USER_PASSWORD_AUTH too with consolePasswordAuth, as the same client', () => {
    const [id, client] = consoleClient(new Inspect(Template.fromStack(build({ consolePasswordAuth: true }).stacks.stateful)));
    expect([...client.Properties.ExplicitAuthFlows].sort()).toEqual(['ALLOW_REFRESH_TOKEN_AUTH', 'ALLOW_USER_PASSWORD_AUTH', 'ALLOW_USER_SRP_AUTH']);
    // The same logical id: its client id, the agents' JWT audience, stays as it was.
    expect(id).toBe(consoleClient(stateful)[0]);
  });
});

describe('stateless stack: functions', () => {
  const names = Object.keys(FUNCTIONS) as FunctionName[];

  it.each(names)('%s runs Node.js 22 on arm64 with X-Ray, the manifest size and a retained log group', (name) => {
    const fn = stateless.fn(name).Properties;
    expect(fn.Runtime).toBe('nodejs22.x');
    expect(fn.Architectures).toEqual(['arm64']);
    expect(fn.MemorySize).toBe(FUNCTIONS[name].memoryMb);
    expect(fn.Timeout).toBe(FUNCTIONS[name].timeoutSeconds);
    expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
    expect(fn.Handler).toBe('index.handler');
    const logGroupId = fn.LoggingConfig.LogGroup.Ref as string;
    expect(stateless.json.Resources[logGroupId].Properties.RetentionInDays).toBe(30);
    // No START/END/REPORT lines ingested per invocation (bench/cost.ts counts on it).
    expect(fn.LoggingConfig).toMatchObject({ LogFormat: 'JSON', SystemLogLevel: 'WARN', ApplicationLogLevel: 'INFO' });
    expect(fn.Environment.Variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: 'conversa',
      POWERTOOLS_METRICS_NAMESPACE: 'Conversa',
      LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
    });
  });

  it.each(names)('%s has its own role with no AWS managed policy', (name) => {
    const role = stateless.json.Resources[stateless.roleIdOf(name)];
    expect(role.Properties.ManagedPolicyArns ?? []).toEqual([]);
    const others = names.filter((n) => n !== name).map((n) => stateless.roleIdOf(n));
    expect(others).not.toContain(stateless.roleIdOf(name));
  });

  it.each(names)('%s gets the shared configuration from src/config.ts ENV', (name) => {
    const env = stateless.fn(name).Properties.Environment.Variables as Json;
    const expected = Object.entries(ENV)
      // The reply-address and widget identity keys are for one function each, deployed only as secret ARNs.
      .filter(([key]) => !['replySecret', 'replySecretArn', 'widgetIdentitySecret', 'widgetIdentitySecretArn'].includes(key))
      // Only the inbound consumer dead-letters records itself.
      .filter(([key]) => !(name !== 'inbound' && key === 'inboundDlqUrl'))
      // Optional, for the mail sender only (props reach the template, below).
      .filter(([key]) => key !== 'widgetUrl')
      .filter(([key]) => !(name === 'engagement' && key === 'engagementFunctionArn'))
      // Only the functions that touch files (checked below).
      .filter(([key]) => key !== 'mediaBucket')
      // Only on a table migrated from the old inbox index (test/infra/inbox-index.test.ts).
      .filter(([key]) => key !== 'inboxIndex')
      // Tuning with defaults (src/config.ts), set by hand only: local tests shorten them.
      .filter(([key]) => !['presenceGrace', 'retryBase', 'visitorUploadsPerHour', 'agentUploadsPerHour'].includes(key))
      .map(([, variable]) => variable);
    expect(Object.keys(env)).toEqual(expect.arrayContaining(expected));
    expect(env[ENV.emailFallbackDelay]).toBe('120');
    expect(env[ENV.reengageAfter]).toBe('86400');
    expect(env[ENV.autoResolveAfter]).toBe('172800');
    expect(JSON.stringify(env[ENV.wsCallbackUrl])).toMatch(/"https:\/\/".*execute-api.*\/live"/);
    expect(JSON.stringify(env[ENV.wsPublicUrl])).toMatch(/"wss:\/\/".*execute-api.*\/live"/);
    expect(JSON.stringify(env[ENV.jwtJwksUri])).toContain('/.well-known/jwks.json');
    expect(JSON.stringify(env[ENV.jwtIssuer])).toContain('https://cognito-idp.');
  });

  it('gives every function but the engagement one the engagement function ARN', () => {
    const engagementId = stateless.functionId('engagement');
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      const env = stateless.fn(name).Properties.Environment.Variables as Json;
      if (name === 'engagement') expect(env[ENV.engagementFunctionArn]).toBeUndefined();
      else expect(env[ENV.engagementFunctionArn]).toEqual({ 'Fn::GetAtt': [engagementId, 'Arn'] });
    }
  });

  it('has no dependency cycle (a function naming its own ARN would create one)', () => {
    expect(findCycle(stateless.json)).toBeUndefined();
  });
});

describe('stateless stack: queues', () => {
  for (const [queueName, spec] of Object.entries(QUEUES)) {
    describe(queueName, () => {
      const consumerTimeout = FUNCTIONS[spec.consumer].timeoutSeconds;
      const queue = (): [string, Json] => {
        const mapping = stateless
          .resources('AWS::Lambda::EventSourceMapping')
          .find(([, m]) => m.Properties.FunctionName.Ref === stateless.functionId(spec.consumer));
        expect(mapping, `event source of ${spec.consumer}`).toBeDefined();
        const id = mapping![1].Properties.EventSourceArn['Fn::GetAtt'][0] as string;
        return [id, stateless.json.Resources[id]];
      };

      it('is FIFO, deduplicates by sender ids, is encrypted and has a FIFO DLQ after ≥ 5 receives', () => {
        const [, q] = queue();
        expect(q.Properties).toMatchObject({ FifoQueue: true, ContentBasedDeduplication: false, SqsManagedSseEnabled: true });
        // High throughput: per-group limits, not the queue-wide ~300 calls/s.
        expect(q.Properties).toMatchObject({ DeduplicationScope: 'messageGroup', FifoThroughputLimit: 'perMessageGroupId' });
        expect(q.Properties.RedrivePolicy.maxReceiveCount).toBeGreaterThanOrEqual(5);
        expect(q.Properties.RedrivePolicy.maxReceiveCount).toBe(spec.maxReceiveCount);
        const dlq = stateless.json.Resources[q.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]];
        expect(dlq.Properties).toMatchObject({ FifoQueue: true, SqsManagedSseEnabled: true });
      });

      it('hides a message for at least 6 × the consumer timeout', () => {
        const [, q] = queue();
        expect(q.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * consumerTimeout);
      });

      it('refuses plain-HTTP requests', () => {
        const [id] = queue();
        stateless.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: id }],
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            ]),
          },
        });
      });

      it(`feeds ${spec.consumer} in batches of ${spec.batchSize} with partial batch failures, at bounded concurrency`, () => {
        const [id] = queue();
        stateless.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
          EventSourceArn: { 'Fn::GetAtt': [id, 'Arn'] },
          FunctionName: { Ref: stateless.functionId(spec.consumer) },
          BatchSize: spec.batchSize,
          FunctionResponseTypes: ['ReportBatchItemFailures'],
          ScalingConfig: { MaximumConcurrency: QUEUE_MAX_CONCURRENCY[queueName as keyof typeof QUEUES] },
        });
        expect(QUEUE_MAX_CONCURRENCY[queueName as keyof typeof QUEUES]).toBe(50);
      });
    });
  }

  it('has an alarm on every dead-letter queue at the first message', () => {
    const dlqIds = stateless
      .resources('AWS::SQS::Queue')
      .filter(([id]) => stateless.resources('AWS::SQS::Queue').some(([, q]) => q.Properties.RedrivePolicy?.deadLetterTargetArn['Fn::GetAtt'][0] === id))
      .map(([id]) => id);
    const schedulerDlq = stateless.fn('api').Properties.Environment.Variables[ENV.schedulerDlqArn]['Fn::GetAtt'][0] as string;
    dlqIds.push(schedulerDlq);
    expect(dlqIds).toHaveLength(Object.keys(QUEUES).length + 1);
    for (const id of dlqIds) {
      stateless.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id, 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
  });

  it('lets only the intended producers send', () => {
    const senders = (urlVariable: string): FunctionName[] => {
      const queueRef = stateless.fn('api').Properties.Environment.Variables[urlVariable].Ref as string;
      return (Object.keys(FUNCTIONS) as FunctionName[]).filter((name) =>
        stateless.statementsOf(name).some((s) => actionsOf(s).includes('sqs:SendMessage') && JSON.stringify(s.Resource).includes(`"${queueRef}"`)),
      );
    };
    expect(senders(ENV.inboundQueueUrl).sort()).toEqual(['engagement', 'realtime', 'webhook']);
    expect(senders(ENV.outboundQueueUrl).sort()).toEqual(['api', 'engagement', 'inbound', 'outbound', 'realtime']);
  });

  it('points the inbound consumer at its own queue\'s DLQ, which only it may send to', () => {
    const dlqRef = stateless.fn('inbound').Properties.Environment.Variables[ENV.inboundDlqUrl].Ref as string;
    const inboundRef = stateless.fn('api').Properties.Environment.Variables[ENV.inboundQueueUrl].Ref as string;
    expect(stateless.json.Resources[inboundRef].Properties.RedrivePolicy.deadLetterTargetArn).toEqual({ 'Fn::GetAtt': [dlqRef, 'Arn'] });
    const senders = (Object.keys(FUNCTIONS) as FunctionName[]).filter((name) =>
      stateless.statementsOf(name).some((s) => actionsOf(s).includes('sqs:SendMessage') && JSON.stringify(s.Resource).includes(`"${dlqRef}"`)),
    );
    expect(senders).toEqual(['inbound']);
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      if (name !== 'inbound') expect(stateless.fn(name).Properties.Environment.Variables[ENV.inboundDlqUrl]).toBeUndefined();
    }
  });
});

describe('stateless stack: HTTP API', () => {
  const httpApiId = (): string => stateless.resources('AWS::ApiGatewayV2::Api').find(([, a]) => a.Properties.ProtocolType === 'HTTP')![0];
  const httpRoutes = (): Json[] =>
    stateless.resources('AWS::ApiGatewayV2::Route').filter(([, r]) => r.Properties.ApiId.Ref === httpApiId()).map(([, r]) => r);

  it('has exactly one route per manifest entry, and the $default route', () => {
    expect(httpRoutes().map((r) => r.Properties.RouteKey).sort()).toEqual(['$default', ...HTTP_ROUTES.map((r) => `${r.method} ${r.path}`)].sort());
  });

  it("sends what no route matches to the fallback function, unauthorized, for the contract's 404 body", () => {
    const route = httpRoutes().find((r) => r.Properties.RouteKey === '$default')!;
    expect(route.Properties.AuthorizationType ?? 'NONE').toBe('NONE');
    const integrationId = (route.Properties.Target['Fn::Join'][1] as unknown[]).map((p) => (p as Json).Ref).find(Boolean) as string;
    expect(stateless.json.Resources[integrationId].Properties.IntegrationUri).toEqual({ 'Fn::GetAtt': [stateless.functionId(HTTP_FALLBACK_FN), 'Arn'] });
  });

  it.each(HTTP_ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))('%s has the right authorization and function', (routeKey, spec) => {
    const route = httpRoutes().find((r) => r.Properties.RouteKey === routeKey)!;
    expect(route.Properties.AuthorizationType).toBe(spec.auth === 'agent' ? 'JWT' : 'NONE');
    if (spec.auth === 'agent') {
      const authorizer = stateless.json.Resources[route.Properties.AuthorizerId.Ref];
      expect(authorizer.Properties.AuthorizerType).toBe('JWT');
    }
    const integrationId = (route.Properties.Target['Fn::Join'][1] as unknown[]).map((p) => (p as Json).Ref).find(Boolean) as string;
    const integration = stateless.json.Resources[integrationId].Properties;
    expect(integration.PayloadFormatVersion).toBe('2.0');
    expect(integration.IntegrationUri).toEqual({ 'Fn::GetAtt': [stateless.functionId(spec.fn), 'Arn'] });
  });

  it('checks agent JWTs against the Cognito user pool and the console client', () => {
    const [[, authorizer]] = stateless.resources('AWS::ApiGatewayV2::Authorizer').filter(([, a]) => a.Properties.AuthorizerType === 'JWT') as [[string, Json]];
    const { Issuer, Audience } = authorizer.Properties.JwtConfiguration;
    const issuer = JSON.stringify(Issuer);
    expect(issuer).toContain('"https://cognito-idp."');
    expect(issuer).toContain('{"Ref":"AWS::Region"}');
    expect(issuer).toContain('ConversaStateful:ExportsOutputRefAgentUserPool');
    expect(JSON.stringify(Audience)).toContain('ConversaStateful:ExportsOutputRefAgentsUserPoolConsoleClient');
  });

  it('has a throttled, access-logged default stage and CORS', () => {
    stateless.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: httpApiId() },
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: Match.anyValue(), ThrottlingBurstLimit: Match.anyValue() },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('\\$context.requestId') },
    });
    expect(stateless.json.Resources[httpApiId()].Properties.CorsConfiguration.AllowHeaders).toEqual(expect.arrayContaining(['authorization']));
    // Browsers hide response headers from scripts unless exposed: the widget and console read Retry-After on 503s.
    expect(stateless.json.Resources[httpApiId()].Properties.CorsConfiguration.ExposeHeaders).toEqual(expect.arrayContaining(['retry-after']));
    // A console on another origin calls every method a route has (a missing one fails its preflight).
    expect(stateless.json.Resources[httpApiId()].Properties.CorsConfiguration.AllowMethods).toEqual(expect.arrayContaining([...new Set(HTTP_ROUTES.map((r) => r.method))]));
  });

  it('limits the anonymous widget routes below the stage, and deploys the stage after them', () => {
    const [stageId, stage] = stateless.resources('AWS::ApiGatewayV2::Stage').find(([, r]) => r.Properties.ApiId.Ref === httpApiId())!;
    const throttled = HTTP_ROUTES.filter((r) => r.throttle);
    expect(throttled.map((r) => r.path).sort()).toEqual([
      '/v1/widget/availability',
      '/v1/widget/messages',
      '/v1/widget/messages/{messageId}/attachments/{index}',
      '/v1/widget/sessions',
      '/v1/widget/uploads',
    ]);
    const stageLimit = stage.Properties.DefaultRouteSettings.ThrottlingRateLimit as number;
    for (const spec of throttled) {
      const key = `${spec.method} ${spec.path}`;
      expect(stage.Properties.RouteSettings[key], key).toEqual({ ThrottlingRateLimit: spec.throttle!.rateLimit, ThrottlingBurstLimit: spec.throttle!.burstLimit });
      expect(spec.throttle!.rateLimit).toBeLessThan(stageLimit);
      const [routeId] = stateless.resources('AWS::ApiGatewayV2::Route').find(([, r]) => r.Properties.RouteKey === key)!;
      expect(stage.DependsOn, `${stageId} waits for ${key}`).toContain(routeId);
    }
    // Webhooks keep the stage's limits: providers send in bursts and retry what is refused.
    expect(Object.keys(stage.Properties.RouteSettings).some((k) => k.includes('/webhooks/'))).toBe(false);
  });
});

describe('stateless stack: WebSocket API', () => {
  const wsApiId = (): string => stateless.resources('AWS::ApiGatewayV2::Api').find(([, a]) => a.Properties.ProtocolType === 'WEBSOCKET')![0];
  const route = (key: string): Json =>
    stateless.resources('AWS::ApiGatewayV2::Route').find(([, r]) => r.Properties.ApiId.Ref === wsApiId() && r.Properties.RouteKey === key)![1];

  it('authorizes $connect with the wsAuthorizer function on the query-string token', () => {
    const connect = route('$connect');
    expect(connect.Properties.AuthorizationType).toBe('CUSTOM');
    const authorizer = stateless.json.Resources[connect.Properties.AuthorizerId.Ref].Properties;
    expect(authorizer.AuthorizerType).toBe('REQUEST');
    expect(authorizer.IdentitySource).toEqual([`route.request.querystring.${WS_TOKEN_QUERY_PARAM}`]);
    expect(JSON.stringify(authorizer.AuthorizerUri)).toContain(`"${stateless.functionId('wsAuthorizer')}","Arn"`);
  });

  it('sends $connect, $disconnect and $default to the realtime function', () => {
    for (const key of ['$connect', '$disconnect', '$default']) {
      const integrationId = (route(key).Properties.Target['Fn::Join'][1] as unknown[]).map((p) => (p as Json).Ref).find(Boolean) as string;
      expect(JSON.stringify(stateless.json.Resources[integrationId].Properties.IntegrationUri)).toContain(`"${stateless.functionId('realtime')}","Arn"`);
    }
  });

  it('has a throttled, auto-deployed live stage', () => {
    stateless.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: wsApiId() },
      StageName: 'live',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: Match.anyValue(), ThrottlingBurstLimit: Match.anyValue() },
    });
  });

  it('limits new connections below the stage\'s frame rate', () => {
    const [, stage] = stateless.resources('AWS::ApiGatewayV2::Stage').find(([, r]) => r.Properties.ApiId.Ref === wsApiId())!;
    expect(stage.Properties.RouteSettings).toEqual({
      $connect: { ThrottlingRateLimit: WS_ROUTE_THROTTLES.$connect!.rateLimit, ThrottlingBurstLimit: WS_ROUTE_THROTTLES.$connect!.burstLimit },
    });
    expect(WS_ROUTE_THROTTLES.$connect!.rateLimit).toBeLessThan(stage.Properties.DefaultRouteSettings.ThrottlingRateLimit);
    const connectId = stateless.resources('AWS::ApiGatewayV2::Route').find(([, r]) => r.Properties.ApiId.Ref === wsApiId() && r.Properties.RouteKey === '$connect')![0];
    expect(stage.DependsOn).toContain(connectId);
  });

  it('takes a busy site\'s own limits for the public routes (publicRouteThrottles), and refuses a route that is not public or a limit of nothing', () => {
    const busy = { rateLimit: 400, burstLimit: 800 };
    const json = new Inspect(Template.fromStack(build({ publicRouteThrottles: { 'POST /v1/widget/sessions': busy, $connect: busy } }).stacks.stateless)).json;
    const stages = Object.values(json.Resources as Record<string, Json>).filter((r) => r.Type === 'AWS::ApiGatewayV2::Stage');
    const settings = Object.assign({}, ...stages.map((stage) => stage.Properties.RouteSettings));
    const asSet = { ThrottlingRateLimit: 400, ThrottlingBurstLimit: 800 };
    expect(settings['POST /v1/widget/sessions']).toEqual(asSet);
    expect(settings.$connect).toEqual(asSet);
    // The others keep the manifest's.
    const uploads = HTTP_ROUTES.find((r) => r.path === '/v1/widget/uploads')!.throttle!;
    expect(settings['POST /v1/widget/uploads']).toEqual({ ThrottlingRateLimit: uploads.rateLimit, ThrottlingBurstLimit: uploads.burstLimit });

    expect(() => build({ publicRouteThrottles: { 'POST /webhooks/{channel}': busy } })).toThrow(/publicRouteThrottles: POST \/webhooks\/\{channel\} is not a public route/);
    expect(() => build({ publicRouteThrottles: { $connect: { rateLimit: 0, burstLimit: 10 } } })).toThrow(/needs a rateLimit above 0/);
    expect(() => build({ publicRouteThrottles: { $connect: { rateLimit: 10, burstLimit: 2.5 } } })).toThrow(/whole burstLimit/);
  });

  it('lets the functions that post to connections manage those of the live stage, and no other', () => {
    const posters: FunctionName[] = ['api', 'realtime', 'inbound', 'outbound', 'engagement'];
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      const statement = stateless.statementsOf(name).find((s) => actionsOf(s).includes('execute-api:ManageConnections'));
      if (!posters.includes(name)) {
        expect(statement, name).toBeUndefined();
        continue;
      }
      expect(statement, name).toBeDefined();
      expect(JSON.stringify(statement!.Resource)).toContain('/live/*/@connections/*');
    }
  });
});

describe('stateless stack: timers', () => {
  const schedulerRoleId = (): string => stateless.fn('api').Properties.Environment.Variables[ENV.schedulerRoleArn]['Fn::GetAtt'][0];

  it('has a schedule group whose generated name the functions receive', () => {
    const [[, group]] = stateless.resources('AWS::Scheduler::ScheduleGroup') as [[string, Json]];
    expect(stateless.fn('engagement').Properties.Environment.Variables[ENV.scheduleGroup]).toBe(group.Properties.Name);
  });

  it('has a role only EventBridge Scheduler of this account can assume, and only for the schedules of its group', () => {
    const trust = stateless.json.Resources[schedulerRoleId()].Properties.AssumeRolePolicyDocument.Statement as Json[];
    expect(trust).toHaveLength(1);
    const [statement] = trust as [Json];
    expect(statement).toMatchObject({ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'scheduler.amazonaws.com' } });
    expect(Object.keys(statement.Condition).sort()).toEqual(['ArnLike', 'StringEquals']);
    expect(statement.Condition.StringEquals).toEqual({ 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
    // The group the functions create their schedules in (SCHEDULE_GROUP) and the stack's own schedules sit in.
    const group = stateless.fn('api').Properties.Environment.Variables[ENV.scheduleGroup] as string;
    const [groupId, groupResource] = stateless.resources('AWS::Scheduler::ScheduleGroup')[0]!;
    expect(groupResource.Properties.Name).toBe(group);
    for (const [, schedule] of stateless.resources('AWS::Scheduler::Schedule')) expect(schedule.Properties.GroupName).toEqual({ Ref: groupId });
    const sourceArns = asArray(statement.Condition.ArnLike['aws:SourceArn'] as unknown).map(flatArn);
    const arn = (resource: string) => `arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:${resource}`;
    expect(sourceArns.sort()).toEqual([arn(`schedule-group/${group}`), arn(`schedule/${group}/*`)]);
    expect(Object.keys(statement.Condition.ArnLike)).toEqual(['aws:SourceArn']);
  });

  it('lets that role invoke the engagement function only, and deliver dead letters', () => {
    const statements = stateless.statementsOfRole(schedulerRoleId());
    const invoke = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('lambda:')));
    expect(invoke).toEqual([{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [stateless.functionId('engagement'), 'Arn'] } }]);
    const dlq = stateless.fn('api').Properties.Environment.Variables[ENV.schedulerDlqArn];
    const rest = statements.filter((s) => !invoke.includes(s));
    // Scheduler delivers dead-letter events with the execution role: SendMessage on its DLQ, nothing else.
    expect(rest).toEqual([{ Action: 'sqs:SendMessage', Effect: 'Allow', Resource: dlq }]);
  });

  it('lets no SQS queue name the timers\' dead-letter queue as its own (Scheduler fills it, no queue redrives into it)', () => {
    const dlqId = stateless.fn('api').Properties.Environment.Variables[ENV.schedulerDlqArn]['Fn::GetAtt'][0] as string;
    expect(stateless.json.Resources[dlqId].Properties.RedriveAllowPolicy).toEqual({ redrivePermission: 'denyAll' });
  });

  it('names every dead-letter queue in the outputs, for whoever the alarm pages', () => {
    const outputs = stateless.json.Outputs as Json;
    for (const name of ['InboundDeadLetterQueueUrl', 'OutboundDeadLetterQueueUrl', 'TimersDeadLetterQueueUrl']) {
      const ref = outputs[name].Value.Ref as string;
      expect(stateless.json.Resources[ref].Type, name).toBe('AWS::SQS::Queue');
    }
    const inboundRef = stateless.fn('api').Properties.Environment.Variables[ENV.inboundQueueUrl].Ref as string;
    expect(stateless.json.Resources[inboundRef].Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]).toBe(outputs.InboundDeadLetterQueueUrl.Value.Ref);
  });

  it('lets exactly the scheduling functions manage schedules of the group and pass that role', () => {
    const group = stateless.fn('engagement').Properties.Environment.Variables[ENV.scheduleGroup] as string;
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      const statements = stateless.statementsOf(name);
      const manage = statements.find((s) => actionsOf(s).includes('scheduler:CreateSchedule'));
      const pass = statements.find((s) => actionsOf(s).includes('iam:PassRole'));
      if (['inbound', 'outbound', 'api', 'engagement', 'realtime'].includes(name)) {
        // No GetSchedule: no function reads a schedule back.
        expect(actionsOf(manage!).sort()).toEqual(['scheduler:CreateSchedule', 'scheduler:DeleteSchedule', 'scheduler:UpdateSchedule']);
        expect(JSON.stringify(manage!.Resource)).toMatch(new RegExp(`:schedule/${group}/\\*"`));
        expect(pass!.Resource).toEqual({ 'Fn::GetAtt': [schedulerRoleId(), 'Arn'] });
        expect((pass as Statement & { Condition?: unknown }).Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } });
      } else {
        expect(manage, name).toBeUndefined();
        expect(pass, name).toBeUndefined();
      }
    }
  });
});

describe('stateless stack: recurring schedules', () => {
  it('runs the load recount on a rate in the group, with the timers\' role, retries and dead-letter queue', () => {
    const schedules = stateless.resources('AWS::Scheduler::Schedule');
    expect(schedules).toHaveLength(Object.keys(RECURRING).length);
    const [groupId] = stateless.resources('AWS::Scheduler::ScheduleGroup')[0]!;
    const recount = schedules.find(([, r]) => JSON.parse(r.Properties.Target.Input).kind === 'recountLoads')![1].Properties;
    expect(recount).toMatchObject({
      GroupName: { Ref: groupId },
      ScheduleExpression: `rate(${RECURRING.loadRecount!.everyMinutes} minutes)`,
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: { 'Fn::GetAtt': [stateless.functionId('engagement'), 'Arn'] },
        RoleArn: stateless.fn('api').Properties.Environment.Variables[ENV.schedulerRoleArn],
        DeadLetterConfig: { Arn: stateless.fn('api').Properties.Environment.Variables[ENV.schedulerDlqArn] },
        RetryPolicy: { MaximumRetryAttempts: 2 },
      },
    });
  });
});

describe('stateless stack: mail, secrets and table access', () => {
  it('lets only the engagement function send mail, as the configured identity only', () => {
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      const ses = stateless.statementsOf(name).filter((s) => actionsOf(s).some((a) => a.startsWith('ses:')));
      if (name !== 'engagement') {
        expect(ses, name).toEqual([]);
        continue;
      }
      expect(ses).toHaveLength(1);
      expect(actionsOf(ses[0]!)).toEqual(['ses:SendEmail']);
      expect(JSON.stringify(ses[0]!.Resource)).toMatch(/":identity\/example\.com"/);
    }
  });

  // CloudFormation makes a new secret value whenever GenerateSecretString changes: a change here
  // would wipe the credentials typed into every channel secret, or void the HMAC keys' reply-to
  // addresses and identity hashes, on the next deploy. These are literals on purpose.
  it('creates the secrets from frozen templates, so that a deploy never regenerates what people typed in', () => {
    const generated = Object.fromEntries(
      stateful.resources('AWS::SecretsManager::Secret').map(([, r]) => [String(r.Properties.Description), r.Properties.GenerateSecretString as Json]),
    );
    const channel = (placeholders: string[], key: string) => ({
      SecretStringTemplate: JSON.stringify(Object.fromEntries(placeholders.map((p) => [p, '']))),
      GenerateStringKey: key,
      ExcludePunctuation: true,
      PasswordLength: 48,
    });
    const described = (name: string) => `Conversa ${name} channel credentials (JSON; keys as in CONTRACT.md section 2)`;
    expect(generated).toEqual({
      [described('whatsapp')]: channel(['WHATSAPP_VERIFY_TOKEN', 'WHATSAPP_ACCESS_TOKEN', 'WHATSAPP_PHONE_NUMBER_ID'], 'WHATSAPP_APP_SECRET'),
      [described('messenger')]: channel(['MESSENGER_VERIFY_TOKEN', 'MESSENGER_PAGE_ACCESS_TOKEN'], 'MESSENGER_APP_SECRET'),
      [described('instagram')]: channel(['INSTAGRAM_VERIFY_TOKEN', 'INSTAGRAM_ACCESS_TOKEN'], 'INSTAGRAM_APP_SECRET'),
      [described('telegram')]: channel(['TELEGRAM_BOT_TOKEN'], 'TELEGRAM_SECRET_TOKEN'),
      [described('sms')]: channel(['TWILIO_ACCOUNT_SID', 'TWILIO_FROM_NUMBER'], 'TWILIO_AUTH_TOKEN'),
      ...Object.fromEntries(
        Object.keys(generated)
          .filter((d) => !d.includes('channel credentials'))
          .map((d) => [d, { ExcludePunctuation: true, PasswordLength: 48 }]),
      ),
    });
    expect(Object.keys(generated).filter((d) => !d.includes('channel credentials'))).toHaveLength(2);
  });

  it('has one secret per provider channel in the stateful stack, readable by the webhook, outbound and API functions only', () => {
    // The secrets hold what people typed in: destroying the stateless stack must not take them along.
    expect(stateless.resources('AWS::SecretsManager::Secret')).toEqual([]);
    const secrets = stateful.resources('AWS::SecretsManager::Secret').filter(([, r]) => String(r.Properties.Description).includes('channel credentials'));
    expect(secrets).toHaveLength(PROVIDER_CHANNELS.length);
    for (const channel of PROVIDER_CHANNELS) {
      const variable = `${channel.toUpperCase()}_SECRET_ARN`;
      const secretRef = stateless.fn('webhook').Properties.Environment.Variables[variable] as Json;
      expect(secretRef, variable).toEqual({ 'Fn::ImportValue': expect.any(String) });
      const secret = stateful.json.Resources[exportedRef(secretRef)];
      expect(secret.Type).toBe('AWS::SecretsManager::Secret');
      expect(secret.DeletionPolicy).toBe('Retain');
      // The JSON keys are what the credentials loader reads; the webhook-verifying one starts random.
      // (A credential an adapter gains later is added to the secret by hand: see the frozen templates below.)
      const generate = secret.Properties.GenerateSecretString;
      const keys = [...Object.keys(JSON.parse(generate.SecretStringTemplate) as Json), generate.GenerateStringKey];
      expect(keys.sort(), channel).toEqual(Object.values(adapters[channel].credentialDefaults).map(({ env }) => env).sort());
      const readers = (Object.keys(FUNCTIONS) as FunctionName[]).filter((name) =>
        stateless
          .statementsOf(name)
          .some((s) => actionsOf(s).includes('secretsmanager:GetSecretValue') && JSON.stringify(s.Resource).includes(JSON.stringify(secretRef))),
      );
      // The API opens attachments kept at the provider with the channel's credentials.
      expect(readers.sort(), channel).toEqual(['api', 'outbound', 'webhook']);
      for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
        const env = stateless.fn(name).Properties.Environment.Variables as Json;
        if (name === 'webhook' || name === 'outbound' || name === 'api') expect(env[variable]).toEqual(secretRef);
        else expect(env[variable], `${name} ${variable}`).toBeUndefined();
      }
    }
    // Nobody else holds any Secrets Manager permission at all (engagement reads only the reply-address key, tested below).
    for (const name of ['realtime', 'wsAuthorizer', 'inbound'] as FunctionName[]) {
      expect(stateless.actionsOf(name).filter((a) => a.startsWith('secretsmanager:')), name).toEqual([]);
    }
  });

  it('never grants Scan, and gives each function no more table access than its code uses', () => {
    const writes = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
    const dynamodb = (name: FunctionName) => [...new Set(stateless.actionsOf(name).filter((a) => a.startsWith('dynamodb:')))].sort();
    expect(dynamodb('webhook')).toEqual([]);
    // The anonymous routes: the widget deletes nothing and reads no index; the authorizer reads one visitor.
    expect(dynamodb('widget')).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(JSON.stringify(stateless.statementsOf('widget'))).not.toContain('/index/');
    expect(dynamodb('wsAuthorizer')).toEqual(['dynamodb:GetItem']);
    for (const name of ['api', 'realtime', 'inbound', 'outbound', 'engagement'] as FunctionName[]) {
      const actions = stateless.actionsOf(name);
      expect(actions, name).not.toContain('dynamodb:Scan');
      // No function calls BatchWriteItem (src/ and functions/ use per-item writes and transactions).
      expect(actions, name).not.toContain('dynamodb:BatchWriteItem');
      expect(actions, name).toEqual(expect.arrayContaining(['dynamodb:Query', ...writes]));
    }
  });

  it('grants index queries by index name, not index/*', () => {
    const text = JSON.stringify(stateless.statementsOf('api'));
    for (const index of TABLE.indexes) expect(text).toContain(`"/index/${index.name}"`);
    expect(text).not.toContain('/index/*');
  });
});

describe('stateless stack: outputs', () => {
  it('exports the URLs and the user pool ids; the stateful stack exports every channel secret ARN', () => {
    const outputs = Object.keys(stateless.json.Outputs as Json);
    expect(outputs).toEqual(expect.arrayContaining(['HttpApiUrl', 'WebSocketUrl', 'UserPoolId', 'UserPoolClientId']));
    for (const channel of PROVIDER_CHANNELS) {
      expect(Object.keys(stateful.json.Outputs as Json)).toContain(`${channel.charAt(0).toUpperCase()}${channel.slice(1)}SecretArn`);
    }
  });
});

describe('props reach the template', () => {
  it('uses the given SES identity, sender and timers', () => {
    const { stacks: custom } = build({ sesIdentity: 'mail.acme.test', mailFrom: 'help@mail.acme.test', emailFallbackDelaySeconds: 5, reengageAfterSeconds: 6, autoResolveAfterSeconds: 7 });
    const inspect = new Inspect(Template.fromStack(custom.stateless));
    const env = inspect.fn('engagement').Properties.Environment.Variables as Json;
    expect(env).toMatchObject({
      [ENV.mailFrom]: 'help@mail.acme.test',
      [ENV.emailFallbackDelay]: '5',
      [ENV.reengageAfter]: '6',
      [ENV.autoResolveAfter]: '7',
    });
    const ses = inspect.statementsOf('engagement').find((s) => actionsOf(s).includes('ses:SendEmail'))!;
    expect(JSON.stringify(ses.Resource)).toMatch(/":identity\/mail\.acme\.test"/);
    expect(env[ENV.mailReplyDomain]).toBe('reply.mail.acme.test');
  });

  it('links fallback emails to the widget page given, and refuses one that is not a web address', () => {
    const { stacks: custom } = build({ widgetUrl: 'https://www.acme.test/help' });
    const inspect = new Inspect(Template.fromStack(custom.stateless));
    expect(inspect.fn('engagement').Properties.Environment.Variables[ENV.widgetUrl]).toBe('https://www.acme.test/help');
    expect(inspect.fn('api').Properties.Environment.Variables[ENV.widgetUrl]).toBeUndefined();
    expect(stateless.fn('engagement').Properties.Environment.Variables[ENV.widgetUrl]).toBeUndefined();
    expect(() => build({ widgetUrl: 'www.acme.test/help' })).toThrow(/widgetUrl must be an http\(s\) URL/);
  });

  it.each(Object.entries(TIMER_MAX_SECONDS))('refuses %s other than whole seconds from 1 to %i', (key, max) => {
    for (const value of [0, 0.5, 119.5, -1, max + 1]) {
      expect(() => build({ [key]: value }), String(value)).toThrow(`${key} must be whole seconds from 1 to ${max}, got ${value}`);
    }
  });

  it('hands the upload quotas to the functions that sign uploads, and refuses a count below 1 or a fraction', () => {
    const widgetEnv = (inspect: Inspect) => inspect.fn('widget').Properties.Environment.Variables as Json;
    const apiEnv = (inspect: Inspect) => inspect.fn('api').Properties.Environment.Variables as Json;
    expect(widgetEnv(stateless)[ENV.visitorUploadsPerHour]).toBe('60');
    expect(apiEnv(stateless)[ENV.agentUploadsPerHour]).toBe('600');
    const custom = new Inspect(Template.fromStack(build({ visitorUploadsPerHour: 12, agentUploadsPerHour: 2400 }).stacks.stateless));
    expect(widgetEnv(custom)[ENV.visitorUploadsPerHour]).toBe('12');
    expect(apiEnv(custom)[ENV.agentUploadsPerHour]).toBe('2400');
    for (const key of ['visitorAddressSends', 'visitorUploadsPerHour', 'agentUploadsPerHour'] as const) {
      for (const value of [0, 2.5, -3]) expect(() => build({ [key]: value }), `${key} ${value}`).toThrow(`${key} must be a whole number of at least 1, got ${value}`);
    }
  });

  it('takes each timer up to its bound', () => {
    const { stacks: custom } = build({ ...TIMER_MAX_SECONDS });
    const env = new Inspect(Template.fromStack(custom.stateless)).fn('engagement').Properties.Environment.Variables as Json;
    expect(env).toMatchObject({
      [ENV.emailFallbackDelay]: String(TIMER_MAX_SECONDS.emailFallbackDelaySeconds),
      [ENV.reengageAfter]: String(TIMER_MAX_SECONDS.reengageAfterSeconds),
      [ENV.autoResolveAfter]: String(TIMER_MAX_SECONDS.autoResolveAfterSeconds),
    });
  });

  it('gives every function the public URL given, without a trailing slash, and the HTTP API URL otherwise', () => {
    const { stacks: custom } = build({ publicUrl: 'https://chat.acme.test/' });
    const inspect = new Inspect(Template.fromStack(custom.stateless));
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      expect(inspect.fn(name).Properties.Environment.Variables[ENV.publicUrl], name).toBe('https://chat.acme.test');
      expect(stateless.fn(name).Properties.Environment.Variables[ENV.publicUrl], name).toMatchObject({ 'Fn::Join': expect.anything() });
    }
    expect(() => build({ publicUrl: 'https://chat.acme.test:8443' })).not.toThrow();
  });

  it.each([
    'chat.acme.test',
    'http://chat.acme.test',
    'https://chat.acme.test/webhooks',
    'https://chat.acme.test//',
    'https://chat.acme.test/?x=1',
    'https://chat.acme.test?',
    'https://chat.acme.test#top',
    'https://user:pw@chat.acme.test',
    ' https://chat.acme.test',
  ])('refuses the public URL %j', (publicUrl) => {
    expect(() => build({ publicUrl })).toThrow(`publicUrl must be an https URL with no path, query or fragment (e.g. https://chat.acme.com), got ${publicUrl}`);
  });

  it.each(['oncall', 'oncall@acme', 'oncall@acme.test,ops@acme.test', 'On Call <oncall@acme.test>', ' oncall@acme.test'])('refuses the alarm email %j', (alarmEmail) => {
    expect(() => build({ alarmEmail })).toThrow(`alarmEmail must be an email address, got ${alarmEmail}`);
  });

  it('allows the origins given, on the HTTP API and for uploads to the media bucket', () => {
    const allowedOrigins = ['https://www.acme.test', 'http://localhost:5173'];
    const { stacks: custom } = build({ allowedOrigins });
    Template.fromStack(custom.stateless).hasResourceProperties('AWS::ApiGatewayV2::Api', { CorsConfiguration: { AllowOrigins: allowedOrigins } });
    const [, bucket] = new Inspect(Template.fromStack(custom.stateful)).resources('AWS::S3::Bucket')[0]!;
    expect(bucket.Properties.CorsConfiguration.CorsRules[0]).toMatchObject({ AllowedMethods: ['PUT'], AllowedOrigins: allowedOrigins });
    expect(() => build({ allowedOrigins: ['*'] })).not.toThrow();
  });

  it.each([
    'www.acme.test',
    'https://www.acme.test/',
    'https://www.acme.test/help',
    'https://WWW.acme.test',
    'https://www.acme.test:443',
    'ftp://www.acme.test',
    'https://www.acme.test?x',
  ])('refuses the allowed origin %j', (origin) => {
    expect(() => build({ allowedOrigins: ['https://console.acme.test', origin] })).toThrow(
      `allowedOrigins must each be an origin as browsers send it, scheme://host[:port] (lowercase, no path, no trailing slash), or * alone, got ${origin}`,
    );
  });

  it('refuses * among other origins', () => {
    expect(() => build({ allowedOrigins: ['https://console.acme.test', '*'] })).toThrow(/or \* alone, got \*/);
  });

  it.each([
    ['acme.test', 'help@acme.test'],
    ['acme.test', 'Acme Support <help@acme.test>'],
    ['acme.test', 'Help@ACME.test'],
    ['support@acme.test', 'support@acme.test'],
    ['support@acme.test', 'Acme <support@acme.test>'],
    // A verified domain covers its subdomains.
    ['acme.test', 'help@mail.acme.test'],
  ])('takes, with the SES identity %s, the sender %j', (sesIdentity, mailFrom) => {
    const { stacks: custom } = build({ sesIdentity, mailFrom });
    expect(new Inspect(Template.fromStack(custom.stateless)).fn('engagement').Properties.Environment.Variables[ENV.mailFrom]).toBe(mailFrom);
  });

  it.each([
    ['mail.acme.test', 'help@acme.test', 'use an address @mail.acme.test (or at one of its subdomains)'],
    ['acme.test', 'help@notacme.test', 'use an address @acme.test (or at one of its subdomains)'],
    ['acme.test', 'help@acme.test.evil', 'use an address @acme.test (or at one of its subdomains)'],
    [undefined, 'help@acme.test', 'use an address @example.com (or at one of its subdomains)'],
    ['support@acme.test', 'help@acme.test', 'set mailFrom to support@acme.test or leave it out'],
    ['support@acme.test', 'Support <sales@acme.test>', 'set mailFrom to support@acme.test or leave it out'],
  ])('refuses, with the SES identity %s, the sender %j it does not cover', (sesIdentity, mailFrom, advice) => {
    expect(() => build({ ...(sesIdentity ? { sesIdentity } : {}), mailFrom })).toThrow(
      `mailFrom ${mailFrom} is not covered by sesIdentity ${sesIdentity ?? 'example.com'}, the only identity the functions may send from: ${advice}`,
    );
  });

  it.each(['help', 'help@acme', 'Help <help@acme.test', 'a@acme.test, b@acme.test'])('refuses the sender %j, not an address', (mailFrom) => {
    expect(() => build({ sesIdentity: 'acme.test', mailFrom })).toThrow(`mailFrom must be an email address (or Name <address>), got ${mailFrom}`);
  });

  it.each(['Équipe <help@acme.test>', 'hélp@acme.test'])('refuses the sender %j, which SES would refuse (not 7-bit ASCII)', (mailFrom) => {
    expect(() => build({ sesIdentity: 'acme.test', mailFrom })).toThrow(`mailFrom must be 7-bit ASCII (SES has no SMTPUTF8)`);
  });

  it('takes a Unicode sender name written as an encoded-word', () => {
    const mailFrom = '=?UTF-8?B?w4lxdWlwZQ==?= <help@acme.test>';
    const { stacks: custom } = build({ sesIdentity: 'acme.test', mailFrom });
    expect(new Inspect(Template.fromStack(custom.stateless)).fn('engagement').Properties.Environment.Variables[ENV.mailFrom]).toBe(mailFrom);
  });

  it('sends from a verified address given as the SES identity, and takes replies on its domain', () => {
    const { stacks: custom } = build({ sesIdentity: 'support@acme.test' });
    const env = new Inspect(Template.fromStack(custom.stateless)).fn('engagement').Properties.Environment.Variables as Json;
    expect(env).toMatchObject({ [ENV.mailFrom]: 'support@acme.test', [ENV.mailReplyDomain]: 'reply.acme.test' });
  });

  it('turns run-time source maps off in every function with sourceMaps: false', () => {
    const { stacks: custom } = build({ sourceMaps: false });
    const inspect = new Inspect(Template.fromStack(custom.stateless));
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      expect(inspect.fn(name).Properties.Environment.Variables).not.toHaveProperty('NODE_OPTIONS');
    }
  });
});

/** The stateful stack's key secret described with `described`: retained, its ARN in `arnVariable` of `reader` only, readable by it only. */
function expectKeyOnlyFor(described: string, arnVariable: string, reader: FunctionName): void {
  const key = stateful.resources('AWS::SecretsManager::Secret').find(([, r]) => String(r.Properties.Description).includes(described));
  expect(key).toBeDefined();
  const [keyId, resource] = key!;
  expect(resource.DeletionPolicy).toBe('Retain');
  const keyRef = stateless.fn(reader).Properties.Environment.Variables[arnVariable] as Json;
  expect(exportedRef(keyRef)).toBe(keyId);
  for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
    const env = stateless.fn(name).Properties.Environment.Variables as Json;
    const reads = stateless.statementsOf(name).some((s) => actionsOf(s).includes('secretsmanager:GetSecretValue') && JSON.stringify(s.Resource).includes(JSON.stringify(keyRef)));
    expect([name, reads, env[arnVariable] !== undefined]).toEqual([name, name === reader, name === reader]);
  }
}

describe('email replies', () => {
  /** The conditions on SES's sns:Publish in the inbound mail topic's policy. */
  const sesPublishConditions = (inspect: Inspect): Json[] =>
    inspect
      .resources('AWS::SNS::TopicPolicy')
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[])
      .filter((st) => st.Effect === 'Allow' && JSON.stringify(st.Principal ?? {}).includes('ses.amazonaws.com'))
      .map((st) => ({ Action: st.Action, StringEquals: st.Condition?.StringEquals, SourceArn: st.Condition?.ArnLike && flatArn(st.Condition.ArnLike['aws:SourceArn']) }));

  it('keeps the reply-address key in a secret of the stateful stack only the mail sender can read', () => {
    expectKeyOnlyFor('reply-to', ENV.replySecretArn, 'engagement');
  });

  it('lets SES publish received mail to an encrypted topic the engagement function subscribes to', () => {
    const t = stateless.template;
    expect(stateless.resources('AWS::SNS::Topic').every(([, topic]) => topic.Properties.KmsMasterKeyId)).toBe(true);
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'lambda', Endpoint: { 'Fn::GetAtt': [stateless.functionId('engagement'), 'Arn'] } });
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sns:Publish', Principal: { Service: 'ses.amazonaws.com' } })]) },
    });
    t.hasOutput('InboundMailTopicArn', {});
    // No rule set named: the stack leaves the account's receipt rules alone.
    expect(stateless.resources('AWS::SES::ReceiptRule')).toEqual([]);
  });

  it("lets SES publish for this account's receipt rules only (confused deputy), whichever rule set the platform team's rule is in", () => {
    expect(sesPublishConditions(stateless)).toEqual([
      {
        Action: 'sns:Publish',
        StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
        SourceArn: 'arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:receipt-rule-set/*:receipt-rule/*',
      },
    ]);
  });

  it('adds the reply domain\'s receipt rule to the named rule set, storing each email in the inbound mail bucket and notifying the topic', () => {
    const { stacks: custom } = build({ sesIdentity: 'mail.acme.test', mailReceiptRuleSet: 'acme-active' });
    const inspect = new Inspect(Template.fromStack(custom.stateless));
    const rules = inspect.resources('AWS::SES::ReceiptRule');
    expect(rules).toHaveLength(1);
    const [topicId] = inspect.resources('AWS::SNS::Topic')[0]!;
    const [bucketId] = inspect.resources('AWS::S3::Bucket')[0]!;
    // The S3 action, not SNS's: SNS carries emails up to 150 KB, and SES bounces larger ones.
    expect(rules[0]![1].Properties).toEqual({
      RuleSetName: 'acme-active',
      Rule: {
        Enabled: true,
        Recipients: ['reply.mail.acme.test'],
        ScanEnabled: true,
        TlsPolicy: 'Require',
        Actions: [{ S3Action: { BucketName: { Ref: bucketId }, ObjectKeyPrefix: 'inbound/', TopicArn: { Ref: topicId } } }],
      },
    });
    // SES checks it may write and publish when the rule is created: the rule waits for both policies.
    const [policyId] = inspect.resources('AWS::SNS::TopicPolicy')[0]!;
    const [bucketPolicyId] = inspect.resources('AWS::S3::BucketPolicy')[0]!;
    expect(rules[0]![1].DependsOn).toEqual(expect.arrayContaining([policyId, bucketPolicyId]));
    // Only rules of that rule set may have SES publish, and store.
    const ruleSetRules = 'arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:receipt-rule-set/acme-active:receipt-rule/*';
    expect(sesPublishConditions(inspect)).toEqual([{ Action: 'sns:Publish', StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } }, SourceArn: ruleSetRules }]);
    expect(sesStoreStatements(inspect)).toEqual([
      { Action: 's3:PutObject', Resource: `<${bucketId}.Arn>/inbound/*`, StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } }, SourceArn: ruleSetRules },
    ]);
    expect(nagFindings(custom.stateless)).toEqual([]);
  });

  /** SES's statements in the inbound mail bucket's policy, with their conditions. */
  const sesStoreStatements = (inspect: Inspect): Json[] =>
    inspect
      .resources('AWS::S3::BucketPolicy')
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[])
      .filter((st) => JSON.stringify(st.Principal ?? {}).includes('ses.amazonaws.com'))
      .map((st) => ({ Action: st.Action, Resource: flatResource(st.Resource), StringEquals: st.Condition?.StringEquals, SourceArn: st.Condition?.ArnLike && flatArn(st.Condition.ArnLike['aws:SourceArn']) }));
  const flatResource = (value: Json): string => (value['Fn::Join'] ? (value['Fn::Join'][1] as Json[]).map((v) => (typeof v === 'string' ? v : `<${v['Fn::GetAtt'].join('.')}>`)).join('') : JSON.stringify(value));

  it('keeps received emails in a private, encrypted, TLS-only bucket that SES alone writes, for this account\'s receipt rules, and deletes each after 14 days', () => {
    const buckets = stateless.resources('AWS::S3::Bucket');
    expect(buckets).toHaveLength(1);
    const [bucketId, bucket] = buckets[0]!;
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(bucket.Properties.LifecycleConfiguration.Rules).toContainEqual(expect.objectContaining({ Id: 'ReadMail', ExpirationInDays: 14, Status: 'Enabled' }));
    const statements = stateless.resources('AWS::S3::BucketPolicy').flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]);
    expect(statements).toContainEqual(expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    expect(sesStoreStatements(stateless)).toEqual([
      {
        Action: 's3:PutObject',
        Resource: `<${bucketId}.Arn>/inbound/*`,
        StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
        SourceArn: 'arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:receipt-rule-set/*:receipt-rule/*',
      },
    ]);
    stateless.template.hasOutput('InboundMailBucketName', { Value: { Ref: bucketId } });
  });
});

describe('widget identity verification', () => {
  it('keeps the identity key in a secret of the stateful stack that only the widget function reads', () => {
    expectKeyOnlyFor('identity hashes', ENV.widgetIdentitySecretArn, 'widget');
    expect(Object.keys(stateful.json.Outputs as Json)).toContain('WidgetIdentityKeyArn');
  });
});

describe('engagement failures', () => {
  it('sends a timer or mail run that still fails after Lambda\'s retries to the alarmed timers dead-letter queue', () => {
    const [[, config]] = stateless.resources('AWS::Lambda::EventInvokeConfig') as [[string, Json]];
    expect(config.Properties.FunctionName).toEqual({ Ref: stateless.functionId('engagement') });
    expect(config.Properties.MaximumRetryAttempts).toBe(2);
    const dlqArn = stateless.fn('engagement').Properties.Environment.Variables[ENV.schedulerDlqArn] as Json;
    expect(config.Properties.DestinationConfig.OnFailure.Destination).toEqual(dlqArn);
    expect(stateless.statementsOf('engagement').some((st) => actionsOf(st).includes('sqs:SendMessage') && JSON.stringify(st.Resource).includes(JSON.stringify(dlqArn)))).toBe(true);
  });
});

describe('engagement concurrency', () => {
  const reserved = (inspect: Inspect): Partial<Record<FunctionName, unknown>> =>
    Object.fromEntries(
      (Object.keys(FUNCTIONS) as FunctionName[]).flatMap((name) => {
        const value = inspect.fn(name).Properties.ReservedConcurrentExecutions;
        return value === undefined ? [] : [[name, value]];
      }),
    );

  it('reserves nothing by default, so a first deploy on an account with a low quota does not fail', () => {
    expect(reserved(stateless)).toEqual({});
  });

  it('reserves engagementConcurrency when given, and nothing with none', () => {
    expect(reserved(new Inspect(Template.fromStack(build({ engagementConcurrency: 35 }).stacks.stateless)))).toEqual({ engagement: 35 });
    expect(reserved(new Inspect(Template.fromStack(build({ engagementConcurrency: 'none' }).stacks.stateless)))).toEqual({});
  });

  it('refuses a reservation that would stop every timer or is not a whole number', () => {
    // 0 is valid to Lambda, and means no run at all: every timer throttled until it expires.
    for (const engagementConcurrency of [0, -1, 2.5]) {
      expect(() => build({ engagementConcurrency }), String(engagementConcurrency)).toThrow(`engagementConcurrency must be a whole number of at least 1 or 'none', got ${engagementConcurrency}`);
    }
  });

  it('keeps a throttled run retried by Lambda, then dead-lettered, not dropped: no event age below the default 6 hours', () => {
    const [[, config]] = stateless.resources('AWS::Lambda::EventInvokeConfig') as [[string, Json]];
    expect(config.Properties.MaximumEventAgeInSeconds ?? 21_600).toBe(21_600);
    expect(config.Properties.DestinationConfig.OnFailure.Destination).toEqual(stateless.fn('engagement').Properties.Environment.Variables[ENV.schedulerDlqArn]);
  });
});

describe('alarms', () => {
  const EMAIL = 'oncall@acme.test';
  let alarmedStacks: ConversaStacks;
  let alarmed: Inspect;
  beforeAll(() => {
    ({ stacks: alarmedStacks } = build({ alarmEmail: EMAIL }));
    alarmed = new Inspect(Template.fromStack(alarmedStacks.stateless));
  });
  const alarmTopicId = (): string => alarmed.resources('AWS::SNS::Topic').find(([, t]) => t.Properties.DisplayName === 'Conversa alarms')![0];
  const apiId = (inspect: Inspect, protocol: 'HTTP' | 'WEBSOCKET'): string =>
    inspect.resources('AWS::ApiGatewayV2::Api').find(([, a]) => a.Properties.ProtocolType === protocol)![0];
  const queueIdOf = (inspect: Inspect, consumer: FunctionName): string =>
    inspect.resources('AWS::Lambda::EventSourceMapping').find(([, m]) => m.Properties.FunctionName.Ref === inspect.functionId(consumer))![1].Properties
      .EventSourceArn['Fn::GetAtt'][0];
  /** Alarms on `metricName` of `namespace`. */
  const alarmsOn = (inspect: Inspect, namespace: string, metricName: string): Json[] =>
    inspect.resources('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties).filter((a) => a.Namespace === namespace && a.MetricName === metricName);
  const functionsAlarmedOn = (inspect: Inspect, metricName: string): FunctionName[] =>
    (Object.keys(FUNCTIONS) as FunctionName[]).filter((name) =>
      alarmsOn(inspect, 'AWS/Lambda', metricName).some((a) => JSON.stringify(a.Dimensions) === JSON.stringify([{ Name: 'FunctionName', Value: { Ref: inspect.functionId(name) } }])),
    );

  it('lets CloudWatch alarms of this account, and nothing else, publish to the alarm topic, over TLS only', () => {
    const topicId = alarmTopicId();
    const policies = alarmed.resources('AWS::SNS::TopicPolicy').filter(([, p]) => (p.Properties.Topics as Json[]).some((t) => t.Ref === topicId));
    expect(policies).toHaveLength(1);
    const statements = policies[0]![1].Properties.PolicyDocument.Statement as Json[];
    expect(statements.filter((st) => st.Effect === 'Allow')).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: { Ref: topicId },
        Condition: {
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
          ArnLike: {
            'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':alarm:*']] },
          },
        },
      }),
    ]);
    expect(statements).toEqual(expect.arrayContaining([expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]));
    alarmed.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: EMAIL, TopicArn: { Ref: topicId } });
  });

  it("encrypts the alarm topic with a rotated key of its own that CloudWatch may use for this account's alarms only (not alias/aws/sns, which CloudWatch cannot)", () => {
    const key = alarmed.json.Resources[alarmTopicId()].Properties.KmsMasterKeyId as Json;
    const keyId = key['Fn::GetAtt']?.[0] as string;
    expect(key).toEqual({ 'Fn::GetAtt': [keyId, 'Arn'] });
    const resource = alarmed.json.Resources[keyId];
    expect(resource.Type).toBe('AWS::KMS::Key');
    expect(resource.Properties.EnableKeyRotation).toBe(true);
    const statements = resource.Properties.KeyPolicy.Statement as Json[];
    const byCloudWatch = statements.filter((st) => JSON.stringify(st.Principal ?? {}).includes('cloudwatch.amazonaws.com'));
    // Only on behalf of this account's alarms (confused deputy): the topic policy's conditions.
    expect(byCloudWatch).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        Resource: '*',
        Condition: {
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
          ArnLike: {
            'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':alarm:*']] },
          },
        },
      }),
    ]);
    // The key serves this topic alone: no other service principal may use it.
    const services = statements.flatMap((st) => asArray((st.Principal as Json | undefined)?.Service ?? []));
    expect(services).toEqual(['cloudwatch.amazonaws.com']);
  });

  it("alarms on HTTP 5xx answers of the $default stage, less the api function's logged provider outages", () => {
    const alarms = alarmed.resources('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties).filter((a) => JSON.stringify(a.Metrics ?? []).includes('"5xx"'));
    expect(alarms).toEqual([
      expect.objectContaining({ Threshold: 5, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' }),
    ]);
    const metrics = alarms[0]!.Metrics as Json[];
    expect(metrics.find((m) => m.Expression)).toMatchObject({ Expression: 'serverErrors - FILL(providerUnavailable, 0)', ReturnData: true });
    const stat = (id: string) => metrics.find((m) => m.Id === id)?.MetricStat as Json;
    expect(stat('serverErrors')).toEqual({
      Metric: {
        Namespace: 'AWS/ApiGateway',
        MetricName: '5xx',
        Dimensions: expect.arrayContaining([
          { Name: 'ApiId', Value: { Ref: apiId(alarmed, 'HTTP') } },
          { Name: 'Stage', Value: '$default' },
        ]),
      },
      Period: 300,
      Stat: 'Sum',
    });
    const provider = stat('providerUnavailable');
    expect(provider).toMatchObject({ Period: 300, Stat: 'Sum', Metric: { MetricName: 'ProviderUnavailable' } });
    // The metric comes from the api function's own log lines with the provider-outage code.
    const filters = alarmed.resources('AWS::Logs::MetricFilter').map(([, f]) => f.Properties);
    expect(filters).toEqual([
      expect.objectContaining({
        FilterPattern: `{ $.errorCode = "${PROVIDER_UNAVAILABLE}" }`,
        LogGroupName: { Ref: alarmed.fn('api').Properties.LoggingConfig.LogGroup.Ref },
        MetricTransformations: [expect.objectContaining({ MetricName: 'ProviderUnavailable', MetricNamespace: (provider.Metric as Json).Namespace, MetricValue: '1' })],
      }),
    ]);
  });

  it.each(['IntegrationError', 'ExecutionError'])('alarms on WebSocket %s of the live stage', (metricName) => {
    expect(alarmsOn(alarmed, 'AWS/ApiGateway', metricName)).toEqual([
      expect.objectContaining({
        Dimensions: expect.arrayContaining([
          { Name: 'ApiId', Value: { Ref: apiId(alarmed, 'WEBSOCKET') } },
          { Name: 'Stage', Value: 'live' },
        ]),
        Statistic: 'Sum',
        Period: 300,
        Threshold: 5,
      }),
    ]);
  });

  it('alarms on throttles of every function, and on errors of the queue consumers and the WebSocket authorizer only', () => {
    expect(functionsAlarmedOn(alarmed, 'Throttles')).toEqual(Object.keys(FUNCTIONS));
    // The HTTP and WebSocket handlers answer their failures themselves (5xx and WebSocket alarms above).
    expect(functionsAlarmedOn(alarmed, 'Errors').sort()).toEqual([...new Set([...Object.values(QUEUES).map((q) => q.consumer), 'wsAuthorizer'])].sort());
    for (const alarm of [...alarmsOn(alarmed, 'AWS/Lambda', 'Throttles'), ...alarmsOn(alarmed, 'AWS/Lambda', 'Errors')]) {
      expect(alarm).toMatchObject({ Statistic: 'Sum', Period: 300, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
    }
  });

  // The outbound consumer itself holds jobs back for up to 300 s per provider refusal.
  it.each([['inbound', 300], ['outbound', 900]] as const)('alarms when the oldest message of the %s queue waits over %i s for 3 minutes', (queueName, maxAge) => {
    const queueId = queueIdOf(alarmed, QUEUES[queueName].consumer);
    expect(alarmsOn(alarmed, 'AWS/SQS', 'ApproximateAgeOfOldestMessage')).toContainEqual(
      expect.objectContaining({
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
        Statistic: 'Maximum',
        Period: 60,
        EvaluationPeriods: 3,
        Threshold: maxAge,
        ComparisonOperator: 'GreaterThanThreshold',
      }),
    );
  });

  // The inbox index takes every message on one partition key: its throttling is the design's ceiling,
  // and an index that throttles refuses the table's write without the table's own metric counting it.
  it.each(['Write', 'Read'])('alarms on %s throttle events of the table and of every index, summed over 5 minutes', (kind) => {
    const alarms = alarmed.resources('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties).filter((a) => JSON.stringify(a.Metrics ?? []).includes(`"${kind}ThrottleEvents"`));
    expect(alarms).toHaveLength(1);
    const alarm = alarms[0]!;
    expect(alarm).toMatchObject({ Threshold: 25, EvaluationPeriods: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
    expect(alarm.AlarmActions).toEqual([{ Ref: alarmTopicId() }]);
    const metrics = alarm.Metrics as Json[];
    const stats = metrics.filter((m) => m.MetricStat).map((m) => ({ id: m.Id as string, stat: m.MetricStat as Json }));
    const dimension = (stat: Json, name: string): unknown => (stat.Metric.Dimensions as Json[]).find((d) => d.Name === name)?.Value;
    for (const { stat } of stats) {
      expect(stat).toMatchObject({ Metric: { Namespace: 'AWS/DynamoDB', MetricName: `${kind}ThrottleEvents` }, Period: 300, Stat: 'Sum' });
      // The stateful stack's table, whichever metric.
      expect(exportedRef(dimension(stat, 'TableName') as Json)).toBe(ConversaTable.DEFAULT_LOGICAL_ID);
    }
    // The table alone, and each index declared in src/store/table.ts: a new index is alarmed too.
    expect(stats.map(({ stat }) => dimension(stat, 'GlobalSecondaryIndexName') ?? 'table').sort()).toEqual(['table', ...TABLE.indexes.map((index) => index.name)].sort());
    const returned = metrics.filter((m) => m.ReturnData !== false);
    expect(returned).toHaveLength(1);
    const summed = /^SUM\(\[(.*)\]\)$/.exec(returned[0]!.Expression as string)?.[1]?.split(', ');
    expect(summed?.sort()).toEqual(stats.map(({ id }) => id).sort());
  });

  it('notifies the alarm topic from every alarm when it fires, and when it clears from the dead-letter queues\' only', () => {
    const alarms = alarmed.resources('AWS::CloudWatch::Alarm');
    // 3 dead-letter queues; 5xx, 2 WebSocket, authorizer errors; throttles per function; errors and age per queue; table reads and writes.
    expect(alarms).toHaveLength(3 + 4 + Object.keys(FUNCTIONS).length + 2 * Object.keys(QUEUES).length + 2);
    for (const [id, alarm] of alarms) expect(alarm.Properties.AlarmActions, id).toEqual([{ Ref: alarmTopicId() }]);
    // A dead-letter queue clears once someone redrove or purged it: news for the rest of the team.
    // The count and age alarms clear by themselves with traffic; an email each time would double a flapping one's.
    const dlqArns = ['InboundDeadLetterQueueUrl', 'OutboundDeadLetterQueueUrl', 'TimersDeadLetterQueueUrl'].map((name) => (alarmed.json.Outputs as Json)[name].Value.Ref as string);
    const withOk = alarms.filter(([, alarm]) => alarm.Properties.OKActions !== undefined);
    expect(withOk.map(([, alarm]) => alarm.Properties.Dimensions?.[0]?.Value?.['Fn::GetAtt']?.[0]).sort()).toEqual(dlqArns.sort());
    for (const [id, alarm] of withOk) expect(alarm.Properties.OKActions, id).toEqual([{ Ref: alarmTopicId() }]);
  });

  it('keeps the alarms without an alarm email, with no actions', () => {
    const alarms = stateless.resources('AWS::CloudWatch::Alarm');
    expect(alarms).toHaveLength(alarmed.resources('AWS::CloudWatch::Alarm').length);
    expect(alarms.every(([, a]) => a.Properties.AlarmActions === undefined)).toBe(true);
    expect(stateless.resources('AWS::SNS::Topic').some(([, t]) => t.Properties.DisplayName === 'Conversa alarms')).toBe(false);
  });

  it('reports nothing unacknowledged to cdk-nag with the alarm topic', () => {
    expect(nagFindings(alarmedStacks.stateless)).toEqual([]);
  });
});

describe('operations dashboard', () => {
  /** A token of the dashboard body as one string: `<Ref X>`, `<GetAtt X.Y>`, `<Import X>` (the stateful stack's resource). */
  const tokenOf = (node: Json): string => {
    if (node.Ref) return `<Ref ${node.Ref}>`;
    if (node['Fn::GetAtt']) return `<GetAtt ${(node['Fn::GetAtt'] as string[]).join('.')}>`;
    if (node['Fn::ImportValue']) return `<Import ${exportedRef(node)}>`;
    throw new Error(`unexpected token in the dashboard body: ${JSON.stringify(node)}`);
  };
  /** The one dashboard of `inspect`, its body parsed with each token as a string. */
  const widgetsOf = (inspect: Inspect): Json[] => {
    const dashboards = inspect.resources('AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const body = dashboards[0]![1].Properties.DashboardBody as Json | string;
    const text = typeof body === 'string' ? body : (body['Fn::Join'][1] as (string | Json)[]).map((part) => (typeof part === 'string' ? part : tokenOf(part))).join(body['Fn::Join'][0]);
    return (JSON.parse(text) as { widgets: Json[] }).widgets;
  };
  /** Every metric the graphs of `widgets` draw or compute from, as namespace, name and dimensions. */
  interface Drawn {
    readonly namespace: string;
    readonly name: string;
    readonly dimensions: Record<string, string>;
    readonly stat?: string;
  }
  const metricsOf = (widgets: Json[]): Drawn[] =>
    widgets
      .flatMap((w) => (w.properties?.metrics ?? []) as unknown[][])
      .filter((m) => typeof m[0] === 'string')
      .map((m) => {
        const options = (typeof m[m.length - 1] === 'object' ? m[m.length - 1] : {}) as Json;
        const parts = m.filter((p) => typeof p === 'string') as string[];
        const dimensions: Record<string, string> = {};
        for (let i = 2; i + 1 < parts.length; i += 2) dimensions[parts[i]!] = parts[i + 1]!;
        return { namespace: parts[0]!, name: parts[1]!, dimensions, ...(options.stat ? { stat: options.stat as string } : {}) };
      });
  const drawn = (widgets: Json[], namespace: string, name: string, dimensions: Record<string, string>, stat?: string): boolean =>
    metricsOf(widgets).some(
      (m) => m.namespace === namespace && m.name === name && Object.entries(dimensions).every(([k, v]) => m.dimensions[k] === v) && (stat === undefined || m.stat === stat),
    );
  const apiRef = (protocol: 'HTTP' | 'WEBSOCKET'): string => `<Ref ${stateless.resources('AWS::ApiGatewayV2::Api').find(([, a]) => a.Properties.ProtocolType === protocol)![0]}>`;

  it('graphs invocations, errors, throttles, duration p50 and p99 and concurrency of every function', () => {
    const widgets = widgetsOf(stateless);
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      const fn = { FunctionName: `<Ref ${stateless.functionId(name)}>` };
      for (const metric of ['Invocations', 'Errors', 'Throttles', 'ConcurrentExecutions']) expect(drawn(widgets, 'AWS/Lambda', metric, fn), `${name} ${metric}`).toBe(true);
      for (const p of ['p50', 'p99']) expect(drawn(widgets, 'AWS/Lambda', 'Duration', fn, p), `${name} Duration ${p}`).toBe(true);
    }
  });

  it('graphs both queues (visible, in flight, age of the oldest) and the depth of the three dead-letter queues', () => {
    const widgets = widgetsOf(stateless);
    for (const spec of Object.values(QUEUES)) {
      const queueId = stateless.resources('AWS::Lambda::EventSourceMapping').find(([, m]) => m.Properties.FunctionName.Ref === stateless.functionId(spec.consumer))![1].Properties
        .EventSourceArn['Fn::GetAtt'][0] as string;
      const queue = { QueueName: `<GetAtt ${queueId}.QueueName>` };
      for (const metric of ['ApproximateNumberOfMessagesVisible', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateAgeOfOldestMessage']) {
        expect(drawn(widgets, 'AWS/SQS', metric, queue), `${spec.consumer} ${metric}`).toBe(true);
      }
    }
    for (const output of ['InboundDeadLetterQueueUrl', 'OutboundDeadLetterQueueUrl', 'TimersDeadLetterQueueUrl']) {
      const dlqId = (stateless.json.Outputs as Json)[output].Value.Ref as string;
      expect(drawn(widgets, 'AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: `<GetAtt ${dlqId}.QueueName>` }), output).toBe(true);
    }
  });

  it('graphs requests, 4xx, 5xx and latency p50 and p99 of the HTTP API, connections, messages and errors of the WebSocket API', () => {
    const widgets = widgetsOf(stateless);
    const http = { ApiId: apiRef('HTTP'), Stage: '$default' };
    for (const metric of ['Count', '4xx', '5xx']) expect(drawn(widgets, 'AWS/ApiGateway', metric, http), metric).toBe(true);
    for (const p of ['p50', 'p99']) expect(drawn(widgets, 'AWS/ApiGateway', 'Latency', http, p), `Latency ${p}`).toBe(true);
    const ws = { ApiId: apiRef('WEBSOCKET'), Stage: 'live' };
    for (const metric of ['ConnectCount', 'MessageCount', 'IntegrationError', 'ExecutionError']) expect(drawn(widgets, 'AWS/ApiGateway', metric, ws), metric).toBe(true);
  });

  it('graphs consumed capacity and throttle events of the table and of every index', () => {
    const widgets = widgetsOf(stateless);
    const table = { TableName: `<Import ${ConversaTable.DEFAULT_LOGICAL_ID}>` };
    for (const metric of ['ConsumedReadCapacityUnits', 'ConsumedWriteCapacityUnits', 'ReadThrottleEvents', 'WriteThrottleEvents']) {
      const drawnOn = metricsOf(widgets).filter((m) => m.namespace === 'AWS/DynamoDB' && m.name === metric && m.dimensions.TableName === table.TableName);
      expect(drawnOn.map((m) => m.dimensions.GlobalSecondaryIndexName ?? 'table').sort(), metric).toEqual(['table', ...TABLE.indexes.map((index) => index.name)].sort());
    }
  });

  it('shows the state of every alarm of the stack, and names the dashboard in the outputs', () => {
    const widgets = widgetsOf(stateless);
    const shown = widgets.filter((w) => w.type === 'alarm').flatMap((w) => w.properties.alarms as string[]);
    expect(shown.sort()).toEqual(stateless.resources('AWS::CloudWatch::Alarm').map(([id]) => `<GetAtt ${id}.Arn>`).sort());
    const [[dashboardId]] = stateless.resources('AWS::CloudWatch::Dashboard') as [[string, Json]];
    expect(JSON.stringify((stateless.json.Outputs as Json).OperationsDashboardUrl.Value)).toContain(JSON.stringify({ Ref: dashboardId }));
  });

  it('is left out with dashboard false', () => {
    const off = new Inspect(Template.fromStack(build({ dashboard: false }).stacks.stateless));
    expect(off.resources('AWS::CloudWatch::Dashboard')).toEqual([]);
    expect((off.json.Outputs as Json).OperationsDashboardUrl).toBeUndefined();
    // The alarms stay.
    expect(off.resources('AWS::CloudWatch::Alarm')).toHaveLength(stateless.resources('AWS::CloudWatch::Alarm').length);
  });
});

describe('placeholder warnings', () => {
  const { sesIdentity, corsAnyOrigin, alarmsWithoutActions } = PLACEHOLDER_WARNINGS;
  const configured = { sesIdentity: 'acme.test', allowedOrigins: ['https://www.acme.test'], alarmEmail: 'oncall@acme.test' };

  it('warns about every placeholder a default deploy keeps, on what keeps it', () => {
    expect(warningsOf(stacks.stateful)).toEqual([`${corsAnyOrigin} /ConversaStateful/Media`]);
    expect(warningsOf(stacks.stateless)).toEqual(
      [`${sesIdentity} /ConversaStateless`, `${corsAnyOrigin} /ConversaStateless/HttpApi`, `${alarmsWithoutActions} /ConversaStateless`].sort(),
    );
  });

  it('says which context key to set', () => {
    const messages = [stacks.stateful, stacks.stateless].flatMap((stack) => Annotations.fromStack(stack).findWarning('*', Match.anyValue()).map((m) => String(m.entry.data)));
    expect(messages.filter((m) => m.includes('Set context sesIdentity'))).toHaveLength(1);
    expect(messages.filter((m) => m.includes('Set context allowedOrigins'))).toHaveLength(2);
    expect(messages.filter((m) => m.includes('Set context alarmEmail'))).toHaveLength(1);
  });

  it('warns about nothing once each is set, and about each one left out', () => {
    const { stacks: set } = build(configured);
    expect([...warningsOf(set.stateful), ...warningsOf(set.stateless)]).toEqual([]);
    const { stacks: noAlarms } = build({ ...configured, alarmEmail: undefined });
    expect([...warningsOf(noAlarms.stateful), ...warningsOf(noAlarms.stateless)]).toEqual([`${alarmsWithoutActions} /ConversaStateless`]);
  });

  it('warns about the placeholder SES identity given explicitly, not about * given explicitly', () => {
    const { stacks: explicit } = build({ ...configured, sesIdentity: 'example.com', allowedOrigins: ['*'] });
    expect([...warningsOf(explicit.stateful), ...warningsOf(explicit.stateless)]).toEqual([`${sesIdentity} /ConversaStateless`]);
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('reports nothing unacknowledged on the stateful stack', () => {
    expect(nagFindings(stacks.stateful)).toEqual([]);
  });

  it('reports nothing unacknowledged on the stateless stack', () => {
    expect(nagFindings(stacks.stateless)).toEqual([]);
  });

  it('lets the whole app synthesize with the checks registered as a validation plugin, the placeholders warnings, not errors', () => {
    const { app: checked } = build();
    Validations.of(checked).addPlugins(new AwsSolutionsChecks(checked));
    const assembly = checked.synth();
    // Warnings fail `cdk deploy --strict` only; an error would fail every synth.
    const levels = new Set(assembly.stacks.flatMap((stack) => stack.messages.map((m) => m.level)));
    expect([...levels]).toEqual(['warning']);
  });

  it('does catch a violation (the checks above are live)', () => {
    const { stacks: broken } = build();
    new Queue(broken.stateless, 'PlainQueue');
    const findings = nagFindings(broken.stateless);
    expect(findings).toContain('error AwsSolutions-SQS3 ConversaStateless/PlainQueue/Resource');
    expect(findings).toContain('error AwsSolutions-SQS4 ConversaStateless/PlainQueue/Resource');
  });
});

describe('media files', () => {
  const bucket = (): [string, Json] => stateful.resources('AWS::S3::Bucket')[0] as [string, Json];
  /** Every S3 action a function's role may take, with the object prefix it is limited to. */
  const s3Grants = (name: FunctionName): string[] =>
    stateless
      .statementsOf(name)
      .filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')))
      .flatMap((s) => {
        const resources: unknown[] = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
        return actionsOf(s).flatMap((action) => resources.map((r) => `${action} ${JSON.stringify(r).match(/\/(uploads|inbound|media|media\/(?:provider|agent|visitor))\/\*/)?.[1] ?? 'bucket'}`));
      })
      .sort();

  it('keeps files in one private, TLS-only bucket of the stateful stack that outlives it', () => {
    stateful.template.resourceCountIs('AWS::S3::Bucket', 1);
    const [id, resource] = bucket();
    expect(resource.DeletionPolicy).toBe('Retain');
    expect(resource.Properties.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(resource.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    const policy = stateful.resources('AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === id)![1];
    expect(policy.Properties.PolicyDocument.Statement).toEqual(
      expect.arrayContaining([expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
    );
  });

  it('expires uploads no message named after a day, and lets pages upload from their origin', () => {
    const { LifecycleConfiguration, CorsConfiguration } = bucket()[1].Properties;
    expect(LifecycleConfiguration.Rules).toEqual(expect.arrayContaining([expect.objectContaining({ Prefix: 'uploads/', ExpirationInDays: 1, Status: 'Enabled' })]));
    // Sent files are kept: no rule expires a current file outside uploads/.
    const expiring = (LifecycleConfiguration.Rules as Json[]).filter((rule) => rule.ExpirationInDays !== undefined || rule.ExpirationDate !== undefined);
    expect(expiring.map((rule) => rule.Prefix)).toEqual(['uploads/']);
    // Uploads from the chatting pages; reads from anywhere, since a redirected fetch sends `Origin: null`.
    expect(CorsConfiguration.CorsRules).toEqual([
      expect.objectContaining({ AllowedMethods: ['PUT'], AllowedOrigins: ['*'] }),
      expect.objectContaining({ AllowedMethods: ['GET', 'HEAD'], AllowedOrigins: ['*'] }),
    ]);
  });

  it('keeps a replaced or deleted sent file 30 days as an earlier version, an unsent upload a day, and clears the delete markers left', () => {
    const { VersioningConfiguration, LifecycleConfiguration } = bucket()[1].Properties;
    expect(VersioningConfiguration).toEqual({ Status: 'Enabled' });
    const rules = (LifecycleConfiguration.Rules as Json[]).filter((rule) => rule.Status === 'Enabled');
    const noncurrentDays = (prefix: string | undefined) =>
      rules.filter((rule) => rule.Prefix === prefix && rule.NoncurrentVersionExpiration).map((rule) => rule.NoncurrentVersionExpiration.NoncurrentDays);
    expect(noncurrentDays('media/')).toEqual([30]);
    // An expired upload becomes an earlier version itself: it must not stay a month.
    expect(noncurrentDays('uploads/')).toEqual([1]);
    // Every write goes under one of the two (the grants), so no earlier version is kept for ever.
    expect(rules.filter((rule) => rule.NoncurrentVersionExpiration).map((rule) => rule.Prefix).sort()).toEqual(['media/', 'uploads/']);
    expect(rules).toContainEqual(expect.objectContaining({ ExpiredObjectDeleteMarker: true }));
    expect(rules.find((rule) => rule.ExpiredObjectDeleteMarker)!.Prefix).toBeUndefined();
  });

  it('gives each function only the file access its code uses, and the bucket name with it', () => {
    const grants = Object.fromEntries((Object.keys(FUNCTIONS) as FunctionName[]).map((name) => [name, s3Grants(name)]));
    expect(grants).toEqual({
      webhook: [],
      widget: ['s3:GetObject media', 's3:PutObject uploads'],
      // Senders copy into their own prefixes: customers' files (media/provider) are the copy job's alone.
      api: ['s3:GetObject media', 's3:GetObject uploads', 's3:ListBucket bucket', 's3:PutObject media/agent', 's3:PutObject media/visitor', 's3:PutObject uploads'],
      realtime: ['s3:GetObject media', 's3:GetObject uploads', 's3:ListBucket bucket', 's3:PutObject media/agent', 's3:PutObject media/visitor'],
      wsAuthorizer: [],
      inbound: [],
      // Erasing a customer deletes every version of their files by key (src/domain/erasure.ts).
      outbound: ['s3:DeleteObjectVersion media', 's3:DeleteObjectVersion uploads', 's3:GetObject media', 's3:ListBucketVersions bucket', 's3:PutObject media/provider'],
      // An email reply's files, and the stored email itself (the inbound mail bucket's inbound/).
      engagement: ['s3:DeleteObject inbound', 's3:GetObject inbound', 's3:PutObject media/provider'],
    });
    // Listing versions only where files are, by a key as the prefix.
    const listing = stateless.statementsOf('outbound').find((s) => actionsOf(s).includes('s3:ListBucketVersions'))!;
    expect(listing.Condition).toEqual({ StringLike: { 's3:prefix': ['media/*', 'uploads/*'] } });
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      const env = stateless.fn(name).Properties.Environment.Variables as Json;
      expect([name, env[ENV.mediaBucket] !== undefined]).toEqual([name, grants[name]!.length > 0]);
    }
  });
});
