/**
 * An agent's `markRead` over the WebSocket, with DynamoDB and the fan-out mocked: it changes the
 * conversation as the HTTP read route does (no write and no `conversation.updated` when nothing
 * was unread; refused once the contact's erasure was asked for, even when that came after the
 * frame's first read of the conversation).
 */
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { keys } from '../../src/store/keys';
import type { ServerEvent } from '../../src/domain/fanout';

const publish = vi.hoisted(() => vi.fn(async () => 1));
const sendToConnection = vi.hoisted(() => vi.fn(async () => true));
vi.mock('../../src/domain/fanout', async (original) => ({ ...(await original<typeof import('../../src/domain/fanout')>()), publish, sendToConnection }));
const { handleFrame } = await import('../../src/domain/realtime');

const ddb = mockClient(DynamoDBDocumentClient);
const CONVERSATION = '01JREADCONVERSATION0000000';
const MESSAGE = '01JREADMESSAGE000000000000';
const AGENT = { role: 'agent', id: 'agent-read', name: 'Ana' } as const;
const at = '2026-11-28T04:00:00.000Z';
const conversation = (extra: Record<string, unknown>) => ({
  ...keys.conversation(CONVERSATION),
  id: CONVERSATION,
  channel: 'whatsapp',
  status: 'open',
  contact: { id: 'contact-read' },
  handle: '+15550100',
  assigneeId: AGENT.id,
  createdAt: at,
  updatedAt: at,
  lastMessageAt: at,
  lastInboundAt: at,
  version: 4,
  ...extra,
});
/** The conversation as a frame's first read finds it, and as the write's consistent read does. */
function stored(first: Record<string, unknown>, consistent = first) {
  ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).callsFake((input: { ConsistentRead?: boolean }) => ({ Item: input.ConsistentRead ? consistent : first }));
}
const events = () => (publish.mock.calls as unknown as [ServerEvent[], unknown][]).flatMap(([sent]) => sent.map((e) => e.type));
const errors = () => (sendToConnection.mock.calls as unknown as [unknown, ServerEvent][]).map(([, e]) => e).filter((e) => e.type === 'error');
const markRead = () => handleFrame(AGENT, 'conn-read', JSON.stringify({ action: 'markRead', conversationId: CONVERSATION, messageId: MESSAGE }));

beforeEach(() => {
  vi.stubEnv('TABLE_NAME', 'conversa-unit');
  ddb.reset();
  ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({
    Item: { ...keys.message(CONVERSATION, MESSAGE), id: MESSAGE, conversationId: CONVERSATION, direction: 'inbound', private: false, text: 'hi', createdAt: at },
  });
  ddb.on(PutCommand).resolves({});
  publish.mockClear();
  sendToConnection.mockClear();
});

describe("an agent's markRead frame", () => {
  it('resets the unread count and announces it', async () => {
    // Prepare
    stored(conversation({ unreadCount: 3 }));

    // Act
    await markRead();

    // Assess
    expect(ddb.commandCalls(PutCommand).map((c) => c.args[0].input.Item?.unreadCount)).toEqual([0]);
    expect(events()).toEqual(['read', 'conversation.updated']);
  });

  it('writes nothing and sends no conversation.updated when nothing was unread', async () => {
    // Prepare
    stored(conversation({ unreadCount: 0 }));

    // Act
    await markRead();

    // Assess: the receipt still goes out, alone
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    expect(events()).toEqual(['read']);
    expect(errors()).toEqual([]);
  });

  it('writes nothing once the erasure was asked for, though the frame first read the conversation before', async () => {
    // Prepare: unmarked when the frame looks it up, marked by the time the write reads it
    stored(conversation({ unreadCount: 3 }), conversation({ unreadCount: 3, version: 5, erasureRequestedAt: at }));

    // Act
    await markRead();

    // Assess: refused as the reads answer, nothing written or announced
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    expect(events()).toEqual([]);
    expect(errors()).toMatchObject([{ code: 'not_found' }]);
  });
});
