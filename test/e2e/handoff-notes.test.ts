/**
 * The notes routes write on an agent's behalf (a transfer's note, a channel move's "Continued
 * from/on" notes) are stored once per request: clients and load balancers send a request again
 * after a timeout, a 5xx or a lost answer. A crash is a throw from postAgentMessage, before it
 * runs (the change landed, the note did not) or after it (the note landed, the answer did not),
 * armed for one note; the route answers 5xx and the client sends the same request again.
 * A new transfer or move with the same text still writes its own note.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';
import { phoneHandles, postWebhook, textWebhook } from './channels-support';

/** The next crash: around the first postAgentMessage of a note with this text. */
const crash = vi.hoisted(() => ({ armed: undefined as { text: string; when: 'before' | 'after' } | undefined }));

vi.mock('../../src/domain/outbound', async (orig) => {
  const real = await orig<typeof import('../../src/domain/outbound')>();
  return {
    ...real,
    postAgentMessage: async (...args: Parameters<typeof real.postAgentMessage>) => {
      const armed = crash.armed?.text === args[2].text ? crash.armed : undefined;
      if (armed) crash.armed = undefined;
      if (armed?.when === 'before') throw new Error('simulated crash before the note');
      const message = await real.postAgentMessage(...args);
      if (armed?.when === 'after') throw new Error('simulated crash after the note');
      return message;
    },
  };
});

let stack: LocalStack;
let admin: string;
const tokens: Record<string, string> = {};
const sockets: WsClient[] = [];
const AGENTS = ['hn-ana', 'hn-ben'];

beforeAll(async () => {
  stack = await startTestStack();
  admin = await agentToken(stack.httpUrl, 'hn-admin', 'admin', 'Ada');
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { autoresponder: { enabled: false } } })).status).toBe(200);
  // The admin supervises: no conversations of their own.
  expect((await http(stack.httpUrl, 'PUT', '/v1/agents/hn-admin', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } })).status).toBe(200);
  for (const id of AGENTS) {
    tokens[id] = await agentToken(stack.httpUrl, id, 'agent', id);
    sockets.push(await WsClient.connect(stack.wsUrl, tokens[id]!));
  }
  await eventually(async () => (await get('/v1/agents')).body.items.filter((a: { status: string }) => a.status === 'online').length === 2);
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

const get = (path: string, token = admin) => http(stack.httpUrl, 'GET', path, { token });
const post = (path: string, body: unknown, token = admin) => http(stack.httpUrl, 'POST', path, { token, body });
const transfer = (id: string, body: unknown, token = admin) => post(`/v1/conversations/${id}/transfer`, body, token);
const moveTo = (id: string, channel: string, token = admin) => post(`/v1/conversations/${id}/channel`, { channel }, token);
const notes = async (id: string, text: string) =>
  ((await get(`/v1/conversations/${id}/messages?limit=100`)).body.items as { text: string; private: boolean }[]).filter((m) => m.private && m.text === text).length;
const assignee = async (id: string) => (await get(`/v1/conversations/${id}`)).body.assigneeId as string | null;

/** A web visitor's conversation, handed by routing to one of the agents. */
async function visitorConversation(text: string): Promise<{ id: string; holder: string; other: string; ws: WsClient }> {
  const session = await visitorSession(stack.httpUrl, { name: 'Vera' });
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text, clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
  const holder = await eventually(() => assignee(ack.conversationId));
  return { id: ack.conversationId, holder, other: AGENTS.find((a) => a !== holder)!, ws };
}

/** A new WhatsApp customer's conversation (their phone gives them an SMS handle to move to). */
async function whatsappConversation(text: string): Promise<string> {
  const webhook = textWebhook('whatsapp', phoneHandles().whatsapp, text);
  expect((await postWebhook(stack, 'whatsapp', webhook.body)).status).toBe(200);
  const seen = await sockets[0]!.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, 'whatsapp message');
  return seen.conversationId as string;
}

