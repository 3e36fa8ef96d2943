/**
 * WhatsApp Cloud API. Webhooks: entry[].changes[].value.messages[] (customer messages),
 * value.statuses[] (of our sends, and of the echoes) and value.message_echoes[] (the smb_message_echoes field: what the
 * team sent from the WhatsApp Business app on the same number, "coexistence").
 * Send: POST {base}/{phone-number-id}/messages.
 */
import type { Attachment, InboundEvent, InboundMessageEvent, InboundMovedEvent, InboundStatusEvent, ReplyTo } from '../domain/types';
import {
  DAY_MS,
  HOUR_MS,
  callProviderParts,
  credential,
  elapsedSince,
  formatLocation,
  geoUri,
  isRecord,
  isoFromEpoch,
  leniently,
  records,
  sentAtFromEpoch,
  secondsAsMs,
  jsonCall,
  list,
  missingCredential,
  unsupportedText,
  type ProviderCall,
  type ProviderDialect,
  splitText,
  downloadMedia,
  getProviderJson,
  mediaAccess,
  refuseLarge,
  replyContext,
  KB,
  MB,
  sharedContact,
} from './common';
import { phoneKey } from '../domain/phone-numbers';
import { graphErrorMessage, graphErrorRetryable, metaAck, metaChallenge, metaEntries, verifyMetaSignature } from './meta';
import type { ChannelAdapter, MediaResult, OutboundSend, SendContext, SendResult, ServiceWindow, WindowDecision } from './types';

interface WaMedia {
  id?: string;
  link?: string;
  mime_type?: string;
  caption?: string;
  filename?: string;
}

interface WaContactCard {
  name?: { formatted_name?: string; first_name?: string; last_name?: string };
  phones?: { phone?: string; wa_id?: string }[];
  emails?: { email?: string }[];
}

interface WaMessage {
  /** The customer's number; left out for one who adopted a username and keeps it hidden. */
  from?: string;
  /** The customer's business-scoped user id (BSUID, `US.1349…`), which every message carries. */
  from_user_id?: string;
  id?: string;
  timestamp?: string;
  type?: string;
  text?: { body?: string };
  image?: WaMedia;
  audio?: WaMedia;
  video?: WaMedia;
  document?: WaMedia;
  sticker?: WaMedia;
  location?: { latitude?: number; longitude?: number; name?: string; address?: string; url?: string };
  contacts?: WaContactCard[];
  interactive?: {
    type?: string;
    button_reply?: { id?: string; title?: string };
    list_reply?: { id?: string; title?: string; description?: string };
    /** A WhatsApp Flow (or address form) the customer filled in: its answers as a JSON string. */
    nfm_reply?: { body?: string; name?: string; response_json?: string };
    /** The customer's answer to a call permission request: accept or reject, for a while (expiration_timestamp, seconds) or for good. */
    call_permission_reply?: { response?: string; is_permanent?: boolean; expiration_timestamp?: number | string; response_source?: string };
  };
  /** Products ordered from the business's catalog (a cart sent as a message). */
  order?: { catalog_id?: string; text?: string; product_items?: { product_retailer_id?: string; quantity?: number | string; item_price?: number | string; currency?: string }[] };
  button?: { text?: string; payload?: string };
  reaction?: { message_id?: string; emoji?: string };
  /** A notice from WhatsApp: `user_changed_number` names the customer's new number (its wa_id); `from` is the old one. */
  system?: { body?: string; type?: string; wa_id?: string };
  /** A customer's edit of an earlier message (text, or a caption): the message as it now reads. */
  edit?: { original_message_id?: string; message?: WaMessage };
  unsupported?: { type?: string };
  errors?: { code?: number; title?: string }[];
  /**
   * Forwarded, written from a product's "Message business" button (the product it was about), or a
   * reply to an earlier message (a swipe-reply): `id` is that message's wamid, `from` who wrote it.
   */
  context?: {
    forwarded?: boolean;
    frequently_forwarded?: boolean;
    referred_product?: { catalog_id?: string; product_retailer_id?: string };
    id?: string;
    from?: string;
  };
  /** The click-to-WhatsApp ad (or post) the customer came from. */
  referral?: { source_type?: string; source_url?: string; headline?: string; body?: string };
  /** A group of the Groups API the message was written in (`from` is then one of its members). */
  group_id?: string;
}

