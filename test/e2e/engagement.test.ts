/**
 * Engagement end to end on the local stack with timers of a few seconds: autoresponder and
 * business hours, leave-a-message, email fallback and email replies, re-engagement, auto-resolve
 * and CSAT, each with the case where it must not happen. Each test sets the timers it needs
 * through PUT /v1/settings; the others stay at an hour so that they cannot interfere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { newHandle, postWebhook, statusWebhook, textWebhook } from './channels-support';
import { runTimer } from '../../src/domain/engagement';
import { getConversation, updateConversation } from '../../src/store/conversations';
import { getMessage } from '../../src/store/messages';
import { getHandle } from '../../src/store/contacts';
import { ddb } from '../../src/aws/clients';
import { replyAddress } from '../../src/domain/email';
import { deliverProactive, type ProactiveJob } from '../../src/domain/proactive';
import { scheduleName } from '../../src/domain/timers';
import { png } from '../support/png';

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;
let adminJwt: string;
const clients: WsClient[] = [];
const HOUR = 3600;

async function connect(token: string): Promise<WsClient> {
  const client = await WsClient.connect(stack.wsUrl, token);
  clients.push(client);
  return client;
}

async function settings(patch: Record<string, unknown>): Promise<void> {
  const res = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: adminJwt, body: patch });
  expect(res.status, res.text).toBe(200);
}

const timers = (t: Partial<Record<'emailFallbackDelaySeconds' | 'reengageAfterSeconds' | 'autoResolveAfterSeconds', number>>) =>
  settings({ timers: { emailFallbackDelaySeconds: HOUR, reengageAfterSeconds: HOUR, autoResolveAfterSeconds: HOUR, ...t } });

async function visitorSays(ws: WsClient, text: string): Promise<Frame> {
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text, clientMessageId });
  return ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
}

async function visitor(profile: { name?: string; email?: string } = { name: 'Vera', email: `vera-${crypto.randomUUID()}@example.com` }, first = 'Hello') {
  const session = await visitorSession(stack.httpUrl, profile);
  const ws = await connect(session.token);
  const ack = await visitorSays(ws, first);
  return { session, ws, conversationId: ack.conversationId as string, email: profile.email };
}

async function agentReply(conversationId: string, text: string): Promise<string> {
  const res = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { text } });
  expect(res.status, res.text).toBe(202);
  return res.body.message.id;
}

const history = async (conversationId: string) =>
  (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt })).body.items as {
    id: string;
    text: string;
    direction: string;
    status: string;
    private: boolean;
    sender: { type: string };
    attachments: { type: string }[];
    createdAt: string;
  }[];
/**
 * Runs `act` once, right after the message with `text` is written in the conversation that
 * `conversationId()` names, before its writer goes on (its queueing and send come after).
 */
function onceStored(text: string, conversationId: () => string, act: () => Promise<void>): { fired(): boolean; remove(): void } {
  const name = `onceStored-${crypto.randomUUID()}`;
  let fired = false;
  ddb().middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const item = (args.input as { Item?: { conversationId?: string; text?: string } }).Item;
      if (!fired && conversationId() && item?.text === text && item.conversationId === conversationId()) {
        fired = true;
        await act();
      }
      return out;
    },
    { step: 'initialize', name },
  );
  return { fired: () => fired, remove: () => ddb().middlewareStack.remove(name) };
}
const conversation = async (id: string) => (await http(stack.httpUrl, 'GET', `/v1/conversations/${id}`, { token: agentJwt })).body;
const mailTo = async (address: string) =>
  ((await http(stack.httpUrl, 'GET', '/local/mail')).body.items as { to: string; text: string; html: string; subject: string; replyTo: string[] }[]).filter(
    (m) => m.to === address,
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The conversation's pending timers, by kind, as the Scheduler stand-in holds them. */
const pendingTimers = (conversationId: string) =>
  stack.aws.scheduler
    .list()
    .filter((s) => s.name.endsWith(`-${conversationId}`) && s.fireAt)
    .map((s) => s.name.slice(0, -conversationId.length - 1));

beforeAll(async () => {
  stack = await startTestStack({
    env: {
      CONVERSA_EMAIL_FALLBACK_DELAY_SECONDS: '2',
      CONVERSA_REENGAGE_AFTER_SECONDS: String(HOUR),
      CONVERSA_AUTO_RESOLVE_AFTER_SECONDS: String(HOUR),
      CONVERSA_WIDGET_URL: 'https://shop.example.com/help',
    },
  });
  agentJwt = await agentToken(stack.httpUrl, 'agent-eve', 'agent', 'Eve');
  adminJwt = await agentToken(stack.httpUrl, 'admin-ada', 'admin', 'Ada');
  agent = await connect(agentJwt);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

describe('autoresponder and business hours', () => {
  it('answers once at the start of a conversation, with the help-center link', async () => {
    await settings({ autoresponder: { enabled: true, message: 'Hi! We reply within minutes.', helpCenterUrl: 'https://help.example.com' } });
    const { ws, conversationId } = await visitor();
    const bot = await ws.waitFor((f) => f.type === 'message.created' && f.message.sender.type === 'bot', 10_000, 'autoresponse');
    expect(bot.message).toMatchObject({ conversationId, direction: 'outbound', private: false });
    expect(bot.message.text).toContain('Hi! We reply within minutes.');
    expect(bot.message.text).toContain('https://help.example.com');
    await agent.waitFor((f) => f.type === 'message.created' && f.message.id === bot.message.id, 10_000, 'autoresponse at agent');

    await visitorSays(ws, 'Are you there?');
    await visitorSays(ws, 'Hello?');
    const bots = (await history(conversationId)).filter((m) => m.sender.type === 'bot');
    expect(bots).toHaveLength(1);
  });

  it('answers on a provider channel through the provider API (Telegram), once', async () => {
    await settings({ autoresponder: { enabled: true, message: 'Hello from the Telegram bot' } });
    const handle = newHandle('telegram');
    const sentTo = async () =>
      ((await http(stack.httpUrl, 'GET', '/local/outbox?channel=telegram')).body.items as { body: unknown }[]).filter((i) => {
        const body = JSON.stringify(i.body);
        return body.includes('Hello from the Telegram bot') && body.includes(handle);
      });
    expect((await postWebhook(stack, 'telegram', textWebhook('telegram', handle, 'Hi there').body)).status).toBe(200);
    await eventually(async () => (await sentTo()).length === 1, 15_000);
    expect((await postWebhook(stack, 'telegram', textWebhook('telegram', handle, 'Hello?').body)).status).toBe(200);
    await eventually(async () => {
      const list = await http(stack.httpUrl, 'GET', '/v1/conversations?channel=telegram&limit=100', { token: agentJwt });
      return list.body.items.some((c: { unreadCount: number }) => c.unreadCount >= 2);
    });
    await sleep(500);
    expect(await sentTo()).toHaveLength(1);
  });

  it('never answers a conversation an agent already answered', async () => {
    await settings({ autoresponder: { enabled: false } });
    const { ws, conversationId } = await visitor();
    await agentReply(conversationId, 'Hello from Eve');
    await eventually(async () => (await conversation(conversationId)).firstReplyAt);
    await settings({ autoresponder: { enabled: true } });
    await visitorSays(ws, 'Thanks Eve');
    await sleep(500);
    expect((await history(conversationId)).filter((m) => m.sender.type === 'bot')).toEqual([]);
  });

  /** Open only on tomorrow's weekday (UTC): closed now, back tomorrow at 09:00; asks for an email. */
  async function closedUntilTomorrow(): Promise<void> {
    const tomorrow = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][(new Date().getUTCDay() + 1) % 7]!;
    await settings({
      autoresponder: { enabled: true, askForEmail: true, outOfHoursMessage: 'We are away; back {{nextOpen}}.' },
      businessHours: { enabled: true, timeZone: 'UTC', holidays: [], weekly: { [tomorrow]: [{ open: '09:00', close: '17:00' }] } },
    });
  }

  it('outside hours says when the team is back, asks for an email and keeps the one the visitor gives', async () => {
    await closedUntilTomorrow();
    try {
      const { ws, conversationId } = await visitor({ name: 'Nora' }, 'Anyone there?');
      const away = await ws.waitFor((f) => f.type === 'message.created' && f.message.text.startsWith('We are away'), 10_000, 'out of hours');
      expect(away.message.text).toContain('back tomorrow at 09:00 (UTC)');
      await ws.waitFor((f) => f.type === 'message.created' && f.message.sender.type === 'bot' && /email/i.test(f.message.text), 10_000, 'ask for email');

      await visitorSays(ws, 'Sure: Nora.Smith@Example.com thanks');
      const updated = await agent.waitFor(
        (f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.contact.email,
        10_000,
        'email on conversation',
      );
      expect(updated.conversation.contact.email).toBe('nora.smith@example.com');
      const contact = await http(stack.httpUrl, 'GET', `/v1/contacts/${updated.conversation.contact.id}`, { token: agentJwt });
      expect(contact.body.email).toBe('nora.smith@example.com');
    } finally {
      await settings({ businessHours: { enabled: false } });
    }
  });

  it('outside hours takes an email only from the answer to its request, not one mentioned before or after', async () => {
    await closedUntilTomorrow();
    try {
      const { ws, conversationId } = await visitor({ name: 'Pia' }, 'My colleague bob@acme.com had this problem too, can you help me with it?');
      await ws.waitFor((f) => f.type === 'message.created' && f.message.sender.type === 'bot' && /email/i.test(f.message.text), 10_000, 'ask for email');
      await visitorSays(ws, 'I would rather not say, sorry');
      await visitorSays(ws, 'bob@acme.com can tell you more about the order we placed together');
      await agent.waitFor((f) => f.type === 'message.created' && f.message.text.startsWith('bob@acme.com can tell'), 10_000, 'the last message');
      await sleep(500);
      expect((await conversation(conversationId)).contact.email).toBeUndefined();
    } finally {
      await settings({ businessHours: { enabled: false } });
    }
  });

  it('outside hours asks no email of a visitor whose first message gives one', async () => {
    await closedUntilTomorrow();
    try {
      const { ws, conversationId } = await visitor({ name: 'Omar' }, 'Write to omar@example.com please');
      await ws.waitFor((f) => f.type === 'message.created' && f.message.text.startsWith('We are away'), 10_000, 'out of hours');
      // The greeting is stored whole before the conversation exists: one message, no request for an email.
      const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
      expect(history.body.items.filter((m: { sender: { type: string } }) => m.sender.type === 'bot').map((m: { text: string }) => m.text)).toEqual([
        expect.stringMatching(/^We are away/),
      ]);
    } finally {
      await settings({ businessHours: { enabled: false } });
    }
  });

  it('greets a customer who comes back after a resolution again, once', async () => {
    await settings({ autoresponder: { enabled: true, message: 'Hello from the team' } });
    const { ws, conversationId } = await visitor({ name: 'Rosa' });
    // The bot's other message here is the rating question the agent's resolution asks.
    const greetings = async () => (await history(conversationId)).filter((m) => m.sender.type === 'bot' && m.text.startsWith('Hello from the team'));
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text.startsWith('Hello from the team'), 10_000, 'first greeting');
    await agentReply(conversationId, 'How can I help?');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt })).status).toBe(200);

    // Act: days later (here: now) the customer writes again, and then once more
    await visitorSays(ws, 'Me again, a new question');
    await eventually(async () => ((await greetings()).length === 2 ? true : undefined), 10_000);
    await visitorSays(ws, 'and a detail');
    await sleep(500);

    // Assess: greeted at each start, not at every message
    expect(await greetings()).toHaveLength(2);
    expect((await conversation(conversationId)).status).toBe('open');
  });

  it.each([
    ['greeted at its start', true],
    ['started while the autoresponder was off', false],
  ])('does not greet a customer who answers the team’s follow-up on a resolved conversation (%s)', async (_, greetedAtStart) => {
    await settings({ autoresponder: { enabled: greetedAtStart, message: 'Hello from the team' } });
    const { ws, conversationId } = await visitor({ name: 'Sol' });
    const greetings = async () => (await history(conversationId)).filter((m) => m.sender.type === 'bot' && m.text.startsWith('Hello from the team'));
    if (greetedAtStart) await ws.waitFor((f) => f.type === 'message.created' && f.message.text.startsWith('Hello from the team'), 10_000, 'first greeting');
    await agentReply(conversationId, 'How can I help?');
    await settings({ autoresponder: { enabled: true } });
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt })).status).toBe(200);
    await agentReply(conversationId, 'Did the replacement arrive?');

    // Act: the customer answers the follow-up
    await visitorSays(ws, 'Yes it did, thanks');
    await agent.waitFor((f) => f.type === 'message.created' && f.message.text === 'Yes it did, thanks', 10_000, 'the answer');
    await sleep(500);

    // Assess: the conversation is open again, and nobody told the customer "thanks for getting in touch"
    expect((await conversation(conversationId)).status).toBe('open');
    expect(await greetings()).toHaveLength(greetedAtStart ? 1 : 0);
  });

  it.each([
    ['whatsapp', 2 * 86_400_000],
    // Past 24 h Messenger takes only the HUMAN_AGENT tag, which is for people, not a bot's greeting
    ['messenger', 30 * 3_600_000],
  ] as const)('greets no %s customer whose message arrives once its window has closed (the provider retried it)', async (channel, lateMs) => {
    // Prepare: the provider delivers, long after, a message the customer wrote while we were down
    const text = `Hello greeter ${crypto.randomUUID()}`;
    await settings({ autoresponder: { enabled: true, message: text } });
    const handle = newHandle(channel);
    const late = (words: string, ms: number) => {
      const body = JSON.parse(textWebhook(channel, handle, words).body);
      if (channel === 'whatsapp') body.entry[0].changes[0].value.messages[0].timestamp = String(Math.floor((Date.now() - ms) / 1000));
      else body.entry[0].messaging[0].timestamp = Date.now() - ms;
      return JSON.stringify(body);
    };
    const greetings = async (conversationId: string) => (await history(conversationId)).filter((m) => m.sender.type === 'bot');
    const greetingRequests = async () => ((await http(stack.httpUrl, 'GET', `/local/outbox?channel=${channel}`)).body.items as { body: unknown }[]).filter((i) => JSON.stringify(i.body).includes(text));

    // Act: the first message of a new conversation
    expect((await postWebhook(stack, channel, late('Is the shop open on Sunday?', lateMs))).status).toBe(200);
    const conversationId = await eventually(async () => (await getHandle(channel, handle))?.conversationId, 10_000);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.text === 'Is the shop open on Sunday?', 10_000, 'the late message');

    // Act: the customer, resolved days ago, comes back with another late message
    const daysAgo = new Date(Date.now() - 3 * 86_400_000).toISOString();
    await updateConversation(conversationId, (c) => ({ ...c, status: 'resolved', resolvedAt: daysAgo, lastInboundAt: daysAgo, windowFrom: daysAgo, lastMessageAt: daysAgo }));
    expect((await postWebhook(stack, channel, late('And on Monday?', lateMs))).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.text === 'And on Monday?', 10_000, 'the second late message');
    await sleep(1000);

    // Assess: no greeting stored (it would only fail, or go out tagged as a person's), none sent
    expect((await conversation(conversationId)).status).toBe('open');
    expect(await greetings(conversationId)).toEqual([]);
    expect(await greetingRequests()).toEqual([]);
  });

  it('greets no SMS customer whose first text is STOP, nor one who texts STOP on a resolved conversation (Twilio would refuse both)', async () => {
    const text = `Hello greeter ${crypto.randomUUID()}`;
    await settings({ autoresponder: { enabled: true, message: text } });
    const handle = newHandle('sms');
    const stop = (words: string) => {
      const webhook = textWebhook('sms', handle, words);
      const form = new URLSearchParams(webhook.body);
      form.set('OptOutType', 'STOP');
      return { body: form.toString(), providerMessageId: webhook.providerMessageId };
    };
    const greetings = async (conversationId: string) => (await history(conversationId)).filter((m) => m.sender.type === 'bot');
    const greetingRequests = async () => ((await http(stack.httpUrl, 'GET', '/local/outbox?channel=sms')).body.items as { body: unknown }[]).filter((i) => JSON.stringify(i.body).includes(text));

    const first = stop('STOP');
    expect((await postWebhook(stack, 'sms', first.body)).status).toBe(200);
    const { conversationId } = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === first.providerMessageId, 10_000, 'the STOP');
    const resolve = async () => expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt })).status).toBe(200);
    await resolve();
    const again = stop('unsubscribe');
    expect((await postWebhook(stack, 'sms', again.body)).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === again.providerMessageId, 10_000, 'the second STOP');
    await sleep(1000);

    expect((await conversation(conversationId)).status).toBe('open');
    expect(await greetings(conversationId)).toEqual([]);
    expect(await greetingRequests()).toEqual([]);
    // Left open, it would hold an agent's slot that later tests count on.
    await resolve();
  });

  it('inside hours sends the normal message and asks for no email', async () => {
    await settings({ autoresponder: { enabled: true, message: 'In hours hello' } });
    const { ws, conversationId } = await visitor({ name: 'Nils' });
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text.startsWith('In hours hello'), 10_000, 'autoresponse');
    await sleep(300);
    expect((await history(conversationId)).filter((m) => m.sender.type === 'bot')).toHaveLength(1);
  });
});

