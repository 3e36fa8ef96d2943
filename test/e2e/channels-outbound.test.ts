/**
 * Agent replies on provider channels end to end: the provider request recorded at
 * /local/outbox, delivery statuses from the providers' callbacks, the 24-hour windows, retries
 * of 429/5xx and permanent failures shown to the agent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, WsClient, type Frame } from '../support/clients';
import { PROVIDER_CHANNELS, type InboundEvent, type ProviderChannel } from '../../src/domain/types';
import { updateConversation } from '../../src/store/conversations';
import { earlyStatuses, getDedup } from '../../src/store/messages';
import { keys } from '../../src/store/keys';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { agentMessageScope } from '../../src/domain/outbound';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { messengerAdapter } from '../../src/channels/messenger';
import { whatsappAdapter } from '../../src/channels/whatsapp';
import { ALL_BEFORE_WATERMARK } from '../../src/channels/meta';
import { ingestStatus } from '../../src/domain/inbound';
import { capacityTotals, resetCapacityTotals } from '../../src/aws/capacity';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { inboundDedupId, inboundGroupId } from '../../src/aws/queues';
import { fixture, signedRequest } from '../fixtures/sign';
import { png } from '../support/png';
import { expectedSend, newHandle, postWebhook, REPORTED_STATUSES, statusWebhook, textWebhook } from './channels-support';

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;

const HOUR = 3_600_000;

/** The provider's copy of an event hours later, queued past SQS's deduplication window (5 minutes). */
async function redeliverHoursLater(event: InboundEvent): Promise<void> {
  await new SQSClient({}).send(
    new SendMessageCommand({
      QueueUrl: process.env.INBOUND_QUEUE_URL!,
      MessageBody: JSON.stringify({ ...event, receivedAt: new Date(Date.now() + 6 * HOUR).toISOString() }),
      MessageGroupId: inboundGroupId(event),
      MessageDeduplicationId: `${inboundDedupId(event).slice(0, 90)}-later-${crypto.randomUUID()}`,
    }),
  );
}
const OUR_APP_ID = '1517776481860111';
/** Our Page: the entry id of the documented Messenger payloads. */
const OUR_PAGE_ID = '107311788749211';

beforeAll(async () => {
  // Retries back off 1 s, 2 s… instead of production's longer steps.
  // Our Meta app's id: echoes of other apps' sends (the Page inbox) are then stored.
  // Our Page's id: what another Page the app is subscribed to receives is ignored.
  stack = await startTestStack({ env: { CONVERSA_RETRY_BASE_SECONDS: '1', MESSENGER_APP_ID: OUR_APP_ID, MESSENGER_PAGE_ID: OUR_PAGE_ID } });
  agentJwt = await agentToken(stack.httpUrl, 'agent-ana', 'agent', 'Ana');
  agent = await WsClient.connect(stack.wsUrl, agentJwt);
  // The autoresponder would send (and consume injected provider failures) on its own.
  const admin = await agentToken(stack.httpUrl, 'admin-ada', 'admin');
  const settings = await http(stack.httpUrl, 'GET', '/v1/settings', { token: admin });
  const updated = await http(stack.httpUrl, 'PUT', '/v1/settings', {
    token: admin,
    body: { ...settings.body, autoresponder: { ...settings.body.autoresponder, enabled: false } },
  });
  expect(updated.status).toBe(200);
});

afterAll(async () => {
  await agent?.close();
  await stack?.stop();
});

/** A customer who wrote on `channel`: the conversation an agent answers. */
async function customer(channel: ProviderChannel): Promise<{ handle: string; conversationId: string }> {
  const handle = newHandle(channel);
  const webhook = textWebhook(channel, handle, 'Hello, anyone there?');
  expect((await postWebhook(stack, channel, webhook.body)).status).toBe(200);
  const frame = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, 'inbound');
  return { handle, conversationId: frame.conversationId };
}

function reply(conversationId: string, body: Record<string, unknown>) {
  return http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body });
}

const updated = (messageId: string, status: string) => (f: Frame) => f.type === 'message.updated' && f.message.id === messageId && f.message.status === status;

/** A reply the provider accepted, with the ids its callbacks will name (WhatsApp also hands back our reference). */
async function sentReply(conversationId: string, text: string): Promise<{ id: string; providerMessageId: string; reference?: string }> {
  const response = await reply(conversationId, { text });
  expect(response.status).toBe(202);
  const frame = await agent.waitFor(updated(response.body.message.id, 'sent'), 15_000, `sent: ${text}`);
  const [request] = await outbox(frame.message.channel, carries(text));
  const reference = (request?.body as { biz_opaque_callback_data?: string } | undefined)?.biz_opaque_callback_data;
  return { id: frame.message.id, providerMessageId: frame.message.providerMessageId, ...(reference ? { reference } : {}) };
}

interface OutboxItem {
  url: string;
  headers: Record<string, string>;
  body: unknown;
  status: number;
  answer: unknown;
}

async function outbox(channel: ProviderChannel, match: (item: OutboxItem) => boolean): Promise<OutboxItem[]> {
  const response = await http(stack.httpUrl, 'GET', `/local/outbox?channel=${channel}`);
  expect(response.status).toBe(200);
  return (response.body.items as OutboxItem[]).filter(match);
}

const carries = (text: string) => (item: OutboxItem) => JSON.stringify(item.body).includes(text);

/** Writes the customer's last message time directly: no other way to be 25 hours in the past in a test. */
async function lastWroteAgo(conversationId: string, ms: number): Promise<void> {
  const at = new Date(Date.now() - ms).toISOString();
  await updateConversation(conversationId, (c) => ({ ...c, lastInboundAt: at, windowFrom: undefined }));
}

function getConversation(id: string) {
  return http(stack.httpUrl, 'GET', `/v1/conversations/${id}`, { token: agentJwt });
}

describe.each(PROVIDER_CHANNELS.map((channel) => ({ channel })))('$channel replies', ({ channel }) => {
  it('sends the agent’s reply through the provider API with its request shape and stores the provider id', async () => {
    const { handle, conversationId } = await customer(channel);
    const text = `Your order ships today (${channel})`;
    const sent = await sentReply(conversationId, text);

    const [request, ...more] = await outbox(channel, carries(text));
    expect(more).toHaveLength(0);
    const expected = expectedSend(channel, handle, text);
    expect(request!.url).toBe(expected.url);
    if (expected.authorization) expect(request!.headers.authorization).toBe(expected.authorization);
    expect(request!.body).toMatchObject(expected.body);
    expect(sent.providerMessageId).toBeTruthy();

    const stored = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    expect(stored.body.items.find((m: { id: string }) => m.id === sent.id)).toMatchObject({
      status: 'sent',
      providerMessageId: sent.providerMessageId,
      direction: 'outbound',
      channel,
    });
  });

  it.skipIf(REPORTED_STATUSES[channel].length === 0)('applies the provider’s delivery statuses and tells agents with message.updated', async () => {
    const { handle, conversationId } = await customer(channel);
    const sent = await sentReply(conversationId, `status check ${channel}`);
    for (const status of REPORTED_STATUSES[channel].filter((s) => s !== 'failed')) {
      expect((await postWebhook(stack, channel, statusWebhook(channel, handle, status, sent.providerMessageId, undefined, sent.reference))).status).toBe(200);
      await agent.waitFor(updated(sent.id, status), 10_000, `${status} for ${channel}`);
    }
    if (REPORTED_STATUSES[channel].includes('failed')) {
      const doomed = await sentReply(conversationId, `this one will bounce ${channel}`);
      // WhatsApp echoes our reference on sent, delivered and read only: a failure names its wamid alone.
      const reference = channel === 'whatsapp' ? undefined : doomed.reference;
      expect((await postWebhook(stack, channel, statusWebhook(channel, handle, 'failed', doomed.providerMessageId, undefined, reference))).status).toBe(200);
      const failed = await agent.waitFor(updated(doomed.id, 'failed'), 10_000, 'failed');
      expect(failed.message.error).toMatch(channel === 'sms' ? /30007/ : /Re-engagement message/);
    }
    const final = REPORTED_STATUSES[channel].includes('read') ? 'read' : 'delivered';
    const stored = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    expect(stored.body.items.find((m: { id: string }) => m.id === sent.id).status).toBe(final);
  });

  it.skipIf(!(REPORTED_STATUSES[channel].includes('delivered') && REPORTED_STATUSES[channel].includes('read')))(
    'never moves a status back: a late delivered after read changes nothing',
    async () => {
      const { handle, conversationId } = await customer(channel);
      const sent = await sentReply(conversationId, `read before delivered ${channel}`);
      const status = (s: 'read' | 'delivered') => postWebhook(stack, channel, statusWebhook(channel, handle, s, sent.providerMessageId, undefined, sent.reference));
      expect((await status('read')).status).toBe(200);
      await agent.waitFor(updated(sent.id, 'read'), 10_000, `read for ${channel}`);
      const seenBefore = agent.frames.length;

      // Act: the delivery receipt comes in after the read receipt
      expect((await status('delivered')).status).toBe(200);
      // The customer's next message queues behind it (same FIFO group): once it is shown, the late
      // status has been processed.
      const marker = textWebhook(channel, handle, `after the late delivered ${channel}`);
      expect((await postWebhook(stack, channel, marker.body)).status).toBe(200);
      await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === marker.providerMessageId, 10_000, 'marker message');

      // Assess
      expect(agent.frames.slice(seenBefore).filter((f) => f.type === 'message.updated' && f.message.id === sent.id)).toEqual([]);
      const stored = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
      expect(stored.body.items.find((m: { id: string }) => m.id === sent.id).status).toBe('read');
    },
  );

  it('retries a provider that answers 429 or 5xx and finally marks the message sent', async () => {
    const { conversationId } = await customer(channel);
    const status = channel === 'whatsapp' || channel === 'sms' ? 503 : 429;
    const failures = channel === 'whatsapp' ? 2 : 1;
    // Sent as curl -d sends it (labelled form-urlencoded), as the README shows it.
    const control = { raw: JSON.stringify({ status, count: failures }), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    expect((await http(stack.httpUrl, 'POST', `/local/providers/${channel}/_fail`, control)).status).toBe(200);
    const text = `retry me ${channel}`;
    await sentReply(conversationId, text);
    const attempts = await outbox(channel, carries(text));
    expect(attempts.map((a) => a.status)).toEqual([...Array(failures).fill(status), channel === 'sms' ? 201 : 200]);
  });

  it('marks a reply failed, with the provider’s reason for the agent, on a permanent 4xx', async () => {
    const { conversationId } = await customer(channel);
    expect((await http(stack.httpUrl, 'POST', `/local/providers/${channel}/_fail`, { body: { status: 400, count: 1 } })).status).toBe(200);
    const response = await reply(conversationId, { text: `rejected ${channel}` });
    expect(response.status).toBe(202);
    const failed = await agent.waitFor(updated(response.body.message.id, 'failed'), 15_000, 'failed');
    expect(failed.message.error).toMatch(/^400: .*Simulated provider failure/);
    expect(await outbox(channel, carries(`rejected ${channel}`))).toHaveLength(1);
  });

  it('shows the service window on the conversation', async () => {
    const { conversationId } = await customer(channel);
    const conversation = await getConversation(conversationId);
    expect(conversation.body.window.state).toBe('open');
    const hasWindow = channel !== 'telegram' && channel !== 'sms';
    if (hasWindow) {
      expect(Date.parse(conversation.body.window.closesAt) - Date.parse(conversation.body.lastInboundAt)).toBe(24 * HOUR);
    } else {
      expect(conversation.body.window.closesAt).toBeUndefined();
    }
  });
});

