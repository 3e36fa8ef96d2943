/**
 * `npm run migrate:phone-keys` against DynamoDB Local: handle items written as a version before
 * the two forms of one number (and before a leading 00 was read as +) wrote them are re-keyed,
 * and the customer's next message, in either form, lands on their contact and conversation.
 * The old state is made by the current code, then aged: its handle item moved to the key the old
 * code gave it (legacyHandleKey), and a `00` number written back as the old normalizePhone kept it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, http, visitorSession, WsClient, type Frame } from '../support/clients';
import type { ProviderChannel } from '../../src/domain/types';
import { postWebhook, textWebhook } from './channels-support';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';
import { legacyHandleKey, maskNumber } from '../../scripts/migrate-phone-keys';

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

const digits = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 10)).join('');

/** The command as an admin runs it, against the stack's table (endpoint and credentials from the environment the stack set). */
async function runCommand(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await promisify(execFile)('node_modules/.bin/tsx', ['scripts/migrate-phone-keys.ts', '--table', config.tableName, ...args], { env: process.env });
    return { code: 0, out: stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: `${failed.stdout}${failed.stderr}` };
  }
}

/** With numbers printed whole, so that the lines name the very keys the tests compare. */
const migrate = (...args: string[]) => runCommand(['--show-numbers', ...args]);

/** The summary's counts, by name. */
function counts(out: string): Record<string, number> {
  const line = out.split('\n').find((l) => l.startsWith('summary:')) ?? '';
  const names = ['scanned', 're-keyed', 'removed as duplicates', 'conflicts', 'contacts fixed', 'changed during the run'];
  return Object.fromEntries(names.map((name) => [name, Number(new RegExp(`${name} (\\d+)`).exec(line)?.[1])]));
}

/**
 * The handle and contact items: what the command may write (the conversations' own writes, a
 * greeting's status, go on in the background and are none of its business).
 */
async function handlesAndContacts(): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await ddb().send(new ScanCommand({ TableName: config.tableName, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }));
    items.push(...(page.Items ?? []).filter((item) => String(item.pk).startsWith('HANDLE#') || item.sk === 'CONTACT'));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items.sort((a, b) => `${a.pk}|${a.sk}`.localeCompare(`${b.pk}|${b.sk}`));
}

const getItem = async (key: { pk: string; sk: string }) => (await ddb().send(new GetCommand({ TableName: config.tableName, Key: key, ConsistentRead: true }))).Item;

/**
 * The handle item as the old code wrote it: under the number as given (`keep`: a copy, as a run
 * that died between its put and its delete leaves it).
 */
async function age(channel: string, handle: string, keep = false): Promise<void> {
  const item = await getItem(keys.handle(channel, handle));
  if (!item) throw new Error(`no handle item for ${channel} ${handle}`);
  await ddb().send(new PutCommand({ TableName: config.tableName, Item: { ...item, ...legacyHandleKey(channel, handle) } }));
  if (!keep) await ddb().send(new DeleteCommand({ TableName: config.tableName, Key: keys.handle(channel, handle) }));
}

/** A WhatsApp customer of the old version: their id's handle and their phone identity (`+` and the id) as the old code keyed them. */
async function ageWhatsApp(id: string, keep = false): Promise<void> {
  await age('whatsapp', id, keep);
  await age('phone', `+${id}`, keep);
}

/**
 * A UK number `+44 <national>` a visitor gave, as the old normalizePhone kept `0044 <national>`:
 * `+0044…` in the identity item's key and in the contact's handles and phone. Returns that form.
 */
