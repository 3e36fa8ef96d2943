/**
 * A Telegram group upgraded to a supergroup, end to end: the upgrade's service messages (in the
 * old chat, in the new one, either or both) move the group's conversation to the new chat id, so
 * the new chat's messages land in it and the agent's reply goes straight there (/local/outbox).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http } from '../support/clients';
import { getHandle } from '../../src/store/contacts';
import { getConversation } from '../../src/store/conversations';
import { linkChannelHandle } from '../../src/domain/contacts';
import { ingestMove } from '../../src/domain/inbound';
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

let nextMessageId = 5000;

interface Chat {
  id: number;
  type: 'group' | 'supergroup';
}

/** A fresh group and the supergroup it is upgraded to (Telegram's id forms: -<n> and -100<n>). */
function upgrade(): { old: Chat; next: Chat } {
  const n = newHandle('telegram');
  return { old: { id: -Number(n), type: 'group' }, next: { id: -Number(`100${n}`), type: 'supergroup' } };
}

/** An update in `chat` from the text fixture's member, with `fields` in its message. */
async function post(chat: Chat, fields: Record<string, unknown>): Promise<void> {
  const body = JSON.parse(fixture('telegram', 'text'));
  body.update_id = nextMessageId;
  Object.assign(body.message, { message_id: nextMessageId++, date: Math.floor(Date.now() / 1000), chat: { ...chat, title: 'Acme buyers' }, ...fields });
  if (fields.text === undefined) delete body.message.text;
  expect((await postWebhook(stack, 'telegram', JSON.stringify(body))).status).toBe(200);
}

/** A member writes in `chat`: its conversation's id once it holds the message. */
async function memberWrites(chat: Chat, text: string): Promise<string> {
  await post(chat, { text });
  return eventually(async () => {
    const id = (await getHandle('telegram', String(chat.id)))?.conversationId;
    return id && (await messages(id)).some((m) => m.text.endsWith(text)) ? id : undefined;
  });
}

/** Telegram's service messages of the upgrade: in the old chat, naming the new one, and the other way. */
const movedTo = (old: Chat, next: Chat) => post(old, { migrate_to_chat_id: next.id });
const movedFrom = (old: Chat, next: Chat) => post(next, { migrate_from_chat_id: old.id });

async function messages(conversationId: string): Promise<{ id: string; text: string; direction: string; status: string }[]> {
  const response = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
  return response.body.items;
}

interface OutboxItem {
  body: Record<string, unknown>;
}

/** The agent replies in the conversation: every request the reply made to Telegram, once it was taken. */
async function agentReplies(conversationId: string, text: string): Promise<OutboxItem[]> {
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { text } })).status).toBe(202);
  await eventually(async () => (await messages(conversationId)).some((m) => m.text === text && m.status === 'sent'));
  const outbox = await http(stack.httpUrl, 'GET', '/local/outbox?channel=telegram');
  return (outbox.body.items as OutboxItem[]).filter((item) => item.body.text === text);
}

describe('telegram group upgraded to a supergroup', () => {
  it.each([
    ['both service messages, the old chat’s first', async (old: Chat, next: Chat) => (await movedTo(old, next), await movedFrom(old, next))],
    ['both, the new chat’s first, each delivered twice', async (old: Chat, next: Chat) => {
      for (const notice of [movedFrom, movedTo, movedFrom, movedTo]) await notice(old, next);
    }],
    ['only the old chat’s', movedTo],
    ['only the new chat’s', movedFrom],
  ])('keeps the group’s conversation in the new chat, and the reply goes straight there (%s)', async (_, upgraded) => {
    const { old, next } = upgrade();
    const conversationId = await memberWrites(old, 'Our order #5512 has not arrived');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: agentJwt, body: {} })).status).toBe(200);
    const before = (await messages(conversationId)).map((m) => m.id);

    await upgraded(old, next);
    // The old chat is marked last, once the move is done.
    await eventually(async () => (await getHandle('telegram', String(old.id)))?.linkedHandle === String(next.id));
    const handle = (await getHandle('telegram', String(next.id)))!;
    expect(handle.conversationId).toBe(conversationId);
    // No message for the upgrade, and the conversation stays as the team left it.
    expect((await messages(conversationId)).map((m) => m.id)).toEqual(before);
    expect(await getConversation(conversationId, true)).toMatchObject({ status: 'resolved', handle: String(next.id) });
    const contact = await http(stack.httpUrl, 'GET', `/v1/contacts/${handle.contactId}`, { token: agentJwt });
    expect(contact.body.handles).toEqual(expect.arrayContaining([{ channel: 'telegram', handle: String(old.id) }, { channel: 'telegram', handle: String(next.id) }]));
    expect(contact.body.conversations).toHaveLength(1);

    expect(await memberWrites(next, 'Still nothing today')).toBe(conversationId);
    expect((await messages(conversationId)).filter((m) => m.direction === 'inbound').map((m) => m.text)).toEqual([
      'Ada Lovelace: Our order #5512 has not arrived',
      'Ada Lovelace: Still nothing today',
    ]);
    // One request, to the new chat: no refusal from the old one first.
    const text = `It left our warehouse this morning (${next.id})`;
    expect((await agentReplies(conversationId, text)).map((item) => item.body.chat_id)).toEqual([String(next.id)]);
  });

  it('finishes a move whose first attempt died after linking the new chat', async () => {
    const { old, next } = upgrade();
    const conversationId = await memberWrites(old, 'Is the shop open on Sunday?');
    const { contactId } = (await getHandle('telegram', String(old.id)))!;
    // What the dead attempt left: the new chat linked, the conversation not repointed, the old chat not marked.
    expect(await linkChannelHandle('telegram', String(next.id), { contactId, conversationId })).toBe(true);

    await movedFrom(old, next);
    await eventually(async () => (await getConversation(conversationId, true))?.handle === String(next.id));
    expect(await getHandle('telegram', String(old.id))).toMatchObject({ conversationId, linkedHandle: String(next.id) });
    // Delivered again once done (SQS keeps a copy out for 5 minutes only): nothing is written.
    const done = await getConversation(conversationId, true);
    await ingestMove({ kind: 'moved', channel: 'telegram', handle: String(next.id), from: String(old.id) });
    expect(await getConversation(conversationId, true)).toEqual(done);
    expect(await memberWrites(next, 'And on Monday?')).toBe(conversationId);
  });

  it('leaves both conversations when the new chat opened its own before the upgrade was told', async () => {
    const { old, next } = upgrade();
    const oldConversation = await memberWrites(old, 'Where is my parcel?');
    const before = (await messages(oldConversation)).map((m) => m.id);
    const newConversation = await memberWrites(next, 'Hello again');
    expect(newConversation).not.toBe(oldConversation);

    await movedTo(old, next);
    await movedFrom(old, next);
    // The new chat's lane runs the upgrade's messages before this one.
    expect(await memberWrites(next, 'Anyone there?')).toBe(newConversation);
    expect(await getHandle('telegram', String(old.id))).not.toHaveProperty('linkedHandle');
    expect(await getConversation(oldConversation, true)).toMatchObject({ handle: String(old.id) });
    expect((await messages(oldConversation)).map((m) => m.id)).toEqual(before);
  });
});
