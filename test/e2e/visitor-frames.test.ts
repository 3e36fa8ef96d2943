/**
 * What a web visitor's socket sends and gets, on the local stack: a typing flood reaches the
 * agents as one signal (and an agent's the visitor), and the visitor's conversation and message
 * frames (and history) carry the contract's fields only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { capacityTotals, resetCapacityTotals } from '../../src/aws/capacity';
import { handleFrame } from '../../src/domain/realtime';

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;
const clients: WsClient[] = [];

async function connect(token: string): Promise<WsClient> {
  const client = await WsClient.connect(stack.wsUrl, token);
  clients.push(client);
  return client;
}

/** A visitor who has written: their conversation exists, and the agent has seen the message. */
async function visitorWithConversation() {
  const session = await visitorSession(stack.httpUrl, { name: 'Vera' });
  const ws = await connect(session.token);
  const ack = await say(ws, 'Hello');
  return { ws, token: session.token, visitorId: session.visitorId as string, conversationId: ack.conversationId as string };
}

/** The visitor writes; answers the ack once the agent has the message (every frame sent before it was handled by then). */
async function say(ws: WsClient, text: string): Promise<Frame> {
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text, clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
  await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId, 10_000, 'message at the agent');
  return ack;
}

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = await agentToken(stack.httpUrl, 'agent-tess', 'agent', 'Tess');
  agent = await connect(agentJwt);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

