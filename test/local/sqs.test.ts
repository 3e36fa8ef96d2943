import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  QueueDoesNotExist,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  SQSServiceException,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAwsStandIns, type AwsStandIns } from '../../local/aws/server';
import { ChangeSignal, md5OfMessageAttributes } from '../../local/aws/sqs';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

let aws: AwsStandIns;
let sqs: SQSClient;
let queueCount = 0;

/** A fresh queue per test, so that tests share the server but no messages. */
function newQueue(options: { fifo?: boolean; visibilityTimeoutSeconds?: number; maxReceiveCount?: number } = {}) {
  queueCount += 1;
  const suffix = options.fifo ? '.fifo' : '';
  const name = `q${queueCount}${suffix}`;
  const deadLetterQueueName = options.maxReceiveCount ? `q${queueCount}-dlq${suffix}` : undefined;
  const url = aws.sqs.createQueue(name, {
    fifo: options.fifo ?? false,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 30,
    deadLetterQueueName,
    maxReceiveCount: options.maxReceiveCount,
  });
  return { name, url, deadLetterQueueUrl: deadLetterQueueName && aws.sqs.queueUrl(deadLetterQueueName) };
}

async function receive(queueUrl: string, extra: Partial<ConstructorParameters<typeof ReceiveMessageCommand>[0]> = {}) {
  const { Messages } = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['All'], ...extra }),
  );
  return Messages ?? [];
}

async function count(queueUrl: string) {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return { visible: Number(Attributes?.ApproximateNumberOfMessages), inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible) };
}

beforeAll(async () => {
  aws = await startAwsStandIns({ port: 0, onScheduleFire: async () => {} });
  sqs = new SQSClient({ endpoint: aws.url, region: 'us-east-1', credentials });
});

afterAll(async () => {
  sqs.destroy();
  await aws.close();
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('queues', () => {
  it('creates, finds, lists and describes queues through the SDK', async () => {
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: 'orders.fifo', Attributes: { FifoQueue: 'true', VisibilityTimeout: '45' } }),
    );
    expect(QueueUrl).toBe(`${aws.url}/000000000000/orders.fifo`);
    expect((await sqs.send(new GetQueueUrlCommand({ QueueName: 'orders.fifo' }))).QueueUrl).toBe(QueueUrl);
    // CreateQueue is idempotent when the attributes agree.
    expect((await sqs.send(new CreateQueueCommand({ QueueName: 'orders.fifo', Attributes: { FifoQueue: 'true' } }))).QueueUrl).toBe(QueueUrl);

    const { QueueUrls } = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'orders' }));
    expect(QueueUrls).toEqual([QueueUrl]);

    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
    expect(Attributes).toMatchObject({
      QueueArn: 'arn:aws:sqs:us-east-1:000000000000:orders.fifo',
      VisibilityTimeout: '45',
      FifoQueue: 'true',
      ApproximateNumberOfMessages: '0',
    });
  });

  it('reports the redrive policy of a queue created with a dead-letter queue', async () => {
    const { url } = newQueue({ fifo: true, maxReceiveCount: 5 });
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['RedrivePolicy', 'QueueArn'] }));
    expect(JSON.parse(Attributes?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: `arn:aws:sqs:us-east-1:000000000000:q${queueCount}-dlq.fifo`,
      maxReceiveCount: 5,
    });
  });

  it('answers a missing queue with QueueDoesNotExist', async () => {
    await expect(sqs.send(new GetQueueUrlCommand({ QueueName: 'nope' }))).rejects.toBeInstanceOf(QueueDoesNotExist);
    await expect(
      sqs.send(new SendMessageCommand({ QueueUrl: `${aws.url}/000000000000/nope`, MessageBody: 'x' })),
    ).rejects.toBeInstanceOf(QueueDoesNotExist);
  });

  it('is reached through AWS_ENDPOINT_URL_SQS by a client configured with nothing', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL_SQS', aws.url);
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    const { url } = newQueue();
    const plain = new SQSClient({});
    try {
      await plain.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'via env' }));
      expect((await receive(url)).map((m) => m.Body)).toEqual(['via env']);
    } finally {
      plain.destroy();
    }
  });

  it('purges a queue', async () => {
    const { url } = newQueue();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'a' }));
    await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    expect(await count(url)).toEqual({ visible: 0, inFlight: 0 });
  });
});