describe('email fallback', () => {
  it('emails unseen replies once (several replies, one email) and takes the email reply back into the conversation', async () => {
    await timers({ emailFallbackDelaySeconds: 2 });
    const { ws, session, conversationId, email } = await visitor(undefined, 'My parcel is late');
    await ws.close();
    await agentReply(conversationId, 'Sorry about that!');
    await agentReply(conversationId, 'It leaves the warehouse today.');

    const [mail] = await eventually(async () => {
      const found = await mailTo(email!);
      return found.length > 0 ? found : undefined;
    }, 20_000);
    expect(mail!.text).toContain('Sorry about that!');
    expect(mail!.text).toContain('It leaves the warehouse today.');
    expect(mail!.text).toContain('My parcel is late');
    expect(mail!.html).toContain('It leaves the warehouse today.');
    expect(mail!.text).toContain(`https://shop.example.com/help?conversation=${conversationId}`);
    expect(mail!.replyTo).toHaveLength(1);
    const replyTo = mail!.replyTo[0]!;
    expect(replyTo).toMatch(/^c-[0-9a-z]+-[0-9a-f]{32}@/);
    await sleep(3000);
    expect(await mailTo(email!)).toHaveLength(1);

    const forged = await http(stack.httpUrl, 'POST', '/local/mail/inbound', {
      body: { to: replyTo.replace(/-[0-9a-f]{32}@/, `-${'0'.repeat(32)}@`), from: email, subject: 'Re', text: 'hijack' },
    });
    expect(forged.status).toBe(422);
    const bad = await http(stack.httpUrl, 'POST', '/local/mail/inbound', { body: { to: replyTo } });
    expect(bad.status).toBe(400);
    // The visitor is back on the page (a live socket that must not hear of what follows)
    const page = await connect(session.token);
    const before = await conversation(conversationId);
    const storedBefore = (await history(conversationId)).length;
    const inbound = (body: Record<string, unknown>) => http(stack.httpUrl, 'POST', '/local/mail/inbound', { body: { to: replyTo, subject: 'Re', ...body } });

    // Refused, nothing stored: a From naming the customer beside another address, another sender with nothing new
    const twoAddresses = await inbound({ from: `Mallory <mallory@example.net>, Vera <${email}>`, text: 'hijack as Vera' });
    expect(twoAddresses.status, twoAddresses.text).toBe(403);
    expect(twoAddresses.body.error.code).toBe('unknown_sender');
    const onlyQuote = await inbound({ from: 'Mallory <mallory@example.net>', text: 'On Tue, Support wrote:\n> Sorry about that!' });
    expect(onlyQuote.status, onlyQuote.text).toBe(403);
    expect(onlyQuote.body.error.code).toBe('unknown_sender');
    expect((await history(conversationId)).length).toBe(storedBefore);

    // The real reply address, forwarded to someone else (the same email delivered twice), and the
    // customer writing from another address (no Message-ID, sent twice): only the address it was
    // emailed to writes as the customer; the others are kept once each, as private notes
    const forward = { from: 'Mallory <mallory@example.net>', subject: 'Fwd: You have 2 new replies', text: 'hijack: send the refund to my account\n\nOn Tue, Support wrote:\n> Sorry about that!', messageId: `<${crypto.randomUUID()}@example.net>` };
    const work = { from: 'Vera at work <Vera.Work@example.org>', text: 'Writing from work: the parcel is here!' };
    for (const sent of [forward, forward, work, work]) {
      const kept = await inbound(sent);
      expect(kept.status, kept.text).toBe(202);
      expect(kept.body).toEqual({ conversationId, kept: 'note' });
    }
    const note = await agent.waitFor(
      (f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text.includes('hijack'),
      10_000,
      'note at agent',
    );
    expect(note.message).toMatchObject({ direction: 'outbound', private: true, status: 'sent', sender: { type: 'system' } });
    expect(note.message.text).toContain('mallory@example.net');
    expect(note.message.text).toContain('hijack: send the refund to my account');
    expect(note.message.text).not.toContain('Sorry about that!');
    await agent.waitFor((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text.includes('vera.work@example.org'), 10_000, 'second note at agent');
    await sleep(500);
    const stored = await history(conversationId);
    expect(stored).toHaveLength(storedBefore + 2);
    expect(stored.filter((m) => m.text.includes('hijack')).map((m) => [m.private, m.sender.type])).toEqual([[true, 'system']]);
    expect(stored.filter((m) => m.text.includes('Writing from work')).map((m) => [m.private, m.sender.type])).toEqual([[true, 'system']]);
    // The customer's side of the conversation did not move
    const after = await conversation(conversationId);
    const customerFacing = (c: Record<string, unknown>) => [c.status, c.unreadCount, c.lastInboundAt, c.lastMessageAt, c.firstReplyAt];
    expect(customerFacing(after)).toEqual(customerFacing(before));

    const reply = await http(stack.httpUrl, 'POST', '/local/mail/inbound', {
      body: { to: replyTo, from: `"Vera" <${email!.toUpperCase()}>`, subject: 'Re: You have 2 new replies', text: 'Great, thanks!\n\nOn Tue, Support wrote:\n> Sorry about that!' },
    });
    expect(reply.status, reply.text).toBe(202);
    expect(reply.body).toEqual({ conversationId, kept: 'message' });
    const customerReply = await agent.waitFor(
      (f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text === 'Great, thanks!',
      10_000,
      'email reply at agent',
    );
    expect(customerReply.message).toMatchObject({ direction: 'inbound', sender: { type: 'contact' } });
    // The visitor's page got the customer's own reply, and neither note; no email carried them
    await page.waitFor((f) => f.type === 'message.created' && f.message.text === 'Great, thanks!', 10_000, 'email reply on the page');
    expect(page.frames.filter((f) => /hijack|Writing from work/.test(JSON.stringify(f)))).toEqual([]);
    const mails = (await http(stack.httpUrl, 'GET', '/local/mail')).body.items as { to: string; text: string }[];
    expect(mails.filter((m) => /hijack|Writing from work/.test(m.text) || /mallory|vera\.work/i.test(m.to))).toEqual([]);
    expect(await mailTo(email!)).toHaveLength(1);
    expect((await history(conversationId)).some((m) => !m.private && m.text.includes('hijack'))).toBe(false);
  });

  it('stores a customer email posted again without a Message-ID once, and two alike with another Date each', async () => {
    // Prepare: the customer writes from the address the conversation knows
    const { conversationId, email } = await visitor(undefined, 'Can I return the shoes?');
    const inbound = (text: string, date?: string) =>
      http(stack.httpUrl, 'POST', '/local/mail/inbound', { body: { to: replyAddress(conversationId), from: email, subject: 'Re: your question', text, ...(date ? { date } : {}) } });

    // Act: the same email twice (no messageId), then two alike but for their Date, then one more
    const posts: [string, string?][] = [
      ['Yes, unworn, in the box.'],
      ['Yes, unworn, in the box.'],
      ['Thanks!', 'Mon, 30 Nov 2026 09:00:00 +0000'],
      ['Thanks!', 'Mon, 30 Nov 2026 09:05:00 +0000'],
      ['Also the receipt.'],
    ];
    for (const [text, date] of posts) {
      const res = await inbound(text, date);
      expect(res.status, res.text).toBe(202);
      expect(res.body).toEqual({ conversationId, kept: 'message' });
    }

    // Assess: the last one at the agent means the others were taken (one FIFO lane); the repeat is stored once
    await agent.waitFor((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text === 'Also the receipt.', 10_000, 'last email at agent');
    const texts = (await history(conversationId)).filter((m) => m.direction === 'inbound').map((m) => m.text);
    expect(texts).toEqual(['Can I return the shoes?', 'Yes, unworn, in the box.', 'Thanks!', 'Thanks!', 'Also the receipt.']);
  });

  it('keeps the files of a raw MIME email reply on its message, once when the email comes again, and names the one it cannot keep', async () => {
    // Prepare: the customer answers with a screenshot and a PDF (base64), and a file over 25 MiB
    const { conversationId, email } = await visitor(undefined, 'The page shows an error');
    const screenshot = png(4, 3);
    const pdf = Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n', 'latin1');
    const base64 = (bytes: Buffer) => bytes.toString('base64').replace(/.{76}/g, '$&\r\n');
    const raw = [
      `From: Vera <${email}>`,
      `To: ${replyAddress(conversationId)}`,
      'Subject: Re: You have a new reply',
      `Message-ID: <shot-${conversationId}@example.com>`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="m"',
      '',
      '--m', 'Content-Type: text/plain; charset=utf-8', '', 'This is what I see.',
      '--m', 'Content-Type: image/png', 'Content-Disposition: attachment; filename="screenshot.png"', 'Content-Transfer-Encoding: base64', '', base64(screenshot),
      '--m', 'Content-Type: application/pdf; name="invoice.pdf"', 'Content-Disposition: attachment; filename="invoice.pdf"', 'Content-Transfer-Encoding: base64', '', base64(pdf),
      '--m', 'Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="huge.bin"', 'Content-Transfer-Encoding: base64', '', base64(Buffer.alloc(25 * 1024 * 1024 + 1)),
      '--m--', '',
    ].join('\r\n');
    const post = () => http(stack.httpUrl, 'POST', '/local/mail/inbound', { raw, headers: { 'content-type': 'message/rfc822' } });

    // Act: SES delivers it twice (a retried notification)
    const first = await post();
    const again = await post();

    // Assess: one message with both files, which open as the files sent; the huge one is named
    expect([first.status, again.status], first.text).toEqual([202, 202]);
    expect(first.body).toEqual({ conversationId, kept: 'message' });
    const created = await agent.waitFor((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text.startsWith('This is what I see.'), 20_000, 'email reply at agent');
    expect(created.message.text).toBe('This is what I see.\n\n📎 Sent by email, not kept here: huge.bin');
    expect(created.message.attachments.map(({ type, mimeType, name, size }: Record<string, unknown>) => ({ type, mimeType, name, size }))).toEqual([
      { type: 'image', mimeType: 'image/png', name: 'screenshot.png', size: screenshot.length },
      { type: 'file', mimeType: 'application/pdf', name: 'invoice.pdf', size: pdf.length },
    ]);
    await sleep(1000);
    const inbound = (await history(conversationId)).filter((m) => m.direction === 'inbound');
    expect(inbound.map((m) => m.text)).toEqual(['The page shows an error', created.message.text]);
    for (const [index, bytes, type] of [[0, screenshot, 'image/png'], [1, pdf, 'application/pdf']] as const) {
      const redirect = await fetch(`${stack.httpUrl}/v1/conversations/${conversationId}/messages/${created.message.id}/attachments/${index}`, { headers: { authorization: `Bearer ${agentJwt}` }, redirect: 'manual' });
      expect(redirect.status).toBe(302);
      const file = await fetch(redirect.headers.get('location')!);
      expect([file.status, file.headers.get('content-type')]).toEqual([200, type]);
      expect(Buffer.from(await file.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });

  it('keeps an email from another address on a resolved conversation as a note, and leaves it resolved', async () => {
    // Prepare
    const { ws, conversationId } = await visitor(undefined, 'Where is my order?');
    const resolved = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt });
    expect(resolved.body.status).toBe('resolved');
    const before = await conversation(conversationId);

    // Act
    const res = await http(stack.httpUrl, 'POST', '/local/mail/inbound', {
      body: { to: replyAddress(conversationId), from: 'vera.home@example.org', subject: 'Re', text: 'It arrived, but broken.', messageId: `<${crypto.randomUUID()}@example.org>` },
    });

    // Assess: agents see the note live; the conversation stays resolved, its customer side unchanged
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ conversationId, kept: 'note' });
    const note = await agent.waitFor((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text.includes('broken'), 10_000, 'note at agent');
    expect(note.message).toMatchObject({ private: true, sender: { type: 'system' } });
    await sleep(500);
    const after = await conversation(conversationId);
    expect([after.status, after.resolvedAt, after.unreadCount, after.lastInboundAt]).toEqual(['resolved', before.resolvedAt, before.unreadCount, before.lastInboundAt]);
    expect(ws.frames.filter((f) => JSON.stringify(f).includes('broken'))).toEqual([]);
  });

  it('shows agents the note of an email whose first delivery died after storing it, when it is delivered again', async () => {
    // Prepare: the process dies right after the note's write (before anything showed it)
    const { ws, conversationId } = await visitor(undefined, 'Where is my parcel?');
    const text = `Forwarded to the warehouse ${crypto.randomUUID()}`;
    const email = { to: replyAddress(conversationId), from: 'ops@partner.example', subject: 'Fwd', text, messageId: `<${crypto.randomUUID()}@partner.example>` };
    const crash = 'crashAfterNote';
    let died = false;
    ddb().middlewareStack.add(
      (next) => async (args) => {
        const item = (args.input as { Item?: { conversationId?: string; private?: boolean; text?: string } }).Item;
        const out = await next(args);
        if (!died && item?.conversationId === conversationId && item.private && item.text?.includes(text)) {
          died = true;
          throw new Error('the engagement function died after storing the note');
        }
        return out;
      },
      { step: 'initialize', name: crash },
    );
    let first;
    try {
      first = await http(stack.httpUrl, 'POST', '/local/mail/inbound', { body: email });
    } finally {
      ddb().middlewareStack.remove(crash);
    }
    expect([died, first.status]).toEqual([true, 500]);

    // Act: the email delivered again (SNS retries a failed invocation)
    const again = await http(stack.httpUrl, 'POST', '/local/mail/inbound', { body: email });

    // Assess: the note, stored once, reaches the agent's console, and never the visitor
    expect(again.status, again.text).toBe(202);
    expect(again.body).toEqual({ conversationId, kept: 'note' });
    const note = await agent.waitFor((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text.includes(text), 10_000, 'note at agent');
    expect(note.message).toMatchObject({ private: true, sender: { type: 'system' } });
    const stored = (await history(conversationId)).filter((m) => m.text.includes(text));
    expect(stored.map((m) => [m.id, m.private])).toEqual([[note.message.id, true]]);
    expect(ws.frames.filter((f) => JSON.stringify(f).includes(text))).toEqual([]);
  });

  it('emails an address with a Unicode domain at its Punycode (SES has no SMTPUTF8) and takes the reply from either form', async () => {
    await timers({ emailFallbackDelaySeconds: 2 });
    const { ws, conversationId } = await visitor({ name: 'Vera' }, 'Wo ist mein Paket?');
    await ws.close();
    const contactId = (await conversation(conversationId)).contact.id as string;
    const edited = await http(stack.httpUrl, 'PATCH', `/v1/contacts/${contactId}`, { token: agentJwt, body: { email: `vera-${conversationId}@bücher.de` } });
    expect(edited.status, edited.text).toBe(200);
    await agentReply(conversationId, 'Es ist unterwegs.');
    const ascii = `vera-${conversationId.toLowerCase()}@xn--bcher-kva.de`;
    const [mail] = await eventually(async () => {
      const found = await mailTo(ascii);
      return found.length > 0 ? found : undefined;
    }, 20_000);
    expect(mail!.text).toContain('Es ist unterwegs.');
    const reply = await http(stack.httpUrl, 'POST', '/local/mail/inbound', { body: { to: mail!.replyTo[0], from: `Vera <${ascii}>`, subject: 'Re', text: 'Danke!' } });
    expect(reply.status, reply.text).toBe(202);
    expect(reply.body).toEqual({ conversationId, kept: 'message' });
  });

  it('sends no email to an address SES cannot take (a Unicode local part), and the timer ends without an error', async () => {
    await timers({ emailFallbackDelaySeconds: 2 });
    const { ws, conversationId } = await visitor({ name: 'José' }, '¿Dónde está mi pedido?');
    await ws.close();
    const contactId = (await conversation(conversationId)).contact.id as string;
    const address = `josé-${conversationId.toLowerCase()}@example.org`;
    const edited = await http(stack.httpUrl, 'PATCH', `/v1/contacts/${contactId}`, { token: agentJwt, body: { email: address } });
    expect(edited.status, edited.text).toBe(200);
    await agentReply(conversationId, 'Está en camino.');
    const ran = (list: { name: string }[]) => list.some((fire) => fire.name === scheduleName(conversationId, 'emailFallback'));
    await eventually(() => ran(stack.aws.scheduler.fired) || ran(stack.aws.scheduler.failed), 20_000);
    expect(ran(stack.aws.scheduler.failed)).toBe(false);
    expect(await mailTo(address)).toEqual([]);
  });

  it.each([
    ['a reply', false],
    ['a follow-up on the conversation resolved unanswered', true],
  ])('sends no email when the visitor was connected and read %s', async (_, resolvedFirst) => {
    await timers({ emailFallbackDelaySeconds: 2 });
    const { ws, conversationId, email } = await visitor(undefined, 'Quick question');
    if (resolvedFirst) {
      const resolved = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt });
      expect(resolved.body.status).toBe('resolved');
    }
    const replyId = await agentReply(conversationId, 'Quick answer');
    await ws.waitFor((f) => f.type === 'message.created' && f.message.id === replyId, 10_000, 'reply at visitor');
    await eventually(() => pendingTimers(conversationId).includes('emailFallback'));
    ws.send({ action: 'markRead', messageId: replyId });
    await agent.waitFor((f) => f.type === 'read' && f.messageId === replyId, 10_000, 'read at agent');
    // Reading cancels the schedule itself, not just its effect.
    await eventually(() => !pendingTimers(conversationId).includes('emailFallback'));
    await sleep(5000);
    expect(await mailTo(email!)).toEqual([]);
  });

  it('emails the rating question to a visitor who left before the auto-resolve asked it, once, and stores the rating they email back', async () => {
    // Prepare: a visitor with an email writes and leaves; nobody answers
    const question = `How did we do? (${crypto.randomUUID().slice(0, 8)})`;
    await settings({ csat: { enabled: true, question } });
    let mail: Awaited<ReturnType<typeof mailTo>>[number] | undefined;
    let conversationId: string;
    let email: string | undefined;
    try {
      await timers({ emailFallbackDelaySeconds: 2, autoResolveAfterSeconds: 2 });
      let ws: WsClient;
      ({ ws, conversationId, email } = await visitor(undefined, 'Do you gift-wrap?'));
      await ws.close();

      // Act: the auto-resolve asks; the question stays unseen past the fallback's delay
      [mail] = await eventually(async () => {
        const found = await mailTo(email!);
        return found.length > 0 ? found : undefined;
      }, 20_000);
    } finally {
      await timers({});
    }

    // Assess: the email carries the question, how to rate by replying, and the widget's link; once
    expect((await conversation(conversationId)).status).toBe('resolved');
    expect(mail!.text).toContain(`Conversa: ${question}`);
    expect(mail!.text).toMatch(/reply to this email with a number from 1 \(poor\) to 5 \(great\), and a comment/i);
    expect(mail!.html).toContain(question);
    expect(mail!.text).not.toContain('[a file');
    expect(mail!.text).toContain(`https://shop.example.com/help?conversation=${conversationId}`);
    await sleep(3000);
    expect(await mailTo(email!)).toHaveLength(1);

    // The visitor answers the email: their rating, under the quote of our email, is stored and the conversation stays resolved
    const answer = await http(stack.httpUrl, 'POST', '/local/mail/inbound', {
      body: { to: mail!.replyTo[0], from: `Vera <${email}>`, subject: `Re: ${mail!.subject}`, text: `5 - thanks\n\nOn Sun, Conversa <support@conversa.local> wrote:\n> ${question}` },
    });
    expect(answer.status, answer.text).toBe(202);
    expect(answer.body).toEqual({ conversationId, kept: 'message' });
    const rated = await eventually(async () => {
      const current = await conversation(conversationId);
      return current.csat ? current : undefined;
    });
    expect(rated).toMatchObject({ status: 'resolved', csat: { score: 5, comment: 'thanks' } });
    expect((await history(conversationId)).filter((m) => m.direction === 'inbound').map((m) => m.text)).toEqual(['Do you gift-wrap?', '5 - thanks']);
    expect(await mailTo(email!)).toHaveLength(1);
  });

  it('sends no email with the rating question to a visitor who saw it in the widget', async () => {
    // Prepare: the visitor stays on the page; nobody answers
    const question = `How did we do? (${crypto.randomUUID().slice(0, 8)})`;
    await settings({ csat: { enabled: true, question } });
    let conversationId: string;
    let email: string | undefined;
    try {
      await timers({ emailFallbackDelaySeconds: 2, autoResolveAfterSeconds: 2 });
      let ws: WsClient;
      ({ ws, conversationId, email } = await visitor(undefined, 'Do you ship on Saturdays?'));
      const asked = await ws.waitFor((f) => f.type === 'message.created' && f.message.text === question, 20_000, 'CSAT question');
      await eventually(() => pendingTimers(conversationId).includes('emailFallback'));

      // Act: the widget shows the question and marks it read
      ws.send({ action: 'markRead', messageId: asked.message.id });
      await agent.waitFor((f) => f.type === 'read' && f.messageId === asked.message.id, 10_000, 'read at agent');
    } finally {
      await timers({});
    }

    // Assess: the read cancels the schedule itself, and no email goes
    await eventually(() => !pendingTimers(conversationId).includes('emailFallback'));
    await sleep(5000);
    expect(await mailTo(email!)).toEqual([]);
  });
});

/**
 * The customer message's own timer steps (the last of its hooks) have run. The visitor's ack
 * comes before them, and an agent answering within milliseconds (only a test does) would race
 * them: the message's "the customer is here" step would cancel the follow-up armed for the reply.
 */
const customerHooksDone = (conversationId: string) => eventually(() => pendingTimers(conversationId).includes('autoResolve'));

/** Two contacts, one reachable only on the web and one only on WhatsApp (each wrote once there). */
async function webAndWhatsAppContacts(webText: string, whatsappText: string) {
  const web = await visitor(undefined, webText);
  const webContact = (await conversation(web.conversationId)).contact.id as string;
  const handle = newHandle('whatsapp');
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, whatsappText).body)).status).toBe(200);
  // The handle names its contact before the conversation is written (src/domain/inbound.ts): a
  // campaign in between finds no conversation and sends nothing. Waiting for the conversation item.
  const whatsappContact = await eventually(async () => {
    const found = await getHandle('whatsapp', handle);
    return found?.conversationId && (await getConversation(found.conversationId, true)) ? found.contactId : undefined;
  });
  return { web, webContact, handle, whatsappContact };
}

