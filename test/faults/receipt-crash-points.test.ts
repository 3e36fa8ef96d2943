/**
 * The receipts and echoes path crash point by crash point, as test/faults/crash-points.test.ts
 * does a customer's message: the inbound consumer dies right after one of its writes (the write
 * landed, the rest of the attempt did not run) and the queue hands the event back at once. The
 * end state is the one an uninterrupted run leaves.
 *
 * - An echo of the team's own message (ingestEcho): a Messenger Page-inbox reply and a WhatsApp
 *   Business-app one, some with a receipt that came first and was held (EARLY#…). After the
 *   provider id's claim, the message, the held receipt's write, the conversation update (open, or
 *   resolved: the read-modify-write), the fan-out, the timer. The echo stored once as the team's
 *   sent message, the held status applied, nothing sent, every idempotency record naming a stored
 *   message, the agents told (the last frame of the message at its final status, the consoles'
 *   last view of the conversation as it is), the conversation's fields as one run leaves them.
 * - Status callbacks ingestStatus takes apart from outbound-crash-points.test.ts: Messenger
 *   delivery and read watermarks (every reply before a time), Instagram's seen (the reply named
 *   and those before it), WhatsApp's `failed` without our reference (found by its wamid), and a
 *   receipt for a reply whose send is still in flight (held, then applied by the send). After each
 *   status write, the hold and the fan-out: every reply at its status, its last frame saying so.
 *   A read watermark dying after it is kept on the customer's handle: an echo of a message sent
 *   before it, coming after it, is stored read.
 * - An Instagram seen held for a Page-inbox message (its mid unknown yet), covering a reply of ours
 *   before it: the echo dying after applying it to the echo or to that reply. Both read, told so.
 * - An agent's reply POST that died after its writes, sent again: the consoles get the
 *   conversation as the reply left it.
 * - A WhatsApp receipt of a Business-app message to someone who had not written yet (held under
 *   its wamid with no conversation to look in), then their first message, then the echo: dying
 *   before or after the hold, or the echo after its writes. The echo at the furthest status held.
 *
 * Cases marked "found" failed before their fixes in src/domain/inbound.ts and src/domain/outbound.ts.
 * Faults are keyed to one path and one customer handle (or conversation for a reply), so the
 * other paths and cases never hit them (test/faults/crash-harness.ts). One stack,
 * cases in sequence.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { getAgent } from '../../src/store/agents';
import { keys } from '../../src/store/keys';
import { getConversation, type ConversationRecord } from '../../src/store/conversations';
import { earlyStatuses, getMessage, STATUS_RANK } from '../../src/store/messages';
import type { Message, MessageStatus, ProviderChannel } from '../../src/domain/types';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, WsClient, type Frame } from '../support/clients';
import { newHandle, postWebhook, statusWebhook, textWebhook } from '../e2e/channels-support';
import { fixture } from '../fixtures/sign';
import type { Crash } from './crash-harness';
import { allMessages, scanAll } from './support';

type Args = unknown[];

const { crash, harness } = await vi.hoisted(async () => {
  const harness = await import('./crash-harness');
  return { harness, crash: harness.crashPoints() };
});

vi.mock('../../src/domain/inbound', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/domain/inbound')>();
  return {
    ...real,
    ingestMessage: (...args: Parameters<typeof real.ingestMessage>) => crash.during(args[0].echo ? 'echo' : 'message', args[0].handle, () => real.ingestMessage(...args)),
    ingestStatus: (...args: Parameters<typeof real.ingestStatus>) => crash.during('status', args[0].handle, () => real.ingestStatus(...args)),
  };
});
vi.mock('../../src/domain/outbound', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/domain/outbound')>();
  return { ...real, postAgentMessage: (...args: Parameters<typeof real.postAgentMessage>) => crash.during('reply', args[0], () => real.postAgentMessage(...args)) };
});
vi.mock('../../functions/inbound/handler', async (importOriginal) => harness.redeliveringHandler(await importOriginal<typeof import('../../functions/inbound/handler')>(), crash, 'inbound'));
vi.mock('../../src/store/messages', async (importOriginal) =>
  harness.wrapModule(await importOriginal<typeof import('../../src/store/messages')>(), crash, ['claimDedup', 'putMessage', 'updateMessageStatus', 'holdEarlyStatus', 'markStatusHeld']),
);
vi.mock('../../src/store/contacts', async (importOriginal) => harness.wrapModule(await importOriginal<typeof import('../../src/store/contacts')>(), crash, ['advanceReadUpTo']));
vi.mock('../../src/store/conversations', async (importOriginal) =>
  harness.wrapModule(await importOriginal<typeof import('../../src/store/conversations')>(), crash, ['applyMessageToOpenConversation', 'updateConversation']),
);
vi.mock('../../src/domain/fanout', async (importOriginal) => harness.wrapModule(await importOriginal<typeof import('../../src/domain/fanout')>(), crash, ['publish']));
vi.mock('../../src/domain/timers', async (importOriginal) => harness.wrapModule(await importOriginal<typeof import('../../src/domain/timers')>(), crash, ['setTimer']));

const AGENT = 'receipt-crash-agent';
/** Our Meta app (echoes of its sends are ours) and the Page inbox's (echoes of its sends are the team's). */
const OUR_APP_ID = '1517776481860111';
const PAGE_INBOX_APP = 263902037430900;
let stack: LocalStack;
let token: string;
let console_: WsClient;

