/**
 * The whole backend on one machine: DynamoDB Local, stand-ins for SQS, Scheduler, SES,
 * API Gateway (HTTP, WebSocket, @connections) and the providers' APIs, and the same handler
 * modules that are deployed. Handlers reach the stand-ins through endpoint variables only.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'aws-lambda';
import { FUNCTIONS, HTTP_FALLBACK_FN, HTTP_ROUTES, QUEUES, RECURRING, visibilityTimeoutSeconds, WS_AUTHORIZER, WS_FUNCTION, type FunctionName, type QueueName } from '../src/manifest';
import { ENV } from '../src/config';
import { PROVIDER_CHANNELS } from '../src/domain/types';
import { baseUrlEnv } from '../src/channels/credentials';
import { createAgentTokenVerifier } from '../src/auth/agent-token';
import { startDynamoDbLocal, ensureTable, type DynamoDbLocal } from './dynamodb';
import { startAwsStandIns, type AwsStandIns } from './aws/server';
import { startEventSource, type EventSource } from './aws/event-source';
import { startHttpGateway } from './gateway/http';
import { startWebSocketGateway, type WebSocketGateway } from './gateway/websocket';
import { createLocalIdentity, LOCAL_AUTH_JWKS_PATH } from './auth';
import { createProviderStandIn, type ProviderStandIn } from './providers';
import { sendJson } from './gateway/shared';
import { receiveLocalEmail } from '../src/domain/email';
import { serveWidget } from './widget';
import { serveConsole } from './console';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';
/**
 * The queue pollers take a new batch this long after it is sent, as Lambda's own pollers do (a
 * separate fleet that long-polls, then invokes): the consumer's work then never runs inside the
 * webhook's or the API's reply, which deployed it could not, having its own CPU.
 */
const PICKUP_DELAY_MS = 3;

export interface LocalStackOptions {
  /** @default 3000 (CONVERSA_HTTP_PORT); 0 picks a free port. */
  httpPort?: number;
  /** @default 3001 (CONVERSA_WS_PORT); 0 picks a free port. */
  wsPort?: number;
  /** Keep DynamoDB Local's files here (CONVERSA_DATA_DIR); in memory otherwise. */
  dataDir?: string;
  /** Use a DynamoDB (Local) that is already running instead of starting one. */
  dynamodbEndpoint?: string;
  /** @default 'conversa-local' */
  tableName?: string;
  /** Extra environment for the handlers (timers, credentials). */
  env?: Record<string, string>;
  /** WebSocket heartbeat, shortened by fault tests. */
  heartbeatMs?: number;
  /** Print what happens to the console. @default false */
  verbose?: boolean;
  /** Told after every handler invocation (the benchmark counts invocations and their durations). */
  onInvoke?: (fn: FunctionName, durationMs: number, failed: boolean) => void;
}

export interface LocalStack {
  httpUrl: string;
  wsUrl: string;
  aws: AwsStandIns;
  dynamodb: DynamoDbLocal | undefined;
  providers: ProviderStandIn;
  websocket: WebSocketGateway;
  /** Agent tokens, as POST /local/auth/token issues them; a negative lifetime issues an expired one. */
  issueAgentToken(sub: string, role?: 'agent' | 'admin', name?: string, expiresInSeconds?: number): string;
  stop(): Promise<void>;
}

type Handler = (event: unknown, context: Context) => Promise<unknown>;

