/**
 * Provider webhooks end to end on the local stack, for every channel: the documented payloads
 * go through the real HTTP route, signed like the providers sign them; agents see the messages
 * over WebSocket; redeliveries are stored once.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readdirSync } from 'node:fs';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { LocalStack } from '../../local/stack';
import type { LocalQueue } from '../../local/aws/sqs';
import { startTestStack } from '../support/stack';
import { agentToken, http, WsClient, type Frame } from '../support/clients';
import { fixture, signedRequest } from '../fixtures/sign';
import { PROVIDER_CHANNELS, type ProviderChannel } from '../../src/domain/types';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { getAdapter } from '../../src/channels/registry';
import { inboundDedupId, inboundGroupId } from '../../src/aws/queues';
import { MEDIA_FIXTURES, META_CHANNELS, newHandle, postWebhook, smsWebhookUrl, textWebhook } from './channels-support';

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;
let inboundQueue: LocalQueue;

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = await agentToken(stack.httpUrl, 'agent-ana', 'agent', 'Ana');
  agent = await WsClient.connect(stack.wsUrl, agentJwt);
  inboundQueue = stack.aws.sqs.getQueue(process.env.INBOUND_QUEUE_URL!);
});

afterAll(async () => {
  await agent?.close();
  await stack?.stop();
});

const created = (providerMessageId: string) => (f: Frame) => f.type === 'message.created' && f.message.providerMessageId === providerMessageId;

async function history(conversationId: string): Promise<{ providerMessageId?: string; text: string; direction: string }[]> {
  const page = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt });
  expect(page.status).toBe(200);
  return page.body.items;
}

/** Every event of a fixture as the adapter reads it: only used to know which ids to wait for. */
function fixtureMessageIds(channel: ProviderChannel, name: string, body: string): string[] {
  return getAdapter(channel)
    .normalize(signedRequest(channel, body, smsWebhookUrl(stack)), DEV_CREDENTIALS[channel])
    .flatMap((e) => (e.kind === 'message' && e.providerMessageId ? [e.providerMessageId] : []));
}

describe.each(PROVIDER_CHANNELS.map((channel) => ({ channel })))('$channel webhooks', ({ channel }) => {
  it('accepts a correctly signed webhook with the provider’s expected answer, and refuses a wrong or missing signature with 401 and nothing queued', async () => {
    const handle = newHandle(channel);
    const good = textWebhook(channel, handle, 'signed and sound');
    const forged = textWebhook(channel, handle, 'forged');
    const send = vi.spyOn(inboundQueue, 'send');
    try {
      const wrong = await postWebhook(stack, channel, forged.body, 'wrong');
      const missing = await postWebhook(stack, channel, forged.body, 'missing');
      expect(wrong.status).toBe(401);
      expect(missing.status).toBe(401);
      expect(wrong.body.error.code).toBe('invalid_signature');
      expect(send).not.toHaveBeenCalled();

      const accepted = await postWebhook(stack, channel, good.body);
      expect(accepted.status).toBe(200);
      expect(send).toHaveBeenCalledTimes(1);
      if (channel === 'sms') {
        expect(accepted.headers.get('content-type')).toMatch(/^text\/xml/);
        expect(accepted.text).toBe('<Response/>');
      }
    } finally {
      send.mockRestore();
    }
    const message = await agent.waitFor(created(good.providerMessageId), 10_000, `${channel} message`);
    // Only the signed message reached the customer's history (bots may answer it; the forgery never arrived).
    const texts = (await history(message.conversationId)).filter((m) => m.direction === 'inbound').map((m) => m.text);
    expect(texts).toEqual(['signed and sound']);
  });

  it('shows a text and a media message to a connected agent over WebSocket', async () => {
    const handle = newHandle(channel);
    const text = textWebhook(channel, handle, 'Where is my parcel?');
    expect((await postWebhook(stack, channel, text.body)).status).toBe(200);
    const frame = await agent.waitFor(created(text.providerMessageId), 10_000, `${channel} text`);
    expect(frame.message).toMatchObject({
      channel,
      direction: 'inbound',
      text: 'Where is my parcel?',
      attachments: [],
      status: 'received',
      private: false,
      sender: { type: 'contact' },
    });
    const conversation = await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === frame.conversationId);
    expect(conversation.conversation).toMatchObject({ channel, status: 'open', unreadCount: 1 });

    const media = MEDIA_FIXTURES[channel];
    const body = fixture(channel, media.name);
    const [mediaId] = fixtureMessageIds(channel, media.name, body);
    expect((await postWebhook(stack, channel, body)).status).toBe(200);
    const mediaFrame = await agent.waitFor(created(mediaId!), 10_000, `${channel} media`);
    expect(mediaFrame.message.channel).toBe(channel);
    expect(mediaFrame.message.text).toBe(media.text);
    expect(mediaFrame.message.attachments[0]).toMatchObject({ type: media.type, url: expect.any(String) });
  });

  it('accepts every documented payload of the channel and shows each message it carries', async () => {
    const names = readdirSync(new URL(`../fixtures/${channel}/`, import.meta.url)).sort();
    for (const name of names) {
      const body = fixture(channel, name);
      const response = await postWebhook(stack, channel, body);
      expect(response.status, `${channel}/${name}`).toBe(200);
      for (const id of fixtureMessageIds(channel, name, body)) {
        const frame = await agent.waitFor(created(id), 10_000, `${channel}/${name} ${id}`);
        // Unknown types are kept with a readable text rather than dropped.
        expect(frame.message.text.length + frame.message.attachments.length, `${channel}/${name}`).toBeGreaterThan(0);
      }
    }
  });

  it('stores a provider message once however often it is delivered, even after SQS deduplication has expired', async () => {
    const handle = newHandle(channel);
    const webhook = textWebhook(channel, handle, 'only once please');
    // Provider retries: the same webhook several times, some at once.
    const answers = await Promise.all([1, 2, 3].map(() => postWebhook(stack, channel, webhook.body)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect((await postWebhook(stack, channel, webhook.body)).status).toBe(200);
    const first = await agent.waitFor(created(webhook.providerMessageId), 10_000, 'first delivery');

    // Hours later SQS no longer remembers the id: the same event arrives with a new deduplication id,
    // as the webhook would queue it then.
    const [event] = getAdapter(channel).normalize(signedRequest(channel, webhook.body, smsWebhookUrl(stack)), DEV_CREDENTIALS[channel]);
    expect(event).toBeDefined();
    const hoursLater = new Date(Date.now() + 6 * 3600_000).toISOString();
    const sqs = new SQSClient({});
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: process.env.INBOUND_QUEUE_URL!,
        MessageBody: JSON.stringify({ ...event, receivedAt: hoursLater }),
        MessageGroupId: inboundGroupId(event!),
        MessageDeduplicationId: `${inboundDedupId(event!).slice(0, 90)}-later-${crypto.randomUUID()}`,
      }),
    );
    // Same FIFO group: once this later message is shown, the redelivery before it was processed.
    const marker = textWebhook(channel, handle, 'marker');
    expect((await postWebhook(stack, channel, marker.body)).status).toBe(200);
    await agent.waitFor(created(marker.providerMessageId), 10_000, 'marker');

    const stored = (await history(first.conversationId)).filter((m) => m.providerMessageId === webhook.providerMessageId);
    expect(stored).toHaveLength(1);
    expect(agent.frames.filter(created(webhook.providerMessageId))).toHaveLength(1);
  });

  it('answers an unparseable but correctly signed body with 400, not 5xx', async () => {
    const body = channel === 'sms' ? 'Foo=bar' : '{"object":"something_else","entry":[]}';
    const response = await postWebhook(stack, channel, channel === 'telegram' ? '[1,2]' : body);
    expect(response.status).toBe(400);
  });
});

