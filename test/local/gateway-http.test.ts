import { request } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyEventV2WithJWTAuthorizer } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHttpGateway, type HttpGateway } from '../../local/gateway/http';
import { HTTP_ROUTES, MAX_BODY_BYTES, type FunctionName, type HttpRouteSpec } from '../../src/manifest';

interface Call {
  fn: FunctionName;
  event: APIGatewayProxyEventV2;
}

const GOOD_TOKEN = 'good-token';
const CLAIMS = { sub: 'agent-1', name: 'Ana', 'cognito:groups': ['agent', 'admin'], iat: 1700000000, email_verified: true };

const calls: Call[] = [];
let respond: (event: APIGatewayProxyEventV2) => unknown;
let gateway: HttpGateway;

// Two extra routes whose paths overlap, to check that a literal segment beats a {param}.
const routes: readonly HttpRouteSpec[] = [
  ...HTTP_ROUTES,
  { method: 'GET', path: '/things/{id}', fn: 'widget', auth: 'none' },
  { method: 'GET', path: '/things/special', fn: 'webhook', auth: 'none' },
];

beforeAll(async () => {
  gateway = await startHttpGateway({
    port: 0,
    routes,
    invoke: async (fn, event) => {
      calls.push({ fn, event });
      return respond(event);
    },
    authorizeJwt: async (token) => (token === GOOD_TOKEN ? CLAIMS : null),
    extra: (req, res, body) => {
      if (!req.url?.startsWith('/local/echo')) return false;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`extra:${body}`);
      return true;
    },
  });
});

afterAll(async () => {
  await gateway.close();
});

beforeEach(() => {
  calls.length = 0;
  respond = () => ({ statusCode: 200, body: '{}' });
});