describe('messages', () => {
  it('round-trips body, attributes and checksums (the SDK checks the body MD5)', async () => {
    const { url } = newQueue();
    const body = 'héllo 👋 {"json": true}';
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: body,
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: 'greeting' },
          blob: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 3]) },
        },
      }),
    );
    expect(sent.MD5OfMessageAttributes).toMatch(/^[0-9a-f]{32}$/);

    const [message] = await receive(url, { MessageAttributeNames: ['All'] });
    expect(message).toMatchObject({ MessageId: sent.MessageId, Body: body, MD5OfMessageAttributes: sent.MD5OfMessageAttributes });
    expect(message?.MessageAttributes?.kind).toEqual({ DataType: 'String', StringValue: 'greeting' });
    expect([...(message?.MessageAttributes?.blob?.BinaryValue ?? [])]).toEqual([1, 2, 3]);
    expect(message?.Attributes).toMatchObject({ ApproximateReceiveCount: '1', SenderId: '000000000000' });
    expect(Number(message?.Attributes?.SentTimestamp)).toBeGreaterThan(0);
    expect(Number(message?.Attributes?.ApproximateFirstReceiveTimestamp)).toBeGreaterThanOrEqual(Number(message?.Attributes?.SentTimestamp));
  });

  it('computes MD5OfMessageAttributes exactly as SQS does', () => {
    // Published values computed by real SQS clients and emulators.
    expect(md5OfMessageAttributes({ SellerName: { DataType: 'String', StringValue: 'Example Store' } })).toBe('cd28f3b68aeee4b2eac9c66f2f694b58');
    expect(md5OfMessageAttributes({ timestamp: { DataType: 'Number', StringValue: '1493147359900' } })).toBe('235c5c510d26fb653d073faed50ae77c');
    expect(
      md5OfMessageAttributes({
        ordinal: { DataType: 'Number', StringValue: '1' },
        category: { DataType: 'String', StringValue: 'test' },
      }),
    ).toBe('d21ae90c49061e927f57df5f5d72be1f');
  });

  it('returns only the attributes asked for', async () => {
    const { url } = newQueue();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'a', MessageAttributes: { kind: { DataType: 'String', StringValue: 'k' } } }));
    const [message] = await receive(url, { MessageSystemAttributeNames: ['ApproximateReceiveCount'] });
    expect(message?.Attributes).toEqual({ ApproximateReceiveCount: '1' });
    expect(message?.MessageAttributes).toBeUndefined();
  });

  it('sends a batch, reporting each failed entry without failing the others', async () => {
    const { url } = newQueue({ fifo: true });
    const batchesBefore = aws.sqs.requests.get('SendMessageBatch') ?? 0;
    const result = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'one', MessageBody: '1', MessageGroupId: 'g', MessageDeduplicationId: 'd1' },
          { Id: 'two', MessageBody: '2', MessageDeduplicationId: 'd2' },
          { Id: 'three', MessageBody: '3', MessageGroupId: 'g', MessageDeduplicationId: 'd3' },
        ],
      }),
    );
    expect(result.Successful?.map((entry) => entry.Id)).toEqual(['one', 'three']);
    expect(result.Failed).toEqual([expect.objectContaining({ Id: 'two', SenderFault: true, Code: 'MissingParameter' })]);
    expect(result.Successful?.[0]?.SequenceNumber).toMatch(/^\d+$/);
    // One request whatever its entries: what the bench prices (bench/measure.ts usageOf).
    expect(aws.sqs.requests.get('SendMessageBatch')).toBe(batchesBefore + 1);

    const messages = await receive(url);
    expect(messages.map((m) => m.Body)).toEqual(['1', '3']);
    const deleted = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: messages.map((m, index) => ({ Id: `e${index}`, ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
    expect(deleted.Successful).toHaveLength(2);
    expect(await count(url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('rejects batches SQS rejects', async () => {
    const { url } = newQueue();
    const entry = { Id: 'same', MessageBody: 'x' };
    await expect(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [entry, entry] }))).rejects.toMatchObject({
      name: 'BatchEntryIdsNotDistinct',
    });
    await expect(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [] }))).rejects.toMatchObject({ name: 'EmptyBatchRequest' });
    const eleven = Array.from({ length: 11 }, (_, index) => ({ Id: `e${index}`, MessageBody: 'x' }));
    await expect(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: eleven }))).rejects.toMatchObject({
      name: 'TooManyEntriesInBatchRequest',
    });
  });

  it('refuses a whole batch whose messages together exceed 1 MiB, sending none of them', async () => {
    const { url } = newQueue();
    const half = 'x'.repeat(600 * 1024);
    const entries = [
      { Id: 'a', MessageBody: half },
      { Id: 'b', MessageBody: half },
    ];
    await expect(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }))).rejects.toMatchObject({
      name: 'BatchRequestTooLong',
      Code: 'AWS.SimpleQueueService.BatchRequestTooLong',
      $metadata: { httpStatusCode: 400 },
    });
    expect(await count(url)).toEqual({ visible: 0, inFlight: 0 });
    // Each alone is within the limit.
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [entries[0]!] }));
    expect(await count(url)).toEqual({ visible: 1, inFlight: 0 });
  });

  it('counts message attributes towards the 1 MiB a message may hold', async () => {
    const { url } = newQueue();
    const body = 'x'.repeat(1024 * 1024 - 10);
    await expect(
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageAttributes: { trace: { DataType: 'String', StringValue: 'y'.repeat(100) } } })),
    ).rejects.toMatchObject({ name: 'InvalidParameterValue', $metadata: { httpStatusCode: 400 } });
    expect(await count(url)).toEqual({ visible: 0, inFlight: 0 });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    expect(await count(url)).toEqual({ visible: 1, inFlight: 0 });
  });

  it('rejects a receipt handle it never issued', async () => {
    const { url } = newQueue();
    await expect(sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: 'garbage' }))).rejects.toBeInstanceOf(ReceiptHandleIsInvalid);
  });
});

