/** Sends to the FIFO queues. Group = the conversation key; dedup id = the event's own id. */
import { createHash } from 'node:crypto';
import { sendMessageBatch, SqsError, type BatchEntry } from './sqs-send';
import { config } from '../config';
import type { InboundEvent, OutboundJob } from '../domain/types';
import { ALL_BEFORE_WATERMARK } from '../channels/meta';

/** SQS allows 128 characters of a limited alphabet in group and dedup ids: long or odd ids are hashed. */
function sqsId(raw: string): string {
  return /^[\w!"#$%&'()*+,\-./:;<=>?@[\\\]^`{|}~]{1,128}$/.test(raw) ? raw : createHash('sha256').update(raw).digest('hex');
}

export function inboundGroupId(event: Pick<InboundEvent, 'channel' | 'handle'> & { otherHandle?: string | undefined }): string {
  // A customer named by two ids (a WhatsApp number and BSUID) has one conversation: their messages
  // take one lane, that of the id each of them carries (the BSUID), so that they never run at once.
  return sqsId(`${event.channel}#${event.otherHandle ?? event.handle}`);
}

export function inboundDedupId(event: InboundEvent): string {
  if (event.kind === 'status') {
    // A watermark names no message: its customer and its time tell one receipt from the next.
    const subject = event.providerMessageId === ALL_BEFORE_WATERMARK ? `${event.handle}#${ALL_BEFORE_WATERMARK}#${event.at}` : event.providerMessageId;
    return sqsId(`${event.channel}#status#${subject}#${event.status}`);
  }
  // Both of a Telegram upgrade's service messages name the same move: one is enough.
  if (event.kind === 'moved') return sqsId(`${event.channel}#moved#${event.from}#${event.handle}`);
  // A visitor repeating a clientMessageId wants its ack again: the store, not SQS, drops the copy.
  if (event.replyToConnectionId) return crypto.randomUUID();
  const id = event.providerMessageId ?? event.clientMessageId;
  // Without an id of its own an event cannot be recognised again: each send is new.
  if (!id) return sqsId(`${event.channel}#${crypto.randomUUID()}`);
  // A wamid is WhatsApp's alone, whichever id names the customer: a copy naming the BSUID where
  // the original named the number beside it shares its lane (inboundGroupId), and must share its
  // deduplication id too, as the consumer trusts SQS to drop a copy within its 5 minutes.
  if (event.channel === 'whatsapp' && event.providerMessageId) return sqsId(`whatsapp#${event.providerMessageId}`);
  return sqsId(`${event.channel}#${event.handle}#${id}`);
}

async function sendBatches(queueUrl: string, entries: BatchEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 10) {
    const out = await sendMessageBatch(queueUrl, entries.slice(i, i + 10));
    const [failed] = out.Failed;
    if (failed) {
      // The caller answers 5xx-free only once everything is durable: a partial failure must surface,
      // as SQS's trouble (503, retried by a provider) unless SQS blames the request.
      const message = `SQS refused ${out.Failed.length} of ${entries.length} events: ${failed.Message ?? failed.Code}`;
      throw new SqsError(failed.Code, message, failed.SenderFault ? 400 : 503);
    }
  }
}

export async function enqueueInbound(events: InboundEvent[]): Promise<void> {
  await sendBatches(
    config.inboundQueueUrl,
    events.map((event, i) => ({
      Id: String(i),
      MessageBody: JSON.stringify(event),
      MessageGroupId: inboundGroupId(event),
      MessageDeduplicationId: inboundDedupId(event),
    })),
  );
}

export async function enqueueOutbound(jobs: OutboundJob[]): Promise<void> {
  await sendBatches(
    config.outboundQueueUrl,
    jobs.map((job, i) => ({
      Id: String(i),
      MessageBody: JSON.stringify(job),
      // A copy job has a lane of its own: a large download must not hold the conversation's replies.
      MessageGroupId: sqsId(job.kind ? `${job.kind}#${job.conversationId}` : job.conversationId),
      // A copy's later round (its timer fired) is new work, not the first job sent again.
      MessageDeduplicationId: sqsId(job.kind ? `${job.kind}#${job.messageId}${job.round ? `#${job.round}` : ''}` : job.messageId),
    })),
  );
}
