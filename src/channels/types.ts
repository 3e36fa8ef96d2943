/**
 * One interface for every provider channel: verify → normalize inbound → send outbound → map statuses.
 * Adapters are pure domain code: no Lambda types, no AWS clients. Adding a channel is one module
 * plus one line in registry.ts.
 */
import type { Attachment, InboundEvent, ProviderChannel, SendProgress } from '../domain/types';

/** A webhook request as the provider sent it. Header names are lower-case. */
export interface WebhookRequest {
  method: string;
  /** The raw body, byte for byte as received: signatures are computed over it. */
  rawBody: string;
  headers: Readonly<Record<string, string | undefined>>;
  query: Readonly<Record<string, string | undefined>>;
  /** The public URL the provider called (Twilio signs it). */
  url: string;
}

/** A channel's secrets and settings (CONTRACT.md section 2), e.g. { appSecret, verifyToken, accessToken }. */
export type Credentials = Readonly<Record<string, string>>;

export interface HttpReply {
  status: number;
  contentType: string;
  body: string;
}

export interface OutboundSend {
  /** The customer's handle on the channel: phone, PSID, IGSID, chat id. */
  to: string;
  text: string;
  attachments: Attachment[];
  /** WhatsApp: an approved template, required outside the 24-hour window. */
  template?: { name: string; language?: string; params?: string[] };
  /** Messenger/Instagram message tag, e.g. HUMAN_AGENT between 24 h and 7 days. */
  tag?: string;
  /** Our message id, passed to providers that accept an idempotency key. */
  idempotencyKey: string;
  /** `<conversationId>/<messageId>`, for providers that hand it back in status webhooks. */
  reference: string;
}

export type SendResult =
  /** `otherIds`: the provider's ids of a reply's other parts, whose statuses are the reply's too. */
  | { ok: true; providerMessageId: string; otherIds?: string[] }
  /**
   * retryable: 429, 5xx, network errors; the queue retries, not before `retryAfterSeconds` when
   * the provider says when (Telegram's retry_after, a Retry-After header). Permanent errors mark
   * the message failed.
   */
  | {
      ok: false;
      retryable: boolean;
      error: string;
      retryAfterSeconds?: number;
      /** No answer came (a timeout, a reset): the provider may have taken it. */
      unanswered?: true;
      /** A part was due past the context's `startBy`: not started, left for the next delivery. */
      deferred?: true;
    };

export type WindowDecision =
  | { allowed: true; tag?: string }
  | { allowed: false; code: 'outside_window' | 'template_required' | 'opted_out'; message: string };

export interface ServiceWindow {
  /** Free-form replies are allowed this long after the customer's last message. */
  openMs: number;
  /** Then replies need a message tag until this long after it (Messenger's HUMAN_AGENT). */
  taggedMs?: number;
}

export interface SendContext {
  credentials: Credentials;
  /** Provider API base URL (configuration; the local stack serves its own). */
  baseUrl: string;
  fetch: typeof fetch;
  /** What an earlier attempt at this message got accepted (providers offer no idempotency key). */
  resume?: SendProgress;
  /** Called after each accepted part but the last, and awaited: a retry resumes from what it kept. */
  onPartSent?(progress: SendProgress): Promise<void>;
  /** Largest media file fetchMedia takes. @default MEDIA_MAX_BYTES (what the API can answer inline) */
  maxMediaBytes?: number;
  /** Ends a media fetch sooner than the provider timeout (a copy job's share of its batch's time). */
  signal?: AbortSignal;
  /** A media fetch's timeout, for a file that needs longer than PROVIDER_TIMEOUT_MS (transferTimeoutMs). */
  timeoutMs?: number;
  /**
   * When the invocation sending this must be done with it (epoch ms), so that it can still record
   * what the provider took: a file's transfer is given time for its size up to then, no further.
   */
  deadlineMs?: number;
  /**
   * No part is started after this (epoch ms): its answer could come after `deadlineMs`, and the
   * function be stopped after the provider took it, which a retry would send again.
   */
  startBy?: number;
}

/**
 * The largest file a provider takes, by the kind it is sent as (a kind not named: as `file`, a
 * document), and all of one message's together (bytes).
 */
export type MediaLimits = Readonly<Partial<Record<'image' | 'video' | 'audio' | 'sticker' | 'file', number>>> & { readonly perMessage?: number };

/**
 * The media types a send API takes, for a provider narrower than every provider's common ground
 * (src/domain/media.ts): per kind, the types it takes as that kind (another goes as a document),
 * and for `file` the only documents it takes at all. `described` says so to the agent.
 */
