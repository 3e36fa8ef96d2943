/** What every store module does with items: drop the key attributes, write only new items. */
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type BatchGetCommandInput,
  type BatchGetCommandOutput,
  type DeleteCommandInput,
  type QueryCommandInput,
  type TransactWriteCommandInput,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';

/** An item without its table keys: the entity as the domain sees it. */
export function withoutKeys<T>(item: Record<string, unknown>): T {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
}

/** Puts an item that must not exist yet; false when it does (a repeat, or someone was first). */
export async function putNew(item: Record<string, unknown>): Promise<boolean> {
  try {
    await ddb().send(new PutCommand({ TableName: config.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** A conditional update; false when its condition does not hold (nothing was written). */
export async function updateIf(input: Omit<UpdateCommandInput, 'TableName'> & { ConditionExpression: string }): Promise<boolean> {
  try {
    await ddb().send(new UpdateCommand({ ...input, TableName: config.tableName }));
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** A conditional delete; false when its condition does not hold (nothing was deleted). */
export async function deleteIf(input: Omit<DeleteCommandInput, 'TableName'> & { ConditionExpression: string }): Promise<boolean> {
  try {
    await ddb().send(new DeleteCommand({ ...input, TableName: config.tableName }));
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

const TRANSACTION_ATTEMPTS = 4;

/**
 * A transaction whose conditions decide; false when one of them does not hold (nothing was
 * written). Cancelled only because another transaction held an item (two admins at once), it is
 * tried again, so that its conditions answer rather than a 500.
 */
export async function transactIf(items: NonNullable<TransactWriteCommandInput['TransactItems']>): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await ddb().send(new TransactWriteCommand({ TransactItems: items }));
      return true;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const codes = (error.CancellationReasons ?? []).map((r) => r.Code);
      if (codes.includes('ConditionalCheckFailed')) return false;
      if (!codes.includes('TransactionConflict') || attempt >= TRANSACTION_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt * Math.random()));
    }
  }
}

/** Every item a Query matches, page after page (for partitions known to stay small). */
export async function queryAll(input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb().send(new QueryCommand({ ...input, TableName: config.tableName, ExclusiveStartKey: start }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/** One page of a gsi2 partition (the assignee index, an agent's mentions), in key order or against it. */
export async function gsi2Page(
  pk: string,
  page: { limit: number; forward: boolean; startKey?: Record<string, unknown> | undefined },
): Promise<{ items: Record<string, unknown>[]; lastKey: Record<string, unknown> | undefined }> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      IndexName: 'gsi2',
      KeyConditionExpression: 'gsi2pk = :pk',
      ExpressionAttributeValues: { ':pk': pk },
      ScanIndexForward: page.forward,
      Limit: page.limit,
      ...(page.startKey ? { ExclusiveStartKey: page.startKey } : {}),
    }),
  );
  return { items: out.Items ?? [], lastKey: out.LastEvaluatedKey };
}

/**
 * BatchGetItem requests one batchGetAll keeps in flight. An 8 000-id proactive request is 80 of
 * them: one after another they take seconds of the request's time; all at once they would take
 * the table's burst (and the client's sockets) from every other caller and come back as unprocessed
 * keys. Eight takes it to ten round trips.
 */
export const BATCH_GET_CONCURRENCY = 8;
/** BatchGetItem's limit of keys per request. */
const BATCH_GET_KEYS = 100;

export interface BatchGetOptions {
  consistent?: boolean;
  /** Only these attributes of each item (add its key attributes to tell the items apart). */
  projection?: readonly string[];
}

/**
 * Every item of `itemKeys` that exists: 100 keys a request, a few requests at a time, the keys
 * DynamoDB left unprocessed asked again. Items come request by request, in the order of the keys'
 * requests (within one, in DynamoDB's order), as they would one request after another.
 */
export async function batchGetAll(itemKeys: Record<string, unknown>[], options: BatchGetOptions = {}): Promise<Record<string, unknown>[]> {
  const chunks = Array.from({ length: Math.ceil(itemKeys.length / BATCH_GET_KEYS) }, (_, i) => itemKeys.slice(i * BATCH_GET_KEYS, (i + 1) * BATCH_GET_KEYS));
  return (await mapConcurrently(chunks, BATCH_GET_CONCURRENCY, (chunk) => batchGetChunk(chunk, options))).flat();
}

/**
 * `work` over every input, at most `limit` at a time, the results in the inputs' order. After a
 * failure the whole call is lost anyway: no more work is started for it.
 */
export async function mapConcurrently<T, R>(inputs: readonly T[], limit: number, work: (input: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(inputs.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < inputs.length) {
      const i = next++;
      try {
        results[i] = await work(inputs[i]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, inputs.length) }, worker));
  return results;
}

async function batchGetChunk(chunkKeys: Record<string, unknown>[], options: BatchGetOptions): Promise<Record<string, unknown>[]> {
  const found: Record<string, unknown>[] = [];
  // Named through placeholders: an attribute may be a reserved word.
  const projection = options.projection?.length
    ? {
        ProjectionExpression: options.projection.map((_, i) => `#p${i}`).join(', '),
        ExpressionAttributeNames: Object.fromEntries(options.projection.map((name, i) => [`#p${i}`, name])),
      }
    : {};
  let request: BatchGetCommandInput['RequestItems'] = {
    [config.tableName]: { Keys: chunkKeys, ...(options.consistent ? { ConsistentRead: true } : {}), ...projection },
  };
  for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
    // Keys come back unprocessed when the table throttles: asking again at once would spin.
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** attempt)));
    const out: BatchGetCommandOutput = await ddb().send(new BatchGetCommand({ RequestItems: request }));
    found.push(...(out.Responses?.[config.tableName] ?? []));
    request = out.UnprocessedKeys;
  }
  return found;
}
