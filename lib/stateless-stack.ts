import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { IUserPool, IUserPoolClient } from 'aws-cdk-lib/aws-cognito';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { ENV, TIMER_MAX_SECONDS, UPLOADS_PER_HOUR_DEFAULT, VISITOR_ADDRESS_SENDS_DEFAULT } from '../src/config';
import { INBOX_INDEX, TABLE } from '../src/store/table';
import {
  FUNCTIONS,
  type FunctionName,
  HTTP_FALLBACK_FN,
  HTTP_ROUTES,
  QUEUES,
  type QueueName,
  RECURRING,
  type RouteThrottle,
  visibilityTimeoutSeconds,
  WS_AUTHORIZER,
  WS_FUNCTION,
  WS_ROUTE_THROTTLES,
  WS_TOKEN_QUERY_PARAM,
} from '../src/manifest';
import { BufferedQueue } from './constructs/buffered-queue';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ChannelSecrets } from './constructs/channel-secrets';
import { grantMediaAccess, type MediaAccess } from './constructs/media-bucket';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { ConversaFunction } from './constructs/conversa-function';
import { EngagementSchedules } from './constructs/engagement-schedules';
import { ConversaHttpApi } from './constructs/http-api';
import { ConversaRealtimeApi } from './constructs/realtime-api';
import { grantTableAccess, queriesIndexes, type TableAccess } from './constructs/table-access';
import { InboundMail } from './constructs/inbound-mail';
import { OperationalAlarms } from './constructs/operational-alarms';
import { OperationsDashboard } from './constructs/operations-dashboard';
import { warnPlaceholder } from './placeholder-warnings';

/** Timer defaults of CONTRACT.md section 2. */
export const DEFAULT_TIMERS = {
  emailFallbackDelaySeconds: 120,
  reengageAfterSeconds: 86_400,
  autoResolveAfterSeconds: 172_800,
} as const;

/** Placeholder SES identity: deploys, but sends nothing until a verified identity replaces it. */
export const DEFAULT_SES_IDENTITY = 'example.com';