function lambdaContext(fn: FunctionName): Context {
  const timeoutMs = FUNCTIONS[fn].timeoutSeconds * 1000;
  const started = Date.now();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `conversa-local-${fn}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:conversa-local-${fn}`,
    memoryLimitInMB: String(FUNCTIONS[fn].memoryMb),
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/conversa-local-${fn}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const stoppers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of stoppers.reverse()) await fn().catch(() => undefined);
    stoppers.length = 0;
  };
  try {
    const handlers = new Map<FunctionName, Promise<Handler>>();
    const invoke = async (fn: FunctionName, event: unknown): Promise<unknown> => {
      if (!handlers.has(fn)) {
        const url = pathToFileURL(path.join(ROOT, FUNCTIONS[fn].entry)).href;
        handlers.set(fn, import(url).then((m: { handler: Handler }) => m.handler));
      }
      const handler = await handlers.get(fn)!;
      if (!options.onInvoke) return handler(event, lambdaContext(fn));
      const started = performance.now();
      let failed = true;
      try {
        const result = await handler(event, lambdaContext(fn));
        failed = false;
        return result;
      } finally {
        options.onInvoke(fn, performance.now() - started, failed);
      }
    };

    const dynamodb = options.dynamodbEndpoint ? undefined : await startDynamoDbLocal({ ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
    if (dynamodb) stoppers.push(() => dynamodb.stop());
    const dynamodbEndpoint = options.dynamodbEndpoint ?? dynamodb!.endpoint;

    const aws = await startAwsStandIns({
      port: 0,
      host: HOST,
      onScheduleFire: async (fire) => {
        await invoke('engagement', JSON.parse(fire.target.input ?? '{}'));
      },
    });
    stoppers.push(() => aws.close());
    const scheduleGroup = 'conversa-local';
    aws.scheduler.ensureGroup(scheduleGroup);
    const mediaBucket = 'conversa-local-media';
    // Versioned, as deployed (lib/constructs/media-bucket.ts): an erasure must delete every version.
    aws.s3.createBucket(mediaBucket, { versioned: true });

    const providers = createProviderStandIn();
    const websocket = await startWebSocketGateway({
      port: options.wsPort ?? 3001,
      host: HOST,
      invoke,
      authorizer: WS_AUTHORIZER,
      handler: WS_FUNCTION,
      ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
    });
    stoppers.push(() => websocket.close());

    // The HTTP port is needed before the handlers' environment can be written (public URL,
    // issuer): requests are only accepted once `ready` is set.
    let ready = false;
    // Filled in once the HTTP port (part of the issuer URL) is known.
    const auth = {} as { identity: ReturnType<typeof createLocalIdentity>; verifier: ReturnType<typeof createAgentTokenVerifier> };
    const extra = async (req: IncomingMessage, res: ServerResponse, body: string, bytes: Buffer): Promise<boolean> => {
      // Every request passes here first: the API's own (webhooks above all) leave at once.
      if (ready && !req.url?.startsWith('/local/')) return false;
      const url = new URL(req.url ?? '/', 'http://local');
      if (!ready) {
        sendJson(res, 503, { error: { code: 'starting', message: 'the local stack is starting' } });
        return true;
      }
      if (url.pathname === '/local/health') {
        sendJson(res, 200, { ok: true });
        return true;
      }
      if (auth.identity.handle(req, res, body)) return true;
      if (providers.handle(req, res, body, bytes)) return true;
      if (req.method === 'GET' && url.pathname === '/local/outbox') {
        sendJson(res, 200, { items: providers.outbox(url.searchParams.get('channel') ?? undefined) });
        return true;
      }
      if (req.method === 'POST' && url.pathname === '/local/mail/inbound') {
        const answer = await receiveLocalEmail(body, req.headers['content-type']);
        sendJson(res, answer.status, answer.body);
        return true;
      }
      if (req.method === 'GET' && (serveWidget(url, res, http.url) || serveConsole(url, res, http.url, websocket.url))) return true;
      if (req.method === 'GET' && url.pathname === '/local/mail') {
        const items = aws.ses.sent.map((m) => ({ to: m.to.join(', '), from: m.from, subject: m.subject, text: m.text, html: m.html, replyTo: m.replyTo, at: m.at.toISOString() }));
        sendJson(res, 200, { items });
        return true;
      }
      return false;
    };
    const http = await startHttpGateway({
      port: options.httpPort ?? 3000,
      host: HOST,
      routes: HTTP_ROUTES,
      invoke: (fn, event) => invoke(fn, event),
      fallback: HTTP_FALLBACK_FN,
      authorizeJwt: (token) => auth.verifier.verifyClaims(token),
      extra,
    });
    stoppers.push(() => http.close());

    const issuer = `${http.url}/local/auth`;
    const audience = 'conversa-local';
    auth.identity = createLocalIdentity({ issuer, audience });
    auth.verifier = createAgentTokenVerifier({ issuer, jwksUri: `${http.url}${LOCAL_AUTH_JWKS_PATH}`, audience });

    const tableName = options.tableName ?? 'conversa-local';
    await ensureTable(dynamodbEndpoint, tableName);
    const queueUrls = {} as Record<QueueName, string>;
    for (const [name, spec] of Object.entries(QUEUES) as [QueueName, (typeof QUEUES)[QueueName]][]) {
      queueUrls[name] = aws.sqs.createQueue(`conversa-${name}.fifo`, {
        fifo: true,
        // As deployed (high-throughput FIFO, lib/constructs/buffered-queue.ts): a copy sent to
        // another message group is not a duplicate, so tests see what production would.
        deduplicationScope: 'messageGroup',
        visibilityTimeoutSeconds: visibilityTimeoutSeconds(name),
        deadLetterQueueName: `conversa-${name}-dlq.fifo`,
        maxReceiveCount: spec.maxReceiveCount,
      });
    }

    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_DYNAMODB: dynamodbEndpoint,
      AWS_ENDPOINT_URL_SQS: aws.url,
      AWS_ENDPOINT_URL_SCHEDULER: aws.url,
      AWS_ENDPOINT_URL_SESV2: aws.url,
      AWS_ENDPOINT_URL_S3: aws.url,
      [ENV.mediaBucket]: mediaBucket,
      POWERTOOLS_LOG_LEVEL: options.verbose ? 'INFO' : 'WARN',
      [ENV.tableName]: tableName,
      [ENV.inboundQueueUrl]: queueUrls.inbound,
      [ENV.outboundQueueUrl]: queueUrls.outbound,
      [ENV.inboundDlqUrl]: aws.sqs.queueUrl('conversa-inbound-dlq.fifo'),
      [ENV.wsCallbackUrl]: websocket.managementUrl,
      [ENV.wsPublicUrl]: websocket.url,
      [ENV.jwtIssuer]: issuer,
      [ENV.jwtJwksUri]: `${http.url}${LOCAL_AUTH_JWKS_PATH}`,
      [ENV.jwtAudience]: audience,
      [ENV.publicUrl]: process.env[ENV.publicUrl] ?? http.url,
      [ENV.scheduleGroup]: scheduleGroup,
      [ENV.schedulerRoleArn]: 'arn:aws:iam::000000000000:role/conversa-local-scheduler',
      [ENV.engagementFunctionArn]: 'arn:aws:lambda:us-east-1:000000000000:function:conversa-local-engagement',
      [ENV.schedulerDlqArn]: 'arn:aws:sqs:us-east-1:000000000000:conversa-scheduler-dlq',
      [ENV.mailFrom]: process.env[ENV.mailFrom] ?? 'support@conversa.local',
      [ENV.mailReplyDomain]: process.env[ENV.mailReplyDomain] ?? 'reply.conversa.local',
      [ENV.replySecret]: process.env[ENV.replySecret] ?? 'dev-reply-address-secret',
      [ENV.widgetIdentitySecret]: process.env[ENV.widgetIdentitySecret] ?? 'dev-widget-identity-secret',
      ...Object.fromEntries(PROVIDER_CHANNELS.map((c) => [baseUrlEnv(c), `${http.url}/local/providers/${c}`])),
      ...options.env,
    });

    const sources: EventSource[] = (Object.entries(QUEUES) as [QueueName, (typeof QUEUES)[QueueName]][]).map(([name, spec]) =>
      startEventSource({
        queue: queueUrls[name],
        sqs: aws.sqs,
        batchSize: spec.batchSize,
        pickupDelayMs: PICKUP_DELAY_MS,
        handler: async (event) => (await invoke(spec.consumer, event)) as { batchItemFailures: { itemIdentifier: string }[] },
      }),
    );
    // Stopped in reverse order: the event sources first, since their handlers need the rest.
    stoppers.push(async () => {
      await Promise.all(sources.map((s) => s.stop()));
    });

    // The stack's recurring schedules, as EventBridge Scheduler runs them deployed.
    const recurring = Object.values(RECURRING).map((spec) =>
      setInterval(() => {
        invoke(spec.target, spec.input).catch((error: unknown) => console.error(`[local] recurring ${spec.input.kind} failed`, error));
      }, spec.everyMinutes * 60_000).unref(),
    );
    stoppers.push(async () => recurring.forEach((timer) => clearInterval(timer)));

    ready = true;
    return {
      httpUrl: http.url,
      wsUrl: websocket.url,
      aws,
      dynamodb,
      providers,
      websocket,
      issueAgentToken: (sub, role = 'agent', name, expiresInSeconds) =>
        auth.identity.issue({ sub, role, ...(name ? { name } : {}), ...(expiresInSeconds === undefined ? {} : { expiresInSeconds }) }),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
