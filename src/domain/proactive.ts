/**
 * Proactive messages from admins to contacts. The API call only validates, takes quota and
 * queues one small job per contact; the outbound consumer expands each job (find the contact's
 * conversation, store the message, send it). Jobs travel in a few fixed FIFO groups ("lanes"),
 * and SQS FIFO never works on two messages of one group at once, so however many recipients a
 * request names, at most LANES provider calls for proactive sends are in flight.
 */
import { createHash } from 'node:crypto';
import { enqueueOutbound } from '../aws/queues';
import { getConversations, isErasing, type ConversationRecord } from '../store/conversations';
import { contactsWithVisitorItems, getContacts, type ContactRecord } from '../store/contacts';
import { erasedAmong } from '../store/erasure';
import { claimDedup, getDedup, releaseDedup } from '../store/messages';
import { loadContact } from './contacts';
import { takeProactiveQuota } from '../store/quota';
import { addCampaignCounts, markCampaignWritten, putCampaign } from '../store/campaigns';
import { ClientError, notFound } from './errors';
import { storeOutbound } from './engagement';
import { newId } from './ids';
import { fillPlaceholders } from './canned';
import { showsNothing } from '../zod';
import { deliverOutbound, type AgentIdentity } from './outbound';
import { isProviderChannel, type Channel, type OutboundJob } from './types';

/** Concurrent proactive sends across the workspace: well under every provider's rate limit. */
export const PROACTIVE_LANES = 4;
/** Recipients one request may name: 8 000 ids as long as ours (26 characters) fit a 256 KiB body. */
export const MAX_RECIPIENTS = 8_000;
/** Recipients per hour, across requests: a runaway script cannot flood customers. */
export const HOURLY_RECIPIENT_LIMIT = 50_000;
/** SendMessageBatch calls in flight while queueing a large request. */
const ENQUEUE_CONCURRENCY = 8;

export interface ProactiveJob extends OutboundJob {
  proactive: {
    batchId: string;
    contactId: string;
    text: string;
    channel?: Channel;
    sender: { id: string; name?: string };
  };
}

export function isProactiveJob(job: OutboundJob): job is ProactiveJob {
  return typeof (job as Partial<ProactiveJob>).proactive === 'object';
}

export interface ProactiveRequest {
  contactIds: string[];
  text: string;
  channel?: Channel;
  /** The client's id for this request: sent again (a retry after a 5xx), it queues the same batch. */
  clientRequestId?: string;
}

/** Takes `count` recipients from this hour's quota, or refuses with 429. */
async function takeQuota(count: number, now: Date): Promise<void> {
  if (!(await takeProactiveQuota(now, count, HOURLY_RECIPIENT_LIMIT))) {
    throw new ClientError(429, 'rate_limited', `at most ${HOURLY_RECIPIENT_LIMIT} proactive recipients per hour; try again later`);
  }
}

/** Who a request reaches, and the ids it names that are answered back. */
export interface Recipients {
  requested: string[];
  contactIds: string[];
  unknownContactIds: string[];
  erasedContactIds: string[];
  unreachableContactIds: string[];
}

/**
 * The distinct known contacts the channel can reach, the ids nobody has, the contacts whose erasure
 * was asked for, and the contacts the named channel cannot reach; 404 or 422 when nobody is left.
 */
