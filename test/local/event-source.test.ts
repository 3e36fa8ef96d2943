import { createHash } from 'node:crypto';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startEventSource, type EventSource, type EventSourceOptions } from '../../local/aws/event-source';
import { startAwsStandIns, type AwsStandIns } from '../../local/aws/server';

const WAIT = { timeout: 15_000, interval: 20 };

let aws: AwsStandIns;
let sqs: SQSClient;
let queueCount = 0;
const running: EventSource[] = [];

function newQueue(options: { fifo: boolean; visibilityTimeoutSeconds?: number; maxReceiveCount?: number }) {
  queueCount += 1;
  const suffix = options.fifo ? '.fifo' : '';
  const name = `es${queueCount}${suffix}`;
  const url = aws.sqs.createQueue(name, {
    fifo: options.fifo,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 30,
    deadLetterQueueName: options.maxReceiveCount ? `es${queueCount}-dlq${suffix}` : undefined,
    maxReceiveCount: options.maxReceiveCount,
  });
  return { name, url, queue: aws.sqs.getQueue(name) };
}

function start(options: EventSourceOptions): EventSource {
  const source = startEventSource({ logger: { warn: () => {}, error: () => {} }, ...options });
  running.push(source);
  return source;
}

function sendFifo(url: string, body: string, group: string) {
  return sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageGroupId: group, MessageDeduplicationId: body }));
}

const failures = (records: SQSRecord[]): SQSBatchResponse => ({ batchItemFailures: records.map((r) => ({ itemIdentifier: r.messageId })) });