describe('visitor frames', () => {
  it('fans a flood of typing frames out to the agents as one signal each way', async () => {
    // Prepare
    const { ws, conversationId } = await visitorWithConversation();
    const typing = (state: string) => agent.frames.filter((f) => f.type === 'typing' && f.conversationId === conversationId && f.state === state);

    // Act: a script's burst of "on", then of "off"
    for (let i = 0; i < 30; i++) ws.send({ action: 'typing', state: 'on' });
    await say(ws, 'after the on burst');
    for (let i = 0; i < 30; i++) ws.send({ action: 'typing', state: 'off' });
    await say(ws, 'after the off burst');

    // Assess: the first of each reached the agent, the rest were dropped quietly
    expect(typing('on')).toHaveLength(1);
    expect(typing('off')).toHaveLength(1);
    expect(typing('on')[0]!.sender).toMatchObject({ type: 'contact', name: 'Vera' });
    expect(ws.frames.filter((f) => f.type === 'error')).toEqual([]);
  });

  it("fans an agent's flood of typing frames out to the visitor as one signal each way", async () => {
    // Prepare
    const { ws, conversationId } = await visitorWithConversation();
    const typing = (state: string) => ws.frames.filter((f) => f.type === 'typing' && f.conversationId === conversationId && f.state === state);
    /** The agent replies; answers once the visitor has it (every typing frame sent before it was handled by then). */
    const reply = async (text: string) => {
      agent.send({ action: 'sendMessage', conversationId, text, clientMessageId: crypto.randomUUID() });
      await ws.waitFor((f) => f.type === 'message.created' && f.message.text === text, 10_000, 'reply at the visitor');
    };

    // Act: a broken console's burst of "on", then of "off"
    for (let i = 0; i < 30; i++) agent.send({ action: 'typing', conversationId, state: 'on' });
    await reply('after the on burst');
    for (let i = 0; i < 30; i++) agent.send({ action: 'typing', conversationId, state: 'off' });
    await reply('after the off burst');

    // Assess: the first of each reached the visitor, the rest were dropped quietly
    expect(typing('on')).toHaveLength(1);
    expect(typing('off')).toHaveLength(1);
    expect(typing('on')[0]!.sender).toMatchObject({ type: 'agent', id: 'agent-tess', name: 'Tess' });
    expect(agent.frames.filter((f) => f.type === 'error')).toEqual([]);
  });

  it("gives the visitor the contract's conversation fields, and the agents the team's too", async () => {
    // Prepare
    const { ws, conversationId } = await visitorWithConversation();
    const until = new Date(Date.now() + 3_600_000).toISOString();

    // Act: a change every side hears of
    const res = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/status`, { token: agentJwt, body: { status: 'snoozed', snoozedUntil: until } });
    expect(res.status).toBe(200);

    // Assess
    const snoozed = (f: Frame) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.status === 'snoozed';
    const atAgent = await agent.waitFor(snoozed, 10_000, 'agent update');
    expect(atAgent.conversation).toMatchObject({ snoozedUntil: until, window: expect.any(Object), labels: [] });
    const atVisitor = await ws.waitFor(snoozed, 10_000, 'visitor update');
    expect(atVisitor.conversation).toHaveProperty('assigneeId');
    const contract = ['id', 'channel', 'status', 'contact', 'assigneeId', 'unreadCount', 'createdAt', 'updatedAt', 'lastMessageAt', 'firstReplyAt', 'resolvedAt', 'csat'];
    const shown = ws.frames.filter((f) => f.conversation);
    expect(shown.length).toBeGreaterThan(1); // the first message's frame and the snooze's
    for (const frame of shown) expect(Object.keys(frame.conversation).filter((field) => !contract.includes(field))).toEqual([]);
  });

  it("gives the visitor the contract's message fields, in frames and in the history, and the agents the team's too", async () => {
    // Prepare: a proactive message is stored `unprompted`, which is the team's to know
    const { ws, token, conversationId } = await visitorWithConversation();
    const admin = await agentToken(stack.httpUrl, 'admin-vic', 'admin', 'Vic');
    const created = agent.frames.find((f) => f.type === 'message.created' && f.conversationId === conversationId)!;
    const text = `Our sale starts tomorrow ${crypto.randomUUID()}`;

    // Act
    const res = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: admin, body: { contactId: created.message.sender.id, text } });
    expect(res.status).toBeLessThan(300);

    // Assess
    const sale = (f: Frame) => f.type === 'message.created' && f.message.text === text;
    expect((await agent.waitFor(sale, 10_000, 'agent message')).message).toMatchObject({ unprompted: true });
    const atVisitor = await ws.waitFor(sale, 10_000, 'visitor message');
    const history = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token });
    expect(history.status).toBe(200);
    const contract = ['id', 'conversationId', 'direction', 'sender', 'channel', 'text', 'attachments', 'status', 'private', 'providerMessageId', 'createdAt'];
    const messages = [...ws.frames.filter((f) => f.message).map((f) => f.message), ...history.body.items];
    expect(messages.map((m) => m.text)).toEqual(expect.arrayContaining(['Hello', text]));
    for (const message of messages) expect(Object.keys(message).filter((field) => !contract.includes(field))).toEqual([]);
    expect(atVisitor.message).toMatchObject({ direction: 'outbound', status: 'delivered', private: false });
  });
  it('costs a read receipt with nothing new to mark (the reply is read already) the frame\'s own three reads: no fan-out, no engagement', async () => {
    // Prepare: the agent's reply, delivered to the visitor and read by them; nothing left in the queues
    const { ws, visitorId, conversationId } = await visitorWithConversation();
    const text = `Your parcel left today ${crypto.randomUUID()}`;
    agent.send({ action: 'sendMessage', conversationId, text, clientMessageId: crypto.randomUUID() });
    const reply = (await ws.waitFor((f) => f.type === 'message.created' && f.message.text === text, 10_000, 'reply at the visitor')).message;
    const idle = () =>
      ['conversa-inbound.fifo', 'conversa-outbound.fifo'].every((name) => {
        const counts = stack.aws.sqs.getQueue(name).counts();
        return counts.visible + counts.inFlight + counts.delayed === 0;
      });
    await eventually(idle);
    const visitor = { role: 'visitor' as const, id: visitorId };
    const markRead = JSON.stringify({ action: 'markRead', messageId: reply.id });
    await handleFrame(visitor, 'visitor-connection', markRead);
    await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === reply.id && f.message.status === 'read', 10_000, 'the reply read');
    await eventually(idle);

    // Act: the same receipt again (another tab, a reload, a script)
    resetCapacityTotals();
    await handleFrame(visitor, 'visitor-connection', markRead);
    const repeat = { ...capacityTotals };

    // Assess: the visitor and the conversation (0.5 RRU each) and the message (consistent, 1 RRU);
    // before, the agents' connections, the conversation again (consistent) and the recent messages
    // too: 6 requests, 4 RRU
    expect(repeat).toEqual({ requests: 3, read: 2, write: 0 });
    // The agents heard the first read only (the visitor's next message comes after anything it sent).
    await say(ws, 'Thanks');
    expect(agent.frames.filter((f) => f.type === 'read' && f.messageId === reply.id)).toHaveLength(1);
  });

  it('answers a read receipt of a visitor who has no conversation yet with not_found, as any message it cannot see', async () => {
    // Prepare: someone else's message, and a visitor who has not written yet
    const other = await visitorWithConversation();
    const ack = await say(other.ws, 'Mine alone');
    const session = await visitorSession(stack.httpUrl, { name: 'Nadia' });
    const ws = await connect(session.token);

    // Act: a receipt naming that message, then one naming nothing that exists
    ws.send({ action: 'markRead', messageId: ack.messageId });
    ws.send({ action: 'markRead', messageId: '01ZZZZZZZZZZZZZZZZZZZZZZZZ' });

    // Assess: each refused, as README (Live signals) says; before, neither got an answer
    await eventually(() => ws.frames.filter((f) => f.type === 'error').length >= 2, 10_000);
    expect(ws.frames.map((f) => [f.type, f.code])).toEqual([
      ['error', 'not_found'],
      ['error', 'not_found'],
    ]);
    expect(agent.frames.some((f) => f.type === 'read' && f.messageId === ack.messageId)).toBe(false);
  });
});
