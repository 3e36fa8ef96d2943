/**
 * Delivery faults on the inbound path: provider retries arriving all at once, a burst from many
 * customers, a poison message, a consumer that dies halfway through a batch, one that dies
 * between storing a message and updating its conversation, one that dies before the hooks, and
 * a new conversation written first by another path; and an agent reply whose message write
 * failed after its conversation's. Each ends with the store read back: every message exactly
 * once, in order per customer.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import type { LocalStack } from '../../local/stack';
import { enqueueInbound } from '../../src/aws/queues';
import { QUEUES } from '../../src/manifest';
import { listMessages } from '../../src/store/messages';
import { updateConversation } from '../../src/store/conversations';
import type { InboundMessageEvent } from '../../src/domain/types';
import { defaultSettings } from '../../src/domain/settings';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, WsClient } from '../support/clients';
import { newHandle, postWebhook, textWebhook } from '../e2e/channels-support';
import { allMessages, conversationOf, phone, postWhatsapp, queueDepth, queueUrl, sequenceOf, setInboundQueue, sqsClient, storedMessages, whatsappBody } from './support';

/** The inbound consumer, wrapped so a test can make one invocation die after part of its batch. */
const crash = vi.hoisted(() => ({ armed: false, after: 0, batches: [] as number[], receives: new Map<string, number>() }));
vi.mock('../../functions/inbound/handler', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../functions/inbound/handler')>();
  return {
    handler: async (event: SQSEvent) => {
      // The last receive of each body: how often a record was tried before it left the queue.
      for (const r of event.Records) crash.receives.set(r.body, Number(r.attributes.ApproximateReceiveCount));
      if (crash.armed && event.Records.length > crash.after) {
        crash.armed = false;
        crash.batches.push(event.Records.length);
        // The first records are stored for real; then the process "dies" before answering.
        await real.handler({ Records: event.Records.slice(0, crash.after) });
        throw new Error('simulated crash in the middle of a batch');
      }
      return real.handler(event);
    },
  };
});

/**
 * Switches that make the next call of a wrapped step fail once (a consumer dying right there):
 * the conversation update after the message write, a new conversation's write after its first
 * message, the hooks after the conversation update, and an agent reply's outbound enqueue.
 */
const faults = vi.hoisted(() => {
  const state = () => ({ armed: false, failed: 0, args: [] as unknown[] });
  const failOnce =
    <A extends unknown[], R>(switch_: { armed: boolean; failed: number; args: unknown[] }, what: string, real: (...args: A) => Promise<R>, applies: (...args: A) => boolean = () => true) =>
    async (...args: A): Promise<R> => {
      if (switch_.armed && applies(...args)) {
        switch_.armed = false;
        switch_.failed += 1;
        switch_.args = args;
        throw new Error(`simulated crash ${what}`);
      }
      return real(...args);
    };
  // The timer whose arming fails: a reply's follow-up, or the auto-resolve a campaign re-arms.
  const outboundHooks = { ...state(), timer: { conversationId: '', kind: 'reengage' } };
  return { apply: state(), create: state(), hooks: state(), race: state(), enqueue: state(), outboundHooks, failOnce };
});
const { apply: applyFails, create: createFails, hooks: hooksFail, race: creationRaced, enqueue: replyEnqueue, outboundHooks: replyHooksFail } = faults;
vi.mock('../../src/store/conversations', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/store/conversations')>();
  return {
    ...real,
    applyMessageToOpenConversation: faults.failOnce(
      faults.apply,
      'between the message write and the conversation update',
      async (...args: Parameters<typeof real.applyMessageToOpenConversation>) => {
        if (replyApply.armed && args[1].direction === 'outbound') {
          replyApply.armed = false;
          replyApply.failed += 1;
          // Written side by side with the reply's message: that write lands first.
          await new Promise((resolve) => setTimeout(resolve, 200));
          throw new Error('simulated failure of a reply\'s conversation write');
        }
        return real.applyMessageToOpenConversation(...args);
      },
      (_id, message) => message.direction === 'inbound',
    ),
    createConversation: faults.failOnce(faults.create, 'between the first message write and the new conversation write', async (record: Parameters<typeof real.createConversation>[0]) => {
      if (faults.race.armed) {
        // Another path (an agent moving a conversation to this channel) writes it first, bare.
        faults.race.armed = false;
        faults.race.failed += 1;
        const { autoresponded: _greeted, lastOutboundId: _greeting, lastInboundId: _message, lastInboundSeq: _mark, lastInboundAt: _at, ...bare } = record;
        await real.createConversation({ ...bare, assigneeId: null, unreadCount: 0, lastMessageAt: record.createdAt, updatedAt: record.createdAt });
      }
      return real.createConversation(record);
    }),
  };
});
/** The next outbound enqueue fails once (SQS unreachable after the reply was stored). */
vi.mock('../../src/aws/queues', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/aws/queues')>();
  return { ...real, enqueueOutbound: faults.failOnce(faults.enqueue, 'in the outbound enqueue', real.enqueueOutbound) };
});
/** An agent reply's message write fails once, after its conversation update (written side by side) went through. */
const replyWrite = vi.hoisted(() => ({ armed: false, failed: 0 }));
/** An agent reply's conversation write fails once, after its message write went through. */
const replyApply = vi.hoisted(() => ({ armed: false, failed: 0 }));
/** The autoresponder's next message write fails once (after its claim on the conversation). */
const greetingWrite = vi.hoisted(() => ({ armed: false, failed: 0 }));
/**
 * A retried reply's read of the stored reply returns what it read only after `until` settles (the
 * first attempt's delivery finishing meanwhile); `read` is called as soon as it has read.
 */