function call(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${gateway.url}${path}`, init);
}

function onlyCall(): Call {
  expect(calls).toHaveLength(1);
  return calls[0]!;
}

describe('HTTP gateway events (payload format 2.0)', () => {
  it('builds the event of an agent route with path, query, headers, cookies and JWT claims', async () => {
    const response = await call('/v1/conversations/c%201/messages?limit=5&tag=a&tag=b', {
      headers: { authorization: `Bearer ${GOOD_TOKEN}`, 'X-Custom': 'Yes', cookie: 'a=1; b=2', 'user-agent': 'test-agent' },
    });
    expect(response.status).toBe(200);

    const { fn, event } = onlyCall();
    expect(fn).toBe('api');
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'GET /v1/conversations/{id}/messages',
      rawPath: '/v1/conversations/c%201/messages',
      rawQueryString: 'limit=5&tag=a&tag=b',
      cookies: ['a=1', 'b=2'],
      queryStringParameters: { limit: '5', tag: 'a,b' },
      pathParameters: { id: 'c 1' },
      isBase64Encoded: false,
    });
    expect(event.body).toBeUndefined();
    expect(event.headers).toMatchObject({ 'x-custom': 'Yes', authorization: `Bearer ${GOOD_TOKEN}`, 'user-agent': 'test-agent' });
    expect(event.headers).not.toHaveProperty('cookie');
    expect(Object.keys(event.headers).every((name) => name === name.toLowerCase())).toBe(true);

    const context = (event as APIGatewayProxyEventV2WithJWTAuthorizer).requestContext;
    expect(context).toMatchObject({
      routeKey: 'GET /v1/conversations/{id}/messages',
      stage: '$default',
      http: { method: 'GET', path: '/v1/conversations/c 1/messages', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test-agent' },
    });
    expect(context.accountId).toMatch(/^\d{12}$/);
    expect(context.apiId).not.toBe('');
    expect(context.domainName).toBe(new URL(gateway.url).host);
    expect(context.requestId).not.toBe('');
    expect(context.time).toMatch(/^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    expect(Math.abs(context.timeEpoch - Date.now())).toBeLessThan(60_000);
    // API Gateway hands the claims over as strings, arrays written as "[a b]".
    expect(context.authorizer.jwt).toEqual({
      claims: { sub: 'agent-1', name: 'Ana', 'cognito:groups': '[agent admin]', iat: '1700000000', email_verified: 'true' },
      scopes: null,
    });
  });

  it('omits the optional fields of a bare request and joins repeated headers with commas', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = request(`${gateway.url}/v1/widget/sessions`, { method: 'POST', headers: { 'x-dup': ['one', 'two'] } }, (res) => {
        res.resume().on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    const { fn, event } = onlyCall();
    expect(fn).toBe('widget');
    expect(event.headers['x-dup']).toBe('one,two');
    expect(event).not.toHaveProperty('cookies');
    expect(event).not.toHaveProperty('queryStringParameters');
    expect(event).not.toHaveProperty('pathParameters');
    expect(event).not.toHaveProperty('requestContext.authorizer');
    expect(event.rawQueryString).toBe('');
  });

  it('passes text bodies as they are and other bodies base64-encoded', async () => {
    await call('/webhooks/whatsapp', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":"é"}' });
    await call('/webhooks/sms', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'From=%2B1' });
    const bytes = Buffer.from([0, 1, 2, 255]);
    await call('/webhooks/telegram', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });

    expect(calls.map(({ event }) => [event.body, event.isBase64Encoded])).toEqual([
      ['{"a":"é"}', false],
      ['From=%2B1', false],
      [bytes.toString('base64'), true],
    ]);
    expect(calls[0]!.event.pathParameters).toEqual({ channel: 'whatsapp' });
  });
});

describe('HTTP gateway routing', () => {
  it('prefers a literal segment to a {param}', async () => {
    await call('/things/special');
    await call('/things/other');
    expect(calls.map(({ fn, event }) => [fn, event.routeKey, event.pathParameters])).toEqual([
      ['webhook', 'GET /things/special', undefined],
      ['widget', 'GET /things/{id}', { id: 'other' }],
    ]);
  });

  it.each([
    ['an unknown path', 'GET', '/nowhere'],
    ['a known path with another method', 'DELETE', '/v1/widget/sessions'],
    ['a trailing slash', 'GET', '/webhooks/whatsapp/'],
    ['an empty {param}', 'GET', '/webhooks/'],
  ])('answers 404 Not Found to %s without invoking', async (_label, method, path) => {
    const response = await call(path, { method });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ message: 'Not Found', error: { code: 'not_found', message: 'Not Found' } });
    expect(calls).toHaveLength(0);
  });

  it('with a fallback, hands what no route matches to it as the $default route, unauthorized', async () => {
    const withFallback = await startHttpGateway({
      port: 0,
      routes: HTTP_ROUTES,
      fallback: 'api',
      invoke: async (fn, event) => {
        calls.push({ fn, event });
        return { statusCode: 404, body: JSON.stringify({ error: { code: 'not_found', message: 'no route' } }) };
      },
      authorizeJwt: async (token) => (token === GOOD_TOKEN ? CLAIMS : null),
    });
    try {
      const response = await fetch(`${withFallback.url}/v1/widget/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${GOOD_TOKEN}` } });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: { code: 'not_found', message: 'no route' } });
      const { fn, event } = onlyCall();
      expect(fn).toBe('api');
      expect(event).toMatchObject({ routeKey: '$default', rawPath: '/v1/widget/sessions', requestContext: { routeKey: '$default', http: { method: 'DELETE' } } });
      // As deployed: the $default route has no authorizer, so no claims reach the function.
      expect((event as APIGatewayProxyEventV2WithJWTAuthorizer).requestContext.authorizer).toBeUndefined();
      expect(event.pathParameters).toBeUndefined();
    } finally {
      await withFallback.close();
    }
  });

  it('serves the extra local routes first, with the body', async () => {
    const response = await call('/local/echo', { method: 'POST', body: 'hi' });
    expect(await response.text()).toBe('extra:hi');
    expect(calls).toHaveLength(0);
  });
});

describe('HTTP gateway JWT authorizer', () => {
  it.each([
    ['no Authorization header', {}],
    ['a bad token', { authorization: 'Bearer nope' }],
    ['an empty bearer', { authorization: 'Bearer ' }],
  ])('answers 401 to %s without invoking', async (_label, headers: Record<string, string>) => {
    const response = await call('/v1/conversations', { headers });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ message: 'Unauthorized', error: { code: 'unauthorized', message: 'Unauthorized' } });
    expect(calls).toHaveLength(0);
  });

  it('accepts the token without the Bearer prefix, as API Gateway does', async () => {
    const response = await call('/v1/conversations', { headers: { authorization: GOOD_TOKEN } });
    expect(response.status).toBe(200);
    expect(onlyCall().fn).toBe('api');
  });

  it('does not ask for a token on public routes', async () => {
    const response = await call('/webhooks/whatsapp?hub.mode=subscribe');
    expect(response.status).toBe(200);
    expect(onlyCall().event.queryStringParameters).toEqual({ 'hub.mode': 'subscribe' });
  });
});

describe('HTTP gateway limits and failures', () => {
  it('answers 413 to a body over the limit, declared or streamed, without invoking', async () => {
    const big = 'x'.repeat(MAX_BODY_BYTES + 1);
    const declared = await call('/webhooks/whatsapp', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: big });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');

    const streamed = await call('/webhooks/whatsapp', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: new Blob([big]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(calls).toHaveLength(0);

    const atLimit = await call('/webhooks/whatsapp', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: big.slice(1) });
    expect(atLimit.status).toBe(200);
    expect(onlyCall().event.body).toHaveLength(MAX_BODY_BYTES);
  });

  it('answers 500 Internal Server Error when the handler throws', async () => {
    respond = () => {
      throw new Error('boom (expected by this test)');
    };
    const response = await call('/v1/widget/sessions', { method: 'POST' });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ message: 'Internal Server Error', error: { code: 'internal_error', message: 'Internal Server Error' } });
  });

  it('answers CORS preflights itself', async () => {
    const response = await call('/v1/conversations', {
      method: 'OPTIONS',
      headers: { origin: 'http://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-methods')).toContain('GET');
    expect(response.headers.get('access-control-allow-headers')).toBe('authorization');
    expect(calls).toHaveLength(0);

    const actual = await call('/v1/widget/sessions', { method: 'POST', headers: { origin: 'http://app.example' } });
    expect(actual.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('HTTP gateway responses', () => {
  it('maps a structured result: status, headers, cookies, base64 body', async () => {
    respond = () => ({
      statusCode: 201,
      headers: { 'Content-Type': 'image/png', 'X-Count': 3 },
      cookies: ['a=1; Path=/', 'b=2'],
      body: Buffer.from([137, 80, 78, 71]).toString('base64'),
      isBase64Encoded: true,
    });
    const response = await call('/v1/widget/sessions', { method: 'POST' });
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('x-count')).toBe('3');
    expect(response.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2']);
    expect(Buffer.from(await response.arrayBuffer())).toEqual(Buffer.from([137, 80, 78, 71]));
  });

  it('turns a result without statusCode into a 200 JSON body', async () => {
    respond = () => ({ hello: 'world' });
    const object = await call('/v1/widget/sessions', { method: 'POST' });
    expect(object.status).toBe(200);
    expect(object.headers.get('content-type')).toBe('application/json');
    expect(await object.json()).toEqual({ hello: 'world' });

    respond = () => 'plain';
    const text = await call('/v1/widget/sessions', { method: 'POST' });
    expect(text.status).toBe(200);
    expect(await text.text()).toBe('plain');
  });

  it('answers 500 to a malformed statusCode', async () => {
    respond = () => ({ statusCode: 'ok', body: 'x' });
    const response = await call('/v1/widget/sessions', { method: 'POST' });
    expect(response.status).toBe(500);
  });
});
