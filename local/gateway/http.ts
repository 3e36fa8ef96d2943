/**
 * Local stand-in for the deployed HTTP API (API Gateway v2): routes from the manifest, the JWT
 * authorizer on agent routes, Lambda proxy events in payload format 2.0, and API Gateway's way of
 * turning a handler's result into an HTTP response. Handlers cannot tell it from the real thing.
 *
 * CORS: every OPTIONS request is answered here as a preflight that allows any origin, the four
 * methods and the requested headers (an HTTP API configured with allowOrigins ['*']); other
 * responses to a request with an Origin carry `access-control-allow-origin: *`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type {
  APIGatewayEventRequestContextJWTAuthorizer,
  APIGatewayEventRequestContextV2,
  APIGatewayProxyEventV2,
} from 'aws-lambda';
import { MAX_BODY_BYTES, type FunctionName, type HttpRouteSpec } from '../../src/manifest';
import { clfTime, clientIp, closeServer, LOCAL_ACCOUNT_ID, listen, safeDecode, send, sendJson } from './shared';
import { readBody as readBodyUpTo } from '../body';

export type HttpInvoke = (fn: FunctionName, event: APIGatewayProxyEventV2) => Promise<unknown>;

export interface HttpGatewayOptions {
  readonly port: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  readonly routes: readonly HttpRouteSpec[];
  readonly invoke: HttpInvoke;
  /**
   * The function behind the `$default` route: invoked with no authorizer (route key `$default`)
   * for a request no route matches. Without it, such a request gets API Gateway's own 404.
   */
  readonly fallback?: FunctionName;
  /** The claims of a valid agent JWT, null when it is not one. */
  readonly authorizeJwt: (token: string) => Promise<Record<string, unknown> | null>;
  /**
   * Local-only routes (/local/*), tried before the API routes; true when it answered the request.
   * `bytes` is the body as received (a provider stand-in's multipart upload).
   */
  readonly extra?: (req: IncomingMessage, res: ServerResponse, body: string, bytes: Buffer) => Promise<boolean> | boolean;
}

export interface HttpGateway {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Stand-in for the API id AWS fills in; handlers should not depend on it. */
export const LOCAL_HTTP_API_ID = 'local-http';

const ALLOWED_METHODS = 'GET,POST,PUT,PATCH,DELETE,OPTIONS';
/** API Gateway passes these bodies as text; every other content type arrives base64-encoded. */
const TEXT_CONTENT_TYPE = /^\s*(text\/|application\/([\w.-]+\+)?(json|xml|x-www-form-urlencoded|javascript)\b)/i;
const BEARER = /^Bearer\s+/i;

type RouteSegment = { readonly literal: string } | { readonly param: string };

interface CompiledRoute {
  readonly spec: HttpRouteSpec;
  readonly routeKey: string;
  readonly segments: readonly RouteSegment[];
}

interface RouteMatch {
  readonly route: CompiledRoute;
  readonly pathParameters: Record<string, string> | undefined;
}

class PayloadTooLarge extends Error {}

/** Telegram's limit for a file a bot uploads. */
const PROVIDER_BODY_BYTES = 50 * 1024 * 1024;

/**
 * API Gateway's own answers carry `message`; the contract's error shape (`error.code`) is added
 * beside it, so that clients written against either read these.
 */
const gatewayError = (code: string, message: string) => ({ message, error: { code, message } });

export async function startHttpGateway(options: HttpGatewayOptions): Promise<HttpGateway> {
  const host = options.host ?? '127.0.0.1';
  const router = compileRoutes(options.routes);
  const fallback: RouteMatch | undefined = options.fallback
    ? { route: { spec: { method: 'GET', path: '$default', fn: options.fallback, auth: 'none' }, routeKey: '$default', segments: [] }, pathParameters: undefined }
    : undefined;

  const server = createServer((req, res) => {
    handleRequest(req, res).catch((error: unknown) => {
      console.error('[http-gateway] request failed', error);
      if (!res.headersSent) sendJson(res, 500, gatewayError('internal_error', 'Internal Server Error'));
      else res.destroy();
    });
  });

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
    const rawQueryString = queryAt === -1 ? '' : url.slice(queryAt + 1);
    const method = req.method ?? 'GET';

    // As the deployed API's CORS: a page may read when to try again.
    if (req.headers.origin !== undefined) {
      res.setHeader('access-control-allow-origin', '*');
      res.setHeader('access-control-expose-headers', 'retry-after');
    }
    if (method === 'OPTIONS') return answerPreflight(req, res);

    // The provider stand-ins take what the providers take (Telegram's uploads), not the API's limit;
    // the SES receiving stand-in a raw email with its files (SES takes up to 40 MB).
    const limit = rawPath.startsWith('/local/providers/') || rawPath === '/local/mail/inbound' ? PROVIDER_BODY_BYTES : MAX_BODY_BYTES;
    let body: Buffer;
    try {
      body = await readBody(req, limit);
    } catch (error) {
      if (!(error instanceof PayloadTooLarge)) throw error;
      const message = `Request bodies are limited to ${limit} bytes`;
      return sendJson(res, 413, { error: { code: 'payload_too_large', message } });
    }

    if (options.extra && (await options.extra(req, res, body.toString('utf8'), body))) return;

    const match = router(method, rawPath) ?? fallback;
    if (!match) return sendJson(res, 404, gatewayError('not_found', 'Not Found'));
    const { route } = match;

    let authorizer: APIGatewayEventRequestContextJWTAuthorizer | undefined;
    if (route.spec.auth === 'agent') {
      authorizer = await authorize(req.headers.authorization);
      if (!authorizer) {
        res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
        return sendJson(res, 401, gatewayError('unauthorized', 'Unauthorized'));
      }
    }

    const event = buildEvent(req, match, rawPath, rawQueryString, body, authorizer);
    let result: unknown;
    try {
      result = await options.invoke(route.spec.fn, event);
    } catch (error) {
      console.error(`[http-gateway] ${route.spec.fn} failed on ${route.routeKey}`, error);
      return sendJson(res, 500, gatewayError('internal_error', 'Internal Server Error'));
    }
    sendResult(res, result, route);
  }