/** A smb_message_echoes entry: a message as sent (its type and content as in `messages`), `from` the business, `to` the customer. */
interface WaEcho extends WaMessage {
  to?: string;
}

interface WaStatus {
  id?: string;
  biz_opaque_callback_data?: string;
  status?: string;
  timestamp?: string;
  /** The number a send went to; left out when it went to a BSUID. */
  recipient_id?: string;
  recipient_user_id?: string;
  errors?: { code?: number; title?: string; message?: string; error_data?: { details?: string } }[];
}

interface WaValue {
  /** The business number that received the messages (or sent what the statuses are of). */
  metadata?: { phone_number_id?: string | number };
  contacts?: { wa_id?: string; user_id?: string; profile?: { name?: string; username?: string } }[];
  messages?: WaMessage[];
  statuses?: WaStatus[];
  message_echoes?: WaEcho[];
}

interface WaEntry {
  changes?: { field?: string; value?: WaValue }[];
}

const MEDIA_TYPES: Record<string, Attachment['type']> = {
  image: 'image',
  audio: 'audio',
  video: 'video',
  document: 'file',
  sticker: 'sticker',
};

function mediaAttachment(type: string, media: WaMedia): Attachment {
  const attachment: Attachment = {
    type: MEDIA_TYPES[type] ?? 'file',
    // Inbound media comes as an id; fetching it needs the access token, so the id is kept as a reference.
    url: media.link ?? `whatsapp-media://${media.id ?? ''}`,
  };
  if (media.mime_type) attachment.mimeType = media.mime_type;
  if (media.filename) attachment.name = media.filename;
  return attachment;
}

/** A shared card: its name, then every number and email it has (a card often holds a home and a work number), a tel: link each number. */
function contactCard(card: WaContactCard): { line: string; attachments: Attachment[] } {
  const name = card.name?.formatted_name ?? [card.name?.first_name, card.name?.last_name].filter(Boolean).join(' ');
  const strings = (values: unknown[]) => values.filter((value): value is string => typeof value === 'string' && value !== '');
  const phones = strings(records(card.phones).map((p) => p.phone));
  const emails = strings(records(card.emails).map((e) => e.email));
  const { text, attachments } = sharedContact(name, phones, emails);
  return { line: text, attachments };
}

/** What a cart sent from the catalog holds, one line a product: an agent sees what was ordered. */
function orderText(order: WaMessage['order']): string {
  const items = records(order?.product_items).map((item) => {
    const price = item.item_price !== undefined ? `, ${String(item.item_price)}${item.currency ? ` ${item.currency}` : ''} each` : '';
    return `• ${String(item.quantity ?? 1)} × ${item.product_retailer_id ?? 'a product'}${price}`;
  });
  const note = typeof order?.text === 'string' && order.text ? [order.text] : [];
  return ['🛒 Order', ...items, ...note].join('\n');
}

/**
 * A filled-in Flow (nfm_reply): its body is a fixed "Sent", the answers are in response_json. Each
 * answer reads `field: value` (the flow's token is no answer); a body that cannot be read stays as it is.
 */
function flowAnswers(reply: { body?: string; response_json?: string }): string | undefined {
  let answers: unknown;
  try {
    answers = typeof reply.response_json === 'string' ? JSON.parse(reply.response_json) : undefined;
  } catch {
    answers = undefined;
  }
  const lines = isRecord(answers)
    ? Object.entries(answers)
        .filter(([key, value]) => key !== 'flow_token' && value !== null && value !== '')
        .map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    : [];
  const body = typeof reply.body === 'string' && reply.body ? reply.body : undefined;
  return lines.length > 0 ? [body ?? 'Form sent', ...lines].join('\n') : body;
}

/**
 * A reply to a call permission request: whether the customer lets the business call them, and
 * until when (a temporary permission expires: agents must know whether a call may still be placed).
 */
