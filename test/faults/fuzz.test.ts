/**
 * Property-based fuzzing of every HTTP route of the manifest and every WebSocket action with
 * malformed, oversized and hostile input: never a 5xx, never a crash, nothing stored or queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';

import type { LocalStack } from '../../local/stack';
import { HTTP_ROUTES, MAX_BODY_BYTES, MAX_FRAME_BYTES } from '../../src/manifest';
import { PROVIDER_CHANNELS } from '../../src/domain/types';
import { providerHeaders } from '../fixtures/sign';
import { startTestStack } from '../support/stack';
import { eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { countItems } from './support';

// CI replays one known seed, so a red build is reproducible; local runs explore new inputs each time.
if (process.env.CI) fc.configureGlobal({ seed: 20261125 });

let stack: LocalStack;
let adminToken: string;
const clients: WsClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  adminToken = stack.issueAgentToken('fuzz-admin', 'admin', 'Fuzz');
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

const HOSTILE_STRINGS = [
  '../../etc/passwd', '%00', '\u0000', "' OR '1'='1", '"; DROP TABLE conversations; --', '<script>alert(1)</script>',
  'CONV#x', 'MSG#', '__proto__', 'constructor', '{id}', ' ', '', '\uD800', '😀'.repeat(100), 'a'.repeat(5000), '${jndi:ldap://x}',
];
const hostileString = fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 50 }), fc.constantFrom(...HOSTILE_STRINGS));

/** Bodies no route accepts: not JSON, JSON that is not an object, too deep, or too large. */
const malformedBody = fc.oneof(
  // A control character is never valid JSON, whatever follows.
  fc.string().map((s) => `\u0001${s}`),
  fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 5 }), hostileString).map((v) => JSON.stringify(v)),
  fc.integer({ min: 1000, max: 50_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.constant(JSON.stringify({ text: 'x'.repeat(MAX_BODY_BYTES + 10) })),
  fc.constant('{"text": "unterminated'),
);

const queryString = fc.array(fc.tuple(fc.constantFrom('status', 'assignee', 'channel', 'limit', 'cursor', 'from', 'to', 'hub.mode', 'hub.verify_token', 'hub.challenge', 'x'), hostileString), { maxLength: 4 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${encode(v)}`).join('&')}` : ''));

/** Lone surrogates cannot be percent-encoded; such a value becomes a path segment of its own. */
function encode(value: string): string {
  try {
    return encodeURIComponent(value) || 'x';
  } catch {
    return '%ED%A0%80';
  }
}

const fillPath = (path: string, value: string) => path.replace(/\{[^}]+\}/g, encode(value));

/** What the store and the queues hold, for "nothing stored". */
async function footprint() {
  const inbound = stack.aws.sqs.getQueue('conversa-inbound.fifo').counts();
  const outbound = stack.aws.sqs.getQueue('conversa-outbound.fifo').counts();
  return { items: await countItems(), queued: inbound.visible + inbound.inFlight + outbound.visible + outbound.inFlight };
}

