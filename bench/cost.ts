/**
 * USD per million messages, from what one inbound and one outbound message measurably used on
 * the local stack, AWS list prices (bench/prices.ts) and the assumptions below.
 */
import { FUNCTIONS, type FunctionName } from '../src/manifest';
import { PRICES } from './prices';
import type { PerMessageUsage } from './measure';

/** What the measurements cannot know; each is a stated guess about a typical workspace. */
export const ASSUMPTIONS = {
  /** Share of messages that are the customer's; the rest are agent replies. */
  inboundShare: 0.5,
  /** A conversation's messages (both directions): its first message's extra cost is spread over them. */
  messagesPerConversation: 10,
  /**
   * Agent consoles that get each event of a conversation: its assignee's, with consoles on the
   * focused feed (`?feed=focused`, src/domain/fanout.ts; the bench's agent uses it). Each admin
   * console adds one; a conversation waiting unassigned reaches every agent; a console on the
   * full feed gets every conversation's events and a conversation.updated after each message.
   * The replying console names its connection (POST .../messages `connectionId`, from the `getConnection` action)
   * and gets no echo of its own reply; its status updates still reach it.
   */
  agentConnectionsPerConversation: 1,
  /** Messages the team handles per agent-connection minute: one agent, one message a minute. */
  messagesPerAgentConnectionMinute: 1,
  /**
   * CloudWatch Logs per fired timer: the engagement function's one INFO line with Powertools'
   * context fields. The functions log JSON with the platform's lines at WARN
   * (lib/constructs/conversa-function.ts), so an invocation that goes well writes no
   * START/END/REPORT lines; failures are not priced.
   */
  logBytesPerTimerFire: 500,
  /** Scheduled engagement timers that fire per conversation (auto-resolve, re-engagement). */
  scheduleFiresPerConversation: 1,
  channel: 'whatsapp (provider webhooks and Cloud API sends); web chat adds visitor frames and connection minutes',
} as const;

export interface CostModel {
  total: number;
  breakdown: Record<string, number>;
  assumptions: typeof ASSUMPTIONS;
  pricesAsOf: string;
  region: string;
}

/** One service's cost for a mixed message, given per-inbound and per-outbound quantities. */
function mix(perInbound: number, perOutbound: number): number {
  return ASSUMPTIONS.inboundShare * perInbound + (1 - ASSUMPTIONS.inboundShare) * perOutbound;
}

/**
 * Invocations come from the concurrent batch (it shows how records share batches); durations from
 * the one-at-a-time phase, because in one process concurrent handlers' wall times include each
 * other's CPU, while each Lambda invocation has its own. A consumer's batch is timed apart
 * (`batched`: batches of about the steady phase's size with nothing else running), at its billed
 * milliseconds per record: a one-record invocation's duration per batch would leave out the
 * other records' work.
 */
function lambdaCost(usage: PerMessageUsage, timing: PerMessageUsage, batched?: PerMessageUsage): { compute: number; requests: number; invocations: number } {
  let compute = 0;
  let invocations = 0;
  for (const [fn, used] of Object.entries(usage.lambda) as [FunctionName, { invocations: number; billedMs: number }][]) {
    const gb = FUNCTIONS[fn].memoryMb / 1024;
    const batch = used.invocations < 1 ? batched?.lambda[fn] : undefined;
    const msPerMessage = batch ? batch.invocations * batch.billedMs : used.invocations * (timing.lambda[fn]?.billedMs ?? used.billedMs);
    compute += (msPerMessage / 1000) * gb * PRICES.lambda.armGbSecond;
    invocations += used.invocations;
  }
  return { compute, requests: (invocations * PRICES.lambda.perMillionRequests) / 1e6, invocations };
}

/**
 * An inbound message with its first message's extra (contact, handle, conversation, assignment,
 * greeting: writes, frames, the greeting's send and its queue requests) spread over the conversation.
 * Durations stay the steady message's: the first message's own were measured concurrently.
 */
function amortizedInbound(steady: PerMessageUsage, first: PerMessageUsage): PerMessageUsage {
  const inboundPerConversation = ASSUMPTIONS.messagesPerConversation * ASSUMPTIONS.inboundShare;
  const spread = (a: number, b: number) => a + (b - a) / inboundPerConversation;
  const lambda: PerMessageUsage['lambda'] = {};
  for (const fn of new Set([...Object.keys(steady.lambda), ...Object.keys(first.lambda)]) as Set<FunctionName>) {
    const [s, f] = [steady.lambda[fn], first.lambda[fn]];
    lambda[fn] = { invocations: spread(s?.invocations ?? 0, f?.invocations ?? 0), billedMs: s?.billedMs ?? f!.billedMs };
  }
  return {
    messages: steady.messages,
    wru: spread(steady.wru, first.wru),
    rru: spread(steady.rru, first.rru),
    agentFrames: spread(steady.agentFrames, first.agentFrames),
    lambda,
    httpRequests: spread(steady.httpRequests, first.httpRequests),
    sqsRequests: spread(steady.sqsRequests, first.sqsRequests),
    schedules: spread(steady.schedules, first.schedules),
  };
}

