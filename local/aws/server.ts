/**
 * One HTTP server for the local AWS stand-ins. The unmodified SDK v3 clients reach it by endpoint
 * (AWS_ENDPOINT_URL_SQS, ..._SCHEDULER, ..._SESV2, ..._S3): SQS by its X-Amz-Target header (AWS JSON
 * 1.0), S3 by a path whose first segment is a bucket made with `s3.createBucket` (path-style),
 * Scheduler and SES v2 by REST path. Requests are not signed-checked, any dummy credentials do,
 * except S3 presigned URLs (see ./s3).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readBody } from '../body';
import type { AddressInfo } from 'node:net';
import { LocalS3, type LocalS3Options } from './s3';
import { LocalScheduler, SchedulerError, type ScheduleFire } from './scheduler';
import { LocalSes, SesError } from './ses';
import { LocalSqs, SqsError } from './sqs';

export type { ScheduleFire } from './scheduler';

export interface AwsStandInsOptions {
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Stands in for the schedules' target (the Lambda function EventBridge Scheduler would invoke). */
  onScheduleFire: (fire: ScheduleFire) => Promise<void>;
  /** Passed to the scheduler; tests shorten them. */
  scheduleRetries?: number;
  scheduleRetryDelayMs?: number;
  /** Passed to the S3 stand-in; tests lower its maximum object size. */
  s3?: LocalS3Options;
}

export interface AwsStandIns {
  /** Base URL, for every AWS_ENDPOINT_URL_<SERVICE> variable. */
  url: string;
  sqs: LocalSqs;
  scheduler: LocalScheduler;
  ses: LocalSes;
  /** Serves only the buckets created on it. */
  s3: LocalS3;
  close(): Promise<void>;
}

/** SQS allows 1 MiB per batch; anything far above is not an SDK request. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
const SQS_TARGET_PREFIX = 'AmazonSQS.';

type Json = Record<string, unknown>;

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

interface Route {
  method: string;
  /** Literal segments, or `:name` for the one path parameter. */
  path: readonly string[];
  run(name: string, query: URLSearchParams, body: Json): Json;
}

class RequestTooLarge extends Error {}
class UnreadableBody extends Error {}

function routes(scheduler: LocalScheduler, ses: LocalSes): Route[] {
  return [
    { method: 'POST', path: ['schedules', ':name'], run: (name, _query, body) => scheduler.createSchedule(name, body) },
    { method: 'PUT', path: ['schedules', ':name'], run: (name, _query, body) => scheduler.updateSchedule(name, body) },
    { method: 'GET', path: ['schedules', ':name'], run: (name, query) => scheduler.getSchedule(name, query.get('groupName')) },
    { method: 'DELETE', path: ['schedules', ':name'], run: (name, query) => scheduler.deleteSchedule(name, query.get('groupName')) },
    { method: 'GET', path: ['schedules'], run: (_name, query) => scheduler.listSchedules(query) },
    { method: 'POST', path: ['schedule-groups', ':name'], run: (name) => scheduler.createScheduleGroup(name) },
    { method: 'GET', path: ['schedule-groups', ':name'], run: (name) => scheduler.getScheduleGroup(name) },
    { method: 'DELETE', path: ['schedule-groups', ':name'], run: (name) => scheduler.deleteScheduleGroup(name) },
    { method: 'GET', path: ['schedule-groups'], run: (_name, query) => scheduler.listScheduleGroups(query) },
    { method: 'POST', path: ['v2', 'email', 'outbound-emails'], run: (_name, _query, body) => ses.sendEmail(body) },
  ];
}

function match(route: Route, method: string, segments: string[]): string | undefined {
  if (route.method !== method || route.path.length !== segments.length) return undefined;
  let name = '';
  for (const [index, part] of route.path.entries()) {
    const segment = segments[index]!;
    if (part.startsWith(':')) name = segment;
    else if (part !== segment) return undefined;
  }
  return name;
}

function parseJsonObject(raw: Buffer): Json {
  if (raw.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new UnreadableBody('The request body is not valid JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UnreadableBody('The request body must be a JSON object.');
  return value as Json;
}

function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers, body };
}

/** AWS JSON 1.0 error: the code in __type, the query-compatible code in a header (SQS is awsQueryCompatible). */
function sqsErrorReply(code: string, message: string, status: number, queryCode = code): Reply {
  const fault = status >= 500 ? 'Receiver' : 'Sender';
  return jsonReply(status, { __type: `com.amazonaws.sqs#${code}`, message }, { 'x-amzn-query-error': `${queryCode};${fault}` });
}

