/**
 * Which customer messages get a copy job (src/domain/provider-media.ts), and when a copy that
 * failed is tried again, decided without the S3 client: the inbound consumer and the engagement
 * function that ask never touch the bucket themselves.
 */
import { EXTERNAL_SENDER_ID, isProviderChannel, MEDIA_SCHEME, type Attachment, type Message, type OutboundJob } from './types';
import { getAdapter } from '../channels/registry';
import { baseUrl } from '../channels/credentials';
import type { ChannelAdapter } from '../channels/types';
import { enqueueOutbound } from '../aws/queues';
import { setTimer, type TimerInput } from './timers';

/**
 * Hours from a round of copy attempts that failed for the provider's (or S3's) trouble to the
 * next round. A round is the outbound queue's own attempts (about half an hour): waiting longer
 * there would make its age alarm fire for a copy, when it means a stuck reply lane. The last
 * round starts some 3½ days after the customer wrote: longer outages are rare, and by then
 * Meta's CDN links have expired anyway. After it the attachment keeps the provider's reference.
 */
export const COPY_RETRY_HOURS: readonly number[] = [1, 2, 4, 8, 16, 24, 24];

const KEPT_TYPES = new Set(['image', 'audio', 'video', 'file', 'sticker']);

/**
 * Whether the attachment is a provider's file worth a copy: places are not files, and a contact is
 * one only as a vCard the provider holds (Twilio MMS), not a `tel:` link. Whether the provider's
 * reference is one the channel can fetch is the adapter's to say (`canCopyMedia`: a link the
 * customer shared is not).
 */
export function isProviderFile(attachment: Attachment): boolean {
  if (attachment.url.startsWith(MEDIA_SCHEME)) return false;
  return KEPT_TYPES.has(attachment.type) || (attachment.type === 'contact' && /^https?:/i.test(attachment.url));
}

/** How a channel's customer files are fetched for their copy: links that expire, or references behind its credentials. */
export function mediaCopier(adapter: ChannelAdapter): ChannelAdapter['copyMedia'] {
  return adapter.copyMedia ?? adapter.fetchMedia;
}

/**
 * The copy job for a customer's message with files the provider holds (and may drop), if it has
 * any: a message whose only attachments are links the customer shared costs no job. The team's
 * messages from Meta's own inbox (echoes) hold Meta's CDN links too; our own sends, our copies.
 */
export function keepMediaJob(message: Message): OutboundJob | undefined {
  const providers = message.direction === 'inbound' || message.sender.id === EXTERNAL_SENDER_ID;
  if (!providers || !isProviderChannel(message.channel)) return undefined;
  const adapter = getAdapter(message.channel);
  if (!mediaCopier(adapter)) return undefined;
  const base = baseUrl(message.channel);
  const files = message.attachments.some((a) => isProviderFile(a) && (adapter.canCopyMedia?.(a.url, base) ?? true));
  return files ? { conversationId: message.conversationId, messageId: message.id, kind: 'keepMedia' } : undefined;
}

export function isKeepMediaJob(job: OutboundJob): boolean {
  return job.kind === 'keepMedia';
}

/**
 * A copy whose queue attempts ran out while its files could not be fetched or stored (an
 * outage): its next round is armed as a one-time schedule of its own (src/domain/timers.ts,
 * named after the message, so arming it twice arms it once). False after the last round.
 */
export async function retryCopyLater(job: OutboundJob): Promise<boolean> {
  const round = job.round ?? 0;
  const hours = COPY_RETRY_HOURS[round];
  if (hours === undefined) return false;
  await setTimer('keepMedia', job.conversationId, hours * 3600, { messageId: job.messageId, round: round + 1 });
  return true;
}

/**
 * The copy's timer fired: the job goes back on the outbound queue, in its lane, as its next round.
 * A job whose files were copied meanwhile finds nothing left to copy.
 */
export async function requeueCopy(input: TimerInput): Promise<boolean> {
  if (!input.messageId) return false;
  await enqueueOutbound([{ conversationId: input.conversationId, messageId: input.messageId, kind: 'keepMedia', ...(input.round ? { round: input.round } : {}) }]);
  return true;
}
