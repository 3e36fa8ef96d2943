/**
 * Inbound queue consumer. FIFO batches are processed in order per conversation; a failed
 * record fails the rest of its group (not other groups) so nothing overtakes it.
 */
import type { SQSEvent, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { processFifoGroups } from '../../src/aws/fifo-batch';
import { sendMessageBatch } from '../../src/aws/sqs-send';
import { Logger } from '@aws-lambda-powertools/logger';
import { sharedConnectionLookups } from '../../src/domain/fanout';
import type { ConnectionRecord } from '../../src/store/connections';
import { ingestMessage, ingestMove, ingestStatus, UnprocessableEventError } from '../../src/domain/inbound';
import type { InboundEvent } from '../../src/domain/types';
import { QUEUES } from '../../src/manifest';
import { config } from '../../src/config';

const logger = new Logger({ serviceName: 'conversa' });

async function ingest(record: SQSRecord, agentConnections: () => Promise<ConnectionRecord[]>): Promise<void> {
  const event = JSON.parse(record.body) as InboundEvent;
  const redelivered = Number(record.attributes.ApproximateReceiveCount) > 1;
  try {
    if (event.kind === 'status') await ingestStatus(event, { redelivered });
    else if (event.kind === 'moved') await ingestMove(event);
    else await ingestMessage(event, { messageGroupId: record.attributes.MessageGroupId, sequenceNumber: record.attributes.SequenceNumber, redelivered, agentConnections });
  } catch (error) {
    // Retrying cannot help an event that refers to nothing; keep it out of the DLQ alarm.
    if (error instanceof UnprocessableEventError) {
      logger.warn('dropped unprocessable inbound event', { reason: error.message, messageId: record.messageId });
      return;
    }
    throw error;
  }
}

/**
 * A record failing on its last receive goes to the DLQ from here rather than by the queue's
 * redrive: the records of its conversation skipped behind it were received as often, and the
 * redrive would take them along; this way they are tried next. The DLQ alarm fires all the same.
 */
async function record(record: SQSRecord, agentConnections: () => Promise<ConnectionRecord[]>): Promise<void> {
  try {
    await ingest(record, agentConnections);
  } catch (error) {
    if (Number(record.attributes.ApproximateReceiveCount) < QUEUES.inbound.maxReceiveCount) throw error;
    const out = await sendMessageBatch(config.inboundDlqUrl, [
      // The record's own id as dedup id: a retry of this send adds no copy. Should we die before
      // answering, the redrive adds its own (ingest applies a redriven copy once).
      { Id: '0', MessageBody: record.body, MessageGroupId: record.attributes.MessageGroupId ?? 'unknown', MessageDeduplicationId: record.messageId },
    ]);
    if (out.Failed.length > 0) throw error;
    logger.error('inbound event dead-lettered after its last receive', { messageId: record.messageId, error: error as Error });
  }
}

/** Conversations side by side, each one's records in order (src/aws/fifo-batch.ts), sharing their connection lookups. */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const agentConnections = sharedConnectionLookups();
  return processFifoGroups(event, (r) => record(r, agentConnections));
};
