import { GetCommand, PutCommand, QueryCommand, UpdateCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import type { Channel, Conversation, ConversationStatus } from '../domain/types';
import { batchGetAll, gsi2Page, putNew } from './items';
import { keys } from './keys';
import { markLoadChanging } from './agents';
import { decodeCursor, encodeCursor } from './cursor';
import { ClientError, notFound } from '../domain/errors';
import { conversationWindow, windowStart } from '../channels/window';

/** A conversation as stored: the public shape plus what routing needs. */
export interface ConversationRecord extends Omit<Conversation, 'participants' | 'csat'> {
  /**
   * The newest rating, as shown. `ofEarlierEpisode` (never shown): kept on a conversation that took
   * an episode moved from another channel, it rates an episode before that one (src/domain/episodes.ts).
   */
  csat?: NonNullable<Conversation['csat']> & { ofEarlierEpisode?: true };
  /** A DynamoDB string set, so that adding an agent is one idempotent `ADD` in the message's update. */
  participants?: ReadonlySet<string>;
  /** The customer's id on the channel (phone, PSID, chat id, visitor id): where replies go. */
  handle: string;
  visitorId?: string;
  /**
   * The last customer (inbound) and team (outbound) message applied to this item: a redelivery
   * of the same message changes nothing. Inbound order is FIFO per queue group, so within a lane
   * "not above the last one applied" is exact (a customer with two lanes: see otherInboundSeq);
   * outbound ids from different writers are not compared (clocks differ).
   */
  lastInboundId?: string;
  lastOutboundId?: string;
  /**
   * `<queue group>|<sequence number>` of the inbound queue message `lastInboundId` came from: SQS
   * numbers a FIFO group's messages in increasing order, so a redelivered one is "not above" this mark.
   */
  lastInboundSeq?: string;
  /**
   * The same mark for the other lane of a customer whose messages come in two queue groups (a
   * WhatsApp number alone, and with the BSUID beside it): the last message of that lane applied,
   * which may have a lower id than `lastInboundId` (the lanes run side by side, src/domain/inbound.ts).
   */
  otherInboundSeq?: string;
  /** Times a resolved conversation was reopened (first-contact resolution needs it). */
  reopenCount?: number;
  /**
   * The customer message that last reopened it (from resolved, snoozed or pending): a redelivery of
   * that message whose first run died before its hooks finished routes the reopening again.
   */
  reopenedBy?: string;
  /**
   * The agent credited with its latest resolution (src/domain/conversations.ts withStatus), kept
   * through a reopening: the reports charge a resolution that did not hold to them, whoever holds
   * the conversation now. Not in the reports index (its projection cannot change): read per row.
   */
  resolvedBy?: string;
  /** Optimistic-locking counter for read-modify-write changes. */
  version: number;
  /** The autoresponder answered since the conversation started (or was last reopened by the customer). */
  autoresponded?: boolean;
  /**
   * When the customer's message reopened it from `resolved`: a new start, greeted again as a new
   * conversation would be. Absent for a conversation never reopened that way.
   */
  episodeStartedAt?: string;
  /**
   * Start of the episode the reports count this item for (src/domain/episodes.ts): a customer
   * back long after a resolution brings a new issue. Absent: `createdAt`.
   */
  reportStartedAt?: string;
  /**
   * The conversation an agent moved this one to (src/api/channel-transfer.ts): its episode went
   * with it, so this one stays out of the reports index until the customer starts a new episode here.
   */
  movedTo?: string;
  /**
   * Made by the team (a move to a channel the customer never wrote on, with no unresolved issue to
   * carry): out of the reports index until the customer's first message there starts its episode.
   */
  teamStarted?: boolean;
  /**
   * Newest proactive message (sent without the customer asking): the team has written, but it is
   * no reply, so `firstReplyAt` (what the reports read) does not move for it.
   */
  lastUnpromptedAt?: string;
  /** The newest campaign written here and when, until the customer's next message counts as its reply (src/domain/campaigns.ts). */
  lastCampaignId?: string;
  lastCampaignAt?: string;
  /** The campaign message that set the mark last: kept when the mark goes, so that it is set once per message. */
  lastCampaignMessageId?: string;
  /**
   * The provider's time of the newest customer message when it arrived late (more than
   * LATE_ARRIVAL_MS after it was written, src/domain/inbound.ts): the service window counts from it.
   */
  windowFrom?: string;
  /** Newest agent message (not a note) written while the conversation was not open: a follow-up. */
  followedUpAt?: string;
  /**
   * The agent a transfer took it from, back to the queue: automatic assignment offers it to
   * anyone else (src/domain/routing.ts). Gone once someone has it again.
   */
  handedOffBy?: string;
  /** When that hand-off happened: the customer writing after it, or time, lets its agent be offered it again. */
  handedOffAt?: string;
  /**
   * When it last went back to the waiting queue (open, nobody's) after being elsewhere: the queue's
   * order (the assignee index key), so that a customer coming back after a resolution, or handed
   * back, waits behind those already waiting. Absent: it has waited since it was created.
   */
  queuedAt?: string;
  /**
   * The last transfer with a note (src/domain/assignment.ts): who asked for what (`key`) and the id
   * its note is stored under, so that the same request again finds it and writes no second note.
   */
  transferNote?: { key: string; id: string };
  /**
   * The conversation an agent last continued this one in (src/api/channel-transfer.ts) and the id
   * the two notes of that move are stored under; cleared once a move comes back into this one.
   */
  continuedIn?: { to: string; id: string };
  /**
   * A move of this one to another channel under way, which alone carries its episode (src/api/channel-transfer.ts
   * claimEpisode): cleared with the move's record, or void once older than the API's timeout.
   */
  movingTo?: { channel: string; at: string };
  /** Engagement bookkeeping (src/domain/engagement.ts), never shown: makes late or repeated timers harmless. */
  engagement?: EngagementState;
  /**
   * When its contact's erasure was asked for (src/domain/erasure.ts): from then on it reads as gone
   * to agents (404, out of the inbox lists) and refuses their changes, until the erasure deletes it.
   */
  erasureRequestedAt?: string;
}

export interface EngagementState {
  /** Outside hours, the visitor was asked for an email address; cleared by their next message. */
  askedForEmail?: boolean;
  /** The message the request for an email answered: only a message after it can answer it. */
  emailAskedAfter?: string;
  /** The customer message the autoresponder's claim answered (its greeting's ids come from it). */
  greetedFor?: string;
  /** Newest message id the web visitor marked read. */
  visitorReadUpTo?: string;
  /** Newest agent reply already sent by email. */
  emailedUpTo?: string;
  /** The address (normalized) the fallback email went to: the only sender whose email replies are taken in. */
  emailedTo?: string;
  /** The agent reply a re-engagement follow-up (or note) was made for. */
  reengagedFor?: string;
  /** When that follow-up was claimed: its message id is made from it (a retried run stores the same one). */
  reengagedAt?: string;
  /** Set when auto-resolve asked the CSAT question; the answer must not reopen. */
  csatAskedAt?: string;
  /** resolvedAt to restore after a CSAT answer went through the reopening inbound path. */
  csatResolvedAt?: string;
  /**
   * The time (createdAt) of an agent reply that never reached the customer (failed), marked while it
   * was the newest message they would see: no auto-resolve while `lastMessageAt` is still that time.
   * A reopening for one that failed after the auto-resolve marks `lastMessageAt` as it stands (the
   * bot's question or follow-up after the reply is no answer either).
   */
  failedReplyAt?: string;
}

const INTERNAL = new Set(['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'gsi3pk', 'gsi3sk', 'reopenCount', 'reopenedBy', 'resolvedBy', 'handle', 'visitorId', 'lastInboundId', 'lastOutboundId', 'lastInboundSeq', 'otherInboundSeq', 'version', 'autoresponded', 'episodeStartedAt', 'reportStartedAt', 'lastUnpromptedAt', 'followedUpAt', 'windowFrom', 'engagement', 'expiresAt', 'handedOffBy', 'handedOffAt', 'movedTo', 'teamStarted', 'erasureRequestedAt', 'transferNote', 'continuedIn', 'movingTo', 'queuedAt', 'lastCampaignId', 'lastCampaignAt', 'lastCampaignMessageId']);

export function toConversation(record: ConversationRecord): Conversation {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) if (!INTERNAL.has(k)) out[k] = v;
  if (record.participants) out.participants = [...record.participants].sort();
  out.labels = record.labels ?? [];
  if (record.csat?.ofEarlierEpisode) {
    const { ofEarlierEpisode: _internal, ...csat } = record.csat;
    out.csat = csat;
  }
  out.window = conversationWindow(record.channel, windowStart(record));
  return out as unknown as Conversation;
}

function indexKeys(c: Pick<ConversationRecord, 'status' | 'lastMessageAt' | 'id' | 'assigneeId' | 'createdAt' | 'queuedAt' | 'reportStartedAt' | 'movedTo' | 'teamStarted'>) {
  return {
    ...keys.conversationInbox(c.status, c.lastMessageAt, c.id),
    ...keys.conversationAssignee(c.assigneeId, c.status, queueTime(c), c.id),
    // Undefined (dropped from the put) rather than absent: the record read back still carries them.
    ...(c.movedTo || c.teamStarted ? { gsi3pk: undefined, gsi3sk: undefined } : keys.conversationCreated(c.reportStartedAt ?? c.createdAt, c.id)),
  };
}

/** Where a conversation stands in the waiting queue: when it last joined it. */
export const queueTime = (c: Pick<ConversationRecord, 'createdAt' | 'queuedAt'>): string => c.queuedAt ?? c.createdAt;

const waitingInQueue = (c: Pick<ConversationRecord, 'status' | 'assigneeId'>) => c.status === 'open' && !c.assigneeId;

/** False when a conversation with this id exists already (a retry after a crash). */
export async function createConversation(record: ConversationRecord): Promise<boolean> {
  return putNew({ ...keys.conversation(record.id), ...indexKeys(record), ...record });
}

export async function getConversation(id: string, consistent = false): Promise<ConversationRecord | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.conversation(id), ConsistentRead: consistent }));
  return out.Item as ConversationRecord | undefined;
}

