import { describe, expect, it } from 'vitest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import type { OutboundSend } from '../../src/channels/types';
import { whatsappAdapter as adapter } from '../../src/channels/whatsapp';
import { fixture, signedRequest } from '../fixtures/sign';
import { inboundDedupId, inboundGroupId } from '../../src/aws/queues';
import { DAY, HOUR, MINUTE, NOW, ago, networkError, scriptedFetch, sendContext } from './support';

const credentials = DEV_CREDENTIALS.whatsapp;
const SENT_AT = '2025-06-08T20:59:43.000Z';
const customer = { handle: '16505551234', profile: { name: 'Sheena Nelson', phone: '+16505551234' } };

function normalize(name: string) {
  return adapter.normalize(signedRequest('whatsapp', fixture('whatsapp', name)), credentials);
}

function only(name: string) {
  const events = normalize(name);
  expect(events).toHaveLength(1);
  return events[0];
}

describe('whatsapp normalize: messages', () => {
  it('text → the body, profile name and +E.164 phone, wamid and provider time', () => {
    expect(only('text')).toEqual({
      kind: 'message',
      channel: 'whatsapp',
      ...customer,
      providerMessageId: 'wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDAwMQA=',
      text: 'Does it come in another color?',
      attachments: [],
      sentAt: SENT_AT,
        dated: true,
    });
  });

  it.each([
    ['image', 'This one, please', { type: 'image', url: 'whatsapp-media://1003383421387256', mimeType: 'image/jpeg' }],
    ['audio', '', { type: 'audio', url: 'whatsapp-media://1003383421387257', mimeType: 'audio/ogg; codecs=opus' }],
    ['video', 'Unboxing', { type: 'video', url: 'whatsapp-media://1003383421387258', mimeType: 'video/mp4' }],
    [
      'document',
      'My invoice',
      { type: 'file', url: 'whatsapp-media://1003383421387259', mimeType: 'application/pdf', name: 'invoice-0042.pdf' },
    ],
    ['sticker', '', { type: 'sticker', url: 'whatsapp-media://1003383421387260', mimeType: 'image/webp' }],
  ])('%s → caption as text and a whatsapp-media:// reference', (name, text, attachment) => {
    expect(only(name)).toMatchObject({ ...customer, text, attachments: [attachment], sentAt: SENT_AT });
  });

  it('location → a readable pin with the place’s name, address and page, and a geo: attachment', () => {
    expect(only('location')).toMatchObject({
      text: '📍 37.483307,-122.148981 (Main office, 1 Hacker Way, Menlo Park, CA 94025)\nhttps://example.com',
      attachments: [{ type: 'location', url: 'geo:37.483307,-122.148981' }],
    });
  });

  it('contacts → "Shared contact: name phone" and a tel: attachment', () => {
    expect(only('contacts')).toMatchObject({
      providerMessageId: 'wamid.CONTACTS1',
      text: 'Shared contact: Barbara J. Johnson +1 (940) 555-1234',
      attachments: [{ type: 'contact', url: 'tel:+19405551234', name: 'Barbara J. Johnson' }],
    });
  });

  it('a card with several numbers and emails → every one of them, a tel: attachment each; a card with an email alone → its email', () => {
    expect(only('contacts-several')).toMatchObject({
      providerMessageId: 'wamid.CONTACTS2',
      text: 'Shared contact: Barbara J. Johnson +1 (940) 555-1234, +1 (650) 555-1234, bjohnson@example.com\nShared contact: Front desk desk@example.com',
      attachments: [
        { type: 'contact', url: 'tel:+19405551234', name: 'Barbara J. Johnson' },
        { type: 'contact', url: 'tel:+16505551234', name: 'Barbara J. Johnson' },
      ],
    });
  });

  it('interactive button and list replies and template quick replies → the chosen title', () => {
    expect(only('interactive-button-reply')).toMatchObject({ providerMessageId: 'wamid.BTNREPLY1', text: 'Change' });
    expect(only('interactive-list-reply')).toMatchObject({ providerMessageId: 'wamid.LISTREPLY1', text: 'Express Shipping' });
    expect(only('button')).toMatchObject({ providerMessageId: 'wamid.QUICKREPLY1', text: 'Stop promotions' });
  });

  it('an order from the catalog → each product with its quantity and price, and the customer’s note', () => {
    expect(only('order')).toMatchObject({
      ...customer,
      providerMessageId: 'wamid.ORDER1',
      text: '🛒 Order\n• 2 × SKU-RED-M, 19.99 USD each\n• 1 × SKU-CAP, 12 USD each\nGift wrap, please',
      attachments: [],
    });
  });

  it('a filled-in Flow → its answers, not the fixed "Sent" alone (the flow token is no answer)', () => {
    expect(only('flow-reply')).toMatchObject({ providerMessageId: 'wamid.FLOW1', text: 'Sent\nsize: M\ncolour: blue\nnewsletter: true' });
    const body = JSON.parse(fixture('whatsapp', 'flow-reply'));
    body.entry[0].changes[0].value.messages[0].interactive.nfm_reply.response_json = 'not json';
    expect(adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials)).toMatchObject([{ text: 'Sent' }]);
  });

  it('a call permission reply → accepted until its expiry or for good, or declined; one with no answer stays the placeholder', () => {
    const reply = (callPermission: Record<string, unknown>) => {
      const body = JSON.parse(fixture('whatsapp', 'interactive-button-reply'));
      body.entry[0].changes[0].value.messages[0].interactive = { type: 'call_permission_reply', call_permission_reply: callPermission };
      const [event] = adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials);
      return event?.kind === 'message' ? event.text : undefined;
    };
    expect(reply({ response: 'accept', is_permanent: false, expiration_timestamp: 1749502783, response_source: 'user_action' })).toBe('📞 Allowed calls from the business until 2025-06-09T20:59:43.000Z');
    expect(reply({ response: 'accept', is_permanent: true, response_source: 'user_action' })).toBe('📞 Allowed calls from the business for good');
    expect(reply({ response: 'accept', is_permanent: false, expiration_timestamp: '1749502783', response_source: 'automatic' })).toBe('📞 Allowed calls from the business until 2025-06-09T20:59:43.000Z (automatically)');
    expect(reply({ response: 'reject', is_permanent: false, response_source: 'user_action' })).toBe('📞 Declined calls from the business');
    expect(reply({ is_permanent: false })).toBe('[unsupported message type: interactive call_permission_reply]');
  });

  it('a question from a product’s button, a message from an ad, a forward → the product, the ad or the forward on a line of its own', () => {
    expect(only('product-question')).toMatchObject({ ...customer, providerMessageId: 'wamid.PRODUCTQ1', text: 'Is this available in size M?\n[about product SKU-RED-M]' });
    expect(only('ad-referral')).toMatchObject({ providerMessageId: 'wamid.ADREF1', text: 'Hi! I saw your ad\n[from an ad: Spring sale: 30% off https://fb.me/3cr4Wqqkk]' });
    const body = JSON.parse(fixture('whatsapp', 'image'));
    body.entry[0].changes[0].value.messages[0].context = { forwarded: true };
    expect(adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials)).toMatchObject([{ text: 'This one, please\n[forwarded]', attachments: [{ type: 'image' }] }]);
  });

  it('reaction → "reacted 👍 to a message", naming the message it is on (replyTo) as a swipe-reply does', () => {
    expect(only('reaction')).toMatchObject({ providerMessageId: 'wamid.REACTION1', text: 'reacted 👍 to a message', attachments: [], replyTo: { providerMessageId: 'wamid.OUTBOUND3' } });
    const body = JSON.parse(fixture('whatsapp', 'reaction'));
    const message = body.entry[0].changes[0].value.messages[0];
    // Removed (an empty emoji): still on that message. No usable id: the reaction kept, naming none.
    message.reaction = { message_id: 'wamid.OUTBOUND3', emoji: '' };
    expect(adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials)).toMatchObject([{ text: 'removed a reaction from a message', replyTo: { providerMessageId: 'wamid.OUTBOUND3' } }]);
    message.reaction = { message_id: 42, emoji: '👍' };
    const [event] = adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials);
    expect(event).toMatchObject({ text: 'reacted 👍 to a message' });
    expect(event).not.toHaveProperty('replyTo');
  });

  it('an edit (text or caption) → "(edited)" and the new wording, under the edit’s own id; a deletion → nothing', () => {
    expect(only('edit')).toEqual({
      kind: 'message',
      channel: 'whatsapp',
      ...customer,
      providerMessageId: 'wamid.EDIT1',
      text: '(edited) Does it come in another colour?',
      attachments: [],
      sentAt: '2025-06-08T21:00:50.000Z',
      dated: true,
    });
    // The file is on the original message already: the edit changes its caption only.
    expect(only('edit-media')).toMatchObject({ providerMessageId: 'wamid.EDIT2', text: '(edited) This one, in blue', attachments: [] });
    expect(normalize('revoke')).toEqual([]);
  });

  it('request_welcome (the customer opened the chat for the first time) → "opened the chat", not a type placeholder', () => {
    const body = JSON.parse(fixture('whatsapp', 'text'));
    const message = body.entry[0].changes[0].value.messages[0];
    delete message.text;
    Object.assign(message, { id: 'wamid.WELCOME1', type: 'request_welcome' });
    expect(adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials)).toMatchObject([{ ...customer, providerMessageId: 'wamid.WELCOME1', text: 'opened the chat', attachments: [] }]);
  });

  it('unsupported and unknown types are kept with a readable fallback', () => {
    expect(only('unsupported')).toMatchObject({ providerMessageId: 'wamid.UNSUPPORTED1', text: '[unsupported message type: edit]' });
    expect(only('unknown-type')).toMatchObject({ providerMessageId: 'wamid.POLL1', text: '[unsupported message type: poll]' });
  });

  it('a customer who keeps their number hidden behind a username → their business-scoped user id (BSUID) as the handle, their name, no phone', () => {
    expect(only('username')).toEqual({
      kind: 'message',
      channel: 'whatsapp',
      handle: 'US.13491208655302741918',
      profile: { name: 'Kofi Mensah' },
      providerMessageId: 'wamid.HBgLVVNFUk5BTUUxFQIAEhgUM0EwMDAwMDAwMDAwMDAwMDAwMDEA',
      text: 'Hi, I write under my username',
      attachments: [],
      sentAt: SENT_AT,
      dated: true,
    });
    // With the number given too (Meta still shares it for recent contacts), the number stays the handle.
    const body = JSON.parse(fixture('whatsapp', 'username'));
    const value = body.entry[0].changes[0].value;
    value.messages[0].from = '16505551234';
    value.contacts[0].wa_id = '16505551234';
    expect(adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials)).toMatchObject([{ handle: '16505551234', profile: { name: 'Kofi Mensah', phone: '+16505551234' } }]);
  });

  it('a message naming both the number and the BSUID → the number as the handle, the BSUID as the other handle that links to it', () => {
    const both = (edit: (value: { contacts: Record<string, unknown>[]; messages: Record<string, unknown>[] }) => void) => {
      const body = JSON.parse(fixture('whatsapp', 'username'));
      edit(body.entry[0].changes[0].value);
      return adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials)[0];
    };
    const withNumber = both((value) => {
      value.messages[0]!.from = '16505551234';
      value.contacts[0]!.wa_id = '16505551234';
    });
    expect(withNumber).toMatchObject({ handle: '16505551234', otherHandle: 'US.13491208655302741918', profile: { phone: '+16505551234' } });
    // Only the contact entry of that number gives it (Meta's contacts[].user_id beside wa_id).
    const fromContact = both((value) => {
      Object.assign(value.messages[0]!, { from: '16505551234', from_user_id: undefined });
      value.contacts[0]!.wa_id = '16505551234';
    });
    expect(fromContact).toMatchObject({ handle: '16505551234', otherHandle: 'US.13491208655302741918' });
    const otherNumber = both((value) => {
      Object.assign(value.messages[0]!, { from: '16505551234', from_user_id: undefined });
      value.contacts[0]!.wa_id = '447700900123';
    });
    expect(otherNumber).not.toHaveProperty('otherHandle');
    // A BSUID alone is the handle itself; a number alone links nothing.
    expect(only('username')).not.toHaveProperty('otherHandle');
    expect(only('text')).not.toHaveProperty('otherHandle');
  });

  describe('a customer who changed their number (system, user_changed_number)', () => {
    const notice = {
      kind: 'message',
      channel: 'whatsapp',
      handle: '16505551234',
      profile: { phone: '+16505551234' },
      providerMessageId: 'wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDAwOQA=',
      text: 'User Sheena Nelson changed from 16505551234 to 16505559876',
      attachments: [],
      sentAt: SENT_AT,
      dated: true,
    };
    const moved = { kind: 'moved', channel: 'whatsapp', handle: '16505559876', from: '16505551234', profile: { phone: '+16505559876' } };
    const changed = (edit: (message: Record<string, unknown> & { system: Record<string, unknown> }) => void) => {
      const body = JSON.parse(fixture('whatsapp', 'system-changed-number'));
      edit(body.entry[0].changes[0].value.messages[0]);
      return adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials);
    };

    it('→ the notice as the message it is, and a move of the conversation from the old number to the new one', () => {
      expect(normalize('system-changed-number')).toEqual([notice, moved]);
      const [, move] = normalize('system-changed-number');
      // In the new number's lane, so it runs before that number's next messages; a redelivered notice is the same move.
      expect(inboundGroupId(move!)).toBe(inboundGroupId({ channel: 'whatsapp', handle: '16505559876' }));
      expect(inboundDedupId(move!)).toBe(inboundDedupId(normalize('system-changed-number')[1]!));
    });

    it('a customer known by their BSUID alone → moved from it when the new number is named, else the notice alone', () => {
      const bsuid = 'US.13491208655302741918';
      const { profile: _noPhone, ...byBsuid } = { ...notice, handle: bsuid };
      expect(changed((m) => Object.assign(m, { from: undefined, from_user_id: bsuid }))).toEqual([byBsuid, { ...moved, from: bsuid }]);
      expect(changed((m) => Object.assign(m, { from: undefined, from_user_id: bsuid, system: { ...m.system, wa_id: undefined } }))).toEqual([byBsuid]);
    });

    it('moves nothing for another notice, a wa_id that is no number, or the same number in its other form', () => {
      expect(changed((m) => (m.system.type = 'user_changed_user_id'))).toEqual([notice]);
      expect(changed((m) => (m.system.wa_id = 16505559876))).toEqual([notice]);
      expect(changed((m) => (m.system.wa_id = ''))).toEqual([notice]);
      // A Brazilian mobile with and without its ninth digit is one handle already.
      expect(changed((m) => Object.assign(m, { from: '5511987654321', system: { ...m.system, wa_id: '551187654321' } }))).toEqual([
        { ...notice, handle: '5511987654321', profile: { phone: '+5511987654321' } },
      ]);
    });
  });

  it('a batch of several customers → each message takes its own sender’s name, found in the other form of their number too, else none', () => {
    const body = JSON.parse(fixture('whatsapp', 'text'));
    const value = body.entry[0].changes[0].value;
    const text = (id: string, from: string) => ({ from, id, timestamp: '1749416383', type: 'text', text: { body: id } });
    // An older Brazilian account: the contact's wa_id without the ninth digit, the message's number with it.
    value.contacts = [{ profile: { name: 'Oliver Smith' }, wa_id: '447700900123' }, { profile: { name: 'Ana Lima' }, wa_id: '553188887777' }];
    value.messages = [text('wamid.BR1', '5531988887777'), text('wamid.NONE1', '4915112345678')];
    const events = adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials);
    expect(events.map((e) => (e.kind === 'message' ? [e.handle, e.profile] : undefined))).toEqual([
      ['5531988887777', { phone: '+5531988887777', name: 'Ana Lima' }],
      // Named by no entry of the batch: another customer's name would be a guess.
      ['4915112345678', { phone: '+4915112345678' }],
    ]);
  });

  it('several messages and entries → one event each, each with its own sender profile', () => {
    // The second entry's number is another business number: ours when it is the one configured.
    const events = adapter.normalize(signedRequest('whatsapp', fixture('whatsapp', 'multiple')), { ...credentials, phoneNumberId: '100000000000002' });
    const both = [...normalize('multiple'), ...events];
    expect(both.map((e) => [e.kind === 'message' && e.handle, e.kind === 'message' && e.profile?.name, e.kind === 'message' && e.text])).toEqual([
      ['16505551234', 'Sheena Nelson', 'First'],
      ['447700900123', 'Oliver Smith', 'Second, other customer'],
      ['5511987654321', 'Ana Lima', 'Third, second entry'],
    ]);
    expect(both[2]).toMatchObject({ providerMessageId: 'wamid.MULTI3', sentAt: '2025-06-08T21:00:00.000Z' });
  });

  it('ignores a message written in a WhatsApp group (Groups API, group_id): filed under its member, a reply would go to them alone', () => {
    const body = JSON.parse(fixture('whatsapp', 'text'));
    const value = body.entry[0].changes[0].value;
    const direct = value.messages[0];
    value.messages = [{ ...direct, id: 'wamid.GROUP1', group_id: 'Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjM0MDQ2OTQyMzM4MjA', text: { body: 'What do you all think?' } }, direct];
    // The same member's own message beside it still counts.
    expect(adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials)).toMatchObject([{ ...customer, providerMessageId: direct.id, text: 'Does it come in another color?' }]);
  });

  it('ignores what another number of the business account received: replies go from ours, and its customers’ windows are with that number', () => {
    expect(normalize('multiple').map((e) => e.providerMessageId)).toEqual(['wamid.MULTI1', 'wamid.MULTI2']);
    const statuses = JSON.parse(fixture('whatsapp', 'statuses'));
    statuses.entry[0].changes[0].value.metadata.phone_number_id = '100000000000009';
    expect(adapter.normalize(signedRequest('whatsapp', JSON.stringify(statuses)), credentials)).toEqual([]);
  });
});