beforeAll(async () => {
  stack = await startTestStack({ env: { MESSENGER_APP_ID: OUR_APP_ID, INSTAGRAM_APP_ID: OUR_APP_ID } });
  const inbound = stack.aws.sqs.getQueue('conversa-inbound.fifo');
  crash.retry.inbound = (receiptHandle) => inbound.changeVisibility(receiptHandle, 0);
  token = await agentToken(stack.httpUrl, AGENT, 'admin', 'Crash');
  expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${AGENT}`, { token, body: { liveCapacity: 50, asyncCapacity: 200 } })).status).toBe(200);
  // No greeting: the provider's outbox and the conversation hold the case's messages alone.
  const settings = await http(stack.httpUrl, 'GET', '/v1/settings', { token });
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token, body: { ...settings.body, autoresponder: { ...settings.body.autoresponder, enabled: false } } })).status).toBe(200);
  console_ = await WsClient.connect(stack.wsUrl, token);
  await eventually(async () => (await getAgent(AGENT))?.status === 'online');
});

afterAll(async () => {
  await console_?.close();
  await stack?.stop();
});

interface Customer {
  channel: ProviderChannel;
  handle: string;
  conversationId: string;
}

/** A customer who wrote: the conversation, assigned to the agent. */
async function newCustomer(channel: ProviderChannel, handle = newHandle(channel)): Promise<Customer> {
  const webhook = textWebhook(channel, handle, 'Hello, anyone there?');
  expect((await postWebhook(stack, channel, webhook.body)).status).toBe(200);
  const frame = await console_.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, 'the customer’s message');
  return { channel, handle, conversationId: frame.conversationId };
}

const unique = (what: string) => `${what} ${crypto.randomUUID()}`;

const queuesIdle = () =>
  ['conversa-inbound.fifo', 'conversa-outbound.fifo'].every((name) => Object.values(stack.aws.sqs.getQueue(name).counts()).every((n) => n === 0));
const inboundIdle = () => Object.values(stack.aws.sqs.getQueue('conversa-inbound.fifo').counts()).every((n) => n === 0);

const postReply = (c: Customer, body: Record<string, unknown>) => http(stack.httpUrl, 'POST', `/v1/conversations/${c.conversationId}/messages`, { token, body });

/** A reply the provider took, recorded `sent` (with its provider id), once `idle` holds. */
async function sentReply(c: Customer, text: string, idle = queuesIdle): Promise<Message> {
  const response = await postReply(c, { text });
  expect(response.status).toBe(202);
  return eventually(async () => {
    const message = await getMessage(c.conversationId, response.body.message.id);
    return message?.status === 'sent' && message.providerMessageId && idle() ? message : undefined;
  }, 20_000);
}

const outboundIdle = () => Object.values(stack.aws.sqs.getQueue('conversa-outbound.fifo').counts()).every((n) => n === 0);

/** What the provider took carrying `text`. */
const accepted = (c: Customer, text: string) => stack.providers.outbox(c.channel).filter((item) => item.status < 300 && JSON.stringify(item.body).includes(text));

/** The frames that showed the message to the agents, in order. */
const framesOf = (id: string) => console_.frames.filter((f) => (f.type === 'message.created' || f.type === 'message.updated') && f.message.id === id);
const createdFrames = (id: string) => console_.frames.filter((f) => f.type === 'message.created' && f.message.id === id);

/** The conversation as the agents' consoles last saw it (a message.created carrying it, or a conversation.updated). */
function lastSeenConversation(id: string): Record<string, unknown> | undefined {
  const frames = console_.frames.filter((f: Frame) => (f.type === 'message.created' || f.type === 'conversation.updated') && f.conversation?.id === id);
  return frames.at(-1)?.conversation;
}

/** The agents were told the message at its status as stored (its last frame), never moving a status back. */
async function expectToldAsStored(message: Message): Promise<void> {
  await eventually(() => framesOf(message.id).at(-1)?.message.status === message.status, 10_000);
  const ranks = framesOf(message.id).map((f) => STATUS_RANK[f.message.status as MessageStatus]);
  expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
}

/** Every idempotency record of the conversation (provider ids, clientMessageIds) names a message stored there. */
async function expectNothingOrphaned(c: Customer): Promise<void> {
  const items = await scanAll();
  const stored = new Set(items.filter((i) => i.pk === keys.messagePartition(c.conversationId) && String(i.sk).startsWith(keys.messagePrefix)).map((i) => i.id));
  const claims = items.filter((i) => String(i.pk).startsWith('DEDUP#') && i.conversationId === c.conversationId);
  expect(claims.filter((i) => !stored.has(i.messageId)).map((i) => i.pk)).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// Echoes

type EchoChannel = 'messenger' | 'whatsapp';

/** The team's message sent from Meta's Page inbox (Messenger, Instagram), or from the WhatsApp Business app, as Meta echoes it. */
function echoWebhook(c: Customer, id: string, text: string, sentAt = Date.now()): string {
  if (c.channel === 'whatsapp') {
    const body = JSON.parse(fixture('whatsapp', 'smb-message-echoes'));
    const value = body.entry[0].changes[0].value;
    value.message_echoes = [{ from: value.metadata.display_phone_number, to: `+${c.handle}`, id, timestamp: String(Math.floor(sentAt / 1000)), type: 'text', text: { body: text } }];
    return JSON.stringify(body);
  }
  const body = JSON.parse(textWebhook(c.channel, c.handle, 'unused').body);
  body.entry[0].messaging = [{ sender: { id: 'PAGE-1' }, recipient: { id: c.handle }, timestamp: sentAt, message: { mid: id, text, is_echo: true, app_id: PAGE_INBOX_APP } }];
  return JSON.stringify(body);
}

const echoId = (channel: EchoChannel) => (channel === 'whatsapp' ? `wamid.ECHO-${crypto.randomUUID()}` : `m_ECHO-${crypto.randomUUID()}`);

/** The receipt each channel may send before its echo: Messenger's delivery names the mid, WhatsApp's read the wamid (no reference of ours). */
const HELD: Record<EchoChannel, 'delivered' | 'read'> = { messenger: 'delivered', whatsapp: 'read' };

interface EchoCase {
  title: string;
  crash: Crash;
  /** A receipt for the echo came first and was held. */
  heldReceipt?: boolean;
  /** The conversation was resolved before the echo (the read-modify-write, no reopening). */
  resolved?: boolean;
  /** The dead attempt had told the agents: message.created twice, the same id. */
  toldTwice?: boolean;
  /**
   * An agent's reply is sent before the redelivery: the conversation's activity is the reply's,
   * its first reply the one applied first.
   */
  replyMeanwhile?: { firstReply: 'echo' | 'reply' };
}

const echoCases: EchoCase[] = [
  { title: 'after the provider id’s claim, before the message is written', crash: { fn: 'claimDedup' } },
  { title: 'after the message is written, before the held receipts are read', crash: { fn: 'putMessage' }, heldReceipt: true },
  { title: 'after a held receipt is applied, before the conversation update', crash: { fn: 'updateMessageStatus' }, heldReceipt: true },
  // Found: the redelivery's update was refused as a duplicate, and the consoles never got the conversation it moved.
  { title: 'after the conversation update, before the agents are told (found: the consoles got no conversation)', crash: { fn: 'applyMessageToOpenConversation' } },
  { title: 'a resolved conversation: after its update, before the agents are told', crash: { fn: 'updateConversation' }, resolved: true },
  // Found: the redelivery applied the echo again over the reply, moving the conversation's last message back.
  {
    title: 'after the conversation update, an agent’s reply before the redelivery (found: its activity moved back)',
    crash: { fn: 'applyMessageToOpenConversation' },
    replyMeanwhile: { firstReply: 'echo' },
  },
  { title: 'after the message is written, an agent’s reply before the redelivery (found: its activity moved back)', crash: { fn: 'putMessage' }, replyMeanwhile: { firstReply: 'reply' } },
  { title: 'after the agents are told, before the timers', crash: { fn: 'publish' }, toldTwice: true },
  { title: 'after the re-engagement timer is armed', crash: { fn: 'setTimer', when: (args) => args[0] === 'reengage' }, toldTwice: true },
];

describe('an echo of the team’s message dying after each write, the event redelivered', { timeout: 30_000 }, () => {
  for (const channel of ['messenger', 'whatsapp'] as const) {
    for (const c of echoCases) {
      it(`${channel}: ${c.title}`, async () => {
        // Prepare
        const customer = await newCustomer(channel);
        if (c.resolved) {
          expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${customer.conversationId}/resolve`, { token })).status).toBe(200);
          await eventually(async () => (await getConversation(customer.conversationId, true))?.status === 'resolved' && queuesIdle());
        }
        const id = echoId(channel);
        const text = unique('sent from Meta’s app');
        if (c.heldReceipt) {
          expect((await postWebhook(stack, channel, statusWebhook(channel, customer.handle, HELD[channel], id))).status).toBe(200);
          await eventually(async () => (await earlyStatuses(`${channel}#${id}`)).some((s) => s.status === HELD[channel]) && queuesIdle());
        }
        const before = (await getConversation(customer.conversationId, true))!;
        crash.arm('echo', customer.handle, c.crash);

        // Act
        if (c.replyMeanwhile) crash.held.inbound = [];
        expect((await postWebhook(stack, channel, echoWebhook(customer, id, text))).status).toBe(200);
        let reply: Message | undefined;
        if (c.replyMeanwhile) {
          const held = await eventually(() => (crash.held.inbound!.length > 0 ? crash.held.inbound : undefined), 20_000);
          crash.held.inbound = undefined;
          reply = await sentReply(customer, unique('from Conversa meanwhile'), outboundIdle);
          for (const receiptHandle of held) crash.retry.inbound!(receiptHandle);
        }

        // Assess: the team's message once, nothing sent, its held receipt applied, the agents told
        const stored = await eventually(async () => {
          if (!crash.fired() || !queuesIdle()) return undefined;
          const found = (await allMessages(customer.conversationId)).filter((m) => m.providerMessageId === id);
          return found.length > 0 ? found : undefined;
        }, 20_000);
        expect(stored.map((m) => ({ text: m.text, direction: m.direction, status: m.status, sender: m.sender.id }))).toEqual([
          { text, direction: 'outbound', status: c.heldReceipt ? HELD[channel] : 'sent', sender: 'external' },
        ]);
        const echo = stored[0]!;
        expect(accepted(customer, text)).toEqual([]);
        expect(createdFrames(echo.id)).toHaveLength(c.toldTwice ? 2 : 1);
        await expectToldAsStored(echo);

        const after = await getConversation(customer.conversationId, true);
        if (reply) {
          // The last message is the reply's, whichever came back last; the first reply the one applied first.
          const firstReplyAt = c.replyMeanwhile!.firstReply === 'echo' ? echo.createdAt : reply.createdAt;
          expect(after).toMatchObject({ status: 'open', unreadCount: before.unreadCount, lastOutboundId: reply.id, lastMessageAt: reply.createdAt, firstReplyAt });
          expect(lastSeenConversation(customer.conversationId)).toMatchObject({ lastMessageAt: reply.createdAt, firstReplyAt });
          await expectNothingOrphaned(customer);
          return;
        }
        // The conversation as one run leaves it, and as the consoles last saw it.
        // A follow-up on a resolved conversation answers nothing waiting: no first reply.
        const moved = c.resolved ? { followedUpAt: echo.createdAt } : { firstReplyAt: echo.createdAt };
        expect(after).toMatchObject({ status: before.status, unreadCount: before.unreadCount, lastOutboundId: echo.id, lastMessageAt: echo.createdAt, ...moved });
        if (c.resolved) expect(after!.firstReplyAt).toBe(before.firstReplyAt);
        expect(lastSeenConversation(customer.conversationId)).toMatchObject({ status: before.status, lastMessageAt: echo.createdAt, ...(c.resolved ? {} : { firstReplyAt: echo.createdAt }) });
        await expectNothingOrphaned(customer);
        if (!c.resolved) expect(stack.aws.scheduler.list().some((s) => s.name === `reengage-${customer.conversationId}`)).toBe(true);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Status callbacks

