import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createProviderStandIn } from '../../local/providers';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { adapters } from '../../src/channels/registry';
import type { OutboundSend, SendContext } from '../../src/channels/types';
import type { ProviderChannel, SendProgress } from '../../src/domain/types';

const standIn = createProviderStandIn({ credentials: (channel) => DEV_CREDENTIALS[channel] });
let server: Server;
let origin: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const bytes = Buffer.concat(chunks);
      if (!standIn.handle(req, res, bytes.toString('utf8'), bytes)) {
        res.writeHead(404).end('not a provider path');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => standIn.reset());

function context(channel: ProviderChannel, credentials = DEV_CREDENTIALS[channel]): SendContext {
  return { credentials, baseUrl: `${origin}/local/providers/${channel}`, fetch };
}

const message = (to: string): OutboundSend => ({ to, text: 'Hello from Conversa', attachments: [], idempotencyKey: '01JK', reference: 'c/01JK' });

const recipients: Record<ProviderChannel, string> = {
  whatsapp: '16505551234',
  messenger: '6970123456789012',
  instagram: '1234567890123456',
  telegram: '123456789',
  sms: '+14155552671',
};

describe('provider stand-in', () => {
  it.each(Object.entries(recipients) as [ProviderChannel, string][])('%s: answers a real adapter send like the provider and records it', async (channel, to) => {
    const result = await adapters[channel].send(message(to), context(channel));
    expect(result.ok).toBe(true);
    const items = standIn.outbox(channel);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ channel, method: 'POST', status: channel === 'sms' ? 201 : 200 });
    expect(Date.parse(items[0]?.at ?? '')).not.toBeNaN();
    expect(standIn.outbox()).toHaveLength(1);
    expect(standIn.outbox(channel === 'sms' ? 'telegram' : 'sms')).toHaveLength(0);
  });

  it('whatsapp: a wamid, the parsed body and headers in the outbox', async () => {
    const result = await adapters.whatsapp.send(message('16505551234'), context('whatsapp'));
    expect(result).toMatchObject({ ok: true, providerMessageId: expect.stringMatching(/^wamid\./) });
    const [item] = standIn.outbox('whatsapp');
    expect(item?.url).toBe(`/local/providers/whatsapp/${DEV_CREDENTIALS.whatsapp.phoneNumberId}/messages`);
    expect(item?.headers.authorization).toBe(`Bearer ${DEV_CREDENTIALS.whatsapp.accessToken}`);
    expect(item?.body).toMatchObject({ messaging_product: 'whatsapp', to: '16505551234', type: 'text', text: { body: 'Hello from Conversa' } });
  });

  it('messenger: m_ ids; telegram: chat:message ids that count up; twilio: SM + 32 hex and the form as an object', async () => {
    expect(await adapters.messenger.send(message('6970123456789012'), context('messenger'))).toMatchObject({ providerMessageId: expect.stringMatching(/^m_/) });
    expect(await adapters.telegram.send(message('123456789'), context('telegram'))).toEqual({ ok: true, providerMessageId: '123456789:1' });
    expect(await adapters.telegram.send(message('123456789'), context('telegram'))).toEqual({ ok: true, providerMessageId: '123456789:2' });
    expect(await adapters.sms.send(message('+14155552671'), context('sms'))).toMatchObject({ providerMessageId: expect.stringMatching(/^SM[0-9a-f]{32}$/) });
    expect(standIn.outbox('sms')[0]?.body).toEqual({
      To: '+14155552671',
      From: DEV_CREDENTIALS.sms.fromNumber,
      Body: 'Hello from Conversa',
      StatusCallback: 'http://127.0.0.1:3000/webhooks/sms',
    });
  });

  it('telegram: an upload (multipart sendDocument) is recorded with its fields and the file, byte for byte', async () => {
    const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    // A file any client can fetch: a Messenger CDN link of the stand-in's.
    const url = `${origin}/local/providers/messenger/_cdn/${standIn.addMedia('messenger', { contentType: DOCX, bytes })}`;
    const result = await adapters.telegram.send({ ...message('123456789'), attachments: [{ type: 'file', url, mimeType: DOCX, name: 'contract.docx' }] }, context('telegram'));
    expect(result).toEqual({ ok: true, providerMessageId: '123456789:1' });
    const [item] = standIn.outbox('telegram');
    expect(item?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(item?.body).toEqual({
      chat_id: '123456789',
      caption: 'Hello from Conversa',
      document: { filename: 'contract.docx', contentType: DOCX, size: 256, base64: bytes.toString('base64') },
    });
  });

  it.each([
    ['whatsapp', { accessToken: 'stolen' }, 401, /Invalid OAuth access token/],
    ['messenger', { accessToken: 'stolen' }, 401, /Invalid OAuth access token/],
    ['instagram', { accessToken: 'stolen' }, 401, /Invalid OAuth access token/],
    ['telegram', { botToken: '1:stolen' }, 401, /Unauthorized/],
    ['sms', { authToken: 'stolen' }, 401, /Authenticate \(Twilio error 20003\)/],
  ] as const)('%s: a wrong token gets the provider\'s %i error and a permanent failure', async (channel, override, status, error) => {
    const result = await adapters[channel].send(message(recipients[channel]), context(channel, { ...DEV_CREDENTIALS[channel], ...override }));
    expect(result).toMatchObject({ ok: false, retryable: false });
    expect(result.ok === false && result.error).toMatch(new RegExp(`^${status}: `));
    expect(result.ok === false && result.error).toMatch(error);
    expect(standIn.outbox(channel)[0]?.status).toBe(status);
  });

  it('failNext fails exactly the next N requests of that channel, retryably', async () => {
    standIn.failNext('whatsapp', 503, 2);
    const send = () => adapters.whatsapp.send(message('16505551234'), context('whatsapp'));
    expect(await send()).toMatchObject({ ok: false, retryable: true });
    expect(await adapters.telegram.send(message('1'), context('telegram'))).toMatchObject({ ok: true });
    expect(await send()).toMatchObject({ ok: false, retryable: true });
    expect(await send()).toMatchObject({ ok: true });
    expect(standIn.outbox('whatsapp').map((i) => i.status)).toEqual([503, 503, 200]);
  });

  it.each(['sms', 'messenger', 'instagram'] as const)('%s: a reply sent in parts resumes after the parts the provider accepted', async (channel) => {
    // Paragraphs of 900 characters: every limit (1600, 2000, 1000) cuts between them, into 3+ parts.
    const text = ['a', 'b', 'c', 'd', 'e', 'f'].map((letter) => letter.repeat(900)).join('\n\n');
    const long = { ...message(recipients[channel]), text };
    const kept: SendProgress[] = [];
    const attempt = (resume?: SendProgress) =>
      adapters[channel].send(long, { ...context(channel), ...(resume ? { resume } : {}), onPartSent: async (progress) => void kept.push(progress) });
    standIn.failNext(channel, 503, 1, 1);
    expect(await attempt()).toMatchObject({ ok: false, retryable: true });
    expect(kept).toHaveLength(1);
    expect(kept[0]?.partsSent).toBe(1);
    const firstId = kept[0]?.primaryId;
    expect(firstId).toBeTruthy();

    const result = await attempt(kept.at(-1));
    expect(result).toMatchObject({ ok: true, providerMessageId: firstId });
    const accepted = standIn.outbox(channel).filter((item) => item.status < 300);
    const sentTexts = accepted.map((item) => JSON.stringify(item.body).match(/([a-f])\1{50,}/g)?.join('') ?? '');
    // Every paragraph reached the customer, each once and in order.
    expect(sentTexts.join('').replace(/(.)\1*/g, '$1')).toBe('abcdef');
    expect(accepted.length).toBeGreaterThanOrEqual(3);
    expect(new Set(sentTexts).size).toBe(accepted.length);
    expect(kept.map((p) => p.partsSent)).toEqual(Array.from({ length: accepted.length - 1 }, (_, i) => i + 1));
    // The other parts' ids, from both attempts, for their statuses.
    const otherIds = result.ok ? (result.otherIds ?? []) : [];
    expect(otherIds).toHaveLength(accepted.length - 1);
    expect(new Set([firstId, ...otherIds]).size).toBe(accepted.length);
  });

  it('POST /_fail arms failures over HTTP for black-box tests; 429 is retryable, 400 permanent', async () => {
    const arm = (channel: string, body: unknown) =>
      fetch(`${origin}/local/providers/${channel}/_fail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await arm('sms', { status: 429, count: 1 })).status).toBe(200);
    expect(await adapters.sms.send(message('+14155552671'), context('sms'))).toMatchObject({ ok: false, retryable: true, error: expect.stringContaining('20429') });
    expect(await adapters.sms.send(message('+14155552671'), context('sms'))).toMatchObject({ ok: true });
    expect((await arm('telegram', { status: 400, count: 1 })).status).toBe(200);
    expect(await adapters.telegram.send(message('1'), context('telegram'))).toMatchObject({ ok: false, retryable: false });
    expect((await arm('sms', { status: 200 })).status).toBe(400);
    expect(standIn.outbox().some((item) => item.url.endsWith('/_fail'))).toBe(false);
  });

  it('validates requests like the provider (WhatsApp without "to", Telegram without text)', async () => {
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${origin}/local/providers/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const wa = await post(`whatsapp/${DEV_CREDENTIALS.whatsapp.phoneNumberId}/messages`, { messaging_product: 'whatsapp', type: 'text', text: { body: 'x' } }, {
      authorization: `Bearer ${DEV_CREDENTIALS.whatsapp.accessToken}`,
    });
    expect(wa.status).toBe(400);
    expect(await wa.json()).toMatchObject({ error: { code: 100 } });
    const tg = await post(`telegram/bot${DEV_CREDENTIALS.telegram.botToken}/sendMessage`, { chat_id: 1 });
    expect(tg.status).toBe(400);
    expect(await tg.json()).toEqual({ ok: false, error_code: 400, description: 'Bad Request: message text is empty' });
  });

  it('leaves other paths to the caller and answers 404 for unknown channels', async () => {
    expect((await fetch(`${origin}/local/health`)).status).toBe(404);
    expect(await (await fetch(`${origin}/local/health`)).text()).toBe('not a provider path');
    expect((await fetch(`${origin}/local/providers/line/send`, { method: 'POST' })).status).toBe(404);
  });

  it('reset clears the outbox and pending failures', async () => {
    standIn.failNext('messenger', 500, 5);
    await adapters.messenger.send(message('6970123456789012'), context('messenger'));
    standIn.reset();
    expect(standIn.outbox()).toEqual([]);
    expect(await adapters.messenger.send(message('6970123456789012'), context('messenger'))).toMatchObject({ ok: true });
  });
});
