/**
 * Local stand-in for the five provider APIs, served under /local/providers/<channel>/...
 * Point `<CHANNEL>_API_BASE_URL` at http://127.0.0.1:<port>/local/providers/<channel> and the adapters
 * talk to it exactly as they talk to the real APIs: same paths, same auth, same answer shapes.
 * Every request is recorded in the outbox; `failNext` simulates provider outages for retry tests,
 * `holdNext` a provider slow to answer;
 * `addMedia` holds files as a customer's media message leaves them at its provider.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { credentialsFromEnv } from '../src/channels/credentials';
import type { Credentials } from '../src/channels/types';
import { isProviderChannel, type ProviderChannel } from '../src/domain/types';

export const PROVIDERS_PREFIX = '/local/providers/';

export interface OutboxItem {
  channel: ProviderChannel;
  method: string;
  url: string;
  headers: Record<string, string>;
  /**
   * Parsed JSON, or the form fields as an object (repeated fields become arrays); in a multipart
   * form (Telegram's uploads) a file is `{ filename, contentType, size, base64 }`.
   */
  body: unknown;
  at: string;
  /** What the stand-in answered, so tests can tell accepted sends from rejected or failed attempts. */
  status: number;
  /** The answer's body: the provider's id of an accepted send is there. */
  answer: unknown;
}

export interface ProviderStandIn {
  /**
   * Answers the request if its path is under /local/providers/; returns false otherwise. `bytes`
   * is the body as received, which a multipart upload is read from (the text loses binary files).
   */
  handle(req: IncomingMessage, res: ServerResponse, body: string, bytes?: Buffer): boolean;
  outbox(channel?: string): OutboxItem[];
  /** Fails the next `count` requests of the channel with `status`, after letting `after` through. */
  failNext(channel: ProviderChannel, status: number, count: number, after?: number): void;
  /**
   * Holds the answer to the channel's next request until `until` settles (it gets the request's
   * body and the answer's): a test can make something happen between the provider taking a send
   * and answering it, knowing the id the answer names.
   */
  holdNext(channel: ProviderChannel, until: (body: unknown, answer: unknown) => Promise<void>): void;
  /**
   * A file the provider holds, as a customer's media message would leave it: returns the id its
   * webhooks name (a WhatsApp media id, a Telegram file_id, a Twilio media sid, the last segment
   * of a Messenger or Instagram CDN link), which the adapters fetch it by.
   */
  addMedia(channel: MediaChannel, file: MediaFile): string;
  reset(): void;
}

/** Messenger's and Instagram's files are served at `<base URL>/_cdn/<id>`: their webhooks name that link. */
export type MediaChannel = 'whatsapp' | 'telegram' | 'sms' | 'messenger' | 'instagram';

export interface MediaFile {
  contentType: string;
  bytes: Buffer;
  /** What the provider announces (file_size); a test may claim more than it holds. @default bytes.length */
  announcedSize?: number;
}

export interface ProviderStandInOptions {
  /** The credentials the stand-in expects; by default the same environment/dev values the backend reads. */
  credentials?: (channel: ProviderChannel) => Credentials;
}

interface Reply {
  status: number;
  body: unknown;
  /** A file download instead of JSON. */
  file?: MediaFile;
  /** A redirect (with a 3xx status) instead of JSON. */
  location?: string;
}

type Handler = (request: ParsedRequest, credentials: Credentials) => Reply;

