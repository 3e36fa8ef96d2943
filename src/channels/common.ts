/**
 * Helpers every channel adapter needs: constant-time comparison, lenient JSON access, epoch
 * conversion, the 24-hour window arithmetic and the one place that turns a provider HTTP call into
 * a SendResult. Kept here so that no adapter re-implements retry classification differently.
 */
import { timingSafeEqual } from 'node:crypto';
import { BadWebhookError, type Credentials, type MediaResult, type SendContext, type SendResult } from './types';
import type { Attachment, InboundEvent, ReplyTo } from '../domain/types';

/** Provider calls must not hold a Lambda (and the FIFO group behind it) for longer than this. */
export const PROVIDER_TIMEOUT_MS = 10_000;

/**
 * The slowest transfer a file is given time for: a file moved whole (Telegram's multipart uploads
 * of up to 50 MB, and the download before one) gets the provider timeout plus this long per byte.
 */
export const MIN_TRANSFER_BYTES_PER_SECOND = 1_000_000;

/** What a transfer started at (or past) its deadline still gets: cut short, it is retried. */
const MIN_TRANSFER_MS = 1_000;

/**
 * How long moving a file of `bytes` may take: the provider timeout and the time the file needs at
 * MIN_TRANSFER_BYTES_PER_SECOND, but not past `deadlineMs` (when the invocation must have recorded
 * the send, some seconds before it is stopped): a transfer cut at the deadline is retried, one
 * still running when the function is stopped may have gone through, and be sent again.
 */
export function transferTimeoutMs(bytes: number, deadlineMs?: number, now = Date.now()): number {
  const sized = PROVIDER_TIMEOUT_MS + Math.ceil((Math.max(0, bytes) / MIN_TRANSFER_BYTES_PER_SECOND) * 1000);
  if (deadlineMs === undefined) return sized;
  // Whole milliseconds: AbortSignal.timeout throws on a fraction.
  return Math.floor(Math.min(sized, Math.max(MIN_TRANSFER_MS, deadlineMs - now)));
}

/** Halfway from now to `deadlineMs`: a download that an upload of the same file follows stops there. */
export function halfwayTo(deadlineMs: number | undefined, now = Date.now()): number | undefined {
  return deadlineMs === undefined ? undefined : now + Math.floor(Math.max(0, deadlineMs - now) / 2);
}

/** File sizes as providers document them: decimal units. */
export const KB = 1_000;
export const MB = 1_000_000;

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/**
 * Constant-time string comparison. timingSafeEqual throws on different lengths, and an early
 * length mismatch only reveals the length of the expected value, which is public for HMAC digests.
 */
