import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import type { Channel } from '../domain/types';
import { batchGetAll, deleteIf, putNew, queryAll, transactIf, updateIf, withoutKeys } from './items';
import { keys, sameHandle } from './keys';

export interface ContactRecord {
  id: string;
  name?: string;
  email?: string;
  phone?: string;
  handles: { channel: Channel | 'phone' | 'email'; handle: string }[];
  createdAt: string;
  /** Set when an admin merged this contact into another. */
  mergedInto?: string;
  /**
   * The profile fields an agent set or cleared (PATCH /v1/contacts/{id}): a provider's or a
   * visitor's profile no longer fills them, so the agent's edit is not undone.
   */
  edited?: ProfileField[];
  /** Counts the changes after creation: an agent's edit writes on condition of the one it read. */
  version?: number;
  /**
   * Identity handles an agent's edit dropped whose handle items may still link to the contact:
   * written with the edit, deleted after their items are; the next edit deletes what is left.
   */
  releasing?: Identity[];
}

export type Identity = { channel: 'phone' | 'email'; handle: string };

export type ProfileField = 'name' | 'email' | 'phone';

export interface HandleRecord {
  contactId: string;
  conversationId?: string;
  /**
   * The customer's other handle on the channel, linked to this one's conversation (a WhatsApp
   * number's BSUID; a Telegram group's new chat id after its upgrade to a supergroup).
   */
  linkedHandle?: string;
  /**
   * The customer's latest read watermark on the channel (Messenger's `read.watermark`: everything
   * the Page sent up to then is read), for an echo stored after it (src/domain/inbound.ts ingestEcho).
   */
  readUpTo?: string;
}

export interface VisitorRecord {
  id: string;
  tokenHash: string;
  name?: string;
  email?: string;
  phone?: string;
  contactId?: string;
  conversationId?: string;
  createdAt: string;
  /**
   * The email or phone the visitor gave was not vouched for by the website while identity
   * verification was on: it is kept as contact details but links to no other contact.
   */
  unverified?: boolean;
  /**
   * With identity verification on, the one of email and phone the website's hash signed: only it
   * links; the other is a contact detail. Absent (and not unverified): both link.
   */
  vouched?: 'email' | 'phone';
}

const strip = <T>(item: Record<string, unknown> | undefined): T | undefined => (item ? withoutKeys<T>(item) : undefined);

export async function getHandle(channel: string, handle: string): Promise<HandleRecord | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.handle(channel, handle), ConsistentRead: true }));
  return strip<HandleRecord>(out.Item);
}

/** Claims of one handle tried while its holder keeps letting it go. */
const CLAIM_ATTEMPTS = 3;

/** Claims a handle for a contact; if another contact holds it already, returns that one. */
export async function claimHandle(channel: string, handle: string, record: HandleRecord): Promise<HandleRecord> {
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    if (await putNew({ ...keys.handle(channel, handle), ...record })) return record;
    const existing = await getHandle(channel, handle);
    if (existing) return existing;
    // Released between the refused put and the read (an agent's edit moving it off its contact,
    // an erasure): free to claim again.
  }
  throw new Error(`handle ${channel}:${handle} kept vanishing`);
}

/** Marks a handle linked with the customer's other one, once both lead to its conversation (linkChannelHandle). */
export async function markHandleLinked(channel: string, handle: string, linkedHandle: string): Promise<void> {
  await updateIf({
    Key: keys.handle(channel, handle),
    UpdateExpression: 'SET linkedHandle = :l',
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeValues: { ':l': linkedHandle },
  });
}

/**
 * Sets the contact's phone to `to` where it is still `from` as read (absent: none), unless an agent
 * edited it or the contact was merged meanwhile. False when nothing was written.
 */
export async function replaceContactPhone(contactId: string, from: string | undefined, to: string): Promise<boolean> {
  return updateIf({
    Key: keys.contact(contactId),
    // Versioned as every change is: an agent's edit read before this one is read again.
    UpdateExpression: 'SET #phone = :to, version = if_not_exists(version, :zero) + :one',
    ConditionExpression: `attribute_exists(pk) AND attribute_not_exists(mergedInto) AND ${from === undefined ? 'attribute_not_exists(#phone)' : '#phone = :from'} AND (attribute_not_exists(edited) OR NOT contains(edited, :field))`,
    ExpressionAttributeNames: { '#phone': 'phone' },
    ExpressionAttributeValues: { ':to': to, ':zero': 0, ':one': 1, ':field': 'phone', ...(from === undefined ? {} : { ':from': from }) },
  });
}

