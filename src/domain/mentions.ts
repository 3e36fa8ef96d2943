/**
 * @mentions in private notes (as Chatwoot's): a note may name agents of the team. Each one named
 * other than its writer joins the conversation's participants (their focused console follows it),
 * gets a `mention` frame on every connection of theirs, and finds the conversation in their
 * Mentions view (GET /v1/conversations?mentioned=me). Only the note path pays for it.
 */
import { batchGetAll } from '../store/items';
import { keys } from '../store/keys';
import { listMentionKeys, recordMention } from '../store/mentions';
import { getConversations, isErasing, toConversation, type ConversationRecord } from '../store/conversations';
import type { ConnectionRecord } from '../store/connections';
import { badRequest } from './errors';
import { publishToAgents, type ServerEvent } from './fanout';
import type { Conversation, Message } from './types';

/** Distinct agents one note may name. */
export const MAX_MENTIONS = 20;

/**
 * The distinct agents a note names, in the order given, once each is known to be one of the team
 * (an agent item exists: they signed in once, or an admin named them). Bad input is a 400 and
 * nothing is stored: the caller checks before its writes.
 */
export async function checkMentions(mentions: readonly string[] | undefined, isPrivate: boolean): Promise<string[]> {
  // An empty list is no mention: a console may always send one.
  if (mentions === undefined || mentions.length === 0) return [];
  if (!isPrivate) throw badRequest('invalid_request', 'mentions: only a private note may mention agents (send it with private: true)');
  const distinct = [...new Set(mentions)];
  if (distinct.length > MAX_MENTIONS) throw badRequest('invalid_request', `mentions: at most ${MAX_MENTIONS} agents`);
  const found = new Set((await batchGetAll(distinct.map((id) => keys.agent(id)), { consistent: true, projection: ['pk', 'sk'] })).map((item) => String(item.sk)));
  const unknown = distinct.filter((id) => !found.has(keys.agent(id).sk));
  if (unknown.length > 0) throw badRequest('unknown_agent', `mentions: no agent ${unknown.map((id) => JSON.stringify(id)).join(', ')}`);
  return distinct;
}

/** The agents a note brings in: those it names, but its writer (mentioning yourself does nothing). */
export const mentionedOthers = (message: Pick<Message, 'mentions' | 'sender'>): string[] => (message.mentions ?? []).filter((id) => id !== message.sender.id);

/** A person as the frame names them: the id, and the name when there is one. */
const idAndName = (p: { id: string; name?: string | undefined }) => (p.name ? { id: p.id, name: p.name } : { id: p.id });

/** What a mentioned agent's connections get: enough for a notice naming the conversation, without a read. */
export const mentionEvent = (message: Message, conversation: Pick<ConversationRecord, 'contact'>): ServerEvent => ({
  type: 'mention',
  conversationId: message.conversationId,
  messageId: message.id,
  by: idAndName(message.sender),
  // A note's text is at most 4096 characters: the frame stays far under the frame limit.
  text: message.text,
  contact: idAndName(conversation.contact),
  at: message.createdAt,
});

/**
 * Records each mentioned agent's mention (a conditional write each), then tells those it recorded:
 * the same note again (a retry) records nothing and tells nobody twice, and one whose first attempt
 * died before this tells them now. A crash between the write and the frame loses that frame only:
 * the Mentions view has it.
 */
export async function announceMentions(message: Message, conversation: Pick<ConversationRecord, 'contact'>, agentConnections?: Promise<ConnectionRecord[]>): Promise<void> {
  const others = mentionedOthers(message);
  if (others.length === 0) return;
  const by = idAndName(message.sender);
  const recorded = await Promise.all(
    others.map((agentId) => recordMention({ conversationId: message.conversationId, agentId, messageId: message.id, createdAt: message.createdAt, by })),
  );
  await publishToAgents(
    others.filter((_, i) => recorded[i]),
    [mentionEvent(message, conversation)],
    agentConnections,
  );
}

/**
 * The Mentions view: the conversations whose notes mentioned the agent, newest mention first (each
 * once, at its latest mention), every status; each with `mention: {messageId, at}`.
 */
export async function mentionedConversations(
  agentId: string,
  page: { limit: number; cursor?: string | undefined },
): Promise<{ items: (Conversation & { mention: { messageId: string; at: string } })[]; nextCursor: string | null }> {
  const keysPage = await listMentionKeys(agentId, page);
  const found = new Map((await getConversations(keysPage.items.map((m) => m.conversationId))).map((c) => [c.id, c]));
  const items = keysPage.items.flatMap((m) => {
    const c = found.get(m.conversationId);
    // Out from the erasure request on, as in the inbox.
    return c && !isErasing(c) ? [{ ...toConversation(c), mention: { messageId: m.messageId, at: m.at } }] : [];
  });
  return { items, nextCursor: keysPage.nextCursor };
}
