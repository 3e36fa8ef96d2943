/**
 * Local stand-in for the deployed WebSocket API (API Gateway v2): the REQUEST authorizer on
 * $connect, the $connect / $default / $disconnect Lambda proxy events, and the @connections
 * management API on the same port, so `ApiGatewayManagementApiClient({ endpoint: managementUrl })`
 * works unchanged.
 *
 * Authorizer outcomes follow API Gateway, so what passes here passes when deployed: a missing
 * `?token=` (the identity source) refuses the handshake with 401 without invoking the authorizer; the
 * authorizer throwing `Error('Unauthorized')` refuses the handshake with 401, an explicit Deny (or a policy that
 * does not allow `$connect`) with 403, any other failure or a malformed policy with 500.
 *
 * Not emulated: route responses (handler return bodies are never sent back; handlers answer through
 * @connections), the 10-minute idle timeout, the 2-hour connection limit, and the 32 KB frame quota:
 * deployed, a single frame over 32 KB or a message over 128 KB closes the connection with 1009,
 * where this stand-in passes a frame up to 128 KiB and answers a larger one with an error frame.
 */
import { randomBytes } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { APIGatewayEventWebsocketRequestContextV2 } from 'aws-lambda';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { WS_TOKEN_QUERY_PARAM, type FunctionName } from '../../src/manifest';
import { clfTime, clientIp, closeServer, LOCAL_ACCOUNT_ID, listen, safeDecode, sendJson } from './shared';
import { readBody as readBodyUpTo } from '../body';

export type WsInvoke = (fn: FunctionName, event: unknown) => Promise<unknown>;

export interface WebSocketGatewayOptions {
  readonly port: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  readonly invoke: WsInvoke;
  /** The REQUEST authorizer of the $connect route. */
  readonly authorizer: FunctionName;
  /** The integration of $connect, $disconnect and $default. */
  readonly handler: FunctionName;
  /** @default 'local' */
  readonly stage?: string;
  /** How often sockets are pinged; one that has not answered the previous ping is dropped. @default 30000 */
  readonly heartbeatMs?: number;
  /** API Gateway's message size quota. @default 131072 (128 KiB) */
  readonly maxMessageBytes?: number;
}

export interface WebSocketGateway {
  /** ws://host:port, where clients connect (the token goes in the query string). */
  readonly url: string;
  /** http://host:port, the @connections management endpoint. */
  readonly managementUrl: string;
  close(): Promise<void>;
  connections(): string[];
  /**
   * Destroys the TCP socket as if the client vanished. With notify, $disconnect follows as it would
   * after a lost connection; without, the backend is never told (for fault tests). False if unknown.
   */
  dropConnection(connectionId: string, options: { notify: boolean }): boolean;
}

/** Stand-in for the API id AWS fills in; handlers should not depend on it. */
export const LOCAL_WS_API_ID = 'local-ws';
const DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024;
const DEFAULT_HEARTBEAT_MS = 30_000;
const MANAGEMENT_PATH = /^(?:\/.*)?\/@connections\/([^/]+)$/;

interface RequestIdentity {
  readonly sourceIp: string;
  readonly userAgent: string;
}

type RequestContext = APIGatewayEventWebsocketRequestContextV2 & {
  identity: RequestIdentity;
  authorizer?: Record<string, unknown>;
  disconnectStatusCode?: number;
  disconnectReason?: string;
};

interface Connection {
  readonly id: string;
  readonly socket: WebSocket;
  readonly connectedAt: number;
  lastActiveAt: number;
  readonly identity: RequestIdentity;
  readonly domainName: string;
  readonly authorizer: Record<string, unknown>;
  /** Answered the last heartbeat ping. */
  alive: boolean;
  /** Closing without telling the backend ($disconnect is not invoked). */
  silent: boolean;
}

type AuthorizerOutcome = { readonly allowed: true; readonly context: Record<string, unknown> } | { readonly status: number };