describe.each((['sms', 'messenger', 'instagram'] as const).map((channel) => ({ channel })))('$channel long replies', ({ channel }) => {
  it('sends a reply in parts, and a retry after a failed part sends only the parts not yet accepted', async () => {
    const { conversationId } = await customer(channel);
    // Four paragraphs of 900 characters: the channel's limit (1600, 2000 or 1000) cuts between them.
    const tag = `${channel}${Date.now()}`;
    const paragraphs = ['p', 'q', 'r', 's'].map((letter) => `${tag}-${letter} ${letter.repeat(880)}`);
    expect((await http(stack.httpUrl, 'POST', `/local/providers/${channel}/_fail`, { body: { status: 503, count: 1, after: 1 } })).status).toBe(200);
    const response = await reply(conversationId, { text: paragraphs.join('\n\n') });
    expect(response.status).toBe(202);
    const frame = await agent.waitFor(updated(response.body.message.id, 'sent'), 15_000, `long reply on ${channel}`);

    const attempts = await outbox(channel, carries(tag));
    expect(attempts.filter((a) => a.status === 503)).toHaveLength(1);
    const accepted = attempts.filter((a) => a.status < 300).map((a) => JSON.stringify(a.body));
    expect(accepted.length).toBeGreaterThanOrEqual(2);
    // Each paragraph reached the customer in exactly one request, in order.
    const where = paragraphs.map((p) => accepted.flatMap((body, i) => (body.includes(p.slice(0, tag.length + 2)) ? [i] : [])));
    expect(where.every((found) => found.length === 1)).toBe(true);
    expect(where.flat()).toEqual([...where.flat()].sort((a, b) => a - b));

    const stored = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    const message = stored.body.items.find((m: { id: string }) => m.id === response.body.message.id);
    expect(message).toMatchObject({ status: 'sent', providerMessageId: frame.message.providerMessageId, text: paragraphs.join('\n\n') });
    expect(message).not.toHaveProperty('sendProgress');
  });
});

describe.each([
  { channel: 'sms' as const, status: 'failed' as const },
  { channel: 'messenger' as const, status: 'delivered' as const },
])('$channel statuses of a reply’s later parts', ({ channel, status }) => {
  it(`applies a ${status} receipt for the last part to the reply`, async () => {
    const { handle, conversationId } = await customer(channel);
    const tag = `${channel}parts${Date.now()}`;
    const text = ['p', 'q', 'r'].map((letter) => `${tag}-${letter} ${letter.repeat(880)}`).join('\n\n');
    const response = await reply(conversationId, { text });
    expect(response.status).toBe(202);
    const sent = await agent.waitFor(updated(response.body.message.id, 'sent'), 15_000, `long reply on ${channel}`);
    const parts = (await outbox(channel, carries(tag))).filter((a) => a.status < 300);
    expect(parts.length).toBeGreaterThanOrEqual(2);
    const answer = parts.at(-1)!.answer as { sid?: string; message_id?: string };
    const lastId = answer.sid ?? answer.message_id;
    expect(lastId).toBeTruthy();
    expect(lastId).not.toBe(sent.message.providerMessageId);

    // A watermark from before the reply: only the last part's id can apply the receipt.
    const before = Date.parse(response.body.message.createdAt as string) - 60_000;
    expect((await postWebhook(stack, channel, statusWebhook(channel, handle, status, lastId, before))).status).toBe(200);
    const frame = await agent.waitFor(updated(response.body.message.id, status), 10_000, `${status} of the last part`);
    expect(frame.message.providerMessageId).toBe(sent.message.providerMessageId);
  });
});

describe('a provider down while a conversation has several replies queued', () => {
  it('gives each reply its own five attempts, in order, the ones behind waiting out the backoff with it', async () => {
    const { conversationId } = await customer('whatsapp');
    // Six refusals: the first reply uses up its five attempts, the second is refused once, then sent.
    expect((await http(stack.httpUrl, 'POST', '/local/providers/whatsapp/_fail', { body: { status: 503, count: 6 } })).status).toBe(200);
    const first = await reply(conversationId, { text: 'first of two while down' });
    const second = await reply(conversationId, { text: 'second of two while down' });
    expect([first.status, second.status]).toEqual([202, 202]);

    const failed = await agent.waitFor(updated(first.body.message.id, 'failed'), 60_000, 'first failed');
    await agent.waitFor(updated(second.body.message.id, 'sent'), 60_000, 'second sent');
    const attempts = async (text: string) => (await outbox('whatsapp', carries(text))).map((a) => a.status);
    expect(await attempts('first of two while down')).toEqual([503, 503, 503, 503, 503]);
    expect(await attempts('second of two while down')).toEqual([503, 200]);
    expect(failed.message.error).toBeTruthy();
  }, 90_000);
});

describe('a receipt that overtakes the provider’s answer', () => {
  it('keeps the provider id on the reply and still arms its timers', async () => {
    const { handle, conversationId } = await customer('whatsapp');
    // The provider takes the send, and its "delivered" callback is applied before its answer reaches us.
    stack.providers.holdNext('whatsapp', async (body, answer) => {
      const reference = (body as { biz_opaque_callback_data?: string }).biz_opaque_callback_data;
      expect(reference).toBeTruthy();
      const callback = statusWebhook('whatsapp', handle, 'delivered', (answer as { messages: { id: string }[] }).messages[0]!.id, undefined, reference);
      expect((await postWebhook(stack, 'whatsapp', callback)).status).toBe(200);
      await agent.waitFor((f) => f.type === 'message.updated' && f.message.status === 'delivered' && `${conversationId}/${f.message.id}` === reference, 10_000, 'delivered first');
    });
    const response = await reply(conversationId, { text: 'overtaken by its own receipt' });
    expect(response.status).toBe(202);
    const messageId: string = response.body.message.id;

    const [accepted] = await eventually(async () => {
      const items = (await outbox('whatsapp', carries('overtaken by its own receipt'))).filter((a) => a.status === 200);
      return items.length > 0 ? items : undefined;
    });
    const providerMessageId = (accepted!.answer as { messages: { id: string }[] }).messages[0]!.id;
    const stored = await eventually(async () => {
      const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
      const message = page.body.items.find((m: { id: string }) => m.id === messageId);
      return message?.providerMessageId ? message : undefined;
    });
    // The receipt's status stands; the send adds only what it alone knows.
    expect(stored).toMatchObject({ status: 'delivered', providerMessageId });
    await eventually(() => stack.aws.scheduler.list().some((s) => s.name === `reengage-${conversationId}` && s.fireAt));
  });
});

describe('a WhatsApp reply in parts whose first part’s receipt comes before the rest is taken', () => {
  it('still sends the part the provider refused once: the receipt (our reference rides on each part) does not end the send', async () => {
    // Prepare: a text over a caption's 1024 characters goes as a part of its own, before the photo
    const { handle, conversationId } = await customer('whatsapp');
    const photo = await upload(png(4, 4), 'image/png');
    const tag = `parts${Date.now()}`;
    const text = `${tag} ${'x'.repeat(1100)}`;
    // The text part is taken and its receipt applied before the answer reaches us; the photo is refused once.
    stack.providers.holdNext('whatsapp', async (body, answer) => {
      const reference = (body as { biz_opaque_callback_data?: string }).biz_opaque_callback_data;
      const wamid = (answer as { messages: { id: string }[] }).messages[0]!.id;
      expect((await postWebhook(stack, 'whatsapp', statusWebhook('whatsapp', handle, 'delivered', wamid, undefined, reference))).status).toBe(200);
      await agent.waitFor((f) => f.type === 'message.updated' && f.message.status === 'delivered' && `${conversationId}/${f.message.id}` === reference, 10_000, 'first part delivered');
    });
    expect((await http(stack.httpUrl, 'POST', '/local/providers/whatsapp/_fail', { body: { status: 503, count: 1, after: 1 } })).status).toBe(200);

    // Act
    const response = await reply(conversationId, { text, attachments: [{ uploadId: photo }] });
    expect(response.status, response.text).toBe(202);

    // Assess: the photo reaches the customer on the retry, the text once; the receipt's status stands
    const photoTo = (item: OutboxItem) => (item.body as { type?: string; to?: string }).type === 'image' && (item.body as { to?: string }).to === handle;
    const photoAttempts = await eventually(async () => {
      const items = await outbox('whatsapp', photoTo);
      return items.some((a) => a.status === 200) ? items : undefined;
    }, 15_000);
    expect(photoAttempts.map((a) => a.status)).toEqual([503, 200]);
    const texts = (await outbox('whatsapp', carries(tag))).filter((a) => a.status === 200);
    expect(texts).toHaveLength(1);
    const textId = (texts[0]!.answer as { messages: { id: string }[] }).messages[0]!.id;
    const stored = await eventually(async () => {
      const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
      const message = page.body.items.find((m: { id: string }) => m.id === response.body.message.id);
      return message?.status === 'delivered' && message.providerMessageId === textId ? message : undefined;
    });
    expect(stored).not.toHaveProperty('error');
  });
});

