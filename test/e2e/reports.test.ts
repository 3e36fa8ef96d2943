/** Reports read what the conversations did, per channel, over HTTP on the local stack. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';
import { newHandle, phoneHandles, postWebhook, statusWebhook, textWebhook, whatsappCustomerWrites } from './channels-support';
import { getConversation, updateConversation } from '../../src/store/conversations';
import { getHandle } from '../../src/store/contacts';
import { getMessage, listMessages } from '../../src/store/messages';
import { runTimer } from '../../src/domain/engagement';
import { getSettings } from '../../src/domain/settings';
import { keys } from '../../src/store/keys';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { applyOutboundToConversation } from '../../src/domain/outbound';
import { newId } from '../../src/domain/ids';
import type { Message } from '../../src/domain/types';

let stack: LocalStack;
let jwt: string;
let samJwt: string;
const sockets: WsClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  jwt = await agentToken(stack.httpUrl, 'agent-rita', 'admin', 'Rita');
  samJwt = await agentToken(stack.httpUrl, 'agent-sam', 'agent', 'Sam');
});
afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

async function conversation(): Promise<string> {
  const session = await visitorSession(stack.httpUrl);
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  ws.send({ action: 'sendMessage', text: 'help', clientMessageId: crypto.randomUUID() });
  return (await ws.waitFor((f) => f.type === 'ack')).conversationId;
}

/** A web visitor on the socket, and `says`: sends a text and answers its conversation's id once acknowledged. */
async function chattingVisitor(): Promise<{ ws: WsClient; says: (text: string) => Promise<string> }> {
  const session = await visitorSession(stack.httpUrl);
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  const says = async (text: string) => {
    const clientMessageId = crypto.randomUUID();
    ws.send({ action: 'sendMessage', text, clientMessageId });
    return (await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId)).conversationId as string;
  };
  return { ws, says };
}

it('reports volume, replies, resolution and FCR for the period, per channel', async () => {
  const from = new Date(Date.now() - 60_000).toISOString();
  const [a, b, c] = [await conversation(), await conversation(), await conversation()];
  for (const [id, agentId] of [[a, 'agent-rita'], [c, 'agent-sam']] as const) {
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/assign`, { token: jwt, body: { agentId } })).status).toBe(200);
  }
  await http(stack.httpUrl, 'POST', `/v1/conversations/${a}/messages`, { token: jwt, body: { text: 'hi' } });
  await http(stack.httpUrl, 'POST', `/v1/conversations/${b}/messages`, { token: jwt, body: { text: 'hi' } });
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${a}/resolve`, { token: jwt })).status).toBe(200);
  await http(stack.httpUrl, 'POST', `/v1/conversations/${b}/resolve`, { token: jwt });
  await http(stack.httpUrl, 'POST', `/v1/conversations/${b}/reopen`, { token: jwt });
  await http(stack.httpUrl, 'POST', `/v1/conversations/${b}/resolve`, { token: jwt });

  const report = await eventually(async () => {
    const res = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${from}&to=${new Date(Date.now() + 1000).toISOString()}`, { token: jwt });
    return res.body.resolved === 2 ? res : undefined;
  });
  expect(report.status).toBe(200);
  expect(report.body).toMatchObject({ conversations: 3, resolved: 2, resolutionRate: 0.6667, firstContactResolutionRate: 0.5 });
  expect(report.body.firstReplySeconds.count).toBe(2);
  expect(report.body.byChannel.web.conversations).toBe(3);
  // Per agent: the conversations each holds; b, in nobody's hands (nobody is online to take it
  // when it is reopened), is Rita's, who resolved it twice: once not for good.
  expect(Object.keys(report.body.byAgent)).toEqual(['agent-rita', 'agent-sam']);
  expect(report.body.byAgent['agent-rita']).toMatchObject({ conversations: 2, resolved: 2, firstContactResolutionRate: 0.5 });
  expect(report.body.byAgent['agent-sam']).toMatchObject({ conversations: 1, resolved: 0, firstReplySeconds: { count: 0 } });
  expect(report.body.sla.firstReplyAttainment).toBe(1);

  const none = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${from}&channel=sms`, { token: jwt });
  expect(none.body.conversations).toBe(0);
  const bad = await http(stack.httpUrl, 'GET', '/v1/reports/summary?from=yesterday', { token: jwt });
  expect(bad.status).toBe(400);
  const reversed = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${new Date().toISOString()}&to=${from}`, { token: jwt });
  expect(reversed.status).toBe(400);
});

const MINUTE = 60_000;
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const report = async (from: number, to: number) =>
  (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(from)}&to=${iso(to)}&channel=whatsapp`, { token: jwt })).body;

const customerWrites = (handle: string, text: string) => whatsappCustomerWrites(stack, handle, text);

const agentWrites = (id: string, text: string) => http(stack.httpUrl, 'POST', `/v1/conversations/${id}/messages`, { token: jwt, body: { text } });

