import { describe, expect, it, vi } from 'vitest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { instagramAdapter } from '../../src/channels/instagram';
import { messengerAdapter as adapter } from '../../src/channels/messenger';
import type { OutboundSend } from '../../src/channels/types';
import { fixture, signedRequest } from '../fixtures/sign';
import { DAY, HOUR, MINUTE, NOW, ago, networkError, scriptedFetch, sendContext } from './support';

const credentials = DEV_CREDENTIALS.messenger;
const PSID = '6970123456789012';
const SENT_AT = '2025-06-08T20:59:43.000Z';

function normalize(name: string) {
  return adapter.normalize(signedRequest('messenger', fixture('messenger', name)), credentials);
}

describe('messenger normalize: surprising batches', () => {
  const body = (entry: Record<string, unknown>) => JSON.stringify({ object: 'page', entry: [{ id: 'PAGE', time: 1, ...entry }] });
  const event = (mid: string, message: Record<string, unknown>) => ({ sender: { id: PSID }, recipient: { id: 'PAGE' }, timestamp: 1749416383000, message: { mid, ...message } });

  it('keeps the good events of a batch whose other event is malformed (a null attachment threw: a 500, retried forever)', () => {
    const raw = body({ messaging: [event('m_GOOD', { text: 'hello' }), event('m_BAD', { attachments: [null, { type: 'image', payload: null }] })] });
    const events = adapter.normalize(signedRequest('messenger', raw), credentials);
    expect(events.map((e) => (e.kind === 'message' ? e.providerMessageId : undefined))).toContain('m_GOOD');
  });

  it('takes the customer’s messages that come as standby events while another app has the thread', () => {
    const raw = body({ standby: [event('m_STANDBY', { text: 'anyone?' })] });
    expect(adapter.normalize(signedRequest('messenger', raw), credentials)).toMatchObject([{ kind: 'message', providerMessageId: 'm_STANDBY', text: 'anyone?' }]);
  });
});

