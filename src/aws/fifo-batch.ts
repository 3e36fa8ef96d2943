/**
 * A FIFO queue batch with partial failures (Powertools), its message groups side by side: a
 * group's records stay in order and a failure fails the rest of that group, while one
 * conversation's slow record no longer holds up the other conversations of the batch.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { SqsFifoPartialProcessorAsync, processPartialResponse } from '@aws-lambda-powertools/batch';

export async function processFifoGroups(event: SQSEvent, handle: (record: SQSRecord) => Promise<void>): Promise<SQSBatchResponse> {
  const groups = new Map<string, SQSRecord[]>();
  for (const record of event.Records) {
    const group = record.attributes.MessageGroupId ?? '';
    const records = groups.get(group) ?? [];
    records.push(record);
    groups.set(group, records);
  }
  // A processor per group: it keeps its failures and skipped records in its own fields.
  const responses = await Promise.all(
    [...groups.values()].map((Records) =>
      processPartialResponse({ Records }, handle, new SqsFifoPartialProcessorAsync(), { skipGroupOnError: true, throwOnFullBatchFailure: false }),
    ),
  );
  return { batchItemFailures: responses.flatMap((r) => r.batchItemFailures) };
}