/** Moves the handle's read watermark forward to `at`; an older or equal one is left as it is. */
export async function advanceReadUpTo(channel: string, handle: string, at: string): Promise<void> {
  await updateIf({
    Key: keys.handle(channel, handle),
    UpdateExpression: 'SET readUpTo = :at',
    ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(readUpTo) OR readUpTo < :at)',
    ExpressionAttributeValues: { ':at': at },
  });
}

/**
 * Points a handle at the conversation it opens, unless another writer pointed it first (a channel
 * transfer beside the customer's first message there, two transfers at once): the id it points
 * at in the end, which every writer then uses, so that the customer has one conversation there.
 */
export async function setHandleConversation(channel: string, handle: string, conversationId: string): Promise<string> {
  const set = await updateIf({
    Key: keys.handle(channel, handle),
    UpdateExpression: 'SET conversationId = :c',
    ConditionExpression: 'attribute_not_exists(conversationId) OR conversationId = :c',
    ExpressionAttributeValues: { ':c': conversationId },
  });
  return set ? conversationId : ((await getHandle(channel, handle))?.conversationId ?? conversationId);
}

/** False when the contact exists already (a retry after a crash). */
export async function putContact(contact: ContactRecord): Promise<boolean> {
  return putNew({ ...keys.contact(contact.id), ...contact });
}

export async function getContact(id: string, consistent = false): Promise<ContactRecord | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.contact(id), ConsistentRead: consistent }));
  return strip<ContactRecord>(out.Item);
}

/** `#a = :a` for each field: every name aliased, since some (`name`) are DynamoDB reserved words. */
function setClauses(fields: [string, unknown][]): { clause: string; names: Record<string, string>; values: Record<string, unknown> } {
  return {
    clause: fields.map(([k]) => `#${k} = :${k}`).join(', '),
    names: Object.fromEntries(fields.map(([k]) => [`#${k}`, k])),
    values: Object.fromEntries(fields.map(([k, v]) => [`:${k}`, v])),
  };
}

/** The condition that the contact item is still at the version `contact` was read at. */
function atVersion(contact: ContactRecord): { condition: string; values: Record<string, unknown> } {
  return contact.version === undefined
    ? { condition: 'attribute_not_exists(version)', values: {} }
    : { condition: 'version = :readVersion', values: { ':readVersion': contact.version } };
}

/** Reads and writes of one change to a contact item when other writers keep landing in between. */
const CONTACT_WRITE_ATTEMPTS = 6;

/**
 * Adds handles to a contact (idempotent) and fills the name/email/phone it lacked, except what an
 * agent edited (set or cleared). Web visitors get an item each (keys.contactVisitor); the other
 * handles, a few per customer, go in its list. A contact merged into another takes nothing: the
 * answer is the one it was merged into, for the caller to move what it claimed there (the merge
 * has read the handles it moves already). Otherwise the answer holds the contact as read: the
 * item is written on condition of its version, so an agent's edit that landed meanwhile makes it
 * read again rather than be overwritten.
 */