interface StatusCase {
  title: string;
  channel: ProviderChannel;
  /** How many replies are sent before the callback (the last one is the one a callback names). */
  replies: number;
  /** The callback for the replies sent, as the provider sends it. */
  webhook: (c: Customer, replies: Message[]) => string;
  /** The crash, given the replies (to name the one whose write it follows). */
  crash: (replies: Message[]) => Crash;
  /** Each reply's status in the end. */
  expected: MessageStatus[];
}

const writeOf = (message: Message, status: MessageStatus): Crash => ({ fn: 'updateMessageStatus', when: (args: Args) => args[1] === message.id && args[2] === status });

const statusCases: StatusCase[] = [
  // Found: a redelivered watermark skipped the replies the dead attempt had moved, and told nobody of them.
  {
    title: 'Messenger delivery watermark: after the first reply’s write, before the second’s (found: the first was never told)',
    channel: 'messenger',
    replies: 2,
    webhook: (c) => statusWebhook('messenger', c.handle, 'delivered', undefined),
    crash: ([first]) => writeOf(first!, 'delivered'),
    expected: ['delivered', 'delivered'],
  },
  {
    title: 'Messenger delivery watermark: after the last reply’s write, before the agents are told (found: nobody was told)',
    channel: 'messenger',
    replies: 2,
    webhook: (c) => statusWebhook('messenger', c.handle, 'delivered', undefined),
    crash: ([, second]) => writeOf(second!, 'delivered'),
    expected: ['delivered', 'delivered'],
  },
  {
    title: 'Messenger read watermark: after the first reply’s write, before the second’s',
    channel: 'messenger',
    replies: 2,
    webhook: (c) => statusWebhook('messenger', c.handle, 'read', undefined),
    crash: ([first]) => writeOf(first!, 'read'),
    expected: ['read', 'read'],
  },
  {
    title: 'Messenger read watermark: after the agents are told',
    channel: 'messenger',
    replies: 2,
    webhook: (c) => statusWebhook('messenger', c.handle, 'read', undefined),
    crash: () => ({ fn: 'publish' }),
    expected: ['read', 'read'],
  },
  {
    title: 'Messenger delivery naming the mid: after its write, before the watermark beside it',
    channel: 'messenger',
    replies: 1,
    webhook: (c, [reply]) => statusWebhook('messenger', c.handle, 'delivered', reply!.providerMessageId),
    crash: ([reply]) => writeOf(reply!, 'delivered'),
    expected: ['delivered'],
  },
  {
    title: 'Instagram seen: after the named reply’s write, before the earlier ones',
    channel: 'instagram',
    replies: 2,
    webhook: (c, replies) => statusWebhook('instagram', c.handle, 'read', replies.at(-1)!.providerMessageId),
    crash: (replies) => writeOf(replies.at(-1)!, 'read'),
    expected: ['read', 'read'],
  },
  {
    title: 'Instagram seen: after an earlier reply’s write, before the agents are told (found: that one was never told)',
    channel: 'instagram',
    replies: 2,
    webhook: (c, replies) => statusWebhook('instagram', c.handle, 'read', replies.at(-1)!.providerMessageId),
    crash: ([first]) => writeOf(first!, 'read'),
    expected: ['read', 'read'],
  },
  {
    title: 'WhatsApp failed without our reference (found by its wamid): after its write, before the agents are told',
    channel: 'whatsapp',
    replies: 1,
    webhook: (c, [reply]) => statusWebhook('whatsapp', c.handle, 'failed', reply!.providerMessageId),
    crash: ([reply]) => writeOf(reply!, 'failed'),
    expected: ['failed'],
  },
  {
    title: 'WhatsApp failed without our reference: after the agents are told',
    channel: 'whatsapp',
    replies: 1,
    webhook: (c, [reply]) => statusWebhook('whatsapp', c.handle, 'failed', reply!.providerMessageId),
    crash: () => ({ fn: 'publish' }),
    expected: ['failed'],
  },
];

