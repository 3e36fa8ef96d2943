/**
 * What the Meta channels share. WhatsApp, Messenger and Instagram all sign webhooks with
 * X-Hub-Signature-256 and subscribe with the hub.* GET handshake; Messenger and Instagram also share
 * the entry[].messaging[] webhook shape and the Send API, so both adapters are built by
 * `createMetaMessagingAdapter` and differ only in configuration.
 */
import { createHmac } from 'node:crypto';
import type { Attachment, InboundEvent, InboundMessageEvent, ProviderChannel } from '../domain/types';
import {
  DAY_MS,
  HOUR_MS,
  callProviderParts,
  credential,
  downloadMedia,
  elapsedSince,
  formatLocation,
  geoUri,
  isRecord,
  leniently,
  records,
  replyContext,
  isoFromEpoch,
  sentAtFromEpoch,
  secondsAsMs,
  jsonCall,
  list,
  missingCredential,
  parseJsonBody,
  safeEqual,
  unsupportedText,
  type ProviderCall,
  type ProviderDialect,
  splitText,
  type TextMeasure,
} from './common';
import {
  BadWebhookError,
  type ChannelAdapter,
  type Credentials,
  type HttpReply,
  type MediaLimits,
  type MediaResult,
  type MediaTypes,
  type OutboundSend,
  type SendContext,
  type SendResult,
  type ServiceWindow,
  type WebhookRequest,
  type WindowDecision,
} from './types';

export const HUMAN_AGENT_TAG = 'HUMAN_AGENT';

