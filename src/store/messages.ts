import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import type { Attachment, Message, MessageStatus, SendProgress } from '../domain/types';
import { encodeTime } from 'ulid';
import { putNew, queryAll, updateIf } from './items';
import { keys } from './keys';
import { decodeCursor, encodeCursor } from './cursor';
import { addCampaignCounts, countsForTransition, dropCampaignMark } from './campaigns';

const DEDUP_TTL_SECONDS = 14 * 24 * 3600;
const INTERNAL = new Set(['pk', 'sk', 'expiresAt', 'sendProgress', 'sendFailures', 'heldStatusIds', 'readInFlight', 'campaignId']);

export function toMessage(item: Record<string, unknown>): Message {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) if (!INTERNAL.has(k)) out[k] = v;
  // A customer may quote any part of a reply sent in several: consoles find it by these ids too.
  const otherIds = (item.sendProgress as SendProgress | undefined)?.otherIds;
  if (Array.isArray(otherIds) && otherIds.length > 0) out.otherProviderMessageIds = otherIds;
  return out as unknown as Message;
}

export interface DedupRecord {
  conversationId: string;
  messageId: string;
}

/**
 * Claims an idempotency scope (a provider message id, a client message id) for a message.
 * The first caller wins; later callers get the winner's record. Lives 14 days, longer
 * than any provider retries.
 */
export async function claimDedup(scope: string, record: DedupRecord): Promise<{ claimed: boolean; record: DedupRecord }> {
  if (await putNew({ ...keys.dedup(scope), ...record, expiresAt: Math.floor(Date.now() / 1000) + DEDUP_TTL_SECONDS })) {
    return { claimed: true, record };
  }
  const existing = await getDedup(scope);
  if (!existing) throw new Error(`dedup record ${scope} vanished`);
  return { claimed: false, record: existing };
}

/**
 * Writes the record for a scope unless one is there (a redelivered send re-creating the claims its
 * dead attempt may not have made): no read back, the winner's record stands.
 */
export async function restoreDedup(scope: string, record: DedupRecord): Promise<void> {
  await putNew({ ...keys.dedup(scope), ...record, expiresAt: Math.floor(Date.now() / 1000) + DEDUP_TTL_SECONDS });
}

/** Takes back a claim whose request was refused after all (the claim was made beside the checks). */
export async function releaseDedup(scope: string): Promise<void> {
  await ddb().send(new DeleteCommand({ TableName: config.tableName, Key: keys.dedup(scope) }));
}

export async function getDedup(scope: string): Promise<DedupRecord | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.dedup(scope), ConsistentRead: true }));
  return out.Item ? { conversationId: String(out.Item.conversationId), messageId: String(out.Item.messageId) } : undefined;
}

/** How far a message has got: a status update never moves it back. */
export const STATUS_RANK: Readonly<Record<MessageStatus, number>> = { received: 0, queued: 0, sent: 1, delivered: 2, read: 3, failed: 4 };

/** Sends finish within the queue's retries (minutes); a status for a message we never sent lingers no longer. */
const EARLY_STATUS_TTL_SECONDS = 24 * 3600;

export interface EarlyStatus {
  status: MessageStatus;
  error?: string;
  /** The receipt names the newest message it covers (Instagram's seen): the earlier replies take it too. */
  coversEarlier?: true;
}

/** Keeps a status whose provider id no send or echo has recorded yet, for that one to apply (applyHeldStatuses). */
export async function holdEarlyStatus(scope: string, early: EarlyStatus): Promise<void> {
  await ddb().send(
    new PutCommand({ TableName: config.tableName, Item: { ...keys.earlyStatus(scope, early.status), ...early, expiresAt: Math.floor(Date.now() / 1000) + EARLY_STATUS_TTL_SECONDS } }),
  );
}

/**
 * Statuses held for a provider id, in the order they may apply (a status never moves back). One
 * past its day is left out: DynamoDB's TTL deletes it up to two days late, and what it waited
 * for (a send, an echo: minutes) is long settled, so it must mark no message recorded since.
 */
