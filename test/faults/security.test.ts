/**
 * Refusals: forged and tampered webhook signatures, replays, a visitor reaching for another
 * visitor's conversation, expired, foreign-key and unsigned JWTs, oversized bodies and frames.
 * Each refused request leaves the store as it was.
 */
import { createSign, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { LocalStack } from '../../local/stack';
import { createLocalIdentity } from '../../local/auth';
import { MAX_BODY_BYTES, MAX_FRAME_BYTES } from '../../src/manifest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { inboundGroupId } from '../../src/aws/queues';
import { getAdapter } from '../../src/channels/registry';
import { fixture, providerHeaders, signMeta, signTwilio } from '../fixtures/sign';
import { startTestStack } from '../support/stack';
import { eventually, http, visitorSession, WsClient } from '../support/clients';
import { countItems, phone, postWhatsapp, queueUrl, sqsClient, storedMessages, whatsappBody } from './support';

let stack: LocalStack;
let agentJwt: string;
const clients: WsClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = stack.issueAgentToken('sec-agent', 'agent', 'Sec');
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

async function connect(token: string): Promise<WsClient> {
  const client = await WsClient.connect(stack.wsUrl, token);
  clients.push(client);
  return client;
}

/** The handshake's HTTP status when it is refused; 101 when it is accepted. */
async function handshake(token: string): Promise<number> {
  try {
    await connect(token);
    return 101;
  } catch (error) {
    return (error as { status?: number }).status ?? 0;
  }
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');
const jwtParts = (token: string) => {
  const [header, payload] = token.split('.');
  return { header: JSON.parse(Buffer.from(header!, 'base64url').toString()) as Record<string, unknown>, payload: JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown> };
};

describe('webhook signatures', { timeout: 90_000 }, () => {
  it('refuses forged, missing and tampered signatures on every channel, storing nothing', async () => {
    const before = await countItems();
    const from = phone(30, 1);
    const body = whatsappBody(from, 'forged');
    const secret = DEV_CREDENTIALS.whatsapp.appSecret ?? '';
    const smsBody = fixture('sms', 'text.txt');
    const attempts: [string, string, Record<string, string>][] = [
      ['/webhooks/whatsapp', body, { 'content-type': 'application/json' }],
      ['/webhooks/whatsapp', body, { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(body, 'not-the-app-secret') }],
      ['/webhooks/whatsapp', body, { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(`${body} `, secret) }],
      ['/webhooks/whatsapp', body, { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(body, secret).replace('sha256=', 'sha1=') }],
      ['/webhooks/whatsapp', body, { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(body, secret).slice(0, -2) }],
      ['/webhooks/messenger', fixture('messenger', 'text'), { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(fixture('messenger', 'text'), 'guess') }],
      ['/webhooks/instagram', fixture('instagram', 'text'), { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(fixture('instagram', 'text'), 'guess') }],
      ['/webhooks/telegram', fixture('telegram', 'text'), { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': 'guess' }],
      ['/webhooks/telegram', fixture('telegram', 'text'), { 'content-type': 'application/json' }],
      ['/webhooks/sms', smsBody, { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signTwilio(`${stack.httpUrl}/webhooks/sms`, smsBody, 'guess') }],
      // Signed for another URL than the one Twilio was configured with.
      ['/webhooks/sms', smsBody, { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signTwilio('https://evil.example/webhooks/sms', smsBody, DEV_CREDENTIALS.sms.authToken ?? '') }],
    ];
    for (const [path, raw, headers] of attempts) {
      const res = await http(stack.httpUrl, 'POST', path, { raw, headers });
      expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
    }
    expect(stack.aws.sqs.getQueue('conversa-inbound.fifo').counts()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    expect(await countItems()).toBe(before);
  });

  it('stores a replayed webhook once, also after the queue forgot it, and refuses a tampered replay', async () => {
    // Prepare: a genuine delivery, stored
    const from = phone(30, 2);
    const body = whatsappBody(from, 'replay me', 'wamid.replayed-message');
    expect(await postWhatsapp(stack, body)).toBe(200);
    await eventually(async () => (await storedMessages(from)).length === 1, 30_000);

    // Act: the same bytes again; the same event after SQS's 5-minute deduplication window
    // (a new deduplication id); and the body changed under the old signature
    const replays = await Promise.all([postWhatsapp(stack, body), postWhatsapp(stack, body)]);
    // What the webhook queues for that replay hours later: the provider's own time, and ours.
    const [event] = getAdapter('whatsapp').normalize({ method: 'POST', rawBody: body, headers: {}, query: {}, url: '' }, DEV_CREDENTIALS.whatsapp);
    const hoursLater = { ...event, receivedAt: new Date(Date.now() + 6 * 3600_000).toISOString() };
    const sqs = sqsClient(stack);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl(stack, 'conversa-inbound.fifo'), MessageBody: JSON.stringify(hoursLater), MessageGroupId: inboundGroupId({ channel: 'whatsapp', handle: from }), MessageDeduplicationId: crypto.randomUUID() }));
    sqs.destroy();
    const tampered = body.replace('replay me', 'pay me');
    const tamperedStatus = (await http(stack.httpUrl, 'POST', '/webhooks/whatsapp', { raw: tampered, headers: providerHeaders('whatsapp', body) })).status;

    // Assess
    expect(replays).toEqual([200, 200]);
    expect(tamperedStatus).toBe(401);
    await eventually(() => {
      const c = stack.aws.sqs.getQueue('conversa-inbound.fifo').counts();
      return c.visible + c.inFlight === 0;
    }, 30_000);
    expect((await storedMessages(from)).map((m) => m.text)).toEqual(['replay me']);
  });
});

describe('visitor tokens', { timeout: 90_000 }, () => {
  it("keeps a visitor away from another visitor's conversation", async () => {
    // Prepare: visitor A has a conversation; visitor B has its own session
    const a = await visitorSession(stack.httpUrl, { name: 'Alice' });
    const aWs = await connect(a.token);
    aWs.send({ action: 'sendMessage', text: 'private to Alice', clientMessageId: 'a-1' });
    const ack = await aWs.waitFor((f) => f.type === 'ack' && f.clientMessageId === 'a-1', 30_000);
    const b = await visitorSession(stack.httpUrl, { name: 'Bob' });
    const bWs = await connect(b.token);
    const before = await countItems();

    // Act: B names A's conversation in every action, and calls the agent API with its token
    bWs.send({ action: 'sendMessage', conversationId: ack.conversationId, text: 'intrusion', clientMessageId: 'b-1' });
    bWs.send({ action: 'typing', conversationId: ack.conversationId, state: 'on' });
    bWs.send({ action: 'markRead', conversationId: ack.conversationId, messageId: ack.messageId });
    const errors = await eventually(() => {
      const found = bWs.frames.filter((f) => f.type === 'error');
      return found.length >= 3 ? found : undefined;
    }, 30_000);
    const apiAsVisitor = await http(stack.httpUrl, 'GET', `/v1/conversations/${ack.conversationId}`, { token: b.token });
    const history = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: b.token });
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${ack.conversationId}/messages`, { token: agentJwt, body: { text: 'for Alice only' } });
    await aWs.waitFor((f) => f.type === 'message.created' && f.message.text === 'for Alice only', 30_000);

    // Assess
    expect(errors.map((e) => e.code)).toEqual(['forbidden', 'forbidden', 'forbidden']);
    expect(apiAsVisitor.status).toBe(401);
    expect(history.status).toBe(200);
    expect(history.body.items).toEqual([]);
    expect(reply.status).toBe(202);
    expect(bWs.frames.filter((f) => f.type !== 'error')).toEqual([]);
    // Only the agent's reply was stored.
    expect(await countItems()).toBe(before + 1);
  });
});

describe('agent JWTs', () => {
  it('refuses expired, foreign-key, unsigned and tampered tokens on HTTP and at the WebSocket handshake', async () => {
    const issuer = `${stack.httpUrl}/local/auth`;
    const valid = stack.issueAgentToken('jwt-agent', 'agent');
    const { header, payload } = jwtParts(valid);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const signWithOtherKey = (h: object, p: object) => {
      const input = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(p))}`;
      return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
    };
    const [validHeader, validPayload, validSignature] = valid.split('.');
    const refused: Record<string, string> = {
      expired: stack.issueAgentToken('jwt-agent', 'agent', undefined, -10),
      'another identity provider (same issuer and audience, its own key)': createLocalIdentity({ issuer, audience: 'conversa-local' }).issue({ sub: 'jwt-agent', role: 'admin' }),
      'our key id, signed with another key': signWithOtherKey(header, payload),
      'alg none': `${b64url(JSON.stringify({ ...header, alg: 'none' }))}.${validPayload}.`,
      'payload changed under the signature': `${validHeader}.${b64url(JSON.stringify({ ...payload, sub: 'someone-else', 'cognito:groups': ['admin'] }))}.${validSignature}`,
      'HS256 with the public key as secret': `${b64url(JSON.stringify({ ...header, alg: 'HS256' }))}.${validPayload}.${validSignature}`,
    };

    expect((await http(stack.httpUrl, 'GET', '/v1/conversations', { token: valid })).status).toBe(200);
    for (const [what, token] of Object.entries(refused)) {
      expect((await http(stack.httpUrl, 'GET', '/v1/conversations', { token })).status, what).toBe(401);
      expect(await handshake(token), what).toBe(401);
    }
  });
});

