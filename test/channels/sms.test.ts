import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { config } from '../../src/config';
import { smsAdapter as adapter, twilioSignature } from '../../src/channels/sms';
import type { OutboundSend, WebhookRequest } from '../../src/channels/types';
import { LOCAL_SMS_WEBHOOK_URL, fixture, signTwilio, signedRequest } from '../fixtures/sign';
import { DAY, NOW, ago, networkError, scriptedFetch, sendContext } from './support';

const credentials = DEV_CREDENTIALS.sms;
const token = credentials.authToken ?? '';

function request(body: string, signature: string | undefined, url = LOCAL_SMS_WEBHOOK_URL): WebhookRequest {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (signature !== undefined) headers['x-twilio-signature'] = signature;
  return { method: 'POST', rawBody: body, headers, query: {}, url };
}

function normalize(name: string) {
  return adapter.normalize(signedRequest('sms', fixture('sms', name)), credentials);
}

describe('twilio signature', () => {
  it("matches Twilio's documented example", () => {
    const params = { CallSid: 'CA1234567890ABCDE', Caller: '+12349013030', Digits: '1234', From: '+12349013030', To: '+18005551212' };
    expect(twilioSignature('https://mycompany.com/myapp.php?foo=1&bar=2', Object.entries(params), '12345')).toBe('0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
    expect(signTwilio('https://mycompany.com/myapp.php?foo=1&bar=2', params, '12345')).toBe('0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
  });

  it('accepts a valid signature for the public webhook URL', () => {
    const body = fixture('sms', 'text.txt');
    expect(adapter.verify(request(body, signTwilio(LOCAL_SMS_WEBHOOK_URL, body, token)), credentials)).toBe(true);
  });

  it('rejects a wrong token, another URL, a tampered body, and a missing or truncated header', () => {
    const body = fixture('sms', 'text.txt');
    const good = signTwilio(LOCAL_SMS_WEBHOOK_URL, body, token);
    expect(adapter.verify(request(body, signTwilio(LOCAL_SMS_WEBHOOK_URL, body, 'other-token')), credentials)).toBe(false);
    expect(adapter.verify(request(body, signTwilio('https://elsewhere.example.com/webhooks/sms', body, token)), credentials)).toBe(false);
    expect(adapter.verify(request(body.replace('booking', 'bookings'), good), credentials)).toBe(false);
    expect(adapter.verify(request(body, undefined), credentials)).toBe(false);
    expect(adapter.verify(request(body, good.slice(0, -2)), credentials)).toBe(false);
  });

  it('answers with empty TwiML', () => {
    expect(adapter.ack()).toEqual({ status: 200, contentType: 'text/xml', body: '<Response/>' });
  });
});

describe('twilio normalize', () => {
  it('an SMS → From as handle and phone, MessageSid, Body', () => {
    const [event] = normalize('text.txt');
    expect(event).toMatchObject({
      kind: 'message',
      channel: 'sms',
      handle: '+14155552671',
      profile: { phone: '+14155552671' },
      providerMessageId: 'SM1f0e8ae6ade43cb3c0ce4525424e404f',
      text: 'Hi, I need help with my booking & payment ✓',
      attachments: [],
    });
    expect(Number.isNaN(Date.parse(event?.kind === 'message' ? event.sentAt : ''))).toBe(false);
  });

  it('an MMS → every MediaUrlN with its content type', () => {
    const media = 'https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/MM5e3c1f0a9b8d7c6e5f4a3b2c1d0e9f8a/Media';
    expect(normalize('mms.txt')).toMatchObject([
      {
        providerMessageId: 'MM5e3c1f0a9b8d7c6e5f4a3b2c1d0e9f8a',
        text: 'Photos of the damage',
        attachments: [
          { type: 'image', url: `${media}/ME0a1b2c3d4e5f60718293a4b5c6d7e8f9`, mimeType: 'image/jpeg' },
          { type: 'contact', url: `${media}/ME1a1b2c3d4e5f60718293a4b5c6d7e8f9`, mimeType: 'text/vcard' },
        ],
      },
    ]);
  });

  it.each([
    ['status-queued.txt', 'sent', undefined],
    ['status-delivered.txt', 'delivered', undefined],
    ['status-read.txt', 'read', undefined],
    ['status-undelivered.txt', 'failed', 'Twilio error 30003 (undelivered)'],
    ['status-failed.txt', 'failed', 'Twilio error 30007 (failed)'],
  ])('%s → %s', (name, status, error) => {
    const [event] = normalize(name);
    expect(event).toMatchObject({ kind: 'status', channel: 'sms', handle: '+14155552671', providerMessageId: 'SM0123456789abcdef0123456789abcdef', status });
    expect(event?.kind === 'status' ? event.error : 'n/a').toBe(error);
  });

  it('an opt-out or opt-in keyword (Advanced Opt-Out names it, OptOutType) → the words and a line saying what Twilio now does', () => {
    const keyword = (body: string, type?: string) => {
      const form = new URLSearchParams(fixture('sms', 'text.txt'));
      form.set('Body', body);
      if (type) form.set('OptOutType', type);
      const [event] = adapter.normalize(signedRequest('sms', form.toString()), credentials);
      return event?.kind === 'message' ? event.text : undefined;
    };
    expect(keyword('Stop', 'STOP')).toBe('Stop\n[opted out of texts: Twilio refuses our replies to this number until they text START]');
    expect(keyword('unstop', 'START')).toBe('unstop\n[opted in to texts again]');
    // HELP changes nothing (Twilio answered with the number's help text); without the parameter, words are words.
    expect(keyword('HELP', 'HELP')).toBe('HELP');
    expect(keyword('STOP')).toBe('STOP');
  });

  it('an opt-out keyword (any Twilio maps to STOP) marks the event an opt-out, an opt-in one (START) an opt-in; HELP or no OptOutType neither', () => {
    const optOut = (body: string, type?: string) => {
      const form = new URLSearchParams(fixture('sms', 'text.txt'));
      form.set('Body', body);
      if (type) form.set('OptOutType', type);
      const [event] = adapter.normalize(signedRequest('sms', form.toString()), credentials);
      return event?.kind === 'message' ? (event.optOut ?? null) : 'not a message';
    };
    expect(optOut('Stop', 'STOP')).toBe('stop');
    expect(optOut('unsubscribe', 'STOP')).toBe('stop');
    expect(optOut('unstop', 'START')).toBe('start');
    expect(optOut('yes', 'start')).toBe('start');
    expect(optOut('HELP', 'HELP')).toBeNull();
    expect(optOut('STOP')).toBeNull();
  });

  it('throws BadWebhookError on JSON or a form without MessageSid', () => {
    for (const body of ['{"MessageSid":"SM1"}', 'From=%2B1555&Body=hi', '']) {
      expect(() => adapter.normalize(request(body, undefined), credentials)).toThrow(expect.objectContaining({ name: 'BadWebhookError' }));
    }
  });
});

describe('twilio window', () => {
  it('is always open', () => {
    expect(adapter.window(undefined, NOW, false)).toEqual({ allowed: true });
    expect(adapter.window(ago(90 * DAY), NOW, false)).toEqual({ allowed: true });
  });
});

describe('twilio send', () => {
  const base: OutboundSend = { to: '+14155552671', text: 'Your booking is confirmed.', attachments: [], idempotencyKey: 'k', reference: 'c/k' };
  const created = { status: 201, body: { sid: 'SM00000000000000000000000000000001', status: 'queued' } };

  it('posts the form to Messages.json with Basic auth', async () => {
    const { fetch, calls } = scriptedFetch(created);
    expect(await adapter.send(base, sendContext('sms', fetch))).toEqual({ ok: true, providerMessageId: 'SM00000000000000000000000000000001' });
    const call = calls[0];
    expect(call?.url).toBe(`https://provider.test/sms/2010-04-01/Accounts/${credentials.accountSid}/Messages.json`);
    expect(call?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(call?.headers.authorization).toBe(`Basic ${Buffer.from(`${credentials.accountSid}:${token}`).toString('base64')}`);
    expect(Object.fromEntries(call?.form() ?? [])).toEqual({
      To: '+14155552671',
      From: credentials.fromNumber,
      Body: 'Your booking is confirmed.',
      StatusCallback: `${config.publicUrl}/webhooks/sms`,
    });
  });

  describe('StatusCallback (Twilio posts statuses only there)', () => {
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    it('is the configured public URL + /webhooks/sms on every part', async () => {
      vi.stubEnv('CONVERSA_PUBLIC_URL', 'https://api.example.com');
      const { fetch, calls } = scriptedFetch(created);
      await adapter.send({ ...base, text: 'Your order is on its way. '.repeat(100) }, sendContext('sms', fetch));
      expect(calls).toHaveLength(2);
      expect(calls.map((c) => c.form().get('StatusCallback'))).toEqual(['https://api.example.com/webhooks/sms', 'https://api.example.com/webhooks/sms']);
    });

    it('ignores trailing slashes on CONVERSA_PUBLIC_URL, and the callback verifies as Twilio signs it', async () => {
      vi.stubEnv('CONVERSA_PUBLIC_URL', 'https://api.example.com/prod//');
      expect(config.publicUrl).toBe('https://api.example.com/prod');
      const { fetch, calls } = scriptedFetch(created);
      await adapter.send(base, sendContext('sms', fetch));
      const callback = calls[0]?.form().get('StatusCallback') ?? '';
      expect(callback).toBe('https://api.example.com/prod/webhooks/sms');
      // Twilio signs the callback with the StatusCallback URL; the webhook checks `${config.publicUrl}${rawPath}`.
      const body = fixture('sms', 'status-delivered.txt');
      const url = `${config.publicUrl}/webhooks/sms`;
      expect(adapter.verify(request(body, signTwilio(callback, body, token), url), credentials)).toBe(true);
    });

    it('defaults to the local HTTP API URL', () => {
      vi.stubEnv('CONVERSA_PUBLIC_URL', undefined);
      expect(config.publicUrl).toBe('http://127.0.0.1:3000');
    });
  });

  it('sends attachments as MediaUrl in the same request', async () => {
    const { fetch, calls } = scriptedFetch(created);
    await adapter.send({ ...base, attachments: [{ type: 'image', url: 'https://cdn.example.com/a.jpg' }, { type: 'file', url: 'https://cdn.example.com/b.pdf' }] }, sendContext('sms', fetch));
    expect(calls).toHaveLength(1);
    expect(calls[0]?.form().getAll('MediaUrl')).toEqual(['https://cdn.example.com/a.jpg', 'https://cdn.example.com/b.pdf']);
  });

  it('sends a text over 1600 characters as several messages, the media with the first', async () => {
    const { fetch, calls } = scriptedFetch(created, { status: 201, body: { sid: 'SM00000000000000000000000000000002' } });
    const text = 'Your order is on its way. '.repeat(100);
    const result = await adapter.send({ ...base, text, attachments: [{ type: 'image', url: 'https://cdn.example.com/a.jpg' }] }, sendContext('sms', fetch));
    expect(result).toEqual({ ok: true, providerMessageId: 'SM00000000000000000000000000000001', otherIds: ['SM00000000000000000000000000000002'] });
    const bodies = calls.map((c) => c.form().get('Body') ?? '');
    expect(bodies).toHaveLength(2);
    expect(bodies.every((b) => b.length <= 1600)).toBe(true);
    expect(bodies.join(' ')).toBe(text.trim());
    expect(calls.map((c) => c.form().getAll('MediaUrl'))).toEqual([['https://cdn.example.com/a.jpg'], []]);
  });

  it.each([
    [429, { code: 20429, message: 'Too Many Requests', more_info: 'https://www.twilio.com/docs/errors/20429', status: 429 }, true],
    [500, { code: 20500, message: 'Internal Server Error', status: 500 }, true],
    [400, { code: 21211, message: "The 'To' number +1555 is not a valid phone number.", more_info: 'https://www.twilio.com/docs/errors/21211', status: 400 }, false],
    [401, { code: 20003, message: 'Authenticate', status: 401 }, false],
    [400, { code: 21611, message: "This 'From' number has exceeded the maximum number of queued messages", status: 400 }, true],
  ])('maps %i', async (status, body, retryable) => {
    const { fetch } = scriptedFetch({ status, body });
    expect(await adapter.send(base, sendContext('sms', fetch))).toEqual({ ok: false, retryable, error: `${status}: ${body.message} (Twilio error ${body.code})` });
  });

  it('network error → retryable', async () => {
    const { fetch } = scriptedFetch(networkError());
    expect(await adapter.send(base, sendContext('sms', fetch))).toMatchObject({ ok: false, retryable: true });
  });
});