export async function earlyStatuses(scope: string): Promise<EarlyStatus[]> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': keys.earlyStatusPartition(scope) },
      ConsistentRead: true,
    }),
  );
  const now = Math.floor(Date.now() / 1000);
  return (out.Items ?? [])
    .filter((item) => typeof item.expiresAt !== 'number' || item.expiresAt >= now)
    .map((item) => ({
      status: item.status as MessageStatus,
      ...(typeof item.error === 'string' ? { error: item.error } : {}),
      ...(item.coversEarlier === true ? { coversEarlier: true as const } : {}),
    }))
    .sort((a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status]);
}

/** Stores a message once: false when a message with this id is already there. */
export async function putMessage(message: Message): Promise<boolean> {
  return putNew({ ...keys.message(message.conversationId, message.id), ...message });
}

/** Takes back a message stored for a conversation that, in the end, was not written. */
export async function deleteMessage(conversationId: string, messageId: string): Promise<void> {
  await ddb().send(new DeleteCommand({ TableName: config.tableName, Key: keys.message(conversationId, messageId) }));
}

/**
 * When the team first replied on the conversation at or after `since` (an agent's or an echo's
 * message to the customer, neither a note nor a proactive one: what sets `firstReplyAt`), read
 * from its messages: the conversation keeps its first reply only. Reads the messages whose ids date
 * from a minute before `since` on (a reply's id is made a moment before its `createdAt`).
 */
export async function firstTeamReplySince(conversationId: string, since: string): Promise<string | undefined> {
  const items = await queryAll({
    KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
    FilterExpression: '#direction = :outbound AND #private = :false AND sender.#type = :agent AND attribute_not_exists(unprompted) AND createdAt >= :since',
    ExpressionAttributeNames: { '#direction': 'direction', '#private': 'private', '#type': 'type' },
    ProjectionExpression: 'createdAt',
    ExpressionAttributeValues: {
      ':pk': keys.messagePartition(conversationId),
      ':from': `${keys.messagePrefix}${encodeTime(Math.max(0, Date.parse(since) - 60_000), 10)}`,
      ':to': `${keys.messagePrefix}~`,
      ':outbound': 'outbound',
      ':false': false,
      ':agent': 'agent',
      ':since': since,
    },
    ConsistentRead: true,
  });
  return items.map((item) => String(item.createdAt)).sort()[0];
}

/**
 * The id of the message stored for a provider message id in one direction (the customer's, or
 * ours), looking only at messages whose ids date from `sinceMs` on: how a provider's late
 * redelivery finds its original, a status our send, an edit the customer's message it edits.
 * The direction is part of the question: a customer's edit must never be taken for one of our
 * own messages, nor a status for the customer's.
 */
export async function findByProviderMessageId(
  conversationId: string,
  providerMessageId: string,
  sinceMs: number,
  direction: Message['direction'],
): Promise<string | undefined> {
  const items = await queryAll({
    KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
    FilterExpression: 'providerMessageId = :pmid AND #direction = :direction',
    ExpressionAttributeNames: { '#direction': 'direction' },
    ProjectionExpression: 'id',
    ExpressionAttributeValues: {
      ':pk': keys.messagePartition(conversationId),
      ':from': `${keys.messagePrefix}${encodeTime(Math.max(0, sinceMs), 10)}`,
      ':to': `${keys.messagePrefix}~`,
      ':pmid': providerMessageId,
      ':direction': direction,
    },
    ConsistentRead: true,
  });
  return items[0] ? String(items[0].id) : undefined;
}

export async function getMessage(conversationId: string, messageId: string): Promise<Message | undefined> {
  return (await getMessageToSend(conversationId, messageId))?.message;
}

/** A message with what earlier attempts at sending it in parts got accepted (once sent, every part). */
export interface MessageToSend {
  message: Message;
  sendProgress?: SendProgress;
  /** Attempts the provider answered "later" to so far. */
  sendFailures: number;
  /**
   * The last attempt left the part after its progress untaken: the provider refused it with an
   * answer (not a timeout, after which it may have taken it), or it was never started (deferSend).
   */
  nextPartUntaken?: true;
  /** A status without our reference was held under the provider id the send recorded (markStatusHeld). */
  statusHeld?: true;
  /** The web visitor read it before its delivery was written (markReadInFlight). */
  readInFlight?: true;
}