export async function startWebSocketGateway(options: WebSocketGatewayOptions): Promise<WebSocketGateway> {
  const host = options.host ?? '127.0.0.1';
  const stage = options.stage ?? 'local';
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const live = new Map<string, Connection>();

  // A larger transport limit than the quota, so that an oversize message gets an error frame (not a 1009 close, as deployed).
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: maxMessageBytes * 8,
  });
  const server = createServer((req, res) => {
    handleManagement(req, res).catch((error: unknown) => {
      console.error('[ws-gateway] management request failed', error);
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal server error' });
    });
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // The client may go away while the authorizer runs; without a listener that error would crash us.
    socket.on('error', () => undefined);
    connect(req, socket, head).catch((error: unknown) => {
      console.error('[ws-gateway] $connect failed', error);
      refuse(socket, 500);
    });
  });

  function baseContext(
    routeKey: string,
    eventType: RequestContext['eventType'],
    connection: Pick<Connection, 'id' | 'connectedAt' | 'domainName' | 'identity'>,
  ): RequestContext {
    const now = new Date();
    const requestId = newId();
    return {
      routeKey,
      eventType,
      messageId: newId(),
      extendedRequestId: requestId,
      requestTime: clfTime(now),
      messageDirection: 'IN',
      stage,
      connectedAt: connection.connectedAt,
      requestTimeEpoch: now.getTime(),
      identity: connection.identity,
      requestId,
      domainName: connection.domainName,
      connectionId: connection.id,
      apiId: LOCAL_WS_API_ID,
    };
  }

  async function connect(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const headers = collectHeaders(req);
    const query = collectQuery(url.searchParams);
    const pending = {
      id: newId(),
      connectedAt: Date.now(),
      domainName: req.headers.host ?? host,
      identity: { sourceIp: clientIp(req), userAgent: req.headers['user-agent'] ?? '' },
    };
    // The identity source is the token query parameter: without it API Gateway refuses before invoking the authorizer.
    if (!query.single[WS_TOKEN_QUERY_PARAM]) return refuse(socket, 401);
    const region = process.env.AWS_REGION ?? 'us-east-1';
    const methodArn = `arn:aws:execute-api:${region}:${LOCAL_ACCOUNT_ID}:${LOCAL_WS_API_ID}/${stage}/$connect`;

    const outcome = await authorize({
      type: 'REQUEST',
      methodArn,
      ...headers,
      queryStringParameters: query.single,
      multiValueQueryStringParameters: query.multi,
      stageVariables: {},
      requestContext: baseContext('$connect', 'CONNECT', pending),
    }, methodArn);
    if (!('allowed' in outcome)) return refuse(socket, outcome.status);

    const connectEvent = {
      ...headers,
      ...(query.any ? { queryStringParameters: query.single, multiValueQueryStringParameters: query.multi } : {}),
      requestContext: { ...baseContext('$connect', 'CONNECT', pending), authorizer: outcome.context },
      isBase64Encoded: false,
    };
    let result: unknown;
    try {
      result = await options.invoke(options.handler, connectEvent);
    } catch (error) {
      console.error('[ws-gateway] $connect handler failed', error);
      return refuse(socket, 500);
    }
    const status = statusOf(result);
    if (status < 200 || status > 299) return refuse(socket, status);
    if (socket.destroyed) return;

    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection: Connection = {
        ...pending,
        socket: ws,
        lastActiveAt: pending.connectedAt,
        authorizer: outcome.context,
        alive: true,
        silent: false,
      };
      live.set(connection.id, connection);
      ws.on('message', (data, isBinary) => onMessage(connection, data, isBinary));
      ws.on('pong', () => {
        connection.alive = true;
      });
      ws.on('close', (code, reason) => onClose(connection, code, reason.toString()));
      ws.on('error', (error) => console.error(`[ws-gateway] socket ${connection.id} failed`, error));
    });
  }

  async function authorize(event: Record<string, unknown>, methodArn: string): Promise<AuthorizerOutcome> {
    let policy: unknown;
    try {
      policy = await options.invoke(options.authorizer, event);
    } catch (error) {
      if (error instanceof Error && error.message === 'Unauthorized') return { status: 401 };
      console.error('[ws-gateway] authorizer failed', error);
      return { status: 500 };
    }
    return evaluatePolicy(policy, methodArn);
  }

  function onMessage(connection: Connection, data: RawData, isBinary: boolean): void {
    const payload = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const context = { ...baseContext('$default', 'MESSAGE', connection), authorizer: connection.authorizer };
    if (payload.length > maxMessageBytes) {
      sendError(connection, 'Message too long', context.requestId);
      return;
    }
    connection.lastActiveAt = Date.now();
    const event = {
      requestContext: context,
      body: payload.toString(isBinary ? 'base64' : 'utf8'),
      isBase64Encoded: isBinary,
    };
    // API Gateway invokes the integration once per message, concurrently: no ordering is promised.
    options.invoke(options.handler, event).catch((error: unknown) => {
      console.error('[ws-gateway] $default handler failed', error);
      sendError(connection, 'Internal server error', context.requestId);
    });
  }

  function sendError(connection: Connection, message: string, requestId: string): void {
    if (connection.socket.readyState !== WebSocket.OPEN) return;
    connection.socket.send(JSON.stringify({ message, connectionId: connection.id, requestId }));
  }

  function onClose(connection: Connection, code: number, reason: string): void {
    live.delete(connection.id);
    if (connection.silent) return;
    const event = {
      headers: { Host: connection.domainName, 'X-Forwarded-For': connection.identity.sourceIp },
      multiValueHeaders: { Host: [connection.domainName], 'X-Forwarded-For': [connection.identity.sourceIp] },
      requestContext: {
        ...baseContext('$disconnect', 'DISCONNECT', connection),
        disconnectStatusCode: code,
        disconnectReason: reason,
        authorizer: connection.authorizer,
      },
      isBase64Encoded: false,
    };
    // Best effort, as deployed: $disconnect may also never arrive, so handlers must not rely on it.
    options.invoke(options.handler, event).catch((error: unknown) => {
      console.error('[ws-gateway] $disconnect handler failed', error);
    });
  }

  async function handleManagement(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const match = MANAGEMENT_PATH.exec(path);
    if (!match) return sendJson(res, 404, { message: 'Not Found' });
    const connection = live.get(safeDecode(match[1]!));
    const open = connection !== undefined && connection.socket.readyState === WebSocket.OPEN;

    switch (req.method) {
      case 'POST': {
        const data = await readBody(req, maxMessageBytes);
        if (!open) return gone(res);
        if (data === undefined) {
          return sendJson(res, 413, { message: 'Message too long' }, { 'x-amzn-errortype': 'PayloadTooLargeException' });
        }
        connection.lastActiveAt = Date.now();
        connection.socket.send(data, { binary: false });
        return sendJson(res, 200, {});
      }
      case 'GET':
        if (!open) return gone(res);
        return sendJson(res, 200, {
          connectedAt: new Date(connection.connectedAt).toISOString(),
          identity: connection.identity,
          lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
        });
      case 'DELETE':
        if (!open) return gone(res);
        // The close handshake then fires 'close', which invokes $disconnect.
        connection.socket.close(1000);
        res.writeHead(204).end();
        return;
      default:
        return sendJson(res, 404, { message: 'Not Found' });
    }
  }

  const heartbeat = setInterval(() => {
    for (const connection of live.values()) {
      if (!connection.alive) {
        connection.socket.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }, options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  heartbeat.unref();

  const port = await listen(server, options.port, host);

  return {
    url: `ws://${host}:${port}`,
    managementUrl: `http://${host}:${port}`,
    connections: () => [...live.keys()],
    dropConnection(connectionId, { notify }) {
      const connection = live.get(connectionId);
      if (!connection) return false;
      if (!notify) {
        connection.silent = true;
        live.delete(connectionId);
      }
      connection.socket.terminate();
      return true;
    },
    async close() {
      clearInterval(heartbeat);
      for (const connection of live.values()) {
        connection.silent = true;
        connection.socket.terminate();
      }
      live.clear();
      wss.close();
      await closeServer(server);
    },
  };
}

/**
 * API Gateway's reading of an authorizer result: a principalId, a policy whose statements allow
 * invoking the method (an explicit Deny wins), and a context of strings, numbers and booleans only.
 */
function evaluatePolicy(policy: unknown, methodArn: string): AuthorizerOutcome {
  if (!isRecord(policy) || typeof policy.principalId !== 'string' || !isRecord(policy.policyDocument)) {
    console.error('[ws-gateway] authorizer returned a malformed policy', policy);
    return { status: 500 };
  }
  const statements = policy.policyDocument.Statement;
  if (!Array.isArray(statements)) {
    console.error('[ws-gateway] authorizer policy has no Statement list', policy);
    return { status: 500 };
  }
  const context = policy.context ?? {};
  if (!isRecord(context) || Object.values(context).some((value) => value !== null && typeof value === 'object')) {
    console.error('[ws-gateway] authorizer context values must be strings, numbers or booleans', context);
    return { status: 500 };
  }

  let allowed = false;
  for (const statement of statements) {
    if (!isRecord(statement) || !matchesAny(statement.Resource, methodArn)) continue;
    if (statement.Effect === 'Deny') return { status: 403 };
    if (statement.Effect === 'Allow') allowed = true;
  }
  return allowed ? { allowed: true, context: { ...context, principalId: policy.principalId } } : { status: 403 };
}

function matchesAny(resource: unknown, arn: string): boolean {
  const patterns = Array.isArray(resource) ? resource : [resource];
  return patterns.some((pattern) => typeof pattern === 'string' && globToRegExp(pattern).test(arn));
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** WebSocket events keep the header names as the client sent them, unlike HTTP API events. */
function collectHeaders(req: IncomingMessage): {
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
} {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
  }
  const forwarded = {
    'X-Forwarded-For': clientIp(req),
    'X-Forwarded-Port': String(req.socket.localPort ?? ''),
    'X-Forwarded-Proto': 'http',
  };
  for (const [name, value] of Object.entries(forwarded)) {
    headers[name] ??= value;
    multiValueHeaders[name] ??= [value];
  }
  return { headers, multiValueHeaders };
}

function collectQuery(params: URLSearchParams): {
  single: Record<string, string>;
  multi: Record<string, string[]>;
  any: boolean;
} {
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [name, value] of params) {
    single[name] = value;
    (multi[name] ??= []).push(value);
  }
  return { single, multi, any: Object.keys(single).length > 0 };
}

function statusOf(result: unknown): number {
  if (isRecord(result) && typeof result.statusCode === 'number') return result.statusCode;
  return 200;
}

/** Answers the upgrade request with a plain HTTP error, so no WebSocket is ever opened. */
function refuse(socket: Duplex, status: number): void {
  if (socket.destroyed) return;
  const reason = STATUS_CODES[status] ?? 'Error';
  // API Gateway's own wording for the two refusals a client is expected to see.
  const message = status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : reason;
  const body = JSON.stringify({ message });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

function gone(res: ServerResponse): void {
  sendJson(res, 410, { message: 'GoneException' }, { 'x-amzn-errortype': 'GoneException' });
}

class TooLarge extends Error {}

/** Reads a request body; undefined when it exceeds the limit. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  try {
    return await readBodyUpTo(req, limit, () => new TooLarge());
  } catch (error) {
    if (error instanceof TooLarge) return undefined;
    throw error;
  }
}

/** Ids shaped like API Gateway's (e.g. "L0SM9cOFvHcCIhw="), minus '+' and '/' so they need no escaping in paths. */
function newId(): string {
  return randomBytes(11).toString('base64').replace(/\+/g, 'A').replace(/\//g, 'B');
}
