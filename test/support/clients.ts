/** Real HTTP and WebSocket clients, as a frontend or a provider would use them. */
import WebSocket from 'ws';

export interface HttpResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export async function http<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {},
): Promise<HttpResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed as T, text, headers: response.headers };
}

export async function agentToken(baseUrl: string, sub: string, role: 'agent' | 'admin' = 'agent', name?: string): Promise<string> {
  const res = await http<{ token: string }>(baseUrl, 'POST', '/local/auth/token', { body: { sub, role, ...(name ? { name } : {}) } });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${res.text}`);
  return res.body.token;
}

export async function visitorSession(baseUrl: string, body: Record<string, unknown> = {}) {
  const res = await http<{ visitorId: string; token: string; websocketUrl: string; conversationId: string | null }>(
    baseUrl,
    'POST',
    '/v1/widget/sessions',
    { body },
  );
  if (res.status !== 201) throw new Error(`session: ${res.status} ${res.text}`);
  return res.body;
}

export type Frame = { type: string } & Record<string, any>;

/** A WebSocket client that keeps every frame it received and can wait for one. */
export class WsClient {
  readonly frames: Frame[] = [];
  private waiters: { predicate: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (!w.predicate(frame)) return true;
        w.resolve(frame);
        return false;
      });
    });
  }

  /** Connects; rejects with the HTTP status when the handshake is refused. */
  static connect(url: string, token: string | undefined): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(token === undefined ? url : `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`);
      const client = new WsClient(socket);
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`handshake refused: ${res.statusCode}`), { status: res.statusCode })));
      socket.once('error', reject);
    });
  }

  send(frame: Record<string, unknown> | string): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame (already received or coming) that matches. */
  waitFor(predicate: (f: Frame) => boolean, timeoutMs = 10_000, description = 'frame'): Promise<Frame> {
    const seen = this.frames.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${description}; got ${JSON.stringify(this.frames.slice(-5))}`)), timeoutMs);
      this.waiters.push({
        predicate,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.readyState === WebSocket.CLOSED) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}

/** Waits until `check` returns a truthy value (polling), for conditions that are not frames. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