describe('re-engagement', () => {
  it('follows up once when the customer does not answer the agent', async () => {
    await timers({ reengageAfterSeconds: 2 });
    await settings({ reengagement: { enabled: true, message: 'Still there? Anything else?' } });
    const { ws, conversationId } = await visitor(undefined, 'Can you help?');
    await customerHooksDone(conversationId);
    await agentReply(conversationId, 'Sure, what do you need?');
    const followUp = await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Still there? Anything else?', 20_000, 'follow-up');
    expect(followUp.message.sender.type).toBe('bot');
    await sleep(3000);
    expect((await history(conversationId)).filter((m) => m.text === 'Still there? Anything else?')).toHaveLength(1);
  });

  it('holds the follow-up of a reply sent while snoozed until the conversation wakes, then follows up', async () => {
    // Prepare: the agent snoozes the conversation and writes to the customer meanwhile
    await timers({ reengageAfterSeconds: 2 });
    await settings({ reengagement: { enabled: true, message: 'Still there? Anything else?' } });
    const { ws, conversationId } = await visitor(undefined, 'Has my order shipped?');
    await customerHooksDone(conversationId);
    const until = new Date(Date.now() + 4000).toISOString();
    const snoozed = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/status`, { token: agentJwt, body: { status: 'snoozed', snoozedUntil: until } });
    expect(snoozed.status, snoozed.text).toBe(200);
    const replyId = await agentReply(conversationId, 'Checking with the warehouse, back to you on this');
    await ws.waitFor((f) => f.type === 'message.created' && f.message.id === replyId, 10_000, 'reply at visitor');

    // Act: the snooze wakes, and the customer stays silent
    const followUp = await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Still there? Anything else?', 20_000, 'follow-up');

    // Assess: one follow-up, not while the conversation slept (the reply's own delay ended inside the snooze)
    expect(followUp.message.createdAt >= until).toBe(true);
    expect((await conversation(conversationId)).status).toBe('open');
    await sleep(3000);
    expect((await history(conversationId)).filter((m) => m.text === 'Still there? Anything else?')).toHaveLength(1);
  });

  it('sends the follow-up of a reply when it is due after a snooze shorter than its delay, not the whole delay after the wake', async () => {
    // Prepare: an agent replies, which arms the follow-up for 10 s later
    const delay = 10_000;
    await timers({ reengageAfterSeconds: delay / 1000 });
    await settings({ reengagement: { enabled: true, message: 'Still there? Anything else?' } });
    const { ws, conversationId } = await visitor(undefined, 'Is the blue one in stock?');
    await customerHooksDone(conversationId);
    const replyId = await agentReply(conversationId, 'Let me check the stock for you');
    const reply = await ws.waitFor((f) => f.type === 'message.created' && f.message.id === replyId, 10_000, 'reply at visitor');

    // Act: the agent snoozes it for 5 s, which ends well inside the follow-up's delay; the customer stays silent
    // (the whole delay after the wake would be 5 s later than due: room for a loaded machine's lag)
    const until = new Date(Date.now() + 5000).toISOString();
    const snoozed = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/status`, { token: agentJwt, body: { status: 'snoozed', snoozedUntil: until } });
    expect(snoozed.status, snoozed.text).toBe(200);
    const followUp = await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Still there? Anything else?', 25_000, 'follow-up');

    // Assess: it went when it was due, as without the snooze: not the whole delay after the wake
    const sentAt = Date.parse(followUp.message.createdAt);
    expect(sentAt).toBeGreaterThanOrEqual(Date.parse(reply.message.createdAt) + delay);
    expect(sentAt, `sent ${sentAt - Date.parse(until)} ms after the wake`).toBeLessThan(Date.parse(until) + delay);
    expect((await conversation(conversationId)).status).toBe('open');
    await sleep(2000);
    expect((await history(conversationId)).filter((m) => m.text === 'Still there? Anything else?')).toHaveLength(1);
  });

  it('sends no follow-up the customer overtook (writing between its queueing and its send), and shows the agents why', async () => {
    // Prepare: the moment the follow-up is stored (queued, not sent yet), the customer answers the reply
    const text = `Still there? (${crypto.randomUUID().slice(0, 8)})`;
    await settings({ reengagement: { enabled: true, message: text } });
    let conversationId = '';
    let page: WsClient | undefined;
    const customer = onceStored(text, () => conversationId, async () => {
      const answered = await visitorSays(page!, 'Yes, one more thing');
      await eventually(async () => {
        const [current, answer] = await Promise.all([getConversation(conversationId, true), getMessage(conversationId, answered.messageId as string)]);
        return answer !== undefined && current?.lastInboundAt === answer.createdAt;
      });
    });
    let followUpId: string;
    try {
      await timers({ reengageAfterSeconds: 2 });
      ({ ws: page, conversationId } = await visitor(undefined, 'Can you help?'));
      await customerHooksDone(conversationId);
      await agentReply(conversationId, 'Sure, what do you need?');
      // Act: the follow-up's timer fires, stores and queues it
      followUpId = (await agent.waitFor((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text === text, 20_000, 'follow-up queued')).message.id;
    } finally {
      customer.remove();
      await timers({});
    }

    // Assess: its delivery finds the reply answered: not sent, the agents told why, the visitor none the wiser
    const settled = await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === followUpId, 15_000, 'follow-up settled');
    expect(customer.fired()).toBe(true);
    expect(settled.message.status).toBe('failed');
    expect(settled.message.error).toMatch(/not sent/i);
    expect(page!.frames.filter((f) => f.message?.id === followUpId || f.message?.text === text)).toEqual([]);
  });

  it('does not follow up when the customer answered', async () => {
    await timers({ reengageAfterSeconds: 3 });
    const { ws, conversationId } = await visitor(undefined, 'Help please');
    await customerHooksDone(conversationId);
    const replyId = await agentReply(conversationId, 'What is your order number?');
    await ws.waitFor((f) => f.type === 'message.created' && f.message.id === replyId, 10_000, 'reply at visitor');
    await eventually(() => pendingTimers(conversationId).includes('reengage'));
    await visitorSays(ws, 'It is 12345');
    await eventually(() => !pendingTimers(conversationId).includes('reengage'));
    await sleep(5000);
    expect((await history(conversationId)).filter((m) => m.text === 'Still there? Anything else?')).toEqual([]);
  });
});

