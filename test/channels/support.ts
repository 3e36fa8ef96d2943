/** Test doubles shared by the adapter tests: a scripted fetch and time helpers. */
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import type { SendContext } from '../../src/channels/types';
import type { ProviderChannel } from '../../src/domain/types';

export interface RecordedCall {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal | undefined;
  json(): Record<string, unknown>;
  form(): URLSearchParams;
  /** A multipart/form-data body as it was handed to fetch. */
  multipart(): FormData;
}

/** A JSON (or text) answer, or with `file` raw bytes of that content type; `location` for a redirect. */
export type ScriptedReply = { status: number; body: unknown; file?: { contentType: string; bytes: Buffer }; location?: string } | Error;

/** A fetch that answers from a script, one reply per call (the last reply repeats). */
export function scriptedFetch(...replies: ScriptedReply[]): { fetch: typeof fetch; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const fake = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const body = typeof init?.body === 'string' ? init.body : '';
    calls.push({
      url: String(input),
      method: init?.method ?? 'GET',
      headers: Object.fromEntries(Object.entries((init?.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v])),
      body,
      signal: init?.signal ?? undefined,
      json: () => JSON.parse(body) as Record<string, unknown>,
      form: () => new URLSearchParams(body),
      multipart: () => {
        if (!(init?.body instanceof FormData)) throw new Error('scriptedFetch: the body is not FormData');
        return init.body;
      },
    });
    const reply = replies[Math.min(calls.length - 1, replies.length - 1)];
    if (!reply) throw new Error('scriptedFetch: no reply scripted');
    if (reply instanceof Error) throw reply;
    if (reply.file) {
      const { contentType, bytes } = reply.file;
      return new Response(new Uint8Array(bytes), { status: reply.status, headers: { 'content-type': contentType, 'content-length': String(bytes.length) } });
    }
    const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    return new Response(text, { status: reply.status, headers: { 'content-type': 'application/json', ...(reply.location ? { location: reply.location } : {}) } });
  };
  return { fetch: fake as typeof fetch, calls };
}

export function sendContext(channel: ProviderChannel, fetchImpl: typeof fetch, baseUrl = `https://provider.test/${channel}`): SendContext {
  return { credentials: DEV_CREDENTIALS[channel], baseUrl, fetch: fetchImpl };
}

export const NOW = new Date('2026-03-10T12:00:00.000Z');
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** The ISO time `ms` before NOW. */
export function ago(ms: number): string {
  return new Date(NOW.getTime() - ms).toISOString();
}

export const networkError = () => new TypeError('fetch failed');
