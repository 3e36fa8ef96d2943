import { Duration, Stack } from 'aws-cdk-lib';
import type { IHttpStage, IWebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, type IMetric, MathExpression, type Metric, type MetricOptions, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { FilterPattern, type ILogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { PROVIDER_UNAVAILABLE } from '../../src/manifest';
import { TABLE } from '../../src/store/table';

/** Period over which the count alarms (5xx, WebSocket errors, throttles, function errors) sum their metric. */
export const COUNT_ALARM_PERIOD = Duration.minutes(5);
/** How the count alarms read their metric; the dashboard graphs the same metrics the same way. */
export const COUNT_STATISTIC = { period: COUNT_ALARM_PERIOD, statistic: 'Sum' } as const;
/** Consecutive one-minute periods a queue's oldest message must stay too old before its alarm fires. */
export const QUEUE_AGE_EVALUATION_MINUTES = 3;
/** The table's global secondary indexes, as src/store/table.ts declares them. */
export const TABLE_INDEX_NAMES: readonly string[] = TABLE.indexes.map((index) => index.name);
/** A metric math alarm may read at most 10 metrics (a hard CloudWatch limit): the table and 9 indexes. */
const MAX_ALARM_METRICS = 10;

/** Age of a queue's oldest message, each minute's worst, as its alarm reads it. */
export function oldestMessageAge(queue: IQueue): Metric {
  return queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' });
}

/**
 * `metricName` (AWS/DynamoDB) of the table and of each of its indexes, keyed by an id usable in
 * metric math (`table`, `index_<name>`) and labelled by what they measure. CloudWatch publishes a
 * table's metric under `TableName` for the table alone and each index's under `TableName` and
 * `GlobalSecondaryIndexName`, so the indexes have to be named one by one.
 */
export function tableAndIndexMetrics(table: ITable, indexNames: readonly string[], metricName: string, options: MetricOptions = {}): Record<string, Metric> {
  const metrics: Record<string, Metric> = { table: table.metric(metricName, { label: 'table', ...options }) };
  for (const name of indexNames) {
    metrics[`index_${name.replace(/[^A-Za-z0-9_]/g, '_')}`] = table.metric(metricName, {
      label: name,
      ...options,
      dimensionsMap: { TableName: table.tableName, GlobalSecondaryIndexName: name },
    });
  }
  return metrics;
}

/**
 * Throttle events of the table and its indexes together, summed over {@link COUNT_ALARM_PERIOD}.
 * `ReadThrottleEvents`/`WriteThrottleEvents` rather than `ThrottledRequests`: they are published
 * for on-demand tables too (throttling there is a partition's limit, or a jump past twice the
 * previous peak), per index, and they count every throttled read or write of the table or of an
 * index, whereas `ThrottledRequests` exists per operation only and counts a batch write only when every
 * item in it was throttled. An index that throttles refuses the table's write with it (back
 * pressure), which the table's own `WriteThrottleEvents` does not count: hence every index.
 */
export function tableThrottleEvents(table: ITable, indexNames: readonly string[], kind: 'Read' | 'Write'): MathExpression {
  const metrics = tableAndIndexMetrics(table, indexNames, `${kind}ThrottleEvents`, COUNT_STATISTIC);
  if (Object.keys(metrics).length > MAX_ALARM_METRICS) {
    throw new Error(`a metric math alarm reads at most ${MAX_ALARM_METRICS} metrics: the table and ${MAX_ALARM_METRICS - 1} indexes, got ${indexNames.length} indexes`);
  }
  return new MathExpression({
    // SUM over the series: an index with no data point (nothing throttled) adds nothing.
    expression: `SUM([${Object.keys(metrics).join(', ')}])`,
    usingMetrics: metrics,
    label: `${kind} throttle events, table and indexes`,
    period: COUNT_ALARM_PERIOD,
  });
}

/** Properties of {@link OperationalAlarms}. */
export interface OperationalAlarmsProps {
  /**
   * Topic notified when an alarm fires (and when it clears, with `notifyOnOk`). Its policy must
   * let `cloudwatch.amazonaws.com` publish.
   * @default - the alarms have no actions; they still show in the CloudWatch console
   */
  readonly alarmTopic?: ITopic;
  /**
   * Notify `alarmTopic` when an alarm clears as well. These alarms clear by themselves once
   * traffic is healthy again, so one that flaps around its threshold would send two emails a
   * round; whoever was paged sees the current state in the CloudWatch console.
   * @default false
   */
  readonly notifyOnOk?: boolean;
  /**
   * The HTTP API's stage: an alarm on its `5xx` responses (AWS/ApiGateway, ApiId and Stage).
   * The handlers answer their own failures with 500/503, so Lambda `Errors` stay at zero there.
   */
  readonly httpStage: IHttpStage;
  /**
   * Log group of the HTTP function. Its answers that are a channel provider's outage (a 502
   * `provider_unavailable` when an agent opens a file the provider cannot serve) are counted
   * from its log lines and left out of the 5xx alarm: nothing of ours failed, and the provider's
   * outage shows where it matters, in the replies that wait for it (the outbound queue's age).
   * @default - every 5xx counts
   */
  readonly httpFunctionLogs?: ILogGroup;
  /**
   * The WebSocket API's stage: alarms on `IntegrationError` (the realtime function answered a
   * route with 4xx/5xx: it catches its failures and returns 500) and `ExecutionError` (the
   * function could not be invoked, crashed or timed out).
   */
  readonly webSocketStage: IWebSocketStage;
  /**
   * The WebSocket `$connect` authorizer: an alarm on its `Errors`. It refuses a bad or expired
   * token by throwing `Unauthorized` (API Gateway's 401), so refusals count as errors too, hence
   * its own, higher threshold (`authorizerErrorThreshold`).
   */
  readonly webSocketAuthorizer: IFunction;
  /** Every function, by name: an alarm on each one's `Throttles`. */
  readonly functions: Readonly<Record<string, IFunction>>;
  /**
   * The queue consumers, by name: an alarm on each one's `Errors` (a crash or a timeout that
   * sends a whole batch back; single records fail through partial batch responses instead).
   */
  readonly consumers: Readonly<Record<string, IFunction>>;
  /** The work queues, by name: an alarm on each one's `ApproximateAgeOfOldestMessage`. */
  readonly queues: Readonly<Record<string, IQueue>>;
  /**
   * The table: alarms on its `WriteThrottleEvents` and `ReadThrottleEvents`, the table's and
   * every index's (`tableIndexNames`) together. The inbox index takes every message's key move
   * on one partition key, the design's write ceiling (README, Single-table design).
   */
  readonly table: ITable;
  /**
   * Names of the table's global secondary indexes whose throttling counts with the table's; at
   * most 9 (a metric math alarm reads 10 metrics).
   * @default TABLE_INDEX_NAMES, every index of src/store/table.ts
   */
  readonly tableIndexNames?: readonly string[];
  /**
   * Sum over {@link COUNT_ALARM_PERIOD} at which the HTTP 5xx, WebSocket error, throttle and
   * consumer error alarms fire: a handful, not one stray failure that a retry already fixed.
   * @default 5
   */
  readonly countThreshold?: number;
  /**
   * `Errors` of the WebSocket authorizer over {@link COUNT_ALARM_PERIOD} at which its alarm
   * fires. Refused tokens count: a burst means a wave of bad tokens or a broken authorizer
   * (issuer keys unreachable, table errors, a wrong audience after a deploy).
   * @default 25
   */
  readonly authorizerErrorThreshold?: number;
  /**
   * Throttle events of the table and its indexes together (reads and writes alarmed apart) over
   * {@link COUNT_ALARM_PERIOD} at which their alarms fire. Higher than `countThreshold`: the SDK
   * tries a throttled call up to 4 times, so a few events cost some milliseconds and no message,
   * and one write counts an event on each index it touches; a few dozen mean a partition key sits
   * at its limit (about 1 000 write or 3 000 read units a second), before queued messages start failing.
   * @default 25
   */
  readonly tableThrottleThreshold?: number;
  /**
   * Age of a queue's oldest message above which, for {@link QUEUE_AGE_EVALUATION_MINUTES}
   * minutes in a row, its alarm fires: the consumer is stuck, throttled or behind, or a
   * conversation's messages wait behind one that keeps failing (FIFO). Well under the time a
   * failing message takes to reach the dead-letter queue (receives × visibility timeout).
   * @default Duration.minutes(5)
   */
  readonly maxMessageAge?: Duration;
  /**
   * `maxMessageAge` of particular queues, by the names of `queues`: for a queue whose consumer
   * itself holds messages back (backoff through the visibility timeout).
   * @default - `maxMessageAge` for every queue
   */
  readonly maxMessageAgeByQueue?: Readonly<Record<string, Duration>>;
}

/**
 * Alarms on the failures the dead-letter queues do not see: HTTP 5xx answers, failed WebSocket
 * routes and connections, throttled functions, crashing queue consumers, queues falling behind
 * and a throttled table. Every alarm notifies `alarmTopic` when it fires (and when it clears,
 * with `notifyOnOk`); missing data (no traffic) is healthy.
 */
export class OperationalAlarms extends Construct {
  /** Every alarm of this construct. */
  public readonly alarms: readonly Alarm[];
  private readonly action?: SnsAction;
  private readonly notifyOnOk: boolean;
  private readonly created: Alarm[] = [];

  constructor(scope: Construct, id: string, props: OperationalAlarmsProps) {
    super(scope, id);
    if (props.alarmTopic) this.action = new SnsAction(props.alarmTopic);
    this.notifyOnOk = props.notifyOnOk ?? false;
    const count = props.countThreshold ?? 5;
    const sum = COUNT_STATISTIC;

    this.add('HttpServerErrors', this.serverErrors(props, sum), count, 'HTTP API answered 5xx (handler failures, 503 while an AWS dependency throttles or fails, timeouts)');
    this.add('WebSocketIntegrationErrors', props.webSocketStage.metric('IntegrationError', sum), count, 'WebSocket routes the realtime function answered with an error');
    this.add('WebSocketExecutionErrors', props.webSocketStage.metric('ExecutionError', sum), count, 'WebSocket routes whose function could not be invoked, crashed or timed out');
    this.add(
      'WebSocketAuthorizerErrors',
      props.webSocketAuthorizer.metricErrors(sum),
      props.authorizerErrorThreshold ?? 25,
      'WebSocket connections refused or failed by the authorizer (refused tokens count too)',
    );
    for (const [name, fn] of Object.entries(props.functions)) {
      this.add(`${pascal(name)}Throttles`, fn.metricThrottles(sum), count, `Function ${name} throttled (account or function concurrency exhausted)`);
    }
    for (const [name, fn] of Object.entries(props.consumers)) {
      this.add(`${pascal(name)}ConsumerErrors`, fn.metricErrors(sum), count, `Queue consumer ${name} crashed or timed out; its batches go back to the queue`);
    }
    for (const [name, queue] of Object.entries(props.queues)) {
      const maxAge = props.maxMessageAgeByQueue?.[name] ?? props.maxMessageAge ?? Duration.minutes(5);
      this.add(
        `${pascal(name)}QueueAge`,
        oldestMessageAge(queue),
        maxAge.toSeconds(),
        `Oldest message of the ${name} queue waits over ${maxAge.toSeconds()} s: consumer stuck, throttled or behind`,
        { evaluationPeriods: QUEUE_AGE_EVALUATION_MINUTES, comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD },
      );
    }
    const indexNames = props.tableIndexNames ?? TABLE_INDEX_NAMES;
    const tableThrottles = props.tableThrottleThreshold ?? 25;
    this.add(
      'TableWriteThrottles',
      tableThrottleEvents(props.table, indexNames, 'Write'),
      tableThrottles,
      'DynamoDB throttled writes to the table or an index (the inbox index gsi1 takes every message on one partition key, about 1 000 writes/s): consumers retry, then messages arrive late or reach the DLQ',
    );
    this.add(
      'TableReadThrottles',
      tableThrottleEvents(props.table, indexNames, 'Read'),
      tableThrottles,
      'DynamoDB throttled reads of the table or an index (one partition key past about 3 000 read units/s): API answers 503, consumers retry',
    );
    this.alarms = this.created;
  }

  /**
   * The stage's 5xx, less the providers' outages when the function's log group is known. A
   * `conversation_busy` 503 (src/store/conversations.ts) stays in: it needs a conversation that
   * kept changing through 8 attempts, a writer in a loop or a broken version check, which no other
   * alarm sees, whereas a provider's outage shows in the outbound queue's age.
   */
  private serverErrors(props: OperationalAlarmsProps, sum: { period: Duration; statistic: string }): IMetric {
    const serverErrors = props.httpStage.metricServerError(sum);
    if (!props.httpFunctionLogs) return serverErrors;
    const filter = new MetricFilter(this, 'ProviderUnavailable', {
      logGroup: props.httpFunctionLogs,
      filterPattern: FilterPattern.stringValue('$.errorCode', '=', PROVIDER_UNAVAILABLE),
      // A namespace per stack: two deployments in one account count apart.
      metricNamespace: `Conversa/${Stack.of(this).stackName}`,
      metricName: 'ProviderUnavailable',
      metricValue: '1',
    });
    return new MathExpression({
      expression: 'serverErrors - FILL(providerUnavailable, 0)',
      usingMetrics: { serverErrors, providerUnavailable: filter.metric(sum) },
      label: 'HTTP 5xx not caused by a provider outage',
      period: sum.period,
    });
  }

  private add(
    id: string,
    metric: IMetric,
    threshold: number,
    description: string,
    options: { evaluationPeriods?: number; comparisonOperator?: ComparisonOperator } = {},
  ): void {
    const alarm = new Alarm(this, id, {
      alarmDescription: description,
      metric,
      threshold,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      comparisonOperator: options.comparisonOperator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // These metrics are only published while there is traffic; silence is the healthy state.
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    if (this.action) {
      alarm.addAlarmAction(this.action);
      if (this.notifyOnOk) alarm.addOkAction(this.action);
    }
    this.created.push(alarm);
  }
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