describe('sizes', { timeout: 90_000 }, () => {
  it('refuses oversized bodies and frames, storing nothing', async () => {
    // Act: bodies over the limit
    const before = await countItems();
    const big = 'x'.repeat(MAX_BODY_BYTES + 1);
    const bigWebhook = whatsappBody(phone(30, 3), big);
    const webhook = await http(stack.httpUrl, 'POST', '/webhooks/whatsapp', { raw: bigWebhook, headers: providerHeaders('whatsapp', bigWebhook) });
    const session = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { name: big } });
    const afterBodies = await countItems();

    // Act: frames over the handler's limit and over API Gateway's
    const visitor = await visitorSession(stack.httpUrl, {});
    const ws = await connect(visitor.token);
    const connected = await countItems();
    ws.send({ action: 'sendMessage', text: 'y'.repeat(MAX_FRAME_BYTES), clientMessageId: 'too-big' });
    ws.send('z'.repeat(200 * 1024));
    const answers = await eventually(() => (ws.frames.length >= 2 ? ws.frames : undefined), 30_000);

    // Assess
    expect(webhook.status).toBe(413);
    expect(session.status).toBe(413);
    expect(afterBodies).toBe(before);
    expect(answers.find((f) => f.type === 'error')).toMatchObject({ code: 'frame_too_large' });
    expect(answers.find((f) => f.type !== 'error')).toMatchObject({ message: 'Message too long' });
    expect(await countItems()).toBe(connected);
  });
});