export function metaSignature(rawBody: string, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody, 'utf8').digest('hex')}`;
}

export function verifyMetaSignature(request: WebhookRequest, appSecret: string | undefined): boolean {
  if (!appSecret) return false;
  return safeEqual(request.headers['x-hub-signature-256'], metaSignature(request.rawBody, appSecret));
}

export function metaChallenge(request: WebhookRequest, verifyToken: string | undefined): HttpReply {
  const { query } = request;
  const challenge = query['hub.challenge'];
  if (query['hub.mode'] === 'subscribe' && challenge !== undefined && safeEqual(query['hub.verify_token'], verifyToken)) {
    return { status: 200, contentType: 'text/plain', body: challenge };
  }
  const message = 'hub.mode must be subscribe and hub.verify_token the channel\'s verify token';
  return { status: 403, contentType: 'application/json', body: JSON.stringify({ error: { code: 'invalid_verify_token', message } }) };
}

/** Meta only needs the 200; the body is ignored. */
export function metaAck(): HttpReply {
  return { status: 200, contentType: 'text/plain', body: 'EVENT_RECEIVED' };
}

/** The envelope's entries, after checking `object` so that a webhook for another product is refused rather than misread. */
export function metaEntries(rawBody: string, expectedObject: string): unknown[] {
  const body = parseJsonBody(rawBody);
  if (!isRecord(body) || body.object !== expectedObject) {
    throw new BadWebhookError(`Expected a webhook with object "${expectedObject}"`);
  }
  return list(body.entry as unknown[]);
}

/** Graph API error body: { error: { message, type, code, error_subcode, is_transient, fbtrace_id } }. */
interface GraphError {
  error?: { message?: string; code?: number; error_subcode?: number; is_transient?: boolean; error_data?: { details?: string } };
}

/**
 * Graph error codes that mean "slow down" or "try again" even when the HTTP status is 400:
 * 1/2 unknown/temporary, 4/17/32/613 rate limits, 80007 and 130429 messaging throughput.
 */
/** Rate limits and "temporary send failure" (1200, which comes as an HTTP 400): worth another try. */
const TRANSIENT_GRAPH_CODES = new Set([1, 2, 4, 17, 32, 613, 1200, 80007, 130429, 131056]);

export function graphErrorMessage(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  const error = (body as GraphError).error;
  if (!error) return undefined;
  const details = error.error_data?.details ? `: ${error.error_data.details}` : '';
  const code = error.code !== undefined ? ` (code ${error.code})` : '';
  return `${error.message ?? 'Graph API error'}${details}${code}`;
}

export function graphErrorRetryable(body: unknown): boolean {
  if (!isRecord(body)) return false;
  const error = (body as GraphError).error;
  return error?.is_transient === true || (error?.code !== undefined && TRANSIENT_GRAPH_CODES.has(error.code));
}

// ---------------------------------------------------------------------------------------------
// Messenger and Instagram: entry[].messaging[]
// ---------------------------------------------------------------------------------------------

/** One card of a shared template (a generic template's element, a Facebook Shops product). */
interface TemplateElement {
  title?: string;
  subtitle?: string;
}

interface MessagingAttachment {
  type?: string;
  /** Legacy location shares, and fallbacks (a shared link), put the title (and the link) beside the payload. */
  title?: string;
  url?: string;
  payload?: {
    url?: string;
    sticker_id?: number;
    title?: string;
    coordinates?: { lat?: number; long?: number };
    /** A shared template: its cards, or a product's (`product.elements`). */
    elements?: TemplateElement[];
    /** A button template (an echo of another app's send): its words, and its buttons' titles. */
    template_type?: string;
    text?: string;
    buttons?: { title?: string }[];
    product?: { elements?: TemplateElement[] };
  } | null;
}

interface MessagingEvent {
  sender?: { id?: string };
  recipient?: { id?: string };
  timestamp?: number;
  message?: {
    mid?: string;
    text?: string;
    is_echo?: boolean;
    /** Echoes: the app that sent the message (Meta writes it as a number) and the metadata it sent with it. */
    app_id?: number | string;
    metadata?: string;
    is_deleted?: boolean;
    is_unsupported?: boolean;
    attachments?: MessagingAttachment[];
    quick_reply?: { payload?: string };
    /** Instagram: the customer answered one of the account's stories (its link expires with the story). */
    reply_to?: { mid?: string; story?: { url?: string; id?: string } };
  };
  /** The customer edited an earlier message (Messenger's and Instagram's message_edits field). */
  message_edit?: { mid?: string; text?: string; num_edit?: number | string };
  delivery?: { mids?: string[]; watermark?: number };
  /** Messenger sends a watermark; Instagram (messaging_seen) sends the mid that was seen. */
  read?: { watermark?: number; mid?: string };
  postback?: { mid?: string; title?: string; payload?: string };
  reaction?: { mid?: string; action?: string; emoji?: string; reaction?: string };
}

interface MessagingEntry {
  id?: string | number;
  time?: number;
  messaging?: MessagingEvent[];
  /** The same events while another app controls the thread. */
  standby?: MessagingEvent[];
}

/**
 * Messenger read receipts and watermark-only delivery receipts name no message: they mean
 * "everything we sent before `at` is read/delivered". They are emitted with providerMessageId '*'
 * and `at` = the watermark, and the consumer applies them to every outbound message of that
 * conversation sent at or before `at`.
 */
export const ALL_BEFORE_WATERMARK = '*';

function messagingAttachment(attachment: MessagingAttachment): Attachment | undefined {
  const payload = attachment.payload ?? {};
  if (attachment.type === 'location' && payload.coordinates) {
    return { type: 'location', url: geoUri(payload.coordinates.lat, payload.coordinates.long) };
  }
  if (!payload.url) return undefined;
  // Messenger now marks a sticker by its own type; earlier, as an image with a sticker_id.
  if (payload.sticker_id !== undefined || attachment.type === 'sticker') return { type: 'sticker', url: payload.url };
  switch (attachment.type) {
    case 'image':
    case 'audio':
    case 'video':
    case 'file':
      return { type: attachment.type, url: payload.url };
    default:
      // Instagram shares, reels and story mentions: a link to the provider's media.
      return { type: 'file', url: payload.url, name: attachment.type };
  }
}

/**
 * What an agent reads for an attachment that is no file: a shared template's cards (a product from
 * Facebook Shops, a generic template), a fallback's title and link (a shared page, sent beside an
 * empty payload), else the type it is.
 */
function attachmentNote(raw: MessagingAttachment): string {
  const payload = isRecord(raw.payload) ? raw.payload : {};
  if (raw.type === 'appointment_booking') return appointmentNote(payload);
  const cards = records(payload.elements ?? (isRecord(payload.product) ? payload.product.elements : undefined))
    .map((card) => [card.title, card.subtitle].filter((part) => typeof part === 'string' && part).join(' — '))
    .filter(Boolean);
  if (cards.length > 0) return cards.map((card) => `Shared: ${card}`).join('\n');
  if (payload.template_type === 'button' && typeof payload.text === 'string' && payload.text.trim()) {
    const buttons = records(payload.buttons).flatMap((button) => (typeof button.title === 'string' && button.title ? [button.title] : []));
    return buttons.length > 0 ? `${payload.text}\n[buttons: ${buttons.join(' · ')}]` : payload.text;
  }
  // Only a fallback's link is the customer's: a template's (a media template echoed) is Meta's own page.
  const label = [payload.title ?? raw.title, raw.type === 'fallback' ? raw.url : undefined].filter((part) => typeof part === 'string' && part).join(' ');
  return label || `[unsupported attachment: ${raw.type ?? 'unknown'}]`;
}

/** The booking states Meta documents, as an agent reads them. */
const BOOKING_STATUS = new Set(['requested', 'confirmed', 'declined', 'cancelled']);

/**
 * An appointment booked through the Page (Messenger's appointment_booking attachment): its state and
 * when, in the booking's own time zone as the customer chose it (UTC when it names none we know).
 */
function appointmentNote(payload: Record<string, unknown>): string {
  const status = typeof payload.status === 'string' && BOOKING_STATUS.has(payload.status) ? ` ${payload.status}` : '';
  let zone = typeof payload.timezone === 'string' && payload.timezone ? payload.timezone : 'UTC';
  let format: Intl.DateTimeFormat;
  const options = { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' } as const;
  try {
    format = new Intl.DateTimeFormat('en-CA', { ...options, timeZone: zone });
  } catch {
    zone = 'UTC';
    format = new Intl.DateTimeFormat('en-CA', { ...options, timeZone: zone });
  }
  const at = (seconds: unknown): string | undefined => {
    const ms = secondsAsMs(seconds);
    return ms === undefined ? undefined : format.format(ms);
  };
  const [start, end] = [at(payload.start_time), at(payload.end_time)];
  // The same day is written once: 2025-02-15, 01:40–02:40.
  const until = end && start ? `–${end.slice(0, 10) === start.slice(0, 10) ? end.slice(12) : end}` : '';
  return `📅 Appointment${status}${start ? `: ${start}${until} (${zone})` : ''}`;
}

/**
 * A message Meta only says is there (`is_unsupported`: on Instagram a GIF or a sticker, which the
 * API does not pass on): the agent is told so, and where to see it.
 */
function unsupportedNote(channel: ProviderChannel): string {
  const app = channel === 'instagram' ? 'Instagram' : 'Messenger';
  return `[a message ${app} does not pass on to apps (a GIF or a sticker, say): see it in ${app}]`;
}

function messageFromMessaging(channel: ProviderChannel, event: MessagingEvent, handle: string): InboundMessageEvent | undefined {
  const message = event.message;
  if (!message) return undefined;
  // An unsend (Instagram) refers to an earlier message; it is not something the customer wrote.
  if (message.is_deleted) return undefined;
  const attachments: Attachment[] = [];
  const notes: string[] = [];
  for (const raw of records(message.attachments)) {
    const attachment = messagingAttachment(raw);
    // While Meta moved stickers to their own type, it sent each twice (an image and a sticker, one link): one file.
    if (attachment && attachments.some((kept) => kept.url === attachment.url)) continue;
    if (attachment) attachments.push(attachment);
    const coordinates = raw.type === 'location' ? raw.payload?.coordinates : undefined;
    if (coordinates) notes.push(formatLocation(coordinates.lat, coordinates.long, raw.title ?? raw.payload?.title));
    else if (!attachment) notes.push(attachmentNote(raw));
    // A shared reel or post carries its caption as the title: what the agent reads of it.
    else if (attachment.type === 'file' && attachment.name && typeof raw.payload?.title === 'string' && raw.payload.title) notes.push(raw.payload.title);
  }
  // The story a reply answers, as a story mention is shown: a link to it (copied like any file of Meta's).
  const story = message.reply_to?.story;
  if (isRecord(story) && typeof story.url === 'string' && story.url) attachments.push({ type: 'file', url: story.url, name: 'story_reply' });
  let text = message.text || notes.join('\n');
  if (!text && attachments.length === 0) text = message.is_unsupported ? unsupportedNote(channel) : unsupportedText('message');
  return {
    kind: 'message',
    channel,
    handle,
    providerMessageId: message.mid,
    text,
    attachments,
    // A reply to an earlier message names its mid (ours and the customer's alike), no words of it.
    ...replyContext(isRecord(message.reply_to) ? message.reply_to.mid : undefined),
    ...sentAtFromEpoch(event.timestamp, 'ms'),
  };
}

/** Our message ids (ULIDs), which our sends give Messenger as their metadata. */
const OUR_METADATA = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Whether a Meta id (an echo's app_id, an entry's id) is `ours`. Meta may write one as a number past 2^53: compared as Meta's own JSON reads. */
function sameMetaId(id: number | string, ours: string): boolean {
  return typeof id === 'number' ? Number(ours) === id : String(id) === ours;
}

/**
 * An echo: a message the business sent to the customer (the recipient). Ours (our app's id, or our
 * message id as its metadata) are recorded by their send already; one another app sent, Meta's
 * Page inbox, the Instagram app, another tool of the Page's, is the team's too: shown as such. Without
 * our app id configured, or an app_id on the echo, ours cannot be told apart: dropped.
 */
function echoFromMessaging(channel: ProviderChannel, event: MessagingEvent, echoes: EchoSettings): InboundMessageEvent | undefined {
  const message = event.message!;
  const customer = event.recipient?.id;
  const { app_id: appId, metadata } = message;
  // An app id that is not one (a typo) would take our own sends for the team's: as good as none.
  if (!echoes.ownAppId || !/^\d+$/.test(echoes.ownAppId) || !customer || (typeof appId !== 'number' && typeof appId !== 'string')) return undefined;
  if (sameMetaId(appId, echoes.ownAppId) || (typeof metadata === 'string' && OUR_METADATA.test(metadata))) return undefined;
  const content = messageFromMessaging(channel, event, customer);
  return content && { ...content, echo: { name: echoes.senderName } };
}

/** What tells echoes of our own sends from the team's others, and whom those are shown as. */
interface EchoSettings {
  ownAppId: string | undefined;
  senderName: string;
}

function eventsFromMessaging(channel: ProviderChannel, event: MessagingEvent, accountId: string | undefined, echoes: EchoSettings): InboundEvent[] {
  if (event.message?.is_echo) {
    const echo = echoFromMessaging(channel, event, echoes);
    return echo ? [echo] : [];
  }
  const handle = event.sender?.id;
  // The business is never its own customer: what the Page (or account) does itself, a reaction, a
  // read, an edit, would otherwise open a conversation with the Page as the contact.
  if (!handle || handle === accountId) return [];
  const at = isoFromEpoch(event.timestamp, 'ms');
  if (event.message) {
    const message = messageFromMessaging(channel, event, handle);
    return message ? [message] : [];
  }
  if (event.delivery) {
    const { watermark } = event.delivery;
    const deliveredAt = isoFromEpoch(watermark ?? event.timestamp, 'ms');
    const mids = list(event.delivery.mids);
    // Meta documents both as telling what was delivered: the mids name some messages, and the
    // watermark says every message sent before it was (an earlier one the mids leave out, too).
    const ids = [...mids, ...(mids.length === 0 || typeof watermark === 'number' ? [ALL_BEFORE_WATERMARK] : [])];
    return ids.map((id) => ({ kind: 'status', channel, handle, providerMessageId: id, status: 'delivered', at: deliveredAt }));
  }
  if (event.read) {
    const { mid, watermark } = event.read;
    return [
      {
        kind: 'status',
        channel,
        handle,
        providerMessageId: mid ?? ALL_BEFORE_WATERMARK,
        status: 'read',
        at: mid ? at : isoFromEpoch(watermark ?? event.timestamp, 'ms'),
        // Instagram's seen names the last message read: the ones before it were read as well.
        ...(mid ? { coversEarlier: true as const } : {}),
      },
    ];
  }
  if (event.message_edit) {
    // Shown as the other channels' edits are: a message of its own with the new wording, under an id
    // of its own (the original's mid and the edit's count), so a redelivery is still recognised.
    const { mid, text, num_edit } = event.message_edit;
    const count = Number(num_edit);
    // No edit at all (0): the message itself, which its own `message` event brings. An edit that
    // names no message cannot be checked to be of the customer's own.
    if (count === 0 || typeof mid !== 'string' || !mid) return [];
    const edition = Number.isInteger(count) && count > 0 ? count : (event.timestamp ?? at);
    return [
      {
        kind: 'message',
        channel,
        handle,
        providerMessageId: `edit:${mid}:${edition}`,
        text: `(edited) ${typeof text === 'string' && text ? text : '[no text]'}`,
        attachments: [],
        // The consumer stores it only as an edit of this customer's own message (src/domain/inbound.ts).
        edits: mid,
        ...sentAtFromEpoch(event.timestamp, 'ms'),
      },
    ];
  }
  if (event.postback) {
    // A button tap is the customer's answer: it reads as the button's title.
    const { title, payload, mid } = event.postback;
    return [
      {
        kind: 'message',
        channel,
        handle,
        providerMessageId: mid ?? `postback:${handle}:${event.timestamp ?? at}`,
        text: title || payload || '[button]',
        attachments: [],
        ...sentAtFromEpoch(event.timestamp, 'ms'),
      },
    ];
  }
  if (event.reaction) {
    const { mid, action, emoji, reaction } = event.reaction;
    const removed = action === 'unreact';
    return [
      {
        kind: 'message',
        channel,
        handle,
        // Reactions have no id of their own; the target, the action and the time identify a redelivery.
        providerMessageId: `reaction:${mid ?? 'unknown'}:${action ?? 'react'}:${event.timestamp ?? at}`,
        text: removed ? 'removed a reaction from a message' : `reacted ${emoji ?? reaction ?? 'with an emoji'} to a message`,
        attachments: [],
        // Which message: the text cannot say, a console shows it as it shows a reply's quote.
        ...replyContext(mid),
        ...sentAtFromEpoch(event.timestamp, 'ms'),
      },
    ];
  }
  // Opt-ins, referrals, handovers, policy notices: not conversation content.
  return [];
}

/** An id Meta may write as a string or a number. */
function idOf(value: unknown): string | undefined {
  return typeof value === 'string' && value ? value : typeof value === 'number' ? String(value) : undefined;
}

/**
 * Whether an entry is of our Page (Instagram: our professional account). One app may be subscribed
 * to several: another's customers have PSIDs of that Page, which our token cannot answer. Without our
 * id configured (or with one that is no id: a typo would drop every customer), every entry is ours.
 */
function forOurAccount(entry: MessagingEntry, ownAccountId: string | undefined): boolean {
  const id = entry.id;
  return !ownAccountId || !/^\d+$/.test(ownAccountId) || (typeof id !== 'string' && typeof id !== 'number') || sameMetaId(id, ownAccountId);
}

/** The other Pages' (accounts') ids warned about by this instance: once each, as every webhook of theirs is ignored alike. */
const warnedOtherAccounts = new Set<string>();
const MAX_WARNED_ACCOUNTS = 100;

/**
 * An entry ignored as another Page's (account's) is logged, once per id and instance: a wrong
 * but all-digits id configured drops every customer with a 200, and only this says so.
 */
function warnIgnoredAccount(channel: ProviderChannel, entry: MessagingEntry, ownAccountId: string, setting: string): void {
  const seen = idOf(entry.id) ?? '';
  const key = `${channel}#${seen}#${ownAccountId}`;
  if (warnedOtherAccounts.has(key) || warnedOtherAccounts.size >= MAX_WARNED_ACCOUNTS) return;
  warnedOtherAccounts.add(key);
  console.warn(`ignored the ${channel} events of entry ${seen}: not the configured ${setting} ${ownAccountId} (if ${seen} is your own, ${setting} is wrong)`, {
    channel,
    entryId: seen,
    configured: ownAccountId,
  });
}

