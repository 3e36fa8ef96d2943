/** Outbound queue consumer: delivers stored agent replies to visitors and provider APIs. */
import type { SQSEvent, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { SqsFifoPartialProcessorAsync, processPartialResponse } from '@aws-lambda-powertools/batch';
import { deliverOutbound } from '../../src/domain/outbound';
import type { OutboundJob } from '../../src/domain/types';
import { QUEUES } from '../../src/manifest';

const processor = new SqsFifoPartialProcessorAsync();

async function record(record: SQSRecord): Promise<void> {
  const job = JSON.parse(record.body) as OutboundJob;
  const lastAttempt = Number(record.attributes.ApproximateReceiveCount) >= QUEUES.outbound.maxReceiveCount;
  await deliverOutbound(job, lastAttempt);
}

export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> =>
  processPartialResponse(event, record, processor, { skipGroupOnError: true, throwOnFullBatchFailure: false });
