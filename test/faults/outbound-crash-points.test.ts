/**
 * The outbound path crash point by crash point, as test/faults/crash-points.test.ts does the
 * customer's side: an agent's reply POST, the outbound consumer that sends it, a provider's status
 * callback and an echo of the team's send from outside Conversa, each dying right after one of its
 * writes (the write landed, the rest did not run; with `before`, right before the call). The API
 * client sends the same POST again (same clientMessageId); the queues hand the job or the event
 * back at once. The end state is the one an uninterrupted run leaves: the reply (or echo) stored
 * once; sent to the provider once (each part of a reply sent in parts), except where the crash
 * falls between the provider taking the send and our `sent` write, which README.md (Channels)
 * documents as sent again unless WhatsApp's `sent` receipt came first; its status the furthest
 * reported, never moved back; its provider id recorded, and every part's claimed where status
 * callbacks find a reply by it; the agents told (the status's last frame as stored); every
 * idempotency record naming a stored message; the reply's timers armed.
 *
 * The writes, in order:
 * - reply POST (postAgentMessage): the clientMessageId claim; the message and the conversation
 *   update (side by side: `lost` drops the other one); message.created; the outbound job;
 * - outbound job (deliverOutbound): the provider's send; the `sent` (or `failed`) write with every
 *   part's provider id, or the ids on a reply a receipt overtook; each provider id's claim (not
 *   WhatsApp, whose statuses bring our reference); the held early statuses (a held Instagram seen:
 *   then the earlier replies it covers, and their message.updated); message.updated; the timers.
 *   A redelivered job whose reply is past `queued` sends nothing: it claims the ids the reply
 *   records (unless claimed) and applies what was held for them;
 * - status callback (ingestStatus): a hold under EARLY#… when no send recorded its id yet; the
 *   status write; message.updated;
 * - echo (ingestEcho): the provider id's claim; the message; the held receipts; the conversation
 *   update; message.created; the timers.
 *
 * Faults are keyed to one path and one conversation (reply, job) or customer handle (status,
 * echo), so the other paths and cases never hit them (test/faults/crash-harness.ts). One stack,
 * cases in sequence.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LocalStack } from '../../local/stack';
import type { OutboxItem } from '../../local/providers';
import { getAgent } from '../../src/store/agents';
import { keys } from '../../src/store/keys';
import { getConversation } from '../../src/store/conversations';
import { earlyStatuses, getDedup, getMessage, STATUS_RANK } from '../../src/store/messages';
import type { Message, MessageStatus } from '../../src/domain/types';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, WsClient, type Frame } from '../support/clients';
import { newHandle, postWebhook, statusWebhook, textWebhook } from '../e2e/channels-support';
import { fixture } from '../fixtures/sign';
import type { Crash } from './crash-harness';
import { allMessages, scanAll } from './support';

type Args = unknown[];
type Path = 'reply' | 'deliver' | 'status' | 'echo';

const { crash, harness } = await vi.hoisted(async () => {
  const harness = await import('./crash-harness');
  return { harness, crash: harness.crashPoints() };
});

vi.mock('../../src/domain/outbound', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/domain/outbound')>();
  return {
    ...real,
    postAgentMessage: (...args: Parameters<typeof real.postAgentMessage>) => crash.during('reply', args[0], () => real.postAgentMessage(...args)),
    deliverOutbound: (...args: Parameters<typeof real.deliverOutbound>) => crash.during('deliver', args[0].conversationId, () => real.deliverOutbound(...args)),
  };
});
vi.mock('../../src/domain/inbound', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/domain/inbound')>();
  return {
    ...real,
    ingestMessage: (...args: Parameters<typeof real.ingestMessage>) => crash.during(args[0].echo ? 'echo' : 'message', args[0].handle, () => real.ingestMessage(...args)),
    ingestStatus: (...args: Parameters<typeof real.ingestStatus>) => crash.during('status', args[0].handle, () => real.ingestStatus(...args)),
  };
});
vi.mock('../../functions/inbound/handler', async (importOriginal) => harness.redeliveringHandler(await importOriginal<typeof import('../../functions/inbound/handler')>(), crash, 'inbound'));
vi.mock('../../functions/outbound/handler', async (importOriginal) => harness.redeliveringHandler(await importOriginal<typeof import('../../functions/outbound/handler')>(), crash, 'outbound'));
vi.mock('../../src/store/messages', async (importOriginal) =>
  harness.wrapModule(await importOriginal<typeof import('../../src/store/messages')>(), crash, ['claimDedup', 'putMessage', 'updateMessageStatus', 'settleOvertakenSend', 'holdEarlyStatus']),
);
vi.mock('../../src/store/conversations', async (importOriginal) =>
  harness.wrapModule(await importOriginal<typeof import('../../src/store/conversations')>(), crash, ['applyMessageToOpenConversation', 'updateConversation']),
);
vi.mock('../../src/domain/fanout', async (importOriginal) => harness.wrapModule(await importOriginal<typeof import('../../src/domain/fanout')>(), crash, ['publish']));
vi.mock('../../src/aws/queues', async (importOriginal) => harness.wrapModule(await importOriginal<typeof import('../../src/aws/queues')>(), crash, ['enqueueOutbound']));
vi.mock('../../src/domain/timers', async (importOriginal) => harness.wrapModule(await importOriginal<typeof import('../../src/domain/timers')>(), crash, ['setTimer']));
/** The provider's send, as the adapter makes it: `send` dies after the provider took it. */
vi.mock('../../src/channels/registry', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/channels/registry')>();
  return {
    ...real,
    getAdapter: (channel: Parameters<typeof real.getAdapter>[0]) => {
      const adapter = real.getAdapter(channel);
      return { ...adapter, send: crash.wrap('send', adapter.send.bind(adapter)) };
    },
  };
});

