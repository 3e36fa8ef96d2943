import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { telegramAdapter as adapter } from '../../src/channels/telegram';
import { halfwayTo, transferTimeoutMs } from '../../src/channels/common';
import type { OutboundSend, WebhookRequest } from '../../src/channels/types';
import { inboundDedupId, inboundGroupId } from '../../src/aws/queues';
import { fixture, signedRequest } from '../fixtures/sign';
import { DAY, NOW, ago, networkError, scriptedFetch, sendContext } from './support';

const credentials = DEV_CREDENTIALS.telegram;
const SENT_AT = '2025-06-08T20:59:43.000Z';
const ada = { channel: 'telegram', handle: '123456789', profile: { name: 'Ada Lovelace' } };

function normalize(name: string) {
  return adapter.normalize(signedRequest('telegram', fixture('telegram', name)), credentials);
}

/** An Update of `kind` wrapping fixture text.json's message with `fields` added or replaced. */
function update(kind: string, fields: Record<string, unknown>) {
  const { message } = JSON.parse(fixture('telegram', 'text')) as { message: Record<string, unknown> };
  const body = JSON.stringify({ update_id: 10100, [kind]: { ...message, ...fields } });
  return adapter.normalize(signedRequest('telegram', body), credentials);
}

function withSecret(secret: string | undefined): WebhookRequest {
  const headers: Record<string, string> = {};
  if (secret !== undefined) headers['x-telegram-bot-api-secret-token'] = secret;
  return { method: 'POST', rawBody: fixture('telegram', 'text'), headers, query: {}, url: '' };
}

describe('telegram normalize: surprising updates', () => {
  it('takes no message from the edits that move a live location', () => {
    expect(update('edited_message', { text: undefined, location: { latitude: 52.52, longitude: 13.4, live_period: 900 }, edit_date: 1749416400 })).toEqual([]);
  });

  it('takes a shared contact whose phone number is not a string, without throwing', () => {
    const [event] = update('message', { text: undefined, contact: { first_name: 'Bob', phone_number: 123 } });
    expect(event).toMatchObject({ kind: 'message', attachments: [] });
  });
});

describe('telegram normalize: groups', () => {
  const group = { id: -1001987654321, type: 'supergroup', title: 'Acme buyers' };
  const inGroup = { handle: '-1001987654321', profile: { name: 'Acme buyers' } };

  it('takes a group as one customer named by its title, each member\'s words signed with their name', () => {
    expect(update('message', { chat: group })).toMatchObject([{ ...inGroup, text: 'Ada Lovelace: Hi! Where is my parcel?' }]);
    expect(update('message', { chat: group, from: { id: 777, is_bot: false, first_name: 'Bob' }, text: 'Same here' })).toMatchObject([{ ...inGroup, text: 'Bob: Same here' }]);
    expect(update('message', { chat: { ...group, type: 'group' }, from: { id: 778, is_bot: false, username: 'cy' }, text: 'Me too' })).toMatchObject([{ ...inGroup, text: '@cy: Me too' }]);
    expect(update('edited_message', { chat: group, text: 'Where is parcel #123?', edit_date: 1749416450 })).toMatchObject([{ ...inGroup, text: 'Ada Lovelace: (edited) Where is parcel #123?' }]);
    const photo = update('message', { chat: group, text: undefined, photo: [{ file_id: 'p1', file_unique_id: 'u1', width: 90, height: 90 }] });
    expect(photo).toMatchObject([{ ...inGroup, text: 'Ada Lovelace:', attachments: [{ type: 'image' }] }]);
  });

  it('takes what an anonymous admin, or a member writing as their channel, says: `from` is then a placeholder bot', () => {
    expect(normalize('anonymous-admin')).toMatchObject([
      { handle: '-1009876543210', providerMessageId: '-1009876543210:44', profile: { name: 'Support group' }, text: 'Store manager: Our order #5512 has not arrived' },
    ]);
    const asChannel = { from: { id: 136817688, is_bot: true, first_name: 'Channel', username: 'Channel_Bot' }, sender_chat: { id: -1001111111111, type: 'channel', title: 'Ada’s shop' } };
    expect(update('message', { chat: group, ...asChannel, text: 'Any news?' })).toMatchObject([{ ...inGroup, text: 'Ada’s shop: Any news?' }]);
    // Another bot of the group is still no customer, nor a post of the group's linked channel that Telegram copies in.
    expect(normalize('bot')).toEqual([]);
    const forwarded = { from: { id: 777000, is_bot: false, first_name: 'Telegram' }, sender_chat: asChannel.sender_chat, is_automatic_forward: true };
    expect(update('message', { chat: group, ...forwarded, text: 'New arrivals this week' })).toEqual([]);
  });

  it('signs a button tapped in a group with the member who tapped it', () => {
    const { callback_query: query } = JSON.parse(fixture('telegram', 'callback-query')) as { callback_query: { message: Record<string, unknown> } };
    const body = JSON.stringify({ update_id: 10101, callback_query: { ...query, message: { ...query.message, chat: group } } });
    expect(adapter.normalize(signedRequest('telegram', body), credentials)).toMatchObject([{ ...inGroup, text: 'Ada Lovelace: rating:5' }]);
  });

  it('takes each forum topic as a conversation of its own, named by the group and the topic', () => {
    const returns = { handle: '-1001234567890/57', profile: { name: 'Acme buyers › Returns' } };
    expect(normalize('forum-topic')).toMatchObject([{ ...returns, providerMessageId: '-1001234567890:61', text: 'Ada Lovelace: How do I send the blender back?' }]);
    // A later message of the topic that answers another message: the same topic, its name not known from it.
    const topic = { chat: { ...group, is_forum: true }, message_thread_id: 57, is_topic_message: true };
    expect(update('message', { ...topic, message_id: 62, reply_to_message: { message_id: 61, text: 'How do I send the blender back?' } })).toMatchObject([{ handle: '-1001987654321/57', profile: { name: 'Acme buyers' } }]);
    expect(update('edited_message', { ...topic, edit_date: 1749416450 })).toMatchObject([{ handle: '-1001987654321/57' }]);
    // The General topic has no thread; a reply thread in a group without topics is the group's conversation.
    expect(update('message', { chat: { ...group, is_forum: true } })).toMatchObject([inGroup]);
    expect(update('message', { chat: group, message_thread_id: 40 })).toMatchObject([inGroup]);
  });

  it('takes a button tapped under a message in a forum topic as that topic\'s', () => {
    const { callback_query: query } = JSON.parse(fixture('telegram', 'callback-query')) as { callback_query: { message: Record<string, unknown> } };
    const message = { ...query.message, chat: group, message_thread_id: 57, is_topic_message: true };
    const body = JSON.stringify({ update_id: 10102, callback_query: { ...query, message } });
    expect(adapter.normalize(signedRequest('telegram', body), credentials)).toMatchObject([{ handle: '-1001987654321/57', text: 'Ada Lovelace: rating:5' }]);
  });

  it('leaves a private chat\'s words unsigned, named by its user', () => {
    expect(update('message', {})).toMatchObject([{ ...ada, text: 'Hi! Where is my parcel?' }]);
  });
});

