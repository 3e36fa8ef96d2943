import { describe, expect, it } from 'vitest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { instagramAdapter as adapter } from '../../src/channels/instagram';
import { fixture, signedRequest } from '../fixtures/sign';
import { DAY, HOUR, MINUTE, NOW, ago, scriptedFetch, sendContext } from './support';

const credentials = DEV_CREDENTIALS.instagram;
const IGSID = '1234567890123456';
const SENT_AT = '2025-06-08T20:59:43.000Z';

function normalize(name: string) {
  return adapter.normalize(signedRequest('instagram', fixture('instagram', name)), credentials);
}

describe('instagram normalize', () => {
  it('text → sender IGSID as handle, mid, provider time', () => {
    expect(normalize('text')).toEqual([
      {
        kind: 'message',
        channel: 'instagram',
        handle: IGSID,
        providerMessageId:
          'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAwOjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTY2ODEzNjIyNDM2MjcwNDozMTI4MjM0NjQ4OTgwNTY3NDkwNDE2NzY2NDI5OTU2MDEyMAZDZD',
        text: 'Is this still available?',
        attachments: [],
        sentAt: SENT_AT,
        dated: true,
      },
    ]);
  });

  it('image → the CDN URL', () => {
    expect(normalize('image')).toMatchObject([
      { providerMessageId: 'ig_IMAGE1', attachments: [{ type: 'image', url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1799&signature=abc' }] },
    ]);
  });

  it('a shared reel → its caption as the text, and the reel as a file link named by its kind', () => {
    expect(normalize('reel-share')).toMatchObject([
      {
        providerMessageId: 'ig_REEL1',
        text: 'Our spring collection is here 🌸 #hoodies',
        attachments: [{ type: 'file', name: 'ig_reel', url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17936912345678901&signature=ghi' }],
      },
    ]);
  });

  it('a story mention is kept as a file link named by its kind', () => {
    expect(normalize('story-mention')).toMatchObject([
      { attachments: [{ type: 'file', name: 'story_mention', url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1800&signature=def' }] },
    ]);
  });

  it('a story reply is the customer’s text with the story they answered as a file link', () => {
    expect(normalize('story-reply')).toEqual([
      {
        kind: 'message',
        channel: 'instagram',
        handle: IGSID,
        providerMessageId: 'ig_STORYREPLY1',
        text: 'Love this! Which size is she wearing?',
        attachments: [{ type: 'file', name: 'story_reply', url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1801&signature=ghi' }],
        sentAt: SENT_AT,
        dated: true,
      },
    ]);
  });

  it('an edit → "(edited)" and the new text, under an id of its own per edit (its count given as a string too)', () => {
    expect(normalize('message-edit')).toEqual([
      {
        kind: 'message',
        channel: 'instagram',
        handle: IGSID,
        providerMessageId: 'edit:ig_TEXT1:2',
        text: '(edited) Is the blue one back in stock?',
        attachments: [],
        sentAt: '2025-06-08T21:00:50.000Z',
        dated: true,
        edits: 'ig_TEXT1',
      },
    ]);
  });

  it('drops echoes and unsends', () => {
    expect(normalize('echo')).toEqual([]);
    expect(normalize('deleted')).toEqual([]);
  });

  it('with our app id configured, keeps an echo another app sent as the team’s message, shown as the Instagram inbox', () => {
    const body = JSON.parse(fixture('instagram', 'echo'));
    const read = (appId: number) => {
      body.entry[0].messaging[0].message.app_id = appId;
      return adapter.normalize(signedRequest('instagram', JSON.stringify(body)), { ...credentials, appId: '1517776481860111' });
    };
    expect(read(263902037430900)).toMatchObject([{ kind: 'message', handle: IGSID, providerMessageId: 'ig_ECHO1', text: 'Thanks for writing!', echo: { name: 'Instagram inbox' } }]);
    expect(read(1517776481860111)).toEqual([]);
    // As documented, without an app_id: it cannot be told from ours.
    expect(adapter.normalize(signedRequest('instagram', fixture('instagram', 'echo')), { ...credentials, appId: '1517776481860111' })).toEqual([]);
  });

  it('messaging_seen names the last mid read, which covers the ones before it', () => {
    expect(normalize('seen')).toEqual([
      { kind: 'status', channel: 'instagram', handle: IGSID, providerMessageId: 'ig_OUT1', status: 'read', at: '2025-06-08T20:59:50.000Z', coversEarlier: true },
    ]);
  });

  it('reaction and unsupported messages get readable text', () => {
    expect(normalize('reaction')).toMatchObject([{ handle: IGSID, text: 'reacted ❤️ to a message', replyTo: { providerMessageId: 'ig_OUT1' } }]);
    expect(normalize('unsupported')).toMatchObject([{ providerMessageId: 'ig_UNSUPPORTED1', text: '[a message Instagram does not pass on to apps (a GIF or a sticker, say): see it in Instagram]' }]);
  });

  it('several senders in one entry → one event each', () => {
    expect(normalize('multiple').map((e) => [e.handle, e.providerMessageId])).toEqual([
      [IGSID, 'ig_MULTI1'],
      ['6543210987654321', 'ig_MULTI2'],
    ]);
  });

  it('with our account id configured, ignores every event of another account the app is subscribed to', () => {
    const body = fixture('instagram', 'multiple');
    const ids = (accountId: string) => adapter.normalize(signedRequest('instagram', body), { ...credentials, accountId }).map((e) => e.providerMessageId);
    expect(ids('17841400000000000')).toEqual(['ig_MULTI1', 'ig_MULTI2']);
    expect(ids('17841400000000001')).toEqual([]);
    // Past 2^53 as a JSON number, the id is compared as Meta's own JSON reads it.
    const numeric = body.replace('"id": "17841400000000000"', '"id": 17841400000000000');
    expect(adapter.normalize(signedRequest('instagram', numeric), { ...credentials, accountId: '17841400000000000' })).toHaveLength(2);
  });

  it('refuses a Messenger webhook', () => {
    expect(() => adapter.normalize(signedRequest('instagram', fixture('messenger', 'text')), credentials)).toThrow(/object "instagram"/);
  });
});

describe('instagram window (same rules as Messenger)', () => {
  it.each([
    [23 * HOUR + 59 * MINUTE, { allowed: true }],
    [24 * HOUR + MINUTE, { allowed: true, tag: 'HUMAN_AGENT' }],
    [6 * DAY + 23 * HOUR, { allowed: true, tag: 'HUMAN_AGENT' }],
  ])('%i ms after the last message → %o', (elapsed, expected) => {
    expect(adapter.window(ago(elapsed), NOW, false)).toEqual(expected);
  });

  it('7 d 1 min → outside_window', () => {
    expect(adapter.window(ago(7 * DAY + MINUTE), NOW, false)).toMatchObject({ allowed: false, code: 'outside_window' });
  });
});

describe('instagram send', () => {
  it('cuts a text at 1000 UTF-8 bytes, which fewer characters reach when they are not ASCII', async () => {
    const ok = { status: 200, body: { recipient_id: IGSID, message_id: 'ig_SENT1' } };
    const { fetch, calls } = scriptedFetch(ok);
    const text = 'Olá, já está à venda. '.repeat(60);
    const result = await adapter.send({ to: IGSID, text, attachments: [], idempotencyKey: 'k', reference: 'c/k' }, sendContext('instagram', fetch));
    expect(result).toEqual({ ok: true, providerMessageId: 'ig_SENT1', otherIds: ['ig_SENT1'] });
    const parts = calls.map((c) => String((c.json().message as { text: string }).text));
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((p) => Buffer.byteLength(p) <= 1000)).toBe(true);
    expect(parts.some((p) => p.length < 1000 && Buffer.byteLength(p) > 950)).toBe(true);
    expect(parts.join(' ')).toBe(text.trim());
  });
});

describe('instagram normalize: replies', () => {
  it('a reply to a message names it by its mid; a story reply answers a story, no message', () => {
    expect(normalize('reply')).toEqual([
      {
        kind: 'message',
        channel: 'instagram',
        handle: IGSID,
        providerMessageId: 'ig_REPLY1',
        text: 'Tomorrow works',
        attachments: [],
        replyTo: { providerMessageId: 'ig_OURQUESTION1' },
        sentAt: SENT_AT,
        dated: true,
      },
    ]);
    expect(normalize('story-reply')[0]).not.toHaveProperty('replyTo');
  });
});
