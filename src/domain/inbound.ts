/**
 * The inbound path: store each customer message exactly once, open or update its
 * conversation, run routing and engagement hooks, and fan the result out.
 * Every step is safe to repeat: the queue redelivers after a crash at any point.
 */
import { decodeTime } from 'ulid';
import { contentHash, idFor, newId } from './ids';
import { EXTERNAL_SENDER_ID, isProviderChannel, MEDIA_SCHEME, type Attachment, type Channel, type InboundMessageEvent, type InboundMovedEvent, type InboundStatusEvent, type Message } from './types';
import { findOrCreateContact, followPhone, linkChannelHandle, listUnderContact, normalizePhone, visitorLinks, withVisitorProfile, type Profile } from './contacts';
import { afterInbound, afterOutbound, afterReplyFailed, beforeNewConversation, type InboundHookContext } from './automation';
import { besideTimers } from './timers';
import { applyHeldStatuses, applyOutboundToConversation, applyToCovered, catchUpConversation, publishStatuses } from './outbound';
import { csatRatingFor, unfinishedGreeting, type Greeting } from './engagement';
import { closedEpisodeItem, closesOwnEpisode, newEpisode, startsNewEpisode } from './episodes';
import { conversationEvent, conversationEventAfterMessage, messageEvent, messageUpdatedEvent, publishToConversation } from './events';
import { agentConnectionsAhead, publish, scopeOf, sendToConnection } from './fanout';
import {
  applyMessageToOpenConversation,
  createConversation,
  getConversation,
  updateConversation,
  type ConversationRecord,
} from '../store/conversations';
import { claimDedup, findByProviderMessageId, getDedup, getMessage, holdEarlyStatus, listMessages, markStatusHeld, putMessage, STATUS_RANK, updateMessageStatus } from '../store/messages';
import { ALL_BEFORE_WATERMARK } from '../channels/meta';
import { getAdapter } from '../channels/registry';
import { keepMediaJob } from './media-jobs';
import { enqueueOutbound } from '../aws/queues';
import { windowStart } from '../channels/window';
import { advanceReadUpTo, getHandle, getVisitor, markHandleLinked, pointVisitorAt, setHandleConversation, type HandleRecord, type VisitorRecord } from '../store/contacts';
import type { ConnectionRecord } from '../store/connections';
import { wasErasedMessage } from '../store/erasure';
import { sameHandle } from '../store/keys';

/** A message that can never be processed (e.g. from a visitor that does not exist): dropped, not retried. */
export class UnprocessableEventError extends Error {}

export function dedupScope(
  event: Pick<InboundMessageEvent, 'channel' | 'handle' | 'providerMessageId' | 'clientMessageId' | 'text'> & { attachments?: readonly Pick<Attachment, 'url' | 'name'>[] },
): string | undefined {
  if (event.providerMessageId) return `${event.channel}#${event.providerMessageId}`;
  // With the content's hash: a widget that counts its ids anew after a reload ("c-1" again) sends a
  // new message, which must not be acknowledged as the old one and dropped; a retry is the same
  // text and the same files.
  if (event.clientMessageId) return `client#${event.channel}#${event.handle}#${event.clientMessageId}#${visitorContentHash(event.text, event.attachments ?? [])}`;
  return undefined;
}

/**
 * The text's hash alone without files (as every record before files counted, so a send retried
 * across a deploy still finds its record); with files, the text and each file's URL and name in
 * order (the kept file's URL holds the upload id), as an agent's content hash has them.
 */
function visitorContentHash(text: string, attachments: readonly Pick<Attachment, 'url' | 'name'>[]): string {
  if (attachments.length === 0) return contentHash(text);
  return contentHash(JSON.stringify([text, attachments.map((a) => [a.url, a.name ?? null])]));
}

/**
 * The customer's conversation on this channel. On the first message (`draft`) the contact and the
 * pointer to the new conversation are stored, the conversation itself is not: ingestMessage
 * stores it once, with that message applied.
 */
async function resolveConversation(event: InboundMessageEvent): Promise<Resolved> {
  return event.otherHandle && event.channel !== 'web' ? resolveLinked(event, event.otherHandle) : resolveByHandle(event);
}

type Resolved = { conversation: ConversationRecord; draft: boolean; before?: ConversationRecord };

/**
 * A customer a message names by two handles (a WhatsApp number and the BSUID beside it) has one
 * conversation: the number's if it has one, else the other's. That one is resolved as a message
 * naming that id alone would be (a conditional claim of a new handle), so two messages racing
 * agree; then the other handle is linked to it. Replies go to `event.handle`, the number.
 */
async function resolveLinked(event: InboundMessageEvent, other: string): Promise<Resolved> {
  const numbers = await getHandle(event.channel, event.handle);
  // Linked by an earlier message (the mark is written last): as a message naming the number alone,
  // at no cost more, since nearly every message of such a customer names both.
  if (numbers?.conversationId && numbers.linkedHandle === other) return resolveByHandle(event, numbers);
  const byNumber = numbers?.conversationId !== undefined;
  const resolved = byNumber ? await resolveByHandle(event, numbers) : await resolveByHandle({ ...event, handle: other });
  const { conversation } = resolved;
  const owner = { contactId: conversation.contact.id, conversationId: conversation.id };
  const linked = await linkChannelHandle(event.channel, byNumber ? other : event.handle, owner, byNumber ? {} : (event.profile ?? {}));
  let result = resolved;
  if (conversation.handle !== event.handle) {
    const phone = event.profile?.phone;
    if (resolved.draft) result = { ...resolved, conversation: repointed(conversation, event.handle, phone) };
    else {
      // A conversation the customer opened by their BSUID alone: the number they now share is where replies go.
      result = { ...resolved, conversation: (await repointConversation(conversation.id, event.handle, { phone }))?.after ?? conversation };
    }
  }
  if (linked) await markHandleLinked(event.channel, event.handle, other);
  return result;
}