describe('a status that comes before any send recorded its id', () => {
  const LAST_STATUS = { sms: 'failed', messenger: 'delivered', instagram: 'read' } as const;
  const answeredId = (channel: keyof typeof LAST_STATUS, answer: unknown): string =>
    channel === 'sms' ? (answer as { sid: string }).sid : (answer as { message_id: string }).message_id;

  it.each(Object.keys(LAST_STATUS) as (keyof typeof LAST_STATUS)[])('is held and applied by the send on %s', async (channel) => {
    const { handle, conversationId } = await customer(channel);
    const status = LAST_STATUS[channel];
    let providerMessageId = '';
    // The provider takes the send, and its callback reaches us before its answer does.
    stack.providers.holdNext(channel, async (_body, answer) => {
      providerMessageId = answeredId(channel, answer);
      expect((await postWebhook(stack, channel, statusWebhook(channel, handle, status, providerMessageId))).status).toBe(200);
      await eventually(async () => (await earlyStatuses(`${channel}#${providerMessageId}`)).some((s) => s.status === status));
    });

    const response = await reply(conversationId, { text: `overtaken on ${channel}` });

    expect(response.status).toBe(202);
    const frame = await agent.waitFor(updated(response.body.message.id, status), 15_000, `${status} after the answer`);
    expect(frame.message.providerMessageId).toBe(providerMessageId);
    const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    expect(page.body.items.find((m: { id: string }) => m.id === response.body.message.id)).toMatchObject({ status, providerMessageId });
  });
});

describe('a WhatsApp customer who keeps their number hidden behind a username', () => {
  it('is shown, answered at their business-scoped user id (as `recipient`) and gets the receipts that name it', async () => {
    // Prepare: their message names them by their BSUID alone (no `from`)
    const bsuid = `US.${Date.now()}${Math.floor(Math.random() * 1e6)}`;
    const body = JSON.parse(fixture('whatsapp', 'username'));
    const value = body.entry[0].changes[0].value;
    value.contacts[0].user_id = bsuid;
    Object.assign(value.messages[0], { from_user_id: bsuid, id: `wamid.USER${crypto.randomUUID()}`, timestamp: String(Math.floor(Date.now() / 1000)) });
    expect((await postWebhook(stack, 'whatsapp', JSON.stringify(body))).status).toBe(200);
    const inbound = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === value.messages[0].id, 10_000, 'their message');
    expect(inbound.message.text).toBe('Hi, I write under my username');

    // Act: an agent answers; the receipt names the BSUID (recipient_user_id), not a number
    const sent = await sentReply(inbound.conversationId, 'Happy to help, Kofi');
    const [request] = await outbox('whatsapp', carries('Happy to help, Kofi'));
    const receipt = JSON.parse(statusWebhook('whatsapp', bsuid, 'read', sent.providerMessageId, undefined, sent.reference));
    const status = receipt.entry[0].changes[0].value.statuses[0];
    delete status.recipient_id;
    status.recipient_user_id = bsuid;
    expect((await postWebhook(stack, 'whatsapp', JSON.stringify(receipt))).status).toBe(200);

    // Assess
    expect(request!.body).toMatchObject({ recipient: bsuid, text: { body: 'Happy to help, Kofi' } });
    expect(request!.body).not.toHaveProperty('to');
    await agent.waitFor(updated(sent.id, 'read'), 10_000, 'read by BSUID');
  });
});

/** A WhatsApp message naming the customer by their BSUID and, when given, their number beside it. */
function usernameWebhook(bsuid: string, text: string, number?: string): { body: string; providerMessageId: string } {
  const body = JSON.parse(fixture('whatsapp', 'username'));
  const value = body.entry[0].changes[0].value;
  const id = `wamid.USER${crypto.randomUUID()}`;
  Object.assign(value.contacts[0], { user_id: bsuid, ...(number ? { wa_id: number } : {}) });
  Object.assign(value.messages[0], { from_user_id: bsuid, ...(number ? { from: number } : {}), id, timestamp: String(Math.floor(Date.now() / 1000)), text: { body: text } });
  return { body: JSON.stringify(body), providerMessageId: id };
}

describe('a WhatsApp customer known by their number and by their business-scoped user id', () => {
  const newBsuid = () => `US.${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  /** Posts the message and answers the conversation the agent saw it in. */
  const writes = async (webhook: { body: string; providerMessageId: string }): Promise<string> => {
    expect((await postWebhook(stack, 'whatsapp', webhook.body)).status).toBe(200);
    const frame = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, 'their message');
    return frame.conversationId;
  };

  it('who wrote by number, then with both ids, then by BSUID alone stays in one conversation, answered at the number', async () => {
    // Prepare
    const { handle: number, conversationId } = await customer('whatsapp');
    const bsuid = newBsuid();

    // Act
    const linked = await writes(usernameWebhook(bsuid, 'Both ids this time', number));
    const hidden = await writes(usernameWebhook(bsuid, 'Now under my username alone'));
    const sent = await sentReply(conversationId, 'Still here for you');

    // Assess
    expect([linked, hidden]).toEqual([conversationId, conversationId]);
    const [request] = await outbox('whatsapp', carries('Still here for you'));
    expect(request!.body).toMatchObject({ to: number });
    expect(request!.body).not.toHaveProperty('recipient');
    const contact = await http(stack.httpUrl, 'GET', `/v1/contacts/${(await getConversation(conversationId)).body.contact.id}`, { token: agentJwt });
    expect(contact.body.handles).toEqual(expect.arrayContaining([{ channel: 'whatsapp', handle: number }, { channel: 'whatsapp', handle: bsuid }]));
    expect(contact.body.conversations.map((c: { id: string }) => c.id)).toEqual([conversationId]);
    // A receipt naming the BSUID alone reaches the reply too.
    const receipt = JSON.parse(statusWebhook('whatsapp', bsuid, 'read', sent.providerMessageId));
    const status = receipt.entry[0].changes[0].value.statuses[0];
    delete status.recipient_id;
    status.recipient_user_id = bsuid;
    expect((await postWebhook(stack, 'whatsapp', JSON.stringify(receipt))).status).toBe(200);
    await agent.waitFor(updated(sent.id, 'read'), 10_000, 'read by BSUID');
  });

  it('who wrote by BSUID alone, then with their number, keeps that conversation, answered at the number from then on', async () => {
    // Prepare
    const bsuid = newBsuid();
    const number = newHandle('whatsapp');
    const conversationId = await writes(usernameWebhook(bsuid, 'Hidden number first'));

    // Act
    const linked = await writes(usernameWebhook(bsuid, 'Here is my number too', number));
    const byNumber = await writes(textWebhook('whatsapp', number, 'By number alone'));
    await sentReply(conversationId, 'Got your number');

    // Assess
    expect([linked, byNumber]).toEqual([conversationId, conversationId]);
    const [request] = await outbox('whatsapp', carries('Got your number'));
    expect(request!.body).toMatchObject({ to: number });
    expect(request!.body).not.toHaveProperty('recipient');
    const conversation = (await getConversation(conversationId)).body;
    expect(conversation.contact.phone).toBe(`+${number}`);
    const contact = await http(stack.httpUrl, 'GET', `/v1/contacts/${conversation.contact.id}`, { token: agentJwt });
    expect(contact.body.handles).toEqual(expect.arrayContaining([{ channel: 'whatsapp', handle: number }, { channel: 'whatsapp', handle: bsuid }]));
    expect(contact.body.conversations.map((c: { id: string }) => c.id)).toEqual([conversationId]);
  });

  it('costs no capacity unit more per message naming both ids, once linked, than one naming the number alone', async () => {
    // Prepare: linked by a first message naming both (a customer whose number is shared names both every time)
    const bsuid = newBsuid();
    const { handle: number } = await customer('whatsapp');
    await writes(usernameWebhook(bsuid, 'Linking both ids', number));
    const idle = () =>
      ['conversa-inbound.fifo', 'conversa-outbound.fifo'].every((name) => {
        const counts = stack.aws.sqs.getQueue(name).counts();
        return counts.visible + counts.inFlight + counts.delayed === 0;
      });
    const unitsOf = async (webhook: { body: string; providerMessageId: string }) => {
      await eventually(idle);
      resetCapacityTotals();
      await writes(webhook);
      await eventually(idle);
      return { read: capacityTotals.read, write: capacityTotals.write };
    };

    // Act
    const alone = await unitsOf(textWebhook('whatsapp', number, 'By number alone'));
    const both = await unitsOf(usernameWebhook(bsuid, 'Both ids again', number));

    // Assess
    expect(both).toEqual(alone);
  });

  it('whose first two messages, one with both ids and one by BSUID alone, arrive at once gets one conversation with both', async () => {
    // Prepare
    const bsuid = newBsuid();
    const number = newHandle('whatsapp');
    const withBoth = usernameWebhook(bsuid, 'First, with my number', number);
    const alone = usernameWebhook(bsuid, 'Second, username alone');

    // Act
    const [a, b] = await Promise.all([writes(withBoth), writes(alone)]);

    // Assess
    expect(a).toBe(b);
    const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${a}/messages`, { token: agentJwt });
    expect(page.body.items.map((m: { providerMessageId: string }) => m.providerMessageId).sort()).toEqual([withBoth.providerMessageId, alone.providerMessageId].sort());
    const contact = await http(stack.httpUrl, 'GET', `/v1/contacts/${(await getConversation(a)).body.contact.id}`, { token: agentJwt });
    expect(contact.body.conversations.map((c: { id: string }) => c.id)).toEqual([a]);
  });
});

