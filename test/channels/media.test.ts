/** Fetching the media behind WhatsApp, Telegram and Twilio references with the channel's credentials, and Meta's expiring CDN links for their copy. */
import { describe, expect, it } from 'vitest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { MEDIA_MAX_BYTES } from '../../src/channels/common';
import { telegramAdapter } from '../../src/channels/telegram';
import { whatsappAdapter } from '../../src/channels/whatsapp';
import { smsAdapter } from '../../src/channels/sms';
import { messengerAdapter } from '../../src/channels/messenger';
import { instagramAdapter } from '../../src/channels/instagram';
import { networkError, scriptedFetch, sendContext } from './support';

const photo = { contentType: 'image/jpeg', bytes: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]) };

describe('whatsapp media', () => {
  const token = DEV_CREDENTIALS.whatsapp.accessToken;
  const meta = (over: Record<string, unknown> = {}) => ({
    status: 200,
    body: { messaging_product: 'whatsapp', url: 'https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1', mime_type: 'image/jpeg', file_size: 7, id: '1037', ...over },
  });

  it('reads the media URL, then downloads it with the same token', async () => {
    const { fetch, calls } = scriptedFetch(meta(), { status: 200, body: undefined, file: photo });
    const result = await whatsappAdapter.fetchMedia!('whatsapp-media://1037', sendContext('whatsapp', fetch));
    expect(result).toEqual({ ok: true, contentType: 'image/jpeg', bytes: photo.bytes });
    expect(calls.map((c) => [c.method, c.url, c.headers.authorization])).toEqual([
      ['GET', 'https://provider.test/whatsapp/1037', `Bearer ${token}`],
      ['GET', 'https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1', `Bearer ${token}`],
    ]);
  });

  it('refuses a file announced over the limit without downloading it', async () => {
    const { fetch, calls } = scriptedFetch(meta({ file_size: MEDIA_MAX_BYTES + 1 }));
    expect(await whatsappAdapter.fetchMedia!('whatsapp-media://1037', sendContext('whatsapp', fetch))).toMatchObject({ ok: false, status: 413 });
    expect(calls).toHaveLength(1);
  });

  it('stops reading a file that turns out larger than the limit', async () => {
    const big = { contentType: 'video/mp4', bytes: Buffer.alloc(MEDIA_MAX_BYTES + 10) };
    const { fetch } = scriptedFetch(meta({ file_size: undefined }), { status: 200, body: undefined, file: big });
    expect(await whatsappAdapter.fetchMedia!('whatsapp-media://1037', sendContext('whatsapp', fetch))).toMatchObject({ ok: false, status: 413 });
  });

  it('never sends the token to a plain-HTTP URL of another host', async () => {
    const { fetch, calls } = scriptedFetch(meta({ url: 'http://elsewhere.test/file' }));
    expect(await whatsappAdapter.fetchMedia!('whatsapp-media://1037', sendContext('whatsapp', fetch))).toMatchObject({ ok: false, status: 502 });
    expect(calls).toHaveLength(1);
  });

  it.each([
    ['an unknown or expired id', { status: 400, body: { error: { message: "Unsupported get request. Object with ID '1037' does not exist", code: 100 } } }, 404],
    ['a provider outage', { status: 503, body: 'Service Unavailable' }, 502],
    ['no answer', networkError(), 502],
  ])('maps %s', async (_name, reply, status) => {
    const { fetch } = scriptedFetch(reply);
    expect(await whatsappAdapter.fetchMedia!('whatsapp-media://1037', sendContext('whatsapp', fetch))).toMatchObject({ ok: false, status });
  });

  it('takes only its own references, with ids that cannot leave the path', async () => {
    const { fetch, calls } = scriptedFetch(meta());
    for (const reference of ['telegram-file://AgAC', 'https://cdn.example.com/a.jpg']) {
      expect(await whatsappAdapter.fetchMedia!(reference, sendContext('whatsapp', fetch)), reference).toBeUndefined();
    }
    for (const reference of ['whatsapp-media://../me/messages', 'whatsapp-media://..', 'whatsapp-media://']) {
      expect(await whatsappAdapter.fetchMedia!(reference, sendContext('whatsapp', fetch)), reference).toMatchObject({ ok: false, status: 404 });
    }
    expect(calls).toHaveLength(0);
  });
});