interface ParsedRequest {
  method: string;
  /** Path below /local/providers/<channel>. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: unknown;
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

function parseBody(raw: string, contentType: string | undefined, bytes?: Buffer): unknown {
  if (!raw) return {};
  if (contentType?.includes('multipart/form-data')) return parseMultipart(bytes ?? Buffer.from(raw, 'utf8'), contentType);
  if (contentType?.includes('application/x-www-form-urlencoded')) {
    const result: Record<string, string | string[]> = {};
    for (const [key, value] of new URLSearchParams(raw)) {
      const existing = result[key];
      result[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
    }
    return result;
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/** A multipart/form-data body: fields as text, files with their name, type and bytes (base64, so the outbox stays JSON). */
function parseMultipart(bytes: Buffer, contentType: string): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) return result;
  const delimiter = Buffer.from(`--${boundary}`);
  let at = bytes.indexOf(delimiter);
  while (at !== -1) {
    const next = bytes.indexOf(delimiter, at + delimiter.length);
    if (next === -1) break;
    // Each part: CRLF after the delimiter, headers, a blank line, the content, CRLF before the next one.
    const part = bytes.subarray(at + delimiter.length + 2, next - 2);
    const split = part.indexOf('\r\n\r\n');
    const head = part.subarray(0, split).toString('utf8');
    const content = part.subarray(split + 4);
    const name = /;\s*name="([^"]*)"/i.exec(head)?.[1];
    const filename = /;\s*filename="([^"]*)"/i.exec(head)?.[1];
    if (name !== undefined) {
      result[name] =
        filename === undefined
          ? content.toString('utf8')
          : { filename, contentType: /^content-type:\s*(.+)$/im.exec(head)?.[1]?.trim(), size: content.length, base64: content.toString('base64') };
    }
    at = next;
  }
  return result;
}

function field(body: unknown, key: string): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
}

function graphError(status: number, message: string, code: number, type = 'OAuthException'): Reply {
  return { status, body: { error: { message, type, code, fbtrace_id: `A${hex(10)}` } } };
}

function bearerOrQuery(request: ParsedRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length);
  return request.query.get('access_token') ?? undefined;
}

const whatsapp: Handler = (request, credentials) => {
  if (bearerOrQuery(request) !== credentials.accessToken) {
    return graphError(401, 'Invalid OAuth access token - Cannot parse access token', 190);
  }
  const match = /^\/([^/]+)\/messages$/.exec(request.path);
  if (request.method !== 'POST' || !match) return graphError(400, 'Unsupported request - method type or path not supported', 100, 'GraphMethodException');
  if (match[1] !== credentials.phoneNumberId) {
    return graphError(400, `Unsupported post request. Object with ID '${match[1]}' does not exist`, 100, 'GraphMethodException');
  }
  // A number as `to`, or a customer's business-scoped user id (BSUID) as `recipient`.
  const recipient = field(request.body, 'recipient');
  const to = field(request.body, 'to') ?? recipient;
  const type = field(request.body, 'type') ?? 'text';
  if (field(request.body, 'messaging_product') !== 'whatsapp') {
    return graphError(400, '(#100) The parameter messaging_product is required.', 100);
  }
  if (typeof to !== 'string' || !to) return graphError(400, '(#100) The parameter to or recipient is required.', 100);
  if (typeof type !== 'string' || field(request.body, type) === undefined) {
    return graphError(400, `(#100) Param ${String(type)} is required`, 100);
  }
  return {
    status: 200,
    body: {
      messaging_product: 'whatsapp',
      contacts: [to === recipient ? { input: to, user_id: to } : { input: to, wa_id: to.replace(/\D/g, '') }],
      messages: [{ id: `wamid.${randomBytes(24).toString('base64url')}` }],
    },
  };
};

const sendApi: Handler = (request, credentials) => {
  if (bearerOrQuery(request) !== credentials.accessToken) {
    return graphError(401, 'Invalid OAuth access token - Cannot parse access token', 190);
  }
  if (request.method !== 'POST' || request.path !== '/me/messages') {
    return graphError(400, 'Unsupported request - method type or path not supported', 100, 'GraphMethodException');
  }
  const recipientId = field(field(request.body, 'recipient'), 'id');
  const message = field(request.body, 'message');
  if (typeof recipientId !== 'string' || !recipientId) return graphError(400, '(#100) The parameter recipient is required', 100);
  if (field(message, 'text') === undefined && field(message, 'attachment') === undefined) {
    return graphError(400, '(#100) Must send either message or state', 100);
  }
  const type = field(request.body, 'messaging_type');
  if (type === 'MESSAGE_TAG' && typeof field(request.body, 'tag') !== 'string') {
    return graphError(400, '(#100) Tag is required for MESSAGE_TAG messaging type', 100);
  }
  return { status: 200, body: { recipient_id: recipientId, message_id: `m_${hex(20)}` } };
};

const TELEGRAM_METHODS = new Set(['sendMessage', 'sendPhoto', 'sendDocument', 'sendAudio', 'sendVideo', 'sendSticker', 'sendVoice']);

