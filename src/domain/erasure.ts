/**
 * Erasing a customer on request (GDPR Art. 17): DELETE /v1/contacts/{id} records the erasure and
 * queues its first step; each step erases a bounded page and queues the next, until nothing of
 * the contact is left. Steps ride the outbound FIFO queue in a lane of their own per contact
 * (`eraseContact#<contactId>`), like the file copies: one step at a time per contact, never
 * holding a conversation's replies back, retried by the queue and dead-lettered (alarmed) if one
 * keeps failing. Every step works out what is left from the table itself, so a redelivered,
 * repeated or crashed step re-runs safely.
 *
 * Order: first the ways in (handle items, web visitors, their connections), so that a customer
 * writing meanwhile starts a new contact instead of writing into what is being erased; then the
 * contacts merged into it (each an erasure of its own); then each conversation (its agent's slot released, its timers cancelled, its files, messages, closed
 * episodes, mention items and idempotency records, then the item itself, announced as `conversation.deleted`);
 * the contact item last. README (Erasure) lists what goes and what stays.
 */
import { DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { connectionsApi } from '../aws/clients';
import { config } from '../config';
import { enqueueOutbound } from '../aws/queues';
import { deleteEveryVersion, deleteEveryVersionUnder, mediaKeyOf, uploaderFolders, uploadKeyOfStored } from '../aws/media-store';
import { getContact, getContactWithConversationIds, getHandle, getVisitor, linkContactConversation, unlinkContactConversation, type ContactRecord } from '../store/contacts';
import { underMergeLock } from './contacts';
import { markErasing, updateConversation, type ConversationRecord } from '../store/conversations';
import { deleteConnection, listConnections } from '../store/connections';
import { deleteAll, deleteIfOwnedBy, finishErasure, getErasure, partitionPage, rememberErasedMessages, startErasure } from '../store/erasure';
import { mapConcurrently } from '../store/items';
import { keys, type Key } from '../store/keys';
import { notFound } from './errors';
import { publish } from './fanout';
import { newId } from './ids';
import { routeOnConversationChange } from './routing';
import { cancelTimer, TIMER_KINDS, type TimerKind } from './timers';
import type { Attachment, OutboundJob } from './types';

/** Items one step deletes at most: a few hundred milliseconds of work, far inside the outbound batch. */
export const ERASURE_PAGE = 100;
/** Web visitors of one contact erased per step (each is a few reads and deletes). */
const VISITORS_PER_STEP = 25;
/** Files deleted at once. */
const FILE_CONCURRENCY = 8;
/** Merges chained one after another are at most this deep (as src/domain/contacts.ts follows them). */
const MAX_MERGE_HOPS = 5;

/** A conversation's own timers (not the per-message or per-agent ones). */
const CONVERSATION_TIMERS: readonly TimerKind[] = TIMER_KINDS.filter((kind) => kind !== 'keepMedia' && kind !== 'presenceGrace');

export function isErasureJob(job: OutboundJob): boolean {
  return job.kind === 'eraseContact';
}

/** Step `step` of a contact's erasure; the lane and the deduplication id come from these (src/aws/queues.ts). */
function erasureJob(contactId: string, step = 0, id = `erase-${contactId}`): OutboundJob {
  return { kind: 'eraseContact', conversationId: contactId, messageId: id, ...(step > 0 ? { round: step } : {}) };
}

export interface ErasureAnswer {
  contactId: string;
  status: 'erasing';
}

/**
 * Records the erasure and queues its first step. Asked again while (or after) it runs: the same
 * answer, and the first step queued again, which finds what is left: it resumes an erasure whose
 * steps ended in the dead-letter queue, and sweeps up what a customer message racing the erasure
 * left under the contact (a step finding nothing costs one read). A contact merged into another
 * is the same person: the one it was merged into is erased too, as GET answers with that one.
 */
export async function requestErasure(contactId: string, by: { id: string }): Promise<ErasureAnswer> {
  const now = new Date().toISOString();
  if (await getErasure(contactId)) {
    // Marked again: a conversation a racing message listed under the contact since.
    const found = await getContactWithConversationIds(contactId, true);
    if (found) await markConversations(contactId, found.conversationIds, now);
    // A step of its own to SQS's deduplication (the first step's id would be dropped for five
    // minutes); a chain already running meanwhile shares the lane, and both end on an empty partition.
    await enqueueOutbound([erasureJob(contactId, 0, `erase-${contactId}-${newId()}`)]);
    return { contactId, status: 'erasing' };
  }
  // Recorded under the merge lock: a merge running meanwhile would move the contact's
  // conversations and handles to a survivor this request did not see, out of the erasure's reach;
  // one after it finds the record and refuses (src/domain/contacts.ts mergeContacts).
  const chain = await underMergeLock({ waitMs: MERGE_WAIT_MS, busy: 'a merge of contacts is running; ask again in a moment' }, async () => {
    const read: { contact: ContactRecord; conversationIds: string[] }[] = [];
    let found = await getContactWithConversationIds(contactId, true);
    if (!found) throw notFound('contact');
    while (found && read.length < MAX_MERGE_HOPS && !read.some((c) => c.contact.id === found!.contact.id)) {
      read.push(found);
      found = found.contact.mergedInto ? await getContactWithConversationIds(found.contact.mergedInto, true) : undefined;
    }
    // Recorded before the job exists: the contact reads as gone from here on (GET answers 404), and
    // its conversations are marked (agents neither see nor change them any more).
    for (const { contact } of read) await startErasure(contact.id, by.id, now);
    return read;
  });
  for (const { contact, conversationIds } of chain) await markConversations(contact.id, conversationIds, now);
  await enqueueOutbound(chain.map(({ contact }) => erasureJob(contact.id)));
  return { contactId, status: 'erasing' };
}

/** Tries to take the merge lock for this long, a merge of many conversations taking seconds. */
const MERGE_WAIT_MS = 10_000;

/** Marks the contact's listed conversations (erasureRequestedAt): one write each, on the request only. */
async function markConversations(contactId: string, conversationIds: readonly string[], at: string): Promise<void> {
  await mapConcurrently(conversationIds, FILE_CONCURRENCY, (conversationId) => markErasing(conversationId, contactId, at));
}

/** Whether an erasure of this contact was asked for (running or done). */
export async function isErased(contactId: string): Promise<boolean> {
  return (await getErasure(contactId)) !== undefined;
}

/** One step, run by the outbound consumer: erases a page, then queues the next step or records the end. */
export async function runErasureStep(job: OutboundJob): Promise<'continues' | 'erased'> {
  const contactId = job.conversationId;
  if (await eraseSome(contactId)) {
    await finishErasure(contactId, new Date());
    return 'erased';
  }
  // Under the chain's own id: a chain started again (a repeated request) must not have its steps
  // taken by SQS for copies of the first chain's.
  await enqueueOutbound([erasureJob(contactId, (job.round ?? 0) + 1, job.messageId)]);
  return 'continues';
}

/**
 * A step skipped behind a failing one until it would reach the DLQ: queued again under a new
 * deduplication id (SQS would drop a copy of the old one within five minutes).
 */
export async function requeueErasure(job: OutboundJob): Promise<void> {
  await enqueueOutbound([erasureJob(job.conversationId, job.round ?? 0, `erase-${job.conversationId}-${newId()}`)]);
}

/**
 * Erases one bounded part of what is left; true once nothing of the contact is. The handles are
 * checked on every step, until the contact item goes with the last one: a customer message being
 * taken in as the erasure started may claim a handle for this contact again, and its
 * conversation is then found and erased with the rest.
 */
async function eraseSome(contactId: string): Promise<boolean> {
  const items = await partitionPage(keys.contactPartition(contactId), ERASURE_PAGE);
  const contact = items.find((item) => item.sk === 'CONTACT') as (ContactRecord & Key) | undefined;
  const links = items.filter((item) => String(item.sk).startsWith(keys.contactConversationPrefix)).map((item) => String(item.conversationId));
  const visitors = items.filter((item) => String(item.sk).startsWith(keys.contactVisitorPrefix)).map((item) => String(item.visitorId));
  const merged = items.filter((item) => String(item.sk).startsWith(keys.contactMergedPrefix)).map((item) => String(item.contactId));

  // The ways in first: a customer writing from here on starts a new contact.
  // With the identities an edit was releasing when it died: their items may still name the contact.
  for (const { channel, handle } of [...(contact?.handles ?? []), ...(contact?.releasing ?? [])]) {
    if (channel === 'web') await eraseVisitor(handle, contactId);
    else await eraseHandle(channel, handle, contactId);
  }
  if (visitors.length > 0) {
    for (const visitorId of visitors.slice(0, VISITORS_PER_STEP)) {
      await eraseVisitor(visitorId, contactId);
      await deleteAll([keys.contactVisitor(contactId, visitorId)]);
    }
    return false;
  }
  if (merged.length > 0) {
    for (const otherId of merged) {
      await eraseIfMergedInto(otherId, contactId);
      await deleteAll([keys.contactMerged(contactId, otherId)]);
    }
    return false;
  }
  const [conversationId] = links;
  if (conversationId) {
    if (await eraseConversationPage(conversationId, contactId)) await unlinkContactConversation(contactId, conversationId);
    return false;
  }
  if (contact) await deleteAll([keys.contact(contactId)]);
  return true;
}

/** A handle item that still names this contact; its conversation is listed under the contact first, so that it is erased too. */
async function eraseHandle(channel: string, handle: string, contactId: string): Promise<void> {
  const found = await getHandle(channel, handle);
  if (found?.contactId !== contactId) return;
  if (found.conversationId) await linkContactConversation(contactId, found.conversationId);
  await deleteIfOwnedBy(keys.handle(channel, handle), 'contactId', contactId);
}

/**
 * A web visitor of this contact: its conversation listed for erasure, its open sockets closed
 * (the token they were opened with names a visitor that is about to go), its files, then its item
 * and its send windows. A visitor linked to another contact by now is that contact's.
 */
async function eraseVisitor(visitorId: string, contactId: string): Promise<void> {
  const visitor = await getVisitor(visitorId, true);
  // Gone already (an earlier step): its sockets were closed then, and none opens without it.
  if (!visitor || (visitor.contactId && visitor.contactId !== contactId)) return;
  if (visitor.conversationId) await linkContactConversation(contactId, visitor.conversationId);
  const audience = { kind: 'visitor', visitorId } as const;
  for (const connection of await listConnections(audience, { consistent: true })) {
    try {
      await connectionsApi(config.wsCallbackUrl).send(new DeleteConnectionCommand({ ConnectionId: connection.connectionId }));
    } catch {
      // Gone already, or not closed now: the record goes all the same, and the socket's token no longer opens anything.
    }
    await deleteConnection(audience, connection.connectionId);
  }
  // Its files by folder, not only those its messages name: a send that failed after the file was kept (and was never tried again) left a copy no message names.
  for (const folder of uploaderFolders('visitor', visitorId)) await deleteEveryVersionUnder(folder);
  for (;;) {
    const page = await partitionPage(keys.visitorPartition(visitorId), ERASURE_PAGE);
    if (page.length === 0) break;
    await deleteAll(page as unknown as Key[]);
  }
}

/**
 * One page of a conversation: its agent's slot is released and its timers cancelled (on every
 * page: a fire between two pages must find nothing to do), then up to a page of its messages
 * and closed episodes (and mention items: src/domain/mentions.ts) go with their files and idempotency records. With nothing left but the
 * conversation item, that goes too and the agents hear `conversation.deleted`. True when the
 * conversation is gone (or was never this contact's to erase).
 */
async function eraseConversationPage(conversationId: string, contactId: string): Promise<boolean> {
  // Marked and released before its page is read: a file copy that lands after this read finds the
  // mark and removes its file itself (src/domain/provider-media.ts).
  // A listing left behind for a conversation that went to another contact (a merge) is only unlisted.
  if ((await releaseSlot(conversationId, contactId)) === 'another contact') return true;
  const items = await partitionPage(keys.messagePartition(conversationId), ERASURE_PAGE + 1);
  const conversation = items.find((item) => item.sk === 'CONV') as (ConversationRecord & Key) | undefined;
  if (conversation && conversation.contact.id !== contactId) return true;
  await Promise.all(CONVERSATION_TIMERS.map((kind) => cancelTimer(kind, conversationId)));
  const content = items.filter((item) => item.sk !== 'CONV');
  if (content.length > 0) {
    await eraseMergedSenders(content, contactId);
    await eraseContent(conversationId, content);
    return false;
  }
  for (;;) {
    const notes = await partitionPage(keys.emailNotesPartition(conversationId), ERASURE_PAGE);
    if (notes.length === 0) break;
    await deleteAll(notes as unknown as Key[]);
  }
  if (conversation) {
    await deleteAll([keys.conversation(conversationId)]);
    await publish([{ type: 'conversation.deleted', conversationId }], { agents: true });
  }
  return true;
}

/**
 * Marked (if the request did not: a conversation a racing message started), resolved and
 * unassigned, through the same routing as any change: an open conversation's slot is given back
 * (the agent's load stays true) and the freed slot may take a waiting conversation. A
 * conversation already so changes nothing, so a step run again releases nothing twice.
 */
async function releaseSlot(conversationId: string, contactId: string): Promise<'another contact' | undefined> {
  const now = new Date().toISOString();
  const result = await updateConversation(conversationId, (c) =>
    c.contact.id !== contactId || (c.status === 'resolved' && !c.assigneeId && c.erasureRequestedAt)
      ? undefined
      : { ...c, status: 'resolved', assigneeId: null, resolvedAt: c.resolvedAt ?? now, snoozedUntil: undefined, updatedAt: now, erasureRequestedAt: c.erasureRequestedAt ?? now },
  );
  if (result && result.before.contact.id !== contactId) return 'another contact';
  if (result && result.after !== result.before) await routeOnConversationChange(result.before, result.after);
  return undefined;
}

/**
 * A contact merged into this one keeps its item (name, email, phone, handles, `mergedInto`). A
 * merge records it on the survivor (keys.contactMerged, found by eraseSome); one merged before
 * merges did is found by its messages, moved here with its conversations, which still name it as
 * their sender.
 */
async function eraseMergedSenders(content: Record<string, unknown>[], contactId: string): Promise<void> {
  const senders = new Set<string>();
  for (const item of content) {
    const sender = item.sender as { type?: string; id?: string } | undefined;
    if (sender?.type === 'contact' && sender.id && sender.id !== contactId) senders.add(sender.id);
  }
  for (const senderId of senders) await eraseIfMergedInto(senderId, contactId);
}

/**
 * A contact merged into this one (directly or through others) gets an erasure of its own: a step
 * finding its item, and whatever a half-finished merge left under it. Any other contact is not this customer.
 */
async function eraseIfMergedInto(otherId: string, contactId: string): Promise<void> {
  let current = await getContact(otherId, true);
  for (let hop = 0; current?.mergedInto && current.mergedInto !== contactId && hop < MAX_MERGE_HOPS; hop++) current = await getContact(current.mergedInto, true);
  if (current?.mergedInto !== contactId) return;
  // Started once: a later page naming the same contact finds its record and queues nothing.
  if (await startErasure(otherId, 'merge-of-erased-contact', new Date().toISOString())) await enqueueOutbound([erasureJob(otherId)]);
}

/** Files first, then the records that point at provider ids, then the items: a step that dies half-way finds the items and does it again. */
async function eraseContent(conversationId: string, content: Record<string, unknown>[]): Promise<void> {
  const files = new Set<string>();
  const dedups: Key[] = [];
  const copies: string[] = [];
  const customerWords: string[] = [];
  for (const item of content) {
    if (!String(item.sk).startsWith(keys.messagePrefix)) continue;
    if (item.direction === 'inbound' && typeof item.providerMessageId === 'string') customerWords.push(`${String(item.channel)}#${item.providerMessageId}`);
    const attachments = (item.attachments ?? []) as Attachment[];
    for (const attachment of attachments) {
      const key = mediaKeyOf(attachment.url);
      if (!key) continue;
      files.add(key);
      // A sent upload's first landing place expires within a day; removed now all the same.
      const upload = uploadKeyOfStored(key);
      if (upload) files.add(upload);
    }
    if (attachments.length > 0) copies.push(String(item.id));
    const providerIds = [item.providerMessageId, ...(((item.sendProgress as { otherIds?: string[] } | undefined)?.otherIds) ?? [])].filter((id): id is string => typeof id === 'string');
    for (const id of providerIds) dedups.push(keys.dedup(`${String(item.channel)}#${id}`));
  }
  await mapConcurrently([...files], FILE_CONCURRENCY, deleteEveryVersion);
  // A file copy waiting for its next round would fetch the file again.
  await mapConcurrently(copies, FILE_CONCURRENCY, (messageId) => cancelTimer('keepMedia', messageId));
  // Before the messages go: a provider's copy arriving after them must not bring the customer back.
  await rememberErasedMessages(customerWords, new Date());
  await mapConcurrently(dedups, FILE_CONCURRENCY, (key) => deleteIfOwnedBy(key, 'conversationId', conversationId));
  await deleteAll(content.map((item) => ({ pk: String(item.pk), sk: String(item.sk) })));
}