/**
 * A configured id that is no Meta id (a Page's username, a typo) filters nothing, so that no
 * customer is dropped; said once per instance, since the setting does not do what it was set for.
 */
function warnUnusableAccount(channel: ProviderChannel, ownAccountId: string, setting: string): void {
  const key = `${channel}#unusable#${ownAccountId}`;
  if (warnedOtherAccounts.has(key) || warnedOtherAccounts.size >= MAX_WARNED_ACCOUNTS) return;
  warnedOtherAccounts.add(key);
  console.warn(`${setting} ${ownAccountId} is not a ${channel} id (digits only): the events of every entry are taken`, { channel, configured: ownAccountId });
}

export function normalizeMessaging(
  channel: ProviderChannel,
  rawBody: string,
  object: string,
  echoes: EchoSettings,
  ownAccountId?: string,
  /** The variable that configures ownAccountId, named in the warning about another account's entry. */
  accountSetting = 'account id',
): InboundEvent[] {
  if (ownAccountId && !/^\d+$/.test(ownAccountId)) warnUnusableAccount(channel, ownAccountId, accountSetting);
  // While another app has the thread (handover protocol, conversation routing), the customer's
  // messages come as `standby` events of the same shape: ours to see, not to lose.
  // The entry's id is the Page's (Instagram: the professional account's): a sender of that id is the business itself.
  const entries = (metaEntries(rawBody, object) as MessagingEntry[]).filter((e) => {
    if (!isRecord(e)) return false;
    if (forOurAccount(e, ownAccountId)) return true;
    warnIgnoredAccount(channel, e, ownAccountId!, accountSetting);
    return false;
  });
  return entries.flatMap((e) =>
    [...list(e?.messaging), ...list(e?.standby)].flatMap((event) =>
      isRecord(event) ? leniently(`${channel} messaging event`, () => eventsFromMessaging(channel, event, isRecord(e) ? idOf(e.id) : undefined, echoes)) : [],
    ),
  );
}

