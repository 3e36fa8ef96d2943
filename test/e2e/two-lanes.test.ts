/**
 * A WhatsApp customer's messages in two queue lanes at once. During the BSUID rollout a customer
 * writes in two message groups (src/aws/queues.ts inboundGroupId): webhooks naming their number
 * alone queue in the number's lane, those naming the BSUID beside it in the BSUID's. The two lanes
 * run side by side on one conversation, and each makes its message's id above the last one applied
 * as it read it: the message that got the lower id may be applied after the other. It is a new
 * message all the same, and must be counted and shown to the agents, once; a redelivery of it
 * after a crash must count nothing again.
 *
 * The race is forced: the lower id's message is stored, then waits (in putMessage) until the agents
 * saw the other lane's message; that one is stored only after the first was, so both made their
 * ids from the same read of the conversation.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, http, WsClient } from '../support/clients';
import { fixture } from '../fixtures/sign';
import { getConversation } from '../../src/store/conversations';
import { newHandle, postWebhook, textWebhook, type InboundWebhook } from './channels-support';
import type { Crash } from '../faults/crash-harness';

/** The race being forced: the provider ids of the message that loses it (lower id, applied last) and of the one that wins it. */
interface Race {
  loser: string;
  winner: string;
  loserStored: Deferred;
  winnerShown: Deferred;
  held: boolean;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const { crash, harness, gate } = await vi.hoisted(async () => {
  const harness = await import('../faults/crash-harness');
  const gate = {
    race: undefined as Race | undefined,
    /** Fails instead of hanging when the other side never comes. */
    within: async (promise: Promise<void>, what: string) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`race gate: ${what} never came`)), 10_000)));
      try {
        await Promise.race([promise, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return { harness, gate, crash: harness.crashPoints() };
});

// An attempt is the ingestion of one provider message (keyed by its id): a crash armed for the
// overtaken message never hits the other lane's.
vi.mock('../../src/domain/inbound', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/domain/inbound')>();
  return {
    ...real,
    ingestMessage: (...args: Parameters<typeof real.ingestMessage>) => crash.during('message', args[0].providerMessageId ?? args[0].handle, () => real.ingestMessage(...args)),
  };
});
vi.mock('../../functions/inbound/handler', async (importOriginal) => harness.redeliveringHandler(await importOriginal<typeof import('../../functions/inbound/handler')>(), crash, 'inbound'));
vi.mock('../../src/store/conversations', async (importOriginal) =>
  harness.wrapModule(await importOriginal<typeof import('../../src/store/conversations')>(), crash, ['applyMessageToOpenConversation', 'updateConversation']),
);
vi.mock('../../src/store/messages', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/store/messages')>();
  return {
    ...real,
    putMessage: crash.wrap('putMessage', async (...args: Parameters<typeof real.putMessage>) => {
      const race = gate.race;
      const id = args[0].providerMessageId;
      if (race && id === race.winner) await gate.within(race.loserStored.promise, 'the overtaken message');
      const result = await real.putMessage(...args);
      if (race && id === race.loser && !race.held) {
        race.held = true;
        race.loserStored.resolve();
        await gate.within(race.winnerShown.promise, 'the overtaking message');
      }
      return result;
    }),
  };
});

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;

beforeAll(async () => {
  stack = await startTestStack();
  const inbound = stack.aws.sqs.getQueue('conversa-inbound.fifo');
  crash.retry.inbound = (receiptHandle) => inbound.changeVisibility(receiptHandle, 0);
  agentJwt = await agentToken(stack.httpUrl, 'agent-lanes', 'admin', 'Lane');
  agent = await WsClient.connect(stack.wsUrl, agentJwt);
});

afterAll(async () => {
  await agent?.close();
  await stack?.stop();
});

/** A WhatsApp message naming the customer by their number and the BSUID beside it (queued in the BSUID's lane). */
function bothIdsWebhook(bsuid: string, number: string, text: string): InboundWebhook {
  const body = JSON.parse(fixture('whatsapp', 'username'));
  const value = body.entry[0].changes[0].value;
  const id = `wamid.BOTH${crypto.randomUUID()}`;
  Object.assign(value.contacts[0], { user_id: bsuid, wa_id: number });
  Object.assign(value.messages[0], { from_user_id: bsuid, from: number, id, timestamp: String(Math.floor(Date.now() / 1000)), text: { body: text } });
  return { body: JSON.stringify(body), providerMessageId: id };
}