export async function resolveRecipients(request: ProactiveRequest): Promise<Recipients> {
  const requested = [...new Set(request.contactIds)];
  if (requested.length > MAX_RECIPIENTS) throw new ClientError(400, 'too_many_recipients', `at most ${MAX_RECIPIENTS} contacts per request`);
  // An id no contact has (a typo, a stale list, one merged into another) takes no quota and no
  // lane: it is answered back. So is a contact whose erasure was asked for (read beside the
  // contacts, same round trips), whether its item is still there (the erasure running) or gone;
  // eventually consistent: one asked for within the last second may be missed, and its job then
  // finds no conversation to write in and stores nothing.
  const [found, erased] = await Promise.all([getContacts(requested), erasedAmong(requested)]);
  const contacts = found.filter((contact) => !contact.mergedInto && !erased.has(contact.id));
  const known = new Set(contacts.map((contact) => contact.id));
  const erasedContactIds = requested.filter((id) => erased.has(id));
  const unknownContactIds = requested.filter((id) => !known.has(id) && !erased.has(id));
  const channel = request.channel;
  const reachable = await reachableOn(channel, contacts);
  const contactIds = requested.filter((id) => reachable.has(id));
  const unreachableContactIds = requested.filter((id) => known.has(id) && !reachable.has(id));
  if (contactIds.length === 0) {
    if (unreachableContactIds.length > 0) throw new ClientError(422, 'not_reachable', `none of the contacts has a ${channel} conversation to write in`);
    // A contact whose erasure was asked for reads as gone, as GET /v1/contacts/{id} answers.
    throw notFound('contacts (none of the ids is a contact)');
  }
  return { requested, contactIds, unknownContactIds, erasedContactIds, unreachableContactIds };
}

/** The ids a request named that it does not reach, as the answers give them (only the lists that have some). */
export function answeredBack(r: Recipients): { unknownContactIds?: string[]; erasedContactIds?: string[]; unreachableContactIds?: string[] } {
  return {
    ...(r.unknownContactIds.length > 0 ? { unknownContactIds: r.unknownContactIds } : {}),
    ...(r.erasedContactIds.length > 0 ? { erasedContactIds: r.erasedContactIds } : {}),
    ...(r.unreachableContactIds.length > 0 ? { unreachableContactIds: r.unreachableContactIds } : {}),
  };
}

/**
 * The request's batch id, claimed under its clientRequestId when it has one, and whether this call
 * made the claim (a retry's did not). A new claim takes `count` recipients from the quota of
 * `quotaAt`'s hour. `sendAt` (a scheduled request) is part of what the request asks.
 */
export async function claimBatch(request: ProactiveRequest, sender: AgentIdentity, requested: string[], count: number, quotaAt: Date, sendAt?: string): Promise<{ batchId: string; claimed: boolean }> {
  // A retry of a request whose queueing failed halfway reuses its batch (its jobs' deduplication
  // ids, and the per-recipient claims of deliverProactive): nobody gets the message twice, and the
  // quota is taken once.
  const scope = request.clientRequestId ? `proactive-request#${sender.id}#${request.clientRequestId}` : undefined;
  // What the request asks, kept with its claim: the same id for another request is refused. The
  // ids as sent, not what they turned out to be: a retry after a recipient's erasure began, or after
  // one was merged into another or became reachable on the channel, is the same request.
  const asked: unknown[] = [[...requested].sort(), request.text, request.channel ?? null];
  if (sendAt) asked.push(sendAt);
  const fingerprint = `proactive#${createHash('sha256').update(JSON.stringify(asked)).digest('base64url')}`;
  const tentative = { conversationId: fingerprint, messageId: newId() };
  const { claimed, record } = scope ? await claimDedup(scope, tentative) : { claimed: true, record: tentative };
  if (record.conversationId !== fingerprint) {
    throw new ClientError(409, 'client_request_id_reused', 'this clientRequestId was used for another request: give each request its own');
  }
  if (claimed) {
    try {
      await takeQuota(count, quotaAt);
    } catch (error) {
      if (scope) await releaseDedup(scope);
      throw error;
    }
  }
  return { batchId: record.messageId, claimed };
}