beforeAll(async () => {
  aws = await startAwsStandIns({ onScheduleFire: async () => {} });
  sqs = new SQSClient({ endpoint: aws.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((source) => source.stop()));
});

afterAll(async () => {
  sqs.destroy();
  await aws.close();
});

describe('event source mapping', () => {
  it('takes a batch only after its pick-up delay, never inside the turn that sent it', async () => {
    // Prepare: a poller already waiting on the empty queue
    const { name, queue } = newQueue({ fifo: true });
    const events: SQSEvent[] = [];
    start({ queue: name, sqs: aws.sqs, batchSize: 10, pickupDelayMs: 50, handler: async (event) => void events.push(event) });
    await new Promise((resolve) => setTimeout(resolve, 20));

    // Act: a send wakes it
    queue.send({ body: 'later', groupId: 'g', deduplicationId: 'later' });
    await new Promise((resolve) => setImmediate(resolve));

    // Assess: not yet handed over after the sender's turn, then handed over once
    expect(events).toHaveLength(0);
    await vi.waitFor(() => expect(events).toHaveLength(1), WAIT);
    expect(events[0]!.Records.map((r) => r.body)).toEqual(['later']);
  });

  it('hands the handler a Lambda SQSEvent and deletes the batch it handled', async () => {
    const { url, name, queue } = newQueue({ fifo: true });
    const events: SQSEvent[] = [];
    start({ queue: name, sqs: aws.sqs, batchSize: 10, handler: async (event) => void events.push(event) });

    await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: '{"hello":"world"}',
        MessageGroupId: 'conversation-1',
        MessageDeduplicationId: 'provider-1',
        MessageAttributes: { channel: { DataType: 'String', StringValue: 'whatsapp' } },
      }),
    );

    await vi.waitFor(() => expect(events).toHaveLength(1), WAIT);
    const record = events[0]!.Records[0]!;
    expect(record).toMatchObject({
      body: '{"hello":"world"}',
      md5OfBody: createHash('md5').update('{"hello":"world"}').digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${name}`,
      awsRegion: 'us-east-1',
      messageAttributes: { channel: { dataType: 'String', stringValue: 'whatsapp', stringListValues: [], binaryListValues: [] } },
    });
    expect(record.attributes).toMatchObject({
      ApproximateReceiveCount: '1',
      MessageGroupId: 'conversation-1',
      MessageDeduplicationId: 'provider-1',
      SenderId: '000000000000',
    });
    expect(record.attributes.SequenceNumber).toMatch(/^\d+$/);
    expect(Number(record.attributes.ApproximateFirstReceiveTimestamp)).toBeGreaterThanOrEqual(Number(record.attributes.SentTimestamp));
    await vi.waitFor(() => expect(queue.counts()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }), WAIT);
  });

  it('wakes on send instead of waiting for the next poll', async () => {
    const { url, queue } = newQueue({ fifo: false });
    const bodies: string[] = [];
    // With a one-minute poll interval, only the wake-up on send can deliver within the wait below.
    start({ queue, batchSize: 10, pollIntervalMs: 60_000, handler: async (event) => void bodies.push(...event.Records.map((r) => r.body)) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'now' }));
    await vi.waitFor(() => expect(bodies).toEqual(['now']), { timeout: 10_000, interval: 5 });
  });

  it('deletes the records not reported as failed; only the failed one comes back', async () => {
    const { url, queue } = newQueue({ fifo: false, visibilityTimeoutSeconds: 1 });
    const deliveries: { body: string; receiveCount: string }[] = [];
    start({
      queue,
      batchSize: 10,
      handler: async (event) => {
        deliveries.push(...event.Records.map((r) => ({ body: r.body, receiveCount: r.attributes.ApproximateReceiveCount })));
        return failures(event.Records.filter((r) => r.body === 'flaky' && r.attributes.ApproximateReceiveCount === '1'));
      },
    });

    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: ['fine-1', 'flaky', 'fine-2'].map((body) => ({ Id: body, MessageBody: body })),
      }),
    );

    await vi.waitFor(() => expect(deliveries).toContainEqual({ body: 'flaky', receiveCount: '2' }), WAIT);
    expect(deliveries.filter((d) => d.body === 'fine-1')).toHaveLength(1);
    expect(deliveries.filter((d) => d.body === 'fine-2')).toHaveLength(1);
    await vi.waitFor(() => expect(queue.counts()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }), WAIT);
  });

  it('keeps the whole batch when the handler throws', async () => {
    const { url, queue } = newQueue({ fifo: false, visibilityTimeoutSeconds: 1 });
    let calls = 0;
    const delivered: string[] = [];
    start({
      queue,
      batchSize: 10,
      handler: async (event) => {
        calls += 1;
        if (calls === 1) throw new Error('database down');
        delivered.push(...event.Records.map((r) => `${r.body}#${r.attributes.ApproximateReceiveCount}`));
      },
    });
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: ['a', 'b'].map((body) => ({ Id: body, MessageBody: body })) }));
    await vi.waitFor(() => expect(delivered.sort()).toEqual(['a#2', 'b#2']), WAIT);
  });

  it('treats an unknown itemIdentifier as a failure of the whole batch', async () => {
    const { url, queue } = newQueue({ fifo: false, visibilityTimeoutSeconds: 1 });
    const seen: string[] = [];
    start({
      queue,
      batchSize: 10,
      handler: async (event) => {
        seen.push(...event.Records.map((r) => r.attributes.ApproximateReceiveCount));
        return seen.length === 1 ? { batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] } : undefined;
      },
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));
    await vi.waitFor(() => expect(seen).toEqual(['1', '2']), WAIT);
  });

  it('moves a message the handler keeps failing to the dead-letter queue', async () => {
    const { url, name, queue } = newQueue({ fifo: true, visibilityTimeoutSeconds: 1, maxReceiveCount: 2 });
    let attempts = 0;
    start({
      queue,
      batchSize: 10,
      handler: async (event) => {
        attempts += event.Records.length;
        return failures(event.Records);
      },
    });
    await sendFifo(url, 'poison', 'g');
    const deadLetterQueue = aws.sqs.getQueue(`${name.replace('.fifo', '')}-dlq.fifo`);
    await vi.waitFor(() => expect(deadLetterQueue.counts().visible).toBe(1), WAIT);
    expect(attempts).toBe(2);
    expect(queue.counts()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });
});