/** Rita's reply as written this moment, not yet applied to its conversation: a test applies it when it chooses. */
const writtenNow = (conversationId: string, channel: Message['channel'], text: string): Message => {
  const createdAt = iso(Date.now() - 1);
  return { id: newId(Date.parse(createdAt)), conversationId, direction: 'outbound', sender: { type: 'agent', id: 'agent-rita' }, channel, text, attachments: [], status: 'queued', private: false, createdAt };
};
const resolve = async (id: string) => expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/resolve`, { token: jwt })).status).toBe(200);

/** Moves a conversation's story back in time, as if it had happened `days` ago. */
async function happenedDaysAgo(id: string, days: number, minutes: { firstReply?: number; resolved: number }, rating?: number): Promise<number> {
  const start = Date.now() - days * DAY;
  await updateConversation(id, (c) => ({
    ...c,
    createdAt: iso(start),
    ...(minutes.firstReply === undefined ? {} : { firstReplyAt: iso(start + minutes.firstReply * MINUTE) }),
    resolvedAt: iso(start + minutes.resolved * MINUTE),
    // Undated, as ratings were stored before they carried their time.
    ...(rating ? { csat: { score: rating } } : {}),
  }));
  return start;
}

it('counts a customer back long after a resolution as a new conversation, leaving the closed one’s figures where they were', async () => {
  // Prepare: a conversation answered in 5 minutes and resolved in 30, six days ago
  const handle = newHandle('whatsapp');
  const id = await customerWrites(handle, 'My order is late');
  await agentWrites(id, 'Sorry, it ships today');
  await resolve(id);
  const then = await happenedDaysAgo(id, 6, { firstReply: 5, resolved: 30 }, 4);
  const now = Date.now();

  // Act: the customer comes back with something else
  expect(await customerWrites(handle, 'The new shoes are the wrong size')).toBe(id);

  // Assess: six days ago, one conversation, resolved on first contact as it was
  const before = { conversations: 1, resolved: 1, firstContactResolutionRate: 1, csat: { responses: 1, average: 4 } };
  expect(await report(then - MINUTE, then + 60 * MINUTE)).toMatchObject({ ...before, firstReplySeconds: { avg: 300 }, resolutionSeconds: { avg: 1800 } });
  // Today, a new one waiting for its first reply
  expect(await report(now, Date.now() + 1000)).toMatchObject({ conversations: 1, resolved: 0, firstReplySeconds: { count: 0 }, csat: { responses: 0 } });

  // Act: the team answers and resolves the new issue
  await agentWrites(id, 'We will send the right size');
  await resolve(id);

  // Assess: today's figures are the new issue's; six days ago is unchanged
  expect(await report(now, Date.now() + 1000)).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1, firstReplySeconds: { count: 1 } });
  expect(await report(then - MINUTE, then + 60 * MINUTE)).toMatchObject({ ...before, resolutionSeconds: { avg: 1800 } });
});

it('reopens the same conversation for a customer back within days (not resolved on first contact), and a follow-up is no first reply', async () => {
  // Prepare: a conversation resolved unanswered; the agent follows up once it is resolved
  const handle = newHandle('whatsapp');
  const id = await customerWrites(handle, 'Do you ship to Norway?');
  await resolve(id);
  expect((await agentWrites(id, 'Following up: yes, we do!')).status).toBe(202);
  expect((await getConversation(id, true))!.firstReplyAt).toBeUndefined();
  const then = await happenedDaysAgo(id, 1, { resolved: 10 });
  const back = Date.now();

  // Act
  expect(await customerWrites(handle, 'Actually it did not arrive')).toBe(id);

  // Assess: still one conversation, reopened and open
  expect(await report(then - MINUTE, then + MINUTE)).toMatchObject({ conversations: 1, resolved: 0, firstContactResolutionRate: 0, firstReplySeconds: { count: 0 } });
  expect(await report(back, Date.now() + 1000)).toMatchObject({ conversations: 0 });
});

it('counts a customer’s answer to a campaign sent after the resolution as a new conversation, not a reopening', async () => {
  // Prepare: resolved on first contact two days ago; today the team sends a campaign
  const handle = newHandle('whatsapp');
  const id = await customerWrites(handle, 'Is the blue one in stock?');
  await agentWrites(id, 'Yes, it is');
  await resolve(id);
  const then = await happenedDaysAgo(id, 2, { firstReply: 5, resolved: 30 });
  const contactId = (await getConversation(id, true))!.contact.id;
  const sent = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: jwt, body: { contactId, text: 'Our summer sale starts today', channel: 'whatsapp' } });
  expect(sent.status).toBe(202);
  await eventually(async () => ((await getConversation(id, true))?.lastUnpromptedAt ? true : undefined));
  const now = Date.now();

  // Act: the customer answers the campaign
  expect(await customerWrites(handle, 'Does the sale include shoes?')).toBe(id);

  // Assess: that conversation stays resolved on first contact; today's answer is a new one,
  // waiting for its first reply (the campaign is none)
  expect(await report(then - MINUTE, then + 60 * MINUTE)).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1, resolutionSeconds: { avg: 1800 } });
  expect(await report(now, Date.now() + 1000)).toMatchObject({ conversations: 1, resolved: 0, firstReplySeconds: { count: 0 } });
});

it('answers a bad report query with a 400 that says what is wrong, never a 5xx or the default week', async () => {
  const get = (query: string) => http(stack.httpUrl, 'GET', `/v1/reports/summary?${query}`, { token: jwt });
  const bad: [string, string, RegExp][] = [
    // A misspelt parameter would otherwise answer for the last 7 days, as if it were asked for.
    ['since=2026-11-01T00:00:00Z', 'invalid_request', /since/],
    ['from=2026-11-01T00:00:00Z&timezone=Europe/Paris', 'invalid_request', /timezone/],
    ['from=yesterday', 'invalid_request', /from/],
    ['from=2026-02-30T00:00:00Z', 'invalid_request', /from/],
    ['to=2026-11-02', 'invalid_request', /to/],
    ['channel=fax', 'invalid_request', /channel/],
    ['from=2026-11-03T00:00:00Z&to=2026-11-01T00:00:00Z', 'invalid_range', /after/],
    ['from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z', 'invalid_range', /92 days/],
    // Well formed, but past the year 9999 once in UTC (and before the year 0): no time the index holds.
    ['from=9999-12-31T00:00:00Z&to=9999-12-31T23:00:00-02:00', 'invalid_range', /0000 to 9999/],
    ['from=0000-01-01T00:00:00+01:00&to=0000-01-01T12:00:00Z', 'invalid_range', /0000 to 9999/],
  ];
  for (const [query, code, message] of bad) {
    const res = await get(query);
    expect({ query, status: res.status, code: res.body.error?.code }).toEqual({ query, status: 400, code });
    expect(res.body.error.message).toMatch(message);
  }

  // An offset's "+" typed unencoded arrives as a space: it still means +02:00.
  const plus = await get('from=2026-11-02T09:00:00+02:00&to=2026-11-02T10:00:00+02:00');
  expect(plus.status).toBe(200);
  expect(plus.body).toMatchObject({ from: '2026-11-02T07:00:00.000Z', to: '2026-11-02T08:00:00.000Z', conversations: 0 });
  // An empty range: nothing to measure, null rather than a made-up figure.
  const empty = await get('from=2026-11-02T09:00:00Z&to=2026-11-02T09:00:00Z');
  expect(empty.body).toMatchObject({ conversations: 0, resolutionRate: null, firstContactResolutionRate: null, byChannel: {}, byAgent: {} });
});

it('counts a conversation in the range its start falls in, whatever the time zone the range is written in', async () => {
  // Prepare: a conversation started 30 s after a UTC midnight three days ago (09:00:30 in Tokyo)
  const id = await customerWrites(newHandle('whatsapp'), 'Where is my parcel?');
  const midnight = Math.floor((Date.now() - 3 * DAY) / DAY) * DAY;
  const start = midnight + 30_000;
  await updateConversation(id, (c) => ({ ...c, createdAt: iso(start) }));
  const tokyo = (ms: number) => encodeURIComponent(new Date(ms + 9 * 3_600_000).toISOString().replace('Z', '+09:00'));
  const count = async (from: number, to: number) =>
    (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${tokyo(from)}&to=${tokyo(to)}&channel=whatsapp`, { token: jwt })).body.conversations;

  // Assess: a range across the UTC day boundary finds it; the start itself is in the range on both ends
  expect(await count(midnight - MINUTE, midnight + MINUTE)).toBe(1);
  expect(await count(start, start + MINUTE)).toBe(1);
  expect(await count(start - MINUTE, start)).toBe(1);
  expect(await count(midnight - MINUTE, start - 1)).toBe(0);
  expect(await count(start + 1, start + MINUTE)).toBe(0);
});

it('takes no greeting, note or transfer note for a first reply, credits the agent it was transferred to, and counts an agent’s reopening against FCR', async () => {
  const start = Date.now();
  const now = async () => report(start, Date.now() + 1000);
  // Prepare: the autoresponder greets the customer (on by default); Rita takes it, writes a note
  // and hands it to Sam with another
  const id = await customerWrites(newHandle('whatsapp'), 'My card was charged twice');
  await eventually(async () => {
    const { body } = await http(stack.httpUrl, 'GET', `/v1/conversations/${id}/messages`, { token: jwt });
    return body.items.some((m: { sender: { type: string } }) => m.sender.type === 'bot') ? true : undefined;
  });
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/assign`, { token: jwt, body: { agentId: 'agent-rita' } })).status).toBe(200);
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/messages`, { token: jwt, body: { text: 'Billing issue', private: true } })).status).toBe(202);
  const transfer = await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/transfer`, { token: jwt, body: { agentId: 'agent-sam', note: 'Yours, Sam' } });
  expect(transfer.status).toBe(200);

  // Assess: still waiting for a first reply, and Sam's
  expect(await now()).toMatchObject({ conversations: 1, firstReplySeconds: { count: 0 }, byAgent: { 'agent-sam': { conversations: 1, firstReplySeconds: { count: 0 } } } });
  expect((await now()).byAgent['agent-rita']).toBeUndefined();

  // Act: Sam answers and resolves
  const samWrites = (path: string, body?: unknown) => http(stack.httpUrl, 'POST', `/v1/conversations/${id}/${path}`, { token: samJwt, ...(body ? { body } : {}) });
  expect((await samWrites('messages', { text: 'Refunded the second charge' })).status).toBe(202);
  expect((await samWrites('resolve')).status).toBe(200);
  const sams = { conversations: 1, resolved: 1, firstReplySeconds: { count: 1 }, handleSeconds: { count: 1 } };
  expect(await now()).toMatchObject({ ...sams, firstContactResolutionRate: 1, byAgent: { 'agent-sam': { ...sams, firstContactResolutionRate: 1 } } });

  // Act: Sam reopens it (it was not done after all) and resolves it again
  expect((await samWrites('reopen')).status).toBe(200);
  expect(await now()).toMatchObject({ resolved: 0, firstContactResolutionRate: 0, byAgent: { 'agent-sam': { resolved: 0, firstContactResolutionRate: 0 } } });
  expect((await samWrites('resolve')).status).toBe(200);
  expect(await now()).toMatchObject({ ...sams, firstContactResolutionRate: 0, byAgent: { 'agent-sam': { ...sams, firstContactResolutionRate: 0 } } });
});

it('charges a resolution the customer undid to the agent who resolved it, though the reopening went to the queue or to someone else', async () => {
  const start = Date.now();
  const now = async () => report(start, Date.now() + 1000);
  // Prepare: Rita takes a customer, answers and resolves; nobody is online (she went offline)
  const handle = newHandle('whatsapp');
  const id = await customerWrites(handle, 'My parcel never came');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/assign`, { token: jwt, body: { agentId: 'agent-rita' } })).status).toBe(200);
  expect((await agentWrites(id, 'It was sent again')).status).toBe(202);
  await resolve(id);
  expect((await now()).byAgent['agent-rita']).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1 });

  // Act: the customer writes again (within 4 days: a reopening); Rita cannot take it back, so it waits in the queue
  expect(await customerWrites(handle, 'Still nothing')).toBe(id);
  // Routing takes the reopened conversation from its offline assignee just after the reopening.
  await eventually(async () => (await getConversation(id, true))!.assigneeId === null, 10_000);

  // Assess: Rita's resolution did not hold: still hers, not resolved on first contact
  const reopened = { conversations: 1, resolved: 0, firstContactResolutionRate: 0 };
  expect(await now()).toMatchObject({ ...reopened, byAgent: { 'agent-rita': reopened } });

  // Act: Sam takes it; Assess: still Rita's failed resolution, not Sam's
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/assign`, { token: jwt, body: { agentId: 'agent-sam' } })).status).toBe(200);
  expect((await now()).byAgent).toEqual({ 'agent-rita': expect.objectContaining(reopened) });

  // Act: Sam resolves it; Assess: his resolution, on second contact
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/resolve`, { token: samJwt })).status).toBe(200);
  expect((await now()).byAgent).toEqual({ 'agent-sam': expect.objectContaining({ conversations: 1, resolved: 1, firstContactResolutionRate: 0 }) });
});

