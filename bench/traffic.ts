/**
 * What the benchmark sends and receives: signed WhatsApp webhooks over a keep-alive HTTP
 * client (as a provider's would be), and an agent or visitor WebSocket that records when each
 * `message.created` arrives, keyed by the message text.
 */
import { Agent, request } from 'node:http';
import WebSocket from 'ws';
import { providerHeaders, whatsappTextWebhook, whatsappWebhookBody } from '../test/fixtures/sign';

/** One keep-alive pool for every request, so the stack and the floor server see the same client. */
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

export interface Reply {
  status: number;
  body: string;
}

export function send(url: string, method: string, body: string | undefined, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function sendJson<T>(url: string, method: string, body: unknown, token?: string): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const reply = await send(url, method, body === undefined ? undefined : JSON.stringify(body), headers);
  return { status: reply.status, body: (reply.body ? JSON.parse(reply.body) : undefined) as T };
}

/** A customer phone number (digits only, as WhatsApp's `from`), distinct per index and run. */
export function phone(run: string, index: number): string {
  return `1555${run}${String(index).padStart(5, '0')}`;
}

/** A signed WhatsApp webhook with one text message. */
export function whatsappWebhook(from: string, text: string): { body: string; headers: Record<string, string> } {
  const body = whatsappTextWebhook(from, text);
  return { body, headers: providerHeaders('whatsapp', body) };
}

/**
 * A signed WhatsApp status webhook for one of our sends, as the Cloud API sends one per status
 * (`sent`, `delivered`, `read`), carrying the send's `biz_opaque_callback_data` back.
 */
export function whatsappStatusWebhook(recipient: string, providerMessageId: string, status: 'sent' | 'delivered' | 'read', reference: string): { body: string; headers: Record<string, string> } {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const body = whatsappWebhookBody({ statuses: [{ id: providerMessageId, status, timestamp, recipient_id: recipient, biz_opaque_callback_data: reference }] });
  return { body, headers: providerHeaders('whatsapp', body) };
}

export interface CreatedFrame {
  type: string;
  conversationId: string;
  message: { id: string; text: string; direction: string; status: string };
}

/**
 * A WebSocket that notes the arrival time of every `message.created` by text. Waiters are keyed
 * by text, so thousands of pending messages cost a map lookup per frame, not a scan.
 */
export class FrameWatch {
  readonly framesByType = new Map<string, number>();
  readonly created = new Map<string, { at: number; frame: CreatedFrame }>();
  private readonly waiters = new Map<string, (at: number) => void>();

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const at = performance.now();
      const frame = JSON.parse(String(data)) as CreatedFrame;
      this.framesByType.set(frame.type, (this.framesByType.get(frame.type) ?? 0) + 1);
      if (frame.type !== 'message.created') return;
      const text = frame.message.text;
      // The first arrival counts; a later copy (the delivery status update) does not move it.
      if (!this.created.has(text)) this.created.set(text, { at, frame });
      this.waiters.get(text)?.(at);
      this.waiters.delete(text);
    });
  }

  /** `focused`: the feed an agent console asks for (src/domain/fanout.ts). */
  static connect(wsUrl: string, token: string, options: { focused?: boolean } = {}): Promise<FrameWatch> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}${options.focused ? '&feed=focused' : ''}`);
      socket.once('open', () => resolve(new FrameWatch(socket)));
      socket.once('error', reject);
    });
  }

  /** Resolves with the arrival time of the `message.created` carrying `text`. */
  arrival(text: string, timeoutMs = 30_000): Promise<number> {
    const seen = this.created.get(text);
    if (seen) return Promise.resolve(seen.at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(text);
        reject(new Error(`no message.created for "${text}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(text, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }

  send(frame: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** Waits for the first frame `match` accepts (acks and the like, outside the text index). */
  next(match: (frame: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.off('message', listener);
        reject(new Error(`no matching frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (data: WebSocket.RawData) => {
        const frame = JSON.parse(String(data)) as Record<string, unknown>;
        if (!match(frame)) return;
        clearTimeout(timer);
        this.socket.off('message', listener);
        resolve(frame);
      };
      this.socket.on('message', listener);
    });
  }

  /** The connection's id (the `getConnection` action): a console names it on the replies it sends over HTTP. */
  async connectionId(): Promise<string> {
    const answer = this.next((frame) => frame.type === 'connection');
    this.send({ action: 'getConnection' });
    const id = (await answer).connectionId;
    if (typeof id !== 'string') throw new Error('the connection frame carried no connectionId');
    return id;
  }

  totalFrames(): number {
    let total = 0;
    for (const count of this.framesByType.values()) total += count;
    return total;
  }

  close(): void {
    this.socket.close();
  }
}