describe('visibility and redrive', () => {
  it('hides a received message, then redelivers it after the visibility timeout with a higher receive count', async () => {
    const { url } = newQueue({ visibilityTimeoutSeconds: 1 });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'again' }));

    const [first] = await receive(url);
    expect(first?.Attributes?.ApproximateReceiveCount).toBe('1');
    expect(await receive(url)).toEqual([]);
    expect(await count(url)).toEqual({ visible: 0, inFlight: 1 });

    // The long poll ends as soon as the message is visible again.
    const [second] = await receive(url, { WaitTimeSeconds: 20 });
    expect(second).toMatchObject({ MessageId: first?.MessageId, Body: 'again' });
    expect(second?.Attributes?.ApproximateReceiveCount).toBe('2');
    expect(second?.ReceiptHandle).not.toBe(first?.ReceiptHandle);

    // Only the latest receipt handle deletes.
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first!.ReceiptHandle! }));
    expect(await count(url)).toEqual({ visible: 0, inFlight: 1 });
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: second!.ReceiptHandle! }));
    expect(await count(url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('makes a message visible at once with ChangeMessageVisibility 0', async () => {
    const { url } = newQueue();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));
    const [message] = await receive(url);
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: message!.ReceiptHandle!, VisibilityTimeout: 0 }));
    expect((await receive(url)).map((m) => m.MessageId)).toEqual([message?.MessageId]);
  });

  it('moves a message to the dead-letter queue instead of delivering it beyond maxReceiveCount', async () => {
    const { url, deadLetterQueueUrl } = newQueue({ fifo: true, maxReceiveCount: 2 });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'poison', MessageGroupId: 'g', MessageDeduplicationId: 'p' }));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'next', MessageGroupId: 'g', MessageDeduplicationId: 'n' }));

    // VisibilityTimeout 0 hands the message straight back: each receive counts as a failed attempt.
    expect((await receive(url, { MaxNumberOfMessages: 1, VisibilityTimeout: 0 })).map((m) => m.Body)).toEqual(['poison']);
    expect((await receive(url, { MaxNumberOfMessages: 1, VisibilityTimeout: 0 })).map((m) => m.Body)).toEqual(['poison']);
    const [after] = await receive(url, { MaxNumberOfMessages: 1 });
    expect(after?.Body).toBe('next');

    const dead = await receive(deadLetterQueueUrl!);
    expect(dead.map((m) => m.Body)).toEqual(['poison']);
    expect(dead[0]?.Attributes).toMatchObject({ MessageGroupId: 'g', MessageDeduplicationId: 'p' });
  });
});

