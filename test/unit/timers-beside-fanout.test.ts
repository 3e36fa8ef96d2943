/**
 * The timers a message arms or cancels go out beside its fan-out, not after it: one round trip
 * less in each consumer's record. Both finish before the record does, and a failure of either
 * fails it. A failed reply keeps the order its disarm needs (its frame, then the reopening).
 * The store, the frames and the hooks are mocked: what is checked is what each path starts
 * before the other has finished.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConversationRecord } from '../../src/store/conversations';
import type { Message } from '../../src/domain/types';

const CONVERSATION = '01JD5Q8Z7V4R0M3X6N2B9C1K8T';
const MESSAGE = '01JD5Q8Z7V4R0M3X6N2B9C1K9V';

const open = (): ConversationRecord =>
  ({
    id: CONVERSATION,
    channel: 'whatsapp',
    status: 'open',
    contact: { id: 'c1' },
    assigneeId: 'agent-1',
    unreadCount: 0,
    createdAt: '2026-11-29T10:00:00.000Z',
    updatedAt: '2026-11-29T10:00:00.000Z',
    lastMessageAt: '2026-11-29T10:00:00.000Z',
    lastInboundAt: new Date().toISOString(),
    handle: '15550001111',
    version: 1,
  }) as ConversationRecord;

const mocks = vi.hoisted(() => ({
  afterInbound: vi.fn(),
  afterOutbound: vi.fn(),
  publishToConversation: vi.fn(),
  publish: vi.fn(),
  timers: vi.fn(),
}));
vi.mock('../../src/domain/automation', () => ({
  afterInbound: mocks.afterInbound,
  afterOutbound: mocks.afterOutbound,
  afterReplyFailed: async () => undefined,
  beforeNewConversation: async () => ({ fields: {}, greeting: undefined, abandon: async () => undefined }),
  beforeSend: async () => undefined,
}));
vi.mock('../../src/domain/events', async (original) => ({ ...(await original<typeof import('../../src/domain/events')>()), publishToConversation: mocks.publishToConversation }));
vi.mock('../../src/domain/fanout', async (original) => ({
  ...(await original<typeof import('../../src/domain/fanout')>()),
  publish: mocks.publish,
  agentConnectionsAhead: () => Promise.resolve([]),
}));
vi.mock('../../src/store/contacts', async (original) => ({
  ...(await original<typeof import('../../src/store/contacts')>()),
  getHandle: async () => ({ channel: 'whatsapp', handle: '15550001111', contactId: 'c1', conversationId: CONVERSATION }),
}));
vi.mock('../../src/store/conversations', async (original) => ({
  ...(await original<typeof import('../../src/store/conversations')>()),
  getConversation: async () => open(),
  applyMessageToOpenConversation: async (_id: string, m: { id: string }) => ({ ...open(), lastInboundId: m.id, unreadCount: 1 }),
}));
const stored = vi.hoisted(() => ({ reply: undefined as unknown }));
vi.mock('../../src/store/messages', async (original) => ({
  ...(await original<typeof import('../../src/store/messages')>()),
  claimDedup: async (_scope: string, record: unknown) => ({ claimed: true, record }),
  putMessage: async () => true,
  getMessageToSend: async () => ({ message: stored.reply, sendFailures: 0 }),
  updateMessageStatus: async (_c: string, _m: string, status: string, extra: { error?: string } = {}) => ({ ...(stored.reply as object), status, ...extra }),
}));
// What the mocks above leave to the table (the send's id claims, settings) finds nothing and writes.
const ddb = mockClient(DynamoDBDocumentClient);
const { ingestMessage } = await import('../../src/domain/inbound');
const { deliverOutbound } = await import('../../src/domain/outbound');

/**
 * A fan-out that notes whether the timers had started before it finished. It answers on a later
 * turn of the microtask queue, as any round trip does: a path that awaits it before the timers
 * has not started them by then.
 */
