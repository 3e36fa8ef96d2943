/**
 * One customer across channels, end to end: identity handles (phone, email) link channels to
 * one contact, admins merge contacts, agents continue a conversation on another channel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { isChannel, type ProviderChannel } from '../../src/domain/types';
import { newHandle, phoneHandles, postWebhook, textWebhook } from './channels-support';
import { identityHashOf } from '../../src/domain/visitors';
import { claimHandle, getContact as getContactItem, getHandle, getVisitor, updateVisitor } from '../../src/store/contacts';
import { findOrCreateContact, withVisitorProfile } from '../../src/domain/contacts';
import { ddb } from '../../src/aws/clients';
import { getConversation } from '../../src/store/conversations';

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;
let adminJwt: string;
const sockets: WsClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = await agentToken(stack.httpUrl, 'agent-ana', 'agent', 'Ana');
  adminJwt = await agentToken(stack.httpUrl, 'admin-ada', 'admin', 'Ada');
  agent = await WsClient.connect(stack.wsUrl, agentJwt);
  sockets.push(agent);
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

/** The customer writes on `channel`; returns the stored message as the agent saw it. */
async function write(channel: ProviderChannel, handle: string, text: string): Promise<Frame> {
  const webhook = textWebhook(channel, handle, text);
  expect((await postWebhook(stack, channel, webhook.body)).status).toBe(200);
  return agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, `${channel} message`);
}

async function visitorWrites(email: string, text: string, identityHash?: string): Promise<{ conversationId: string; contactId: string; ws: WsClient }> {
  return visitorWithProfileWrites({ email, ...(identityHash ? { identityHash } : {}) }, text);
}

/** A web visitor named Vera with this pre-chat profile writes; the agent sees the message. */
async function visitorWithProfileWrites(profile: Record<string, string>, text: string): Promise<{ conversationId: string; contactId: string; ws: WsClient }> {
  const session = await visitorSession(stack.httpUrl, { name: 'Vera', ...profile });
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text, clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
  const seen = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId);
  return { conversationId: ack.conversationId, contactId: seen.message.sender.id, ws };
}

const getContact = (id: string, token = agentJwt) => http(stack.httpUrl, 'GET', `/v1/contacts/${id}`, { token });
const merge = (id: string, otherContactId: string, token = adminJwt) =>
  http(stack.httpUrl, 'POST', `/v1/contacts/${id}/merge`, { token, body: { otherContactId } });