function callPermissionText(reply: unknown): string | undefined {
  if (!isRecord(reply) || (reply.response !== 'accept' && reply.response !== 'reject')) return undefined;
  const source = reply.response_source === 'automatic' ? ' (automatically)' : '';
  if (reply.response === 'reject') return `📞 Declined calls from the business${source}`;
  const expiry = secondsAsMs(reply.expiration_timestamp);
  const until = reply.is_permanent === true ? ' for good' : expiry !== undefined ? ` until ${new Date(expiry).toISOString()}` : '';
  return `📞 Allowed calls from the business${until}${source}`;
}

function content(message: WaMessage): { text: string; attachments: Attachment[] } {
  const type = message.type ?? 'unknown';
  const media = MEDIA_TYPES[type] ? (message[type as keyof WaMessage] as WaMedia | undefined) : undefined;
  if (media) return { text: media.caption ?? '', attachments: [mediaAttachment(type, media)] };
  switch (type) {
    case 'text':
      return { text: message.text?.body ?? '', attachments: [] };
    case 'location': {
      const { latitude, longitude, name, address, url } = message.location ?? {};
      // A place shared from the map carries its page (the business's site), which the agent may need.
      const page = typeof url === 'string' && /^https?:\/\/\S+$/i.test(url) ? `\n${url}` : '';
      return { text: formatLocation(latitude, longitude, name, address) + page, attachments: [{ type: 'location', url: geoUri(latitude, longitude) }] };
    }
    case 'contacts': {
      const cards = records(message.contacts).map(contactCard);
      return {
        text: cards.map((c) => c.line).join('\n') || 'Shared contact',
        attachments: cards.flatMap((c) => c.attachments),
      };
    }
    case 'interactive': {
      const i = message.interactive ?? {};
      const title =
        i.button_reply?.title ?? i.list_reply?.title ?? (isRecord(i.nfm_reply) ? flowAnswers(i.nfm_reply) : undefined) ?? (i.type === 'call_permission_reply' ? callPermissionText(i.call_permission_reply) : undefined);
      return { text: title ?? unsupportedText(`interactive ${i.type ?? ''}`.trim()), attachments: [] };
    }
    case 'order':
      return { text: orderText(message.order), attachments: [] };
    case 'button':
      return { text: message.button?.text ?? message.button?.payload ?? '[button]', attachments: [] };
    case 'reaction': {
      // An empty emoji is WhatsApp's way of saying the reaction was removed.
      const emoji = message.reaction?.emoji;
      return { text: emoji ? `reacted ${emoji} to a message` : 'removed a reaction from a message', attachments: [] };
    }
    case 'request_welcome':
      // The customer opened a chat with the business for the first time (Meta invites a welcome message).
      return { text: 'opened the chat', attachments: [] };
    case 'system':
      return { text: message.system?.body ?? unsupportedText('system'), attachments: [] };
    case 'edit': {
      // Shown as Telegram's edits are: a message of its own with the new wording. Only a text or a
      // caption can be edited, so the file (already on the original message) is not taken again.
      const edited = message.edit?.message;
      const text = isRecord(edited) && edited.type !== 'edit' ? content(edited).text : '';
      return { text: `(edited) ${text || '[no text]'}`, attachments: [] };
    }
    default:
      return { text: unsupportedText(message.unsupported?.type ?? type), attachments: [] };
  }
}

/** A non-empty string, or nothing: ids are never trusted to be what the reference says. */
const nonEmpty = (value: unknown): string | undefined => (typeof value === 'string' && value ? value : undefined);