it('counts a re-rated conversation once, with its newest rating, and keeps it resolved on first contact', async () => {
  // Prepare: auto-resolve after 2 s, which asks for a rating
  const timers = (autoResolveAfterSeconds: number) =>
    http(stack.httpUrl, 'PUT', '/v1/settings', { token: jwt, body: { timers: { emailFallbackDelaySeconds: 3600, reengageAfterSeconds: 3600, autoResolveAfterSeconds } } });
  expect((await timers(2)).status).toBe(200);
  try {
    const start = Date.now();
    const { ws, says } = await chattingVisitor();
    const id = await says('Can I change my delivery address?');
    expect((await agentWrites(id, 'Done, it is changed')).status).toBe(202);
    await ws.waitFor((f) => f.type === 'message.created' && f.message.sender.type === 'bot' && /rate/i.test(f.message.text), 20_000);

    // Act: the customer rates 2, then thinks better of it
    await says('2');
    await eventually(async () => ((await getConversation(id, true))?.csat?.score === 2 ? true : undefined));
    await says('5');
    await eventually(async () => ((await getConversation(id, true))?.csat?.score === 5 ? true : undefined));

    // Assess
    const { body } = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start)}&to=${iso(Date.now() + 1000)}&channel=web`, { token: jwt });
    expect(body).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1, csat: { responses: 1, average: 5, satisfiedRate: 1 } });
  } finally {
    await timers(3600);
  }
});

it('counts a conversation moved to another channel once, from the customer’s first message, with its first reply and resolution there', async () => {
  // Prepare: a WhatsApp customer has waited 20 minutes
  const phone = phoneHandles();
  const source = await customerWrites(phone.whatsapp, 'Can you text me instead?');
  const start = Date.now() - 20 * MINUTE;
  await updateConversation(source, (c) => ({ ...c, createdAt: iso(start) }));
  const figures = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start - MINUTE)}&to=${iso(start + MINUTE)}`, { token: jwt })).body;

  // Act: the agent moves it to SMS and texts the customer
  const moved = await http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel: 'sms' } });
  expect(moved.status).toBe(201);
  const target = moved.body.id as string;
  expect((await agentWrites(target, 'Texting you now')).status).toBe(202);

  // Assess: one conversation, answered 20 minutes after the customer wrote (past the 15-minute target)
  const answered = { conversations: 1, byChannel: { sms: { conversations: 1 } }, sla: { firstReplyAttainment: 0 } };
  const waited = await figures();
  expect(waited).toMatchObject({ ...answered, resolved: 0, firstReplySeconds: { count: 1 } });
  expect(waited.firstReplySeconds.avg).toBeGreaterThanOrEqual(20 * 60);
  expect(waited.byChannel.whatsapp).toBeUndefined();
  expect((await figures()).byAgent['agent-rita']).toMatchObject({ conversations: 1 });

  // Act: the customer answers by SMS, the agent resolves it there, and the WhatsApp thread too
  await eventually(async () => ((await getConversation(target, true))?.firstReplyAt ? true : undefined));
  const answer = textWebhook('sms', phone.sms, 'Got it, thanks');
  expect((await postWebhook(stack, 'sms', answer.body)).status).toBe(200);
  await eventually(async () => ((await getConversation(target, true))?.lastInboundAt ? true : undefined));
  await resolve(target);
  await resolve(source);

  // Assess: still one, resolved on first contact within the day from the WhatsApp message
  const done = await figures();
  expect(done).toMatchObject({ ...answered, resolved: 1, resolutionRate: 1, firstContactResolutionRate: 1, sla: { resolutionAttainment: 1 } });
  expect(done.resolutionSeconds.avg).toBeGreaterThanOrEqual(20 * 60);
  // Nothing was counted at the move or the customer's first SMS either
  expect((await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start + MINUTE)}&to=${iso(Date.now() + 1000)}&channel=sms`, { token: jwt })).body.conversations).toBe(0);
});

it('counts a conversation moved to SMS and back once, and the customer’s new issue by SMS days later as a new one', async () => {
  // Prepare
  const start = Date.now();
  const count = async (channel: string) =>
    (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start)}&to=${iso(Date.now() + 1000)}&channel=${channel}`, { token: jwt })).body.conversations;
  const phone = phoneHandles();
  const source = await customerWrites(phone.whatsapp, 'Text me, or not');
  const move = (id: string, channel: string) => http(stack.httpUrl, 'POST', `/v1/conversations/${id}/channel`, { token: jwt, body: { channel } });

  // Act: moved to SMS, then back to WhatsApp
  const target = (await move(source, 'sms')).body.id as string;
  const back = await move(target, 'whatsapp');
  expect(back.body.id).toBe(source);

  // Assess: one issue, on WhatsApp again
  expect([await count('whatsapp'), await count('sms')]).toEqual([1, 0]);

  // Act: both resolved; five days later the customer texts about something else
  await resolve(source);
  await resolve(target);
  await updateConversation(target, (c) => ({ ...c, resolvedAt: iso(Date.now() - 5 * DAY) }));
  expect((await postWebhook(stack, 'sms', textWebhook('sms', phone.sms, 'New question').body)).status).toBe(200);
  await eventually(async () => ((await getConversation(target, true))?.status === 'open' ? true : undefined));

  // Assess: a new conversation by SMS; the WhatsApp issue still counted once
  expect([await count('whatsapp'), await count('sms')]).toEqual([1, 1]);
});

it('takes no follow-up written while resolved for the first reply when it is applied after the customer reopened the conversation', async () => {
  // Prepare: resolved unanswered; the agent's follow-up is written, but its conversation update
  // is overtaken by the customer's message that reopens the conversation
  const start = Date.now();
  const handle = newHandle('whatsapp');
  const id = await customerWrites(handle, 'Where is my parcel?');
  await resolve(id);
  const followUp = writtenNow(id, 'whatsapp', 'It left the depot');
  expect(await customerWrites(handle, 'Still nothing')).toBe(id);

  // Act
  const applied = await applyOutboundToConversation(id, followUp);

  // Assess: still waiting for its first reply, which the next reply is. The write's own result, as
  // the reopening's greeting may be applied after it and be the conversation's last outbound.
  expect(applied).toMatchObject({ status: 'open', lastOutboundId: followUp.id });
  expect(applied!.firstReplyAt).toBeUndefined();
  const conversation = await getConversation(id, true);
  expect(conversation!.firstReplyAt).toBeUndefined();
  expect(await report(start, Date.now() + 1000)).toMatchObject({ conversations: 1, firstReplySeconds: { count: 0 } });
  expect((await agentWrites(id, 'Checking with the courier')).status).toBe(202);
  const replied = await eventually(async () => (await getConversation(id, true))?.firstReplyAt);
  expect(replied > conversation!.episodeStartedAt!).toBe(true);
  expect(await report(start, Date.now() + 1000)).toMatchObject({ conversations: 1, firstReplySeconds: { count: 1 } });
});