describe('auto-resolve and CSAT', () => {
  it('resolves an idle conversation, asks for a rating, and stores the answer without reopening', async () => {
    await timers({ autoResolveAfterSeconds: 2 });
    await settings({ csat: { enabled: true, question: 'How did we do? 1 to 5' } });
    const { ws, conversationId } = await visitor(undefined, 'One question');
    const question = await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'How did we do? 1 to 5', 20_000, 'CSAT question');
    expect(question.message.attachments).toEqual([expect.objectContaining({ type: 'csat' })]);
    expect((await conversation(conversationId)).status).toBe('resolved');
    await timers({});
    const liveLoad = async () =>
      ((await http(stack.httpUrl, 'GET', '/v1/agents', { token: agentJwt })).body.items as { id: string; load: { live: number } }[]).find((a) => a.id === 'agent-eve')
        ?.load.live;
    const loadBefore = await liveLoad();

    await visitorSays(ws, '4 - quick and friendly');
    const rated = await agent.waitFor(
      (f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.csat,
      10_000,
      'csat at agent',
    );
    expect(rated.conversation).toMatchObject({ status: 'resolved', csat: { score: 4, comment: 'quick and friendly' } });
    const stored = await conversation(conversationId);
    expect(stored).toMatchObject({ status: 'resolved', csat: { score: 4, comment: 'quick and friendly' } });
    // The answer took no agent slot for good.
    expect(await liveLoad()).toBe(loadBefore);
  });

  it('asks the customer once when an agent writes a private note as the auto-resolve runs, and the run is retried', async () => {
    // Prepare: the auto-resolve's run dies after its resolution, as its question is written; an
    // agent writes a private note at that moment (after the resolution, before the Scheduler's retry)
    const question = `Rate this chat 1 to 5 (${crypto.randomUUID().slice(0, 8)})`;
    await settings({ csat: { enabled: true, question } });
    const crash = 'noteAsAutoResolveRuns';
    let conversationId = '';
    let noteStatus: number | undefined;
    ddb().middlewareStack.add(
      (next) => async (args) => {
        const item = (args.input as { Item?: { conversationId?: string; text?: string } }).Item;
        if (noteStatus === undefined && item?.text === question && item.conversationId === conversationId) {
          const note = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { text: 'Called them: all sorted', private: true } });
          noteStatus = note.status;
          throw new Error('the engagement function died before asking');
        }
        return next(args);
      },
      { step: 'initialize', name: crash },
    );
    let ws: WsClient;
    try {
      // Act: the conversation idles past the auto-resolve's delay
      await timers({ autoResolveAfterSeconds: 2 });
      ({ ws, conversationId } = await visitor(undefined, 'Is the shop open on Sunday?'));
      await ws.waitFor((f) => f.type === 'message.created' && f.message.text === question, 20_000, 'CSAT question');
    } finally {
      ddb().middlewareStack.remove(crash);
      await timers({});
    }

    // Assess: the run died once, beside the note; the customer got the question once, and it is stored once
    expect(noteStatus).toBe(202);
    await sleep(2000);
    expect(ws.frames.filter((f) => f.type === 'message.created' && f.message.text === question)).toHaveLength(1);
    const messages = await history(conversationId);
    expect(messages.filter((m) => m.text === question).map((m) => [m.sender.type, m.private])).toEqual([['bot', false]]);
    expect(messages.filter((m) => m.text === 'Called them: all sorted').map((m) => m.private)).toEqual([true]);
    expect((await conversation(conversationId)).status).toBe('resolved');
  });

  it('sends no CSAT question that the customer overtook (writing between its queueing and its send), and shows the agents it was not sent, and why', async () => {
    // Prepare: the moment the auto-resolve's question is stored (queued, not sent yet), the
    // customer writes again, which reopens the conversation and drops the ask
    const question = `Rate this chat 1 to 5 (${crypto.randomUUID().slice(0, 8)})`;
    await settings({ csat: { enabled: true, question } });
    let conversationId = '';
    let page: WsClient | undefined;
    let visitorToken = '';
    const customer = onceStored(question, () => conversationId, async () => {
      await visitorSays(page!, 'Actually, one more thing');
      await eventually(async () => {
        const current = await getConversation(conversationId, true);
        return current?.status === 'open' && current.engagement?.csatAskedAt === undefined;
      });
    });
    let questionId: string;
    try {
      await timers({ autoResolveAfterSeconds: 2 });
      let session: { token: string };
      ({ ws: page, conversationId, session } = await visitor(undefined, 'Do you ship to Norway?'));
      visitorToken = session.token;
      // Act: the auto-resolve fires, stores and queues its question
      const queued = await agent.waitFor((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text === question, 20_000, 'question queued');
      questionId = queued.message.id;
    } finally {
      customer.remove();
      await timers({});
    }

    // Assess: the question's delivery finds the ask dropped: not sent, the agents told why
    const settled = await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === questionId, 15_000, 'question settled');
    expect(customer.fired()).toBe(true);
    expect(settled.message.status).toBe('failed');
    expect(settled.message.error).toMatch(/not sent/i);
    expect(page!.frames.filter((f) => f.message?.id === questionId)).toEqual([]);
    expect((await history(conversationId)).filter((m) => m.id === questionId).map((m) => m.status)).toEqual(['failed']);
    // The visitor's history is what reached them: their messages, not the withdrawn question
    const seen = (await http(stack.httpUrl, 'GET', '/v1/widget/messages?limit=50', { token: visitorToken })).body.items as { id: string; text: string }[];
    expect(seen.map((m) => m.text)).toEqual(expect.arrayContaining(['Do you ship to Norway?', 'Actually, one more thing']));
    expect(seen.filter((m) => m.id === questionId || m.text === question)).toEqual([]);
    expect((await conversation(conversationId)).status).toBe('open');
  });

  it('takes a rating sent again right after (a second tap, a change of mind) as the newest, without reopening or greeting; anything else reopens', async () => {
    // Prepare: as auto-resolve leaves a conversation it asked to rate
    const { ws, conversationId } = await visitor(undefined, 'Quick one');
    const askedAt = new Date().toISOString();
    await updateConversation(conversationId, (c) => ({
      ...c,
      status: 'resolved',
      resolvedAt: askedAt,
      engagement: { ...c.engagement, csatAskedAt: askedAt, csatResolvedAt: askedAt },
    }));

    // Act
    await visitorSays(ws, '4');
    await visitorSays(ws, '5 - actually great');

    // Assess
    await eventually(async () => ((await conversation(conversationId)).csat?.score === 5 ? true : undefined), 10_000);
    await sleep(1000);
    expect(await conversation(conversationId)).toMatchObject({ status: 'resolved', csat: { score: 5, comment: 'actually great' } });
    const since = (await history(conversationId)).filter((m) => m.createdAt > askedAt);
    expect(since.map((m) => [m.sender.type, m.text])).toEqual([
      ['contact', '4'],
      ['contact', '5 - actually great'],
    ]);
    await visitorSays(ws, 'and one more thing');
    await eventually(async () => ((await conversation(conversationId)).status === 'open' ? true : undefined), 10_000);
    expect((await conversation(conversationId)).csat).toMatchObject({ score: 5 });
  });

  it('keeps a rated conversation with its agent, also when that agent has no room left and a colleague has', async () => {
    // Prepare: Eve's conversation, auto-resolved and asked for a rating
    await timers({ autoResolveAfterSeconds: 2 });
    await settings({ csat: { enabled: true, question: 'Rate us, 1 to 5' } });
    const { ws, conversationId } = await visitor(undefined, 'A quick one');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/assign`, { token: adminJwt, body: { agentId: 'agent-eve' } })).status).toBe(200);
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Rate us, 1 to 5', 20_000, 'CSAT question');
    await timers({});
    // Eve is full now; Finn, online, has room.
    const capacity = (body: Record<string, number>) => http(stack.httpUrl, 'PUT', '/v1/agents/agent-eve', { token: adminJwt, body });
    const eve = ((await http(stack.httpUrl, 'GET', '/v1/agents', { token: adminJwt })).body.items as { id: string; liveCapacity: number }[]).find((a) => a.id === 'agent-eve')!;
    expect((await capacity({ liveCapacity: 0 })).status).toBe(200);
    const finn = await connect(await agentToken(stack.httpUrl, 'agent-finn', 'agent', 'Finn'));
    try {
      // Act
      await visitorSays(ws, '5');

      // Assess: rated, still resolved and Eve's; Finn was never handed it
      await eventually(async () => ((await conversation(conversationId)).csat?.score === 5 ? true : undefined), 10_000);
      await sleep(1000);
      expect(await conversation(conversationId)).toMatchObject({ status: 'resolved', assigneeId: 'agent-eve', csat: { score: 5 } });
      const handed = finn.frames.filter((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.assigneeId !== 'agent-eve');
      expect(handed).toEqual([]);
    } finally {
      await capacity({ liveCapacity: eve.liveCapacity });
    }
  });

  it('takes no message for a rating asked at an earlier resolution (reopened and resolved by an agent since)', async () => {
    await timers({ autoResolveAfterSeconds: 2 });
    await settings({ csat: { enabled: true, question: 'Rate us 1 to 5' } });
    const { ws, conversationId } = await visitor(undefined, 'First question');
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Rate us 1 to 5', 20_000, 'CSAT question');
    await timers({});
    const setStatus = (status: string) => http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/status`, { token: agentJwt, body: { status } });
    expect((await setStatus('open')).status).toBe(200);
    expect((await setStatus('resolved')).status).toBe(200);

    // Reads like a rating, but it is a new question: it reopens the conversation (a rating would
    // put it back to resolved right after the reopening, within milliseconds).
    await visitorSays(ws, '2 more questions about my order');
    await agent.waitFor((f) => f.type === 'message.created' && f.message.text === '2 more questions about my order', 10_000, 'the question at the agent');
    await sleep(2000);
    const after = await conversation(conversationId);
    expect(after.status).toBe('open');
    expect(after.csat).toBeUndefined();
  });

  it('takes no answer to a campaign sent after the rating question for a rating: it reopens the conversation', async () => {
    // Prepare: auto-resolved and asked to rate; the customer has not answered when a campaign reaches them
    await timers({ autoResolveAfterSeconds: 2 });
    await settings({ csat: { enabled: true, question: 'Rate us from 1 to 5' }, autoresponder: { enabled: false } });
    const { ws, session, conversationId } = await visitor(undefined, 'Can I move my booking?');
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Rate us from 1 to 5', 20_000, 'CSAT question');
    await timers({});
    const campaign = `Your appointment is tomorrow. Reply 1 to confirm, 2 to reschedule. ${crypto.randomUUID()}`;
    const contactId = (await conversation(conversationId)).contact.id;
    const sent = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [contactId], text: campaign, channel: 'web' } });
    expect(sent.status, sent.text).toBe(202);
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text === campaign, 15_000, 'campaign');
    // The widget's reloaded history no longer offers the question's buttons
    const page = await http(stack.httpUrl, 'GET', '/v1/widget/messages?limit=50', { token: session.token });
    expect(page.body).toMatchObject({ conversationStatus: 'resolved', csatOpen: false });

    // Act: the customer answers the campaign
    await visitorSays(ws, '2');

    // Assess: a request for the team, not a rating of 2 on a conversation left resolved
    const reopened = await eventually(async () => {
      const c = await conversation(conversationId);
      return c.status === 'open' ? c : undefined;
    }, 10_000);
    expect(reopened.csat).toBeUndefined();
    await sleep(500);
    expect(await conversation(conversationId)).toMatchObject({ status: 'open' });
    expect((await conversation(conversationId)).csat).toBeUndefined();
  });

  it('records the newest rating of a customer asked again, and takes no rating after the answer window', async () => {
    const { ws, conversationId } = await visitor(undefined, 'A question');
    // As auto-resolve leaves a conversation rated once before and asked again (`askedAt`).
    const askedAgain = (askedAt: string) =>
      updateConversation(conversationId, (c) => ({
        ...c,
        status: 'resolved',
        resolvedAt: askedAt,
        csat: { score: 5 },
        engagement: { ...c.engagement, csatAskedAt: askedAt, csatResolvedAt: askedAt },
      }));

    await askedAgain(new Date().toISOString());
    await visitorSays(ws, '3');
    await eventually(async () => ((await conversation(conversationId)).csat?.score === 3 ? true : undefined), 10_000);
    expect((await conversation(conversationId)).status).toBe('resolved');

    // Asked four days ago: a "2" now is about something else. It reopens the conversation.
    await askedAgain(new Date(Date.now() - 4 * 86_400_000).toISOString());
    await visitorSays(ws, '2');
    const reopened = await eventually(async () => {
      const c = await conversation(conversationId);
      return c.status === 'open' ? c : undefined;
    }, 10_000);
    await sleep(1000);
    expect(await conversation(conversationId)).toMatchObject({ status: 'open', csat: { score: 5 } });
    expect(reopened.csat).toMatchObject({ score: 5 });
  });

  it('records a rating with its message, so that an agent\'s change right after neither loses it nor frees a slot', async () => {
    // Prepare: a resolved conversation asked for a rating; the store is slow to take the rating's write
    const { ws, conversationId } = await visitor(undefined, 'One more thing');
    const askedAt = new Date().toISOString();
    await updateConversation(conversationId, (c) => ({ ...c, status: 'resolved', resolvedAt: askedAt, engagement: { ...c.engagement, csatAskedAt: askedAt, csatResolvedAt: askedAt } }));
    const assignee = (await conversation(conversationId)).assigneeId as string;
    const load = async () => ((await http(stack.httpUrl, 'GET', '/v1/agents', { token: adminJwt })).body.items as { id: string; load: { live: number } }[]).find((a) => a.id === assignee)?.load.live;
    const loadBefore = await load();
    const slowRating = 'slowRating';
    ddb().middlewareStack.add(
      (next) => async (args) => {
        const item = (args.input as { Item?: { id?: string; csat?: unknown } }).Item;
        if (item?.id === conversationId && item.csat) await sleep(300);
        return next(args);
      },
      { step: 'initialize', name: slowRating },
    );
    try {
      // Act: the rating, and the agent sets the conversation pending as soon as the visitor has its ack
      await visitorSays(ws, '2 - took a while');
      expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/status`, { token: agentJwt, body: { status: 'pending' } })).status).toBe(200);
      await sleep(1000);
    } finally {
      ddb().middlewareStack.remove(slowRating);
    }

    // Assess: the rating is kept through the agent's change, and the agent's counter never moved
    expect(await conversation(conversationId)).toMatchObject({ status: 'pending', csat: { score: 2, comment: 'took a while' } });
    expect(await load()).toBe(loadBefore);
  });

  it('takes no message the customer wrote before the question for its answer, however late it arrives', async () => {
    // Prepare: a WhatsApp conversation resolved and asked for a rating a minute ago
    const handle = newHandle('whatsapp');
    const hello = textWebhook('whatsapp', handle, 'How many do you need?');
    expect((await postWebhook(stack, 'whatsapp', hello.body)).status).toBe(200);
    const opened = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === hello.providerMessageId, 10_000, 'the first message');
    const askedAt = new Date(Date.now() - 60_000).toISOString();
    await updateConversation(opened.conversationId, (c) => ({ ...c, status: 'resolved', resolvedAt: askedAt, engagement: { ...c.engagement, csatAskedAt: askedAt, csatResolvedAt: askedAt } }));

    // Act: "2", written two minutes ago (the provider retried it), arrives now
    const late = JSON.parse(textWebhook('whatsapp', handle, '2').body);
    late.entry[0].changes[0].value.messages[0].timestamp = String(Math.floor(Date.now() / 1000) - 120);
    expect((await postWebhook(stack, 'whatsapp', JSON.stringify(late))).status).toBe(200);

    // Assess: an answer to the team's earlier question, not a rating: the conversation reopens for an agent
    const reopened = await eventually(async () => {
      const c = await conversation(opened.conversationId);
      return c.status === 'open' ? c : undefined;
    }, 10_000);
    expect(reopened.csat).toBeUndefined();
  });

  it('does not resolve a conversation that keeps moving', async () => {
    await timers({ autoResolveAfterSeconds: 3 });
    await settings({ csat: { enabled: true, question: 'Rate us 1 to 5' } });
    const { ws, conversationId } = await visitor(undefined, 'msg 0');
    // Four more messages a second apart: well past the 3 s delay since the first, never 3 s idle.
    for (let i = 1; i <= 4; i++) {
      await sleep(1000);
      await visitorSays(ws, `msg ${i}`);
    }
    // Still under 3 s since the last message: the timer it armed has not come due yet.
    await sleep(1000);

    // Never resolved in between: a customer message would have reopened it, so 'open' alone says
    // nothing. No resolution, no reopen, no CSAT question, and no 'resolved' shown to the agent.
    const stored = await getConversation(conversationId, true);
    expect(stored).toMatchObject({ status: 'open' });
    expect(stored!.resolvedAt).toBeUndefined();
    expect(stored!.reopenCount ?? 0).toBe(0);
    expect(stored!.engagement?.csatAskedAt).toBeUndefined();
    const current = await conversation(conversationId);
    expect(current.status).toBe('open');
    expect(current.resolvedAt).toBeUndefined();
    expect((await history(conversationId)).filter((m) => m.text === 'Rate us 1 to 5')).toEqual([]);
    expect(agent.frames.filter((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.status === 'resolved')).toEqual([]);
    await timers({});
  });
});

/** A customer on `channel` whose message has run its hooks (its auto-resolve is armed). */
async function providerCustomer(channel: 'whatsapp' | 'sms', text: string): Promise<{ handle: string; conversationId: string }> {
  const handle = newHandle(channel);
  expect((await postWebhook(stack, channel, textWebhook(channel, handle, text).body)).status).toBe(200);
  const conversationId = await eventually(async () => (await getHandle(channel, handle))?.conversationId);
  await customerHooksDone(conversationId);
  // The greeting goes out once the customer's fan-out is out: a provider failure armed after this
  // must meet the agent's reply, not the greeting (a CI run saw the greeting take it).
  await eventually(async () => ((await history(conversationId)).some((m) => m.sender.type === 'bot' && m.status === 'queued') ? undefined : true));
  return { handle, conversationId };
}
describe('CSAT when an agent resolves', () => {
  const resolve = (conversationId: string) => http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt });
  const questions = async (conversationId: string, question: string) => (await history(conversationId)).filter((m) => m.text === question);

  it('asks the customer as the auto-resolve does, once across retried calls, and the rating keeps the conversation resolved and credited', async () => {
    const question = `How did Eve do? 1 to 5 (${crypto.randomUUID().slice(0, 8)})`;
    await timers({});
    await settings({ csat: { enabled: true, question } });
    const { ws, conversationId } = await visitor(undefined, 'Where is my parcel?');
    await customerHooksDone(conversationId);
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/assign`, { token: agentJwt, body: { agentId: 'agent-eve' } })).status).toBe(200);
    await agentReply(conversationId, 'It arrives tomorrow');

    // Act: Eve resolves, and her console sends the call again (a retry after a lost answer)
    expect((await resolve(conversationId)).status).toBe(200);
    const asked = await ws.waitFor((f) => f.type === 'message.created' && f.message.text === question, 15_000, 'the question at the visitor');
    expect((await resolve(conversationId)).status).toBe(200);

    // Assess: one question, with the widget's buttons, and the answer is the conversation's rating
    expect(asked.message.attachments).toEqual([expect.objectContaining({ type: 'csat' })]);
    expect(await questions(conversationId, question)).toHaveLength(1);
    await visitorSays(ws, '5 - very helpful');
    const rated = await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.csat, 10_000, 'the rating');
    expect(rated.conversation).toMatchObject({ status: 'resolved', assigneeId: 'agent-eve', csat: { score: 5, comment: 'very helpful' } });
    // Reopened by Eve and resolved again with nothing new from the customer: not asked twice for one issue.
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/reopen`, { token: agentJwt })).status).toBe(200);
    expect((await resolve(conversationId)).status).toBe(200);
    await sleep(500);
    expect(await questions(conversationId, question)).toHaveLength(1);
  });

  it('asks the question a resolution that died after its write left unasked, when the call is made again', async () => {
    const question = `Rate us 1 to 5 (${crypto.randomUUID().slice(0, 8)})`;
    await settings({ csat: { enabled: true, question } });
    const { ws, conversationId } = await visitor(undefined, 'Can I change my order?');
    await customerHooksDone(conversationId);
    await agentReply(conversationId, 'Done');
    // The first call's write landed (resolved, asking) and the call died before the question was stored.
    const at = new Date().toISOString();
    await updateConversation(conversationId, (c) => ({ ...c, status: 'resolved', resolvedAt: at, updatedAt: at, engagement: { ...c.engagement, csatAskedAt: at, csatResolvedAt: at } }));

    expect((await resolve(conversationId)).status).toBe(200);
    await ws.waitFor((f) => f.type === 'message.created' && f.message.text === question, 15_000, 'the question');
    expect((await resolve(conversationId)).status).toBe(200);
    await sleep(500);
    expect(await questions(conversationId, question)).toHaveLength(1);
  });

  it('asks nobody with CSAT off, nor a customer the channel cannot reach now (past WhatsApp\'s 24 hours, an SMS opt-out) or whose last reply never reached them, nor through /status any differently', async () => {
    const question = `Rate us 1 to 5 (${crypto.randomUUID().slice(0, 8)})`;
    await timers({});
    // CSAT off
    await settings({ csat: { enabled: false, question } });
    const off = await visitor(undefined, 'Quick one');
    await customerHooksDone(off.conversationId);
    expect((await resolve(off.conversationId)).status).toBe(200);
    // WhatsApp, the customer's last message two days old
    await settings({ csat: { enabled: true, question } });
    const late = await providerCustomer('whatsapp', 'Do you ship to Spain?');
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000).toISOString();
    await updateConversation(late.conversationId, (c) => ({ ...c, lastInboundAt: twoDaysAgo, windowFrom: twoDaysAgo }));
    expect((await resolve(late.conversationId)).status).toBe(200);
    // SMS, opted out
    const handle = newHandle('sms');
    const stop = new URLSearchParams(textWebhook('sms', handle, 'STOP').body);
    stop.set('OptOutType', 'STOP');
    expect((await postWebhook(stack, 'sms', stop.toString())).status).toBe(200);
    const optedOut = await eventually(async () => (await getHandle('sms', handle))?.conversationId);
    await customerHooksDone(optedOut);
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${optedOut}/status`, { token: agentJwt, body: { status: 'resolved' } })).status).toBe(200);
    // WhatsApp, the agent's last reply refused by the provider: it never reached the customer
    const refused = await providerCustomer('whatsapp', 'Can you call me?');
    expect((await http(stack.httpUrl, 'POST', '/local/providers/whatsapp/_fail', { body: { status: 400, count: 1 } })).status).toBe(200);
    const failedId = await agentReply(refused.conversationId, 'We cannot call, sorry');
    await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === failedId && f.message.status === 'failed', 15_000, 'the refused reply');
    expect((await resolve(refused.conversationId)).status).toBe(200);
    // A customer on WhatsApp inside the window, resolved through /status: asked
    const inWindow = await providerCustomer('whatsapp', 'And to Portugal?');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${inWindow.conversationId}/status`, { token: agentJwt, body: { status: 'resolved' } })).status).toBe(200);

    await eventually(async () => (await questions(inWindow.conversationId, question)).length === 1, 15_000);
    for (const id of [off.conversationId, late.conversationId, optedOut, refused.conversationId]) {
      expect((await conversation(id)).status).toBe('resolved');
      expect(await questions(id, question)).toEqual([]);
    }
    const outbox = (await http(stack.httpUrl, 'GET', '/local/outbox')).body.items as { body: unknown }[];
    expect(outbox.filter((i) => JSON.stringify(i.body).includes(question))).toHaveLength(1);
  });
});

describe('a reply the customer never got', () => {
  const FOLLOW_UP = 'Still there? Anything else?';

  const status = (messageId: string, s: string) => agent.waitFor((f) => f.type === 'message.updated' && f.message.id === messageId && f.message.status === s, 15_000, `${s}: ${messageId}`);
  /** The auto-resolve firing now as though its whole delay had passed (a lost cancel, a fire under way). */
  const autoResolveFires = (conversationId: string) =>
    runTimer({ kind: 'autoResolve', conversationId, dueAt: new Date().toISOString() }, new Date(Date.now() + 2 * HOUR * 1000));

  it.each([
    { channel: 'whatsapp' as const, report: 'failed' },
    { channel: 'sms' as const, report: 'undelivered' },
  ])('a reply sent, then reported $report by $channel, disarms its auto-resolve and follow-up; a later reply that goes through arms them again', async ({ channel, report }) => {
    // Prepare: an agent's reply the provider took (sent), which armed the auto-resolve and the follow-up
    await timers({});
    await settings({ reengagement: { enabled: true, message: FOLLOW_UP }, csat: { enabled: true, question: 'Rate us 1 to 5' } });
    const { handle, conversationId } = await providerCustomer(channel, 'Where is my refund?');
    const replyId = await agentReply(conversationId, 'Your refund went out yesterday');
    const sent = await status(replyId, 'sent');
    await eventually(() => pendingTimers(conversationId).includes('reengage'));

    // Act: the provider reports later that it never reached the customer
    const callback = statusWebhook(channel, handle, 'failed', sent.message.providerMessageId).replace(/(MessageStatus|SmsStatus)=failed/g, `$1=${report}`);
    expect((await postWebhook(stack, channel, callback)).status).toBe(200);
    await status(replyId, 'failed');

    // Assess: nothing left armed, and a fire anyway resolves nothing, asks nothing
    await eventually(() => !pendingTimers(conversationId).some((t) => t === 'autoResolve' || t === 'reengage'));
    expect(await autoResolveFires(conversationId)).toBe('skipped');
    expect(await runTimer({ kind: 'reengage', conversationId, dueAt: new Date().toISOString(), messageId: replyId }, new Date(Date.now() + 2 * HOUR * 1000))).toBe('skipped');
    expect((await conversation(conversationId)).status).toBe('open');
    expect((await history(conversationId)).filter((m) => m.text === 'Rate us 1 to 5' || m.text === FOLLOW_UP)).toEqual([]);

    // The agent sends it again, and this time it goes through: armed again, and it may resolve
    const retryId = await agentReply(conversationId, 'Your refund went out yesterday (again)');
    await status(retryId, 'sent');
    await eventually(() => ['autoResolve', 'reengage'].every((t) => pendingTimers(conversationId).includes(t)));
    expect(await autoResolveFires(conversationId)).toBe('done');
    expect((await conversation(conversationId)).status).toBe('resolved');
  });

  it.each([
    { channel: 'whatsapp' as const, report: 'failed', csat: true, asked: 'after asking its CSAT question' },
    { channel: 'sms' as const, report: 'undelivered', csat: false, asked: 'without a CSAT question' },
  ])('a reply reported $report by $channel once the auto-resolve resolved the conversation ($asked) reopens it for its agent, and nothing resolves it again', async ({ channel, report, csat }) => {
    // Prepare: the agent's reply was sent, then the conversation idled and the auto-resolve resolved it
    await timers({});
    const question = `Rate us 1 to 5 (${crypto.randomUUID().slice(0, 8)})`;
    await settings({ csat: { enabled: csat, question } });
    const { handle, conversationId } = await providerCustomer(channel, 'Has my order shipped?');
    const replyId = await agentReply(conversationId, 'Yes, it left this morning');
    const sent = await status(replyId, 'sent');
    expect(await autoResolveFires(conversationId)).toBe('done');
    expect((await conversation(conversationId)).status).toBe('resolved');
    if (csat) await eventually(async () => (await history(conversationId)).some((m) => m.text === question && m.status === 'sent'));

    // Act: the provider reports later that the reply never reached the customer
    const mark = agent.frames.length;
    const callback = statusWebhook(channel, handle, 'failed', sent.message.providerMessageId).replace(/(MessageStatus|SmsStatus)=failed/g, `$1=${report}`);
    expect((await postWebhook(stack, channel, callback)).status).toBe(200);
    await status(replyId, 'failed');

    // Assess: open again and shown so to the agents; nothing armed resolves it (or asks) until the agent writes
    await agent.waitFor(
      (f) => agent.frames.indexOf(f) >= mark && f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.status === 'open',
      15_000,
      'reopened at agent',
    );
    expect(pendingTimers(conversationId)).not.toContain('autoResolve');
    expect(await autoResolveFires(conversationId)).toBe('skipped');
    expect((await conversation(conversationId)).status).toBe('open');
    expect((await history(conversationId)).filter((m) => m.text === question)).toHaveLength(csat ? 1 : 0);
  });

  /** The conversation's messages since `afterId` that the bot wrote (autoresponder, CSAT question, follow-up). */
  const botSince = async (conversationId: string, afterId: string) => (await history(conversationId)).filter((m) => m.id > afterId && m.sender.type === 'bot');
  async function expectOnlyResolutionQuestion(conversationId: string, replyId: string, question: 'withdrawn' | 'sent or withdrawn') {
    const bots = await eventually(async () => {
      const since = await botSince(conversationId, replyId);
      return since.every((m) => m.status !== 'queued') ? since : undefined;
    }, 15_000);
    expect(bots.map((m) => m.text)).toEqual(['Rate us 1 to 5']);
    if (question === 'withdrawn') expect(bots[0]).toMatchObject({ status: 'failed' });
  }
  const resolveAsAgent = async (conversationId: string) => expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt })).status).toBe(200);
  /**
   * The failed reply's conversation reopened, shown so to the agents, and nothing armed resolves it
   * (or asks again) until the agent writes. The bot wrote nothing since the reply but the rating
   * question the agent's resolution asked: `withdrawn` when the reply failed before it went (the
   * question waits behind it in the conversation's lane, and the reopening drops its ask); a failure
   * reported after the send may come before or after the question went.
   */
  async function reopenedForAgent(conversationId: string, replyId: string, assigneeId: string, question: 'withdrawn' | 'sent or withdrawn') {
    const stored = await eventually(async () => {
      const c = await getConversation(conversationId, true);
      return c?.status === 'open' ? c : undefined;
    }, 15_000);
    expect(stored).toMatchObject({ status: 'open', assigneeId });
    await agent.waitFor(
      (f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.status === 'open' && f.conversation.updatedAt >= stored.updatedAt,
      15_000,
      'reopened at agent',
    );
    // The customer did not come back: no reopen in the reports, no greeting, no rating asked now.
    expect(stored.reopenCount ?? 0).toBe(0);
    expect(stored.engagement?.csatAskedAt).toBeUndefined();
    expect(pendingTimers(conversationId)).not.toContain('autoResolve');
    expect(await autoResolveFires(conversationId)).toBe('skipped');
    expect((await conversation(conversationId)).status).toBe('open');
    await expectOnlyResolutionQuestion(conversationId, replyId, question);
  }

  it.each([
    { channel: 'whatsapp' as const, report: 'failed' },
    { channel: 'sms' as const, report: 'undelivered' },
  ])('a reply reported $report by $channel after its agent resolved the conversation right away reopens it for them, unasked and uncounted', async ({ channel, report }) => {
    // Prepare: the agent answers and closes at once ("thanks, closing"); the provider took the reply
    await timers({});
    await settings({ autoresponder: { enabled: true, message: 'Hi! We reply within minutes.' }, csat: { enabled: true, question: 'Rate us 1 to 5' } });
    const { handle, conversationId } = await providerCustomer(channel, 'Can you cancel my order?');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/assign`, { token: agentJwt, body: { agentId: 'agent-eve' } })).status).toBe(200);
    const replyId = await agentReply(conversationId, 'Done, it is cancelled. Closing this now');
    const sent = await status(replyId, 'sent');
    await resolveAsAgent(conversationId);

    // Act: the provider reports later that the reply never reached the customer
    const callback = statusWebhook(channel, handle, 'failed', sent.message.providerMessageId).replace(/(MessageStatus|SmsStatus)=failed/g, `$1=${report}`);
    expect((await postWebhook(stack, channel, callback)).status).toBe(200);
    await status(replyId, 'failed');

    // Assess: open again, the agent's, and held open until they send it again
    await reopenedForAgent(conversationId, replyId, 'agent-eve', 'sent or withdrawn');
    const retryId = await agentReply(conversationId, 'Done, it is cancelled (again)');
    await status(retryId, 'sent');
    await eventually(() => pendingTimers(conversationId).includes('autoResolve'));
  });

  it('a reply the provider refuses once its agent has resolved the conversation reopens it for that agent, though nobody held it', async () => {
    // Prepare: a customer in the queue (Eve handed it back; the other agents online have no room), answered and resolved by Eve at once
    await timers({});
    await settings({ autoresponder: { enabled: true, message: 'Hi! We reply within minutes.' }, csat: { enabled: true, question: 'Rate us 1 to 5' } });
    const others = ((await http(stack.httpUrl, 'GET', '/v1/agents', { token: adminJwt })).body.items as { id: string; capacityOverride: { async: number | null } }[]).filter(
      (a) => a.id !== 'agent-eve',
    );
    const capacity = (id: string, asyncCapacity: number | null) => http(stack.httpUrl, 'PUT', `/v1/agents/${id}`, { token: adminJwt, body: { asyncCapacity } });
    for (const other of others) expect((await capacity(other.id, 0)).status).toBe(200);
    try {
      // Act
      const { conversationId, replyId } = await refusedAfterResolution();

      // Assess: resolved before the refusal, then reopened for Eve, who resolved it
      await reopenedForAgent(conversationId, replyId, 'agent-eve', 'withdrawn');
    } finally {
      for (const other of others) await capacity(other.id, other.capacityOverride.async);
    }
  });

  it('a reply refused after its agent resolved the conversation, once that agent has no room left, reopens it into the queue, handed out once there is room', async () => {
    // Prepare: as above, and Eve has no room by the time the refusal comes (her async capacity set to 0 after she resolves)
    await timers({});
    await settings({ autoresponder: { enabled: true, message: 'Hi! We reply within minutes.' }, csat: { enabled: true, question: 'Rate us 1 to 5' } });
    const agents = (await http(stack.httpUrl, 'GET', '/v1/agents', { token: adminJwt })).body.items as { id: string; capacityOverride: { async: number | null } }[];
    const capacity = (id: string, asyncCapacity: number | null) => http(stack.httpUrl, 'PUT', `/v1/agents/${id}`, { token: adminJwt, body: { asyncCapacity } });
    const eve = agents.find((a) => a.id === 'agent-eve')!;
    for (const other of agents.filter((a) => a !== eve)) expect((await capacity(other.id, 0)).status).toBe(200);
    try {
      // Act
      const { conversationId, replyId } = await refusedAfterResolution(async () => expect((await capacity(eve.id, 0)).status).toBe(200));

      // Assess: open again but nobody's (Eve is full), not counted as the customer's reopen, nothing armed or asked
      // (The reopening write names Eve; routing then finds her full and gives it to the queue.)
      const waiting = await eventually(async () => {
        const c = await getConversation(conversationId, true);
        return c?.status === 'open' && (c.assigneeId ?? null) === null ? c : undefined;
      }, 15_000);
      expect(waiting.reopenCount ?? 0).toBe(0);
      expect(pendingTimers(conversationId)).not.toContain('autoResolve');
      await expectOnlyResolutionQuestion(conversationId, replyId, 'withdrawn');

      // ...and handed out once the team has room again
      for (const a of agents) expect((await capacity(a.id, a.capacityOverride.async)).status).toBe(200);
      await eventually(async () => ((await getConversation(conversationId, true))?.assigneeId ?? null) !== null, 15_000);
    } finally {
      for (const a of agents) await capacity(a.id, a.capacityOverride.async);
    }
  });

  /** Eve's reply on a conversation nobody holds, refused by WhatsApp only once she has resolved it (and `meanwhile` ran). */
  async function refusedAfterResolution(meanwhile?: () => Promise<void>): Promise<{ conversationId: string; replyId: string }> {
    const { conversationId } = await providerCustomer('whatsapp', 'Please delete my account');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/assign`, { token: agentJwt, body: { agentId: 'agent-eve' } })).status).toBe(200);
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/assign`, { token: agentJwt, body: { agentId: null } })).status).toBe(200);
    expect((await getConversation(conversationId, true))?.assigneeId ?? null).toBeNull();
    // The provider answers the send only once Eve has resolved the conversation, and refuses it.
    expect((await http(stack.httpUrl, 'POST', '/local/providers/whatsapp/_fail', { body: { status: 400, count: 1 } })).status).toBe(200);
    let resolved = false;
    stack.providers.holdNext('whatsapp', async () => {
      await resolveAsAgent(conversationId);
      await meanwhile?.();
      resolved = true;
    });
    const replyId = await agentReply(conversationId, 'Your account is deleted. Closing this now');
    await status(replyId, 'failed');
    expect(resolved).toBe(true);
    return { conversationId, replyId };
  }

  it('a reply that fails before it is sent (the provider refuses it) leaves nothing to auto-resolve the conversation', async () => {
    // Prepare: the customer's message armed the auto-resolve
    await timers({});
    await settings({ csat: { enabled: true, question: 'Rate us 1 to 5' } });
    const { conversationId } = await providerCustomer('whatsapp', 'Can I change my address?');
    expect(pendingTimers(conversationId)).toContain('autoResolve');

    // Act: the agent's answer is refused by the provider
    expect((await http(stack.httpUrl, 'POST', '/local/providers/whatsapp/_fail', { body: { status: 400, count: 1 } })).status).toBe(200);
    const replyId = await agentReply(conversationId, 'Yes, send me the new one');
    await status(replyId, 'failed');

    // Assess
    await eventually(() => !pendingTimers(conversationId).includes('autoResolve'));
    expect(await autoResolveFires(conversationId)).toBe('skipped');
    expect((await conversation(conversationId)).status).toBe('open');
    expect((await history(conversationId)).filter((m) => m.text === 'Rate us 1 to 5')).toEqual([]);
  });
});

