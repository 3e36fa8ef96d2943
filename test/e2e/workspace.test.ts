/**
 * The agent workspace end to end on the local stack: roles, visitor isolation, transfer with
 * a private note, live signals, lifecycle, inbox filters, canned responses and presence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { HTTP_ROUTES } from '../../src/manifest';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { snoozeScheduleName, wakeSnoozed } from '../../src/domain/snooze';
import { drainQueue, recountAllLoads } from '../../src/domain/routing';
import { DEFAULT_HANDOFF_HOLD_MINUTES } from '../../src/domain/settings';
import { getAgent } from '../../src/store/agents';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';

let stack: LocalStack;
let admin: string;
const tokens: Record<string, string> = {};
const sockets: Record<string, WsClient> = {};
const clients: WsClient[] = [];
const AGENTS = ['ws-ana', 'ws-ben'];

async function connect(token: string): Promise<WsClient> {
  const client = await WsClient.connect(stack.wsUrl, token);
  clients.push(client);
  return client;
}

async function visitorWithConversation(text: string, name = 'Vera') {
  const session = await visitorSession(stack.httpUrl, { name });
  const ws = await connect(session.token);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text, clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
  return { session, ws, conversationId: ack.conversationId as string, messageId: ack.messageId as string };
}

const get = (path: string, token = admin) => http(stack.httpUrl, 'GET', path, { token });
const post = (path: string, body: unknown, token = admin) => http(stack.httpUrl, 'POST', path, { token, body });
/** An agent's live capacity override (null: the workspace's again). */
const capacity = (id: string, liveCapacity: number | null) => http(stack.httpUrl, 'PUT', `/v1/agents/${id}`, { token: admin, body: { liveCapacity } });

async function assigned(conversationId: string): Promise<string> {
  return eventually(async () => (await get(`/v1/conversations/${conversationId}`)).body.assigneeId as string | null);
}

/**
 * Dates the conversation's hand-off back, as if it had been made `minutes` ago, and the customer's
 * last message a minute before that: one written since the hand-off would end the hold by itself.
 */
async function handedOffMinutesAgo(conversationId: string, minutes: number): Promise<void> {
  const ago = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
  await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.conversation(conversationId),
      UpdateExpression: 'SET handedOffAt = :at, lastInboundAt = :wrote',
      ExpressionAttributeValues: { ':at': ago(minutes), ':wrote': ago(minutes + 1) },
    }),
  );
}

const updated = (id: string, check: (c: Record<string, unknown>) => boolean) => (f: Frame) => f.type === 'conversation.updated' && f.conversation.id === id && check(f.conversation);

beforeAll(async () => {
  stack = await startTestStack({ env: { CONVERSA_PRESENCE_GRACE_SECONDS: '1' } });
  stack.aws.scheduler.ensureGroup('conversa-local');
  admin = await agentToken(stack.httpUrl, 'ws-admin', 'admin', 'Ada');
  // Histories below are the team's messages only.
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { autoresponder: { enabled: false } } })).status).toBe(200);
  // The admin supervises: no conversations of their own.
  expect((await http(stack.httpUrl, 'PUT', '/v1/agents/ws-admin', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } })).status).toBe(200);
  for (const id of AGENTS) {
    tokens[id] = await agentToken(stack.httpUrl, id, 'agent', id === 'ws-ana' ? 'Ana' : 'Ben');
    sockets[id] = await connect(tokens[id]!);
  }
  await eventually(async () => (await get('/v1/agents')).body.items.filter((a: { status: string }) => a.status === 'online').length === 2);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