it('leaves a conversation the team started on another channel out of the figures until the customer writes there', async () => {
  // Prepare: a WhatsApp conversation answered and resolved
  const start = Date.now();
  const count = async (channel: string) =>
    (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start)}&to=${iso(Date.now() + 1000)}&channel=${channel}`, { token: jwt })).body;
  const phone = phoneHandles();
  const source = await answeredAndResolved(phone.whatsapp);

  // Act: later the agent moves it to SMS and texts the customer
  const target = await movedToSms(source);
  expect((await agentWrites(target, 'One more thing about your order')).status).toBe(202);
  await eventually(async () => ((await getConversation(target, true))?.firstReplyAt ? true : undefined));

  // Assess: no SMS conversation yet (no instant first reply, no SLA to miss); WhatsApp's as it was
  expect((await count('sms')).conversations).toBe(0);
  expect(await count('whatsapp')).toMatchObject({ conversations: 1, resolved: 1 });

  // Act: the customer answers by SMS
  expect((await postWebhook(stack, 'sms', textWebhook('sms', phone.sms, 'What is it?').body)).status).toBe(200);
  await eventually(async () => ((await getConversation(target, true))?.lastInboundAt ? true : undefined));

  // Assess: counted from that message, waiting for a reply (the text before it was none)
  expect(await count('sms')).toMatchObject({ conversations: 1, firstReplySeconds: { count: 0 }, firstContactResolutionRate: null });
  expect((await agentWrites(target, 'Your parcel was split in two')).status).toBe(202);
  await eventually(async () => ((await count('sms')).firstReplySeconds.count === 1 ? true : undefined));
  // The team had written first: the customer is not greeted as a newcomer.
  const { body } = await http(stack.httpUrl, 'GET', `/v1/conversations/${target}/messages`, { token: jwt });
  expect(body.items.filter((m: { sender: { type: string } }) => m.sender.type === 'bot')).toEqual([]);
});

it.each(['open', 'pending'] as const)('takes no text the team wrote before the customer’s first message on its conversation for the first reply, when it is applied after that message (%s by then)', async (status) => {
  // Prepare: a WhatsApp issue answered and resolved, moved to SMS (the team's conversation there);
  // the agent's text on it is written, but its conversation update is overtaken by the customer's
  // first SMS, which starts the episode
  const start = Date.now();
  const phone = phoneHandles();
  const target = await movedToSms(await answeredAndResolved(phone.whatsapp));
  const team = await ownTeam(target);
  const text = writtenNow(target, 'sms', 'One more thing about your order');
  expect(await smsCustomerWrites(phone.sms, 'What is it?')).toBe(target);
  // Set pending meanwhile, the update takes the read-modify-write path instead of the conditional one.
  if (status === 'pending') expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${target}/status`, { token: jwt, body: { status } })).status).toBe(200);
  const figures = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start)}&to=${iso(Date.now() + 1000)}&team=${team}`, { token: jwt })).body;

  // Act
  const applied = await applyOutboundToConversation(target, text);

  // Assess: written before the episode began, it answered nothing in it; the next reply is its first
  expect(applied).toMatchObject({ status, lastOutboundId: text.id });
  expect(applied!.firstReplyAt).toBeUndefined();
  expect(await figures()).toMatchObject({ conversations: 1, firstReplySeconds: { count: 0 } });
  expect((await agentWrites(target, 'Your parcel was split in two')).status).toBe(202);
  const replied = await eventually(async () => (await getConversation(target, true))?.firstReplyAt);
  expect(replied > text.createdAt).toBe(true);
  expect(await figures()).toMatchObject({ conversations: 1, firstReplySeconds: { count: 1 } });
});

/** A WhatsApp customer's conversation, answered and resolved. */
async function answeredAndResolved(whatsapp: string): Promise<string> {
  const id = await customerWrites(whatsapp, 'Thanks, all good');
  await agentWrites(id, 'Glad to help');
  await resolve(id);
  return id;
}

/** The team's conversation on SMS that moving `source` there starts. */
async function movedToSms(source: string): Promise<string> {
  const moved = await http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel: 'sms' } });
  expect(moved.status).toBe(201);
  return moved.body.id as string;
}

/** Dates what the team wrote on the conversation at `at`, its messages and the first reply it keeps alike. */
async function dateTeamTexts(id: string, at: string): Promise<void> {
  const { items } = await listMessages(id, { limit: 20, includePrivate: false });
  for (const m of items.filter((item) => item.direction === 'outbound')) {
    await ddb().send(
      new UpdateCommand({ TableName: config.tableName, Key: keys.message(id, m.id), UpdateExpression: 'SET createdAt = :at', ExpressionAttributeValues: { ':at': at } }),
    );
  }
  await updateConversation(id, (c) => ({ ...c, firstReplyAt: at }));
}

/** A team of a test's own (set on the conversation's item), to read its conversations alone over a period other tests' share. */
async function ownTeam(id: string): Promise<string> {
  const team = `moves-${crypto.randomUUID().slice(0, 8)}`;
  await updateConversation(id, (c) => ({ ...c, team }));
  return team;
}

/** The customer writes by SMS; returns the conversation once the message is applied to it. */
async function smsCustomerWrites(handle: string, text: string): Promise<string> {
  const since = new Date().toISOString();
  expect((await postWebhook(stack, 'sms', textWebhook('sms', handle, text).body)).status).toBe(200);
  return eventually(async () => {
    const id = (await getHandle('sms', handle))?.conversationId;
    const conversation = id ? await getConversation(id, true) : undefined;
    return conversation && conversation.lastInboundAt! >= since ? conversation.id : undefined;
  });
}

it('counts a conversation moved to one the customer had resolved days ago once, leaving the resolved one’s figures as they were', async () => {
  // Prepare: two days ago the customer texted, was answered in 5 minutes and resolved in 30 (rated 5)
  const phone = phoneHandles();
  const target = await smsCustomerWrites(phone.sms, 'Where is my invoice?');
  await agentWrites(target, 'Sent it again');
  await resolve(target);
  const then = await happenedDaysAgo(target, 2.3, { firstReply: 5, resolved: 30 }, 5);
  const smsThen = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(then - MINUTE)}&to=${iso(then + MINUTE)}&channel=sms`, { token: jwt })).body;
  const closed = { conversations: 1, resolved: 1, firstContactResolutionRate: 1, firstReplySeconds: { avg: 300 }, resolutionSeconds: { avg: 1800 }, csat: { responses: 1, average: 5 } };
  expect(await smsThen()).toMatchObject(closed);
  // Today the same customer has waited 40 minutes on WhatsApp
  const source = await customerWrites(phone.whatsapp, 'Can we talk by SMS?');
  const start = Date.now() - 40 * MINUTE;
  await updateConversation(source, (c) => ({ ...c, createdAt: iso(start) }));
  const figures = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start - MINUTE)}&to=${iso(start + MINUTE)}`, { token: jwt })).body;
  const movedAt = Date.now();

  // Act: the agent moves it to the resolved SMS conversation (a double click: twice at once)
  const move = () => http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel: 'sms' } });
  const moves = await Promise.all([move(), move()]);

  // Assess: the SMS conversation goes on with it, open and the agent's; the issue counts once, by SMS
  for (const moved of moves) expect(moved.status).toBe(200);
  expect(moves[1]!.body).toMatchObject({ id: target, status: 'open', assigneeId: 'agent-rita' });
  const waiting = { conversations: 1, resolved: 0, byChannel: { sms: { conversations: 1 } } };
  expect(await figures()).toMatchObject({ ...waiting, firstReplySeconds: { count: 0 }, sla: { firstReplyAttainment: 0 } });
  expect((await figures()).byChannel.whatsapp).toBeUndefined();
  expect(await smsThen()).toMatchObject(closed);

  // Act: the agent texts, the customer answers (within 4 days of the old resolution), the agent resolves
  expect((await agentWrites(target, 'Texting you about it now')).status).toBe(202);
  await eventually(async () => ((await getConversation(target, true))?.firstReplyAt ? true : undefined));
  expect(await smsCustomerWrites(phone.sms, 'Thanks, got it')).toBe(target);
  await resolve(target);

  // Assess: still one issue, from the WhatsApp message, replied and resolved on first contact by
  // SMS; the resolved one two days ago is not reopened by the answer; nothing counts from the move on
  const done = await figures();
  expect(done).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1, firstReplySeconds: { count: 1 }, byChannel: { sms: { conversations: 1 } } });
  expect(done.firstReplySeconds.avg).toBeGreaterThanOrEqual(40 * 60);
  expect(done.csat.responses).toBe(0);
  expect(await smsThen()).toMatchObject(closed);
  expect((await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(movedAt)}&to=${iso(Date.now() + 1000)}&channel=sms`, { token: jwt })).body.conversations).toBe(0);
});

