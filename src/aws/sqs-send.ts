/**
 * SQS SendMessageBatch without the SDK client: the request is signed with SigV4 (./sigv4) and
 * sent in SQS's JSON protocol on a keep-alive connection.
 *
 * Why: it is the one call between a provider's webhook and our 200. On this 2-core machine the
 * SDK client spends about 1 ms of CPU per call in its middleware, serde, MD5 check and retry
 * bookkeeping, against 0.3 ms for the round trip itself (bench: webhook ack), and it adds
 * about 75 KiB to the functions that only ever send. Other SQS calls keep the SDK client.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { signRequest } from './sigv4';

export interface BatchEntry {
  Id: string;
  MessageBody: string;
  MessageGroupId?: string;
  MessageDeduplicationId?: string;
}

export interface BatchResult {
  Successful: { Id: string; MessageId: string }[];
  Failed: { Id: string; Code: string; Message?: string; SenderFault: boolean }[];
}

/** An error SQS answered with (`name` is its error type, e.g. `QueueDoesNotExist`). */
export class SqsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = code;
  }
}

const ATTEMPTS = 3;
const TIMEOUT_MS = 2_000;
/** Server-side trouble and throttling are worth another try; a refused request is not. */
const RETRYABLE = /Throttl|ServiceUnavailable|InternalError|InternalFailure/;

const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

function region(): string {
  return process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
}

/** What a request to one endpoint needs, worked out once (URL getters are not free on the hot path). */
interface Endpoint {
  readonly https: boolean;
  readonly hostname: string;
  readonly port: string;
  readonly host: string;
  readonly path: string;
}

const endpoints = new Map<string, Endpoint>();

/** The standard endpoint variables first (the local stack sets them), else the queue's own host. */
function endpointFor(queueUrl: string): Endpoint {
  const configured = process.env.AWS_ENDPOINT_URL_SQS ?? process.env.AWS_ENDPOINT_URL ?? queueUrl;
  let endpoint = endpoints.get(configured);
  if (!endpoint) {
    const url = new URL(configured === queueUrl ? new URL(queueUrl).origin : configured);
    const https = url.protocol === 'https:';
    endpoint = { https, hostname: url.hostname, port: url.port || (https ? '443' : '80'), host: url.host, path: url.pathname };
    endpoints.set(configured, endpoint);
  }
  return endpoint;
}

function post(endpoint: Endpoint, body: string): Promise<{ status: number; text: string }> {
  const signed = signRequest({
    service: 'sqs',
    region: region(),
    // Lambda puts the role's credentials in the environment; read per request in case they change.
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? '',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? '',
      ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}),
    },
    method: 'POST',
    path: endpoint.path,
    headers: { host: endpoint.host, 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessageBatch' },
    body,
  });
  // As a flat list node:http writes the headers as they are, without a setHeader call for each.
  const headers: string[] = ['content-length', String(Buffer.byteLength(body))];
  for (const name in signed) headers.push(name, signed[name]!);
  return new Promise((resolve, reject) => {
    const options = { hostname: endpoint.hostname, port: endpoint.port, path: endpoint.path, method: 'POST', headers, timeout: TIMEOUT_MS };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const req = endpoint.https ? httpsRequest({ ...options, agent: agents.https }, onResponse) : httpRequest({ ...options, agent: agents.http }, onResponse);
    // Named as the SDK names its own, so that callers tell an outage from a bug (src/aws/availability.ts).
    req.on('timeout', () => req.destroy(Object.assign(new Error(`SQS did not answer within ${TIMEOUT_MS} ms`), { name: 'TimeoutError' })));
    req.on('error', reject);
    req.end(body);
  });
}

function errorOf(status: number, text: string): SqsError {
  let parsed: { __type?: string; message?: string; Message?: string } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const code = (parsed.__type ?? `HTTP${status}`).split('#').pop()!;
  return new SqsError(code, parsed.message ?? parsed.Message ?? `SQS answered ${status}`, status);
}

const pause = (attempt: number) => new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt * (0.5 + Math.random())));

/** Up to 10 entries, as SendMessageBatch takes them. Network errors, 5xx and throttling are retried. */
export async function sendMessageBatch(queueUrl: string, entries: BatchEntry[]): Promise<BatchResult> {
  const endpoint = endpointFor(queueUrl);
  const body = JSON.stringify({ QueueUrl: queueUrl, Entries: entries });
  for (let attempt = 0; ; attempt++) {
    let failure: Error;
    try {
      const { status, text } = await post(endpoint, body);
      if (status === 200) {
        const out = JSON.parse(text) as Partial<BatchResult>;
        return { Successful: out.Successful ?? [], Failed: out.Failed ?? [] };
      }
      failure = errorOf(status, text);
    } catch (error) {
      // No answer (connection refused or reset, timeout): the batch may or may not be queued, and
      // sending it again is safe (FIFO deduplication ids, and consumers that recognise copies).
      failure = error as Error;
    }
    const refused = failure instanceof SqsError && failure.status < 500 && !RETRYABLE.test(failure.name);
    if (refused || attempt + 1 >= ATTEMPTS) throw failure;
    await pause(attempt);
  }
}
