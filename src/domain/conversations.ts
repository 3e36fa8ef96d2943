/** Conversation lifecycle changes made by agents; each one emits `conversation.updated`. */
import { notFound } from './errors';
import { conversationEvent, publishToConversation } from './events';
import { afterConversationChange } from './automation';
import type { ConversationStatus } from './types';
import { getConversation, updateConversation, type ConversationRecord } from '../store/conversations';

/**
 * Applies a change and publishes the result; 404 when the conversation does not exist. `after`
 * is the conversation as it stands once routing has followed the change (a reopening whose
 * agent has no room goes back to the queue), which is what the caller answers with.
 */
export async function changeConversation(
  id: string,
  change: (current: ConversationRecord) => ConversationRecord | undefined,
): Promise<{ before: ConversationRecord; after: ConversationRecord }> {
  const result = await updateConversation(id, change);
  if (!result) throw notFound('conversation');
  if (result.after !== result.before) {
    await publishToConversation(result.after, [conversationEvent(result.after)], result.before);
    if (await afterConversationChange(result.before, result.after)) {
      return { before: result.before, after: (await getConversation(id, true)) ?? result.after };
    }
  }
  return result;
}

export function withStatus(c: ConversationRecord, status: ConversationStatus, now = new Date().toISOString()): ConversationRecord {
  if (c.status === status) return c;
  return {
    ...c,
    status,
    updatedAt: now,
    resolvedAt: status === 'resolved' ? now : undefined,
    // Leaving `resolved` for anything (open, pending, snoozed) is a reopen: it was not done.
    ...(c.status === 'resolved' ? { reopenCount: (c.reopenCount ?? 0) + 1 } : {}),
    // A rating asked at an earlier resolution is not for what the conversation becomes now: the
    // customer's next message must not be taken for its answer (auto-resolve asks again, after this).
    ...(c.engagement?.csatAskedAt ? { engagement: { ...c.engagement, csatAskedAt: undefined, csatResolvedAt: undefined } } : {}),
    ...(status === 'snoozed' ? {} : { snoozedUntil: undefined }),
  };
}
