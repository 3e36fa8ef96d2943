import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, type ClientOptions } from 'ws';
import { startWebSocketGateway, type WebSocketGateway } from '../../local/gateway/websocket';
import { WS_TOKEN_QUERY_PARAM, type FunctionName } from '../../src/manifest';

type Event = Record<string, unknown> & { requestContext: Record<string, unknown> };

interface Call {
  fn: FunctionName;
  event: Event;
}

const AUTHORIZER: FunctionName = 'wsAuthorizer';
const HANDLER: FunctionName = 'realtime';

/** A fake authorizer: the token names the outcome. */
function authorizerResult(event: Event): unknown {
  const token = (event.queryStringParameters as Record<string, string>)[WS_TOKEN_QUERY_PARAM];
  const policy = (effect: 'Allow' | 'Deny', context: Record<string, unknown> = { sub: 'agent-1', role: 'agent', admin: false }) => ({
    principalId: 'agent-1',
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: event.methodArn }] },
    context,
  });
  switch (token) {
    case 'good':
    case 'refuse-connect':
      return policy('Allow');
    case 'wildcard':
      return { ...policy('Allow'), policyDocument: { Statement: [{ Effect: 'Allow', Resource: 'arn:aws:execute-api:*:*:*/*/*' }] } };
    case 'deny':
      return policy('Deny');
    case 'nested-context':
      return policy('Allow', { nested: { not: 'allowed' } });
    case 'boom':
      throw new Error('authorizer crashed (expected by this test)');
    default:
      throw new Error('Unauthorized');
  }
}

const calls: Call[] = [];
let gateway: WebSocketGateway;
let management: ApiGatewayManagementApiClient;
const sockets: WebSocket[] = [];

function fakeInvoke(fn: FunctionName, raw: unknown): Promise<unknown> {
  const event = raw as Event;
  calls.push({ fn, event });
  if (fn === AUTHORIZER) return Promise.resolve().then(() => authorizerResult(event));
  const query = event.queryStringParameters as Record<string, string> | undefined;
  if (event.requestContext.routeKey === '$connect' && query?.[WS_TOKEN_QUERY_PARAM] === 'refuse-connect') {
    return Promise.resolve({ statusCode: 429 });
  }
  if (event.body === 'throw') return Promise.reject(new Error('handler crashed (expected by this test)'));
  return Promise.resolve({ statusCode: 200, body: 'never sent back' });
}

beforeAll(async () => {
  gateway = await startWebSocketGateway({ port: 0, invoke: fakeInvoke, authorizer: AUTHORIZER, handler: HANDLER });
  management = new ApiGatewayManagementApiClient({
    endpoint: gateway.managementUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
});

afterAll(async () => {
  management.destroy();
  await gateway.close();
});

beforeEach(() => {
  calls.length = 0;
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  // Their $disconnect events must land before the next test starts recording.
  await waitFor(() => gateway.connections().length === 0, 'every connection to close');
});

async function waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function connect(token: string | undefined, options: ClientOptions = {}, url = gateway.url): Promise<WebSocket> {
  const query = token === undefined ? '' : `?${WS_TOKEN_QUERY_PARAM}=${encodeURIComponent(token)}`;
  const socket = new WebSocket(`${url}/${query}`, options);
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error('refused'), { status: res.statusCode })));
    socket.once('error', reject);
  });
}

async function refusal(token: string | undefined): Promise<number> {
  const error = await connect(token).then(
    () => undefined,
    (reason: { status?: number }) => reason,
  );
  expect(error, 'the handshake should have been refused').toBeDefined();
  return error!.status ?? 0;
}

function nextFrame(socket: WebSocket): Promise<string> {
  return new Promise((resolve) => socket.once('message', (data) => resolve(data.toString())));
}

function routeCalls(routeKey: string): Event[] {
  return calls.filter(({ fn, event }) => fn === HANDLER && event.requestContext.routeKey === routeKey).map(({ event }) => event);
}

function connectionIdOf(): string {
  const connectEvents = routeCalls('$connect');
  return connectEvents[connectEvents.length - 1]!.requestContext.connectionId as string;
}