describe('telegram media', () => {
  const token = DEV_CREDENTIALS.telegram.botToken;
  const file = (over: Record<string, unknown> = {}) => ({ status: 200, body: { ok: true, result: { file_id: 'AgACx', file_unique_id: 'u1', file_size: 7, file_path: 'photos/file_3.jpg', ...over } } });

  it('asks getFile for the path, then downloads it under the bot token', async () => {
    const { fetch, calls } = scriptedFetch(file(), { status: 200, body: undefined, file: photo });
    expect(await telegramAdapter.fetchMedia!('telegram-file://AgACx', sendContext('telegram', fetch))).toEqual({ ok: true, contentType: 'image/jpeg', bytes: photo.bytes });
    expect(calls.map((c) => c.url)).toEqual([
      `https://provider.test/telegram/bot${token}/getFile?file_id=AgACx`,
      `https://provider.test/telegram/file/bot${token}/photos/file_3.jpg`,
    ]);
  });

  it('maps a wrong file_id to 404 and a file over the limit to 413', async () => {
    const wrong = scriptedFetch({ status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: invalid file_id' } });
    expect(await telegramAdapter.fetchMedia!('telegram-file://AgACx', sendContext('telegram', wrong.fetch))).toMatchObject({ ok: false, status: 404 });
    const large = scriptedFetch(file({ file_size: MEDIA_MAX_BYTES + 1 }));
    expect(await telegramAdapter.fetchMedia!('telegram-file://AgACx', sendContext('telegram', large.fetch))).toMatchObject({ ok: false, status: 413 });
    expect(large.calls).toHaveLength(1);
  });

  it('says a file over the 20 MB bots may download is too large, not gone (getFile refuses it)', async () => {
    const big = scriptedFetch({ status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: file is too big' } });
    const result = await telegramAdapter.fetchMedia!('telegram-file://AgACx', sendContext('telegram', big.fetch));
    expect(result).toMatchObject({ ok: false, status: 413 });
    expect(result && !result.ok ? result.error : '').toMatch(/20 MB/);
  });
});

describe('twilio media', () => {
  const { accountSid, authToken } = DEV_CREDENTIALS.sms;
  const url = `https://provider.test/sms/2010-04-01/Accounts/${accountSid}/Messages/MM5e3c1f0a/Media/ME0a1b2c3d`;

  it('downloads a media URL of the account with Basic auth', async () => {
    const { fetch, calls } = scriptedFetch({ status: 200, body: undefined, file: photo });
    expect(await smsAdapter.fetchMedia!(url, sendContext('sms', fetch))).toEqual({ ok: true, contentType: 'image/jpeg', bytes: photo.bytes });
    expect(calls.map((c) => [c.url, c.headers.authorization])).toEqual([[url, `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`]]);
  });

  it('leaves every other URL alone: another account, another host, another resource', async () => {
    const { fetch, calls } = scriptedFetch({ status: 200, body: undefined, file: photo });
    for (const other of [
      url.replace(accountSid!, 'AC11111111111111111111111111111111'),
      url.replace('https://provider.test/sms', 'https://evil.example'),
      `https://provider.test/sms/2010-04-01/Accounts/${accountSid}/Messages.json`,
      'https://cdn.example.com/a.jpg',
    ]) {
      expect(await smsAdapter.fetchMedia!(other, sendContext('sms', fetch)), other).toBeUndefined();
    }
    expect(calls).toHaveLength(0);
  });
});

describe('messenger and instagram files, copied from the CDN link their webhook named', () => {
  const links = [
    ['messenger', messengerAdapter, 'https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1&oh=00_AbC'],
    ['instagram', instagramAdapter, 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1799&signature=abc'],
  ] as const;

  it.each(links)('downloads a %s CDN link as it is, without the page token', async (channel, adapter, link) => {
    const { fetch, calls } = scriptedFetch({ status: 200, body: undefined, file: photo });
    expect(await adapter.copyMedia!(link, sendContext(channel, fetch))).toEqual({ ok: true, contentType: 'image/jpeg', bytes: photo.bytes });
    expect(calls.map((c) => [c.method, c.url, c.headers.authorization])).toEqual([['GET', link, undefined]]);
    // The console keeps opening the link itself until the copy is made.
    expect(adapter.fetchMedia).toBeUndefined();
    // The inbound path tells the same from the link alone, and queues the copy.
    expect(adapter.canCopyMedia!(link, `https://provider.test/${channel}`)).toBe(true);
  });

  it('follows a lookaside link to the CDN, and no redirect that leaves Meta\'s CDN or HTTPS', async () => {
    const lookaside = links[1][2];
    const cdn = 'https://scontent.cdninstagram.com/v/t51.2885-15/photo.jpg';
    const followed = scriptedFetch({ status: 302, body: '', location: cdn }, { status: 200, body: undefined, file: photo });
    expect(await instagramAdapter.copyMedia!(lookaside, sendContext('instagram', followed.fetch))).toEqual({ ok: true, contentType: 'image/jpeg', bytes: photo.bytes });
    expect(followed.calls.map((c) => c.url)).toEqual([lookaside, cdn]);

    for (const elsewhere of ['https://evil.example/photo.jpg', 'http://scontent.cdninstagram.com/photo.jpg', 'http://169.254.169.254/latest/meta-data/']) {
      const refused = scriptedFetch({ status: 302, body: '', location: elsewhere }, { status: 200, body: undefined, file: photo });
      expect(await instagramAdapter.copyMedia!(lookaside, sendContext('instagram', refused.fetch)), elsewhere).toMatchObject({ ok: false, status: 404 });
      expect(refused.calls).toHaveLength(1);
    }
    const endless = scriptedFetch({ status: 302, body: '', location: cdn });
    expect(await instagramAdapter.copyMedia!(lookaside, sendContext('instagram', endless.fetch))).toMatchObject({ ok: false, status: 404 });
    expect(endless.calls).toHaveLength(4);
  });

  it('leaves links the customer shared alone: other hosts, look-alike hosts, plain HTTP', async () => {
    const { fetch, calls } = scriptedFetch({ status: 200, body: undefined, file: photo });
    for (const other of [
      'https://example.com/menu.pdf',
      'https://fbcdn.net.evil.example/photo.jpg',
      'https://evilfbcdn.net/photo.jpg',
      'http://scontent.xx.fbcdn.net/v/photo.jpg',
      'not a url',
    ]) {
      expect(await messengerAdapter.copyMedia!(other, sendContext('messenger', fetch)), other).toBeUndefined();
      // Nor is a copy job queued for one.
      expect(messengerAdapter.canCopyMedia!(other, 'https://provider.test/messenger'), other).toBe(false);
      expect(instagramAdapter.canCopyMedia!(other, 'https://provider.test/instagram'), other).toBe(false);
    }
    expect(calls).toHaveLength(0);
  });

  it.each([
    ['an expired link', { status: 403, body: 'URL signature expired' }, 404],
    ['a CDN outage', { status: 503, body: 'Service Unavailable' }, 502],
    ['no answer', networkError(), 502],
  ])('maps %s', async (_name, reply, status) => {
    const { fetch } = scriptedFetch(reply);
    expect(await messengerAdapter.copyMedia!(links[0][2], sendContext('messenger', fetch))).toMatchObject({ ok: false, status });
  });
});

describe('a provider that stops sending a file midway', () => {
  it('is an outage (502), not an error thrown past the adapter', async () => {
    // Headers and the first bytes, then nothing: the fetch's signal ends the read.
    const stalled: typeof fetch = async (_url, init) =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new Uint8Array([0xff, 0xd8]));
            init?.signal?.addEventListener('abort', () => controller.error(init.signal!.reason));
          },
        }),
        { status: 200, headers: { 'content-type': 'image/jpeg' } },
      );
    const context = { ...sendContext('sms', stalled), signal: AbortSignal.timeout(50) };
    const url = `https://provider.test/sms/2010-04-01/Accounts/${DEV_CREDENTIALS.sms.accountSid}/Messages/MM1/Media/ME1`;

    const result = await smsAdapter.fetchMedia!(url, context);

    expect(result).toMatchObject({ ok: false, status: 502 });
  });
});