async function ageTypedWith00(contactId: string, national: string): Promise<string> {
  const oldForm = `+0044${national}`;
  const identity = await getItem(keys.handle('phone', `+44${national}`));
  await ddb().send(new PutCommand({ TableName: config.tableName, Item: { ...identity, ...legacyHandleKey('phone', oldForm) } }));
  await ddb().send(new DeleteCommand({ TableName: config.tableName, Key: keys.handle('phone', `+44${national}`) }));
  const contact = await getItem(keys.contact(contactId));
  await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.contact(contactId),
      UpdateExpression: 'SET handles = :handles, phone = :phone',
      ExpressionAttributeValues: {
        ':handles': (contact!.handles as { channel: string; handle: string }[]).map((h) => (h.channel === 'phone' ? { ...h, handle: oldForm } : h)),
        ':phone': oldForm,
      },
    }),
  );
  return oldForm;
}

/** The customer writes on `channel`; returns the stored message as the agent saw it. */
async function write(channel: ProviderChannel, handle: string, text: string): Promise<Frame> {
  const webhook = textWebhook(channel, handle, text);
  expect((await postWebhook(stack, channel, webhook.body)).status).toBe(200);
  return agent.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === webhook.providerMessageId, 10_000, `${channel} message`);
}

/** A web visitor with this phone writes; returns the contact its message names. */
async function visitorWrites(phone: string, text: string): Promise<string> {
  const session = await visitorSession(stack.httpUrl, { name: 'Vera', phone });
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text, clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
  const seen = await agent.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId);
  return seen.message.sender.id;
}

/** A WhatsApp id in the form an older account or the country's ids have, and the same number in its other form. */
const MOBILES = [
  { country: 'a Brazilian', oldForm: () => `5531${8}${digits(7)}`, otherForm: (id: string) => `55319${id.slice(4)}` },
  { country: 'a Mexican', oldForm: () => `521${55}${digits(8)}`, otherForm: (id: string) => `52${id.slice(3)}` },
  { country: 'an Argentine', oldForm: () => `549${11}${digits(8)}`, otherForm: (id: string) => `54${id.slice(3)}` },
];

