/**
 * What a web visitor's socket sends and gets, on the local stack: a typing flood reaches the
 * agents as one signal, and the visitor's conversation frames carry the contract's fields only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, http, visitorSession, WsClient, type Frame } from '../support/clients';

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
  return { ws, conversationId: ack.conversationId as string };
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
});