/** Messenger and Instagram windows: 24 h standard messaging, then the HUMAN_AGENT tag up to 7 days. */
export const META_MESSAGING_WINDOW = { openMs: DAY_MS, taggedMs: 7 * DAY_MS } satisfies ServiceWindow;

export function metaMessagingWindow(lastInboundAt: string | undefined, now: Date): WindowDecision {
  const elapsed = elapsedSince(lastInboundAt, now);
  if (elapsed !== undefined && elapsed <= META_MESSAGING_WINDOW.openMs) return { allowed: true };
  if (elapsed !== undefined && elapsed <= META_MESSAGING_WINDOW.taggedMs) return { allowed: true, tag: HUMAN_AGENT_TAG };
  return {
    allowed: false,
    code: 'outside_window',
    message:
      elapsed === undefined
        ? 'The customer has not written on this channel yet, so it cannot be messaged first.'
        : `The customer last wrote ${Math.floor(elapsed / HOUR_MS)} hours ago; replies are only allowed within 7 days.`,
  };
}

const sendApiDialect: ProviderDialect = {
  messageId: (body) => (isRecord(body) && typeof body.message_id === 'string' ? body.message_id : undefined),
  errorMessage: graphErrorMessage,
  retryable: graphErrorRetryable,
};

const SEND_API_ATTACHMENT_TYPES = new Set(['image', 'audio', 'video', 'file']);