describe('transfer notes', () => {
  it('stores one note when the same transfer is sent twice', async () => {
    // Prepare
    const { id, holder, other } = await visitorConversation('My parcel is lost');

    // Act: the same request again, as after a lost answer
    const first = await transfer(id, { agentId: other, note: 'VIP, refund approved' }, tokens[holder]);
    const again = await transfer(id, { agentId: other, note: 'VIP, refund approved' }, tokens[holder]);

    // Assess
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(again.body.assigneeId).toBe(other);
    expect(await notes(id, 'VIP, refund approved')).toBe(1);
  });

  it('refuses a note of invisible characters only with a 400, moving nothing and storing no note', async () => {
    // Prepare
    const { id, holder, other } = await visitorConversation('Where is my order?');
    const before = (await get(`/v1/conversations/${id}/messages?limit=100`)).body.items.length as number;

    // Act: a zero-width space and a joiner, as pasted to get past an empty-note check
    const res = await transfer(id, { agentId: other, note: '\u200b\u200d' }, tokens[holder]);

    // Assess
    expect([res.status, res.body.error?.code]).toEqual([400, 'invalid_request']);
    expect(await assignee(id)).toBe(holder);
    expect((await get(`/v1/conversations/${id}/messages?limit=100`)).body.items.length).toBe(before);
    // Its slot back for the cases after this one, which count on the agents' room
    expect((await post(`/v1/conversations/${id}/resolve`, {}, tokens[holder])).status).toBe(200);
  });

  it('stores one note when a transfer back to the queue dies before its note and is sent again, leaving it where routing handed it', async () => {
    // Prepare: routing hands what the holder gives back to the other agent
    const { id, holder, other } = await visitorConversation('Sprechen Sie Deutsch?');
    crash.armed = { text: 'Needs someone who speaks German', when: 'before' };

    // Act: the change lands, the note does not; the client sends the request again
    const died = await transfer(id, { note: 'Needs someone who speaks German' }, tokens[holder]);
    const handedTo = await assignee(id);
    const retry = await transfer(id, { note: 'Needs someone who speaks German' }, tokens[holder]);

    // Assess: the retry finds the transfer made (routing gave it to the other agent since), moves
    // nothing again and writes its one note
    expect(died.status).toBeGreaterThanOrEqual(500);
    expect(handedTo).toBe(other);
    expect(retry.status).toBe(200);
    expect(retry.body.assigneeId).toBe(other);
    expect(await assignee(id)).toBe(other);
    expect(await notes(id, 'Needs someone who speaks German')).toBe(1);
  });

  it('stores one note when a transfer dies after its note, before the answer, and is sent again', async () => {
    // Prepare
    const { id, holder, other } = await visitorConversation('Can I change my order?');
    crash.armed = { text: 'Orders is yours', when: 'after' };

    // Act
    const died = await transfer(id, { agentId: other, note: 'Orders is yours' }, tokens[holder]);
    const retry = await transfer(id, { agentId: other, note: 'Orders is yours' }, tokens[holder]);

    // Assess
    expect(died.status).toBeGreaterThanOrEqual(500);
    expect(retry.status).toBe(200);
    expect(await notes(id, 'Orders is yours')).toBe(1);
  });

  it('stores a note for each new transfer with the same note, each sent twice, also one to the agent who has it after a change of theirs', async () => {
    // Prepare
    const { id } = await visitorConversation('Who can help me?');
    const twice = async (body: unknown) => {
      const answers = [await transfer(id, body), await transfer(id, body)];
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
    };

    // Act: to Ben, to Ana, to Ben again, all with the same note, each request sent twice
    await twice({ agentId: 'hn-ben', note: 'Over to you' });
    await twice({ agentId: 'hn-ana', note: 'Over to you' });
    await twice({ agentId: 'hn-ben', note: 'Over to you' });
    // Ben puts it on hold and takes it up again: the same transfer to him once more moves
    // nothing, yet is a new one (a person changed the conversation since)
    for (const status of ['pending', 'open']) expect((await post(`/v1/conversations/${id}/status`, { status }, tokens['hn-ben'])).status).toBe(200);
    await twice({ agentId: 'hn-ben', note: 'Over to you' });

    // Assess: three transfers moved it, the fourth followed Ben's own changes
    expect(await notes(id, 'Over to you')).toBe(4);
  });

  it('takes a request that names itself (clientRequestId) for a retry only under the same id: the same transfer again under a new id writes its note', async () => {
    // Prepare
    const { id, holder, other } = await visitorConversation('Is anyone there?');
    const body = (clientRequestId: string) => ({ agentId: other, note: 'Please call the customer back', clientRequestId });
    const [first, second] = [crypto.randomUUID(), crypto.randomUUID()];

    // Act: one request sent twice, then the same transfer under another id while nothing changed
    // (without ids, that one would pass for a retry)
    const answers = [await transfer(id, body(first), tokens[holder]), await transfer(id, body(first), tokens[holder])];
    const another = await transfer(id, body(second), tokens[holder]);

    // Assess
    expect([...answers, another].map((a) => a.status)).toEqual([200, 200, 200]);
    expect(await notes(id, 'Please call the customer back')).toBe(2);
    expect(await assignee(id)).toBe(other);
    expect((await transfer(id, { note: 'x', clientRequestId: '' }, tokens[holder])).status).toBe(400);
  });

  it('takes the same transfer after a resolve or a reopen by its own route for a new one: it moves the conversation and stores its note', async () => {
    // Prepare: Ana's, sent to the sales queue with a note (routing hands it to Ben, in sales, with room)
    const { id } = await visitorConversation('Is the offer still on?');
    expect((await http(stack.httpUrl, 'PUT', '/v1/agents/hn-ben', { token: admin, body: { teams: ['sales'], liveCapacity: 10 } })).status).toBe(200);
    expect((await post(`/v1/conversations/${id}/assign`, { agentId: 'hn-ana' })).status).toBe(200);
    const toSales = { team: 'sales', note: 'Sales lead' };
    expect((await transfer(id, toSales)).status).toBe(200);
    expect(await eventually(() => assignee(id))).toBe('hn-ben');

    // Act: Ben resolves it (POST /resolve); later the same transfer is asked for again, and once
    // more after Ben took it up again (POST /reopen) and put it on hold
    expect((await post(`/v1/conversations/${id}/resolve`, {}, tokens['hn-ben'])).status).toBe(200);
    const afterResolve = await transfer(id, toSales);
    expect((await post(`/v1/conversations/${id}/assign`, { agentId: 'hn-ben' }, tokens['hn-ben'])).status).toBe(200);
    expect((await post(`/v1/conversations/${id}/status`, { status: 'snoozed', snoozedUntil: new Date(Date.now() + 3_600_000).toISOString() }, tokens['hn-ben'])).status).toBe(200);
    expect((await transfer(id, toSales)).status).toBe(200);
    expect((await post(`/v1/conversations/${id}/reopen`, {}, tokens['hn-ben'])).status).toBe(200);
    const afterReopen = await transfer(id, toSales);

    // Assess: each a transfer of its own: back to the sales queue, a note each
    expect([afterResolve.status, afterResolve.body.assigneeId]).toEqual([200, null]);
    expect(afterReopen.status).toBe(200);
    expect(await notes(id, 'Sales lead')).toBe(4);
  });
  it('takes a transfer sent again after the visitor ended the conversation for the retry it is: no second note, no move of the resolved conversation, the slot given back', async () => {
    // Prepare: the holder sends it back to the queue with a note and the answer is lost (the note
    // stored); routing hands it to the other agent
    const { id, holder, other, ws } = await visitorConversation('Can you check my invoice?');
    const body = { note: 'Invoice question, someone else please', clientRequestId: crypto.randomUUID() };
    crash.armed = { text: body.note, when: 'after' };
    expect((await transfer(id, body, tokens[holder])).status).toBeGreaterThanOrEqual(500);
    expect(await eventually(() => assignee(id))).toBe(other);

    // Act: the visitor ends the conversation (the widget's button), then the client's retry comes, twice
    ws.send({ action: 'resolve' });
    await eventually(async () => (await get(`/v1/conversations/${id}`)).body.status === 'resolved');
    const retries = [await transfer(id, body, tokens[holder]), await transfer(id, body, tokens[holder])];

    // Assess: the transfer's one note, the conversation left resolved with the agent routing gave
    // it to, and their slot given back (the load counts what the agent holds open)
    expect(retries.map((r) => [r.status, r.body.status, r.body.assigneeId])).toEqual([
      [200, 'resolved', other],
      [200, 'resolved', other],
    ]);
    expect(await notes(id, body.note)).toBe(1);
    const conversation = (await get(`/v1/conversations/${id}`)).body;
    expect([conversation.status, conversation.assigneeId]).toEqual(['resolved', other]);
    await eventually(async () => {
      const held = (await get(`/v1/conversations?status=open&assignee=${other}&limit=100`)).body.items.length;
      const agent = (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === other);
      return agent.load.live === held;
    });
  });
});