describe('telegram verify', () => {
  it('accepts the configured secret token', () => {
    expect(adapter.verify(withSecret(credentials.secretToken), credentials)).toBe(true);
  });

  it('rejects a wrong, truncated, missing or empty token', () => {
    const good = credentials.secretToken ?? '';
    for (const header of ['wrong', good.slice(0, -1), `${good}x`, undefined, '']) {
      expect(adapter.verify(withSecret(header), credentials)).toBe(false);
    }
  });

  it('has no GET handshake', () => {
    expect(adapter.challenge).toBeUndefined();
  });
});

describe('telegram normalize', () => {
  it('text → chat id as handle, chat:message id, sender name', () => {
    expect(normalize('text')).toEqual([
      { kind: 'message', ...ada, providerMessageId: '123456789:42', text: 'Hi! Where is my parcel?', attachments: [], sentAt: SENT_AT, dated: true },
    ]);
  });

  it('photo → the largest size as a telegram-file:// reference, caption as text', () => {
    expect(normalize('photo')).toMatchObject([
      { ...ada, text: 'The box arrived like this', attachments: [{ type: 'image', url: 'telegram-file://AgACAgQAAxkBAAIBLarge', size: 98765 }] },
    ]);
  });

  it.each([
    ['voice', '', { type: 'audio', url: 'telegram-file://AwACAgQAAxkBAAIBVoice', mimeType: 'audio/ogg', size: 7321 }],
    ['audio', '', { type: 'audio', url: 'telegram-file://CQACAgQAAxkBAAIBAudio', mimeType: 'audio/mpeg', name: 'song.mp3', size: 2900000 }],
    ['video', 'See the scratch', { type: 'video', url: 'telegram-file://BAACAgQAAxkBAAIBVideo', mimeType: 'video/mp4', size: 3400000 }],
    ['document', 'Invoice attached', { type: 'file', url: 'telegram-file://BQACAgQAAxkBAAIBDoc', mimeType: 'application/pdf', name: 'invoice.pdf', size: 45678 }],
    ['sticker', '😂', { type: 'sticker', url: 'telegram-file://CAACAgIAAxkBAAIBSticker', size: 23456 }],
  ])('%s', (name, text, attachment) => {
    expect(normalize(name)).toEqual([{ kind: 'message', ...ada, providerMessageId: '123456789:42', text, attachments: [attachment], sentAt: SENT_AT, dated: true }]);
  });

  it('location and venue → pin text and geo: attachment', () => {
    expect(normalize('location')).toMatchObject([{ text: '📍 51.500729,-0.124625', attachments: [{ type: 'location', url: 'geo:51.500729,-0.124625' }] }]);
    expect(normalize('venue')).toMatchObject([{ text: '📍 51.500729,-0.124625 (Big Ben, London SW1A 0AA)' }]);
  });

  it('contact → "Shared contact: name phone"', () => {
    expect(normalize('contact')).toMatchObject([
      { text: 'Shared contact: Charles Babbage +441234567890', attachments: [{ type: 'contact', url: 'tel:+441234567890', name: 'Charles Babbage' }] },
    ]);
  });

  it('a contact shared from an address book → the other numbers and the emails its vCard holds too, its own number once', () => {
    const vcard = [
      'BEGIN:VCARD',
      'VERSION:3.0',
      'FN:Charles Babbage',
      'TEL;TYPE=CELL:+44 1234 567890',
      'item1.TEL;TYPE=WORK:+44 20 7946',
      ' 0958',
      'EMAIL;TYPE=INTERNET:charles@engine.example',
      'END:VCARD',
    ].join('\r\n');
    const contact = { phone_number: '+441234567890', first_name: 'Charles', last_name: 'Babbage', vcard };
    expect(update('message', { text: undefined, contact })).toMatchObject([
      {
        text: 'Shared contact: Charles Babbage +441234567890, +44 20 79460958, charles@engine.example',
        attachments: [
          { type: 'contact', url: 'tel:+441234567890', name: 'Charles Babbage' },
          { type: 'contact', url: 'tel:+442079460958', name: 'Charles Babbage' },
        ],
      },
    ]);
  });

  it('an edit of a photo’s caption carries the photo as it now is: editing may replace it, which must not be lost', () => {
    const photo = [{ file_id: 'AgACsmall', file_unique_id: 's', width: 90, height: 90 }, { file_id: 'AgACnew', file_unique_id: 'n', width: 800, height: 800 }];
    expect(update('edited_message', { text: undefined, photo, caption: 'Now in blue', edit_date: 1749416450 })).toMatchObject([
      { providerMessageId: '123456789:42:edited:1749416450', text: '(edited) Now in blue', attachments: [{ type: 'image', url: 'telegram-file://AgACnew' }] },
    ]);
  });

  it('an edit is a new event with its own id, marked as edited', () => {
    expect(normalize('edited')).toEqual([
      {
        kind: 'message',
        ...ada,
        providerMessageId: '123456789:42:edited:1749416450',
        text: '(edited) Hi! Where is my parcel #123?',
        attachments: [],
        sentAt: '2025-06-08T21:00:50.000Z',
        dated: true,
      },
    ]);
  });

  it('drops channel posts and their edits: a reply keyed on the channel would reach every subscriber', () => {
    expect(normalize('channel-post')).toEqual([]);
    const channel = { chat: { id: -1001234567890, title: 'Shop News', type: 'channel' }, sender_chat: { id: -1001234567890, title: 'Shop News', type: 'channel' } };
    expect(update('channel_post', { ...channel, from: undefined })).toEqual([]);
    expect(update('edited_channel_post', { ...channel, from: undefined, edit_date: 1749416450 })).toEqual([]);
  });

  it("drops business-account updates: they carry the owner's own messages and replies would need business_connection_id", () => {
    const business = { business_connection_id: 'bc-1' };
    expect(update('business_message', business)).toEqual([]);
    expect(update('edited_business_message', { ...business, edit_date: 1749416450 })).toEqual([]);
    // The owner writing to the customer, in the customer's chat: the case that stored the owner's words as the customer's.
    expect(update('business_message', { ...business, from: { id: 555, is_bot: false, first_name: 'Owner' } })).toEqual([]);
  });

  it.each([
    ['pinned_message', { message_id: 41, date: 1749416000, chat: { id: 123456789, type: 'private' }, text: 'Hi' }],
    ['new_chat_members', [{ id: 777, is_bot: false, first_name: 'Bob' }]],
    ['left_chat_member', { id: 777, is_bot: false, first_name: 'Bob' }],
    ['new_chat_title', 'Support group'],
    ['new_chat_photo', [{ file_id: 'AgACPhoto', file_unique_id: 'u', width: 160, height: 160 }]],
    ['delete_chat_photo', true],
    ['group_chat_created', true],
    ['message_auto_delete_timer_changed', { message_auto_delete_time: 86400 }],
    ['chat_shared', { request_id: 1, chat_id: -1001 }],
    ['users_shared', { request_id: 2, users: [{ user_id: 777 }] }],
    ['write_access_allowed', { from_request: true }],
    ['forum_topic_created', { name: 'Orders', icon_color: 7322096 }],
    ['video_chat_started', {}],
    ['successful_payment', { currency: 'EUR', total_amount: 500, invoice_payload: 'p', telegram_payment_charge_id: 't', provider_payment_charge_id: 'p' }],
  ])('drops the service message %s (no event, no reopened conversation)', (key, value) => {
    expect(update('message', { text: undefined, [key]: value })).toEqual([]);
    expect(update('edited_message', { text: undefined, [key]: value, edit_date: 1749416450 })).toEqual([]);
  });

  describe('a group upgraded to a supergroup (its conversation goes on under the new chat id)', () => {
    const OLD = -4518810793;
    const NEW = -1001557912345;
    const moved = { kind: 'moved', channel: 'telegram', handle: String(NEW), from: String(OLD) };
    const inOld = { chat: { id: OLD, type: 'group', title: 'Acme buyers' }, text: undefined };
    const inNew = { chat: { id: NEW, type: 'supergroup', title: 'Acme buyers' }, text: undefined };

    it('takes either service message as the same move, from the old chat id to the new one, and nothing else', () => {
      expect(update('message', { ...inOld, migrate_to_chat_id: NEW })).toEqual([moved]);
      expect(update('message', { ...inNew, migrate_from_chat_id: OLD })).toEqual([moved]);
      // Told by whoever upgraded the group, a bot too.
      expect(update('message', { ...inNew, migrate_from_chat_id: OLD, from: { id: 5, is_bot: true, first_name: 'GroupHelpBot' } })).toEqual([moved]);
      // Both are one move to the inbound queue (one deduplication id), in the new chat's lane.
      const [fromOld] = update('message', { ...inOld, migrate_to_chat_id: NEW });
      const [fromNew] = update('message', { ...inNew, migrate_from_chat_id: OLD });
      expect(inboundDedupId(fromOld!)).toBe(inboundDedupId(fromNew!));
      expect(inboundGroupId(fromOld!)).toBe(inboundGroupId({ channel: 'telegram', handle: String(NEW) }));
    });

    it('takes no move from an edit, an id that is not a chat id, or a chat moving to itself', () => {
      expect(update('edited_message', { ...inOld, migrate_to_chat_id: NEW, edit_date: 1749416450 })).toEqual([]);
      for (const id of [String(NEW), 0, 1.5, null, { id: NEW }, OLD]) expect(update('message', { ...inOld, migrate_to_chat_id: id })).toEqual([]);
      for (const id of [String(OLD), 0, NEW]) expect(update('message', { ...inNew, migrate_from_chat_id: id })).toEqual([]);
    });
  });

  it('drops messages from bots and non-message updates', () => {
    expect(normalize('bot')).toEqual([]);
    expect(normalize('member-update')).toEqual([]);
  });

  it('a forwarded message says so on a line of its own, with whom it came from when Telegram names them', () => {
    const date = 1749416000;
    expect(update('message', { forward_origin: { type: 'user', date, sender_user: { id: 5, is_bot: false, first_name: 'Bob', last_name: 'Stone' } } })).toMatchObject([
      { text: 'Hi! Where is my parcel?\n[forwarded from Bob Stone]' },
    ]);
    expect(update('message', { forward_origin: { type: 'hidden_user', date, sender_user_name: 'Carol' } })).toMatchObject([{ text: 'Hi! Where is my parcel?\n[forwarded from Carol]' }]);
    expect(update('message', { forward_origin: { type: 'channel', date, chat: { id: -1001, type: 'channel', title: 'Acme news' }, message_id: 9 } })).toMatchObject([
      { text: 'Hi! Where is my parcel?\n[forwarded from Acme news]' },
    ]);
    expect(update('message', { forward_origin: { type: 'unknown_future_origin', date } })).toMatchObject([{ text: 'Hi! Where is my parcel?\n[forwarded]' }]);
  });

  it('a link under words (a text_link entity: the URL is not in the text) is written after them, in the text and in a caption', () => {
    // Offsets count UTF-16 units: the emoji before the first link takes two.
    const text = '📦 Tracking here, and the invoice';
    const entities = [
      { type: 'bold', offset: 0, length: 2 },
      { type: 'text_link', offset: 3, length: 13, url: 'https://track.example/123' },
      { type: 'text_link', offset: 26, length: 7, url: 'https://shop.example/inv.pdf' },
    ];
    expect(update('message', { text, entities })).toMatchObject([{ text: '📦 Tracking here (https://track.example/123), and the invoice (https://shop.example/inv.pdf)' }]);
    const photo = [{ file_id: 'AgAC', file_unique_id: 'u', width: 90, height: 90 }];
    expect(update('message', { text: undefined, photo, caption: 'Order page', caption_entities: [{ type: 'text_link', offset: 0, length: 10, url: 'https://shop.example/o/9' }] })).toMatchObject([
      { text: 'Order page (https://shop.example/o/9)' },
    ]);
    // A link whose words are its URL already, or whose offsets are not the text's, adds nothing.
    expect(update('message', { text: 'https://a.example', entities: [{ type: 'text_link', offset: 0, length: 17, url: 'https://a.example' }] })).toMatchObject([{ text: 'https://a.example' }]);
    expect(update('message', { text: 'short', entities: [{ type: 'text_link', offset: 2, length: 40, url: 'https://b.example' }] })).toMatchObject([{ text: 'short' }]);
  });

  it('a poll reads as its question and choices, a die as its emoji and score', () => {
    expect(normalize('poll')).toMatchObject([{ providerMessageId: '123456789:42', text: '📊 Which color?\n○ Red\n○ Blue', attachments: [] }]);
    expect(update('message', { text: undefined, dice: { emoji: '🎯', value: 6 } })).toMatchObject([{ text: '🎯 6' }]);
  });

  it('a shared story reads as whose it is, with its link when their chat is public; a game as its title and description', () => {
    expect(normalize('story')).toMatchObject([{ providerMessageId: '123456789:42', text: 'Shared a story from Acme news', attachments: [] }]);
    expect(update('message', { text: undefined, story: { chat: { id: 5, type: 'private', first_name: 'Bob', username: 'bob' }, id: 3 } })).toMatchObject([{ text: 'Shared a story from Bob\nhttps://t.me/bob/s/3' }]);
    expect(update('message', { text: undefined, story: {} })).toMatchObject([{ text: 'Shared a story' }]);
    expect(update('message', { text: undefined, game: { title: 'Snake', description: 'Eat the apples', photo: [] } })).toMatchObject([{ text: '🎮 Snake\nEat the apples' }]);
  });

  it('unknown content keeps the message with its type named', () => {
    // Content types newer than this adapter are still shown, not mistaken for service messages.
    expect(update('message', { text: undefined, some_future_content: { id: 1 } })).toMatchObject([{ text: '[unsupported message type: some_future_content]' }]);
    expect(update('message', { text: undefined, game: 'not a game' })).toMatchObject([{ text: '[unsupported message type: game]' }]);
  });

  it('an inline button tap reads as the label of the button tapped, or as its data when the keyboard is not there', () => {
    expect(normalize('callback-query-keyboard')).toMatchObject([{ ...ada, providerMessageId: 'callback:4382bfdwdsb323b2e1', text: '⭐️⭐️⭐️⭐️⭐️ Great' }]);
    expect(normalize('callback-query')).toMatchObject([{ ...ada, providerMessageId: 'callback:4382bfdwdsb323b2d9', text: 'rating:5' }]);
  });

  it('answers a callback query in the webhook’s answer (the app shows the button loading until it is), and anything else with OK', () => {
    expect(adapter.ack(signedRequest('telegram', fixture('telegram', 'callback-query-keyboard')))).toEqual({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ method: 'answerCallbackQuery', callback_query_id: '4382bfdwdsb323b2e1' }),
    });
    const ok = { status: 200, contentType: 'text/plain', body: 'OK' };
    expect(adapter.ack(signedRequest('telegram', fixture('telegram', 'text')))).toEqual(ok);
    expect(adapter.ack(signedRequest('telegram', '{"callback_query": null}'))).toEqual(ok);
    expect(adapter.ack(signedRequest('telegram', '{"callback_query":'))).toEqual(ok);
    expect(adapter.ack()).toEqual(ok);
  });

  it('throws BadWebhookError on a body that is not an Update', () => {
    for (const body of ['nope', '[]', 'null']) {
      expect(() => adapter.normalize(signedRequest('telegram', body), credentials)).toThrow(expect.objectContaining({ name: 'BadWebhookError' }));
    }
  });
});