const slowRetryRead = vi.hoisted(() => ({ pending: undefined as { messageId: string; read: () => void; until: Promise<void> } | undefined }));
vi.mock('../../src/store/messages', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/store/messages')>();
  return {
    ...real,
    putMessage: async (message: Parameters<typeof real.putMessage>[0]) => {
      if (greetingWrite.armed && message.sender.type === 'bot') {
        greetingWrite.armed = false;
        greetingWrite.failed += 1;
        throw new Error('simulated failure of a greeting\'s message write');
      }
      if (replyWrite.armed && message.sender.type === 'agent') {
        replyWrite.armed = false;
        replyWrite.failed += 1;
        await new Promise((resolve) => setTimeout(resolve, 200));
        throw new Error('simulated failure of a reply\'s message write');
      }
      return real.putMessage(message);
    },
    getMessage: async (...args: Parameters<typeof real.getMessage>) => {
      const found = await real.getMessage(...args);
      const slow = slowRetryRead.pending;
      if (slow && found?.id === slow.messageId && found.status === 'queued') {
        slowRetryRead.pending = undefined;
        slow.read();
        await slow.until;
      }
      return found;
    },
  };
});
/** Arming a message's timer fails once: its delivery dies after the status write. */
vi.mock('../../src/domain/timers', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/domain/timers')>();
  return { ...real, setTimer: faults.failOnce(faults.outboundHooks, 'after a reply\'s status write, arming its timers', real.setTimer, (kind, conversationId) => kind === faults.outboundHooks.timer.kind && conversationId === faults.outboundHooks.timer.conversationId) };
});
vi.mock('../../src/domain/automation', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/domain/automation')>();
  return { ...real, afterInbound: faults.failOnce(faults.hooks, 'after the conversation update, before the hooks', real.afterInbound) };
});

let stack: LocalStack;

beforeAll(async () => {
  stack = await startTestStack();
});

/**
 * Failed records come back after seconds instead of three minutes. Not shorter: a batch still being
 * handled when its visibility ends would be handed out again, something the deployed timeout
 * (six times the consumer's) rules out.
 */
const retryQuickly = () => setInboundQueue(stack, { visibilityTimeoutSeconds: 3 });

afterAll(async () => {
  await stack?.stop();
});

/** The numbers after `prefix` in a customer's stored texts, once `count` are there and nothing is in flight. */
function settledSequence(from: string, prefix: string, count: number): Promise<number[]> {
  return eventually(async () => {
    const seq = sequenceOf(await storedMessages(from), prefix);
    return seq.length >= count && (await queueDepth(stack, 'conversa-inbound.fifo')).inFlight === 0 ? seq : undefined;
  }, 60_000);
}

/** An event as the webhook queues it: dated by the provider, stamped with when it was received. */
function event(handle: string, text: string): InboundMessageEvent {
  const now = new Date().toISOString();
  return { kind: 'message', channel: 'whatsapp', handle, providerMessageId: `wamid.${crypto.randomUUID()}`, text, attachments: [], sentAt: now, dated: true, receivedAt: now, profile: { name: 'Fault' } };
}