export async function addContactHandles(
  contactId: string,
  handles: ContactRecord['handles'],
  profile: { name?: string | undefined; email?: string | undefined; phone?: string | undefined } = {},
): Promise<{ mergedInto: string } | { contact: ContactRecord } | undefined> {
  let visitorsListed = false;
  for (let attempt = 0; attempt < CONTACT_WRITE_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    // Consistent: a contact made a moment ago (two channels' first messages) must not read as missing.
    const contact = await getContact(contactId, true);
    if (!contact) return undefined;
    if (contact.mergedInto) return { mergedInto: contact.mergedInto };
    const missing = handles.filter((h) => !contact.handles.some((c) => sameHandle(c, h)));
    const listed = missing.filter((h) => h.channel !== 'web');
    const visitors = missing.filter((h) => h.channel === 'web');
    // Only beside a contact not merged at that moment: the merge reads its visitors after marking it.
    const unmerged = { ConditionCheck: { TableName: config.tableName, Key: keys.contact(contactId), ConditionExpression: 'attribute_not_exists(mergedInto)' } };
    const visitorItems = visitors.map((h) => ({ Put: { TableName: config.tableName, Item: { ...keys.contactVisitor(contactId, h.handle), visitorId: h.handle } } }));
    if (!visitorsListed && visitorItems.length > 0) {
      if (!(await transactIf([unmerged, ...visitorItems]))) return mergedInto(contactId);
      visitorsListed = true;
    }
    const fill = Object.entries(profile).filter(([k, v]) => v && !contact[k as ProfileField] && !contact.edited?.includes(k as ProfileField));
    if (listed.length === 0 && fill.length === 0) return { contact };
    const sets: string[] = ['version = :nextVersion'];
    const values: Record<string, unknown> = { ':nextVersion': (contact.version ?? 0) + 1 };
    if (listed.length > 0) {
      sets.push('handles = list_append(handles, :h)');
      values[':h'] = listed;
    }
    const profileSet = setClauses(fill);
    const read = atVersion(contact);
    const updated = await updateIf({
      Key: keys.contact(contactId),
      UpdateExpression: `SET ${[...sets, profileSet.clause].filter(Boolean).join(', ')}`,
      ConditionExpression: `attribute_not_exists(mergedInto) AND ${read.condition}`,
      ...(fill.length > 0 ? { ExpressionAttributeNames: profileSet.names } : {}),
      ExpressionAttributeValues: { ...values, ...read.values, ...profileSet.values },
    });
    if (updated) return { contact: { ...contact, ...Object.fromEntries(fill), handles: [...contact.handles, ...listed] } };
    // Merged meanwhile (the next read answers that) or changed by another writer: read again.
  }
  throw new Error(`contact ${contactId} kept changing while handles were added`);
}

/**
 * An agent's edit of a contact read at `read`: sets and removes profile fields, replaces the
 * handles list (identity handles added or dropped), the fields marked edited and the identities
 * being released (none: the field goes). The version written, or undefined when the contact
 * changed since that read or was merged meanwhile (nothing written): the caller reads again.
 */
export async function writeContactEdit(
  read: ContactRecord,
  change: { set: Partial<Record<ProfileField, string>>; remove: ProfileField[]; handles: ContactRecord['handles']; edited: ProfileField[]; releasing: Identity[] },
): Promise<number | undefined> {
  const next = (read.version ?? 0) + 1;
  const releasing: [string, unknown][] = change.releasing.length > 0 ? [['releasing', change.releasing]] : [];
  const set = setClauses([...Object.entries(change.set), ['handles', change.handles], ['edited', change.edited], ['version', next], ...releasing]);
  const remove = [...change.remove, ...(releasing.length > 0 ? [] : ['releasing'])];
  const version = atVersion(read);
  const written = await updateIf({
    Key: keys.contact(read.id),
    UpdateExpression: `SET ${set.clause}${remove.length > 0 ? ` REMOVE ${remove.map((field) => `#${field}`).join(', ')}` : ''}`,
    ConditionExpression: `attribute_exists(pk) AND attribute_not_exists(mergedInto) AND ${version.condition}`,
    ExpressionAttributeNames: { ...set.names, ...Object.fromEntries(remove.map((field) => [`#${field}`, field])) },
    ExpressionAttributeValues: { ...set.values, ...version.values },
  });
  return written ? next : undefined;
}

/** The releases of the edit that wrote `version` are done: the list goes, unless another edit has written since (it carries its own). */
export async function clearReleasing(contactId: string, version: number): Promise<void> {
  await updateIf({
    Key: keys.contact(contactId),
    UpdateExpression: 'REMOVE releasing',
    ConditionExpression: 'version = :version',
    ExpressionAttributeValues: { ':version': version },
  });
}

/**
 * Deletes an identity handle item (a phone number or address that no longer links to the
 * contact), only while it is still this contact's and points at no conversation.
 */
export async function releaseHandle(channel: 'phone' | 'email', handle: string, contactId: string): Promise<void> {
  // Refused when another contact's by now, or gone already: nothing of ours to delete.
  await deleteIf({
    Key: keys.handle(channel, handle),
    ConditionExpression: 'contactId = :contact AND attribute_not_exists(conversationId)',
    ExpressionAttributeValues: { ':contact': contactId },
  });
}

