/**
 * A customer's media, as the agent console opens it: WhatsApp, Telegram and Twilio files, and
 * Messenger's and Instagram's CDN links, are copied into our bucket after the message is stored,
 * and GET /v1/conversations/{id}/messages/{messageId}/attachments/{index} redirects to the copy;
 * until then (or when the copy cannot be made) it fetches the file with the channel's credentials
 * (from the provider stand-in), or redirects to the public link.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, WsClient, type Frame } from '../support/clients';
import { fixture } from '../fixtures/sign';
import { MEDIA_MAX_BYTES } from '../../src/channels/common';
import { MAX_UPLOAD_BYTES } from '../../src/manifest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { atExpression } from '../../src/domain/timers';
import { newHandle, postWebhook, textWebhook } from './channels-support';

let stack: LocalStack;
let agent: WsClient;
let jwt: string;

beforeAll(async () => {
  stack = await startTestStack();
  jwt = await agentToken(stack.httpUrl, 'agent-mia', 'agent', 'Mia');
  agent = await WsClient.connect(stack.wsUrl, jwt);
});

afterAll(async () => {
  await agent?.close();
  await stack?.stop();
});

const unique = () => `${Date.now()}${Math.floor(Math.random() * 1e6)}`;

/** Posts a customer's photo whose file the provider holds; resolves with the stored message. */
async function customerPhoto(
  channel: 'whatsapp' | 'telegram' | 'messenger' | 'instagram',
  fileId: string,
  publicUrl?: string,
  handle = newHandle(channel),
): Promise<{ conversationId: string; id: string; attachments: { url: string }[] }> {
  const body = JSON.parse(fixture(channel, channel === 'telegram' ? 'photo.json' : 'image.json'));
  let providerMessageId: string;
  if (channel === 'whatsapp') {
    const value = body.entry[0].changes[0].value;
    value.contacts[0].wa_id = handle;
    providerMessageId = `wamid.${unique()}`;
    Object.assign(value.messages[0], { from: handle, id: providerMessageId, timestamp: String(Math.floor(Date.now() / 1000)) });
    value.messages[0].image.id = fileId;
  } else if (channel === 'telegram') {
    const messageId = Number(unique().slice(-9));
    Object.assign(body.message, { message_id: messageId, date: Math.floor(Date.now() / 1000) });
    body.update_id = messageId;
    body.message.from.id = Number(handle);
    body.message.chat.id = Number(handle);
    body.message.photo.at(-1).file_id = fileId;
    providerMessageId = `${handle}:${messageId}`;
  } else {
    const event = body.entry[0].messaging[0];
    event.sender.id = handle;
    providerMessageId = `m_${unique()}`;
    event.message.mid = providerMessageId;
    event.timestamp = Date.now();
    if (publicUrl) event.message.attachments[0].payload.url = publicUrl;
  }
  expect((await postWebhook(stack, channel, JSON.stringify(body))).status).toBe(200);
  const frame = await agent.waitFor((f: Frame) => f.type === 'message.created' && f.message.providerMessageId === providerMessageId, 10_000, `${channel} photo`);
  return { conversationId: frame.conversationId, id: frame.message.id, attachments: frame.message.attachments };
}