function toMessage(message: WaMessage, value: WaValue): InboundMessageEvent | undefined {
  // A customer who adopted a WhatsApp username may keep their number from businesses: their
  // messages then name them by their business-scoped user id alone, which replies go to as well.
  const phone = nonEmpty(message.from);
  const userId = nonEmpty(message.from_user_id);
  const handle = phone ?? userId;
  if (!handle) return undefined;
  // A customer deleting an earlier message is nothing they wrote (as Instagram's unsends): it would
  // only reopen the conversation with a placeholder.
  if (message.type === 'revoke') return undefined;
  // Words said to a group are not the member's private conversation, where a reply would go to
  // them alone; Conversa keeps no WhatsApp groups (as it keeps no Telegram channel posts).
  if (message.group_id !== undefined) return undefined;
  const contacts = records(value.contacts);
  // A wa_id may be the number's other form (phoneKey); one entry alone is the sender's, but among
  // several customers' entries, one that names nobody of this message is another customer's.
  const contact =
    contacts.find((c) => (phone !== undefined && c.wa_id === phone) || (userId !== undefined && c.user_id === userId)) ??
    (phone !== undefined ? contacts.find((c) => typeof c.wa_id === 'string' && phoneKey(c.wa_id) === phoneKey(phone)) : undefined) ??
    (contacts.length === 1 ? contacts[0] : undefined);
  const profile: InboundMessageEvent['profile'] = phone ? { phone: `+${phone}` } : {};
  const name = nonEmpty(contact?.profile?.name) ?? nonEmpty(contact?.profile?.username);
  if (name) profile.name = name;
  // A message naming both the number and the BSUID links them: later messages by either id reach
  // the one conversation (replies keep going to the number). The BSUID is the message's own, or
  // the one its contact entry gives for that number.
  const linked = phone && (userId ?? (contact?.wa_id === phone ? nonEmpty(contact.user_id) : undefined));
  return {
    kind: 'message',
    channel: 'whatsapp',
    handle,
    ...(linked && BSUID.test(linked) ? { otherHandle: linked } : {}),
    ...(Object.keys(profile).length > 0 ? { profile } : {}),
    providerMessageId: message.id,
    ...withContext(content(message), message),
    ...quoted(message),
    ...sentAtFromEpoch(message.timestamp, 's'),
  };
}

/**
 * A customer who changed their number: WhatsApp's `user_changed_number` notice comes from the old
 * number and names the new one's wa_id. Their conversation goes on under the new number (replies
 * go there, its messages land there: src/domain/inbound.ts ingestMove), as a Telegram group's does
 * after its upgrade; the notice itself stays a message. A notice naming no usable wa_id (a customer
 * known by their BSUID alone may keep the new number hidden), or the same number in its other form
 * (one handle item already: src/store/keys.ts), moves nothing.
 */
function toMove(message: WaMessage): InboundMovedEvent | undefined {
  if (message.type !== 'system' || !isRecord(message.system) || message.system.type !== 'user_changed_number') return undefined;
  if (message.group_id !== undefined) return undefined;
  const from = nonEmpty(message.from) ?? nonEmpty(message.from_user_id);
  const to = nonEmpty(message.system.wa_id);
  if (!from || !to || !/^\d+$/.test(to) || phoneKey(from) === phoneKey(to)) return undefined;
  return { kind: 'moved', channel: 'whatsapp', handle: to, from, profile: { phone: `+${to}` } };
}

/**
 * The message a swipe-reply answers, or a reaction is on, by its wamid (ours and the customer's
 * alike); WhatsApp hands over no words of it. A reaction's own text cannot say which message it is.
 */
function quoted(message: WaMessage): { replyTo?: ReplyTo } {
  if (message.type === 'reaction') return replyContext(isRecord(message.reaction) ? message.reaction.message_id : undefined);
  return replyContext(isRecord(message.context) ? message.context.id : undefined);
}

/**
 * What the customer's words do not say but the agent needs: the product they asked about (a
 * "Message business" button on a catalog item), the ad they came from, that they forwarded it.
 * Each is a bracketed line after the message's own text.
 */
function withContext(body: { text: string; attachments: Attachment[] }, message: WaMessage): { text: string; attachments: Attachment[] } {
  const notes: string[] = [];
  const context = isRecord(message.context) ? message.context : {};
  const product = isRecord(context.referred_product) ? nonEmpty(context.referred_product.product_retailer_id) : undefined;
  if (product) notes.push(`[about product ${product}]`);
  const referral = isRecord(message.referral) ? message.referral : undefined;
  const source = referral ? [nonEmpty(referral.headline), nonEmpty(referral.source_url)].filter(Boolean).join(' ') : '';
  if (referral && source) notes.push(`[from ${referral.source_type === 'post' ? 'a post' : 'an ad'}: ${source}]`);
  if (context.frequently_forwarded === true) notes.push('[forwarded many times]');
  else if (context.forwarded === true) notes.push('[forwarded]');
  return notes.length > 0 ? { ...body, text: [body.text, ...notes].filter(Boolean).join('\n') } : body;
}

