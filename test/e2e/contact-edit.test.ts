/**
 * Agents edit a contact's name, email and phone (PATCH /v1/contacts/{id}), end to end: the edit
 * reaches the contact's conversations and the agents' consoles, email and phone stay identities
 * that link one contact, and a provider's profile never undoes what an agent set.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import type { ProviderChannel } from '../../src/domain/types';
import { newHandle, phoneHandles, postWebhook, textWebhook } from './channels-support';
import { getContact as getContactItem, getHandle, getVisitor } from '../../src/store/contacts';
import { getErasure } from '../../src/store/erasure';
import { ddb } from '../../src/aws/clients';
import { keys } from '../../src/store/keys';

/** Armed, the next release of an old identity's handle item fails (the function dying right there). */
const releaseFails = vi.hoisted(() => ({ armed: false }));
vi.mock('../../src/store/contacts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/store/contacts')>();
  return {
    ...real,
    releaseHandle: async (...args: Parameters<typeof real.releaseHandle>) => {
      if (releaseFails.armed) {
        releaseFails.armed = false;
        throw new Error('simulated crash between the contact write and the release');
      }
      return real.releaseHandle(...args);
    },
  };
});

let stack: LocalStack;
let agent: WsClient;
let agentJwt: string;
let otherAgentJwt: string;
let adminJwt: string;
const sockets: WsClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  agentJwt = await agentToken(stack.httpUrl, 'agent-eli', 'agent', 'Eli');
  otherAgentJwt = await agentToken(stack.httpUrl, 'agent-fay', 'agent', 'Fay');
  adminJwt = await agentToken(stack.httpUrl, 'admin-gus', 'admin', 'Gus');
  agent = await WsClient.connect(stack.wsUrl, agentJwt);
  sockets.push(agent);
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

/** The customer writes on `channel` (on WhatsApp under `profileName`); returns the message as the agent saw it. */
async function write(channel: ProviderChannel, handle: string, text: string, profileName?: string): Promise<Frame> {
  const webhook = textWebhook(channel, handle, text);
  let body = webhook.body;
  if (profileName !== undefined) {
    const parsed = JSON.parse(body);
    parsed.entry[0].changes[0].value.contacts[0].profile.name = profileName;
    body = JSON.stringify(parsed);
  }
  expect((await postWebhook(stack, channel, body)).status).toBe(200);
  return agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, `${channel} message`);
}

const edit = (id: string, body: unknown, token = agentJwt) => http(stack.httpUrl, 'PATCH', `/v1/contacts/${id}`, { token, body });
const getContact = (id: string) => http(stack.httpUrl, 'GET', `/v1/contacts/${id}`, { token: agentJwt });
const getConversation = async (id: string) => (await http(stack.httpUrl, 'GET', `/v1/conversations/${id}`, { token: agentJwt })).body;
const findBy = async (query: string) => (await http(stack.httpUrl, 'GET', `/v1/contacts?${query}`, { token: agentJwt })).body.items as { id: string }[];
const randomEmail = () => `c${crypto.randomUUID().slice(0, 8)}@Example.com`;