describe('a status callback dying after each write, the event redelivered', { timeout: 30_000 }, () => {
  for (const c of statusCases) {
    it(c.title, async () => {
      // Prepare
      const customer = await newCustomer(c.channel);
      const replies: Message[] = [];
      for (let i = 0; i < c.replies; i++) replies.push(await sentReply(customer, unique(`reply ${i + 1}`)));
      crash.arm('status', customer.handle, c.crash(replies));

      // Act
      expect((await postWebhook(stack, c.channel, c.webhook(customer, replies))).status).toBe(200);

      // Assess
      await eventually(() => crash.fired() && queuesIdle(), 20_000);
      const stored = await Promise.all(replies.map((r) => getMessage(customer.conversationId, r.id)));
      expect(stored.map((m) => m?.status)).toEqual(c.expected);
      for (const message of stored) await expectToldAsStored(message!);
      await expectNothingOrphaned(customer);
    });
  }
});

describe('a Messenger read watermark dying after it is kept on the customer’s handle, the echo of an earlier Page-inbox message after it', { timeout: 30_000 }, () => {
  it('the reply before it and the echo sent before it are read', async () => {
    // Prepare: a reply of ours the watermark covers, and a message from the Page inbox whose echo is late
    const customer = await newCustomer('messenger');
    const reply = await sentReply(customer, unique('reply'));
    const readAt = Date.now();
    const id = echoId('messenger');
    const text = unique('sent from the Page inbox before the read');
    crash.arm('status', customer.handle, { fn: 'advanceReadUpTo' });

    // Act: the watermark (its attempt dies after keeping it, the queue hands it back), then the echo
    expect((await postWebhook(stack, 'messenger', statusWebhook('messenger', customer.handle, 'read', undefined, readAt))).status).toBe(200);
    await eventually(() => crash.fired() && inboundIdle(), 20_000);
    expect((await postWebhook(stack, 'messenger', echoWebhook(customer, id, text, readAt - 1000))).status).toBe(200);

    // Assess
    const echo = await eventually(async () => (queuesIdle() ? (await allMessages(customer.conversationId)).find((m) => m.providerMessageId === id) : undefined), 20_000);
    expect(echo).toMatchObject({ text, status: 'read', sender: { id: 'external' } });
    const replied = (await getMessage(customer.conversationId, reply.id))!;
    expect(replied.status).toBe('read');
    await expectToldAsStored(echo);
    await expectToldAsStored(replied);
  });
});

