/**
 * The one declaration of Conversa's functions, queues and routes.
 * The CDK stacks (lib/) and the local stack (local/) both read it, so they cannot drift apart.
 * Plain data only: no CDK or Lambda types here.
 */

export type FunctionName =
  | 'webhook'
  | 'widget'
  | 'api'
  | 'realtime'
  | 'wsAuthorizer'
  | 'inbound'
  | 'outbound'
  | 'engagement';

export interface FunctionSpec {
  /** Path of the handler module, relative to the repository root; it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
}

export const FUNCTIONS: Readonly<Record<FunctionName, FunctionSpec>> = {
  webhook: {
    entry: 'functions/webhook/handler.ts',
    description: 'Verifies provider webhooks and queues their events',
    memoryMb: 512,
    timeoutSeconds: 10,
  },
  widget: {
    entry: 'functions/widget/handler.ts',
    description: 'Starts and resumes web widget visitor sessions',
    memoryMb: 512,
    timeoutSeconds: 10,
  },
  api: {
    entry: 'functions/api/handler.ts',
    description: 'Agent HTTP API: inbox, history, replies, assignment, settings, reports',
    memoryMb: 1024,
    timeoutSeconds: 15,
  },
  realtime: {
    entry: 'functions/realtime/handler.ts',
    description: 'WebSocket routes: connect, disconnect and client actions',
    memoryMb: 512,
    timeoutSeconds: 10,
  },
  wsAuthorizer: {
    entry: 'functions/ws-authorizer/handler.ts',
    description: 'Checks the agent JWT or visitor token on WebSocket $connect',
    memoryMb: 512,
    timeoutSeconds: 5,
  },
  inbound: {
    entry: 'functions/inbound/handler.ts',
    description: 'Stores inbound messages once, routes conversations and fans out events',
    memoryMb: 1024,
    timeoutSeconds: 30,
  },
  outbound: {
    entry: 'functions/outbound/handler.ts',
    description: 'Delivers agent replies to visitors and provider APIs',
    memoryMb: 1024,
    timeoutSeconds: 30,
  },
  engagement: {
    entry: 'functions/engagement/handler.ts',
    description: 'Scheduled timers: email fallback, re-engagement, auto-resolve and CSAT',
    memoryMb: 512,
    timeoutSeconds: 30,
  },
};

export type QueueName = 'inbound' | 'outbound';

export interface QueueSpec {
  readonly consumer: FunctionName;
  readonly fifo: true;
  readonly batchSize: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  /** Environment variable through which functions learn the queue URL. */
  readonly urlEnv: string;
}

export const QUEUES: Readonly<Record<QueueName, QueueSpec>> = {
  inbound: { consumer: 'inbound', fifo: true, batchSize: 10, maxReceiveCount: 5, urlEnv: 'INBOUND_QUEUE_URL' },
  // Receives count the jobs skipped behind a failing one of their conversation too: attempts are
  // counted on the message (MAX_SEND_ATTEMPTS), and the DLQ is for jobs that crash the consumer.
  outbound: { consumer: 'outbound', fifo: true, batchSize: 10, maxReceiveCount: 10, urlEnv: 'OUTBOUND_QUEUE_URL' },
};

/** Jobs that run on a fixed rate (a recurring EventBridge schedule deployed, a timer locally). */
export interface RecurringSpec {
  readonly target: FunctionName;
  readonly everyMinutes: number;
  /** The event the target gets. */
  readonly input: { readonly kind: string };
}

export const RECURRING: Readonly<Record<string, RecurringSpec>> = {
  /** Heals agents' load counters left high by a crash (src/domain/routing.ts recountAllLoads). */
  loadRecount: { target: 'engagement', everyMinutes: 15, input: { kind: 'recountLoads' } },
};

/** SQS visibility timeout: six times the consumer's timeout, as AWS recommends for event sources. */
export function visibilityTimeoutSeconds(queue: QueueName): number {
  return FUNCTIONS[QUEUES[queue].consumer].timeoutSeconds * 6;
}

export type RouteAuth = 'none' | 'agent';

/** API Gateway throttling: steady requests (or frames) per second, and the burst above it. */
export interface RouteThrottle {
  readonly rateLimit: number;
  readonly burstLimit: number;
}

export interface HttpRouteSpec {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** API Gateway path syntax: `{name}` is one segment. */
  readonly path: string;
  readonly fn: FunctionName;
  readonly auth: RouteAuth;
  /** Tighter than the stage's limits, for routes anyone may call without a signature or token. */
  readonly throttle?: RouteThrottle;
}

/**
 * The function behind the HTTP API's `$default` route: a request no route matches reaches it with
 * no authorization, and it answers 404 in the contract's error shape, where API Gateway's own 404
 * would be `{"message":"Not Found"}`. It reads nothing for such a request.
 */
export const HTTP_FALLBACK_FN: FunctionName = 'api';

const agent = (method: HttpRouteSpec['method'], path: string): HttpRouteSpec => ({ method, path, fn: 'api', auth: 'agent' });

