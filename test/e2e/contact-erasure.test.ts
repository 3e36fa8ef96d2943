/**
 * Erasing a customer on request (DELETE /v1/contacts/{id}), end to end on the local stack: a
 * customer on WhatsApp and on the web (email, a file each way, a closed episode, open assigned
 * conversations, pending timers, a note mentioning an agent) is erased by an admin; then nothing in the table names them but
 * the idempotency records README documents as left, their files are gone from the bucket, the
 * agent's load is back, no timer of theirs is pending, and the same phone writing again is a new
 * customer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { phoneHandles, postWebhook, smsWebhookUrl, textWebhook } from './channels-support';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { getAdapter } from '../../src/channels/registry';
import { DEV_CREDENTIALS } from '../../src/channels/credentials';
import { inboundGroupId } from '../../src/aws/queues';
import { signedRequest } from '../fixtures/sign';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';
import { getErasure, startErasure } from '../../src/store/erasure';
import { claimHandle, getHandle, putContact } from '../../src/store/contacts';
import { putMessage } from '../../src/store/messages';
import { autoAssign } from '../../src/domain/routing';
import { getConversation, listConversations } from '../../src/store/conversations';
import { ERASURE_PAGE, runErasureStep } from '../../src/domain/erasure';
import { newId } from '../../src/domain/ids';

const BUCKET = 'conversa-local-media';
const AGENT = 'er-ana';
const CUSTOMER = { name: 'Erin Erasmus', webName: 'Erin Web', email: `erin.${crypto.randomUUID().slice(0, 8)}@example.com` };
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.from(Array.from({ length: 64 }, (_, i) => i))]);

let stack: LocalStack;
let admin: string;
let agentJwt: string;
let agent: WsClient;
const sockets: WsClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  admin = await agentToken(stack.httpUrl, 'er-admin', 'admin', 'Ada');
  agentJwt = await agentToken(stack.httpUrl, AGENT, 'agent', 'Ana');
  // The admin only watches: every conversation goes to Ana.
  expect((await http(stack.httpUrl, 'PUT', '/v1/agents/er-admin', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } })).status).toBe(200);
  agent = await WsClient.connect(stack.wsUrl, agentJwt);
  sockets.push(agent);
  await eventually(async () => (await http(stack.httpUrl, 'GET', '/v1/agents', { token: admin })).body.items.some((a: { id: string; status: string }) => a.id === AGENT && a.status === 'online'));
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

const get = (path: string, token = admin) => http(stack.httpUrl, 'GET', path, { token });
const erase = (id: string, token = admin) => http(stack.httpUrl, 'DELETE', `/v1/contacts/${id}`, { token });
const load = async () => (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === AGENT).load as { live: number; async: number };

/** The customer writes on WhatsApp under their profile name; the message as the agent saw it. */
async function whatsappWrites(handle: string, text: string, name = CUSTOMER.name): Promise<Frame> {
  const webhook = textWebhook('whatsapp', handle, text);
  const body = JSON.parse(webhook.body);
  body.entry[0].changes[0].value.contacts[0].profile = { name };
  expect((await postWebhook(stack, 'whatsapp', JSON.stringify(body))).status).toBe(200);
  return agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, 'the WhatsApp message');
}

/** An upload ticket and the file PUT, as a console or the widget does it. */
async function upload(path: string, token: string): Promise<string> {
  const ticket = await http(stack.httpUrl, 'POST', path, { token, body: { contentType: 'image/png', size: PNG.length } });
  expect(ticket.status, ticket.text).toBe(201);
  const put = await fetch(ticket.body.url, { method: 'PUT', headers: ticket.body.headers, body: PNG });
  expect(put.status).toBe(200);
  return ticket.body.uploadId as string;
}

/**
 * Holds a contact's erasure lane with a job in flight (taken synchronously: no consumer takes it
 * first), so that the request's steps wait behind it as they would behind a slow one. Returns the
 * release.
 */
function holdErasureLane(contactId: string): () => void {
  const outbound = stack.aws.sqs.getQueue('conversa-outbound.fifo');
  const id = `hold-${contactId}-${crypto.randomUUID()}`;
  outbound.send({ body: JSON.stringify({ kind: 'eraseContact', conversationId: contactId, messageId: id }), groupId: `eraseContact#${contactId}`, deduplicationId: id });
  const taken = outbound.receiveNow({ maxMessages: 10, visibilityTimeoutSeconds: 120 });
  const hold = taken.find((m) => m.attributes.MessageGroupId === `eraseContact#${contactId}`)!;
  for (const other of taken) if (other !== hold) outbound.changeVisibility(other.receiptHandle, 0);
  expect(hold).toBeDefined();
  return () => outbound.delete(hold.receiptHandle);
}