const AGENT = 'outbound-crash-agent';
let stack: LocalStack;
let token: string;
let console_: WsClient;

beforeAll(async () => {
  stack = await startTestStack();
  const inbound = stack.aws.sqs.getQueue('conversa-inbound.fifo');
  const outbound = stack.aws.sqs.getQueue('conversa-outbound.fifo');
  crash.retry.inbound = (receiptHandle) => inbound.changeVisibility(receiptHandle, 0);
  crash.retry.outbound = (receiptHandle) => outbound.changeVisibility(receiptHandle, 0);
  token = await agentToken(stack.httpUrl, AGENT, 'admin', 'Crash');
  expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${AGENT}`, { token, body: { liveCapacity: 50, asyncCapacity: 200 } })).status).toBe(200);
  // No greeting: the provider's outbox and the consumer hold the case's reply alone.
  const settings = await http(stack.httpUrl, 'GET', '/v1/settings', { token });
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token, body: { ...settings.body, autoresponder: { ...settings.body.autoresponder, enabled: false } } })).status).toBe(200);
  console_ = await WsClient.connect(stack.wsUrl, token);
  await eventually(async () => (await getAgent(AGENT))?.status === 'online');
});

afterAll(async () => {
  await console_?.close();
  await stack?.stop();
});

type Channel = 'whatsapp' | 'sms' | 'messenger' | 'instagram';

interface Customer {
  channel: Channel;
  handle: string;
  conversationId: string;
}

/** A customer who wrote: the conversation the agent answers, assigned to the agent. */
async function newCustomer(channel: Channel): Promise<Customer> {
  const handle = newHandle(channel);
  const webhook = textWebhook(channel, handle, 'Hello, anyone there?');
  expect((await postWebhook(stack, channel, webhook.body)).status).toBe(200);
  const frame = await console_.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, 'the customer’s message');
  return { channel, handle, conversationId: frame.conversationId };
}

/** Arms the crash for `path`, keyed to the customer's conversation (reply, job) or handle (status, echo). */
function arm(c: Customer, path: Path, spec: Crash): void {
  crash.arm(path, path === 'reply' || path === 'deliver' ? c.conversationId : c.handle, spec);
}

const fired = () => crash.fired();

const queuesIdle = () =>
  ['conversa-inbound.fifo', 'conversa-outbound.fifo'].every((name) => Object.values(stack.aws.sqs.getQueue(name).counts()).every((n) => n === 0));

const postReply = (c: Customer, body: Record<string, unknown>) => http(stack.httpUrl, 'POST', `/v1/conversations/${c.conversationId}/messages`, { token, body });

/** What the provider took (answered 2xx) carrying `text`. */
const accepted = (c: Customer, text: string): OutboxItem[] =>
  stack.providers.outbox(c.channel).filter((item) => item.status < 300 && JSON.stringify(item.body).includes(text));

const providerIdOf = (c: Customer, item: OutboxItem): string => {
  if (c.channel === 'sms') return (item.answer as { sid: string }).sid;
  if (c.channel === 'whatsapp') return (item.answer as { messages: { id: string }[] }).messages[0]!.id;
  return (item.answer as { message_id: string }).message_id;
};

/** Status callbacks find a reply by the provider's id: each part's is claimed for it. */
const statusesById = (c: Customer) => c.channel !== 'whatsapp';

/** The most each provider takes in one message (README Channels), for a reply that goes in two parts. */
const TEXT_LIMIT: Record<Channel, number> = { whatsapp: 4096, sms: 1600, messenger: 2000, instagram: 1000 };

/** A reply in two paragraphs that the provider takes as two messages, and what tells each part apart. */
function twoParts(c: Customer, tag: string): { text: string; parts: string[] } {
  const parts = [`${tag} one`, `${tag} two`];
  const filler = 'word '.repeat(Math.floor((TEXT_LIMIT[c.channel] * 0.9 - tag.length) / 5));
  return { text: parts.map((part) => `${part} ${filler}`.trim()).join('\n\n'), parts };
}

const referenceOf = (item: OutboxItem) => (item.body as { biz_opaque_callback_data: string }).biz_opaque_callback_data;

/** A status callback for one of our sends (WhatsApp's with our reference, or `sent`, which the fixtures lack). */
async function postStatus(c: Customer, status: 'sent' | 'delivered' | 'read' | 'failed', providerMessageId: string, reference?: string): Promise<void> {
  let body = statusWebhook(c.channel, c.handle, status === 'sent' ? 'delivered' : status, providerMessageId, undefined, reference);
  if (status === 'sent') {
    const receipt = JSON.parse(body);
    receipt.entry[0].changes[0].value.statuses[0].status = 'sent';
    body = JSON.stringify(receipt);
  }
  expect((await postWebhook(stack, c.channel, body)).status).toBe(200);
}

const createdFrames = (id: string) => console_.frames.filter((f) => f.type === 'message.created' && f.message.id === id);
const updatedFrames = (id: string) => console_.frames.filter((f: Frame) => f.type === 'message.updated' && f.message.id === id);

/** The message once it left `queued` and nothing is left in the queues. */
async function settled(c: Customer, id: string, status: MessageStatus): Promise<Message> {
  return eventually(async () => {
    if (!fired() || !queuesIdle()) return undefined;
    const message = await getMessage(c.conversationId, id);
    return message?.status === status ? message : undefined;
  }, 20_000);
}

interface Outcome {
  /** How often the provider took it (per part, in order, for a reply sent in parts). */
  sends: number | number[];
  status: MessageStatus;
  /** How many message.created frames the agents got ('some': once or twice, by how far the first attempt's job got meanwhile). */
  created?: 1 | 2 | 'some';
}

/**
 * The reply stored once, its status and provider id, the agents told (statuses never moving back
 * in their frames), the conversation moved on, every idempotency record pointing at a stored
 * message, and its timers armed.
 */
async function expectReplyOnce(c: Customer, text: string, id: string, outcome: Outcome, parts = [text]): Promise<void> {
  const stored = await settled(c, id, outcome.status);
  const mine = (await allMessages(c.conversationId)).filter((m) => m.text === text);
  expect(mine.map((m) => m.id)).toEqual([id]);

  const sends = parts.map((part) => accepted(c, part));
  expect(sends.map((s) => s.length)).toEqual(typeof outcome.sends === 'number' ? parts.map(() => outcome.sends) : outcome.sends);
  const last = sends.map((s) => s.at(-1)).filter((s) => s !== undefined);
  // A reply in parts went as that many messages.
  expect(new Set(last).size).toBe(last.length);
  // Sent twice, the retry's send is the one recorded; the first part's id is the reply's.
  if (last.length > 0) expect(stored.providerMessageId).toBe(providerIdOf(c, last[0]!));
  // Every part's id leads its status callbacks to the reply (none needed once it failed).
  if (statusesById(c) && outcome.status !== 'failed') {
    const claims = await Promise.all(last.map((send) => getDedup(`${c.channel}#${providerIdOf(c, send)}`)));
    expect(claims).toEqual(last.map(() => ({ conversationId: c.conversationId, messageId: id })));
  }

  const created = createdFrames(id);
  if (outcome.created === 'some') expect([1, 2]).toContain(created.length);
  else expect(created).toHaveLength(outcome.created ?? 1);
  await eventually(() => updatedFrames(id).at(-1)?.message.status === outcome.status, 10_000);
  const ranks = updatedFrames(id).map((f) => STATUS_RANK[f.message.status as MessageStatus]);
  expect(ranks).toEqual([...ranks].sort((a, b) => a - b));

  const conversation = await getConversation(c.conversationId, true);
  expect(conversation).toMatchObject({ lastOutboundId: id, firstReplyAt: expect.any(String) });
  await expectNothingOrphaned(c);
  const armed = stack.aws.scheduler.list().some((s) => s.name === `reengage-${c.conversationId}`);
  expect(armed).toBe(outcome.status !== 'failed');
}