/** REST-JSON error: the code in x-amzn-errortype; Scheduler reads `Message`, SES `message`. */
function restErrorReply(code: string, message: string, status: number): Reply {
  return jsonReply(status, { message, Message: message }, { 'x-amzn-errortype': code });
}

function failureReply(error: unknown, sqs: boolean): Reply {
  if (error instanceof SqsError) return sqsErrorReply(error.code, error.message, error.status, error.queryErrorCode);
  if (error instanceof SchedulerError || error instanceof SesError) return restErrorReply(error.code, error.message, error.status);
  const [code, message, status] =
    error instanceof RequestTooLarge
      ? ['RequestEntityTooLarge', 'The request is too large.', 413]
      : error instanceof UnreadableBody
        ? ['SerializationException', error.message, 400]
        : ['InternalFailure', 'The local stand-in failed; see its log.', 500];
  if (status === 500) console.error('AWS stand-in failure:', error);
  return sqs ? sqsErrorReply(code, message, status) : restErrorReply(code, message, status);
}

function send(response: ServerResponse, reply: Reply, contentType: string): void {
  if (response.headersSent || response.destroyed) return;
  const payload = JSON.stringify(reply.body);
  response.writeHead(reply.status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': crypto.randomUUID(),
    ...reply.headers,
  });
  response.end(payload);
}

export async function startAwsStandIns(options: AwsStandInsOptions): Promise<AwsStandIns> {
  const host = options.host ?? '127.0.0.1';
  const scheduler = new LocalScheduler({
    onScheduleFire: options.onScheduleFire,
    retries: options.scheduleRetries,
    retryDelayMs: options.scheduleRetryDelayMs,
  });
  const ses = new LocalSes();
  const s3 = new LocalS3(options.s3);
  const restRoutes = routes(scheduler, ses);
  // Queue URLs embed the server's address, so requests are served only once it listens.
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}`;
  const sqs = new LocalSqs(url);

  async function handleSqs(request: IncomingMessage, response: ServerResponse, operation: string): Promise<Reply> {
    // A client that gives up on a long poll must not leave messages in flight for nobody.
    const abandoned = operation === 'ReceiveMessage' ? new AbortController() : undefined;
    if (abandoned) {
      response.on('close', () => {
        if (!response.writableFinished) abandoned.abort();
      });
    }
    const input = parseJsonObject(await readBody(request, MAX_REQUEST_BYTES, () => new RequestTooLarge()));
    return jsonReply(200, await sqs.execute(operation, input, abandoned?.signal));
  }

  async function handleRest(request: IncomingMessage, url: URL): Promise<Reply> {
    let segments: string[];
    try {
      segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return restErrorReply('ValidationException', 'The request path is not valid.', 400);
    }
    const method = request.method ?? 'GET';
    for (const route of restRoutes) {
      const name = match(route, method, segments);
      if (name === undefined) continue;
      const body = parseJsonObject(await readBody(request, MAX_REQUEST_BYTES, () => new RequestTooLarge()));
      return jsonReply(200, route.run(name, url.searchParams, body));
    }
    request.resume();
    return restErrorReply('UnknownOperationException', `No local AWS operation for ${method} ${url.pathname}.`, 400);
  }

  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const target = request.headers['x-amz-target'];
    // S3 answers in XML and binary, on its own.
    if (target === undefined && s3.serves(request.url ?? '/')) {
      void s3.handle(request, response);
      return;
    }
    const isSqs = typeof target === 'string' && target.startsWith(SQS_TARGET_PREFIX);
    const contentType = isSqs ? 'application/x-amz-json-1.0' : 'application/json';
    const handle = async (): Promise<Reply> => {
      if (isSqs) return handleSqs(request, response, target.slice(SQS_TARGET_PREFIX.length));
      if (target !== undefined) {
        request.resume();
        return sqsErrorReply('UnknownOperationException', `No local AWS service for X-Amz-Target ${String(target)}.`, 400);
      }
      return handleRest(request, new URL(request.url ?? '/', 'http://stand-in'));
    };
    handle().then(
      (reply) => send(response, reply, contentType),
      (error: unknown) => {
        // The rest of an oversized body is not worth reading.
        if (error instanceof RequestTooLarge) response.setHeader('connection', 'close');
        send(response, failureReply(error, isSqs), contentType);
      },
    );
  });

  return {
    url,
    sqs,
    scheduler,
    ses,
    s3,
    async close() {
      sqs.close();
      await scheduler.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}