describe('inbound delivery faults', { timeout: 120_000 }, () => {
  it('stores a webhook delivered 20 times at once exactly once', async () => {
    // Prepare: one provider message, the same bytes and signature every time
    const from = phone(1, 1);
    const body = whatsappBody(from, 'twenty times', 'wamid.same-message-twenty-times');

    // Act
    const statuses = await Promise.all(Array.from({ length: 20 }, () => postWhatsapp(stack, body)));

    // Assess
    expect(statuses).toEqual(Array(20).fill(200));
    const stored = await eventually(async () => {
      const messages = await storedMessages(from);
      return messages.length > 0 ? messages : undefined;
    }, 60_000);
    await eventually(async () => {
      const depth = await queueDepth(stack, 'conversa-inbound.fifo');
      return depth.visible + depth.inFlight === 0;
    }, 60_000);
    expect((await storedMessages(from)).map((m) => m.text)).toEqual(['twenty times']);
    expect(stored[0]!.providerMessageId).toBe('wamid.same-message-twenty-times');
    expect((await conversationOf(from))?.unreadCount).toBe(1);
  });

  it('stores hundreds of concurrent messages from many customers once each, in order per customer', async () => {
    // Prepare
    const senders = Array.from({ length: 20 }, (_, i) => phone(2, i));
    const perSender = 10;

    // Act: customers write at the same time; each one's messages follow one another, as providers send them
    await Promise.all(
      senders.map(async (from) => {
        for (let k = 0; k < perSender; k++) expect(await postWhatsapp(stack, whatsappBody(from, `order ${k}`))).toBe(200);
      }),
    );

    // Assess: once the queue is drained, every customer's conversation holds its messages once, in order
    await eventually(async () => {
      const depth = await queueDepth(stack, 'conversa-inbound.fifo');
      return depth.visible + depth.inFlight === 0;
    }, 90_000, 200);
    const expected = Array.from({ length: perSender }, (_, k) => k);
    const sequences = await Promise.all(senders.map(async (from) => sequenceOf(await storedMessages(from), 'order ')));
    expect(sequences).toEqual(senders.map(() => expected));
    const unread = await Promise.all(senders.map(async (from) => (await conversationOf(from))?.unreadCount));
    expect(unread).toEqual(senders.map(() => perSender));
    expect(await queueDepth(stack, 'conversa-inbound-dlq.fifo')).toEqual({ visible: 0, inFlight: 0 });
  });

  it('moves a poison message to the DLQ after maxReceiveCount and leaves its batch and other conversations alone', async () => {
    // Prepare: one unreadable record between two good ones of other conversations, in one batch
    await retryQuickly();
    const [a, b, c] = [phone(3, 1), phone(3, 2), phone(3, 3)];
    const poison = '{"kind":"message", this is not JSON';
    const sqs = sqsClient(stack);

    // Act
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl(stack, 'conversa-inbound.fifo'),
        Entries: [
          { Id: 'good-a', MessageBody: JSON.stringify(event(a, 'before the poison')), MessageGroupId: `whatsapp#${a}`, MessageDeduplicationId: crypto.randomUUID() },
          { Id: 'poison', MessageBody: poison, MessageGroupId: `whatsapp#${b}`, MessageDeduplicationId: crypto.randomUUID() },
          { Id: 'good-c', MessageBody: JSON.stringify(event(c, 'after the poison')), MessageGroupId: `whatsapp#${c}`, MessageDeduplicationId: crypto.randomUUID() },
        ],
      }),
    );
    sqs.destroy();
    expect(sent.Failed ?? []).toEqual([]);
    // Another conversation keeps flowing while the poison is retried.
    expect(await postWhatsapp(stack, whatsappBody(phone(3, 4), 'meanwhile'))).toBe(200);

    // Assess: the good records are stored once, at once; the poison ends in the DLQ, where the alarm's metric counts it
    await eventually(async () => (await storedMessages(a)).length === 1 && (await storedMessages(c)).length === 1 && (await storedMessages(phone(3, 4))).length === 1, 60_000);
    const dlq = await eventually(async () => {
      const depth = await queueDepth(stack, 'conversa-inbound-dlq.fifo');
      return depth.visible === 1 ? depth : undefined;
    }, 60_000, 100);
    expect(dlq.visible).toBe(1);
    const poisoned = stack.aws.sqs.getQueue('conversa-inbound-dlq.fifo').receiveNow({ maxMessages: 10 });
    expect(poisoned.map((m) => m.body)).toEqual([poison]);
    // Retried up to maxReceiveCount first: a failure that passes (a throttle) must not dead-letter.
    expect(crash.receives.get(poison)).toBe(QUEUES.inbound.maxReceiveCount);
    expect((await storedMessages(a)).map((m) => m.text)).toEqual(['before the poison']);
    expect((await storedMessages(c)).map((m) => m.text)).toEqual(['after the poison']);
    expect(await queueDepth(stack, 'conversa-inbound.fifo')).toEqual({ visible: 0, inFlight: 0 });
  });

  it('dead-letters only the poison, not the later messages of its conversation skipped behind it', async () => {
    // Prepare: a customer's messages in one batch, an unreadable record second
    await retryQuickly();
    const dlq = stack.aws.sqs.getQueue('conversa-inbound-dlq.fifo');
    dlq.purge();
    const from = phone(3, 5);
    const poison = '{"kind":"message", not JSON either';
    const entry = (id: string, body: string) => ({ Id: id, MessageBody: body, MessageGroupId: `whatsapp#${from}`, MessageDeduplicationId: crypto.randomUUID() });
    const sqs = sqsClient(stack);

    // Act
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl(stack, 'conversa-inbound.fifo'),
        Entries: [
          entry('first', JSON.stringify(event(from, 'seq 0'))),
          entry('poison', poison),
          entry('second', JSON.stringify(event(from, 'seq 1'))),
          entry('third', JSON.stringify(event(from, 'seq 2'))),
        ],
      }),
    );
    sqs.destroy();
    expect(sent.Failed ?? []).toEqual([]);

    // Assess: the messages behind the poison are stored once, in order, once it is dead-lettered alone
    expect(await settledSequence(from, 'seq ', 3)).toEqual([0, 1, 2]);
    const dead = await eventually(async () => (dlq.counts().visible > 0 ? dlq.receiveNow({ maxMessages: 10 }) : undefined), 60_000, 100);
    expect(dead.map((m) => m.body)).toEqual([poison]);
    expect(crash.receives.get(poison)).toBe(QUEUES.inbound.maxReceiveCount);
    expect(dead[0]!.attributes.MessageGroupId).toBe(`whatsapp#${from}`);
    expect(dlq.counts()).toEqual({ visible: 0, inFlight: 1, delayed: 0 });
    expect(await queueDepth(stack, 'conversa-inbound.fifo')).toEqual({ visible: 0, inFlight: 0 });
  });

  it('does not apply the delivered part of a batch twice when the consumer dies mid-batch', async () => {
    // Prepare: six messages of one conversation in one batch; the consumer dies after storing three
    await retryQuickly();
    const from = phone(4, 1);
    expect(await postWhatsapp(stack, whatsappBody(from, 'crash 0'))).toBe(200);
    await eventually(async () => (await storedMessages(from)).length === 1, 60_000);
    crash.after = 3;
    crash.armed = true;

    // Act: one SendMessageBatch, as the webhook sends a provider's multi-message delivery
    await enqueueInbound(Array.from({ length: 6 }, (_, k) => event(from, `crash ${k + 1}`)));

    // Assess: after the redelivery, seven messages once each, in order, and an exact unread count
    const sequence = await settledSequence(from, 'crash ', 7);
    expect(crash.batches).toEqual([6]);
    expect(sequence).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect((await conversationOf(from))?.unreadCount).toBe(7);
  });

  it('stores a message once when the consumer dies after writing it but before updating the conversation', async () => {
    // Prepare: a conversation, and the next conversation update set to fail once
    await retryQuickly();
    const from = phone(4, 2);
    expect(await postWhatsapp(stack, whatsappBody(from, 'torn 0'))).toBe(200);
    await eventually(async () => (await storedMessages(from)).length === 1, 60_000);
    applyFails.armed = true;

    // Act: two messages; the first is written, then its conversation update fails and it comes back
    expect(await postWhatsapp(stack, whatsappBody(from, 'torn 1'))).toBe(200);
    expect(await postWhatsapp(stack, whatsappBody(from, 'torn 2'))).toBe(200);

    // Assess: each once, in order, counted once in the conversation
    const sequence = await settledSequence(from, 'torn ', 3);
    expect(applyFails.failed).toBe(1);
    expect(sequence).toEqual([0, 1, 2]);
    expect((await conversationOf(from))?.unreadCount).toBe(3);
    // The dead attempt's write stands (its conditional put): the retry takes that message, not a copy written over it.
    const [, died] = applyFails.args as [string, { id: string; createdAt: string }];
    const torn = (await storedMessages(from)).find((m) => m.text === 'torn 1')!;
    expect({ id: torn.id, createdAt: torn.createdAt }).toEqual({ id: died.id, createdAt: died.createdAt });
  });

  it('stores a new customer’s first message and conversation once when the consumer dies in between', async () => {
    // Prepare: the next new conversation's write fails once, after its first message was written
    await retryQuickly();
    const from = phone(4, 4);
    createFails.armed = true;

    // Act
    expect(await postWhatsapp(stack, whatsappBody(from, 'first 0'))).toBe(200);
    expect(await postWhatsapp(stack, whatsappBody(from, 'first 1'))).toBe(200);

    // Assess: one conversation holding each message once, counted once; greeted once
    const sequence = await settledSequence(from, 'first ', 2);
    expect(createFails.failed).toBe(1);
    expect(sequence).toEqual([0, 1]);
    const conversation = (await conversationOf(from))!;
    expect(conversation.unreadCount).toBe(2);
    const { items } = await listMessages(conversation.id, { limit: 50, includePrivate: true });
    expect(items.filter((m) => m.sender.type === 'bot')).toHaveLength(1);
    // The greeting, stored before the crash, still reaches the customer after the retry.
    await eventually(async () => {
      const { items: now } = await listMessages(conversation.id, { limit: 50, includePrivate: true });
      return now.find((m) => m.sender.type === 'bot')?.status === 'sent';
    });
  });

  it('takes its greeting back when another path created the new conversation first', async () => {
    // Prepare: the next new conversation appears, bare, right before its first message's write
    const from = phone(4, 5);
    creationRaced.armed = true;

    // Act
    expect(await postWhatsapp(stack, whatsappBody(from, 'raced 0'))).toBe(200);

    // Assess: the message lands in the conversation that won, which is greeted once (by the hooks)
    const conversation = await eventually(async () => {
      const c = await conversationOf(from);
      return c?.autoresponded && (await queueDepth(stack, 'conversa-inbound.fifo')).inFlight === 0 ? c : undefined;
    }, 30_000);
    expect(creationRaced.failed).toBe(1);
    const { items } = await listMessages(conversation.id, { limit: 50, includePrivate: true });
    expect(items.filter((m) => m.direction === 'inbound').map((m) => m.text)).toEqual(['raced 0']);
    expect(items.filter((m) => m.sender.type === 'bot')).toHaveLength(1);
  });

  it('runs the hooks of a message again when the consumer died after updating the conversation', async () => {
    // Prepare: the hooks of the next message (a new customer's first) fail once
    await retryQuickly();
    const from = phone(4, 3);
    hooksFail.armed = true;

    // Act
    expect(await postWhatsapp(stack, whatsappBody(from, 'hooked 0'))).toBe(200);

    // Assess: on the redelivery the message is not stored again, and what its hooks do happened
    // once: the greeting, the auto-resolve timer
    const conversation = await eventually(async () => {
      const c = await conversationOf(from);
      return c && stack.aws.scheduler.list().some((s) => s.name === `autoResolve-${c.id}`) ? c : undefined;
    }, 60_000);
    expect(hooksFail.failed).toBe(1);
    const { items } = await listMessages(conversation.id, { limit: 50, includePrivate: true });
    expect(items.filter((m) => m.direction === 'inbound').map((m) => m.text)).toEqual(['hooked 0']);
    expect(items.filter((m) => m.sender.type === 'bot')).toHaveLength(1);
    expect(conversation.unreadCount).toBe(1);
    // The greeting was stored with the conversation; the redelivery still sends it.
    await eventually(async () => {
      const { items: now } = await listMessages(conversation.id, { limit: 50, includePrivate: true });
      return now.find((m) => m.sender.type === 'bot')?.status === 'sent';
    });
  });

  it('greets a returning customer once when the consumer died between the autoresponder’s claim and its greeting', async () => {
    // Prepare: a customer answered and resolved, who writes again; the greeting's write fails once
    await retryQuickly();
    const from = phone(4, 6);
    expect(await postWhatsapp(stack, whatsappBody(from, 'first visit'))).toBe(200);
    const conversation = await eventually(async () => {
      const c = await conversationOf(from);
      return c?.autoresponded && (await queueDepth(stack, 'conversa-inbound.fifo')).inFlight === 0 ? c : undefined;
    }, 30_000);
    const token = await agentToken(stack.httpUrl, 'fault-agent', 'admin', 'Fault');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversation.id}/messages`, { body: { text: 'Sorted!' }, token })).status).toBe(202);
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversation.id}/resolve`, { token })).status).toBe(200);
    greetingWrite.armed = true;

    // Act
    expect(await postWhatsapp(stack, whatsappBody(from, 'back again'))).toBe(200);

    // Assess: the redelivery stored the greeting the first run had claimed, and it left once
    // Not the rating question the resolution asked.
    const greetings = async () => (await allMessages(conversation.id)).filter((m) => m.sender.type === 'bot' && m.text !== defaultSettings().csat.question);
    await eventually(async () => {
      const bot = await greetings();
      return bot.length === 2 && bot.every((m) => m.status === 'sent') ? bot : undefined;
    }, 30_000);
    expect(greetingWrite.failed).toBe(1);
    const greeting = (await greetings())[1]!;
    expect(stack.providers.outbox('whatsapp').filter((item) => JSON.stringify(item.body).includes(JSON.stringify(greeting.text).slice(1, -1)) && JSON.stringify(item.body).includes(from))).toHaveLength(2);
  });

  it('runs the hooks again for a message without a provider time (SMS) whose consumer died after the conversation update', async () => {
    // Prepare: SMS carries no provider timestamp, so its id comes from an idempotency claim
    await retryQuickly();
    const from = newHandle('sms');
    const failedBefore = hooksFail.failed;
    hooksFail.armed = true;

    // Act
    expect((await postWebhook(stack, 'sms', textWebhook('sms', from, 'sms hooked 0').body)).status).toBe(200);

    // Assess: the redelivery finds its claim applied last and resumes: the greeting goes out once, the timer is armed
    const conversation = await eventually(async () => {
      const c = await conversationOf(from, 'sms');
      return c && stack.aws.scheduler.list().some((s) => s.name === `autoResolve-${c.id}`) ? c : undefined;
    }, 60_000);
    expect(hooksFail.failed).toBe(failedBefore + 1);
    await eventually(async () => {
      const { items } = await listMessages(conversation.id, { limit: 50, includePrivate: true });
      return items.find((m) => m.sender.type === 'bot')?.status === 'sent';
    });
    const { items } = await listMessages(conversation.id, { limit: 50, includePrivate: true });
    expect(items.filter((m) => m.direction === 'inbound').map((m) => m.text)).toEqual(['sms hooked 0']);
    expect(items.filter((m) => m.sender.type === 'bot')).toHaveLength(1);
    expect(stack.providers.outbox('sms').filter((sent) => (sent.body as { To?: string }).To === from)).toHaveLength(1);
  });

  it('takes a rating whose first processing died after its write, and does nothing more when its hooks run again', async () => {
    // Prepare: a conversation as auto-resolve leaves it after asking for a rating
    await retryQuickly();
    const from = phone(4, 4);
    expect(await postWhatsapp(stack, whatsappBody(from, 'question 0'))).toBe(200);
    // Settled: the greeting's delivery (the outbound queue) re-arms the auto-resolve too, after the inbound consumer is done.
    const settled = async (queue: string) => {
      const depth = await queueDepth(stack, queue);
      return depth.inFlight === 0 && depth.visible === 0;
    };
    const conversation = await eventually(async () => {
      const c = await conversationOf(from);
      return c && stack.aws.scheduler.list().some((s) => s.name === `autoResolve-${c.id}`) && (await settled('conversa-inbound.fifo')) && (await settled('conversa-outbound.fifo')) ? c : undefined;
    }, 60_000);
    const askedAt = new Date().toISOString();
    await updateConversation(conversation.id, (c) => ({ ...c, status: 'resolved', resolvedAt: askedAt, engagement: { ...c.engagement, csatAskedAt: askedAt, csatResolvedAt: askedAt } }));
    for (const s of stack.aws.scheduler.list().filter((s) => s.name === `autoResolve-${conversation.id}`)) stack.aws.scheduler.deleteSchedule(s.name, s.groupName);
    const failedBefore = hooksFail.failed;
    const sentBefore = stack.providers.outbox('whatsapp').length;
    hooksFail.armed = true;

    // Act: the rating is written, then the consumer dies before the hooks ran; the queue delivers it again
    expect(await postWhatsapp(stack, whatsappBody(from, '5 - thanks'))).toBe(200);

    // Assess: recorded once, the conversation as it was; the hooks' second run routed, answered and armed nothing
    await eventually(() => hooksFail.failed === failedBefore + 1, 60_000);
    await eventually(async () => (await queueDepth(stack, 'conversa-inbound.fifo')).inFlight === 0 && (await queueDepth(stack, 'conversa-inbound.fifo')).visible === 0, 60_000);
    const rated = (await conversationOf(from))!;
    expect(rated).toMatchObject({ status: 'resolved', resolvedAt: askedAt, assigneeId: conversation.assigneeId, csat: { score: 5, comment: 'thanks' } });
    // The question stays open to ratings only: a second tap would be the newest rating, anything else reopens.
    expect(rated.engagement?.csatAskedAt).toBe(askedAt);
    expect(stack.aws.scheduler.list().some((s) => s.name === `autoResolve-${conversation.id}`)).toBe(false);
    expect(stack.providers.outbox('whatsapp').slice(sentBefore)).toEqual([]);
    const { items } = await listMessages(conversation.id, { limit: 50, includePrivate: true });
    expect(items.filter((m) => m.text === '5 - thanks')).toHaveLength(1);
  });
});

