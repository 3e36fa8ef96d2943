/**
 * Which customer messages get a copy job (src/domain/provider-media.ts), decided without the S3
 * client: the inbound consumer that asks never touches the bucket itself.
 */
import { isProviderChannel, MEDIA_SCHEME, type Message, type OutboundJob } from './types';
import { getAdapter } from '../channels/registry';

/** Places and contact cards are not files; a public link (Meta's CDN) is not ours to fetch. */
export const KEPT_TYPES = new Set(['image', 'audio', 'video', 'file', 'sticker']);

/** The copy job for a customer's message with files only the channel's credentials open, if it has any. */
export function keepMediaJob(message: Message): OutboundJob | undefined {
  if (message.direction !== 'inbound' || !isProviderChannel(message.channel) || !getAdapter(message.channel).fetchMedia) return undefined;
  const files = message.attachments.some((a) => KEPT_TYPES.has(a.type) && !a.url.startsWith(MEDIA_SCHEME));
  return files ? { conversationId: message.conversationId, messageId: message.id, kind: 'keepMedia' } : undefined;
}

export function isKeepMediaJob(job: OutboundJob): boolean {
  return job.kind === 'keepMedia';
}

