/**
 * The inbound path: store each customer message exactly once, open or update its
 * conversation, run routing and engagement hooks, and fan the result out.
 * Every step is safe to repeat: the queue redelivers after a crash at any point.
 */
import { newId } from './ids';
import type { InboundMessageEvent, InboundStatusEvent, Message } from './types';
import { findOrCreateContact } from './contacts';
import { afterInbound } from './automation';
import { conversationEvent, messageEvent, messageUpdatedEvent, publishToConversation } from './events';
import { publish, sendToConnection } from './fanout';
import {
  applyMessageToOpenConversation,
  createConversation,
  getConversation,
  updateConversation,
  type ConversationRecord,
} from '../store/conversations';
import { claimDedup, getDedup, putMessage, updateMessageStatus } from '../store/messages';
import { getHandle, getVisitor, linkContactConversation, setHandleConversation, updateVisitor } from '../store/contacts';

/** A message that can never be processed (e.g. from a visitor that does not exist): dropped, not retried. */
export class UnprocessableEventError extends Error {}

export function dedupScope(event: Pick<InboundMessageEvent, 'channel' | 'handle' | 'providerMessageId' | 'clientMessageId'>): string | undefined {
  if (event.providerMessageId) return `${event.channel}#${event.providerMessageId}`;
  if (event.clientMessageId) return `client#${event.channel}#${event.handle}#${event.clientMessageId}`;
  return undefined;
}

/** The customer's conversation on this channel, created (with its contact) on the first message. */
async function resolveConversation(event: InboundMessageEvent): Promise<{ conversation: ConversationRecord; created: boolean }> {
  const now = new Date().toISOString();
  let pointer: { contactId?: string; conversationId?: string } | undefined;
  let profile = event.profile ?? {};
  if (event.channel === 'web') {
    const visitor = await getVisitor(event.handle, true);
    if (!visitor) throw new UnprocessableEventError(`unknown visitor ${event.handle}`);
    pointer = visitor;
    profile = { name: visitor.name, email: visitor.email, ...profile };
  } else {
    pointer = await getHandle(event.channel, event.handle);
  }
  if (pointer?.conversationId) {
    const existing = await getConversation(pointer.conversationId, true);
    if (existing) return { conversation: existing, created: false };
  }
  const contactId = pointer?.contactId ?? (await findOrCreateContact(event.channel, event.handle, profile));
  // The pointer is written before the conversation so that a retry after a crash reuses the id.
  const conversationId = pointer?.conversationId ?? newId();
  if (!pointer?.conversationId) {
    if (event.channel === 'web') await updateVisitor(event.handle, { contactId, conversationId });
    else await setHandleConversation(event.channel, event.handle, conversationId);
  }
  const conversation: ConversationRecord = {
    id: conversationId,
    channel: event.channel,
    status: 'open',
    contact: { id: contactId, name: profile.name, email: profile.email, phone: profile.phone },
    assigneeId: null,
    unreadCount: 0,
    createdAt: now,
    updatedAt: now,
    lastMessageAt: now,
    handle: event.handle,
    ...(event.channel === 'web' ? { visitorId: event.handle } : {}),
    version: 0,
  };
  try {
    await createConversation(conversation);
  } catch (error) {
    if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
    const existing = await getConversation(conversationId, true);
    if (existing) return { conversation: existing, created: false };
  }
  await linkContactConversation(contactId, conversationId);
  return { conversation, created: true };
}

export async function ingestMessage(event: InboundMessageEvent): Promise<void> {
  const { conversation: found, created } = await resolveConversation(event);
  const scope = dedupScope(event);
  const tentative = { conversationId: found.id, messageId: newId() };
  const { record } = scope ? await claimDedup(scope, tentative) : { record: tentative };
  const conversationId = record.conversationId;
  const message: Message = {
    id: record.messageId,
    conversationId,
    direction: 'inbound',
    sender: { type: 'contact', id: found.contact.id, ...(found.contact.name ? { name: found.contact.name } : {}) },
    channel: event.channel,
    text: event.text,
    attachments: event.attachments,
    status: 'received',
    private: false,
    ...(event.providerMessageId ? { providerMessageId: event.providerMessageId } : {}),
    createdAt: new Date().toISOString(),
  };
  await putMessage(message);

  let conversation: ConversationRecord | undefined;
  let reopened = false;
  const fast = await applyMessageToOpenConversation(conversationId, {
    id: message.id,
    createdAt: message.createdAt,
    direction: 'inbound',
    private: false,
    senderType: 'contact',
  });
  if (fast !== 'duplicate') {
    if (fast) {
      conversation = fast;
    } else {
      const result = await updateConversation(conversationId, (c) => {
        if (c.lastMessageId && c.lastMessageId >= message.id) return undefined;
        reopened = c.status !== 'open';
        return {
          ...c,
          ...(c.status === 'resolved' ? { reopenCount: (c.reopenCount ?? 0) + 1 } : {}),
          status: 'open',
          resolvedAt: undefined,
          snoozedUntil: undefined,
          lastMessageId: message.id,
          lastMessageAt: message.createdAt,
          lastInboundAt: message.createdAt,
          updatedAt: message.createdAt,
          unreadCount: c.unreadCount + 1,
        };
      });
      if (result && result.after.lastMessageId === message.id) conversation = result.after;
    }
  }

  if (event.replyToConnectionId) {
    await sendToConnection(
      { connectionId: event.replyToConnectionId, audience: { kind: 'visitor', visitorId: event.handle } },
      { type: 'ack', clientMessageId: event.clientMessageId, messageId: message.id, conversationId },
    );
  }
  // Already applied by an earlier delivery: its events went out then.
  if (!conversation) return;

  const hooked = await afterInbound({ conversation, message, created, reopened });
  await publishToConversation(hooked.conversation, [
    messageEvent(message),
    ...hooked.messages.map(messageEvent),
    conversationEvent(hooked.conversation),
  ]);
}

export async function ingestStatus(event: InboundStatusEvent): Promise<void> {
  const pointer = await getDedup(`${event.channel}#${event.providerMessageId}`);
  // A status for a message we never sent (or sent before this deployment): nothing to update.
  if (!pointer) return;
  const updated = await updateMessageStatus(pointer.conversationId, pointer.messageId, event.status, {
    ...(event.error ? { error: event.error } : {}),
  });
  if (!updated) return;
  await publish([messageUpdatedEvent(updated)], { agents: true });
}