/** The reply left for the provider once, and is stored once, as `messageId`, sent. */
async function expectSentOnce(conversationId: string, text: string, messageId: string): Promise<void> {
  const sent = await eventually(() => {
    const out = stack.providers.outbox('whatsapp').filter((item) => JSON.stringify(item.body).includes(text));
    return out.length > 0 ? out : undefined;
  }, 30_000);
  await eventually(async () => (await queueDepth(stack, 'conversa-outbound.fifo')).inFlight === 0, 30_000);
  expect(sent).toHaveLength(1);
  const stored = (await allMessages(conversationId)).filter((m) => m.text === text);
  expect(stored.map((m) => m.id)).toEqual([messageId]);
  expect(stored[0]!.status).toBe('sent');
}

/** A customer (number `n` of the reply faults) who wrote, their conversation, and an agent's token to answer with. */
async function customerAwaitingReply(n: number, text: string) {
  const from = phone(5, n);
  expect(await postWhatsapp(stack, whatsappBody(from, text))).toBe(200);
  const conversation = await eventually(() => conversationOf(from), 60_000);
  const token = await agentToken(stack.httpUrl, 'fault-agent', 'admin', 'Fault');
  return { from, conversation, token };
}

/** The same reply posted twice, one after the other, as a client unsure of its first try does. */
async function sendTwice(conversationId: string, reply: { text: string; clientMessageId: string }, token: string) {
  const post = () => http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { body: reply, token });
  const first = await post();
  return [first, await post()] as const;
}

