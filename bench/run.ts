/**
 * `npm run bench`: every figure of CONTRACT.md section 6, measured in one run against the
 * local stack, written to bench/results.json and printed with the issue's targets.
 * BENCH_QUICK=1 shrinks the samples so the whole run takes under a minute.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalStack, type LocalStack } from '../local/stack';
import { ENV } from '../src/config';
import { resetCapacityTotals } from '../src/aws/capacity';
import { costPerMillion, withExtra } from './cost';
import { measureBundles } from './bundles';
import {
  Invocations,
  measureAgentReply,
  measureEndToEnd,
  measureThroughput,
  measureVisitorToAgent,
  measureBatched,
  measureUsage,
  measureWebhookAck,
  conversationsOf,
  openVisitors,
  usageOf,
  type AckResult,
  type Bench,
} from './measure';
import { FrameWatch, phone, sendJson } from './traffic';
import { printReport } from './report';
import type { LatencySummary } from './stats';

const quick = process.env.BENCH_QUICK === '1';
// Quick runs keep the usage phase (steady senders) at full size: batch sizes decide the SQS
// requests and Lambda invocations per message, and small phases would price them high.
const SIZES = quick
  ? { ack: 60, endToEnd: 60, firstMessage: 10, agentReply: 40, visitors: 5, steadySenders: 20, steadyPerSender: 10, batchedRounds: 5, burstSenders: 30, burstPerSender: 10, bundleLoads: 3 }
  : { ack: 500, endToEnd: 300, firstMessage: 100, agentReply: 200, visitors: 20, steadySenders: 20, steadyPerSender: 10, batchedRounds: 25, burstSenders: 200, burstPerSender: 10, bundleLoads: 7 };

const BENCH_AGENT = 'bench-agent';
/** Unmeasured messages before each one-at-a-time phase. */
const SEQUENTIAL_WARMUP = 50;

/**
 * A team with room for every new conversation, as a staffed workspace has: each customer's
 * first message is then routed to the agent, and its capacity units include the assignment.
 */
async function giveAgentRoom(stack: LocalStack): Promise<void> {
  const admin = stack.issueAgentToken('bench-admin', 'admin', 'Bench admin');
  const reply = await sendJson(`${stack.httpUrl}/v1/agents/${BENCH_AGENT}`, 'PUT', { asyncCapacity: 200 }, admin);
  if (reply.status !== 200) throw new Error(`raising the agent's capacity answered ${reply.status}`);
}

async function measureStack() {
  const invocations = new Invocations();
  // Every bench visitor writes from 127.0.0.1: one network address's limit would stop the phases, not measure them.
  const stack = await startLocalStack({ httpPort: 0, wsPort: 0, onInvoke: invocations.record, env: { [ENV.visitorAddressSends]: '1000000' } });
  const run = String(Date.now() % 100_000).padStart(5, '0');
  const agentToken = stack.issueAgentToken(BENCH_AGENT, 'agent', 'Bench');
  // The agent console's focused feed: what bench/cost.ts prices.
  const agent = await FrameWatch.connect(stack.wsUrl, agentToken, { focused: true });
  const bench: Bench = { stack, invocations, agent, agentToken, agentConnectionId: await agent.connectionId(), run };
  try {
    await giveAgentRoom(stack);
    resetCapacityTotals();
    const senders = Array.from({ length: SIZES.steadySenders }, (_, i) => phone(run, i));
    const webhookAck = await measureWebhookAck(bench, SIZES.ack, senders, true);
    // The same while the consumers work through the messages: what one shared event loop adds.
    const webhookAckWhileConsuming = await measureWebhookAck(bench, SIZES.ack, senders, false, 'busy');
    // The ack phase opened a conversation per sender: the agent replies go there.
    const conversationOf = conversationsOf(bench, senders);
    // Both one-at-a-time phases start warm, in quick runs too: they price each invocation's
    // duration, and a deployed function serving a million messages is nearly always warm.
    await measureEndToEnd(bench, SEQUENTIAL_WARMUP, senders, 'e2e-warmup');
    let endToEnd!: LatencySummary;
    const sequentialInbound = await usageOf(bench, SIZES.endToEnd, SIZES.endToEnd, async () => {
      endToEnd = await measureEndToEnd(bench, SIZES.endToEnd, senders, 'e2e');
    });
    const newcomers = Array.from({ length: SIZES.firstMessage }, (_, i) => phone(run, 70_000 + i));
    const endToEndFirstMessage = await measureEndToEnd(bench, SIZES.firstMessage, newcomers, 'e2e-first');
    const visitors = await openVisitors(bench, SIZES.visitors);
    await measureAgentReply(bench, SEQUENTIAL_WARMUP, visitors, 'reply-warmup');
    let agentReply!: LatencySummary;
    const sequentialOutbound = await usageOf(bench, SIZES.agentReply, SIZES.agentReply, async () => {
      agentReply = await measureAgentReply(bench, SIZES.agentReply, visitors);
    });
    const visitorToAgent = await measureVisitorToAgent(bench, SIZES.agentReply, visitors);
    const batched = await measureBatched(bench, senders, SIZES.batchedRounds, conversationOf);
    const usage = { ...(await measureUsage(bench, senders, SIZES.steadyPerSender, conversationOf)), sequentialInbound, sequentialOutbound, batchedInbound: batched.inbound, batchedOutbound: batched.outbound };
    const throughput = await measureThroughput(bench, SIZES.burstSenders, SIZES.burstPerSender);
    for (const v of visitors) v.watch.close();
    return { webhookAck, webhookAckWhileConsuming, endToEnd, endToEndFirstMessage, agentReply, visitorToAgent, usage, throughput };
  } finally {
    agent.close();
    await stack.stop();
  }
}