export interface MetaMessagingConfig {
  channel: ProviderChannel;
  /** Webhook `object` value. */
  object: string;
  defaultBaseUrl: string;
  credentialDefaults: ChannelAdapter['credentialDefaults'];
  /**
   * `appId`, our Meta app's id: with it, echoes of other apps' sends (the Page inbox) are stored.
   * `accountId`, our Page's (Instagram: account's) id: with it, other Pages' entries are ignored.
   */
  optionalCredentials: ChannelAdapter['optionalCredentials'];
  /** Whom a message the business sent from outside Conversa is shown as. */
  echoSender: string;
  /**
   * Messenger's message.metadata comes back in echoes, tying an echo to our message id.
   * Instagram does not document the field, so it is not sent there.
   */
  sendsMetadata: boolean;
  /** The most text one message may carry, as the Send API counts it; longer texts go out in parts. */
  textLimit: { max: number; measure: TextMeasure };
  mediaLimits: MediaLimits;
  mediaTypes?: MediaTypes;
}

function sendApiCalls(message: OutboundSend, token: string, baseUrl: string, config: MetaMessagingConfig): { calls: ProviderCall[]; primary: number } {
  const url = `${baseUrl}/me/messages?access_token=${encodeURIComponent(token)}`;
  const tagged = message.tag ? { messaging_type: 'MESSAGE_TAG', tag: message.tag } : { messaging_type: 'RESPONSE' };
  const metadata = config.sendsMetadata ? { metadata: message.idempotencyKey } : {};
  const texts = (text: string) => splitText(text, config.textLimit.max, config.textLimit.measure).map((part) => jsonCall(url, body({ text: part })));
  const body = (content: Record<string, unknown>) => ({ recipient: { id: message.to }, ...tagged, message: { ...content, ...metadata } });
  const calls: ProviderCall[] = [];
  const unsendable: string[] = [];
  if (message.text) calls.push(...texts(message.text));
  for (const attachment of message.attachments) {
    const type = SEND_API_ATTACHMENT_TYPES.has(attachment.type) ? attachment.type : attachment.type === 'sticker' ? 'image' : undefined;
    if (type) calls.push(jsonCall(url, body({ attachment: { type, payload: { url: attachment.url, is_reusable: true } } })));
    else unsendable.push(attachment.url);
  }
  // The Send API takes one attachment per message; what it cannot carry travels as a link.
  if (unsendable.length > 0) calls.push(...texts(unsendable.join('\n')));
  return { calls, primary: 0 };
}