  async function authorize(header: string | undefined): Promise<APIGatewayEventRequestContextJWTAuthorizer | undefined> {
    // Like the HTTP API JWT authorizer, accept the token with or without the Bearer prefix.
    const token = header?.replace(BEARER, '').trim();
    if (!token) return undefined;
    let claims: Record<string, unknown> | null;
    try {
      claims = await options.authorizeJwt(token);
    } catch (error) {
      console.error('[http-gateway] JWT authorizer failed', error);
      return undefined;
    }
    return claims ? { jwt: { claims: stringifyClaims(claims), scopes: null } } : undefined;
  }

  const port = await listen(server, options.port, host);
  return { url: `http://${host}:${port}`, server, close: () => closeServer(server) };
}

/** Most specific route first: at the first segment where two routes differ, a literal beats a `{param}`. */
function compileRoutes(specs: readonly HttpRouteSpec[]): (method: string, rawPath: string) => RouteMatch | undefined {
  const buckets = new Map<string, CompiledRoute[]>();
  for (const spec of specs) {
    const segments = spec.path
      .split('/')
      .slice(1)
      .map((part): RouteSegment => (/^\{\w+\}$/.test(part) ? { param: part.slice(1, -1) } : { literal: part }));
    const key = `${spec.method} ${segments.length}`;
    const bucket = buckets.get(key) ?? [];
    bucket.push({ spec, routeKey: `${spec.method} ${spec.path}`, segments });
    buckets.set(key, bucket);
  }
  for (const bucket of buckets.values()) bucket.sort(bySpecificity);

  return (method, rawPath) => {
    const parts = rawPath.split('/').slice(1);
    const bucket = buckets.get(`${method} ${parts.length}`);
    if (!bucket) return undefined;
    for (const route of bucket) {
      const pathParameters = matchSegments(route.segments, parts);
      if (pathParameters) return { route, pathParameters: pathParameters === NO_PARAMS ? undefined : pathParameters };
    }
    return undefined;
  };
}

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

function matchSegments(segments: readonly RouteSegment[], parts: readonly string[]): Record<string, string> | undefined {
  let params: Record<string, string> | undefined;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const part = parts[i]!;
    if ('literal' in segment) {
      if (segment.literal !== part) return undefined;
    } else {
      if (part === '') return undefined;
      params ??= {};
      params[segment.param] = safeDecode(part);
    }
  }
  return params ?? NO_PARAMS;
}

function bySpecificity(a: CompiledRoute, b: CompiledRoute): number {
  for (let i = 0; i < a.segments.length; i++) {
    const aLiteral = 'literal' in a.segments[i]!;
    const bLiteral = 'literal' in b.segments[i]!;
    if (aLiteral !== bLiteral) return aLiteral ? -1 : 1;
  }
  return 0;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    req.resume();
    return Promise.reject(new PayloadTooLarge());
  }
  if (declared === undefined && req.headers['transfer-encoding'] === undefined) return Promise.resolve(EMPTY);
  return readBodyUpTo(req, limit, () => new PayloadTooLarge());
}

const EMPTY = Buffer.alloc(0);