/** Properties of {@link StatelessStack}. */
export interface StatelessStackProps extends StackProps {
  /** The single table (from the stateful stack). */
  readonly table: ITable;
  /**
   * The table's global secondary indexes (the stateful stack's ConversaTable.indexNames): the
   * functions may query each, the throttle alarms and the dashboard watch each.
   * @default every index of src/store/table.ts
   */
  readonly tableIndexNames?: readonly string[];
  /**
   * The index the inbox list queries (`CONVERSA_INBOX_INDEX`, ConversaTable.inboxIndexName), one of `tableIndexNames`.
   * @default 'gsi1'
   */
  readonly inboxIndexName?: string;
  /** The channels' credential secrets (from the stateful stack). */
  readonly channelSecrets: ChannelSecrets;
  /** ARN of the bucket of files agents and visitors send (the stateful stack's MediaBucket.exportedArn). */
  readonly mediaBucketArn: string;
  /** HMAC key of the email reply-to addresses (from the stateful stack). */
  readonly replyAddressKey: ISecret;
  /** HMAC key of web visitors' identity hashes, read by the widget function (from the stateful stack). */
  readonly widgetIdentityKey: ISecret;
  /** The agents' user pool; its tokens authorize agent routes and WebSocket connections. */
  readonly userPool: IUserPool;
  /** The agent console's app client; its id is the JWT audience. */
  readonly userPoolClient: IUserPoolClient;
  /** Absolute path of the repository root, where the handlers and package-lock.json are. */
  readonly projectRoot: string;
  /**
   * SES identity (verified domain or address) that mail is sent from; `ses:SendEmail` is
   * limited to it.
   * @default 'example.com' (a placeholder: set context `sesIdentity` to a verified identity)
   */
  readonly sesIdentity?: string;
  /**
   * Sender of fallback, re-engagement and CSAT mail (`MAIL_FROM`), `address` or
   * `Name <address>`: an address at `sesIdentity` (or one of its subdomains) when that is a
   * domain, or that very address.
   * @default `conversa@<sesIdentity>`, or `sesIdentity` when it is an address
   */
  readonly mailFrom?: string;
  /**
   * Domain of the per-conversation reply addresses (`MAIL_REPLY_DOMAIN`); SES receiving for it
   * publishes to the `InboundMailTopicArn` output.
   * @default `reply.<sesIdentity>`
   */
  readonly mailReplyDomain?: string;
  /**
   * The account's active SES receipt rule set: the stack adds the rule that publishes mail for
   * `mailReplyDomain` to the inbound mail topic.
   * @default - none: add the rule yourself (README, Deploy)
   */
  readonly mailReceiptRuleSet?: string;
  /**
   * Browser origins allowed to call the HTTP API, each `scheme://host[:port]` as browsers send
   * it, or `['*']`.
   * @default ['*'] (see ConversaHttpApiProps.allowedOrigins)
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Public base URL that providers call (`CONVERSA_PUBLIC_URL`), e.g. a custom domain in front
   * of the HTTP API: an https URL with no path, query or fragment (a trailing slash is dropped).
   * Twilio signs the exact URL it calls, so it must be what Twilio is configured with.
   * @default the HTTP API's execute-api URL
   */
  readonly publicUrl?: string;
  /**
   * The web page visitors chat on (the website with the widget, `CONVERSA_WIDGET_URL`): email
   * fallbacks link to it with `?conversation=<id>`. An http(s) URL.
   * @default - no link: the emails ask the visitor to reply by email
   */
  readonly widgetUrl?: string;
  /**
   * HTTP API stage throttling, requests per second.
   * @default 500
   */
  readonly httpRateLimit?: number;
  /**
   * HTTP API stage throttling, burst.
   * @default 1000
   */
  readonly httpBurstLimit?: number;
  /**
   * WebSocket stage throttling, messages per second.
   * @default 500
   */
  readonly webSocketRateLimit?: number;
  /**
   * WebSocket stage throttling, burst.
   * @default 1000
   */
  readonly webSocketBurstLimit?: number;
  /**
   * Limits of the routes anyone may call without a signature or token, by route key
   * (`POST /v1/widget/sessions`, `$connect`, …: those with a `throttle` in src/manifest.ts), in
   * place of the manifest's. Every visitor of every site with the widget shares them, so a busy
   * site raises them; any other route key is refused.
   * @default the manifest's (README, Throttling)
   */
  readonly publicRouteThrottles?: Readonly<Record<string, RouteThrottle>>;
  /**
   * WebSocket access logs; needs the account's API Gateway CloudWatch role.
   * @default false
   */
  readonly webSocketAccessLogging?: boolean;
  /**
   * `CONVERSA_EMAIL_FALLBACK_DELAY_SECONDS`: whole seconds, 1 to 7 days (the settings' bounds).
   * @default 120
   */
  readonly emailFallbackDelaySeconds?: number;
  /**
   * `CONVERSA_REENGAGE_AFTER_SECONDS`: whole seconds, 1 to 30 days (the settings' bounds).
   * @default 86400
   */
  readonly reengageAfterSeconds?: number;
  /**
   * `CONVERSA_AUTO_RESOLVE_AFTER_SECONDS`: whole seconds, 1 to 90 days (the settings' bounds).
   * @default 172800
   */
  readonly autoResolveAfterSeconds?: number;
  /**
   * Web visitors' messages one network address may send in 10 s, all its sessions together
   * (`CONVERSA_VISITOR_ADDRESS_SENDS`); each visitor may send 20.
   * @default 100
   */
  readonly visitorAddressSends?: number;
  /**
   * Upload tickets one web visitor may take per UTC hour (`CONVERSA_VISITOR_UPLOADS_PER_HOUR`):
   * each upload is kept a day, so this bounds what one visitor token can put in the bucket.
   * @default 60
   */
  readonly visitorUploadsPerHour?: number;
  /**
   * Upload tickets one agent may take per UTC hour (`CONVERSA_AGENT_UPLOADS_PER_HOUR`).
   * @default 600
   */
  readonly agentUploadsPerHour?: number;
  /**
   * Concurrency reserved for the engagement function (the timers' target), also its ceiling: a
   * burst of schedules firing together (business hours opening in one time zone) waits in Lambda's
   * asynchronous queue, retried for up to 6 hours and then dead-lettered, instead of taking the
   * account's concurrency from the webhook, API and queue consumers. `'none'` reserves nothing
   * (an account whose concurrency quota leaves no room: Lambda keeps 100 unreserved). 20 suits
   * an account with the default quota of 1,000.
   * @default 'none' - a new account's quota may be as low as 10, where any reservation fails the deploy
   */
  readonly engagementConcurrency?: number | 'none';
  /**
   * Powertools log level of every function.
   * @default 'INFO'
   */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * Stack traces mapped to the TypeScript sources at run time (ConversaFunction `sourceMaps`).
   * @default true
   */
  readonly sourceMaps?: boolean;
  /**
   * Retention of the functions' and the HTTP API's log groups.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Topic notified by every alarm (dead-letter queues and {@link OperationalAlarms}). Its policy
   * must let `cloudwatch.amazonaws.com` publish, and when it is encrypted, its customer-managed
   * key must let CloudWatch `kms:Decrypt` and `kms:GenerateDataKey*` (the topic created for
   * `alarmEmail` does both; a topic under `alias/aws/sns` cannot take alarm actions).
   * @default - a topic, encrypted with a key of its own, is created when `alarmEmail` is set;
   * otherwise alarms have no action
   */
  readonly alarmTopic?: ITopic;
  /**
   * Address subscribed to a new alarm topic (ignored when `alarmTopic` is given).
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * The CloudWatch dashboard of this deployment ({@link OperationsDashboard}): alarm states,
   * queues, functions, both APIs and the table. $3 a month: it shows over 50 metrics, more than
   * the free tier's three dashboards may.
   * @default true
   */
  readonly dashboard?: boolean;
}


