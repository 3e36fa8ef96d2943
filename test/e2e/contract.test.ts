/**
 * CONTRACT.md, statement by statement, as a client outside the code reads it: the local-only
 * routes and their shapes (section 2), the error shape on every kind of refusal (section 3), the
 * shapes of section 5 wherever the API and the frames carry them (required fields there with the
 * contract's types, optional ones absent or typed), and that agents get every message of the
 * conversations they see as `message.created` before any `message.updated` of it (section 4),
 * whoever wrote it: a customer, an agent, the autoresponder, a proactive message.
 * What other files pin already (signatures, the challenge, handshakes, pong, pagination) is not repeated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { newHandle, postWebhook, textWebhook } from './channels-support';
import { providerHeaders } from '../fixtures/sign';
import { CHANNELS } from '../../src/domain/types';

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;
let adminJwt: string;

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = await agentToken(stack.httpUrl, 'contract-ana', 'agent', 'Ana');
  adminJwt = await agentToken(stack.httpUrl, 'contract-ada', 'admin', 'Ada');
  agent = await WsClient.connect(stack.wsUrl, agentJwt);
});

afterAll(async () => {
  await agent?.close();
  await stack?.stop();
});

// ---- section 5, as checks a client could write -------------------------------------------------

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
type Json = Record<string, any>;

function expectTime(value: unknown): void {
  expect(value).toMatch(ISO_UTC);
}

function expectOptional(record: Json, key: string, check: (value: unknown) => void): void {
  if (record[key] !== undefined) check(record[key]);
}

const isString = (value: unknown) => expect(typeof value).toBe('string');

function expectMessage(m: Json): void {
  expect(typeof m.id).toBe('string');
  expect(typeof m.conversationId).toBe('string');
  expect(['inbound', 'outbound']).toContain(m.direction);
  expect(['contact', 'agent', 'bot', 'system']).toContain(m.sender?.type);
  expect(typeof m.sender.id).toBe('string');
  expectOptional(m.sender, 'name', isString);
  expect(CHANNELS).toContain(m.channel);
  expect(typeof m.text).toBe('string');
  expect(Array.isArray(m.attachments)).toBe(true);
  for (const a of m.attachments as Json[]) {
    expect(typeof a.type).toBe('string');
    expect(typeof a.url).toBe('string');
    for (const key of ['mimeType', 'name']) expectOptional(a, key, isString);
    expectOptional(a, 'size', (v) => expect(typeof v).toBe('number'));
  }
  expect(['received', 'queued', 'sent', 'delivered', 'read', 'failed']).toContain(m.status);
  expect(typeof m.private).toBe('boolean');
  expectOptional(m, 'providerMessageId', isString);
  expectTime(m.createdAt);
}

function expectConversation(c: Json): void {
  expect(typeof c.id).toBe('string');
  expect(CHANNELS).toContain(c.channel);
  expect(['open', 'pending', 'snoozed', 'resolved']).toContain(c.status);
  expect(typeof c.contact?.id).toBe('string');
  for (const key of ['name', 'email', 'phone']) expectOptional(c.contact, key, isString);
  expect(c.assigneeId === null || typeof c.assigneeId === 'string').toBe(true);
  expect(Number.isInteger(c.unreadCount)).toBe(true);
  for (const key of ['createdAt', 'updatedAt', 'lastMessageAt']) expectTime(c[key]);
  for (const key of ['firstReplyAt', 'resolvedAt']) expectOptional(c, key, expectTime);
  expectOptional(c, 'csat', (csat) => expect(typeof (csat as Json).score).toBe('number'));
}

function expectContact(c: Json): void {
  expect(typeof c.id).toBe('string');
  for (const key of ['name', 'email', 'phone']) expectOptional(c, key, isString);
  expect(Array.isArray(c.handles)).toBe(true);
  for (const h of c.handles as Json[]) {
    expect(CHANNELS).toContain(h.channel);
    expect(typeof h.handle).toBe('string');
  }
  expect(Array.isArray(c.conversations)).toBe(true);
  (c.conversations as Json[]).forEach(expectConversation);
}

function expectError(res: { status: number; body: any; headers: Headers }, status: number, code?: string): void {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(typeof res.body?.error?.code).toBe('string');
  expect(typeof res.body.error.message).toBe('string');
  expect(res.body.error.message).not.toBe('');
  if (code) expect(res.body.error.code).toBe(code);
}

/** The frames about one message, in the order the agent's connection got them. */
const framesOf = (ws: WsClient, messageId: string) => ws.frames.filter((f) => (f.type === 'message.created' || f.type === 'message.updated') && f.message.id === messageId);

