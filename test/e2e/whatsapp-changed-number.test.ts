/**
 * A WhatsApp customer who changed their number, end to end: WhatsApp's `user_changed_number`
 * notice (from the old number, naming the new one) is stored as the message it is and moves the
 * customer's conversation to the new number, so the agent's reply goes there (/local/outbox) and
 * the new number's messages land in the same conversation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http } from '../support/clients';
import { getHandle } from '../../src/store/contacts';
import { getConversation } from '../../src/store/conversations';
import { fixture } from '../fixtures/sign';
import { customerWritesOn, newHandle, postWebhook } from './channels-support';

let stack: LocalStack;
let agentJwt: string;

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = await agentToken(stack.httpUrl, 'agent-ana', 'agent', 'Ana');
});

afterAll(async () => {
  await stack?.stop();
});

let nextNotice = 0;

/** WhatsApp's notice, from the documented fixture: `from` changed their number to `to`. */
function changedNumber(from: string, to: string): string {
  const body = JSON.parse(fixture('whatsapp', 'system-changed-number'));
  const message = body.entry[0].changes[0].value.messages[0];
  Object.assign(message, {
    from,
    id: `wamid.CHANGED${Date.now()}${nextNotice++}`,
    timestamp: String(Math.floor(Date.now() / 1000)),
    system: { ...message.system, body: `User Sheena Nelson changed from ${from} to ${to}`, wa_id: to },
  });
  return JSON.stringify(body);
}

async function messages(conversationId: string): Promise<{ id: string; text: string; direction: string; status: string }[]> {
  const response = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: agentJwt });
  return response.body.items;
}

/** The agent replies in the conversation: the number each request the reply made to WhatsApp went to. */
async function agentReplies(conversationId: string, text: string): Promise<unknown[]> {
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: agentJwt, body: { text } })).status).toBe(202);
  await eventually(async () => (await messages(conversationId)).some((m) => m.text === text && m.status === 'sent'));
  const outbox = await http(stack.httpUrl, 'GET', '/local/outbox?channel=whatsapp');
  return (outbox.body.items as { body: { to?: string; text?: { body?: string } } }[]).filter((item) => item.body.text?.body === text).map((item) => item.body.to);
}

describe('whatsapp customer who changed their number', () => {
  it('keeps their conversation under the new number: the notice is stored once, the reply goes to the new number, its messages land there', async () => {
    const old = newHandle('whatsapp');
    const next = newHandle('whatsapp');
    const conversationId = await customerWritesOn(stack, 'whatsapp', old, 'Is my order on its way?');
    const notice = changedNumber(old, next);

    // WhatsApp retries a webhook it thinks failed: the same notice twice.
    for (let i = 0; i < 2; i++) expect((await postWebhook(stack, 'whatsapp', notice)).status).toBe(200);
    // The old number is marked last, once the move is done.
    await eventually(async () => (await getHandle('whatsapp', old))?.linkedHandle === next);
    await eventually(async () => (await messages(conversationId)).some((m) => m.text.startsWith('User Sheena Nelson changed')));
    expect((await messages(conversationId)).filter((m) => m.direction === 'inbound').map((m) => m.text)).toEqual([
      'Is my order on its way?',
      `User Sheena Nelson changed from ${old} to ${next}`,
    ]);
    const handle = (await getHandle('whatsapp', next))!;
    expect(handle.conversationId).toBe(conversationId);
    expect(await getConversation(conversationId, true)).toMatchObject({ handle: next });

    // The contact has the new number, as its phone too (an SMS from it finds them), and shows it.
    const contact = await http(stack.httpUrl, 'GET', `/v1/contacts/${handle.contactId}`, { token: agentJwt });
    expect(contact.body.phone).toBe(`+${next}`);
    expect(contact.body.handles).toEqual([{ channel: 'whatsapp', handle: old }, { channel: 'whatsapp', handle: next }]);
    expect(await getHandle('phone', `+${next}`)).toMatchObject({ contactId: handle.contactId });
    expect(contact.body.conversations).toHaveLength(1);
    expect((await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}`, { token: agentJwt })).body.contact.phone).toBe(`+${next}`);

    expect(await agentReplies(conversationId, `It ships today (${next})`)).toEqual([next]);
    expect(await customerWritesOn(stack, 'whatsapp', next, 'Thanks, writing from my new number')).toBe(conversationId);
  });

  it('keeps a phone an agent set on the contact, and moves the conversation all the same', async () => {
    const old = newHandle('whatsapp');
    const next = newHandle('whatsapp');
    const conversationId = await customerWritesOn(stack, 'whatsapp', old, 'Please call me at the office');
    const { contactId } = (await getHandle('whatsapp', old))!;
    const office = `+1555${next.slice(-7, -1)}0`;
    expect((await http(stack.httpUrl, 'PATCH', `/v1/contacts/${contactId}`, { token: agentJwt, body: { phone: office } })).status).toBe(200);

    expect((await postWebhook(stack, 'whatsapp', changedNumber(old, next))).status).toBe(200);
    await eventually(async () => (await getHandle('whatsapp', old))?.linkedHandle === next);
    expect((await http(stack.httpUrl, 'GET', `/v1/contacts/${contactId}`, { token: agentJwt })).body.phone).toBe(office);
    expect(await getConversation(conversationId, true)).toMatchObject({ handle: next, contact: { phone: office } });
    expect(await agentReplies(conversationId, `We will call the office (${next})`)).toEqual([next]);
  });

  it('leaves both conversations when the new number opened its own first; the old one is still answered at the old number', async () => {
    const old = newHandle('whatsapp');
    const next = newHandle('whatsapp');
    const oldConversation = await customerWritesOn(stack, 'whatsapp', old, 'Where is my parcel?');
    const newConversation = await customerWritesOn(stack, 'whatsapp', next, 'Hello from my new phone');
    expect(newConversation).not.toBe(oldConversation);

    expect((await postWebhook(stack, 'whatsapp', changedNumber(old, next))).status).toBe(200);
    await eventually(async () => (await messages(oldConversation)).some((m) => m.text.startsWith('User Sheena Nelson changed')));
    // The new number's lane runs the move before this message.
    expect(await customerWritesOn(stack, 'whatsapp', next, 'Anyone there?')).toBe(newConversation);
    expect(await getHandle('whatsapp', old)).not.toHaveProperty('linkedHandle');
    expect(await getConversation(oldConversation, true)).toMatchObject({ handle: old, contact: { phone: `+${old}` } });
    expect(await agentReplies(oldConversation, `Your parcel is at the depot (${old})`)).toEqual([old]);
  });
});