describe('messenger normalize', () => {
  it('text → sender PSID as handle, mid, millisecond timestamp', () => {
    expect(normalize('text')).toEqual([
      {
        kind: 'message',
        channel: 'messenger',
        handle: PSID,
        providerMessageId: 'm_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P',
        text: 'Hello, is my order shipped?',
        attachments: [],
        sentAt: SENT_AT,
        dated: true,
      },
    ]);
  });

  it('image, audio, video and file attachments keep the provider URL', () => {
    expect(normalize('image')).toMatchObject([
      { providerMessageId: 'm_IMAGE1', text: '', attachments: [{ type: 'image', url: 'https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1' }] },
    ]);
    expect(normalize('attachments')).toMatchObject([
      {
        text: 'Here are the files',
        attachments: [
          { type: 'audio', url: 'https://cdn.fbsbx.com/v/t59.3654-21/audioclip.mp4' },
          { type: 'video', url: 'https://video.xx.fbcdn.net/v/t42.3356-2/video.mp4' },
          { type: 'file', url: 'https://cdn.fbsbx.com/v/t59.2708-21/receipt.pdf' },
        ],
      },
    ]);
  });

  it('a sticker is an image with a sticker_id', () => {
    expect(normalize('sticker')).toMatchObject([{ attachments: [{ type: 'sticker', url: 'https://scontent.xx.fbcdn.net/v/t39.1997-6/sticker.png' }] }]);
  });

  it('a sticker of the `sticker` attachment type is one sticker, beside the `image` copy Meta sent during its switch to that type too', () => {
    const sticker = JSON.parse(fixture('messenger', 'sticker'));
    const message = sticker.entry[0].messaging[0].message;
    const url = message.attachments[0].payload.url;
    const normalizeBody = () => adapter.normalize(signedRequest('messenger', JSON.stringify(sticker)), credentials);
    // During the switch: the image copy, then the sticker, one file.
    message.attachments.push({ type: 'sticker', payload: { url, sticker_id: message.sticker_id } });
    expect(normalizeBody()).toMatchObject([{ text: '', attachments: [{ type: 'sticker', url }] }]);
    expect(normalizeBody()[0]).toHaveProperty('attachments.length', 1);
    // Since: the sticker type alone, a sticker whatever its payload names beside the link.
    message.attachments = [{ type: 'sticker', payload: { url } }];
    expect(normalizeBody()).toMatchObject([{ text: '', attachments: [{ type: 'sticker', url }] }]);
  });

  it('a location share → pin text and geo: attachment', () => {
    expect(normalize('location')).toMatchObject([
      { text: '📍 48.8584,2.2945 (Pinned location)', attachments: [{ type: 'location', url: 'geo:48.8584,2.2945' }] },
    ]);
  });

  it('a quick reply reads as its text', () => {
    expect(normalize('quick-reply')).toMatchObject([{ providerMessageId: 'm_QR1', text: 'Red' }]);
  });

  it('drops echoes of our own sends', () => {
    expect(normalize('echo')).toEqual([]);
  });

  describe('echoes of what the Page sent from elsewhere (its inbox), with our app id configured', () => {
    const withAppId = (appId: string, change: (message: Record<string, unknown>) => void = () => {}) => {
      const body = JSON.parse(fixture('messenger', 'echo'));
      change(body.entry[0].messaging[0].message);
      return adapter.normalize(signedRequest('messenger', JSON.stringify(body)), { ...credentials, appId });
    };

    it('are the team’s message to the customer (the recipient), shown as the Page inbox', () => {
      expect(withAppId('999000111')).toEqual([
        {
          kind: 'message',
          channel: 'messenger',
          handle: PSID,
          providerMessageId: 'm_ECHO1',
          text: 'Yes, it shipped yesterday.',
          attachments: [],
          sentAt: '2025-06-08T20:59:44.000Z',
          dated: true,
          echo: { name: 'Page inbox' },
        },
      ]);
    });

    it('drop our own app’s, one that bears our message id as metadata, and one that names no app', () => {
      expect(withAppId('1517776481860111')).toEqual([]);
      expect(withAppId('999000111', (m) => (m.metadata = '01JXYZ00000000000000000000'))).toEqual([]);
      expect(withAppId('999000111', (m) => delete m.app_id)).toEqual([]);
    });

    it('are all dropped without our app id, or with one that is no app id: ours could not be told apart', () => {
      expect(withAppId('')).toEqual([]);
      expect(withAppId('my-app')).toEqual([]);
    });
  });

  it('delivery mids → one delivered status each, and its watermark a "*" as well (Meta: everything sent before it was delivered); a watermark-only delivery → "*"', () => {
    expect(normalize('delivery')).toEqual([
      { kind: 'status', channel: 'messenger', handle: PSID, providerMessageId: 'm_OUT1', status: 'delivered', at: '2025-06-08T20:59:50.000Z' },
      { kind: 'status', channel: 'messenger', handle: PSID, providerMessageId: 'm_OUT2', status: 'delivered', at: '2025-06-08T20:59:50.000Z' },
      { kind: 'status', channel: 'messenger', handle: PSID, providerMessageId: '*', status: 'delivered', at: '2025-06-08T20:59:50.000Z' },
      { kind: 'status', channel: 'messenger', handle: PSID, providerMessageId: '*', status: 'delivered', at: '2025-06-08T20:59:55.000Z' },
    ]);
    // Mids without a watermark (not what Meta documents): only the messages named.
    const body = JSON.parse(fixture('messenger', 'delivery'));
    delete body.entry[0].messaging[0].delivery.watermark;
    body.entry[0].messaging.pop();
    expect(adapter.normalize(signedRequest('messenger', JSON.stringify(body)), credentials).map((e) => e.providerMessageId)).toEqual(['m_OUT1', 'm_OUT2']);
  });

  it('read → one "*" read status at the watermark (everything sent before it is read)', () => {
    expect(normalize('read')).toEqual([
      { kind: 'status', channel: 'messenger', handle: PSID, providerMessageId: '*', status: 'read', at: '2025-06-08T21:00:00.000Z' },
    ]);
  });

  it('a postback reads as the button title', () => {
    expect(normalize('postback')).toEqual([
      { kind: 'message', channel: 'messenger', handle: PSID, providerMessageId: 'm_POSTBACK1', text: 'Talk to a human', attachments: [], sentAt: SENT_AT, dated: true },
    ]);
  });

  it('an edit → "(edited)" and the new text, its id made of the mid and the edit’s count; an edit count of 0 is no edit', () => {
    const [event] = normalize('message-edit');
    expect(event).toMatchObject({
      kind: 'message',
      handle: PSID,
      providerMessageId: 'edit:m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P:1',
      text: '(edited) Hello, has my order shipped?',
      attachments: [],
      dated: true,
    });
    const body = (edit: unknown) => JSON.stringify({ object: 'page', entry: [{ id: 'P', time: 1, messaging: [{ sender: { id: PSID }, recipient: { id: 'P' }, timestamp: 1749416460000, message_edit: edit }] }] });
    const read = (edit: unknown) => adapter.normalize(signedRequest('messenger', body(edit)), credentials);
    expect(read({ mid: 'm_1', text: 'same', num_edit: 0 })).toEqual([]);
    // Without a count, the edit's time tells one edit from the next.
    expect(read({ mid: 'm_1', text: '' })).toMatchObject([{ providerMessageId: 'edit:m_1:1749416460000', text: '(edited) [no text]', edits: 'm_1' }]);
    // Naming no message, it cannot be checked to be the customer's own.
    expect(read({ text: 'what?', num_edit: 1 })).toEqual([]);
  });

  it('nothing the Page itself does (a reaction, a read, a message not marked as an echo) is a customer’s event', () => {
    const event = (what: Record<string, unknown>) => ({ sender: { id: 'PAGE' }, recipient: { id: PSID }, timestamp: 1749416460000, ...what });
    const body = JSON.stringify({
      object: 'page',
      entry: [
        {
          id: 'PAGE',
          time: 1,
          messaging: [
            event({ reaction: { mid: 'm_THEIRS', action: 'react', emoji: '👍' } }),
            event({ read: { watermark: 1749416460000 } }),
            event({ message: { mid: 'm_PAGE', text: 'from the Page, unmarked' } }),
          ],
        },
      ],
    });
    expect(adapter.normalize(signedRequest('messenger', body), credentials)).toEqual([]);
  });

  it('an edit the Page makes of its own message is no customer’s edit (and no customer: the sender is the Page)', () => {
    const body = JSON.stringify({
      object: 'page',
      entry: [{ id: 'PAGE', time: 1, messaging: [{ sender: { id: 'PAGE' }, recipient: { id: PSID }, timestamp: 1749416460000, message_edit: { mid: 'm_OURS', text: 'typo fixed', num_edit: 1 } }] }],
    });
    expect(adapter.normalize(signedRequest('messenger', body), credentials)).toEqual([]);
    // The Page's id as Meta may write it, a number.
    const numeric = body.replace('"id":"PAGE"', '"id":1073117887').replace('"sender":{"id":"PAGE"}', '"sender":{"id":"1073117887"}');
    expect(adapter.normalize(signedRequest('messenger', numeric), credentials)).toEqual([]);
  });

  it('reactions become readable messages with stable ids, naming the message they are on (replyTo) as a reply does', () => {
    expect(normalize('reaction')).toEqual([
      expect.objectContaining({ providerMessageId: 'reaction:m_OUT1:react:1749416383000', text: 'reacted ❤️ to a message', replyTo: { providerMessageId: 'm_OUT1' } }),
      expect.objectContaining({ providerMessageId: 'reaction:m_OUT1:unreact:1749416399000', text: 'removed a reaction from a message', replyTo: { providerMessageId: 'm_OUT1' } }),
    ]);
    // Naming no message: the reaction kept, naming none.
    const body = JSON.stringify({ object: 'page', entry: [{ id: 'PAGE', time: 1, messaging: [{ sender: { id: PSID }, recipient: { id: 'PAGE' }, timestamp: 1749416383000, reaction: { action: 'react', emoji: '👍' } }] }] });
    const [event] = adapter.normalize(signedRequest('messenger', body), credentials);
    expect(event).toMatchObject({ text: 'reacted 👍 to a message' });
    expect(event).not.toHaveProperty('replyTo');
  });

  it('an attachment it cannot show is kept with a fallback; opt-ins are not messages', () => {
    expect(normalize('unknown')).toEqual([
      expect.objectContaining({ providerMessageId: 'm_TEMPLATE1', text: '[unsupported attachment: template]', attachments: [] }),
    ]);
  });

  it('a shared product or template reads as its cards; a shared link sent as a fallback without payload, as its title and link', () => {
    expect(normalize('shared-product')).toEqual([expect.objectContaining({ providerMessageId: 'm_PRODUCT1', text: 'Shared: Red hoodie — $49.00', attachments: [] })]);
    const body = JSON.parse(fixture('messenger', 'shared-product'));
    body.entry[0].messaging[0].message.attachments = [{ type: 'fallback', title: 'Spring sale | Acme', url: 'https://l.facebook.com/l.php?u=https%3A%2F%2Facme.test%2Fsale', payload: null }];
    expect(adapter.normalize(signedRequest('messenger', JSON.stringify(body)), credentials)).toMatchObject([
      { text: 'Spring sale | Acme https://l.facebook.com/l.php?u=https%3A%2F%2Facme.test%2Fsale', attachments: [] },
    ]);
    // A media template (as the Page inbox's echoes carry) names Meta's page, no customer's link: its placeholder stays.
    body.entry[0].messaging[0].message.attachments = [{ type: 'template', title: '', url: 'https://www.facebook.com/commerce/update/', payload: { template_type: 'media', elements: [{ media_type: 'image', attachment_id: 2457235337685388 }] } }];
    expect(adapter.normalize(signedRequest('messenger', JSON.stringify(body)), credentials)).toMatchObject([{ text: '[unsupported attachment: template]' }]);
    // A button template (another app's send, echoed) reads as its words and its buttons.
    const buttons = [{ type: 'web_url', url: 'https://acme.test/track', title: 'Track order' }, { type: 'postback', title: 'Talk to us', payload: 'TALK' }];
    body.entry[0].messaging[0].message.attachments = [{ type: 'template', payload: { template_type: 'button', text: 'Your order shipped.', buttons } }];
    expect(adapter.normalize(signedRequest('messenger', JSON.stringify(body)), credentials)).toMatchObject([{ text: 'Your order shipped.\n[buttons: Track order · Talk to us]' }]);
  });

  it('an appointment booked through the Page reads as its state and times in its time zone, not as a placeholder', () => {
    const booking = (payload: Record<string, unknown>) => {
      const body = JSON.parse(fixture('messenger', 'shared-product'));
      body.entry[0].messaging[0].message.attachments = [{ type: 'appointment_booking', payload }];
      return adapter.normalize(signedRequest('messenger', JSON.stringify(body)), credentials);
    };
    // 2025-02-15 09:40 to 10:40 UTC, in Los Angeles.
    const times = { booking_id: '123', start_time: 1739612400, end_time: 1739616000 };
    expect(booking({ ...times, status: 'requested', timezone: 'America/Los_Angeles' })).toMatchObject([
      { providerMessageId: 'm_PRODUCT1', text: '📅 Appointment requested: 2025-02-15, 01:40–02:40 (America/Los_Angeles)', attachments: [] },
    ]);
    expect(booking({ ...times, status: 'cancelled', timezone: 'Not/AZone' })).toMatchObject([{ text: '📅 Appointment cancelled: 2025-02-15, 09:40–10:40 (UTC)' }]);
    expect(booking({ ...times, end_time: 1739700000, status: 'confirmed', timezone: 'Europe/Paris' })).toMatchObject([{ text: '📅 Appointment confirmed: 2025-02-15, 10:40–2025-02-16, 11:00 (Europe/Paris)' }]);
    expect(booking({ booking_id: '123' })).toMatchObject([{ text: '📅 Appointment' }]);
  });

  it('several events and entries → one event each', () => {
    expect(normalize('multiple').map((e) => [e.handle, e.providerMessageId])).toEqual([
      [PSID, 'm_MULTI1'],
      [PSID, 'm_MULTI2'],
      ['7012345678901234', 'm_MULTI3'],
    ]);
  });

  it('with our Page id configured, ignores every event of another Page the app is subscribed to: its PSIDs are not ours to answer', () => {
    const events = (pageId: string | undefined, change: (body: { entry: Record<string, unknown>[] }) => void = () => {}) => {
      const body = JSON.parse(fixture('messenger', 'multiple'));
      change(body);
      const configured = pageId === undefined ? credentials : { ...credentials, accountId: pageId };
      return adapter.normalize(signedRequest('messenger', JSON.stringify(body)), configured).map((e) => e.providerMessageId);
    };
    expect(events('107311788749211')).toEqual(['m_MULTI1', 'm_MULTI2']);
    expect(events('107311788749212')).toEqual(['m_MULTI3']);
    // Meta may write an id as a number; an entry without one is not known to be another Page's.
    expect(events('107311788749212', (b) => (b.entry[1]!.id = 107311788749212))).toEqual(['m_MULTI3']);
    expect(events('107311788749211', (b) => delete b.entry[1]!.id)).toEqual(['m_MULTI1', 'm_MULTI2', 'm_MULTI3']);
    // A delivery or read of another Page's is not ours either.
    const delivery = JSON.parse(fixture('messenger', 'delivery'));
    expect(adapter.normalize(signedRequest('messenger', JSON.stringify(delivery)), { ...credentials, accountId: '999' })).toEqual([]);
    // None configured, or one that is no Page id (a typo would drop every customer): every Page's, as before.
    expect(events(undefined)).toEqual(['m_MULTI1', 'm_MULTI2', 'm_MULTI3']);
    expect(events('my-page')).toEqual(['m_MULTI1', 'm_MULTI2', 'm_MULTI3']);
  });

  it('warns once (per instance) of an entry ignored as another Page\'s, naming its id and the configured one: a wrong MESSENGER_PAGE_ID drops every message with a 200', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const text = signedRequest('messenger', fixture('messenger', 'text'));
      const entryId = String(JSON.parse(fixture('messenger', 'text')).entry[0].id);
      expect(adapter.normalize(text, { ...credentials, accountId: '5550001112' })).toEqual([]);
      expect(adapter.normalize(text, { ...credentials, accountId: '5550001112' })).toEqual([]);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![0]).toContain('MESSENGER_PAGE_ID');
      expect(warn.mock.calls[0]![1]).toEqual({ channel: 'messenger', entryId, configured: '5550001112' });
      // Our own Page's entry, or none configured: nothing to say.
      warn.mockClear();
      expect(adapter.normalize(text, { ...credentials, accountId: entryId })).toHaveLength(1);
      expect(adapter.normalize(text, credentials)).toHaveLength(1);
      expect(warn).not.toHaveBeenCalled();
      // Instagram names its own variable.
      const instagram = signedRequest('instagram', fixture('instagram', 'text'));
      expect(instagramAdapter.normalize(instagram, { ...DEV_CREDENTIALS.instagram, accountId: '5550001113' })).toEqual([]);
      expect(warn.mock.calls[0]![0]).toContain('INSTAGRAM_ACCOUNT_ID');
      // A Page's username where its id belongs filters nothing, and says so once.
      warn.mockClear();
      expect(adapter.normalize(text, { ...credentials, accountId: 'acme-shop' })).toHaveLength(1);
      expect(adapter.normalize(text, { ...credentials, accountId: 'acme-shop' })).toHaveLength(1);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![0]).toBe('MESSENGER_PAGE_ID acme-shop is not a messenger id (digits only): the events of every entry are taken');
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses an Instagram webhook sent to the Messenger endpoint', () => {
    expect(() => normalize('../instagram/text.json')).toThrow(/object "page"/);
  });
});