/** Every message of the conversation reached the agent as message.created, before any message.updated of it. */
async function expectEveryMessageCreatedFirst(conversationId: string): Promise<Json[]> {
  const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt });
  expect(page.status).toBe(200);
  const items = page.body.items as Json[];
  for (const m of items) {
    const frames = await eventually(() => {
      const seen = framesOf(agent, m.id);
      return seen.length > 0 && seen;
    }, 10_000).catch(() => []);
    expect(frames.map((f: Frame) => f.type)[0], `message.created of ${m.sender.type}'s "${m.text}"`).toBe('message.created');
    frames.forEach((f: Frame) => expectMessage(f.message));
  }
  return items;
}

describe('section 2: the local-only routes', () => {
  it('answers health, issues tokens for agents and admins only, and lists provider requests and mail in their documented shapes', async () => {
    const health = await http(stack.httpUrl, 'GET', '/local/health');
    expect([health.status, health.body]).toEqual([200, { ok: true }]);

    const token = await http(stack.httpUrl, 'POST', '/local/auth/token', { body: { sub: 'agent-1', name: 'Ana', role: 'agent' } });
    expect(token.status).toBe(200);
    expect(token.body.token.split('.')).toHaveLength(3);
    expect(JSON.parse(Buffer.from(token.body.token.split('.')[0], 'base64url').toString()).alg).toBe('RS256');
    expectError(await http(stack.httpUrl, 'POST', '/local/auth/token', { body: { sub: 'agent-1', role: 'owner' } }), 400);

    // A customer's first message on Telegram is greeted through the provider API: one request recorded.
    await postWebhook(stack, 'telegram', textWebhook('telegram', newHandle('telegram'), 'hello outbox').body);
    const outbox = await eventually(async () => {
      const res = await http(stack.httpUrl, 'GET', '/local/outbox?channel=telegram');
      return res.body.items.length > 0 && res;
    });
    expect(outbox.status).toBe(200);
    for (const item of outbox.body.items as Json[]) {
      expect(item).toMatchObject({ channel: 'telegram', method: expect.any(String), url: expect.any(String), headers: expect.any(Object) });
      expect(item).toHaveProperty('body');
      expectTime(item.at);
    }
    const all = (await http(stack.httpUrl, 'GET', '/local/outbox')).body.items as Json[];
    expect(all.map((i) => i.at)).toEqual(all.map((i) => i.at).sort());
    expect((await http(stack.httpUrl, 'GET', '/local/outbox?channel=sms')).body.items.every((i: Json) => i.channel === 'sms')).toBe(true);

    const mail = await http(stack.httpUrl, 'GET', '/local/mail');
    expect(mail.status).toBe(200);
    expect(Array.isArray(mail.body.items)).toBe(true);
  });
});