describe('migrate:phone-keys', () => {
  it.each(MOBILES)('re-keys $country WhatsApp handle an older version keyed as given: the next message in either form lands in the conversation', async ({ oldForm, otherForm }) => {
    // Prepare: a customer of the old version, their handle item under the id as given.
    const id = oldForm();
    const first = await write('whatsapp', id, 'Olá');
    await ageWhatsApp(id);

    // Act
    const run = await migrate();

    // Assess
    expect(run.code).toBe(0);
    for (const handle of [id, otherForm(id)]) {
      const next = await write('whatsapp', handle, 'De novo');
      expect(next.conversationId).toBe(first.conversationId);
      expect(next.message.sender.id).toBe(first.message.sender.id);
    }
    for (const [channel, handle] of [['whatsapp', id], ['phone', `+${id}`]] as const) {
      expect(await getItem(legacyHandleKey(channel, handle))).toBeUndefined();
      expect(run.out).toContain(`re-keyed ${legacyHandleKey(channel, handle).pk} -> ${keys.handle(channel, handle).pk} (contact ${first.message.sender.id})`);
    }
  });

  it('re-keys a phone number typed with 00 that an older version kept as +00, and writes it as + on the contact', async () => {
    // Prepare: a visitor gave the number; the old normalizePhone kept its 00 after the +.
    const national = `207946${digits(4)}`;
    const contactId = await visitorWrites(`+44 ${national}`, 'Hello');
    const oldForm = await ageTypedWith00(contactId, national);

    // Act
    const run = await migrate();

    // Assess: found by the number as typed, and another visitor typing it is the same customer.
    expect(run.code).toBe(0);
    const found = await http(stack.httpUrl, 'GET', `/v1/contacts?phone=${encodeURIComponent(`0044 ${national}`)}`, { token: agentJwt });
    expect(found.body.items.map((c: { id: string }) => c.id)).toEqual([contactId]);
    expect(await visitorWrites(`0044 ${national}`, 'Hello again')).toBe(contactId);
    const fixed = await getItem(keys.contact(contactId));
    // The contact names the item it links by: an agent who clears the number unlinks it.
    expect((await http(stack.httpUrl, 'PATCH', `/v1/contacts/${contactId}`, { token: agentJwt, body: { phone: null } })).status).toBe(200);
    const cleared = await http(stack.httpUrl, 'GET', `/v1/contacts?phone=${encodeURIComponent(`+44${national}`)}`, { token: agentJwt });
    expect(cleared.body.items).toEqual([]);
    expect(fixed).toMatchObject({ phone: `+44${national}` });
    expect((fixed!.handles as { channel: string; handle: string }[]).filter((h) => h.channel === 'phone')).toEqual([{ channel: 'phone', handle: `+44${national}` }]);
    expect(run.out).toContain(`re-keyed ${legacyHandleKey('phone', oldForm).pk} -> ${keys.handle('phone', `+44${national}`).pk}`);
    expect(run.out).toContain(`fixed contact ${contactId}: phone ${oldForm} -> +44${national}`);
  });

  it('removes an old item whose number the same contact holds under the current key already (a run that died before its delete)', async () => {
    // Prepare
    const id = `5531${8}${digits(7)}`;
    const first = await write('whatsapp', id, 'Olá');
    await ageWhatsApp(id, true);
    const current = await getItem(keys.handle('whatsapp', id));

    // Act
    const run = await migrate();

    // Assess
    expect(run.code).toBe(0);
    expect(await getItem(legacyHandleKey('whatsapp', id))).toBeUndefined();
    expect(await getItem(keys.handle('whatsapp', id))).toEqual(current);
    expect(run.out).toContain(`removed ${legacyHandleKey('whatsapp', id).pk}: ${keys.handle('whatsapp', id).pk} is contact ${first.message.sender.id}'s already`);
  });

  it('lists a customer who already became two contacts as a conflict, changing neither, and removes the old item once an admin merged them', async () => {
    // Prepare: the old version's contact, then the same customer's message after the upgrade.
    const id = `5531${8}${digits(7)}`;
    const before = await write('whatsapp', id, 'Olá');
    await ageWhatsApp(id);
    const after = await write('whatsapp', `55319${id.slice(4)}`, 'Oi');
    const [oldContact, newContact] = [before.message.sender.id, after.message.sender.id];
    expect(newContact).not.toBe(oldContact);
    const [oldItem, newItem] = [await getItem(legacyHandleKey('whatsapp', id)), await getItem(keys.handle('whatsapp', id))];

    // Act
    const run = await migrate();

    // Assess: both contacts named, nothing changed.
    expect(run.code).toBe(0);
    expect(run.out).toContain(`conflict: ${legacyHandleKey('whatsapp', id).pk} is contact ${oldContact}'s, ${keys.handle('whatsapp', id).pk} is contact ${newContact}'s`);
    expect(run.out).toContain(`POST /v1/contacts/${newContact}/merge {"otherContactId":"${oldContact}"}`);
    expect(await getItem(legacyHandleKey('whatsapp', id))).toEqual(oldItem);
    expect(await getItem(keys.handle('whatsapp', id))).toEqual(newItem);

    // Act: the merge the output names, then the command again.
    expect((await http(stack.httpUrl, 'POST', `/v1/contacts/${newContact}/merge`, { token: adminJwt, body: { otherContactId: oldContact } })).status).toBe(200);
    const again = await migrate();

    // Assess
    expect(again.code).toBe(0);
    expect(await getItem(legacyHandleKey('whatsapp', id))).toBeUndefined();
    expect(again.out).toContain(`removed ${legacyHandleKey('whatsapp', id).pk}`);
    expect(again.out).not.toContain('conflict:');
  });

  it('lists a +00 number typed again since as a conflict, and after the merge leaves the survivor one phone in its current form', async () => {
    // Prepare: the old version's contact, then a visitor typing the number after the upgrade.
    const national = `207946${digits(4)}`;
    const oldContact = await visitorWrites(`+44 ${national}`, 'Hello');
    const oldForm = await ageTypedWith00(oldContact, national);
    const newContact = await visitorWrites(`0044 ${national}`, 'Hello again');
    expect(newContact).not.toBe(oldContact);

    // Act
    const run = await migrate();
    const merged = await http(stack.httpUrl, 'POST', `/v1/contacts/${newContact}/merge`, { token: adminJwt, body: { otherContactId: oldContact } });
    const again = await migrate();

    // Assess: the merge brought the +00 form to the survivor's list; the second run left one.
    expect(merged.status).toBe(200);
    expect(again.code).toBe(0);
    expect(await getItem(legacyHandleKey('phone', oldForm))).toBeUndefined();
    const survivor = await getItem(keys.contact(newContact));
    expect((survivor!.handles as { channel: string; handle: string }[]).filter((h) => h.channel === 'phone')).toEqual([{ channel: 'phone', handle: `+44${national}` }]);
    expect(survivor).toMatchObject({ phone: `+44${national}` });
    expect(run.out).toContain(`conflict: ${legacyHandleKey('phone', oldForm).pk} is contact ${oldContact}'s, ${keys.handle('phone', `+44${national}`).pk} is contact ${newContact}'s`);
    expect(again.out).toContain(`fixed contact ${newContact}: phone ${oldForm} -> +44${national}`);
  });

  it('prints numbers masked unless --show-numbers is given: two leading and four trailing digits, the contact whole', async () => {
    // Prepare
    const id = `5531${8}${digits(7)}`;
    const first = await write('whatsapp', id, 'Olá');
    await ageWhatsApp(id);

    // Act
    const run = await runCommand(['--dry-run']);

    // Assess: the keys' numbers show no more than their ends; a short code is nobody's.
    expect(run.code).toBe(0);
    const masked = `55${'*'.repeat(id.length - 6)}${id.slice(-4)}`;
    const current = keys.handle('whatsapp', id).pk.slice('HANDLE#whatsapp#'.length);
    expect(run.out).toContain(`would re-key HANDLE#whatsapp#${masked} -> HANDLE#whatsapp#${maskNumber(current)} (contact ${first.message.sender.id})`);
    expect(run.out).toContain(`would re-key HANDLE#phone#+${masked}`);
    expect(run.out).not.toContain(id.slice(2, -4));
    expect(run.out).not.toContain(current.slice(2, -4));
    expect(maskNumber('+4420794612345')).toBe('+44*******2345');
    expect(maskNumber('12345')).toBe('12345');
    expect(maskNumber('ACME')).toBe('ACME');
  });

  it('changes nothing on a second run', async () => {
    // Prepare: an old item, migrated once.
    const id = `5531${8}${digits(7)}`;
    await write('whatsapp', id, 'Olá');
    await ageWhatsApp(id);
    const first = await migrate();
    expect(first.out).toContain(`re-keyed ${legacyHandleKey('whatsapp', id).pk}`);
    const migrated = await handlesAndContacts();

    // Act
    const second = await migrate();

    // Assess
    expect(second.code).toBe(0);
    expect(counts(second.out)).toMatchObject({ 're-keyed': 0, 'removed as duplicates': 0, 'contacts fixed': 0, 'changed during the run': 0 });
    expect(await handlesAndContacts()).toEqual(migrated);
  });

  it('changes nothing on a dry run, and says what it would do', async () => {
    // Prepare
    const id = `5531${8}${digits(7)}`;
    const first = await write('whatsapp', id, 'Olá');
    await ageWhatsApp(id);
    const aged = await handlesAndContacts();

    // Act
    const dry = await migrate('--dry-run');

    // Assess
    expect(dry.code).toBe(0);
    expect(await handlesAndContacts()).toEqual(aged);
    expect(dry.out).toContain(`would re-key ${legacyHandleKey('whatsapp', id).pk} -> ${keys.handle('whatsapp', id).pk} (contact ${first.message.sender.id})`);
    expect(dry.out).toContain('summary: dry run, nothing written');
  });
});
