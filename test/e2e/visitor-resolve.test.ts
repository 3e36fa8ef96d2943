/**
 * The web visitor ends their conversation (`{"action":"resolve"}`, the widget's "End conversation"),
 * over a real WebSocket on the local stack: resolved as the team would see it, the agent's slot
 * given back, the timers cancelled, the rating asked once, counted by the reports; a second resolve
 * changes nothing, and bad frames change nothing either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { updateConversation } from '../../src/store/conversations';

let stack: LocalStack;
let admin: string;
let agent: WsClient;
const AGENT = 'agent-rae';
const clients: WsClient[] = [];
const HOUR = 3600;
const from = new Date(Date.now() - 60_000).toISOString();

async function connect(token: string): Promise<WsClient> {
  const client = await WsClient.connect(stack.wsUrl, token);
  clients.push(client);
  return client;
}

async function settings(patch: Record<string, unknown>): Promise<void> {
  const res = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: patch });
  expect(res.status, res.text).toBe(200);
}

async function visitorSays(ws: WsClient, text: string): Promise<Frame> {
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text, clientMessageId });
  return ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
}

/** A visitor whose first message opened a conversation, which the agent holds. */
async function visitorWithConversation(): Promise<{ ws: WsClient; conversationId: string; token: string }> {
  const session = await visitorSession(stack.httpUrl, { name: 'Vic' });
  const ws = await connect(session.token);
  const conversationId = (await visitorSays(ws, 'Hello')).conversationId as string;
  await eventually(async () => (await conversation(conversationId)).assigneeId === AGENT);
  return { ws, conversationId, token: session.token };
}

const conversation = async (id: string) => (await http(stack.httpUrl, 'GET', `/v1/conversations/${id}`, { token: admin })).body;
const liveLoad = async (agentId: string): Promise<number> =>
  ((await http(stack.httpUrl, 'GET', '/v1/agents', { token: admin })).body.items as { id: string; load: { live: number } }[]).find((a) => a.id === agentId)!.load.live;
const csatQuestions = async (conversationId: string) =>
  ((await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: admin })).body.items as { attachments: { type: string }[] }[]).filter((m) =>
    m.attachments.some((a) => a.type === 'csat'),
  );
const pendingTimers = (conversationId: string) =>
  stack.aws.scheduler
    .list()
    .filter((s) => s.name.endsWith(`-${conversationId}`) && s.fireAt)
    .map((s) => s.name.slice(0, -conversationId.length - 1));