export async function getMessageToSend(conversationId: string, messageId: string): Promise<MessageToSend | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.message(conversationId, messageId), ConsistentRead: true }),
  );
  if (!out.Item) return undefined;
  const progress = out.Item.sendProgress as SendProgress | undefined;
  const statusHeld = heldFor(out.Item, out.Item.providerMessageId);
  return {
    message: toMessage(out.Item),
    ...(progress ? { sendProgress: progress } : {}),
    sendFailures: Number(out.Item.sendFailures ?? 0),
    ...(out.Item.nextPartUntaken === true ? { nextPartUntaken: true as const } : {}),
    ...(statusHeld ? { statusHeld } : {}),
    ...(out.Item.readInFlight === true ? { readInFlight: true as const } : {}),
  };
}

/**
 * Counts an attempt the provider answered "later" to, on the message itself: the queue's receive
 * count also rises for records skipped behind a failing one of their conversation, so it cannot
 * tell how often this message was tried. Written on failures only. `untaken`: the provider answered
 * (a 429, a 5xx), so the part it refused was not taken; after a timeout it may have been.
 */
export async function recordSendFailure(conversationId: string, messageId: string, untaken: boolean): Promise<number> {
  const out = await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.message(conversationId, messageId),
      UpdateExpression: 'ADD sendFailures :one SET nextPartUntaken = :untaken',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':one': 1, ':untaken': untaken },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return Number(out.Attributes?.sendFailures ?? 1);
}

/** A send put off before its next part was started (no attempt: the counter stays). */
export async function recordSendDeferred(conversationId: string, messageId: string): Promise<void> {
  await updateIf({
    Key: keys.message(conversationId, messageId),
    UpdateExpression: 'SET nextPartUntaken = :untaken',
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeValues: { ':untaken': true },
  });
}

/**
 * Records the parts of a message the provider accepted, only ever more of them: a finished send (its
 * `sent` write records every part) is left alone. Not only while `queued`: on WhatsApp an earlier
 * part's receipt (our reference rides on each part) may have moved the reply on.
 */
export async function recordSendProgress(conversationId: string, messageId: string, progress: SendProgress): Promise<void> {
  await updateIf({
    Key: keys.message(conversationId, messageId),
    UpdateExpression: 'SET sendProgress = :progress',
    ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(sendProgress) OR sendProgress.partsSent < :parts)',
    ExpressionAttributeValues: { ':progress': progress, ':parts': progress.partsSent },
  });
}

/**
 * Points one attachment at its copy of ours, unless it was changed meanwhile (a copy job that
 * ran twice): the message as it is after, or undefined.
 */
export async function replaceAttachment(
  conversationId: string,
  messageId: string,
  index: number,
  from: string,
  to: Attachment,
  /** The message's text too, in the same write, if it still reads `was` (an MMS text part read into it). */
  text?: { was: string; now: string },
): Promise<Message | undefined> {
  return updateMessageIf(conversationId, messageId, {
    UpdateExpression: `SET attachments[${index}] = :to${text ? ', #text = :text' : ''}`,
    ConditionExpression: `attachments[${index}].#url = :from${text ? ' AND #text = :was' : ''}`,
    ExpressionAttributeNames: { '#url': 'url', ...(text ? { '#text': 'text' } : {}) },
    ExpressionAttributeValues: { ':from': from, ':to': to, ...(text ? { ':text': text.now, ':was': text.was } : {}) },
  });
}

/**
 * On the message a `sent` write returns when a status was held for the provider id it records
 * while the send was in flight (markStatusHeld): what is held for that id applies to it. A
 * symbol, so it never reaches a frame or an answer.
 */
export const STATUS_HELD: unique symbol = Symbol('statusHeld');
/** On the message a status write returns when the web visitor read it while it was queued (markReadInFlight). */
export const READ_IN_FLIGHT: unique symbol = Symbol('readInFlight');
export type WrittenMessage = Message & { [STATUS_HELD]?: true; [READ_IN_FLIGHT]?: true };

/** Whether markStatusHeld marked the message item for `providerMessageId`. */
function heldFor(item: Record<string, unknown>, providerMessageId: unknown): boolean {
  const held = item.heldStatusIds;
  return typeof providerMessageId === 'string' && held instanceof Set && held.has(providerMessageId);
}

/**
 * Marks a send in flight (queued, no provider id recorded yet) as possibly the one a status
 * held under `providerMessageId` is for: its `sent` write, if it records that id, says so
 * (STATUS_HELD). False when it is no longer in flight.
 */