/** Removes profile fields a web visitor gave (an agent cleared them on the contact); nothing if the visitor is gone. */
export async function removeVisitorFields(id: string, fields: ProfileField[]): Promise<void> {
  if (fields.length === 0) return;
  await updateIf({
    Key: keys.visitor(id),
    UpdateExpression: `REMOVE ${fields.map((field) => `#${field}`).join(', ')}`,
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeNames: Object.fromEntries(fields.map((field) => [`#${field}`, field])),
  });
}

/** Where a contact whose conditional write failed was merged to (undefined if it was not). */
async function mergedInto(contactId: string): Promise<{ mergedInto: string } | undefined> {
  const merged = await getContact(contactId, true);
  return merged?.mergedInto ? { mergedInto: merged.mergedInto } : undefined;
}

export async function linkContactConversation(contactId: string, conversationId: string): Promise<void> {
  await ddb().send(new PutCommand({ TableName: config.tableName, Item: { ...keys.contactConversation(contactId, conversationId), conversationId } }));
}

/**
 * The contact item, with its web visitors among its handles, and the ids of its conversations:
 * one Query on the contact's partition.
 */
export async function getContactWithConversationIds(id: string, consistent = false): Promise<{ contact: ContactRecord; conversationIds: string[] } | undefined> {
  const items = await queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': keys.contactPartition(id) }, ConsistentRead: consistent });
  const contactItem = items.find((item) => item.sk === 'CONTACT');
  if (!contactItem) return undefined;
  const contact = strip<ContactRecord>(contactItem)!;
  const conversationIds: string[] = [];
  for (const item of items) {
    const sk = String(item.sk);
    if (sk.startsWith(keys.contactConversationPrefix)) conversationIds.push(String(item.conversationId));
    // Contacts written before visitors had items of their own keep theirs in the list as well.
    else if (sk.startsWith(keys.contactVisitorPrefix) && !contact.handles.some((h) => h.channel === 'web' && h.handle === item.visitorId)) {
      contact.handles.push({ channel: 'web', handle: String(item.visitorId) });
    }
  }
  return { contact, conversationIds };
}

export async function putVisitor(visitor: VisitorRecord): Promise<void> {
  if (!(await putNew({ ...keys.visitor(visitor.id), ...visitor }))) throw new Error(`visitor ${visitor.id} exists already`);
}

export async function getVisitor(id: string, consistent = false): Promise<VisitorRecord | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.visitor(id), ConsistentRead: consistent }));
  return strip<VisitorRecord>(out.Item);
}

export async function updateVisitor(id: string, fields: Partial<Pick<VisitorRecord, 'contactId' | 'conversationId' | 'name' | 'email' | 'phone' | 'unverified' | 'vouched'>>): Promise<void> {
  const entries = Object.entries(fields).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return;
  const { clause, names, values } = setClauses(entries);
  await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.visitor(id),
      UpdateExpression: `SET ${clause}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ConditionExpression: 'attribute_exists(pk)',
    }),
  );
}

/**
 * Writes what a resumed session adds to a visitor, only while each of `unset` is still absent and
 * the visitor exists: false when another session filled one of them first (or the visitor was
 * erased), so that what was given before is never overwritten, even by a request running beside it.
 */
export async function fillVisitor(
  id: string,
  fields: Partial<Pick<VisitorRecord, 'name' | 'email' | 'phone' | 'unverified' | 'vouched'>>,
  unset: readonly (keyof VisitorRecord)[],
): Promise<boolean> {
  const entries = Object.entries(fields).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return true;
  const { clause, names, values } = setClauses(entries);
  const absent = [...new Set(unset)];
  return updateIf({
    Key: keys.visitor(id),
    UpdateExpression: `SET ${clause}`,
    ExpressionAttributeNames: { ...names, ...Object.fromEntries(absent.map((k) => [`#u_${k}`, k])) },
    ExpressionAttributeValues: values,
    ConditionExpression: ['attribute_exists(pk)', ...absent.map((k) => `attribute_not_exists(#u_${k})`)].join(' AND '),
  });
}

export async function getContacts(ids: string[]): Promise<ContactRecord[]> {
  return (await batchGetAll(ids.map((id) => keys.contact(id)))).map((item) => strip<ContactRecord>(item)!);
}

/** Queries contactsWithVisitorItems keeps in flight: enough for thousands in a few seconds, a small share of the table's reads. */
const VISITOR_QUERY_CONCURRENCY = 16;

/**
 * The ids among `contactIds` with a web visitor item of their own (keys.contactVisitor: a visitor
 * linked after the contact's first channel): one Query each, reading at most one key.
 */