/** A business-scoped user id (`US.13491208655302741918`, a parent one `US.ENT.…`): never a wa_id, which is digits. */
const BSUID = /^[A-Za-z]{2}\./;

/** A WhatsApp id (wa_id) is the phone number's digits without the plus. */
function waId(phone: string): string {
  return phone.replace(/\D/g, '');
}

/** Whom the team's messages from the WhatsApp Business app are shown as. */
const ECHO_SENDER = 'WhatsApp Business app';

/**
 * A message the team sent from the WhatsApp Business app (or a device linked to it) on the number
 * the Cloud API shares: the team's message in the customer's conversation, stored as a Page-inbox
 * echo of Messenger is (src/domain/inbound.ts). Meta sends these for the app's sends only, never
 * for the API's, so no app id is needed to tell ours apart.
 */
function toEcho(echo: WaEcho): InboundMessageEvent | undefined {
  // `to` is the number as the app addressed it (Meta's reference writes it with a plus).
  const handle = typeof echo.to === 'string' ? waId(echo.to) : '';
  if (!handle || typeof echo.id !== 'string' || !echo.id) return undefined;
  // A deletion on the phone names an earlier message: nothing the team wrote.
  if (echo.type === 'revoke') return undefined;
  return {
    kind: 'message',
    channel: 'whatsapp',
    handle,
    providerMessageId: echo.id,
    ...content(echo),
    ...quoted(echo),
    ...sentAtFromEpoch(echo.timestamp, 's'),
    echo: { name: ECHO_SENDER },
  };
}

const STATUS_MAP: Record<string, InboundStatusEvent['status']> = {
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  failed: 'failed',
};

function toStatus(status: WaStatus): InboundStatusEvent | undefined {
  const mapped = status.status ? STATUS_MAP[status.status] : undefined;
  // 'deleted', 'warning' and future states do not change what the agent sees.
  // A send to a customer's BSUID (one without a number: toMessage) names them by it alone.
  const handle = nonEmpty(status.recipient_id) ?? nonEmpty(status.recipient_user_id);
  if (!mapped || !status.id || !handle) return undefined;
  const event: InboundStatusEvent = {
    kind: 'status',
    channel: 'whatsapp',
    handle,
    providerMessageId: status.id,
    status: mapped,
    at: isoFromEpoch(status.timestamp, 's'),
  };
  if (typeof status.biz_opaque_callback_data === 'string') event.reference = status.biz_opaque_callback_data;
  const error = list(status.errors)[0];
  if (error) {
    const detail = error.error_data?.details ?? error.message;
    event.error = `${error.title ?? 'Error'}${detail && detail !== error.title ? `: ${detail}` : ''} (code ${error.code ?? 'unknown'})`;
  }
  return event;
}

/**
 * Whether a change concerns our business number. One app may be subscribed to several numbers (of
 * the account, or of other accounts): what another number received is not ours to answer, since
 * replies go from the configured number and the customer's window is with the number they wrote to.
 */
function forOurNumber(value: WaValue, phoneNumberId: string | undefined): boolean {
  const receiver = isRecord(value.metadata) ? value.metadata.phone_number_id : undefined;
  return !phoneNumberId || (typeof receiver !== 'string' && typeof receiver !== 'number') || String(receiver) === phoneNumberId;
}

function normalizeWhatsApp(rawBody: string, phoneNumberId: string | undefined): InboundEvent[] {
  const events: InboundEvent[] = [];
  for (const e of metaEntries(rawBody, 'whatsapp_business_account') as WaEntry[]) {
    for (const change of list(e?.changes)) {
      const value = change?.value;
      if (typeof value !== 'object' || value === null || !forOurNumber(value, phoneNumberId)) continue;
      for (const message of list(value.messages)) {
        events.push(...leniently('WhatsApp message', () => (isRecord(message) ? [toMessage(message, value), toMove(message)].filter((e) => e !== undefined) : [])));
      }
      for (const status of list(value.statuses)) {
        events.push(...leniently('WhatsApp status', () => (isRecord(status) ? [toStatus(status)].filter((e) => e !== undefined) : [])));
      }
      for (const echo of list(value.message_echoes)) {
        events.push(...leniently('WhatsApp message echo', () => (isRecord(echo) ? [toEcho(echo)].filter((e) => e !== undefined) : [])));
      }
    }
  }
  return events;
}