describe('WebSocket gateway handshake', () => {
  it('runs the authorizer, then $connect with its context, then $default and $disconnect with the same context', async () => {
    const socket = await connect('good', { headers: { 'User-Agent': 'ws-test' } });

    const authorizerEvent = calls[0]!;
    expect(authorizerEvent.fn).toBe(AUTHORIZER);
    expect(authorizerEvent.event).toMatchObject({
      type: 'REQUEST',
      queryStringParameters: { [WS_TOKEN_QUERY_PARAM]: 'good' },
      multiValueQueryStringParameters: { [WS_TOKEN_QUERY_PARAM]: ['good'] },
      requestContext: { routeKey: '$connect', eventType: 'CONNECT', messageDirection: 'IN' },
    });
    expect(authorizerEvent.event.methodArn).toMatch(/^arn:aws:execute-api:[\w-]+:\d{12}:[\w-]+\/[\w$-]+\/\$connect$/);
    expect(authorizerEvent.event.headers).toMatchObject({ 'User-Agent': 'ws-test', Upgrade: 'websocket' });
    expect(authorizerEvent.event.requestContext).not.toHaveProperty('authorizer');

    const [connectEvent] = routeCalls('$connect');
    const connectionId = connectEvent!.requestContext.connectionId as string;
    expect(connectionId).toBe(authorizerEvent.event.requestContext.connectionId);
    expect(connectEvent).toMatchObject({
      queryStringParameters: { [WS_TOKEN_QUERY_PARAM]: 'good' },
      isBase64Encoded: false,
      requestContext: {
        eventType: 'CONNECT',
        identity: { sourceIp: '127.0.0.1', userAgent: 'ws-test' },
        authorizer: { principalId: 'agent-1', sub: 'agent-1', role: 'agent', admin: false },
      },
    });
    expect(connectEvent!.requestContext.connectedAt).toEqual(expect.any(Number));
    expect(gateway.connections()).toEqual([connectionId]);

    socket.send('{"action":"ping"}');
    const [message] = await waitFor(() => routeCalls('$default').length > 0 && routeCalls('$default'), '$default');
    expect(message).toMatchObject({
      body: '{"action":"ping"}',
      isBase64Encoded: false,
      requestContext: {
        routeKey: '$default',
        eventType: 'MESSAGE',
        connectionId,
        connectedAt: connectEvent!.requestContext.connectedAt,
        authorizer: { principalId: 'agent-1', role: 'agent' },
      },
    });
    expect(message!.requestContext.messageId).toEqual(expect.any(String));

    socket.close(1000, 'bye');
    const [disconnect] = await waitFor(() => routeCalls('$disconnect').length > 0 && routeCalls('$disconnect'), '$disconnect');
    expect(disconnect!.requestContext).toMatchObject({
      eventType: 'DISCONNECT',
      connectionId,
      disconnectStatusCode: 1000,
      disconnectReason: 'bye',
      authorizer: { principalId: 'agent-1', role: 'agent' },
    });
    await waitFor(() => gateway.connections().length === 0, 'the connection to be forgotten');
  });

  it('accepts a policy whose resource is a wildcard', async () => {
    await connect('wildcard');
    expect(routeCalls('$connect')).toHaveLength(1);
  });

  it.each([
    ['no token (the identity source), without asking the authorizer', undefined, 401, 0],
    ['an authorizer that throws Unauthorized', 'bad', 401, 1],
    ['an explicit Deny', 'deny', 403, 1],
    ['an authorizer that crashes', 'boom', 500, 1],
    ['a context with a nested object', 'nested-context', 500, 1],
  ])('refuses %s before $connect', async (_label, token, status, authorizerCalls) => {
    expect(await refusal(token)).toBe(status);
    expect(calls.filter(({ fn }) => fn === AUTHORIZER)).toHaveLength(authorizerCalls);
    expect(routeCalls('$connect')).toHaveLength(0);
    expect(gateway.connections()).toEqual([]);
  });

  it('refuses the handshake with the status of a non-2xx $connect', async () => {
    expect(await refusal('refuse-connect')).toBe(429);
    expect(routeCalls('$connect')).toHaveLength(1);
    expect(gateway.connections()).toEqual([]);
  });
});

describe('WebSocket gateway messages', () => {
  it('answers an oversize message with an error frame and does not invoke', async () => {
    const socket = await connect('good');
    const connectionId = connectionIdOf();
    const reply = nextFrame(socket);
    socket.send('x'.repeat(128 * 1024 + 1));
    const frame = JSON.parse(await reply) as Record<string, string>;
    expect(frame).toMatchObject({ message: 'Message too long', connectionId });
    expect(frame.requestId).toEqual(expect.any(String));
    expect(routeCalls('$default')).toHaveLength(0);
  });

  it('does not send handler results back, but reports a crash with an error frame', async () => {
    const socket = await connect('good');
    const frames: string[] = [];
    socket.on('message', (data) => frames.push(data.toString()));
    socket.send('hello');
    socket.send('throw');
    await waitFor(() => frames.length > 0, 'the error frame');
    await waitFor(() => routeCalls('$default').length === 2, 'both messages');
    expect(frames.map((frame) => JSON.parse(frame) as { message: string })).toEqual([
      expect.objectContaining({ message: 'Internal server error' }),
    ]);
  });
});

