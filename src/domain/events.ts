/** Server → client event frames (CONTRACT.md section 4) and who receives them. */
import { toConversation, type ConversationRecord } from '../store/conversations';
import type { Message } from './types';
import { publish, type ServerEvent } from './fanout';

export const messageEvent = (message: Message): ServerEvent => ({ type: 'message.created', conversationId: message.conversationId, message });
export const messageUpdatedEvent = (message: Message): ServerEvent => ({
  type: 'message.updated',
  conversationId: message.conversationId,
  message,
});
export const conversationEvent = (conversation: ConversationRecord): ServerEvent => ({
  type: 'conversation.updated',
  conversation: toConversation(conversation),
});

/**
 * Agents get every event of a conversation; its web visitor gets the same minus private
 * notes. Returns how many of the visitor's connections took them (0 = the visitor is away).
 */
export async function publishToConversation(conversation: ConversationRecord, events: ServerEvent[]): Promise<number> {
  const visible = events.filter((event) => !(event.message as Message | undefined)?.private);
  const [, visitorCount] = await Promise.all([
    publish(events, { agents: true }),
    conversation.visitorId && visible.length > 0 ? publish(visible, { agents: false, visitorId: conversation.visitorId }) : Promise.resolve(0),
  ]);
  return visitorCount;
}