describe('whatsapp normalize: echoes of what the team sent from the WhatsApp Business app (coexistence)', () => {
  /** A smb_message_echoes webhook of the dev number around `echoes`, in the shape of whatsapp/smb-message-echoes.json. */
  function echoes(list: unknown, phoneNumberId = '100000000000001'): string {
    const body = JSON.parse(fixture('whatsapp', 'smb-message-echoes'));
    body.entry[0].changes[0].value.message_echoes = list;
    body.entry[0].changes[0].value.metadata.phone_number_id = phoneNumberId;
    return JSON.stringify(body);
  }

  it('a text or media echo → the team’s message in the conversation of the customer it went `to` (digits only, as a wa_id), no customer profile', () => {
    expect(normalize('smb-message-echoes')).toEqual([
      {
        kind: 'message',
        channel: 'whatsapp',
        handle: '16505551234',
        providerMessageId: 'wamid.ECHO1',
        text: 'Yes, it comes in blue and in green.',
        attachments: [],
        sentAt: '2025-06-08T21:00:20.000Z',
        dated: true,
        echo: { name: 'WhatsApp Business app' },
      },
      {
        kind: 'message',
        channel: 'whatsapp',
        // Meta's reference writes `to` with a plus: the same customer.
        handle: '16505551234',
        providerMessageId: 'wamid.ECHO2',
        text: 'The blue one',
        attachments: [{ type: 'image', url: 'whatsapp-media://1003383421387261', mimeType: 'image/jpeg' }],
        sentAt: '2025-06-08T21:00:25.000Z',
        dated: true,
        echo: { name: 'WhatsApp Business app' },
      },
    ]);
  });

  it('an unknown type is kept with the readable fallback; a deletion (revoke) adds nothing', () => {
    const body = echoes([
      { from: '15550783881', to: '16505551234', id: 'wamid.ECHOPOLL', timestamp: '1749416420', type: 'poll', poll: {} },
      { from: '15550783881', to: '16505551234', id: 'wamid.ECHOREVOKE', timestamp: '1749416421', type: 'revoke', revoke: { original_message_id: 'wamid.ECHO1' } },
    ]);
    expect(adapter.normalize(signedRequest('whatsapp', body), credentials)).toMatchObject([
      { handle: '16505551234', providerMessageId: 'wamid.ECHOPOLL', text: '[unsupported message type: poll]', echo: { name: 'WhatsApp Business app' } },
    ]);
  });

  it('drops a malformed echo without throwing and keeps the good ones beside it', () => {
    const good = { from: '15550783881', to: '16505551234', id: 'wamid.ECHOGOOD', timestamp: '1749416420', type: 'text', text: { body: 'kept' } };
    const body = echoes([
      null,
      'not an echo',
      { ...good, to: undefined, id: 'wamid.NOTO' },
      { ...good, to: 16505551234, id: 'wamid.NUMBERTO' },
      { ...good, to: '+', id: 'wamid.NODIGITS' },
      { ...good, id: undefined },
      { ...good, id: 42 },
      good,
    ]);
    const events = adapter.normalize(signedRequest('whatsapp', body), credentials);
    expect(events.map((e) => e.providerMessageId)).toEqual(['wamid.ECHOGOOD']);
    expect(adapter.normalize(signedRequest('whatsapp', echoes({ not: 'a list' })), credentials)).toEqual([]);
  });

  it('ignores what another number of the business account sent from its app; takes it when that number is the one configured', () => {
    const body = echoes([{ from: '15550783899', to: '16505551234', id: 'wamid.OTHER', timestamp: '1749416420', type: 'text', text: { body: 'not ours' } }], '100000000000009');
    expect(adapter.normalize(signedRequest('whatsapp', body), credentials)).toEqual([]);
    expect(adapter.normalize(signedRequest('whatsapp', body), { ...credentials, phoneNumberId: '100000000000009' })).toMatchObject([{ providerMessageId: 'wamid.OTHER', echo: {} }]);
  });
});