export interface MeasuredUsage {
  inbound: PerMessageUsage;
  outbound: PerMessageUsage;
  firstInbound: PerMessageUsage;
  /** One message at a time: webhook → agent, and agent reply → visitor. */
  sequentialInbound: PerMessageUsage;
  sequentialOutbound: PerMessageUsage;
  /** Batches of about the steady phase's size, nothing else running: consumers' durations per record. */
  batchedInbound?: PerMessageUsage;
  batchedOutbound?: PerMessageUsage;
}

/**
 * Two usages of one message added up: `extra` is what the message causes besides (a reply's
 * delivery receipts). Lambda durations are averaged over both sides' invocations.
 */
export function withExtra(base: PerMessageUsage, extra: PerMessageUsage): PerMessageUsage {
  const lambda: PerMessageUsage['lambda'] = { ...base.lambda };
  for (const [fn, more] of Object.entries(extra.lambda) as [FunctionName, { invocations: number; billedMs: number }][]) {
    const was = lambda[fn];
    const invocations = (was?.invocations ?? 0) + more.invocations;
    const billedMs = ((was?.invocations ?? 0) * (was?.billedMs ?? 0) + more.invocations * more.billedMs) / invocations;
    lambda[fn] = { invocations, billedMs };
  }
  return {
    messages: base.messages,
    wru: base.wru + extra.wru,
    rru: base.rru + extra.rru,
    agentFrames: base.agentFrames + extra.agentFrames,
    lambda,
    httpRequests: base.httpRequests + extra.httpRequests,
    sqsRequests: base.sqsRequests + extra.sqsRequests,
    schedules: base.schedules + extra.schedules,
  };
}

export function costPerMillion({ inbound: steadyInbound, outbound, firstInbound, sequentialInbound, sequentialOutbound, batchedInbound, batchedOutbound }: MeasuredUsage): CostModel {
  const million = 1e6;
  const inbound = amortizedInbound(steadyInbound, firstInbound);
  // A greeting's send is timed as a reply's (one at a time).
  const lambdaIn = lambdaCost(inbound, { ...sequentialInbound, lambda: { ...sequentialOutbound.lambda, ...sequentialInbound.lambda } }, batchedInbound);
  const lambdaOut = lambdaCost(outbound, sequentialOutbound, batchedOutbound);
  const breakdown: Record<string, number> = {
    apiGatewayHttp: mix(inbound.httpRequests, outbound.httpRequests) * PRICES.apiGateway.httpPerMillionRequests,
    apiGatewayWebSocketMessages:
      mix(inbound.agentFrames, outbound.agentFrames) * ASSUMPTIONS.agentConnectionsPerConversation * PRICES.apiGateway.websocketPerMillionMessages,
    apiGatewayWebSocketMinutes: (1 / ASSUMPTIONS.messagesPerAgentConnectionMinute) * PRICES.apiGateway.websocketPerMillionConnectionMinutes,
    lambdaCompute: mix(lambdaIn.compute, lambdaOut.compute) * million,
    lambdaRequests: mix(lambdaIn.requests, lambdaOut.requests) * million,
    sqs: mix(inbound.sqsRequests, outbound.sqsRequests) * PRICES.sqs.fifoPerMillionRequests,
    dynamodbWrites: mix(inbound.wru, outbound.wru) * PRICES.dynamodb.perMillionWriteRequestUnits,
    dynamodbReads: mix(inbound.rru, outbound.rru) * PRICES.dynamodb.perMillionReadRequestUnits,
    // Each message replaces its conversation's timers (creating schedules is free); only the last ones fire.
    scheduler: (ASSUMPTIONS.scheduleFiresPerConversation / ASSUMPTIONS.messagesPerConversation) * PRICES.scheduler.perMillionInvocations,
    cloudwatchLogs:
      ((ASSUMPTIONS.scheduleFiresPerConversation / ASSUMPTIONS.messagesPerConversation) * million * ASSUMPTIONS.logBytesPerTimerFire * PRICES.cloudwatchLogs.perGbIngested) / 1024 ** 3,
  };
  for (const key of Object.keys(breakdown)) breakdown[key] = Math.round(breakdown[key]! * 1000) / 1000;
  const total = Math.round(Object.values(breakdown).reduce((a, b) => a + b, 0) * 100) / 100;
  return { total, breakdown, assumptions: ASSUMPTIONS, pricesAsOf: PRICES.asOf, region: PRICES.region };
}
