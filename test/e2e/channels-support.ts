/**
 * What the channel end-to-end files share: webhook bodies built from the documented fixtures
 * (with the customer, the message id and the time replaced so tests do not collide), signing,
 * and the provider requests each channel is expected to make.
 */
import { expect } from 'vitest';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import type { ProviderChannel } from '../../src/domain/types';
import { fixture, providerHeaders, signMeta } from '../fixtures/sign';
import type { LocalStack } from '../../local/stack';
import { eventually, http, type HttpResponse } from '../support/clients';
import { getHandle } from '../../src/store/contacts';
import { getConversation } from '../../src/store/conversations';

export const META_CHANNELS = ['whatsapp', 'messenger', 'instagram'] as const;

const digits = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 10)).join('');

/** A fresh customer id in the channel's own format. */
export function newHandle(channel: ProviderChannel): string {
  switch (channel) {
    case 'whatsapp':
      return `1555${digits(7)}`;
    case 'sms':
      return `+1555${digits(7)}`;
    case 'telegram':
      return `7${digits(8)}`;
    default:
      return `69${digits(14)}`;
  }
}

/** WhatsApp's wa_id for a phone number, SMS's E.164 form: the same person on both. */
export function phoneHandles(): { whatsapp: string; sms: string; phone: string } {
  const national = `1555${digits(7)}`;
  return { whatsapp: national, sms: `+${national}`, phone: `+${national}` };
}

 
type Json = any;

function json(channel: ProviderChannel, name: string): Json {
  return JSON.parse(fixture(channel, name));
}

function form(name: string, changes: Record<string, string>): string {
  const params = new URLSearchParams(fixture('sms', `${name}.txt`));
  for (const [key, value] of Object.entries(changes)) params.set(key, value);
  return params.toString();
}

export interface InboundWebhook {
  body: string;
  /** The id the backend stores the message under (Telegram prefixes the chat id). */
  providerMessageId: string;
}

/** A customer's text message on `channel`, from the channel's documented text payload. */
export function textWebhook(channel: ProviderChannel, handle: string, text: string, id = `${Date.now()}${digits(6)}`): InboundWebhook {
  const nowS = Math.floor(Date.now() / 1000);
  switch (channel) {
    case 'whatsapp': {
      const body = json('whatsapp', 'text');
      const value = body.entry[0].changes[0].value;
      value.contacts[0].wa_id = handle;
      Object.assign(value.messages[0], { from: handle, id: `wamid.${id}`, timestamp: String(nowS), text: { body: text } });
      return { body: JSON.stringify(body), providerMessageId: `wamid.${id}` };
    }
    case 'messenger':
    case 'instagram': {
      const body = json(channel, 'text');
      const event = body.entry[0].messaging[0];
      event.sender.id = handle;
      event.timestamp = Date.now();
      event.message = { mid: `m_${id}`, text };
      return { body: JSON.stringify(body), providerMessageId: `m_${id}` };
    }
    case 'telegram': {
      const body = json('telegram', 'text');
      const messageId = Number(id.slice(-9));
      body.update_id = messageId;
      Object.assign(body.message, { message_id: messageId, date: nowS, text });
      body.message.from.id = Number(handle);
      body.message.chat.id = Number(handle);
      return { body: JSON.stringify(body), providerMessageId: `${handle}:${messageId}` };
    }
    case 'sms': {
      const sid = `SM${id.padStart(32, '0').slice(-32)}`;
      return { body: form('text', { From: handle, Body: text, MessageSid: sid, SmsSid: sid, SmsMessageSid: sid }), providerMessageId: sid };
    }
  }
}

/** A media message as documented, with its expected attachment type. */
export const MEDIA_FIXTURES: Record<ProviderChannel, { name: string; type: string; text: string }> = {
  whatsapp: { name: 'image', type: 'image', text: 'This one, please' },
  messenger: { name: 'image', type: 'image', text: '' },
  instagram: { name: 'image', type: 'image', text: '' },
  telegram: { name: 'photo', type: 'image', text: 'The box arrived like this' },
  sms: { name: 'mms.txt', type: 'image', text: 'Photos of the damage' },
};

export type DeliveryStatus = 'delivered' | 'read' | 'failed';

/**
 * A status callback for one of our sends, from the channel's documented status payload.
 * Messenger without `providerMessageId` sends the watermark form (no mids), at `watermark`.
 * WhatsApp returns the send's `biz_opaque_callback_data` as `reference`.
 */