describe('a WhatsApp send whose answer was lost', () => {
  it('takes its provider id from the sent receipt, so a later failed status without our reference finds it', async () => {
    const { handle, conversationId } = await customer('whatsapp');
    const wamid = `wamid.receipt${Date.now()}`;
    // The answer never comes (the connection drops); the receipt with our reference does.
    stack.providers.holdNext('whatsapp', async (body) => {
      const reference = (body as { biz_opaque_callback_data: string }).biz_opaque_callback_data;
      const receipt = JSON.parse(statusWebhook('whatsapp', handle, 'delivered', wamid, undefined, reference));
      receipt.entry[0].changes[0].value.statuses[0].status = 'sent';
      expect((await postWebhook(stack, 'whatsapp', JSON.stringify(receipt))).status).toBe(200);
      await agent.waitFor((f) => f.type === 'message.updated' && f.message.status === 'sent' && `${conversationId}/${f.message.id}` === reference, 10_000, 'sent receipt');
      throw new Error('connection lost');
    });
    const response = await reply(conversationId, { text: 'answer lost' });
    expect(response.status).toBe(202);
    const messageId: string = response.body.message.id;
    await eventually(async () => {
      const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
      return page.body.items.find((m: { id: string }) => m.id === messageId)?.providerMessageId === wamid;
    });

    expect((await postWebhook(stack, 'whatsapp', statusWebhook('whatsapp', handle, 'failed', wamid))).status).toBe(200);

    const failed = await agent.waitFor(updated(messageId, 'failed'), 15_000, 'failed without our reference');
    expect(failed.message.providerMessageId).toBe(wamid);
  });

  it('never applies a status without our reference to the customer’s own message of that id', async () => {
    // Prepare: the customer's message, stored under its wamid
    const handle = newHandle('whatsapp');
    const theirs = textWebhook('whatsapp', handle, 'Did it fail?');
    expect((await postWebhook(stack, 'whatsapp', theirs.body)).status).toBe(200);
    const stored = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === theirs.providerMessageId, 10_000, 'the customer’s message');

    // Act: a failed status naming that wamid, then a marker in the same FIFO group
    expect((await postWebhook(stack, 'whatsapp', statusWebhook('whatsapp', handle, 'failed', theirs.providerMessageId))).status).toBe(200);
    const marker = textWebhook('whatsapp', handle, 'marker');
    expect((await postWebhook(stack, 'whatsapp', marker.body)).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === marker.providerMessageId, 10_000, 'marker');

    // Assess: statuses are our sends' only
    const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${stored.conversationId}/messages`, { token: agentJwt });
    expect(page.body.items.find((m: { id: string }) => m.id === stored.message.id)).toMatchObject({ direction: 'inbound', status: 'received' });
    expect(agent.frames.some((f) => f.type === 'message.updated' && f.message.id === stored.message.id)).toBe(false);
  });
});

describe('templates', () => {
  it.each(['telegram', 'sms'] as const)('refuses a template on %s with 400 and stores nothing', async (channel) => {
    const { conversationId } = await customer(channel);
    const before = (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt })).body.items.length;
    const refused = await reply(conversationId, { template: { name: 'order_update', language: 'en_US' } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('template_not_supported');
    const after = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    expect(after.body.items).toHaveLength(before);
    expect((await getConversation(conversationId)).body.firstReplyAt ?? null).toBeNull();
  });
});

describe('WhatsApp 24-hour window', () => {
  it('refuses a free-form reply outside the window with template_required, and sends an approved template', async () => {
    const { handle, conversationId } = await customer('whatsapp');
    await lastWroteAgo(conversationId, 25 * HOUR);
    expect((await getConversation(conversationId)).body.window).toEqual({ state: 'template_required' });

    const clientMessageId = crypto.randomUUID();
    const refused = await reply(conversationId, { text: 'Are you still there?', clientMessageId });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('template_required');
    expect(refused.body.error.message).toMatch(/24-hour window.*template/);
    expect(await outbox('whatsapp', carries('Are you still there?'))).toHaveLength(0);
    // The refusal leaves nothing behind, not even the claim of its clientMessageId.
    expect(await getDedup(agentMessageScope('agent-ana', conversationId, { text: 'Are you still there?', clientMessageId })!)).toBeUndefined();

    const template = { name: 'order_update', language: 'en_US', params: ['A-1042'] };
    const accepted = await reply(conversationId, { template });
    expect(accepted.status).toBe(202);
    await agent.waitFor(updated(accepted.body.message.id, 'sent'), 15_000, 'template sent');
    const [request] = await outbox('whatsapp', carries('A-1042'));
    expect(request!.body).toMatchObject({
      messaging_product: 'whatsapp',
      to: handle,
      type: 'template',
      template: { name: 'order_update', language: { code: 'en_US' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'A-1042' }] }] },
    });
  });
});

describe('SMS opt-out (Twilio Advanced Opt-Out)', () => {
  /** The customer texts a keyword Twilio's opt-out handling names (OptOutType); waits until it is shown. */
  async function texts(handle: string, words: string, optOutType?: 'STOP' | 'START'): Promise<string> {
    const webhook = textWebhook('sms', handle, words);
    const form = new URLSearchParams(webhook.body);
    if (optOutType) form.set('OptOutType', optOutType);
    expect((await postWebhook(stack, 'sms', form.toString())).status).toBe(200);
    const frame = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, words);
    return frame.conversationId;
  }
  const messagesOf = async (conversationId: string) => (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt })).body.items as { text: string }[];

  it('refuses replies with 422 opted_out after STOP, storing and sending nothing, keeps refusing through other texts, and sends again after START', async () => {
    const { handle, conversationId } = await customer('sms');

    await texts(handle, 'STOP', 'STOP');
    // Agents are told with the conversation itself.
    const told = await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.optedOut, 10_000, 'opted out');
    expect(told.conversation.optedOut).toEqual({ at: expect.any(String) });
    expect((await getConversation(conversationId)).body.optedOut).toEqual(told.conversation.optedOut);

    const text = `Your order shipped ${crypto.randomUUID()}`;
    const clientMessageId = crypto.randomUUID();
    const before = (await messagesOf(conversationId)).length;
    const refused = await reply(conversationId, { text, clientMessageId });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('opted_out');
    expect(refused.body.error.message).toMatch(/START/);
    expect(await messagesOf(conversationId)).toHaveLength(before);
    expect(await getDedup(agentMessageScope('agent-ana', conversationId, { text, clientMessageId })!)).toBeUndefined();
    // A note stays within the team: still written.
    expect((await reply(conversationId, { text: 'They opted out, call them instead', private: true })).status).toBe(202);

    // Any other text leaves them opted out (Twilio still refuses); the time is the first STOP's.
    await texts(handle, 'why do you keep texting');
    expect((await getConversation(conversationId)).body.optedOut).toEqual(told.conversation.optedOut);
    expect((await reply(conversationId, { text })).status).toBe(422);

    await texts(handle, 'UNSTOP', 'START');
    expect((await getConversation(conversationId)).body.optedOut).toBeUndefined();
    await sentReply(conversationId, text);
    // Only the reply after START reached Twilio.
    expect(await outbox('sms', carries(text))).toHaveLength(1);
  });

  it('records STOP as a customer’s first text and on a resolved conversation it reopens; a proactive message to them fails with the reason', async () => {
    const handle = newHandle('sms');
    const conversationId = await texts(handle, 'STOP', 'STOP');
    expect((await getConversation(conversationId)).body.optedOut).toEqual({ at: expect.any(String) });
    expect((await reply(conversationId, { text: 'Hello?' })).body.error?.code).toBe('opted_out');

    const adminJwt = await agentToken(stack.httpUrl, 'admin-ada', 'admin');
    const campaign = `Our sale starts today ${crypto.randomUUID()}`;
    const contactId = (await getConversation(conversationId)).body.contact.id as string;
    const sent = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body: { contactIds: [contactId], text: campaign, channel: 'sms' } });
    expect(sent.status, sent.text).toBe(202);
    const failed = await agent.waitFor((f) => f.type === 'message.updated' && f.message.text === campaign && f.message.status === 'failed', 15_000, 'campaign failed');
    expect(failed.message.error).toMatch(/opted out/);
    expect(await outbox('sms', carries(campaign))).toHaveLength(0);

    await texts(handle, 'START', 'START');
    expect((await getConversation(conversationId)).body.optedOut).toBeUndefined();
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt })).status).toBe(200);
    // Reopened by the STOP (the read-modify-write, not the open conversation's update).
    await texts(handle, 'stopall', 'STOP');
    const reopened = (await getConversation(conversationId)).body;
    expect(reopened).toMatchObject({ status: 'open', optedOut: { at: expect.any(String) } });
    expect((await reply(conversationId, { text: 'Hello?' })).body.error?.code).toBe('opted_out');
  });
});

describe('Instagram seen', () => {
  it('marks the named reply read and every earlier one too: it names the last message read', async () => {
    const { handle, conversationId } = await customer('instagram');
    const first = await sentReply(conversationId, 'first of two');
    const second = await sentReply(conversationId, 'second of two');
    expect((await postWebhook(stack, 'instagram', statusWebhook('instagram', handle, 'read', second.providerMessageId))).status).toBe(200);
    await agent.waitFor(updated(second.id, 'read'), 10_000, 'second read');
    await agent.waitFor(updated(first.id, 'read'), 10_000, 'first read');
  });

  it('held before the send recorded the id it names: the send marks that reply and every earlier one read', async () => {
    // Prepare: a first reply sent; the seen naming the second reaches us before Instagram's answer to its send
    const { handle, conversationId } = await customer('instagram');
    const first = await sentReply(conversationId, 'first of two, before a held seen');
    stack.providers.holdNext('instagram', async (_body, answer) => {
      const mid = (answer as { message_id: string }).message_id;
      expect((await postWebhook(stack, 'instagram', statusWebhook('instagram', handle, 'read', mid))).status).toBe(200);
      await eventually(async () => (await earlyStatuses(`instagram#${mid}`)).some((s) => s.status === 'read'));
    });

    // Act
    const response = await reply(conversationId, { text: 'second of two, seen before its answer' });

    // Assess: both read, and the consoles told so for each
    expect(response.status).toBe(202);
    await agent.waitFor(updated(response.body.message.id, 'read'), 15_000, 'second read');
    await agent.waitFor(updated(first.id, 'read'), 10_000, 'first read');
    const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    const statuses = Object.fromEntries(page.body.items.map((m: { id: string; status: string }) => [m.id, m.status]));
    expect([statuses[first.id], statuses[response.body.message.id]]).toEqual(['read', 'read']);
  });
});