it('counts a conversation moved to one the customer also wrote on from the first of their messages', async () => {
  // Prepare: the customer has waited 50 minutes on WhatsApp, then texts as well
  const phone = phoneHandles();
  const source = await customerWrites(phone.whatsapp, 'Is anyone there?');
  const start = Date.now() - 50 * MINUTE;
  await updateConversation(source, (c) => ({ ...c, createdAt: iso(start) }));
  const texted = Date.now();
  const target = await smsCustomerWrites(phone.sms, 'Trying by SMS');
  const figures = async (from: number, to: number) => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(from)}&to=${iso(to)}`, { token: jwt })).body;

  // Act: the agent moves the WhatsApp conversation there and answers
  const moved = await http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel: 'sms' } });
  expect(moved.status).toBe(200);
  expect(moved.body.id).toBe(target);
  expect((await agentWrites(target, 'Here, sorry for the wait')).status).toBe(202);
  await eventually(async () => ((await getConversation(target, true))?.firstReplyAt ? true : undefined));

  // Assess: one issue, counted by SMS from the WhatsApp message 50 minutes ago (a first-reply miss)
  const first = await figures(start - MINUTE, start + MINUTE);
  expect(first).toMatchObject({ conversations: 1, byChannel: { sms: { conversations: 1 } }, firstReplySeconds: { count: 1 }, sla: { firstReplyAttainment: 0 } });
  expect(first.firstReplySeconds.avg).toBeGreaterThanOrEqual(50 * 60);
  expect((await figures(texted, Date.now() + 1000)).conversations).toBe(0);

  // Act: moved back to WhatsApp; Assess: the episode goes back with the same start
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${target}/channel`, { token: jwt, body: { channel: 'whatsapp' } })).body.id).toBe(source);
  expect(await figures(start - MINUTE, start + MINUTE)).toMatchObject({ conversations: 1, byChannel: { whatsapp: { conversations: 1, firstReplySeconds: { count: 1 } } } });
  expect((await figures(texted, Date.now() + 1000)).conversations).toBe(0);
});

it('counts a rating given on a resolved conversation once, for the episode it was asked about, when an issue begun before it is moved there', async () => {
  // Prepare: two days ago the customer texted, was answered and resolved, and asked for a rating
  const phone = phoneHandles();
  const target = await smsCustomerWrites(phone.sms, 'Where is my refund?');
  await agentWrites(target, 'On its way');
  await resolve(target);
  const then = await happenedDaysAgo(target, 2, { firstReply: 5, resolved: 30 });
  await updateConversation(target, (c) => ({ ...c, engagement: { ...c.engagement, csatAskedAt: c.resolvedAt, csatResolvedAt: c.resolvedAt } }));
  // 40 minutes ago the same customer wrote on WhatsApp; now they rate the SMS conversation 2
  const source = await customerWrites(phone.whatsapp, 'My address changed');
  const start = Date.now() - 40 * MINUTE;
  await updateConversation(source, (c) => ({ ...c, createdAt: iso(start) }));
  expect(await smsCustomerWrites(phone.sms, '2')).toBe(target);
  expect((await getConversation(target, true))!.csat).toMatchObject({ score: 2 });
  const team = await ownTeam(target);
  const figures = async (from: number, to: number) => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(from)}&to=${iso(to)}&team=${team}`, { token: jwt })).body;
  const moved = () => figures(start - MINUTE, start + MINUTE);
  const all = () => figures(then - MINUTE, Date.now() + 1000);

  // Act: the agent moves the WhatsApp issue to the SMS conversation
  const move = await http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel: 'sms' } });

  // Assess: the rating answered the question about the resolved issue: it counts once, for that
  // one, not for the moved issue; the conversation still shows it
  expect(move.status).toBe(200);
  expect(move.body).toMatchObject({ id: target, status: 'open' });
  expect(Object.keys(move.body.csat).sort()).toEqual(['at', 'score']);
  expect(await moved()).toMatchObject({ conversations: 1, csat: { responses: 0, average: null } });
  expect(await all()).toMatchObject({ conversations: 2, csat: { responses: 1, average: 2 } });

  // Act: the moved issue is resolved and asked about, and the customer rates it 5
  await resolve(target);
  await updateConversation(target, (c) => ({ ...c, engagement: { ...c.engagement, csatAskedAt: c.resolvedAt, csatResolvedAt: c.resolvedAt } }));
  await smsCustomerWrites(phone.sms, '5');
  await eventually(async () => ((await getConversation(target, true))?.csat?.score === 5 ? true : undefined));

  // Assess: each issue with its own rating
  expect(await moved()).toMatchObject({ conversations: 1, resolved: 1, csat: { responses: 1, average: 5 } });
  expect(await all()).toMatchObject({ conversations: 2, csat: { responses: 2, average: 3.5 } });
});

it('times a moved issue’s first reply from its start on a conversation the team started, not from what the team wrote there before', async () => {
  // Prepare: a resolved WhatsApp conversation moved to SMS, where the agent texted the customer 30 minutes ago
  const phone = phoneHandles();
  const move = (id: string) => http(stack.httpUrl, 'POST', `/v1/conversations/${id}/channel`, { token: jwt, body: { channel: 'sms' } });
  const source = await customerWrites(phone.whatsapp, 'All good, thanks');
  await resolve(source);
  const made = await move(source);
  expect(made.status).toBe(201);
  const target = made.body.id as string;
  expect((await agentWrites(target, 'One more thing about your order')).status).toBe(202);
  await eventually(async () => ((await getConversation(target, true))?.firstReplyAt ? true : undefined));
  await dateTeamTexts(target, iso(Date.now() - 30 * MINUTE));
  // Days after the resolution, the customer wrote on WhatsApp about something else 20 minutes ago
  await updateConversation(source, (c) => ({ ...c, resolvedAt: iso(Date.now() - 5 * DAY) }));
  expect(await customerWrites(phone.whatsapp, 'My parcel arrived damaged')).toBe(source);
  const start = Date.now() - 20 * MINUTE;
  await updateConversation(source, (c) => ({ ...c, reportStartedAt: iso(start) }));
  const team = await ownTeam(target);
  const figures = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start - MINUTE)}&to=${iso(start + MINUTE)}&team=${team}`, { token: jwt })).body;

  // Act: the agent moves the new issue to SMS
  expect((await move(source)).body.id).toBe(target);

  // Assess: the text written before the issue began is no reply to it: still waiting (a miss)
  expect(await figures()).toMatchObject({ conversations: 1, byChannel: { sms: { conversations: 1 } }, firstReplySeconds: { count: 0 }, sla: { firstReplyAttainment: 0 } });

  // Act: the agent answers
  expect((await agentWrites(target, 'Sorry about that, a new one is on its way')).status).toBe(202);

  // Assess: that answer is its first reply, 20 minutes after the issue began
  const answered = await eventually(async () => {
    const body = await figures();
    return body.firstReplySeconds.count === 1 ? body : undefined;
  });
  expect(answered.firstReplySeconds.avg).toBeGreaterThanOrEqual(20 * 60);
  expect(answered.sla.firstReplyAttainment).toBe(0);
});

