/** FIFO batches: groups side by side, order and failure within a group kept. */
import { describe, expect, it } from 'vitest';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { processFifoGroups } from '../../src/aws/fifo-batch';

const record = (messageId: string, group: string): SQSRecord =>
  ({
    messageId,
    receiptHandle: `rh-${messageId}`,
    body: '{}',
    attributes: { MessageGroupId: group, ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 's', ApproximateFirstReceiveTimestamp: '0' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:q.fifo',
    awsRegion: 'us-east-1',
  }) as SQSRecord;

describe('processFifoGroups', () => {
  it('handles each group in order and the groups side by side', async () => {
    // Prepare: a1's handling waits until b1's has started, which only works if groups overlap
    const started: string[] = [];
    let releaseA!: () => void;
    const bStarted = new Promise<void>((resolve) => (releaseA = resolve));
    const event: SQSEvent = { Records: [record('a1', 'A'), record('a2', 'A'), record('b1', 'B')] };

    // Act
    const response = await processFifoGroups(event, async (r) => {
      started.push(r.messageId);
      if (r.messageId === 'b1') releaseA();
      if (r.messageId === 'a1') await bStarted;
    });

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(started.indexOf('a1')).toBeLessThan(started.indexOf('a2'));
    expect(started.indexOf('b1')).toBeLessThan(started.indexOf('a2'));
  });

  it('fails the rest of a group after its failed record, and only that group', async () => {
    const handled: string[] = [];
    const event: SQSEvent = { Records: [record('a1', 'A'), record('b1', 'B'), record('a2', 'A'), record('b2', 'B')] };

    const response = await processFifoGroups(event, async (r) => {
      if (r.messageId === 'a1') throw new Error('poison');
      handled.push(r.messageId);
    });

    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['a1', 'a2']);
    expect(handled).toEqual(['b1', 'b2']);
  });
});