describe('channel move notes', () => {
  const from = (channel: string, id: string) => `Continued from the ${channel} conversation ${id}.`;
  const on = (channel: string, id: string) => `Continued on ${channel} in conversation ${id}.`;

  it('stores each note once when the same move is sent twice', async () => {
    // Prepare
    const source = await whatsappConversation('Can you text me instead?');

    // Act
    const first = await moveTo(source, 'sms');
    const again = await moveTo(source, 'sms');

    // Assess
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect([await notes(first.body.id, from('whatsapp', source)), await notes(source, on('sms', first.body.id))]).toEqual([1, 1]);
  });

  it('stores each note once when a move dies before its notes, or between them, and is sent again', async () => {
    // Prepare: two customers
    const before = await whatsappConversation('Text me please');
    const between = await whatsappConversation('Text me too');

    // Act: one move dies before its first note (the target's), the other right after it
    crash.armed = { text: from('whatsapp', before), when: 'before' };
    const diedBefore = await moveTo(before, 'sms');
    const retryBefore = await moveTo(before, 'sms');
    crash.armed = { text: from('whatsapp', between), when: 'after' };
    const diedBetween = await moveTo(between, 'sms');
    const retryBetween = await moveTo(between, 'sms');

    // Assess
    expect([diedBefore.status >= 500, diedBetween.status >= 500]).toEqual([true, true]);
    expect([retryBefore.status, retryBetween.status]).toEqual([200, 200]);
    for (const [source, target] of [
      [before, retryBefore.body.id as string],
      [between, retryBetween.body.id as string],
    ] as const) {
      expect([await notes(target, from('whatsapp', source)), await notes(source, on('sms', target))], source).toEqual([1, 1]);
    }
  });

  it('stores new notes for a move there again after a move back, each sent twice', async () => {
    // Prepare
    const source = await whatsappConversation('Text me, then back on WhatsApp');

    // Act: to SMS, back to WhatsApp, to SMS again; each request twice
    const target = (await moveTo(source, 'sms')).body.id as string;
    await moveTo(source, 'sms');
    expect((await moveTo(target, 'whatsapp')).body.id).toBe(source);
    await moveTo(target, 'whatsapp');
    expect((await moveTo(source, 'sms')).body.id).toBe(target);
    await moveTo(source, 'sms');

    // Assess: two moves there, one back, each with its notes once
    expect([await notes(target, from('whatsapp', source)), await notes(source, on('sms', target))]).toEqual([2, 2]);
    expect([await notes(source, from('sms', target)), await notes(target, on('whatsapp', source))]).toEqual([1, 1]);
  });
});