const moveTo = (conversationId: string, channel: string, token = agentJwt) =>
  http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/channel`, { token, body: { channel } });
const verification = (on: boolean) => http(stack.httpUrl, 'PUT', '/v1/settings', { token: adminJwt, body: { widget: { identityVerification: on } } });
const messages = async (conversationId: string) =>
  (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt })).body.items as {
    text: string;
    private: boolean;
    direction: string;
  }[];

describe('one customer across channels', () => {
  it('makes WhatsApp and SMS from the same phone one contact, showing every handle and conversation', async () => {
    const phone = phoneHandles();
    const onWhatsApp = await write('whatsapp', phone.whatsapp, 'Hi from WhatsApp');
    const bySms = await write('sms', phone.sms, 'Hi again by text');
    expect(bySms.message.sender.id).toBe(onWhatsApp.message.sender.id);
    expect(bySms.conversationId).not.toBe(onWhatsApp.conversationId);

    const contact = await getContact(onWhatsApp.message.sender.id);
    expect(contact.status).toBe(200);
    expect(contact.body.phone).toBe(phone.phone);
    expect(contact.body.handles).toEqual(
      expect.arrayContaining([
        { channel: 'whatsapp', handle: phone.whatsapp },
        { channel: 'sms', handle: phone.sms },
      ]),
    );
    // The phone that links them is the contact's `phone`; every handle names one of the contract's channels.
    expect(contact.body.handles.map((h: { channel: string }) => h.channel).every(isChannel)).toBe(true);
    const conversations = contact.body.conversations as { id: string; channel: string; window: { state: string } }[];
    expect(conversations.map((c) => c.id).sort()).toEqual([onWhatsApp.conversationId, bySms.conversationId].sort());
    expect(conversations.every((c) => c.window.state === 'open')).toBe(true);
  });

  it('links a web visitor who gives an email to the contact that has it', async () => {
    const email = `vera-${crypto.randomUUID()}@example.com`;
    const laptop = await visitorWrites(email, 'from my laptop');
    const phone = await visitorWrites(email.toUpperCase(), 'from my phone, new session');
    expect(phone.contactId).toBe(laptop.contactId);
    const contact = await getContact(laptop.contactId);
    expect(contact.body.email).toBe(email);
    expect(contact.body.handles).toEqual(expect.arrayContaining([{ channel: 'email', handle: email }]));
    expect(contact.body.conversations.map((c: { id: string }) => c.id)).toEqual(
      expect.arrayContaining([laptop.conversationId, phone.conversationId]),
    );
  });

  it('with identity verification on, links a web visitor by email only when the website vouches for it', async () => {
    expect((await verification(true)).status).toBe(200);
    try {
      const email = `ivy-${crypto.randomUUID()}@example.com`;
      // The website's backend signs its signed-in user's email with the widget identity key.
      const hash = identityHashOf(email, 'dev-widget-identity-secret');
      const signedIn = await visitorWrites(email, 'signed in on the website', hash);
      // Anyone can type the same address into the pre-chat form: kept as a detail, linked to nobody.
      const impostor = await visitorWrites(email, 'it is me, really');
      expect(impostor.contactId).not.toBe(signedIn.contactId);
      expect((await getContact(impostor.contactId)).body).toMatchObject({ email, handles: [{ channel: 'web', handle: expect.any(String) }] });
      const again = await visitorWrites(email.toUpperCase(), 'signed in on my phone', hash);
      expect(again.contactId).toBe(signedIn.contactId);
      // The hash vouches for the email alone: a phone typed beside it links to nobody's history.
      const phone = phoneHandles();
      const owner = await write('whatsapp', phone.whatsapp, 'the phone is mine');
      const otherEmail = `ian-${crypto.randomUUID()}@example.com`;
      const withPhone = await visitorWithProfileWrites({ email: otherEmail, identityHash: identityHashOf(otherEmail, 'dev-widget-identity-secret'), phone: phone.phone }, 'and my phone');
      expect(withPhone.contactId).not.toBe(owner.message.sender.id);
      expect((await getContact(owner.message.sender.id)).body.handles).toEqual([{ channel: 'whatsapp', handle: phone.whatsapp }]);
      // A hash that does not match is refused, not quietly ignored.
      const forged = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { email, identityHash: identityHashOf(email, 'a guess') } });
      expect(forged.status).toBe(401);
      expect(forged.body.error.code).toBe('invalid_identity_hash');
    } finally {
      expect((await verification(false)).status).toBe(200);
    }
  });

  it('with identity verification on, takes the hash of an address as the website writes it, and vouches for a visitor who signs in after chatting anonymously', async () => {
    expect((await verification(true)).status).toBe(200);
    try {
      const sign = (identifier: string) => identityHashOf(identifier, 'dev-widget-identity-secret');
      // A website keeps its users' addresses as they typed them, and signs them so.
      const written = `Mia.${crypto.randomUUID()}@Example.COM`;
      const email = written.toLowerCase();
      const signedIn = await visitorWrites(written, 'signed in, address as my account has it', sign(written));
      const spaced = '+1 555 010 ' + String(Math.floor(Math.random() * 9000) + 1000);
      expect((await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { phone: spaced, identityHash: sign(spaced) } })).status).toBe(201);

      // Someone opens the chat with the pre-chat form, then signs in on the website before writing.
      const anonymous = await visitorSession(stack.httpUrl, { name: 'Mia', email });
      const wrongUser = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: anonymous.token, identityHash: sign(`other-${email}`) } });
      expect(wrongUser.status).toBe(201);
      const signedInLater = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: anonymous.token, email: written, identityHash: sign(written) } });
      expect(signedInLater.status).toBe(201);
      const ws = await WsClient.connect(stack.wsUrl, anonymous.token);
      sockets.push(ws);
      const clientMessageId = crypto.randomUUID();
      ws.send({ action: 'sendMessage', text: 'signed in now', clientMessageId });
      const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
      const seen = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId);
      expect(seen.message.sender.id).toBe(signedIn.contactId);

      // A visitor the website vouched for stays so when the form later adds a phone without a hash.
      const vouched = await visitorSession(stack.httpUrl, { email: written, identityHash: sign(written) });
      expect((await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: vouched.token, phone: '+15550109999' } })).status).toBe(201);
      const ws2 = await WsClient.connect(stack.wsUrl, vouched.token);
      sockets.push(ws2);
      const second = crypto.randomUUID();
      ws2.send({ action: 'sendMessage', text: 'from my other browser', clientMessageId: second });
      const ack2 = await ws2.waitFor((f) => f.type === 'ack' && f.clientMessageId === second);
      expect((await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack2.messageId)).message.sender.id).toBe(signedIn.contactId);
    } finally {
      expect((await verification(false)).status).toBe(200);
    }
  });

  it('with identity verification on, gives someone else signing in on the same browser a session of their own, not the kept one', async () => {
    expect((await verification(true)).status).toBe(200);
    try {
      const sign = (identifier: string) => identityHashOf(identifier, 'dev-widget-identity-secret');
      const first = `ana-${crypto.randomUUID()}@example.com`;
      const ana = await visitorSession(stack.httpUrl, { email: first, identityHash: sign(first) });
      const ws = await WsClient.connect(stack.wsUrl, ana.token);
      sockets.push(ws);
      const clientMessageId = crypto.randomUUID();
      ws.send({ action: 'sendMessage', text: 'my private order details', clientMessageId });
      await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);

      // Ben signs in on the shared computer; the widget still keeps Ana's token.
      const second = `ben-${crypto.randomUUID()}@example.com`;
      const forged = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: ana.token, email: second, identityHash: sign(`not-${second}`) } });
      expect(forged.status).toBe(401);
      const ben = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: ana.token, email: second, identityHash: sign(second) } });
      expect(ben.status).toBe(201);
      expect(ben.body.visitorId).not.toBe(ana.visitorId);
      expect(ben.body.token).not.toBe(ana.token);
      expect(ben.body.conversationId).toBeNull();
      const history = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: ben.body.token });
      expect(history.body.items).toEqual([]);

      // Ana's own session is as it was.
      const back = await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { token: ana.token, email: first, identityHash: sign(first) } });
      expect(back.body).toMatchObject({ visitorId: ana.visitorId, token: ana.token });
      expect((await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: ana.token })).body.items.map((m: { text: string }) => m.text)).toContain('my private order details');
    } finally {
      expect((await verification(false)).status).toBe(200);
    }
  });

  it('with identity verification on, links no address the website did not vouch for that reached the visitor later (one the chat captured)', async () => {
    expect((await verification(true)).status).toBe(200);
    try {
      const email = `cap-${crypto.randomUUID()}@example.com`;
      const { conversationId, contactId, ws } = await visitorWithProfileWrites({}, 'hello');
      // As the chat's capture leaves it when it stops after its first write: on the visitor, unflagged.
      await updateVisitor((await getConversation(conversationId, true))!.visitorId!, { email });

      ws.send({ action: 'sendMessage', text: 'still there?', clientMessageId: crypto.randomUUID() });

      await eventually(async () => ((await getConversation(conversationId, true))?.contact.email === email ? true : undefined));
      expect(await getHandle('email', email)).toBeUndefined();
      expect((await getContactItem(contactId))?.handles.some((h) => h.channel === 'email')).toBe(false);
    } finally {
      expect((await verification(false)).status).toBe(200);
    }
  });

  it('links a web visitor who gives a phone number to the WhatsApp contact with that number', async () => {
    const phone = phoneHandles();
    const onWhatsApp = await write('whatsapp', phone.whatsapp, 'Hi from WhatsApp');
    const onTheWebsite = await visitorWithProfileWrites({ phone: phone.phone }, 'now on the website');
    expect(onTheWebsite.contactId).toBe(onWhatsApp.message.sender.id);
    const contact = await getContact(onWhatsApp.message.sender.id);
    expect(contact.body.conversations.map((c: { channel: string }) => c.channel).sort()).toEqual(['web', 'whatsapp']);
    expect((await http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body: { phone: 'call me maybe' } })).status).toBe(400);
  });

  it('links a web visitor who writes their number with the trunk 0 in brackets (+44 (0)7700 …) to the WhatsApp contact with that number', async () => {
    const local = String(Math.floor(Math.random() * 1e6)).padStart(6, '0');
    const onWhatsApp = await write('whatsapp', `447700${local}`, 'Hi from WhatsApp');
    const written = `+44 (0)7700 ${local}`;
    const onTheWebsite = await visitorWithProfileWrites({ phone: written }, 'now on the website');
    expect(onTheWebsite.contactId).toBe(onWhatsApp.message.sender.id);
    const found = await http(stack.httpUrl, 'GET', `/v1/contacts?phone=${encodeURIComponent(written)}`, { token: agentJwt });
    expect(found.body.items.map((c: { id: string }) => c.id)).toEqual([onWhatsApp.message.sender.id]);
  });

  it('gives an unnamed SMS contact the name a web visitor with the same phone number types', async () => {
    // `name` is a DynamoDB reserved word: the write that fills it once failed, and the message with it.
    const phone = phoneHandles();
    const bySms = await write('sms', phone.sms, 'Hi by text');
    const onTheWebsite = await visitorWithProfileWrites({ phone: phone.phone }, 'and on the website');
    expect(onTheWebsite.contactId).toBe(bySms.message.sender.id);
    expect((await getContact(bySms.message.sender.id)).body).toMatchObject({ name: 'Vera', phone: phone.phone });
  });

  it('makes one customer of a Brazilian number written with its ninth digit and the WhatsApp id of an older account without it', async () => {
    // The customer's number as people write it today (SMS, a web form), and their WhatsApp id.
    const local = `8${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const bySms = await write('sms', `+55319${local}`, 'Oi, por SMS');
    const onWhatsApp = await write('whatsapp', `5531${local}`, 'Oi, pelo WhatsApp');
    expect(onWhatsApp.message.sender.id).toBe(bySms.message.sender.id);
    const onTheWebsite = await visitorWithProfileWrites({ phone: `+55 31 9${local.slice(0, 4)}-${local.slice(4)}` }, 'e pelo site');
    expect(onTheWebsite.contactId).toBe(bySms.message.sender.id);
    const found = await http(stack.httpUrl, 'GET', `/v1/contacts?phone=${encodeURIComponent(`+5531${local}`)}`, { token: agentJwt });
    expect(found.status).toBe(200);
    expect(found.body.items.map((c: { id: string }) => c.id)).toEqual([bySms.message.sender.id]);
    expect(found.body.items[0].conversations.map((c: { channel: string }) => c.channel).sort()).toEqual(['sms', 'web', 'whatsapp']);
    // Each number once: the phone as first written, WhatsApp's id in its own form.
    expect((await getContactItem(bySms.message.sender.id))!.handles).toEqual([
      { channel: 'sms', handle: `+55319${local}` },
      { channel: 'phone', handle: `+55319${local}` },
      { channel: 'whatsapp', handle: `5531${local}` },
    ]);
  });

  it('takes a Mexican WhatsApp id (52 1 …) and the same number by SMS (52 …) as one customer, and an Argentine one (54 9 …) too', async () => {
    const mx = String(Math.floor(Math.random() * 1e10)).padStart(10, '0');
    const onWhatsApp = await write('whatsapp', `521${mx}`, 'Hola desde WhatsApp');
    expect((await write('sms', `+52${mx}`, 'Hola por SMS')).message.sender.id).toBe(onWhatsApp.message.sender.id);
    const ar = String(Math.floor(Math.random() * 1e10)).padStart(10, '0');
    const bySms = await write('sms', `+54${ar}`, 'Hola por SMS');
    expect((await write('whatsapp', `549${ar}`, 'Hola desde WhatsApp')).message.sender.id).toBe(bySms.message.sender.id);
  });

  it('finds the contact a phone number or an email address links, as merges left it', async () => {
    const find = async (query: string) => http(stack.httpUrl, 'GET', `/v1/contacts?${query}`, { token: agentJwt });
    const ids = (res: { body: { items: { id: string }[] } }) => res.body.items.map((c) => c.id);
    const phone = phoneHandles();
    const onWhatsApp = await write('whatsapp', phone.whatsapp, 'Looking for my order');
    const contactId = onWhatsApp.message.sender.id as string;
    // Written as people type them: spaces, dashes, brackets; the email in any case.
    const typed = `+${phone.phone.slice(1, 2)} (${phone.phone.slice(2, 5)}) ${phone.phone.slice(5, 8)}-${phone.phone.slice(8)}`;
    const byPhone = await find(`phone=${encodeURIComponent(typed)}`);
    expect(byPhone.status).toBe(200);
    expect(ids(byPhone)).toEqual([contactId]);
    expect(byPhone.body.items[0].conversations.map((c: { id: string }) => c.id)).toEqual([onWhatsApp.conversationId]);
    // With the international prefix 00 where the + goes, as much of the world dials it.
    expect(ids(await find(`phone=00${phone.phone.slice(1)}`))).toEqual([contactId]);
    expect(ids(await find(`phone=${encodeURIComponent(`00 ${typed.slice(1)}`)}`))).toEqual([contactId]);

    const email = `finn-${crypto.randomUUID()}@example.com`;
    const visitor = await visitorWrites(email, 'hello from the website');
    expect(ids(await find(`email=${encodeURIComponent(email.toUpperCase())}`))).toEqual([visitor.contactId]);
    // After a merge both find the survivor.
    expect((await merge(contactId, visitor.contactId)).status).toBe(200);
    expect(ids(await find(`email=${encodeURIComponent(email)}`))).toEqual([contactId]);

    expect((await find(`email=${encodeURIComponent(`nobody-${crypto.randomUUID()}@example.com`)}`)).body).toEqual({ items: [] });
    for (const bad of ['', `email=${encodeURIComponent(email)}&phone=${encodeURIComponent(phone.phone)}`, 'phone=12', 'email=not-an-address']) {
      expect((await find(bad)).status, bad).toBe(400);
    }
  });

  it('answers 404 for an unknown contact', async () => {
    expect((await getContact('01NOSUCHCONTACT')).status).toBe(404);
  });
});