/** With `replacePhone`, the phone shown is `phone` (the contact's followed it); else `phone` only fills a missing one. */
const repointed = (c: ConversationRecord, handle: string, phone: string | undefined, replacePhone = false): ConversationRecord => ({
  ...c,
  handle,
  contact: { ...c.contact, phone: replacePhone ? (phone ?? c.contact.phone) : (c.contact.phone ?? phone) },
});

/** Replies go to `handle` from now on; with `from`, only if they went there until now. */
async function repointConversation(
  id: string,
  handle: string,
  options: { phone?: string | undefined; replacePhone?: boolean; from?: string },
): Promise<{ before: ConversationRecord; after: ConversationRecord } | undefined> {
  // `from` in either form of a number (one handle item: src/store/keys.ts).
  const from = options.from;
  const moves = (c: ConversationRecord) => c.handle !== handle && (from === undefined || sameHandle({ channel: c.channel, handle: c.handle }, { channel: c.channel, handle: from }));
  return updateConversation(id, (c) => (moves(c) ? { ...repointed(c, handle, options.phone, options.replacePhone), updatedAt: new Date().toISOString() } : undefined));
}

/**
 * A customer's handle changed (a Telegram group upgraded to a supergroup, a WhatsApp customer's
 * new number): the new one is linked to the old one's contact and conversation, as resolveLinked
 * links a second handle, and the conversation's replies go to it. A new number is linked as the
 * contact's phone too, and the phone shown follows it (followPhone). No message is stored, and
 * nothing reopens. The old handle is marked last, so a redelivery that finds the mark has nothing
 * to do. A new handle that opened a conversation of its own first (its messages came before the
 * move) keeps it: both stay, for an admin to merge, as linkChannelHandle leaves a split.
 */
export async function ingestMove(event: InboundMovedEvent): Promise<void> {
  const old = await getHandle(event.channel, event.from);
  // Never heard from the old handle (or erased): the new one opens a conversation when it writes.
  if (!old?.conversationId || old.linkedHandle === event.handle) return;
  const owner = { contactId: old.contactId, conversationId: old.conversationId };
  if (!(await linkChannelHandle(event.channel, event.handle, owner, event.profile ?? {}))) {
    console.warn(`a ${event.channel} customer's new handle has a conversation of its own: both are kept`, { from: event.from, handle: event.handle });
    return;
  }
  const phone = event.profile?.phone;
  const replacePhone = phone !== undefined && (await followPhone(old.contactId, normalizePhone(event.from), phone));
  const moved = await repointConversation(old.conversationId, event.handle, { from: event.from, phone, replacePhone });
  // The number agents see changed: their consoles are told (a new chat id is nothing they see).
  if (moved && moved.after.contact.phone !== moved.before.contact.phone) await publishToConversation(moved.after, [conversationEvent(moved.after)], moved.before);
  await markHandleLinked(event.channel, event.from, event.handle);
}

/** `known`: the handle's item, read already. */
async function resolveByHandle(event: InboundMessageEvent, known?: HandleRecord): Promise<Resolved> {
  let pointer: { contactId?: string; conversationId?: string } | undefined;
  let profile = event.profile ?? {};
  // A provider vouches for its handles; a web visitor's email or phone only as far as the website did.
  let linkBy: readonly ('phone' | 'email')[] | undefined;
  let visitor: VisitorRecord | undefined;
  if (event.channel === 'web') {
    visitor = await getVisitor(event.handle, true);
    if (!visitor) throw new UnprocessableEventError(`unknown visitor ${event.handle}`);
    pointer = visitor;
    profile = { name: visitor.name, email: visitor.email, phone: visitor.phone, ...profile };
    linkBy = visitorLinks(visitor);
  } else {
    pointer = known ?? (await getHandle(event.channel, event.handle));
  }
  if (pointer?.conversationId) {
    const existing = await getConversation(pointer.conversationId, true);
    // `before` as read: the profile just filled in is news to the agents' consoles (afterApply).
    if (existing) return { conversation: visitor ? await withVisitorProfile(existing, visitor) : existing, draft: false, before: existing };
  }
  // A new handle is stored pointing at the conversation this message opens (one write, not two).
  const owner = pointer?.contactId
    ? { contactId: pointer.contactId, conversationId: pointer.conversationId }
    : await findOrCreateContact(event.channel, event.handle, profile, event.channel === 'web' ? undefined : newId(), { linkBy });
  // What an agent edited on the contact shows instead of this profile (src/domain/contacts.ts agentEdits).
  const shown = 'edited' in owner && owner.edited ? { ...profile, ...owner.edited } : profile;
  const conversation = await draftConversation({ channel: event.channel, handle: event.handle, ...owner, profile: shown });
  return { conversation, draft: true };
}

interface NewConversation {
  channel: Channel;
  handle: string;
  contactId: string;
  /** The id the handle (or visitor) already points at, if any. */
  conversationId?: string | undefined;
  profile: Profile;
}

/**
 * Creates the conversation of a customer's handle on a channel (or returns the one a crashed
 * attempt created). Used to continue a conversation on another channel.
 */
export async function openConversation(
  input: NewConversation,
  /** The report episode it carries on (src/domain/episodes.ts movedEpisode), or that the team started it. */
  episode: Pick<ConversationRecord, 'reportStartedAt' | 'firstReplyAt' | 'reopenCount' | 'teamStarted' | 'autoresponded'> = {},
): Promise<{ conversation: ConversationRecord; created: boolean }> {
  const draft = await draftConversation(input);
  const contactId = await listUnderContact(input.contactId, draft.id);
  const conversation = { ...draft, ...episode, contact: { ...draft.contact, id: contactId } };
  if (await createConversation(conversation)) return { conversation, created: true };
  const existing = await getConversation(conversation.id, true);
  return existing ? { conversation: existing, created: false } : { conversation, created: true };
}