type TeamMember = { id: string; load: { live: number; async: number }; openCount: number; unreadCount: number };
const ana = async (): Promise<TeamMember> => (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === AGENT);
const setAnaAsyncCapacity = async (asyncCapacity: number | null) =>
  expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${AGENT}`, { token: admin, body: { asyncCapacity } })).status).toBe(200);

async function scanTable(): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb().send(new ScanCommand({ TableName: config.tableName, ...(start ? { ExclusiveStartKey: start } : {}) }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

describe('erasing a customer', () => {
  it('removes every item, file, timer and slot of theirs, and the same phone writing again is a new customer', async () => {
    // Prepare: the customer on WhatsApp…
    const phone = phoneHandles();
    const first = await whatsappWrites(phone.whatsapp, 'Hi, my order 1234 is late');
    const contactId = first.message.sender.id as string;
    const whatsappId = first.conversationId as string;
    // …resolved more than 4 days ago, back since: a closed report episode, the conversation open and Ana's again.
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${whatsappId}/resolve`, { token: agentJwt })).status).toBe(200);
    await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.conversation(whatsappId),
        UpdateExpression: 'SET resolvedAt = :then',
        ExpressionAttributeValues: { ':then': new Date(Date.now() - 5 * 86_400_000).toISOString() },
      }),
    );
    await whatsappWrites(phone.whatsapp, 'Hello again, a new question');
    // …and on the web, with the same phone and an email: the same contact.
    const session = await visitorSession(stack.httpUrl, { name: CUSTOMER.webName, email: CUSTOMER.email, phone: phone.phone });
    const visitor = await WsClient.connect(stack.wsUrl, session.token);
    sockets.push(visitor);
    const visitorId = String(session.token).split('.')[0]!;
    const visitorFile = await upload('/v1/widget/uploads', session.token);
    const clientMessageId = crypto.randomUUID();
    visitor.send({ action: 'sendMessage', text: 'Here is my receipt', clientMessageId, attachments: [{ uploadId: visitorFile, name: 'receipt.png' }] });
    const ack = await visitor.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
    const webId = ack.conversationId as string;
    // Ana answers on both, with a file on WhatsApp.
    const agentFile = await upload('/v1/uploads', agentJwt);
    const replies = [
      await http(stack.httpUrl, 'POST', `/v1/conversations/${whatsappId}/messages`, { token: agentJwt, body: { text: 'Looking into it', attachments: [{ uploadId: agentFile, name: 'label.png' }] } }),
      await http(stack.httpUrl, 'POST', `/v1/conversations/${webId}/messages`, { token: agentJwt, body: { text: 'Thanks, got the receipt' } }),
    ];
    expect(replies.map((r) => r.status)).toEqual([202, 202]);
    await visitor.waitFor((f) => f.type === 'message.created' && f.message.text === 'Thanks, got the receipt', 10_000, 'the reply');
    // …and a note of hers mentions the admin: a mention item, in the admin's Mentions view.
    const mention = await http(stack.httpUrl, 'POST', `/v1/conversations/${webId}/messages`, { token: agentJwt, body: { text: 'Ada, a refund for Erin?', private: true, mentions: ['er-admin'] } });
    expect(mention.status).toBe(202);
    expect((await get('/v1/conversations?mentioned=me')).body.items.map((c: { id: string }) => c.id)).toEqual([webId]);
    expect((await scanTable()).filter((i) => i.pk === `CONV#${webId}` && String(i.sk).startsWith('MENTION#'))).toHaveLength(1);

    const contact = await get(`/v1/contacts/${contactId}`);
    expect(contact.status).toBe(200);
    expect(contact.body.conversations.map((c: { id: string }) => c.id).sort()).toEqual([whatsappId, webId].sort());
    for (const id of [whatsappId, webId]) expect(await eventually(async () => (await get(`/v1/conversations/${id}`)).body.assigneeId)).toBe(AGENT);
    expect(await load()).toEqual({ live: 1, async: 1 });
    const episodes = (await scanTable()).filter((i) => i.pk === `CONV#${whatsappId}` && String(i.sk).startsWith('EPISODE#'));
    expect(episodes).toHaveLength(1);
    const timersOf = () => stack.aws.scheduler.list().filter((s) => s.name.endsWith(whatsappId) || s.name.endsWith(webId));
    await eventually(() => timersOf().some((s) => s.name === `reengage-${whatsappId}`));
    const files = stack.aws.s3.listKeys(BUCKET).filter((key) => key.endsWith(visitorFile) || key.endsWith(agentFile));
    expect(files.filter((key) => key.startsWith('media/'))).toHaveLength(2);

    // An agent has corrected the customer's details: the new name and address are theirs too.
    const edited = { name: 'Erin E. Erasmus-Edit', email: `erin.work.${crypto.randomUUID().slice(0, 8)}@example.com` };
    expect((await http(stack.httpUrl, 'PATCH', `/v1/contacts/${contactId}`, { token: agentJwt, body: edited })).status).toBe(200);

    // Act: roles first, then the admin's request.
    expect((await erase(contactId, agentJwt)).status).toBe(403);
    expect((await erase(contactId, session.token)).status).toBe(401);
    const answer = await erase(contactId);

    // Assess: accepted, and the contact reads as gone at once.
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ contactId, status: 'erasing' });
    expect((await get(`/v1/contacts/${contactId}`)).status).toBe(404);
    for (const id of [whatsappId, webId]) expect((await get(`/v1/conversations/${id}`)).status).toBe(404);
    // Nor can an edit write the details back while the erasure runs.
    expect((await http(stack.httpUrl, 'PATCH', `/v1/contacts/${contactId}`, { token: agentJwt, body: { name: 'Erin again' } })).status).toBe(404);
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);

    // Nothing in the table names the customer but the idempotency records left to expire.
    const needles = [contactId, whatsappId, webId, visitorId, phone.whatsapp, phone.phone, CUSTOMER.email, CUSTOMER.name, CUSTOMER.webName, edited.name, edited.email];
    const naming = (await scanTable()).filter((item) => needles.some((n) => JSON.stringify(item).toLowerCase().includes(n.toLowerCase())));
    const left = naming.filter((item) => String(item.pk).startsWith('DEDUP#'));
    expect(naming.filter((item) => !left.includes(item)).map((i) => `${String(i.pk)} ${String(i.sk)}`)).toEqual([]);
    // The visitor's message id record is one of them: ids and a hash only, gone within 14 days.
    expect(left.length).toBeGreaterThan(0);
    for (const item of left) {
      expect(Object.keys(item).sort()).toEqual(['conversationId', 'expiresAt', 'messageId', 'pk', 'sk']);
      expect(Number(item.expiresAt)).toBeLessThanOrEqual(Date.now() / 1000 + 14 * 86_400 + 60);
      for (const words of [CUSTOMER.name, CUSTOMER.webName, CUSTOMER.email, phone.phone, 'receipt']) expect(JSON.stringify(item)).not.toContain(words);
    }
    // Their files are gone from the bucket, the sent copies and the uploads alike.
    expect(stack.aws.s3.listKeys(BUCKET).filter((key) => key.endsWith(visitorFile) || key.endsWith(agentFile))).toEqual([]);
    // For good: no earlier version or delete marker is left in the (versioned) bucket either.
    expect(stack.aws.s3.listVersions(BUCKET).filter((v) => v.key.endsWith(visitorFile) || v.key.endsWith(agentFile))).toEqual([]);
    // Ana's slots are free, no timer of theirs is pending, and the agents were told.
    expect(await load()).toEqual({ live: 0, async: 0 });
    expect(timersOf().map((s) => s.name)).toEqual([]);
    for (const id of [whatsappId, webId]) {
      await agent.waitFor((f) => f.type === 'conversation.deleted' && f.conversationId === id, 5_000, `conversation.deleted of ${id}`);
      expect((await get(`/v1/conversations/${id}`)).status).toBe(404);
    }
    expect((await get(`/v1/contacts/${contactId}`)).status).toBe(404);
    expect((await get(`/v1/contacts?phone=${encodeURIComponent(phone.phone)}`)).body.items).toEqual([]);
    // The mention went with the conversation (the scan above finds no item under it): the view is empty.
    expect((await get('/v1/conversations?mentioned=me')).body.items).toEqual([]);
    // The visitor's socket was closed and their token opens nothing any more.
    await eventually(() => visitor.socket.readyState === visitor.socket.CLOSED);
    await expect(WsClient.connect(stack.wsUrl, session.token)).rejects.toMatchObject({ status: 401 });
    expect((await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token: session.token })).status).toBe(401);

    // Asked again: the same answer.
    const again = await erase(contactId);
    expect([again.status, again.body]).toEqual([202, { contactId, status: 'erasing' }]);

    // The same phone writing again is a new customer with a new conversation.
    const back = await whatsappWrites(phone.whatsapp, 'Hi, it is me again');
    expect(back.message.sender.id).not.toBe(contactId);
    expect(back.conversationId).not.toBe(whatsappId);
    expect((await getHandle('whatsapp', phone.whatsapp))?.contactId).toBe(back.message.sender.id);
  });

  it('erases a long history page by page, and a step delivered again changes nothing', async () => {
    // Prepare: Ana holds another customer's conversation beside this one's, whose history is
    // several pages long; a slot given back twice would show as one too few.
    const other = phoneHandles();
    await whatsappWrites(other.whatsapp, 'Someone else');
    const phone = phoneHandles();
    const first = await whatsappWrites(phone.whatsapp, 'A long story');
    const contactId = first.message.sender.id as string;
    const conversationId = first.conversationId as string;
    expect(await eventually(async () => (await get(`/v1/conversations/${conversationId}`)).body.assigneeId)).toBe(AGENT);
    const before = await load();
    const count = ERASURE_PAGE * 2 + 30;
    for (let i = 0; i < count; i++) {
      const id = newId();
      await putMessage({
        id,
        conversationId,
        direction: i % 2 ? 'outbound' : 'inbound',
        sender: i % 2 ? { type: 'agent', id: AGENT } : { type: 'contact', id: contactId },
        channel: 'whatsapp',
        text: `line ${i}`,
        attachments: [],
        status: 'sent',
        private: false,
        createdAt: new Date().toISOString(),
      });
    }
    const messagesLeft = async () => (await scanTable()).filter((i) => i.pk === `CONV#${conversationId}`).length;
    expect(await messagesLeft()).toBeGreaterThan(count);

    // Act: the admin's request, and its first step delivered twice more beside the queue's own.
    expect((await erase(contactId)).status).toBe(202);
    const redelivered = { kind: 'eraseContact' as const, conversationId: contactId, messageId: `erase-${contactId}` };
    await Promise.all([runErasureStep(redelivered), runErasureStep(redelivered)]);
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);

    // Assess: every page went, the slot was given back once, and a late step finds it done.
    expect(await messagesLeft()).toBe(0);
    expect(await load()).toEqual({ ...before, async: before.async - 1 });
    expect(await runErasureStep({ ...redelivered, round: 3 })).toBe('erased');
    expect(await load()).toEqual({ ...before, async: before.async - 1 });
  });

  it('also erases a contact merged into the erased one, which nothing on the survivor names', async () => {
    // Prepare: the same person on two numbers, merged by an admin.
    const [kept, merged] = [phoneHandles(), phoneHandles()];
    const survivor = (await whatsappWrites(kept.whatsapp, 'My first number', 'Bea Kept')).message.sender.id as string;
    const other = await whatsappWrites(merged.whatsapp, 'My second number', 'Bea Merged');
    const mergedId = other.message.sender.id as string;
    expect((await http(stack.httpUrl, 'POST', `/v1/contacts/${survivor}/merge`, { token: admin, body: { otherContactId: mergedId } })).status).toBe(200);

    // Act
    expect((await erase(survivor)).status).toBe(202);

    // Assess: both erasures end, and nothing names the merged contact, its number or its name.
    await eventually(async () => (await getErasure(survivor))?.status === 'erased' && (await getErasure(mergedId))?.status === 'erased', 20_000);
    const needles = [survivor, mergedId, other.conversationId as string, merged.whatsapp, merged.phone, 'Bea Merged', 'Bea Kept'];
    const naming = (await scanTable()).filter((item) => !String(item.pk).startsWith('DEDUP#') && needles.some((n) => JSON.stringify(item).includes(n)));
    expect(naming.map((i) => `${String(i.pk)} ${String(i.sk)}`)).toEqual([]);
    expect((await get(`/v1/contacts/${mergedId}`)).status).toBe(404);
  });

  it('also erases a merged contact that no message names (the merge recorded it on the survivor)', async () => {
    // Prepare: a contact known only by an email address (no message names it), merged into one on WhatsApp.
    const kept = phoneHandles();
    const survivor = (await whatsappWrites(kept.whatsapp, 'Hello', 'Cleo Kept')).message.sender.id as string;
    const mergedId = newId();
    const email = `cleo.${crypto.randomUUID().slice(0, 8)}@example.com`;
    await putContact({ id: mergedId, name: 'Cleo Addressonly', email, handles: [{ channel: 'email', handle: email }], createdAt: new Date().toISOString() });
    expect((await claimHandle('email', email, { contactId: mergedId })).contactId).toBe(mergedId);
    const merge = await http(stack.httpUrl, 'POST', `/v1/contacts/${survivor}/merge`, { token: admin, body: { otherContactId: mergedId } });
    expect(merge.status).toBe(200);
    expect(merge.body.email).toBe(email);

    // Act
    expect((await erase(survivor)).status).toBe(202);

    // Assess: nothing names the merged contact, its address or its name.
    await eventually(async () => (await getErasure(survivor))?.status === 'erased' && (await getErasure(mergedId))?.status === 'erased', 20_000);
    const needles = [survivor, mergedId, email, 'Cleo Addressonly', 'Cleo Kept', kept.whatsapp];
    const naming = (await scanTable()).filter((item) => !String(item.pk).startsWith('DEDUP#') && needles.some((n) => JSON.stringify(item).includes(n)));
    expect(naming.map((i) => `${String(i.pk)} ${String(i.sk)}`)).toEqual([]);
  });

  it('lets a message that races the erasure start a new customer or be erased with the old one, never failing', async () => {
    // Prepare
    const phone = phoneHandles();
    const first = await whatsappWrites(phone.whatsapp, 'Please forget me');
    const contactId = first.message.sender.id as string;

    // Act: the request and the customer's next message at once.
    const racing = textWebhook('whatsapp', phone.whatsapp, 'Actually, one more thing');
    const [answer, webhook] = await Promise.all([erase(contactId), postWebhook(stack, 'whatsapp', racing.body)]);

    // Assess: both accepted; the message was taken in (wherever it landed) and the erasure ended.
    expect([answer.status, webhook.status]).toEqual([202, 200]);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === racing.providerMessageId, 10_000, 'the racing message');
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);
    // Asked again, the erasure sweeps whatever the race left under the old contact.
    expect((await erase(contactId)).status).toBe(202);
    await eventually(async () => !(await scanTable()).some((item) => !String(item.pk).startsWith('DEDUP#') && JSON.stringify(item).includes(contactId)), 20_000);
    // Nothing failed on the way: no message or step waits for a retry on either queue.
    await eventually(() =>
      ['conversa-inbound.fifo', 'conversa-outbound.fifo'].every((name) => {
        const counts = stack.aws.sqs.getQueue(name).counts();
        return counts.visible + counts.inFlight === 0;
      }),
    );
    const handle = await getHandle('whatsapp', phone.whatsapp);
    if (handle) {
      expect(handle.contactId).not.toBe(contactId);
      expect((await get(`/v1/contacts/${handle.contactId}`)).status).toBe(200);
    }
  });

  it("stores nothing of a provider's copy of an erased message that comes after the erasure, and takes the customer's new message", async () => {
    // Prepare: a customer writes by SMS and on WhatsApp; both webhooks as the providers queued them.
    const phone = phoneHandles();
    const sms = textWebhook('sms', phone.sms, 'Old words by SMS');
    const whatsapp = textWebhook('whatsapp', phone.whatsapp, 'Old words on WhatsApp');
    const events = [
      ...getAdapter('sms').normalize(signedRequest('sms', sms.body, smsWebhookUrl(stack)), DEV_CREDENTIALS.sms),
      ...getAdapter('whatsapp').normalize(signedRequest('whatsapp', whatsapp.body), DEV_CREDENTIALS.whatsapp),
    ];
    expect((await postWebhook(stack, 'sms', sms.body)).status).toBe(200);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === sms.providerMessageId, 10_000, 'the SMS');
    expect((await postWebhook(stack, 'whatsapp', whatsapp.body)).status).toBe(200);
    const seen = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === whatsapp.providerMessageId, 10_000, 'the WhatsApp message');
    const contactId = seen.message.sender.id as string;
    expect((await erase(contactId)).status).toBe(202);
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);

    // Act: the providers' copies hours later (past SQS's deduplication window), then the customer writes anew.
    const sqs = new SQSClient({});
    for (const event of events) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: process.env.INBOUND_QUEUE_URL!,
          MessageBody: JSON.stringify({ ...event, receivedAt: new Date(Date.now() + 6 * 3_600_000).toISOString() }),
          MessageGroupId: inboundGroupId(event),
          MessageDeduplicationId: `later-${crypto.randomUUID()}`,
        }),
      );
    }
    sqs.destroy();
    const fresh = textWebhook('sms', phone.sms, 'New words after the erasure');
    expect((await postWebhook(stack, 'sms', fresh.body)).status).toBe(200);
    const again = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === fresh.providerMessageId, 10_000, 'the new SMS');
    await eventually(() => {
      const counts = stack.aws.sqs.getQueue('conversa-inbound.fifo').counts();
      return counts.visible + counts.inFlight === 0;
    });

    // Assess: a new customer with the new message only; the old words and the old contact nowhere.
    expect(again.message.sender.id).not.toBe(contactId);
    const contact = (await get(`/v1/contacts/${again.message.sender.id}`)).body;
    expect(contact.conversations.map((c: { channel: string }) => c.channel)).toEqual(['sms']);
    expect((await get(`/v1/conversations/${again.conversationId}/messages`)).body.items.filter((m: { direction: string }) => m.direction === 'inbound').map((m: { text: string }) => m.text)).toEqual(['New words after the erasure']);
    expect(await getHandle('whatsapp', phone.whatsapp)).toBeUndefined();
    const old = (await scanTable()).filter((item) => ['Old words', contactId].some((n) => JSON.stringify(item).includes(n)));
    expect(old.map((i) => `${String(i.pk)} ${String(i.sk)}`)).toEqual([]);
  });

  it('erases a contact asked for while an admin merges it into another, with the one it went into', async () => {
    // Prepare: a WhatsApp customer, and an SMS contact it is being merged into
    const phone = phoneHandles();
    const first = await whatsappWrites(phone.whatsapp, 'Words to forget');
    const merged = first.message.sender.id as string;
    const survivor = (await whatsappWrites(phoneHandles().whatsapp, 'The other contact')).message.sender.id as string;

    // Act: the erasure is asked for as the merge marks the contact merged (after the merge checked
    // for erasures); the merge goes on once the request has answered, or waits for the merge lock.
    const name = 'eraseWhileMerging';
    let erasing: Promise<{ status: number }> | undefined;
    let requestWaits: () => void = () => {};
    const waits = new Promise<void>((resolve) => (requestWaits = resolve));
    ddb().middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: { pk?: string; sk?: string }; UpdateExpression?: string };
        if (erasing && input.Key?.pk === keys.mergeLock().pk && input.Key.sk === keys.mergeLock().sk) requestWaits();
        if (!erasing && input.Key?.pk === `CONTACT#${merged}` && input.Key.sk === 'CONTACT' && input.UpdateExpression?.includes('mergedInto')) {
          erasing = erase(merged);
          await Promise.race([erasing, waits]);
        }
        return next(args);
      },
      { step: 'initialize', name },
    );
    let merge: { status: number };
    try {
      merge = await http(stack.httpUrl, 'POST', `/v1/contacts/${survivor}/merge`, { token: admin, body: { otherContactId: merged } });
      expect((await erasing!).status).toBe(202);
    } finally {
      ddb().middlewareStack.remove(name);
    }

    // Assess: the merge went through, and the erasure took the customer it merged them with too
    // (one person): nothing of the words, the number or either contact is left.
    expect(merge.status).toBe(200);
    await eventually(async () => (await getErasure(merged))?.status === 'erased' && (await getErasure(survivor))?.status === 'erased', 20_000);
    expect((await get(`/v1/contacts/${survivor}`)).status).toBe(404);
    const left = (await scanTable()).filter((item) => !String(item.pk).startsWith('DEDUP#') && ['Words to forget', phone.whatsapp, merged, survivor].some((n) => JSON.stringify(item).includes(n)));
    expect(left.map((i) => `${String(i.pk)} ${String(i.sk)}`)).toEqual([]);
  });

  it("answers 404 for a conversation of a contact whose erasure was asked for, before the step reaches it", async () => {
    const first = await whatsappWrites(phoneHandles().whatsapp, 'Hello');
    const conversationId = first.conversationId as string;
    expect((await get(`/v1/conversations/${conversationId}`)).status).toBe(200);
    expect((await get(`/v1/conversations/${conversationId}/messages`)).status).toBe(200);
    // The request's record, with no step run yet (as between the DELETE and the step reaching the conversation).
    expect(await startErasure(first.message.sender.id as string, 'er-admin', new Date().toISOString())).toBe(true);
    const gone = await get(`/v1/conversations/${conversationId}`);
    expect([gone.status, gone.body.error?.code]).toEqual([404, 'not_found']);
    expect((await get(`/v1/conversations/${conversationId}`, agentJwt)).status).toBe(404);
    expect((await get(`/v1/conversations/${conversationId}/messages`, agentJwt)).status).toBe(404);
    // The erasure asked for then runs as usual.
    expect((await erase(first.message.sender.id as string)).status).toBe(202);
    await eventually(async () => !(await scanTable()).some((item) => item.pk === `CONV#${conversationId}`), 20_000);
  });

  it("closes a conversation's files to agents once its contact's erasure was asked for, before the step marks it", async () => {
    // Prepare: a web visitor's message with a file, which an agent opens.
    const session = await visitorSession(stack.httpUrl, { name: 'Fay Files' });
    const visitor = await WsClient.connect(stack.wsUrl, session.token);
    sockets.push(visitor);
    const uploadId = await upload('/v1/widget/uploads', session.token);
    const clientMessageId = crypto.randomUUID();
    visitor.send({ action: 'sendMessage', text: 'My invoice', clientMessageId, attachments: [{ uploadId, name: 'invoice.png' }] });
    const ack = await visitor.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
    const file = `/v1/conversations/${String(ack.conversationId)}/messages/${String(ack.messageId)}/attachments/0`;
    // The redirect to the bucket, followed: the file itself.
    expect((await get(file, agentJwt)).status).toBe(200);
    const contactId = (await get(`/v1/conversations/${String(ack.conversationId)}`)).body.contact.id as string;

    // Act: the request's record alone, as for a conversation a racing message started (no mark on it).
    expect(await startErasure(contactId, 'er-admin', new Date().toISOString())).toBe(true);
    const answer = await get(file, agentJwt);

    // Assess: gone, as the conversation and its messages are.
    expect([answer.status, answer.body.error?.code]).toEqual([404, 'not_found']);
    expect((await erase(contactId)).status).toBe(202);
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);
  });

  it("refuses agents' replies and changes, and leaves it out of the inbox lists, from the request on", async () => {
    // Prepare: Ana's open WhatsApp conversation, listed in her inbox and everybody's.
    const first = await whatsappWrites(phoneHandles().whatsapp, 'Please erase me');
    const contactId = first.message.sender.id as string;
    const id = first.conversationId as string;
    expect(await eventually(async () => (await get(`/v1/conversations/${id}`)).body.assigneeId)).toBe(AGENT);
    const listed = async (query: string) => ((await get(`/v1/conversations?${query}`, agentJwt)).body.items as { id: string }[]).map((c) => c.id);
    expect(await listed('status=open')).toContain(id);
    expect(await listed('status=open&assignee=me')).toContain(id);
    // The erasure's lane held by a job in flight (synchronously: no consumer takes it first), so
    // the request's steps wait behind it as they would behind a slow one.
    const outbound = stack.aws.sqs.getQueue('conversa-outbound.fifo');
    outbound.send({ body: JSON.stringify({ kind: 'eraseContact', conversationId: contactId, messageId: `hold-${contactId}` }), groupId: `eraseContact#${contactId}`, deduplicationId: `hold-${contactId}` });
    const taken = outbound.receiveNow({ maxMessages: 10, visibilityTimeoutSeconds: 120 });
    const hold = taken.find((m) => m.attributes.MessageGroupId === `eraseContact#${contactId}`)!;
    for (const other of taken) if (other !== hold) outbound.changeVisibility(other.receiptHandle, 0);
    expect(hold).toBeDefined();
    expect((await erase(contactId)).status).toBe(202);
    const conversationBefore = await getConversation(id, true);
    const itemsOf = async () => (await scanTable()).filter((item) => item.pk === `CONV#${id}`).length;
    const [itemsBefore, queuedBefore] = [await itemsOf(), outbound.counts()];
    const lastMessage = (await scanTable()).find((item) => item.pk === `CONV#${id}` && String(item.sk).startsWith('MSG#'))!;
    const greeting = await http(stack.httpUrl, 'POST', '/v1/canned-responses', { token: admin, body: { shortCode: `hi-${id}`, text: 'Hi {{contact.name}}' } });
    expect(greeting.status).toBe(201);

    // Act: every change an agent can make, over HTTP and the WebSocket.
    const post = (path: string, body: unknown) => http(stack.httpUrl, 'POST', `/v1/conversations/${id}${path}`, { token: agentJwt, body });
    const answers = {
      reply: await post('/messages', { text: 'One more thing', clientMessageId: crypto.randomUUID() }),
      note: await post('/messages', { text: 'A note', private: true }),
      assign: await post('/assign', { agentId: null }),
      transfer: await post('/transfer', { note: 'For you' }),
      resolve: await post('/resolve', {}),
      reopen: await post('/reopen', {}),
      status: await post('/status', { status: 'pending' }),
      snooze: await post('/status', { status: 'snoozed', snoozedUntil: new Date(Date.now() + 3_600_000).toISOString() }),
      read: await post('/read', {}),
      channel: await post('/channel', { channel: 'sms' }),
      labels: await http(stack.httpUrl, 'PUT', `/v1/conversations/${id}/labels`, { token: agentJwt, body: { labels: [] } }),
      file: await get(`/v1/conversations/${id}/messages/${String(lastMessage.id)}/attachments/0`, agentJwt),
      // A canned response filled in for it would show the customer's name.
      canned: await get(`/v1/canned-responses/${String(greeting.body.id)}/render?conversationId=${id}`, agentJwt),
    };
    const frames: Record<string, Frame> = {};
    for (const [name, frame] of Object.entries({
      sendMessage: { action: 'sendMessage', conversationId: id, text: 'Over the socket' },
      typing: { action: 'typing', conversationId: id, state: 'on' },
      markRead: { action: 'markRead', conversationId: id, messageId: String(lastMessage.id) },
    })) {
      const clientMessageId = crypto.randomUUID();
      agent.send({ ...frame, clientMessageId });
      frames[name] = await agent.waitFor((f) => f.type === 'error' && f.clientMessageId === clientMessageId, 5_000, `the ${name} error`);
    }

    // Nor may an admin merge it with another customer, either way.
    const stranger = (await whatsappWrites(phoneHandles().whatsapp, 'Someone else', 'Stella Stranger')).message.sender.id as string;
    const merges = [
      await http(stack.httpUrl, 'POST', `/v1/contacts/${stranger}/merge`, { token: admin, body: { otherContactId: contactId } }),
      await http(stack.httpUrl, 'POST', `/v1/contacts/${contactId}/merge`, { token: admin, body: { otherContactId: stranger } }),
    ];
    // An admin's proactive message to it is refused as the contact reads (404), nothing queued.
    const proactive = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: admin, body: { contactId, text: 'A campaign' } });
    expect([proactive.status, proactive.body.error?.code]).toEqual([404, 'not_found']);
    await eventually(() => JSON.stringify(outbound.counts()) === JSON.stringify(queuedBefore));

    // Assess: each refused as the reads are, and nothing stored, changed or queued.
    for (const [name, answer] of Object.entries(answers)) expect([name, answer.status, answer.body.error?.code]).toEqual([name, 404, 'not_found']);
    for (const [name, frame] of Object.entries(frames)) expect([name, frame.code]).toEqual([name, 'not_found']);
    expect(merges.map((m) => [m.status, m.body.error?.code])).toEqual([
      [404, 'not_found'],
      [404, 'not_found'],
    ]);
    expect((await get(`/v1/contacts/${stranger}`)).body.conversations.map((c: { id: string }) => c.id)).not.toContain(id);
    expect(await getConversation(id, true)).toEqual(conversationBefore);
    expect(await itemsOf()).toBe(itemsBefore);
    expect(outbound.counts()).toEqual(queuedBefore);
    // Out of the inbox lists, though the erasure has not reached it yet.
    expect(conversationBefore).toMatchObject({ status: 'open', assigneeId: AGENT });
    expect(await listed('status=open')).not.toContain(id);
    expect(await listed('status=open&assignee=me')).not.toContain(id);

    // The erasure then runs as usual.
    outbound.delete(hold.receiptHandle);
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);
    expect(await itemsOf()).toBe(0);
  });

  it("leaves no copy of a customer's WhatsApp file whose copy lands after their erasure", async () => {
    // Prepare: WhatsApp answers the copy's lookup of the photo only once the erasure has ended
    // (other requests pass), so the copy read the message before the erasure and writes after it.
    const handle = phoneHandles().whatsapp;
    const fileId = stack.providers.addMedia('whatsapp', { contentType: 'image/png', bytes: PNG });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let lookedUp!: () => void;
    const lookup = new Promise<void>((resolve) => (lookedUp = resolve));
    const holdLookup = (): void =>
      stack.providers.holdNext('whatsapp', async (_body, answer) => {
        if (!(answer as { url?: string } | undefined)?.url) {
          holdLookup();
          return;
        }
        lookedUp();
        await released;
      });
    holdLookup();
    const body = JSON.parse(textWebhook('whatsapp', handle, 'unused').body);
    const message = body.entry[0].changes[0].value.messages[0];
    const providerMessageId = message.id as string;
    body.entry[0].changes[0].value.messages[0] = { from: handle, id: providerMessageId, timestamp: message.timestamp, type: 'image', image: { id: fileId, mime_type: 'image/png' } };
    expect((await postWebhook(stack, 'whatsapp', JSON.stringify(body))).status).toBe(200);
    const frame = await agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === providerMessageId, 10_000, 'the photo');
    const conversationId = frame.conversationId as string;
    await lookup;

    // Act: the customer erased while the copy waits, then the copy goes on.
    expect((await erase(frame.message.sender.id as string)).status).toBe(202);
    await eventually(async () => (await getErasure(frame.message.sender.id as string))?.status === 'erased', 20_000);
    release();

    // Assess: once the copy job is done, no version of the file is left in the bucket.
    await eventually(() => {
      const counts = stack.aws.sqs.getQueue('conversa-outbound.fifo').counts();
      return counts.visible + counts.inFlight === 0;
    }, 20_000);
    expect(stack.aws.s3.listVersions(BUCKET, `media/provider/${conversationId}/`)).toEqual([]);
  });

  it('hands no agent a waiting conversation whose erasure was asked for, from the queue or on a customer message', async () => {
    // Prepare: Ana full on asynchronous channels, so a new WhatsApp customer waits; then their erasure asked for, its steps held.
    await setAnaAsyncCapacity((await ana()).load.async);
    const phone = phoneHandles().whatsapp;
    const first = await whatsappWrites(phone, 'Anyone there?', 'Walt Waiting');
    const contactId = first.message.sender.id as string;
    const id = first.conversationId as string;
    const stale = (await getConversation(id, true))!;
    expect(stale.assigneeId ?? null).toBeNull();
    const release = holdErasureLane(contactId);
    expect((await erase(contactId)).status).toBe(202);

    // Act: room for everybody waiting (the change drains the queue), an assigner that read it before
    // the mark, then the customer writes again into it.
    await setAnaAsyncCapacity(200);
    expect(await autoAssign(stale)).toBeUndefined();
    const inbound = (await getConversation(id, true))!.lastInboundId;
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', phone, 'Hello again?').body)).status).toBe(200);
    await eventually(async () => (await getConversation(id, true))?.lastInboundId !== inbound);
    // Its routing runs after the message is stored: done once the inbound queue is empty.
    const inboundQueue = stack.aws.sqs.getQueue('conversa-inbound.fifo');
    await eventually(() => inboundQueue.counts().visible + inboundQueue.counts().inFlight === 0);

    // Assess: still waiting, and Ana's counter is the slots of what she really holds (the drain gave the others theirs).
    const after = await getConversation(id, true);
    expect(after).toMatchObject({ status: 'open', assigneeId: null });
    expect(after?.erasureRequestedAt).toBeDefined();
    const holds = (await listConversations({ status: 'open', assignee: AGENT, limit: 100, consistent: true })).items.filter((c) => c.channel !== 'web');
    expect((await ana()).load.async).toBe(holds.length);

    // The erasure then runs as usual.
    release();
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);
    await setAnaAsyncCapacity(null);
  });

  it("leaves a conversation whose erasure was asked for out of its agent's open and unread counts", async () => {
    // Prepare: an open conversation of Ana's, with an unread customer message.
    await setAnaAsyncCapacity(200);
    const first = await whatsappWrites(phoneHandles().whatsapp, 'Erase me later', 'Olga Open');
    const contactId = first.message.sender.id as string;
    const id = first.conversationId as string;
    const held = await eventually(async () => {
      const c = await getConversation(id, true);
      return c?.assigneeId === AGENT ? c : undefined;
    });
    expect(held.unreadCount).toBeGreaterThan(0);
    const before = await ana();
    const release = holdErasureLane(contactId);

    // Act
    expect((await erase(contactId)).status).toBe(202);

    // Assess: out of the counts, as out of her inbox; its slot stays counted in `load` until the step gives it back.
    const during = await ana();
    expect([during.openCount, during.unreadCount]).toEqual([before.openCount - 1, before.unreadCount - held.unreadCount]);
    expect(during.load.async).toBe(before.load.async);
    release();
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);
    expect(await eventually(async () => ((await ana()).load.async === before.load.async - 1 ? true : undefined))).toBe(true);
    await setAnaAsyncCapacity(null);
  });

  it('puts a conversation whose erasure was asked for back in the queue when the customer reopens it and its agent is full, offering it to nobody', async () => {
    // Prepare: Ana's WhatsApp conversation, resolved; Ben online with room; the erasure asked for, its steps held; Ana full
    await setAnaAsyncCapacity(200);
    const phone = phoneHandles().whatsapp;
    const first = await whatsappWrites(phone, 'Can you check my order?', 'Rita Reopen');
    const contactId = first.message.sender.id as string;
    const id = first.conversationId as string;
    await eventually(async () => ((await getConversation(id, true))?.assigneeId === AGENT ? true : undefined));
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/resolve`, { token: agentJwt })).status).toBe(200);
    const benJwt = await agentToken(stack.httpUrl, 'er-ben', 'agent', 'Ben');
    sockets.push(await WsClient.connect(stack.wsUrl, benJwt));
    await eventually(async () => ((await get('/v1/agents')).body.items.some((a: { id: string }) => a.id === 'er-ben') ? true : undefined));
    const release = holdErasureLane(contactId);
    expect((await erase(contactId)).status).toBe(202);
    await setAnaAsyncCapacity((await ana()).load.async);

    // Act: the customer writes again, which reopens it for Ana, who has no room
    const inbound = (await getConversation(id, true))!.lastInboundId;
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', phone, 'Still waiting').body)).status).toBe(200);
    await eventually(async () => (await getConversation(id, true))?.lastInboundId !== inbound);
    const inboundQueue = stack.aws.sqs.getQueue('conversa-inbound.fifo');
    await eventually(() => inboundQueue.counts().visible + inboundQueue.counts().inFlight === 0);

    // Assess: open and waiting, Ben not given it, and his counter what he holds
    expect(await getConversation(id, true)).toMatchObject({ status: 'open', assigneeId: null });
    const ben = (await get('/v1/agents')).body.items.find((a: { id: string }) => a.id === 'er-ben');
    const bens = (await listConversations({ status: 'open', assignee: 'er-ben', limit: 100, consistent: true })).items.filter((c) => c.channel !== 'web');
    expect(bens.map((c) => c.id)).not.toContain(id);
    expect(ben.load.async).toBe(bens.length);

    release();
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);
    await setAnaAsyncCapacity(null);
  });

  it('sends a campaign to the others and reports a contact whose erasure was asked for as erased, storing nothing for it', async () => {
    // Prepare: two customers on WhatsApp; the first one's erasure asked for, its steps held.
    const erased = await whatsappWrites(phoneHandles().whatsapp, 'Forget me', 'Fern Forgotten');
    const kept = await whatsappWrites(phoneHandles().whatsapp, 'Keep me posted', 'Kit Kept');
    const [erasedId, keptId] = [erased.message.sender.id as string, kept.message.sender.id as string];
    const release = holdErasureLane(erasedId);
    expect((await erase(erasedId)).status).toBe(202);
    const text = `Our summer sale ${crypto.randomUUID()}`;
    const campaign = (contactIds: string[]) => http(stack.httpUrl, 'POST', '/v1/proactive', { token: admin, body: { contactIds, text, channel: 'whatsapp' } });

    // Act
    const sent = await campaign([erasedId, keptId, erasedId]);
    const alone = await http(stack.httpUrl, 'POST', '/v1/proactive', { token: admin, body: { contactId: erasedId, text } });

    // Assess: queued for the other, the erased one answered back; alone, it reads as gone.
    expect(sent.status).toBe(202);
    expect(sent.body).toEqual({ batchId: expect.any(String), queued: 1, erasedContactIds: [erasedId] });
    expect([alone.status, alone.body.error?.code]).toEqual([404, 'not_found']);
    const stored = async (conversationId: string) => (await scanTable()).filter((item) => item.pk === `CONV#${conversationId}` && item.text === text);
    await eventually(async () => (await stored(kept.conversationId as string)).length === 1);
    expect(await stored(erased.conversationId as string)).toEqual([]);
    // Once the erasure has run, the same: not a typo, an erased contact (while its record lasts).
    release();
    await eventually(async () => (await getErasure(erasedId))?.status === 'erased', 20_000);
    const again = await campaign([erasedId, keptId]);
    expect([again.status, again.body.queued, again.body.erasedContactIds, again.body.unknownContactIds]).toEqual([202, 1, [erasedId], undefined]);
  });

  it('answers 404 for an unknown contact, and 403 to an agent whatever the id', async () => {
    const unknown = await erase('01JNOSUCHCONTACT0000000000');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'not_found' });
    expect((await erase('01JNOSUCHCONTACT0000000000', agentJwt)).status).toBe(403);
    expect((await erase('not%20an%20id')).status).toBe(404);
  });
});
