/** Conversation lifecycle changes made by agents; each one emits `conversation.updated`. */
import { badRequest, notFound } from './errors';
import { getSettings } from './settings';
import { conversationEvent, publishToConversation } from './events';
import { afterConversationChange, type ChangeOptions } from './automation';
import type { ConversationStatus } from './types';
import { agentChange, getConversation, updateConversation, type ConversationRecord } from '../store/conversations';

/**
 * Applies a change and publishes the result; 404 when the conversation does not exist. `after`
 * is the conversation as it stands once routing has followed the change (a reopening whose
 * agent has no room goes back to the queue), which is what the caller answers with.
 */
export async function changeConversation(
  id: string,
  change: (current: ConversationRecord) => ConversationRecord | undefined,
  options: ChangeOptions = {},
  /** One more item written in the same transaction, as updateConversation's. */
  alongside?: Parameters<typeof updateConversation>[2],
): Promise<{ before: ConversationRecord; after: ConversationRecord }> {
  const result = await updateConversation(id, change, alongside);
  if (!result) throw notFound('conversation');
  if (result.after !== result.before) {
    await publishToConversation(result.after, [conversationEvent(result.after)], result.before);
    if (await afterConversationChange(result.before, result.after, options)) {
      return { before: result.before, after: (await getConversation(id, true)) ?? result.after };
    }
  }
  return result;
}

/**
 * `by`: the agent making the change, if one is. A resolution is credited to the agent holding the
 * conversation (as Chatwoot's reports credit its assignee), else to the agent who resolved it;
 * nobody's when neither (auto-resolved in the queue).
 */
export function withStatus(c: ConversationRecord, status: ConversationStatus, now = new Date().toISOString(), by?: string): ConversationRecord {
  if (c.status === status) return c;
  return {
    ...c,
    status,
    updatedAt: now,
    resolvedAt: status === 'resolved' ? now : undefined,
    ...(status === 'resolved' ? { resolvedBy: c.assigneeId ?? by } : {}),
    // A hand-off ends with what it was about: back after a resolution, it is anyone's again.
    ...(status === 'resolved' ? { handedOffBy: undefined, handedOffAt: undefined } : {}),
    // Leaving `resolved` for anything (open, pending, snoozed) is a reopen: it was not done.
    ...(c.status === 'resolved' ? { reopenCount: (c.reopenCount ?? 0) + 1 } : {}),
    // A rating asked at an earlier resolution is not for what the conversation becomes now: the
    // customer's next message must not be taken for its answer (auto-resolve asks again, after this).
    ...(c.engagement?.csatAskedAt ? { engagement: { ...c.engagement, csatAskedAt: undefined, csatResolvedAt: undefined } } : {}),
    ...(status === 'snoozed' ? {} : { snoozedUntil: undefined }),
  };
}

/** Labels one conversation may carry. */
export const MAX_CONVERSATION_LABELS = 20;

/**
 * Replaces a conversation's labels (as Chatwoot's label picker does); each must be defined in
 * the settings, or be one the conversation has already. A label an admin defined a moment ago may not be in this instance's cached
 * settings yet: a name not found there is looked up again before it is refused.
 */
export async function setLabels(id: string, requested: readonly string[]): Promise<ConversationRecord> {
  return relabel(id, requested, () => requested);
}

/**
 * Adds and removes labels on the conversation's set as it is when written (a macro's actions),
 * so that a colleague's change landing meanwhile is kept. Adding follows setLabels' rules;
 * removing a label the conversation lacks changes nothing.
 */
export async function changeLabels(id: string, change: { add?: readonly string[]; remove?: readonly string[] }): Promise<ConversationRecord> {
  const remove = new Set(change.remove ?? []);
  return relabel(id, change.add ?? [], (had) => [...had, ...(change.add ?? [])].filter((name) => !remove.has(name)));
}

async function relabel(id: string, named: readonly string[], next: (had: readonly string[]) => readonly string[]): Promise<ConversationRecord> {
  if (new Set(named).size > MAX_CONVERSATION_LABELS) throw badRequest('invalid_request', `labels: at most ${MAX_CONVERSATION_LABELS} per conversation`);
  const defined = async (fresh: boolean) => new Set((await getSettings({ fresh })).labels.map((l) => l.name));
  let known = await defined(false);
  if (named.some((name) => !known.has(name))) known = await defined(true);
  const { after } = await changeConversation(
    id,
    agentChange((c) => {
      const wanted = [...new Set(next(c.labels ?? []))].sort();
      if (wanted.length > MAX_CONVERSATION_LABELS) throw badRequest('invalid_request', `labels: at most ${MAX_CONVERSATION_LABELS} per conversation`);
      // A label the admin has since removed stays on the conversations that have it: keeping it
      // while changing the others is no new use of it.
      const had = new Set(c.labels ?? []);
      const unknown = wanted.find((name) => !known.has(name) && !had.has(name));
      if (unknown !== undefined) throw badRequest('unknown_label', `label ${unknown} is not defined (settings.labels)`);
      return (c.labels ?? []).join('\n') === wanted.join('\n') ? undefined : { ...c, labels: wanted, updatedAt: new Date().toISOString() };
    }),
  );
  return after;
}