describe('section 3: the error shape on every kind of refusal', () => {
  it('answers {"error":{"code","message"}} as JSON with the status named for each case, never a 5xx', async () => {
    const session = await visitorSession(stack.httpUrl);
    const big = JSON.stringify({ text: 'x'.repeat(256 * 1024) });
    const cases: [Promise<Parameters<typeof expectError>[0]>, number, string?][] = [
      [http(stack.httpUrl, 'GET', '/v1/nothing-here', { token: agentJwt }), 404],
      [http(stack.httpUrl, 'GET', '/v1/conversations'), 401],
      [http(stack.httpUrl, 'GET', '/v1/conversations', { token: session.token }), 401],
      [http(stack.httpUrl, 'GET', '/v1/conversations/01NOPE', { token: agentJwt }), 404],
      [http(stack.httpUrl, 'GET', '/v1/contacts/01NOPE', { token: agentJwt }), 404],
      [http(stack.httpUrl, 'GET', '/v1/conversations?status=archived', { token: agentJwt }), 400],
      [http(stack.httpUrl, 'GET', '/v1/conversations?cursor=not-a-cursor', { token: agentJwt }), 400],
      [http(stack.httpUrl, 'POST', '/v1/conversations/01NOPE/assign', { token: agentJwt, body: {} }), 400],
      [http(stack.httpUrl, 'PUT', '/v1/settings', { token: agentJwt, body: {} }), 403],
      [http(stack.httpUrl, 'GET', '/v1/reports/summary?from=yesterday', { token: agentJwt }), 400],
      [http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { email: 'not an address' } }), 400],
      [http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: 'nope' } }), 401],
      [http(stack.httpUrl, 'POST', '/v1/conversations/01NOPE/messages', { token: agentJwt, raw: big, headers: { 'content-type': 'application/json' } }), 413],
      [http(stack.httpUrl, 'POST', '/v1/widget/sessions', { raw: big, headers: { 'content-type': 'application/json' } }), 413],
      [http(stack.httpUrl, 'POST', '/webhooks/whatsapp', { raw: big, headers: { 'content-type': 'application/json' } }), 413],
      [http(stack.httpUrl, 'POST', '/webhooks/messenger', { raw: '{}', headers: { 'content-type': 'application/json' } }), 401],
      [http(stack.httpUrl, 'GET', '/webhooks/instagram?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1'), 403],
    ];
    for (const [response, status, code] of cases) expectError(await response, status, code);
  });

  it("answers an unknown route from the API function ($default), as deployed, so the 404 is the contract's with or without a token", async () => {
    for (const [method, path, token] of [['GET', '/nowhere', undefined], ['DELETE', '/v1/widget/sessions', undefined], ['PATCH', '/v1/conversations', agentJwt]] as const) {
      const response = await http(stack.httpUrl, method, path, token ? { token } : {});
      expect(response.status).toBe(404);
      // API Gateway's own 404 would be {"message":"Not Found"}: only the function names the route.
      expect(response.body).toEqual({ error: { code: 'not_found', message: `no route ${method} ${path}` } });
    }
  });
});

describe('section 3: webhooks', () => {
  it('takes a Twilio post signed for CONVERSA_PUBLIC_URL + "/webhooks/sms" (not the address it reached) and answers <Response/> as text/xml', async () => {
    const previous = process.env.CONVERSA_PUBLIC_URL;
    // The handlers read it per request: as deployed behind a custom domain.
    process.env.CONVERSA_PUBLIC_URL = 'https://support.example.com';
    try {
      const inbound = textWebhook('sms', newHandle('sms'), 'signed for the public address');
      const forLocal = await postWebhook(stack, 'sms', inbound.body);
      expectError(forLocal, 401);
      const headers = providerHeaders('sms', inbound.body, 'https://support.example.com/webhooks/sms');
      const forPublic = await http(stack.httpUrl, 'POST', '/webhooks/sms', { raw: inbound.body, headers });
      expect([forPublic.status, forPublic.headers.get('content-type'), forPublic.text]).toEqual([200, 'text/xml', '<Response/>']);
      await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === inbound.providerMessageId);
    } finally {
      if (previous === undefined) delete process.env.CONVERSA_PUBLIC_URL;
      else process.env.CONVERSA_PUBLIC_URL = previous;
    }
  });
});

