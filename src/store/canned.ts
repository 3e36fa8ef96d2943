import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { withoutKeys, queryAll, transactIf } from './items';
import { keys } from './keys';

export interface CannedResponse {
  id: string;
  /** What agents type to find it, e.g. `refund`. */
  shortCode: string;
  text: string;
  createdAt: string;
  createdBy: string;
}

const strip = (item: Record<string, unknown>) => withoutKeys<CannedResponse>(item);

/** Stores a new canned response with the claim of its short code; false when the code is taken. */
export async function putCannedResponse(record: CannedResponse): Promise<boolean> {
  return transactIf([
    { Put: { TableName: config.tableName, Item: { ...keys.cannedCode(record.shortCode), id: record.id }, ConditionExpression: 'attribute_not_exists(pk)' } },
    { Put: { TableName: config.tableName, Item: { ...keys.cannedResponse(record.id), ...record }, ConditionExpression: 'attribute_not_exists(pk)' } },
  ]);
}

export async function getCannedResponse(id: string, consistent = false): Promise<CannedResponse | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.cannedResponse(id), ConsistentRead: consistent }));
  return out.Item ? strip(out.Item) : undefined;
}

/** False when there was nothing to delete. The short code's claim goes with it, in one transaction. */
export async function deleteCannedResponse(id: string): Promise<boolean> {
  const canned = await getCannedResponse(id, true);
  if (!canned) return false;
  return transactIf([
    { Delete: { TableName: config.tableName, Key: keys.cannedResponse(id), ConditionExpression: 'attribute_exists(pk)' } },
    // Only this response's claim (one stored before claims existed has none).
    { Delete: { TableName: config.tableName, Key: keys.cannedCode(canned.shortCode), ConditionExpression: 'attribute_not_exists(pk) OR id = :id', ExpressionAttributeValues: { ':id': id } } },
  ]);
}

/** The whole library in one Query: a workspace keeps hundreds, not millions. */
export async function listCannedResponses(): Promise<CannedResponse[]> {
  return (
    await queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': keys.cannedPartition, ':prefix': keys.cannedPrefix },
    })
  ).map(strip);
}