interface HeldCase {
  title: string;
  channel: ProviderChannel;
  status: 'delivered' | 'read' | 'failed';
  /** The callback for the send whose answer the provider still holds. */
  webhook: (c: Customer, providerMessageId: string) => string;
  /** The write after which the status consumer dies (the hold, unless named). */
  crash?: Crash;
}

const heldCases: HeldCase[] = [
  {
    title: 'Messenger delivery naming a mid no send recorded yet: after it is held, before it looks for the reply again',
    channel: 'messenger',
    status: 'delivered',
    webhook: (c, mid) => statusWebhook('messenger', c.handle, 'delivered', mid),
  },
  {
    title: 'Instagram seen of a reply whose send is in flight: after it is held, before it looks for the reply again',
    channel: 'instagram',
    status: 'read',
    webhook: (c, mid) => statusWebhook('instagram', c.handle, 'read', mid),
  },
  // Found: held under its wamid, which only an echo read (WhatsApp's sends look up nothing held:
  // their other receipts carry our reference), the reply stayed `sent`.
  {
    title: 'WhatsApp failed without our reference for a send in flight: after it is held, before the send is marked (found: never applied)',
    channel: 'whatsapp',
    status: 'failed',
    webhook: (c, wamid) => statusWebhook('whatsapp', c.handle, 'failed', wamid),
  },
  {
    title: 'WhatsApp failed without our reference for a send in flight: after the send is marked, before it looks again',
    channel: 'whatsapp',
    status: 'failed',
    webhook: (c, wamid) => statusWebhook('whatsapp', c.handle, 'failed', wamid),
    crash: { fn: 'markStatusHeld' },
  },
];

