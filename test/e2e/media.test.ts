/**
 * Files end to end on the local stack: agents and visitors upload with a presigned PUT, send
 * messages that name the upload, and open what their conversation holds through the
 * attachment routes; providers get a URL they can fetch. Nobody reaches a file that is not theirs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';
import { newHandle, postWebhook, textWebhook } from './channels-support';
import { fixture } from '../fixtures/sign';
import { MAX_UPLOAD_BYTES } from '../../src/manifest';
import { ENV } from '../../src/config';
import { VISITOR_SEND_LIMIT } from '../../src/domain/realtime';
import { getErasure } from '../../src/store/erasure';
import { deleteEveryVersion } from '../../src/aws/media-store';

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;
const clients: WsClient[] = [];
const BUCKET = 'conversa-local-media';

/** Every byte value, so that a text or encoding conversion anywhere shows. */
const PNG_BYTES = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);

async function connect(token: string): Promise<WsClient> {
  const client = await WsClient.connect(stack.wsUrl, token);
  clients.push(client);
  return client;
}

interface Ticket {
  uploadId: string;
  url: string;
  method: string;
  headers: Record<string, string>;
  expiresAt: string;
}

/** A ticket from `path` (agent or visitor token), then the file PUT as a browser would. */
async function upload(path: string, token: string, bytes: Buffer, contentType: string): Promise<Ticket> {
  const ticket = await http<Ticket>(stack.httpUrl, 'POST', path, { token, body: { contentType, size: bytes.length } });
  expect(ticket.status, ticket.text).toBe(201);
  const put = await fetch(ticket.body.url, { method: 'PUT', headers: ticket.body.headers, body: bytes });
  expect(put.status, await put.clone().text()).toBe(200);
  return ticket.body;
}