/** A WhatsApp message naming the customer by their BSUID alone (queued in the BSUID's lane), with the provider's id and time given. */
function bsuidOnlyWebhook(bsuid: string, text: string, id: string, timestampS: number): InboundWebhook {
  const body = JSON.parse(fixture('whatsapp', 'username'));
  const value = body.entry[0].changes[0].value;
  value.contacts[0].user_id = bsuid;
  Object.assign(value.messages[0], { from_user_id: bsuid, id, timestamp: String(timestampS), text: { body: text } });
  return { body: JSON.stringify(body), providerMessageId: id };
}

type Lane = 'number' | 'both';

interface Customer {
  number: string;
  bsuid: string;
  conversationId: string;
}

function webhook(customer: Customer, lane: Lane, text: string): InboundWebhook {
  return lane === 'number' ? textWebhook('whatsapp', customer.number, text) : bothIdsWebhook(customer.bsuid, customer.number, text);
}

const shown = (providerMessageId: string, timeoutMs = 10_000) =>
  agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === providerMessageId, timeoutMs, `message.created for ${providerMessageId}`);

async function writes(customer: Pick<Customer, 'number' | 'bsuid'>, lane: Lane, text: string): Promise<string> {
  const hook = webhook({ ...customer, conversationId: '' }, lane, text);
  expect((await postWebhook(stack, 'whatsapp', hook.body)).status).toBe(200);
  return (await shown(hook.providerMessageId)).conversationId;
}

/** A customer who wrote by number (and, with `lanes: 'both'`, then with both ids: each lane applied a message). */
async function newCustomer(lanes: 'number' | 'both'): Promise<Customer> {
  const ids = { number: newHandle('whatsapp'), bsuid: `US.${Date.now()}${Math.floor(Math.random() * 1e6)}` };
  const conversationId = await writes(ids, 'number', 'Hello, by number');
  if (lanes === 'both') expect(await writes(ids, 'both', 'And with my username')).toBe(conversationId);
  return { ...ids, conversationId };
}

async function messagesWith(conversationId: string, providerMessageId: string) {
  const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt });
  return (page.body.items as { id: string; providerMessageId?: string; createdAt: string }[]).filter((m) => m.providerMessageId === providerMessageId);
}

/**
 * Posts the overtaken message (lane `loser`), then the other lane's, whose id is higher; the
 * overtaken one is applied only once the agents saw the other. With `dies`, the overtaken
 * message's consumer dies right after that call (and the queue hands its message over again).
 */
async function race(customer: Customer, loser: Lane, winner: Lane, dies?: Crash) {
  const first = webhook(customer, loser, `first, in the ${loser} lane`);
  const second = webhook(customer, winner, `second, in the ${winner} lane`);
  const current: Race = { loser: first.providerMessageId, winner: second.providerMessageId, loserStored: deferred(), winnerShown: deferred(), held: false };
  if (dies) crash.arm('message', first.providerMessageId, dies);
  gate.race = current;
  try {
    expect((await postWebhook(stack, 'whatsapp', first.body)).status).toBe(200);
    // Received (and so dated) later: the higher id.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await postWebhook(stack, 'whatsapp', second.body)).status).toBe(200);
    const winnerFrame = await shown(second.providerMessageId);
    current.winnerShown.resolve();
    const loserFrame = await shown(first.providerMessageId);
    return { first, second, winnerFrame, loserFrame };
  } finally {
    current.winnerShown.resolve();
    gate.race = undefined;
  }
}