describe('telegram window', () => {
  it('is always open', () => {
    expect(adapter.window(undefined, NOW, false)).toEqual({ allowed: true });
    expect(adapter.window(ago(30 * DAY), NOW, false)).toEqual({ allowed: true });
  });
});

describe('telegram send', () => {
  const base: OutboundSend = { to: '123456789', text: 'On its way!', attachments: [], idempotencyKey: 'k', reference: 'c/k' };
  const ok = (id: number) => ({ status: 200, body: { ok: true, result: { message_id: id, chat: { id: 123456789 }, date: 1, text: 'On its way!' } } });

  it('sendMessage with chat_id and text → chat:message_id', async () => {
    const { fetch, calls } = scriptedFetch(ok(77));
    expect(await adapter.send(base, sendContext('telegram', fetch))).toEqual({ ok: true, providerMessageId: '123456789:77' });
    expect(calls[0]?.url).toBe(`https://provider.test/telegram/bot${credentials.botToken}/sendMessage`);
    expect(calls[0]?.json()).toEqual({ chat_id: '123456789', text: 'On its way!' });
  });

  it('a forum topic\'s reply goes into the topic: message_thread_id beside the chat\'s id, on every part', async () => {
    const { fetch, calls } = scriptedFetch(ok(80), ok(81));
    const topic = { ...base, to: '-1001234567890/57', attachments: [{ type: 'image', url: 'https://cdn.example.com/a.jpg' }, { type: 'file', url: 'https://cdn.example.com/b.pdf' }] };
    expect(await adapter.send(topic, sendContext('telegram', fetch))).toEqual({ ok: true, providerMessageId: '-1001234567890:80', otherIds: ['-1001234567890:81'] });
    expect(calls.map((c) => c.json())).toEqual([
      { chat_id: '-1001234567890', message_thread_id: 57, photo: 'https://cdn.example.com/a.jpg', caption: 'On its way!' },
      { chat_id: '-1001234567890', message_thread_id: 57, document: 'https://cdn.example.com/b.pdf' },
    ]);
  });

  describe('a group upgraded to a supergroup (a new chat id, which Telegram names when it refuses the old one)', () => {
    const NEW_CHAT = -1001557912345;
    const upgraded = { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: group chat was upgraded to a supergroup chat', parameters: { migrate_to_chat_id: NEW_CHAT } } };
    const group = { ...base, to: '-4518810793' };
    const okIn = (chat: number, id: number) => ({ status: 200, body: { ok: true, result: { message_id: id, chat: { id: chat }, date: 1 } } });

    it('sends the reply to the new chat, and its id is the new chat\'s', async () => {
      const { fetch, calls } = scriptedFetch(upgraded, okIn(NEW_CHAT, 90));
      expect(await adapter.send(group, sendContext('telegram', fetch))).toEqual({ ok: true, providerMessageId: `${NEW_CHAT}:90` });
      expect(calls.map((c) => c.json())).toEqual([
        { chat_id: '-4518810793', text: 'On its way!' },
        { chat_id: String(NEW_CHAT), text: 'On its way!' },
      ]);
    });

    it('sends there only the parts the old chat did not take, and only once more', async () => {
      const parts = { ...group, attachments: [{ type: 'image', url: 'https://cdn.example.com/a.jpg' }, { type: 'file', url: 'https://cdn.example.com/b.pdf' }] };
      const progress: unknown[] = [];
      const { fetch, calls } = scriptedFetch(okIn(-4518810793, 91), upgraded, okIn(NEW_CHAT, 92));
      const context = { ...sendContext('telegram', fetch), onPartSent: async (p: unknown) => void progress.push(p) };
      expect(await adapter.send(parts, context)).toEqual({ ok: true, providerMessageId: '-4518810793:91', otherIds: [`${NEW_CHAT}:92`] });
      expect(calls.map((c) => [c.json().chat_id, c.url.split('/').pop()])).toEqual([['-4518810793', 'sendPhoto'], ['-4518810793', 'sendDocument'], [String(NEW_CHAT), 'sendDocument']]);
      expect(progress).toEqual([{ partsSent: 1, partsTotal: 2, primaryId: '-4518810793:91' }]);

      // The new chat refusing too (or naming itself) ends the send as Telegram answered.
      const twice = scriptedFetch(upgraded, upgraded);
      expect(await adapter.send(group, sendContext('telegram', twice.fetch))).toEqual({ ok: false, retryable: false, error: '400: Bad Request: group chat was upgraded to a supergroup chat' });
      expect(twice.calls).toHaveLength(2);
      const itself = scriptedFetch(upgraded);
      expect(await adapter.send({ ...group, to: String(NEW_CHAT) }, sendContext('telegram', itself.fetch))).toMatchObject({ ok: false, retryable: false });
      expect(itself.calls).toHaveLength(1);
    });
  });

  it('a photo carries the text as caption; a document follows as its own message', async () => {
    const { fetch, calls } = scriptedFetch(ok(78), ok(79));
    const result = await adapter.send(
      { ...base, attachments: [{ type: 'image', url: 'https://cdn.example.com/a.jpg' }, { type: 'file', url: 'https://cdn.example.com/b.pdf' }] },
      sendContext('telegram', fetch),
    );
    expect(result).toEqual({ ok: true, providerMessageId: '123456789:78', otherIds: ['123456789:79'] });
    expect(calls.map((c) => [c.url.split('/').pop(), c.json()])).toEqual([
      ['sendPhoto', { chat_id: '123456789', photo: 'https://cdn.example.com/a.jpg', caption: 'On its way!' }],
      ['sendDocument', { chat_id: '123456789', document: 'https://cdn.example.com/b.pdf' }],
    ]);
  });

  it('text longer than a caption allows goes first as its own message', async () => {
    const { fetch, calls } = scriptedFetch(ok(80));
    await adapter.send({ ...base, text: 'x'.repeat(1025), attachments: [{ type: 'image', url: 'https://cdn.example.com/a.jpg' }] }, sendContext('telegram', fetch));
    expect(calls.map((c) => c.url.split('/').pop())).toEqual(['sendMessage', 'sendPhoto']);
  });

  it('a text longer than Telegram allows goes out as several messages, in order', async () => {
    const { fetch, calls } = scriptedFetch(ok(81), ok(82));
    const text = `${'word '.repeat(900)}\n${'more '.repeat(200)}`;
    const result = await adapter.send({ ...base, text }, sendContext('telegram', fetch));
    expect(result).toEqual({ ok: true, providerMessageId: '123456789:81', otherIds: ['123456789:82'] });
    const parts = calls.map((c) => String(c.json().text));
    expect(parts).toHaveLength(2);
    expect(parts.every((p) => p.length <= 4096)).toBe(true);
    expect(parts.join(' ').replace(/\s+/g, ' ')).toBe(text.trim().replace(/\s+/g, ' '));
  });

  it.each([
    [429, { ok: false, error_code: 429, description: 'Too Many Requests: retry after 5', parameters: { retry_after: 5 } }, true],
    [502, 'Bad Gateway', true],
    [400, { ok: false, error_code: 400, description: 'Bad Request: chat not found' }, false],
    [403, { ok: false, error_code: 403, description: 'Forbidden: bot was blocked by the user' }, false],
  ])('maps %i (retryable %s) with the description', async (status, body, retryable) => {
    const { fetch } = scriptedFetch({ status, body });
    const result = await adapter.send(base, sendContext('telegram', fetch));
    expect(result).toMatchObject({ ok: false, retryable });
    if (typeof body === 'object') expect(result.ok === false && result.error).toBe(`${status}: ${body.description}`);
  });

  it('network error → retryable', async () => {
    const { fetch } = scriptedFetch(networkError());
    expect(await adapter.send(base, sendContext('telegram', fetch))).toMatchObject({ ok: false, retryable: true });
  });

  it('hands on flood control’s retry_after, so the retry waits as long as Telegram asks', async () => {
    const { fetch } = scriptedFetch({ status: 429, body: { ok: false, error_code: 429, description: 'Too Many Requests: retry after 45', parameters: { retry_after: 45 } } });
    expect(await adapter.send(base, sendContext('telegram', fetch))).toMatchObject({ ok: false, retryable: true, retryAfterSeconds: 45 });
  });

  it('reads an `ok: false` that comes with a 200 as the refusal it names (the answer’s `ok`, not its status, says whether the call worked)', async () => {
    const flood = scriptedFetch({ status: 200, body: { ok: false, error_code: 429, description: 'Too Many Requests: retry after 7', parameters: { retry_after: 7 } } });
    expect(await adapter.send(base, sendContext('telegram', flood.fetch))).toEqual({ ok: false, retryable: true, error: '429: Too Many Requests: retry after 7', retryAfterSeconds: 7 });
    const gone = scriptedFetch({ status: 200, body: { ok: false, error_code: 400, description: 'Bad Request: chat not found' } });
    expect(await adapter.send(base, sendContext('telegram', gone.fetch))).toEqual({ ok: false, retryable: false, error: '400: Bad Request: chat not found' });
    // A 200 that names no message and no error was taken: never sent again.
    const unnamed = scriptedFetch({ status: 200, body: { ok: true, result: {} } });
    expect(await adapter.send(base, sendContext('telegram', unnamed.fetch))).toEqual({ ok: false, retryable: false, error: 'Provider answered 200 without a message id' });
  });
});

describe('telegram send: documents Telegram cannot fetch by URL', () => {
  const base: OutboundSend = { to: '123456789', text: 'Your contract', attachments: [], idempotencyKey: 'k', reference: 'c/k' };
  const ok = (id: number) => ({ status: 200, body: { ok: true, result: { message_id: id, chat: { id: 123456789 }, date: 1 } } });
  const presigned = 'https://media.test/media/agent/a1/01J0000000000000000000000?X-Amz-Signature=abc';
  const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
  /** Every byte value, so that a text conversion anywhere shows. */
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

  async function uploaded(call: { multipart(): FormData }) {
    const form = call.multipart();
    const file = form.get('document') as File;
    return { fields: Object.fromEntries([...form.entries()].filter(([key]) => key !== 'document')), name: file.name, type: file.type, bytes: Buffer.from(await file.arrayBuffer()) };
  }

  it.each([
    ['a .docx', { type: 'file', url: presigned, mimeType: DOCX, name: 'contract.docx' }],
    ['a JPEG too large for sendPhoto, sent as a document', { type: 'file', url: presigned, mimeType: 'image/jpeg', name: 'site.jpg' }],
  ])('uploads %s as multipart/form-data with its bytes, name and the caption', async (_, attachment) => {
    const { fetch, calls } = scriptedFetch({ status: 200, body: null, file: { contentType: attachment.mimeType, bytes } }, ok(90));
    const result = await adapter.send({ ...base, attachments: [attachment] }, sendContext('telegram', fetch));
    expect(result).toEqual({ ok: true, providerMessageId: '123456789:90' });
    expect(calls.map((c) => [c.method, c.url])).toEqual([
      ['GET', presigned],
      ['POST', `https://provider.test/telegram/bot${credentials.botToken}/sendDocument`],
    ]);
    expect(calls[0]?.signal).toBeDefined();
    // fetch writes the content-type with the form's boundary: a JSON one would break the upload.
    expect(calls[1]?.headers).toEqual({});
    expect(await uploaded(calls[1]!)).toEqual({ fields: { chat_id: '123456789', caption: 'Your contract' }, name: attachment.name, type: attachment.mimeType, bytes });
  });

  it('still sends a PDF, a GIF and a ZIP by URL, without downloading them', async () => {
    const { fetch, calls } = scriptedFetch(ok(91), ok(92), ok(93));
    const files = [
      { type: 'file', url: presigned, mimeType: 'application/pdf', name: 'invoice.pdf' },
      { type: 'file', url: presigned, mimeType: 'image/gif', name: 'dance.gif' },
      { type: 'file', url: presigned, mimeType: 'application/zip', name: 'logs.zip' },
    ];
    const result = await adapter.send({ ...base, attachments: files }, sendContext('telegram', fetch));
    expect(result).toMatchObject({ ok: true, providerMessageId: '123456789:91' });
    expect(calls.map((c) => [c.method, c.url.split('/').pop(), c.json().document])).toEqual(files.map(() => ['POST', 'sendDocument', presigned]));
  });

  it('a resumed send downloads nothing for the parts already accepted', async () => {
    const { fetch, calls } = scriptedFetch({ status: 200, body: null, file: { contentType: DOCX, bytes } }, ok(95));
    const files = ['a.docx', 'b.docx'].map((name) => ({ type: 'file', url: `${presigned}&f=${name}`, mimeType: DOCX, name }));
    const context = { ...sendContext('telegram', fetch), resume: { partsSent: 1, primaryId: '123456789:94' } };
    expect(await adapter.send({ ...base, attachments: files }, context)).toEqual({ ok: true, providerMessageId: '123456789:94', otherIds: ['123456789:95'] });
    expect(calls.map((c) => c.url.split('/').pop())).toEqual(['01J0000000000000000000000?X-Amz-Signature=abc&f=b.docx', 'sendDocument']);
  });

  it.each([
    ['the store does not answer: retryable', networkError(), true],
    ['the store fails: retryable', { status: 503, body: 'Slow Down' }, true],
    ['the file is gone: permanent', { status: 404, body: 'NoSuchKey' }, false],
    ['the file is larger than a document may be: permanent', { status: 200, body: null, file: { contentType: DOCX, bytes: Buffer.alloc(20_000_001) } }, false],
  ])('when %s, and nothing is sent', async (_, reply, retryable) => {
    const { fetch, calls } = scriptedFetch(reply as Parameters<typeof scriptedFetch>[0], ok(96));
    const result = await adapter.send({ ...base, attachments: [{ type: 'file', url: presigned, mimeType: DOCX, name: 'contract.docx' }] }, sendContext('telegram', fetch));
    expect(result).toMatchObject({ ok: false, retryable, error: expect.stringMatching(/^Could not fetch the file to upload: /) });
    expect(calls.map((c) => c.method)).toEqual(['GET']);
  });

  describe('gives a file the time its size needs', () => {
    const timeouts = () => vi.mocked(AbortSignal.timeout).mock.calls.map(([ms]) => ms);
    beforeEach(() => {
      vi.spyOn(AbortSignal, 'timeout');
    });
    afterEach(() => {
      vi.useRealTimers();
      vi.restoreAllMocks();
    });

    it('a 5 MB upload (and its download) 10 s and a second a megabyte; a message beside it 10 s', async () => {
      const file = Buffer.alloc(5_000_000, 1);
      const { fetch } = scriptedFetch(ok(97), { status: 200, body: null, file: { contentType: DOCX, bytes: file } }, ok(98));
      const attachment = { type: 'file', url: presigned, mimeType: DOCX, name: 'plans.docx', size: file.length };
      const result = await adapter.send({ ...base, text: 'x'.repeat(1025), attachments: [attachment] }, sendContext('telegram', fetch));
      expect(result).toMatchObject({ ok: true });
      // sendMessage (a caption too long for the document), the file's download, then its upload.
      expect(timeouts()).toEqual([10_000, 15_000, 15_000]);
    });

    it('never past the send’s deadline: the download up to halfway, the upload the rest', async () => {
      const file = Buffer.alloc(20_000_000, 1);
      const { fetch } = scriptedFetch({ status: 200, body: null, file: { contentType: DOCX, bytes: file } }, ok(99));
      const attachment = { type: 'file', url: presigned, mimeType: DOCX, name: 'plans.docx', size: file.length };
      // The clock stands still: a loaded machine's slow copy of 20 MB must not change the figures.
      vi.useFakeTimers({ toFake: ['Date'] });
      const soon = { ...sendContext('telegram', fetch), deadlineMs: Date.now() + 18_000 };
      const sent = await adapter.send({ ...base, attachments: [attachment] }, soon);
      vi.useRealTimers();
      expect(sent, JSON.stringify(sent)).toMatchObject({ ok: true });
      expect(timeouts()).toEqual([9_000, 18_000]);

      // At the deadline a transfer gets a second, not the 10 s that would outlast the function.
      vi.mocked(AbortSignal.timeout).mockClear();
      const late = { ...sendContext('telegram', fetch), deadlineMs: Date.now() + 500 };
      await adapter.send({ ...base, attachments: [attachment] }, late);
      expect(timeouts()).toEqual([1_000, 1_000]);
    });

    it('gives AbortSignal.timeout whole milliseconds, whatever the deadline (a fraction throws)', () => {
      expect(transferTimeoutMs(20_000_000, 1_000_017.5, 1_000_000)).toBe(1_000);
      expect(transferTimeoutMs(20_000_000, 1_009_999.5, 1_000_000)).toBe(9_999);
      expect(halfwayTo(1_017_999, 1_000_000)).toBe(1_008_999);
    });

    it('a file whose size is not known is given the time of the largest document', async () => {
      const { fetch } = scriptedFetch({ status: 200, body: null, file: { contentType: DOCX, bytes } }, ok(100));
      await adapter.send({ ...base, attachments: [{ type: 'file', url: presigned, mimeType: DOCX, name: 'c.docx' }] }, sendContext('telegram', fetch));
      // The download: a document may be 20 MB; the upload: the 256 bytes it turned out to be.
      expect(timeouts()).toEqual([30_000, 10_001]);
    });

    it('an upload that times out is retryable, and says after how long', async () => {
      const timeout = Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });
      const { fetch } = scriptedFetch({ status: 200, body: null, file: { contentType: DOCX, bytes: Buffer.alloc(3_000_000) } }, timeout);
      const result = await adapter.send({ ...base, attachments: [{ type: 'file', url: presigned, mimeType: DOCX, name: 'c.docx', size: 3_000_000 }] }, sendContext('telegram', fetch));
      expect(result).toEqual({ ok: false, retryable: true, error: 'Network error: timed out after 13000 ms', unanswered: true });
    });
  });

  it('maps Telegram refusing the upload as it maps any answer', async () => {
    const { fetch } = scriptedFetch({ status: 200, body: null, file: { contentType: DOCX, bytes } }, { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: file must be non-empty' } });
    const result = await adapter.send({ ...base, attachments: [{ type: 'file', url: presigned, mimeType: DOCX, name: 'contract.docx' }] }, sendContext('telegram', fetch));
    expect(result).toEqual({ ok: false, retryable: false, error: '400: Bad Request: file must be non-empty' });
  });
});

describe('telegram normalize: replies', () => {
  const question = 'Shall we send a replacement? Or would you rather have your money back?';

  it('a reply names the message it answers as our ids take it (`<chat id>:<message id>`), with its words on one line', () => {
    expect(normalize('reply')).toEqual([
      {
        kind: 'message',
        ...ada,
        providerMessageId: '123456789:45',
        text: 'Yes please',
        attachments: [],
        replyTo: { providerMessageId: '123456789:44', text: question },
        sentAt: SENT_AT,
        dated: true,
      },
    ]);
  });

  it('names the message a send of ours recorded: the id our sendMessage got for it is the one the reply gives', async () => {
    const ok = { status: 200, body: { ok: true, result: { message_id: 44, chat: { id: 123456789 }, date: 1, text: question } } };
    const { fetch } = scriptedFetch(ok);
    const sent = await adapter.send({ to: '123456789', text: question, attachments: [], idempotencyKey: 'k', reference: 'c/k' }, sendContext('telegram', fetch));
    const [reply] = normalize('reply');
    expect(sent.ok && sent.providerMessageId).toBe(reply?.kind === 'message' && reply.replyTo?.providerMessageId);
  });

  it('the part the customer quoted is the excerpt; a caption serves when the message has no text; a long one is cut after a word', () => {
    expect(normalize('reply-quote')).toMatchObject([{ replyTo: { providerMessageId: '123456789:44', text: 'would you rather have your money back?' } }]);
    const photo = { message_id: 44, chat: { id: 123456789, type: 'private' }, date: 1749416300, photo: [{ file_id: 'p1', file_unique_id: 'u1', width: 90, height: 90 }], caption: 'This one?' };
    expect(update('message', { reply_to_message: photo })).toMatchObject([{ replyTo: { providerMessageId: '123456789:44', text: 'This one?' } }]);
    const [long] = update('message', { reply_to_message: { ...photo, caption: 'word '.repeat(100) } });
    const text = (long as { replyTo?: { text?: string } }).replyTo?.text ?? '';
    expect(text.length).toBeLessThanOrEqual(200);
    expect(text).toMatch(/^(word )+word…$/);
  });

  it('a file without words is named by id alone; an edit keeps what it answers', () => {
    const sticker = { message_id: 44, chat: { id: 123456789, type: 'private' }, date: 1749416300, sticker: { file_id: 's1', emoji: '👍' } };
    expect(update('message', { reply_to_message: sticker })).toMatchObject([{ replyTo: { providerMessageId: '123456789:44' } }]);
    expect((update('message', { reply_to_message: sticker })[0] as { replyTo?: object }).replyTo).not.toHaveProperty('text');
    expect(update('edited_message', { reply_to_message: sticker, edit_date: 1749416450 })).toMatchObject([{ replyTo: { providerMessageId: '123456789:44' } }]);
  });

  it('a forum topic\'s message answers its topic\'s first message: no reply; a reply within the topic is one', () => {
    const [topicMessage] = normalize('forum-topic');
    expect(topicMessage).toMatchObject({ handle: '-1001234567890/57', text: 'Ada Lovelace: How do I send the blender back?' });
    expect(topicMessage).not.toHaveProperty('replyTo');
    const { message } = JSON.parse(fixture('telegram', 'forum-topic')) as { message: Record<string, unknown> };
    const earlier = { message_id: 59, message_thread_id: 57, is_topic_message: true, chat: message.chat, date: 1749416350, text: 'Is the box needed?' };
    const body = JSON.stringify({ update_id: 10301, message: { ...message, reply_to_message: earlier } });
    expect(adapter.normalize(signedRequest('telegram', body), credentials)).toMatchObject([
      { handle: '-1001234567890/57', replyTo: { providerMessageId: '-1001234567890:59', text: 'Is the box needed?' } },
    ]);
  });

  it('a reply to a message of another chat (external_reply) names none of this conversation\'s', () => {
    const [event] = update('message', { external_reply: { origin: { type: 'channel', chat: { id: -100555, type: 'channel' }, message_id: 9, date: 1 } } });
    expect(event).not.toHaveProperty('replyTo');
  });
});

describe('telegram normalize: reactions (message_reaction)', () => {
  /** An Update whose message_reaction is the fixture's with `fields` replaced. */
  function reaction(fields: Record<string, unknown>, updateId = 10501) {
    const { message_reaction: base } = JSON.parse(fixture('telegram', 'message-reaction')) as { message_reaction: Record<string, unknown> };
    return adapter.normalize(signedRequest('telegram', JSON.stringify({ update_id: updateId, message_reaction: { ...base, ...fields } })), credentials);
  }
  const thumbsUp = { type: 'emoji', emoji: '👍' };
  const heart = { type: 'emoji', emoji: '❤' };

  it('is a message worded as the other channels word theirs, naming the message it is on as our ids take it', () => {
    expect(normalize('message-reaction')).toEqual([
      {
        kind: 'message',
        ...ada,
        providerMessageId: '123456789:44:reaction:123456789:1749416383:👍:10500',
        text: 'reacted 👍 to a message',
        attachments: [],
        replyTo: { providerMessageId: '123456789:44' },
        sentAt: SENT_AT,
        dated: true,
      },
    ]);
  });

  it('says what was added; a reaction taken away, with or without others left, is a removal', () => {
    expect(reaction({ old_reaction: [thumbsUp], new_reaction: [heart] })).toMatchObject([{ text: 'reacted ❤ to a message', replyTo: { providerMessageId: '123456789:44' } }]);
    expect(reaction({ old_reaction: [thumbsUp], new_reaction: [thumbsUp, heart] })).toMatchObject([{ text: 'reacted ❤ to a message' }]);
    expect(reaction({ old_reaction: [thumbsUp], new_reaction: [] })).toMatchObject([{ text: 'removed a reaction from a message', replyTo: { providerMessageId: '123456789:44' } }]);
    expect(reaction({ old_reaction: [thumbsUp, heart], new_reaction: [heart] })).toMatchObject([{ text: 'removed a reaction from a message' }]);
    // Nothing changed: nothing to say.
    expect(reaction({ old_reaction: [thumbsUp], new_reaction: [thumbsUp] })).toEqual([]);
  });

  it('reads a custom emoji, a paid star and a type not known yet as words, never as an empty reaction', () => {
    const custom = { type: 'custom_emoji', custom_emoji_id: '5368324170671202286' };
    expect(reaction({ new_reaction: [custom] })).toMatchObject([{ text: 'reacted with a custom emoji to a message' }]);
    expect(reaction({ new_reaction: [thumbsUp, custom] })).toMatchObject([{ text: 'reacted 👍 and a custom emoji to a message' }]);
    expect(reaction({ new_reaction: [{ type: 'paid' }] })).toMatchObject([{ text: 'reacted ⭐ to a message' }]);
    expect(reaction({ new_reaction: [{ type: 'sparkles_of_the_future' }] })).toMatchObject([{ text: 'reacted to a message' }]);
    // Swapping one custom emoji for another is a new reaction, under an id of its own.
    const [first] = reaction({ new_reaction: [custom] });
    const [second] = reaction({ old_reaction: [custom], new_reaction: [{ ...custom, custom_emoji_id: '5368324170671202287' }] });
    expect(second).toMatchObject({ text: 'reacted with a custom emoji to a message' });
    expect(first?.providerMessageId).not.toBe(second?.providerMessageId);
  });

  it('keeps one id across redeliveries of the same update, and another for each other reaction', () => {
    const [once] = normalize('message-reaction');
    const [again] = normalize('message-reaction');
    expect(again?.providerMessageId).toBe(once?.providerMessageId);
    const others = [
      reaction({ new_reaction: [heart] }),
      reaction({ date: 1749416390 }),
      reaction({ message_id: 45 }),
      reaction({ user: { id: 777, is_bot: false, first_name: 'Bob' } }),
      reaction({ old_reaction: [thumbsUp], new_reaction: [] }),
    ].map(([event]) => event?.providerMessageId);
    expect(new Set([once?.providerMessageId, ...others]).size).toBe(6);
  });

  it('tells a reaction taken back and given again within the second from a redelivery, by the update id', () => {
    const [given] = reaction({ old_reaction: [], new_reaction: [thumbsUp] }, 20001);
    const [taken] = reaction({ old_reaction: [thumbsUp], new_reaction: [] }, 20002);
    const [givenAgain] = reaction({ old_reaction: [], new_reaction: [thumbsUp] }, 20003);
    const [redelivered] = reaction({ old_reaction: [], new_reaction: [thumbsUp] }, 20003);
    expect(new Set([given, taken, givenAgain].map((event) => event?.providerMessageId)).size).toBe(3);
    expect(redelivered?.providerMessageId).toBe(givenAgain?.providerMessageId);
    // An update without its id (never from Telegram) still gets one from what it says.
    expect(adapter.normalize(signedRequest('telegram', JSON.stringify({ message_reaction: JSON.parse(fixture('telegram', 'message-reaction')).message_reaction })), credentials)).toMatchObject([
      { providerMessageId: '123456789:44:reaction:123456789:1749416383:👍' },
    ]);
  });

  it('in a group, is the group\'s, signed with the member\'s name, or the group\'s when an admin reacts anonymously', () => {
    const group = { id: -1001987654321, type: 'supergroup', title: 'Acme buyers' };
    expect(reaction({ chat: group })).toMatchObject([
      { handle: '-1001987654321', profile: { name: 'Acme buyers' }, text: 'Ada Lovelace: reacted 👍 to a message', replyTo: { providerMessageId: '-1001987654321:44' } },
    ]);
    const [anonymous] = reaction({ chat: group, user: undefined, actor_chat: group });
    expect(anonymous).toMatchObject({ handle: '-1001987654321', text: 'Acme buyers: reacted 👍 to a message' });
    expect(anonymous?.providerMessageId).toBe('-1001987654321:44:reaction:-1001987654321:1749416383:👍:10501');
  });

  it('takes none from bots or channels, nor the anonymous counts of message_reaction_count', () => {
    expect(reaction({ user: { id: 5, is_bot: true, first_name: 'Other bot' } })).toEqual([]);
    expect(reaction({ chat: { id: -1001111111111, type: 'channel', title: 'Acme news' }, user: undefined, actor_chat: { id: -1001111111111, title: 'Acme news' } })).toEqual([]);
    const counts = { chat: { id: -1001987654321, type: 'supergroup', title: 'Acme buyers' }, message_id: 44, date: 1749416383, reactions: [{ type: thumbsUp, total_count: 3 }] };
    expect(adapter.normalize(signedRequest('telegram', JSON.stringify({ update_id: 10502, message_reaction_count: counts })), credentials)).toEqual([]);
  });
});
