/** The HTTP wrapper's answers to failures: a client's mistake, a dependency not answering, a bug. */
import { describe, expect, it, vi } from 'vitest';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ProvisionedThroughputExceededException, InternalServerError } from '@aws-sdk/client-dynamodb';
import { httpHandler, logger } from '../../src/http/http';
import { badRequest, ClientError } from '../../src/domain/errors';
import { PROVIDER_UNAVAILABLE } from '../../src/manifest';
import { SqsError } from '../../src/aws/sqs-send';

vi.hoisted(() => {
  // The handler logs each failure; the answers are what is checked here.
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const event = { routeKey: 'GET /v1/conversations', headers: {}, requestContext: { http: { method: 'GET' } } } as unknown as APIGatewayProxyEventV2;

async function answerTo(error: Error): Promise<{ statusCode: number; headers?: Record<string, string>; body: string }> {
  const handler = httpHandler(async () => {
    throw error;
  });
  return (await handler(event, {} as never)) as { statusCode: number; headers?: Record<string, string>; body: string };
}

const timeout = () => Object.assign(new Error('[AbortError]: The operation was aborted.'), { name: 'TimeoutError' });
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { code: 'ECONNREFUSED' });

describe('httpHandler', () => {
  // Deployed, API Gateway hands the function bodies up to 10 MB, also on routes that read none.
  it('answers 413 payload_too_large to a body over 256 KiB on any route, without running it; 256 KiB itself passes', async () => {
    const route = vi.fn(async () => ({ statusCode: 200, body: '{}' }));
    const handler = httpHandler(route);
    const post = (body: string, isBase64Encoded = false) =>
      handler({ ...event, routeKey: 'POST /v1/conversations/{id}/resolve', body, isBase64Encoded }, {} as never) as Promise<{ statusCode: number; body: string }>;
    const over = 'x'.repeat(256 * 1024 + 1);
    for (const answer of [await post(over), await post(Buffer.from(over).toString('base64'), true)]) {
      expect(answer.statusCode).toBe(413);
      expect(JSON.parse(answer.body).error.code).toBe('payload_too_large');
    }
    expect(route).not.toHaveBeenCalled();
    expect((await post('x'.repeat(256 * 1024))).statusCode).toBe(200);
    expect(route).toHaveBeenCalledOnce();
  });

  it.each([
    ['the function running out of time on a paused store', timeout()],
    ['a refused connection', refused()],
    ['DynamoDB throttling past the retries', new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} })],
    ['a DynamoDB server fault', new InternalServerError({ message: 'oops', $metadata: {} })],
    ['SQS failing after the retries', new SqsError('ServiceUnavailable', 'try later', 503)],
  ])('answers 503 with Retry-After for %s', async (_what, error) => {
    const answer = await answerTo(error);
    expect(answer.statusCode).toBe(503);
    expect(answer.headers?.['retry-after']).toBe('5');
    expect(JSON.parse(answer.body).error.code).toBe('service_unavailable');
  });

  it('answers a client error with its 4xx, and a bug with 500', async () => {
    expect((await answerTo(badRequest('invalid_request', 'no'))).statusCode).toBe(400);
    expect((await answerTo(new TypeError('x is undefined'))).statusCode).toBe(500);
    expect((await answerTo(new SqsError('AccessDenied', 'not allowed', 403))).statusCode).toBe(500);
  });

  // The 5xx alarm subtracts a metric filtered from these lines: `errorCode` must be a top-level field.
  it("logs a provider's outage answered as 502 with its error code, and a client's mistake not at all", async () => {
    const logged = vi.spyOn(logger, 'error');
    try {
      const outage = await answerTo(new ClientError(502, PROVIDER_UNAVAILABLE, 'WhatsApp answered 500'));
      expect(outage.statusCode).toBe(502);
      expect(outage.headers?.['retry-after']).toBeUndefined();
      expect(logged).toHaveBeenCalledExactlyOnceWith(expect.any(String), expect.objectContaining({ errorCode: PROVIDER_UNAVAILABLE, route: event.routeKey }));
      logged.mockClear();
      await answerTo(badRequest('invalid_request', 'no'));
      expect(logged).not.toHaveBeenCalled();
      // Too busy to change: try again shortly, as after a dependency's 503.
      const busy = await answerTo(new ClientError(503, 'conversation_busy', 'kept changing'));
      expect([busy.statusCode, busy.headers?.['retry-after'], JSON.parse(busy.body).error.code]).toEqual([503, '5', 'conversation_busy']);
    } finally {
      logged.mockRestore();
    }
  });
});