describe('WhatsApp window after a late webhook', () => {
  /** A WhatsApp message the customer wrote `agoMs` ago, its webhook arriving only now (retried by Meta). */
  async function writtenAgo(handle: string, text: string, agoMs: number): Promise<string> {
    const webhook = textWebhook('whatsapp', handle, text);
    const body = JSON.parse(webhook.body);
    body.entry[0].changes[0].value.messages[0].timestamp = String(Math.floor((Date.now() - agoMs) / 1000));
    expect((await postWebhook(stack, 'whatsapp', JSON.stringify(body))).status).toBe(200);
    const frame = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, text);
    return frame.conversationId as string;
  }

  it('counts the window from when the customer wrote, not from when the webhook arrived', async () => {
    // A first message written 30 h ago: the window it opened has closed.
    const handle = newHandle('whatsapp');
    const conversationId = await writtenAgo(handle, 'Written yesterday morning', 30 * HOUR);
    expect((await getConversation(conversationId)).body.window).toEqual({ state: 'template_required' });
    const refused = await reply(conversationId, { text: 'free-form, too late' });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('template_required');

    // A message on time opens it again.
    await writtenAgo(handle, 'Hello again, now', 0);
    expect((await getConversation(conversationId)).body.window.state).toBe('open');

    // A late one never takes it back, and one later than the window's start moves it on.
    await writtenAgo(handle, 'An old one, delivered late', 26 * HOUR);
    expect((await getConversation(conversationId)).body.window.state).toBe('open');
    await lastWroteAgo(conversationId, 25 * HOUR);
    await writtenAgo(handle, 'Written 23 h ago', 23 * HOUR);
    const window = (await getConversation(conversationId)).body.window;
    expect(window.state).toBe('open');
    expect(Math.abs(Date.parse(window.closesAt) - (Date.now() + HOUR))).toBeLessThan(5 * 60_000);
  });
});

describe('a reply sent again once the window has closed', () => {
  it('answers the retry with the reply stored by the first attempt, not 422, and stores and sends it once', async () => {
    // Prepare: a WhatsApp reply taken (its answer lost to the agent's network), then the window closes
    const { conversationId } = await customer('whatsapp');
    const body = { text: `Your refund is on its way (${conversationId})`, clientMessageId: 'refund-1' };
    const first = await reply(conversationId, body);
    expect(first.status).toBe(202);
    await agent.waitFor(updated(first.body.message.id, 'sent'), 15_000, 'the first attempt sent');
    await lastWroteAgo(conversationId, 25 * HOUR);

    // Act: the console sends the same reply again
    const again = await reply(conversationId, body);

    // Assess: the same message, once in the history and once at WhatsApp
    expect(again.status, again.text).toBe(202);
    expect(again.body.message.id).toBe(first.body.message.id);
    const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt });
    expect(page.body.items.filter((m: { text: string }) => m.text === body.text)).toHaveLength(1);
    expect(await outbox('whatsapp', carries(body.text))).toHaveLength(1);
  });
});

describe.each([{ channel: 'messenger' as const }, { channel: 'instagram' as const }])('$channel window', ({ channel }) => {
  it('sends with the HUMAN_AGENT tag between 24 h and 7 days, and refuses after 7 days', async () => {
    const { conversationId } = await customer(channel);
    await lastWroteAgo(conversationId, 2 * 24 * HOUR);
    const window = (await getConversation(conversationId)).body.window;
    expect(window.state).toBe('tag_required');
    expect(Date.parse(window.closesAt)).toBeGreaterThan(Date.now() + 4 * 24 * HOUR);

    await sentReply(conversationId, `tagged follow-up ${channel}`);
    const [request] = await outbox(channel, carries(`tagged follow-up ${channel}`));
    expect(request!.body).toMatchObject({ messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT' });

    await lastWroteAgo(conversationId, 8 * 24 * HOUR);
    expect((await getConversation(conversationId)).body.window).toEqual({ state: 'closed' });
    const refused = await reply(conversationId, { text: 'too late' });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('outside_window');
    expect(refused.body.error.message).toMatch(/7 days/);
  });
});

describe('Messenger watermark receipts', () => {
  it('applies delivery and read watermarks to every reply sent before them', async () => {
    const { handle, conversationId } = await customer('messenger');
    const first = await sentReply(conversationId, 'watermark one');
    expect((await postWebhook(stack, 'messenger', statusWebhook('messenger', handle, 'delivered', first.providerMessageId))).status).toBe(200);
    await agent.waitFor(updated(first.id, 'delivered'), 10_000, 'first delivered by mid');
    const second = await sentReply(conversationId, 'watermark two');

    expect((await postWebhook(stack, 'messenger', statusWebhook('messenger', handle, 'delivered', undefined))).status).toBe(200);
    await agent.waitFor(updated(second.id, 'delivered'), 10_000, 'second delivered by watermark');
    const readAt = Date.now();
    expect((await postWebhook(stack, 'messenger', statusWebhook('messenger', handle, 'read', undefined, readAt))).status).toBe(200);
    await agent.waitFor(updated(first.id, 'read'), 10_000, 'first read');
    await agent.waitFor(updated(second.id, 'read'), 10_000, 'second read');

    // The same watermark again (Meta repeats it with every later receipt), or an older one, writes
    // nothing: a write its condition refuses is billed all the same. A newer one with no reply left
    // to mark moves the customer's watermark (kept for an echo that comes after it) alone: one unit.
    const watermark = (at: number) => ingestStatus({ kind: 'status', channel: 'messenger', handle, providerMessageId: ALL_BEFORE_WATERMARK, status: 'read', at: new Date(at).toISOString() });
    for (const at of [readAt, readAt - 1000]) {
      resetCapacityTotals();
      await watermark(at);
      expect(capacityTotals.write).toBe(0);
    }
    resetCapacityTotals();
    await watermark(readAt + 1000);
    expect(capacityTotals.write).toBe(1);

    // A watermark from before a reply leaves that reply alone.
    const third = await sentReply(conversationId, 'watermark three');
    const before = Date.now() - HOUR;
    expect((await postWebhook(stack, 'messenger', statusWebhook('messenger', handle, 'read', undefined, before))).status).toBe(200);
    const marker = await sentReply(conversationId, 'after the old watermark');
    expect(marker.id).toBeTruthy();
    const stored = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
    expect(stored.body.items.find((m: { id: string }) => m.id === third.id).status).toBe('sent');
  });
});

describe.each([{ channel: 'messenger' as const }, { channel: 'instagram' as const }])('$channel edits', ({ channel }) => {
  /** A message_edit webhook as Meta sends it, from `sender` (the customer, or the business's own account). */
  function editWebhook(sender: string, recipient: string, mid: string, text: string): string {
    const body = JSON.parse(textWebhook(channel, sender, 'unused').body);
    // The entry stays our Page's (or account's), as in the documented payload: another's is ignored.
    const entry = body.entry[0];
    entry.messaging = [{ sender: { id: sender }, recipient: { id: recipient }, timestamp: Date.now(), message_edit: { mid, text, num_edit: 1 } }];
    return JSON.stringify(body);
  }

  it('stores an edit of the customer’s own message, and never an edit naming one of our replies as the customer’s', async () => {
    // Prepare: the customer wrote, an agent answered (the provider gave the reply its mid)
    const { handle, conversationId } = await customer(channel);
    const ours = await sentReply(conversationId, 'Your parcel left yesterday.');
    const theirs = textWebhook(channel, handle, 'Is it insured?');
    expect((await postWebhook(stack, channel, theirs.body)).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === theirs.providerMessageId, 10_000, 'the customer’s message');

    // Act: an edit naming our reply's mid, then one of the customer's message, then a marker (same FIFO group)
    expect((await postWebhook(stack, channel, editWebhook(handle, 'PAGE-1', ours.providerMessageId, 'They are coming today.'))).status).toBe(200);
    expect((await postWebhook(stack, channel, editWebhook(handle, 'PAGE-1', theirs.providerMessageId, 'Is it insured, and by whom?'))).status).toBe(200);
    const marker = textWebhook(channel, handle, 'marker');
    expect((await postWebhook(stack, channel, marker.body)).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === marker.providerMessageId, 10_000, 'marker');

    // Assess: the customer's edit only; our reply is as it was sent
    const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt });
    const texts = (page.body.items as { direction: string; text: string }[]).map((m) => `${m.direction} ${m.text}`);
    expect(texts).toEqual([
      'inbound Hello, anyone there?',
      'outbound Your parcel left yesterday.',
      'inbound Is it insured?',
      'inbound (edited) Is it insured, and by whom?',
      'inbound marker',
    ]);
  });
});