describe('FIFO', () => {
  it('delivers each group in order', async () => {
    const { url } = newQueue({ fifo: true });
    for (const [index, group] of ['a', 'b', 'a', 'b', 'a'].entries()) {
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: `${group}${index}`, MessageGroupId: group, MessageDeduplicationId: `d${index}` }));
    }
    const messages = await receive(url);
    const bodiesOf = (group: string) => messages.filter((m) => m.Attributes?.MessageGroupId === group).map((m) => m.Body);
    expect(bodiesOf('a')).toEqual(['a0', 'a2', 'a4']);
    expect(bodiesOf('b')).toEqual(['b1', 'b3']);
    const sequence = messages.map((m) => BigInt(m.Attributes?.SequenceNumber ?? '0'));
    expect(sequence).toEqual([...sequence].sort((x, y) => (x < y ? -1 : 1)));
  });

  it('holds back a group while one of its messages is in flight', async () => {
    const { url } = newQueue({ fifo: true });
    const send = (body: string, group: string) =>
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageGroupId: group, MessageDeduplicationId: body }));
    await send('a1', 'a');
    await send('a2', 'a');
    await send('b1', 'b');

    const [a1] = await receive(url, { MaxNumberOfMessages: 1 });
    expect(a1?.Body).toBe('a1');
    // a2 waits behind a1; only the other group moves.
    expect((await receive(url)).map((m) => m.Body)).toEqual(['b1']);
    expect(await receive(url)).toEqual([]);

    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: a1!.ReceiptHandle! }));
    expect((await receive(url)).map((m) => m.Body)).toEqual(['a2']);
  });

  it('accepts a duplicate deduplication id with the original MessageId and does not enqueue it', async () => {
    const { url } = newQueue({ fifo: true });
    const send = (body: string) =>
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageGroupId: 'g', MessageDeduplicationId: 'provider-msg-1' }));
    const first = await send('original');
    const second = await send('retry of the same event');
    expect(second.MessageId).toBe(first.MessageId);
    expect(await count(url)).toEqual({ visible: 1, inFlight: 0 });
    expect((await receive(url)).map((m) => m.Body)).toEqual(['original']);
  });

  it('with DeduplicationScope messageGroup (high-throughput FIFO, as deployed), deduplicates within a group only', async () => {
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: 'per-group.fifo', Attributes: { FifoQueue: 'true', DeduplicationScope: 'messageGroup', FifoThroughputLimit: 'perMessageGroupId' } }),
    );
    const send = (body: string, group: string) => sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body, MessageGroupId: group, MessageDeduplicationId: 'same-id' }));
    const first = await send('a', 'g1');
    expect((await send('a again', 'g1')).MessageId).toBe(first.MessageId);
    expect((await send('b', 'g2')).MessageId).not.toBe(first.MessageId);
    expect((await receive(QueueUrl!)).map((m) => m.Body).sort()).toEqual(['a', 'b']);
    expect((await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['DeduplicationScope'] }))).Attributes).toEqual({ DeduplicationScope: 'messageGroup' });
    // The default is the whole queue.
    const { url } = newQueue({ fifo: true });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageGroupId: 'g1', MessageDeduplicationId: 'd' }));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'y', MessageGroupId: 'g2', MessageDeduplicationId: 'd' }));
    expect((await receive(url)).map((m) => m.Body)).toEqual(['x']);
    await expect(sqs.send(new CreateQueueCommand({ QueueName: 'bad-scope.fifo', Attributes: { FifoQueue: 'true', DeduplicationScope: 'group' } }))).rejects.toMatchObject({
      name: 'InvalidAttributeValue',
    });
  });

  it('requires MessageGroupId, and a deduplication id unless content-based deduplication is on', async () => {
    const { url } = newQueue({ fifo: true });
    await expect(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageDeduplicationId: 'd' }))).rejects.toMatchObject({
      name: 'MissingParameter',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageGroupId: 'g' }))).rejects.toMatchObject({
      name: 'InvalidParameterValue',
    });

    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: 'content.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } }),
    );
    const first = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'same', MessageGroupId: 'g' }));
    const second = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'same', MessageGroupId: 'g' }));
    expect(second.MessageId).toBe(first.MessageId);
  });
});