function buildEvent(
  req: IncomingMessage,
  { route, pathParameters }: RouteMatch,
  rawPath: string,
  rawQueryString: string,
  body: Buffer,
  authorizer: APIGatewayEventRequestContextJWTAuthorizer | undefined,
): APIGatewayProxyEventV2 {
  const { headers, cookies } = collectHeaders(req);
  const sourceIp = clientIp(req);
  headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${sourceIp}` : sourceIp;
  headers['x-forwarded-proto'] ??= 'http';
  headers['x-forwarded-port'] ??= String(req.socket.localPort ?? '');

  const domainName = headers.host ?? `${req.socket.localAddress}:${req.socket.localPort}`;
  const now = new Date();
  const requestContext: APIGatewayEventRequestContextV2 & { authorizer?: APIGatewayEventRequestContextJWTAuthorizer } = {
    accountId: LOCAL_ACCOUNT_ID,
    apiId: LOCAL_HTTP_API_ID,
    domainName,
    domainPrefix: domainName.split('.', 1)[0]!,
    http: {
      method: req.method ?? 'GET',
      path: safeDecode(rawPath),
      protocol: `HTTP/${req.httpVersion}`,
      sourceIp,
      userAgent: headers['user-agent'] ?? '',
    },
    requestId: randomUUID(),
    routeKey: route.routeKey,
    stage: '$default',
    time: clfTime(now),
    timeEpoch: now.getTime(),
  };
  if (authorizer) requestContext.authorizer = authorizer;

  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath,
    rawQueryString,
    headers,
    requestContext,
    isBase64Encoded: false,
  };
  if (cookies) event.cookies = cookies;
  if (rawQueryString) event.queryStringParameters = parseQuery(rawQueryString);
  if (pathParameters) event.pathParameters = pathParameters;
  if (body.length > 0) {
    const isText = TEXT_CONTENT_TYPE.test(headers['content-type'] ?? '');
    event.body = body.toString(isText ? 'utf8' : 'base64');
    event.isBase64Encoded = !isText;
  }
  return event;
}

/** Payload 2.0 headers: lower-case names, repeated headers joined with commas, cookies moved to `cookies`. */
function collectHeaders(req: IncomingMessage): { headers: Record<string, string>; cookies: string[] | undefined } {
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === 'cookie') {
      cookies ??= [];
      for (const cookie of value.split(';')) if (cookie.trim()) cookies.push(cookie.trim());
      continue;
    }
    const previous = headers[name];
    headers[name] = previous === undefined ? value : `${previous},${value}`;
  }
  return { headers, cookies };
}

function parseQuery(rawQueryString: string): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  let any = false;
  for (const [name, value] of new URLSearchParams(rawQueryString)) {
    const previous = params[name];
    params[name] = previous === undefined ? value : `${previous},${value}`;
    any = true;
  }
  return any ? params : undefined;
}

/** API Gateway hands every claim over as a string; arrays become "[a b]". */
function stringifyClaims(claims: Record<string, unknown>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(claims)) {
    if (Array.isArray(value)) result[name] = `[${value.map(String).join(' ')}]`;
    else if (value !== null && typeof value === 'object') result[name] = JSON.stringify(value);
    else result[name] = String(value);
  }
  return result;
}

/**
 * Payload 2.0 response rules: a result with a numeric statusCode is a structured response;
 * anything else is the JSON body of a 200. A malformed structured response is API Gateway's 500.
 */
function sendResult(res: ServerResponse, result: unknown, route: CompiledRoute): void {
  if (typeof result === 'string') return send(res, 200, { 'content-type': 'application/json' }, result);
  if (result === null || typeof result !== 'object' || !('statusCode' in result)) {
    return send(res, 200, { 'content-type': 'application/json' }, JSON.stringify(result ?? null));
  }
  const structured = result as {
    statusCode: unknown;
    headers?: Record<string, unknown>;
    body?: unknown;
    isBase64Encoded?: boolean;
    cookies?: unknown;
  };
  const status = structured.statusCode;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    console.error(`[http-gateway] ${route.spec.fn} returned a malformed response on ${route.routeKey}`, result);
    return sendJson(res, 500, gatewayError('internal_error', 'Internal Server Error'));
  }
  const headers: Record<string, string | string[]> = { 'content-type': 'application/json' };
  for (const [name, value] of Object.entries(structured.headers ?? {})) headers[name.toLowerCase()] = String(value);
  if (Array.isArray(structured.cookies) && structured.cookies.length > 0) {
    headers['set-cookie'] = structured.cookies.map(String);
  }
  const body = structured.body === undefined || structured.body === null ? '' : String(structured.body);
  send(res, status, headers, structured.isBase64Encoded ? Buffer.from(body, 'base64') : body);
}

function answerPreflight(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(204, {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': ALLOWED_METHODS,
    'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'authorization,content-type',
    'access-control-max-age': '600',
  });
  res.end();
}