describe('a receipt for a send in flight dying after it is held (or the send marked), the event redelivered', { timeout: 30_000 }, () => {
  for (const c of heldCases) {
    it(c.title, async () => {
      // Prepare: the provider holds its answer until the receipt, posted meanwhile, was held and the attempt died
      const customer = await newCustomer(c.channel);
      const text = unique('reply in flight');
      crash.arm('status', customer.handle, c.crash ?? { fn: 'holdEarlyStatus' });
      stack.providers.holdNext(c.channel, async (_body, answer) => {
        const mid = c.channel === 'whatsapp' ? (answer as { messages: { id: string }[] }).messages[0]!.id : (answer as { message_id: string }).message_id;
        expect((await postWebhook(stack, c.channel, c.webhook(customer, mid))).status).toBe(200);
        await eventually(async () => crash.fired() && inboundIdle() && (await earlyStatuses(`${c.channel}#${mid}`)).some((s) => s.status === c.status), 20_000);
      });

      // Act
      const response = await postReply(customer, { text });
      expect(response.status).toBe(202);

      // Assess: the send applied what was held
      const reply = await eventually(async () => {
        const message = await getMessage(customer.conversationId, response.body.message.id);
        return crash.fired() && queuesIdle() && message && message.status !== 'queued' ? message : undefined;
      }, 20_000);
      expect(reply.status).toBe(c.status);
      expect(accepted(customer, text)).toHaveLength(1);
      await expectToldAsStored(reply);
      await expectNothingOrphaned(customer);
    });
  }
});