describe('agent reply faults', { timeout: 60_000 }, () => {
  it('queues a stored reply whose first enqueue failed when the client sends it again, and sends it once', async () => {
    // Prepare
    const { conversation, token } = await customerAwaitingReply(2, 'hello there');
    const reply = { text: `requeued reply ${crypto.randomUUID()}`, clientMessageId: crypto.randomUUID() };
    // The customer's message fully handled (its greeting queued), so the fault hits the reply's enqueue.
    await eventually(async () => {
      const depth = await queueDepth(stack, 'conversa-inbound.fifo');
      return depth.visible === 0 && depth.inFlight === 0;
    }, 30_000);
    replyEnqueue.armed = true;

    // Act: stored, then the enqueue fails (500); the client sends the same reply again
    const [first, second] = await sendTwice(conversation.id, reply, token);

    // Assess: one stored reply, sent once
    expect(replyEnqueue.failed).toBe(1);
    expect(first.status).toBe(500);
    expect(second.status).toBe(202);
    await expectSentOnce(conversation.id, reply.text, second.body.message.id);
  });

  it('leaves agents on the sent status of a reply retried while its first attempt was being delivered', async () => {
    // Prepare: a customer, an agent watching, and the provider holding its answer to the first send
    const { conversation, token } = await customerAwaitingReply(3, 'are you there?');
    const agent = await WsClient.connect(stack.wsUrl, token);
    const reply = { text: `reply retried in flight ${crypto.randomUUID()}`, clientMessageId: crypto.randomUUID() };
    let retryRead!: () => void;
    const retryHasRead = new Promise<void>((resolve) => (retryRead = resolve));
    stack.providers.holdNext('whatsapp', () => retryHasRead);

    // Act: the reply is taken and queued; its client, unsure, sends it again, and the retry reads it
    // still queued just before the delivery lets the provider answer and marks it sent
    const first = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversation.id}/messages`, { body: reply, token });
    expect(first.status).toBe(202);
    const messageId: string = first.body.message.id;
    const sent = agent.waitFor((f) => f.type === 'message.updated' && f.message.id === messageId && f.message.status === 'sent', 30_000, 'sent');
    slowRetryRead.pending = { messageId, read: retryRead, until: sent.then(() => undefined) };
    const second = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversation.id}/messages`, { body: reply, token });

    // Assess: the retry answered with the reply as it stands, and the agent's last word on it is "sent"
    expect(slowRetryRead.pending).toBeUndefined();
    expect(second.status).toBe(202);
    expect(second.body.message).toMatchObject({ id: messageId, status: 'sent' });
    await eventually(() => agent.frames.filter((f) => f.message?.id === messageId).at(-1)?.message.status === 'sent');
    await expectSentOnce(conversation.id, reply.text, messageId);
    await agent.close();
  });

  it('moves the conversation on for a reply whose conversation write failed, when the client sends it again', async () => {
    // Prepare: a customer nobody answered yet, and the next reply's conversation write set to fail
    const { from, conversation, token } = await customerAwaitingReply(4, 'hello, anyone?');
    const reply = { text: `caught up reply ${crypto.randomUUID()}`, clientMessageId: crypto.randomUUID() };
    replyApply.armed = true;

    // Act: the first POST fails after storing the message; the client sends the same reply again
    const [first, second] = await sendTwice(conversation.id, reply, token);

    // Assess: the reply counts as the first reply and the conversation's latest activity; sent once
    expect(replyApply.failed).toBe(1);
    expect(first.status).toBe(500);
    expect(second.status).toBe(202);
    const { createdAt } = second.body.message as { createdAt: string };
    expect(await conversationOf(from)).toMatchObject({ firstReplyAt: createdAt, lastMessageAt: createdAt });
    await expectSentOnce(conversation.id, reply.text, second.body.message.id);
  });

  /**
   * Sends `text` to the conversation as an agent's reply or as a campaign's message; answers the
   * stored message's id. A reply arms the follow-up; a campaign, no reply, re-arms auto-resolve.
   */
  const senders: [string, number, 'reengage' | 'autoResolve', (conversation: { id: string; contact: { id: string } }, text: string, token: string) => Promise<string>][] = [
    ['reply', 5, 'reengage', async (conversation, text, token) => {
      const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversation.id}/messages`, { body: { text }, token });
      expect(reply.status).toBe(202);
      return reply.body.message.id;
    }],
    ['campaign message', 6, 'autoResolve', async (conversation, text, token) => {
      const res = await http(stack.httpUrl, 'POST', '/v1/proactive', { token, body: { contactIds: [conversation.contact.id], text } });
      expect(res.status).toBe(202);
      return (await eventually(async () => (await allMessages(conversation.id)).find((m) => m.text === text), 30_000)).id;
    }],
  ];

  it.each(senders)('arms the timers of a %s whose delivery died after its status write, when the job comes back', async (_, n, timer, send) => {
    // Prepare: a customer's conversation with its greeting gone out, and redeliveries after 2 s
    const { conversation, token } = await customerAwaitingReply(n, 'anyone around?');
    const outbound = stack.aws.sqs.getQueue('conversa-outbound.fifo');
    await eventually(() => Object.values(outbound.counts()).every((n) => n === 0), 30_000);
    const visibility = outbound.visibilityTimeoutSeconds;
    outbound.visibilityTimeoutSeconds = 2;
    const failedBefore = replyHooksFail.failed;
    const armedAt = () => stack.aws.scheduler.list().find((s) => s.name === `${timer}-${conversation.id}`)?.fireAt?.getTime();
    // Schedules are armed to the second: a re-arm must land in a later one to be seen.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const armedBefore = armedAt();
    replyHooksFail.timer = { conversationId: conversation.id, kind: timer };
    replyHooksFail.armed = true;
    const console_ = await WsClient.connect(stack.wsUrl, token);
    try {
      // Act: the message is sent and marked sent; the consumer dies before the timers
      const text = `timers after a crash ${crypto.randomUUID()}`;
      const messageId = await send(conversation, text, token);

      // Assess: the job's next delivery armed its timer, and the message left once
      await eventually(() => replyHooksFail.failed > failedBefore && armedAt() !== undefined && armedAt() !== armedBefore, 20_000);
      expect(replyHooksFail.failed).toBe(failedBefore + 1);
      await expectSentOnce(conversation.id, text, messageId);
      // The agents were shown the message first, and never as queued again once it was sent (a
      // campaign's redelivery shows it again, as it stands).
      const frames = await eventually(() => {
        const about = console_.frames.filter((f) => f.message?.id === messageId);
        return about.some((f) => f.message.status === 'sent') && about;
      });
      expect(frames[0]!.type).toBe('message.created');
      const statuses = frames.map((f) => f.message.status as string);
      expect(statuses.slice(statuses.indexOf('sent'))).not.toContain('queued');
    } finally {
      outbound.visibilityTimeoutSeconds = visibility;
      await console_.close();
    }
  });

  it('stores and sends a reply once when its message write failed after the conversation update and the client retried', async () => {
    // Prepare: a customer's conversation, the agent's token, and the next reply's message write set to fail
    const { from, conversation, token } = await customerAwaitingReply(1, 'need help');
    const reply = { text: `retried reply ${crypto.randomUUID()}`, clientMessageId: crypto.randomUUID() };
    replyWrite.armed = true;

    // Act: the first POST fails, the client sends the same reply again
    const first = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversation.id}/messages`, { body: reply, token });
    const moved = await conversationOf(from);
    const second = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversation.id}/messages`, { body: reply, token });

    // Assess: the failure happened after the conversation had moved on; the retry stored the reply once, and it left once
    expect(replyWrite.failed).toBe(1);
    expect(first.status).toBe(500);
    expect(moved!.lastMessageAt > conversation.lastMessageAt).toBe(true);
    expect(second.status).toBe(202);
    await expectSentOnce(conversation.id, reply.text, second.body.message.id);
  });
});