export async function markStatusHeld(conversationId: string, messageId: string, providerMessageId: string): Promise<boolean> {
  return updateIf({
    Key: keys.message(conversationId, messageId),
    UpdateExpression: 'ADD heldStatusIds :ids',
    ConditionExpression: '#status = :queued AND attribute_not_exists(providerMessageId)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':ids': new Set([providerMessageId]), ':queued': 'queued' },
  });
}

/**
 * Marks a web reply the visitor read while it is still queued: the visitor gets it from the
 * delivery job's frame, which is sent before that job writes `delivered`, so their read may come
 * first. The delivery write returns the mark (READ_IN_FLIGHT) and the job writes `read` after it.
 * False when it is no longer queued (the read can then write `read` itself).
 */
export async function markReadInFlight(conversationId: string, messageId: string): Promise<boolean> {
  return updateIf({
    Key: keys.message(conversationId, messageId),
    UpdateExpression: 'SET readInFlight = :value',
    ConditionExpression: '#status = :queued',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':value': true, ':queued': 'queued' },
  });
}

/** Statuses only move forward (sent → delivered → read); `failed` ends a send. */
export async function updateMessageStatus(
  conversationId: string,
  messageId: string,
  status: MessageStatus,
  extra: { providerMessageId?: string; sendProgress?: SendProgress; error?: string; providerMessageIdIfMissing?: string } = {},
): Promise<WrittenMessage | undefined> {
  const sets = ['#status = :status'];
  const values: Record<string, unknown> = { ':status': status };
  if (extra.providerMessageId) {
    sets.push('providerMessageId = :pmid');
    values[':pmid'] = extra.providerMessageId;
  } else if (extra.providerMessageIdIfMissing) {
    sets.push('providerMessageId = if_not_exists(providerMessageId, :pmid)');
    values[':pmid'] = extra.providerMessageIdIfMissing;
  }
  if (extra.sendProgress) {
    sets.push('sendProgress = :progress');
    values[':progress'] = extra.sendProgress;
  }
  if (extra.error) {
    sets.push('#error = :error');
    values[':error'] = extra.error;
  }
  const lower = Object.entries(STATUS_RANK)
    .filter(([, rank]) => rank < STATUS_RANK[status])
    .map(([name]) => name);
  const allowed = lower.map((_, i) => `:s${i}`);
  lower.forEach((name, i) => (values[`:s${i}`] = name));
  // The item as it was, so that a campaign message's counters know the status it left; what the
  // write made of it is rebuilt from the SET above (the same units as ALL_NEW).
  const old = await updateMessageItemIf(
    conversationId,
    messageId,
    {
      UpdateExpression: `SET ${sets.join(', ')}`,
      ConditionExpression: `attribute_exists(pk) AND #status IN (${allowed.join(', ')})`,
      ExpressionAttributeNames: { '#status': 'status', ...(extra.error ? { '#error': 'error' } : {}) },
      ExpressionAttributeValues: values,
    },
    'ALL_OLD',
  );
  if (!old) return undefined;
  const item: Record<string, unknown> = {
    ...old,
    status,
    ...(extra.providerMessageId ? { providerMessageId: extra.providerMessageId } : {}),
    ...(!extra.providerMessageId && extra.providerMessageIdIfMissing && old.providerMessageId === undefined ? { providerMessageId: extra.providerMessageIdIfMissing } : {}),
    ...(extra.sendProgress ? { sendProgress: extra.sendProgress } : {}),
    ...(extra.error ? { error: extra.error } : {}),
  };
  // Counted only by the write that applied the change: a redelivered job's is refused above.
  if (typeof old.campaignId === 'string') {
    const campaignId = old.campaignId;
    await Promise.all([addCampaignCounts(campaignId, countsForTransition(old.status as MessageStatus, status)), status === 'failed' ? dropCampaignMark(conversationId, campaignId) : undefined]);
  }
  const message: WrittenMessage = toMessage(item);
  if (heldFor(item, extra.providerMessageId)) message[STATUS_HELD] = true;
  if (item.readInFlight === true) message[READ_IN_FLIGHT] = true;
  return message;
}

/** A conditional update of one message: the message as it is after it, or undefined when the condition failed. */
async function updateMessageIf(
  conversationId: string,
  messageId: string,
  update: Pick<UpdateCommandInput, 'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>,
): Promise<Message | undefined> {
  const item = await updateMessageItemIf(conversationId, messageId, update);
  return item ? toMessage(item) : undefined;
}

