/**
 * The web chat end to end on the local stack: a visitor and an agent talk over WebSocket,
 * sessions resume, history pages, and nobody sees what is not theirs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';
import { getVisitor } from '../../src/store/contacts';
import { VISITOR_SEND_LIMIT } from '../../src/domain/realtime';
import { ENV } from '../../src/config';

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;
const clients: WsClient[] = [];

async function connect(token: string | undefined): Promise<WsClient> {
  const client = await WsClient.connect(stack.wsUrl, token);
  clients.push(client);
  return client;
}

/** Texts of the customer's and agents' messages (the autoresponder's bot greeting left out). */
const texts = (items: { text: string; sender: { type: string } }[]) => items.filter((m) => m.sender.type !== 'bot').map((m) => m.text);

/** A visitor who has written once: the conversation exists. */
async function visitorWithConversation(text = 'Hello, I need help', profile: Record<string, string> = { name: 'Vera', email: `vera-${crypto.randomUUID()}@example.com` }) {
  const session = await visitorSession(stack.httpUrl, profile);
  const ws = await connect(session.token);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text, clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
  return { session, ws, ack, clientMessageId };
}

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = await agentToken(stack.httpUrl, 'agent-ana', 'agent', 'Ana');
  agent = await connect(agentJwt);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

describe('web chat', () => {
  it('delivers a visitor message to the agent and an agent reply to the visitor', async () => {
    // Prepare
    const { session, ws, ack } = await visitorWithConversation('Where is my order?');

    // Assess: the agent sees the message and the new conversation
    const created = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId, 10_000, 'message.created');
    expect(created.message).toMatchObject({
      conversationId: ack.conversationId,
      direction: 'inbound',
      channel: 'web',
      text: 'Where is my order?',
      status: 'received',
      private: false,
      sender: { type: 'contact', name: 'Vera' },
    });
    const update = await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === ack.conversationId);
    expect(update.conversation).toMatchObject({ channel: 'web', status: 'open', unreadCount: 1 });

    // Act: the agent answers over HTTP
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${ack.conversationId}/messages`, {
      token: agentJwt,
      body: { text: 'It ships today', clientMessageId: 'reply-1' },
    });

    // Assess
    expect(reply.status).toBe(202);
    expect(reply.body.message).toMatchObject({ direction: 'outbound', text: 'It ships today', status: 'queued', sender: { type: 'agent', id: 'agent-ana', name: 'Ana' } });
    const received = await ws.waitFor((f) => f.type === 'message.created' && f.message.id === reply.body.message.id, 10_000, 'reply at visitor');
    expect(received.message.text).toBe('It ships today');
    const stored = await eventually(async () => {
      const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}/messages`, { token: agentJwt });
      return page.body.items.find((m: { id: string; status: string }) => m.id === reply.body.message.id && m.status === 'delivered');
    });
    expect(stored.text).toBe('It ships today');
    const conversation = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}`, { token: agentJwt });
    // The time of the first reply: an ISO timestamp, not before the reply was written.
    const firstReplyAt = conversation.body.firstReplyAt;
    expect(firstReplyAt).toEqual(expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/));
    expect(new Date(firstReplyAt).toISOString()).toBe(firstReplyAt);
    expect(Date.parse(firstReplyAt)).toBeGreaterThanOrEqual(Date.parse(reply.body.message.createdAt));
    expect(session.conversationId).toBeNull();
  });

  it('marks the autoresponder’s greeting delivered once the visitor’s connection took it, and tells the agents', async () => {
    const { ws, ack } = await visitorWithConversation('Is anyone there?');
    const greeting = await ws.waitFor((f) => f.type === 'message.created' && f.message.sender.type === 'bot', 10_000, 'greeting');
    const updated = await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === greeting.message.id, 10_000, 'greeting delivered');
    expect(updated.message.status).toBe('delivered');
    const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}/messages`, { token: agentJwt });
    expect(page.body.items.find((m: { id: string }) => m.id === greeting.message.id).status).toBe('delivered');
  });

  it('keeps at most ten connections per visitor, closing the oldest when another opens', async () => {
    const session = await visitorSession(stack.httpUrl, { name: 'Many tabs' });
    const tabs: WsClient[] = [];
    for (let i = 0; i < 12; i++) tabs.push(await connect(session.token));
    const CLOSED = 3;
    const OPEN = 1;
    await eventually(() => tabs.slice(0, 2).every((tab) => tab.socket.readyState === CLOSED));
    expect(tabs.slice(2).map((tab) => tab.socket.readyState)).toEqual(Array(10).fill(OPEN));
    const clientMessageId = crypto.randomUUID();
    tabs[11]!.send({ action: 'sendMessage', text: 'from the newest tab', clientMessageId });
    await tabs[11]!.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
  });

  it('lets an agent reply over WebSocket with an ack, and sends the same clientMessageId once', async () => {
    const { ws, ack } = await visitorWithConversation();
    agent.send({ action: 'sendMessage', conversationId: ack.conversationId, text: 'Hi from the socket', clientMessageId: 'ws-1' });
    const agentAck = await agent.waitFor((f) => f.type === 'ack' && f.clientMessageId === 'ws-1');
    expect(agentAck.conversationId).toBe(ack.conversationId);
    await ws.waitFor((f) => f.type === 'message.created' && f.message.id === agentAck.messageId);

    const again = await http(stack.httpUrl, 'POST', `/v1/conversations/${ack.conversationId}/messages`, {
      token: agentJwt,
      body: { text: 'Hi from the socket', clientMessageId: 'ws-1' },
    });
    expect(again.status).toBe(202);
    expect(again.body.message.id).toBe(agentAck.messageId);
    const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}/messages`, { token: agentJwt });
    expect(history.body.items.filter((m: { text: string }) => m.text === 'Hi from the socket')).toHaveLength(1);
  });

  it('stores a visitor message sent twice with one clientMessageId once', async () => {
    const { ws, ack, clientMessageId } = await visitorWithConversation('only once');
    ws.send({ action: 'sendMessage', text: 'only once', clientMessageId });
    const acks = await eventually(() => {
      const found = ws.frames.filter((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
      return found.length === 2 ? found : undefined;
    });
    expect(acks[1]!.messageId).toBe(ack.messageId);
    const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}/messages`, { token: agentJwt });
    expect(history.body.items.filter((m: { text: string }) => m.text === 'only once')).toHaveLength(1);
  });

  it('stores a new message of a reloaded widget that counts its clientMessageIds anew', async () => {
    const { session, ack, clientMessageId } = await visitorWithConversation('before the reload');
    const reloaded = await connect((await visitorSession(stack.httpUrl, { token: session.token })).token);
    reloaded.send({ action: 'sendMessage', text: 'after the reload: my order is missing', clientMessageId });
    const second = await reloaded.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
    expect(second.messageId).not.toBe(ack.messageId);
    const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}/messages`, { token: agentJwt });
    expect(texts(history.body.items.filter((m: { direction: string }) => m.direction === 'inbound'))).toEqual(['before the reload', 'after the reload: my order is missing']);
  });

  it('resumes a session with its token: same visitor, same conversation, on another connection', async () => {
    const { session, ack } = await visitorWithConversation('first tab');
    const resumed = await visitorSession(stack.httpUrl, { token: session.token });
    expect(resumed.visitorId).toBe(session.visitorId);
    expect(resumed.conversationId).toBe(ack.conversationId);

    const secondTab = await connect(resumed.token);
    secondTab.send({ action: 'sendMessage', text: 'second tab', clientMessageId: crypto.randomUUID() });
    const secondAck = await secondTab.waitFor((f) => f.type === 'ack');
    expect(secondAck.conversationId).toBe(ack.conversationId);

    const history = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: resumed.token });
    expect(history.status).toBe(200);
    expect(texts(history.body.items)).toEqual(['first tab', 'second tab']);
    // The scheme name in any case, as HTTP has it.
    const lower = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { headers: { authorization: `bearer ${resumed.token}` } });
    expect(lower.status).toBe(200);
  });

  it("tells a resumed session, and the history beside its messages, the conversation's status and whether its CSAT question still takes a rating, and nothing of the team's", async () => {
    // Prepare: auto-resolve in seconds, asking the CSAT question
    const admin = await agentToken(stack.httpUrl, 'admin-olga', 'admin', 'Olga');
    const { timers, csat } = (await http(stack.httpUrl, 'GET', '/v1/settings', { token: admin })).body;
    expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { timers: { autoResolveAfterSeconds: 2 }, csat: { enabled: true, question: 'Rate us, 1 to 5' } } })).status).toBe(200);
    const restore = () => http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { timers, csat } });
    try {
      const { session, ws, ack } = await visitorWithConversation('A quick one');
      const conversationId = ack.conversationId;
      const resumed = () => visitorSession(stack.httpUrl, { token: session.token });
      // The history says the same (a reloaded widget asks no session call to know it).
      const history = async () => {
        const { body } = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: session.token });
        expect(Object.keys(body).sort()).toEqual(['conversationStatus', 'csatOpen', 'items', 'nextCursor']);
        return body;
      };
      expect(session).toMatchObject({ conversationId: null, conversationStatus: null, csatOpen: false });
      expect(await resumed()).toMatchObject({ conversationId, conversationStatus: 'open', csatOpen: false });
      expect(await history()).toMatchObject({ conversationStatus: 'open', csatOpen: false });
      await ws.waitFor((f) => f.type === 'message.created' && f.message.attachments.some((a: { type: string }) => a.type === 'csat'), 20_000, 'the CSAT question');
      const asked = await resumed();
      expect(asked).toMatchObject({ conversationId, conversationStatus: 'resolved', csatOpen: true });
      expect(await history()).toMatchObject({ conversationStatus: 'resolved', csatOpen: true });
      expect(Object.keys(asked).sort()).toEqual(['conversationId', 'conversationStatus', 'csatOpen', 'token', 'visitorId', 'websocketUrl']);
      // No second auto-resolve once reopened, and no question at the agent's resolution (CSAT off).
      expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { timers, csat: { ...csat, enabled: false } } })).status).toBe(200);

      // Act: an agent reopens it, then resolves it again (no question asked this time)
      expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/reopen`, { token: agentJwt })).status).toBe(200);
      const reopened = await resumed();
      const reopenedHistory = await history();
      expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt })).status).toBe(200);
      const resolved = await resumed();
      const resolvedHistory = await history();

      // Assess: the old question takes no rating any more, whatever the status
      expect(reopened).toMatchObject({ conversationStatus: 'open', csatOpen: false });
      expect(resolved).toMatchObject({ conversationStatus: 'resolved', csatOpen: false });
      expect(reopenedHistory).toMatchObject({ conversationStatus: 'open', csatOpen: false });
      expect(resolvedHistory).toMatchObject({ conversationStatus: 'resolved', csatOpen: false });
    } finally {
      await restore();
    }
  }, 60_000);

  it('takes a name and email given later (a pre-chat form after the first message): on the visitor at once, on the contact and the conversation agents see with the next message', async () => {
    // Prepare: an anonymous visitor's conversation, then the form on the resumed session
    const { session, ws, ack } = await visitorWithConversation('before the form', {});
    const email = `later-${crypto.randomUUID()}@example.com`;
    const named = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: session.token, name: 'Later', email } });
    expect(named.status).toBe(201);
    expect(named.body).toMatchObject({ visitorId: session.visitorId, conversationId: ack.conversationId });
    expect(await getVisitor(session.visitorId, true)).toMatchObject({ name: 'Later', email });

    // Act: the visitor writes again
    const clientMessageId = crypto.randomUUID();
    ws.send({ action: 'sendMessage', text: 'after the form', clientMessageId });
    const next = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');

    // Assess: agents see who wrote, and the contact has the email (which links other channels)
    const created = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === next.messageId, 10_000, 'message.created');
    expect(created.message.sender).toMatchObject({ type: 'contact', name: 'Later' });
    const conversation = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}`, { token: agentJwt });
    expect(conversation.body.contact).toMatchObject({ name: 'Later', email });
    const contact = await http(stack.httpUrl, 'GET', `/v1/contacts/${conversation.body.contact.id}`, { token: agentJwt });
    expect(contact.body).toMatchObject({ name: 'Later', email });
    expect(contact.body.handles).toContainEqual({ channel: 'email', handle: email });
  });

  it('fills a history page with what the visitor may see when the newest messages are notes', async () => {
    const { session, ws, ack } = await visitorWithConversation('one');
    const id = crypto.randomUUID();
    ws.send({ action: 'sendMessage', text: 'two', clientMessageId: id });
    await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === id);
    for (let i = 0; i < 8; i++) {
      const note = await http(stack.httpUrl, 'POST', `/v1/conversations/${ack.conversationId}/messages`, { token: agentJwt, body: { text: `note ${i}`, private: true } });
      expect(note.status).toBe(202);
    }
    // Three: the visitor's two messages and the greeting between them.
    const page = await http(stack.httpUrl, 'GET', '/v1/widget/messages?limit=3', { token: session.token });
    expect(page.status).toBe(200);
    expect(texts(page.body.items)).toEqual(['one', 'two']);
  });

  it('refuses a visitor\'s messages beyond the send limit with an error frame, storing none of them', async () => {
    // Prepare: a visitor with a conversation, early enough in a window that the burst stays inside it
    const { ws, ack } = await visitorWithConversation('first');
    const { messages, windowMs } = VISITOR_SEND_LIMIT;
    const intoWindow = () => Date.now() % windowMs;
    if (intoWindow() > windowMs / 4) await new Promise((resolve) => setTimeout(resolve, windowMs - intoWindow() + 50));

    // Act: a script's burst, more than the window allows
    const ids = Array.from({ length: messages + 5 }, () => crypto.randomUUID());
    for (const [i, id] of ids.entries()) ws.send({ action: 'sendMessage', text: `burst ${i}`, clientMessageId: id });
    const answers = await eventually(() => {
      const found = ids.map((id) => ws.frames.find((f) => (f.type === 'ack' || f.type === 'error') && f.clientMessageId === id));
      return found.every(Boolean) ? found : undefined;
    }, 20_000);

    // Assess: the window's messages are acknowledged and stored, the rest refused and never stored
    const refused = answers.filter((f) => f!.type === 'error');
    expect(refused.length).toBeGreaterThanOrEqual(5);
    for (const frame of refused) expect(frame!.code).toBe('rate_limited');
    const accepted = ids.filter((_, i) => answers[i]!.type === 'ack');
    expect(accepted.length).toBeLessThanOrEqual(messages);
    const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}/messages?limit=100`, { token: agentJwt });
    const stored = texts(history.body.items).filter((t) => t.startsWith('burst '));
    expect(stored.sort()).toEqual(accepted.map((id) => `burst ${ids.indexOf(id)}`).sort());

    // A message already stored, sent again in the full window (its ack was lost), is acknowledged as itself
    const again = accepted[0]!;
    const firstAck = answers[ids.indexOf(again)]!;
    ws.send({ action: 'sendMessage', text: `burst ${ids.indexOf(again)}`, clientMessageId: again });
    const repeated = await ws.waitFor((f) => (f.type === 'ack' || f.type === 'error') && f.clientMessageId === again && f !== firstAck, 10_000, 'the repeat');
    expect(repeated).toMatchObject({ type: 'ack', messageId: firstAck.messageId });
  });

  it("counts no send refused for its files against the visitor's limit", async () => {
    // Prepare: a visitor with a conversation, early enough in a window that the sends below stay inside it
    const { ws, ack } = await visitorWithConversation('first');
    const { messages, windowMs } = VISITOR_SEND_LIMIT;
    const intoWindow = () => Date.now() % windowMs;
    if (intoWindow() > windowMs / 4) await new Promise((resolve) => setTimeout(resolve, windowMs - intoWindow() + 50));

    // Act: a window's worth of sends naming an upload that has no file, each after the last one's
    // answer (counted before the files are looked up, a send holds its slot until it is refused),
    // then a message
    const refused = [];
    for (let i = 0; i < messages; i++) {
      const id = crypto.randomUUID();
      ws.send({ action: 'sendMessage', text: 'look', clientMessageId: id, attachments: [{ uploadId: '01JD5Q8Z7V4R0M3X6N2B9C1K8T' }] });
      refused.push(await ws.waitFor((f) => f.type === 'error' && f.clientMessageId === id, 10_000, 'refusal'));
    }
    const id = crypto.randomUUID();
    ws.send({ action: 'sendMessage', text: 'the right file this time', clientMessageId: id });

    // Assess: each refused for its file, none of them counted, so the message goes
    for (const frame of refused) expect(frame.code).toBe('upload_not_found');
    expect(await ws.waitFor((f) => (f.type === 'ack' || f.type === 'error') && f.clientMessageId === id, 10_000, 'the answer')).toMatchObject({ type: 'ack', conversationId: ack.conversationId });
  });

  it('refuses the messages of many sessions from one network address beyond its limit, whoever sends them', async () => {
    // Prepare: three fresh sessions from one address (this machine), whose limit is 4 messages in 10 s
    const visitors = [];
    for (let i = 0; i < 3; i++) visitors.push(await connect((await visitorSession(stack.httpUrl, { name: `Script ${i}` })).token));
    process.env[ENV.visitorAddressSends] = '4';
    try {
      // A window of its own: the tests before sent from this address too.
      const { windowMs } = VISITOR_SEND_LIMIT;
      await new Promise((resolve) => setTimeout(resolve, windowMs - (Date.now() % windowMs) + 50));

      // Act: each session sends two messages, each well within its own limit
      const sent = visitors.flatMap((ws) => [1, 2].map((k) => ({ ws, id: crypto.randomUUID(), k })));
      for (const { ws, id, k } of sent) ws.send({ action: 'sendMessage', text: `from the script ${k}`, clientMessageId: id });
      const answers = await Promise.all(sent.map(({ ws, id }) => ws.waitFor((f) => (f.type === 'ack' || f.type === 'error') && f.clientMessageId === id, 10_000, 'answer')));

      // Assess: four acknowledged, the rest refused for the address
      expect(answers.filter((f) => f.type === 'ack')).toHaveLength(4);
      const refused = answers.filter((f) => f.type === 'error');
      expect(refused).toHaveLength(2);
      for (const frame of refused) expect(frame).toMatchObject({ code: 'rate_limited', message: expect.stringContaining('your network') });
    } finally {
      delete process.env[ENV.visitorAddressSends];
    }
  });

  it('pages history oldest first within a page, the cursor walking back', async () => {
    const { ws, ack } = await visitorWithConversation('m0');
    for (let i = 1; i < 7; i++) {
      const id = crypto.randomUUID();
      ws.send({ action: 'sendMessage', text: `m${i}`, clientMessageId: id });
      await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === id);
    }
    const seen: string[][] = [];
    let cursor: string | null = null;
    do {
      const query: string = `?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}/messages${query}`, { token: agentJwt });
      expect(page.status).toBe(200);
      seen.push(texts(page.body.items));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen[0]).toEqual(['m4', 'm5', 'm6']);
    expect(seen.length).toBeGreaterThan(2);
    // Newest page first, oldest first within each: reversing the pages gives the whole story in order.
    expect(seen.reverse().flat()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);

    const bad = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}/messages?cursor=bm9wZQ`, { token: agentJwt });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_cursor');
    // Forged in the right partition but not a start key DynamoDB takes: a 400, not a 500.
    const pk = `CONV#${ack.conversationId}`;
    const forged = [{ pk }, { pk, sk: 'CONV' }, { pk, sk: 'MSG#1', extra: 'x' }, { pk, sk: 5 }];
    for (const key of forged) {
      const cursor = Buffer.from(JSON.stringify(key)).toString('base64url');
      const refused = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}/messages?cursor=${cursor}`, { token: agentJwt });
      expect(refused.status, JSON.stringify(key)).toBe(400);
    }
    const inbox = Buffer.from(JSON.stringify({ gsi1pk: 'INBOX#open' })).toString('base64url');
    expect((await http(stack.httpUrl, 'GET', `/v1/conversations?status=open&cursor=${inbox}`, { token: agentJwt })).status).toBe(400);
  });

  it('lists conversations newest activity first with cursor pagination', async () => {
    const a = await visitorWithConversation('conv a');
    const b = await visitorWithConversation('conv b');
    const first = await http(stack.httpUrl, 'GET', '/v1/conversations?status=open&limit=1', { token: agentJwt });
    expect(first.status).toBe(200);
    expect(first.body.items[0].id).toBe(b.ack.conversationId);
    const second = await http(stack.httpUrl, 'GET', `/v1/conversations?status=open&limit=1&cursor=${encodeURIComponent(first.body.nextCursor)}`, {
      token: agentJwt,
    });
    expect(second.body.items[0].id).toBe(a.ack.conversationId);
    // Walked a page of one at a time, the list ends on its last conversation: no cursor to an empty page.
    const whole = await http(stack.httpUrl, 'GET', '/v1/conversations?status=open&limit=100', { token: agentJwt });
    expect(whole.body.nextCursor).toBeNull();
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await http(stack.httpUrl, 'GET', `/v1/conversations?status=open&limit=1${query}`, { token: agentJwt });
      expect(page.body.items).toHaveLength(1);
      walked.push(page.body.items[0].id);
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(walked).toEqual(whole.body.items.map((c: { id: string }) => c.id));
    // Filtered too (every conversation here is a web chat): each page full, none empty at the end.
    const filtered: string[] = [];
    do {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await http(stack.httpUrl, 'GET', `/v1/conversations?status=open&channel=web&limit=2${query}`, { token: agentJwt });
      expect(page.body.items.length).toBe(Math.min(2, walked.length - filtered.length));
      expect(page.body.items.length).toBeGreaterThan(0);
      filtered.push(...page.body.items.map((c: { id: string }) => c.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(filtered).toEqual(walked);
    const exact = await http(stack.httpUrl, 'GET', `/v1/conversations?status=open&channel=web&limit=${walked.length}`, { token: agentJwt });
    expect([exact.body.items.length, exact.body.nextCursor]).toEqual([walked.length, null]);
    const unassigned = await http(stack.httpUrl, 'GET', '/v1/conversations?assignee=unassigned&limit=100', { token: agentJwt });
    expect(unassigned.body.items.map((c: { id: string }) => c.id)).toContain(a.ack.conversationId);
  });

  it('refuses bad tokens at the handshake and on agent routes', async () => {
    await expect(WsClient.connect(stack.wsUrl, undefined)).rejects.toMatchObject({ status: 401 });
    await expect(WsClient.connect(stack.wsUrl, 'not-a-token')).rejects.toMatchObject({ status: 401 });
    await expect(WsClient.connect(stack.wsUrl, `${agentJwt.slice(0, -4)}AAAA`)).rejects.toMatchObject({ status: 401 });
    const session = await visitorSession(stack.httpUrl);
    await expect(WsClient.connect(stack.wsUrl, `${session.token.slice(0, -2)}xx`)).rejects.toMatchObject({ status: 401 });

    expect((await http(stack.httpUrl, 'GET', '/v1/conversations')).status).toBe(401);
    expect((await http(stack.httpUrl, 'GET', '/v1/conversations', { token: session.token })).status).toBe(401);
    expect((await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: 'nope' } })).status).toBe(401);
  });

  it('keeps each visitor to its own conversation', async () => {
    const one = await visitorWithConversation('visitor one');
    const two = await visitorWithConversation('visitor two');
    // An agent reply and a private note on conversation one
    await http(stack.httpUrl, 'POST', `/v1/conversations/${one.ack.conversationId}/messages`, { token: agentJwt, body: { text: 'for one' } });
    await http(stack.httpUrl, 'POST', `/v1/conversations/${one.ack.conversationId}/messages`, {
      token: agentJwt,
      body: { text: 'secret note', private: true },
    });
    await one.ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'for one');
    await agent.waitFor((f) => f.type === 'message.created' && f.message.text === 'secret note');

    // Visitor two tries to reach conversation one
    two.ws.send({ action: 'typing', conversationId: one.ack.conversationId, state: 'on' });
    const refused = await two.ws.waitFor((f) => f.type === 'error');
    expect(refused.code).toBe('forbidden');

    const seenByTwo = two.ws.frames.filter((f) => f.conversationId === one.ack.conversationId || f.conversation?.id === one.ack.conversationId);
    expect(seenByTwo).toEqual([]);
    expect(one.ws.frames.some((f) => f.message?.text === 'secret note')).toBe(false);
    const history = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: one.session.token });
    expect(texts(history.body.items)).toEqual(['visitor one', 'for one']);
  });

  it('answers bad frames with an error and keeps the connection working', async () => {
    const { ws, session } = await visitorWithConversation();
    ws.send('{not json');
    expect((await ws.waitFor((f) => f.type === 'error' && f.code === 'invalid_json')).message).toBeTruthy();
    ws.send({ action: 'fly' });
    await ws.waitFor((f) => f.type === 'error' && f.code === 'unknown_action');
    ws.send({ action: 'sendMessage', clientMessageId: 'x' });
    await ws.waitFor((f) => f.type === 'error' && f.code === 'invalid_frame' && f.clientMessageId === 'x');
    // Only invisible characters (zero-width space, word joiner, BOM, a bidi mark, the Hangul
    // filler, the braille blank): an empty-looking message, refused as an empty one.
    ws.send({ action: 'sendMessage', text: ' \u200B\u2060\uFEFF\u200F\u3164\u2800 ', clientMessageId: 'blank' });
    await ws.waitFor((f) => f.type === 'error' && f.code === 'invalid_frame' && f.clientMessageId === 'blank');
    // The same characters inside a text are the visitor's to send (an emoji's joiner, an RTL mark).
    ws.send({ action: 'sendMessage', text: '\u200F\u05E9\u05DC\u05D5\u05DD 👩\u200D💻', clientMessageId: 'joined' });
    const joined = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === 'joined');
    // Half of a surrogate pair, which JSON can carry and UTF-8 cannot: refused, not stored.
    ws.send(String.raw`{"action":"sendMessage","text":"half \udc00 a pair","clientMessageId":"lone"}`);
    await ws.waitFor((f) => f.type === 'error' && f.code === 'invalid_json' && f.clientMessageId === 'lone');
    ws.send({ action: 'sendMessage', text: 'x'.repeat(40_000), clientMessageId: 'big' });
    await ws.waitFor((f) => f.type === 'error' && f.code === 'frame_too_large' && f.clientMessageId === 'big');
    ws.send({ action: 'ping' });
    // The contract's frame exactly: the connection's id has an action of its own (getConnection).
    expect(await ws.waitFor((f) => f.type === 'pong')).toEqual({ type: 'pong' });

    const history = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: session.token });
    expect(texts(history.body.items)).toEqual(['Hello, I need help', '\u200F\u05E9\u05DC\u05D5\u05DD 👩\u200D💻']);
    expect(history.body.items.at(-1).id).toBe(joined.messageId);
    // An agent's reply of invisible characters only is refused too, and sends nothing.
    const blankReply = await http(stack.httpUrl, 'POST', `/v1/conversations/${joined.conversationId}/messages`, { token: agentJwt, body: { text: '\u200B\u200C' } });
    expect(blankReply.status).toBe(400);
    const loneReply = await http(stack.httpUrl, 'POST', `/v1/conversations/${joined.conversationId}/messages`, {
      token: agentJwt,
      raw: String.raw`{"text":"half \ud83d a pair"}`,
      headers: { 'content-type': 'application/json' },
    });
    expect([loneReply.status, loneReply.body.error.code]).toEqual([400, 'invalid_json']);
    expect((await http(stack.httpUrl, 'GET', `/v1/conversations/${joined.conversationId}/messages`, { token: agentJwt })).body.items.some((m: { direction: string; sender: { type: string } }) => m.sender.type === 'agent')).toBe(false);

    const missing = await http(stack.httpUrl, 'POST', '/v1/conversations/01NOPE/messages', { token: agentJwt, body: { text: 'hi' } });
    expect(missing.status).toBe(404);
    const invalid = await http(stack.httpUrl, 'POST', '/v1/conversations/01NOPE/messages', { token: agentJwt, raw: '{', headers: { 'content-type': 'application/json' } });
    expect(invalid.status).toBe(400);
    const huge = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { raw: JSON.stringify({ name: 'x'.repeat(300 * 1024) }) });
    expect(huge.status).toBe(413);
  });
});