/** Follows an attachment route's redirect the way a console or widget does; the file and how it is served. */
async function open(path: string, token: string) {
  const redirect = await fetch(`${stack.httpUrl}${path}`, { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' });
  if (redirect.status !== 302) return { status: redirect.status, body: await redirect.text() };
  const location = redirect.headers.get('location')!;
  const file = await fetch(location);
  return {
    status: file.status,
    location,
    bytes: Buffer.from(await file.arrayBuffer()),
    contentType: file.headers.get('content-type'),
    disposition: file.headers.get('content-disposition'),
  };
}

async function visitorWithConversation() {
  const session = await visitorSession(stack.httpUrl, { name: 'Vera' });
  const ws = await connect(session.token);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text: 'Hello, I have a question', clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
  return { session, ws, conversationId: ack.conversationId as string };
}

/** Waits past the next UTC hour when it ends within 5 s: an hour's quota must hold for a whole test. */
async function awayFromHourEnd(): Promise<void> {
  const left = 3_600_000 - (Date.now() % 3_600_000);
  if (left < 5_000) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

const keptKeys = () => stack.aws.s3.listKeys(BUCKET, 'media/');

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = await agentToken(stack.httpUrl, 'agent-mia', 'agent', 'Mia');
  agent = await connect(agentJwt);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

/** A customer who wrote on a provider channel: their handle and the conversation the agent saw. */
async function providerCustomer(channel: 'whatsapp' | 'sms', what: string): Promise<{ handle: string; conversationId: string }> {
  const handle = newHandle(channel);
  const text = `${what} ${crypto.randomUUID()}`;
  expect((await postWebhook(stack, channel, textWebhook(channel, handle, text).body)).status).toBe(200);
  const inbound = await agent.waitFor((f) => f.type === 'message.created' && f.message.text === text, 10_000, 'the customer message');
  return { handle, conversationId: inbound.conversationId };
}

/** The first send to a WhatsApp customer that is not text, as the provider got it. */
const whatsappFileTo = (handle: string) =>
  eventually(async () => {
    const outbox = await http(stack.httpUrl, 'GET', '/local/outbox?channel=whatsapp');
    return (outbox.body.items as { body: { to?: string; type?: string } }[]).map((i) => i.body).find((b) => b.to === handle && b.type !== 'text');
  });

describe('files agents send', () => {
  it('reach the visitor, who opens them with its own token, and the agent opens them too', async () => {
    const { session, ws, conversationId } = await visitorWithConversation();
    const ticket = await upload('/v1/uploads', agentJwt, PNG_BYTES, 'image/png');

    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token: agentJwt,
      body: { text: '', attachments: [{ uploadId: ticket.uploadId, name: 'label.png' }] },
    });

    expect(reply.status, reply.text).toBe(202);
    const attachment = reply.body.message.attachments[0];
    expect(attachment).toMatchObject({ type: 'image', mimeType: 'image/png', name: 'label.png', size: PNG_BYTES.length });
    expect(attachment.url).toMatch(/^conversa-media:\/\/media\/agent\//);
    const frame = await ws.waitFor((f) => f.type === 'message.created' && f.message.id === reply.body.message.id, 10_000, 'the reply on the visitor socket');
    expect(frame.message.attachments).toEqual([attachment]);

    const byVisitor = await open(`/v1/widget/messages/${reply.body.message.id}/attachments/0`, session.token);
    expect(byVisitor.status).toBe(200);
    expect(byVisitor.bytes!.equals(PNG_BYTES)).toBe(true);
    expect(byVisitor.contentType).toBe('image/png');
    expect(byVisitor.disposition).toBe("inline; filename*=UTF-8''label.png");
    const byAgent = await open(`/v1/conversations/${conversationId}/messages/${reply.body.message.id}/attachments/0`, agentJwt);
    expect(byAgent.bytes!.equals(PNG_BYTES)).toBe(true);
    // Kept apart from the uploads area, which expires.
    expect(keptKeys()).toContain(attachment.url.slice('conversa-media://'.length));
  });

  it.each(['text/html', 'image/svg+xml', 'video/x+xml'])('serve %s, which could run as a page, as a download', async (contentType) => {
    const { conversationId } = await visitorWithConversation();
    const page = Buffer.from('<script>alert(1)</script>');
    const ticket = await upload('/v1/uploads', agentJwt, page, contentType);
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token: agentJwt,
      body: { text: 'see attached', attachments: [{ uploadId: ticket.uploadId, name: 'page' }] },
    });
    expect(reply.status, reply.text).toBe(202);

    const file = await open(`/v1/conversations/${conversationId}/messages/${reply.body.message.id}/attachments/0`, agentJwt);

    expect(file.disposition).toBe("attachment; filename*=UTF-8''page");
  });

  it.each([
    ['audio/ogg; codecs=opus', 'inline'],
    ['text/html; charset=utf-8', 'attachment'],
  ])('serve %s by its type without the parameters: %s', async (contentType, shown) => {
    const { conversationId } = await visitorWithConversation();
    const ticket = await upload('/v1/uploads', agentJwt, Buffer.from('OggS voice note'), contentType);
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token: agentJwt,
      body: { attachments: [{ uploadId: ticket.uploadId, name: 'voice' }] },
    });
    expect(reply.status, reply.text).toBe(202);

    const file = await open(`/v1/conversations/${conversationId}/messages/${reply.body.message.id}/attachments/0`, agentJwt);

    expect(file.contentType).toBe(contentType);
    expect(file.disposition).toBe(`${shown}; filename*=UTF-8''voice`);
  });

  it('keep a vCard a file, so that providers get the file rather than its URL as text', async () => {
    const { conversationId } = await visitorWithConversation();
    const ticket = await upload('/v1/uploads', agentJwt, Buffer.from('BEGIN:VCARD\nEND:VCARD'), 'text/vcard');

    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { attachments: [{ uploadId: ticket.uploadId }] } });

    expect(reply.body.message.attachments[0].type).toBe('file');
  });

  it('upload with URLs that carry no checksum of a body they cannot know', async () => {
    const ticket = await upload('/v1/uploads', agentJwt, PNG_BYTES, 'image/png');

    expect([...new URL(ticket.url).searchParams.keys()].filter((k) => k.toLowerCase().startsWith('x-amz-checksum') || k.toLowerCase() === 'x-amz-sdk-checksum-algorithm')).toEqual([]);
    expect(new URL(ticket.url).searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
  });

  it('go to a provider as a URL it can fetch', async () => {
    const { handle, conversationId } = await providerCustomer('whatsapp', 'need the invoice');
    const pdf = Buffer.from('%PDF-1.4 invoice');
    const ticket = await upload('/v1/uploads', agentJwt, pdf, 'application/pdf');

    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token: agentJwt,
      body: { text: 'Here it is', attachments: [{ uploadId: ticket.uploadId, name: 'invoice.pdf' }] },
    });

    expect(reply.status, reply.text).toBe(202);
    const sent = await eventually(async () => {
      const outbox = await http(stack.httpUrl, 'GET', '/local/outbox?channel=whatsapp');
      return (outbox.body.items as { body: unknown }[]).map((i) => (typeof i.body === 'string' ? JSON.parse(i.body) : i.body)).find((b) => b.to === handle && b.type === 'document');
    });
    expect(sent.document.filename).toBe('invoice.pdf');
    const fetched = await fetch(sent.document.link);
    expect(fetched.status).toBe(200);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(pdf)).toBe(true);
  });

  it('are stored once when the same reply is retried', async () => {
    const { conversationId } = await visitorWithConversation();
    const ticket = await upload('/v1/uploads', agentJwt, PNG_BYTES, 'image/png');
    const body = { text: 'twice', clientMessageId: crypto.randomUUID(), attachments: [{ uploadId: ticket.uploadId }] };

    const first = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body });
    const second = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body });

    expect(second.body.message.id).toBe(first.body.message.id);
    const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    expect(history.body.items.filter((m: { text: string }) => m.text === 'twice')).toHaveLength(1);
    expect(keptKeys().filter((k) => k.endsWith(ticket.uploadId))).toHaveLength(1);
  });
  it("stay with each customer they went to when another customer is erased", async () => {
    // Prepare: one upload sent to two visitors' conversations
    const erased = await visitorWithConversation();
    const kept = await visitorWithConversation();
    const ticket = await upload('/v1/uploads', agentJwt, PNG_BYTES, 'image/png');
    const send = (conversationId: string) =>
      http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { text: 'the label', attachments: [{ uploadId: ticket.uploadId }] } });
    const [toErased, toKept] = [await send(erased.conversationId), await send(kept.conversationId)];
    expect([toErased.status, toKept.status]).toEqual([202, 202]);
    const admin = await agentToken(stack.httpUrl, 'admin-media', 'admin', 'Ada');
    const contactId = (await http(stack.httpUrl, 'GET', `/v1/conversations/${erased.conversationId}`, { token: agentJwt })).body.contact.id as string;

    // Act: the first customer's erasure
    expect((await http(stack.httpUrl, 'DELETE', `/v1/contacts/${contactId}`, { token: admin })).status).toBe(202);
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);

    // Assess: the other customer and the agent still open the file; the erased customer's copy is gone
    const byVisitor = await open(`/v1/widget/messages/${toKept.body.message.id}/attachments/0`, kept.session.token);
    const byAgent = await open(`/v1/conversations/${kept.conversationId}/messages/${toKept.body.message.id}/attachments/0`, agentJwt);
    expect(byVisitor.status).toBe(200);
    expect(byVisitor.bytes!.equals(PNG_BYTES)).toBe(true);
    expect(byAgent.status).toBe(200);
    expect(keptKeys()).not.toContain(toErased.body.message.attachments[0].url.slice('conversa-media://'.length));
    expect(keptKeys()).toContain(toKept.body.message.attachments[0].url.slice('conversa-media://'.length));
  });

  it('go again from the copy a message kept before copies were made per conversation, once the upload expired, as a copy of their own', async () => {
    // Prepare: a file kept where a message sent before this layout put it (media/agent/<agent>/<uploadId>); its upload expired
    const { conversationId } = await visitorWithConversation();
    const uploadId = '01JD5Q8Z7V4R0M3X6N2B9C1K8T';
    const legacy = `media/agent/agent-mia/${uploadId}`;
    stack.aws.s3.putObject(BUCKET, legacy, PNG_BYTES, { contentType: 'image/png' });

    // Act
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { text: 'again', attachments: [{ uploadId }] } });

    // Assess: this conversation's own copy, which opens after the old one is gone (its customer erased)
    expect(reply.status, reply.text).toBe(202);
    expect(reply.body.message.attachments[0]).toMatchObject({ type: 'image', mimeType: 'image/png', size: PNG_BYTES.length });
    await deleteEveryVersion(legacy);
    const file = await open(`/v1/conversations/${conversationId}/messages/${reply.body.message.id}/attachments/0`, agentJwt);
    expect(file.status).toBe(200);
    expect(file.bytes!.equals(PNG_BYTES)).toBe(true);
  });
});

