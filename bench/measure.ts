/**
 * The measurements that need the running stack: latencies, throughput with a store check, and
 * the resources (capacity units, invocations, frames) one inbound and one outbound message use.
 */
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LocalStack } from '../local/stack';
import type { FunctionName } from '../src/manifest';
import { capacityTotals } from '../src/aws/capacity';
import { getHandle } from '../src/store/contacts';
import { getMessage, listMessages } from '../src/store/messages';
import { getConversation, updateConversation } from '../src/store/conversations';
import { FrameWatch, phone, send, sendJson, whatsappStatusWebhook, whatsappWebhook } from './traffic';
import { summarize, waitUntil, type LatencySummary } from './stats';

/** Every handler invocation the stack reports, by function. */
export class Invocations {
  readonly byFunction = new Map<FunctionName, { count: number; billedMs: number; failed: number }>();

  readonly record = (fn: FunctionName, durationMs: number, failed: boolean): void => {
    const entry = this.byFunction.get(fn) ?? { count: 0, billedMs: 0, failed: 0 };
    entry.count += 1;
    // Lambda bills duration rounded up to the millisecond.
    entry.billedMs += Math.max(1, Math.ceil(durationMs));
    if (failed) entry.failed += 1;
    this.byFunction.set(fn, entry);
  };

  snapshot(): Map<FunctionName, { count: number; billedMs: number }> {
    return new Map([...this.byFunction].map(([fn, e]) => [fn, { count: e.count, billedMs: e.billedMs }]));
  }
}

export interface Bench {
  stack: LocalStack;
  invocations: Invocations;
  /** The agent whose WebSocket receives every conversation's events. */
  agent: FrameWatch;
  agentToken: string;
  /**
   * The agent's connection, named on its replies so that it gets no echo of them (a console has
   * its reply from the 202; src/domain/fanout.ts `sender`).
   */
  agentConnectionId: string;
  /** Distinguishes this run's phone numbers and texts from any earlier run's. */
  run: string;
}

const webhookUrl = (b: Bench) => `${b.stack.httpUrl}/webhooks/whatsapp`;

/** The agent's reply, named with the agent's connection (no echo to it), as a console sends it. */
async function postAgentReply(b: Bench, conversationId: string, text: string): Promise<void> {
  const reply = await sendJson(`${b.stack.httpUrl}/v1/conversations/${conversationId}/messages`, 'POST', { text, clientMessageId: crypto.randomUUID(), connectionId: b.agentConnectionId }, b.agentToken);
  if (reply.status !== 202) throw new Error(`agent reply answered ${reply.status}`);
}

async function postWebhook(b: Bench, from: string, text: string): Promise<number> {
  const { body, headers } = whatsappWebhook(from, text);
  const reply = await send(webhookUrl(b), 'POST', body, headers);
  if (reply.status !== 200) throw new Error(`webhook answered ${reply.status}: ${reply.body}`);
  return reply.status;
}

/** Waits until neither queue has a message waiting or in flight: every handler call has finished. */
export async function drainQueues(stack: LocalStack, timeoutMs = 60_000): Promise<void> {
  const queues = ['conversa-inbound.fifo', 'conversa-outbound.fifo'].map((name) => stack.aws.sqs.getQueue(name));
  await waitUntil(
    () => queues.every((q) => {
      const c = q.counts();
      return c.visible + c.inFlight + c.delayed === 0;
    }),
    timeoutMs,
    'the queues to drain',
    10,
  );
}

/** A bare node:http server that reads the body and answers 200: the floor the webhook ack is compared with. */
export async function startFloorServer(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/whatsapp`, server };
}

/**
 * The reference for a path that must hand each request on before it may answer (the webhook
 * queues its event first): a bare server that passes the body to a second bare server over a
 * keep-alive connection and answers 200 once that one has. Two exchanges, no work of our own.
 */
async function startChainServer(): Promise<{ url: string; close(): Promise<void> }> {
  const downstream = await startFloorServer();
  const agent = new Agent({ keepAlive: true });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const onward = request(downstream.url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (reply) => {
        reply.resume();
        reply.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('');
        });
      });
      onward.on('error', () => res.writeHead(502).end());
      onward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/whatsapp`,
    async close() {
      agent.destroy();
      await new Promise((resolve) => server.close(resolve));
      await new Promise((resolve) => downstream.server.close(resolve));
    },
  };
}