function fanOutNoting(timersStarted: () => boolean) {
  const seen: boolean[] = [];
  const fanOut = async () => {
    await Promise.resolve();
    seen.push(timersStarted());
    return 1;
  };
  return { seen, fanOut };
}

beforeEach(() => {
  vi.stubEnv('TABLE_NAME', 'conversa-unit');
  vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ messaging_product: 'whatsapp', messages: [{ id: 'wamid.SENT' }] }), { status: 200 })));
  for (const m of Object.values(mocks)) m.mockReset();
  ddb.reset();
  ddb.onAnyCommand().resolves({});
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.unstubAllGlobals();
});

describe("a customer's message", () => {
  const event = () => ({
    kind: 'message' as const,
    channel: 'whatsapp' as const,
    handle: '15550001111',
    providerMessageId: `wamid.${Math.random()}`,
    text: 'hello',
    attachments: [],
    sentAt: new Date().toISOString(),
    dated: true,
    receivedAt: new Date().toISOString(),
  });

  it('arms its timers beside the fan-out, not after it', async () => {
    // Prepare
    const { seen, fanOut } = fanOutNoting(() => mocks.timers.mock.calls.length > 0);
    mocks.publishToConversation.mockImplementation(fanOut);
    mocks.timers.mockResolvedValue(undefined);
    mocks.afterInbound.mockImplementation(async (c: { conversation: ConversationRecord }) => ({ conversation: c.conversation, messages: [], timers: mocks.timers }));

    // Act
    await ingestMessage(event());

    // Assess
    expect(seen).toEqual([true]);
    expect(mocks.timers).toHaveBeenCalledTimes(1);
  });

  it('fails when its timers fail, once the fan-out has finished', async () => {
    // Prepare
    let fanOutDone = false;
    mocks.publishToConversation.mockImplementation(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      fanOutDone = true;
      return 0;
    });
    mocks.timers.mockRejectedValue(new Error('scheduler throttled'));
    mocks.afterInbound.mockImplementation(async (c: { conversation: ConversationRecord }) => ({ conversation: c.conversation, messages: [], timers: mocks.timers }));

    // Act
    const attempt = ingestMessage(event());

    // Assess: the queue retries it (resumeApplied), and nothing of it runs on after it failed
    await expect(attempt).rejects.toThrow('scheduler throttled');
    expect(fanOutDone).toBe(true);
  });
});

describe('a delivered reply', () => {
  const reply = (): Message => ({
    id: MESSAGE,
    conversationId: CONVERSATION,
    direction: 'outbound',
    sender: { type: 'agent', id: 'agent-1' },
    channel: 'whatsapp',
    text: 'Here you go',
    attachments: [],
    status: 'queued',
    private: false,
    createdAt: new Date().toISOString(),
  });

  it('arms its timers beside its message.updated, not after it', async () => {
    // Prepare
    stored.reply = reply();
    const { seen, fanOut } = fanOutNoting(() => mocks.afterOutbound.mock.calls.length > 0);
    mocks.publish.mockImplementation(fanOut);
    mocks.afterOutbound.mockResolvedValue(undefined);

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);

    // Assess
    expect(seen).toEqual([true]);
    expect(mocks.afterOutbound).toHaveBeenCalledWith(expect.objectContaining({ id: CONVERSATION }), expect.objectContaining({ status: 'sent' }));
  });

  it('disarms a failed one only after its message.updated went out (a reopening follows it)', async () => {
    // Prepare: the provider refuses the reply for good
    stored.reply = reply();
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ error: { code: 131026, message: 'Message undeliverable' } }), { status: 400 })));
    const { seen, fanOut } = fanOutNoting(() => mocks.afterOutbound.mock.calls.length > 0);
    mocks.publish.mockImplementation(fanOut);
    mocks.afterOutbound.mockResolvedValue(undefined);

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, true);

    // Assess
    expect(seen).toEqual([false]);
    expect(mocks.afterOutbound).toHaveBeenCalledWith(expect.objectContaining({ id: CONVERSATION }), expect.objectContaining({ status: 'failed' }));
  });
});