describe('names and types', () => {
  it('refuse a name that is not well-formed Unicode or has control characters, and encode odd names as RFC 8187 has it', async () => {
    const { conversationId } = await visitorWithConversation();
    const ticket = await upload('/v1/uploads', agentJwt, PNG_BYTES, 'application/pdf');

    const broken = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token: agentJwt,
      raw: `{"text":"doc","attachments":[{"uploadId":"${ticket.uploadId}","name":"r\\udc00.pdf"}]}`,
      headers: { 'content-type': 'application/json' },
    });
    const odd = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token: agentJwt,
      body: { text: 'doc', attachments: [{ uploadId: ticket.uploadId, name: "it's (1)*.pdf" }] },
    });

    const controls = await Promise.all(
      ['invoice\r\nX-Injected: 1.pdf', 'a\u0000b.pdf', 'tab\there.pdf'].map((name) =>
        http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { text: 'doc', attachments: [{ uploadId: ticket.uploadId, name }] } }),
      ),
    );

    expect(broken.status).toBe(400);
    expect(controls.map((r) => r.status)).toEqual([400, 400, 400]);
    expect(controls[0]!.body.error.message).toMatch(/control characters/);
    expect(odd.status, odd.text).toBe(202);
    const file = await open(`/v1/conversations/${conversationId}/messages/${odd.body.message.id}/attachments/0`, agentJwt);
    expect(file.disposition).toBe("inline; filename*=UTF-8''it%27s%20%281%29%2A.pdf");
  });

  it('refuse an image of a type WhatsApp takes neither as a photo nor as a document (an SVG), before anything is stored or sent', async () => {
    const { handle, conversationId } = await providerCustomer('whatsapp', 'svg please');
    const ticket = await upload('/v1/uploads', agentJwt, Buffer.from('<svg/>'), 'image/svg+xml');
    // The autoresponder's greeting goes out on its own (a CI run counted it as part of the reply).
    await eventually(() => stack.providers.outbox('whatsapp').some((item) => (item.body as { to?: string }).to === handle));
    const sentBefore = stack.providers.outbox('whatsapp').length;

    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token: agentJwt,
      body: { text: 'the logo', attachments: [{ uploadId: ticket.uploadId, name: 'logo.svg' }] },
    });

    expect(reply.status, reply.text).toBe(415);
    expect(reply.body.error).toMatchObject({ code: 'attachment_type_not_supported' });
    expect(reply.body.error.message).toContain('"logo.svg" is image/svg+xml');
    expect(keptKeys().filter((key) => key.endsWith(ticket.uploadId))).toEqual([]);
    expect(stack.providers.outbox('whatsapp').slice(sentBefore)).toEqual([]);
  });

  it('send a provider a photo larger than it takes as a photo as a document', async () => {
    // Prepare: a WhatsApp customer; a 6 MB JPEG (the Cloud API takes images up to 5 MB, documents up to 100 MB)
    const { handle, conversationId } = await providerCustomer('whatsapp', 'the big photo');
    const photo = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(6_000_000)]);
    const ticket = await upload('/v1/uploads', agentJwt, photo, 'image/jpeg');

    // Act
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token: agentJwt,
      body: { attachments: [{ uploadId: ticket.uploadId, name: 'site.jpg' }] },
    });

    // Assess: stored as the photo it is, sent as a document the provider accepts
    expect(reply.status, reply.text).toBe(202);
    expect(reply.body.message.attachments[0]).toMatchObject({ type: 'image', size: photo.length });
    expect(await whatsappFileTo(handle)).toMatchObject({ type: 'document', document: { filename: 'site.jpg' } });

    // The same photo without a name: the document is named after the upload, with its type's extension
    const other = await providerCustomer('whatsapp', 'the big photo again');
    const unnamed = await http(stack.httpUrl, 'POST', `/v1/conversations/${other.conversationId}/messages`, { token: agentJwt, body: { attachments: [{ uploadId: ticket.uploadId }] } });
    expect(unnamed.status, unnamed.text).toBe(202);
    expect(unnamed.body.message.attachments[0]).not.toHaveProperty('name');
    expect(await whatsappFileTo(other.handle)).toMatchObject({ type: 'document', document: { filename: `${ticket.uploadId}.jpg` } });
  });

  it('refuse a reply whose files the channel cannot take, before anything is stored or sent', async () => {
    // Prepare: an SMS customer; two 3 MB images (an MMS carries at most 5 MB)
    const { conversationId } = await providerCustomer('sms', 'send me the photos');
    const image = (fill: number) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(3_000_000, fill)]);
    const tickets = [await upload('/v1/uploads', agentJwt, image(1), 'image/jpeg'), await upload('/v1/uploads', agentJwt, image(2), 'image/jpeg')];
    const clientMessageId = crypto.randomUUID();
    const path = `/v1/conversations/${conversationId}/messages`;
    const sentBefore = stack.providers.outbox('sms').length;

    // Act
    const refused = await http(stack.httpUrl, 'POST', path, {
      token: agentJwt,
      body: { text: 'both photos', clientMessageId, attachments: tickets.map((t) => ({ uploadId: t.uploadId })) },
    });

    // Assess: a clear 413 and nothing stored; the same clientMessageId then sends one photo
    expect(refused.status, refused.text).toBe(413);
    expect(refused.body.error).toMatchObject({ code: 'attachment_too_large' });
    expect(refused.body.error.message).toContain('5 MB');
    expect(keptKeys().filter((key) => tickets.some((t) => key.endsWith(t.uploadId)))).toEqual([]);
    const history = await http(stack.httpUrl, 'GET', path, { token: agentJwt });
    expect(history.body.items.filter((m: { text: string }) => m.text === 'both photos')).toHaveLength(0);
    const one = await http(stack.httpUrl, 'POST', path, { token: agentJwt, body: { text: 'one photo', clientMessageId, attachments: [{ uploadId: tickets[0]!.uploadId }] } });
    expect(one.status, one.text).toBe(202);
    await eventually(() => stack.providers.outbox('sms').slice(sentBefore).some((item) => item.status < 300 && JSON.stringify(item.body).includes('one photo')));
    expect(stack.providers.outbox('sms').slice(sentBefore).some((item) => JSON.stringify(item.body).includes('both photos'))).toBe(false);
  });

  it("drop our own scheme from a customer's message, so a provider cannot point at our files", async () => {
    const body = JSON.parse(fixture('messenger', 'image.json'));
    const event = body.entry[0].messaging[0];
    event.sender.id = newHandle('messenger');
    event.message.mid = `m_${crypto.randomUUID()}`;
    event.message.attachments[0].payload.url = 'conversa-media://uploads/agent/agent-mia/01JD5Q8Z7V4R0M3X6N2B9C1K8T';

    expect((await postWebhook(stack, 'messenger', JSON.stringify(body))).status).toBe(200);

    const created = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === event.message.mid, 10_000, 'the customer message');
    expect(JSON.stringify(created.message.attachments)).not.toContain('conversa-media');
  });
});

