/**
 * Which customer messages get a copy job (src/domain/provider-media.ts), decided without the S3
 * client: the inbound consumer that asks never touches the bucket itself.
 */
import { isProviderChannel, MEDIA_SCHEME, type Attachment, type Message, type OutboundJob } from './types';
import { getAdapter } from '../channels/registry';
import type { ChannelAdapter } from '../channels/types';

const KEPT_TYPES = new Set(['image', 'audio', 'video', 'file', 'sticker']);

/**
 * Whether the attachment is a provider's file worth a copy: places are not files, and a contact is
 * one only as a vCard the provider holds (Twilio MMS), not a `tel:` link. Whether the provider's
 * reference is one the channel can fetch is the adapter's to say (a link the customer shared is not).
 */
export function isProviderFile(attachment: Attachment): boolean {
  if (attachment.url.startsWith(MEDIA_SCHEME)) return false;
  return KEPT_TYPES.has(attachment.type) || (attachment.type === 'contact' && /^https?:/i.test(attachment.url));
}

/** How a channel's customer files are fetched for their copy: links that expire, or references behind its credentials. */
export function mediaCopier(adapter: ChannelAdapter): ChannelAdapter['copyMedia'] {
  return adapter.copyMedia ?? adapter.fetchMedia;
}

/** The copy job for a customer's message with files the provider holds (and may drop), if it has any. */
export function keepMediaJob(message: Message): OutboundJob | undefined {
  if (message.direction !== 'inbound' || !isProviderChannel(message.channel) || !mediaCopier(getAdapter(message.channel))) return undefined;
  const files = message.attachments.some(isProviderFile);
  return files ? { conversationId: message.conversationId, messageId: message.id, kind: 'keepMedia' } : undefined;
}

export function isKeepMediaJob(job: OutboundJob): boolean {
  return job.kind === 'keepMedia';
}