/**
 * A new conversation, not stored yet. The handle (or visitor) points at its id first, so that a
 * retry after a crash makes the same one.
 */
async function draftConversation(input: NewConversation): Promise<ConversationRecord> {
  const { channel, handle, contactId, profile } = input;
  const now = new Date().toISOString();
  // The pointer is written before the conversation so that a retry after a crash reuses the id.
  let conversationId = input.conversationId ?? newId();
  if (!input.conversationId) {
    if (channel === 'web') await pointVisitorAt(handle, contactId, conversationId);
    else conversationId = await setHandleConversation(channel, handle, conversationId);
  }
  return {
    id: conversationId,
    channel,
    status: 'open',
    contact: { id: contactId, name: profile.name, email: profile.email, phone: profile.phone },
    assigneeId: null,
    unreadCount: 0,
    createdAt: now,
    updatedAt: now,
    lastMessageAt: now,
    handle,
    ...(channel === 'web' ? { visitorId: handle } : {}),
    version: 0,
  };
}

/**
 * A message id above the last one applied to the conversation. FIFO processing then makes a
 * lane's inbound ids increase whatever the clocks of the instances that made them, so
 * "not above the last applied" recognises every redelivery, also one that comes back after later
 * messages of its batch were applied (a consumer that died mid-batch). (A customer's two lanes
 * may each make one from the same read: see appliedTo.)
 */
function inboundIdAfter(last: string | undefined): string {
  const id = newId();
  return !last || id > last ? id : newId(decodeTime(last) + 1);
}

/** What the queue says about one delivery of an event: its FIFO group and sequence number. */
export interface Delivery {
  messageGroupId?: string;
  sequenceNumber?: string;
  /** The queue hands this message over again (a failed or crashed attempt), not a provider's copy. */
  redelivered?: boolean;
  /** The agents' connection lookup the records of this batch share (sharedConnectionLookups). */
  agentConnections?: () => Promise<ConnectionRecord[]>;
}

/**
 * SQS drops a repeated deduplication id for 5 minutes. A provider's copy of a message that
 * arrives later than this after the provider's own time may repeat one stored already (a minute
 * of margin for clocks and queueing).
 */
const LATE_AFTER_MS = 4 * 60_000;
/** How much earlier than the provider's time our id for the original may date (clock differences). */
const CLOCK_SKEW_MS = 60_000;

interface OrderedDelivery {
  group: string;
  seq: bigint;
  receivedAtMs: number;
  sentAtMs: number;
  providerMessageId: string;
}

/** A provider message dated by the provider, queued by our webhook and delivered by a FIFO queue. */
function orderedDelivery(event: InboundMessageEvent, delivery: Delivery): OrderedDelivery | undefined {
  const { messageGroupId: group, sequenceNumber } = delivery;
  if (!event.providerMessageId || !event.dated || !event.receivedAt || !group || !sequenceNumber || !/^\d{1,40}$/.test(sequenceNumber)) return undefined;
  const receivedAtMs = Date.parse(event.receivedAt);
  const sentAtMs = Date.parse(event.sentAt);
  if (!Number.isFinite(receivedAtMs) || !Number.isFinite(sentAtMs)) return undefined;
  return { group, seq: BigInt(sequenceNumber), receivedAtMs, sentAtMs, providerMessageId: event.providerMessageId };
}

const markOf = (d: OrderedDelivery) => `${d.group}|${d.seq}`;

function parseMark(mark: string | undefined): { group: string; seq: bigint } | undefined {
  const bar = mark?.lastIndexOf('|') ?? -1;
  if (!mark || bar < 0) return undefined;
  return { group: mark.slice(0, bar), seq: BigInt(mark.slice(bar + 1)) };
}

/**
 * The conversation's mark for queue group `group`: the lane `lastInboundId` came from (`primary`),
 * or the other lane of a customer whose messages come in two (otherInboundSeq).
 */
function laneMark(c: Pick<ConversationRecord, 'lastInboundSeq' | 'otherInboundSeq'>, group: string): { seq: bigint; primary: boolean } | undefined {
  const primary = parseMark(c.lastInboundSeq);
  if (primary?.group === group) return { seq: primary.seq, primary: true };
  const other = parseMark(c.otherInboundSeq);
  return other?.group === group ? { seq: other.seq, primary: false } : undefined;
}

/**
 * The marks after applying delivery `d`: the one with the highest id (`newest`) takes
 * lastInboundSeq, moving the other lane's mark there aside; one another lane overtook (a lower id,
 * applied after) keeps its lane's mark as otherInboundSeq. A third lane's mark may be dropped: its
 * messages are then told apart by their ids, as before any mark.
 */
function marksAfter(c: ConversationRecord, d: OrderedDelivery, newest: boolean): Pick<ConversationRecord, 'lastInboundSeq' | 'otherInboundSeq'> {
  const primary = parseMark(c.lastInboundSeq);
  if (!newest && primary && primary.group !== d.group) return { otherInboundSeq: markOf(d) };
  return { lastInboundSeq: markOf(d), otherInboundSeq: primary && primary.group !== d.group ? c.lastInboundSeq : c.otherInboundSeq };
}

/**
 * Whether `message` was applied to `c` already. One this delivery did not store (a provider's
 * copy of a message stored before) was, if its id is not above the last one applied. One it
 * stored (`ours`): its lane's mark says it exactly (a lane's messages are applied in their queue
 * order); without a mark of its lane, it was not if this very attempt stored it (`stored`: the
 * conversation is written after the message, so no attempt before did), else by its id as well.
 */