it('counts an issue moved to a conversation the team started, resolved and reopened there before, as resolved on first contact', async () => {
  // Prepare: a resolved WhatsApp conversation moved to SMS, where the agent resolved and reopened the team's conversation
  const start = Date.now();
  const phone = phoneHandles();
  const move = (id: string) => http(stack.httpUrl, 'POST', `/v1/conversations/${id}/channel`, { token: jwt, body: { channel: 'sms' } });
  const source = await customerWrites(phone.whatsapp, 'Thanks, that is all');
  await resolve(source);
  const made = await move(source);
  expect(made.status).toBe(201);
  const target = made.body.id as string;
  await resolve(target);
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${target}/reopen`, { token: jwt })).status).toBe(200);
  // Days after the resolution, the customer writes on WhatsApp about something else
  await updateConversation(source, (c) => ({ ...c, resolvedAt: iso(Date.now() - 5 * DAY) }));
  expect(await customerWrites(phone.whatsapp, 'Where is my new order?')).toBe(source);

  // Act: the agent moves it to SMS, answers and resolves it there
  expect((await move(source)).body.id).toBe(target);
  expect((await agentWrites(target, 'It ships today')).status).toBe(202);
  await resolve(target);

  // Assess: the reopening was of the team's conversation, before the issue: it was resolved on first contact
  const team = await ownTeam(target);
  const { body } = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start)}&to=${iso(Date.now() + 1000)}&team=${team}`, { token: jwt });
  expect(body).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1, byChannel: { sms: { conversations: 1 } } });
});

it('keeps the rating a customer gave before reopening an issue when the issue moves to another channel', async () => {
  // Prepare: a WhatsApp issue answered, resolved and rated 4, which the customer reopened the same day
  const start = Date.now();
  const phone = phoneHandles();
  const source = await customerWrites(phone.whatsapp, 'My card was charged twice');
  expect((await agentWrites(source, 'Refunded, sorry')).status).toBe(202);
  await resolve(source);
  await updateConversation(source, (c) => ({ ...c, engagement: { ...c.engagement, csatAskedAt: c.resolvedAt, csatResolvedAt: c.resolvedAt } }));
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', phone.whatsapp, '4').body)).status).toBe(200);
  await eventually(async () => ((await getConversation(source, true))?.csat?.score === 4 ? true : undefined));
  expect(await customerWrites(phone.whatsapp, 'The refund has not arrived')).toBe(source);
  expect((await getConversation(source, true))!.reopenCount).toBe(1);

  // Act: the agent moves it to SMS
  const moved = await http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel: 'sms' } });

  // Assess: one issue, reopened, and still rated 4 (counted once, on the SMS conversation)
  expect(moved.status).toBe(201);
  const target = moved.body.id as string;
  const team = await ownTeam(target);
  const figures = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start - MINUTE)}&to=${iso(Date.now() + 1000)}&team=${team}`, { token: jwt })).body;
  expect(await figures()).toMatchObject({ conversations: 1, byChannel: { sms: { conversations: 1 } }, csat: { responses: 1, average: 4 } });

  // Act: the agent resolves it on SMS
  await resolve(target);

  // Assess: not resolved on first contact, and rated once
  expect(await figures()).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 0, csat: { responses: 1, average: 4 } });
});

it('takes the team’s first reply on its own conversation since an issue began for that issue’s first reply, though the team wrote there before', async () => {
  // Prepare: a resolved WhatsApp conversation moved to SMS, where the agent texted the customer
  const phone = phoneHandles();
  const move = (id: string) => http(stack.httpUrl, 'POST', `/v1/conversations/${id}/channel`, { token: jwt, body: { channel: 'sms' } });
  const source = await customerWrites(phone.whatsapp, 'Thanks, all sorted');
  await resolve(source);
  const made = await move(source);
  expect(made.status).toBe(201);
  const target = made.body.id as string;
  expect((await agentWrites(target, 'Your invoice is attached')).status).toBe(202);
  const before = await eventually(async () => (await getConversation(target, true))?.firstReplyAt);
  // Days after the resolution, the customer writes on WhatsApp about something else, and the agent answers by SMS
  await updateConversation(source, (c) => ({ ...c, resolvedAt: iso(Date.now() - 5 * DAY) }));
  const start = Date.now();
  expect(await customerWrites(phone.whatsapp, 'The invoice has the wrong address')).toBe(source);
  expect((await agentWrites(target, 'I will send a corrected one by text')).status).toBe(202);
  await eventually(async () => ((await getConversation(target, true))!.lastMessageAt > before ? true : undefined));
  const team = await ownTeam(target);

  // Act: the agent moves the issue to SMS
  expect((await move(source)).body.id).toBe(target);

  // Assess: the text written since the issue began is its first reply, in time
  const { body } = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start - MINUTE)}&to=${iso(Date.now() + 1000)}&team=${team}`, { token: jwt });
  expect(body).toMatchObject({ conversations: 1, firstReplySeconds: { count: 1 }, sla: { firstReplyAttainment: 1 } });
});

it('leaves a customer’s message on the old channel soon after the moved issue’s resolution out of the figures (a documented limit)', async () => {
  // Prepare: a WhatsApp issue moved to SMS and resolved there on first contact; the WhatsApp thread resolved too
  const start = Date.now();
  const phone = phoneHandles();
  const source = await customerWrites(phone.whatsapp, 'Please text me the tracking number');
  const moved = await http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel: 'sms' } });
  expect(moved.status).toBe(201);
  const target = moved.body.id as string;
  expect((await agentWrites(target, 'It is 1Z999')).status).toBe(202);
  await resolve(target);
  await resolve(source);
  const team = await ownTeam(target);
  await updateConversation(source, (c) => ({ ...c, team }));
  const figures = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start - MINUTE)}&to=${iso(Date.now() + 1000)}&team=${team}`, { token: jwt })).body;

  // Act: the customer writes on WhatsApp again the same day
  expect(await customerWrites(phone.whatsapp, 'The tracking number does not work')).toBe(source);

  // Assess: the WhatsApp thread reopened but stays out of the figures; the moved issue keeps its first-contact resolution
  const body = await figures();
  expect(body).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1, byChannel: { sms: { conversations: 1 } } });
  expect(body.byChannel.whatsapp).toBeUndefined();
});

it('does not count a reopening for the team’s own failed reply (after the auto-resolve) as the customer reopening', async () => {
  // Prepare: Rita's reply was sent, then the conversation idled and the auto-resolve resolved it
  const start = Date.now();
  const handle = newHandle('whatsapp');
  const id = await customerWrites(handle, 'Has my order shipped?');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/assign`, { token: jwt, body: { agentId: 'agent-rita' } })).status).toBe(200);
  const team = await ownTeam(id);
  const reply = await agentWrites(id, 'Yes, it left this morning');
  expect(reply.status).toBe(202);
  const sent = await eventually(async () => {
    const m = await getMessage(id, reply.body.message.id);
    return m?.status === 'sent' ? m : undefined;
  });
  // Its idle wait over (two days by default): the timer fires as though it had passed.
  expect(await runTimer({ kind: 'autoResolve', conversationId: id, dueAt: iso(Date.now()) }, new Date(Date.now() + 3 * DAY))).toBe('done');
  const figures = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start - MINUTE)}&to=${iso(Date.now() + 1000)}&team=${team}`, { token: jwt })).body;

  // Act: WhatsApp reports the reply failed; the conversation reopens for Rita, who sends it again and resolves it
  expect((await postWebhook(stack, 'whatsapp', statusWebhook('whatsapp', handle, 'failed', sent.providerMessageId))).status).toBe(200);
  await eventually(async () => ((await getConversation(id, true))?.status === 'open' ? true : undefined));
  expect((await getConversation(id, true))?.reopenCount ?? 0).toBe(0);
  expect((await agentWrites(id, 'Yes, it left this morning (again)')).status).toBe(202);
  await resolve(id);

  // Assess: resolved on first contact, as the customer never came back
  expect(await figures()).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1 });
});

it('counts an issue moved to two channels at once (two agents) once, on the conversation it went to', async () => {
  // Prepare: a web visitor who gave their number (reachable by WhatsApp and SMS) has waited 30 minutes
  const phone = phoneHandles();
  const session = await visitorSession(stack.httpUrl, { name: 'Tomas', phone: phone.phone });
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  ws.send({ action: 'sendMessage', text: 'Reach me by phone', clientMessageId: crypto.randomUUID() });
  const source = (await ws.waitFor((f) => f.type === 'ack')).conversationId as string;
  const start = Date.now() - 3 * DAY - 31 * MINUTE;
  await updateConversation(source, (c) => ({ ...c, createdAt: iso(start) }));
  const figures = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start - MINUTE)}&to=${iso(start + MINUTE)}`, { token: jwt })).body;

  // Act: one agent moves it to SMS while another moves it to WhatsApp
  const move = (channel: string) => http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel } });
  const moves = await Promise.all([move('sms'), move('whatsapp')]);

  // Assess: both continue it there, but the issue counts once, on the one the web conversation names
  expect(moves.map((m) => m.status)).toEqual([201, 201]);
  const movedTo = (await getConversation(source, true))?.movedTo;
  const counted = await figures();
  expect(counted.conversations).toBe(1);
  const channel = moves.find((m) => m.body.id === movedTo)!.body.channel as string;
  expect(Object.keys(counted.byChannel)).toEqual([channel]);
});