function createTelegram(): Handler & { reset(): void } {
  let nextMessageId = 1;
  const handler = (request: ParsedRequest, credentials: Credentials): Reply => {
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(request.path);
    if (!match) return { status: 404, body: { ok: false, error_code: 404, description: 'Not Found' } };
    if (match[1] !== credentials.botToken) return { status: 401, body: { ok: false, error_code: 401, description: 'Unauthorized' } };
    const method = match[2] ?? '';
    if (!TELEGRAM_METHODS.has(method)) return { status: 404, body: { ok: false, error_code: 404, description: 'Not Found: method not found' } };
    const chatId = field(request.body, 'chat_id');
    if (chatId === undefined || chatId === '') return { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: chat_id is empty' } };
    const text = field(request.body, 'text');
    if (method === 'sendMessage' && (typeof text !== 'string' || !text)) {
      return { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: message text is empty' } };
    }
    const result: Record<string, unknown> = {
      message_id: nextMessageId++,
      from: { id: Number(String(credentials.botToken).split(':')[0]) || 1, is_bot: true, first_name: 'Conversa' },
      chat: { id: Number.isNaN(Number(chatId)) ? chatId : Number(chatId), type: 'private' },
      date: Math.floor(Date.now() / 1000),
    };
    if (typeof text === 'string') result.text = text;
    const caption = field(request.body, 'caption');
    if (typeof caption === 'string') result.caption = caption;
    return { status: 200, body: { ok: true, result } };
  };
  return Object.assign(handler, {
    reset() {
      nextMessageId = 1;
    },
  });
}

/** The Basic authorization Twilio expects for the account: its SID and auth token. */
function twilioBasic(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.accountSid}:${credentials.authToken}`).toString('base64')}`;
}

function twilioError(status: number, code: number, message: string): Reply {
  return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status } };
}

const twilio: Handler = (request, credentials) => {
  const match = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(request.path);
  if (!match) return twilioError(404, 20404, 'The requested resource was not found');
  if (request.headers.authorization !== twilioBasic(credentials) || match[1] !== credentials.accountSid) {
    return twilioError(401, 20003, 'Authenticate');
  }
  if (request.method !== 'POST') return twilioError(405, 20004, 'Method not allowed');
  const to = field(request.body, 'To');
  const from = field(request.body, 'From');
  const body = field(request.body, 'Body');
  const media = field(request.body, 'MediaUrl');
  if (typeof to !== 'string' || !to) return twilioError(400, 21604, "A 'To' phone number is required.");
  if (typeof from !== 'string' || !from) return twilioError(400, 21603, "A 'From' phone number is required.");
  if ((typeof body !== 'string' || !body) && media === undefined) return twilioError(400, 21602, 'Message body is required.');
  const sid = `SM${hex(16)}`;
  const now = new Date().toUTCString().replace('GMT', '+0000');
  return {
    status: 201,
    body: {
      sid,
      account_sid: credentials.accountSid,
      to,
      from,
      body: typeof body === 'string' ? body : '',
      status: 'queued',
      direction: 'outbound-api',
      num_segments: '1',
      num_media: String(Array.isArray(media) ? media.length : media === undefined ? 0 : 1),
      api_version: '2010-04-01',
      date_created: now,
      date_updated: now,
      date_sent: null,
      price: null,
      price_unit: 'USD',
      error_code: null,
      error_message: null,
      messaging_service_sid: null,
      uri: `/2010-04-01/Accounts/${credentials.accountSid}/Messages/${sid}.json`,
    },
  };
};

/** What each provider answers when it is down or throttling, for `failNext`. */
function failure(channel: ProviderChannel, status: number): Reply {
  const message = status === 429 ? 'Too Many Requests' : `Simulated provider failure (${status})`;
  switch (channel) {
    case 'telegram':
      return { status, body: { ok: false, error_code: status, description: status === 429 ? 'Too Many Requests: retry after 1' : message } };
    case 'sms':
      return twilioError(status, status === 429 ? 20429 : 20500, message);
    default:
      // Graph codes: 4 rate limit, 2 temporary outage, 100 invalid parameter (a permanent refusal).
      return { status, body: { error: { message, type: 'OAuthException', code: status === 429 ? 4 : status >= 500 ? 2 : 100, is_transient: status >= 500, fbtrace_id: `A${hex(10)}` } } };
  }
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) result[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return result;
}