describe('@connections management API through the real SDK client', () => {
  it('posts, describes and deletes a connection, then answers 410 Gone', async () => {
    const socket = await connect('good', { headers: { 'User-Agent': 'mgmt-test' } });
    const connectionId = connectionIdOf();

    const frame = nextFrame(socket);
    await management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: '{"type":"pong"}' }));
    expect(await frame).toBe('{"type":"pong"}');

    const info = await management.send(new GetConnectionCommand({ ConnectionId: connectionId }));
    expect(info.ConnectedAt).toBeInstanceOf(Date);
    expect(info.LastActiveAt).toBeInstanceOf(Date);
    expect(info.Identity).toEqual({ SourceIp: '127.0.0.1', UserAgent: 'mgmt-test' });

    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    await closed;
    const [disconnect] = await waitFor(() => routeCalls('$disconnect').length > 0 && routeCalls('$disconnect'), '$disconnect');
    expect(disconnect!.requestContext.connectionId).toBe(connectionId);

    const error = await management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: 'late' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GoneException);
    expect((error as GoneException).$metadata.httpStatusCode).toBe(410);
    await expect(management.send(new GetConnectionCommand({ ConnectionId: connectionId }))).rejects.toBeInstanceOf(GoneException);
  });

  it('answers 410 Gone for a connection that never existed', async () => {
    await expect(management.send(new PostToConnectionCommand({ ConnectionId: 'nope=', Data: 'x' }))).rejects.toBeInstanceOf(GoneException);
  });

  it('also works with a stage path in the endpoint, as the deployed callback URL has', async () => {
    const staged = new ApiGatewayManagementApiClient({
      endpoint: `${gateway.managementUrl}/local`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const socket = await connect('good');
      const frame = nextFrame(socket);
      await staged.send(new PostToConnectionCommand({ ConnectionId: connectionIdOf(), Data: 'staged' }));
      expect(await frame).toBe('staged');
    } finally {
      staged.destroy();
    }
  });
});

describe('vanished clients', () => {
  it('dropConnection without notify destroys the socket silently; posting to it is 410', async () => {
    const socket = await connect('good');
    const connectionId = connectionIdOf();
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));

    expect(gateway.dropConnection(connectionId, { notify: false })).toBe(true);
    expect(await closed).toBe(1006);
    expect(gateway.connections()).toEqual([]);
    await expect(management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: 'x' }))).rejects.toBeInstanceOf(
      GoneException,
    );
    // Give a stray $disconnect every chance to show up before asserting there is none.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(routeCalls('$disconnect')).toHaveLength(0);
    expect(gateway.dropConnection(connectionId, { notify: false })).toBe(false);
  });

  it('dropConnection with notify invokes $disconnect as for a lost connection', async () => {
    await connect('good');
    const connectionId = connectionIdOf();
    gateway.dropConnection(connectionId, { notify: true });
    const [disconnect] = await waitFor(() => routeCalls('$disconnect').length > 0 && routeCalls('$disconnect'), '$disconnect');
    expect(disconnect!.requestContext).toMatchObject({ connectionId, disconnectStatusCode: 1006 });
  });

  it('the heartbeat drops a client that stops answering pings and invokes $disconnect', async () => {
    const fast = await startWebSocketGateway({ port: 0, invoke: fakeInvoke, authorizer: AUTHORIZER, handler: HANDLER, heartbeatMs: 500 });
    try {
      const responsive = await connect('good', {}, fast.url);
      const responsiveId = connectionIdOf();
      await connect('good', { autoPong: false }, fast.url);
      const silentId = connectionIdOf();

      const [disconnect] = await waitFor(() => routeCalls('$disconnect').length > 0 && routeCalls('$disconnect'), 'the heartbeat');
      expect(disconnect!.requestContext).toMatchObject({ connectionId: silentId, disconnectStatusCode: 1006 });
      expect(fast.connections()).toEqual([responsiveId]);
      expect(responsive.readyState).toBe(WebSocket.OPEN);
    } finally {
      await fast.close();
    }
  });
});