it('charges a moved issue reopened after nobody’s resolution to the agent who holds it, not to whoever resolved an older issue of the conversation it folds into', async () => {
  // Prepare: six days ago Sam answered and resolved the customer's SMS; today they text about something else (a new issue there)
  const phone = phoneHandles();
  const target = await smsCustomerWrites(phone.sms, 'Where is my invoice?');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${target}/assign`, { token: jwt, body: { agentId: 'agent-sam' } })).status).toBe(200);
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${target}/messages`, { token: samJwt, body: { text: 'Sent again' } })).status).toBe(202);
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${target}/resolve`, { token: samJwt })).status).toBe(200);
  await happenedDaysAgo(target, 6, { firstReply: 5, resolved: 30 });
  const start = Date.now();
  // On WhatsApp, nobody took the customer's question and it was auto-resolved in the queue; they wrote again (a reopening)
  const source = await customerWrites(phone.whatsapp, 'Can I change my delivery slot?');
  expect(await runTimer({ kind: 'autoResolve', conversationId: source, dueAt: iso(Date.now()) }, new Date(Date.now() + 3 * DAY))).toBe('done');
  expect(await customerWrites(phone.whatsapp, 'Nobody answered me')).toBe(source);
  expect(await smsCustomerWrites(phone.sms, 'Also, can I change my delivery slot?')).toBe(target);
  // Sam is offline: routing takes the SMS conversation back to the queue
  await eventually(async () => (await getConversation(target, true))!.assigneeId === null, 10_000);
  const team = await ownTeam(target);

  // Act: Rita moves the WhatsApp conversation to SMS, where it folds into the customer's new issue, and goes on with it
  const moved = await http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel: 'sms' } });
  expect(moved.status).toBe(200);
  expect(moved.body.id).toBe(target);
  expect((await getConversation(target, true))!.assigneeId).toBe('agent-rita');

  // Assess: one issue, reopened after a resolution that was nobody's: Rita's (she holds it), never Sam's
  const { body } = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start - MINUTE)}&to=${iso(Date.now() + 1000)}&team=${team}`, { token: jwt });
  const reopened = { conversations: 1, resolved: 0, firstContactResolutionRate: 0 };
  expect(body).toMatchObject(reopened);
  expect(body.byAgent).toEqual({ 'agent-rita': expect.objectContaining(reopened) });
});

/** The conversation's messages the bot wrote (greeting, rating question), once none is still queued. */
const botMessages = (id: string) =>
  eventually(async () => {
    const bots = (await listMessages(id, { limit: 50, includePrivate: false, consistent: true })).items.filter((m) => m.sender.type === 'bot');
    return bots.every((m) => m.status !== 'queued') ? bots : undefined;
  }, 15_000);

/** The customer answers the rating question: the conversation stays resolved, rated. */
async function customerRates(handle: string, id: string, score: number): Promise<void> {
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, String(score)).body)).status).toBe(200);
  const rated = await eventually(async () => {
    const c = await getConversation(id, true);
    return c?.csat?.score === score ? c : undefined;
  });
  expect(rated).toMatchObject({ status: 'resolved' });
  expect(rated.reopenCount ?? 0).toBe(0);
}