/**
 * The providers' media endpoints: WhatsApp's GET /{media-id} (metadata with a download URL,
 * fetched with the same bearer token), Telegram's getFile and /file/bot<token>/<path>, Twilio's
 * Messages/{MM}/Media/{ME} (Basic auth, then a redirect).
 * Undefined when the request is not a media request.
 */
function mediaReply(channel: ProviderChannel, request: ParsedRequest, credentials: Credentials, files: Map<string, MediaFile>): Reply | undefined {
  if (request.method !== 'GET') return undefined;
  if (channel === 'whatsapp') {
    const match = /^\/(_media\/)?(media-[\w-]+)$/.exec(request.path);
    if (!match) return undefined;
    if (bearerOrQuery(request) !== credentials.accessToken) return graphError(401, 'Invalid OAuth access token - Cannot parse access token', 190);
    const id = match[2]!;
    const file = files.get(`whatsapp/${id}`);
    if (!file) return graphError(400, `Unsupported get request. Object with ID '${id}' does not exist`, 100, 'GraphMethodException');
    if (match[1]) return { status: 200, body: undefined, file };
    const url = `http://${request.headers.host ?? '127.0.0.1'}${PROVIDERS_PREFIX}whatsapp/_media/${id}`;
    return { status: 200, body: { messaging_product: 'whatsapp', url, mime_type: file.contentType, file_size: file.announcedSize ?? file.bytes.length, id } };
  }
  if (channel === 'telegram') {
    const download = /^\/file\/bot([^/]+)\/files\/([\w-]+)$/.exec(request.path);
    const getFile = /^\/bot([^/]+)\/getFile$/.exec(request.path);
    const match = download ?? getFile;
    if (!match) return undefined;
    if (match[1] !== credentials.botToken) return { status: 401, body: { ok: false, error_code: 401, description: 'Unauthorized' } };
    const id = download ? download[2]! : (request.query.get('file_id') ?? '');
    const file = files.get(`telegram/${id}`);
    if (!file) return download ? { status: 404, body: { ok: false, error_code: 404, description: 'Not Found' } } : { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: invalid file_id' } };
    if (download) return { status: 200, body: undefined, file };
    const result = { file_id: id, file_unique_id: `u${id}`, file_size: file.announcedSize ?? file.bytes.length, file_path: `files/${id}` };
    return { status: 200, body: { ok: true, result } };
  }
  if (channel === 'sms') {
    // Twilio: the media URL wants Basic auth and redirects to a short-lived CDN URL that does not.
    const cdn = /^\/_cdn\/(ME\w+)$/.exec(request.path);
    const media = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/MM\w+\/Media\/(ME\w+)$/.exec(request.path);
    const id = cdn?.[1] ?? media?.[2];
    if (!id) return undefined;
    if (media && (request.headers.authorization !== twilioBasic(credentials) || media[1] !== credentials.accountSid)) return twilioError(401, 20003, 'Authenticate');
    const file = files.get(`sms/${id}`);
    if (!file) return twilioError(404, 20404, 'The requested resource was not found');
    if (cdn) return { status: 200, body: undefined, file };
    return { status: 307, body: undefined, location: `http://${request.headers.host ?? '127.0.0.1'}${PROVIDERS_PREFIX}sms/_cdn/${id}` };
  }
  // Messenger and Instagram: a signed CDN link, no credentials; an expired one is refused.
  const cdn = /^\/_cdn\/(asset-\w+)$/.exec(request.path);
  if (!cdn) return undefined;
  const file = files.get(`${channel}/${cdn[1]!}`);
  return file ? { status: 200, body: undefined, file } : { status: 403, body: 'URL signature expired' };
}

function send(res: ServerResponse, reply: Reply): void {
  if (reply.location) {
    res.writeHead(reply.status, { location: reply.location, 'content-length': 0 });
    res.end();
    return;
  }
  if (reply.file) {
    res.writeHead(reply.status, { 'content-type': reply.file.contentType, 'content-length': reply.file.bytes.length });
    res.end(reply.file.bytes);
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function createProviderStandIn(options: ProviderStandInOptions = {}): ProviderStandIn {
  const credentialsOf = options.credentials ?? ((channel: ProviderChannel) => credentialsFromEnv(channel));
  const telegram = createTelegram();
  const handlers: Record<ProviderChannel, Handler> = { whatsapp, messenger: sendApi, instagram: sendApi, telegram, sms: twilio };
  let items: OutboxItem[] = [];
  const failures = new Map<ProviderChannel, { status: number; remaining: number; pass: number }>();
  const files = new Map<string, MediaFile>();
  const holds = new Map<ProviderChannel, (body: unknown, answer: unknown) => Promise<void>>();

  function failNext(channel: ProviderChannel, status: number, count: number, after = 0): void {
    if (count > 0) failures.set(channel, { status, remaining: count, pass: after });
    else failures.delete(channel);
  }

  function takeFailure(channel: ProviderChannel): number | undefined {
    const pending = failures.get(channel);
    if (!pending) return undefined;
    if (pending.pass > 0) {
      pending.pass -= 1;
      return undefined;
    }
    pending.remaining -= 1;
    if (pending.remaining <= 0) failures.delete(channel);
    return pending.status;
  }

  return {
    handle(req, res, rawBody, bytes) {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      if (!url.pathname.startsWith(PROVIDERS_PREFIX)) return false;
      const rest = url.pathname.slice(PROVIDERS_PREFIX.length);
      const slash = rest.indexOf('/');
      const channel = slash === -1 ? rest : rest.slice(0, slash);
      const path = slash === -1 ? '/' : rest.slice(slash);
      if (!isProviderChannel(channel)) {
        send(res, { status: 404, body: { error: { code: 'unknown_channel', message: `No provider stand-in for "${channel}"` } } });
        return true;
      }
      const method = req.method ?? 'GET';
      const headers = headersOf(req);
      const body = parseBody(rawBody, headers['content-type'], bytes);
      if (path === '/_fail' && method === 'POST') {
        // Our own JSON route, whatever the client labels it (curl -d says form-urlencoded).
        const control = parseBody(rawBody, undefined);
        const status = Number(field(control, 'status'));
        const count = Number(field(control, 'count') ?? 1);
        const after = Number(field(control, 'after') ?? 0);
        const counts = [count, after].every((n) => Number.isInteger(n) && n >= 0);
        if (!Number.isInteger(status) || status < 400 || status > 599 || !counts) {
          send(res, { status: 400, body: { error: { code: 'bad_request', message: 'Expected {"status": 400..599, "count": n >= 0, "after"?: n >= 0}' } } });
        } else {
          failNext(channel, status, count, after);
          send(res, { status: 200, body: { ok: true } });
        }
        return true;
      }
      // Decided before a hold, so that the test holding it knows the id the answer will carry.
      const failStatus = takeFailure(channel);
      const request = { method, path, query: url.searchParams, headers, body };
      const reply =
        failStatus !== undefined
          ? failure(channel, failStatus)
          : (mediaReply(channel, request, credentialsOf(channel), files) ?? handlers[channel](request, credentialsOf(channel)));
      const answer = () => {
        items.push({ channel, method, url: `${url.pathname}${url.search}`, headers, body, at: new Date().toISOString(), status: reply.status, answer: reply.body });
        send(res, reply);
      };
      const hold = holds.get(channel);
      holds.delete(channel);
      if (hold) hold(body, reply.body).then(answer, (error: unknown) => res.destroy(error as Error));
      else answer();
      return true;
    },
    outbox(channel) {
      return items.filter((item) => channel === undefined || item.channel === channel);
    },
    failNext,
    holdNext(channel, until) {
      holds.set(channel, until);
    },
    addMedia(channel, file) {
      const id = { whatsapp: `media-${hex(8)}`, telegram: `AgAC${hex(12)}`, sms: `ME${hex(16)}`, messenger: `asset-${hex(8)}`, instagram: `asset-${hex(8)}` }[channel];
      files.set(`${channel}/${id}`, file);
      return id;
    },
    reset() {
      items = [];
      failures.clear();
      holds.clear();
      files.clear();
      telegram.reset();
    },
  };
}
