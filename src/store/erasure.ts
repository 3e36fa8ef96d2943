/**
 * The table side of erasing a customer (src/domain/erasure.ts): the erasure record, pages of a
 * partition to delete, and deletes that only remove what is still the contact's.
 */
import { createHash } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { batchGetAll, deleteIf, mapConcurrently, putNew, updateIf } from './items';
import { keys, type Key } from './keys';

export type ErasureStatus = 'erasing' | 'erased';

export interface ErasureRecord {
  status: ErasureStatus;
  requestedAt: string;
  /** The admin who asked: one of the team, not the customer. */
  requestedBy: string;
  erasedAt?: string;
}

/** How long an erased contact's record answers a repeated DELETE with 202 rather than 404. */
const ERASED_RECORD_TTL_SECONDS = 30 * 24 * 3600;

/** Deletes in flight at once: a page's worth in a few round trips, far under the table's limits. */
const DELETE_CONCURRENCY = 16;

const erasureKey = (contactId: string) => keys.erasure(createHash('sha256').update(contactId).digest('hex'));

/**
 * The ids among `contactIds` whose erasure was asked for (running, or ended within the days its
 * record lasts): one BatchGet key each, eventually consistent.
 */
export async function erasedAmong(contactIds: readonly string[]): Promise<Set<string>> {
  const hashed = contactIds.map((id) => ({ id, key: erasureKey(id) }));
  const recorded = new Set((await batchGetAll(hashed.map(({ key }) => key), { projection: ['pk'] })).map((record) => String(record.pk)));
  return new Set(hashed.filter(({ key }) => recorded.has(key.pk)).map(({ id }) => id));
}

export async function getErasure(contactId: string): Promise<ErasureRecord | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: erasureKey(contactId), ConsistentRead: true }));
  if (!out.Item) return undefined;
  const { status, requestedAt, requestedBy, erasedAt } = out.Item as ErasureRecord;
  return { status, requestedAt, requestedBy, ...(erasedAt ? { erasedAt } : {}) };
}

/** False when an erasure of this contact was recorded already (a repeated request). */
export async function startErasure(contactId: string, requestedBy: string, now: string): Promise<boolean> {
  return putNew({ ...erasureKey(contactId), status: 'erasing', requestedAt: now, requestedBy });
}

/** The erasure is complete: the record stays a while (no customer data in it), then expires. */
export async function finishErasure(contactId: string, now: Date): Promise<void> {
  await updateIf({
    Key: erasureKey(contactId),
    UpdateExpression: 'SET #status = :erased, erasedAt = if_not_exists(erasedAt, :now), expiresAt = if_not_exists(expiresAt, :expires)',
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':erased': 'erased', ':now': now.toISOString(), ':expires': Math.floor(now.getTime() / 1000) + ERASED_RECORD_TTL_SECONDS },
  });
}

/**
 * How long a provider's copy of an erased customer message is recognised: Meta retries a webhook
 * for up to 7 days; as long as the idempotency records of undated messages last.
 */
const ERASED_MESSAGE_TTL_SECONDS = 14 * 24 * 3600;

const erasedMessageKey = (scope: string) => keys.erasedMessage(createHash('sha256').update(scope).digest('hex'));

/** Remembers customer messages (`<channel>#<provider id>`) an erasure is about to delete: a hash each, nothing else. */
export async function rememberErasedMessages(scopes: readonly string[], now: Date): Promise<void> {
  const expiresAt = Math.floor(now.getTime() / 1000) + ERASED_MESSAGE_TTL_SECONDS;
  await mapConcurrently(scopes, DELETE_CONCURRENCY, (scope) => ddb().send(new PutCommand({ TableName: config.tableName, Item: { ...erasedMessageKey(scope), expiresAt } })));
}

/** Whether an erasure deleted this customer message (`<channel>#<provider id>`): one eventually consistent read. */
export async function wasErasedMessage(scope: string): Promise<boolean> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: erasedMessageKey(scope), ProjectionExpression: 'pk' }));
  return out.Item !== undefined;
}

/** Up to `limit` items of a partition, in key order, read consistently (what an earlier step deleted is gone). */
export async function partitionPage(pk: string, limit: number): Promise<Record<string, unknown>[]> {
  const out = await ddb().send(
    new QueryCommand({ TableName: config.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': pk }, ConsistentRead: true, Limit: limit }),
  );
  return out.Items ?? [];
}

/** Deletes items by key; deleting one already gone is no error (a step run again). */
export async function deleteAll(itemKeys: readonly Key[]): Promise<void> {
  await mapConcurrently(itemKeys, DELETE_CONCURRENCY, (key) => ddb().send(new DeleteCommand({ TableName: config.tableName, Key: { pk: key.pk, sk: key.sk } })));
}

/**
 * Deletes an item only while `attribute` still names `ownerId`: a handle another contact holds by
 * now (a merge, a new customer on that number), or an idempotency record of another conversation,
 * is not this customer's. True when it was deleted or was not there.
 */
export async function deleteIfOwnedBy(key: Key, attribute: 'contactId' | 'conversationId', ownerId: string): Promise<boolean> {
  return deleteIf({
    Key: key,
    ConditionExpression: 'attribute_not_exists(pk) OR #owner = :owner',
    ExpressionAttributeNames: { '#owner': attribute },
    ExpressionAttributeValues: { ':owner': ownerId },
  });
}