/** The customer-service window: 24 h of free-form replies, then templates only. */
const SERVICE_WINDOW: ServiceWindow = { openMs: DAY_MS };

function whatsappWindow(lastInboundAt: string | undefined, now: Date, hasTemplate: boolean): WindowDecision {
  const elapsed = elapsedSince(lastInboundAt, now);
  if ((elapsed !== undefined && elapsed < SERVICE_WINDOW.openMs) || hasTemplate) return { allowed: true };
  return {
    allowed: false,
    code: 'template_required',
    message:
      elapsed === undefined
        ? 'The customer has not written on WhatsApp yet: an approved template is required to start the conversation.'
        : `The customer last wrote ${Math.floor(elapsed / HOUR_MS)} hours ago, outside WhatsApp's 24-hour window: an approved template is required.`,
  };
}

const dialect: ProviderDialect = {
  messageId(body) {
    if (!isRecord(body)) return undefined;
    const id = list(body.messages as { id?: unknown }[])[0]?.id;
    return typeof id === 'string' ? id : undefined;
  },
  errorMessage: graphErrorMessage,
  retryable: graphErrorRetryable,
};

/** Media objects that accept a caption; audio and stickers do not. */
const CAPTIONED = new Set(['image', 'video', 'document']);
/** The Cloud API's limits, in characters: a text body, and a caption. */
const TEXT_LIMIT = 4096;
const CAPTION_LIMIT = 1024;
const OUTBOUND_MEDIA: Record<string, string> = { image: 'image', video: 'video', audio: 'audio', sticker: 'sticker' };

function outboundPayloads(message: OutboundSend): { payloads: Record<string, unknown>[]; primary: number } {
  if (message.template) {
    const { name, language, params } = message.template;
    const template: Record<string, unknown> = { name, language: { code: language ?? 'en_US' } };
    if (params && params.length > 0) {
      template.components = [{ type: 'body', parameters: params.map((text) => ({ type: 'text', text })) }];
    }
    return { payloads: [{ type: 'template', template }], primary: 0 };
  }
  const payloads: Record<string, unknown>[] = [];
  let text = message.text;
  let primary = -1;
  for (const attachment of message.attachments) {
    if (attachment.type === 'location' || attachment.type === 'contact') {
      // No URL form exists for these: they travel as a link in the text.
      text = [text, attachment.url].filter(Boolean).join('\n');
      continue;
    }
    const type = OUTBOUND_MEDIA[attachment.type] ?? 'document';
    const media: Record<string, unknown> = { link: attachment.url };
    if (type === 'document' && attachment.name) media.filename = attachment.name;
    if (text && CAPTIONED.has(type) && primary === -1 && text.length <= CAPTION_LIMIT) {
      media.caption = text;
      primary = payloads.length;
    }
    payloads.push({ type, [type]: media });
  }
  if (primary === -1 && text) {
    payloads.unshift(...splitText(text, TEXT_LIMIT).map((body) => ({ type: 'text', text: { body, preview_url: false } })));
    primary = 0;
  }
  return { payloads, primary: Math.max(primary, 0) };
}

async function sendWhatsApp(message: OutboundSend, context: SendContext): Promise<SendResult> {
  const token = credential(context.credentials, 'accessToken');
  if (!token) return missingCredential('accessToken');
  const phoneNumberId = credential(context.credentials, 'phoneNumberId');
  if (!phoneNumberId) return missingCredential('phoneNumberId');
  const url = `${context.baseUrl}/${encodeURIComponent(phoneNumberId)}/messages`;
  const { payloads, primary } = outboundPayloads(message);
  const calls: ProviderCall[] = payloads.map((payload) =>
    jsonCall(
      url,
      {
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        // A customer known by their BSUID alone is addressed by it as `recipient` (the Cloud API's
        // `to` takes a number, and wins when both are given).
        ...(BSUID.test(message.to) ? { recipient: message.to } : { to: message.to }),
        ...payload,
        // The Cloud API has no idempotency key; this opaque field comes back in status webhooks,
        // so a status leads straight to our message.
        biz_opaque_callback_data: message.reference,
      },
      { authorization: `Bearer ${token}` },
    ),
  );
  return callProviderParts(calls, primary, context, dialect);
}