describe('admin contact merge', () => {
  it('moves handles and conversations to the surviving contact and keeps the history', async () => {
    const telegramHandle = newHandle('telegram');
    const messengerHandle = newHandle('messenger');
    const a = await write('telegram', telegramHandle, 'I am Ada on Telegram');
    const b = await write('messenger', messengerHandle, 'I am Ada on Messenger');
    const survivor = a.message.sender.id as string;
    const other = b.message.sender.id as string;
    expect(survivor).not.toBe(other);

    const byAgent = await merge(survivor, other, agentJwt);
    expect(byAgent.status).toBe(403);

    const merged = await merge(survivor, other);
    expect(merged.status).toBe(200);
    expect(merged.body.id).toBe(survivor);
    expect(merged.body.handles).toEqual(
      expect.arrayContaining([
        { channel: 'telegram', handle: telegramHandle },
        { channel: 'messenger', handle: messengerHandle },
      ]),
    );
    expect(merged.body.conversations.map((c: { id: string }) => c.id).sort()).toEqual([a.conversationId, b.conversationId].sort());
    const moved = merged.body.conversations.find((c: { id: string }) => c.id === b.conversationId);
    // Shown as the survivor, with the survivor's details, as its own conversations are.
    expect(moved.contact).toEqual(merged.body.conversations.find((c: { id: string }) => c.id === a.conversationId).contact);
    expect(moved.contact).toMatchObject({ id: survivor, name: merged.body.name });

    // The merged contact answers as the survivor; agents were told the conversation changed hands.
    expect((await getContact(other)).body.id).toBe(survivor);
    await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === b.conversationId && f.conversation.contact.id === survivor);

    // The customer writes again on Messenger: same conversation, now the survivor's, history intact.
    const again = await write('messenger', messengerHandle, 'Still me');
    expect(again.conversationId).toBe(b.conversationId);
    expect(again.message.sender.id).toBe(survivor);
    expect((await messages(b.conversationId)).filter((m) => m.direction === 'inbound').map((m) => m.text)).toEqual([
      'I am Ada on Messenger',
      'Still me',
    ]);

    // Asking again is harmless; merging into a merged contact, into itself or with nobody is refused.
    expect((await merge(survivor, other)).status).toBe(200);
    const third = await write('telegram', newHandle('telegram'), 'someone else');
    expect((await merge(other, third.message.sender.id)).status).toBe(409);
    expect((await merge(survivor, survivor)).status).toBe(400);
    expect((await merge(survivor, '01NOSUCHCONTACT')).status).toBe(404);
    const bad = await http(stack.httpUrl, 'POST', `/v1/contacts/${survivor}/merge`, { token: adminJwt, body: {} });
    expect(bad.status).toBe(400);
  });

  it('runs merges asked at once one after the other: none absorbs the other, no conversation is lost', async () => {
    const customers = await Promise.all([1, 2, 3, 4, 5].map((i) => write('telegram', newHandle('telegram'), `customer ${i}`)));
    const [a, b, c, d, e] = customers.map((f) => ({ contact: f.message.sender.id as string, conversation: f.conversationId as string }));
    // As a console does: asked again while another merge runs (409 merge_in_progress).
    const mergeWhenFree = async (into: string, other: string) => {
      for (;;) {
        const result = await merge(into, other);
        if (result.body?.error?.code !== 'merge_in_progress') return result;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    // A into B and B into A at once; C into D while D goes into E
    const results = await Promise.all([mergeWhenFree(a!.contact, b!.contact), mergeWhenFree(b!.contact, a!.contact), mergeWhenFree(c!.contact, d!.contact), mergeWhenFree(d!.contact, e!.contact)]);
    expect(results.map((r) => r.status).filter((status) => status === 200).length).toBeGreaterThanOrEqual(2);
    for (const result of results) expect([200, 409]).toContain(result.status);
    expect((await getContact(a!.contact)).body.id).toBe((await getContact(b!.contact)).body.id);
    // Every conversation is listed by the contact its own record names, as that contact answers.
    for (const { conversation } of [a!, b!, c!, d!, e!]) {
      const owner = (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversation}`, { token: agentJwt })).body.contact.id as string;
      const view = (await getContact(owner)).body;
      expect(view.conversations.map((x: { id: string }) => x.id), `${conversation} in ${view.id}`).toContain(conversation);
    }
  });

  it('keeps a contact\'s further web visitors beside its item, not in it, and moves them all in a merge', async () => {
    // Prepare: three browser sessions typing one email (identity verification off), and the same customer on Telegram
    const email = `shared-${crypto.randomUUID()}@example.com`;
    const sessions = [];
    for (let i = 0; i < 3; i++) sessions.push(await visitorWrites(email, `session ${i}`));
    const contactId = sessions[0]!.contactId;
    expect(sessions.map((s) => s.contactId)).toEqual([contactId, contactId, contactId]);
    const visitors = await Promise.all(sessions.map(async (s) => (await getConversation(s.conversationId))!.handle));
    const telegram = await write('telegram', newHandle('telegram'), 'me again, on Telegram');
    const survivor = telegram.message.sender.id as string;

    // Assess: the stored contact lists only the visitor that created it; the API shows every visitor
    expect((await getContactItem(contactId, true))!.handles.filter((h) => h.channel === 'web')).toEqual([{ channel: 'web', handle: visitors[0] }]);
    const shown = (await getContact(contactId)).body.handles as { channel: string; handle: string }[];
    expect(shown.filter((h) => h.channel === 'web').map((h) => h.handle).sort()).toEqual([...visitors].sort());

    // Act: merge the web contact into the Telegram one
    const merged = await merge(survivor, contactId);
    expect(merged.status).toBe(200);

    // Assess: every visitor moved; the last session writes again as the survivor
    expect((merged.body.handles as { channel: string; handle: string }[]).filter((h) => h.channel === 'web').map((h) => h.handle).sort()).toEqual([...visitors].sort());
    const { ws } = sessions[2]!;
    const clientMessageId = crypto.randomUUID();
    ws.send({ action: 'sendMessage', text: 'after the merge', clientMessageId });
    const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
    expect(ack.conversationId).toBe(sessions[2]!.conversationId);
    const seen = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId);
    expect(seen.message.sender.id).toBe(survivor);
  });
});

describe('a contact merged away while a customer\'s message is being handled', () => {
  it('brings the profile a visitor gives meanwhile to the surviving contact, not the merged one', async () => {
    // Prepare: a web visitor's contact (the consumer has just read their conversation), and a Telegram contact
    const web = await visitorWithProfileWrites({}, 'hello from the website');
    const telegram = await write('telegram', newHandle('telegram'), 'hello from Telegram');
    const survivor = telegram.message.sender.id as string;
    const held = (await getConversation(web.conversationId, true))!;
    expect(held.contact.id).toBe(web.contactId);

    // Act: the admin merges the web contact away; then the visitor's later profile (an email given on a resumed session) is applied
    expect((await merge(survivor, web.contactId)).status).toBe(200);
    const email = `late-${crypto.randomUUID()}@example.com`;
    await updateVisitor(held.handle!, { email });
    await withVisitorProfile(held, (await getVisitor(held.handle!, true))!);

    // Assess: the address belongs to the survivor, listed there, and a later customer with it finds the survivor
    expect((await getHandle('email', email))?.contactId).toBe(survivor);
    expect((await getContactItem(survivor, true))!.handles).toContainEqual({ channel: 'email', handle: email });
    expect((await getContactItem(web.contactId, true))!.handles).not.toContainEqual({ channel: 'email', handle: email });
    const later = await visitorWrites(email, 'me again, from another browser');
    expect(later.contactId).toBe(survivor);
  });
});

type StoredItem = { pk?: string; sk?: string };

/**
 * Runs `act` with a merge of `merged` into `survivor` made right before the first write of an item
 * `at` accepts (a Put, alone or in a transaction): the moment a customer's message is between
 * finding its contact and writing what it links to it.
 */
async function mergingAt<T>(at: (item: StoredItem) => boolean, survivor: string, merged: string, act: () => Promise<T>): Promise<T> {
  const name = 'mergeMeanwhile';
  ddb().middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { Item?: StoredItem; TransactItems?: { Put?: { Item?: StoredItem } }[] };
      const items = [input.Item, ...(input.TransactItems ?? []).map((i) => i.Put?.Item)].filter((i): i is StoredItem => i !== undefined);
      if (items.some(at)) {
        ddb().middlewareStack.remove(name);
        expect((await merge(survivor, merged)).status).toBe(200);
      }
      return next(args);
    },
    { step: 'initialize', name },
  );
  try {
    return await act();
  } finally {
    ddb().middlewareStack.remove(name);
  }
}

/** The conversation names the survivor, which lists it beside `others`. */
async function expectSurvivorHas(survivor: string, conversationId: string, others: string[]): Promise<void> {
  expect((await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}`, { token: agentJwt })).body.contact.id).toBe(survivor);
  const view = (await getContact(survivor)).body;
  expect(view.conversations.map((c: { id: string }) => c.id)).toEqual(expect.arrayContaining([...others, conversationId]));
}

describe('a contact merged away in the moment a customer\'s message links to it', () => {
  it('links a new web visitor, and the conversation it opens, to the surviving contact', async () => {
    // Prepare: a contact with an email (its first visitor), and a Telegram contact it will be merged into
    const email = `linked-${crypto.randomUUID()}@example.com`;
    const first = await visitorWrites(email, 'first visit');
    const survivor = (await write('telegram', newHandle('telegram'), 'same person on Telegram')).message.sender.id as string;

    // Act: a second browser session with the same email writes; the merge lands as its visitor is linked
    const linksVisitor = (item: StoredItem) => item.pk === `CONTACT#${first.contactId}` && item.sk?.startsWith('VISITOR#') === true;
    const second = await mergingAt(linksVisitor, survivor, first.contactId, () => visitorWrites(email, 'second visit'));

    // Assess: the new visitor and its conversation are the survivor's
    expect(second.contactId).toBe(survivor);
    await expectSurvivorHas(survivor, second.conversationId, [first.conversationId]);
  });

  it('lists a new conversation under the surviving contact, and names that contact on it', async () => {
    // Prepare: a WhatsApp customer (their contact will be merged away), and a Telegram contact it goes into
    const phone = phoneHandles();
    const first = await write('whatsapp', phone.whatsapp, 'first, on WhatsApp');
    const merged = first.message.sender.id as string;
    const survivor = (await write('telegram', newHandle('telegram'), 'same person on Telegram')).message.sender.id as string;

    // Act: the same customer writes by SMS (the same phone: their contact, a new conversation); the merge lands as it is listed
    const listsConversation = (item: StoredItem) => item.pk === `CONTACT#${merged}` && item.sk?.startsWith('CONV#') === true && item.sk !== `CONV#${first.conversationId}`;
    const sms = await mergingAt(listsConversation, survivor, merged, () => write('sms', phone.sms, 'now by SMS'));

    // Assess: the new conversation is the survivor's, listed there
    await expectSurvivorHas(survivor, sms.conversationId, [first.conversationId]);
  });
});

describe('channel transfer', () => {
  it('continues a WhatsApp conversation by SMS with linking notes, and the customer’s SMS lands there', async () => {
    const phone = phoneHandles();
    const start = await write('whatsapp', phone.whatsapp, 'Can you text me instead?');
    const moved = await moveTo(start.conversationId, 'sms');
    expect(moved.status).toBe(201);
    expect(moved.body).toMatchObject({ channel: 'sms', status: 'open', contact: { id: start.message.sender.id }, window: { state: 'open' } });
    // The agent who moved it goes on with it.
    expect(moved.body.assigneeId).toBe('agent-ana');
    const smsConversation = moved.body.id as string;

    const notes = (await messages(smsConversation)).filter((m) => m.private);
    expect(notes.map((m) => m.text)).toEqual([`Continued from the whatsapp conversation ${start.conversationId}.`]);
    expect((await messages(start.conversationId)).filter((m) => m.private).map((m) => m.text)).toEqual([
      `Continued on sms in conversation ${smsConversation}.`,
    ]);

    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${smsConversation}/messages`, {
      token: agentJwt,
      body: { text: 'Texting you now' },
    });
    expect(reply.status).toBe(202);
    await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === reply.body.message.id && f.message.status === 'sent');
    const outbox = await http(stack.httpUrl, 'GET', '/local/outbox?channel=sms');
    const sent = outbox.body.items.find((i: { body: { Body?: string } }) => i.body.Body === 'Texting you now');
    expect(sent.body).toMatchObject({ To: phone.sms, Body: 'Texting you now' });

    const answer = await write('sms', phone.sms, 'Got it, thanks');
    expect(answer.conversationId).toBe(smsConversation);
    expect((await moveTo(start.conversationId, 'sms')).body.id).toBe(smsConversation);
    const back = await moveTo(smsConversation, 'whatsapp');
    expect(back.status).toBe(200);
    expect(back.body.id).toBe(start.conversationId);

    const contact = await getContact(start.message.sender.id);
    expect(contact.body.conversations.map((c: { id: string }) => c.id).sort()).toEqual([start.conversationId, smsConversation].sort());
  });

  it('lands a Brazilian customer\'s WhatsApp answer from an id without the ninth digit in the conversation moved to WhatsApp by their number with it', async () => {
    const local = `9${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const web = await visitorWithProfileWrites({ phone: `+55 21 9${local}` }, 'Pode me chamar no WhatsApp?');
    const moved = await moveTo(web.conversationId, 'whatsapp');
    expect(moved.status).toBe(201);
    const answer = await write('whatsapp', `5521${local}`, 'Oi, aqui no WhatsApp');
    expect(answer.conversationId).toBe(moved.body.id);
    expect(answer.message.sender.id).toBe(web.contactId);
  });

  it('texts a Brazilian customer whose WhatsApp id lacks the ninth digit at their number with it, and takes their SMS answer there', async () => {
    const local = `8${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const start = await write('whatsapp', `5531${local}`, 'Pode me mandar SMS?');
    const moved = await moveTo(start.conversationId, 'sms');
    expect(moved.status).toBe(201);
    const text = `Mandando SMS ${local}`;
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${moved.body.id}/messages`, { token: agentJwt, body: { text } });
    expect(reply.status).toBe(202);
    await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === reply.body.message.id && f.message.status === 'sent');
    const sent = (await http(stack.httpUrl, 'GET', '/local/outbox?channel=sms')).body.items.find((i: { body: { Body?: string } }) => i.body.Body === text);
    expect(sent.body.To).toBe(`+55319${local}`);
    expect((await write('sms', `+55319${local}`, 'Recebi')).conversationId).toBe(moved.body.id);
  });

  it('texts a Mexican customer at their number without the 1 their WhatsApp id carries, and takes their SMS answer there', async () => {
    const local = `55${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
    const start = await write('whatsapp', `521${local}`, '¿Me pueden mandar un SMS?');
    const moved = await moveTo(start.conversationId, 'sms');
    expect(moved.status).toBe(201);
    const text = `Le mandamos SMS ${local}`;
    const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${moved.body.id}/messages`, { token: agentJwt, body: { text } });
    expect(reply.status).toBe(202);
    await agent.waitFor((f) => f.type === 'message.updated' && f.message.id === reply.body.message.id && f.message.status === 'sent');
    const sent = (await http(stack.httpUrl, 'GET', '/local/outbox?channel=sms')).body.items.find((i: { body: { Body?: string } }) => i.body.Body === text);
    expect(sent.body.To).toBe(`+52${local}`);
    expect((await write('sms', `+52${local}`, 'Recibido')).conversationId).toBe(moved.body.id);
  });

  it('keeps one conversation per channel when transfers and the customer’s first message there come at once', async () => {
    // Three transfers at once (a double click, two agents): one SMS conversation, which each names
    const phone = phoneHandles();
    const start = await write('whatsapp', phone.whatsapp, 'Can you text me?');
    const moves = await Promise.all([1, 2, 3].map(() => moveTo(start.conversationId, 'sms')));
    expect(moves.map((m) => m.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(moves.map((m) => m.body.id)).size).toBe(1);
    const smsConversations = async (contactId: string) =>
      (await getContact(contactId)).body.conversations.filter((c: { channel: string }) => c.channel === 'sms') as { id: string }[];
    expect(await smsConversations(start.message.sender.id)).toHaveLength(1);

    // A transfer beside the customer's first SMS: the SMS lands in the conversation it answers
    const other = phoneHandles();
    const second = await write('whatsapp', other.whatsapp, 'Or text me');
    const [move, answer] = await Promise.all([moveTo(second.conversationId, 'sms'), write('sms', other.sms, 'texting you first')]);
    expect(move.body.id).toBe(answer.conversationId);
    expect(await smsConversations(second.message.sender.id)).toHaveLength(1);
  });

  it('does not greet the customer again on the channel an agent moved their conversation to', async () => {
    // Prepare: a WhatsApp customer, greeted by the autoresponder, asks to be texted
    const phone = phoneHandles();
    const start = await write('whatsapp', phone.whatsapp, 'Can you text me?');
    const botTexts = async (id: string) => (await messages(id)).filter((m) => m.direction === 'outbound' && !m.private).map((m) => m.text);
    expect(await eventually(async () => ((await botTexts(start.conversationId)).length === 1 ? true : undefined))).toBe(true);
    const moved = await moveTo(start.conversationId, 'sms');
    expect(moved.status).toBe(201);

    // Act: the customer texts before the agent does (twice: the second, in the same queue group, comes after the first's hooks)
    expect((await write('sms', phone.sms, 'Here I am')).conversationId).toBe(moved.body.id);
    await write('sms', phone.sms, 'Hello?');

    // Assess: the agent holding it answers; no second "thanks for getting in touch" for the same issue
    expect(await botTexts(moved.body.id)).toEqual([]);
  });

  it('gives the moved conversation to an agent who never opened the console, as when they take one', async () => {
    const phone = phoneHandles();
    const start = await write('whatsapp', phone.whatsapp, 'Text me please');
    const fresh = await agentToken(stack.httpUrl, 'agent-new', 'agent', 'Nia');
    const moved = await moveTo(start.conversationId, 'sms', fresh);
    expect(moved.status).toBe(201);
    expect(moved.body.assigneeId).toBe('agent-new');
  });

  it('refuses to continue on a phone that another contact holds (a visitor’s unvouched number)', async () => {
    const phone = phoneHandles();
    const owner = await write('sms', phone.sms, 'the number is mine');
    expect((await verification(true)).status).toBe(200);
    try {
      const impostor = await visitorWithProfileWrites({ phone: phone.phone }, 'call me on WhatsApp');
      expect(impostor.contactId).not.toBe(owner.message.sender.id);
      const moved = await moveTo(impostor.conversationId, 'whatsapp');
      expect(moved.status).toBe(409);
      expect(moved.body.error.code).toBe('handle_taken');
      // The owner's WhatsApp stays theirs.
      const later = await write('whatsapp', phone.whatsapp, 'now on WhatsApp');
      expect(later.message.sender.id).toBe(owner.message.sender.id);
    } finally {
      expect((await verification(false)).status).toBe(200);
    }
  });

  it('refuses a channel the customer cannot be reached on, the same channel, and bad input', async () => {
    const start = await write('messenger', newHandle('messenger'), 'hello');
    const telegram = await moveTo(start.conversationId, 'telegram');
    expect(telegram.status).toBe(422);
    expect(telegram.body.error.code).toBe('no_handle');
    expect((await moveTo(start.conversationId, 'messenger')).body.error.code).toBe('same_channel');
    expect((await moveTo(start.conversationId, 'fax')).status).toBe(400);
    expect((await moveTo('01NOSUCHCONVERSATION', 'sms')).status).toBe(404);
  });
});

describe('a handle claimed by another message between the read and the claim', () => {
  it('answers with the contact and conversation that claimed it, not the contact this attempt made', async () => {
    // Prepare: the other message (the same WhatsApp customer by their BSUID, in another lane) claimed it first
    const handle = `US.${Date.now()}${Math.floor(Math.random() * 1e6)}`;
    await claimHandle('whatsapp', handle, { contactId: 'contact-first', conversationId: 'conversation-first' });

    // Act: this attempt read no handle item, so it claims one with a contact of its own
    const owner = await findOrCreateContact('whatsapp', handle, { name: 'Kofi' }, 'conversation-second');

    // Assess
    expect(owner).toMatchObject({ contactId: 'contact-first', conversationId: 'conversation-first' });
    expect(await getHandle('whatsapp', handle)).toEqual({ contactId: 'contact-first', conversationId: 'conversation-first' });
  });
});

describe("two channels' first messages racing for one phone", () => {
  it("keeps the WhatsApp handle and profile on the contact when the SMS message writes that contact first", async () => {
    // Prepare: the WhatsApp message has claimed the phone for its new contact; the SMS one, finding
    // that claim, writes the contact (as one whose writer died) just before the WhatsApp one does.
    const phone = phoneHandles();
    const name = 'racesContactWrite';
    ddb().middlewareStack.add(
      (next) => async (args) => {
        const item = (args.input as { Item?: StoredItem }).Item as (StoredItem & { handles?: { channel: string; handle: string }[] }) | undefined;
        if (item?.sk === 'CONTACT' && item.handles?.some((h) => h.channel === 'whatsapp' && h.handle === phone.whatsapp)) {
          ddb().middlewareStack.remove(name);
          await findOrCreateContact('sms', phone.sms, { phone: phone.sms }, `conversation-sms-${phone.whatsapp}`);
        }
        return next(args);
      },
      { step: 'initialize', name },
    );

    // Act
    let owner: Awaited<ReturnType<typeof findOrCreateContact>>;
    try {
      owner = await findOrCreateContact('whatsapp', phone.whatsapp, { name: 'Wanda Race', phone: phone.whatsapp }, `conversation-wa-${phone.whatsapp}`);
    } finally {
      ddb().middlewareStack.remove(name);
    }

    // Assess: one contact, listing both channels, with the WhatsApp profile's name
    expect((await getHandle('sms', phone.sms))?.contactId).toBe(owner.contactId);
    const contact = await getContactItem(owner.contactId, true);
    expect(contact?.handles.map((h) => h.channel).sort()).toEqual(['phone', 'sms', 'whatsapp']);
    expect(contact?.name).toBe('Wanda Race');
  });
});