describe('whatsapp normalize: statuses', () => {
  it('maps sent/delivered/read/failed, keeps the error, ignores other states', () => {
    expect(normalize('statuses')).toEqual([
      { kind: 'status', channel: 'whatsapp', handle: '16505551234', providerMessageId: 'wamid.OUT1', status: 'sent', at: '2025-06-08T21:01:40.000Z' },
      // The reference our send set comes back as biz_opaque_callback_data.
      {
        kind: 'status',
        channel: 'whatsapp',
        handle: '16505551234',
        providerMessageId: 'wamid.OUT1',
        status: 'delivered',
        at: '2025-06-08T21:01:41.000Z',
        reference: '01JV8Q1Z0000000000000000C1/01JV8Q1Z0000000000000000M1',
      },
      { kind: 'status', channel: 'whatsapp', handle: '16505551234', providerMessageId: 'wamid.OUT1', status: 'read', at: '2025-06-08T21:02:40.000Z' },
      {
        kind: 'status',
        channel: 'whatsapp',
        handle: '16505551234',
        providerMessageId: 'wamid.OUT2',
        status: 'failed',
        at: '2025-06-08T21:03:20.000Z',
        error:
          'Re-engagement message: Message failed to send because more than 24 hours have passed since the customer last replied to this number. (code 131047)',
      },
    ]);
  });

  it('a status of a send to a BSUID (no recipient_id) → that BSUID as the handle', () => {
    const body = JSON.parse(fixture('whatsapp', 'statuses'));
    const value = body.entry[0].changes[0].value;
    value.statuses = [{ id: 'wamid.OUTBS', status: 'delivered', timestamp: '1749416501', recipient_user_id: 'US.13491208655302741918', biz_opaque_callback_data: 'C/M' }];
    expect(adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials)).toEqual([
      { kind: 'status', channel: 'whatsapp', handle: 'US.13491208655302741918', providerMessageId: 'wamid.OUTBS', status: 'delivered', at: '2025-06-08T21:01:41.000Z', reference: 'C/M' },
    ]);
  });

  it('uses the receive time when the provider gives no timestamp', () => {
    const body = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ changes: [{ field: 'messages', value: { messages: [{ from: '1555', id: 'wamid.X', type: 'text', text: { body: 'hi' } }] } }] }],
    });
    const before = Date.now();
    const [event] = adapter.normalize(signedRequest('whatsapp', body), credentials);
    expect(event).toMatchObject({ handle: '1555', profile: { phone: '+1555' }, text: 'hi' });
    expect(Date.parse(event?.kind === 'message' ? event.sentAt : '')).toBeGreaterThanOrEqual(before);
    // Not dated by the provider: a late copy could not be told by its time, so it keeps an idempotency record.
    expect(event).not.toHaveProperty('dated');
  });
});