/** Where Meta serves the files customers send on Messenger and Instagram. */
const META_CDN_HOST = /(^|\.)(fbcdn\.net|fbsbx\.com|cdninstagram\.com)$/i;

/**
 * Whether a Messenger or Instagram attachment is a file of Meta's: a link to its CDN hosts, or to
 * the configured API's own (the local stand-in). A link of another host is one the customer
 * shared, not a file to copy. Told by the link alone, so the inbound path queues no copy job for it.
 */
export function isMetaCdnLink(reference: string, baseUrl: string): boolean {
  let url: URL;
  try {
    url = new URL(reference);
  } catch {
    return false;
  }
  return (url.protocol === 'https:' && META_CDN_HOST.test(url.hostname)) || url.href.startsWith(`${baseUrl}/`);
}

/**
 * A customer's Messenger or Instagram file, from the CDN link its webhook named (no credentials:
 * the link is signed); undefined for a link that is not Meta's file (isMetaCdnLink).
 */
export async function fetchMetaCdnFile(reference: string, context: SendContext): Promise<MediaResult | undefined> {
  if (!isMetaCdnLink(reference, context.baseUrl)) return undefined;
  // Lookaside links redirect to the CDN: every hop must be one of these too.
  const allowed = (target: URL) => isMetaCdnLink(target.href, context.baseUrl);
  return downloadMedia(new URL(reference).href, {}, context, undefined, allowed);
}