/** Every idempotency record of the conversation (clientMessageId, provider ids) names a message stored there. */
async function expectNothingOrphaned(c: Customer): Promise<void> {
  const items = await scanAll();
  const stored = new Set(items.filter((i) => i.pk === keys.messagePartition(c.conversationId) && String(i.sk).startsWith(keys.messagePrefix)).map((i) => i.id));
  const claims = items.filter((i) => String(i.pk).startsWith('DEDUP#') && i.conversationId === c.conversationId);
  expect(claims.filter((i) => !stored.has(i.messageId)).map((i) => i.pk)).toEqual([]);
}

const unique = (what: string) => `${what} ${crypto.randomUUID()}`;

interface ReplyCase {
  title: string;
  crash: Crash;
  created: Outcome['created'];
}

const replyCases: ReplyCase[] = [
  { title: 'after the idempotency claim, before the message is written', crash: { fn: 'claimDedup' }, created: 1 },
  { title: 'after the message is written, its conversation update lost', crash: { fn: 'putMessage', lost: ['applyMessageToOpenConversation'] }, created: 1 },
  { title: 'after the conversation update, its message write lost', crash: { fn: 'applyMessageToOpenConversation', lost: ['putMessage'] }, created: 1 },
  { title: 'after both writes, before the agents are told', crash: { fn: 'publish', before: true }, created: 1 },
  { title: 'after the agents are told, before the job is queued (told twice, the same id)', crash: { fn: 'publish' }, created: 2 },
  { title: 'after the job is queued, before the answer', crash: { fn: 'enqueueOutbound' }, created: 'some' },
];

