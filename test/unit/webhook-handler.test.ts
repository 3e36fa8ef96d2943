/** The webhook handler with the queue sender faked: verify, normalize, queue with the right ids, answer. */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { BatchEntry } from '../../src/aws/sqs-send';
import { createHmac } from 'node:crypto';
import { LOCAL_SMS_WEBHOOK_URL, fixture, providerHeaders } from '../fixtures/sign';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { MAX_PROVIDER_ID_CHARS } from '../../src/channels/common';
import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { clearCredentialCache } from '../../src/channels/credentials';

process.env.INBOUND_QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/conversa-inbound.fifo';
process.env.AWS_REGION = 'us-east-1';
/** The queue sender, faked: what would have been sent to SQS. */
const sendMessageBatch = vi.hoisted(() => vi.fn());
vi.mock('../../src/aws/sqs-send', async (original) => ({ ...(await original<typeof import('../../src/aws/sqs-send')>()), sendMessageBatch }));
const { handler } = await import('../../functions/webhook/handler');

function event(method: string, channel: string, body: string, headers: Record<string, string>, query: Record<string, string> = {}): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: `${method} /webhooks/{channel}`,
    rawPath: `/webhooks/${channel}`,
    rawQueryString: new URLSearchParams(query).toString(),
    headers,
    queryStringParameters: query,
    pathParameters: { channel },
    requestContext: { http: { method, path: `/webhooks/${channel}` } } as APIGatewayProxyEventV2['requestContext'],
    body,
    isBase64Encoded: false,
  };
}

const invoke = (e: APIGatewayProxyEventV2) => handler(e, {} as never) as Promise<{ statusCode: number; body: string; headers?: Record<string, string> }>;

beforeEach(() => {
  sendMessageBatch.mockReset().mockResolvedValue({ Successful: [], Failed: [] });
});