/** An agent's upload of `bytes`, ready to attach to a reply: its uploadId. */
async function upload(bytes: Buffer, contentType: string): Promise<string> {
  const ticket = await http(stack.httpUrl, 'POST', '/v1/uploads', { token: agentJwt, body: { contentType, size: bytes.length } });
  expect(ticket.status, ticket.text).toBe(201);
  const put = await fetch(ticket.body.url, { method: 'PUT', headers: ticket.body.headers, body: bytes });
  expect(put.status).toBe(200);
  return ticket.body.uploadId;
}

describe('Instagram file types', () => {
  it('refuses a reply with a file Instagram does not take (a .docx) with 415 and nothing stored or sent; a PDF goes as a file', async () => {
    // Prepare: an Instagram customer; a Word document and a PDF
    const { conversationId } = await customer('instagram');
    const docx = await upload(Buffer.from('PK\x03\x04 not really a docx'), 'application/vnd.openxmlformats-officedocument.wordprocessingml.document');
    const pdf = await upload(Buffer.from('%PDF-1.4 tiny'), 'application/pdf');
    const sentBefore = stack.providers.outbox('instagram').length;

    // Act
    const refused = await reply(conversationId, { text: 'the contract', attachments: [{ uploadId: docx, name: 'contract.docx' }] });
    const accepted = await reply(conversationId, { text: 'the invoice', attachments: [{ uploadId: pdf, name: 'invoice.pdf' }] });

    // Assess: a clear 4xx naming the file and what the channel takes; the PDF is sent as a file
    expect(refused.status, refused.text).toBe(415);
    expect(refused.body.error).toMatchObject({ code: 'attachment_type_not_supported' });
    expect(refused.body.error.message).toContain('"contract.docx"');
    expect(refused.body.error.message).toContain('PDF');
    expect(accepted.status, accepted.text).toBe(202);
    await agent.waitFor(updated(accepted.body.message.id, 'sent'), 15_000, 'the PDF reply');
    const sent = stack.providers.outbox('instagram').slice(sentBefore).map((item) => JSON.stringify(item.body));
    expect(sent.some((body) => body.includes('"type":"file"'))).toBe(true);
    expect(sent.some((body) => body.includes('the contract'))).toBe(false);
    const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt });
    expect(page.body.items.map((m: { text: string }) => m.text)).not.toContain('the contract');
  });
});

describe('WhatsApp document types', () => {
  it('refuses a reply with a document type WhatsApp does not take (a .zip, an .odt) with 415 and nothing stored or sent; a .docx goes as a document', async () => {
    // Prepare: a WhatsApp customer; an archive, an OpenDocument text and a Word document
    const { handle, conversationId } = await customer('whatsapp');
    const zip = await upload(Buffer.from('PK\x03\x04 photos'), 'application/zip');
    const odt = await upload(Buffer.from('PK\x03\x04 letter'), 'application/vnd.oasis.opendocument.text');
    const docx = await upload(Buffer.from('PK\x03\x04 contract'), 'application/vnd.openxmlformats-officedocument.wordprocessingml.document');
    const sentBefore = stack.providers.outbox('whatsapp').length;

    // Act
    const zipped = await reply(conversationId, { text: 'the photos', attachments: [{ uploadId: zip, name: 'photos.zip' }] });
    const letter = await reply(conversationId, { text: 'the letter', attachments: [{ uploadId: odt, name: 'letter.odt' }] });
    const accepted = await reply(conversationId, { text: 'the contract', attachments: [{ uploadId: docx, name: 'contract.docx' }] });

    // Assess: a clear 4xx naming the file and what WhatsApp takes; the .docx is sent as a document
    for (const [refused, name] of [[zipped, 'photos.zip'], [letter, 'letter.odt']] as const) {
      expect(refused.status, refused.text).toBe(415);
      expect(refused.body.error).toMatchObject({ code: 'attachment_type_not_supported' });
      expect(refused.body.error.message).toContain(`"${name}"`);
      expect(refused.body.error.message).toContain('Word');
    }
    expect(accepted.status, accepted.text).toBe(202);
    await agent.waitFor(updated(accepted.body.message.id, 'sent'), 15_000, 'the .docx reply');
    const sent = stack.providers.outbox('whatsapp').slice(sentBefore).map((item) => (typeof item.body === 'string' ? JSON.parse(item.body) : item.body) as Record<string, unknown>);
    expect(sent.filter((body) => body.to === handle)).toMatchObject([{ type: 'document', document: { filename: 'contract.docx', caption: 'the contract' } }]);
    const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt });
    expect(page.body.items.map((m: { text: string }) => m.text)).toEqual(['Hello, anyone there?', 'the contract']);
  });
});

describe('File types named otherwise than registered', () => {
  it("sends a browser's audio/x-m4a and an app's image/jpg to WhatsApp as the audio and image they are", async () => {
    // Prepare: a WhatsApp customer; files typed as Chrome names an .m4a and some Android apps a .jpg
    const { handle, conversationId } = await customer('whatsapp');
    const ticket = await http(stack.httpUrl, 'POST', '/v1/uploads', { token: agentJwt, body: { contentType: 'audio/x-m4a', size: 4 } });
    expect(ticket.body.headers).toEqual({ 'content-type': 'audio/mp4' });
    const voice = await upload(Buffer.from('m4a!'), 'audio/x-m4a');
    const photo = await upload(Buffer.from('\xff\xd8\xff jpeg'), 'image/jpg');
    const sentBefore = stack.providers.outbox('whatsapp').length;

    // Act
    const sent = await reply(conversationId, { text: '', attachments: [{ uploadId: voice, name: 'note.m4a' }, { uploadId: photo, name: 'shelf.jpg' }] });

    // Assess: taken (not 415), and sent as audio and image
    expect(sent.status, sent.text).toBe(202);
    expect(sent.body.message.attachments.map((a: { mimeType: string }) => a.mimeType)).toEqual(['audio/mp4', 'image/jpeg']);
    await agent.waitFor(updated(sent.body.message.id, 'sent'), 15_000, 'the files reply');
    const bodies = stack.providers.outbox('whatsapp').slice(sentBefore).map((item) => (typeof item.body === 'string' ? JSON.parse(item.body) : item.body) as Record<string, unknown>);
    expect(bodies.filter((body) => body.to === handle).map((body) => body.type)).toEqual(['audio', 'image']);
  });
});