describe('an agent’s reply POST dying after each write, sent again with the same clientMessageId', { timeout: 30_000 }, () => {
  for (const c of replyCases) {
    it(c.title, async () => {
      // Prepare
      const customer = await newCustomer('whatsapp');
      const body = { text: unique('reply'), clientMessageId: crypto.randomUUID() };
      arm(customer, 'reply', c.crash);

      // Act
      const first = await postReply(customer, body);
      const second = await postReply(customer, body);

      // Assess
      expect(fired()).toBe(true);
      expect(first.status).toBe(500);
      expect(second.status).toBe(202);
      await expectReplyOnce(customer, body.text, second.body.message.id, { sends: 1, status: 'sent', created: c.created });
    });
  }
});

interface DeliveryCase {
  title: string;
  channel: Channel;
  crash: Crash;
  outcome: Outcome;
  /** What the provider does with the send (answers, callbacks), set before the reply is posted. */
  provider?: (c: Customer, text: string) => void;
  /** Happens after the crash, before the job comes back. */
  meanwhile?: (c: Customer, text: string) => Promise<void>;
  /** A reply the provider takes as two messages (twoParts): `outcome.sends` counts each. */
  inParts?: boolean;
}

const delivered = (c: Customer, text: string) => eventually(async () => (await allMessages(c.conversationId)).find((m) => m.text === text)?.status === 'delivered');