function appliedTo(c: ConversationRecord, message: Pick<Message, 'id'>, ordered: OrderedDelivery | undefined, own: { ours: boolean; stored: boolean }): boolean {
  const notAbove = c.lastInboundId !== undefined && c.lastInboundId >= message.id;
  if (!own.ours) return notAbove;
  const lane = ordered && laneMark(c, ordered.group);
  if (lane) return lane.seq >= ordered.seq;
  return !own.stored && notAbove;
}

/**
 * Whether this delivery stored `message`: this attempt (`stored`), or an earlier attempt at the
 * same queue message that died (written after the event was received). A provider's copy finds
 * its original, stored before the copy was received (a copy looked up is one 4+ minutes late, or
 * one in the other lane, whose first delivery is never a redelivery).
 */
function storedByThisDelivery(message: Pick<Message, 'createdAt'>, ordered: OrderedDelivery | undefined, delivery: Delivery, stored: boolean): boolean {
  if (stored) return true;
  return ordered !== undefined && delivery.redelivered === true && Date.parse(message.createdAt) >= ordered.receivedAtMs - CLOCK_SKEW_MS;
}

/**
 * The id of an ordered delivery's message, with no idempotency record to write:
 * - at or below its lane's sequence mark, the delivery was applied before ('applied'; 'last'
 *   when it is the one applied last, whose hooks and fan-out may not have run; 'lastOfLane' for
 *   the other lane's, whose message is looked up by its provider id);
 * - a late copy, or one whose group left no mark (an attempt that crashed before the
 *   conversation update, another channel's group), is looked up by its provider id;
 * - otherwise the id is made from the delivery alone, so a retry after a crash between the
 *   message write and the conversation update makes the same id and writes nothing new.
 */
async function orderedMessageId(found: ConversationRecord, created: boolean, channel: Channel, d: OrderedDelivery): Promise<string | 'applied' | 'last' | 'lastOfLane'> {
  const sameGroup = parseMark(found.lastInboundSeq)?.group === d.group;
  const lane = laneMark(found, d.group);
  if (lane && lane.seq >= d.seq) return lane.seq > d.seq ? 'applied' : lane.primary ? 'last' : 'lastOfLane';
  if (!created && (!sameGroup || d.receivedAtMs - d.sentAtMs >= LATE_AFTER_MS)) {
    const existing = await findOrdered(found.id, d);
    if (existing) return existing;
  }
  const after = found.lastInboundId ? decodeTime(found.lastInboundId) + 1 : 0;
  return idFor(Math.max(d.receivedAtMs, after), `${channel}#${d.providerMessageId}`);
}

/**
 * A provider's copy of a customer message whose customer was erased since (src/domain/erasure.ts
 * remembers a hash of each such message's id): stored again, it would bring back their words, and
 * as a first message their number and name. Only a copy SQS's deduplication may have let through
 * can be one: a dated message 4+ minutes late, or an undated one (one read each).
 */
async function erasedBefore(event: InboundMessageEvent): Promise<boolean> {
  if (!event.providerMessageId || !isProviderChannel(event.channel)) return false;
  const late = !event.dated || (event.receivedAt !== undefined && Date.parse(event.receivedAt) - Date.parse(event.sentAt) >= LATE_AFTER_MS);
  return late && (await wasErasedMessage(`${event.channel}#${event.providerMessageId}`));
}

/** The message stored for a provider's message (by an earlier attempt, or a copy), looked up by its provider id. */
function findOrdered(conversationId: string, d: OrderedDelivery): Promise<string | undefined> {
  return findByProviderMessageId(conversationId, d.providerMessageId, Math.min(d.sentAtMs, d.receivedAtMs) - CLOCK_SKEW_MS, 'inbound');
}

/**
 * A message id and its conversation through an idempotency record (web visitors, undated provider
 * messages); `repeated` when an earlier delivery had claimed it.
 */
async function claimedMessageId(found: ConversationRecord, event: InboundMessageEvent): Promise<{ record: { conversationId: string; messageId: string }; repeated: boolean }> {
  const scope = dedupScope(event);
  const tentative = { conversationId: found.id, messageId: inboundIdAfter(found.lastInboundId) };
  if (!scope) return { record: tentative, repeated: false };
  const { claimed, record } = await claimDedup(scope, tentative);
  return { record, repeated: !claimed };
}

/**
 * Meta lets a message be edited for 15 minutes after it was sent; the original is looked for an
 * hour back from the edit's provider time (a late original has a later id, never an earlier one).
 */
const EDITED_WITHIN_MS = 3_600_000;

/** Whether an edit names a message the customer wrote in their conversation on this channel (not one of ours). */
async function editsCustomerMessage(event: InboundMessageEvent & { edits: string }): Promise<boolean> {
  const conversationId = (await getHandle(event.channel, event.handle))?.conversationId;
  if (!conversationId) return false;
  return (await findByProviderMessageId(conversationId, event.edits, Date.parse(event.sentAt) - EDITED_WITHIN_MS - CLOCK_SKEW_MS, 'inbound')) !== undefined;
}

const isEcho = (m: Message) => m.direction === 'outbound' && m.sender.id === EXTERNAL_SENDER_ID;

/**
 * A message the team sent from outside Conversa (a Meta echo that is not of our own send): stored
 * once as the team's reply, `sent`, in the customer's conversation, and applied as a reply is
 * (first reply, follow-up, timers). It never reopens the conversation, opens one, or counts as the
 * customer's (no unread, no service window).
 */