/** One job per recipient on the outbound queue, in PROACTIVE_LANES groups; repeatable (deduplication ids, and deliverProactive's claims). */
export async function enqueueProactiveJobs(batchId: string, contactIds: string[], request: Pick<ProactiveRequest, 'text' | 'channel'>, sender: { id: string; name?: string }): Promise<number> {
  const jobs: ProactiveJob[] = contactIds.map((contactId, i) => ({
    conversationId: `proactive-lane-${i % PROACTIVE_LANES}`,
    messageId: `proactive-${batchId}-${contactId}`,
    proactive: {
      batchId,
      contactId,
      text: request.text,
      ...(request.channel ? { channel: request.channel } : {}),
      sender: { id: sender.id, ...(sender.name ? { name: sender.name } : {}) },
    },
  }));
  const sliceSize = Math.ceil(jobs.length / ENQUEUE_CONCURRENCY);
  await Promise.all(Array.from({ length: ENQUEUE_CONCURRENCY }, (_, i) => jobs.slice(i * sliceSize, (i + 1) * sliceSize)).filter((s) => s.length > 0).map((s) => enqueueOutbound(s)));
  return jobs.length;
}

/**
 * Queues one job per distinct known contact that the channel can reach; answers how many were
 * queued, the ids nobody has, the contacts whose erasure was asked for, and the contacts the
 * named channel cannot reach. The batch is kept as a campaign (src/domain/campaigns.ts) whose
 * outcomes GET /v1/proactive/{batchId} counts.
 */
export async function queueProactive(
  request: ProactiveRequest,
  sender: AgentIdentity,
  now = new Date(),
): Promise<{ batchId: string; queued: number; unknownContactIds?: string[]; erasedContactIds?: string[]; unreachableContactIds?: string[] }> {
  const recipients = await resolveRecipients(request);
  const { batchId } = await claimBatch(request, sender, recipients.requested, recipients.contactIds.length, now);
  const from = { id: sender.id, ...(sender.name ? { name: sender.name } : {}) };
  // Before the jobs, so that their counts have a campaign; a retry finds it there and keeps it.
  await putCampaign({
    batchId,
    state: 'sending',
    text: request.text,
    ...(request.channel ? { channel: request.channel } : {}),
    sender: from,
    createdAt: now.toISOString(),
    queuedAt: now.toISOString(),
    recipients: recipients.contactIds.length,
  });
  const queued = await enqueueProactiveJobs(batchId, recipients.contactIds, request, from);
  return { batchId, queued, ...answeredBack(recipients) };
}

/**
 * The contacts a named channel reaches: those with a conversation on it to write in. One without
 * would be queued, then skipped by the job ('no_conversation'), and nobody told. A provider handle
 * opened one; so did a web visitor (a visitor is linked to its contact by the message that starts
 * its conversation), on the contact's list or, linked later, an item of its own; email opens none
 * (an email reply joins the web conversation it answers). No channel: the newest conversation of
 * any, which every contact has (a contact is made by its first message).
 */
async function reachableOn(channel: Channel | undefined, contacts: ContactRecord[]): Promise<Set<string>> {
  if (!channel) return new Set(contacts.map((contact) => contact.id));
  if (!isProviderChannel(channel) && channel !== 'web') return new Set();
  const listed = new Set(contacts.filter((contact) => contact.handles.some((h) => h.channel === channel)).map((contact) => contact.id));
  if (channel !== 'web') return listed;
  const rest = contacts.filter((contact) => !listed.has(contact.id)).map((contact) => contact.id);
  return new Set([...listed, ...(await contactsWithVisitorItems(rest))]);
}

/**
 * A job queued again, at the end of its lane, under a deduplication id of its own (SQS would drop
 * a copy of the old one within five minutes). Repeatable: deliverProactive sends once per batch and contact.
 */
export async function requeueProactive(job: ProactiveJob): Promise<void> {
  await enqueueOutbound([{ ...job, messageId: `proactive-${job.proactive.batchId}-${job.proactive.contactId}#${newId()}` }]);
}

/**
 * The recipient as merges left it (a contact merged into another since the request took its
 * conversations there) and its conversation to write in: on the requested channel, else the most
 * recently active.
 */