describe('files visitors send', () => {
  it('reach the agent, who opens them', async () => {
    const { session, ws, conversationId } = await visitorWithConversation();
    const ticket = await upload('/v1/widget/uploads', session.token, PNG_BYTES, 'image/png');
    const clientMessageId = crypto.randomUUID();

    ws.send({ action: 'sendMessage', clientMessageId, attachments: [{ uploadId: ticket.uploadId, name: 'screenshot.png' }] });

    const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
    const created = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId, 10_000, 'the visitor file');
    expect(created.message).toMatchObject({ conversationId, direction: 'inbound', text: '', attachments: [{ type: 'image', name: 'screenshot.png', size: PNG_BYTES.length }] });
    const file = await open(`/v1/conversations/${conversationId}/messages/${ack.messageId}/attachments/0`, agentJwt);
    expect(file.bytes!.equals(PNG_BYTES)).toBe(true);
  });

  it('are another message under a clientMessageId already used with another file, and the same message when the same file is sent again', async () => {
    // Prepare: two files; the first sent as "c-1"
    const { session, ws, conversationId } = await visitorWithConversation();
    const [a, b] = [await upload('/v1/widget/uploads', session.token, PNG_BYTES, 'image/png'), await upload('/v1/widget/uploads', session.token, PNG_BYTES, 'image/png')];
    const acks = (n: number) =>
      eventually(() => {
        const found = ws.frames.filter((f) => f.type === 'ack' && f.clientMessageId === 'c-1');
        return found.length >= n ? found : undefined;
      });
    ws.send({ action: 'sendMessage', text: 'my receipt', clientMessageId: 'c-1', attachments: [{ uploadId: a!.uploadId }] });
    const [first] = await acks(1);

    // Act: another file under the same id and text (a widget counting its ids anew), then the first again (a lost ack)
    ws.send({ action: 'sendMessage', text: 'my receipt', clientMessageId: 'c-1', attachments: [{ uploadId: b!.uploadId }] });
    const second = (await acks(2))[1]!;
    ws.send({ action: 'sendMessage', text: 'my receipt', clientMessageId: 'c-1', attachments: [{ uploadId: a!.uploadId }] });
    const again = (await acks(3))[2]!;

    // Assess: two messages, each with its own file; the resend acknowledged as the first
    expect(second.messageId).not.toBe(first!.messageId);
    expect(again.messageId).toBe(first!.messageId);
    const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    const sent = (history.body.items as { id: string; text: string; attachments: { url: string }[] }[]).filter((m) => m.text === 'my receipt');
    expect(sent.map((m) => m.id)).toEqual([first!.messageId, second.messageId]);
    expect(sent.map((m) => m.attachments.map((f) => f.url.split('/').pop()))).toEqual([[a!.uploadId], [b!.uploadId]]);
  });
});

