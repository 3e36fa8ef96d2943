/**
 * Outbound queue consumer: delivers stored agent replies to visitors and provider APIs.
 * A provider that says "later" (429, 5xx) gets the job back after an exponential backoff, set
 * on the visibility of the job and of the jobs of its conversation skipped behind it (a FIFO
 * group waits while any of its messages is in flight), up to MAX_SEND_ATTEMPTS attempts.
 */
import type { SQSEvent, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { processFifoGroups } from '../../src/aws/fifo-batch';
import { ChangeMessageVisibilityBatchCommand } from '@aws-sdk/client-sqs';
import { abandonOutbound, COPY_BUDGET_MS, deliverOutbound, RetryableSendError, SEND_BUDGET_MS } from '../../src/domain/outbound';
import type { OutboundJob } from '../../src/domain/types';
import { QUEUES } from '../../src/manifest';
import { sqs } from '../../src/aws/clients';
import { config } from '../../src/config';

// Read at load: a misconfigured value fails the cold start rather than every retry.
const BASE_SECONDS = config.retryBaseSeconds;
const MAX_BACKOFF_SECONDS = 300;
/** A provider's own wait is honoured up to an hour (SQS allows a visibility of 12 hours). */
const MAX_RETRY_AFTER_SECONDS = 3600;

/** Exponential, and never sooner than the provider asked (a flood wait may be longer than the cap). */
export function backoffSeconds(failures: number, retryAfterSeconds = 0): number {
  const exponential = Math.min(MAX_BACKOFF_SECONDS, Math.ceil(BASE_SECONDS * 2 ** Math.max(0, failures - 1)));
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(exponential, Math.ceil(retryAfterSeconds)));
}

const receiveCount = (r: SQSRecord) => Number(r.attributes.ApproximateReceiveCount);
const lastReceive = (r: SQSRecord) => receiveCount(r) >= QUEUES.outbound.maxReceiveCount;

/** The backoff a job's retryable failure asks for, by message id, for `settle`. */
const backoffs = new Map<string, number>();

async function deliver(record: SQSRecord, deadlines: { copy: number; send: number }): Promise<void> {
  const job = JSON.parse(record.body) as OutboundJob;
  try {
    await deliverOutbound(job, lastReceive(record), receiveCount(record) > 1, deadlines.copy, deadlines.send);
  } catch (error) {
    if (error instanceof RetryableSendError) backoffs.set(record.messageId, backoffSeconds(error.failures, error.retryAfterSeconds));
    throw error;
  }
}

/**
 * A group's failed jobs before they go back. Jobs skipped behind the failing one were received
 * without being tried, which SQS counts all the same: one about to go to the DLQ that way is
 * marked failed instead (the agent sees it and can send it again), never left queued for good.
 * The others wait out the failing job's backoff with it.
 */
async function settle(failed: SQSRecord[]): Promise<SQSRecord[]> {
  const [first, ...skipped] = failed;
  const backoff = backoffs.get(first!.messageId);
  backoffs.delete(first!.messageId);
  const abandoned = new Set<SQSRecord>();
  for (const record of skipped.filter(lastReceive)) {
    if (await abandonOutbound(JSON.parse(record.body) as OutboundJob, 'not sent: the provider kept refusing the messages before it')) abandoned.add(record);
  }
  const back = failed.filter((r) => !abandoned.has(r));
  if (backoff !== undefined) {
    await sqs().send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: config.outboundQueueUrl,
        Entries: back.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle, VisibilityTimeout: backoff })),
      }),
    );
  }
  return back;
}

/** Conversations side by side, each one's records in order (src/aws/fifo-batch.ts). */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  // Counted from the batch's start: copies (media jobs) stop in time for the replies beside them, and
  // a reply's long upload in time to record it.
  const start = Date.now();
  const deadlines = { copy: start + COPY_BUDGET_MS, send: start + SEND_BUDGET_MS };
  return processFifoGroups(event, (record) => deliver(record, deadlines), settle);
};