describe('Messenger echoes of what the team sent from the Page inbox', () => {
  /** An echo as Meta sends it: from the Page to the customer, naming the app that sent it. */
  function echoWebhook(handle: string, mid: string, text: string, appId: number, timestamp = Date.now()): string {
    const body = JSON.parse(textWebhook('messenger', handle, 'unused').body);
    body.entry[0].messaging = [{ sender: { id: 'PAGE-1' }, recipient: { id: handle }, timestamp, message: { mid, text, is_echo: true, app_id: appId } }];
    return JSON.stringify(body);
  }
  const PAGE_INBOX_APP = 263902037430900;

  async function conversationOf(id: string) {
    const response = await http(stack.httpUrl, 'GET', `/v1/conversations/${id}`, { token: agentJwt });
    expect(response.status).toBe(200);
    return response.body;
  }

  async function messagesOf(id: string): Promise<{ id: string; direction: string; text: string; status: string; sender: Record<string, unknown>; providerMessageId?: string }[]> {
    return (await http(stack.httpUrl, 'GET', `/v1/conversations/${id}/messages?limit=100`, { token: agentJwt })).body.items;
  }

  async function marker(handle: string): Promise<void> {
    const webhook = textWebhook('messenger', handle, 'marker');
    expect((await postWebhook(stack, 'messenger', webhook.body)).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, 'marker');
  }

  it('stores a colleague’s Page-inbox reply once as the team’s sent message, its first reply, never the customer’s; echoes of our own sends add nothing', async () => {
    // Prepare: the customer wrote; an agent here replied too (its mid is recorded)
    const { handle, conversationId } = await customer('messenger');
    const before = await conversationOf(conversationId);
    const mid = `m_ECHO-${crypto.randomUUID()}`;

    // Act: the Page-inbox reply, delivered twice; an echo of our own app's send; an echo naming our reply's mid
    const echo = echoWebhook(handle, mid, 'I am on it, from the Page inbox', PAGE_INBOX_APP);
    for (let i = 0; i < 2; i++) expect((await postWebhook(stack, 'messenger', echo)).status).toBe(200);
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === mid, 10_000, 'the Page-inbox reply');
    // Meta's copy hours later, once SQS no longer remembers its deduplication id.
    const [event] = messengerAdapter.normalize(signedRequest('messenger', echo), { ...DEV_CREDENTIALS.messenger, appId: OUR_APP_ID });
    expect(event).toMatchObject({ echo: { name: 'Page inbox' } });
    await redeliverHoursLater(event!);
    const ours = await sentReply(conversationId, 'And from Conversa');
    expect((await postWebhook(stack, 'messenger', echoWebhook(handle, `m_OWN-${crypto.randomUUID()}`, 'ours, echoed', Number(OUR_APP_ID)))).status).toBe(200);
    expect((await postWebhook(stack, 'messenger', echoWebhook(handle, ours.providerMessageId, 'And from Conversa', PAGE_INBOX_APP))).status).toBe(200);
    await marker(handle);

    // Assess
    expect(shown.message).toMatchObject({ direction: 'outbound', status: 'sent', sender: { type: 'agent', id: 'external', name: 'Page inbox' }, text: 'I am on it, from the Page inbox' });
    expect(agent.frames.filter((f) => f.type === 'message.created' && f.message.providerMessageId === mid)).toHaveLength(1);
    const texts = (await messagesOf(conversationId)).map((m) => `${m.direction} ${m.text}`);
    expect(texts).toEqual(['inbound Hello, anyone there?', 'outbound I am on it, from the Page inbox', 'outbound And from Conversa', 'inbound marker']);
    const after = await conversationOf(conversationId);
    expect(after).toMatchObject({ status: 'open', unreadCount: before.unreadCount + 1, firstReplyAt: shown.message.createdAt });
  });

  it('copies the files of a Page-inbox reply into our bucket, as a customer’s: Meta’s CDN links expire within days', async () => {
    // Prepare: a customer; Meta's CDN serves the photo a colleague sent from the Page inbox
    const { handle, conversationId } = await customer('messenger');
    const bytes = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(20_000, 3)]);
    const link = `${stack.httpUrl}/local/providers/messenger/_cdn/${stack.providers.addMedia('messenger', { contentType: 'image/jpeg', bytes })}`;
    const mid = `m_ECHO-${crypto.randomUUID()}`;
    const echo = JSON.parse(echoWebhook(handle, mid, '', PAGE_INBOX_APP));
    echo.entry[0].messaging[0].message = { mid, is_echo: true, app_id: PAGE_INBOX_APP, attachments: [{ type: 'image', payload: { url: link } }] };

    // Act
    expect((await postWebhook(stack, 'messenger', JSON.stringify(echo))).status).toBe(200);
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === mid, 10_000, 'the Page-inbox photo');
    const copy = await agent.waitFor(
      (f) => f.type === 'message.updated' && f.message.id === shown.message.id && String(f.message.attachments[0]?.url).startsWith('conversa-media://'),
      15_000,
      'the kept copy',
    );
    const opened = await fetch(`${stack.httpUrl}/v1/conversations/${conversationId}/messages/${shown.message.id}/attachments/0`, { headers: { authorization: `Bearer ${agentJwt}` }, redirect: 'manual' });

    // Assess: still the team's sent message, now pointing at our copy, which the console is sent to
    expect(shown.message.attachments[0]).toMatchObject({ type: 'image', url: link });
    expect(copy.message).toMatchObject({ direction: 'outbound', status: 'sent', sender: { id: 'external' } });
    expect(copy.message.attachments[0]).toMatchObject({ type: 'image', mimeType: 'image/jpeg', size: bytes.length });
    expect(opened.status).toBe(302);
    expect(opened.headers.get('location')).not.toContain('/_cdn/');
    expect(Buffer.from(await (await fetch(opened.headers.get('location')!)).arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('applies a delivery receipt that came before the echo it names (Meta sends each webhook on its own)', async () => {
    // Prepare: a customer; the receipt for a Page-inbox message reaches us first, and is held
    const { handle, conversationId } = await customer('messenger');
    const mid = `m_ECHO-${crypto.randomUUID()}`;
    expect((await postWebhook(stack, 'messenger', statusWebhook('messenger', handle, 'delivered', mid))).status).toBe(200);
    await eventually(async () => (await earlyStatuses(`messenger#${mid}`)).some((s) => s.status === 'delivered'));

    // Act: the echo comes
    expect((await postWebhook(stack, 'messenger', echoWebhook(handle, mid, 'Delivered before we knew it', PAGE_INBOX_APP))).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === mid, 10_000, 'the Page-inbox message');
    await marker(handle);

    // Assess: the team's message shows as delivered, not sent
    expect((await messagesOf(conversationId)).find((m) => m.providerMessageId === mid)).toMatchObject({ status: 'delivered', sender: { id: 'external' } });
  });

  it('ignores a receipt held past its day (TTL deletes it late): the echo naming its mid stays sent', async () => {
    // Prepare: a delivery held for this mid two days ago, which DynamoDB's TTL has not deleted yet
    const { handle, conversationId } = await customer('messenger');
    const mid = `m_ECHO-${crypto.randomUUID()}`;
    const expiresAt = Math.floor(Date.now() / 1000) - 86_400;
    await ddb().send(new PutCommand({ TableName: config.tableName, Item: { ...keys.earlyStatus(`messenger#${mid}`, 'delivered'), status: 'delivered', expiresAt } }));

    // Act: the echo comes
    expect((await postWebhook(stack, 'messenger', echoWebhook(handle, mid, 'Not delivered by a stale hold', PAGE_INBOX_APP))).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === mid, 10_000, 'the Page-inbox message');
    await marker(handle);

    // Assess: the team's message is sent, as with nothing held
    expect((await messagesOf(conversationId)).find((m) => m.providerMessageId === mid)).toMatchObject({ status: 'sent', sender: { id: 'external' } });
    expect(await earlyStatuses(`messenger#${mid}`)).toEqual([]);
  });

  it('stores a Page-inbox message the customer’s read watermark already covers as read; one sent after it as sent', async () => {
    // Prepare: the customer read everything up to now, and that watermark reached us before the echoes
    const { handle, conversationId } = await customer('messenger');
    const readAt = Date.now();
    const [seen, later] = [`m_ECHO-${crypto.randomUUID()}`, `m_ECHO-${crypto.randomUUID()}`];
    expect((await postWebhook(stack, 'messenger', statusWebhook('messenger', handle, 'read', undefined, readAt))).status).toBe(200);
    // An older watermark coming late leaves the customer's where it is.
    expect((await postWebhook(stack, 'messenger', statusWebhook('messenger', handle, 'read', undefined, readAt - HOUR))).status).toBe(200);

    // Act: the echo of a message sent before the watermark, and of one sent after it
    expect((await postWebhook(stack, 'messenger', echoWebhook(handle, seen, 'Sent before they read', PAGE_INBOX_APP, readAt - 1000))).status).toBe(200);
    expect((await postWebhook(stack, 'messenger', echoWebhook(handle, later, 'Sent after they read', PAGE_INBOX_APP, readAt + 1000))).status).toBe(200);
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === seen, 10_000, 'the Page-inbox message');
    await marker(handle);

    // Assess: shown read from its first frame
    expect(shown.message).toMatchObject({ status: 'read', sender: { id: 'external' } });
    const stored = await messagesOf(conversationId);
    expect(stored.find((m) => m.providerMessageId === seen)).toMatchObject({ status: 'read', text: 'Sent before they read' });
    expect(stored.find((m) => m.providerMessageId === later)).toMatchObject({ status: 'sent', text: 'Sent after they read' });
  });

  it('does not reopen a resolved conversation', async () => {
    const { handle, conversationId } = await customer('messenger');
    const resolved = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt });
    expect(resolved.status).toBe(200);
    const mid = `m_ECHO-${crypto.randomUUID()}`;

    expect((await postWebhook(stack, 'messenger', echoWebhook(handle, mid, 'One more thing from the Page inbox', PAGE_INBOX_APP))).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === mid, 10_000, 'the Page-inbox message');

    expect(await conversationOf(conversationId)).toMatchObject({ status: 'resolved' });
    expect((await messagesOf(conversationId)).map((m) => m.text)).toContain('One more thing from the Page inbox');
  });
});

