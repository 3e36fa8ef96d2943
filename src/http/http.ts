/**
 * What every HTTP handler shares: JSON in and out, the contract's error shape, and one
 * middy chain that turns client errors into 4xx and logs the rest. Bad input never
 * reaches domain code unparsed.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type * as z from '../zod';
import { wellFormedJson } from '../unicode';
import { MAX_BODY_BYTES } from '../manifest';
import { ClientError, badRequest } from '../domain/errors';
import { isDependencyUnavailable } from '../aws/availability';

export const logger = new Logger({ serviceName: 'conversa' });

export type HttpResult = APIGatewayProxyStructuredResultV2;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

export function errorResult(error: ClientError): HttpResult {
  const retryAfter: Record<string, string> = error.retryAfterSeconds === undefined ? {} : { 'retry-after': String(error.retryAfterSeconds) };
  return json(error.status, { error: { code: error.code, message: error.message, ...error.details } }, retryAfter);
}

export function rawBody(event: APIGatewayProxyEventV2): string {
  if (!event.body) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

const tooLarge = () => new ClientError(413, 'payload_too_large', `bodies are limited to ${MAX_BODY_BYTES} bytes`);

/** Parses and validates a JSON body; any problem is a 400 naming the field. */
export function parseBody<T extends z.ZodMiniType>(event: APIGatewayProxyEventV2, schema: T, options: { optional?: boolean } = {}): z.infer<T> {
  // Its size was checked before any route ran (httpHandler).
  const raw = rawBody(event);
  let value: unknown = {};
  if (raw.trim() !== '' || !options.optional) {
    try {
      value = JSON.parse(raw);
    } catch {
      throw badRequest('invalid_json', 'the body must be a JSON object');
    }
    if (!wellFormedJson(raw, value)) throw badRequest('invalid_json', 'strings must be well-formed Unicode (no lone surrogate)');
  }
  return validate(schema, value);
}

/** The query string's parameters; one left empty (`?status=&limit=`) counts as not given, as clients build them from blank fields. */
export function queryOf(event: APIGatewayProxyEventV2): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) if (value) query[name] = value;
  return query;
}

export function validate<T extends z.ZodMiniType>(schema: T, value: unknown): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest('invalid_request', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

type HttpFn = (event: APIGatewayProxyEventV2) => Promise<HttpResult>;

/** How long a client is asked to wait before trying again after a 503. */
const RETRY_AFTER_SECONDS = 5;

/**
 * Wraps a handler: ClientError → its 4xx; a dependency that is not answering (the store paused,
 * throttled) → 503 with Retry-After, as a request that may or may not have been applied (a retry
 * with the same clientMessageId is safe); anything else is a bug, logged and answered 500.
 */
export function httpHandler(fn: HttpFn) {
  return middy<APIGatewayProxyEventV2, HttpResult>()
    .use({
      // API Gateway passes bodies up to 10 MB: the contract's limit holds on every route, also
      // those that read no body (a 1 MB POST to /resolve is refused, not resolved).
      before: async (request) => {
        const { body, isBase64Encoded } = request.event;
        if (body && (isBase64Encoded ? Buffer.from(body, 'base64').length : Buffer.byteLength(body)) > MAX_BODY_BYTES) throw tooLarge();
      },
      onError: async (request) => {
        const error = request.error;
        if (error instanceof ClientError) {
          // A 5xx that is no bug of ours (a provider's outage, a conversation too busy to change):
          // logged with its code, which the 5xx alarm can subtract (provider_unavailable); at
          // ERROR, so that a function whose log level is ERROR still writes the line it counts.
          if (error.status >= 500) logger.error('answered 5xx for a condition outside this request', { errorCode: error.code, route: request.event.routeKey, detail: error.message });
          request.response = errorResult(error);
          if (error.status === 503) request.response.headers = { ...request.response.headers, 'retry-after': String(RETRY_AFTER_SECONDS) };
          return;
        }
        if (isDependencyUnavailable(error)) {
          logger.warn('a dependency is not answering', { error: error as Error, route: request.event.routeKey });
          const message = 'A service we depend on is not answering; try again shortly (the same clientMessageId is never sent twice).';
          request.response = json(503, { error: { code: 'service_unavailable', message } }, { 'retry-after': String(RETRY_AFTER_SECONDS) });
          return;
        }
        logger.error('unhandled error', { error: error as Error, route: request.event.routeKey });
        request.response = json(500, { error: { code: 'internal_error', message: 'Something went wrong on our side; it has been logged.' } });
      },
    })
    .handler(fn);
}