async function ingestEcho(event: InboundMessageEvent & { echo: { name: string } }, delivery: Delivery): Promise<void> {
  const handle = await getHandle(event.channel, event.handle);
  const conversationId = handle?.conversationId;
  // A thread nobody here follows (the customer never wrote to us): nothing to show it in.
  if (!conversationId || !event.providerMessageId) return;
  const conversation = await getConversation(conversationId, true);
  if (!conversation) return;
  // The record our own sends claim for their status callbacks (src/domain/outbound.ts): a provider id
  // already recorded for a send of ours, or for this echo delivered before, adds nothing.
  const { claimed, record } = await claimDedup(`${event.channel}#${event.providerMessageId}`, { conversationId, messageId: newId() });
  const existing = claimed ? undefined : await getMessage(record.conversationId, record.messageId);
  // Only a redelivery of the queue message that stored it may have died before telling the agents.
  if (existing && !(isEcho(existing) && delivery.redelivered)) return;
  const fresh: Message = {
    id: record.messageId,
    conversationId: record.conversationId,
    direction: 'outbound',
    sender: { type: 'agent', id: EXTERNAL_SENDER_ID, name: event.echo.name },
    channel: event.channel,
    text: event.text,
    attachments: event.attachments.filter((a) => !a.url.startsWith(MEDIA_SCHEME)),
    // Sent at or before the customer's read watermark (Messenger), which came first: read already.
    status: event.dated && handle.readUpTo !== undefined && event.sentAt <= handle.readUpTo ? 'read' : 'sent',
    private: false,
    providerMessageId: event.providerMessageId,
    ...(event.replyTo ? { replyTo: event.replyTo } : {}),
    createdAt: new Date().toISOString(),
  };
  const stored = existing ?? ((await putMessage(fresh)) ? fresh : ((await getMessage(fresh.conversationId, fresh.id)) ?? fresh));
  // A receipt naming its mid may have come first (Meta sends each webhook on its own), held as for
  // our sends; a Messenger delivery names mids only, a WhatsApp receipt of an echo carries no
  // reference of ours, and either would otherwise never reach the message.
  const message = (await applyHeldStatuses(stored, [`${event.channel}#${event.providerMessageId}`], delivery.redelivered === true)) ?? stored;
  const agentConnections = (delivery.agentConnections ?? agentConnectionsAhead)();
  // A redelivery of a stored echo catches the conversation up instead: the dead attempt's update
  // may have landed (refused again as a duplicate, it would leave the consoles without it), and a
  // reply applied since must not have its activity moved back.
  const updated = existing ? await catchUpConversation(message.conversationId, message) : await applyOutboundToConversation(message.conversationId, message);
  await publish([messageEvent(message, updated), ...(updated ? [conversationEventAfterMessage(conversation, updated)] : [])], {
    agents: scopeOf(updated ?? conversation, conversation),
    agentConnections,
  });
  // Its files are Meta's CDN links, which expire as a customer's do: copied the same way.
  const keep = keepMediaJob(message);
  if (keep) await enqueueOutbound([keep]);
  await afterOutbound(updated ?? conversation, message);
}

