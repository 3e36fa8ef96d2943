/**
 * Telegram groups end to end: a forum topic's messages and the agent's replies stay in the topic
 * (webhook → conversation → reply recorded at /local/outbox).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http } from '../support/clients';
import { getHandle } from '../../src/store/contacts';
import { fixture } from '../fixtures/sign';
import { newHandle, postWebhook } from './channels-support';

let stack: LocalStack;
let agentJwt: string;

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = await agentToken(stack.httpUrl, 'agent-ana', 'agent', 'Ana');
});

afterAll(async () => {
  await stack?.stop();
});

let nextMessageId = 1000;

/** A member's message in the forum fixture's group `chatId`: in topic `topic`, or in General when undefined. */
async function memberWrites(chatId: number, topic: number | undefined, text: string): Promise<string> {
  const body = JSON.parse(fixture('telegram', 'forum-topic'));
  const message = body.message;
  message.message_id = nextMessageId++;
  message.chat.id = chatId;
  message.date = Math.floor(Date.now() / 1000);
  message.text = text;
  if (topic === undefined) {
    delete message.message_thread_id;
    delete message.is_topic_message;
    delete message.reply_to_message;
  } else {
    message.message_thread_id = topic;
    message.reply_to_message.message_thread_id = topic;
    message.reply_to_message.message_id = topic;
    message.reply_to_message.chat.id = chatId;
  }
  expect((await postWebhook(stack, 'telegram', JSON.stringify(body))).status).toBe(200);
  const handle = topic === undefined ? String(chatId) : `${chatId}/${topic}`;
  return eventually(async () => (await getHandle('telegram', handle))?.conversationId);
}

interface OutboxItem {
  url: string;
  body: Record<string, unknown>;
}

describe('telegram forum topics', () => {
  it('keeps each topic a conversation of its own, and sends the agent’s reply back into its topic', async () => {
    const chatId = -Number(`100${newHandle('telegram')}`);
    const returns = await memberWrites(chatId, 57, 'How do I send the blender back?');
    const again = await memberWrites(chatId, 57, 'It is still in its box');
    const billing = await memberWrites(chatId, 58, 'I was charged twice');
    const general = await memberWrites(chatId, undefined, 'Hello everyone');
    expect(again).toBe(returns);
    expect(new Set([returns, billing, general]).size).toBe(3);

    const text = `Print the label we emailed you (${chatId})`;
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${returns}/messages`, { token: agentJwt, body: { text } });
    expect(reply.status).toBe(202);
    const sent = await eventually(async () => {
      const outbox = await http(stack.httpUrl, 'GET', '/local/outbox?channel=telegram');
      return (outbox.body.items as OutboxItem[]).find((item) => item.body.text === text);
    });
    expect(sent.url).toMatch(/\/sendMessage$/);
    expect(sent.body).toEqual({ chat_id: String(chatId), message_thread_id: 57, text });
  });
});
