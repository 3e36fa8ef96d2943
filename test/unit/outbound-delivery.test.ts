/**
 * Delivering one stored reply, with DynamoDB mocked so that its eventually consistent reads can
 * lag the writes before them (DynamoDB Local never does): the delivery reads again, consistently,
 * before it gives up on a reply.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { keys } from '../../src/store/keys';
import type { ConversationRecord } from '../../src/store/conversations';
import type { Message } from '../../src/domain/types';

const automation = vi.hoisted(() => ({ afterOutbound: vi.fn() }));
vi.mock('../../src/domain/automation', () => automation);
vi.mock('../../src/domain/fanout', () => ({ publish: vi.fn(async () => 0), agentConnectionsAhead: () => Promise.resolve([]), scopeOf: () => true }));
const { deliverOutbound } = await import('../../src/domain/outbound');

const ddb = mockClient(DynamoDBDocumentClient);
const CONVERSATION = '01JD5Q8Z7V4R0M3X6N2B9C1K8T';
const MESSAGE = '01JD5Q8Z7V4R0M3X6N2B9C1K9V';
const HOUR = 3_600_000;

const reply: Message = {
  id: MESSAGE,
  conversationId: CONVERSATION,
  direction: 'outbound',
  sender: { type: 'bot', id: 'autoresponder' },
  channel: 'whatsapp',
  text: 'Thanks for getting in touch!',
  attachments: [],
  status: 'queued',
  private: false,
  createdAt: new Date().toISOString(),
};

function conversation(lastInboundAt: string): ConversationRecord {
  return {
    id: CONVERSATION,
    channel: 'whatsapp',
    status: 'open',
    contact: { id: 'c1' },
    assigneeId: null,
    unreadCount: 0,
    createdAt: lastInboundAt,
    updatedAt: lastInboundAt,
    lastMessageAt: lastInboundAt,
    lastInboundAt,
    handle: '15550001111',
    version: 1,
  } as ConversationRecord;
}

/** The eventually consistent read of the conversation answers `eventual`; the consistent one, the latest. */
function arrange(eventual: ConversationRecord | undefined, latest: ConversationRecord) {
  ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({ Item: { ...keys.message(CONVERSATION, MESSAGE), ...reply } });
  ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION), ConsistentRead: false }).resolves({ Item: eventual });
  ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION), ConsistentRead: true }).resolves({ Item: latest });
  ddb.on(PutCommand).resolves({});
  ddb.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: Record<string, unknown> }) => ({
    Attributes: { ...reply, status: input.ExpressionAttributeValues[':status'] },
  }));
}

const statuses = () => ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input.ExpressionAttributeValues?.[':status']);

beforeEach(() => {
  vi.stubEnv('TABLE_NAME', 'conversa-unit');
  vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ messaging_product: 'whatsapp', messages: [{ id: 'wamid.SENT' }] }), { status: 200 })));
  ddb.reset();
  automation.afterOutbound.mockReset();
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.unstubAllGlobals();
});

describe('delivering a reply', () => {
  it('sends the greeting of a conversation the eventually consistent read does not show yet', async () => {
    arrange(undefined, conversation(new Date().toISOString()));
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);
    expect(statuses()).toEqual(['sent']);
    expect(automation.afterOutbound).toHaveBeenCalledTimes(1);
  });

  it('sends an answer to a customer back after two days, whose message an eventually consistent read misses', async () => {
    const now = new Date().toISOString();
    arrange(conversation(new Date(Date.now() - 48 * HOUR).toISOString()), conversation(now));
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);
    expect(statuses()).toEqual(['sent']);
  });

  it('still refuses a free-form reply when the consistent read agrees the window is closed', async () => {
    const old = conversation(new Date(Date.now() - 48 * HOUR).toISOString());
    arrange(old, old);
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);
    expect(statuses()).toEqual(['failed']);
  });
});

describe('a redelivered job whose reply was already sent', () => {
  it('applies a status held for its provider id, which the first delivery died before applying', async () => {
    const sms = { ...reply, channel: 'sms' as const, status: 'sent' as const, providerMessageId: 'SM1' };
    const now = new Date().toISOString();
    ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({ Item: { ...keys.message(CONVERSATION, MESSAGE), ...sms } });
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: { ...conversation(now), channel: 'sms', handle: '+15550001111' } });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':pk': keys.earlyStatusPartition('sms#SM1') } }).resolves({ Items: [{ status: 'failed', error: 'Twilio error 30003' }] });
    ddb.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: Record<string, unknown> }) => ({
      Attributes: { ...sms, status: input.ExpressionAttributeValues[':status'], error: input.ExpressionAttributeValues[':error'] },
    }));

    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false, true);

    expect(statuses()).toEqual(['failed']);
    expect(automation.afterOutbound).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ status: 'failed', error: 'Twilio error 30003' }));
    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
  });
});