const resolvedFrame = (conversationId: string) => (f: Frame) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.status === 'resolved';
const report = async () =>
  (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${from}&to=${new Date(Date.now() + 1000).toISOString()}`, { token: admin })).body;

beforeAll(async () => {
  stack = await startTestStack({ env: { CONVERSA_AUTO_RESOLVE_AFTER_SECONDS: String(HOUR), CONVERSA_REENGAGE_AFTER_SECONDS: String(HOUR) } });
  admin = await agentToken(stack.httpUrl, 'admin-ria', 'admin', 'Ria');
  // The admin watches and takes nothing: every conversation goes to the one agent.
  await connect(admin);
  expect((await http(stack.httpUrl, 'PUT', '/v1/agents/admin-ria', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } })).status).toBe(200);
  agent = await connect(await agentToken(stack.httpUrl, AGENT, 'agent', 'Rae'));
  await eventually(async () => ((await http(stack.httpUrl, 'GET', '/v1/agents', { token: admin })).body.items as { id: string; status: string }[]).some((a) => a.id === AGENT && a.status === 'online'));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

describe('a visitor ends the conversation', () => {
  it('resolves it for everyone, frees the agent, cancels its timers and asks for the rating once; a second resolve changes nothing', async () => {
    // Prepare: CSAT on; a conversation the agent holds and answered
    await settings({ csat: { enabled: true, question: 'How did we do? 1 to 5' }, reengagement: { enabled: true } });
    const { ws, conversationId } = await visitorWithConversation();
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: admin, body: { text: 'How can I help?' } })).status).toBe(202);
    await ws.waitFor((f) => f.type === 'message.created' && f.message.sender.type === 'agent', 10_000, 'reply');
    await eventually(async () => pendingTimers(conversationId).includes('reengage'));
    expect(pendingTimers(conversationId)).toContain('autoResolve');
    expect(await liveLoad(AGENT)).toBe(1);

    // Act: the visitor ends it
    ws.send({ action: 'resolve' });

    // Assess: the visitor and the agent hear it resolved, the question comes once, the slot is free
    const seen = await ws.waitFor(resolvedFrame(conversationId), 10_000, 'resolved at the visitor');
    expect(seen.conversation).not.toHaveProperty('labels'); // the visitor's view: the contract's fields
    await agent.waitFor(resolvedFrame(conversationId), 10_000, 'resolved at the agent');
    const question = await ws.waitFor((f) => f.type === 'message.created' && f.message.attachments?.some((a: { type: string }) => a.type === 'csat'), 10_000, 'CSAT question');
    expect(question.message.text).toBe('How did we do? 1 to 5');
    const resolved = await conversation(conversationId);
    expect(resolved).toMatchObject({ status: 'resolved', assigneeId: AGENT });
    await eventually(async () => (await liveLoad(AGENT)) === 0);
    expect(pendingTimers(conversationId)).not.toContain('autoResolve');
    expect(pendingTimers(conversationId)).not.toContain('reengage');

    // Act: a second resolve (another tab, a second tap)
    const updates = ws.frames.filter((f) => f.type === 'conversation.updated').length;
    ws.send({ action: 'resolve' });

    // Assess: answered with the conversation as it stands; nothing changed, no second question
    await eventually(() => ws.frames.filter((f) => f.type === 'conversation.updated').length > updates);
    expect(ws.frames.filter((f) => f.type === 'conversation.updated').at(-1)!.conversation).toMatchObject({ status: 'resolved', resolvedAt: resolved.resolvedAt });
    const after = await conversation(conversationId);
    expect(after.resolvedAt).toBe(resolved.resolvedAt);
    expect(after.updatedAt).toBe(resolved.updatedAt);
    expect(await csatQuestions(conversationId)).toHaveLength(1);
    expect(ws.frames.filter((f) => f.type === 'error')).toEqual([]);

    // Act: the visitor rates
    await visitorSays(ws, '5');

    // Assess: the rating is kept, the conversation stays resolved, and the reports count it
    await eventually(async () => ((await conversation(conversationId)).csat?.score === 5 ? true : undefined));
    expect(await conversation(conversationId)).toMatchObject({ status: 'resolved', assigneeId: AGENT });
    const summary = await eventually(async () => {
      const body = await report();
      return body.resolved >= 1 && body.csat.responses >= 1 ? body : undefined;
    });
    expect(summary).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1, csat: { responses: 1, average: 5 } });
    expect(summary.resolutionSeconds.count).toBe(1);
    expect(summary.handleSeconds.count).toBe(1);
    // Credited to the agent who held it, as an auto-resolve is
    expect(summary.byAgent[AGENT]).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1 });
  });

  it('with CSAT off asks nothing, and the visitor writing again reopens it (then it is no first-contact resolution)', async () => {
    // Prepare
    await settings({ csat: { enabled: false } });
    const before = await report();
    const { ws, conversationId } = await visitorWithConversation();

    // Act
    ws.send({ action: 'resolve' });
    await agent.waitFor(resolvedFrame(conversationId), 10_000, 'resolved at the agent');
    await eventually(async () => (await liveLoad(AGENT)) === 0);
    await visitorSays(ws, 'Sorry, one more thing');

    // Assess
    await eventually(async () => ((await conversation(conversationId)).status === 'open' ? true : undefined));
    expect(await csatQuestions(conversationId)).toEqual([]);
    const summary = await eventually(async () => {
      const body = await report();
      return body.conversations === before.conversations + 1 && body.firstContactResolutionRate !== before.firstContactResolutionRate ? body : undefined;
    });
    // Counted among those ever resolved, against first-contact resolution, and not resolved now
    expect(summary.resolved).toBe(before.resolved);
    expect(summary.firstContactResolutionRate).toBe(before.resolved / (before.resolved + 1));
  });

  it('asks the question a resolution left unasked (its run died before storing it) on the next resolve, once', async () => {
    // Prepare: resolved with the ask recorded, as the resolution's write leaves it, but no question stored
    await settings({ csat: { enabled: true, question: 'Rate us 1 to 5' } });
    const { ws, conversationId } = await visitorWithConversation();
    const at = new Date().toISOString();
    await updateConversation(conversationId, (c) => ({ ...c, status: 'resolved', resolvedAt: at, updatedAt: at, engagement: { ...c.engagement, csatAskedAt: at, csatResolvedAt: at } }));

    // Act: the visitor taps the button again, twice
    const updates = () => ws.frames.filter((f) => f.type === 'conversation.updated').length;
    const before = updates();
    ws.send({ action: 'resolve' });
    await eventually(() => updates() > before);
    ws.send({ action: 'resolve' });
    await eventually(() => updates() > before + 1);

    // Assess: the question comes, once, and nothing else changed
    await ws.waitFor((f) => f.type === 'message.created' && f.message.attachments?.some((a: { type: string }) => a.type === 'csat'), 10_000, 'CSAT question');
    expect(await csatQuestions(conversationId)).toHaveLength(1);
    expect(await conversation(conversationId)).toMatchObject({ status: 'resolved', resolvedAt: at });
  });

  it('resolves a snoozed conversation waiting in the queue, credited to nobody', async () => {
    // Prepare: nobody has room, so the conversation waits; an agent snoozes it
    await settings({ csat: { enabled: false } });
    expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${AGENT}`, { token: admin, body: { liveCapacity: 0 } })).status).toBe(200);
    try {
      const session = await visitorSession(stack.httpUrl, { name: 'Quinn' });
      const ws = await connect(session.token);
      const conversationId = (await visitorSays(ws, 'Hello?')).conversationId as string;
      const snoozedUntil = new Date(Date.now() + HOUR * 1000).toISOString();
      const snoozed = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/status`, { token: admin, body: { status: 'snoozed', snoozedUntil } });
      expect(snoozed.body).toMatchObject({ status: 'snoozed', assigneeId: null });
      const before = await report();

      // Act
      ws.send({ action: 'resolve' });

      // Assess: resolved for the visitor and the team, counted in the totals, in nobody's figures
      await ws.waitFor(resolvedFrame(conversationId), 10_000, 'resolved at the visitor');
      expect(await conversation(conversationId)).toMatchObject({ status: 'resolved', assigneeId: null });
      const summary = await eventually(async () => {
        const body = await report();
        return body.resolved === before.resolved + 1 ? body : undefined;
      });
      expect(summary.conversations).toBe(before.conversations);
      expect(summary.byAgent).toEqual(before.byAgent);
    } finally {
      await http(stack.httpUrl, 'PUT', `/v1/agents/${AGENT}`, { token: admin, body: { liveCapacity: null } }); // back to the settings' capacity
    }
  });

  it('refuses what is not the visitor’s to end, changing nothing', async () => {
    // Prepare: a visitor without a conversation, one with a conversation, and the agent
    const { ws: owner, conversationId } = await visitorWithConversation();
    const stranger = await connect((await visitorSession(stack.httpUrl, { name: 'Sid' })).token);

    // Act
    stranger.send({ action: 'resolve' });
    stranger.send({ action: 'resolve', conversationId });
    owner.send({ action: 'resolve', conversationId: 'someone-elses' });
    agent.send({ action: 'resolve', conversationId });

    // Assess: error frames, and the conversation still open
    const errors = (ws: WsClient, n: number) => eventually(() => (ws.frames.filter((f) => f.type === 'error').length >= n ? ws.frames.filter((f) => f.type === 'error') : undefined));
    expect((await errors(stranger, 2)).map((f) => f.code).sort()).toEqual(['forbidden', 'not_found']);
    expect((await errors(owner, 1)).map((f) => f.code)).toEqual(['forbidden']);
    expect((await errors(agent, 1)).map((f) => f.code)).toEqual(['forbidden']);
    expect(await conversation(conversationId)).toMatchObject({ status: 'open', assigneeId: AGENT });
    expect(owner.frames.some(resolvedFrame(conversationId))).toBe(false);
  });
});
