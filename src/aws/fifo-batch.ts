/**
 * A FIFO queue batch with partial failures (Powertools), its message groups side by side: a
 * group's records stay in order and a failure fails the rest of that group, while one
 * conversation's slow record no longer holds up the other conversations of the batch.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { SqsFifoPartialProcessorAsync, processPartialResponse } from '@aws-lambda-powertools/batch';

/**
 * `settle` sees each group's failed records (the one that threw, then the ones skipped behind
 * it, in order) before they go back to the queue, and answers which still go back.
 */
export async function processFifoGroups(
  event: SQSEvent,
  handle: (record: SQSRecord) => Promise<void>,
  settle?: (failed: SQSRecord[]) => Promise<SQSRecord[]>,
): Promise<SQSBatchResponse> {
  const groups = new Map<string, SQSRecord[]>();
  for (const record of event.Records) {
    const group = record.attributes.MessageGroupId ?? '';
    const records = groups.get(group) ?? [];
    records.push(record);
    groups.set(group, records);
  }
  // A processor per group: it keeps its failures and skipped records in its own fields.
  const failures = await Promise.all(
    [...groups.values()].map(async (Records) => {
      const response = await processPartialResponse({ Records }, handle, new SqsFifoPartialProcessorAsync(), { skipGroupOnError: true, throwOnFullBatchFailure: false });
      const failedIds = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      const failed = Records.filter((r) => failedIds.has(r.messageId));
      return settle && failed.length > 0 ? settle(failed) : failed;
    }),
  );
  return { batchItemFailures: failures.flat().map((r) => ({ itemIdentifier: r.messageId })) };
}