/**
 * Times the same request against each URL in turn, the order rotating from one round to the
 * next so that none always runs first after the others' background work. Rounds below zero
 * warm up and are not kept; `beforeRound` runs untimed.
 */
async function timeInterleaved(
  urls: string[],
  rounds: { from: number; to: number },
  requestOf: (round: number) => { body: string; headers: Record<string, string> },
  beforeRound?: () => Promise<void>,
): Promise<number[][]> {
  const samples = urls.map((): number[] => []);
  for (let round = rounds.from; round < rounds.to; round++) {
    await beforeRound?.();
    const { body, headers } = requestOf(round);
    for (let k = 0; k < urls.length; k++) {
      const at = (((round + k) % urls.length) + urls.length) % urls.length;
      const started = performance.now();
      const reply = await send(urls[at]!, 'POST', body, headers);
      if (reply.status !== 200) throw new Error(`${urls[at]} answered ${reply.status}: ${reply.body}`);
      if (round >= 0) samples[at]!.push(performance.now() - started);
    }
  }
  return samples;
}

/**
 * The webhook's ack beside the floor (samples interleaved: webhook, floor), then the bare
 * two-exchange chain beside a floor of its own, in a pass of its own: interleaved with the ack,
 * a third server would change the conditions the ack and its floor are compared in.
 */
export async function ackWithReferences(
  webhookUrl: string,
  rounds: { from: number; to: number },
  requestOf: (round: number) => { body: string; headers: Record<string, string> },
  beforeRound?: () => Promise<void>,
): Promise<AckResult> {
  const floor = await startFloorServer();
  try {
    const [stack, bare] = await timeInterleaved([webhookUrl, floor.url], rounds, requestOf, beforeRound);
    const chain = await startChainServer();
    try {
      const [chained, chainFloor] = await timeInterleaved([chain.url, floor.url], rounds, requestOf);
      const floorSummary = summarize(bare!);
      const chainSummary = summarize(chained!);
      return {
        ...summarize(stack!),
        floorP50Ms: floorSummary.p50Ms,
        floorP99Ms: floorSummary.p99Ms,
        chainP50Ms: chainSummary.p50Ms,
        chainP99Ms: chainSummary.p99Ms,
        chainFloorP50Ms: summarize(chainFloor!).p50Ms,
      };
    } finally {
      await chain.close();
    }
  } finally {
    await new Promise((resolve) => floor.server.close(resolve));
  }
}

const ACK_WARMUP = 20;
const ackText = (run: string, i: number, label = 'ack') => `${label} ${run} ${i}`;

/** Each sender's conversation, from the first ack-phase message the agent saw from it. */
export function conversationsOf(b: Bench, senders: string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const [s, from] of senders.entries()) {
    const first = b.agent.created.get(ackText(b.run, s - ACK_WARMUP));
    if (first) found.set(from, first.frame.conversationId);
  }
  if (found.size !== senders.length) throw new Error(`found ${found.size} of ${senders.length} conversations`);
  return found;
}

export interface AckResult extends LatencySummary {
  floorP50Ms: number;
  floorP99Ms: number;
  /** Two bare exchanges chained (startChainServer): the least a path that hands on first can take. */
  chainP50Ms: number;
  chainP99Ms: number;
  /** The floor measured beside the chain, in the chain's own pass. */
  chainFloorP50Ms: number;
}

