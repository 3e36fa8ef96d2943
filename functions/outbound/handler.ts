/**
 * Outbound queue consumer: delivers stored agent replies to visitors and provider APIs.
 * A provider that says "later" (429, 5xx) gets the job back after an exponential backoff,
 * set on the message's visibility, within the queue's maxReceiveCount budget.
 */
import type { SQSEvent, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { processFifoGroups } from '../../src/aws/fifo-batch';
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { deliverOutbound, RetryableSendError } from '../../src/domain/outbound';
import type { OutboundJob } from '../../src/domain/types';
import { QUEUES } from '../../src/manifest';
import { sqs } from '../../src/aws/clients';
import { config } from '../../src/config';

const BASE_SECONDS = Number(process.env.CONVERSA_RETRY_BASE_SECONDS ?? 2);
const MAX_BACKOFF_SECONDS = 300;

export function backoffSeconds(receiveCount: number): number {
  return Math.min(MAX_BACKOFF_SECONDS, Math.ceil(BASE_SECONDS * 2 ** Math.max(0, receiveCount - 1)));
}

async function record(record: SQSRecord): Promise<void> {
  const job = JSON.parse(record.body) as OutboundJob;
  const receiveCount = Number(record.attributes.ApproximateReceiveCount);
  try {
    await deliverOutbound(job, receiveCount >= QUEUES.outbound.maxReceiveCount);
  } catch (error) {
    if (error instanceof RetryableSendError) {
      await sqs().send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: config.outboundQueueUrl,
          ReceiptHandle: record.receiptHandle,
          VisibilityTimeout: backoffSeconds(receiveCount),
        }),
      );
    }
    throw error;
  }
}

/** Conversations side by side, each one's records in order (src/aws/fifo-batch.ts). */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => processFifoGroups(event, record);
