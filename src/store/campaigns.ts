/**
 * Campaigns (proactive requests, src/domain/campaigns.ts): one item with what was asked and its
 * state, one small item of outcome counters, and on a conversation the newest campaign written
 * there (for the `replied` count).
 */
import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import type { Channel, MessageStatus } from '../domain/types';
import { putNew, updateIf, withoutKeys } from './items';
import { keys } from './keys';

export type CampaignState = 'scheduled' | 'sending' | 'cancelled';

export interface CampaignRecord {
  batchId: string;
  state: CampaignState;
  text: string;
  channel?: Channel;
  sender: { id: string; name?: string };
  createdAt: string;
  /** When a scheduled campaign is to be queued. */
  sendAt?: string;
  /** When its jobs were queued. */
  queuedAt?: string;
  cancelledAt?: string;
  /** Recipients queued (or to be queued). */
  recipients: number;
  /** A scheduled campaign's recipients, until it is queued or cancelled (then removed). */
  contactIds?: string[];
  /** Recipients whose erasure was asked for between the request and the send: never queued. */
  skippedAtSend?: number;
}

// `skipped` is every skip; `skippedNoConversation` and `skippedBlank` say which of the job's skips it was, ADDed in the same write.
export const CAMPAIGN_COUNTERS = ['sent', 'delivered', 'read', 'failed', 'skipped', 'skippedNoConversation', 'skippedBlank', 'replied', 'settled'] as const;
export type CampaignCounter = (typeof CAMPAIGN_COUNTERS)[number];
export type CampaignCounts = Record<CampaignCounter, number>;

/** Stores a campaign once: false when one with this id is there (a retried request). */
export function putCampaign(campaign: CampaignRecord): Promise<boolean> {
  return putNew({ ...keys.campaign(campaign.batchId), ...campaign });
}

/** The campaign and its counters (one Query, consistent: a cancel or a fire decides on it). */
export async function getCampaign(batchId: string): Promise<{ campaign: CampaignRecord; counts: CampaignCounts } | undefined> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': keys.campaignPartition(batchId) },
      ConsistentRead: true,
    }),
  );
  const items = out.Items ?? [];
  const item = items.find((i) => i.sk === keys.campaign(batchId).sk);
  if (!item) return undefined;
  const stored = items.find((i) => i.sk === keys.campaignCounts(batchId).sk) ?? {};
  const counts = Object.fromEntries(CAMPAIGN_COUNTERS.map((c) => [c, Number(stored[c] ?? 0)])) as CampaignCounts;
  return { campaign: withoutKeys<CampaignRecord>(item), counts };
}

/** scheduled → sending; the campaign as it is after, or undefined when it was not scheduled. */
export async function startCampaign(batchId: string): Promise<CampaignRecord | undefined> {
  try {
    const out = await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.campaign(batchId),
        UpdateExpression: 'SET #state = :sending',
        ConditionExpression: '#state = :scheduled',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':sending': 'sending', ':scheduled': 'scheduled' },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return withoutKeys<CampaignRecord>(out.Attributes!);
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}

/**
 * A started campaign's jobs are queued: its recipients leave the item, with the count of those
 * skipped as erased, in one conditional write (a retried fire finds them gone and queues nothing).
 */
export function finishQueueing(batchId: string, skippedAtSend: number, at: string): Promise<boolean> {
  return updateIf({
    Key: keys.campaign(batchId),
    UpdateExpression: 'SET queuedAt = :at, skippedAtSend = :skipped REMOVE contactIds',
    ConditionExpression: '#state = :sending AND attribute_exists(contactIds)',
    ExpressionAttributeNames: { '#state': 'state' },
    ExpressionAttributeValues: { ':sending': 'sending', ':at': at, ':skipped': skippedAtSend },
  });
}

/** scheduled → cancelled, its recipients removed; false when it was not scheduled. */
export function cancelScheduled(batchId: string, at: string): Promise<boolean> {
  return updateIf({
    Key: keys.campaign(batchId),
    UpdateExpression: 'SET #state = :cancelled, cancelledAt = :at REMOVE contactIds',
    ConditionExpression: '#state = :scheduled',
    ExpressionAttributeNames: { '#state': 'state' },
    ExpressionAttributeValues: { ':cancelled': 'cancelled', ':scheduled': 'scheduled', ':at': at },
  });
}

/** Adds to a campaign's counters (one write on the small counters item). */
export async function addCampaignCounts(batchId: string, counts: Partial<CampaignCounts>): Promise<void> {
  const entries = Object.entries(counts).filter(([, n]) => n);
  if (entries.length === 0) return;
  await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.campaignCounts(batchId),
      UpdateExpression: `ADD ${entries.map((_, i) => `#c${i} :n${i}`).join(', ')}`,
      ExpressionAttributeNames: Object.fromEntries(entries.map(([name], i) => [`#c${i}`, name])),
      ExpressionAttributeValues: Object.fromEntries(entries.map(([, n], i) => [`:n${i}`, n])),
    }),
  );
}

const RANK: Readonly<Record<MessageStatus, number>> = { received: 0, queued: 0, sent: 1, delivered: 2, read: 3, failed: 4 };

/**
 * What a campaign message's applied status change adds: every status it reached (queued → read is
 * sent, delivered and read), `failed` alone for a failure, and `settled` when it left `queued`.
 */
export function countsForTransition(from: MessageStatus, to: MessageStatus): Partial<CampaignCounts> {
  const counts: Partial<CampaignCounts> = {};
  if (RANK[from] === 0 && RANK[to] > 0) counts.settled = 1;
  if (to === 'failed') return { ...counts, failed: 1 };
  const reached = (['sent', 'delivered', 'read'] as const).filter((s) => RANK[s] > RANK[from] && RANK[s] <= RANK[to]);
  for (const s of reached) counts[s] = 1;
  return counts;
}

/**
 * Records on the conversation the newest campaign message written there (for its `replied` count),
 * once per message: its id stays when the reply takes the mark, so a redelivered job (a provider's
 * 429 on its first attempt) does not mark it again for the customer's next message to count twice.
 */
export function markCampaignWritten(conversationId: string, batchId: string, messageId: string, at: string): Promise<boolean> {
  return updateIf({
    Key: keys.conversation(conversationId),
    UpdateExpression: 'SET lastCampaignId = :batch, lastCampaignAt = :at, lastCampaignMessageId = :message',
    ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(lastCampaignAt) OR lastCampaignAt <= :at) AND (attribute_not_exists(lastCampaignMessageId) OR lastCampaignMessageId <> :message)',
    ExpressionAttributeValues: { ':batch': batchId, ':at': at, ':message': messageId },
  });
}

/**
 * A campaign message that failed (before or after it was sent) never reached the customer: the
 * conversation's mark goes, so their next message is no reply to it. Only this campaign's mark
 * (a newer campaign's stays); a reply counted before the failure stays counted.
 */
export function dropCampaignMark(conversationId: string, batchId: string): Promise<boolean> {
  return takeCampaignReply(conversationId, batchId);
}

/** Takes the conversation's campaign as answered: true once, for the first customer message after it. */
export function takeCampaignReply(conversationId: string, batchId: string): Promise<boolean> {
  return updateIf({
    Key: keys.conversation(conversationId),
    UpdateExpression: 'REMOVE lastCampaignId, lastCampaignAt',
    ConditionExpression: 'lastCampaignId = :batch',
    ExpressionAttributeValues: { ':batch': batchId },
  });
}