export const HTTP_ROUTES: readonly HttpRouteSpec[] = [
  { method: 'GET', path: '/webhooks/{channel}', fn: 'webhook', auth: 'none' },
  { method: 'POST', path: '/webhooks/{channel}', fn: 'webhook', auth: 'none' },
  // Anonymous: a flood of new visitors must not eat the stage's budget for webhooks and agents.
  { method: 'POST', path: '/v1/widget/sessions', fn: 'widget', auth: 'none', throttle: { rateLimit: 20, burstLimit: 50 } },
  // Public: whether the team is in, for the widget to say before a chat starts.
  { method: 'GET', path: '/v1/widget/availability', fn: 'widget', auth: 'none', throttle: { rateLimit: 50, burstLimit: 100 } },
  // The visitor's own history; the widget handler checks the visitor token itself.
  { method: 'GET', path: '/v1/widget/messages', fn: 'widget', auth: 'none', throttle: { rateLimit: 50, burstLimit: 100 } },
  agent('GET', '/v1/conversations'),
  agent('GET', '/v1/conversations/{id}'),
  agent('GET', '/v1/conversations/{id}/messages'),
  agent('POST', '/v1/conversations/{id}/messages'),
  agent('GET', '/v1/conversations/{id}/messages/{messageId}/attachments/{index}'),
  agent('POST', '/v1/conversations/{id}/assign'),
  agent('POST', '/v1/conversations/{id}/transfer'),
  agent('POST', '/v1/conversations/{id}/resolve'),
  agent('POST', '/v1/conversations/{id}/reopen'),
  agent('POST', '/v1/conversations/{id}/status'),
  agent('POST', '/v1/conversations/{id}/read'),
  agent('POST', '/v1/conversations/{id}/channel'),
  agent('PUT', '/v1/conversations/{id}/labels'),
  agent('GET', '/v1/contacts'),
  agent('GET', '/v1/contacts/{id}'),
  agent('PATCH', '/v1/contacts/{id}'),
  agent('DELETE', '/v1/contacts/{id}'),
  agent('POST', '/v1/contacts/{id}/merge'),
  agent('GET', '/v1/agents'),
  agent('PUT', '/v1/agents/{id}'),
  agent('GET', '/v1/settings'),
  agent('PUT', '/v1/settings'),
  agent('GET', '/v1/canned-responses'),
  agent('POST', '/v1/canned-responses'),
  agent('GET', '/v1/canned-responses/{id}'),
  agent('DELETE', '/v1/canned-responses/{id}'),
  agent('GET', '/v1/canned-responses/{id}/render'),
  agent('GET', '/v1/macros'),
  agent('POST', '/v1/macros'),
  agent('GET', '/v1/macros/{id}'),
  agent('PUT', '/v1/macros/{id}'),
  agent('DELETE', '/v1/macros/{id}'),
  agent('POST', '/v1/conversations/{id}/macros/{macroId}/run'),
  agent('GET', '/v1/reports/summary'),
  agent('POST', '/v1/proactive'),
  agent('GET', '/v1/proactive/{id}'),
  agent('DELETE', '/v1/proactive/{id}'),
  agent('POST', '/v1/uploads'),
  // Visitors' files and their conversation's files; the widget handler checks the visitor token itself.
  { method: 'POST', path: '/v1/widget/uploads', fn: 'widget', auth: 'none', throttle: { rateLimit: 10, burstLimit: 20 } },
  { method: 'GET', path: '/v1/widget/messages/{messageId}/attachments/{index}', fn: 'widget', auth: 'none', throttle: { rateLimit: 50, burstLimit: 100 } },
];

/** WebSocket routes; `$default` carries every client action (routed by the `action` field in the handler). */
export const WS_ROUTES = ['$connect', '$disconnect', '$default'] as const;
/** New connections run the authorizer and a write each: limited below the stage's frame budget. */
export const WS_ROUTE_THROTTLES: Readonly<Partial<Record<(typeof WS_ROUTES)[number], RouteThrottle>>> = {
  $connect: { rateLimit: 50, burstLimit: 100 },
};
export const WS_FUNCTION: FunctionName = 'realtime';
export const WS_AUTHORIZER: FunctionName = 'wsAuthorizer';
/** Where the authorizer finds the token on $connect. */
export const WS_TOKEN_QUERY_PARAM = 'token';
/** `?feed=focused` on an agent's $connect: the console's focused feed (src/domain/fanout.ts). */
export const WS_FEED_QUERY_PARAM = 'feed';

/**
 * Error code of the answers that are a channel provider's failure, not ours (502 when an agent
 * opens a file the provider cannot serve just now). The HTTP function logs each one with this
 * `errorCode`, and the 5xx alarm leaves them out (lib/constructs/operational-alarms.ts).
 */
export const PROVIDER_UNAVAILABLE = 'provider_unavailable';

/** Largest accepted HTTP body and WebSocket frame. */
export const MAX_BODY_BYTES = 256 * 1024;
export const MAX_FRAME_BYTES = 32 * 1024;
/** Largest file an agent or visitor may upload (it goes straight to S3, never through a function). */
export const MAX_UPLOAD_BYTES = 25 * 1024 * 1024;
/** Attachments one message may carry (Twilio's MMS limit; other channels send one per part). */
export const MAX_ATTACHMENTS = 10;