export function statusWebhook(
  channel: ProviderChannel,
  handle: string,
  status: DeliveryStatus,
  providerMessageId: string | undefined,
  watermark = Date.now(),
  reference?: string,
): string {
  switch (channel) {
    case 'whatsapp': {
      const body = json('whatsapp', 'statuses');
      const value = body.entry[0].changes[0].value;
      const failed = value.statuses.find((s: Json) => s.status === 'failed');
      const base = status === 'failed' ? failed : value.statuses[0];
      const { biz_opaque_callback_data: _fixtureReference, ...rest } = base;
      const echoed = reference ? { biz_opaque_callback_data: reference } : {};
      value.statuses = [{ ...rest, ...echoed, id: providerMessageId, status, recipient_id: handle, timestamp: String(Math.floor(Date.now() / 1000)) }];
      return JSON.stringify(body);
    }
    case 'messenger': {
      const name = status === 'read' ? 'read' : 'delivery';
      const body = json('messenger', name);
      const event = body.entry[0].messaging[0];
      body.entry[0].messaging = [event];
      event.sender.id = handle;
      event.timestamp = watermark;
      if (status === 'read') event.read = { watermark };
      else event.delivery = providerMessageId ? { mids: [providerMessageId], watermark } : { watermark };
      return JSON.stringify(body);
    }
    case 'instagram': {
      const body = json('instagram', 'seen');
      const event = body.entry[0].messaging[0];
      event.sender.id = handle;
      event.read = { mid: providerMessageId };
      return JSON.stringify(body);
    }
    case 'sms': {
      const name = status === 'failed' ? 'status-failed' : `status-${status}`;
      return form(name, { To: handle, MessageSid: providerMessageId ?? '', SmsSid: providerMessageId ?? '' });
    }
    case 'telegram':
      throw new Error('Telegram reports no delivery statuses to bots');
  }
}

/** Which statuses each provider reports for our sends. */
export const REPORTED_STATUSES: Record<ProviderChannel, DeliveryStatus[]> = {
  whatsapp: ['delivered', 'read', 'failed'],
  messenger: ['delivered', 'read'],
  instagram: ['read'],
  telegram: [],
  sms: ['delivered', 'read', 'failed'],
};

export function smsWebhookUrl(stack: LocalStack): string {
  return `${stack.httpUrl}/webhooks/sms`;
}

export type Signature = 'valid' | 'wrong' | 'missing';

/** Posts a webhook the way the provider does, signed with the development credentials (or not). */
export function postWebhook(stack: LocalStack, channel: ProviderChannel, body: string, signature: Signature = 'valid'): Promise<HttpResponse> {
  const headers = providerHeaders(channel, body, smsWebhookUrl(stack));
  if (signature !== 'valid') {
    const name = { telegram: 'x-telegram-bot-api-secret-token', sms: 'x-twilio-signature' }[channel as string] ?? 'x-hub-signature-256';
    if (signature === 'missing') delete headers[name];
    // Signed with another secret: well-formed, wrong.
    else headers[name] = channel === 'telegram' ? 'not-the-secret' : channel === 'sms' ? 'bm90IHRoZSBzaWduYXR1cmU=' : signMeta(body, 'another-app-secret');
  }
  return http(stack.httpUrl, 'POST', `/webhooks/${channel}`, { raw: body, headers });
}

/** The provider request each channel's reply must produce (CONTRACT.md section 2 credentials). */
export function expectedSend(channel: ProviderChannel, handle: string, text: string): { url: string; authorization?: string; body: Record<string, unknown> } {
  const c = DEV_CREDENTIALS[channel];
  switch (channel) {
    case 'whatsapp':
      return {
        url: `/local/providers/whatsapp/${c.phoneNumberId}/messages`,
        authorization: `Bearer ${c.accessToken}`,
        body: { messaging_product: 'whatsapp', recipient_type: 'individual', to: handle, type: 'text', text: { body: text, preview_url: false } },
      };
    case 'messenger':
    case 'instagram':
      return {
        url: `/local/providers/${channel}/me/messages?access_token=${encodeURIComponent(c.accessToken ?? '')}`,
        body: { recipient: { id: handle }, messaging_type: 'RESPONSE', message: expect.objectContaining({ text }) },
      };
    case 'telegram':
      return { url: `/local/providers/telegram/bot${c.botToken}/sendMessage`, body: { chat_id: handle, text } };
    case 'sms':
      return {
        url: `/local/providers/sms/2010-04-01/Accounts/${c.accountSid}/Messages.json`,
        authorization: `Basic ${Buffer.from(`${c.accountSid}:${c.authToken}`).toString('base64')}`,
        body: { To: handle, From: c.fromNumber, Body: text },
      };
  }
}

/** A customer writes on `channel`; answers their conversation's id once it holds the message (its last inbound is from now on). */
export async function customerWritesOn(stack: LocalStack, channel: ProviderChannel, handle: string, text: string): Promise<string> {
  const since = new Date().toISOString();
  expect((await postWebhook(stack, channel, textWebhook(channel, handle, text).body)).status).toBe(200);
  return eventually(async () => {
    const id = (await getHandle(channel, handle))?.conversationId;
    const conversation = id ? await getConversation(id, true) : undefined;
    return conversation && conversation.lastInboundAt! >= since ? conversation.id : undefined;
  });
}

/** A WhatsApp customer writes; answers their conversation's id once it holds the message (open, written to in the last minute). */
export async function whatsappCustomerWrites(stack: LocalStack, handle: string, text: string): Promise<string> {
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, text).body)).status).toBe(200);
  return eventually(async () => {
    const id = (await getHandle('whatsapp', handle))?.conversationId;
    const conversation = id ? await getConversation(id, true) : undefined;
    return conversation?.status === 'open' && conversation.lastInboundAt! > new Date(Date.now() - 60_000).toISOString() ? conversation.id : undefined;
  });
}