describe('WhatsApp coexistence: what the team sent from the WhatsApp Business app on our number (smb_message_echoes)', () => {
  /** Meta's smb_message_echoes webhook (test/fixtures/whatsapp/smb-message-echoes.json) with one echo to `to`. */
  function echoWebhook(to: string, id: string, content: Record<string, unknown>): string {
    const body = JSON.parse(fixture('whatsapp', 'smb-message-echoes'));
    const value = body.entry[0].changes[0].value;
    value.message_echoes = [{ from: value.metadata.display_phone_number, to, id, timestamp: String(Math.floor(Date.now() / 1000)), ...content }];
    return JSON.stringify(body);
  }
  const text = (body: string) => ({ type: 'text', text: { body } });

  async function messagesOf(id: string): Promise<{ direction: string; text: string; status: string; sender: Record<string, unknown>; providerMessageId?: string }[]> {
    return (await http(stack.httpUrl, 'GET', `/v1/conversations/${id}/messages?limit=100`, { token: agentJwt })).body.items;
  }

  /** A customer message after the echoes, in the same FIFO group: once it shows, every copy before it was processed. */
  async function marker(handle: string): Promise<string> {
    const webhook = textWebhook('whatsapp', handle, 'marker');
    expect((await postWebhook(stack, 'whatsapp', webhook.body)).status).toBe(200);
    return (await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, 'marker')).conversationId;
  }

  /** What the WhatsApp stand-in was asked to send this customer (GET /local/outbox?channel=whatsapp). */
  const sendsTo = (handle: string) => outbox('whatsapp', (item) => (item.body as { to?: unknown } | undefined)?.to === handle);

  it('stores the team’s reply typed on the phone once, as the team’s sent message in the customer’s conversation, tells the agents, and sends nothing', async () => {
    // Prepare: the customer wrote through the Cloud API
    const { handle, conversationId } = await customer('whatsapp');
    const before = (await getConversation(conversationId)).body;
    const sentBefore = await sendsTo(handle);
    const id = `wamid.ECHO-${crypto.randomUUID()}`;
    // Meta's reference writes `to` with a plus; our handle is the wa_id.
    const echo = echoWebhook(`+${handle}`, id, text('Typed on the phone: it ships today'));

    // Act: the webhook delivered twice, and Meta's copy hours later, once SQS no longer remembers its deduplication id
    for (let i = 0; i < 2; i++) expect((await postWebhook(stack, 'whatsapp', echo)).status).toBe(200);
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === id, 10_000, 'the reply from the phone');
    const [event] = whatsappAdapter.normalize(signedRequest('whatsapp', echo), DEV_CREDENTIALS.whatsapp);
    expect(event).toMatchObject({ handle, echo: { name: 'WhatsApp Business app' } });
    await redeliverHoursLater(event!);
    await marker(handle);

    // Assess: the team's, once, in the customer's conversation; the customer's own count unchanged by it
    expect(shown.conversationId).toBe(conversationId);
    const team = { direction: 'outbound', status: 'sent', sender: { type: 'agent', id: 'external', name: 'WhatsApp Business app' } };
    expect(shown.message).toMatchObject({ ...team, channel: 'whatsapp', text: 'Typed on the phone: it ships today' });
    expect(agent.frames.filter((f) => f.type === 'message.created' && f.message.providerMessageId === id)).toHaveLength(1);
    const history = await messagesOf(conversationId);
    expect(history.map((m) => `${m.direction} ${m.text}`)).toEqual(['inbound Hello, anyone there?', 'outbound Typed on the phone: it ships today', 'inbound marker']);
    expect(history.find((m) => m.providerMessageId === id)).toMatchObject(team);
    expect((await getConversation(conversationId)).body).toMatchObject({ status: 'open', unreadCount: before.unreadCount + 1, firstReplyAt: shown.message.createdAt });
    // Nothing went to the customer: the phone sent it already.
    expect(await sendsTo(handle)).toEqual(sentBefore);
  });

  it('shows a reply from the phone to a Brazilian customer’s number with its ninth digit in the conversation of their WhatsApp id without it', async () => {
    // Prepare: a customer whose WhatsApp account predates the ninth digit writes
    const local = `8${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const conversationId = await marker(`5531${local}`);
    const id = `wamid.ECHO-${crypto.randomUUID()}`;

    // Act: the team answers from the app, which names the number as written today
    expect((await postWebhook(stack, 'whatsapp', echoWebhook(`+55319${local}`, id, text('Respondido pelo celular')))).status).toBe(200);

    // Assess
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === id, 10_000, 'the reply from the phone');
    expect(shown.conversationId).toBe(conversationId);
    expect((await messagesOf(conversationId)).map((m) => `${m.direction} ${m.text}`)).toEqual(['inbound marker', 'outbound Respondido pelo celular']);
  });

  it('copies the photo of a reply from the phone into our bucket, as a customer’s (fetched with the channel’s token), and sends nothing', async () => {
    // Prepare: a customer; the Cloud API holds the photo the team sent from the app
    const { handle, conversationId } = await customer('whatsapp');
    const bytes = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(20_000, 5)]);
    const mediaId = stack.providers.addMedia('whatsapp', { contentType: 'image/jpeg', bytes });
    const id = `wamid.ECHO-${crypto.randomUUID()}`;

    // Act
    expect((await postWebhook(stack, 'whatsapp', echoWebhook(handle, id, { type: 'image', image: { id: mediaId, mime_type: 'image/jpeg', caption: 'The blue one' } }))).status).toBe(200);
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === id, 10_000, 'the photo from the phone');
    const copy = await agent.waitFor(
      (f) => f.type === 'message.updated' && f.message.id === shown.message.id && String(f.message.attachments[0]?.url).startsWith('conversa-media://'),
      15_000,
      'the kept copy',
    );

    // Assess: still the team's sent message, now with our copy
    expect(shown.conversationId).toBe(conversationId);
    expect(shown.message).toMatchObject({ text: 'The blue one', attachments: [{ type: 'image', url: `whatsapp-media://${mediaId}` }] });
    expect(copy.message).toMatchObject({ direction: 'outbound', status: 'sent', sender: { id: 'external' } });
    expect(copy.message.attachments[0]).toMatchObject({ type: 'image', mimeType: 'image/jpeg', size: bytes.length });
    expect(await sendsTo(handle)).toEqual([]);
  });

  it.each(['read', 'failed'] as const)('applies a %s receipt that came before the echo it names (it carries no reference of ours), held once however often it comes', async (status) => {
    // Prepare: a customer; the receipt of a message the team sent from the phone reaches us before its echo, twice
    const { handle, conversationId } = await customer('whatsapp');
    const id = `wamid.ECHO-${crypto.randomUUID()}`;
    const receipt = statusWebhook('whatsapp', handle, status, id);
    expect(JSON.parse(receipt).entry[0].changes[0].value.statuses[0]).not.toHaveProperty('biz_opaque_callback_data');
    for (let i = 0; i < 2; i++) expect((await postWebhook(stack, 'whatsapp', receipt)).status).toBe(200);
    // Meta's copy past SQS's deduplication window, straight to the store.
    const [event] = whatsappAdapter.normalize(signedRequest('whatsapp', receipt), DEV_CREDENTIALS.whatsapp);
    await ingestStatus(event as Parameters<typeof ingestStatus>[0]);
    await eventually(async () => (await earlyStatuses(`whatsapp#${id}`)).length > 0);

    // Act: the echo comes
    expect((await postWebhook(stack, 'whatsapp', echoWebhook(handle, id, text('Sent from the phone, seen before we knew it')))).status).toBe(200);
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === id, 10_000, 'the reply from the phone');
    await marker(handle);

    // Assess: one held status, one message, shown to the agents at that status from its first frame
    expect((await earlyStatuses(`whatsapp#${id}`)).map((s) => s.status)).toEqual([status]);
    expect(shown.conversationId).toBe(conversationId);
    expect(shown.message).toMatchObject({ status, direction: 'outbound', sender: { id: 'external' } });
    if (status === 'failed') expect(shown.message.error).toContain('(code 131047)');
    const stored = (await messagesOf(conversationId)).filter((m) => m.providerMessageId === id);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ status, text: 'Sent from the phone, seen before we knew it' });
    expect(agent.frames.filter((f) => f.type === 'message.created' && f.message.providerMessageId === id)).toHaveLength(1);
  });

  it('applies the receipts that come after the echo, by its wamid, holding nothing', async () => {
    // Prepare: a customer and the team's reply from the phone, stored
    const { handle, conversationId } = await customer('whatsapp');
    const id = `wamid.ECHO-${crypto.randomUUID()}`;
    expect((await postWebhook(stack, 'whatsapp', echoWebhook(handle, id, text('Sent from the phone first')))).status).toBe(200);
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === id, 10_000, 'the reply from the phone');

    // Act: its receipts, without our reference
    for (const status of ['delivered', 'read'] as const) expect((await postWebhook(stack, 'whatsapp', statusWebhook('whatsapp', handle, status, id))).status).toBe(200);
    await agent.waitFor(updated(shown.message.id, 'read'), 10_000, 'read');
    await marker(handle);

    // Assess
    expect((await messagesOf(conversationId)).find((m) => m.providerMessageId === id)).toMatchObject({ status: 'read', sender: { id: 'external' } });
    expect(await earlyStatuses(`whatsapp#${id}`)).toEqual([]);
  });

  it('holds a receipt for a customer who never wrote to us, at the cost of the hold alone, and applies it to the echo that comes after their first message', async () => {
    // Prepare: the team wrote from the phone to someone who never wrote here; its receipt comes first
    const handle = newHandle('whatsapp');
    const id = `wamid.ECHO-${crypto.randomUUID()}`;
    const [event] = whatsappAdapter.normalize(signedRequest('whatsapp', statusWebhook('whatsapp', handle, 'read', id)), DEV_CREDENTIALS.whatsapp);
    resetCapacityTotals();
    await ingestStatus(event as Parameters<typeof ingestStatus>[0]);
    // The handle's read, and the hold: one unit each.
    expect({ read: capacityTotals.read, write: capacityTotals.write }).toEqual({ read: 1, write: 1 });
    expect((await earlyStatuses(`whatsapp#${id}`)).map((s) => s.status)).toEqual(['read']);

    // Act: the customer's first message, then the echo
    const conversationId = await marker(handle);
    expect((await postWebhook(stack, 'whatsapp', echoWebhook(handle, id, text('Hi, from the shop')))).status).toBe(200);
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === id, 10_000, 'the reply from the phone');

    // Assess
    expect(shown.conversationId).toBe(conversationId);
    expect(shown.message).toMatchObject({ status: 'read', direction: 'outbound', sender: { id: 'external' } });
  });

  it('opens no conversation for a customer who never wrote to us: what the team sent them from the phone is not shown', async () => {
    const handle = newHandle('whatsapp');
    const id = `wamid.ECHO-${crypto.randomUUID()}`;

    expect((await postWebhook(stack, 'whatsapp', echoWebhook(handle, id, text('Hi, from the shop')))).status).toBe(200);
    const conversationId = await marker(handle);

    expect((await messagesOf(conversationId)).map((m) => `${m.direction} ${m.text}`)).toEqual(['inbound marker']);
    expect(agent.frames.some((f) => f.type === 'message.created' && f.message.providerMessageId === id)).toBe(false);
  });
});

describe('Messenger with the app subscribed to several Pages', () => {
  it('ignores what another Page received (200, nothing stored, no conversation): its customers cannot be answered with our Page’s token', async () => {
    // Prepare: the same customer id writes to another Page, then to ours
    const handle = newHandle('messenger');
    const other = JSON.parse(textWebhook('messenger', handle, 'To the other Page').body);
    other.entry[0].id = '107311788749299';
    other.entry[0].messaging[0].recipient.id = '107311788749299';
    const ours = textWebhook('messenger', handle, 'To our Page');

    // Act
    const ignored = await postWebhook(stack, 'messenger', JSON.stringify(other));
    expect((await postWebhook(stack, 'messenger', ours.body)).status).toBe(200);
    const shown = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === ours.providerMessageId, 10_000, 'our Page’s message');

    // Assess: both in the customer's message group, so the other Page's would have come first
    expect(ignored.status).toBe(200);
    const messages = await http(stack.httpUrl, 'GET', `/v1/conversations/${shown.conversationId}/messages?limit=100`, { token: agentJwt });
    expect(messages.body.items.map((m: { text: string }) => m.text)).toEqual(['To our Page']);
    expect(agent.frames.some((f) => f.type === 'message.created' && f.message.text === 'To the other Page')).toBe(false);
  });
});