describe('a message too long for one WebSocket frame', () => {
  it('reaches the agent cut and marked truncated, the conversation event after it too, and is stored whole', async () => {
    // Prepare: 70 000 two-byte characters, past API Gateway's 128 KiB frame limit
    const handle = newHandle('whatsapp');
    const text = `${'é'.repeat(70_000)} end`;
    const webhook = textWebhook('whatsapp', handle, text);

    // Act
    expect((await postWebhook(stack, 'whatsapp', webhook.body)).status).toBe(200);

    // Assess
    const created = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, 'the long message');
    expect(created.message.truncated).toBe(true);
    expect(text.startsWith(created.message.text)).toBe(true);
    await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === created.conversationId, 10_000, 'the conversation event after it');
    const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${created.conversationId}/messages`, { token: agentJwt });
    expect(history.body.items.find((m: { id: string }) => m.id === created.message.id).text).toBe(text);
  });
});

describe.each(META_CHANNELS.map((channel) => ({ channel })))('$channel verification challenge', ({ channel }) => {
  const path = (q: Record<string, string>) => `/webhooks/${channel}?${new URLSearchParams(q).toString()}`;

  it('answers the subscription challenge with the verify token, and 403 otherwise', async () => {
    const token = DEV_CREDENTIALS[channel].verifyToken!;
    const ok = await http(stack.httpUrl, 'GET', path({ 'hub.mode': 'subscribe', 'hub.verify_token': token, 'hub.challenge': '1158201444' }));
    expect(ok.status).toBe(200);
    expect(ok.text).toBe('1158201444');
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);

    const wrongToken = await http(stack.httpUrl, 'GET', path({ 'hub.mode': 'subscribe', 'hub.verify_token': 'guess', 'hub.challenge': '1' }));
    const wrongMode = await http(stack.httpUrl, 'GET', path({ 'hub.mode': 'unsubscribe', 'hub.verify_token': token, 'hub.challenge': '1' }));
    const otherChannelToken = await http(stack.httpUrl, 'GET', path({
      'hub.mode': 'subscribe',
      'hub.verify_token': DEV_CREDENTIALS[channel === 'whatsapp' ? 'messenger' : 'whatsapp'].verifyToken!,
      'hub.challenge': '1',
    }));
    expect([wrongToken.status, wrongMode.status, otherChannelToken.status]).toEqual([403, 403, 403]);
  });
});