describe('whatsapp normalize: times out of range', () => {
  it.each(['99999999999999', '1e20', '-5', String(Math.floor(Date.now() / 1000) + 3 * 86400)])('dates a message stamped %s now, not by the provider', (timestamp) => {
    const body = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ changes: [{ field: 'messages', value: { messages: [{ from: '1555', id: 'wamid.T', timestamp, type: 'text', text: { body: 'hi' } }] } }] }],
    });
    const before = Date.now();
    const [event] = adapter.normalize(signedRequest('whatsapp', body), credentials);
    expect(Date.parse(event?.kind === 'message' ? event.sentAt : '')).toBeGreaterThanOrEqual(before);
    expect(event).not.toHaveProperty('dated');
  });
});

describe('whatsapp normalize: malformed elements', () => {
  it('keeps the batch’s good message when a contacts message holds a null card and a numeric phone', () => {
    const body = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ changes: [{ field: 'messages', value: {
        contacts: [null],
        messages: [
          { from: '1555', id: 'wamid.GOOD', timestamp: '1749416383', type: 'text', text: { body: 'hi' } },
          { from: '1555', id: 'wamid.CARDS', timestamp: '1749416384', type: 'contacts', contacts: [null, { name: { formatted_name: 'Bob' }, phones: [{ phone: 12345 }] }] },
        ],
      } }] }],
    });
    const events = adapter.normalize(signedRequest('whatsapp', body), credentials);
    expect(events.map((e) => (e.kind === 'message' ? e.providerMessageId : undefined))).toEqual(['wamid.GOOD', 'wamid.CARDS']);
    expect(events[1]).toMatchObject({ text: 'Shared contact: Bob', attachments: [] });
  });
});