const MEDIA_SCHEME = 'whatsapp-media://';

/** GET /{media-id} gives a short-lived URL, fetched with the same token (Cloud API media). */
async function fetchWhatsAppMedia(reference: string, context: SendContext): Promise<MediaResult | undefined> {
  const access = mediaAccess(reference, MEDIA_SCHEME, 'accessToken', context);
  if (!access || 'ok' in access) return access;
  const auth = { authorization: `Bearer ${access.secret}` };
  const meta = await getProviderJson(`${context.baseUrl}/${encodeURIComponent(access.id)}`, auth, context);
  if (!meta.ok) return meta;
  const info = isRecord(meta.body) ? meta.body : {};
  const url = typeof info.url === 'string' ? info.url : undefined;
  // The token goes along only over TLS, or to the API's own host (the local stand-in).
  if (!url || !sameOriginOrHttps(url, context.baseUrl)) return { ok: false, status: 502, error: 'the provider gave no usable download URL' };
  const large = refuseLarge(info.file_size, context);
  if (large) return large;
  return downloadMedia(url, auth, context, typeof info.mime_type === 'string' ? info.mime_type : undefined);
}

function sameOriginOrHttps(url: string, baseUrl: string): boolean {
  try {
    const target = new URL(url);
    return target.protocol === 'https:' || target.origin === new URL(baseUrl).origin;
  } catch {
    return false;
  }
}

export const whatsappAdapter: ChannelAdapter = {
  channel: 'whatsapp',
  credentialDefaults: {
    appSecret: { env: 'WHATSAPP_APP_SECRET', dev: 'dev-whatsapp-app-secret' },
    verifyToken: { env: 'WHATSAPP_VERIFY_TOKEN', dev: 'dev-whatsapp-verify-token' },
    accessToken: { env: 'WHATSAPP_ACCESS_TOKEN', dev: 'dev-whatsapp-access-token' },
    phoneNumberId: { env: 'WHATSAPP_PHONE_NUMBER_ID', dev: '100000000000001' },
  },
  defaultBaseUrl: 'https://graph.facebook.com/v21.0',
  statusesCarryReference: true,
  challenge: (request, credentials) => metaChallenge(request, credential(credentials, 'verifyToken')),
  verify: (request, credentials) => verifyMetaSignature(request, credential(credentials, 'appSecret')),
  normalize: (request, credentials) => normalizeWhatsApp(request.rawBody, credential(credentials, 'phoneNumberId')),
  ack: metaAck,
  window: whatsappWindow,
  serviceWindow: SERVICE_WINDOW,
  handleForPhone: waId,
  send: sendWhatsApp,
  // Cloud API media limits; a file too large for its kind goes as a document.
  mediaLimits: { image: 5 * MB, video: 16 * MB, audio: 16 * MB, sticker: 500 * KB, file: 100 * MB },
  // The types Meta lists for Cloud API sends. A .zip or .odt would be taken with a 202 and fail at
  // Meta: refused when the agent sends it. Documents are the listed ones, and the media types above
  // too, so that a photo too large for an image still goes as a document.
  mediaTypes: {
    kinds: {
      image: /^image\/(jpeg|png)$/i,
      video: /^video\/(mp4|3gpp?)$/i,
      audio: /^audio\/(aac|amr|mpeg|mp4|ogg)$/i,
      file: /^(text\/plain|application\/(pdf|msword|vnd\.ms-excel|vnd\.ms-powerpoint|vnd\.openxmlformats-officedocument\.(wordprocessingml\.document|spreadsheetml\.sheet|presentationml\.presentation))|image\/(jpeg|png)|video\/(mp4|3gpp?)|audio\/(aac|amr|mpeg|mp4|ogg))$/i,
    },
    described: 'JPEG and PNG images, MP4 and 3GP video, AAC, AMR, MP3, M4A and Ogg (Opus) audio, and PDF, Word, Excel, PowerPoint and plain-text documents',
  },
  fetchMedia: fetchWhatsAppMedia,
};
