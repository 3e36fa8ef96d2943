/**
 * Customers' files, copied from the provider into our bucket after their message is stored.
 * WhatsApp keeps a media id 30 days, Twilio until the account deletes it, and only our
 * credentials open either; Messenger's and Instagram's CDN links expire within days. A copy keeps
 * the history whole and lets consoles open files larger than the API could answer inline. The
 * copy runs as an outbound-queue job in a lane of its own per conversation (src/aws/queues.ts),
 * so a large download never holds a reply back.
 */
import { isProviderChannel, type Attachment, type Message, type OutboundJob } from './types';
import { isProviderFile, mediaCopier, retryCopyLater } from './media-jobs';
import { getAdapter } from '../channels/registry';
import { splitText } from '../channels/common';
import { baseUrl, ChannelNotConfiguredError, loadCredentials } from '../channels/credentials';
import type { Credentials } from '../channels/types';
import { MAX_UPLOAD_BYTES } from '../manifest';
import { deleteEveryVersion, deleteEveryVersionUnder, MEDIA_SCHEME, providerFileKey, providerFilesPrefix, putObject } from '../aws/media-store';
import { CONTENT_TYPE } from './media';
import { getMessage, replaceAttachment } from '../store/messages';
import { getConversation, isErasing } from '../store/conversations';
import { mapConcurrently } from '../store/items';
import { messageUpdatedEvent } from './events';
import { publish, scopeOf } from './fanout';

/** Copies removed at once (a message has a few files). */
const FILE_CONCURRENCY = 4;

/**
 * Copies each file of the message the provider still has, and points its attachment at the copy.
 * A provider or S3 outage, or running out of time before `deadlineMs` (the copy's share of a
 * batch that also sends replies), throws: the queue tries again. On its last attempt the copy
 * arms a later round instead (src/domain/media-jobs.ts), until the last round. A file the
 * provider no longer has, or one over MAX_UPLOAD_BYTES, keeps its provider reference; so do the
 * files of a channel that is not configured (ChannelNotConfiguredError).
 */
export async function keepProviderMedia(job: OutboundJob, lastAttempt: boolean, deadlineMs: number): Promise<void> {
  // The conversation beside the message, in the same round trip: a customer being erased gets no copy.
  const [message, conversation] = await Promise.all([getMessage(job.conversationId, job.messageId), getConversation(job.conversationId)]);
  if (!conversation || isErasing(conversation)) {
    // Nor keeps one an earlier attempt of this job wrote before it died (its message may be gone: the folder is listed).
    await deleteEveryVersionUnder(providerFilesPrefix(job.conversationId, job.messageId));
    return;
  }
  if (!message || !isProviderChannel(message.channel)) return;
  const adapter = getAdapter(message.channel);
  const copier = mediaCopier(adapter);
  if (!copier) return;
  let credentials: Credentials;
  try {
    credentials = await loadCredentials(message.channel);
  } catch (error) {
    // A channel nobody set up (logged by loadCredentials): the files keep the provider's reference, no retry, no DLQ.
    if (error instanceof ChannelNotConfiguredError) return;
    throw error;
  }
  const signal = AbortSignal.timeout(Math.max(0, deadlineMs - Date.now()));
  const context = { credentials, baseUrl: baseUrl(message.channel), fetch, maxMediaBytes: MAX_UPLOAD_BYTES, signal };
  let updated: Message | undefined;
  const written: string[] = [];
  let stays = true;
  // A file left behind by an outage on the last attempt: worth another round.
  let later = false;
  try {
    for (const [index, attachment] of message.attachments.entries()) {
      if (!isProviderFile(attachment)) continue;
      const result = await copier(attachment.url, context);
      if (!result) continue;
      if (!result.ok) {
        if (result.status !== 502) continue;
        if (!lastAttempt) throw new Error(`copying ${attachment.url}: ${result.error}`);
        later = true;
        continue;
      }
      const key = providerFileKey(message.conversationId, message.id, index);
      // The customer's app names the type (Telegram's mime_type): only a well-formed one becomes a header.
      const mimeType = [attachment.mimeType, result.contentType].find((t) => t && CONTENT_TYPE.test(t)) ?? 'application/octet-stream';
      try {
        await putObject(key, result.bytes, mimeType, signal);
        written.push(key);
      } catch (error) {
        if (!lastAttempt) throw error;
        // The bucket would refuse the files after it too.
        later = true;
        break;
      }
      const kept: Attachment = { ...attachment, url: `${MEDIA_SCHEME}${key}`, mimeType, size: result.bytes.length };
      // An MMS text part: its words join the message's (after those an earlier part added), in the
      // same write, which a job run twice at once (a redelivery) cannot make with a text it did not read.
      const was = (updated ?? message).text;
      const text = adapter.isTextPart?.(attachment) ? { was, now: withTextPart(was, result.bytes, [mimeType, result.contentType]) } : undefined;
      updated = (await replaceAttachment(message.conversationId, message.id, index, attachment.url, kept, text)) ?? updated;
    }
  } finally {
    // Also when a later file throws: the copies already made are kept (and the consoles told) or removed.
    if (written.length > 0) stays = await keepOrRemove(job, written, updated);
  }
  if (later && stays) await retryCopyLater(job);
}

/** The API's limit on a message's text, which a text part read into it keeps too. */
const TEXT_PART_CHARS = 4096;

/**
 * `text` with the words of a text part (`bytes`, in the charset one of its `types` names, else
 * UTF-8) on a line after it, unless they are the same words; cut after a sentence or word near the limit.
 */
function withTextPart(text: string, bytes: Buffer, types: string[]): string {
  const charset = types.map((type) => /;\s*charset="?([\w.:-]+)/i.exec(type)?.[1]).find(Boolean) ?? 'utf-8';
  // A charset the decoder does not know (a carrier's typo) is read as UTF-8.
  const decoder = (() => {
    try {
      return new TextDecoder(charset);
    } catch {
      return new TextDecoder('utf-8');
    }
  })();
  // No charset takes more than 4 bytes a character: what lies beyond would be cut anyway.
  const words = decoder.decode(bytes.subarray(0, TEXT_PART_CHARS * 4)).trim();
  const joined = !words || words === text.trim() ? text : text.trim() ? `${text}\n${words}` : words;
  if (joined.length <= TEXT_PART_CHARS) return joined;
  return `${splitText(joined, TEXT_PART_CHARS - 1)[0] ?? ''}…`;
}

/**
 * The copies just written stay only while their conversation is not being erased. An erasure
 * marks the conversation before it reads the messages whose files it deletes, and may have read
 * this one before its attachment named the copy (or deleted it before): read consistently after
 * the writes, either the mark (or the conversation gone) is seen here and the copies go now, or
 * it came later and the erasure finds them named. False when they went.
 */
async function keepOrRemove(job: OutboundJob, written: readonly string[], updated: Message | undefined): Promise<boolean> {
  const conversation = await getConversation(job.conversationId, true);
  if (!conversation || isErasing(conversation)) {
    await mapConcurrently(written, FILE_CONCURRENCY, deleteEveryVersion);
    return false;
  }
  if (updated) await publish([messageUpdatedEvent(updated)], { agents: scopeOf(conversation) });
  return true;
}
