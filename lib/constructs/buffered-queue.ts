import { Duration } from 'aws-cdk-lib';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AlarmedDeadLetterQueue } from './dead-letter-queue';

/** Fewer receives than this and a throttled Lambda consumer can dead-letter healthy messages. */
export const MIN_MAX_RECEIVE_COUNT = 5;
/** Lambda's guidance: visibility timeout at least six times the consumer's timeout. */
export const VISIBILITY_TO_TIMEOUT_RATIO = 6;
/** Concurrent invocations of a consumer's event source unless `maxConcurrency` says otherwise. */
export const DEFAULT_MAX_CONCURRENCY = 50;

/** Properties of {@link BufferedQueue}. */
export interface BufferedQueueProps {
  /**
   * How long a received message stays hidden. Must cover the consumer's retries of a batch:
   * {@link VISIBILITY_TO_TIMEOUT_RATIO} × the consumer's timeout (checked by `addConsumer`).
   */
  readonly visibilityTimeout: Duration;
  /**
   * Receives before a message moves to the dead-letter queue; at least {@link MIN_MAX_RECEIVE_COUNT}.
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * How long an unconsumed message is kept.
   * @default Duration.days(4) (the SQS default)
   */
  readonly retentionPeriod?: Duration;
  /**
   * Topic for the dead-letter queue's alarm.
   * @default - no alarm actions
   */
  readonly alarmTopic?: ITopic;
}

/** Options of {@link BufferedQueue.addConsumer}. */
export interface BufferedQueueConsumerOptions {
  /**
   * Messages per invocation.
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * Most concurrent invocations the event source runs for this queue (SQS `ScalingConfig`,
   * 2–1000): a backlog then drains at a bounded pace instead of taking the account's Lambda
   * concurrency from the API functions; messages beyond it wait in the queue, not throttled
   * and retried towards the dead-letter queue.
   * @default DEFAULT_MAX_CONCURRENCY (50)
   */
  readonly maxConcurrency?: number;
}

/**
 * A FIFO queue between a producer and a Lambda consumer: per-conversation ordering through
 * MessageGroupId, deduplication by the ids the senders supply (content-based deduplication
 * off, since two identical texts are two messages), SSE, TLS only, a FIFO dead-letter queue
 * with an alarm.
 */
export class BufferedQueue extends Construct {
  public readonly queue: Queue;
  public readonly deadLetterQueue: AlarmedDeadLetterQueue;
  public readonly maxReceiveCount: number;
  public readonly visibilityTimeout: Duration;

  constructor(scope: Construct, id: string, props: BufferedQueueProps) {
    super(scope, id);
    this.maxReceiveCount = props.maxReceiveCount ?? MIN_MAX_RECEIVE_COUNT;
    this.visibilityTimeout = props.visibilityTimeout;
    if (this.maxReceiveCount < MIN_MAX_RECEIVE_COUNT) {
      throw new Error(`${this.node.path}: maxReceiveCount must be at least ${MIN_MAX_RECEIVE_COUNT}, got ${this.maxReceiveCount}`);
    }

    this.deadLetterQueue = new AlarmedDeadLetterQueue(this, 'DeadLetter', {
      fifo: true,
      subject: `Messages of ${this.node.path}`,
      ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}),
    });

    this.queue = new Queue(this, 'Queue', {
      fifo: true,
      contentBasedDeduplication: false,
      // High-throughput FIFO: a plain FIFO queue takes about 300 calls/s, under what the HTTP stage
      // lets in. Producers' deduplication ids are unique within their message group already.
      deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      visibilityTimeout: props.visibilityTimeout,
      retentionPeriod: props.retentionPeriod ?? Duration.days(4),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue.queue, maxReceiveCount: this.maxReceiveCount },
    });
  }

  /**
   * Makes `consumer` process this queue in batches, at most `maxConcurrency` at a time,
   * reporting partial batch failures so that one bad message does not send its whole batch back.
   */
  public addConsumer(consumer: LambdaFunction, options: BufferedQueueConsumerOptions = {}): SqsEventSource {
    // Lambda's own default timeout when the function does not say.
    const timeout = consumer.timeout?.toSeconds() ?? 3;
    const visibility = this.visibilityTimeout.toSeconds();
    if (visibility < timeout * VISIBILITY_TO_TIMEOUT_RATIO) {
      throw new Error(
        `${this.node.path}: visibility timeout ${visibility}s is under ${VISIBILITY_TO_TIMEOUT_RATIO} × the consumer's ${timeout}s timeout`,
      );
    }
    const source = new SqsEventSource(this.queue, {
      batchSize: options.batchSize ?? 10,
      reportBatchItemFailures: true,
      maxConcurrency: options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
    });
    consumer.addEventSource(source);
    return source;
  }
}