it('takes the rating question an agent’s resolution asks for no reply and its rating for no reopen, and its failure or withdrawal changes nothing', async () => {
  const start = Date.now();
  const now = async () => report(start, Date.now() + 1000);
  const question = (await http(stack.httpUrl, 'GET', '/v1/settings', { token: jwt })).body.csat.question as string;
  const asSam = (id: string, path: string, body?: unknown) => http(stack.httpUrl, 'POST', `/v1/conversations/${id}/${path}`, { token: samJwt, ...(body ? { body } : {}) });
  /** A WhatsApp customer Sam holds, the greeting sent (so that a provider failure meets what follows). */
  const samsCustomer = async (text: string) => {
    const handle = newHandle('whatsapp');
    const id = await customerWrites(handle, text);
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/assign`, { token: jwt, body: { agentId: 'agent-sam' } })).status).toBe(200);
    await botMessages(id);
    return { handle, id };
  };

  // Prepare: Sam resolves a conversation without writing (the customer's answer was in the FAQ)
  const first = await samsCustomer('Do you ship to Chile?');
  expect((await asSam(first.id, 'resolve')).status).toBe(200);
  expect((await botMessages(first.id)).filter((m) => m.text === question)).toEqual([expect.objectContaining({ status: 'sent' })]);

  // Assess: the bot's question is no first reply, so there is no handle time either
  const once = { conversations: 1, resolved: 1, firstContactResolutionRate: 1 };
  expect(await now()).toMatchObject({ ...once, firstReplySeconds: { count: 0 }, handleSeconds: { count: 0 } });

  // Act: the customer rates 4
  await customerRates(first.handle, first.id, 4);

  // Assess: still resolved on first contact, and the rating is Sam's, whose resolution it was
  const rated = { ...once, csat: { responses: 1, average: 4 } };
  expect(await now()).toMatchObject({ ...rated, byAgent: { 'agent-sam': rated } });

  // Act: the provider refuses the question of Sam's next resolution
  const second = await samsCustomer('Is the red one back in stock?');
  expect((await http(stack.httpUrl, 'POST', '/local/providers/whatsapp/_fail', { body: { status: 400, count: 1 } })).status).toBe(200);
  expect((await asSam(second.id, 'resolve')).status).toBe(200);

  // Assess: the question failed, and the resolution stands: resolved on first contact
  expect((await botMessages(second.id)).filter((m) => m.text === question)).toEqual([expect.objectContaining({ status: 'failed' })]);
  expect((await getConversation(second.id, true))!.status).toBe('resolved');
  const two = { conversations: 2, resolved: 2, firstContactResolutionRate: 1, csat: { responses: 1 } };
  expect(await now()).toMatchObject({ ...two, byAgent: { 'agent-sam': two } });

  // Act: Sam answers a third customer and resolves at once; WhatsApp answers the reply only then, refusing it
  const third = await samsCustomer('Please delete my account');
  expect((await http(stack.httpUrl, 'POST', '/local/providers/whatsapp/_fail', { body: { status: 400, count: 1 } })).status).toBe(200);
  let resolved = false;
  stack.providers.holdNext('whatsapp', async () => {
    expect((await asSam(third.id, 'resolve')).status).toBe(200);
    resolved = true;
  });
  const reply = await asSam(third.id, 'messages', { text: 'Deleted. Closing this now' });
  expect(reply.status).toBe(202);
  await eventually(async () => ((await getMessage(third.id, reply.body.message.id))?.status === 'failed' ? true : undefined), 15_000);
  expect(resolved).toBe(true);

  // Assess: reopened for Sam, the question withdrawn: no reopen, nothing counted against first contact
  await eventually(async () => ((await getConversation(third.id, true))?.status === 'open' ? true : undefined), 15_000);
  expect((await botMessages(third.id)).filter((m) => m.text === question)).toEqual([expect.objectContaining({ status: 'failed' })]);
  expect((await getConversation(third.id, true))!.reopenCount ?? 0).toBe(0);
  // (Sam is offline: routing gives it to the queue, where it waits as nobody's.)
  expect(await now()).toMatchObject({ conversations: 3, resolved: 2, firstContactResolutionRate: 1, byAgent: { 'agent-sam': { resolved: 2, firstContactResolutionRate: 1 } } });

  // Act: Sam sends it again and resolves
  expect((await asSam(third.id, 'messages', { text: 'Deleted (again). Closing this now' })).status).toBe(202);
  expect((await asSam(third.id, 'resolve')).status).toBe(200);

  // Assess: all three resolved on first contact, Sam's (the last from the queue)
  const all = { conversations: 3, resolved: 3, firstContactResolutionRate: 1 };
  expect(await now()).toMatchObject({ ...all, byAgent: { 'agent-sam': all } });
});

it('credits a resolution made from the queue to the agent who made it, its rating too, as it charges them when the customer undoes it', async () => {
  const start = Date.now();
  const now = async () => report(start, Date.now() + 1000);
  // Prepare: a customer nobody holds (nobody is online to take it)
  const handle = newHandle('whatsapp');
  const id = await customerWrites(handle, 'Can I pay by invoice?');
  await botMessages(id);
  expect((await getConversation(id, true))!.assigneeId ?? null).toBeNull();

  // Act: Rita answers and resolves it from the queue; the customer rates 5
  expect((await agentWrites(id, 'Yes, on orders over 100 EUR')).status).toBe(202);
  await resolve(id);
  await customerRates(handle, id, 5);

  // Assess: her resolution, first reply, handle time and rating, as a reopening would have been hers
  const hers = { conversations: 1, resolved: 1, firstContactResolutionRate: 1, firstReplySeconds: { count: 1 }, handleSeconds: { count: 1 }, csat: { responses: 1, average: 5 } };
  expect(await now()).toMatchObject({ ...hers, byAgent: { 'agent-rita': hers } });

  // Act: the customer writes again (a reopening, back to the queue)
  expect(await customerWrites(handle, 'And by bank transfer?')).toBe(id);

  // Assess: still Rita's, not resolved on first contact
  const undone = { conversations: 1, resolved: 0, firstContactResolutionRate: 0 };
  expect(await now()).toMatchObject({ ...undone, byAgent: { 'agent-rita': undone } });
});

it.each([
  ['reopens it', { path: 'reopen' }],
  ['sets it pending', { path: 'status', body: { status: 'pending' } }],
] as const)('leaves an issue resolved more than 4 days ago where it started when an agent %s, and counts the customer’s answer as a new conversation', async (_, change) => {
  // Prepare: answered in 5 minutes and resolved in 30, on first contact, six days ago
  const handle = newHandle('whatsapp');
  const id = await customerWrites(handle, 'My order is late');
  await agentWrites(id, 'Sorry, it ships today');
  await resolve(id);
  const then = await happenedDaysAgo(id, 6, { firstReply: 5, resolved: 30 });
  const team = await ownTeam(id);
  const figures = async (from: number, to: number) => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(from)}&to=${iso(to)}&team=${team}`, { token: jwt })).body;
  const closed = async () => figures(then - MINUTE, then + 60 * MINUTE);
  const before = { conversations: 1, resolved: 1, firstContactResolutionRate: 1, resolutionSeconds: { avg: 1800 }, sla: { resolutionAttainment: 1 } };
  expect(await closed()).toMatchObject(before);
  const now = Date.now();
  const today = async () => figures(now, Date.now() + 1000);

  // Act: today an agent takes it up again and writes to the customer
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/${change.path}`, { token: jwt, ...('body' in change ? { body: change.body } : {}) })).status).toBe(200);
  const asked = await agentWrites(id, 'Did the parcel arrive in the end?');
  expect(asked.status).toBe(202);
  await eventually(async () => ((await getMessage(id, asked.body.message.id))?.status === 'sent' ? true : undefined));

  // Assess: the closed issue keeps its figures where it started; nothing counts today yet
  expect(await closed()).toMatchObject(before);
  expect((await today()).conversations).toBe(0);

  // Act: the customer answers
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, 'It did not, actually').body)).status).toBe(200);
  await eventually(async () => ((await getConversation(id, true))!.lastInboundAt! >= iso(now) ? true : undefined));

  // Assess: a new conversation today, waiting for its first reply (the agent's text before it is none), no reopen
  expect(await today()).toMatchObject({ conversations: 1, resolved: 0, firstReplySeconds: { count: 0 }, firstContactResolutionRate: null });
  expect(await closed()).toMatchObject(before);
});

it('takes a customer answering the automatic follow-up after the resolution for the issue it followed up coming back, a reopen', async () => {
  // Prepare: a visitor answered by Rita, who never wrote back
  const start = Date.now();
  const { ws, says } = await chattingVisitor();
  const id = await says('My invoice has the wrong amount');
  const team = await ownTeam(id);
  const figures = async () => (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start)}&to=${iso(Date.now() + 1000)}&team=${team}`, { token: jwt })).body;
  const reply = await agentWrites(id, 'Corrected, a new one is in your inbox');
  expect(reply.status).toBe(202);
  // A day later the follow-up goes (sent while the issue is open), and the day after the auto-resolve resolves it
  const followUp = (await getSettings()).reengagement.message;
  expect(await runTimer({ kind: 'reengage', conversationId: id, dueAt: iso(Date.now()), messageId: reply.body.message.id }, new Date(Date.now() + DAY + MINUTE))).toBe('done');
  await ws.waitFor((f) => f.type === 'message.created' && f.message.text === followUp, 10_000);
  expect(await runTimer({ kind: 'autoResolve', conversationId: id, dueAt: iso(Date.now()) }, new Date(Date.now() + 3 * DAY))).toBe('done');
  expect(await figures()).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1 });

  // Act: the visitor answers the follow-up
  await says('Yes: the new one has the wrong address');
  await eventually(async () => ((await getConversation(id, true))?.status === 'open' ? true : undefined));

  // Assess: the same issue back, within 4 days of its resolution: reopened, not resolved on first contact
  expect(await figures()).toMatchObject({ conversations: 1, resolved: 0, firstContactResolutionRate: 0 });
});

it('leaves the team’s contact out of the figures when the agent who took up an issue closed days ago moves it to another channel', async () => {
  // Prepare: a WhatsApp issue resolved six days ago, which an agent takes up again today
  const phone = phoneHandles();
  const source = await customerWrites(phone.whatsapp, 'My order is late');
  await agentWrites(source, 'Sorry, it ships today');
  await resolve(source);
  await happenedDaysAgo(source, 6, { firstReply: 5, resolved: 30 });
  const start = Date.now();
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${source}/reopen`, { token: jwt })).status).toBe(200);

  // Act: the agent moves it to SMS and texts the customer
  const moved = await http(stack.httpUrl, 'POST', `/v1/conversations/${source}/channel`, { token: jwt, body: { channel: 'sms' } });
  expect(moved.status).toBe(201);
  expect((await agentWrites(moved.body.id, 'Did the parcel arrive in the end?')).status).toBe(202);

  // Assess: no issue of the customer's today, on either channel, until they write
  const count = async (channel: string) =>
    (await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(start)}&to=${iso(Date.now() + 1000)}&channel=${channel}`, { token: jwt })).body.conversations;
  expect([await count('whatsapp'), await count('sms')]).toEqual([0, 0]);

  // Act: the customer answers by SMS; Assess: a new conversation there, waiting for its first reply
  expect(await smsCustomerWrites(phone.sms, 'It did not')).toBe(moved.body.id);
  expect(await count('sms')).toBe(1);
});