/** Functions that create, replace or cancel timers (the outbound one also a customer file copy's next round). */
const SCHEDULING_FUNCTIONS: readonly FunctionName[] = ['inbound', 'outbound', 'api', 'engagement', 'realtime'];
/** Producers of each queue. */
const QUEUE_PRODUCERS: Readonly<Record<QueueName, readonly FunctionName[]>> = {
  inbound: ['webhook', 'realtime', 'engagement'],
  // The outbound consumer puts a campaign job skipped behind failing sends back at the end of its
  // lane; the engagement function queues what its timers send, and a file copy's next round.
  outbound: ['api', 'realtime', 'inbound', 'engagement', 'outbound'],
};
/**
 * Concurrent invocations each queue's event source may run (SQS `ScalingConfig`): a burst of
 * queued work cannot take the account's whole Lambda concurrency from the API functions, nor
 * flood the table and the providers. FIFO message groups bound it further.
 */
export const QUEUE_MAX_CONCURRENCY: Readonly<Record<QueueName, number>> = { inbound: 50, outbound: 50 };
/** Table access, no more than each function's code does; the webhook (it only queues) none. */
const TABLE_ACCESS: Readonly<Partial<Record<FunctionName, TableAccess>>> = {
  widget: 'visitorSessions',
  api: 'readWrite',
  realtime: 'readWrite',
  wsAuthorizer: 'itemLookup',
  inbound: 'readWrite',
  outbound: 'readWrite',
  engagement: 'readWrite',
};
/** The only functions that see provider credentials (the API opens attachments kept at the provider). */
const SECRET_READERS: readonly FunctionName[] = ['webhook', 'outbound', 'api'];
/** The functions that post to WebSocket connections. */
const CONNECTION_POSTERS: readonly FunctionName[] = ['api', 'realtime', 'inbound', 'outbound', 'engagement'];
/** The only functions that send mail. */
const MAIL_SENDERS: readonly FunctionName[] = ['engagement'];
/** What each function does with the media bucket (lib/constructs/media-bucket.ts). */
const MEDIA_ACCESS: Readonly<Partial<Record<FunctionName, readonly MediaAccess[]>>> = {
  api: ['upload', 'attach', 'download'],
  widget: ['upload', 'download'],
  realtime: ['attach'],
  outbound: ['download', 'keep', 'erase'],
  // The files of a customer's email reply (src/domain/email.ts).
  engagement: ['keep'],
};

/**
 * Everything that can be destroyed and redeployed without losing data: the HTTP and
 * WebSocket APIs, the queues, the functions, the timer plumbing and the grants on the secrets.
 * Table, user pool and secrets come in as props from the stateful stack.
 */