export interface MediaTypes {
  readonly kinds: Readonly<Partial<Record<'image' | 'video' | 'audio' | 'file', RegExp>>>;
  readonly described: string;
}

export interface ChannelAdapter {
  readonly channel: ProviderChannel;
  /** Environment variable names of this channel's credentials, with local development defaults. */
  readonly credentialDefaults: Readonly<Record<string, { env: string; dev: string }>>;
  /**
   * Settings of the channel's that may be left out (no development default; deployed, a key the
   * secret may lack): absent, the feature that needs one is off (Meta's `appId`: echoes).
   */
  readonly optionalCredentials?: Readonly<Record<string, { env: string }>>;
  /** Production base URL of the provider API; overridable by `<CHANNEL>_API_BASE_URL`. */
  readonly defaultBaseUrl: string;
  /** GET subscription handshake (Meta channels). Undefined when the channel has none. */
  challenge?(request: WebhookRequest, credentials: Credentials): HttpReply;
  /** Signature check on the raw body; constant-time comparison. */
  verify(request: WebhookRequest, credentials: Credentials): boolean;
  /**
   * Every event in a verified webhook: messages (text, media, unknown types with a readable
   * fallback text), delivery/read statuses. Echoes of our own sends are dropped.
   * Throws `BadWebhookError` when the body cannot be parsed at all.
   */
  normalize(request: WebhookRequest, credentials: Credentials): InboundEvent[];
  /**
   * What the provider expects as the 200 answer to `request` (Twilio: `<Response/>`; Telegram may
   * carry a Bot API call in it).
   */
  ack(request?: WebhookRequest): HttpReply;
  /** Whether a send is allowed now given the last customer message (24-hour rules). */
  window(lastInboundAt: string | undefined, now: Date, hasTemplate: boolean): WindowDecision;
  /**
   * How long free replies (and tagged replies) stay allowed after the customer's last message,
   * so that agents can be shown when the window closes. Undefined: the channel has no window.
   */
  readonly serviceWindow?: ServiceWindow;
  /** The customer's handle on this channel for a phone number (E.164), for channels addressed by phone. */
  handleForPhone?(phone: string): string;
  send(message: OutboundSend, context: SendContext): Promise<SendResult>;
  /**
   * File sizes the send API takes (src/domain/media.ts sendingKinds): a reply's file over its
   * kind's limit goes as a document, and one over that is refused when the agent sends it.
   */
  readonly mediaLimits?: MediaLimits;
  /** The media types the send API takes, where fewer than every provider's (Instagram's): a reply with another is refused when sent. */
  readonly mediaTypes?: MediaTypes;
  /**
   * Status webhooks carry the send's `reference` back (InboundStatusEvent.reference), so no
   * record from the provider's message id to ours needs to be written for them.
   */
  readonly statusesCarryReference?: boolean;
  /** False for a provider that reports no delivery statuses (Telegram): its sends' ids need no lookup records. */
  readonly reportsStatuses?: boolean;
  /**
   * The file behind one of this channel's media references that only the provider's credentials
   * can fetch (`whatsapp-media://…`, `telegram-file://…`, Twilio's media URLs); undefined for a
   * reference that is not one of those (a public URL is opened as it is).
   */
  fetchMedia?(reference: string, context: SendContext): Promise<MediaResult | undefined>;
  /**
   * The file behind a customer's media link that expires (Meta's CDN links last days), fetched
   * only to copy it into our bucket (src/domain/provider-media.ts); until then consoles open the
   * link itself. Undefined for a link that is not the provider's file (a shared web page).
   */
  copyMedia?(reference: string, context: SendContext): Promise<MediaResult | undefined>;
  /**
   * Whether a customer's attachment is one of the channel's files that its copier fetches, told
   * from the reference alone (no network, no credentials): the inbound path queues no copy job
   * for a message with none (a link the customer shared). Undefined: every provider file is.
   */
  canCopyMedia?(reference: string, baseUrl: string): boolean;
  /**
   * Whether a customer's file is part of the words of the message (an MMS text part): once
   * copied, its content is read into the message's text as well (src/domain/provider-media.ts).
   */
  isTextPart?(attachment: Attachment): boolean;
}

/** A media file fetched from a provider, or why not: 404 gone or unknown, 413 too large, 502 provider trouble. */
export type MediaResult =
  | { ok: true; contentType: string; bytes: Buffer }
  | { ok: false; status: 404 | 413 | 502; error: string };

export class BadWebhookError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadWebhookError';
  }
}