export async function ingestMessage(event: InboundMessageEvent, delivery: Delivery = {}): Promise<void> {
  if (event.echo) return ingestEcho({ ...event, echo: event.echo }, delivery);
  // An edit of our own message (an echo, a reply), or of nothing we have, is no customer's words:
  // it must neither add a message nor open a conversation.
  if (event.edits !== undefined && !(await editsCustomerMessage({ ...event, edits: event.edits }))) return;
  if (await erasedBefore(event)) return;
  const { conversation: found, draft, before } = await resolveConversation(event);
  const ordered = orderedDelivery(event, delivery);
  let record: { conversationId: string; messageId: string };
  if (ordered) {
    const messageId = await orderedMessageId(found, draft, event.channel, ordered);
    if (messageId === 'applied') return;
    const isThisDelivery = (m: Message) => m.providerMessageId === ordered.providerMessageId;
    if (messageId === 'last') return resumeApplied(found, found.lastInboundId, isThisDelivery);
    if (messageId === 'lastOfLane') return resumeApplied(found, await findOrdered(found.id, ordered), isThisDelivery);
    record = { conversationId: found.id, messageId };
  } else {
    const claim = await claimedMessageId(found, event);
    record = claim.record;
    // Applied last by an earlier attempt at this very queue message, which may have died before
    // its hooks and fan-out. (A provider's later copy is a new queue message: it changes nothing.)
    if (claim.repeated && delivery.redelivered && record.conversationId === found.id && found.lastInboundId === record.messageId) {
      await ackVisitor(event, record);
      return resumeApplied(found, record.messageId, (m) => m.id === record.messageId);
    }
  }
  const conversationId = record.conversationId;
  const fresh: Message = {
    id: record.messageId,
    conversationId,
    direction: 'inbound',
    sender: { type: 'contact', id: found.contact.id, ...(found.contact.name ? { name: found.contact.name } : {}) },
    channel: event.channel,
    text: event.text,
    // Our own scheme names files of our bucket: only our web path may put it on a customer's message.
    attachments: event.channel === 'web' ? event.attachments : event.attachments.filter((a) => !a.url.startsWith(MEDIA_SCHEME)),
    status: 'received',
    private: false,
    ...(event.providerMessageId ? { providerMessageId: event.providerMessageId } : {}),
    // Which earlier message it answers: kept on the item itself, so showing it costs no read.
    ...(event.replyTo ? { replyTo: event.replyTo } : {}),
    createdAt: new Date().toISOString(),
  };
  // Who to tell is looked up while the message and its conversation are written.
  const agentConnections = (delivery.agentConnections ?? agentConnectionsAhead)();
  // Stored by an earlier attempt that died before the conversation's write: that one (its time) is
  // the message every later write and event names.
  const stored = await putMessage(fresh);
  const message = stored ? fresh : ((await getMessage(conversationId, fresh.id)) ?? fresh);
  // The provider's service window counts from when the customer wrote: a message whose webhook
  // the provider retried for hours must not open it anew.
  const wroteLate = event.dated && Date.parse(message.createdAt) - Date.parse(event.sentAt) > LATE_ARRIVAL_MS ? event.sentAt : undefined;

  // An SMS STOP or START: recorded in the write the message makes anyway, no read or write of its own.
  const optedOut = event.optOut === 'stop' ? { at: message.createdAt } : event.optOut === 'start' ? null : undefined;

  let conversation: ConversationRecord | undefined;
  let reopened = false;
  let created = false;
  let greeting: Greeting | undefined;
  if (draft) {
    // Opted out from its first message: not greeted either (the provider would refuse it).
    const drafted = optedOut ? { ...found, optedOut } : found;
    // One write for the new conversation, its first message applied. Before it: the contact lists
    // it (a retry after a crash finds that done), its agent and its greeting, side by side.
    const [contactId, prepared] = await Promise.all([listUnderContact(found.contact.id, found.id), beforeNewConversation(drafted, message, wroteLate)]);
    const first: ConversationRecord = {
      ...drafted,
      // It starts with the customer's message (its report episode does, src/domain/episodes.ts), not
      // with this attempt: a retry after a crash that stored the message comes a visibility timeout later.
      createdAt: message.createdAt,
      // The contact it was merged into meanwhile, if it was.
      contact: { ...found.contact, id: contactId },
      lastInboundId: message.id,
      ...(ordered ? { lastInboundSeq: markOf(ordered) } : {}),
      lastMessageAt: message.createdAt,
      lastInboundAt: message.createdAt,
      ...(wroteLate ? { windowFrom: wroteLate } : {}),
      updatedAt: message.createdAt,
      unreadCount: 1,
      ...prepared.fields,
    };
    created = await createConversation(first);
    if (created) {
      conversation = first;
      greeting = prepared.greeting;
    } else {
      await prepared.abandon();
    }
  }
  if (!created) {
    const ours = storedByThisDelivery(message, ordered, delivery, stored);
    // The first message of this lane after the other lane's: that lane's mark moves aside (kept).
    const replaces = ordered && found.lastInboundSeq && parseMark(found.lastInboundSeq)?.group !== ordered.group ? found.lastInboundSeq : undefined;
    // A late message takes the read-modify-write: the window's start must not move back.
    const fast = wroteLate
      ? undefined
      : await applyMessageToOpenConversation(
          conversationId,
          { id: message.id, createdAt: message.createdAt, direction: 'inbound', private: false, senderType: 'contact', ...(optedOut !== undefined ? { optedOut } : {}) },
          ordered && { mark: markOf(ordered), replaces },
        );
    if (fast && fast !== 'duplicate') {
      conversation = fast;
    } else if (!fast || ours) {
      // Not open (or not there), or refused as applied where that may not be so: read-modify-write,
      // which also reopens. A customer's messages may come in two lanes at once (a WhatsApp number
      // alone, and with the BSUID), each making its id above the last one applied as it read it: the
      // lane whose message got the lower id applies it after the other's, as a message overtaken
      // (counted, told to the agents, the conversation's activity not moved back). That this delivery
      // stored it and its lane's mark (appliedTo) tell it from a redelivery or a provider's copy.
      const result = await updateConversation(
        conversationId,
        (c) => {
          if (appliedTo(c, message, ordered, { ours, stored })) return undefined;
          const newest = !c.lastInboundId || c.lastInboundId < message.id;
          const latest = (at: string | undefined) => (at && at > message.createdAt ? at : message.createdAt);
          const arrived = newest
            ? {
                lastInboundId: message.id,
                ...(ordered ? marksAfter(c, ordered, true) : {}),
                lastMessageAt: message.createdAt,
                lastInboundAt: message.createdAt,
                windowFrom: windowFromAfter(c, wroteLate, message.createdAt),
                updatedAt: message.createdAt,
                unreadCount: c.unreadCount + 1,
                // Only the newest message says whether the customer is opted out now.
                ...(optedOut !== undefined ? { optedOut: optedOut ? (c.optedOut ?? optedOut) : undefined } : {}),
              }
            : {
                ...(ordered ? marksAfter(c, ordered, false) : {}),
                lastMessageAt: latest(c.lastMessageAt),
                lastInboundAt: latest(c.lastInboundAt),
                // The window counts from the newest of the customer's messages.
                windowFrom: message.createdAt > (c.lastInboundAt ?? '') ? windowFromAfter(c, wroteLate, message.createdAt) : c.windowFrom,
                updatedAt: latest(c.updatedAt),
                unreadCount: c.unreadCount + 1,
              };
          // A rating answers the CSAT question and leaves the conversation resolved, its agent's; any
          // other message (one written before the question too, however late it arrives) drops it.
          // The question stays open to ratings: one sent again (a second tap on the widget's
          // buttons, a change of mind) is the newest rating, not a new issue greeted and routed.
          const rating = csatRatingFor(c, message, event.dated ? event.sentAt : undefined);
          const unasked = c.engagement?.csatAskedAt ? { engagement: { ...c.engagement, csatAskedAt: undefined, csatResolvedAt: undefined } } : {};
          reopened = c.status !== 'open' && !rating;
          if (rating) return { ...c, ...arrived, csat: { ...rating, at: message.createdAt } };
          return {
            ...c,
            // Back after a resolution: a new start, which the autoresponder greets again, unless
            // the customer is answering what the team wrote since (a follow-up, a campaign).
            ...(c.status === 'resolved'
              ? { reopenCount: (c.reopenCount ?? 0) + 1, episodeStartedAt: message.createdAt, autoresponded: wroteSinceResolved(c) }
              : {}),
            // Long after it: a new issue as well, for the reports (src/domain/episodes.ts).
            ...(startsNewEpisode(c, message.createdAt) ? newEpisode(c, message.createdAt) : {}),
            status: 'open',
            // A redelivery of this message that finds its hooks unfinished routes the reopening again (resumeApplied).
            ...(reopened ? { reopenedBy: message.id } : {}),
            resolvedAt: undefined,
            snoozedUntil: undefined,
            ...arrived,
            ...unasked,
          };
        },
        // The closed episode keeps its figures, in the same write.
        (before, after) => (after.reportStartedAt !== before.reportStartedAt && closesOwnEpisode(before) ? closedEpisodeItem(before) : undefined),
      );
      if (result && result.after !== result.before) conversation = result.after;
    }
  }

  await ackVisitor(event, record);
  // Already applied by an earlier delivery: its events went out then.
  if (!conversation) return;
  await afterApply({ conversation, message, created, reopened, greeting }, created ? undefined : (before ?? found), agentConnections);
}

