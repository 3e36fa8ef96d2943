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
    // An edit shows only beside the customer's message it edits, which a fixture alone does not bring.
    .flatMap((e) => (e.kind === 'message' && e.providerMessageId && e.edits === undefined ? [e.providerMessageId] : []));
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

// A JSON provider may send half of a surrogate pair (an emoji cut): refused, it would come back for days.
describe.each(PROVIDER_CHANNELS.filter((channel) => channel !== 'sms').map((channel) => ({ channel })))('$channel text with half a surrogate pair', ({ channel }) => {
  it('is taken and stored once with U+FFFD in its place, as the agent and the history read it', async () => {
    const handle = newHandle(channel);
    const webhook = textWebhook(channel, handle, 'cut emoji \uD83D here');
    expect(webhook.body).toContain('\\ud83d');

    const answers = [await postWebhook(stack, channel, webhook.body), await postWebhook(stack, channel, webhook.body)];
    const marker = textWebhook(channel, handle, 'marker');
    expect((await postWebhook(stack, channel, marker.body)).status).toBe(200);

    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    const frame = await agent.waitFor(created(webhook.providerMessageId), 10_000, 'the message');
    expect(frame.message.text).toBe('cut emoji \uFFFD here');
    await agent.waitFor(created(marker.providerMessageId), 10_000, 'marker');
    const stored = (await history(frame.conversationId)).filter((m) => m.providerMessageId === webhook.providerMessageId);
    expect(stored.map((m) => m.text)).toEqual(['cut emoji \uFFFD here']);
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

describe('edits, deletions, story replies and button taps, as the providers send them', () => {
  /** The customer's inbound texts in their conversation, oldest first. */
  async function inboundTexts(conversationId: string): Promise<string[]> {
    return (await history(conversationId)).filter((m) => m.direction === 'inbound').map((m) => m.text);
  }

  it('WhatsApp: an edit is shown as "(edited)" with the new wording, once however often it comes; a deletion adds nothing', async () => {
    // Prepare: a customer's message
    const handle = newHandle('whatsapp');
    const original = textWebhook('whatsapp', handle, 'Does it come in red?');
    expect((await postWebhook(stack, 'whatsapp', original.body)).status).toBe(200);
    const first = await agent.waitFor(created(original.providerMessageId), 10_000, 'the original');

    // Act: the customer edits it (delivered twice), then deletes it
    const edit = JSON.parse(fixture('whatsapp', 'edit'));
    const revoke = JSON.parse(fixture('whatsapp', 'revoke'));
    const nowS = String(Math.floor(Date.now() / 1000));
    const editId = `wamid.EDIT-${crypto.randomUUID()}`;
    for (const [body, id] of [[edit, editId], [revoke, `wamid.REVOKE-${crypto.randomUUID()}`]] as const) {
      const value = body.entry[0].changes[0].value;
      value.contacts[0].wa_id = handle;
      Object.assign(value.messages[0], { from: handle, id, timestamp: nowS });
      (value.messages[0].edit ?? value.messages[0].revoke).original_message_id = original.providerMessageId;
    }
    for (const body of [edit, edit, revoke]) expect((await postWebhook(stack, 'whatsapp', JSON.stringify(body))).status).toBe(200);
    const marker = textWebhook('whatsapp', handle, 'marker');
    expect((await postWebhook(stack, 'whatsapp', marker.body)).status).toBe(200);
    await agent.waitFor(created(marker.providerMessageId), 10_000, 'marker');

    // Assess
    expect(agent.frames.filter(created(editId))).toHaveLength(1);
    expect(await inboundTexts(first.conversationId)).toEqual(['Does it come in red?', '(edited) Does it come in another colour?', 'marker']);
  });

  it('WhatsApp: a message written in a group (Groups API) is acknowledged and stored nowhere, not in its member’s own conversation', async () => {
    // Prepare: a member's words to a group of the business, as the Groups API delivers them
    const handle = newHandle('whatsapp');
    const group = JSON.parse(textWebhook('whatsapp', handle, 'What do you all think?').body);
    group.entry[0].changes[0].value.messages[0].group_id = `Y2FwaV9ncm91cDo${crypto.randomUUID().replace(/-/g, '')}`;

    // Act
    expect((await postWebhook(stack, 'whatsapp', JSON.stringify(group))).status).toBe(200);
    const marker = textWebhook('whatsapp', handle, 'marker');
    expect((await postWebhook(stack, 'whatsapp', marker.body)).status).toBe(200);
    const stored = await agent.waitFor(created(marker.providerMessageId), 10_000, 'marker');

    // Assess: the member's own conversation holds their own message alone
    expect(await inboundTexts(stored.conversationId)).toEqual(['marker']);
  });

  it('Messenger: an edit is shown once as "(edited)" with the new text', async () => {
    const handle = newHandle('messenger');
    const original = textWebhook('messenger', handle, 'Hello, is my order shipped?');
    expect((await postWebhook(stack, 'messenger', original.body)).status).toBe(200);
    const first = await agent.waitFor(created(original.providerMessageId), 10_000, 'the original');

    const edit = JSON.parse(fixture('messenger', 'message-edit'));
    const event = edit.entry[0].messaging[0];
    event.sender.id = handle;
    event.timestamp = Date.now();
    event.message_edit.mid = original.providerMessageId;
    for (let i = 0; i < 2; i++) expect((await postWebhook(stack, 'messenger', JSON.stringify(edit))).status).toBe(200);
    const editId = `edit:${original.providerMessageId}:1`;
    await agent.waitFor(created(editId), 10_000, 'the edit');
    const marker = textWebhook('messenger', handle, 'marker');
    expect((await postWebhook(stack, 'messenger', marker.body)).status).toBe(200);
    await agent.waitFor(created(marker.providerMessageId), 10_000, 'marker');

    expect(agent.frames.filter(created(editId))).toHaveLength(1);
    expect(await inboundTexts(first.conversationId)).toEqual(['Hello, is my order shipped?', '(edited) Hello, has my order shipped?', 'marker']);
  });

  it('Instagram: a story reply carries the story the customer answered', async () => {
    const body = JSON.parse(fixture('instagram', 'story-reply'));
    const event = body.entry[0].messaging[0];
    event.sender.id = newHandle('instagram');
    event.message.mid = `ig_STORYREPLY-${crypto.randomUUID()}`;
    event.timestamp = Date.now();
    expect((await postWebhook(stack, 'instagram', JSON.stringify(body))).status).toBe(200);
    const frame = await agent.waitFor(created(event.message.mid), 10_000, 'the story reply');
    expect(frame.message).toMatchObject({ text: 'Love this! Which size is she wearing?', attachments: [{ type: 'file', name: 'story_reply' }] });
  });

  it('Telegram: a button tap reads as the button’s label, is answered in the webhook’s answer, and is stored once when Telegram sends it again', async () => {
    const body = JSON.parse(fixture('telegram', 'callback-query-keyboard'));
    const handle = Number(newHandle('telegram'));
    const query = body.callback_query;
    query.id = `cq-${crypto.randomUUID()}`;
    query.from.id = handle;
    query.message.chat.id = handle;
    const raw = JSON.stringify(body);

    const answers = [await postWebhook(stack, 'telegram', raw), await postWebhook(stack, 'telegram', raw)];
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(answer.body).toEqual({ method: 'answerCallbackQuery', callback_query_id: query.id });
    }
    const frame = await agent.waitFor(created(`callback:${query.id}`), 10_000, 'the tap');
    expect(frame.message.text).toBe('⭐️⭐️⭐️⭐️⭐️ Great');
    const marker = textWebhook('telegram', String(handle), 'marker');
    expect((await postWebhook(stack, 'telegram', marker.body)).status).toBe(200);
    await agent.waitFor(created(marker.providerMessageId), 10_000, 'marker');
    expect(await inboundTexts(frame.conversationId)).toEqual(['⭐️⭐️⭐️⭐️⭐️ Great', 'marker']);
  });
});

describe('a customer’s reply to one of the agent’s messages', () => {
  interface OutboxItem {
    body: unknown;
    answer: unknown;
  }

  /** The agent's reply once the provider took it, as the agent's frame shows it. */
  async function agentReply(conversationId: string, text: string): Promise<Frame['message']> {
    const response = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { text } });
    expect(response.status, response.text).toBe(202);
    const id = response.body.message.id;
    const frame = await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === id && f.message.status === 'sent', 15_000, `sent: ${text.slice(0, 20)}`);
    return frame.message;
  }

  async function storedMessage(conversationId: string, providerMessageId: string) {
    return (await history(conversationId)).find((m) => m.providerMessageId === providerMessageId) as Record<string, unknown> | undefined;
  }

  it('WhatsApp: a swipe-reply is stored once with replyTo naming the agent’s question as its send recorded it, and reaches the agent’s frame', async () => {
    // Prepare: the customer writes; the agent asks two questions
    const handle = newHandle('whatsapp');
    const opening = textWebhook('whatsapp', handle, 'I want to return my blender');
    expect((await postWebhook(stack, 'whatsapp', opening.body)).status).toBe(200);
    const { conversationId } = await agent.waitFor(created(opening.providerMessageId), 10_000, 'the opening');
    const boxQuestion = await agentReply(conversationId, 'Is the box undamaged?');
    await agentReply(conversationId, 'Do you still have the receipt?');

    // Act: the customer answers the first question by swiping it (WhatsApp delivers it twice)
    const answer = textWebhook('whatsapp', handle, 'Yes');
    const body = JSON.parse(answer.body);
    body.entry[0].changes[0].value.messages[0].context = { from: '15550783881', id: boxQuestion.providerMessageId };
    for (let i = 0; i < 2; i++) expect((await postWebhook(stack, 'whatsapp', JSON.stringify(body))).status).toBe(200);

    // Assess: the agent sees which question "Yes" answers, live and in the history, once
    const frame = await agent.waitFor(created(answer.providerMessageId), 10_000, 'the swipe-reply');
    expect(frame.message).toMatchObject({ text: 'Yes', direction: 'inbound', replyTo: { providerMessageId: boxQuestion.providerMessageId } });
    const marker = textWebhook('whatsapp', handle, 'marker');
    expect((await postWebhook(stack, 'whatsapp', marker.body)).status).toBe(200);
    await agent.waitFor(created(marker.providerMessageId), 10_000, 'marker');
    expect(agent.frames.filter(created(answer.providerMessageId))).toHaveLength(1);
    const stored = (await history(conversationId)).filter((m) => m.providerMessageId === answer.providerMessageId);
    expect(stored).toEqual([expect.objectContaining({ replyTo: { providerMessageId: boxQuestion.providerMessageId } })]);
    // A message that quotes nothing carries no replyTo.
    expect(await storedMessage(conversationId, marker.providerMessageId)).not.toHaveProperty('replyTo');
  });

  it('Telegram: a reaction to the agent’s message is stored once however often it comes, naming that message as its send recorded it', async () => {
    // Prepare: the customer writes; the agent answers
    const handle = newHandle('telegram');
    const opening = textWebhook('telegram', handle, 'Is the blender in stock?');
    expect((await postWebhook(stack, 'telegram', opening.body)).status).toBe(200);
    const { conversationId } = await agent.waitFor(created(opening.providerMessageId), 10_000, 'the opening');
    const sent = await agentReply(conversationId, 'Yes, we have two left.');

    // Act: the customer reacts to the answer with 👍 (Telegram delivers the update twice)
    const body = JSON.parse(fixture('telegram', 'message-reaction'));
    const update = body.message_reaction;
    update.chat.id = Number(handle);
    update.user.id = Number(handle);
    update.message_id = Number(String(sent.providerMessageId).split(':')[1]);
    update.date = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 2; i++) expect((await postWebhook(stack, 'telegram', JSON.stringify(body))).status).toBe(200);

    // Assess: the agent sees the reaction on its message, live and in the history, once
    const reacted = (f: Frame) => f.type === 'message.created' && f.conversationId === conversationId && f.message.text === 'reacted 👍 to a message';
    const frame = await agent.waitFor(reacted, 10_000, 'the reaction');
    expect(frame.message).toMatchObject({ direction: 'inbound', replyTo: { providerMessageId: sent.providerMessageId } });
    const marker = textWebhook('telegram', handle, 'marker');
    expect((await postWebhook(stack, 'telegram', marker.body)).status).toBe(200);
    await agent.waitFor(created(marker.providerMessageId), 10_000, 'marker');
    expect(agent.frames.filter(reacted)).toHaveLength(1);
    const stored = (await history(conversationId)).filter((m) => m.text === 'reacted 👍 to a message');
    expect(stored).toEqual([expect.objectContaining({ providerMessageId: frame.message.providerMessageId, replyTo: { providerMessageId: sent.providerMessageId } })]);
  });

  it('Messenger: a reply sent in parts lists its other parts’ ids, so a customer quoting a later part names an id the agent’s history has', async () => {
    // Prepare: the customer writes; the agent's answer is longer than Messenger's 2000 characters
    const handle = newHandle('messenger');
    const opening = textWebhook('messenger', handle, 'Which sizes do you have?');
    expect((await postWebhook(stack, 'messenger', opening.body)).status).toBe(200);
    const { conversationId } = await agent.waitFor(created(opening.providerMessageId), 10_000, 'the opening');
    const tag = `sizes${Date.now()}`;
    const sent = await agentReply(conversationId, `${tag} ${'Small fits 36 to 38. '.repeat(100)}\n\nWhich one shall I reserve for you?`);
    const items = (await http(stack.httpUrl, 'GET', '/local/outbox?channel=messenger')).body.items as OutboxItem[];
    // Its two parts (the greeting also went to this customer).
    const parts = items.filter((item) => JSON.stringify(item.body).includes(handle) && /Small fits|reserve for you/.test(JSON.stringify(item.body)));
    const mids = parts.map((item) => (item.answer as { message_id?: string }).message_id);
    expect(mids).toHaveLength(2);
    expect(sent).toMatchObject({ providerMessageId: mids[0], otherProviderMessageIds: [mids[1]] });

    // Act: the customer quotes the last part, the question
    const answer = textWebhook('messenger', handle, 'Medium, please');
    const body = JSON.parse(answer.body);
    body.entry[0].messaging[0].message.reply_to = { mid: mids[1] };
    expect((await postWebhook(stack, 'messenger', JSON.stringify(body))).status).toBe(200);

    // Assess
    const frame = await agent.waitFor(created(answer.providerMessageId), 10_000, 'the reply');
    expect(frame.message.replyTo).toEqual({ providerMessageId: mids[1] });
    expect(await storedMessage(conversationId, mids[0]!)).toMatchObject({ otherProviderMessageIds: [mids[1]] });
  });
});
