/**
 * A web visitor's read that races its reply's delivery, on the local stack. The delivery job sends
 * the visitor the reply's frame and then writes `delivered`; a widget marks the reply read as soon
 * as it shows it, so the read may come between the two. The reply must end `read` either way, and
 * the agents must be told so. The job's status write is held open to put the read exactly there.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { handleFrame } from '../../src/domain/realtime';
import { getMessage } from '../../src/store/messages';

/**
 * `job`: the delivery's status write in this conversation waits for `release`. `onMark`: runs before
 * the read's mark of a queued reply in this conversation. `crashAfterDelivered`: the delivery dies
 * right after a delivered write that returns the read's mark.
 */
const hold = vi.hoisted(() => ({
  conversationId: undefined as string | undefined,
  job: undefined as { release: Promise<void>; waiting: boolean } | undefined,
  onMark: undefined as (() => Promise<void>) | undefined,
  crashAfterDelivered: false,
}));
const { harness, points } = await vi.hoisted(async () => {
  const harness = await import('../faults/crash-harness');
  return { harness, points: harness.crashPoints() };
});

/** A failed delivery comes back at once, as it does at the end of its visibility timeout. */
vi.mock('../../functions/outbound/handler', async (orig) => harness.redeliveringHandler(await orig<typeof import('../../functions/outbound/handler')>(), points, 'outbound'));

vi.mock('../../src/store/messages', async (orig) => {
  const real = await orig<typeof import('../../src/store/messages')>();
  return {
    ...real,
    updateMessageStatus: async (...args: Parameters<typeof real.updateMessageStatus>) => {
      const [conversationId, , status] = args;
      const job = hold.conversationId === conversationId && (status === 'delivered' || status === 'sent') ? hold.job : undefined;
      if (job) {
        job.waiting = true;
        await job.release;
      }
      const written = await real.updateMessageStatus(...args);
      if (job && hold.crashAfterDelivered && written?.[real.READ_IN_FLIGHT]) {
        hold.crashAfterDelivered = false;
        throw new Error('simulated crash after the delivered write');
      }
      return written;
    },
    markReadInFlight: async (...args: Parameters<typeof real.markReadInFlight>) => {
      if (hold.conversationId === args[0]) await hold.onMark?.();
      return real.markReadInFlight(...args);
    },
  };
});

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;
const clients: WsClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  const outbound = stack.aws.sqs.getQueue('conversa-outbound.fifo');
  points.retry.outbound = (receiptHandle) => outbound.changeVisibility(receiptHandle, 0);
  agentJwt = await agentToken(stack.httpUrl, 'agent-rhea', 'admin', 'Rhea');
  // No greeting: the conversation's next delivery is the agent's reply.
  const settings = await http(stack.httpUrl, 'GET', '/v1/settings', { token: agentJwt });
  const off = { ...settings.body, autoresponder: { ...settings.body.autoresponder, enabled: false } };
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: agentJwt, body: off })).status).toBe(200);
  agent = await WsClient.connect(stack.wsUrl, agentJwt);
  clients.push(agent);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

/** A visitor who has written, their conversation at the agent, and the delivery of the next reply in it held before its status write. */
async function visitorWithHeldReply(text: string) {
  const session = await visitorSession(stack.httpUrl, { name: 'Rita' });
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  clients.push(ws);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text: 'Hello?', clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
  const conversationId = ack.conversationId as string;
  await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId, 10_000, 'message at the agent');
  let release!: () => void;
  const job = { release: new Promise<void>((resolve) => (release = resolve)), waiting: false };
  hold.conversationId = conversationId;
  hold.job = job;
  agent.send({ action: 'sendMessage', conversationId, text, clientMessageId: crypto.randomUUID() });
  const reply = (await ws.waitFor((f: Frame) => f.type === 'message.created' && f.message.text === text, 10_000, 'reply at the visitor')).message as { id: string };
  await eventually(() => job.waiting);
  const markRead = () => handleFrame({ role: 'visitor', id: session.visitorId as string }, 'visitor-connection', JSON.stringify({ action: 'markRead', messageId: reply.id }));
  return { conversationId, reply, release, markRead };
}

const historyStatus = async (conversationId: string, messageId: string) =>
  ((await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=50`, { token: agentJwt })).body.items as { id: string; status: string }[]).find((m) => m.id === messageId)?.status;

describe("a web visitor's read racing its reply's delivery", { timeout: 30_000 }, () => {
  it('ends the reply read when the read comes between the frame and the delivered write', async () => {
    // Prepare: the visitor has the reply; its delivery has not written `delivered` yet
    const { conversationId, reply, release, markRead } = await visitorWithHeldReply(`On its way ${crypto.randomUUID()}`);

    // Act: the visitor reads it, then the delivery writes
    try {
      await markRead();
    } finally {
      release();
      hold.conversationId = undefined;
    }

    // Assess: read, told to the agents and kept
    await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === reply.id && f.message.status === 'read', 10_000, 'the reply read');
    expect(await historyStatus(conversationId, reply.id)).toBe('read');
    expect(await getMessage(conversationId, reply.id)).not.toHaveProperty('readInFlight');
  });

  it('ends the reply read when the delivered write lands between the read finding it queued and marking it', async () => {
    // Prepare: the read, once it found the reply queued, lets the delivery write land first
    const { conversationId, reply, release, markRead } = await visitorWithHeldReply(`Packed ${crypto.randomUUID()}`);
    hold.onMark = async () => {
      hold.onMark = undefined;
      release();
      await eventually(async () => (await getMessage(conversationId, reply.id))?.status === 'delivered');
    };

    // Act
    try {
      await markRead();
    } finally {
      release();
      hold.conversationId = undefined;
      hold.onMark = undefined;
    }

    // Assess
    await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === reply.id && f.message.status === 'read', 10_000, 'the reply read');
    expect(await historyStatus(conversationId, reply.id)).toBe('read');
  });

  it('ends the reply read when the delivery dies between its delivered write and the read the mark asks for', async () => {
    // Prepare: the visitor reads the reply before its delivered write, which kills the delivery once landed
    const { conversationId, reply, release, markRead } = await visitorWithHeldReply(`Shipped ${crypto.randomUUID()}`);
    hold.crashAfterDelivered = true;

    // Act: the read; the delivery writes, dies, and its job comes back
    try {
      await markRead();
    } finally {
      release();
    }
    await eventually(() => !hold.crashAfterDelivered);
    hold.conversationId = undefined;

    // Assess: the redelivered job found the mark on a delivered reply
    await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === reply.id && f.message.status === 'read', 10_000, 'the reply read');
    expect(await historyStatus(conversationId, reply.id)).toBe('read');
  });
});