describe('fuzzing', () => {
  it('answers malformed input on every HTTP route with a 4xx and stores nothing', async () => {
    // Prepare: the token's agent item exists before counting
    expect((await http(stack.httpUrl, 'GET', '/v1/agents', { token: adminToken })).status).toBe(200);
    const before = await footprint();
    const routes = HTTP_ROUTES.filter((r) => r.path !== '/webhooks/{channel}');
    const withParam = routes.find((r) => r.auth === 'agent' && r.method === 'GET' && r.path.includes('{'))!;

    // Act + Assess
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), hostileString, queryString, malformedBody, fc.boolean(), async (route, param, query, body, withToken) => {
        const path = fillPath(route.path, param);
        const res = await http(stack.httpUrl, route.method, `${path}${query}`, {
          ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { raw: body, headers: { 'content-type': 'application/json' } }),
          ...(withToken ? { token: adminToken } : {}),
        });
        expect(res.status, `${route.method} ${route.path} → ${res.status} ${res.text.slice(0, 200)}`).toBeLessThan(500);
        // Without a token: refused, either for the missing token or (checked first) the size of the
        // body, or of the request line and headers (431: a route with three parameters, each some
        // thousands of characters, passes the server's 16 KiB, as API Gateway has limits of its own).
        // A value such as "." or "..", which URL resolution removes, leaves a path no route has:
        // 404 before any authorizer, as API Gateway answers.
        const resolvedAway = new URL(path, 'http://x').pathname !== path;
        if (route.auth === 'agent' && !withToken) expect(resolvedAway ? [401, 404, 413, 431] : [401, 413, 431]).toContain(res.status);
      }),
      // The dot segments always run, not only when the generator happens on them.
      { numRuns: 250, examples: [[withParam, '.', '', '\u0001', false], [withParam, '..', '', '\u0001', false]] },
    );
    expect(await footprint()).toEqual(before);
  }, 120_000);

  it('answers hostile webhooks, signed or not, with no 5xx and queues nothing', async () => {
    const before = await footprint();
    const smsUrl = `${stack.httpUrl}/webhooks/sms`;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(...PROVIDER_CHANNELS), hostileString),
        fc.oneof(malformedBody, fc.jsonValue().map((v) => JSON.stringify(v)), fc.string()),
        fc.constantFrom('signed', 'forged', 'unsigned'),
        queryString,
        async (channel, body, signing, query) => {
          const known = (PROVIDER_CHANNELS as readonly string[]).includes(channel);
          const headers: Record<string, string> =
            signing === 'signed' && known
              ? providerHeaders(channel as (typeof PROVIDER_CHANNELS)[number], body, smsUrl)
              : signing === 'forged'
                ? { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}`, 'x-telegram-bot-api-secret-token': 'guess', 'x-twilio-signature': 'AAAA' }
                : { 'content-type': 'application/json' };
          const post = await http(stack.httpUrl, 'POST', `/webhooks/${encode(channel)}`, { raw: body, headers });
          expect(post.status, `${channel} ${signing} → ${post.status} ${post.text.slice(0, 200)}`).toBeLessThan(500);
          if (signing !== 'signed' || !known) expect(post.status).toBeGreaterThanOrEqual(400);
          const verify = await http(stack.httpUrl, 'GET', `/webhooks/${encode(channel)}${query}`);
          expect(verify.status).toBeLessThan(500);
        },
      ),
      { numRuns: 200 },
    );
    expect(await footprint()).toEqual(before);
  }, 120_000);

  it('answers hostile WebSocket frames with error frames, keeps the connection and stores nothing', async () => {
    // Prepare: a visitor and an agent connected
    const session = await visitorSession(stack.httpUrl, { name: 'Fuzzy' });
    const visitor = await WsClient.connect(stack.wsUrl, session.token);
    const agent = await WsClient.connect(stack.wsUrl, adminToken);
    clients.push(visitor, agent);
    // The agent coming online queues a drain of the waiting conversations: counted once it ran.
    const before = await eventually(async () => {
      const now = await footprint();
      return now.queued === 0 ? now : undefined;
    });
    const invalid = fc.oneof(fc.integer(), fc.constant(null), fc.constant(''), fc.constant('   '), fc.array(fc.string()), fc.object({ maxDepth: 1 }), fc.constant('x'.repeat(5000)));
    const frame = fc.oneof(
      fc.string().map((s) => `\u0001${s}`),
      // JSON that is not an object: `null` once crashed the frame parser.
      fc.constantFrom('null', '[]', '"ping"', '0', 'true'),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.record({ action: fc.constant('sendMessage'), text: invalid, clientMessageId: fc.oneof(invalid, hostileString), conversationId: hostileString }).map((f) => JSON.stringify(f)),
      fc.record({ action: fc.constant('typing'), state: fc.oneof(invalid, hostileString), conversationId: hostileString }).map((f) => JSON.stringify(f)),
      fc.record({ action: fc.constant('markRead'), messageId: invalid, conversationId: hostileString }).map((f) => JSON.stringify(f)),
      fc.record({ action: fc.constant('setPresence'), status: fc.oneof(invalid, hostileString) }).map((f) => JSON.stringify(f)),
      // A visitor with no conversation to end, an agent (who resolves over HTTP), hostile ids.
      fc.record({ action: fc.constant('resolve'), conversationId: fc.oneof(invalid, hostileString) }, { requiredKeys: ['action'] }).map((f) => JSON.stringify(f)),
      fc.record({ action: fc.oneof(hostileString, invalid) }).map((f) => JSON.stringify(f)),
      fc.constant(JSON.stringify({ action: 'ping', padding: 'x'.repeat(MAX_FRAME_BYTES + 1) })),
      fc.constant('x'.repeat(140 * 1024)),
    );

    // Act + Assess
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(visitor, agent), fc.array(frame, { minLength: 1, maxLength: 4 }), async (client, frames) => {
        const seen = client.frames.length;
        for (const f of frames) client.send(f);
        // Then a ping: every frame, the ping included, gets exactly one answer (an error frame, the
        // gateway's size refusal, or the pong), so the connection and the handler survived them.
        client.send({ action: 'ping' });
        const answered: Frame[] = await eventually(() => (client.frames.length >= seen + frames.length + 1 ? client.frames.slice(seen) : undefined), 10_000);
        expect(answered.filter((f) => f.type === 'pong').length).toBeGreaterThanOrEqual(1);
        expect(answered.filter((f) => !['error', 'pong'].includes(f.type) && f.message !== 'Message too long')).toEqual([]);
        expect(answered.some((f) => f.message === 'Internal server error')).toBe(false);
      }),
      { numRuns: 60 },
    );
    // Error frames answer every frame; give the last ones time to land before counting.
    await new Promise((r) => setTimeout(r, 500));
    expect(await footprint()).toEqual(before);
  }, 120_000);
});