/**
 * Signed webhook → 200, interleaved with the same request to the floor server (the order
 * alternates, so neither side always runs first after the other's background work); then the
 * bare two-exchange chain for reference (ackWithReferences).
 * With `idle`, each pair waits for the consumers to finish the previous message first: deployed,
 * the webhook function has a CPU of its own, while here every function shares one event loop.
 * Senders are reused later as the steady-state conversations.
 */
export async function measureWebhookAck(b: Bench, n: number, senders: string[], idle: boolean, label = 'ack'): Promise<AckResult> {
  const warmup = ACK_WARMUP;
  const result = await ackWithReferences(
    webhookUrl(b),
    { from: -warmup, to: n },
    (i) => whatsappWebhook(senders[(i + warmup) % senders.length]!, ackText(b.run, i, label)),
    idle ? () => drainQueues(b.stack) : undefined,
  );
  // The same texts went to the stack only once each: all must reach the agent before the next phase.
  await Promise.all(Array.from({ length: n + warmup }, (_, k) => b.agent.arrival(ackText(b.run, k - warmup, label), 60_000)));
  await drainQueues(b.stack);
  return result;
}

/** Provider webhook → `message.created` on the agent's WebSocket, one message at a time. */
export async function measureEndToEnd(b: Bench, n: number, senders: string[], label: string): Promise<LatencySummary> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const text = `${label} ${b.run} ${i}`;
    const arrival = b.agent.arrival(text);
    const started = performance.now();
    await postWebhook(b, senders[i % senders.length]!, text);
    samples.push((await arrival) - started);
  }
  await drainQueues(b.stack);
  return summarize(samples);
}

export interface Visitor {
  watch: FrameWatch;
  conversationId: string;
}

/** Web visitors who have written once, so each has a conversation and a live WebSocket. */
export async function openVisitors(b: Bench, count: number): Promise<Visitor[]> {
  const visitors: Visitor[] = [];
  for (let i = 0; i < count; i++) {
    const session = await sendJson<{ token: string }>(`${b.stack.httpUrl}/v1/widget/sessions`, 'POST', { name: `Visitor ${i}` });
    if (session.status !== 201) throw new Error(`widget session: ${session.status}`);
    const watch = await FrameWatch.connect(b.stack.wsUrl, session.body.token);
    const clientMessageId = crypto.randomUUID();
    const ack = watch.next((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
    watch.send({ action: 'sendMessage', text: `visitor ${b.run} ${i} hello`, clientMessageId });
    visitors.push({ watch, conversationId: String((await ack).conversationId) });
  }
  await drainQueues(b.stack);
  return visitors;
}

/** Agent POST /v1/conversations/{id}/messages → `message.created` on the visitor's WebSocket. */
export async function measureAgentReply(b: Bench, n: number, visitors: Visitor[], label = 'reply'): Promise<LatencySummary> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const visitor = visitors[i % visitors.length]!;
    const text = `${label} ${b.run} ${i}`;
    const arrival = visitor.watch.arrival(text);
    const started = performance.now();
    await postAgentReply(b, visitor.conversationId, text);
    samples.push((await arrival) - started);
  }
  await drainQueues(b.stack);
  return summarize(samples);
}

/** Visitor WebSocket `sendMessage` → `message.created` on the agent's WebSocket (the web chat's inbound path). */
export async function measureVisitorToAgent(b: Bench, n: number, visitors: Visitor[]): Promise<LatencySummary> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const visitor = visitors[i % visitors.length]!;
    const text = `visitor says ${b.run} ${i}`;
    const arrival = b.agent.arrival(text);
    const started = performance.now();
    visitor.watch.send({ action: 'sendMessage', text, clientMessageId: crypto.randomUUID() });
    samples.push((await arrival) - started);
  }
  await drainQueues(b.stack);
  return summarize(samples);
}

/** What a batch of messages used, per message. */
export interface PerMessageUsage {
  messages: number;
  wru: number;
  rru: number;
  /** Frames the one agent connection received. */
  agentFrames: number;
  /** Invocations and billed milliseconds by function. */
  lambda: Partial<Record<FunctionName, { invocations: number; billedMs: number }>>;
  /** HTTP API requests. */
  httpRequests: number;
  /** Sends the SQS stand-in served (webhooks, replies, greetings), plus ReceiveMessage and DeleteMessageBatch per consumer batch. */
  sqsRequests: number;
  /** One-time schedules created (each fires at most once). */
  schedules: number;
}