/** A message that reaches us this long after its provider time arrived late (a retried webhook). */
const LATE_ARRIVAL_MS = 60_000;

/**
 * The window's start after a customer message arriving at `arrivedAt` (written at `wroteLate`
 * when it came late): never earlier than it was, and absent when it is the arrival itself.
 */
function windowFromAfter(c: ConversationRecord, wroteLate: string | undefined, arrivedAt: string): string | undefined {
  if (!wroteLate) return undefined;
  const start = [windowStart(c) ?? '', wroteLate].sort().at(-1)!;
  return start === arrivedAt ? undefined : start;
}

/** The widget's `ack` for a visitor's sendMessage, on the connection that sent it. */
async function ackVisitor(event: InboundMessageEvent, record: { conversationId: string; messageId: string }): Promise<void> {
  if (!event.replyToConnectionId) return;
  await sendToConnection(
    { connectionId: event.replyToConnectionId, audience: { kind: 'visitor', visitorId: event.handle } },
    { type: 'ack', clientMessageId: event.clientMessageId, messageId: record.messageId, conversationId: record.conversationId },
  );
}

/**
 * The delivery applied last (of its lane) came back (a crash or a timeout after the conversation
 * update): its hooks and fan-out may not have run, and each is safe to run again (the autoresponder and
 * the assignment claim their change, timers are replaced, a new conversation's stored greeting
 * is queued again under the same deduplication id). Agents may get its events twice, with the
 * same message id.
 */
async function resumeApplied(conversation: ConversationRecord, messageId: string | undefined, isThisDelivery: (m: Message) => boolean): Promise<void> {
  const message = messageId ? await getMessage(conversation.id, messageId) : undefined;
  // An undated message of the same customer (no sequence mark of its own) may have come after it.
  if (!message || !isThisDelivery(message)) return;
  // A first message's greeting is stored with its conversation but queued by the hooks.
  const greeting = await unfinishedGreeting(conversation, message);
  // A reopening whose first run died before its routing took the agent's slot back (or requeued it).
  const reopened = conversation.reopenedBy === message.id;
  await afterApply({ conversation, message, created: false, reopened, resumed: true, greeting }, conversation);
}

/** Routing and engagement hooks, then the fan-out, with the timers beside it. */
async function afterApply(context: InboundHookContext, before: ConversationRecord | undefined, agentConnections?: Promise<ConnectionRecord[]>): Promise<void> {
  const { message } = context;
  const hooked = await afterInbound(context);
  const fanOut = async () => {
    const reached = await publishToConversation(hooked.conversation, [
      messageEvent(message, hooked.conversation),
      ...hooked.messages.map((m) => messageEvent(m)),
      conversationEventAfterMessage(before, hooked.conversation),
    ], before, agentConnections);
    // The autoresponder's web messages went out in that fan-out: a visitor connection that took
    // them makes them delivered, as it does an agent's reply (src/domain/outbound.ts).
    const handed = hooked.messages.filter((m) => m.channel === 'web' && !m.private && m.status === 'sent');
    if (reached > 0 && handed.length > 0) {
      const delivered = await Promise.all(handed.map((m) => updateMessageStatus(m.conversationId, m.id, 'delivered')));
      const changed = delivered.filter((m): m is Message => m !== undefined);
      if (changed.length > 0) await publish(changed.map(messageUpdatedEvent), { agents: scopeOf(hooked.conversation) });
    }
    // The customer's files are copied from the provider meanwhile (src/domain/provider-media.ts).
    const keep = keepMediaJob(message);
    if (keep) await enqueueOutbound([keep]);
    await hooked.afterPublish?.();
  };
  // The timers neither wait for the fan-out nor delay it: one round trip less per message. A
  // failure of either (or anywhere above) is retried by the queue, and the redelivery resumes
  // here (resumeApplied).
  await besideTimers(fanOut(), hooked.timers?.());
}

async function ingestWatermark(event: InboundStatusEvent, redelivered: boolean): Promise<void> {
  const handle = await getHandle(event.channel, event.handle);
  const conversationId = handle?.conversationId;
  if (!conversationId) return;
  // Kept on the handle for an echo of a Page-inbox message that comes after the watermark (its
  // webhook is sent on its own): stored read. Meta repeats a watermark with every later receipt,
  // so one the handle has reached already writes nothing (a refused write is billed too).
  if (event.status === 'read' && !(handle.readUpTo !== undefined && handle.readUpTo >= event.at)) await advanceReadUpTo(event.channel, event.handle, event.at);
  await applyToCovered(conversationId, event.status, (m) => m.createdAt <= event.at, [], redelivered);
}