describe('messenger window', () => {
  it('≤ 24 h: standard messaging', () => {
    expect(adapter.window(ago(23 * HOUR + 59 * MINUTE), NOW, false)).toEqual({ allowed: true });
  });

  it('24 h – 7 d: allowed with the HUMAN_AGENT tag', () => {
    expect(adapter.window(ago(24 * HOUR + MINUTE), NOW, false)).toEqual({ allowed: true, tag: 'HUMAN_AGENT' });
    expect(adapter.window(ago(6 * DAY + 23 * HOUR), NOW, false)).toEqual({ allowed: true, tag: 'HUMAN_AGENT' });
  });

  it('after 7 d, or never written: outside the window, template or not', () => {
    expect(adapter.window(ago(7 * DAY + MINUTE), NOW, false)).toMatchObject({ allowed: false, code: 'outside_window' });
    expect(adapter.window(ago(7 * DAY + MINUTE), NOW, true)).toMatchObject({ allowed: false, code: 'outside_window' });
    expect(adapter.window(undefined, NOW, false)).toMatchObject({ allowed: false, code: 'outside_window' });
  });
});

describe('messenger send', () => {
  const base: OutboundSend = { to: PSID, text: 'It shipped yesterday.', attachments: [], idempotencyKey: '01JMSG0002', reference: '01JCONV0002/01JMSG0002' };
  const ok = { status: 200, body: { recipient_id: PSID, message_id: 'm_SENT1' } };

  it('posts to /me/messages with the page token, RESPONSE type and our id as metadata', async () => {
    const { fetch, calls } = scriptedFetch(ok);
    expect(await adapter.send(base, sendContext('messenger', fetch))).toEqual({ ok: true, providerMessageId: 'm_SENT1' });
    expect(calls[0]?.url).toBe(`https://provider.test/messenger/me/messages?access_token=${credentials.accessToken}`);
    expect(calls[0]?.headers['content-type']).toBe('application/json');
    expect(calls[0]?.json()).toEqual({
      recipient: { id: PSID },
      messaging_type: 'RESPONSE',
      message: { text: 'It shipped yesterday.', metadata: '01JMSG0002' },
    });
  });

  it('uses MESSAGE_TAG + HUMAN_AGENT when the window asked for it', async () => {
    const { fetch, calls } = scriptedFetch(ok);
    await adapter.send({ ...base, tag: 'HUMAN_AGENT' }, sendContext('messenger', fetch));
    expect(calls[0]?.json()).toMatchObject({ messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT' });
  });

  it('sends each attachment as its own message by URL after the text', async () => {
    const { fetch, calls } = scriptedFetch(ok, { status: 200, body: { recipient_id: PSID, message_id: 'm_SENT2' } });
    const result = await adapter.send(
      { ...base, attachments: [{ type: 'image', url: 'https://cdn.example.com/a.jpg' }, { type: 'file', url: 'https://cdn.example.com/b.pdf' }] },
      sendContext('messenger', fetch),
    );
    expect(result).toEqual({ ok: true, providerMessageId: 'm_SENT1', otherIds: ['m_SENT2', 'm_SENT2'] });
    expect(calls.map((c) => c.json().message)).toEqual([
      { text: 'It shipped yesterday.', metadata: '01JMSG0002' },
      { attachment: { type: 'image', payload: { url: 'https://cdn.example.com/a.jpg', is_reusable: true } }, metadata: '01JMSG0002' },
      { attachment: { type: 'file', payload: { url: 'https://cdn.example.com/b.pdf', is_reusable: true } }, metadata: '01JMSG0002' },
    ]);
  });

  it('sends a text over 2000 characters as several messages, each tagged with our id', async () => {
    const { fetch, calls } = scriptedFetch(ok, { status: 200, body: { recipient_id: PSID, message_id: 'm_SENT2' } });
    const text = `${'First part. '.repeat(150)}\n\n${'Second part. '.repeat(50)}`;
    const result = await adapter.send({ ...base, text }, sendContext('messenger', fetch));
    expect(result).toEqual({ ok: true, providerMessageId: 'm_SENT1', otherIds: ['m_SENT2'] });
    const messages = calls.map((c) => c.json().message as { text: string; metadata: string });
    expect(messages).toHaveLength(2);
    expect(messages.map((m) => m.text)).toEqual(['First part. '.repeat(150).trim(), 'Second part. '.repeat(50).trim()]);
    expect(messages.every((m) => m.metadata === '01JMSG0002')).toBe(true);
  });

  it('stops at the first failed part and reports it', async () => {
    const { fetch, calls } = scriptedFetch(ok, { status: 500, body: { error: { message: 'Temporary', code: 2 } } });
    const result = await adapter.send(
      { ...base, attachments: [{ type: 'image', url: 'https://cdn.example.com/a.jpg' }, { type: 'image', url: 'https://cdn.example.com/c.jpg' }] },
      sendContext('messenger', fetch),
    );
    expect(result).toMatchObject({ ok: false, retryable: true });
    expect(calls).toHaveLength(2);
  });

  it.each([
    [200, ok.body, { ok: true, providerMessageId: 'm_SENT1' }],
    [429, { error: { message: 'Too many calls', code: 613 } }, { ok: false, retryable: true }],
    [500, { error: { message: 'An unexpected error has occurred.', code: 2, is_transient: true } }, { ok: false, retryable: true }],
    [400, { error: { message: '(#1200) Temporary send message failure. Please try again later', type: 'OAuthException', code: 1200 } }, { ok: false, retryable: true }],
    [
      400,
      { error: { message: '(#10) This message is sent outside of allowed window.', type: 'OAuthException', code: 10, error_subcode: 2018278 } },
      { ok: false, retryable: false, error: '400: (#10) This message is sent outside of allowed window. (code 10)' },
    ],
  ])('maps %i', async (status, body, expected) => {
    const { fetch } = scriptedFetch({ status, body });
    expect(await adapter.send(base, sendContext('messenger', fetch))).toMatchObject(expected);
  });

  it('network error → retryable', async () => {
    const { fetch } = scriptedFetch(networkError());
    expect(await adapter.send(base, sendContext('messenger', fetch))).toMatchObject({ ok: false, retryable: true });
  });

  it('a 2xx without message_id is not retried (it may have been sent)', async () => {
    const { fetch } = scriptedFetch({ status: 200, body: {} });
    expect(await adapter.send(base, sendContext('messenger', fetch))).toMatchObject({ ok: false, retryable: false });
  });

  it('starts no part past `startBy`: the parts taken are recorded, the rest put off for the next delivery', async () => {
    // Prepare: two parts; the clock passes `startBy` while the first is answered
    const startBy = Date.now() + 60_000;
    const { fetch, calls } = scriptedFetch({ status: 200, body: { recipient_id: '7001', message_id: 'm_1' } });
    const slow: typeof fetch = async (input, init) => {
      vi.setSystemTime(startBy + 1);
      return fetch(input, init);
    };
    const kept: unknown[] = [];
    const long = { ...base, text: `${'a'.repeat(1990)}\n\n${'b'.repeat(100)}` };
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      // Act
      const result = await adapter.send(long, { ...sendContext('messenger', slow), startBy, onPartSent: async (p) => void kept.push(p) });

      // Assess
      expect(result).toMatchObject({ ok: false, retryable: true, deferred: true });
      expect(calls).toHaveLength(1);
      expect(kept).toEqual([{ partsSent: 1, partsTotal: 2, primaryId: 'm_1' }]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('instagram shares the Send API without metadata', () => {
  it('posts the same shape to the Instagram base URL', async () => {
    const { fetch, calls } = scriptedFetch({ status: 200, body: { recipient_id: '1234567890123456', message_id: 'ig_SENT1' } });
    const result = await instagramAdapter.send(
      { to: '1234567890123456', text: 'Hi!', attachments: [], tag: 'HUMAN_AGENT', idempotencyKey: 'k', reference: 'c/k' },
      sendContext('instagram', fetch),
    );
    expect(result).toEqual({ ok: true, providerMessageId: 'ig_SENT1' });
    expect(calls[0]?.url).toBe(`https://provider.test/instagram/me/messages?access_token=${DEV_CREDENTIALS.instagram.accessToken}`);
    expect(calls[0]?.json()).toEqual({ recipient: { id: '1234567890123456' }, messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT', message: { text: 'Hi!' } });
    expect(instagramAdapter.defaultBaseUrl).toBe('https://graph.instagram.com/v21.0');
  });
});

describe('messenger normalize: replies', () => {
  it('a reply names the message it answers by its mid (as our sends record theirs), no words of it', () => {
    expect(normalize('reply')).toEqual([
      {
        kind: 'message',
        channel: 'messenger',
        handle: PSID,
        providerMessageId: 'm_REPLY1',
        text: 'Yes, the blue one',
        attachments: [],
        replyTo: { providerMessageId: 'm_OURQUESTION1' },
        sentAt: SENT_AT,
        dated: true,
      },
    ]);
  });
});
