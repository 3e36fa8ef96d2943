/**
 * The webhook's SQS sender without the SDK client: a signed JSON-protocol request the SQS
 * stand-in accepts, per-entry failures handed back, server trouble and throttling retried,
 * refusals thrown at once.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAwsStandIns, type AwsStandIns } from '../../local/aws/server';
import { sendMessageBatch, SqsError } from '../../src/aws/sqs-send';

let aws: AwsStandIns;

beforeAll(async () => {
  aws = await startAwsStandIns({ onScheduleFire: async () => undefined });
  vi.stubEnv('AWS_REGION', 'us-east-1');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDEXAMPLE');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret');
  vi.stubEnv('AWS_SESSION_TOKEN', 'session-token');
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await aws.close();
});

/** A server that answers each request with the next scripted reply (the last one repeats). */
async function scripted(replies: { status: number; body: unknown }[]): Promise<{ url: string; requests: { headers: IncomingHttpHeaders; body: string }[]; server: Server }> {
  const requests: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const reply = replies[Math.min(requests.length - 1, replies.length - 1)]!;
      res.writeHead(reply.status, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

const servers: (Server | NetServer)[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function against(replies: { status: number; body: unknown }[]) {
  const fake = await scripted(replies);
  servers.push(fake.server);
  vi.stubEnv('AWS_ENDPOINT_URL_SQS', fake.url);
  return fake;
}

const entry = { Id: '0', MessageBody: '{"hello":"world"}', MessageGroupId: 'g', MessageDeduplicationId: 'd-1' };

describe('sendMessageBatch', () => {
  it('queues the entries on the SQS stand-in, which reads them as the SDK would send them', async () => {
    // Prepare
    vi.stubEnv('AWS_ENDPOINT_URL_SQS', aws.url);
    const queueUrl = aws.sqs.createQueue('send-test.fifo', { fifo: true });

    // Act
    const out = await sendMessageBatch(queueUrl, [entry, { ...entry, Id: '1', MessageBody: 'second', MessageDeduplicationId: 'd-2' }]);

    // Assess
    expect(out.Failed).toEqual([]);
    expect(out.Successful.map((s) => s.Id)).toEqual(['0', '1']);
    const received = aws.sqs.getQueue(queueUrl).receiveNow({ maxMessages: 10 });
    expect(received.map((m) => [m.body, m.attributes.MessageGroupId])).toEqual([
      ['{"hello":"world"}', 'g'],
      ['second', 'g'],
    ]);
  });

  it('signs with SigV4 for sqs in the region, with the session token', async () => {
    const fake = await against([{ status: 200, body: { Successful: [{ Id: '0', MessageId: 'm' }], Failed: [] } }]);
    await sendMessageBatch('https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo', [entry]);
    const { headers, body } = fake.requests[0]!;
    expect(headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/sqs\/aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, Signature=[0-9a-f]{64}$/);
    expect(headers['x-amz-security-token']).toBe('session-token');
    expect(headers['x-amz-target']).toBe('AmazonSQS.SendMessageBatch');
    expect(JSON.parse(body)).toEqual({ QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo', Entries: [entry] });
  });

  it('hands back the entries SQS refused one by one', async () => {
    await against([{ status: 200, body: { Successful: [], Failed: [{ Id: '0', Code: 'InternalError', SenderFault: false }] } }]);
    const out = await sendMessageBatch('https://sqs.us-east-1.amazonaws.com/1/q.fifo', [entry]);
    expect(out.Failed).toEqual([{ Id: '0', Code: 'InternalError', SenderFault: false }]);
  });

  it('tries again after server trouble and throttling', async () => {
    const fake = await against([
      { status: 500, body: { __type: 'com.amazonaws.sqs#InternalError', message: 'oops' } },
      { status: 400, body: { __type: 'com.amazonaws.sqs#RequestThrottled', message: 'slow down' } },
      { status: 200, body: { Successful: [{ Id: '0', MessageId: 'm' }], Failed: [] } },
    ]);
    const out = await sendMessageBatch('https://sqs.us-east-1.amazonaws.com/1/q.fifo', [entry]);
    expect(out.Successful).toHaveLength(1);
    expect(fake.requests).toHaveLength(3);
  });

  it('throws a refusal at once, named by its error type', async () => {
    const fake = await against([{ status: 400, body: { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' } }]);
    const failure = sendMessageBatch('https://sqs.us-east-1.amazonaws.com/1/q.fifo', [entry]);
    await expect(failure).rejects.toBeInstanceOf(SqsError);
    await expect(failure).rejects.toMatchObject({ name: 'QueueDoesNotExist', status: 400, message: 'The specified queue does not exist.' });
    expect(fake.requests).toHaveLength(1);
  });

  it('gives up after three attempts when nobody answers', async () => {
    // Prepare: a server that takes each connection and drops it without a word, counting them
    let connections = 0;
    const silent = createNetServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    servers.push(silent);
    vi.stubEnv('AWS_ENDPOINT_URL_SQS', `http://127.0.0.1:${(silent.address() as AddressInfo).port}`);

    // Act
    const failure = sendMessageBatch('https://sqs.us-east-1.amazonaws.com/1/q.fifo', [entry]);

    // Assess: the connection error of the last attempt, after exactly three of them
    await expect(failure).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(connections).toBe(3);
  });

  it('hands back the connection error when the endpoint refuses connections', async () => {
    const fake = await against([]);
    await new Promise((resolve) => fake.server.close(resolve));
    await expect(sendMessageBatch('https://sqs.us-east-1.amazonaws.com/1/q.fifo', [entry])).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