export class StatelessStack extends Stack {
  public readonly functions: Readonly<Record<FunctionName, ConversaFunction>>;
  public readonly queues: Readonly<Record<QueueName, BufferedQueue>>;
  public readonly schedules: EngagementSchedules;
  public readonly channelSecrets: ChannelSecrets;
  public readonly httpApi: ConversaHttpApi;
  public readonly realtimeApi: ConversaRealtimeApi;
  /** Reply-address key and the SNS topic for SES receiving. */
  public readonly inboundMail: InboundMail;
  public readonly alarmTopic?: ITopic;
  /** Alarms on HTTP 5xx, WebSocket errors, throttles, consumer errors, queue age and table throttling. */
  public readonly operationalAlarms: OperationalAlarms;
  /** The operations dashboard, unless `dashboard` is false. */
  public readonly dashboard?: OperationsDashboard;
  /** ARN of the SES identity mail is sent from. */
  public readonly sesIdentityArn: string;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, { description: 'Conversa APIs, queues, functions and timers', ...props });
    refuseInvalidProps(props);

    const alarmTopic = props.alarmTopic ?? (props.alarmEmail ? this.createAlarmTopic(props.alarmEmail) : undefined);
    if (alarmTopic) this.alarmTopic = alarmTopic;
    const alarmProps = alarmTopic ? { alarmTopic } : {};

    this.queues = {
      inbound: this.createQueue('inbound', alarmProps),
      outbound: this.createQueue('outbound', alarmProps),
    };
    this.schedules = new EngagementSchedules(this, 'Timers', alarmProps);
    this.channelSecrets = props.channelSecrets;

    const sesIdentity = props.sesIdentity ?? DEFAULT_SES_IDENTITY;
    if (sesIdentity === DEFAULT_SES_IDENTITY) {
      warnPlaceholder(
        this,
        'sesIdentity',
        `sesIdentity is the placeholder ${DEFAULT_SES_IDENTITY}: SES sends from verified identities only, so every email (fallback, follow-up, CSAT) fails. Set context sesIdentity to your verified SES domain or address.`,
      );
    }
    this.sesIdentityArn = this.formatArn({ service: 'ses', resource: 'identity', resourceName: sesIdentity });
    // A verified address is an identity too: mail then goes from it, replies to its domain.
    const sesDomain = sesIdentity.includes('@') ? sesIdentity.slice(sesIdentity.lastIndexOf('@') + 1) : sesIdentity;
    const mailReplyDomain = props.mailReplyDomain ?? `reply.${sesDomain}`;
    const jwtIssuer = `https://cognito-idp.${this.region}.${this.urlSuffix}/${props.userPool.userPoolId}`;
    const timers = { ...DEFAULT_TIMERS, ...definedOnly({
      emailFallbackDelaySeconds: props.emailFallbackDelaySeconds,
      reengageAfterSeconds: props.reengageAfterSeconds,
      autoResolveAfterSeconds: props.autoResolveAfterSeconds,
    }) };

    const tableIndexNames = props.tableIndexNames ?? TABLE.indexes.map((index) => index.name);
    const inboxIndexName = props.inboxIndexName ?? INBOX_INDEX;

    const shared: Record<string, string> = {
      [ENV.tableName]: props.table.tableName,
      [ENV.inboundQueueUrl]: this.queues.inbound.queue.queueUrl,
      [ENV.outboundQueueUrl]: this.queues.outbound.queue.queueUrl,
      [ENV.jwtIssuer]: jwtIssuer,
      [ENV.jwtJwksUri]: `${jwtIssuer}/.well-known/jwks.json`,
      [ENV.jwtAudience]: props.userPoolClient.userPoolClientId,
      [ENV.scheduleGroup]: this.schedules.groupName,
      [ENV.schedulerRoleArn]: this.schedules.role.roleArn,
      [ENV.schedulerDlqArn]: this.schedules.deadLetterQueue.queue.queueArn,
      [ENV.mailFrom]: props.mailFrom ?? (sesIdentity.includes('@') ? sesIdentity : `conversa@${sesIdentity}`),
      [ENV.emailFallbackDelay]: String(timers.emailFallbackDelaySeconds),
      [ENV.reengageAfter]: String(timers.reengageAfterSeconds),
      [ENV.autoResolveAfter]: String(timers.autoResolveAfterSeconds),
      [ENV.visitorAddressSends]: String(props.visitorAddressSends ?? VISITOR_ADDRESS_SENDS_DEFAULT),
      [ENV.visitorUploadsPerHour]: String(props.visitorUploadsPerHour ?? UPLOADS_PER_HOUR_DEFAULT.visitor),
      [ENV.agentUploadsPerHour]: String(props.agentUploadsPerHour ?? UPLOADS_PER_HOUR_DEFAULT.agent),
      [ENV.mailReplyDomain]: mailReplyDomain,
    };

    const mediaBucket = Bucket.fromBucketArn(this, 'MediaBucket', props.mediaBucketArn);
    const functions = {} as Record<FunctionName, ConversaFunction>;
    const engagementConcurrency = props.engagementConcurrency ?? 'none';
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      functions[name] = new ConversaFunction(this, functionId(name), {
        spec: FUNCTIONS[name],
        projectRoot: props.projectRoot,
        environment: { ...shared, ...(SECRET_READERS.includes(name) ? this.channelSecrets.environment() : {}) },
        ...(props.logLevel ? { logLevel: props.logLevel } : {}),
        ...(props.sourceMaps === false ? { sourceMaps: false } : {}),
        ...(props.logRetention ? { logRetention: props.logRetention } : {}),
        ...(name === 'engagement' && engagementConcurrency !== 'none' ? { reservedConcurrency: engagementConcurrency } : {}),
      });
    }
    this.functions = functions;
    const all = Object.entries(functions) as [FunctionName, ConversaFunction][];

    const publicThrottles = props.publicRouteThrottles ?? {};
    this.httpApi = new ConversaHttpApi(this, 'HttpApi', {
      routes: HTTP_ROUTES.map((spec) => {
        const throttle = publicThrottles[`${spec.method} ${spec.path}`];
        return throttle ? { ...spec, throttle } : spec;
      }),
      handlers: Object.fromEntries(all.map(([name, fn]) => [name, fn.function])),
      fallback: HTTP_FALLBACK_FN,
      jwtIssuer,
      jwtAudience: [props.userPoolClient.userPoolClientId],
      ...definedOnly({
        allowedOrigins: props.allowedOrigins,
        throttlingRateLimit: props.httpRateLimit,
        throttlingBurstLimit: props.httpBurstLimit,
        accessLogRetention: props.logRetention,
      }),
    });
    if (props.allowedOrigins === undefined) {
      warnPlaceholder(
        this.httpApi,
        'corsAnyOrigin',
        'allowedOrigins is not set: the HTTP API answers CORS for any origin (*). Set context allowedOrigins to the origins of the agent console and of the sites with the widget (or to * to keep any origin).',
      );
    }
    this.realtimeApi = new ConversaRealtimeApi(this, 'RealtimeApi', {
      handler: functions[WS_FUNCTION].function,
      authorizer: functions[WS_AUTHORIZER].function,
      tokenQueryParam: WS_TOKEN_QUERY_PARAM,
      routeThrottles: Object.fromEntries(Object.entries(WS_ROUTE_THROTTLES).map(([routeKey, throttle]) => [routeKey, publicThrottles[routeKey] ?? throttle])),
      ...definedOnly({
        throttlingRateLimit: props.webSocketRateLimit,
        throttlingBurstLimit: props.webSocketBurstLimit,
        accessLogging: props.webSocketAccessLogging,
        accessLogRetention: props.logRetention,
      }),
    });

    const engagement = functions.engagement.function;
    for (const [name, fn] of all) {
      // The APIs integrate the functions, so their URLs can only be added once both exist.
      fn.function.addEnvironment(ENV.wsCallbackUrl, this.realtimeApi.callbackUrl);
      fn.function.addEnvironment(ENV.wsPublicUrl, this.realtimeApi.url);
      fn.function.addEnvironment(ENV.publicUrl, props.publicUrl?.replace(/\/$/, '') ?? this.httpApi.url);
      // A function cannot name its own ARN in its environment (CloudFormation cycle): the
      // engagement function reads it from its invocation context (invokedFunctionArn) instead.
      if (name !== 'engagement') fn.function.addEnvironment(ENV.engagementFunctionArn, engagement.functionArn);

      const tableAccess = TABLE_ACCESS[name];
      if (tableAccess) grantTableAccess(props.table, fn.role, tableAccess, tableIndexNames);
      // Only off the default, so that a table that never migrated changes no function.
      if (tableAccess && queriesIndexes(tableAccess) && inboxIndexName !== INBOX_INDEX) fn.function.addEnvironment(ENV.inboxIndex, inboxIndexName);
      if (CONNECTION_POSTERS.includes(name)) this.realtimeApi.grantManageConnections(fn.role);
      if (SCHEDULING_FUNCTIONS.includes(name)) this.schedules.grantManageSchedules(fn.role);
      if (SECRET_READERS.includes(name)) this.channelSecrets.grantRead(fn.role);
      for (const access of MEDIA_ACCESS[name] ?? []) grantMediaAccess(mediaBucket, fn.role, access);
      if (MEDIA_ACCESS[name]) fn.function.addEnvironment(ENV.mediaBucket, mediaBucket.bucketName);
      if (MAIL_SENDERS.includes(name)) {
        fn.role.addToPrincipalPolicy(new PolicyStatement({ effect: Effect.ALLOW, actions: ['ses:SendEmail'], resources: [this.sesIdentityArn] }));
      }
    }
    for (const [queueName, queue] of Object.entries(this.queues) as [QueueName, BufferedQueue][]) {
      for (const producer of QUEUE_PRODUCERS[queueName]) queue.queue.grantSendMessages(functions[producer].role);
      const spec = QUEUES[queueName];
      queue.addConsumer(functions[spec.consumer].function, { batchSize: spec.batchSize, maxConcurrency: QUEUE_MAX_CONCURRENCY[queueName] });
    }
    // On a record's last receive the inbound consumer dead-letters it itself, so that the records
    // of its conversation skipped behind it are tried instead of dead-lettered with it.
    functions.inbound.function.addEnvironment(ENV.inboundDlqUrl, this.queues.inbound.deadLetterQueue.queue.queueUrl);
    this.queues.inbound.deadLetterQueue.queue.grantSendMessages(functions.inbound.role);
    this.schedules.allowTarget(engagement);
    // Scheduler and SNS invoke the engagement function asynchronously: their retry policies end
    // once Lambda has the event. A run that still fails after Lambda's own two retries (SES or
    // DynamoDB throttling) lands in the timers' alarmed dead-letter queue instead of vanishing.
    engagement.configureAsyncInvoke({ onFailure: new SqsDestination(this.schedules.deadLetterQueue.queue), retryAttempts: 2 });
    for (const [name, spec] of Object.entries(RECURRING)) {
      this.schedules.addRecurring(`${name.charAt(0).toUpperCase()}${name.slice(1)}`, {
        target: functions[spec.target].function,
        everyMinutes: spec.everyMinutes,
        input: spec.input,
        description: `Conversa ${name}`,
      });
    }

    this.inboundMail = new InboundMail(this, 'InboundMail', {
      receiver: engagement,
      replyAddressSecret: props.replyAddressKey,
      ...(props.mailReceiptRuleSet ? { receiptRuleSetName: props.mailReceiptRuleSet, replyDomain: mailReplyDomain } : {}),
    });
    this.inboundMail.grantConsumeRawMail(functions.engagement.role);
    for (const name of MAIL_SENDERS) {
      if (props.widgetUrl) functions[name].function.addEnvironment(ENV.widgetUrl, props.widgetUrl);
      functions[name].function.addEnvironment(ENV.replySecretArn, this.inboundMail.replyAddressSecret.secretArn);
      this.inboundMail.grantReadKey(functions[name].role);
    }
    // Only the widget function checks identity hashes (at session start).
    functions.widget.function.addEnvironment(ENV.widgetIdentitySecretArn, props.widgetIdentityKey.secretArn);
    props.widgetIdentityKey.grantRead(functions.widget.role);

    if (!alarmTopic) {
      warnPlaceholder(
        this,
        'alarmsWithoutActions',
        'alarmEmail is not set: no alarm (dead-letter queues, 5xx, throttles, errors, queue age, table throttling) notifies anyone. Set context alarmEmail, or pass an alarmTopic.',
      );
    }
    this.operationalAlarms = new OperationalAlarms(this, 'OperationalAlarms', {
      ...alarmProps,
      httpStage: this.httpApi.stage,
      httpFunctionLogs: functions.api.logGroup,
      webSocketStage: this.realtimeApi.stage,
      webSocketAuthorizer: functions[WS_AUTHORIZER].function,
      functions: Object.fromEntries(all.map(([name, fn]) => [name, fn.function])),
      consumers: Object.fromEntries(Object.values(QUEUES).map((spec) => [spec.consumer, functions[spec.consumer].function])),
      queues: Object.fromEntries(Object.entries(this.queues).map(([name, queue]) => [name, queue.queue])),
      table: props.table,
      tableIndexNames,
      // The outbound consumer backs a job refused by a provider off for up to 300 s per attempt
      // (longer when the provider asks): one rate-limited conversation keeps a job that old.
      maxMessageAgeByQueue: { outbound: Duration.minutes(15) },
    });
    const deadLetterQueues = {
      inbound: this.queues.inbound.deadLetterQueue,
      outbound: this.queues.outbound.deadLetterQueue,
      timers: this.schedules.deadLetterQueue,
    };
    if (props.dashboard ?? true) {
      this.dashboard = new OperationsDashboard(this, 'OperationsDashboard', {
        functions: Object.fromEntries(all.map(([name, fn]) => [name, fn.function])),
        queues: Object.fromEntries(Object.entries(this.queues).map(([name, queue]) => [name, queue.queue])),
        deadLetterQueues,
        httpStage: this.httpApi.stage,
        webSocketStage: this.realtimeApi.stage,
        table: props.table,
        tableIndexNames,
        alarms: [...Object.values(deadLetterQueues).map((dlq) => dlq.alarm), ...this.operationalAlarms.alarms],
      });
      // The commercial partition's console, where nearly every deployment is.
      new CfnOutput(this, 'OperationsDashboardUrl', {
        value: `https://console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${this.dashboard.dashboardName}`,
        description: 'CloudWatch dashboard of this deployment: alarms, queues, functions, APIs, table',
      });
    }

    new CfnOutput(this, 'HttpApiUrl', { value: this.httpApi.url, description: 'HTTP API base URL (webhooks, widget, agent API)' });
    new CfnOutput(this, 'WebSocketUrl', { value: this.realtimeApi.url, description: 'WebSocket URL for visitors and agents' });
    new CfnOutput(this, 'InboundMailTopicArn', {
      value: this.inboundMail.topic.topicArn,
      description: 'Notification topic of your SES receipt rule for the reply domain (S3 action into InboundMailBucketName, prefix inbound/)',
    });
    new CfnOutput(this, 'InboundMailBucketName', {
      value: this.inboundMail.bucket.bucketName,
      description: 'Bucket of your SES receipt rule\'s S3 action for the reply domain (prefix inbound/, notifying InboundMailTopicArn)',
    });
    // Where to look (and redrive from) when a dead-letter alarm fires.
    new CfnOutput(this, 'InboundDeadLetterQueueUrl', { value: this.queues.inbound.deadLetterQueue.queue.queueUrl, description: 'Customer messages the inbound consumer gave up on' });
    new CfnOutput(this, 'OutboundDeadLetterQueueUrl', { value: this.queues.outbound.deadLetterQueue.queue.queueUrl, description: 'Outbound jobs that failed every delivery' });
    new CfnOutput(this, 'TimersDeadLetterQueueUrl', { value: this.schedules.deadLetterQueue.queue.queueUrl, description: 'Timer runs (email fallback, re-engagement, auto-resolve) that failed' });
    new CfnOutput(this, 'UserPoolId', { value: props.userPool.userPoolId, description: 'Agents user pool id' });
    new CfnOutput(this, 'UserPoolClientId', { value: props.userPoolClient.userPoolClientId, description: 'Agent console app client id' });
  }

  private createQueue(name: QueueName, alarmProps: { alarmTopic?: ITopic }): BufferedQueue {
    const spec = QUEUES[name];
    return new BufferedQueue(this, `${pascal(name)}Queue`, {
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(name)),
      maxReceiveCount: spec.maxReceiveCount,
      ...alarmProps,
    });
  }

  private createAlarmTopic(email: string): Topic {
    // Encrypted at rest with a key of its own (about $1 a month): CloudWatch cannot publish to a
    // topic under SNS's AWS-managed key (alias/aws/sns), whose policy does not let it use the key.
    // The statement is the one AWS documents for alarm actions, held to this account's alarms as
    // the topic policy below is: CloudWatch acting for another account's alarm may not use the key
    // (confused deputy).
    const key = new Key(this, 'AlarmsKey', {
      description: 'Conversa alarm topic',
      enableKeyRotation: true,
      // SNS keeps no messages: nothing encrypted under it outlives the topic.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const ownAlarms = {
      StringEquals: { 'aws:SourceAccount': this.account },
      ArnLike: { 'aws:SourceArn': this.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
    };
    key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: ownAlarms,
      }),
    );
    const topic = new Topic(this, 'Alarms', { displayName: 'Conversa alarms', enforceSSL: true, masterKey: key });
    // enforceSSL writes a topic policy, and a topic policy replaces SNS's default one: without
    // this statement CloudWatch could not publish a single alarm. Only this account's alarms may.
    topic.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: ownAlarms,
      }),
    );
    topic.addSubscription(new EmailSubscription(email));
    return topic;
  }
}

