import { describe, expect, it } from 'vitest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { metaSignature } from '../../src/channels/meta';
import { adapters } from '../../src/channels/registry';
import type { WebhookRequest } from '../../src/channels/types';
import { fixture, signMeta } from '../fixtures/sign';

const META_CHANNELS = ['whatsapp', 'messenger', 'instagram'] as const;

function post(body: string, signature: string | undefined): WebhookRequest {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (signature !== undefined) headers['x-hub-signature-256'] = signature;
  return { method: 'POST', rawBody: body, headers, query: {}, url: 'http://127.0.0.1:3000/webhooks/x' };
}

function get(query: Record<string, string>): WebhookRequest {
  return { method: 'GET', rawBody: '', headers: {}, query, url: 'http://127.0.0.1:3000/webhooks/x' };
}

describe.each(META_CHANNELS)('%s: X-Hub-Signature-256 and the subscription handshake', (channel) => {
  const adapter = adapters[channel];
  const credentials = DEV_CREDENTIALS[channel];
  const secret = credentials.appSecret ?? '';
  const body = fixture(channel, 'text');

  it('accepts the signature of the raw body made with the app secret', () => {
    expect(adapter.verify(post(body, signMeta(body, secret)), credentials)).toBe(true);
  });

  it('rejects a signature made with another secret', () => {
    expect(adapter.verify(post(body, signMeta(body, 'someone-elses-secret')), credentials)).toBe(false);
  });

  it('rejects a signature of a different body (re-serialized JSON does not match)', () => {
    const reformatted = JSON.stringify(JSON.parse(body));
    expect(adapter.verify(post(body, signMeta(reformatted, secret)), credentials)).toBe(false);
  });

  it('rejects a missing, empty, truncated or unprefixed signature without throwing', () => {
    const good = signMeta(body, secret);
    expect(adapter.verify(post(body, undefined), credentials)).toBe(false);
    expect(adapter.verify(post(body, ''), credentials)).toBe(false);
    expect(adapter.verify(post(body, good.slice(0, -1)), credentials)).toBe(false);
    expect(adapter.verify(post(body, good.slice('sha256='.length)), credentials)).toBe(false);
    expect(adapter.verify(post(body, good.replace('sha256=', 'sha1=')), credentials)).toBe(false);
  });

  it('rejects everything when no app secret is configured', () => {
    expect(adapter.verify(post(body, signMeta(body, '')), { ...credentials, appSecret: '' })).toBe(false);
  });

  it('answers the challenge as plain text when mode and verify token match', () => {
    const reply = adapter.challenge?.(
      get({ 'hub.mode': 'subscribe', 'hub.verify_token': credentials.verifyToken ?? '', 'hub.challenge': '1158201444' }),
      credentials,
    );
    expect(reply).toEqual({ status: 200, contentType: 'text/plain', body: '1158201444' });
  });

  it('refuses the challenge with 403 for a wrong token, a wrong mode or missing fields', () => {
    const token = credentials.verifyToken ?? '';
    const queries: Record<string, string>[] = [
      { 'hub.mode': 'subscribe', 'hub.verify_token': 'wrong', 'hub.challenge': '1' },
      { 'hub.mode': 'unsubscribe', 'hub.verify_token': token, 'hub.challenge': '1' },
      { 'hub.verify_token': token, 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.challenge': '1' },
    ];
    for (const query of queries) {
      const reply = adapter.challenge?.(get(query), credentials);
      expect(reply?.status).toBe(403);
      expect(JSON.parse(reply!.body).error.code).toBe('invalid_verify_token');
    }
  });

  it('throws BadWebhookError for a body that is not JSON or not this product', () => {
    expect(() => adapter.normalize(post('{not json', undefined), credentials)).toThrow(expect.objectContaining({ name: 'BadWebhookError' }));
    const other = JSON.stringify({ object: 'permissions', entry: [] });
    expect(() => adapter.normalize(post(other, undefined), credentials)).toThrow(expect.objectContaining({ name: 'BadWebhookError' }));
  });

  it('acknowledges with a plain 200', () => {
    expect(adapter.ack()).toEqual({ status: 200, contentType: 'text/plain', body: 'EVENT_RECEIVED' });
  });
});

describe('metaSignature', () => {
  it('is sha256= and the lowercase hex HMAC-SHA256 of the body', () => {
    // Reference computed with: printf '{"a":1}' | openssl dgst -sha256 -hmac secret
    expect(metaSignature('{"a":1}', 'secret')).toBe('sha256=aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494');
  });
});