/** The same, the item as stored. */
async function updateMessageItemIf(
  conversationId: string,
  messageId: string,
  update: Pick<UpdateCommandInput, 'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>,
  returnValues: 'ALL_NEW' | 'ALL_OLD' = 'ALL_NEW',
): Promise<Record<string, unknown> | undefined> {
  try {
    const out = await ddb().send(
      new UpdateCommand({ TableName: config.tableName, Key: keys.message(conversationId, messageId), ...update, ReturnValues: returnValues }),
    );
    return out.Attributes;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}

/**
 * A reply the provider took, whose status callback moved it past `queued` before the send's own
 * status write: keeps the provider's id (and every part's, in `sendProgress`) and returns the
 * message as it stands. Undefined when it is gone.
 */
export async function settleOvertakenSend(conversationId: string, messageId: string, providerMessageId: string, sendProgress?: SendProgress): Promise<Message | undefined> {
  return updateMessageIf(conversationId, messageId, {
    UpdateExpression: `SET providerMessageId = :pmid${sendProgress ? ', sendProgress = :progress' : ''}`,
    ConditionExpression: 'attribute_exists(pk) AND #status IN (:sent, :delivered, :read, :failed)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: {
      ':pmid': providerMessageId,
      ...(sendProgress ? { ':progress': sendProgress } : {}),
      ':sent': 'sent',
      ':delivered': 'delivered',
      ':read': 'read',
      ':failed': 'failed',
    },
  });
}

/** Queries one page of history may take when most of it is private notes. */
const MAX_PAGE_ROUNDS = 5;

/**
 * History, oldest first within a page; the cursor walks back to older pages. One message more than
 * the page is read: a page that ends the history gets no cursor (DynamoDB hands a start key to a
 * query that stopped at its Limit, even with nothing after it, which sent clients to an empty page).
 */
export async function listMessages(
  conversationId: string,
  /** `consistent`: the writes made just before are in it (twice the read's cost). */
  options: {
    limit: number;
    cursor?: string;
    includePrivate: boolean;
    consistent?: boolean;
    /** Leaves out messages that failed: a web visitor's history shows what reached them (a CSAT question withdrawn before its send never did). */
    withoutFailed?: boolean;
  },
): Promise<{ items: Message[]; nextCursor: string | null }> {
  const pk = keys.messagePartition(conversationId);
  const filters = [...(options.includePrivate ? [] : ['#private = :false']), ...(options.withoutFailed ? ['#status <> :failed'] : [])];
  let startKey = decodeCursor(options.cursor, { partition: { attribute: 'pk', value: pk }, attributes: ['pk', 'sk'], sortPrefix: { attribute: 'sk', prefix: keys.messagePrefix } });
  const wanted = options.limit + 1;
  const newestFirst: Message[] = [];
  // DynamoDB filters after Limit: notes among the newest would leave a page short (or empty), so
  // the query goes on for what is missing. Each round reads no more than it may keep, so the
  // cursor stays exact; the rounds are bounded for a history that is nearly all notes.
  for (let round = 0; round < MAX_PAGE_ROUNDS; round++) {
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: {
          ':pk': pk,
          ':prefix': keys.messagePrefix,
          ...(options.includePrivate ? {} : { ':false': false }),
          ...(options.withoutFailed ? { ':failed': 'failed' } : {}),
        },
        ...(filters.length === 0
          ? {}
          : {
              FilterExpression: filters.join(' AND '),
              ExpressionAttributeNames: { ...(options.includePrivate ? {} : { '#private': 'private' }), ...(options.withoutFailed ? { '#status': 'status' } : {}) },
            }),
        ScanIndexForward: false,
        ...(options.consistent ? { ConsistentRead: true } : {}),
        Limit: wanted - newestFirst.length,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    newestFirst.push(...(out.Items ?? []).map(toMessage));
    startKey = out.LastEvaluatedKey;
    if (!startKey || newestFirst.length >= wanted) break;
  }
  // The one read ahead says there is more: the next page starts after the page's oldest message.
  if (newestFirst.length > options.limit) {
    newestFirst.length = options.limit;
    startKey = keys.message(conversationId, newestFirst[options.limit - 1]!.id);
  }
  return { items: newestFirst.reverse(), nextCursor: encodeCursor(startKey) };
}