/** Whether its contact's erasure was asked for: agents neither see nor change it any more. */
export function isErasing(conversation: Pick<ConversationRecord, 'erasureRequestedAt'>): boolean {
  return conversation.erasureRequestedAt !== undefined;
}

/**
 * An agent's change (updateConversation's `change`), refused with 404 as the reads answer once the
 * conversation is being erased: checked on the record the write would replace, so no read of its own.
 */
export function agentChange(change: (current: ConversationRecord) => ConversationRecord | undefined): (current: ConversationRecord) => ConversationRecord | undefined {
  return (current) => {
    if (isErasing(current)) throw notFound('conversation');
    return change(current);
  };
}

/**
 * Marks a conversation of a contact whose erasure was asked for (erasureRequestedAt). The version
 * moves, so a read-modify-write that read it before cannot put it back unmarked. False when it is
 * gone or is another contact's by now (a merge).
 */
export async function markErasing(id: string, contactId: string, at: string): Promise<boolean> {
  try {
    await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.conversation(id),
        UpdateExpression: 'SET erasureRequestedAt = if_not_exists(erasureRequestedAt, :at), version = version + :one',
        ConditionExpression: 'attribute_exists(pk) AND #contact.#id = :contactId',
        ExpressionAttributeNames: { '#contact': 'contact', '#id': 'id' },
        ExpressionAttributeValues: { ':at': at, ':one': 1, ':contactId': contactId },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** An inbound queue delivery's mark (`<group>|<sequence number>`) for the conversation. */
export interface InboundSequence {
  mark: string;
  /** The other lane's mark, read as `lastInboundSeq`, that this one replaces there: kept as `otherInboundSeq`. */
  replaces?: string | undefined;
}

/**
 * Applies one new message to an open conversation without reading it first (the hot path).
 * Returns undefined when the conversation is not open (or another lane moved the mark it
 * replaces: the caller takes the slow path) and `'duplicate'` when this message or one with a
 * higher id was already applied (inbound: the caller tells a redelivery from a message another
 * lane overtook, src/domain/inbound.ts).
 */
export async function applyMessageToOpenConversation(
  id: string,
  message: {
    id: string;
    createdAt: string;
    direction: 'inbound' | 'outbound';
    private: boolean;
    senderType: string;
    unprompted?: boolean;
    participants?: readonly string[];
    /** An SMS opt-out (kept from its first STOP) or opt-in (null: cleared) the message brings. */
    optedOut?: { at: string } | null;
  },
  /** The queue delivery's mark (inbound only), kept as lastInboundSeq. */
  sequence?: InboundSequence,
  /** Set on the second try of a reply written before the customer reopened the conversation. */
  notFirstReply = false,
): Promise<ConversationRecord | 'duplicate' | undefined> {
  const inbound = message.direction === 'inbound';
  const reply = !inbound && !message.unprompted && message.senderType === 'agent' && !message.private;
  const guard = inbound ? 'lastInboundId' : 'lastOutboundId';
  const sets = [`${guard} = :mid`, 'updatedAt = :now', 'version = version + :one'];
  const values: Record<string, unknown> = { ':mid': message.id, ':now': message.createdAt, ':one': 1, ':open': 'open' };
  if (sequence) {
    sets.push('lastInboundSeq = :seq');
    values[':seq'] = sequence.mark;
    if (sequence.replaces) {
      sets.push('otherInboundSeq = :replaced');
      values[':replaced'] = sequence.replaces;
    }
  }
  // The other lane's mark moves aside only as it was read: had that lane applied a message since,
  // its newer mark would be lost (the slow path takes it then).
  const laneCheck = sequence?.replaces ? ' AND lastInboundSeq = :replaced' : '';
  if (!message.private) {
    sets.push('lastMessageAt = :now', 'gsi1sk = :gsi1sk');
    values[':gsi1sk'] = `${message.createdAt}#${id}`;
  }
  if (message.participants?.length) values[':participants'] = new Set(message.participants);
  const removes = inbound ? ['windowFrom'] : [];
  if (inbound) {
    sets.push('lastInboundAt = :now', 'unreadCount = unreadCount + :one');
    if (message.optedOut) {
      sets.push('optedOut = if_not_exists(optedOut, :optedOut)');
      values[':optedOut'] = message.optedOut;
    } else if (message.optedOut === null) removes.push('optedOut');
  } else if (message.unprompted) {
    sets.push('lastUnpromptedAt = :now');
  } else if (reply && !notFirstReply) {
    sets.push('firstReplyAt = if_not_exists(firstReplyAt, :now)');
  }
  // A reply written before the customer's message reopened the conversation (a follow-up written
  // while it was resolved, applied just after), or before the message that started its episode (the
  // team's text on a conversation it started), answers nothing waiting: refused here without a
  // read, then applied again without the first reply.
  // The customer's first message on a conversation the team started takes the slow path, which starts its episode.
  const teamStartedCheck = inbound ? ' AND attribute_not_exists(teamStarted)' : '';
  const firstReplyCheck =
    reply && !notFirstReply
      ? ' AND (attribute_exists(firstReplyAt) OR ((attribute_not_exists(episodeStartedAt) OR episodeStartedAt <= :now) AND (attribute_not_exists(reportStartedAt) OR reportStartedAt <= :now)))'
      : '';
  try {
    const out = await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.conversation(id),
        // A message on time counts the window from its arrival (a late one takes the slow path).
        UpdateExpression: `SET ${sets.join(', ')}${message.participants?.length ? ' ADD participants :participants' : ''}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        // Inbound ids increase per lane (src/domain/inbound.ts), so an id not above the last applied one
        // is a redelivery or another lane's overtaken message (the caller tells which); outbound ids
        // come from concurrent writers and are only told apart.
        ConditionExpression: `#status = :open AND (attribute_not_exists(${guard}) OR ${guard} ${inbound ? '<' : '<>'} :mid)${teamStartedCheck}${laneCheck}${firstReplyCheck}`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return out.Attributes as ConversationRecord;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      // The exception carries the item in DynamoDB's wire format ({ S: "…" }): lib-dynamodb does not
      // unmarshall errors, and comparing that object with an id would call every message a duplicate.
      const item = error.Item as Record<string, string | { S?: string } | undefined> | undefined;
      const text = (name: string) => {
        const attribute = item?.[name];
        return typeof attribute === 'string' ? attribute : attribute?.S;
      };
      const last = text(guard);
      if (last && (inbound ? last >= message.id : last === message.id)) return 'duplicate';
      const started = [text('episodeStartedAt'), text('reportStartedAt')].some((at) => (at ?? '') > message.createdAt);
      if (firstReplyCheck && text('status') === 'open' && !text('firstReplyAt') && started) {
        return applyMessageToOpenConversation(id, message, sequence, true);
      }
      return undefined;
    }
    throw error;
  }
}

/** The agents whose slot a change moves: an open conversation holds one of its assignee's. */
function slotHoldersMoved(before: ConversationRecord, after: ConversationRecord): string[] {
  const holder = (c: ConversationRecord) => (c.status === 'open' ? (c.assigneeId ?? null) : null);
  const [was, is] = [holder(before), holder(after)];
  return was === is ? [] : [was, is].filter((id): id is string => id !== null);
}

/**
 * Read-modify-write with optimistic locking: `change` gets the current record and returns the
 * new one (or undefined for "nothing to do"). Index keys are recomputed from the result.
 * `alongside` may name one more item to put in the same transaction (written only if the
 * conversation's write is). A change that moves an agent's slot marks their counters first
 * (markLoadChanging): the counter update that follows the write must not be counted apart from it.
 */
/** Writes of one change when other writers keep landing in between. */
const UPDATE_ATTEMPTS = 8;

export async function updateConversation(
  id: string,
  change: (current: ConversationRecord) => ConversationRecord | undefined,
  alongside?: (before: ConversationRecord, after: ConversationRecord) => Record<string, unknown> | undefined,
): Promise<{ before: ConversationRecord; after: ConversationRecord } | undefined> {
  for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
    // Writers that lost a race back off apart, so that a dozen at once do not keep colliding.
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    const current = await getConversation(id, true);
    if (!current) return undefined;
    let next = change(structuredClone(current));
    if (!next) return { before: current, after: current };
    // Back in the queue (reopened unassigned, unassigned, handed back): it joins behind those waiting.
    if (waitingInQueue(next) && !waitingInQueue(current)) next = { ...next, queuedAt: new Date().toISOString() };
    const moved = slotHoldersMoved(current, next);
    if (moved.length > 0) await markLoadChanging(moved);
    const item = { ...next, ...keys.conversation(id), ...indexKeys(next), version: current.version + 1 };
    const put = { TableName: config.tableName, Item: item, ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': current.version } };
    const extra = alongside?.(current, item);
    try {
      if (extra) await ddb().send(new TransactWriteCommand({ TransactItems: [{ Put: put }, { Put: { TableName: config.tableName, Item: extra } }] }));
      else await ddb().send(new PutCommand(put));
      return { before: current, after: item };
    } catch (error) {
      const lostRace =
        error instanceof ConditionalCheckFailedException ||
        (error instanceof TransactionCanceledException &&
          ['ConditionalCheckFailed', 'TransactionConflict'].includes(error.CancellationReasons?.[0]?.Code ?? ''));
      if (!lostRace) throw error;
    }
  }
  // 503, not 409: the caller may have written beside this change (a reply's message), so it may or
  // may not have been applied, as with service_unavailable; a retry with the same ids is safe.
  throw new ClientError(503, 'conversation_busy', `conversation ${id} kept changing while this change was made; try again`);
}

export interface ConversationFilter {
  status: ConversationStatus;
  /** An agent id, or null for the unassigned queue; undefined for everybody's. */
  assignee?: string | null;
  channel?: Channel;
  /** Conversations routed to this team. */
  team?: string;
  /** Conversations carrying this label. */
  label?: string;
  limit: number;
  cursor?: string;
  /** With an assignee: read the page's conversations strongly consistent (the index may lag). */
  consistent?: boolean;
  /**
   * With an assignee: 'activity' (an inbox) pages newest activity first across pages, exactly
   * while the list has up to WHOLE_LIST_MAX conversations; 'index' (the default, for routing)
   * walks the assignee index in its order (the unassigned queue oldest first).
   */
  order?: 'activity' | 'index';
}

/** An assignee's list (or the queue) up to this long is read whole, to be paged in activity order. */
export const WHOLE_LIST_MAX = 200;

/**
 * Without an assignee: one query on the inbox index per page, newest activity first, and one
 * BatchGet of the page (the index holds only what it filters on). With one:
 * in 'activity' order a list of up to WHOLE_LIST_MAX read whole (keys, then BatchGet) and paged
 * newest activity first; otherwise (or longer) the assignee index walked in its order (keys
 * only, arrival order), one BatchGet per page, each page sorted by activity.
 */
/** Index entries a filtered inbox page reads a round, and its rounds (at most 500 entries, about 12 read units). */
const FILTERED_READ = 100;
const FILTERED_ROUNDS = 5;

export async function listConversations(filter: ConversationFilter): Promise<{ items: ConversationRecord[]; nextCursor: string | null }> {
  const conditions = [
    ...(filter.channel ? ['channel = :channel'] : []),
    ...(filter.team ? ['team = :team'] : []),
    ...(filter.label ? ['contains(labels, :label)'] : []),
  ];
  const channelFilter = conditions.length
    ? {
        FilterExpression: conditions.join(' AND '),
        ExpressionAttributeValues: {
          ...(filter.channel ? { ':channel': filter.channel } : {}),
          ...(filter.team ? { ':team': filter.team } : {}),
          ...(filter.label ? { ':label': filter.label } : {}),
        },
      }
    : { ExpressionAttributeValues: {} as Record<string, unknown> };
  if (filter.assignee === undefined) {
    const pk = keys.inboxPartition(filter.status);
    // One past the page, so that a cursor is given only when something is after it (a full last
    // page's LastEvaluatedKey would lead to an empty one). A filter applies after Limit: a filtered
    // page reads on, a bounded number of index entries, until it has them.
    const wanted = filter.limit + 1;
    let found: Record<string, unknown>[] = [];
    let start = decodeCursor(filter.cursor, { partition: { attribute: 'gsi1pk', value: pk }, attributes: ['gsi1pk', 'gsi1sk', 'pk', 'sk'] });
    for (let round = 0; round < (channelFilter.FilterExpression ? FILTERED_ROUNDS : 1) && found.length < wanted; round++) {
      const out = await ddb().send(
        new QueryCommand({
          TableName: config.tableName,
          // gsi1, or on a table migrated from the old gsi1 the slim index with its keys: cursors hold for both.
          IndexName: config.inboxIndex,
          KeyConditionExpression: 'gsi1pk = :pk',
          ExpressionAttributeValues: { ':pk': pk, ...channelFilter.ExpressionAttributeValues },
          ...(channelFilter.FilterExpression ? { FilterExpression: channelFilter.FilterExpression } : {}),
          ScanIndexForward: false,
          Limit: channelFilter.FilterExpression ? FILTERED_READ : wanted,
          ExclusiveStartKey: start,
        }),
      );
      found.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey as typeof start;
      if (!start) break;
    }
    let nextCursor = encodeCursor(start);
    if (found.length > filter.limit) {
      const last = found[filter.limit - 1]!;
      found = found.slice(0, filter.limit);
      nextCursor = encodeCursor({ gsi1pk: last.gsi1pk, gsi1sk: last.gsi1sk, pk: last.pk, sk: last.sk });
    }
    const ids = found.map((item) => item.id as string);
    return { items: inView(await getConversations(ids, filter.consistent), filter), nextCursor };
  }
  const pk = keys.assigneePartition(filter.assignee, filter.status);
  let cursor = filter.cursor;
  if (filter.order === 'activity') {
    const whole = await wholeList(pk, filter);
    if (whole) return whole;
    // The list grew past what is read whole while the client walked it: the walk starts over.
    if (cursor && offsetCursor(cursor, pk)) cursor = undefined;
  }
  const page = await assigneeKeys(pk, {
    // The unassigned queue reads oldest first (arrival order); an agent's list newest first.
    forward: filter.assignee === null,
    limit: filter.limit,
    startKey: decodeCursor(cursor, { partition: { attribute: 'gsi2pk', value: pk }, attributes: ['gsi2pk', 'gsi2sk', 'pk', 'sk'] }),
  });
  return { items: inView(await getConversations(page.ids, filter.consistent), filter), nextCursor: encodeCursor(page.lastKey) };
}

/** One page of the assignee index (keys only): the conversation ids, in index order. */
async function assigneeKeys(
  pk: string,
  page: { limit: number; forward?: boolean; startKey?: Record<string, string> | undefined },
): Promise<{ ids: string[]; lastKey: Record<string, unknown> | undefined }> {
  const out = await gsi2Page(pk, { limit: page.limit, forward: page.forward ?? true, startKey: page.startKey });
  return { ids: out.items.map((item) => String(item.pk).slice('CONV#'.length)), lastKey: out.lastKey };
}

/**
 * An assignee list's conversations the filter shows, newest activity first. The index is read
 * keys only and may lag the table: a conversation it still files under this assignee and status
 * that has moved since (a transfer, a resolve a moment ago) is left out, as the table has it.
 */
function inView(items: ConversationRecord[], filter: Pick<ConversationFilter, 'status' | 'assignee' | 'channel' | 'team' | 'label'>): ConversationRecord[] {
  return items
    .filter((c) => c.status === filter.status && (filter.assignee === undefined || (c.assigneeId ?? null) === filter.assignee))
    .filter((c) => (!filter.channel || c.channel === filter.channel) && (!filter.team || c.team === filter.team) && (!filter.label || (c.labels ?? []).includes(filter.label)))
    .sort((a, b) => b.lastMessageAt.localeCompare(a.lastMessageAt) || b.id.localeCompare(a.id));
}

/** A cursor of wholeList: an offset into the list of this partition. */
function offsetCursor(cursor: string, pk: string): { offset: string } | undefined {
  try {
    const key = decodeCursor(cursor, { partition: { attribute: 'gsi2pk', value: pk }, attributes: ['gsi2pk', 'offset'] });
    return key && /^\d{1,6}$/.test(key.offset ?? '') ? { offset: key.offset! } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The whole list of one assignee partition, newest activity first, one page of it: undefined when
 * the list is longer than WHOLE_LIST_MAX (then it is walked in index order). Its cursor is an
 * offset into the list as read again on the next page.
 */
async function wholeList(pk: string, filter: ConversationFilter): Promise<{ items: ConversationRecord[]; nextCursor: string | null } | undefined> {
  let offset = 0;
  if (filter.cursor) {
    const key = offsetCursor(filter.cursor, pk);
    if (!key) return undefined; // a cursor of the index walk: that walk goes on
    offset = Number(key.offset);
  }
  const all = await assigneeKeys(pk, { limit: WHOLE_LIST_MAX });
  if (all.lastKey) return undefined;
  const items = inView(await getConversations(all.ids, filter.consistent), filter);
  const end = offset + filter.limit;
  return { items: items.slice(offset, end), nextCursor: end < items.length ? encodeCursor({ gsi2pk: pk, offset: String(end) }) : null };
}

export async function getConversations(ids: string[], consistent = false): Promise<ConversationRecord[]> {
  return (await batchGetAll(ids.map((id) => keys.conversation(id)), { consistent })) as unknown as ConversationRecord[];
}
