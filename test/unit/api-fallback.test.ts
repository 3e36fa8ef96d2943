/** The API function behind the HTTP API's `$default` route (HTTP_FALLBACK_FN): what no route matches. */
import { describe, expect, it, vi } from 'vitest';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { handler } from '../../functions/api/handler';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

/** An event as API Gateway hands the `$default` route a request: no authorizer, the route key `$default`. */
function unmatched(method: string, path: string, headers: Record<string, string> = {}): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers,
    isBase64Encoded: false,
    requestContext: { routeKey: '$default', stage: '$default', http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.9', userAgent: 'test' } },
  } as unknown as APIGatewayProxyEventV2;
}

async function answer(event: APIGatewayProxyEventV2): Promise<{ statusCode: number; body?: string }> {
  return (await handler(event, {} as never)) as { statusCode: number; body?: string };
}

describe('the $default route', () => {
  // Deployed, $default catches every method no route names, OPTIONS included, so API Gateway hands
  // it the browsers' CORS preflights instead of answering them: a 404 there fails every
  // cross-origin call of the console and the widget. A 2xx gets the API's CORS headers added.
  it('answers a CORS preflight 204, with no body, for an agent route and a widget route alike', async () => {
    for (const [path, method, requested] of [
      ['/v1/conversations', 'GET', 'authorization'],
      ['/v1/conversations/01J0000000000000000000000A/messages', 'POST', 'authorization,content-type'],
      ['/v1/widget/sessions', 'POST', 'content-type'],
    ] as const) {
      const reply = await answer(unmatched('OPTIONS', path, { origin: 'https://console.example.com', 'access-control-request-method': method, 'access-control-request-headers': requested }));
      expect(reply.statusCode, `${method} ${path}`).toBe(204);
      expect(reply.body ?? '').toBe('');
    }
  });

  it('still answers 404 not_found to an unknown route, and to an OPTIONS that is no preflight', async () => {
    for (const event of [
      unmatched('GET', '/v1/nothing-here'),
      unmatched('DELETE', '/v1/widget/sessions', { origin: 'https://console.example.com' }),
      unmatched('OPTIONS', '/v1/conversations'),
      unmatched('OPTIONS', '/v1/conversations', { 'access-control-request-method': 'GET' }),
    ]) {
      const reply = await answer(event);
      expect(reply.statusCode).toBe(404);
      expect(JSON.parse(reply.body!).error.code).toBe('not_found');
    }
  });
});