export function safeEqual(actual: string | undefined, expected: string | undefined): boolean {
  if (!actual || !expected) return false;
  const a = Buffer.from(actual, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function parseJsonBody(rawBody: string): unknown {
  try {
    return JSON.parse(rawBody) as unknown;
  } catch {
    throw new BadWebhookError('Webhook body is not valid JSON');
  }
}

/** Providers add fields over time and omit optional ones: arrays are read leniently, never trusted. */
export function list<T>(value: T[] | undefined | null): T[] {
  return Array.isArray(value) ? value : [];
}

/** A provider's array of objects, without the elements that are not objects (a `null` among them). */
export function records<T>(value: T[] | undefined | null): T[] {
  return list(value).filter((item) => isRecord(item));
}

/**
 * The events of one element of a provider's batch (a message, a status, a messaging event); an
 * element whose shape breaks the mapping (a `null` attachment, a number where text goes) is
 * skipped and logged. Thrown, it would be a 500 that the provider retries with the same body for
 * days, and the batch's good events would never be queued.
 */
export function leniently<T>(what: string, map: () => T[]): T[] {
  try {
    return map();
  } catch (error) {
    if (error instanceof BadWebhookError) throw error;
    console.warn(`skipped a malformed ${what}`, error);
    return [];
  }
}

/**
 * Far longer than any provider's ids (WhatsApp's wamid, Meta's mid: under 200); a table key holds
 * at most 2048 bytes, which 512 characters with their prefix never exceed.
 */
export const MAX_PROVIDER_ID_CHARS = 512;

const usableId = (id: unknown): boolean => typeof id === 'string' && id !== '' && id.length <= MAX_PROVIDER_ID_CHARS;

/**
 * The ids the store's keys are made of arrive as short strings from every provider; an event
 * whose body says otherwise (a number where a phone goes, an id longer than a key may be) is
 * skipped and logged like any malformed element. Queued, it would fail on every receive and hold
 * that customer's next messages back.
 */
export function hasUsableIds(event: InboundEvent): boolean {
  const optional = [event.providerMessageId, event.kind === 'status' ? event.reference : undefined];
  // A move names the customer's old handle beside the new one.
  const from = event.kind === 'moved' ? event.from : undefined;
  const usable = usableId(event.handle) && (event.kind !== 'moved' || usableId(from)) && optional.every((id) => id === undefined || usableId(id));
  if (!usable) {
    const shown = (id: unknown) => (typeof id === 'string' ? id.slice(0, 64) : id);
    console.warn(`skipped a ${event.channel} ${event.kind} whose ids are not usable strings`, {
      handle: shown(event.handle),
      providerMessageId: shown(event.providerMessageId),
      ...(from !== undefined ? { from: shown(from) } : {}),
    });
  }
  return usable;
}

/** An excerpt of a quoted message is a reminder, not its copy: the stored item stays small. */
export const REPLY_EXCERPT_MAX = 200;

/**
 * The `replyTo` of a message that quotes an earlier one, spread into its event: nothing when the
 * provider named no usable id (a quote that cannot be found is no reason to lose the message).
 * The excerpt is the quoted words on one line, cut after a word near REPLY_EXCERPT_MAX with `…`.
 */
export function replyContext(providerMessageId: unknown, text?: unknown): { replyTo?: ReplyTo } {
  if (!usableId(providerMessageId)) return {};
  const words = typeof text === 'string' ? text.replace(/\s+/g, ' ').trim() : '';
  const excerpt = words.length > REPLY_EXCERPT_MAX ? `${splitText(words, REPLY_EXCERPT_MAX - 1)[0]}…` : words;
  return { replyTo: { providerMessageId: providerMessageId as string, ...(excerpt ? { text: excerpt } : {}) } };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `unit` is how the provider counts: WhatsApp and Telegram send seconds, Messenger milliseconds.
 * A message's sentAt from the provider's own time, marked `dated`: a redelivery carries the same
 * time, which is how the inbound consumer recognises one that arrives late (src/domain/inbound.ts).
 * Without a usable time the message is dated now and not marked.
 */
export function sentAtFromEpoch(value: string | number | undefined, unit: 's' | 'ms'): { sentAt: string; dated?: true } {
  const n = typeof value === 'string' ? Number(value) : value;
  const ms = n === undefined ? NaN : unit === 's' ? n * 1000 : n;
  // Out of range (a provider's bug, or a body signed with a leaked secret) is no provider time:
  // past year 9999 it threw, a 500 the provider retries for days; far ahead, it sorts wrong.
  if (!(ms >= EARLIEST_SENT_AT && ms <= Date.now() + DAY_MS)) return { sentAt: new Date().toISOString() };
  return { sentAt: new Date(ms).toISOString(), dated: true };
}

/** Before any of these providers existed. */
const EARLIEST_SENT_AT = Date.UTC(2000, 0, 1);

/**
 * A time a provider names in epoch seconds that may lie ahead (an expiry, an appointment), in
 * milliseconds; undefined when it is none (not a number, or out of a Date's range, where it throws).
 */
export function secondsAsMs(value: unknown): number | undefined {
  const ms = typeof value === 'number' || typeof value === 'string' ? Number(value) * 1000 : Number.NaN;
  return ms > 0 && ms < 8.64e15 ? ms : undefined;
}

export function isoFromEpoch(value: string | number | undefined, unit: 's' | 'ms'): string {
  return sentAtFromEpoch(value, unit).sentAt;
}

/** Milliseconds since the customer's last message; undefined (never wrote, or garbage) means "outside any window". */
export function elapsedSince(lastInboundAt: string | undefined, now: Date): number | undefined {
  if (!lastInboundAt) return undefined;
  const at = Date.parse(lastInboundAt);
  return Number.isNaN(at) ? undefined : now.getTime() - at;
}

/** How a provider measures a text against its limit. */
export type TextMeasure = (text: string) => number;
export const utf16Length: TextMeasure = (text) => text.length;
export const utf8Bytes: TextMeasure = (text) => Buffer.byteLength(text, 'utf8');

/**
 * A text cut into parts the provider accepts, in order. Cuts fall after a paragraph, else a line,
 * else a sentence, else a space, in the second half of a part when one is there; a word longer than
 * a part is cut where it must be, between graphemes (longestPrefix). Whitespace at a cut is dropped.
 */
export function splitText(text: string, max: number, measure: TextMeasure = utf16Length): string[] {
  const parts: string[] = [];
  let rest = text.trim();
  while (rest && measure(rest) > max) {
    const fit = longestPrefix(rest, max, measure);
    const head = rest.slice(0, fit);
    let cut = fit;
    for (const boundary of [/\n\s*\n/g, /\n/g, /[.!?]\s/g, /\s/g]) {
      const last = lastMatchEnd(head, boundary);
      if (last > fit / 2) {
        cut = last;
        break;
      }
    }
    parts.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  if (rest) parts.push(rest);
  return parts;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * The longest prefix (in UTF-16 units) within `max`, ending on a whole grapheme: a letter and its
 * accents (Thai writes no spaces and its vowels combine), an emoji and its skin tone or ZWJ family,
 * a flag's two letters; cut inside one, both parts show something else. One grapheme longer than
 * a part is cut on a whole code point.
 */
function longestPrefix(text: string, max: number, measure: TextMeasure): number {
  let low = 1;
  let high = Math.min(text.length, max * 4);
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (measure(text.slice(0, mid)) <= max) low = mid;
    else high = mid - 1;
  }
  let boundary = 0;
  // Whether a grapheme ends at `low` depends on what comes before it and on the code point at it.
  for (const { index } of graphemes.segment(text.slice(0, low + 2))) {
    if (index > low) break;
    boundary = index;
  }
  if (boundary > 0) return boundary;
  const code = text.charCodeAt(low - 1);
  return code >= 0xd800 && code <= 0xdbff && low > 1 ? low - 1 : low;
}

function lastMatchEnd(text: string, pattern: RegExp): number {
  let end = -1;
  for (const match of text.matchAll(pattern)) end = match.index + match[0].length;
  return end;
}

export function credential(credentials: Credentials, key: string): string | undefined {
  const value = credentials[key];
  return value ? value : undefined;
}

export function missingCredential(key: string): SendResult {
  return { ok: false, retryable: false, error: `Channel credential "${key}" is not configured` };
}

/** A shared place as an agent reads it: its coordinates, then its name and street address when the provider gives them. */
export function formatLocation(latitude: unknown, longitude: unknown, name?: unknown, address?: unknown): string {
  const parts = [name, address].filter((part): part is string => typeof part === 'string' && part !== '');
  const label = parts.length > 0 ? ` (${parts.join(', ')})` : '';
  return `📍 ${String(latitude)},${String(longitude)}${label}`;
}

/** A phone number as a tel: URI takes it: its digits and a leading plus. */
export const telDigits = (phone: string): string => phone.replace(/[^\d+]/g, '');

/** A contact card the customer shared: its name, then every number and email, and a tel: link each number. */
export function sharedContact(name: string, phones: readonly string[], emails: readonly string[]): { text: string; attachments: Attachment[] } {
  const attachments = phones.map((phone): Attachment => ({ type: 'contact', url: `tel:${telDigits(phone)}`, ...(name ? { name } : {}) }));
  return { text: `Shared contact: ${[name, [...phones, ...emails].join(', ')].filter(Boolean).join(' ')}`, attachments };
}

/** RFC 5870 geo URI: a neutral way to carry a location as an attachment url. */
export function geoUri(latitude: unknown, longitude: unknown): string {
  return `geo:${String(latitude)},${String(longitude)}`;
}

/** An attachment's type from its MIME type: image, audio, video, contact (vCard) or file. */
export function attachmentType(contentType: string): string {
  if (/^text\/(x-)?vcard/i.test(contentType)) return 'contact';
  const major = contentType.split('/')[0]?.toLowerCase();
  return major === 'image' || major === 'audio' || major === 'video' ? major : 'file';
}

export function unsupportedText(type: string): string {
  return `[unsupported message type: ${type}]`;
}

/** A send that did not get through, and whether trying again may. */
export type SendFailure = Extract<SendResult, { ok: false }>;

/** One HTTP request to a provider API, built by the adapter. */
export interface ProviderCall {
  url: string;
  headers: Record<string, string>;
  /**
   * The body; or a multipart one (a file uploaded, not linked) built only when this part is sent,
   * so a resumed send downloads nothing for the parts already accepted.
   */
  body: string | (() => Promise<Upload | SendFailure>);
}

/** A multipart body with a file in it, and the file's size: the request is given time to match (transferTimeoutMs). */
export interface Upload {
  form: FormData;
  bytes: number;
}

/** How a provider spells its answers. */
export interface ProviderDialect {
  messageId(body: unknown): string | undefined;
  errorMessage(body: unknown): string | undefined;
  /** Some providers signal throttling inside a 4xx (Meta error codes); those are worth a retry. */
  retryable?(body: unknown, status: number): boolean;
  /** When the provider says to try again, in seconds, in its body (Telegram's retry_after). */
  retryAfter?(body: unknown): number | undefined;
  /** The status an error body names (Telegram's error_code), read when it comes with a 200. */
  errorStatus?(body: unknown): number | undefined;
}

/** A Retry-After header in seconds (its HTTP-date form is not used by these providers). */
function retryAfterHeader(response: Response): number | undefined {
  const value = Number(response.headers.get('retry-after'));
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

function parseMaybeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function describeError(error: unknown, timeoutMs = PROVIDER_TIMEOUT_MS): string {
  if (error instanceof Error) {
    return error.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : error.message;
  }
  return String(error);
}

/** 2xx → ok; 429, 5xx and network errors → retryable; any other status → permanent. */
export async function callProvider(call: ProviderCall, context: SendContext, dialect: ProviderDialect): Promise<SendResult> {
  let payload: string | FormData;
  let timeoutMs = PROVIDER_TIMEOUT_MS;
  if (typeof call.body === 'string') payload = call.body;
  else {
    const built = await call.body();
    if ('ok' in built) return built;
    payload = built.form;
    // A large file takes longer to go up than a JSON body: 10 s would cut every upload of a few MB on a slow link.
    timeoutMs = transferTimeoutMs(built.bytes, context.deadlineMs);
  }
  let response: Response;
  try {
    response = await context.fetch(call.url, {
      method: 'POST',
      headers: call.headers,
      body: payload,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    return { ok: false, retryable: true, error: `Network error: ${describeError(error, timeoutMs)}`, unanswered: true };
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    // The provider may have accepted the message; a retry could duplicate it, but losing it is worse.
    return { ok: false, retryable: true, error: `Network error reading the answer: ${describeError(error, timeoutMs)}`, unanswered: true };
  }
  const body = parseMaybeJson(text);
  const id = response.ok ? dialect.messageId(body) : undefined;
  if (id) return { ok: true, providerMessageId: id };
  const refusal = dialect.errorMessage(body);
  // A 200 with an error body (Telegram's `ok: false`, a Graph error object) is a refusal like any
  // other. Without one, the send was taken but cannot be named: a retry would send it twice.
  if (response.ok && refusal === undefined) return { ok: false, retryable: false, error: `Provider answered ${response.status} without a message id` };
  const status = (response.ok ? dialect.errorStatus?.(body) : undefined) ?? response.status;
  const detail = refusal ?? (typeof body === 'string' && body ? body.slice(0, 200) : response.statusText);
  const retryable = status === 429 || status >= 500 || (dialect.retryable?.(body, status) ?? false);
  const retryAfterSeconds = retryable ? (dialect.retryAfter?.(body) ?? retryAfterHeader(response)) : undefined;
  return { ok: false, retryable, error: `${status}: ${detail || 'request failed'}`, ...(retryAfterSeconds ? { retryAfterSeconds } : {}) };
}

/**
 * Sends the parts of one message in order (providers that take one attachment per request).
 * Stops at the first failure. The result carries the id of `primary`, the part that holds the text.
 * Providers offer no idempotency key, so progress is handed to `onPartSent` after each part and a
 * retry (`resume`) starts after the parts already accepted: a customer sees each part once,
 * unless a crash falls between a part's acceptance and its record.
 */
export async function callProviderParts(
  calls: ProviderCall[],
  primary: number,
  context: SendContext,
  dialect: ProviderDialect,
): Promise<SendResult> {
  let primaryId = context.resume?.primaryId;
  const otherIds = [...(context.resume?.otherIds ?? [])];
  const start = context.resume?.partsSent ?? 0;
  for (const [index, call] of calls.entries()) {
    if (index < start) continue;
    if (context.startBy !== undefined && Date.now() > context.startBy) {
      return { ok: false, retryable: true, error: 'not sent yet: too late in its batch to wait for the provider', deferred: true };
    }
    const result = await callProvider(call, context, dialect);
    if (!result.ok) return result;
    if (index === primary) primaryId = result.providerMessageId;
    else otherIds.push(result.providerMessageId);
    if (index < calls.length - 1) {
      await context.onPartSent?.({
        partsSent: index + 1,
        partsTotal: calls.length,
        ...(primaryId ? { primaryId } : {}),
        ...(otherIds.length ? { otherIds: [...otherIds] } : {}),
      });
    }
  }
  if (primaryId === undefined) return { ok: false, retryable: false, error: 'Nothing to send: no text and no attachments' };
  return { ok: true, providerMessageId: primaryId, ...(otherIds.length ? { otherIds } : {}) };
}

export function jsonCall(url: string, body: unknown, headers: Record<string, string> = {}): ProviderCall {
  return { url, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/**
 * The largest media file the API hands out: a Lambda response is at most 6 MB, and the bytes
 * travel base64-encoded (4 MiB → 5.6 MB).
 */
export const MEDIA_MAX_BYTES = 4 * 1024 * 1024;

const tooLarge = (size: number, max: number): MediaResult => ({
  ok: false,
  status: 413,
  error: `the file is ${size} bytes; files up to ${max} bytes are fetched (open it in the provider's app)`,
});

export type MediaFailure = MediaResult & { ok: false };

/** Redirects a checked download follows, each one checked again. */
const MAX_REDIRECTS = 3;

/**
 * A provider's GET, or why it did not answer. With `allowed`, redirects are followed only to URLs
 * it accepts (each hop checked, as the first one was); any other is a 404 (no file of theirs).
 */
async function getFromProvider(url: string, headers: Record<string, string>, context: SendContext, allowed?: (url: URL) => boolean): Promise<Response | MediaFailure> {
  const timeoutMs = context.timeoutMs ?? PROVIDER_TIMEOUT_MS;
  try {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = context.signal ? AbortSignal.any([context.signal, timeout]) : timeout;
    if (!allowed) return await context.fetch(url, { method: 'GET', headers, signal });
    let next = url;
    for (let hop = 0; ; hop++) {
      const response = await context.fetch(next, { method: 'GET', headers, signal, redirect: 'manual' });
      const location = response.status >= 300 && response.status < 400 ? response.headers.get('location') : null;
      if (location === null) return response;
      await response.body?.cancel();
      const target = new URL(location, next);
      if (hop >= MAX_REDIRECTS || !allowed(target)) return { ok: false, status: 404, error: `the provider's link leads elsewhere (${target.host})` };
      next = target.href;
    }
  } catch (error) {
    return { ok: false, status: 502, error: `the provider did not answer: ${describeError(error, timeoutMs)}` };
  }
}

/** Providers answer an unknown or expired file with a 4xx; anything else is their trouble. */
function mediaFailure(status: number): MediaFailure {
  return status < 500 && status !== 429
    ? { ok: false, status: 404, error: `the provider no longer has this file (${status})` }
    : { ok: false, status: 502, error: `the provider answered ${status}` };
}

/**
 * GET of a provider's JSON metadata: the parsed body, or the MediaResult that explains why not
 * (`explain`: the provider's own reason for a refusal, read from its answer, where it has one).
 */
export async function getProviderJson(
  url: string,
  headers: Record<string, string>,
  context: SendContext,
  explain?: (body: unknown) => MediaFailure | undefined,
): Promise<{ ok: true; body: unknown } | MediaFailure> {
  const response = await getFromProvider(url, headers, context);
  if (!(response instanceof Response)) return response;
  const body = parseMaybeJson(await response.text());
  return response.ok ? { ok: true, body } : (explain?.(body) ?? mediaFailure(response.status));
}

/**
 * Downloads a media file, refusing one over the context's maxMediaBytes (announced or while
 * reading). With `allowed`, a redirect is followed only to a URL it accepts.
 */
export async function downloadMedia(
  url: string,
  headers: Record<string, string>,
  context: SendContext,
  fallbackType?: string,
  allowed?: (url: URL) => boolean,
): Promise<MediaResult> {
  const response = await getFromProvider(url, headers, context, allowed);
  if (!(response instanceof Response)) return response;
  const max = context.maxMediaBytes ?? MEDIA_MAX_BYTES;
  const announced = Number(response.headers.get('content-length') ?? Number.NaN);
  if (!response.ok || announced > max) {
    await response.body?.cancel();
    return response.ok ? tooLarge(announced, max) : mediaFailure(response.status);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    if (response.body) {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > max) return tooLarge(size, max);
        chunks.push(Buffer.from(chunk));
      }
    }
  } catch (error) {
    // The timeout covers the body too: a provider that stops sending midway is an outage, not a bug.
    return { ok: false, status: 502, error: `the provider did not finish sending the file: ${describeError(error, context.timeoutMs)}` };
  }
  const contentType = response.headers.get('content-type') ?? fallbackType ?? 'application/octet-stream';
  return { ok: true, contentType, bytes: Buffer.concat(chunks) };
}

/** A file the provider announced as too large (a number or a numeric string) is refused before any download. */
export function refuseLarge(size: unknown, context: Pick<SendContext, 'maxMediaBytes'>): MediaResult | undefined {
  const max = context.maxMediaBytes ?? MEDIA_MAX_BYTES;
  const announced = typeof size === 'number' || typeof size === 'string' ? Number(size) : Number.NaN;
  return announced > max ? tooLarge(announced, max) : undefined;
}

/**
 * What a media fetch needs: the provider's id after our scheme and the credential that opens it.
 * Undefined for a reference of another scheme; a malformed id of ours is a 404.
 */
export function mediaAccess(reference: string, scheme: string, credentialKey: string, context: SendContext): { id: string; secret: string } | MediaFailure | undefined {
  if (!reference.startsWith(scheme)) return undefined;
  const id = reference.slice(scheme.length);
  // Dots alone would walk up the provider's URL path.
  if (!/^(?!\.+$)[\w.-]{1,256}$/.test(id)) return { ok: false, status: 404, error: `not a valid ${scheme} reference` };
  const secret = credential(context.credentials, credentialKey);
  if (!secret) return mediaCredentialMissing(credentialKey);
  return { id, secret };
}

export function mediaCredentialMissing(key: string): MediaFailure {
  return { ok: false, status: 502, error: `Channel credential "${key}" is not configured` };
}