async function targetConversation(contactId: string, channel: Channel | undefined): Promise<{ recipient: string; conversation?: ConversationRecord }> {
  const found = await loadContact(contactId);
  if (!found) return { recipient: contactId };
  // One whose customer's erasure was asked for is written in no more.
  const conversations = (await getConversations(found.conversationIds)).filter((c) => (!channel || c.channel === channel) && !isErasing(c));
  const newest = conversations.sort((a, b) => b.lastMessageAt.localeCompare(a.lastMessageAt))[0];
  return { recipient: found.contact.id, ...(newest ? { conversation: newest } : {}) };
}

export type ProactiveOutcome = 'sent' | 'no_conversation' | 'blank';

/**
 * One recipient, run by the outbound consumer. Repeatable: the message id is claimed once per
 * batch and contact, and deliverOutbound sends a stored message at most once.
 */
export async function deliverProactive(
  job: ProactiveJob,
  lastAttempt: boolean,
  redelivered = false,
  /** The batch's deadlines (src/domain/outbound.ts deliverOutbound), not this job's start. */
  deadlines?: { copyMs: number; sendMs: number },
): Promise<ProactiveOutcome> {
  const { batchId, contactId, text, channel, sender } = job.proactive;
  const { recipient, conversation } = await targetConversation(contactId, channel);
  const own = `proactive#${batchId}#${contactId}`;
  if (!conversation) return skip(own, 'no_conversation', batchId);
  // Merged into another contact since the request: written to as that one, under its claim, so that
  // the survivor, on the list too, gets the message once. A claim of this job's own from before the
  // merge (a redelivery) stands: its message may be stored and not yet sent.
  const ownClaim = recipient === contactId ? undefined : await getDedup(own);
  const scope = recipient === contactId || ownClaim ? own : `proactive#${batchId}#${recipient}`;
  // Skipped by an earlier delivery of this job (counted then): skipped again, counted once.
  if (ownClaim?.conversationId === SKIPPED) return ownClaim.messageId as ProactiveOutcome;
  // Filled for this customer, as the conversation knows them; one whose text fills to nothing (a
  // message of `{{contact.name}}` alone, for a customer with no name) is not sent.
  const filled = fillPlaceholders(text, { contact: conversation.contact, agent: sender });
  if (showsNothing(filled)) return skip(scope, 'blank', batchId);
  const { record } = await claimDedup(scope, { conversationId: conversation.id, messageId: newId() });
  if (record.conversationId === SKIPPED) return record.messageId as ProactiveOutcome;
  const target = record.conversationId === conversation.id ? conversation : ((await getConversations([record.conversationId]))[0] ?? conversation);
  const { message } = await storeOutbound(target, { text: filled, sender: { type: 'agent', ...sender }, unprompted: true, campaignId: batchId }, 'stored', record.messageId);
  // Before the send: the customer's answer to it counts as the campaign's reply (src/domain/campaigns.ts).
  await markCampaignWritten(target.id, batchId, message.id, message.createdAt);
  // Sent here, in this job's lane: that is what keeps proactive sends paced.
  await deliverOutbound({ conversationId: target.id, messageId: record.messageId }, lastAttempt, redelivered, deadlines?.copyMs, deadlines?.sendMs);
  return 'sent';
}

/** The claim's conversation id of a recipient the job skipped: its message id says why. */
const SKIPPED = 'skipped';

/**
 * A recipient not sent the message: claimed as skipped, so that the campaign counts it once
 * however often the job is delivered (a redelivery finds the claim and skips again).
 */
async function skip(scope: string, outcome: Exclude<ProactiveOutcome, 'sent'>, batchId: string): Promise<ProactiveOutcome> {
  const { claimed, record } = await claimDedup(scope, { conversationId: SKIPPED, messageId: outcome });
  if (claimed) await addCampaignCounts(batchId, { skipped: 1, ...(outcome === 'blank' ? { skippedBlank: 1 } : { skippedNoConversation: 1 }) });
  // Claimed by an earlier delivery that found a conversation: its message goes on as it was.
  return record.conversationId === SKIPPED ? (record.messageId as ProactiveOutcome) : outcome;
}