export function createMetaMessagingAdapter(config: MetaMessagingConfig): ChannelAdapter {
  return {
    channel: config.channel,
    credentialDefaults: config.credentialDefaults,
    ...(config.optionalCredentials ? { optionalCredentials: config.optionalCredentials } : {}),
    defaultBaseUrl: config.defaultBaseUrl,
    challenge: (request: WebhookRequest, credentials: Credentials) => metaChallenge(request, credential(credentials, 'verifyToken')),
    verify: (request: WebhookRequest, credentials: Credentials) => verifyMetaSignature(request, credential(credentials, 'appSecret')),
    normalize: (request: WebhookRequest, credentials: Credentials) =>
      normalizeMessaging(
        config.channel,
        request.rawBody,
        config.object,
        { ownAppId: credential(credentials, 'appId'), senderName: config.echoSender },
        credential(credentials, 'accountId'),
        config.optionalCredentials?.accountId?.env,
      ),
    ack: metaAck,
    window: (lastInboundAt: string | undefined, now: Date) => metaMessagingWindow(lastInboundAt, now),
    serviceWindow: META_MESSAGING_WINDOW,
    async send(message: OutboundSend, context: SendContext): Promise<SendResult> {
      const token = credential(context.credentials, 'accessToken');
      if (!token) return missingCredential('accessToken');
      const { calls, primary } = sendApiCalls(message, token, context.baseUrl, config);
      return callProviderParts(calls, primary, context, sendApiDialect);
    },
    copyMedia: fetchMetaCdnFile,
    canCopyMedia: isMetaCdnLink,
    mediaLimits: config.mediaLimits,
    ...(config.mediaTypes ? { mediaTypes: config.mediaTypes } : {}),
  };
}