/** The provider's "delivered" reaches us while it holds its answer to the send: held early (SMS), or applied by our reference (WhatsApp). */
function deliveredBeforeTheAnswer(c: Customer, text: string): void {
  stack.providers.holdNext(c.channel, async (body, answer) => {
    const providerMessageId = c.channel === 'sms' ? (answer as { sid: string }).sid : (answer as { messages: { id: string }[] }).messages[0]!.id;
    const reference = (body as { biz_opaque_callback_data?: string }).biz_opaque_callback_data;
    await postStatus(c, 'delivered', providerMessageId, reference);
    if (c.channel === 'sms') await eventually(async () => (await earlyStatuses(`sms#${providerMessageId}`)).some((s) => s.status === 'delivered'));
    else await delivered(c, text);
  });
}

const status = (wanted: MessageStatus) => (args: Args) => args[2] === wanted;

const NAME: Record<Channel, string> = { whatsapp: 'WhatsApp', sms: 'SMS', messenger: 'Messenger', instagram: 'Instagram' };

const deliveryCases: DeliveryCase[] = [
  {
    title: 'SMS: after the provider took the send, before the sent write: sent twice (README Channels: no idempotency key, as a send whose answer is lost)',
    channel: 'sms',
    crash: { fn: 'send' },
    outcome: { sends: 2, status: 'sent' },
  },
  ...(['sms', 'messenger', 'instagram'] as const).flatMap((channel): DeliveryCase[] => [
    {
      title: `${NAME[channel]}: after the sent write (with the provider id), before the id is claimed: sent once, the retry claims it`,
      channel,
      crash: { fn: 'updateMessageStatus', when: status('sent') },
      outcome: { sends: 1, status: 'sent' },
    },
    {
      title: `${NAME[channel]}: after the provider id is claimed, before the agents are told: sent once`,
      channel,
      crash: { fn: 'claimDedup' },
      outcome: { sends: 1, status: 'sent' },
    },
    {
      title: `${NAME[channel]}, a reply in two parts: after the sent write (with both ids), before they are claimed: each part sent once, the retry claims both`,
      channel,
      inParts: true,
      crash: { fn: 'updateMessageStatus', when: status('sent') },
      outcome: { sends: [1, 1], status: 'sent' },
    },
  ]),
  {
    title: 'Messenger, a reply in two parts: after the provider took both, before the sent write: only the last part again (the first one’s progress was recorded)',
    channel: 'messenger',
    inParts: true,
    crash: { fn: 'send' },
    outcome: { sends: [1, 2], status: 'sent' },
  },
  {
    title: 'Messenger: after the provider id is claimed, a delivery naming it before the retry: sent once, delivered, its id recorded (for watermarks)',
    channel: 'messenger',
    crash: { fn: 'claimDedup' },
    meanwhile: async (c, text) => {
      const [send] = accepted(c, text);
      await postStatus(c, 'delivered', providerIdOf(c, send!));
      await delivered(c, text);
    },
    outcome: { sends: 1, status: 'delivered' },
  },
  {
    title: 'SMS: after the sent write, a delivered status before the retry (held: no claim yet): the retry claims the id and applies it',
    channel: 'sms',
    crash: { fn: 'updateMessageStatus', when: status('sent') },
    meanwhile: async (c, text) => {
      const id = providerIdOf(c, accepted(c, text)[0]!);
      await postStatus(c, 'delivered', id);
      await eventually(async () => (await earlyStatuses(`sms#${id}`)).some((s) => s.status === 'delivered'));
    },
    outcome: { sends: 1, status: 'delivered' },
  },
  { title: 'SMS: after the agents are told, before the timers', channel: 'sms', crash: { fn: 'publish' }, outcome: { sends: 1, status: 'sent' } },
  {
    title: 'SMS, a delivered status held early: after the sent write, before the id is claimed and the held status applied',
    channel: 'sms',
    provider: deliveredBeforeTheAnswer,
    crash: { fn: 'updateMessageStatus', when: status('sent') },
    outcome: { sends: 1, status: 'delivered' },
  },
  {
    title: 'SMS, a delivered status held early: after the held status is applied, before the agents are told',
    channel: 'sms',
    provider: deliveredBeforeTheAnswer,
    crash: { fn: 'updateMessageStatus', when: status('delivered') },
    outcome: { sends: 1, status: 'delivered' },
  },
  {
    title: 'SMS, refused by the provider (400): after the failed write, before the agents are told',
    channel: 'sms',
    provider: (c) => stack.providers.failNext(c.channel, 400, 1),
    crash: { fn: 'updateMessageStatus', when: status('failed') },
    outcome: { sends: 0, status: 'failed' },
  },
  {
    title: 'WhatsApp: after the provider took the send, its sent receipt (with our reference) before the retry: sent once (README Channels)',
    channel: 'whatsapp',
    crash: { fn: 'send' },
    meanwhile: async (c, text) => {
      const [send] = accepted(c, text);
      await postStatus(c, 'sent', providerIdOf(c, send!), referenceOf(send!));
      await eventually(async () => (await allMessages(c.conversationId)).find((m) => m.text === text)?.status === 'sent');
    },
    outcome: { sends: 1, status: 'sent' },
  },
  {
    title: 'WhatsApp: after the provider took the send, no receipt before the retry: sent twice (README Channels: the retry sends it again)',
    channel: 'whatsapp',
    crash: { fn: 'send' },
    outcome: { sends: 2, status: 'sent' },
  },
  {
    title: 'WhatsApp, a failed receipt without our reference held while the send was in flight: after the sent write (which finds the mark), before what was held is applied: the retry applies it',
    channel: 'whatsapp',
    provider: (c) =>
      stack.providers.holdNext(c.channel, async (_body, answer) => {
        await postStatus(c, 'failed', (answer as { messages: { id: string }[] }).messages[0]!.id);
        // Held, and the reply in flight marked: the status consumer is done with it.
        await eventually(() => Object.values(stack.aws.sqs.getQueue('conversa-inbound.fifo').counts()).every((n) => n === 0));
      }),
    crash: { fn: 'updateMessageStatus', when: status('sent') },
    outcome: { sends: 1, status: 'failed' },
  },
  {
    title: 'WhatsApp, a delivered receipt overtook the answer: after its provider id is recorded, before the agents are told',
    channel: 'whatsapp',
    provider: deliveredBeforeTheAnswer,
    crash: { fn: 'settleOvertakenSend' },
    outcome: { sends: 1, status: 'delivered' },
  },
];