interface HeldSeenEchoCase {
  title: string;
  /** Given the earlier reply the seen covers. */
  crash: (earlier: Message) => Crash;
}

const heldSeenEchoCases: HeldSeenEchoCase[] = [
  {
    title: 'after the held seen is applied to the echo, before the earlier reply: the redelivery marks that one read',
    crash: (earlier) => ({ fn: 'updateMessageStatus', when: (args) => args[1] !== earlier.id && args[2] === 'read' }),
  },
  {
    title: 'after the earlier reply is marked read, before the agents are told: the redelivery tells them',
    crash: (earlier) => ({ fn: 'updateMessageStatus', when: (args) => args[1] === earlier.id && args[2] === 'read' }),
  },
];

describe('an Instagram seen held for a Page-inbox message, covering an earlier reply: its echo dying as it applies it, the event redelivered', { timeout: 30_000 }, () => {
  for (const c of heldSeenEchoCases) {
    it(c.title, async () => {
      // Prepare: a reply of ours; the seen naming a Page-inbox message after it comes before that message's echo, and is held
      const customer = await newCustomer('instagram');
      const earlier = await sentReply(customer, unique('earlier reply'));
      const id = `m_ECHO-${crypto.randomUUID()}`;
      const text = unique('sent from the Page inbox, seen before its echo');
      expect((await postWebhook(stack, 'instagram', statusWebhook('instagram', customer.handle, 'read', id))).status).toBe(200);
      await eventually(async () => (await earlyStatuses(`instagram#${id}`)).some((s) => s.status === 'read') && queuesIdle());
      crash.arm('echo', customer.handle, c.crash(earlier));

      // Act
      expect((await postWebhook(stack, 'instagram', echoWebhook(customer, id, text))).status).toBe(200);

      // Assess: the echo once and read, the earlier reply read, the agents told both at read
      const stored = await eventually(async () => {
        if (!crash.fired() || !queuesIdle()) return undefined;
        const found = (await allMessages(customer.conversationId)).filter((m) => m.providerMessageId === id);
        return found.length > 0 ? found : undefined;
      }, 20_000);
      expect(stored.map((m) => ({ text: m.text, status: m.status, sender: m.sender.id }))).toEqual([{ text, status: 'read', sender: 'external' }]);
      const replied = (await getMessage(customer.conversationId, earlier.id))!;
      expect(replied.status).toBe('read');
      await expectToldAsStored(stored[0]!);
      await expectToldAsStored(replied);
      await expectNothingOrphaned(customer);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A reply POST sent again

describe('an agent’s reply POST dying after its writes, sent again with the same clientMessageId', { timeout: 30_000 }, () => {
  // Found: the retry showed the reply but not the conversation it moved (its first reply, its last message).
  it('after both writes, before the agents are told: the consoles get the conversation as the reply left it', async () => {
    // Prepare
    const customer = await newCustomer('whatsapp');
    const body = { text: unique('reply'), clientMessageId: crypto.randomUUID() };
    crash.arm('reply', customer.conversationId, { fn: 'publish', before: true });

    // Act
    const first = await postReply(customer, body);
    const second = await postReply(customer, body);

    // Assess
    expect(crash.fired()).toBe(true);
    expect([first.status, second.status]).toEqual([500, 202]);
    const reply = await eventually(async () => {
      const message = await getMessage(customer.conversationId, second.body.message.id);
      return message?.status === 'sent' && queuesIdle() ? message : undefined;
    }, 20_000);
    expect(createdFrames(reply.id)).toHaveLength(1);
    const after = (await getConversation(customer.conversationId, true)) as ConversationRecord;
    expect(after).toMatchObject({ lastOutboundId: reply.id, lastMessageAt: reply.createdAt, firstReplyAt: reply.createdAt });
    expect(lastSeenConversation(customer.conversationId)).toMatchObject({ lastMessageAt: reply.createdAt, firstReplyAt: reply.createdAt });
    await expectToldAsStored(reply);
  });

  // Found: a note is never queued, and the retry returned it without showing it to anyone.
  it('a private note, after both writes, before the agents are told: the consoles are shown the note', async () => {
    // Prepare
    const customer = await newCustomer('whatsapp');
    const body = { text: unique('note'), clientMessageId: crypto.randomUUID(), private: true };
    crash.arm('reply', customer.conversationId, { fn: 'publish', before: true });

    // Act
    const first = await postReply(customer, body);
    const second = await postReply(customer, body);

    // Assess
    expect(crash.fired()).toBe(true);
    expect([first.status, second.status]).toEqual([500, 202]);
    const note = (await getMessage(customer.conversationId, second.body.message.id))!;
    expect(note).toMatchObject({ private: true, status: 'sent', text: body.text });
    expect((await allMessages(customer.conversationId)).filter((m) => m.text === body.text)).toHaveLength(1);
    await console_.waitFor((f) => f.type === 'message.created' && f.message.id === note.id, 10_000, 'the note');
    expect(createdFrames(note.id)).toHaveLength(1);
    expect(accepted(customer, body.text)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// A Business-app message to someone who had not written yet

interface FirstContactCase {
  title: string;
  /** The receipts, in the order they come, before the customer's first message. */
  receipts: ('delivered' | 'read')[];
  /** The receipt's attempt (the last receipt's) or the echo's dies here, and the event comes back. */
  crash?: { path: 'status' | 'echo'; at: Crash };
  expected: MessageStatus;
}

const firstContactCases: FirstContactCase[] = [
  // Found: a receipt for a customer with no conversation held nothing, and the echo stayed sent.
  { title: 'a read receipt, then the customer’s first message, then the echo: the echo is read (found: it stayed sent)', receipts: ['read'], expected: 'read' },
  { title: 'delivered, then read, then the customer’s first message, then the echo: the furthest applies', receipts: ['delivered', 'read'], expected: 'read' },
  { title: 'the receipt dying after it is held, before the customer’s first message', receipts: ['read'], crash: { path: 'status', at: { fn: 'holdEarlyStatus' } }, expected: 'read' },
  { title: 'the receipt dying before it is held: the redelivery holds it', receipts: ['delivered'], crash: { path: 'status', at: { fn: 'holdEarlyStatus', before: true } }, expected: 'delivered' },
  { title: 'the echo dying after it is written, before the held receipt is read', receipts: ['read'], crash: { path: 'echo', at: { fn: 'putMessage' } }, expected: 'read' },
  { title: 'the echo dying after the held receipt is applied, before the conversation update', receipts: ['delivered', 'read'], crash: { path: 'echo', at: { fn: 'updateMessageStatus' } }, expected: 'read' },
];

describe('the receipts of a Business-app message to someone who had not written, before their first message and its echo', { timeout: 30_000 }, () => {
  for (const c of firstContactCases) {
    it(c.title, async () => {
      // Prepare: the team wrote from the phone to someone who never wrote to us; its receipts come first
      const handle = newHandle('whatsapp');
      const id = echoId('whatsapp');
      const text = unique('first words from the phone');
      if (c.crash) crash.arm(c.crash.path, handle, c.crash.at);
      for (const status of c.receipts) expect((await postWebhook(stack, 'whatsapp', statusWebhook('whatsapp', handle, status, id))).status).toBe(200);
      // Each held once, however often its attempt ran.
      await eventually(async () => inboundIdle() && (await earlyStatuses(`whatsapp#${id}`)).length === c.receipts.length, 20_000);
      if (c.crash?.path === 'status') expect(crash.fired()).toBe(true);
      const customer = await newCustomer('whatsapp', handle);

      // Act: the echo comes after the customer's first message
      expect((await postWebhook(stack, 'whatsapp', echoWebhook(customer, id, text))).status).toBe(200);

      // Assess: the echo once, at the furthest status held, the agents told so
      const stored = await eventually(async () => {
        if ((c.crash && !crash.fired()) || !queuesIdle()) return undefined;
        const found = (await allMessages(customer.conversationId)).filter((m) => m.providerMessageId === id);
        return found.length > 0 ? found : undefined;
      }, 20_000);
      expect(stored.map((m) => ({ text: m.text, direction: m.direction, status: m.status, sender: m.sender.id }))).toEqual([
        { text, direction: 'outbound', status: c.expected, sender: 'external' },
      ]);
      expect((await earlyStatuses(`whatsapp#${id}`)).map((s) => s.status)).toEqual(c.receipts);
      await expectToldAsStored(stored[0]!);
      expect(accepted(customer, text)).toEqual([]);
      await expectNothingOrphaned(customer);
    });
  }
});