/** The webhook ack with the webhook alone in its process (bench/isolated-ack.ts). */
function measureIsolatedAck(n: number): AckResult {
  const child = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'isolated-ack.ts'), String(n)], {
    encoding: 'utf8',
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  if (child.status !== 0) throw new Error(`isolated ack run failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!) as AckResult;
}

const started = Date.now();
const webhookAckIsolated = measureIsolatedAck(SIZES.ack);
const measured = await measureStack();
// Bundles last, with the stack stopped, so the cold loads do not share the CPU with it.
const bundles = await measureBundles(SIZES.bundleLoads);
const { inbound, outbound, firstInbound, receipts, grownInbound, grownOutbound } = measured.usage;
const round = (x: number) => Math.round(x * 100) / 100;

const results = {
  at: new Date().toISOString(),
  quick,
  webhookAck: { ...measured.webhookAck, conditions: 'consumers idle between samples (deployed, the webhook function has its own CPU)' },
  endToEnd: measured.endToEnd,
  agentReply: measured.agentReply,
  visitorToAgent: measured.visitorToAgent,
  throughput: measured.throughput,
  dynamodb: {
    wruPerInbound: round(inbound.wru),
    rruPerInbound: round(inbound.rru),
    wruPerOutbound: round(outbound.wru),
    rruPerOutbound: round(outbound.rru),
    wruPerFirstInbound: round(firstInbound.wru),
    rruPerFirstInbound: round(firstInbound.rru),
    // A conversation past 1 KB (labels, a team, the customer's email, a rated comment).
    wruPerInboundGrown: round(grownInbound.wru),
    rruPerInboundGrown: round(grownInbound.rru),
    wruPerOutboundGrown: round(grownOutbound.wru),
    rruPerOutboundGrown: round(grownOutbound.rru),
    source: 'ReturnConsumedCapacity TOTAL (table and indexes) as DynamoDB Local reports it, summed over every request of the path',
  },
  bundles,
  costUsdPerMillionMessages: costPerMillion(measured.usage),
  // The same mix with the three status webhooks WhatsApp sends per reply (sent, delivered, read).
  costUsdPerMillionMessagesWithReceipts: costPerMillion({
    ...measured.usage,
    outbound: withExtra(outbound, receipts),
    sequentialOutbound: withExtra(measured.usage.sequentialOutbound, receipts),
  }),
  endToEndFirstMessage: measured.endToEndFirstMessage,
  webhookAckWhileConsuming: measured.webhookAckWhileConsuming,
  webhookAckIsolated: { ...webhookAckIsolated, conditions: 'webhook function alone in its process: HTTP gateway stand-in + handler + SQS stand-in, as deployed' },
  usagePerMessage: measured.usage,
  machine: { node: process.version, seconds: Math.round((Date.now() - started) / 100) / 10 },
};

writeFileSync(join(import.meta.dirname, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
printReport(results);