describe('the outbound consumer dying after each write of a reply’s delivery, the job redelivered', { timeout: 30_000 }, () => {
  for (const c of deliveryCases) {
    it(c.title, async () => {
      // Prepare
      const customer = await newCustomer(c.channel);
      const tag = unique('delivered reply');
      const { text, parts } = c.inParts ? twoParts(customer, tag) : { text: tag, parts: [tag] };
      c.provider?.(customer, text);
      arm(customer, 'deliver', c.crash);
      if (c.meanwhile) crash.held.outbound = [];

      // Act
      const response = await postReply(customer, { text });
      expect(response.status).toBe(202);
      if (c.meanwhile) {
        const held = await eventually(() => (crash.held.outbound!.length > 0 ? crash.held.outbound : undefined), 20_000);
        crash.held.outbound = undefined;
        await c.meanwhile(customer, text);
        for (const receiptHandle of held) crash.retry.outbound!(receiptHandle);
      }

      // Assess
      await expectReplyOnce(customer, text, response.body.message.id, c.outcome, parts);
    });
  }
});

interface StatusCase {
  title: string;
  channel: Channel;
  crash: Crash;
  status: 'delivered' | 'read';
  /** Sent while the provider holds its answer to the send (no id recorded yet), else after the reply is sent. */
  early?: boolean;
}