/** The team wrote to the customer after the conversation was resolved. */
function wroteSinceResolved(c: ConversationRecord): boolean {
  const since = c.resolvedAt ?? '';
  return [c.followedUpAt, c.lastUnpromptedAt].some((at) => at !== undefined && at >= since);
}

/** OutboundSend.reference as a provider handed it back: `<conversationId>/<messageId>`. */
function fromReference(reference: string | undefined): { conversationId: string; messageId: string } | undefined {
  const match = reference ? /^([0-9A-HJKMNP-TV-Z]{26})\/([0-9A-HJKMNP-TV-Z]{26})$/.exec(reference) : null;
  return match ? { conversationId: match[1]!, messageId: match[2]! } : undefined;
}

/** How far back a status without our reference is looked for: WhatsApp gives up on a message after 30 days. */
const UNREFERENCED_STATUS_LOOKBACK_MS = 30 * 86_400_000;

/**
 * The message a status names by the provider's id only, in its customer's conversation, for a
 * channel that writes no id record for its sends (its statuses carry our reference). WhatsApp
 * brings the reference back on sent, delivered and read, but not always on `failed`, the one an
 * agent most needs to see; and never on the receipts of an echo (a send from the Business app).
 */
async function sentTo(event: InboundStatusEvent, conversationId: string): Promise<{ conversationId: string; messageId: string } | undefined> {
  const messageId = await findByProviderMessageId(conversationId, event.providerMessageId, Date.parse(event.at) - UNREFERENCED_STATUS_LOOKBACK_MS, 'outbound');
  return messageId ? { conversationId, messageId } : undefined;
}

export async function ingestStatus(event: InboundStatusEvent, delivery: Pick<Delivery, 'redelivered'> = {}): Promise<void> {
  if (event.providerMessageId === ALL_BEFORE_WATERMARK) return ingestWatermark(event, delivery.redelivered === true);
  const referenced = fromReference(event.reference);
  const byId = !referenced && !(isProviderChannel(event.channel) && getAdapter(event.channel).statusesCarryReference);
  const scope = `${event.channel}#${event.providerMessageId}`;
  // Without our reference where sends record no id: looked for in the customer's conversation.
  const conversationId = referenced || byId ? undefined : (await getHandle(event.channel, event.handle))?.conversationId;
  const lookUp = async () => (byId ? getDedup(scope) : conversationId ? sentTo(event, conversationId) : undefined);
  let pointer = referenced ?? (await lookUp());
  // The status may have overtaken what names its message: the send's own answer (which records the
  // id), or a WhatsApp echo, whose receipts are sent apart from it. Held for that to apply, then
  // looked up once more in case it came meanwhile. A WhatsApp status for a customer with no
  // conversation (a send from the app to someone who never wrote to us) is held too: their first
  // message may come before its echo, which reads the hold once stored. Nothing is looked up again
  // for it (the echo rides the receipt's queue lane, after it), so it costs the hold alone.
  if (!pointer) {
    await holdEarlyStatus(scope, { status: event.status, ...(event.error ? { error: event.error } : {}), ...(event.coversEarlier ? { coversEarlier: true } : {}) });
    pointer = await lookUp();
    // WhatsApp's `failed` without our reference may be for a reply of ours whose `sent` write has
    // not landed, which reads nothing held (its other receipts carry our reference): the replies in
    // flight are marked, and the one whose write records this wamid applies it. A send that
    // recorded it meanwhile is found now.
    if (!pointer && conversationId && event.status === 'failed') {
      await markSendsInFlight(conversationId, event.providerMessageId);
      pointer = await lookUp();
    }
  }
  // A status for a message we never sent (or sent before this deployment): nothing to update.
  if (!pointer) return;
  const written = await updateMessageStatus(pointer.conversationId, pointer.messageId, event.status, {
    ...(event.error ? { error: event.error } : {}),
    // The receipt of a send whose answer was lost: the only place its provider id comes from.
    ...(referenced ? { providerMessageIdIfMissing: event.providerMessageId } : {}),
  });
  // Refused on a redelivery: the attempt that died may have written it before telling the agents,
  // who are told the status as it stands (read only then: a provider's repeated receipt reads nothing).
  const updated = written ?? (delivery.redelivered ? await reachedStatus(pointer, event.status) : undefined);
  // Failed after it was sent (WhatsApp's failed, Twilio's undelivered): the timers it armed are disarmed.
  if (updated?.status === 'failed') await afterReplyFailed(updated);
  if (event.coversEarlier) return applyToCovered(pointer.conversationId, event.status, (m) => m.id < pointer.messageId, updated ? [updated] : [], delivery.redelivered);
  if (!updated) return;
  await publishStatuses(pointer.conversationId, [updated]);
}

/** How far back a reply in flight is looked for: sends finish within the queue's retries. */
const IN_FLIGHT_LOOKBACK = 20;

async function markSendsInFlight(conversationId: string, providerMessageId: string): Promise<void> {
  const { items } = await listMessages(conversationId, { limit: IN_FLIGHT_LOOKBACK, includePrivate: false, consistent: true });
  const inFlight = items.filter((m) => m.direction === 'outbound' && m.status === 'queued' && !m.providerMessageId);
  await Promise.all(inFlight.map((m) => markStatusHeld(conversationId, m.id, providerMessageId)));
}

/** The message if it is at `status` or past it. */
async function reachedStatus(pointer: { conversationId: string; messageId: string }, status: InboundStatusEvent['status']): Promise<Message | undefined> {
  const message = await getMessage(pointer.conversationId, pointer.messageId);
  return message && STATUS_RANK[message.status] >= STATUS_RANK[status] ? message : undefined;
}
