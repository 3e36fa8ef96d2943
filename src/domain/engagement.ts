/** Engagement: autoresponder, business hours, timers (email fallback, re-engagement, auto-resolve), CSAT. */
import type { ConversationRecord } from '../store/conversations';
import type { HookResult, InboundHookContext } from './automation';
import type { Message } from './types';

export async function engageOnInbound(context: InboundHookContext): Promise<HookResult> {
  return { conversation: context.conversation, messages: [] };
}

export async function engageOnOutbound(_conversation: ConversationRecord, _message: Message): Promise<void> {}

export async function engageOnVisitorRead(_conversation: ConversationRecord, _messageId: string): Promise<void> {}

export async function engageOnConversationChange(_before: ConversationRecord, _after: ConversationRecord): Promise<void> {}
