/** Server → client event frames (CONTRACT.md section 4) and who receives them. */
import { toConversation, type ConversationRecord } from '../store/conversations';
import type { ConnectionRecord } from '../store/connections';
import type { Conversation, Message } from './types';
import { publish, REPEATS_ACTIVITY, scopeOf, type ServerEvent } from './fanout';

/**
 * `conversation`, when given, is the conversation as the message left it (last message time,
 * unread count): a plain message needs no conversation.updated of its own.
 */
export const messageEvent = (message: Message, conversation?: ConversationRecord): ServerEvent => ({
  type: 'message.created',
  conversationId: message.conversationId,
  message,
  ...(conversation ? { conversation: toConversation(conversation) } : {}),
});
export const messageUpdatedEvent = (message: Message): ServerEvent => ({
  type: 'message.updated',
  conversationId: message.conversationId,
  message,
});
export const conversationEvent = (conversation: ConversationRecord): ServerEvent => ({
  type: 'conversation.updated',
  conversation: toConversation(conversation),
});

/** conversation.updated for a message's own activity: every feed but a focused one gets it. */
const activityEvent = (conversation: ConversationRecord): ServerEvent => ({ ...conversationEvent(conversation), [REPEATS_ACTIVITY]: true });

/** What a message changes in its conversation by itself; message.created carries these. */
const ACTIVITY = new Set(['lastMessageAt', 'updatedAt', 'unreadCount', 'firstReplyAt', 'lastInboundAt', 'window']);

/** conversation.updated after a message: marked as a repeat when only the message's activity changed. */
export function conversationEventAfterMessage(before: ConversationRecord | undefined, after: ConversationRecord): ServerEvent {
  return changedBeyondActivity(before, after) ? conversationEvent(after) : activityEvent(after);
}

/** The conversation changed beyond a message's activity (created, status, assignee, contact…). */
function changedBeyondActivity(before: ConversationRecord | undefined, after: ConversationRecord): boolean {
  if (!before) return true;
  const a = toConversation(before) as unknown as Record<string, unknown>;
  const b = toConversation(after) as unknown as Record<string, unknown>;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!ACTIVITY.has(key) && JSON.stringify(a[key]) !== JSON.stringify(b[key])) return true;
  }
  return false;
}

/**
 * The agents who follow the conversation get every event of it (with `before`, also those it
 * just left: src/domain/fanout.ts); its web visitor gets the same minus private notes. Returns
 * how many of the visitor's connections took them (0 = the visitor is away).
 */
export async function publishToConversation(
  conversation: ConversationRecord,
  events: ServerEvent[],
  before?: ConversationRecord,
  agentConnections?: Promise<ConnectionRecord[]>,
): Promise<number> {
  const visible = events.filter((event) => !(event.message as Message | undefined)?.private).map(forVisitor);
  const [, visitorCount] = await Promise.all([
    publish(events, { agents: scopeOf(conversation, before), ...(agentConnections ? { agentConnections } : {}) }),
    conversation.visitorId && visible.length > 0 ? publish(visible, { agents: false, visitorId: conversation.visitorId }) : Promise.resolve(0),
  ]);
  return visitorCount;
}

/**
 * The Conversation fields CONTRACT.md (section 5) gives a visitor, and all their frames carry: the
 * rest is how the team works it (the provider window, labels, team, participants, when a snooze
 * ends), and a field added later stays the team's unless it is named here.
 */
const VISITOR_FIELDS: ReadonlySet<string> = new Set([
  'id', 'channel', 'status', 'contact', 'assigneeId', 'unreadCount', 'createdAt', 'updatedAt', 'lastMessageAt', 'firstReplyAt', 'resolvedAt', 'csat',
] satisfies (keyof Conversation)[]);

/**
 * The Message fields CONTRACT.md (section 5) names, all a visitor's frames and history carry: the
 * rest is the team's (a failed send's provider error, the WhatsApp template, that it was sent
 * unprompted), and so is a field added later unless it is named here.
 */
const VISITOR_MESSAGE_FIELDS: ReadonlySet<string> = new Set([
  'id', 'conversationId', 'direction', 'sender', 'channel', 'text', 'attachments', 'status', 'private', 'providerMessageId', 'createdAt',
] satisfies (keyof Message)[]);

const only = <T extends object>(value: T, fields: ReadonlySet<string>): T =>
  Object.fromEntries(Object.entries(value).filter(([field]) => fields.has(field))) as T;

/** A message as its visitor sees it, in frames and in the widget's history (the contract's fields alone). */
export const visitorMessage = (message: Message): Message => only(message, VISITOR_MESSAGE_FIELDS);

/** conversation.updated as the visitor's own frames carry it (the contract's fields alone). */
export const visitorConversationEvent = (conversation: ConversationRecord): ServerEvent => forVisitor(conversationEvent(conversation));

/** message.created as the visitor's own frames carry it (the contract's fields alone). */
export const visitorMessageEvent = (message: Message): ServerEvent => forVisitor(messageEvent(message));

function forVisitor(event: ServerEvent): ServerEvent {
  const { conversation, message } = event as { conversation?: Record<string, unknown>; message?: Message };
  return {
    ...event,
    ...(conversation ? { conversation: only(conversation, VISITOR_FIELDS) } : {}),
    ...(message ? { message: visitorMessage(message) } : {}),
  };
}