function open(message: { conversationId: string; id: string }, index = 0, token: string | null = jwt): Promise<Response> {
  return fetch(`${stack.httpUrl}/v1/conversations/${message.conversationId}/messages/${message.id}/attachments/${index}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    redirect: 'manual',
  });
}

const jpeg = (size: number) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(size - 4, 7)]);

/** The attachment once the copy job has pointed it at our bucket (a `message.updated` frame). */
const kept = (message: { id: string }) =>
  agent.waitFor((f: Frame) => f.type === 'message.updated' && f.message.id === message.id && String(f.message.attachments[0]?.url).startsWith('conversa-media://'), 15_000, 'the kept copy');

/**
 * A customer whose conversation is open and greeted: the next request to the provider will be the
 * copy job's for the photo they send next.
 */
async function greetedCustomer(channel: 'whatsapp' | 'telegram' | 'sms'): Promise<string> {
  const handle = newHandle(channel);
  expect((await postWebhook(stack, channel, textWebhook(channel, handle, 'Hi').body)).status).toBe(200);
  await eventually(() => stack.providers.outbox(channel).some((item) => item.status < 300 && JSON.stringify(item.body).includes(handle)));
  return handle;
}

/** An MMS from `from` with files Twilio holds; resolves with the agent's `message.created` frame. */
async function customerMms(from: string, files: { sid: string; contentType: string }[]): Promise<Frame> {
  const { accountSid } = DEV_CREDENTIALS.sms;
  const messageSid = `SM${unique().padStart(32, '0').slice(-32)}`;
  const params = new URLSearchParams(fixture('sms', 'mms.txt'));
  for (const [key, value] of Object.entries({ From: from, MessageSid: messageSid, SmsSid: messageSid, SmsMessageSid: messageSid, NumMedia: String(files.length) })) params.set(key, value);
  for (const i of [0, 1]) {
    params.delete(`MediaUrl${i}`);
    params.delete(`MediaContentType${i}`);
  }
  for (const [i, { sid, contentType }] of files.entries()) {
    params.set(`MediaUrl${i}`, `${stack.httpUrl}/local/providers/sms/2010-04-01/Accounts/${accountSid}/Messages/MM${unique()}/Media/${sid}`);
    params.set(`MediaContentType${i}`, contentType);
  }
  expect((await postWebhook(stack, 'sms', params.toString())).status).toBe(200);
  return agent.waitFor((f: Frame) => f.type === 'message.created' && f.message.providerMessageId === messageSid, 10_000, 'MMS');
}

describe('attachments', () => {
  it.each(['whatsapp', 'telegram'] as const)('hands the agent the %s file, fetched with the channel credentials, before it is copied', async (channel) => {
    // Prepare: the provider holds the customer's photo, and is down when the copy job first asks
    const bytes = jpeg(150_000);
    const fileId = stack.providers.addMedia(channel, { contentType: 'image/jpeg', bytes });
    const handle = await greetedCustomer(channel);
    const before = stack.providers.outbox(channel).length;
    stack.providers.failNext(channel, 503, 1);
    const message = await customerPhoto(channel, fileId, undefined, handle);
    expect(message.attachments[0]!.url).toMatch(channel === 'whatsapp' ? /^whatsapp-media:\/\// : /^telegram-file:\/\//);
    // The copy job asked first, and waits out its retry.
    await eventually(() => stack.providers.outbox(channel).slice(before).some((item) => item.status === 503));

    // Act
    const response = await open(message);

    // Assess: the very bytes, typed, and never runnable as a page of the API's origin
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/jpeg');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('content-security-policy')).toContain('sandbox');
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it.each(['whatsapp', 'telegram'] as const)('copies the %s file into our bucket and redirects to the copy, also beyond what the API answers inline', async (channel) => {
    const bytes = jpeg(MEDIA_MAX_BYTES + 1024);
    const message = await customerPhoto(channel, stack.providers.addMedia(channel, { contentType: 'image/jpeg', bytes }));

    const copy = await kept(message);
    const response = await open(message);

    expect(copy.message.attachments[0]).toMatchObject({ type: 'image', mimeType: 'image/jpeg', size: bytes.length });
    expect(response.status).toBe(302);
    const file = await fetch(response.headers.get('location')!);
    expect(file.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await file.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('refuses a file over the limit with 413 and one the provider lost with 404', async () => {
    // Too large to copy as well: the provider's reference stays.
    const large = stack.providers.addMedia('whatsapp', { contentType: 'video/mp4', bytes: jpeg(10), announcedSize: MAX_UPLOAD_BYTES + 1 });
    const tooLarge = await open(await customerPhoto('whatsapp', large));
    expect(tooLarge.status).toBe(413);
    expect(((await tooLarge.json()) as { error: { code: string } }).error.code).toBe('media_too_large');

    const gone = await open(await customerPhoto('telegram', 'AgACnever-stored'));
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('media_gone');
  });

  it.each(['messenger', 'instagram'] as const)('copies a %s file from its CDN link, which expires, and redirects to the copy', async (channel) => {
    // Prepare: Meta's CDN serves the customer's photo at the link the webhook names
    const bytes = jpeg(30_000);
    const link = `${stack.httpUrl}/local/providers/${channel}/_cdn/${stack.providers.addMedia(channel, { contentType: 'image/jpeg', bytes })}`;

    // Act
    const message = await customerPhoto(channel, '', link);
    const copy = await kept(message);
    const response = await open(message);

    // Assess: the console is sent to our copy, not to the link that will stop working
    expect(message.attachments[0]!.url).toBe(link);
    expect(copy.message.attachments[0]).toMatchObject({ type: 'image', mimeType: 'image/jpeg', size: bytes.length });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).not.toContain('/_cdn/');
    const file = await fetch(response.headers.get('location')!);
    expect(Buffer.from(await file.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('keeps the link of a Messenger file whose CDN link had expired before the copy', async () => {
    const expired = `${stack.httpUrl}/local/providers/messenger/_cdn/asset-0000dead`;
    const message = await customerPhoto('messenger', '', expired);
    // The CDN refused the copy job: the console is still sent to the link, and no copy is announced.
    await eventually(() => stack.providers.outbox('messenger').some((item) => item.url.endsWith('/_cdn/asset-0000dead') && item.status === 403));
    const redirect = await open(message);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe(expired);
  });

  it('redirects to a plain URL, and answers 404 for an attachment that does not exist', async () => {
    // A link the customer shared is not a file of Meta's: it is opened where it is, never copied.
    const message = await customerPhoto('messenger', '', 'https://example.com/shared/menu.jpg');
    const redirect = await open(message);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe(message.attachments[0]!.url);

    for (const index of [1, 'x']) {
      const missing = await open(message, index as number);
      expect(missing.status).toBe(404);
    }
    const otherMessage = await fetch(`${stack.httpUrl}/v1/conversations/${message.conversationId}/messages/01J0000000000000000000000/attachments/0`, { headers: { authorization: `Bearer ${jwt}` } });
    expect(otherMessage.status).toBe(404);

    // A URL a header cannot carry as it is (a line break, a character outside Latin-1): redirected
    // to its parsed form, never a 500 and never a split header.
    for (const url of ['https://cdn.example/x\r\nSet-Cookie: a=b', 'https://cdn.example/\u2028x']) {
      const odd = await open(await customerPhoto('messenger', '', url));
      expect(odd.status).toBe(302);
      expect(odd.headers.get('set-cookie')).toBeNull();
      expect(odd.headers.get('location')).toBe(new URL(url).href);
    }
  });

  it('reads a text part of an MMS (a long SMS a carrier sent as MMS) into the message text, once, and keeps its file', async () => {
    // Prepare: the words travel as a text/plain part, not as the Body
    const words = 'Hello, my parcel 1234 came without the charger. Could you send it, or tell me where to find it? Thanks, Ada';
    const frame = await customerMms(newHandle('sms'), [{ sid: stack.providers.addMedia('sms', { contentType: 'text/plain', bytes: Buffer.from(words) }), contentType: 'text/plain' }]);
    const message = { conversationId: frame.conversationId, id: frame.message.id };

    // Act: the copy job keeps the part
    const copy = await kept(message);

    // Assess: the console is told the words, the history holds them once after the Body, and the part stays a file
    expect(copy.message.text).toBe(`Photos of the damage\n${words}`);
    const response = await fetch(`${stack.httpUrl}/v1/conversations/${message.conversationId}/messages`, { headers: { authorization: `Bearer ${jwt}` } });
    const stored = ((await response.json()) as { items: { id: string; text: string; attachments: { type: string }[] }[] }).items.find((m) => m.id === message.id);
    expect(stored).toMatchObject({ text: `Photos of the damage\n${words}`, attachments: [{ type: 'file' }] });
  });

  it.each([
    ['a photo', 'image/jpeg', jpeg(20_000), 'image'],
    ['a contact card', 'text/vcard', Buffer.from('BEGIN:VCARD\nVERSION:3.0\nFN:Ada\nEND:VCARD\n'), 'contact'],
  ])('copies %s a customer sent by MMS, fetched with the account credentials through its redirect', async (_, contentType, bytes, type) => {
    // Prepare: Twilio holds the customer's file behind Basic auth
    const frame = await customerMms(newHandle('sms'), [{ sid: stack.providers.addMedia('sms', { contentType, bytes }), contentType }]);

    // Act: the console opens the copy, made with the account credentials
    const message = { conversationId: frame.conversationId, id: frame.message.id };
    const copy = await kept(message);
    const response = await open(message);

    // Assess: a redirect to our copy, not to Twilio, which the console could not open without the credentials
    expect(copy.message.attachments[0]).toMatchObject({ type, mimeType: contentType, size: bytes.length });
    expect(response.status).toBe(302);
    const file = await fetch(response.headers.get('location')!);
    expect(file.headers.get('content-type')).toBe(contentType);
    expect(Buffer.from(await file.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('announces the files it copied when a later one of the message fails', async () => {
    // Prepare: an MMS with two files; Twilio hands over the first (its URL, then the CDN's) and is down for the second
    const first = jpeg(5_000);
    const files = [first, jpeg(6_000)].map((bytes) => ({ sid: stack.providers.addMedia('sms', { contentType: 'image/jpeg', bytes }), contentType: 'image/jpeg' }));
    const from = await greetedCustomer('sms');
    stack.providers.failNext('sms', 503, 1, 2);
    try {
      // Act
      const frame = await customerMms(from, files);

      // Assess: the console has the first copy now, not after the retry
      const copy = await kept({ id: frame.message.id });
      expect(copy.message.attachments[0]).toMatchObject({ mimeType: 'image/jpeg', size: first.length });
      expect(copy.message.attachments[1].url).toBe(frame.message.attachments[1].url);
    } finally {
      stack.providers.failNext('sms', 503, 0);
    }
  });

  it('is for agents only', async () => {
    const fileId = stack.providers.addMedia('whatsapp', { contentType: 'image/jpeg', bytes: jpeg(100) });
    const message = await customerPhoto('whatsapp', fileId);
    expect((await open(message, 0, null)).status).toBe(401);
  });
});

describe('a copy that outlasts a provider outage', () => {
  it('is tried again by a schedule once the queue has given up, and copies the file when the provider is back', async () => {
    // Prepare: WhatsApp is down for every attempt the queue makes, which come back within a second
    const bytes = jpeg(20_000);
    const fileId = stack.providers.addMedia('whatsapp', { contentType: 'image/jpeg', bytes });
    const handle = await greetedCustomer('whatsapp');
    const outbound = stack.aws.sqs.getQueue('conversa-outbound.fifo');
    const visibility = outbound.visibilityTimeoutSeconds;
    outbound.visibilityTimeoutSeconds = 1;
    stack.providers.failNext('whatsapp', 503, 1000);
    try {
      const message = await customerPhoto('whatsapp', fileId, undefined, handle);

      // Act: the queue's last attempt arms the next round instead of giving up
      const name = `keepMedia-${message.id}`;
      const armed = await eventually(() => stack.aws.scheduler.list().find((s) => s.name === name && s.fireAt), 25_000);

      // Assess: an hour later, as round 1 of the same message
      expect(armed.fireAt!.getTime() - Date.now()).toBeGreaterThan(3_500_000);
      expect(armed.fireAt!.getTime() - Date.now()).toBeLessThanOrEqual(3_601_000);
      expect(JSON.parse(armed.target.input!)).toMatchObject({ kind: 'keepMedia', conversationId: message.conversationId, messageId: message.id, round: 1 });

      // Act: the provider is back, and the hour is up (within SQS's deduplication window of the first job)
      stack.providers.failNext('whatsapp', 503, 0);
      outbound.visibilityTimeoutSeconds = visibility;
      const schedule = stack.aws.scheduler.getSchedule(name, armed.groupName);
      stack.aws.scheduler.updateSchedule(name, { ...schedule, ScheduleExpression: atExpression(new Date()) });

      // Assess: the copy is made, and the schedule is gone
      const copy = await kept(message);
      expect(copy.message.attachments[0]).toMatchObject({ type: 'image', mimeType: 'image/jpeg', size: bytes.length });
      await eventually(() => !stack.aws.scheduler.list().some((s) => s.name === name));
    } finally {
      stack.providers.failNext('whatsapp', 503, 0);
      outbound.visibilityTimeoutSeconds = visibility;
    }
  }, 60_000);
});