describe('webhook handler', () => {
  it('queues every message of a signed WhatsApp webhook, grouped by conversation and deduplicated by provider id', async () => {
    // Prepare
    const body = fixture('whatsapp', 'multiple');

    // Act
    const result = await invoke(event('POST', 'whatsapp', body, providerHeaders('whatsapp', body)));

    // Assess
    expect(result.statusCode).toBe(200);
    const entries = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]);
    expect(entries.length).toBeGreaterThan(1);
    for (const entry of entries) {
      const queued = JSON.parse(entry.MessageBody!);
      expect(entry.MessageGroupId).toBe(`whatsapp#${queued.handle}`);
      expect(entry.MessageDeduplicationId).toContain(queued.providerMessageId);
    }
  });

  it.each([
    ['whatsapp' as const, (body: Record<string, any>): void => void (body.entry[0].changes[0].value.messages[0].timestamp = '99999999999999')],
    ['telegram' as const, (body: Record<string, any>): void => void (body.message.date = 1e20)],
  ])('queues a signed %s message whose provider time is out of range, dated now (a 500 was retried for days)', async (channel, stamp) => {
    const body = JSON.parse(fixture(channel, 'text')) as Record<string, any>;
    stamp(body);
    const raw = JSON.stringify(body);
    const result = await invoke(event('POST', channel, raw, providerHeaders(channel, raw)));
    expect(result.statusCode).toBe(200);
    const [entry] = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]);
    expect(Math.abs(Date.parse(JSON.parse(entry!.MessageBody).sentAt) - Date.now())).toBeLessThan(60_000);
  });

  it.each([
    ['whatsapp' as const, (body: Record<string, any>): void => void (body.entry[0].changes[0].value.messages[0].from = 16505551234)],
    ['messenger' as const, (body: Record<string, any>): void => void (body.entry[0].messaging[0].sender.id = 6970123456789012)],
    ['whatsapp' as const, (body: Record<string, any>): void => void (body.entry[0].changes[0].value.messages[0].id = `wamid.${'A'.repeat(MAX_PROVIDER_ID_CHARS)}`)],
    ['messenger' as const, (body: Record<string, any>): void => void (body.entry[0].messaging[0].sender.id = '6'.repeat(MAX_PROVIDER_ID_CHARS + 1))],
    ['whatsapp' as const, (body: Record<string, any>): void => void (body.entry[0].changes[0].value.messages[0].id = '')],
  ])('skips a signed %s event whose customer or message id is a number, empty or longer than a table key holds, and queues the rest (queued, it failed on every receive)', async (channel, corrupt) => {
    const body = JSON.parse(fixture(channel, 'multiple')) as Record<string, any>;
    const whole = await invoke(event('POST', channel, JSON.stringify(body), providerHeaders(channel, JSON.stringify(body))));
    expect(whole.statusCode).toBe(200);
    const all = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]).length;
    sendMessageBatch.mockClear();
    corrupt(body);
    const raw = JSON.stringify(body);
    const result = await invoke(event('POST', channel, raw, providerHeaders(channel, raw)));
    expect(result.statusCode).toBe(200);
    const queued = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]).map((e) => JSON.parse(e.MessageBody));
    expect(queued).toHaveLength(all - 1);
    expect(queued.every((e) => typeof e.handle === 'string')).toBe(true);
  });

  // A lone surrogate refused would come back for days; kept, it would fail at a send, an email or a file's name.
  it.each([
    ['whatsapp' as const, (body: Record<string, any>, text: string): void => void (body.entry[0].changes[0].value.messages[0].text.body = text)],
    ['messenger' as const, (body: Record<string, any>, text: string): void => void (body.entry[0].messaging[0].message.text = text)],
    ['instagram' as const, (body: Record<string, any>, text: string): void => void (body.entry[0].messaging[0].message.text = text)],
    ['telegram' as const, (body: Record<string, any>, text: string): void => void (body.message.text = text)],
  ])('queues a signed %s text holding half a surrogate pair with U+FFFD in its place, a whole pair kept', async (channel, write) => {
    const body = JSON.parse(fixture(channel, 'text')) as Record<string, any>;
    write(body, 'cut \uDC00 here, half \uD83D, whole \uD83D\uDE00');
    // JSON.stringify writes each lone surrogate as an escape (\udc00), as a provider's JSON may.
    const raw = JSON.stringify(body);
    expect(raw).toContain('\\udc00');

    const result = await invoke(event('POST', channel, raw, providerHeaders(channel, raw)));

    expect(result.statusCode).toBe(200);
    const [entry] = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]);
    expect(JSON.parse(entry!.MessageBody).text).toBe('cut \uFFFD here, half \uFFFD, whole \u{1F600}');
  });

  // Twilio's form can carry the same as bytes: a surrogate percent-encoded on its own (CESU-8), no UTF-8.
  it('queues a signed Twilio text whose surrogates are encoded one by one: half a pair as one U+FFFD, a whole pair as its character', async () => {
    const sid = 'SM0123456789abcdef0123456789abcdef';
    // U+DCC0 alone, then U+1F600 written as its two surrogates (ED A0 BD, ED B8 80).
    const raw = `MessageSid=${sid}&From=%2B14155552671&To=%2B15005550006&NumMedia=0&Body=cut+%ED%B3%80+here%2C+whole+%ED%A0%BD%ED%B8%80`;
    // Signed as sent: HMAC over the URL and each name and value's bytes, sorted.
    const bytes = (part: string) => Buffer.from(part.replace(/\+/g, ' ').replace(/%([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
    const fields = raw.split('&').map((field) => field.split('=').map(bytes) as [Buffer, Buffer]);
    const hmac = createHmac('sha1', DEV_CREDENTIALS.sms.authToken!).update(LOCAL_SMS_WEBHOOK_URL);
    for (const [name, value] of fields.sort(([a], [b]) => Buffer.compare(a, b))) hmac.update(name).update(value);
    const headers = { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': hmac.digest('base64') };

    const result = await invoke(event('POST', 'sms', raw, headers));
    // Signed over the values as a UTF-8 decoder reads them (U+FFFD for each byte), as it was taken before.
    const asDecoded = await invoke(event('POST', 'sms', raw, providerHeaders('sms', raw)));

    expect([result.statusCode, asDecoded.statusCode]).toEqual([200, 200]);
    const [entry] = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]);
    expect(JSON.parse(entry!.MessageBody)).toMatchObject({ providerMessageId: sid, text: 'cut \uFFFD here, whole \u{1F600}' });
  });

  it('skips a status whose message id is longer than a table key holds, and queues the other statuses', async () => {
    const body = JSON.parse(fixture('whatsapp', 'statuses')) as Record<string, any>;
    const queuedIds = async (): Promise<string[]> => {
      sendMessageBatch.mockClear();
      const raw = JSON.stringify(body);
      expect((await invoke(event('POST', 'whatsapp', raw, providerHeaders('whatsapp', raw)))).statusCode).toBe(200);
      return sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]).map((e) => JSON.parse(e.MessageBody).providerMessageId);
    };
    const all = await queuedIds();
    body.entry[0].changes[0].value.statuses[0].id = `wamid.${'B'.repeat(MAX_PROVIDER_ID_CHARS)}`;

    const queued = await queuedIds();

    expect(all.length).toBeGreaterThan(1);
    expect(queued).toEqual(all.slice(1));
  });

  it('answers 401 and queues nothing when the signature is wrong or missing', async () => {
    const body = fixture('whatsapp', 'text');
    const forged = await invoke(event('POST', 'whatsapp', body, { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }));
    const missing = await invoke(event('POST', 'whatsapp', body, {}));
    expect(forged.statusCode).toBe(401);
    expect(missing.statusCode).toBe(401);
    expect(JSON.parse(forged.body).error.code).toBe('invalid_signature');
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it('answers 400 for a signed body that is not a webhook, and 404 for an unknown channel', async () => {
    const body = '{"not":"a webhook"';
    const bad = await invoke(event('POST', 'messenger', body, providerHeaders('messenger', body)));
    expect(bad.statusCode).toBe(400);
    const unknown = await invoke(event('POST', 'line', '{}', {}));
    expect(unknown.statusCode).toBe(404);
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it('answers 413 for a body over the contract limit, even a correctly signed one, and queues nothing', async () => {
    const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [], padding: 'x'.repeat(300 * 1024) });
    const result = await invoke(event('POST', 'whatsapp', body, providerHeaders('whatsapp', body)));
    expect(result.statusCode).toBe(413);
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it('surfaces a queue failure instead of acknowledging what was not stored: 503 for SQS trouble, 500 for a request it refuses', async () => {
    const body = fixture('whatsapp', 'text');
    sendMessageBatch.mockResolvedValue({ Successful: [], Failed: [{ Id: '0', Code: 'InternalError', SenderFault: false }] });
    const outage = await invoke(event('POST', 'whatsapp', body, providerHeaders('whatsapp', body)));
    expect(outage.statusCode).toBe(503);
    expect(outage.headers?.['retry-after']).toBe('5');
    sendMessageBatch.mockResolvedValue({ Successful: [], Failed: [{ Id: '0', Code: 'InvalidParameterValue', SenderFault: true }] });
    const refused = await invoke(event('POST', 'whatsapp', body, providerHeaders('whatsapp', body)));
    expect(refused.statusCode).toBe(500);
  });

  it('answers the Meta verification challenge only with the right verify token', async () => {
    const ok = await invoke(
      event('GET', 'whatsapp', '', {}, { 'hub.mode': 'subscribe', 'hub.verify_token': 'dev-whatsapp-verify-token', 'hub.challenge': '12345' }),
    );
    const wrong = await invoke(event('GET', 'whatsapp', '', {}, { 'hub.mode': 'subscribe', 'hub.verify_token': 'nope', 'hub.challenge': '12345' }));
    expect([ok.statusCode, ok.body]).toEqual([200, '12345']);
    expect(wrong.statusCode).toBe(403);
  });

  /** Runs `act` with `channel`'s credentials coming from a faked Secrets Manager that `arrange` sets up. */
  async function withSecret(channel: string, arrange: (secrets: ReturnType<typeof mockClient>) => unknown, act: (secrets: ReturnType<typeof mockClient>) => Promise<void>) {
    const secrets = mockClient(SecretsManagerClient);
    arrange(secrets);
    vi.stubEnv(`${channel.toUpperCase()}_SECRET_ARN`, `arn:aws:secretsmanager:us-east-1:123456789012:secret:${channel}`);
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      await act(secrets);
    } finally {
      vi.unstubAllEnvs();
      vi.restoreAllMocks();
      secrets.restore();
      clearCredentialCache();
    }
  }

  // Every deployment has all five channels' secrets, with placeholders until someone fills them in.
  it('answers 401 channel_not_configured to a post (403 to a challenge), not a 5xx, on a channel whose secret still has its placeholders, and queues nothing', async () => {
    const placeholders = { MESSENGER_VERIFY_TOKEN: '', MESSENGER_PAGE_ACCESS_TOKEN: '', MESSENGER_APP_SECRET: 'generated' };
    await withSecret('messenger', (secrets) => secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(placeholders) }), async () => {
      const body = fixture('messenger', 'text');
      const posted = await invoke(event('POST', 'messenger', body, providerHeaders('messenger', body)));
      const challenge = await invoke(event('GET', 'messenger', '', {}, { 'hub.mode': 'subscribe', 'hub.verify_token': '', 'hub.challenge': '1' }));
      // The contract's answers to a signature or verify token that does not match: nothing here can match.
      expect([posted.statusCode, challenge.statusCode]).toEqual([401, 403]);
      for (const answer of [posted, challenge]) {
        expect(JSON.parse(answer.body).error.code).toBe('channel_not_configured');
      }
      expect(sendMessageBatch).not.toHaveBeenCalled();
    });
  });

  // Filled in wrongly, or gone: a channel that worked may be broken, which must page someone (5xx),
  // not pass as a channel nobody set up; nothing is queued either way.
  it.each([
    ['is not JSON', (secrets: ReturnType<typeof mockClient>) => secrets.on(GetSecretValueCommand).resolves({ SecretString: 'fill me in' })],
    ['does not exist', (secrets: ReturnType<typeof mockClient>) => secrets.on(GetSecretValueCommand).rejects(new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata: {} }))],
    ['has a credential typed as a number', (secrets: ReturnType<typeof mockClient>) => secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ TELEGRAM_BOT_TOKEN: 42, TELEGRAM_SECRET_TOKEN: 's' }) })],
  ])('answers 500 on a channel whose secret %s, and queues nothing', async (_, arrange) => {
    await withSecret('telegram', arrange, async () => {
      const body = fixture('telegram', 'text');
      const answer = await invoke(event('POST', 'telegram', body, providerHeaders('telegram', body)));
      expect([answer.statusCode, JSON.parse(answer.body).error.code]).toEqual([500, 'internal_error']);
      expect(sendMessageBatch).not.toHaveBeenCalled();
    });
  });
});