describe('agent workspace', () => {
  it('refuses visitor tokens on every agent route', async () => {
    const { session, conversationId } = await visitorWithConversation('isolation');
    for (const route of HTTP_ROUTES.filter((r) => r.fn === 'api')) {
      const path = route.path.replace('{id}', conversationId);
      const res = await http(stack.httpUrl, route.method, path, { token: session.token, ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { body: {} }) });
      expect(res.status, `${route.method} ${route.path}`).toBe(401);
    }
  });

  it('lets only admins change settings, agents and canned responses', async () => {
    const agent = tokens['ws-ana']!;
    const settings = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: agent, body: { capacity: { live: 9 } } });
    expect(settings.status).toBe(403);
    expect(settings.body.error.code).toBe('forbidden');
    expect((await http(stack.httpUrl, 'PUT', '/v1/agents/ws-ana', { token: agent, body: { liveCapacity: 9 } })).status).toBe(403);
    expect((await post('/v1/canned-responses', { shortCode: 'x', text: 'y' }, agent)).status).toBe(403);
    expect((await http(stack.httpUrl, 'DELETE', '/v1/canned-responses/01NOPE', { token: agent })).status).toBe(403);
    expect((await http(stack.httpUrl, 'GET', '/v1/settings', { token: agent })).status).toBe(200);
    const bad = await http(stack.httpUrl, 'PUT', '/v1/agents/ws-ana', { token: admin, body: { liveCapacity: -1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('refuses a canned response whose text shows nothing, storing nothing', async () => {
    // Prepare
    const before = (await get('/v1/canned-responses')).body.items.length as number;

    // Act: a zero-width space, and a word joiner beside spaces
    const refused = [await post('/v1/canned-responses', { shortCode: 'blank-zwsp', text: '\u200b' }), await post('/v1/canned-responses', { shortCode: 'blank-wj', text: ' \u2060 ' })];

    // Assess
    expect(refused.map((r) => [r.status, r.body.error?.code])).toEqual([
      [400, 'invalid_request'],
      [400, 'invalid_request'],
    ]);
    expect((await get('/v1/canned-responses')).body.items.length).toBe(before);
  });

  it('sends a focused console only its agent’s conversations, and no repeats of a message’s activity', async () => {
    // Prepare: focused consoles for both agents and an admin, besides their full ones
    const focused = async (token: string) => {
      const client = await WsClient.connect(`${stack.wsUrl}?feed=focused`, token);
      clients.push(client);
      return client;
    };
    const focusedOf = { 'ws-ana': await focused(tokens['ws-ana']!), 'ws-ben': await focused(tokens['ws-ben']!) } as Record<string, WsClient>;
    const supervisor = await focused(admin);
    const { ws, conversationId } = await visitorWithConversation('Only my agent should hear this');
    const mine = await assigned(conversationId);
    const other = AGENTS.find((a) => a !== mine)!;

    // Act: the customer writes again; then the assignee reads
    ws.send({ action: 'sendMessage', text: 'second line for my agent', clientMessageId: crypto.randomUUID() });
    const said = (f: Frame) => f.type === 'message.created' && f.message.text === 'second line for my agent';
    await focusedOf[mine]!.waitFor(said, 10_000, 'assignee');
    await post(`/v1/conversations/${conversationId}/read`, {}, tokens[mine]);

    // Assess: the assignee's and the admin's focused consoles get it, the other agent's nothing of
    // this conversation; the full feeds (the contract's default) get everything, repeats included
    await supervisor.waitFor(said, 10_000, 'admin');
    await focusedOf[mine]!.waitFor(updated(conversationId, (c) => c.unreadCount === 0), 10_000, 'read');
    const ofIt = (f: Frame) => f.conversationId === conversationId || f.conversation?.id === conversationId;
    expect(focusedOf[other]!.frames.filter(ofIt).map((f) => `${f.type}:${f.message?.text ?? ''}:${f.conversation?.assigneeId}`)).toEqual([]);
    expect(focusedOf[mine]!.frames.filter(updated(conversationId, (c) => c.unreadCount === 2))).toEqual([]);
    await sockets[other]!.waitFor(said, 10_000, 'full feed of the other agent');
    await sockets[mine]!.waitFor(updated(conversationId, (c) => c.unreadCount === 2), 10_000, 'full feed repeat');
    // Nothing is hidden: any agent may still open it.
    expect((await get(`/v1/conversations/${conversationId}/messages`, tokens[other])).status).toBe(200);
  });

  it('makes an agent who writes in a colleague’s conversation follow it on the focused feed', async () => {
    // Prepare: a conversation assigned to one agent; the other agent's focused console
    const { ws, conversationId } = await visitorWithConversation('Can someone from billing help?');
    const owner = await assigned(conversationId);
    const helper = AGENTS.find((a) => a !== owner)!;
    const helperFeed = await WsClient.connect(`${stack.wsUrl}?feed=focused`, tokens[helper]!);
    clients.push(helperFeed);
    const ownerFeed = await WsClient.connect(`${stack.wsUrl}?feed=focused`, tokens[owner]!);
    clients.push(ownerFeed);

    // Act: the helper leaves a note, then the customer writes again
    const note = await post(`/v1/conversations/${conversationId}/messages`, { text: 'Billing here: refund is on its way', private: true }, tokens[helper]);
    await helperFeed.waitFor((f) => f.type === 'message.created' && f.message.text === 'Billing here: refund is on its way', 10_000, 'own note');
    ws.send({ action: 'sendMessage', text: 'thanks, and the invoice?', clientMessageId: crypto.randomUUID() });

    // Assess: the helper's focused console now follows the conversation; the owner's still does
    expect(note.status).toBe(202);
    await helperFeed.waitFor((f) => f.type === 'message.created' && f.message.text === 'thanks, and the invoice?', 10_000, 'participant');
    await ownerFeed.waitFor((f) => f.type === 'message.created' && f.message.text === 'thanks, and the invoice?', 10_000, 'assignee');
    const conversation = (await get(`/v1/conversations/${conversationId}`, tokens[owner])).body;
    expect(conversation.assigneeId).toBe(owner);
    expect(conversation.participants).toEqual([helper]);
    // The assignee's own replies do not make them a participant.
    await post(`/v1/conversations/${conversationId}/messages`, { text: 'On it' }, tokens[owner]);
    expect((await get(`/v1/conversations/${conversationId}`, tokens[owner])).body.participants).toEqual([helper]);
    // Cleanup: the owner's live slot goes back for the tests after this one
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it('transfers with a private note: the new assignee sees the whole history, the visitor never sees the note', async () => {
    // Prepare: the conversation went to one agent automatically
    const { session, ws, conversationId } = await visitorWithConversation('My parcel is lost');
    const from = await assigned(conversationId);
    const to = AGENTS.find((a) => a !== from)!;
    await post(`/v1/conversations/${conversationId}/messages`, { text: 'Looking into it' }, tokens[from]);
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Looking into it');

    // Act
    const res = await post(`/v1/conversations/${conversationId}/transfer`, { agentId: to, note: 'VIP, refund approved' }, tokens[from]);

    // Assess
    expect(res.status).toBe(200);
    expect(res.body.assigneeId).toBe(to);
    await sockets[to]!.waitFor(updated(conversationId, (c) => c.assigneeId === to), 10_000, 'transfer update');
    const note = await sockets[to]!.waitFor((f) => f.type === 'message.created' && f.message.text === 'VIP, refund approved');
    expect(note.message.private).toBe(true);
    const history = await get(`/v1/conversations/${conversationId}/messages`, tokens[to]);
    expect(history.body.items.map((m: { text: string }) => m.text)).toEqual(['My parcel is lost', 'Looking into it', 'VIP, refund approved']);
    const visitorHistory = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: session.token });
    expect(visitorHistory.body.items.map((m: { text: string }) => m.text)).toEqual(['My parcel is lost', 'Looking into it']);
    expect(ws.frames.some((f) => JSON.stringify(f).includes('refund approved'))).toBe(false);
    expect((await http(stack.httpUrl, 'GET', '/local/outbox')).body.items.some((i: { body: unknown }) => JSON.stringify(i.body).includes('refund approved'))).toBe(false);
    const team = (await get('/v1/agents')).body.items as { id: string; load: { live: number } }[];
    const loads = Object.fromEntries(team.map((a) => [a.id, a.load.live]));
    const held = async (id: string) => (await get(`/v1/conversations?assignee=${id}&limit=100`)).body.items.length;
    expect(loads[from]).toBe(await held(from));
    expect(loads[to]).toBe(await held(to));
  });

  it('does not make the agent who transferred with a note follow the conversation on the focused feed', async () => {
    // Prepare: a conversation of one agent, whose focused console follows it
    const { ws, conversationId } = await visitorWithConversation('Can I change my order?');
    const from = await assigned(conversationId);
    const to = AGENTS.find((a) => a !== from)!;
    const fromFeed = await WsClient.connect(`${stack.wsUrl}?feed=focused`, tokens[from]!);
    clients.push(fromFeed);

    // Act: handed over with a note, then the customer writes again
    expect((await post(`/v1/conversations/${conversationId}/transfer`, { agentId: to, note: 'Orders is yours' }, tokens[from])).status).toBe(200);
    await sockets[to]!.waitFor((f) => f.type === 'message.created' && f.message.text === 'Orders is yours', 10_000, 'the note');
    ws.send({ action: 'sendMessage', text: 'to size M please', clientMessageId: crypto.randomUUID() });
    await sockets[to]!.waitFor((f) => f.type === 'message.created' && f.message.text === 'to size M please', 10_000, 'the new assignee');
    await new Promise((r) => setTimeout(r, 300));

    // Assess: the one who handed it over heard once that it left, and nothing after
    const ofIt = fromFeed.frames.filter((f) => f.conversationId === conversationId || f.conversation?.id === conversationId);
    expect(ofIt.map((f) => `${f.type}:${f.conversation?.assigneeId ?? f.message?.text}`)).toEqual([`conversation.updated:${to}`]);
    expect((await get(`/v1/conversations/${conversationId}`)).body.participants).toBeUndefined();
    // Cleanup: the live slot goes back for the tests after this one
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it('keeps a note written over the WebSocket private, and refuses one from a visitor', async () => {
    const { session, ws, conversationId } = await visitorWithConversation('Can I get a discount?');
    const agentId = await assigned(conversationId);
    const agent = sockets[agentId]!;

    agent.send({ action: 'sendMessage', conversationId, text: 'Loyal customer, 10% ok', clientMessageId: 'ws-note-1', private: true });
    const ack = await agent.waitFor((f) => f.type === 'ack' && f.clientMessageId === 'ws-note-1');
    const note = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId);
    expect(note.message.private).toBe(true);
    // A reply written after the note reaches the visitor behind where the note would have been.
    agent.send({ action: 'sendMessage', conversationId, text: 'Here is 10% off', clientMessageId: 'ws-reply-1' });
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Here is 10% off');
    expect(ws.frames.some((f) => JSON.stringify(f).includes('Loyal customer'))).toBe(false);
    const visitorHistory = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: session.token });
    expect(visitorHistory.body.items.map((m: { text: string }) => m.text)).toEqual(['Can I get a discount?', 'Here is 10% off']);

    ws.send({ action: 'sendMessage', text: 'pretend note', clientMessageId: 'visitor-note', private: true });
    expect(await ws.waitFor((f) => f.type === 'error' && f.clientMessageId === 'visitor-note')).toMatchObject({ code: 'forbidden' });
    const history = await get(`/v1/conversations/${conversationId}/messages`, tokens[agentId]);
    expect(history.body.items.map((m: { text: string; private: boolean }) => [m.text, m.private])).toEqual([
      ['Can I get a discount?', false],
      ['Loyal customer, 10% ok', true],
      ['Here is 10% off', false],
    ]);
    // Its agent's live slot back for the tests below.
    expect((await post(`/v1/conversations/${conversationId}/resolve`, {})).status).toBe(200);
  });

  it('transfers to a team: only its members get the conversation, and the inbox filters by team', async () => {
    await http(stack.httpUrl, 'PUT', '/v1/agents/ws-ben', { token: admin, body: { teams: ['billing'] } });
    const { conversationId } = await visitorWithConversation('Invoice question');
    // From an agent not in the team (one handing it to their own team would not get it back).
    const from = 'ws-ana';
    expect((await post(`/v1/conversations/${conversationId}/assign`, { agentId: from })).status).toBe(200);

    const typo = await post(`/v1/conversations/${conversationId}/transfer`, { team: 'biling' }, tokens[from]);
    const typoWithAgent = await post(`/v1/conversations/${conversationId}/transfer`, { agentId: 'ws-ben', team: 'biling' }, tokens[from]);
    const res = await post(`/v1/conversations/${conversationId}/transfer`, { team: 'billing' }, tokens[from]);

    expect([typo.status, typoWithAgent.status]).toEqual([404, 404]);
    expect(res.status).toBe(200);
    expect(res.body.team).toBe('billing');
    await eventually(async () => (await get(`/v1/conversations/${conversationId}`)).body.assigneeId === 'ws-ben');
    const billing = await get('/v1/conversations?status=open&team=billing');
    expect(billing.body.items.map((c: { id: string }) => c.id)).toEqual([conversationId]);
    // Parameters left empty by a form count as not given.
    const blanks = await get('/v1/conversations?status=&team=billing&channel=&assignee=&limit=&cursor=');
    expect(blanks.body.items.map((c: { id: string }) => c.id)).toEqual([conversationId]);
    const mine = await get('/v1/conversations?assignee=me', tokens['ws-ben']);
    expect(mine.body.items.map((c: { id: string }) => c.id)).toContain(conversationId);
    expect((await post(`/v1/conversations/${conversationId}/transfer`, {}, tokens['ws-ben'])).status).toBe(400);
  });

  it('labels conversations with the labels an admin defined, and filters the inbox by label', async () => {
    const put = (path: string, body: unknown, token = admin) => http(stack.httpUrl, 'PUT', path, { token, body });
    expect((await put('/v1/settings', { labels: [{ name: 'vip' }, { name: 'vip' }] })).status).toBe(400);
    expect((await put('/v1/settings', { labels: [{ name: 'Billing Issue' }] })).status).toBe(400);
    const defined = await put('/v1/settings', { labels: [{ name: 'billing-issue', color: '#ff0000', description: 'Invoices' }, { name: 'vip' }] });
    expect(defined.status).toBe(200);
    expect(defined.body.labels.map((l: { name: string }) => l.name)).toEqual(['billing-issue', 'vip']);

    const { ws, conversationId } = await visitorWithConversation('Where is my refund?');
    const other = await visitorWithConversation('Just browsing');
    const agentId = await assigned(conversationId);
    const agentSocket = sockets[agentId]!;
    const labelled = agentSocket.waitFor(updated(conversationId, (c) => JSON.stringify(c.labels) === '["billing-issue","vip"]'), 10_000, 'labels event');
    const res = await put(`/v1/conversations/${conversationId}/labels`, { labels: ['vip', 'billing-issue', 'vip'] }, tokens[agentId]);
    expect(res.status).toBe(200);
    expect(res.body.labels).toEqual(['billing-issue', 'vip']);
    await labelled;
    // The customer hears that the conversation changed, not how the team files it.
    await ws.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.updatedAt === res.body.updatedAt, 10_000, 'visitor update');
    const shown = ws.frames.filter((f) => f.conversation).map((f) => Object.keys(f.conversation));
    expect(shown.length).toBeGreaterThan(1);
    for (const fields of shown) expect(fields.filter((k) => ['labels', 'team', 'participants'].includes(k))).toEqual([]);

    // Refused changes change nothing.
    const unknown = await put(`/v1/conversations/${conversationId}/labels`, { labels: ['vip', 'refund'] }, tokens[agentId]);
    expect([unknown.status, unknown.body.error.code]).toEqual([400, 'unknown_label']);
    const tooMany = await put(`/v1/conversations/${conversationId}/labels`, { labels: Array.from({ length: 21 }, (_, i) => `l${i}`) }, tokens[agentId]);
    expect(tooMany.status).toBe(400);
    expect((await put('/v1/conversations/nope/labels', { labels: ['vip'] }, tokens[agentId])).status).toBe(404);
    expect((await get('/v1/conversations?label=VIP')).status).toBe(400);
    for (const assignee of ['none', 'a#b', 'x y']) {
      const listed = await get(`/v1/conversations?assignee=${encodeURIComponent(assignee)}`);
      expect([listed.status, listed.body.error?.message], assignee).toEqual([400, expect.stringMatching(/assignee/)]);
    }

    // A customer's message (the hot path's update) keeps them.
    const clientMessageId = crypto.randomUUID();
    ws.send({ action: 'sendMessage', text: 'Any news?', clientMessageId });
    await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
    await eventually(async () => (await get(`/v1/conversations/${conversationId}/messages`)).body.items.some((m: { text: string }) => m.text === 'Any news?'));
    expect((await get(`/v1/conversations/${conversationId}`)).body.labels).toEqual(['billing-issue', 'vip']);

    const ids = (res: { body: { items: { id: string }[] } }) => res.body.items.map((c) => c.id);
    expect(ids(await get('/v1/conversations?status=open&label=vip'))).toEqual([conversationId]);
    expect(ids(await get(`/v1/conversations?assignee=${agentId}&label=billing-issue`))).toEqual([conversationId]);
    expect(ids(await get('/v1/conversations?status=open'))).toContain(other.conversationId);
    expect((await get(`/v1/conversations/${other.conversationId}`)).body.labels).toEqual([]);

    // A label the admin removes stays where it is, and may stay while the others change; it is not put anywhere new.
    expect((await put('/v1/settings', { labels: [{ name: 'billing-issue' }] })).status).toBe(200);
    const kept = await put(`/v1/conversations/${conversationId}/labels`, { labels: ['vip'] }, tokens[agentId]);
    expect([kept.status, kept.body.labels]).toEqual([200, ['vip']]);
    const spread = await put(`/v1/conversations/${other.conversationId}/labels`, { labels: ['vip'] }, tokens[agentId]);
    expect([spread.status, spread.body.error?.code]).toEqual([400, 'unknown_label']);
    expect((await put(`/v1/conversations/${conversationId}/labels`, { labels: [] }, tokens[agentId])).body.labels).toEqual([]);
    expect(ids(await get('/v1/conversations?status=open&label=vip'))).toEqual([]);
    // Once gone from the conversation too, it is gone.
    expect((await put(`/v1/conversations/${conversationId}/labels`, { labels: ['vip'] }, tokens[agentId])).status).toBe(400);
    // Their slots are for the tests after this one.
    for (const id of [conversationId, other.conversationId]) expect((await post(`/v1/conversations/${id}/resolve`, {})).status).toBe(200);
  });

  it('answers many label writes to one conversation at once without a 5xx, and keeps one of them whole', async () => {
    const put = (path: string, body: unknown) => http(stack.httpUrl, 'PUT', path, { token: admin, body });
    const names = Array.from({ length: 20 }, (_, i) => `busy-${i}`);
    expect((await put('/v1/settings', { labels: names.map((name) => ({ name })) })).status).toBe(200);
    const { conversationId } = await visitorWithConversation('Many hands');
    const answers = await Promise.all(names.map((name) => put(`/v1/conversations/${conversationId}/labels`, { labels: [name] })));
    // Each write lands, or is told to try again (503 conversation_busy, Retry-After); none fails as a bug.
    expect(answers.filter((a) => a.status !== 200 && !(a.status === 503 && a.body.error.code === 'conversation_busy')).map((a) => a.status)).toEqual([]);
    const [only] = (await get(`/v1/conversations/${conversationId}`)).body.labels as string[];
    expect(names).toContain(only);
    expect((await post(`/v1/conversations/${conversationId}/resolve`, {})).status).toBe(200);
  });

  it('keeps both of two settings saves made at once, each of its own section', async () => {
    const put = (body: unknown) => http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body });
    for (let round = 0; round < 8; round++) {
      const answers = await Promise.all([put({ labels: [{ name: `round-${round}` }] }), put({ sla: { firstReplySeconds: 600 + round } })]);
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      const saved = (await get('/v1/settings')).body;
      expect([saved.labels.map((l: { name: string }) => l.name), saved.sla.firstReplySeconds], `round ${round}`).toEqual([[`round-${round}`], 600 + round]);
    }
  });

  it('assigns to an agent who never opened the console (themselves, or named by an admin), counting it on their load, and sends one back to the queue with a note', async () => {
    // Prepare
    const { conversationId } = await visitorWithConversation('Anyone there?');
    const from = await assigned(conversationId);
    const fresh = await agentToken(stack.httpUrl, 'ws-fresh', 'agent', 'Fay');

    // Act: an agent names someone nobody has seen; the new agent takes it; an admin gives it to a
    // colleague who has not signed in yet; then it goes back to the queue with only a note
    const typo = await post(`/v1/conversations/${conversationId}/assign`, { agentId: 'ws-bne' }, tokens[from]);
    const self = await post(`/v1/conversations/${conversationId}/assign`, { agentId: 'ws-fresh' }, fresh);
    const assign = await post(`/v1/conversations/${conversationId}/assign`, { agentId: 'ws-newcomer' });
    const agents = (await get('/v1/agents')).body.items as { id: string; name?: string; status: string; load: { live: number } }[];
    const back = await post(`/v1/conversations/${conversationId}/transfer`, { note: 'Needs someone who speaks Dutch' }, tokens[from]);

    // Assess
    expect(typo.status).toBe(404);
    expect(agents.some((a) => a.id === 'ws-bne')).toBe(false);
    expect(self.body.assigneeId).toBe('ws-fresh');
    expect(assign.status).toBe(200);
    expect(assign.body.assigneeId).toBe('ws-newcomer');
    expect(agents.find((a) => a.id === 'ws-fresh')).toMatchObject({ name: 'Fay', status: 'offline', load: { live: 0 } });
    expect(agents.find((a) => a.id === 'ws-newcomer')).toMatchObject({ status: 'offline', load: { live: 1 } });
    expect(back.status).toBe(200);
    // Back in the queue, and the answer shows where routing took it from there (an agent online).
    expect(back.body.assigneeId).not.toBe('ws-newcomer');
    expect(back.body.assigneeId).toBe((await get(`/v1/conversations/${conversationId}`)).body.assigneeId);
    const history = (await get(`/v1/conversations/${conversationId}/messages`)).body.items as { text: string; private: boolean }[];
    expect(history.at(-1)).toMatchObject({ text: 'Needs someone who speaks Dutch', private: true });
    await eventually(async () => (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === 'ws-newcomer').load.live === 0);
    // Cleanup: routing gave it to an agent online; that live slot goes back for the tests after this one
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it('hands a conversation sent back to the queue to anyone but the agent it was taken from', async () => {
    // Prepare: a conversation of one agent; the other has no room for now
    const { conversationId } = await visitorWithConversation('Sprechen Sie Deutsch?');
    const from = await assigned(conversationId);
    const other = AGENTS.find((a) => a !== from)!;
    expect((await capacity(other, 0)).status).toBe(200);

    // Act: back to the team's queue with a note, by the agent whose slot that frees
    const back = await post(`/v1/conversations/${conversationId}/transfer`, { note: 'Needs someone who speaks German' }, tokens[from]);

    // Assess: it waits for someone else rather than going straight back (its agent has the most room now)
    expect(back.status).toBe(200);
    expect(back.body.assigneeId).toBeNull();
    await new Promise((r) => setTimeout(r, 300));
    expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).toBeNull();
    // The other agent's room comes back: it is theirs
    expect((await capacity(other, null)).status).toBe(200);
    expect(await assigned(conversationId)).toBe(other);
    // Unassigning sends it back to the queue the same way: not to the one who had it
    expect((await capacity(from, 0)).status).toBe(200);
    expect((await post(`/v1/conversations/${conversationId}/assign`, { agentId: null }, tokens[other])).body.assigneeId).toBeNull();
    expect((await capacity(from, null)).status).toBe(200);
    expect(await assigned(conversationId)).toBe(from);
    // Cleanup: the live slot goes back for the tests after this one
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it('offers a handed-off conversation back to its agent once the customer writes again and nobody else can take it', async () => {
    // Prepare: handed back to the queue by its agent, the only one with room; it waits
    const { ws, conversationId } = await visitorWithConversation('Can you check my order?');
    const from = await assigned(conversationId);
    const other = AGENTS.find((a) => a !== from)!;
    expect((await capacity(other, 0)).status).toBe(200);
    expect((await post(`/v1/conversations/${conversationId}/transfer`, { note: 'someone else, please' }, tokens[from])).body.assigneeId).toBeNull();
    await new Promise((r) => setTimeout(r, 300));
    expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).toBeNull();

    // Act: the customer writes again
    ws.send({ action: 'sendMessage', text: 'Hello? Anyone there?', clientMessageId: crypto.randomUUID() });

    // Assess: nobody else has room, so the agent who gave it up is offered it rather than leaving the customer waiting
    expect(await assigned(conversationId)).toBe(from);
    // Cleanup
    expect((await capacity(other, null)).status).toBe(200);
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it('offers a handed-off conversation back to its agent once the hold has lapsed, on the recurring drain', async () => {
    // Prepare: handed back by its agent, the only one with room; the hand-off is older than the hold
    const { conversationId } = await visitorWithConversation('Still waiting for my refund');
    const from = await assigned(conversationId);
    const other = AGENTS.find((a) => a !== from)!;
    expect((await capacity(other, 0)).status).toBe(200);
    expect((await post(`/v1/conversations/${conversationId}/assign`, { agentId: null }, tokens[from])).body.assigneeId).toBeNull();
    await drainQueue();
    expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).toBeNull();
    await handedOffMinutesAgo(conversationId, DEFAULT_HANDOFF_HOLD_MINUTES + 1);

    // Act: the recurring job (the load recount) runs
    await recountAllLoads();

    // Assess
    expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).toBe(from);
    // Cleanup
    expect((await capacity(other, null)).status).toBe(200);
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it("keeps a handed-off conversation from its agent for the workspace's hold: a shorter one gives it back on saving, 0 at once", async () => {
    // Prepare: handed back by its agent, the only one with room, 5 minutes ago: the default hold keeps it waiting
    const { conversationId } = await visitorWithConversation('Where is my parcel?');
    const from = await assigned(conversationId);
    const other = AGENTS.find((a) => a !== from)!;
    const hold = (handoffHoldMinutes: number) => http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { routing: { handoffHoldMinutes } } });
    try {
      expect((await capacity(other, 0)).status).toBe(200);
      expect((await post(`/v1/conversations/${conversationId}/assign`, { agentId: null }, tokens[from])).body.assigneeId).toBeNull();
      await handedOffMinutesAgo(conversationId, 5);
      await recountAllLoads();
      expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).toBeNull();

      // Act: an admin shortens the hold to 2 minutes
      const shorter = await hold(2);

      // Assess: the hold has passed; the save itself offers it (no wait for the recurring drain)
      expect(shorter.status, shorter.text).toBe(200);
      expect(shorter.body.routing).toEqual({ handoffHoldMinutes: 2 });
      expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).toBe(from);

      // Act: with no hold, its agent sends it back again while nobody else has room
      expect((await hold(0)).status).toBe(200);
      const back = await post(`/v1/conversations/${conversationId}/transfer`, { note: 'back to the team' }, tokens[from]);

      // Assess: nobody else can take it, so it comes straight back to them rather than waiting
      expect(back.status).toBe(200);
      expect(back.body.assigneeId).toBe(from);
    } finally {
      // Cleanup: the default hold, the other agent's room, and the live slot for the tests after this one
      expect((await hold(DEFAULT_HANDOFF_HOLD_MINUTES)).status).toBe(200);
      expect((await capacity(other, null)).status).toBe(200);
      expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
    }
  });

  it('makes up no agent for a request it refuses, and keeps the id unassigned conversations are filed under for nobody', async () => {
    const { conversationId } = await visitorWithConversation('Who has this?');

    const missingAssign = await post('/v1/conversations/01J0000000000000000000000Z/assign', { agentId: 'ws-ghost-a' });
    const missingTransfer = await post('/v1/conversations/01J0000000000000000000000Z/transfer', { agentId: 'ws-ghost-t' });
    const none = await post(`/v1/conversations/${conversationId}/assign`, { agentId: 'none' });
    const noneTransfer = await post(`/v1/conversations/${conversationId}/transfer`, { agentId: 'none' });
    const noneProfile = await http(stack.httpUrl, 'PUT', '/v1/agents/none', { token: admin, body: { liveCapacity: 3 } });

    expect([missingAssign.status, missingTransfer.status]).toEqual([404, 404]);
    expect([none.status, noneTransfer.status, noneProfile.status]).toEqual([400, 400, 400]);
    const agents = (await get('/v1/agents')).body.items as { id: string }[];
    expect(agents.map((a) => a.id).filter((id) => ['ws-ghost-a', 'ws-ghost-t', 'none'].includes(id))).toEqual([]);
    expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).not.toBe('none');
    // A token whose subject is that id is no agent's, on HTTP as on the WebSocket: it would see the
    // unassigned queue as its own (assignee=me) and reply as "none".
    const noneToken = await agentToken(stack.httpUrl, 'none', 'admin', 'Nobody');
    const mine = await http(stack.httpUrl, 'GET', '/v1/conversations?assignee=me', { token: noneToken });
    const replied = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: noneToken, body: { text: 'as nobody' } });
    expect([mine.status, replied.status]).toEqual([401, 401]);
    expect(mine.body.error.code).toBe('unauthorized');
    // Cleanup: the live slot routing gave it goes back for the tests after this one
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it('refuses the inbox filter’s own words and ids no path could name as agent ids', async () => {
    const { conversationId } = await visitorWithConversation('Whose is this?');
    const owner = await assigned(conversationId);

    // Act: a console that says "me" for its own agent, an admin who names the queue, an id no
    // PUT /v1/agents/{id} could reach
    const me = await post(`/v1/conversations/${conversationId}/assign`, { agentId: 'me' }, tokens[owner]);
    const unassigned = await post(`/v1/conversations/${conversationId}/assign`, { agentId: 'unassigned' });
    const transferMe = await post(`/v1/conversations/${conversationId}/transfer`, { agentId: 'me', note: 'mine' });
    const odd = await post(`/v1/conversations/${conversationId}/assign`, { agentId: 'ws ana/😀' });
    const profiles = await Promise.all(['me', 'unassigned'].map((id) => http(stack.httpUrl, 'PUT', `/v1/agents/${id}`, { token: admin, body: { liveCapacity: 3 } })));

    // Assess: 400s that change nothing, and make up nobody
    expect([me.status, unassigned.status, transferMe.status, odd.status, ...profiles.map((r) => r.status)]).toEqual([400, 400, 400, 400, 400, 400]);
    expect(me.body.error.message).toContain('"me" is reserved');
    const agents = (await get('/v1/agents')).body.items as { id: string }[];
    expect(agents.map((a) => a.id).filter((id) => ['me', 'unassigned', 'ws ana/😀'].includes(id))).toEqual([]);
    expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).toBe(owner);
    expect((await get(`/v1/conversations/${conversationId}/messages`)).body.items.map((m: { text: string }) => m.text)).toEqual(['Whose is this?']);
    // Cleanup: the live slot goes back for the tests after this one
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it('leaves out of an agent’s list a conversation the assignee index still files there after it moved', async () => {
    // Prepare: the index lagging a transfer (deployed, an index is eventually consistent): the
    // conversation's item names another agent while its index key still says the owner's
    const { conversationId } = await visitorWithConversation('Moved a moment ago');
    const owner = await assigned(conversationId);
    const mine = async () => (await get(`/v1/conversations?assignee=${owner}&limit=100`)).body.items.map((c: { id: string }) => c.id) as string[];
    const openCount = async () => (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === owner).openCount as number;
    expect(await mine()).toContain(conversationId);
    const countBefore = await openCount();
    const setAssignee = (assigneeId: string) =>
      ddb().send(new UpdateCommand({ TableName: config.tableName, Key: keys.conversation(conversationId), UpdateExpression: 'SET assigneeId = :a', ExpressionAttributeValues: { ':a': assigneeId } }));
    await setAssignee('ws-elsewhere');

    // Act + Assess: the owner's inbox and counts are the table's
    try {
      expect(await mine()).not.toContain(conversationId);
      expect(await openCount()).toBe(countBefore - 1);
    } finally {
      await setAssignee(owner);
    }
    // Cleanup: the live slot goes back for the tests after this one
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it('pages an agent’s inbox newest activity first across pages, not in the order the conversations arrived', async () => {
    // Prepare: two conversations of one agent; the older one then gets the newest message
    const first = await visitorWithConversation('first to arrive');
    const owner = await assigned(first.conversationId);
    const second = await visitorWithConversation('second to arrive');
    expect((await post(`/v1/conversations/${second.conversationId}/assign`, { agentId: owner })).status).toBe(200);
    first.ws.send({ action: 'sendMessage', text: 'first, again', clientMessageId: crypto.randomUUID() });
    await eventually(async () => (await get(`/v1/conversations/${first.conversationId}`)).body.unreadCount === 2);

    // Act: walk the owner's inbox one conversation per page
    const walked: { id: string; lastMessageAt: string }[] = [];
    let cursor: string | null = null;
    do {
      const page = await get(`/v1/conversations?assignee=me&limit=1${cursor ? `&cursor=${cursor}` : ''}`, tokens[owner]);
      expect(page.status).toBe(200);
      walked.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor);

    // Assess
    const ids = walked.map((c) => c.id);
    expect(ids.indexOf(first.conversationId)).toBeLessThan(ids.indexOf(second.conversationId));
    expect(walked.map((c) => c.lastMessageAt)).toEqual(walked.map((c) => c.lastMessageAt).sort().reverse());
    expect(new Set(ids).size).toBe(ids.length);
    // Cleanup: both live slots go back for the tests after this one
    for (const { conversationId } of [first, second]) expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });

  it('keeps an agent’s clientMessageId per conversation: the same id in two conversations sends two replies', async () => {
    const one = await visitorWithConversation('first visitor');
    const two = await visitorWithConversation('second visitor');
    const clientMessageId = 'c-1';
    const first = await post(`/v1/conversations/${one.conversationId}/messages`, { text: 'for the first', clientMessageId });
    const second = await post(`/v1/conversations/${two.conversationId}/messages`, { text: 'for the second', clientMessageId });
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(second.body.message).toMatchObject({ conversationId: two.conversationId, text: 'for the second' });
    await two.ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'for the second', 10_000, 'the second reply');
    // Still one reply per retry within a conversation.
    const again = await post(`/v1/conversations/${two.conversationId}/messages`, { text: 'for the second', clientMessageId });
    expect(again.body.message.id).toBe(second.body.message.id);
    // The same id for another text (a console counting its ids anew) is no retry: another reply, sent.
    const reused = await post(`/v1/conversations/${two.conversationId}/messages`, { text: 'something else', clientMessageId });
    expect(reused.status).toBe(202);
    expect(reused.body.message.id).not.toBe(second.body.message.id);
    await two.ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'something else', 10_000, 'the other reply');
    // Their slots go back for the tests that follow.
    for (const { conversationId } of [one, two]) expect((await post(`/v1/conversations/${conversationId}/resolve`, {})).status).toBe(200);
  });

  it('carries typing and read receipts both ways, and reading resets the unread count', async () => {
    const { ws, conversationId, messageId } = await visitorWithConversation('Are you there?');
    const agentId = await assigned(conversationId);
    const agent = sockets[agentId]!;

    // The visitor's signals name the contact its messages name, so a console can match them.
    const contact = (await get(`/v1/conversations/${conversationId}`)).body.contact as { id: string; name: string };
    const contactId = contact.id;
    expect(contact.name).toBeTruthy();
    const created = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === messageId);
    expect(created.message.sender).toMatchObject({ type: 'contact', id: contactId });
    ws.send({ action: 'typing', state: 'on' });
    const typing = await agent.waitFor((f) => f.type === 'typing' && f.conversationId === conversationId);
    expect(typing.sender).toEqual({ type: 'contact', id: contactId, name: contact.name });
    // An agent typing a note: the team sees it, the customer does not see anyone typing to them.
    const watcher = sockets[AGENTS.find((a) => a !== agentId)!]!;
    agent.send({ action: 'typing', conversationId, state: 'on', private: true });
    expect(await watcher.waitFor((f) => f.type === 'typing' && f.conversationId === conversationId && f.sender.type === 'agent')).toMatchObject({ private: true, state: 'on' });
    agent.send({ action: 'typing', conversationId, state: 'on' });
    // An agent's signal carries their name, as their messages' sender does: the widget shows who types.
    expect((await ws.waitFor((f) => f.type === 'typing')).sender).toEqual({ type: 'agent', id: agentId, name: agentId === 'ws-ana' ? 'Ana' : 'Ben' });
    expect(ws.frames.filter((f) => f.type === 'typing')).toHaveLength(1);
    expect(ws.frames.filter((f) => f.type === 'typing')[0]!.private).toBeUndefined();

    const before = await get('/v1/agents');
    expect(before.body.items.find((a: { id: string }) => a.id === agentId).unreadCount).toBeGreaterThan(0);
    agent.send({ action: 'markRead', conversationId, messageId });
    expect((await ws.waitFor((f) => f.type === 'read')).by).toMatchObject({ type: 'agent', id: agentId });
    await agent.waitFor(updated(conversationId, (c) => c.unreadCount === 0));

    const reply = await post(`/v1/conversations/${conversationId}/messages`, { text: 'Yes!' }, tokens[agentId]);
    // A read receipt names a message of its conversation: a made-up id (one past every real id
    // would mark every later reply read) is refused, and the agents hear nothing of it.
    const madeUp = 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ';
    ws.send({ action: 'markRead', messageId: madeUp });
    expect(await ws.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'not_found' });
    ws.send({ action: 'markRead', messageId: reply.body.message.id });
    const receipt = await agent.waitFor((f) => f.type === 'read' && f.conversationId === conversationId && f.by.type === 'contact');
    expect(receipt).toMatchObject({ messageId: reply.body.message.id, by: { type: 'contact', id: contactId } });
    // The read is the reply's status too, as a provider's receipt is: a console loaded later shows it.
    const readReply = await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === reply.body.message.id && f.message.status === 'read');
    expect(readReply.conversationId).toBe(conversationId);
    const history = (await get(`/v1/conversations/${conversationId}/messages?limit=50`)).body.items as { id: string; status: string }[];
    expect(history.find((m) => m.id === reply.body.message.id)?.status).toBe('read');
    agent.send({ action: 'markRead', conversationId, messageId: madeUp });
    expect(await agent.waitFor((f) => f.type === 'error' && f.code === 'not_found')).toBeTruthy();
    // An agent reading up to a note tells the agents; the visitor, whom the note's id would tell
    // that one was written (and when), hears their own last message read instead.
    const note = await post(`/v1/conversations/${conversationId}/messages`, { text: 'VIP, be kind', private: true }, tokens[agentId]);
    const readsOfOwn = () => ws.frames.filter((f) => f.type === 'read' && f.messageId === messageId && f.by.id === agentId).length;
    const ownReadsBefore = readsOfOwn();
    agent.send({ action: 'markRead', conversationId, messageId: note.body.message.id });
    await agent.waitFor((f) => f.type === 'read' && f.messageId === note.body.message.id);
    await eventually(() => readsOfOwn() > ownReadsBefore);
    expect(ws.frames.filter((f) => JSON.stringify(f).includes(note.body.message.id))).toEqual([]);

    ws.send({ action: 'sendMessage', text: 'one more', clientMessageId: crypto.randomUUID() });
    // A plain message brings its conversation's new unread count along, and (full feed) conversation.updated too.
    const more = await agent.waitFor((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text === 'one more');
    expect(more.conversation).toMatchObject({ id: conversationId, unreadCount: 1, lastMessageAt: more.message.createdAt });
    await agent.waitFor(updated(conversationId, (c) => c.unreadCount === 1));
    const read = await post(`/v1/conversations/${conversationId}/read`, {}, tokens[agentId]);
    expect(read.body.unreadCount).toBe(0);
    await agent.waitFor(updated(conversationId, (c) => c.unreadCount === 0 && c.status === 'open'));
    // Notes are the team's: a visitor's typing cannot be one.
    ws.send({ action: 'typing', state: 'on', private: true });
    expect(await ws.waitFor((f) => f.type === 'error' && f.code === 'forbidden')).toMatchObject({ message: 'visitors cannot write private notes' });
  });

  it('moves through pending, snoozed (with a wake-up), resolved and back to open on a customer message', async () => {
    const { ws, conversationId } = await visitorWithConversation('Lifecycle');
    const agentId = await assigned(conversationId);
    const load = async () => (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === agentId).load.live as number;
    const held = await load();

    const pending = await post(`/v1/conversations/${conversationId}/status`, { status: 'pending' });
    expect(pending.body.status).toBe('pending');
    expect(await load()).toBe(held - 1);

    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'snoozed' })).status).toBe(400);
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'snoozed', snoozedUntil: '2001-01-01T00:00:00Z' })).status).toBe(400);
    // A year and a bit ahead at most: 9999 is a typo, and nothing would be snoozed at all.
    const farOff = await post(`/v1/conversations/${conversationId}/status`, { status: 'snoozed', snoozedUntil: '9999-12-31T00:00:00Z' });
    expect(farOff.status).toBe(400);
    expect(farOff.body.error.message).toContain('366 days');
    expect((await get(`/v1/conversations/${conversationId}`)).body.status).not.toBe('snoozed');
    const until = new Date(Date.now() + 3600_000).toISOString();
    const snoozed = await post(`/v1/conversations/${conversationId}/status`, { status: 'snoozed', snoozedUntil: until });
    expect(snoozed.body).toMatchObject({ status: 'snoozed', snoozedUntil: until });
    const schedule = stack.aws.scheduler.list().find((s) => s.name === snoozeScheduleName(conversationId));
    expect(JSON.parse(schedule!.target.input!)).toMatchObject({ kind: 'snoozeWake', conversationId });
    expect(await wakeSnoozed(conversationId)).toBeUndefined(); // not due yet
    const woken = await wakeSnoozed(conversationId, new Date(Date.now() + 3700_000));
    expect(woken).toMatchObject({ status: 'open', assigneeId: agentId });
    expect(await load()).toBe(held);

    const resolved = await post(`/v1/conversations/${conversationId}/resolve`, {});
    expect(resolved.body.status).toBe('resolved');
    expect(await load()).toBe(held - 1);

    ws.send({ action: 'sendMessage', text: 'Actually, one more thing', clientMessageId: crypto.randomUUID() });
    await eventually(async () => (await get(`/v1/conversations/${conversationId}`)).body.status === 'open');
    expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).toBe(agentId);
    await eventually(async () => (await load()) === held);
    for (const status of ['pending', 'snoozed', 'resolved']) {
      expect(sockets[agentId]!.frames.some(updated(conversationId, (c) => c.status === status)), status).toBe(true);
    }
  });

  it('keeps canned responses for admins to manage and agents to search and fill in', async () => {
    const created = await post('/v1/canned-responses', { shortCode: 'greet', text: 'Hi {{contact.name|there}}, {{agent.name}} here. {{unknown.thing}}' });
    expect(created.status).toBe(201);
    await post('/v1/canned-responses', { shortCode: 'refund', text: 'Your refund is on its way.' });
    expect((await post('/v1/canned-responses', { shortCode: 'greet', text: 'again' })).status).toBe(409);
    expect((await post('/v1/canned-responses', { shortCode: '', text: 'x' })).status).toBe(400);

    const agent = tokens['ws-ana']!;
    expect((await get('/v1/canned-responses', agent)).body.items.map((c: { shortCode: string }) => c.shortCode)).toEqual(['greet', 'refund']);
    expect((await get('/v1/canned-responses?q=way', agent)).body.items.map((c: { shortCode: string }) => c.shortCode)).toEqual(['refund']);
    expect((await get(`/v1/canned-responses/${created.body.id}`, agent)).body).toEqual(created.body);

    const { conversationId } = await visitorWithConversation('canned', 'Carla');
    const rendered = await get(`/v1/canned-responses/${created.body.id}/render?conversationId=${conversationId}`, agent);
    expect(rendered.status).toBe(200);
    expect(rendered.body.text).toBe('Hi Carla, Ana here. {{unknown.thing}}');
    expect((await get(`/v1/canned-responses/${created.body.id}/render`, agent)).status).toBe(400);

    expect((await http(stack.httpUrl, 'DELETE', `/v1/canned-responses/${created.body.id}`, { token: admin })).status).toBe(204);
    expect((await http(stack.httpUrl, 'DELETE', `/v1/canned-responses/${created.body.id}`, { token: admin })).status).toBe(404);
    expect((await get(`/v1/canned-responses/${created.body.id}`, agent)).body.error.code).toBe('not_found');
    expect((await get('/v1/canned-responses', agent)).body.items).toHaveLength(1);
    // Its short code is free again.
    expect((await post('/v1/canned-responses', { shortCode: 'GREET', text: 'Hello!' })).status).toBe(201);

    // Two admins (or a double click) saving the same code at once: one wins, the others hear 409.
    const racers = await Promise.all(['thanks', 'Thanks', 'THANKS', 'thanks', 'thanks', 'Thanks', 'thanks', 'thanks'].map((shortCode) => post('/v1/canned-responses', { shortCode, text: 'Thanks!' })));
    expect(racers.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    expect((await get('/v1/canned-responses?q=thanks', agent)).body.items).toHaveLength(1);
  });

  it('keeps an agent away by choice away when the console reconnects, and back online when they say so', async () => {
    const token = await agentToken(stack.httpUrl, 'ws-dora', 'agent', 'Dora');
    // No room: Dora's presence must not take conversations the other tests count on.
    await http(stack.httpUrl, 'PUT', '/v1/agents/ws-dora', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } });
    const status = async () => (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === 'ws-dora')?.status;
    const first = await connect(token);
    await eventually(async () => (await status()) === 'online');
    first.send({ action: 'setPresence', status: 'away' });
    await eventually(async () => (await status()) === 'away');

    // Act: the console's socket closes (API Gateway ends every connection within two hours) and reconnects
    await first.close();
    const again = await connect(token);
    await new Promise((r) => setTimeout(r, 500));

    // Assess: still away, and nobody was told otherwise
    expect(await status()).toBe('away');
    const onlineAfterAway = sockets['ws-ana']!.frames.filter((f) => f.type === 'presence' && f.agentId === 'ws-dora' && f.status === 'online');
    expect(onlineAfterAway).toHaveLength(1);
    const mark = sockets['ws-ana']!.frames.length;
    again.send({ action: 'setPresence', status: 'online' });
    await eventually(async () => (await status()) === 'online');
    const back = await sockets['ws-ana']!.waitFor((f) => sockets['ws-ana']!.frames.indexOf(f) >= mark && f.type === 'presence' && f.agentId === 'ws-dora');
    expect((await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === 'ws-dora')).toMatchObject({ status: 'online', presenceAt: back.at });
    await again.close();
  });

  it('with no grace period, turns an agent whose console closed away at once, and online again when it reconnects', async () => {
    const previous = process.env.CONVERSA_PRESENCE_GRACE_SECONDS;
    process.env.CONVERSA_PRESENCE_GRACE_SECONDS = '0';
    try {
      const token = await agentToken(stack.httpUrl, 'ws-eli', 'agent', 'Eli');
      await http(stack.httpUrl, 'PUT', '/v1/agents/ws-eli', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } });
      const status = async () => (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === 'ws-eli')?.status;
      const first = await connect(token);
      await eventually(async () => (await status()) === 'online');
      const seen = sockets['ws-ana']!.frames.length;
      await first.close();

      // Assess without the agents list (reading it settles grace periods that ran out by itself):
      // the close alone turns Eli away, in the store and for the rest of the team.
      const awayFrame = await eventually(
        () => sockets['ws-ana']!.frames.slice(seen).find((f) => f.type === 'presence' && f.agentId === 'ws-eli' && f.status === 'away'),
        5_000,
      );
      expect(awayFrame).toMatchObject({ type: 'presence', agentId: 'ws-eli', status: 'away' });
      expect(await getAgent('ws-eli')).toMatchObject({ status: 'away' });
      expect(await status()).toBe('away');

      // Act: a reload's new console
      const again = await connect(token);

      // Assess: away was not the agent's choice, so the reconnection puts them back online
      await eventually(async () => (await status()) === 'online');
      await again.close();
    } finally {
      process.env.CONVERSA_PRESENCE_GRACE_SECONDS = previous;
    }
  });

  it('tells the team an agent turned away when the grace period ends, with nobody reading the agent list', async () => {
    const token = await agentToken(stack.httpUrl, 'ws-finn', 'agent', 'Finn');
    await http(stack.httpUrl, 'PUT', '/v1/agents/ws-finn', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } });
    const finn = await connect(token);
    const online = await sockets['ws-ana']!.waitFor((f) => f.type === 'presence' && f.agentId === 'ws-finn' && f.status === 'online');
    const seen = sockets['ws-ana']!.frames.length;

    // Act: the console closes (the test stack's grace period is a second)
    await finn.close();

    // Assess: the grace period's timer announces it, once; the agent list is not read meanwhile
    const away = await eventually(() => sockets['ws-ana']!.frames.slice(seen).find((f) => f.type === 'presence' && f.agentId === 'ws-finn'), 8_000);
    expect(away).toMatchObject({ status: 'away' });
    expect(await getAgent('ws-finn')).toMatchObject({ status: 'away' });
    await new Promise((r) => setTimeout(r, 300));
    // Each frame says when its status was stored (a console keeps the newer of two out of order), as the list does.
    expect(Date.parse(online.at)).toBeLessThan(Date.parse(away.at));
    expect((await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === 'ws-finn')).toMatchObject({ status: 'away', presenceAt: away.at });
    await new Promise((r) => setTimeout(r, 300));
    expect(sockets['ws-ana']!.frames.slice(seen).filter((f) => f.type === 'presence' && f.agentId === 'ws-finn')).toHaveLength(1);
  });

  it('keeps an agent who reloaded within the grace period online when its timer fires', async () => {
    const token = await agentToken(stack.httpUrl, 'ws-gus', 'agent', 'Gus');
    await http(stack.httpUrl, 'PUT', '/v1/agents/ws-gus', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } });
    const first = await connect(token);
    await eventually(async () => (await getAgent('ws-gus'))?.status === 'online');
    const seen = sockets['ws-ana']!.frames.length;

    // Act: a reload: the old tab closes, the new one opens within the grace period, and the timer fires
    await first.close();
    await eventually(async () => Boolean((await getAgent('ws-gus'))?.graceUntil));
    const again = await connect(token);
    await new Promise((r) => setTimeout(r, 3000));

    // Assess: online all along, and nobody was told otherwise
    expect(await getAgent('ws-gus')).toMatchObject({ status: 'online' });
    expect(sockets['ws-ana']!.frames.slice(seen).filter((f) => f.type === 'presence' && f.agentId === 'ws-gus' && f.status !== 'online')).toEqual([]);
    await again.close();
  });

  it('announces presence, and an agent whose last connection closed turns away after the grace period and gets nothing new', async () => {
    const token = await agentToken(stack.httpUrl, 'ws-cleo', 'agent', 'Cleo');
    const cleo = await connect(token);
    await sockets['ws-ana']!.waitFor((f) => f.type === 'presence' && f.agentId === 'ws-cleo' && f.status === 'online');
    cleo.send({ action: 'setPresence', status: 'away' });
    await sockets['ws-ana']!.waitFor((f) => f.type === 'presence' && f.agentId === 'ws-cleo' && f.status === 'away');
    cleo.send({ action: 'setPresence', status: 'online' });
    await eventually(async () => (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === 'ws-cleo').status === 'online');

    // Act: the last connection closes; everybody else is made unavailable so Cleo would be the only choice
    await cleo.close();
    await http(stack.httpUrl, 'PUT', '/v1/agents/ws-ana', { token: admin, body: { liveCapacity: 0 } });
    await http(stack.httpUrl, 'PUT', '/v1/agents/ws-ben', { token: admin, body: { liveCapacity: 0 } });
    await new Promise((r) => setTimeout(r, 1500));

    // Assess
    const { conversationId } = await visitorWithConversation('anyone?');
    await eventually(async () => {
      const cleoNow = (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === 'ws-cleo');
      return cleoNow.status === 'away';
    });
    const awayEvents = () => sockets['ws-ana']!.frames.filter((f) => f.type === 'presence' && f.agentId === 'ws-cleo' && f.status === 'away');
    await eventually(() => awayEvents().length === 2);
    expect((await get(`/v1/conversations/${conversationId}`)).body.assigneeId).toBeNull();

    // A slot opening again hands the waiting conversation out
    await http(stack.httpUrl, 'PUT', '/v1/agents/ws-ana', { token: admin, body: { liveCapacity: 20 } });
    expect(await assigned(conversationId)).toBe('ws-ana');
  });

  it('skips the echo of a reply on the console that sent it (named by getConnection), and only on a console of the sender', async () => {
    // Prepare: the assignee has two tabs; each asks its connection id (last in this file: a
    // conversation more would shift who the order-dependent routing tests above hand theirs to)
    const { ws, conversationId } = await visitorWithConversation('Is my parcel on its way?');
    const mine = await assigned(conversationId);
    const other = AGENTS.find((a) => a !== mine)!;
    const [tab, otherTab] = [await connect(tokens[mine]!), await connect(tokens[mine]!)];
    const idOf = async (client: WsClient) => {
      client.send({ action: 'getConnection' });
      return (await client.waitFor((f) => f.type === 'connection' && typeof f.connectionId === 'string', 10_000, 'connection')).connectionId as string;
    };
    const [tabId, otherTabId] = [await idOf(tab), await idOf(otherTab)];
    const created = (id: string) => (f: Frame) => f.type === 'message.created' && f.message.id === id;

    // Act: the assignee replies from the first tab, naming it
    const reply = await post(`/v1/conversations/${conversationId}/messages`, { text: 'Yes, it left this morning', connectionId: tabId }, tokens[mine]);

    // Assess: the other tab, the colleague and the visitor get the reply; the sending tab gets its
    // status updates but not the message.created it already has from the 202
    expect(reply.status).toBe(202);
    expect(tabId).not.toBe(otherTabId);
    const messageId = reply.body.message.id as string;
    await otherTab.waitFor(created(messageId), 10_000, 'the other tab');
    await sockets[other]!.waitFor(created(messageId), 10_000, 'the colleague');
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Yes, it left this morning', 10_000, 'the visitor');
    // Sent before its updates on the same connection: once an update is there, an echo would be too.
    await tab.waitFor((f) => f.type === 'message.updated' && f.message.id === messageId, 10_000, 'status update');
    expect(tab.frames.filter(created(messageId))).toEqual([]);

    // Act: the colleague writes a note naming the assignee's tab
    const note = await post(`/v1/conversations/${conversationId}/messages`, { text: 'FYI tracking is in the CRM', private: true, connectionId: tabId }, tokens[other]);

    // Assess: someone else's connection is not skipped
    expect(note.status).toBe(202);
    await tab.waitFor(created(note.body.message.id as string), 10_000, 'the note on the assignee’s tab');
    expect((await post(`/v1/conversations/${conversationId}/status`, { status: 'resolved' })).status).toBe(200);
  });
});