const statusCases: StatusCase[] = [
  { title: 'SMS delivered (by provider id): after its write, before the agents are told', channel: 'sms', crash: { fn: 'updateMessageStatus' }, status: 'delivered' },
  { title: 'WhatsApp read (by our reference): after its write, before the agents are told', channel: 'whatsapp', crash: { fn: 'updateMessageStatus' }, status: 'read' },
  { title: 'SMS delivered before the send’s answer: after it is held, before it looks for the reply again', channel: 'sms', crash: { fn: 'holdEarlyStatus' }, status: 'delivered', early: true },
];

describe('a status callback dying after each write, the event redelivered', { timeout: 30_000 }, () => {
  for (const c of statusCases) {
    it(c.title, async () => {
      // Prepare
      const customer = await newCustomer(c.channel);
      const text = unique('reply with a receipt');
      arm(customer, 'status', c.crash);
      if (c.early) {
        stack.providers.holdNext(c.channel, async (_body, answer) => {
          const providerMessageId = (answer as { sid: string }).sid;
          await postStatus(customer, c.status, providerMessageId);
          await eventually(async () => fired() && queuesIdleBut('conversa-outbound.fifo') && (await earlyStatuses(`sms#${providerMessageId}`)).some((s) => s.status === c.status), 20_000);
        });
      }
      const response = await postReply(customer, { text });
      expect(response.status).toBe(202);
      const id: string = response.body.message.id;

      // Act
      if (!c.early) {
        const sent = await settledUnarmed(customer, id);
        const [send] = accepted(customer, text);
        await postStatus(customer, c.status, sent.providerMessageId!, customer.channel === 'whatsapp' ? referenceOf(send!) : undefined);
      }

      // Assess
      await expectReplyOnce(customer, text, id, { sends: 1, status: c.status });
    });
  }
});

interface HeldSeenCase {
  title: string;
  /** Given the earlier reply the seen covers. */
  crash: (earlier: Message) => Crash;
}

const heldSeenCases: HeldSeenCase[] = [
  {
    title: 'after the held seen is applied to the reply it names, before the earlier one: the retry marks that one read',
    crash: () => ({ fn: 'updateMessageStatus', when: status('read') }),
  },
  {
    title: 'after the earlier reply is marked read, before the agents are told: the retry tells them',
    crash: (earlier) => ({ fn: 'updateMessageStatus', when: (args) => args[1] === earlier.id && args[2] === 'read' }),
  },
  { title: 'after the agents are told of the earlier reply, before the reply’s own frame', crash: () => ({ fn: 'publish' }) },
];

describe('an Instagram seen held for a send in flight, covering an earlier reply: the outbound consumer dying as it applies it, the job redelivered', { timeout: 30_000 }, () => {
  for (const c of heldSeenCases) {
    it(c.title, async () => {
      // Prepare: a first reply sent; Instagram holds its answer to the second until the seen naming it was held
      const customer = await newCustomer('instagram');
      const earlierText = unique('earlier reply');
      const posted = await postReply(customer, { text: earlierText });
      expect(posted.status).toBe(202);
      const earlier = await settledUnarmed(customer, posted.body.message.id);
      stack.providers.holdNext('instagram', async (_body, answer) => {
        const mid = (answer as { message_id: string }).message_id;
        await postStatus(customer, 'read', mid);
        await eventually(async () => queuesIdleBut('conversa-outbound.fifo') && (await earlyStatuses(`instagram#${mid}`)).some((s) => s.status === 'read'), 20_000);
      });
      arm(customer, 'deliver', c.crash(earlier));
      const text = unique('reply seen before its answer');

      // Act
      const response = await postReply(customer, { text });
      expect(response.status).toBe(202);

      // Assess: the reply once and read; the earlier one read too, the agents' last frame of it saying so
      await expectReplyOnce(customer, text, response.body.message.id, { sends: 1, status: 'read' });
      expect((await getMessage(customer.conversationId, earlier.id))?.status).toBe('read');
      expect(accepted(customer, earlierText)).toHaveLength(1);
      await eventually(() => updatedFrames(earlier.id).at(-1)?.message.status === 'read', 10_000);
      const ranks = updatedFrames(earlier.id).map((f) => STATUS_RANK[f.message.status as MessageStatus]);
      expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    });
  }
});