describe('refusals', () => {
  it("refuse another visitor's upload, and store nothing", async () => {
    const owner = await visitorSession(stack.httpUrl, {});
    const theirs = await upload('/v1/widget/uploads', owner.token, PNG_BYTES, 'image/png');
    const { ws, conversationId } = await visitorWithConversation();
    const clientMessageId = crypto.randomUUID();

    ws.send({ action: 'sendMessage', text: 'look', clientMessageId, attachments: [{ uploadId: theirs.uploadId }] });

    const error = await ws.waitFor((f) => f.type === 'error' && f.clientMessageId === clientMessageId, 10_000, 'error frame');
    expect(error.code).toBe('upload_not_found');
    const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    expect(history.body.items.map((m: { text: string }) => m.text)).not.toContain('look');
  });

  it("refuse a visitor's file beyond the send limit before it is looked up or copied", async () => {
    // Prepare: a visitor's upload; this address may send one message in a window, and has sent it
    const { ws } = await visitorWithConversation();
    const session = await visitorSession(stack.httpUrl, {});
    const own = await upload('/v1/widget/uploads', session.token, PNG_BYTES, 'image/png');
    const sender = await connect(session.token);
    process.env[ENV.visitorAddressSends] = '1';
    try {
      const { windowMs } = VISITOR_SEND_LIMIT;
      // Both sends in one window.
      if (Date.now() % windowMs > windowMs - 2_000) await new Promise((resolve) => setTimeout(resolve, windowMs - (Date.now() % windowMs) + 50));
      const first = crypto.randomUUID();
      ws.send({ action: 'sendMessage', text: 'takes the window', clientMessageId: first });
      await ws.waitFor((f) => (f.type === 'ack' || f.type === 'error') && f.clientMessageId === first, 10_000, 'the first answer');

      // Act
      const clientMessageId = crypto.randomUUID();
      sender.send({ action: 'sendMessage', clientMessageId, attachments: [{ uploadId: own.uploadId }] });

      // Assess: refused by the limit, and the file never copied to the kept area
      const refused = await sender.waitFor((f) => (f.type === 'ack' || f.type === 'error') && f.clientMessageId === clientMessageId, 10_000, 'the answer');
      expect(refused).toMatchObject({ type: 'error', code: 'rate_limited' });
      expect(keptKeys().filter((key) => key.endsWith(own.uploadId))).toEqual([]);

      // Refused before any file is looked up: one never uploaded is not what it is told
      const unknown = crypto.randomUUID();
      sender.send({ action: 'sendMessage', clientMessageId: unknown, attachments: [{ uploadId: '01J00000000000000000000000' }] });
      const beyond = await sender.waitFor((f) => (f.type === 'ack' || f.type === 'error') && f.clientMessageId === unknown, 10_000, 'the answer');
      expect(beyond).toMatchObject({ type: 'error', code: 'rate_limited' });
    } finally {
      delete process.env[ENV.visitorAddressSends];
    }
  });

  it('refuse a reply naming an upload never made, and let the same clientMessageId send once it exists', async () => {
    const { conversationId } = await visitorWithConversation();
    const ticket = await http<Ticket>(stack.httpUrl, 'POST', '/v1/uploads', { token: agentJwt, body: { contentType: 'image/png', size: PNG_BYTES.length } });
    const body = { text: 'file', clientMessageId: crypto.randomUUID(), attachments: [{ uploadId: ticket.body.uploadId }] };

    const early = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body });
    expect(early.status).toBe(400);
    expect(early.body.error.code).toBe('upload_not_found');

    const put = await fetch(ticket.body.url, { method: 'PUT', headers: ticket.body.headers, body: PNG_BYTES });
    expect(put.status).toBe(200);
    const later = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body });
    expect(later.status, later.text).toBe(202);
    expect(later.body.message.attachments).toHaveLength(1);
  });

  it('refuse a file of another size than the ticket was for', async () => {
    const ticket = await http<Ticket>(stack.httpUrl, 'POST', '/v1/uploads', { token: agentJwt, body: { contentType: 'image/png', size: 10 } });

    const put = await fetch(ticket.body.url, { method: 'PUT', headers: ticket.body.headers, body: PNG_BYTES });

    expect(put.status).toBe(403);
  });

  it('refuse tickets for files too large, of no real type, or without a token', async () => {
    const large = await http(stack.httpUrl, 'POST', '/v1/uploads', { token: agentJwt, body: { contentType: 'video/mp4', size: MAX_UPLOAD_BYTES + 1 } });
    const typeless = await http(stack.httpUrl, 'POST', '/v1/uploads', { token: agentJwt, body: { contentType: 'png\r\nx-evil: 1', size: 10 } });
    const anonymous = await http(stack.httpUrl, 'POST', '/v1/widget/uploads', { body: { contentType: 'image/png', size: 10 } });

    expect(large.status).toBe(400);
    expect(typeless.status).toBe(400);
    expect(typeless.body.error.code).toBe('invalid_content_type');
    expect(anonymous.status).toBe(401);
  });

  it("refuse a visitor's tickets beyond the hour's quota with 429, signing nothing, and count no refused request", async () => {
    // Prepare: visitors may take 2 tickets an hour; all requests in one UTC hour
    const session = await visitorSession(stack.httpUrl, {});
    const other = await visitorSession(stack.httpUrl, {});
    const ask = (token: string, contentType = 'image/png') => http(stack.httpUrl, 'POST', '/v1/widget/uploads', { token, body: { contentType, size: 10 } });
    await awayFromHourEnd();
    process.env[ENV.visitorUploadsPerHour] = '2';
    try {
      // Act: a bad request, two tickets, then one too many
      const bad = await ask(session.token, 'png');
      const taken = [await ask(session.token), await ask(session.token)];
      const beyond = await ask(session.token);
      const othersFirst = await ask(other.token);

      // Assess: the bad request took none of the two; the third is refused with no URL, naming when the hour ends
      expect(bad.status).toBe(400);
      expect(taken.map((r) => r.status)).toEqual([201, 201]);
      expect(beyond.status, beyond.text).toBe(429);
      expect(beyond.body.error.code).toBe('too_many_uploads');
      expect(beyond.text).not.toContain('X-Amz-Signature');
      const hourEnd = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000);
      expect(beyond.body.error.message).toContain(hourEnd.toISOString());
      const retryAfter = Number(beyond.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      // Each visitor has a quota of their own
      expect(othersFirst.status, othersFirst.text).toBe(201);
    } finally {
      delete process.env[ENV.visitorUploadsPerHour];
    }
  });

  it("refuse an agent's tickets beyond the hour's quota with 429, on the agents' own limit", async () => {
    // Prepare: agents may take 2 tickets an hour, visitors 1 (not the agents' limit)
    const jwt = await agentToken(stack.httpUrl, `agent-quota-${crypto.randomUUID().slice(0, 8)}`, 'agent', 'Quinn');
    const ask = () => http(stack.httpUrl, 'POST', '/v1/uploads', { token: jwt, body: { contentType: 'image/png', size: 10 } });
    await awayFromHourEnd();
    process.env[ENV.agentUploadsPerHour] = '2';
    process.env[ENV.visitorUploadsPerHour] = '1';
    try {
      // Act
      const answers = [await ask(), await ask(), await ask()];

      // Assess
      expect(answers.map((r) => r.status)).toEqual([201, 201, 429]);
      expect(answers[2]!.body.error.code).toBe('too_many_uploads');
      expect(answers[2]!.body.error.message).toContain('at most 2 uploads an hour');
    } finally {
      delete process.env[ENV.agentUploadsPerHour];
      delete process.env[ENV.visitorUploadsPerHour];
    }
  });

  it("keep private notes' files and other conversations' files from visitors", async () => {
    const { session, conversationId } = await visitorWithConversation();
    const other = await visitorWithConversation();
    const ticket = await upload('/v1/uploads', agentJwt, PNG_BYTES, 'image/png');
    const note = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token: agentJwt,
      body: { text: 'internal', private: true, attachments: [{ uploadId: ticket.uploadId }] },
    });
    expect(note.status, note.text).toBe(202);
    const shared = await upload('/v1/uploads', agentJwt, PNG_BYTES, 'image/png');
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${other.conversationId}/messages`, {
      token: agentJwt,
      body: { text: 'for the other visitor', attachments: [{ uploadId: shared.uploadId }] },
    });
    expect(reply.status, reply.text).toBe(202);

    const privateFile = await open(`/v1/widget/messages/${note.body.message.id}/attachments/0`, session.token);
    const othersFile = await open(`/v1/widget/messages/${reply.body.message.id}/attachments/0`, session.token);
    const ownersCopy = await open(`/v1/widget/messages/${reply.body.message.id}/attachments/0`, other.session.token);

    expect(privateFile.status).toBe(404);
    expect(othersFile.status).toBe(404);
    expect(ownersCopy.status).toBe(200);
  });
});