describe('FIFO through the event source', () => {
  it('keeps every group in order and never runs one group in two batches at once, while groups run in parallel', async () => {
    const { url, queue } = newQueue({ fifo: true });
    const groups = ['a', 'b', 'c', 'd'];
    const seen = new Map<string, string[]>(groups.map((group) => [group, []]));
    const active = new Set<string>();
    let overlapWithinGroup = false;
    let maxParallelGroups = 0;

    start({
      queue,
      batchSize: 1,
      concurrency: 4,
      handler: async (event) => {
        const group = event.Records[0]!.attributes.MessageGroupId!;
        if (active.has(group)) overlapWithinGroup = true;
        active.add(group);
        maxParallelGroups = Math.max(maxParallelGroups, active.size);
        await new Promise((resolve) => setTimeout(resolve, 5));
        seen.get(group)!.push(event.Records[0]!.body);
        active.delete(group);
      },
    });

    const expected = new Map<string, string[]>(groups.map((group) => [group, []]));
    const entries = [];
    for (let index = 0; index < 40; index += 1) {
      const group = groups[index % groups.length]!;
      expected.get(group)!.push(`${group}${index}`);
      entries.push({ Id: `m${index}`, MessageBody: `${group}${index}`, MessageGroupId: group, MessageDeduplicationId: `${group}${index}` });
    }
    for (let offset = 0; offset < entries.length; offset += 10) {
      await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries.slice(offset, offset + 10) }));
    }

    await vi.waitFor(() => expect(seen).toEqual(expected), WAIT);
    expect(overlapWithinGroup).toBe(false);
    expect(maxParallelGroups).toBeGreaterThan(1);
  });

  it('redelivers a failed record and the later ones of its group in order, without holding back other groups', async () => {
    const { url, queue } = newQueue({ fifo: true, visibilityTimeoutSeconds: 1 });
    const handled: string[] = [];
    let failedOnce = false;
    start({
      queue,
      batchSize: 10,
      handler: async (event) => {
        // As the Powertools FIFO processor does: after a failure, fail the rest of that group.
        const failedGroups = new Set<string>();
        const failed: SQSRecord[] = [];
        for (const record of event.Records) {
          const group = record.attributes.MessageGroupId!;
          if (failedGroups.has(group) || (record.body === 'a2' && !failedOnce)) {
            failedOnce = true;
            failedGroups.add(group);
            failed.push(record);
          } else {
            handled.push(record.body);
          }
        }
        return failures(failed);
      },
    });

    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: ['a1', 'a2', 'b1', 'a3', 'b2'].map((body) => ({ Id: body, MessageBody: body, MessageGroupId: body[0]!, MessageDeduplicationId: body })),
      }),
    );

    await vi.waitFor(() => expect(handled).toHaveLength(5), WAIT);
    expect(handled.filter((body) => body.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(handled.filter((body) => body.startsWith('b'))).toEqual(['b1', 'b2']);
    // Group b finished in the first batch, before a2's retry.
    expect(handled.indexOf('b2')).toBeLessThan(handled.indexOf('a2'));
  });

  it('keeps a later message of a group away from the handler while an earlier one is being handled', async () => {
    const { url, queue } = newQueue({ fifo: true });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const handled: string[] = [];
    start({
      queue,
      batchSize: 10,
      concurrency: 4,
      handler: async (event) => {
        for (const record of event.Records) {
          if (record.body === 'first') await gate;
          handled.push(record.body);
        }
      },
    });

    await sendFifo(url, 'first', 'g');
    await vi.waitFor(() => expect(queue.counts().inFlight).toBe(1), WAIT);
    await sendFifo(url, 'second', 'g');
    await sendFifo(url, 'other', 'h');
    await vi.waitFor(() => expect(handled).toEqual(['other']), WAIT);
    expect(queue.counts()).toMatchObject({ visible: 1, inFlight: 1 });

    release();
    await vi.waitFor(() => expect(handled).toEqual(['other', 'first', 'second']), WAIT);
  });
});

describe('lifecycle', () => {
  it('stop() waits for the handler calls under way and then polls no more', async () => {
    const { url, queue } = newQueue({ fifo: false });
    let finished = false;
    let calls = 0;
    const source = start({
      queue,
      batchSize: 1,
      handler: async () => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, 200));
        finished = true;
      },
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'slow' }));
    await vi.waitFor(() => expect(calls).toBe(1), WAIT);

    await source.stop();
    expect(finished).toBe(true);
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'after stop' }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(calls).toBe(1);
    expect(queue.counts().visible).toBe(1);
  });

  it('drain() resolves once every message is handled', async () => {
    const { url, queue } = newQueue({ fifo: true });
    const handled: string[] = [];
    const source = start({
      queue,
      batchSize: 2,
      handler: async (event) => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        handled.push(...event.Records.map((r) => r.body));
      },
    });
    for (const body of ['1', '2', '3', '4', '5']) await sendFifo(url, body, 'g');
    await source.drain();
    expect(handled).toEqual(['1', '2', '3', '4', '5']);
  });
});
