/**
 * What happens around a message without an agent: routing (assignment) and engagement
 * (autoresponder, timers). Inbound and outbound paths call these hooks; each returns the
 * events to fan out so that the callers stay the only place that publishes.
 */
import type { ConversationRecord } from '../store/conversations';
import type { Message } from './types';

export interface InboundHookContext {
  conversation: ConversationRecord;
  message: Message;
  /** The conversation was created by this message. */
  created: boolean;
  /** The conversation was resolved/snoozed/pending and this message reopened it. */
  reopened: boolean;
}

export interface HookResult {
  /** The conversation after the hook's changes (assignment, flags). */
  conversation: ConversationRecord;
  /** Messages the hook stored (autoresponder), to publish after the customer's own message. */
  messages: Message[];
}

export async function afterInbound(context: InboundHookContext): Promise<HookResult> {
  return { conversation: context.conversation, messages: [] };
}

/** After an agent (or bot) reply was stored: engagement timers react here. */
export async function afterOutbound(_conversation: ConversationRecord, _message: Message): Promise<void> {}

/** An agent's presence changed (online agents may take waiting conversations). */
export async function afterPresence(_agentId: string, _status: 'online' | 'away' | 'offline'): Promise<void> {}

/** A web visitor read up to a message (cancels the email fallback). */
export async function afterVisitorRead(_conversation: ConversationRecord, _messageId: string): Promise<void> {}