/** Runs `act` and divides what it used by `messages`. The stack must be otherwise idle. */
export async function usageOf(b: Bench, messages: number, httpRequests: number, act: () => Promise<void>): Promise<PerMessageUsage> {
  await drainQueues(b.stack);
  const sends = () => (b.stack.aws.sqs.requests.get('SendMessageBatch') ?? 0) + (b.stack.aws.sqs.requests.get('SendMessage') ?? 0);
  const before = { wru: capacityTotals.write, rru: capacityTotals.read, frames: b.agent.totalFrames(), calls: b.invocations.snapshot(), schedules: b.stack.aws.scheduler.list().length, sends: sends() };
  await act();
  await drainQueues(b.stack);
  const after = b.invocations.snapshot();
  const lambda: PerMessageUsage['lambda'] = {};
  let consumerBatches = 0;
  for (const [fn, now] of after) {
    const was = before.calls.get(fn) ?? { count: 0, billedMs: 0 };
    const count = now.count - was.count;
    if (count === 0) continue;
    lambda[fn] = { invocations: count / messages, billedMs: (now.billedMs - was.billedMs) / count };
    // The event source mapping's ReceiveMessage and DeleteMessageBatch (ours polls the stand-in's queue directly).
    if (fn === 'inbound' || fn === 'outbound') consumerBatches += count;
  }
  return {
    messages,
    wru: (capacityTotals.write - before.wru) / messages,
    rru: (capacityTotals.read - before.rru) / messages,
    agentFrames: (b.agent.totalFrames() - before.frames) / messages,
    lambda,
    httpRequests: httpRequests / messages,
    sqsRequests: (sends() - before.sends + 2 * consumerBatches) / messages,
    schedules: (b.stack.aws.scheduler.list().length - before.schedules) / messages,
  };
}

/** Each sender writes `perSender` messages, in order per sender, concurrently across senders. */
function customersWrite(b: Bench, senders: string[], perSender: number, tag: string): Promise<PerMessageUsage> {
  const total = senders.length * perSender;
  return usageOf(b, total, total, async () => {
    await Promise.all(senders.map(async (from, s) => {
      for (let k = 0; k < perSender; k++) await postWebhook(b, from, `${tag} ${b.run} ${s} ${k}`);
    }));
    await Promise.all(senders.flatMap((_, s) => Array.from({ length: perSender }, (_, k) => b.agent.arrival(`${tag} ${b.run} ${s} ${k}`))));
  });
}

/** The agent answers each sender's conversation `perSender` times, until the provider has every reply. */
function agentAnswers(b: Bench, senders: string[], perSender: number, conversationOf: Map<string, string>, tag: string): Promise<PerMessageUsage> {
  const total = senders.length * perSender;
  const sentBefore = b.stack.providers.outbox('whatsapp').length;
  return usageOf(b, total, total, async () => {
    await Promise.all(senders.map(async (from, s) => {
      const conversationId = conversationOf.get(from)!;
      for (let k = 0; k < perSender; k++) {
        await postAgentReply(b, conversationId, `${tag} ${b.run} ${s} ${k}`);
      }
    }));
    await waitUntil(() => b.stack.providers.outbox('whatsapp').length >= sentBefore + total, 60_000, 'the replies to reach the provider');
  });
}

/** Messages sent at once in each round of measureBatched: about the steady phase's batch size. */
export const BATCH_ROUND = 8;

/**
 * Consumer durations with batches as the steady phase forms them (about 8 records) but nothing
 * else running: rounds of BATCH_ROUND customers writing at once, then the agent answering them at
 * once. The steady phase shows how records share batches, but its invocations' wall times include
 * the rest of the burst's CPU in this one process; the one-at-a-time phases' durations are a single
 * record's. A batch's records of different conversations run concurrently, so its duration is
 * neither.
 */