describe('a WhatsApp customer writing in two lanes at once', () => {
  it.each([
    ['by number alone, overtaken by a message with both ids', 'both', 'number', 'both'],
    ['with both ids, overtaken by a message by number alone', 'both', 'both', 'number'],
    ['with both ids for the first time, overtaken by a message by number alone', 'number', 'both', 'number'],
  ] as const)('counts and shows a message written %s', async (_, lanes, loser, winner) => {
    // Prepare
    const customer = await newCustomer(lanes);
    const before = (await getConversation(customer.conversationId, true))!;

    // Act
    const { first, second, winnerFrame, loserFrame } = await race(customer, loser, winner);

    // Assess: the overtaken message has the lower id, is in the conversation once, and counted
    expect(loserFrame.conversationId).toBe(customer.conversationId);
    expect(winnerFrame.conversationId).toBe(customer.conversationId);
    expect(loserFrame.message.id < winnerFrame.message.id).toBe(true);
    expect(await messagesWith(customer.conversationId, first.providerMessageId)).toHaveLength(1);
    expect(await messagesWith(customer.conversationId, second.providerMessageId)).toHaveLength(1);
    const after = (await getConversation(customer.conversationId, true))!;
    expect(after.unreadCount).toBe(before.unreadCount + 2);
    expect(after.lastInboundId).toBe(winnerFrame.message.id);
    // Its activity did not move back to the overtaken message's time.
    const newest = [loserFrame.message.createdAt, winnerFrame.message.createdAt].sort().at(-1)!;
    expect(after.lastMessageAt >= newest).toBe(true);
    expect(after.lastInboundAt).toBe(newest);
    // The other lane's next message is counted too, and a message by number after it as well.
    const next = await writes(customer, loser, 'and one more');
    expect(next).toBe(customer.conversationId);
    expect((await getConversation(customer.conversationId, true))!.unreadCount).toBe(before.unreadCount + 3);
  });

  it('counts nothing for a provider’s late copy of the overtaken message that comes in the other lane', async () => {
    // Prepare: the overtaken message is counted; then the provider sends it again, 5 minutes after
    // its time, naming the BSUID alone (the BSUID's lane, whose mark is past it: a new queue message)
    const customer = await newCustomer('both');
    const { first } = await race(customer, 'number', 'both');
    const before = (await getConversation(customer.conversationId, true))!;
    const copy = bsuidOnlyWebhook(customer.bsuid, 'first, in the number lane', first.providerMessageId, Math.floor(Date.now() / 1000) - 300);

    // Act: the copy, then a new message behind it in the same lane
    expect((await postWebhook(stack, 'whatsapp', copy.body)).status).toBe(200);
    expect(await writes(customer, 'both', 'after the copy')).toBe(customer.conversationId);

    // Assess
    expect(await messagesWith(customer.conversationId, first.providerMessageId)).toHaveLength(1);
    expect((await getConversation(customer.conversationId, true))!.unreadCount).toBe(before.unreadCount + 1);
  });

  it('stores once a message first sent with both ids whose copy, minutes later, names the BSUID alone (the same lane)', async () => {
    // Prepare: a message with both ids, applied; the provider sends it again naming the BSUID alone,
    // within SQS's 5 deduplication minutes (queued in the same lane, the BSUID's)
    const customer = await newCustomer('both');
    const original = bothIdsWebhook(customer.bsuid, customer.number, 'sent once, with both ids');
    expect((await postWebhook(stack, 'whatsapp', original.body)).status).toBe(200);
    await shown(original.providerMessageId);
    const before = (await getConversation(customer.conversationId, true))!;
    const copy = bsuidOnlyWebhook(customer.bsuid, 'sent once, with both ids', original.providerMessageId, Math.floor(Date.now() / 1000));

    // Act: the copy, then a new message behind it in the same lane
    expect((await postWebhook(stack, 'whatsapp', copy.body)).status).toBe(200);
    expect(await writes(customer, 'both', 'after the copy')).toBe(customer.conversationId);

    // Assess
    expect(await messagesWith(customer.conversationId, original.providerMessageId)).toHaveLength(1);
    expect((await getConversation(customer.conversationId, true))!.unreadCount).toBe(before.unreadCount + 1);
  });

  it('stores once a message first sent by number alone whose copy, at once, names both ids (the other lane)', async () => {
    // Prepare
    const customer = await newCustomer('both');
    const original = textWebhook('whatsapp', customer.number, 'sent once, by number');
    expect((await postWebhook(stack, 'whatsapp', original.body)).status).toBe(200);
    await shown(original.providerMessageId);
    const before = (await getConversation(customer.conversationId, true))!;
    const copy = JSON.parse(bothIdsWebhook(customer.bsuid, customer.number, 'sent once, by number').body);
    copy.entry[0].changes[0].value.messages[0].id = original.providerMessageId;

    // Act
    expect((await postWebhook(stack, 'whatsapp', JSON.stringify(copy))).status).toBe(200);
    expect(await writes(customer, 'both', 'after the copy')).toBe(customer.conversationId);

    // Assess
    expect(await messagesWith(customer.conversationId, original.providerMessageId)).toHaveLength(1);
    expect((await getConversation(customer.conversationId, true))!.unreadCount).toBe(before.unreadCount + 1);
  });

  it.each([
    ['right after storing it (before the conversation update)', { fn: 'putMessage' }],
    ['right after applying it (before the agents were told)', { fn: 'updateConversation' }],
  ] as const)('counts an overtaken message once when its consumer dies %s, and shows it on the redelivery', async (_, dies) => {
    // Prepare
    const customer = await newCustomer('both');
    const before = (await getConversation(customer.conversationId, true))!;

    // Act
    const { first, loserFrame } = await race(customer, 'number', 'both', dies);

    // Assess
    expect(crash.fired()).toBe(true);
    expect(loserFrame.conversationId).toBe(customer.conversationId);
    expect(await messagesWith(customer.conversationId, first.providerMessageId)).toHaveLength(1);
    const after = (await getConversation(customer.conversationId, true))!;
    expect(after.unreadCount).toBe(before.unreadCount + 2);
    expect(after.otherInboundSeq?.startsWith('whatsapp#')).toBe(true);
  });
});
