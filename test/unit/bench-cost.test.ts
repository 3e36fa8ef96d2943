/** bench/cost.ts: what one message measurably used, priced per million messages. */
import { describe, expect, it } from 'vitest';
import { ASSUMPTIONS, costPerMillion } from '../../bench/cost';
import type { PerMessageUsage } from '../../bench/measure';
import { PRICES } from '../../bench/prices';
import { FUNCTIONS } from '../../src/manifest';

const usage = (over: Partial<PerMessageUsage>): PerMessageUsage => ({
  messages: 100,
  wru: 4,
  rru: 2,
  agentFrames: 1,
  lambda: {},
  httpRequests: 1,
  sqsRequests: 1,
  schedules: 0,
  ...over,
});

describe('costPerMillion', () => {
  it("spreads everything a customer's first message measurably adds over its conversation, not only its capacity units", () => {
    // Prepare: a steady inbound message and a reply; a first message that also gets a greeting
    // (two more frames, one outbound invocation, a send and its receive and delete)
    const inbound = usage({ lambda: { webhook: { invocations: 1, billedMs: 4 }, inbound: { invocations: 1, billedMs: 16 } } });
    const outbound = usage({ lambda: { api: { invocations: 1, billedMs: 30 }, outbound: { invocations: 1, billedMs: 50 } } });
    const firstInbound = usage({
      wru: 12,
      agentFrames: 3,
      sqsRequests: 4,
      lambda: { webhook: { invocations: 1, billedMs: 4 }, inbound: { invocations: 1, billedMs: 16 }, outbound: { invocations: 1, billedMs: 900 } },
    });

    // Act
    const { breakdown } = costPerMillion({ inbound, outbound, firstInbound, sequentialInbound: inbound, sequentialOutbound: outbound });
    const steady = costPerMillion({ inbound, outbound, firstInbound: inbound, sequentialInbound: inbound, sequentialOutbound: outbound }).breakdown;

    // Assess: the extra divided by the conversation's inbound messages, in the inbound half of the mix
    const perConversation = ASSUMPTIONS.messagesPerConversation * ASSUMPTIONS.inboundShare;
    const half = ASSUMPTIONS.inboundShare;
    expect(breakdown.dynamodbWrites).toBeCloseTo(steady.dynamodbWrites! + (half * 8 * PRICES.dynamodb.perMillionWriteRequestUnits) / perConversation, 2);
    expect(breakdown.apiGatewayWebSocketMessages).toBeCloseTo(steady.apiGatewayWebSocketMessages! + (half * 2 * PRICES.apiGateway.websocketPerMillionMessages) / perConversation, 2);
    expect(breakdown.sqs).toBeCloseTo(steady.sqs! + (half * 3 * PRICES.sqs.fifoPerMillionRequests) / perConversation, 2);
    expect(breakdown.lambdaRequests).toBeCloseTo(steady.lambdaRequests! + (half * PRICES.lambda.perMillionRequests) / perConversation, 2);
    // The greeting's send timed as a reply's is (one at a time: 50 ms), not as measured beside others (900 ms).
    const greetingCompute = (50 / 1000) * (FUNCTIONS.outbound.memoryMb / 1024) * PRICES.lambda.armGbSecond * 1e6;
    expect(breakdown.lambdaCompute).toBeCloseTo(steady.lambdaCompute! + (half * greetingCompute) / perConversation, 2);
  });

  it("prices a consumer's batch at its records' measured work, not at one record's duration per batch", () => {
    // Prepare: records share batches of 8 (0.125 invocations a message); one record alone takes
    // 20 ms, a batch of 8 with nothing else running 60 ms
    const inbound = usage({ lambda: { webhook: { invocations: 1, billedMs: 4 }, inbound: { invocations: 0.125, billedMs: 400 } } });
    const sequentialInbound = usage({ lambda: { webhook: { invocations: 1, billedMs: 4 }, inbound: { invocations: 1, billedMs: 20 } } });
    const batchedInbound = usage({ lambda: { webhook: { invocations: 1, billedMs: 4 }, inbound: { invocations: 0.125, billedMs: 60 } } });
    const outbound = usage({ lambda: { api: { invocations: 1, billedMs: 30 } } });
    const measured = { inbound, outbound, firstInbound: inbound, sequentialInbound, sequentialOutbound: outbound };

    // Act
    const batched = costPerMillion({ ...measured, batchedInbound }).breakdown;
    const unbatched = costPerMillion(measured).breakdown;

    // Assess: 7.5 ms of the consumer a message (60 / 8), where one record's 20 ms per batch gave 2.5
    const gbMs = (ms: number, fn: 'inbound' | 'webhook' | 'api') => (ms / 1000) * (FUNCTIONS[fn].memoryMb / 1024) * PRICES.lambda.armGbSecond * 1e6;
    const half = ASSUMPTIONS.inboundShare;
    const rest = half * gbMs(4, 'webhook') + (1 - half) * gbMs(30, 'api');
    expect(batched.lambdaCompute).toBeCloseTo(rest + half * gbMs(7.5, 'inbound'), 3);
    expect(unbatched.lambdaCompute).toBeCloseTo(rest + half * gbMs(2.5, 'inbound'), 3);
    // Requests still follow how records share batches.
    expect(batched.lambdaRequests).toBe(unbatched.lambdaRequests);
  });
});