export async function measureBatched(b: Bench, senders: string[], rounds: number, conversationOf: Map<string, string>): Promise<{ inbound: PerMessageUsage; outbound: PerMessageUsage }> {
  const groups = Array.from({ length: rounds }, (_, r) => Array.from({ length: BATCH_ROUND }, (_, i) => senders[(r * BATCH_ROUND + i) % senders.length]!));
  const total = rounds * BATCH_ROUND;
  const inbound = await usageOf(b, total, total, async () => {
    for (const [r, group] of groups.entries()) {
      await Promise.all(group.map((from, i) => postWebhook(b, from, `batched ${b.run} ${r} ${i}`)));
      await Promise.all(group.map((_, i) => b.agent.arrival(`batched ${b.run} ${r} ${i}`)));
      await drainQueues(b.stack);
    }
  });
  const outbound = await usageOf(b, total, total, async () => {
    for (const [r, group] of groups.entries()) {
      const sentBefore = b.stack.providers.outbox('whatsapp').length;
      await Promise.all(group.map((from, i) => postAgentReply(b, conversationOf.get(from)!, `batched answer ${b.run} ${r} ${i}`)));
      await waitUntil(() => b.stack.providers.outbox('whatsapp').length >= sentBefore + group.length, 60_000, 'the batched replies to reach the provider');
      await drainQueues(b.stack);
    }
  });
  return { inbound, outbound };
}

/**
 * What a conversation gathers over a few days, past 1 KB: labels, a team, the customer's name
 * and email, a rating with a comment. Written straight to the store, before the measurement.
 */
async function growConversations(b: Bench, conversationIds: Iterable<string>): Promise<void> {
  for (const id of conversationIds) {
    await updateConversation(id, (c) => ({
      ...c,
      contact: { ...c.contact, name: `Customer ${b.run} with a longer full name`, email: `customer.${b.run}.${id.toLowerCase()}@example-company.com` },
      labels: ['billing-issue', 'follow-up', 'refund-requested', 'vip'],
      team: 'billing',
      csat: { score: 3, comment: 'Helpful in the end, but I had to explain the problem twice before anyone looked at the invoice.', at: c.updatedAt },
    }));
  }
}

/**
 * Steady state: customers who already have an open conversation write (concurrently across
 * customers, in order per customer), then an agent answers each of them once per message.
 */
