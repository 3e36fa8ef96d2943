/** Routing: which agent works a conversation (capacity-based assignment lands here). */
import type { ConversationRecord } from '../store/conversations';
import type { InboundHookContext } from './automation';

/** Called for every stored customer message; returns the conversation after any assignment. */
export async function routeOnInbound(context: InboundHookContext): Promise<ConversationRecord> {
  return context.conversation;
}

/** An agent's presence changed. */
export async function routeOnPresence(_agentId: string, _status: 'online' | 'away' | 'offline'): Promise<void> {}

/** A conversation changed status or assignee (a slot may have freed). */
export async function routeOnConversationChange(_before: ConversationRecord, _after: ConversationRecord): Promise<void> {}