/**
 * Throws on a prop that would deploy but not work, naming it as its context key is named, before
 * anything is built.
 */
function refuseInvalidProps(props: StatelessStackProps): void {
  // A route key that names no public route would throttle nothing, silently.
  const publicRoutes = new Set([...HTTP_ROUTES.filter((spec) => spec.throttle).map((spec) => `${spec.method} ${spec.path}`), ...Object.keys(WS_ROUTE_THROTTLES)]);
  for (const [routeKey, throttle] of Object.entries(props.publicRouteThrottles ?? {})) {
    if (!publicRoutes.has(routeKey)) throw new Error(`publicRouteThrottles: ${routeKey} is not a public route (one of ${[...publicRoutes].join(', ')})`);
    if (!(throttle.rateLimit > 0) || !Number.isInteger(throttle.burstLimit) || throttle.burstLimit < 1) {
      throw new Error(`publicRouteThrottles: ${routeKey} needs a rateLimit above 0 and a whole burstLimit of at least 1, got ${JSON.stringify(throttle)}`);
    }
  }
  if (props.widgetUrl !== undefined && !(URL.canParse(props.widgetUrl) && /^https?:$/.test(new URL(props.widgetUrl).protocol))) {
    throw new Error(`widgetUrl must be an http(s) URL, got ${props.widgetUrl}`);
  }
  // Webhook paths are appended to it and Twilio signs the whole URL it calls: a path, a query or
  // a plain-http URL here would make every signature check fail (each SMS webhook a 401).
  if (props.publicUrl !== undefined && !isBaseUrl(props.publicUrl)) {
    throw new Error(`publicUrl must be an https URL with no path, query or fragment (e.g. https://chat.acme.com), got ${props.publicUrl}`);
  }
  // Not an address, it fails the deploy late or is never confirmed, and every alarm goes unheard.
  if (props.alarmEmail !== undefined && !EMAIL_ADDRESS.test(props.alarmEmail)) {
    throw new Error(`alarmEmail must be an email address, got ${props.alarmEmail}`);
  }
  // Browsers send `Origin: scheme://host[:port]`, lowercase and without a default port, and CORS
  // compares it as a string: `https://console.acme.com/` or a path would never match.
  const origins = props.allowedOrigins ?? [];
  for (const origin of origins) {
    if (origin === '*' ? origins.length > 1 : !isOrigin(origin)) {
      throw new Error(`allowedOrigins must each be an origin as browsers send it, scheme://host[:port] (lowercase, no path, no trailing slash), or * alone, got ${origin}`);
    }
  }
  // IAM allows ses:SendEmail on the SES identity only: a sender it does not cover deploys, then
  // every fallback, follow-up and CSAT email fails and lands in the timers' dead-letter queue.
  if (props.mailFrom !== undefined) {
    const sesIdentity = (props.sesIdentity ?? DEFAULT_SES_IDENTITY).toLowerCase();
    const address = senderAddress(props.mailFrom)?.toLowerCase();
    if (address === undefined) throw new Error(`mailFrom must be an email address (or Name <address>), got ${props.mailFrom}`);
    // SES has no SMTPUTF8: a Unicode sender deploys, then every SendEmail is refused.
    if (!/^[\x20-\x7e]*$/.test(props.mailFrom)) {
      throw new Error(`mailFrom must be 7-bit ASCII (SES has no SMTPUTF8): write a Unicode name as an encoded-word (=?UTF-8?B?...?=) and a Unicode domain in Punycode, got ${props.mailFrom}`);
    }
    const domain = address.slice(address.lastIndexOf('@') + 1);
    // A verified domain covers its subdomains too (SES's verification inheritance): mail.acme.test sends under acme.test.
    const covered = sesIdentity.includes('@') ? address === sesIdentity : domain === sesIdentity || domain.endsWith(`.${sesIdentity}`);
    if (!covered) {
      throw new Error(
        `mailFrom ${props.mailFrom} is not covered by sesIdentity ${sesIdentity}, the only identity the functions may send from: ` +
          (sesIdentity.includes('@') ? `set mailFrom to ${sesIdentity} or leave it out` : `use an address @${sesIdentity} (or at one of its subdomains)`),
      );
    }
  }
  // An index the table does not have, or that the functions may not query.
  const indexNames = props.tableIndexNames ?? TABLE.indexes.map((index) => index.name);
  const inboxIndexName = props.inboxIndexName ?? INBOX_INDEX;
  if (!indexNames.includes(inboxIndexName)) {
    throw new Error(`inboxIndexName ${inboxIndexName} is not one of the table's indexes (tableIndexNames: ${indexNames.join(', ')}): the inbox list would fail on every call`);
  }
  // Lambda takes 0, and runs nothing: every timer would be throttled until it expired.
  const concurrency = props.engagementConcurrency;
  if (concurrency !== undefined && concurrency !== 'none' && !(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new Error(`engagementConcurrency must be a whole number of at least 1 or 'none', got ${concurrency}`);
  }
  // The functions would take a 0 or a fraction up to a whole second (defaultSettings), so that
  // `autoResolveAfterSeconds=0` would resolve every conversation a second after each message.
  for (const key of Object.keys(TIMER_MAX_SECONDS) as (keyof typeof TIMER_MAX_SECONDS)[]) {
    const value = props[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= TIMER_MAX_SECONDS[key])) {
      throw new Error(`${key} must be whole seconds from 1 to ${TIMER_MAX_SECONDS[key]}, got ${value}`);
    }
  }
  // The functions refuse to start on a count below 1 or a fraction (config): fail the synth instead.
  for (const key of ['visitorAddressSends', 'visitorUploadsPerHour', 'agentUploadsPerHour'] as const) {
    const value = props[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) throw new Error(`${key} must be a whole number of at least 1, got ${value}`);
  }
}

/** An address, as SES and SNS take one. */
const EMAIL_ADDRESS = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

/** The address of a sender, `address` or `Name <address>` as SES takes it; undefined when there is none. */
function senderAddress(from: string): string | undefined {
  const match = /^(?:[^<>]*<([^<>]+)>|([^<>]+))$/.exec(from);
  const address = match?.[1] ?? match?.[2];
  return address !== undefined && EMAIL_ADDRESS.test(address) ? address : undefined;
}

/** An http(s) origin exactly as a browser serializes it. */
function isOrigin(value: string): boolean {
  return URL.canParse(value) && /^https?:$/.test(new URL(value).protocol) && new URL(value).origin === value;
}

/** `https://host[:port]`, with or without a trailing slash. */
function isBaseUrl(value: string): boolean {
  if (!URL.canParse(value) || /[\s?#]/.test(value)) return false;
  const url = new URL(value);
  return url.protocol === 'https:' && url.pathname === '/' && url.username === '' && url.password === '';
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** Construct id of a manifest function, e.g. `WsAuthorizerFunction`. */
function functionId(name: FunctionName): string {
  return `${pascal(name)}Function`;
}

/** Drops undefined values, so that constructs apply their documented defaults. */
function definedOnly<T extends object>(values: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