describe('whatsapp window', () => {
  it('allows free-form replies inside 24 h', () => {
    expect(adapter.window(ago(23 * HOUR + 59 * MINUTE), NOW, false)).toEqual({ allowed: true });
  });

  it('requires a template after 24 h and when the customer never wrote', () => {
    for (const last of [ago(24 * HOUR + MINUTE), ago(7 * DAY + MINUTE), undefined]) {
      const decision = adapter.window(last, NOW, false);
      expect(decision).toMatchObject({ allowed: false, code: 'template_required' });
      expect(decision.allowed === false && decision.message).toMatch(/template/);
    }
  });

  it('allows a template at any time', () => {
    expect(adapter.window(ago(24 * HOUR + MINUTE), NOW, true)).toEqual({ allowed: true });
    expect(adapter.window(undefined, NOW, true)).toEqual({ allowed: true });
  });
});

describe('whatsapp send', () => {
  const base: OutboundSend = { to: '16505551234', text: 'Yes, in blue too.', attachments: [], idempotencyKey: '01JMSG0001', reference: '01JCONV0001/01JMSG0001' };
  const ok = { status: 200, body: { messaging_product: 'whatsapp', contacts: [{ input: '16505551234', wa_id: '16505551234' }], messages: [{ id: 'wamid.SENT1' }] } };

  it('posts a text message to /{phone-number-id}/messages with the bearer token', async () => {
    const { fetch, calls } = scriptedFetch(ok);
    const result = await adapter.send(base, sendContext('whatsapp', fetch));
    expect(result).toEqual({ ok: true, providerMessageId: 'wamid.SENT1' });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.url).toBe(`https://provider.test/whatsapp/${credentials.phoneNumberId}/messages`);
    expect(calls[0]?.method).toBe('POST');
    expect(calls[0]?.headers.authorization).toBe(`Bearer ${credentials.accessToken}`);
    expect(calls[0]?.signal).toBeInstanceOf(AbortSignal);
    expect(calls[0]?.json()).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '16505551234',
      type: 'text',
      text: { body: 'Yes, in blue too.', preview_url: false },
      biz_opaque_callback_data: '01JCONV0001/01JMSG0001',
    });
  });

  it('addresses a customer known by their BSUID alone as `recipient`, not `to`', async () => {
    const { fetch, calls } = scriptedFetch(ok);
    const result = await adapter.send({ ...base, to: 'US.13491208655302741918' }, sendContext('whatsapp', fetch));
    expect(result).toEqual({ ok: true, providerMessageId: 'wamid.SENT1' });
    const body = calls[0]!.json();
    expect(body).toMatchObject({ messaging_product: 'whatsapp', recipient: 'US.13491208655302741918', type: 'text' });
    expect(body).not.toHaveProperty('to');
  });

  it('sends a template with body parameters', async () => {
    const { fetch, calls } = scriptedFetch(ok);
    await adapter.send({ ...base, template: { name: 'order_update', language: 'pt_BR', params: ['Ana', '#42'] } }, sendContext('whatsapp', fetch));
    expect(calls[0]?.json()).toMatchObject({
      type: 'template',
      template: {
        name: 'order_update',
        language: { code: 'pt_BR' },
        components: [{ type: 'body', parameters: [{ type: 'text', text: 'Ana' }, { type: 'text', text: '#42' }] }],
      },
    });
    expect(calls[0]?.json()).not.toHaveProperty('text');
  });

  it('puts the text in the caption of the first image and sends further documents by link', async () => {
    const { fetch, calls } = scriptedFetch(ok, { status: 200, body: { messages: [{ id: 'wamid.SENT2' }] } });
    const result = await adapter.send(
      {
        ...base,
        attachments: [
          { type: 'image', url: 'https://cdn.example.com/a.jpg' },
          { type: 'file', url: 'https://cdn.example.com/b.pdf', name: 'b.pdf' },
        ],
      },
      sendContext('whatsapp', fetch),
    );
    expect(result).toEqual({ ok: true, providerMessageId: 'wamid.SENT1', otherIds: ['wamid.SENT2'] });
    expect(calls.map((c) => c.json())).toMatchObject([
      { type: 'image', image: { link: 'https://cdn.example.com/a.jpg', caption: 'Yes, in blue too.' } },
      { type: 'document', document: { link: 'https://cdn.example.com/b.pdf', filename: 'b.pdf' } },
    ]);
  });

  it('sends a text longer than a message allows as several, in order; the first is the message', async () => {
    const { fetch, calls } = scriptedFetch(ok, { status: 200, body: { messages: [{ id: 'wamid.SENT2' }] } });
    const text = `${'a'.repeat(3000)}\n\n${'b'.repeat(3000)}`;
    const result = await adapter.send({ ...base, text }, sendContext('whatsapp', fetch));
    expect(result).toEqual({ ok: true, providerMessageId: 'wamid.SENT1', otherIds: ['wamid.SENT2'] });
    expect(calls.map((c) => c.json().text)).toEqual([{ body: 'a'.repeat(3000), preview_url: false }, { body: 'b'.repeat(3000), preview_url: false }]);
    expect(calls.every((c) => c.json().biz_opaque_callback_data === base.reference)).toBe(true);
  });

  it('sends a text longer than a caption allows before the image, not as its caption', async () => {
    const { fetch, calls } = scriptedFetch(ok);
    await adapter.send({ ...base, text: 'x'.repeat(1025), attachments: [{ type: 'image', url: 'https://cdn.example.com/a.jpg' }] }, sendContext('whatsapp', fetch));
    expect(calls.map((c) => c.json())).toMatchObject([{ type: 'text' }, { type: 'image', image: { link: 'https://cdn.example.com/a.jpg' } }]);
    expect(calls[1]?.json().image).not.toHaveProperty('caption');
  });

  it('sends the text first when the attachment takes no caption', async () => {
    const { fetch, calls } = scriptedFetch(ok);
    await adapter.send({ ...base, attachments: [{ type: 'audio', url: 'https://cdn.example.com/a.ogg' }] }, sendContext('whatsapp', fetch));
    expect(calls.map((c) => c.json().type)).toEqual(['text', 'audio']);
  });

  it.each([
    [429, { error: { message: '(#130429) Rate limit hit', code: 130429 } }, true],
    [500, { error: { message: 'An unknown error has occurred.', code: 1 } }, true],
    [503, 'Service Unavailable', true],
    [400, { error: { message: '(#100) Invalid parameter', type: 'OAuthException', code: 100, error_data: { details: 'Parameter to is invalid' } } }, false],
    [401, { error: { message: 'Invalid OAuth access token', type: 'OAuthException', code: 190 } }, false],
    [400, { error: { message: '(#130429) Rate limit hit', code: 130429 } }, true],
  ])('maps HTTP %i to retryable=%s with the provider message', async (status, body, retryable) => {
    const { fetch } = scriptedFetch({ status, body });
    const result = await adapter.send(base, sendContext('whatsapp', fetch));
    expect(result).toMatchObject({ ok: false, retryable });
    expect(result.ok === false && result.error).toContain(String(status));
    if (typeof body === 'object') expect(result.ok === false && result.error).toContain(body.error.message);
  });

  it('keeps the Graph error details in the message for a permanent error', async () => {
    const { fetch } = scriptedFetch({ status: 400, body: { error: { message: '(#100) Invalid parameter', code: 100, error_data: { details: 'Parameter to is invalid' } } } });
    expect(await adapter.send(base, sendContext('whatsapp', fetch))).toEqual({
      ok: false,
      retryable: false,
      error: '400: (#100) Invalid parameter: Parameter to is invalid (code 100)',
    });
  });

  it('reads a Graph error object that comes with a 200 as the refusal it is, retryable by its code', async () => {
    const transient = scriptedFetch({ status: 200, body: { error: { message: 'An unexpected error has occurred. Please retry your request later.', code: 2, is_transient: true } } });
    expect(await adapter.send(base, sendContext('whatsapp', transient.fetch))).toEqual({
      ok: false,
      retryable: true,
      error: '200: An unexpected error has occurred. Please retry your request later. (code 2)',
    });
    const closed = scriptedFetch({ status: 200, body: { error: { message: 'Re-engagement message', code: 131047, error_data: { details: 'More than 24 hours have passed since the recipient last replied' } } } });
    expect(await adapter.send(base, sendContext('whatsapp', closed.fetch))).toEqual({
      ok: false,
      retryable: false,
      error: '200: Re-engagement message: More than 24 hours have passed since the recipient last replied (code 131047)',
    });
  });

  it('treats a network error or a timeout as retryable, and as unanswered (WhatsApp may have taken it)', async () => {
    const failed = scriptedFetch(networkError());
    expect(await adapter.send(base, sendContext('whatsapp', failed.fetch))).toMatchObject({ ok: false, retryable: true, error: expect.stringContaining('fetch failed'), unanswered: true });
    const timeout = scriptedFetch(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    expect(await adapter.send(base, sendContext('whatsapp', timeout.fetch))).toMatchObject({ ok: false, retryable: true, error: expect.stringContaining('timed out'), unanswered: true });
    // An answer, even "later", says the part was not taken.
    const refused = scriptedFetch({ status: 503, body: { error: { message: 'Service unavailable', code: 2 } } });
    expect(await adapter.send(base, sendContext('whatsapp', refused.fetch))).not.toHaveProperty('unanswered');
  });

  it('does not call the API without an access token', async () => {
    const { fetch, calls } = scriptedFetch(ok);
    const result = await adapter.send(base, { ...sendContext('whatsapp', fetch), credentials: { ...credentials, accessToken: '' } });
    expect(result).toMatchObject({ ok: false, retryable: false });
    expect(calls).toHaveLength(0);
  });
});