describe('PATCH /v1/contacts/{id}', () => {
  it('renames the contact, its conversations and tells the agents with conversation.updated', async () => {
    const phone = phoneHandles();
    const onWhatsApp = await write('whatsapp', phone.whatsapp, 'Hello', 'Sheena');
    const bySms = await write('sms', phone.sms, 'Hello again');
    const contactId = onWhatsApp.message.sender.id;
    expect(bySms.message.sender.id).toBe(contactId);
    const seenBefore = agent.frames.length;

    const res = await edit(contactId, { name: '  Sheena Nelson  ' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: contactId, name: 'Sheena Nelson', phone: phone.phone });
    expect(res.body.conversations).toHaveLength(2);
    for (const c of res.body.conversations) expect(c.contact).toMatchObject({ id: contactId, name: 'Sheena Nelson' });

    expect((await getContact(contactId)).body.name).toBe('Sheena Nelson');
    for (const id of [onWhatsApp.conversationId, bySms.conversationId]) {
      expect((await getConversation(id)).contact.name).toBe('Sheena Nelson');
      const update = await agent.waitFor(
        (f) => f.type === 'conversation.updated' && f.conversation.id === id && f.conversation.contact.name === 'Sheena Nelson',
        10_000,
        `conversation.updated for ${id}`,
      );
      expect(agent.frames.indexOf(update)).toBeGreaterThanOrEqual(seenBefore);
    }
    // The inbox shows it too.
    const inbox = (await http(stack.httpUrl, 'GET', '/v1/conversations?status=open&limit=100', { token: agentJwt })).body.items as Frame[];
    expect(inbox.find((c) => c.id === onWhatsApp.conversationId)?.contact.name).toBe('Sheena Nelson');

    // The same name again changes no conversation: no new event.
    const count = agent.frames.filter((f) => f.type === 'conversation.updated').length;
    expect((await edit(contactId, { name: 'Sheena Nelson' })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(agent.frames.filter((f) => f.type === 'conversation.updated').length).toBe(count);
  });

  it("keeps the agent's name when a later WhatsApp profile says otherwise; a contact never edited still takes it", async () => {
    // Edited: known by SMS (no name), named by an agent, then writing on WhatsApp under another name.
    const edited = phoneHandles();
    const sms = await write('sms', edited.sms, 'Hi by text');
    const contactId = sms.message.sender.id;
    expect((await edit(contactId, { name: 'Ana Souza' })).status).toBe(200);
    const wa = await write('whatsapp', edited.whatsapp, 'Hi on WhatsApp', 'ana 🌸');
    expect(wa.message.sender.id).toBe(contactId);
    expect((await getContact(contactId)).body.name).toBe('Ana Souza');
    expect((await getConversation(wa.conversationId)).contact.name).toBe('Ana Souza');
    await write('whatsapp', edited.whatsapp, 'Still me', 'Ana WhatsApp');
    expect((await getContact(contactId)).body.name).toBe('Ana Souza');
    expect((await getConversation(wa.conversationId)).contact.name).toBe('Ana Souza');

    // Cleared by an agent: no profile fills it again.
    const cleared = phoneHandles();
    const clearedId = (await write('sms', cleared.sms, 'Hi')).message.sender.id;
    expect((await edit(clearedId, { name: null })).status).toBe(200);
    const clearedWa = await write('whatsapp', cleared.whatsapp, 'Hi there', 'Rita');
    expect((await getContact(clearedId)).body.name).toBeUndefined();
    expect((await getConversation(clearedWa.conversationId)).contact.name).toBeUndefined();

    // Never edited: the WhatsApp profile fills the name the SMS contact lacked, as before.
    const plain = phoneHandles();
    const plainId = (await write('sms', plain.sms, 'Hi')).message.sender.id;
    const plainWa = await write('whatsapp', plain.whatsapp, 'Hi there', 'Dora');
    expect(plainWa.message.sender.id).toBe(plainId);
    expect((await getContact(plainId)).body.name).toBe('Dora');
    expect((await getConversation(plainWa.conversationId)).contact.name).toBe('Dora');
  });

  it('moves the email identity: the new address finds the contact, the old one no longer, and the conversations carry it for the fallback', async () => {
    const first = await write('telegram', newHandle('telegram'), 'Hello');
    const contactId = first.message.sender.id;
    const [oldEmail, newEmail] = [randomEmail(), randomEmail()];
    const set = await edit(contactId, { email: oldEmail });
    expect(set.status).toBe(200);
    expect(set.body.email).toBe(oldEmail.toLowerCase());
    expect((await findBy(`email=${encodeURIComponent(oldEmail)}`)).map((c) => c.id)).toEqual([contactId]);

    const changed = await edit(contactId, { email: newEmail.toUpperCase() });
    expect(changed.status).toBe(200);
    expect(changed.body.email).toBe(newEmail.toLowerCase());
    expect((await findBy(`email=${encodeURIComponent(newEmail)}`)).map((c) => c.id)).toEqual([contactId]);
    expect(await findBy(`email=${encodeURIComponent(oldEmail)}`)).toEqual([]);
    expect(await getHandle('email', oldEmail.toLowerCase())).toBeUndefined();
    // What src/domain/email.ts customerEmail reads for the conversation's fallback.
    expect((await getConversation(first.conversationId)).contact.email).toBe(newEmail.toLowerCase());

    const removed = await edit(contactId, { email: null });
    expect(removed.status).toBe(200);
    expect(removed.body.email).toBeUndefined();
    expect(await findBy(`email=${encodeURIComponent(newEmail)}`)).toEqual([]);
    expect((await getConversation(first.conversationId)).contact.email).toBeUndefined();
  });

  it('finishes an old address release that died after the contact write when the PATCH is repeated, and an erasure removes it too', async () => {
    const crashOnce = async (contactId: string, from: string, to: string) => {
      expect((await edit(contactId, { email: from })).status).toBe(200);
      releaseFails.armed = true;
      expect((await edit(contactId, { email: to })).status).toBe(500);
      expect(releaseFails.armed).toBe(false);
      // The contact was written: the old address still finds it.
      expect((await getContact(contactId)).body.email).toBe(to.toLowerCase());
      expect((await findBy(`email=${encodeURIComponent(from)}`)).map((c) => c.id)).toEqual([contactId]);
    };
    const contactId = (await write('telegram', newHandle('telegram'), 'Hello')).message.sender.id;
    const [oldEmail, newEmail] = [randomEmail(), randomEmail()];
    await crashOnce(contactId, oldEmail, newEmail);

    // The same PATCH again finishes the release.
    const again = await edit(contactId, { email: newEmail });
    expect(again.status).toBe(200);
    expect(await findBy(`email=${encodeURIComponent(oldEmail)}`)).toEqual([]);
    expect(await getHandle('email', oldEmail.toLowerCase())).toBeUndefined();
    expect((await findBy(`email=${encodeURIComponent(newEmail)}`)).map((c) => c.id)).toEqual([contactId]);
    expect((await getContactItem(contactId, true))?.releasing).toBeUndefined();

    // Left as the crash left it, an erasure removes the old address's handle item as well.
    const erased = (await write('telegram', newHandle('telegram'), 'Hello')).message.sender.id;
    const [left, kept] = [randomEmail(), randomEmail()];
    await crashOnce(erased, left, kept);
    expect((await http(stack.httpUrl, 'DELETE', `/v1/contacts/${erased}`, { token: adminJwt })).status).toBe(202);
    await eventually(async () => (await getErasure(erased))?.status === 'erased', 20_000);
    expect(await getHandle('email', left.toLowerCase())).toBeUndefined();
  });

  it('claims an email equal to the current one that the contact did not link by, unless another contact holds it', async () => {
    const settings = (body: unknown) => http(stack.httpUrl, 'PUT', '/v1/settings', { token: adminJwt, body });
    const email = randomEmail();
    const held = randomEmail();
    const owner = (await write('telegram', newHandle('telegram'), 'I own it')).message.sender.id;
    expect((await edit(owner, { email: held })).status).toBe(200);
    // With identity verification on, an unvouched visitor's addresses are details that link nothing.
    expect((await settings({ widget: { identityVerification: true } })).status).toBe(200);
    const visitors: string[] = [];
    try {
      for (const address of [email, held]) {
        const session = await visitorSession(stack.httpUrl, { name: 'Una', email: address });
        const ws = await WsClient.connect(stack.wsUrl, session.token);
        sockets.push(ws);
        const clientMessageId = crypto.randomUUID();
        ws.send({ action: 'sendMessage', text: 'Hello', clientMessageId });
        const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
        visitors.push((await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId)).message.sender.id);
      }
    } finally {
      expect((await settings({ widget: { identityVerification: false } })).status).toBe(200);
    }
    const [unlinked, holdsNot] = visitors as [string, string];
    expect((await getContact(unlinked)).body.email).toBe(email.toLowerCase());
    expect(await findBy(`email=${encodeURIComponent(email)}`)).toEqual([]);

    // The agent sets the address the contact shows: it now links and finds the contact.
    const res = await edit(unlinked, { email });
    expect(res.status).toBe(200);
    expect((await findBy(`email=${encodeURIComponent(email)}`)).map((c) => c.id)).toEqual([unlinked]);
    expect((await getContactItem(unlinked, true))?.handles).toContainEqual({ channel: 'email', handle: email.toLowerCase() });

    // Another contact holds it: the value stays a detail, as before, and the holder keeps it.
    const kept = await edit(holdsNot, { email: held, name: 'Una Two' });
    expect(kept.status).toBe(200);
    expect(kept.body).toMatchObject({ name: 'Una Two', email: held.toLowerCase() });
    expect((await findBy(`email=${encodeURIComponent(held)}`)).map((c) => c.id)).toEqual([owner]);
  });

  it("changes the profile phone without touching the customer's WhatsApp handle or the number they write from", async () => {
    const phone = phoneHandles();
    const first = await write('whatsapp', phone.whatsapp, 'Hello', 'Pia');
    const contactId = first.message.sender.id;
    const other = phoneHandles();
    const res = await edit(contactId, { phone: `(${other.phone.slice(1, 2)}) ${other.phone.slice(2, 5)}-${other.phone.slice(5)}` });
    expect(res.status).toBe(200);
    expect(res.body.phone).toBe(other.phone);
    expect(res.body.handles).toContainEqual({ channel: 'whatsapp', handle: phone.whatsapp });
    expect((await findBy(`phone=${encodeURIComponent(other.phone)}`)).map((c) => c.id)).toEqual([contactId]);
    // Still the number they write from on WhatsApp: it keeps linking (an SMS from it is the same contact).
    expect((await findBy(`phone=${encodeURIComponent(phone.phone)}`)).map((c) => c.id)).toEqual([contactId]);
    const again = await write('whatsapp', phone.whatsapp, 'Me again', 'Pia');
    expect(again.conversationId).toBe(first.conversationId);
    expect((await getContact(contactId)).body.phone).toBe(other.phone);
  });

  it('answers 409 contact_exists naming the other contact when another holds the email or phone, and changes nothing', async () => {
    const owner = (await write('telegram', newHandle('telegram'), 'I own it')).message.sender.id;
    const email = randomEmail();
    expect((await edit(owner, { email })).status).toBe(200);
    const taker = await write('telegram', newHandle('telegram'), 'I want it');
    const takerId = taker.message.sender.id;
    const before = await getContactItem(takerId, true);
    const conversationBefore = await getConversation(taker.conversationId);

    const res = await edit(takerId, { name: 'Someone Else', email: ` ${email.toUpperCase()} ` });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('contact_exists');
    expect(res.body.error.message).toContain(owner);
    expect(await getContactItem(takerId, true)).toEqual(before);
    expect((await getConversation(taker.conversationId)).contact).toEqual(conversationBefore.contact);
    expect((await findBy(`email=${encodeURIComponent(email)}`)).map((c) => c.id)).toEqual([owner]);

    // A phone: the other contact's WhatsApp number; a new email claimed beside it is given back.
    const phone = phoneHandles();
    const phoneOwner = (await write('whatsapp', phone.whatsapp, 'Mine', 'Ola')).message.sender.id;
    const fresh = randomEmail();
    const both = await edit(takerId, { email: fresh, phone: phone.phone });
    expect(both.status).toBe(409);
    expect(both.body.error).toMatchObject({ code: 'contact_exists' });
    expect(both.body.error.message).toContain(phoneOwner);
    expect(await getContactItem(takerId, true)).toEqual(before);
    expect(await findBy(`email=${encodeURIComponent(fresh)}`)).toEqual([]);
  });

  it('takes an address another contact gives up between its claim and the read of who holds it', async () => {
    // Prepare: one contact holds the address; another agent will put it on a second contact.
    const owner = (await write('telegram', newHandle('telegram'), 'It was mine')).message.sender.id;
    const email = randomEmail().toLowerCase();
    expect((await edit(owner, { email })).status).toBe(200);
    const taker = (await write('telegram', newHandle('telegram'), 'It is mine now')).message.sender.id;

    // Act: the taker's claim is refused (the owner holds it), and the owner's agent moves it off
    // the owner before the taker reads who holds it.
    const name = 'releasedMeanwhile';
    const claim = keys.handle('email', email);
    let released: { status: number } | undefined;
    ddb().middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Item?: { pk?: string; sk?: string; contactId?: string } };
        try {
          return await next(args);
        } catch (error) {
          if (input.Item?.pk === claim.pk && input.Item.sk === claim.sk && input.Item.contactId === taker) {
            ddb().middlewareStack.remove(name);
            released = await edit(owner, { email: randomEmail() }, otherAgentJwt);
          }
          throw error;
        }
      },
      { step: 'initialize', name },
    );
    let res: Awaited<ReturnType<typeof edit>>;
    try {
      res = await edit(taker, { email });
    } finally {
      ddb().middlewareStack.remove(name);
    }

    // Assess: both edits land; the address is the taker's.
    expect(released?.status).toBe(200);
    expect(res.status, res.text).toBe(200);
    expect(res.body.email).toBe(email);
    expect((await findBy(`email=${encodeURIComponent(email)}`)).map((c) => c.id)).toEqual([taker]);
  });

  it('takes the addresses people have: plus tags, dots, letters of any script, subdomains', async () => {
    const first = await write('telegram', newHandle('telegram'), 'Hello');
    const contactId = first.message.sender.id;
    for (const email of [`ana.maria+orders-${contactId}@mail.example.co.uk`, `o'brien_${contactId}@example.ie`, `josé-${contactId}@exämple.de`]) {
      const res = await edit(contactId, { email });
      expect(res.status, email).toBe(200);
      expect(res.body.email).toBe(email.toLowerCase());
    }
  });

  it('refuses bad input with 400 and changes nothing', async () => {
    const first = await write('telegram', newHandle('telegram'), 'Hello');
    const contactId = first.message.sender.id;
    const before = await getContactItem(contactId, true);
    const bad: unknown[] = [
      {},
      { email: 'not-an-email' },
      { email: 'two@@example.com' },
      { phone: 'call me' },
      { phone: '12345' },
      { name: '   ' },
      { name: 'x'.repeat(256) },
      { nickname: 'Bo' },
      { name: 'Bo', handles: [] },
      { name: 42 },
      { email: '' },
      // Shows nothing: an empty name in every inbox.
      { name: '\u200b\u200b' },
      { name: ' \u2060 ' },
      // Not an address: a control character inside.
      { email: 'ana\u0000@example.com' },
      { email: 'ana@example.com\u0007' },
      // A list or a display name: the mail service would refuse it, or read other addresses in it.
      { email: 'ana,bo@example.com' },
      { email: 'ana;bo@example.com' },
      { email: 'Ana <ana@example.com>' },
      { email: '"ana"@example.com' },
      { email: 'ana@exa(mple).com' },
      { email: 'ana..bo@example.com' },
      { email: '.ana@example.com' },
      { email: 'ana@-example.com' },
      { email: 'ana@example..com' },
      // Words or an extension beside the digits: stripped, they made another number (+15550100000123).
      { phone: '+1 555 010 0000 ext 123' },
      { phone: 'call me on 555 010 0000' },
    ];
    for (const body of bad) {
      const res = await edit(contactId, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    }
    const notJson = await http(stack.httpUrl, 'PATCH', `/v1/contacts/${contactId}`, { token: agentJwt, raw: '{name', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    expect(await getContactItem(contactId, true)).toEqual(before);
  });

  it('answers 404 for an unknown contact and 401 for a visitor token', async () => {
    const unknown = await edit('01HZZZZZZZZZZZZZZZZZZZZZZZ', { name: 'Nobody' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');

    const first = await write('telegram', newHandle('telegram'), 'Hello');
    const visitor = await visitorSession(stack.httpUrl, { name: 'Vic' });
    const forged = await edit(first.message.sender.id, { name: 'Hacked' }, visitor.token);
    expect(forged.status).toBe(401);
    expect((await getContact(first.message.sender.id)).body.name).not.toBe('Hacked');
  });

  it('edits the surviving contact when given a merged one, as GET shows it', async () => {
    const survivor = (await write('telegram', newHandle('telegram'), 'Survivor')).message.sender.id;
    const merged = (await write('telegram', newHandle('telegram'), 'Merged away')).message.sender.id;
    expect((await http(stack.httpUrl, 'POST', `/v1/contacts/${survivor}/merge`, { token: adminJwt, body: { otherContactId: merged } })).status).toBe(200);
    const res = await edit(merged, { name: 'Both Of Us' });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(survivor);
    expect((await getContact(survivor)).body.name).toBe('Both Of Us');
    expect((await getContactItem(merged, true))?.name).not.toBe('Both Of Us');
  });

  it("shows what a merge filled in on the survivor's own conversations too, with conversation.updated", async () => {
    // The survivor is known by SMS (no name); the other wrote on WhatsApp under a name, from another number.
    const survivorSms = await write('sms', phoneHandles().sms, 'Hi by text');
    const survivor = survivorSms.message.sender.id;
    const other = await write('whatsapp', phoneHandles().whatsapp, 'Hi on WhatsApp', 'Mara Merged');
    expect((await getConversation(survivorSms.conversationId)).contact.name).toBeUndefined();
    const seenBefore = agent.frames.length;

    const merged = await http(stack.httpUrl, 'POST', `/v1/contacts/${survivor}/merge`, { token: adminJwt, body: { otherContactId: other.message.sender.id } });
    expect(merged.status).toBe(200);
    expect(merged.body.name).toBe('Mara Merged');

    for (const id of [survivorSms.conversationId, other.conversationId]) expect((await getConversation(id)).contact).toMatchObject({ id: survivor, name: 'Mara Merged' });
    const update = await agent.waitFor(
      (f) => f.type === 'conversation.updated' && f.conversation.id === survivorSms.conversationId && f.conversation.contact.name === 'Mara Merged',
      10_000,
      "conversation.updated of the survivor's conversation",
    );
    expect(agent.frames.indexOf(update)).toBeGreaterThanOrEqual(seenBefore);
  });

  it('removes a cleared email from the web visitor too, so neither the widget nor the fallback brings it back', async () => {
    const email = randomEmail();
    const session = await visitorSession(stack.httpUrl, { name: 'Wes', email });
    const ws = await WsClient.connect(stack.wsUrl, session.token);
    sockets.push(ws);
    const send = async (text: string) => {
      const clientMessageId = crypto.randomUUID();
      ws.send({ action: 'sendMessage', text, clientMessageId });
      const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
      return agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId);
    };
    const first = await send('Hello');
    const contactId = first.message.sender.id;
    expect((await getConversation(first.conversationId)).contact.email).toBe(email.toLowerCase());

    expect((await edit(contactId, { email: null, name: null })).status).toBe(200);
    expect((await getVisitor(session.visitorId, true))?.email).toBeUndefined();
    await send('Me again');
    const conversation = await getConversation(first.conversationId);
    expect(conversation.contact.email).toBeUndefined();
    expect(conversation.contact.name).toBeUndefined();
    expect((await getContact(contactId)).body.email).toBeUndefined();
  });

  it("keeps a field an agent cleared empty on a web visitor's new conversation, also after the visitor's next message", async () => {
    const phone = phoneHandles();
    const contactId = (await write('sms', phone.sms, 'Hi')).message.sender.id;
    expect((await edit(contactId, { name: null })).status).toBe(200);
    // The visitor links by phone (identity verification off) and types a name the agent cleared.
    const session = await visitorSession(stack.httpUrl, { name: 'Typed Name', phone: phone.phone });
    const ws = await WsClient.connect(stack.wsUrl, session.token);
    sockets.push(ws);
    let conversationId = '';
    for (const text of ['Hello', 'Hello again']) {
      const clientMessageId = crypto.randomUUID();
      ws.send({ action: 'sendMessage', text, clientMessageId });
      const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
      const seen = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId);
      expect(seen.message.sender.id).toBe(contactId);
      conversationId = ack.conversationId;
    }
    expect((await getConversation(conversationId)).contact.name).toBeUndefined();
    expect((await getContact(contactId)).body.name).toBeUndefined();
  });

  it('lets two agents edit at once without losing either identity change half-way', async () => {
    const phone = phoneHandles();
    const first = await write('whatsapp', phone.whatsapp, 'Hello', 'Quinn');
    const contactId = first.message.sender.id;
    const [a, b] = [randomEmail().toLowerCase(), randomEmail().toLowerCase()];
    const results = await Promise.all([edit(contactId, { email: a, name: 'Quinn A' }), edit(contactId, { email: b, name: 'Quinn B' }, otherAgentJwt)]);
    for (const r of results) expect([200, 409]).toContain(r.status);
    expect(results.some((r) => r.status === 200)).toBe(true);

    const contact = (await getContact(contactId)).body;
    expect([a, b]).toContain(contact.email);
    // The one that stands links the contact; the other address links nobody.
    const loser = contact.email === a ? b : a;
    expect((await findBy(`email=${encodeURIComponent(contact.email)}`)).map((c) => c.id)).toEqual([contactId]);
    expect(await findBy(`email=${encodeURIComponent(loser)}`)).toEqual([]);
    // The conversation shows what the contact has, whichever copy finished last.
    await eventually(async () => {
      const c = await getConversation(first.conversationId);
      return c.contact.name === contact.name && c.contact.email === contact.email;
    });
  });
});

describe('PATCH /v1/contacts/{id} with the other form of the same number', () => {
  it('takes a Brazilian number with its ninth digit for the one the WhatsApp id gave without it: still one identity, found by either form', async () => {
    const local = `8${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const onWhatsApp = await write('whatsapp', `5531${local}`, 'Oi');
    const contactId = onWhatsApp.message.sender.id;

    const edited = await edit(contactId, { phone: `+55 31 9${local}` });
    expect(edited.status).toBe(200);
    expect(edited.body.phone).toBe(`+55319${local}`);

    // The number still links the contact, in either form, and the customer's SMS finds it.
    expect((await findBy(`phone=${encodeURIComponent(`+55319${local}`)}`)).map((c) => c.id)).toEqual([contactId]);
    expect((await findBy(`phone=${encodeURIComponent(`+5531${local}`)}`)).map((c) => c.id)).toEqual([contactId]);
    expect((await write('sms', `+55319${local}`, 'Oi por SMS')).message.sender.id).toBe(contactId);
    expect((await getContactItem(contactId))!.handles.filter((h) => h.channel === 'phone')).toHaveLength(1);
  });

  it('keeps the identity of a number a web visitor gave when an agent writes it in its other form (its one item is not released as the old one)', async () => {
    const local = `7${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const session = await visitorSession(stack.httpUrl, { name: 'Rui', phone: `+55 21 ${local}` });
    const ws = await WsClient.connect(stack.wsUrl, session.token);
    sockets.push(ws);
    const clientMessageId = crypto.randomUUID();
    ws.send({ action: 'sendMessage', text: 'Oi do site', clientMessageId });
    const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
    const contactId = (await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId)).message.sender.id;

    const edited = await edit(contactId, { phone: `+55219${local}` });
    expect(edited.status).toBe(200);
    for (const form of [`+55219${local}`, `+5521${local}`]) expect((await findBy(`phone=${encodeURIComponent(form)}`)).map((c) => c.id)).toEqual([contactId]);
    expect((await getContactItem(contactId))!.handles.filter((h) => h.channel === 'phone')).toEqual([{ channel: 'phone', handle: `+55219${local}` }]);
  });
});