describe('snooze wake-up through the engagement function', () => {
  it('reopens a snoozed conversation when its schedule fires, and it does not auto-resolve meanwhile', async () => {
    await timers({ autoResolveAfterSeconds: 2 });
    const { conversationId } = await visitor(undefined, 'Call me back in a bit');
    const until = new Date(Date.now() + 4000).toISOString();
    const snoozed = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/status`, { token: agentJwt, body: { status: 'snoozed', snoozedUntil: until } });
    expect(snoozed.status, snoozed.text).toBe(200);
    await eventually(() => !pendingTimers(conversationId).includes('autoResolve'));
    expect((await conversation(conversationId)).status).toBe('snoozed');
    // The 'open' that counts is newer than the 'snoozed' one (the first message's own update may
    // arrive after the snooze, carrying the older state).
    const woken = await eventually(() => {
      const updates = agent.frames.filter((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId);
      const snoozedFrame = updates.find((f) => f.conversation.status === 'snoozed');
      return snoozedFrame && updates.find((f) => f.conversation.status === 'open' && f.conversation.updatedAt > snoozedFrame.conversation.updatedAt);
    }, 20_000);
    expect(woken.conversation.snoozedUntil).toBeUndefined();
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(until));
    expect((await conversation(conversationId)).status).toBe('open');
    await timers({});
  });
});

describe('proactive messages', () => {
  it('queues a message to a list of contacts (202 with a count) and delivers it on their conversations', async () => {
    await settings({ autoresponder: { enabled: false } });
    // Timers an hour away: the email fallback's schedule can only go by being cancelled.
    await timers({});
    const one = await visitor(undefined, 'first');
    const two = await visitor(undefined, 'second');
    const contactOf = async (id: string) => (await conversation(id)).contact.id as string;
    const contactIds = [await contactOf(one.conversationId), await contactOf(two.conversationId)];

    const res = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [...contactIds, contactIds[0], 'NO-SUCH-CONTACT'], text: 'Our summer sale starts today' } });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ queued: 2, unknownContactIds: ['NO-SUCH-CONTACT'] });

    for (const v of [one, two]) {
      const got = await v.ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Our summer sale starts today', 15_000, 'proactive message');
      expect(got.message).toMatchObject({ conversationId: v.conversationId, direction: 'outbound', sender: { type: 'agent', id: 'admin-ada' } });
    }
    await sleep(500);
    const sale = (await history(one.conversationId)).filter((m) => m.text === 'Our summer sale starts today');
    expect(sale).toHaveLength(1);
    // Not a reply to the customer's question: the first reply (reports, SLA) is still to come.
    expect((await conversation(one.conversationId)).firstReplyAt).toBeUndefined();
    // No reply: it arms no follow-up (the customer's question is still unanswered).
    expect(sale[0]).toMatchObject({ unprompted: true });
    expect(pendingTimers(one.conversationId)).not.toContain('reengage');
    // Read on the web: nothing left to email.
    expect(pendingTimers(one.conversationId)).toContain('emailFallback');
    one.ws.send({ action: 'markRead', messageId: sale[0]!.id });
    await eventually(async () => (pendingTimers(one.conversationId).includes('emailFallback') ? undefined : true), 10_000);
    await agentReply(one.conversationId, 'About your question: yes');
    await eventually(async () => ((await conversation(one.conversationId)).firstReplyAt ? true : undefined), 10_000);
  });

  it("fills each customer's placeholders, with their fallback, and refuses a placeholder it does not know before queueing", async () => {
    await settings({ autoresponder: { enabled: false } });
    const named = await visitor({ name: 'Vera', email: `vera-${crypto.randomUUID()}@example.com` }, 'first');
    const nameless = await visitor({}, 'first');
    const contactOf = async (v: { conversationId: string }) => (await conversation(v.conversationId)).contact.id as string;
    const tag = crypto.randomUUID().slice(0, 8);
    const text = `Hi {{ contact.name | there }}, our sale starts today (${tag}). {{agent.name}}`;

    const typo = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [await contactOf(named)], text: 'Hi {{contact.firstname}}' } });
    expect([typo.status, typo.body.error.message]).toEqual([400, expect.stringContaining('placeholder')]);

    const res = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [await contactOf(named), await contactOf(nameless)], text } });
    expect(res.status, res.text).toBe(202);
    const got = await Promise.all(
      [named, nameless].map((v) => v.ws.waitFor((f) => f.type === 'message.created' && String(f.message.text).includes(tag), 15_000, 'proactive message')),
    );
    expect(got.map((f) => f.message.text)).toEqual([`Hi Vera, our sale starts today (${tag}). Ada`, `Hi there, our sale starts today (${tag}). Ada`]);
    // Nothing of the typo's request went anywhere.
    expect((await history(named.conversationId)).filter((m) => m.text.startsWith('Hi {{'))).toEqual([]);

    // A text that fills to nothing for a customer (no name, no fallback) is not sent to them: no empty bubble.
    const onlyName = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [await contactOf(nameless), await contactOf(named)], text: '{{contact.name}}' } });
    expect(onlyName.status, onlyName.text).toBe(202);
    await named.ws.waitFor((f) => f.type === 'message.created' && f.message.text === 'Vera', 15_000, 'the named one');
    await sleep(500);
    expect((await history(nameless.conversationId)).map((m) => m.text)).not.toContain('');
  });

  it('answers back the contacts a named provider channel cannot reach, and queues none for them', async () => {
    const { web, webContact, handle, whatsappContact } = await webAndWhatsAppContacts('web only', 'Hello from WhatsApp');
    const text = `Back in stock ${handle}`;

    const res = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [webContact, whatsappContact], text, channel: 'whatsapp' } });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ queued: 1, unreachableContactIds: [webContact] });
    const outbox = async () => (await http(stack.httpUrl, 'GET', '/local/outbox?channel=whatsapp')).body.items as unknown[];
    await eventually(async () => (await outbox()).some((r) => JSON.stringify(r).includes(text)), 15_000);
    // Nothing reaches the web visitor, on the web or anywhere.
    await sleep(300);
    expect((await history(web.conversationId)).some((m) => m.text === text)).toBe(false);

    // Nobody the channel reaches: refused, and no quota taken.
    const none = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [webContact], text, channel: 'telegram' } });
    expect(none.status).toBe(422);
    expect(none.body.error.code).toBe('not_reachable');
  });

  it('answers back the contacts the web cannot reach (no web visitor), and queues none for them', async () => {
    const { web, webContact, handle, whatsappContact } = await webAndWhatsAppContacts('web visitor', 'Hello, WhatsApp only');
    const text = `Web sale ${handle}`;

    const res = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [webContact, whatsappContact], text, channel: 'web' } });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ queued: 1, unreachableContactIds: [whatsappContact] });
    await web.ws.waitFor((f) => f.type === 'message.created' && f.message.text === text, 15_000, 'proactive message on the web');

    // Nobody the web reaches: refused
    const none = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [whatsappContact], text, channel: 'web' } });
    expect(none.status, none.text).toBe(422);
    expect(none.body.error.code).toBe('not_reachable');
  });

  it('writes to a recipient merged into another contact after the request as that one, once for both when both are on the list', async () => {
    // Prepare: the request named both; before their jobs ran, the web contact was merged into the WhatsApp one
    const { web, webContact, handle, whatsappContact } = await webAndWhatsAppContacts('merged later', 'Hello, same person');
    const merged = await http(stack.httpUrl, 'POST', `/v1/contacts/${whatsappContact}/merge`, { token: adminJwt, body: { otherContactId: webContact } });
    expect(merged.status, merged.text).toBe(200);
    const text = `Merged sale ${handle}`;
    const jobFor = (contactId: string): ProactiveJob => ({
      conversationId: 'proactive-lane-0',
      messageId: `proactive-MERGED-${contactId}`,
      proactive: { batchId: `MERGED-${handle}`, contactId, text, sender: { id: 'admin-ada' } },
    });

    // Act: the merged contact's job first (it must not be skipped), then the survivor's
    const outcomes = [await deliverProactive(jobFor(webContact), false), await deliverProactive(jobFor(whatsappContact), false)];

    // Assess: one message, on the survivor's newest conversation, sent once
    expect(outcomes).toEqual(['sent', 'sent']);
    const whatsappConversation = (await http(stack.httpUrl, 'GET', `/v1/contacts/${whatsappContact}`, { token: agentJwt })).body.conversations.find((c: { channel: string }) => c.channel === 'whatsapp').id as string;
    const written = [...(await history(web.conversationId)), ...(await history(whatsappConversation))].filter((m) => m.text === text);
    expect(written).toEqual([expect.objectContaining({ conversationId: whatsappConversation, unprompted: true })]);
    const sends = ((await http(stack.httpUrl, 'GET', '/local/outbox?channel=whatsapp')).body.items as unknown[]).filter((r) => JSON.stringify(r).includes(text));
    expect(sends).toHaveLength(1);
  });

  it('is for admins only and refuses bad input with 4xx', async () => {
    expect((await http(stack.httpUrl, 'POST', '/v1/proactive', { token: agentJwt, body: { contactId: 'x', text: 'hi' } })).status).toBe(403);
    const cases = [
      { text: 'hi' },
      { contactId: 'x', contactIds: ['y'], text: 'hi' },
      { contactId: 'x' },
      { contactIds: [], text: 'hi' },
      { contactId: 'x', text: 'hi', channel: 'fax' },
      // Shows nothing: refused before any contact is looked up
      { contactId: 'x', text: '\u200b' },
    ];
    for (const body of cases) {
      const res = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
  });
});

describe('settings', () => {
  it('refuses a misspelt day, an unknown key, a date that is not one and a non-http link with 400, and changes nothing', async () => {
    const before = (await http(stack.httpUrl, 'GET', '/v1/settings', { token: adminJwt })).body;
    const cases = [
      { businessHours: { enabled: true, weekly: { Mon: [{ open: '09:00', close: '17:00' }] } } },
      { businessHours: { weekly: { funday: [{ open: '09:00', close: '10:00' }] } } },
      { businessHours: { holidays: ['2026-02-30'] } },
      { capacity: { live: 5, bogus: 1 } },
      { autoresponder: { helpCenterUrl: 'javascript:alert(1)' } },
      // An unknown key in an opening interval (the admin thinks it is honoured)
      { businessHours: { weekly: { mon: [{ open: '09:00', close: '17:00', timeZone: 'Europe/Paris' }] } } },
      // Texts for customers that show nothing: an empty bubble, or a send the provider refuses
      { autoresponder: { message: '   ' } },
      { autoresponder: { outOfHoursMessage: '\u200b' } },
      { reengagement: { message: '\n\t' } },
      { csat: { question: ' \u200d ' } },
    ];
    for (const body of cases) {
      const res = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: adminJwt, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
    expect((await http(stack.httpUrl, 'GET', '/v1/settings', { token: adminJwt })).body).toEqual(before);
    // The same settings spelt right are taken.
    await settings({ businessHours: { holidays: ['2028-02-29'] }, autoresponder: { helpCenterUrl: 'https://help.example.com/faq' } });
  });

  it('keeps the hand-off hold in whole minutes from 0 to a day, 15 by default, and refuses anything else with 400 naming it, changing nothing', async () => {
    // Prepare
    const get = async () => (await http(stack.httpUrl, 'GET', '/v1/settings', { token: adminJwt })).body;
    const put = (body: unknown) => http(stack.httpUrl, 'PUT', '/v1/settings', { token: adminJwt, body });
    const before = await get();
    expect(before.routing).toEqual({ handoffHoldMinutes: 15 });

    // Act: out of bounds, not whole, not a number, removed, unknown keys, and a section that is no object
    const refused = [];
    for (const routing of [{ handoffHoldMinutes: -1 }, { handoffHoldMinutes: 1441 }, { handoffHoldMinutes: 2.5 }, { handoffHoldMinutes: '30' }, { handoffHoldMinutes: null }, { handoffHoldMinutes: 30, holdMinutes: 30 }, 30]) {
      refused.push({ routing, res: await put({ routing, sla: { firstReplySeconds: 61 } }) });
    }

    // Assess: each a 400 that names the setting, and nothing saved (not even the valid section beside it)
    for (const { routing, res } of refused) {
      expect(res.status, JSON.stringify(routing)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.message, JSON.stringify(routing)).toMatch(/^routing(\.handoffHoldMinutes)?: /);
    }
    expect(refused[0]!.res.body.error.message).toMatch(/^routing\.handoffHoldMinutes: .*>=0/);
    expect(refused[1]!.res.body.error.message).toMatch(/^routing\.handoffHoldMinutes: .*<=1440/);
    expect(await get()).toEqual(before);

    // Round trip: each bound taken, returned by the save and by GET, the other settings as they were
    try {
      for (const handoffHoldMinutes of [45, 0, 1440]) {
        const saved = await put({ routing: { handoffHoldMinutes } });
        expect(saved.status, saved.text).toBe(200);
        expect(saved.body).toEqual({ ...before, routing: { handoffHoldMinutes } });
        expect(await get()).toEqual({ ...before, routing: { handoffHoldMinutes } });
      }
    } finally {
      await settings({ routing: { handoffHoldMinutes: 15 } });
    }
  });

  it('removes the help-center link and the follow-up template with null, and refuses null for a setting that must be there', async () => {
    await settings({ autoresponder: { helpCenterUrl: 'https://help.example.com/faq' }, reengagement: { whatsappTemplate: { name: 'follow_up', language: 'en_US' } } });
    const put = (body: unknown) => http(stack.httpUrl, 'PUT', '/v1/settings', { token: adminJwt, body });
    expect((await put({ autoresponder: { message: null } })).status).toBe(400);

    const cleared = await put({ autoresponder: { helpCenterUrl: null }, reengagement: { whatsappTemplate: null } });
    expect(cleared.status).toBe(200);
    const stored = (await http(stack.httpUrl, 'GET', '/v1/settings', { token: adminJwt })).body;
    expect(stored.autoresponder).not.toHaveProperty('helpCenterUrl');
    expect(stored.reengagement).not.toHaveProperty('whatsappTemplate');
    expect(stored.autoresponder.message).toBeTruthy();
  });
});