export async function measureUsage(
  b: Bench,
  senders: string[],
  perSender: number,
  conversationOf: Map<string, string>,
): Promise<{ inbound: PerMessageUsage; outbound: PerMessageUsage; firstInbound: PerMessageUsage; receipts: PerMessageUsage; grownInbound: PerMessageUsage; grownOutbound: PerMessageUsage }> {
  const inbound = await customersWrite(b, senders, perSender, 'steady');
  const sentBefore = b.stack.providers.outbox('whatsapp').length;
  const outbound = await agentAnswers(b, senders, perSender, conversationOf, 'answer');

  // The Cloud API reports each reply's progress in three more webhooks (sent, delivered, read),
  // one at a time here, so that each is priced with its own invocations.
  // The replies' provider ids are read before the measurement, which counts every DynamoDB request.
  const sends = b.stack.providers.outbox('whatsapp').slice(sentBefore).filter((item) => item.status === 200);
  const replies = await Promise.all(
    sends.map(async (item) => {
      const { to, biz_opaque_callback_data: reference } = item.body as { to: string; biz_opaque_callback_data: string };
      const [conversationId, messageId] = reference.split('/') as [string, string];
      const providerMessageId = (await getMessage(conversationId, messageId))?.providerMessageId;
      if (!providerMessageId) throw new Error(`reply ${messageId} has no provider id`);
      return { to, reference, providerMessageId };
    }),
  );
  const receipts = await usageOf(b, replies.length, replies.length * RECEIPTS.length, async () => {
    for (const { to, reference, providerMessageId } of replies) {
      for (const status of RECEIPTS) {
        const { body, headers } = whatsappStatusWebhook(to, providerMessageId, status, reference);
        const reply = await send(webhookUrl(b), 'POST', body, headers);
        if (reply.status !== 200) throw new Error(`status webhook answered ${reply.status}`);
      }
    }
  });

  // A customer's first message also creates the contact, its handle and the conversation.
  const newcomers = senders.map((_, s) => phone(b.run, 90_000 + s));
  const firstInbound = await usageOf(b, newcomers.length, newcomers.length, async () => {
    await Promise.all(newcomers.map((from, s) => postWebhook(b, from, `first ${b.run} ${s}`)));
    await Promise.all(newcomers.map((_, s) => b.agent.arrival(`first ${b.run} ${s}`)));
  });
  // What the first message's units are meant to include: routing gave each conversation an agent.
  const unassigned = (
    await Promise.all(newcomers.map((_, s) => getConversation(b.agent.created.get(`first ${b.run} ${s}`)!.frame.conversationId, true)))
  ).filter((c) => !c?.assigneeId);
  if (unassigned.length > 0) throw new Error(`${unassigned.length} first messages were not routed to the bench agent`);

  // The same conversations once they have grown past 1 KB: each write of the item costs 2 WRU.
  await growConversations(b, conversationOf.values());
  const grownInbound = await customersWrite(b, senders, 1, 'grown');
  const grownOutbound = await agentAnswers(b, senders, 1, conversationOf, 'grown answer');
  return { inbound, outbound, firstInbound, receipts, grownInbound, grownOutbound };
}

const RECEIPTS = ['sent', 'delivered', 'read'] as const;


export interface ThroughputResult {
  messages: number;
  seconds: number;
  perSecond: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  senders: number;
}

/**
 * A burst from many new customers at once, each sending its messages in order (the next after
 * the previous one's 200, as a provider does). Timed until the last `message.created` reaches
 * the agent; then every customer's conversation is read back from the store.
 */
export async function measureThroughput(b: Bench, senderCount: number, perSender: number): Promise<ThroughputResult> {
  const senders = Array.from({ length: senderCount }, (_, s) => phone(b.run, 50_000 + s));
  const text = (s: number, k: number) => `burst ${b.run} ${s} ${k}`;
  const started = performance.now();
  await Promise.all(senders.map(async (from, s) => {
    for (let k = 0; k < perSender; k++) await postWebhook(b, from, text(s, k));
  }));
  const arrivals = await Promise.all(senders.flatMap((_, s) => Array.from({ length: perSender }, (_, k) => b.agent.arrival(text(s, k), 120_000))));
  const seconds = (Math.max(...arrivals) - started) / 1000;
  await drainQueues(b.stack);

  let lost = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  for (const [s, from] of senders.entries()) {
    const handle = await getHandle('whatsapp', from);
    const texts = handle?.conversationId ? await allTexts(handle.conversationId) : [];
    const sequence = texts.filter((t) => t.startsWith(`burst ${b.run} ${s} `)).map((t) => Number(t.split(' ').pop()));
    const distinct = new Set(sequence);
    lost += perSender - distinct.size;
    duplicated += sequence.length - distinct.size;
    for (let i = 1; i < sequence.length; i++) if (sequence[i]! < sequence[i - 1]!) outOfOrder += 1;
  }
  const messages = senderCount * perSender;
  return { messages, seconds: Math.round(seconds * 1000) / 1000, perSecond: Math.round(messages / seconds), lost, duplicated, outOfOrder, senders: senderCount };
}

/** Every message text of a conversation, oldest first. */
async function allTexts(conversationId: string): Promise<string[]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await listMessages(conversationId, { limit: 100, ...(cursor ? { cursor } : {}), includePrivate: true });
    pages.unshift(page.items.map((m) => m.text));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return pages.flat();
}
