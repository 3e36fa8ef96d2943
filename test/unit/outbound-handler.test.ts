/**
 * The outbound consumer's retry bookkeeping, with the domain and SQS mocked: a conversation's
 * jobs behind a failing one wait out its backoff, and one of them about to reach the DLQ without
 * ever being tried is marked failed instead.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { ChangeMessageVisibilityBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { QUEUES } from '../../src/manifest';

const domain = vi.hoisted(() => ({ deliverOutbound: vi.fn(), abandonOutbound: vi.fn() }));
vi.mock('../../src/domain/outbound', async (importOriginal) => ({ ...(await importOriginal<object>()), ...domain }));
const { RetryableSendError } = await import('../../src/domain/outbound');
const { handler, backoffSeconds } = await import('../../functions/outbound/handler');

const sqs = mockClient(SQSClient);

const record = (id: string, group: string, receiveCount: number): SQSRecord =>
  ({
    messageId: id,
    receiptHandle: `rh-${id}`,
    body: JSON.stringify({ conversationId: group, messageId: `msg-${id}` }),
    attributes: { MessageGroupId: group, ApproximateReceiveCount: String(receiveCount) },
  }) as unknown as SQSRecord;

beforeEach(() => {
  vi.stubEnv('OUTBOUND_QUEUE_URL', 'http://sqs.local/000000000000/conversa-outbound.fifo');
  sqs.reset();
  sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [], Failed: [] });
  domain.deliverOutbound.mockReset();
  domain.abandonOutbound.mockReset().mockResolvedValue(true);
});

describe('outbound consumer', () => {
  it('backs off the failing job and the jobs of its conversation skipped behind it, not other conversations', async () => {
    // Prepare: conversation A's first job is refused for the third time; B's job goes through
    domain.deliverOutbound.mockImplementation(async (job: { messageId: string }) => {
      if (job.messageId === 'msg-a1') throw new RetryableSendError('503', 3);
    });
    const event = { Records: [record('a1', 'A', 3), record('a2', 'A', 3), record('b1', 'B', 1)] } as SQSEvent;

    // Act
    const response = await handler(event);

    // Assess
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['a1', 'a2']);
    const [call] = sqs.commandCalls(ChangeMessageVisibilityBatchCommand);
    expect(call!.args[0].input.Entries).toEqual([
      // README: CONVERSA_RETRY_BASE_SECONDS (default 2) after the first failure, doubling: 2, 4, 8
      { Id: '0', ReceiptHandle: 'rh-a1', VisibilityTimeout: 8 },
      { Id: '1', ReceiptHandle: 'rh-a2', VisibilityTimeout: 8 },
    ]);
    expect(domain.deliverOutbound.mock.calls.map(([job]) => job.messageId)).toEqual(['msg-a1', 'msg-b1']);
    expect(domain.abandonOutbound).not.toHaveBeenCalled();
  });

  it('gives every job of a batch the same deadlines, counted from the batch’s start: copies half the function’s time, sends all but the time to record them', async () => {
    // Prepare
    domain.deliverOutbound.mockResolvedValue(undefined);
    const { COPY_BUDGET_MS, SEND_BUDGET_MS } = await import('../../src/domain/outbound');
    const before = Date.now();

    // Act
    await handler({ Records: [record('a1', 'A', 1), record('b1', 'B', 1)] } as SQSEvent);

    // Assess
    const deadlines = domain.deliverOutbound.mock.calls.map((args) => [args[3], args[4]] as [number, number]);
    expect(new Set(deadlines.map((d) => d.join()))).toHaveProperty('size', 1);
    const [copy, send] = deadlines[0]!;
    expect(copy - before).toBeGreaterThanOrEqual(COPY_BUDGET_MS);
    expect(send - before).toBeGreaterThanOrEqual(SEND_BUDGET_MS);
    expect(send - Date.now()).toBeLessThanOrEqual(SEND_BUDGET_MS);
    expect(SEND_BUDGET_MS).toBeLessThan(30_000);
  });

  it('waits at least as long as the provider asked (retry_after) before the next attempt', async () => {
    domain.deliverOutbound.mockRejectedValue(new RetryableSendError('429', 1, 45));
    const response = await handler({ Records: [record('a1', 'A', 1)] } as SQSEvent);
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['a1']);
    const [call] = sqs.commandCalls(ChangeMessageVisibilityBatchCommand);
    expect(call!.args[0].input.Entries).toEqual([{ Id: '0', ReceiptHandle: 'rh-a1', VisibilityTimeout: 45 }]);
    expect(backoffSeconds(1)).toBeLessThan(45);
  });

  it('backs off from 2 s after the first failure, doubling per attempt, never over 300 s', () => {
    // README: CONVERSA_RETRY_BASE_SECONDS default 2, "first provider retry backoff (doubles per attempt, ≤ 300 s)"
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((failures) => backoffSeconds(failures))).toEqual([2, 4, 8, 16, 32, 64, 128, 256]);
    expect(backoffSeconds(9)).toBe(300);
    expect(backoffSeconds(20)).toBe(300);
  });

  it('takes the first backoff from CONVERSA_RETRY_BASE_SECONDS', async () => {
    vi.stubEnv('CONVERSA_RETRY_BASE_SECONDS', '5');
    vi.resetModules();
    try {
      const configured = await import('../../functions/outbound/handler');
      expect([1, 2, 3].map((failures) => configured.backoffSeconds(failures))).toEqual([5, 10, 20]);
      expect(configured.backoffSeconds(7)).toBe(300);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it.each(['0', '-1', 'two'])('refuses to load with CONVERSA_RETRY_BASE_SECONDS=%s, instead of retrying at once or never', async (value) => {
    vi.stubEnv('CONVERSA_RETRY_BASE_SECONDS', value);
    vi.resetModules();
    try {
      await expect(import('../../functions/outbound/handler')).rejects.toThrow(/CONVERSA_RETRY_BASE_SECONDS must be/);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('marks a skipped job at its last receive failed instead of leaving it to the DLQ', async () => {
    domain.deliverOutbound.mockRejectedValue(new RetryableSendError('503', 1));
    const last = QUEUES.outbound.maxReceiveCount;
    const event = { Records: [record('a1', 'A', 2), record('a2', 'A', last), record('a3', 'A', last - 1)] } as SQSEvent;

    const response = await handler(event);

    expect(domain.abandonOutbound).toHaveBeenCalledTimes(1);
    expect(domain.abandonOutbound.mock.calls[0]![0]).toEqual({ conversationId: 'A', messageId: 'msg-a2' });
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['a1', 'a3']);
  });

  it('leaves a job that crashed the consumer to the queue\'s own visibility timeout', async () => {
    domain.deliverOutbound.mockRejectedValue(new Error('a bug'));
    const response = await handler({ Records: [record('a1', 'A', 1), record('a2', 'A', 1)] } as SQSEvent);

    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['a1', 'a2']);
    expect(sqs.commandCalls(ChangeMessageVisibilityBatchCommand)).toHaveLength(0);
  });
});