describe('long polling', () => {
  it('answers a waiting receive as soon as a message is sent', async () => {
    const { url } = newQueue();
    const started = Date.now();
    const polling = receive(url, { WaitTimeSeconds: 20 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'wake up' }));
    expect((await polling).map((m) => m.Body)).toEqual(['wake up']);
    // Far below the 20 s wait: the send woke the poll.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('returns empty when the wait ends without messages', async () => {
    const { url } = newQueue();
    expect(await receive(url, { WaitTimeSeconds: 1 })).toEqual([]);
  });

  it('wakes the waiters only after the turn that made the change, so its request is answered first', async () => {
    // Prepare
    const changes = new ChangeSignal();
    let woken = 0;
    const waiting = changes.wait(10_000).then(() => (woken += 1));

    // Act
    changes.notify();
    changes.notify();
    for (let i = 0; i < 5; i++) await Promise.resolve();

    // Assess: nothing ran within the turn (its microtasks included); then the waiter woke once.
    expect(woken).toBe(0);
    await waiting;
    expect(woken).toBe(1);
  });
});

describe('bad input', () => {
  const post = (target: string | undefined, body: string) =>
    fetch(aws.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', ...(target ? { 'x-amz-target': target } : {}) },
      body,
    });

  it('answers an unknown operation with a JSON error the SDK understands', async () => {
    const response = await post('AmazonSQS.FlyToTheMoon', '{}');
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ __type: 'com.amazonaws.sqs#UnknownOperationException' });
  });

  it('never answers malformed requests with a 500', async () => {
    const { url } = newQueue({ fifo: true });
    const requests: [string, string][] = [
      ['AmazonSQS.SendMessage', 'not json'],
      ['AmazonSQS.SendMessage', '[1,2]'],
      ['AmazonSQS.SendMessage', JSON.stringify({ QueueUrl: 42, MessageBody: 'x' })],
      ['AmazonSQS.SendMessage', JSON.stringify({ QueueUrl: url, MessageBody: { nested: true } })],
      ['AmazonSQS.SendMessage', JSON.stringify({ QueueUrl: url, MessageBody: 'x', MessageGroupId: 'g', MessageDeduplicationId: 'd', MessageAttributes: { a: 'b' } })],
      ['AmazonSQS.SendMessage', JSON.stringify({ QueueUrl: url, MessageBody: '\u0000', MessageGroupId: 'g', MessageDeduplicationId: 'd' })],
      ['AmazonSQS.SendMessageBatch', JSON.stringify({ QueueUrl: url, Entries: 'x' })],
      ['AmazonSQS.SendMessageBatch', JSON.stringify({ QueueUrl: url, Entries: [null] })],
      ['AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl: url, MaxNumberOfMessages: 99 })],
      ['AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl: url, AttributeNames: 'All' })],
      ['AmazonSQS.DeleteMessage', JSON.stringify({ QueueUrl: url })],
      ['AmazonSQS.ChangeMessageVisibility', JSON.stringify({ QueueUrl: url, ReceiptHandle: 'x', VisibilityTimeout: -1 })],
      ['AmazonSQS.CreateQueue', JSON.stringify({ QueueName: 'bad name!' })],
      ['AmazonSQS.CreateQueue', JSON.stringify({ QueueName: 'x', Attributes: { RedrivePolicy: '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:missing"}' } })],
      ['AmazonSQS.GetQueueAttributes', JSON.stringify({ QueueUrl: url, AttributeNames: ['Nope'] })],
      ['AmazonSQS.ListQueues', JSON.stringify({ NextToken: 'zzz' })],
      ['AmazonSQS.PurgeQueue', ''],
      ['Other_20240101.Thing', '{}'],
    ];
    for (const [target, body] of requests) {
      const response = await post(target, body);
      expect({ target, body, status: response.status }).toEqual({ target, body, status: 400 });
      expect(typeof ((await response.json()) as { message?: unknown }).message).toBe('string');
    }
    // Rejected requests leave nothing behind.
    expect(await count(url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('surfaces errors as SQSServiceException subclasses with the query-compatible code', async () => {
    const error = await sqs.send(new GetQueueUrlCommand({ QueueName: 'ghost' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SQSServiceException);
    expect(error).toMatchObject({ name: 'QueueDoesNotExist', Code: 'AWS.SimpleQueueService.NonExistentQueue' });
  });
});
