/** Reports narrowed to a team or a label (with or without a channel), over HTTP on the local stack. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';
import { newHandle, whatsappCustomerWrites } from './channels-support';
import { getConversation, updateConversation } from '../../src/store/conversations';

let stack: LocalStack;
let jwt: string;
const sockets: WsClient[] = [];

const MINUTE = 60_000;
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

beforeAll(async () => {
  stack = await startTestStack();
  jwt = await agentToken(stack.httpUrl, 'agent-rita', 'admin', 'Rita');
  // Two teams, each with a member (a transfer to a team nobody belongs to is refused); labels defined
  for (const [agentId, team] of [
    ['agent-bo', 'billing'],
    ['agent-cy', 'sales'],
  ]) {
    expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${agentId}`, { token: jwt, body: { teams: [team] } })).status).toBe(200);
  }
  const labels = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: jwt, body: { labels: [{ name: 'refund' }, { name: 'shipping' }] } });
  expect(labels.status).toBe(200);
});
afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

/** A web visitor writes; answers the new conversation's id. */
async function visitorWrites(text: string): Promise<string> {
  const session = await visitorSession(stack.httpUrl);
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  ws.send({ action: 'sendMessage', text, clientMessageId: crypto.randomUUID() });
  return (await ws.waitFor((f) => f.type === 'ack')).conversationId;
}

const customerWrites = (handle: string, text: string) => whatsappCustomerWrites(stack, handle, text);

const post = (path: string, body?: unknown) => http(stack.httpUrl, 'POST', path, { token: jwt, ...(body ? { body } : {}) });
const toTeam = async (id: string, team: string) => expect((await post(`/v1/conversations/${id}/transfer`, { team })).status).toBe(200);
const label = async (id: string, labels: string[]) =>
  expect((await http(stack.httpUrl, 'PUT', `/v1/conversations/${id}/labels`, { token: jwt, body: { labels } })).status).toBe(200);
const resolve = async (id: string) => expect((await post(`/v1/conversations/${id}/resolve`)).status).toBe(200);
async function reply(id: string, text: string): Promise<void> {
  expect((await post(`/v1/conversations/${id}/messages`, { text })).status).toBe(202);
  await eventually(async () => ((await getConversation(id, true))?.firstReplyAt ? true : undefined));
}