export async function contactsWithVisitorItems(contactIds: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  let next = 0;
  const worker = async () => {
    while (next < contactIds.length) {
      const id = contactIds[next++]!;
      const out = await ddb().send(
        new QueryCommand({
          TableName: config.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :visitor)',
          ExpressionAttributeValues: { ':pk': keys.contactPartition(id), ':visitor': keys.contactVisitorPrefix },
          ProjectionExpression: 'pk',
          Limit: 1,
        }),
      );
      if ((out.Items ?? []).length > 0) found.add(id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(VISITOR_QUERY_CONCURRENCY, contactIds.length) }, worker));
  return found;
}

/** Points a handle at another contact (a merge), only if it still belongs to `from`. */
export async function moveHandle(channel: string, handle: string, from: string, to: string): Promise<void> {
  // False when already moved by an earlier attempt, or never this contact's: nothing to do.
  await updateIf({
    Key: keys.handle(channel, handle),
    UpdateExpression: 'SET contactId = :to',
    ConditionExpression: 'contactId = :from',
    ExpressionAttributeValues: { ':to': to, ':from': from },
  });
}

/** A visitor's new conversation; its contact only if it has none yet (a merge may have moved it meanwhile). */
export async function pointVisitorAt(visitorId: string, contactId: string, conversationId: string): Promise<void> {
  await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.visitor(visitorId),
      UpdateExpression: 'SET conversationId = :conversation, contactId = if_not_exists(contactId, :contact)',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':conversation': conversationId, ':contact': contactId },
    }),
  );
}

/** Points a web visitor at the contact `from` was merged into (not one it was linked to since). */
export async function moveVisitor(visitorId: string, from: string, to: string): Promise<void> {
  await updateIf({
    Key: keys.visitor(visitorId),
    UpdateExpression: 'SET contactId = :to',
    ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(contactId) OR contactId = :from)',
    ExpressionAttributeValues: { ':to': to, ':from': from },
  });
}

export async function unlinkContactConversation(contactId: string, conversationId: string): Promise<void> {
  await ddb().send(new DeleteCommand({ TableName: config.tableName, Key: keys.contactConversation(contactId, conversationId) }));
}

/** Takes the merge lock for `owner` until `leaseMs` from now; false while another merge holds it. */
export async function acquireMergeLock(owner: string, leaseMs: number): Promise<boolean> {
  const now = Date.now();
  return updateIf({
    Key: keys.mergeLock(),
    UpdateExpression: 'SET #owner = :owner, #until = :until, expiresAt = :expires',
    // A lock left by a merge that died is taken over once its lease ran out.
    ConditionExpression: 'attribute_not_exists(pk) OR #until < :now',
    ExpressionAttributeNames: { '#owner': 'owner', '#until': 'until' },
    ExpressionAttributeValues: { ':owner': owner, ':until': now + leaseMs, ':expires': Math.ceil((now + leaseMs) / 1000) + 3600, ':now': now },
  });
}

export async function releaseMergeLock(owner: string): Promise<void> {
  // Refused when taken over after the lease ran out: it is the other merge's now.
  await deleteIf({ Key: keys.mergeLock(), ConditionExpression: '#owner = :owner', ExpressionAttributeNames: { '#owner': 'owner' }, ExpressionAttributeValues: { ':owner': owner } });
}

/** Records on the survivor that `otherId` is being merged into it (keys.contactMerged); a repeat rewrites it. */
export async function recordMerge(survivorId: string, otherId: string): Promise<void> {
  await ddb().send(new PutCommand({ TableName: config.tableName, Item: { ...keys.contactMerged(survivorId, otherId), contactId: otherId } }));
}

/** The record of a merge that did not happen (the other contact was merged elsewhere). */
export async function forgetMerge(survivorId: string, otherId: string): Promise<void> {
  await ddb().send(new DeleteCommand({ TableName: config.tableName, Key: keys.contactMerged(survivorId, otherId) }));
}

/** Marks a contact merged into another; true when it is (or already was) merged into `into`. */
export async function markContactMerged(id: string, into: string): Promise<boolean> {
  return updateIf({
    Key: keys.contact(id),
    UpdateExpression: 'SET mergedInto = :into',
    ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(mergedInto) OR mergedInto = :into)',
    ExpressionAttributeValues: { ':into': into },
  });
}