describe('section 5: the shapes, wherever they travel', () => {
  it('a provider conversation: its frames, the inbox, the conversation, its history, the reply, the contact', async () => {
    const handle = newHandle('whatsapp');
    const inbound = textWebhook('whatsapp', handle, 'Where is my order?');
    expect((await postWebhook(stack, 'whatsapp', inbound.body)).status).toBe(200);
    const created = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === inbound.providerMessageId);
    expect(created.conversationId).toBe(created.message.conversationId);
    expectMessage(created.message);
    expect(created.message).toMatchObject({ direction: 'inbound', sender: { type: 'contact' }, channel: 'whatsapp', status: 'received', private: false });
    const conversationId = created.conversationId as string;

    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { text: 'On its way', clientMessageId: 'contract-r1' } });
    expect(reply.status).toBe(202);
    expect(Object.keys(reply.body)).toEqual(['message']);
    expectMessage(reply.body.message);
    expect(reply.body.message).toMatchObject({ direction: 'outbound', sender: { type: 'agent', id: 'contract-ana' }, status: 'queued', private: false });
    const sent = await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === reply.body.message.id);
    expect(['sent', 'delivered', 'read', 'failed']).toContain(sent.message.status);
    expect(sent.conversationId).toBe(conversationId);

    const conversation = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}`, { token: agentJwt });
    expect(conversation.status).toBe(200);
    expectConversation(conversation.body);
    expect(conversation.body).toMatchObject({ id: conversationId, channel: 'whatsapp', status: 'open', contact: { phone: `+${handle}` } });
    expectTime(conversation.body.firstReplyAt);

    const inbox = await http(stack.httpUrl, 'GET', '/v1/conversations?channel=whatsapp&limit=5', { token: agentJwt });
    expect(inbox.status).toBe(200);
    expect(inbox.body.nextCursor === null || typeof inbox.body.nextCursor === 'string').toBe(true);
    (inbox.body.items as Json[]).forEach(expectConversation);
    expect(inbox.body.items.map((c: Json) => c.id)).toContain(conversationId);

    const history = await expectEveryMessageCreatedFirst(conversationId);
    expect(history.map((m) => m.sender.type)).toEqual(['contact', 'bot', 'agent']);
    history.forEach(expectMessage);
    const updates = agent.frames.filter((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId);
    expect(updates.length).toBeGreaterThan(0);
    updates.forEach((f) => expectConversation(f.conversation));

    const contact = await http(stack.httpUrl, 'GET', `/v1/contacts/${conversation.body.contact.id}`, { token: agentJwt });
    expect(contact.status).toBe(200);
    expectContact(contact.body);
    expect(contact.body.handles).toContainEqual({ channel: 'whatsapp', handle });
    expect(contact.body.conversations.map((c: Json) => c.id)).toEqual([conversationId]);
  });

  it('a web conversation: the session, the ack, the visitor’s frames without notes, and the agent’s', async () => {
    const session = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { name: 'Vera', email: 'vera.contract@example.com' } });
    expect(session.status).toBe(201);
    expect(session.body).toMatchObject({ visitorId: expect.any(String), token: expect.any(String), websocketUrl: stack.wsUrl, conversationId: null });
    const visitor = await WsClient.connect(session.body.websocketUrl, session.body.token);
    try {
      visitor.send({ action: 'sendMessage', text: 'Hello', clientMessageId: 'contract-c1' });
      const ack = await visitor.waitFor((f) => f.type === 'ack');
      expect(ack).toEqual({ type: 'ack', clientMessageId: 'contract-c1', messageId: expect.any(String), conversationId: expect.any(String) });
      const resumed = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: session.body.token } });
      expect(resumed.status).toBe(201);
      expect(resumed.body).toMatchObject({ visitorId: session.body.visitorId, conversationId: ack.conversationId, websocketUrl: stack.wsUrl });

      await http(stack.httpUrl, 'POST', `/v1/conversations/${ack.conversationId}/messages`, { token: agentJwt, body: { text: 'team only', private: true } });
      const note = await agent.waitFor((f) => f.type === 'message.created' && f.message.text === 'team only');
      expect(note.message).toMatchObject({ private: true, status: 'sent', direction: 'outbound' });
      await http(stack.httpUrl, 'POST', `/v1/conversations/${ack.conversationId}/messages`, { token: agentJwt, body: { text: 'Hi Vera' } });
      await visitor.waitFor((f) => f.type === 'message.created' && f.message.text === 'Hi Vera');

      for (const frame of visitor.frames) {
        if (frame.type === 'message.created' || frame.type === 'message.updated') {
          expectMessage(frame.message);
          expect(frame.message.private).toBe(false);
        }
        if (frame.type === 'conversation.updated') expectConversation(frame.conversation);
      }
      expect(visitor.frames.some((f) => f.message?.text === 'team only')).toBe(false);
      await expectEveryMessageCreatedFirst(ack.conversationId);
    } finally {
      await visitor.close();
    }
  });
});

describe('section 4: every message agents may see reaches them as message.created', () => {
  it('a proactive message on a provider conversation: message.created before its message.updated', async () => {
    const handle = newHandle('sms');
    await postWebhook(stack, 'sms', textWebhook('sms', handle, 'Any news?').body);
    const first = await agent.waitFor((f) => f.type === 'message.created' && f.message.channel === 'sms' && f.message.text === 'Any news?');
    const contactId = first.message.sender.id as string;
    const text = `Our sale starts tomorrow ${crypto.randomUUID()}`;
    const proactive = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactId, text } });
    expect(proactive.status).toBeLessThan(300);
    const update = await agent.waitFor((f) => f.type === 'message.updated' && f.message.text === text);
    const frames = framesOf(agent, update.message.id);
    expect(frames.map((f) => f.type)[0]).toBe('message.created');
    expect(frames[0]!.message).toMatchObject({ conversationId: first.conversationId, sender: { type: 'agent', id: 'contract-ada' }, direction: 'outbound' });
    await expectEveryMessageCreatedFirst(first.conversationId);
  });
});
