/**
 * Inbound queue consumer. FIFO batches are processed in order per conversation; a failed
 * record fails the rest of its group (not other groups) so nothing overtakes it.
 */
import type { SQSEvent, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { processFifoGroups } from '../../src/aws/fifo-batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { ingestMessage, ingestStatus, UnprocessableEventError } from '../../src/domain/inbound';
import type { InboundEvent } from '../../src/domain/types';

const logger = new Logger({ serviceName: 'conversa' });

async function record(record: SQSRecord): Promise<void> {
  const event = JSON.parse(record.body) as InboundEvent;
  try {
    if (event.kind === 'status') await ingestStatus(event);
    else
      await ingestMessage(event, {
        messageGroupId: record.attributes.MessageGroupId,
        sequenceNumber: record.attributes.SequenceNumber,
        redelivered: Number(record.attributes.ApproximateReceiveCount) > 1,
      });
  } catch (error) {
    // Retrying cannot help an event that refers to nothing; keep it out of the DLQ alarm.
    if (error instanceof UnprocessableEventError) {
      logger.warn('dropped unprocessable inbound event', { reason: error.message, messageId: record.messageId });
      return;
    }
    throw error;
  }
}

/** Conversations side by side, each one's records in order (src/aws/fifo-batch.ts). */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => processFifoGroups(event, record);