/** The summary for `from`–`to` with these extra parameters (raw, as a client would write them). */
const summary = async (from: number, to: number, extra = '') => http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${iso(from)}&to=${iso(to)}${extra}`, { token: jwt });

it('counts only a team’s or a label’s conversations, alone, together or with a channel; the totals stay every conversation’s', async () => {
  // Prepare: billing has two conversations (one answered and resolved), sales three (one
  // answered, one resolved unanswered), one conversation has no team; four carry "refund"
  const start = Date.now();
  const b1 = await customerWrites(newHandle('whatsapp'), 'I was charged twice');
  const b2 = await visitorWrites('Where is my invoice?');
  const s1 = await customerWrites(newHandle('whatsapp'), 'Do you sell gift cards?');
  const s2 = await customerWrites(newHandle('whatsapp'), 'Is there a bulk discount?');
  const s3 = await visitorWrites('Can I return the lamp?');
  const n1 = await visitorWrites('Refund please');
  for (const id of [b1, b2]) await toTeam(id, 'billing');
  for (const id of [s1, s2, s3]) await toTeam(id, 'sales');
  for (const id of [b1, s1, s3, n1]) await label(id, ['refund']);
  await label(s2, ['shipping']);
  await reply(b1, 'Refunded the second charge');
  await resolve(b1);
  await reply(s1, 'Yes, from 10 to 500');
  await resolve(s2);
  const report = async (extra = '') => {
    const res = await summary(start, Date.now() + 1000, extra);
    expect(res.status).toBe(200);
    return res.body;
  };

  // Assess: the totals, as before (every conversation, whatever its team or labels)
  const all = await report();
  expect(all).toMatchObject({ team: null, label: null, channel: null, conversations: 6, resolved: 2, firstReplySeconds: { count: 2 } });

  // Assess: per team, each its own figures
  const billing = await report('&team=billing');
  expect(billing).toMatchObject({ team: 'billing', label: null, conversations: 2, resolved: 1, resolutionRate: 0.5, firstReplySeconds: { count: 1 }, handleSeconds: { count: 1 } });
  expect(Object.fromEntries(Object.entries(billing.byChannel).map(([channel, k]) => [channel, (k as { conversations: number }).conversations]))).toEqual({ web: 1, whatsapp: 1 });
  const sales = await report('&team=sales');
  expect(sales).toMatchObject({ team: 'sales', conversations: 3, resolved: 1, resolutionRate: 0.3333, firstReplySeconds: { count: 1 }, handleSeconds: { count: 0 } });
  expect(Object.fromEntries(Object.entries(sales.byChannel).map(([channel, k]) => [channel, (k as { conversations: number }).conversations]))).toEqual({ web: 1, whatsapp: 2 });
  // A well-formed team with no conversations (teams are free-form): nothing, not a 400
  expect(await report('&team=night%20shift')).toMatchObject({ team: 'night shift', conversations: 0, resolutionRate: null, byChannel: {}, byAgent: {} });

  // Assess: per label
  expect(await report('&label=refund')).toMatchObject({ label: 'refund', conversations: 4, resolved: 1, resolutionRate: 0.25, firstReplySeconds: { count: 2 } });
  expect(await report('&label=shipping')).toMatchObject({ label: 'shipping', conversations: 1, resolved: 1, firstReplySeconds: { count: 0 } });

  // Assess: together, and with a channel
  expect(await report('&team=sales&label=refund')).toMatchObject({ team: 'sales', label: 'refund', conversations: 2, resolved: 0 });
  expect(await report('&team=sales&channel=whatsapp')).toMatchObject({ channel: 'whatsapp', team: 'sales', conversations: 2, resolved: 1 });
  expect(await report('&label=refund&channel=web')).toMatchObject({ channel: 'web', label: 'refund', conversations: 2, resolved: 0 });
  expect(await report('&team=billing&label=refund&channel=whatsapp')).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 1 });
  expect(await report('&team=billing&label=shipping')).toMatchObject({ conversations: 0 });

  // Assess: the figures are the conversation's team and labels as they are now
  await label(n1, []);
  await toTeam(b2, 'sales');
  expect(await report('&label=refund')).toMatchObject({ conversations: 3 });
  expect(await report('&team=billing')).toMatchObject({ conversations: 1, resolved: 1 });
  expect(await report('&team=sales')).toMatchObject({ conversations: 4 });
  expect(await report()).toMatchObject({ conversations: 6, resolved: 2 });
});

it('counts a conversation’s closed episode under the conversation’s current team and labels', async () => {
  // Prepare: a billing customer labelled refund, answered in 5 minutes and resolved in 30, six days ago
  const handle = newHandle('whatsapp');
  const id = await customerWrites(handle, 'My refund never came');
  await toTeam(id, 'billing');
  await label(id, ['refund']);
  await reply(id, 'Sent it again');
  await resolve(id);
  const then = Date.now() - 6 * DAY;
  await updateConversation(id, (c) => ({ ...c, createdAt: iso(then), firstReplyAt: iso(then + 5 * MINUTE), resolvedAt: iso(then + 30 * MINUTE) }));

  // Act: the customer comes back with something else: the old episode is frozen into an item of its own
  expect(await customerWrites(handle, 'Now the parcel is missing')).toBe(id);
  const sixDaysAgo = async (extra: string) => (await summary(then - MINUTE, then + 60 * MINUTE, extra)).body;

  // Assess: the episode item counts under the conversation's label and team, with its own figures
  const episode = { conversations: 1, resolved: 1, firstContactResolutionRate: 1, firstReplySeconds: { avg: 300 }, resolutionSeconds: { avg: 1800 } };
  expect(await sixDaysAgo('&label=refund')).toMatchObject(episode);
  expect(await sixDaysAgo('&team=billing&label=refund&channel=whatsapp')).toMatchObject(episode);
  expect(await sixDaysAgo('&label=shipping')).toMatchObject({ conversations: 0 });
  expect(await sixDaysAgo('&team=sales')).toMatchObject({ conversations: 0 });

  // Act: the conversation is relabelled and moved to sales for the new issue
  await label(id, ['shipping']);
  await toTeam(id, 'sales');

  // Assess: its earlier episode goes with it (the conversation's current team and labels)
  expect(await sixDaysAgo('&label=shipping&team=sales')).toMatchObject(episode);
  expect(await sixDaysAgo('&label=refund')).toMatchObject({ conversations: 0 });
  expect(await sixDaysAgo('&team=billing')).toMatchObject({ conversations: 0 });
  expect(await sixDaysAgo('')).toMatchObject(episode);
});

it('answers a bad team or label with a 400 that says what is wrong, and the unfiltered report as it was', async () => {
  const day = [Date.now() - DAY, Date.now() + 1000] as const;
  const unfiltered = await summary(...day);
  expect(unfiltered.status).toBe(200);
  const bad: [string, string, RegExp][] = [
    // Well-formed but not defined in the settings' labels
    ['label=refunds', 'unknown_label', /label refunds is not defined/],
    ['label=Refund', 'invalid_request', /label/],
    ['label=%20', 'invalid_request', /label/],
    [`label=${'a'.repeat(33)}`, 'invalid_request', /label/],
    [`team=${'t'.repeat(65)}`, 'invalid_request', /team/],
    ['team=%20%20', 'invalid_request', /team/],
    // Misspelt: still refused by name, the message naming the new parameters
    ['teams=billing', 'invalid_request', /unknown parameter teams: a report takes from, to, channel, team, label/],
    ['labels=refund', 'invalid_request', /labels/],
  ];
  for (const [query, code, message] of bad) {
    const res = await summary(...day, `&${query}`);
    expect({ query, status: res.status, code: res.body.error?.code }).toEqual({ query, status: 400, code });
    expect(res.body.error.message).toMatch(message);
  }

  // The unfiltered answer: the figures it always gave, the two new fields null; the bad requests changed nothing
  expect(Object.keys(unfiltered.body).sort()).toEqual(
    ['from', 'to', 'channel', 'team', 'label', 'conversations', 'resolved', 'resolutionRate', 'firstReplySeconds', 'handleSeconds', 'resolutionSeconds', 'firstContactResolutionRate', 'sla', 'csat', 'byChannel', 'byAgent'].sort(),
  );
  expect(unfiltered.body).toMatchObject({ channel: null, team: null, label: null });
  expect(unfiltered.body.conversations).toBeGreaterThan(0);
  expect((await summary(...day)).body).toEqual(unfiltered.body);
  // Left empty by a form, as any query parameter: not given
  const blanks = await summary(...day, '&team=&label=&channel=');
  expect(blanks.status).toBe(200);
  expect(blanks.body).toEqual(unfiltered.body);

  // A label an admin defines now is taken at once
  const settings = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: jwt, body: { labels: [{ name: 'refund' }, { name: 'shipping' }, { name: 'warranty' }] } });
  expect(settings.status).toBe(200);
  expect((await summary(...day, '&label=warranty')).body).toMatchObject({ label: 'warranty', conversations: 0 });
});