/** The reply sent before the case's crash could fire. */
const settledUnarmed = (c: Customer, id: string) =>
  eventually(async () => {
    const message = await getMessage(c.conversationId, id);
    return message?.status === 'sent' && queuesIdle() ? message : undefined;
  }, 20_000);

const queuesIdleBut = (busy: string) =>
  ['conversa-inbound.fifo', 'conversa-outbound.fifo'].filter((name) => name !== busy).every((name) => Object.values(stack.aws.sqs.getQueue(name).counts()).every((n) => n === 0));

/** Meta's smb_message_echoes webhook (test/fixtures/whatsapp/smb-message-echoes.json) with one text echo to the customer. */
function echoWebhook(to: string, id: string, text: string): string {
  const body = JSON.parse(fixture('whatsapp', 'smb-message-echoes'));
  const value = body.entry[0].changes[0].value;
  value.message_echoes = [{ from: value.metadata.display_phone_number, to, id, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }];
  return JSON.stringify(body);
}

interface EchoCase {
  title: string;
  crash: Crash;
  /** A delivered receipt for the echo came first and was held. */
  heldReceipt?: boolean;
  created: 1 | 2;
}

const echoCases: EchoCase[] = [
  { title: 'after the provider id’s claim, before the message is written', crash: { fn: 'claimDedup' }, created: 1 },
  { title: 'after the message is written, before the conversation update', crash: { fn: 'putMessage' }, created: 1 },
  { title: 'after a receipt held for it is applied, before the conversation update', crash: { fn: 'updateMessageStatus' }, heldReceipt: true, created: 1 },
  { title: 'after the conversation update, before the agents are told', crash: { fn: 'applyMessageToOpenConversation' }, created: 1 },
  { title: 'after the agents are told, before the timers (told twice, the same id)', crash: { fn: 'publish' }, created: 2 },
];

describe('a WhatsApp Business app echo dying after each write, the event redelivered', { timeout: 30_000 }, () => {
  for (const c of echoCases) {
    it(c.title, async () => {
      // Prepare
      const customer = await newCustomer('whatsapp');
      const wamid = `wamid.ECHO-${crypto.randomUUID()}`;
      const text = unique('typed on the phone');
      if (c.heldReceipt) {
        await postStatus(customer, 'delivered', wamid);
        await eventually(async () => (await earlyStatuses(`whatsapp#${wamid}`)).some((s) => s.status === 'delivered'));
      }
      arm(customer, 'echo', c.crash);

      // Act
      expect((await postWebhook(stack, 'whatsapp', echoWebhook(`+${customer.handle}`, wamid, text))).status).toBe(200);

      // Assess: the team's message once, nothing sent, the agents told, the conversation moved on
      const expected = c.heldReceipt ? 'delivered' : 'sent';
      const echo = await eventually(async () => {
        if (!fired() || !queuesIdle()) return undefined;
        const found = (await allMessages(customer.conversationId)).filter((m) => m.providerMessageId === wamid);
        return found.length > 0 ? found : undefined;
      }, 20_000);
      expect(echo.map((m) => ({ text: m.text, status: m.status, sender: m.sender.id }))).toEqual([{ text, status: expected, sender: 'external' }]);
      expect(accepted(customer, text)).toEqual([]);
      expect(createdFrames(echo[0]!.id)).toHaveLength(c.created);
      const conversation = await getConversation(customer.conversationId, true);
      expect(conversation).toMatchObject({ status: 'open', lastOutboundId: echo[0]!.id, lastMessageAt: echo[0]!.createdAt, firstReplyAt: echo[0]!.createdAt });
      await expectNothingOrphaned(customer);
      expect(stack.aws.scheduler.list().some((s) => s.name === `reengage-${customer.conversationId}`)).toBe(true);
    });
  }
});
