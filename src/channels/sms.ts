/**
 * SMS/MMS through Twilio Programmable Messaging. Inbound messages and status callbacks are form
 * posts signed with X-Twilio-Signature; sends are form posts to the 2010-04-01 Messages resource.
 */
import { createHmac } from 'node:crypto';
import { config } from '../config';
import { smsNumber } from '../domain/phone-numbers';
import type { Attachment, InboundEvent, InboundStatusEvent } from '../domain/types';
import { attachmentType, MB, callProviderParts, credential, downloadMedia, isRecord, mediaCredentialMissing, missingCredential, safeEqual, splitText, type ProviderDialect } from './common';
import { mendLoneSurrogates } from '../unicode';
import { BadWebhookError, type ChannelAdapter, type MediaResult, type OutboundSend, type SendContext, type SendResult } from './types';

/**
 * base64(HMAC-SHA1(authToken, url + every POST parameter as name+value, sorted by name)).
 * Repeated names are sorted by value too, which is how Twilio's own helpers order them.
 */
export function twilioSignature(url: string, params: Iterable<[string, string]>, authToken: string): string {
  const pairs = [...params].sort(([ak, av], [bk, bv]) => (ak === bk ? (av < bv ? -1 : av > bv ? 1 : 0) : ak < bk ? -1 : 1));
  const data = pairs.reduce((acc, [key, value]) => acc + key + value, url);
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/** The same signature over the parameters' bytes as they were percent-encoded, sorted bytewise. */
function twilioByteSignature(url: string, params: [Buffer, Buffer][], authToken: string): string {
  const hmac = createHmac('sha1', authToken).update(url, 'utf8');
  for (const [key, value] of [...params].sort(([ak, av], [bk, bv]) => Buffer.compare(ak, bk) || Buffer.compare(av, bv))) hmac.update(key).update(value);
  return hmac.digest('base64');
}

/**
 * A surrogate (U+D800–DFFF) percent-encoded on its own (ED A0–BF xx: CESU-8, WTF-8), which is
 * no UTF-8: how a text cut inside an emoji (an SMS segment lost) may come. Its bytes are not what a
 * UTF-8 decoder gives back, so the form is then read by hand (formFields).
 */
const ENCODED_SURROGATE = /%ED%[AB][0-9A-F]%[89AB][0-9A-F]/i;

/** A JSON or XML body here is a misrouted request, not a Twilio webhook. */
const misrouted = (rawBody: string): boolean => /^\s*[[{<]/.test(rawBody);

/** Percent-decoded bytes of one name or value of a form ('+' is a space). */
function percentDecoded(text: string): Buffer {
  const bytes = Buffer.from(text.replace(/\+/g, ' '), 'utf8');
  const out = Buffer.alloc(bytes.length);
  let length = 0;
  for (let i = 0; i < bytes.length; i++) {
    const hex = bytes[i] === 0x25 ? bytes.toString('latin1', i + 1, i + 3) : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out[length++] = Number.parseInt(hex, 16);
      i += 2;
    } else out[length++] = bytes[i]!;
  }
  return out.subarray(0, length);
}

/** The form's fields, each name and value as the bytes that were percent-encoded. */
function formFields(rawBody: string): [Buffer, Buffer][] {
  return rawBody
    .split('&')
    .filter((field) => field !== '')
    .map((field) => {
      const at = field.indexOf('=');
      return at < 0 ? [percentDecoded(field), Buffer.alloc(0)] : [percentDecoded(field.slice(0, at)), percentDecoded(field.slice(at + 1))];
    });
}

/** Bytes as UTF-8, surrogates encoded one by one taken as such: a pair is its character, half of one U+FFFD. */
function decodeWtf8(bytes: Buffer): string {
  const text = bytes
    .toString('latin1')
    .replace(/(\xED[\xA0-\xBF][\x80-\xBF])|\xED[^\xED]*|[^\xED]+/g, (run, surrogate?: string) =>
      surrogate ? String.fromCharCode(0xd000 | ((surrogate.charCodeAt(1) & 0x3f) << 6) | (surrogate.charCodeAt(2) & 0x3f)) : Buffer.from(run, 'latin1').toString('utf8'),
    );
  return mendLoneSurrogates(text);
}

function parseForm(rawBody: string): URLSearchParams {
  if (misrouted(rawBody)) throw new BadWebhookError('Expected a form-encoded Twilio webhook');
  if (!ENCODED_SURROGATE.test(rawBody)) return new URLSearchParams(rawBody);
  return new URLSearchParams(formFields(rawBody).map(([name, value]): [string, string] => [decodeWtf8(name), decodeWtf8(value)]));
}

const STATUS_MAP: Record<string, InboundStatusEvent['status']> = {
  accepted: 'sent',
  scheduled: 'sent',
  queued: 'sent',
  sending: 'sent',
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  undelivered: 'failed',
  failed: 'failed',
  canceled: 'failed',
};

/**
 * What Twilio does on an opt-out or opt-in keyword, which a Messaging Service with Advanced Opt-Out
 * names (OptOutType): after STOP it refuses every send to the number (error 21610), which an agent
 * should know before writing. HELP changes nothing: Twilio answered it with the number's help text.
 */
const OPT_OUT_NOTES: Record<string, string> = {
  STOP: '[opted out of texts: Twilio refuses our replies to this number until they text START]',
  START: '[opted in to texts again]',
};

function normalizeSms(rawBody: string): InboundEvent[] {
  const form = parseForm(rawBody);
  const sid = form.get('MessageSid') ?? form.get('SmsMessageSid');
  if (!sid) throw new BadWebhookError('Twilio webhook without MessageSid');
  const messageStatus = form.get('MessageStatus');
  if (messageStatus) {
    const status = STATUS_MAP[messageStatus];
    // 'receiving'/'received' describe inbound messages, which arrive as their own webhook.
    const to = form.get('To');
    if (!status || !to) return [];
    const event: InboundStatusEvent = {
      kind: 'status',
      channel: 'sms',
      handle: to,
      providerMessageId: sid,
      status,
      // Status callbacks carry no timestamp: the time we heard about it is the best there is.
      at: new Date().toISOString(),
    };
    const errorCode = form.get('ErrorCode');
    if (status === 'failed') event.error = errorCode ? `Twilio error ${errorCode} (${messageStatus})` : `Message ${messageStatus}`;
    return [event];
  }
  const from = form.get('From');
  if (!from) throw new BadWebhookError('Twilio message webhook without From');
  const count = Number(form.get('NumMedia') ?? '0');
  const attachments: Attachment[] = [];
  for (let i = 0; i < (Number.isFinite(count) ? Math.min(count, 10) : 0); i++) {
    const url = form.get(`MediaUrl${i}`);
    if (!url) continue;
    const mimeType = form.get(`MediaContentType${i}`) ?? '';
    const attachment: Attachment = { type: attachmentType(mimeType), url };
    if (mimeType) attachment.mimeType = mimeType;
    attachments.push(attachment);
  }
  const optOutType = form.get('OptOutType')?.toUpperCase() ?? '';
  // Twilio names STOP for each of its opt-out keywords (STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT…) and
  // START for each opt-in one (UNSTOP, YES…), custom keywords of the Messaging Service included.
  const optOut = optOutType === 'STOP' ? 'stop' : optOutType === 'START' ? 'start' : undefined;
  return [
    {
      kind: 'message',
      channel: 'sms',
      handle: from,
      profile: { phone: from },
      providerMessageId: sid,
      text: [form.get('Body') ?? '', OPT_OUT_NOTES[optOutType]].filter(Boolean).join('\n'),
      attachments,
      ...(optOut ? { optOut } : {}),
      sentAt: new Date().toISOString(),
    },
  ];
}

const dialect: ProviderDialect = {
  messageId: (body) => (isRecord(body) && typeof body.sid === 'string' ? body.sid : undefined),
  errorMessage(body) {
    if (!isRecord(body) || typeof body.message !== 'string') return undefined;
    return body.code !== undefined ? `${body.message} (Twilio error ${String(body.code)})` : body.message;
  },
  // 21611: the sender's queue is full (a 400): it drains within hours, so the send waits its turn.
  retryable: (body) => isRecord(body) && body.code === 21611,
};

/** Twilio's limit on a message Body, in characters. */
const TEXT_LIMIT = 1600;

async function sendSms(message: OutboundSend, context: SendContext): Promise<SendResult> {
  const { credentials } = context;
  const accountSid = credential(credentials, 'accountSid');
  const authToken = credential(credentials, 'authToken');
  const from = credential(credentials, 'fromNumber');
  if (!accountSid) return missingCredential('accountSid');
  if (!authToken) return missingCredential('authToken');
  if (!from) return missingCredential('fromNumber');
  // Twilio takes at most 1600 characters of Body: a longer text goes out as several messages.
  const bodies: (string | undefined)[] = message.text ? splitText(message.text, TEXT_LIMIT) : [undefined];
  const calls = bodies.map((body, index) => {
    // Twilio posts delivery statuses only to a StatusCallback given here, and signs them with exactly this
    // URL: the same one the webhook verifies against (public URL + path).
    const form = new URLSearchParams({ To: message.to, From: from, StatusCallback: `${config.publicUrl}/webhooks/sms` });
    if (body) form.set('Body', body);
    // MMS carries up to 10 media URLs in the same request, the first one.
    if (index === 0) for (const attachment of message.attachments.slice(0, 10)) form.append('MediaUrl', attachment.url);
    return {
      url: `${context.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(accountSid)}/Messages.json`,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basicAuth(accountSid, authToken),
      },
      body: form.toString(),
    };
  });
  // Twilio's Messages resource has no idempotency key: a retry happens only when Twilio did not answer
  // with a sid, and starts after the parts it accepted (callProviderParts).
  return callProviderParts(calls, 0, context, dialect);
}

/**
 * Twilio keeps MMS media under the account's Messages resource and enforces HTTP Basic auth on
 * it; the media URL answers with a redirect to a short-lived CDN URL, which fetch follows
 * without the credentials. URLs anywhere else are not Twilio's to open.
 */
async function fetchTwilioMedia(reference: string, context: SendContext): Promise<MediaResult | undefined> {
  const accountSid = credential(context.credentials, 'accountSid');
  const authToken = credential(context.credentials, 'authToken');
  const prefix = `${context.baseUrl}/2010-04-01/Accounts/${accountSid ?? ''}/Messages/`;
  if (!accountSid || !reference.startsWith(prefix) || !/^MM\w+\/Media\/ME\w+$/.test(reference.slice(prefix.length))) return undefined;
  if (!authToken) return mediaCredentialMissing('authToken');
  return downloadMedia(reference, { authorization: basicAuth(accountSid, authToken) }, context);
}

function basicAuth(accountSid: string, authToken: string): string {
  return `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;
}

export const smsAdapter: ChannelAdapter = {
  channel: 'sms',
  credentialDefaults: {
    accountSid: { env: 'TWILIO_ACCOUNT_SID', dev: 'AC00000000000000000000000000000000' },
    authToken: { env: 'TWILIO_AUTH_TOKEN', dev: 'dev-twilio-auth-token' },
    fromNumber: { env: 'TWILIO_FROM_NUMBER', dev: '+15005550006' },
  },
  defaultBaseUrl: 'https://api.twilio.com',
  verify(request, credentials) {
    const authToken = credential(credentials, 'authToken');
    if (!authToken) return false;
    const { rawBody, url } = request;
    const signature = request.headers['x-twilio-signature'];
    if (misrouted(rawBody)) return false;
    // Over the values as a UTF-8 decoder reads them (as before); a form with a surrogate encoded on
    // its own (U+FFFD for each of its bytes there) may also be signed over the bytes as sent.
    if (safeEqual(signature, twilioSignature(url, new URLSearchParams(rawBody), authToken))) return true;
    return ENCODED_SURROGATE.test(rawBody) && safeEqual(signature, twilioByteSignature(url, formFields(rawBody), authToken));
  },
  normalize: (request) => normalizeSms(request.rawBody),
  ack: () => ({ status: 200, contentType: 'text/xml', body: '<Response/>' }),
  // SMS has no provider-imposed window; a STOP is kept on the conversation (optedOut, src/channels/window.ts sendDecision).
  window: () => ({ allowed: true }),
  // A WhatsApp id's form of a Brazilian or Mexican mobile is not dialled any more.
  handleForPhone: smsNumber,
  send: sendSms,
  // MMS: 5 MB for the whole message, its files together.
  mediaLimits: { file: 5 * MB, perMessage: 5 * MB },
  fetchMedia: fetchTwilioMedia,
  // Carriers may deliver a long SMS as an MMS whose words are a text/plain part, not the Body.
  isTextPart: (attachment) => /^text\/plain\s*(;|$)/i.test(attachment.mimeType ?? ''),
};
