import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption, type RedriveAllowPolicy } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Properties of {@link AlarmedDeadLetterQueue}. */
export interface AlarmedDeadLetterQueueProps {
  /**
   * FIFO queue. A FIFO source queue needs a FIFO dead-letter queue; EventBridge Scheduler
   * only delivers to standard ones.
   * @default false
   */
  readonly fifo?: boolean;
  /**
   * How long failed messages wait for someone to look at them or redrive them.
   * @default Duration.days(14) (the SQS maximum)
   */
  readonly retentionPeriod?: Duration;
  /**
   * Topic notified when the alarm fires (and when it clears, with `notifyOnOk`).
   * @default - the alarm has no actions; it still shows in the CloudWatch console
   */
  readonly alarmTopic?: ITopic;
  /**
   * Notify `alarmTopic` when the queue is empty again too. Unlike a count alarm, this one does not
   * clear by itself (messages wait up to `retentionPeriod`): it clears once someone redrove or
   * purged the queue, which is news for whoever else was paged.
   * @default true
   */
  readonly notifyOnOk?: boolean;
  /**
   * Which source queues may name this queue as their dead-letter queue.
   * @default - any queue of the account (SQS's default)
   */
  readonly redriveAllowPolicy?: RedriveAllowPolicy;
  /**
   * What the alarm description calls the messages that failed, for whoever is paged.
   * @default 'messages'
   */
  readonly subject?: string;
}

/**
 * A dead-letter queue (SSE, TLS only) with an alarm as soon as one message lands in it:
 * every message there is a customer message or a timer that did not happen.
 */
export class AlarmedDeadLetterQueue extends Construct {
  public readonly queue: Queue;
  public readonly alarm: Alarm;

  constructor(scope: Construct, id: string, props: AlarmedDeadLetterQueueProps = {}) {
    super(scope, id);

    this.queue = new Queue(this, 'Queue', {
      ...(props.fifo ? { fifo: true } : {}),
      retentionPeriod: props.retentionPeriod ?? Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      ...(props.redriveAllowPolicy ? { redriveAllowPolicy: props.redriveAllowPolicy } : {}),
    });

    this.alarm = new Alarm(this, 'NotEmpty', {
      alarmDescription: `${props.subject ?? 'messages'} failed and wait in a dead-letter queue`,
      metric: this.queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      // SQS stops reporting metrics for idle queues; an empty dead-letter queue is the healthy state.
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) {
      const action = new SnsAction(props.alarmTopic);
      this.alarm.addAlarmAction(action);
      if (props.notifyOnOk ?? true) this.alarm.addOkAction(action);
    }
  }
}