describe('whatsapp normalize: replies', () => {
  const ourQuestion = 'wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJBQkNERUYwMTIzNDU2Nzg5AA==';

  it('a swipe-reply names the message it answers by its wamid, the id our sends and the customer\'s messages keep; WhatsApp gives no words of it', () => {
    expect(only('reply')).toEqual({
      kind: 'message',
      channel: 'whatsapp',
      ...customer,
      providerMessageId: 'wamid.REPLY1',
      text: 'Yes',
      attachments: [],
      replyTo: { providerMessageId: ourQuestion },
      sentAt: SENT_AT,
      dated: true,
    });
  });

  it('a forward answers nothing; an id that is no usable string is left out and the message kept', () => {
    const body = JSON.parse(fixture('whatsapp', 'reply'));
    const message = body.entry[0].changes[0].value.messages[0];
    const withContext = (context: unknown) => {
      message.context = context;
      return adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials);
    };
    expect(withContext({ forwarded: true })[0]).not.toHaveProperty('replyTo');
    for (const id of [42, '', 'w'.repeat(600)]) {
      const [event] = withContext({ from: '15550783881', id });
      expect(event).toMatchObject({ providerMessageId: 'wamid.REPLY1', text: 'Yes' });
      expect(event).not.toHaveProperty('replyTo');
    }
  });

  it('a message the team sent from the WhatsApp Business app in answer to one keeps what it answers', () => {
    const body = JSON.parse(fixture('whatsapp', 'smb-message-echoes'));
    const echo = body.entry[0].changes[0].value.message_echoes[0];
    echo.context = { from: '16505551234', id: 'wamid.CUSTOMER1' };
    expect(adapter.normalize(signedRequest('whatsapp', JSON.stringify(body)), credentials)[0]).toMatchObject({ echo: {}, replyTo: { providerMessageId: 'wamid.CUSTOMER1' } });
  });
});
