import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { withoutKeys } from './items';
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

export async function putCannedResponse(record: CannedResponse): Promise<void> {
  await ddb().send(
    new PutCommand({
      TableName: config.tableName,
      Item: { ...keys.cannedResponse(record.id), ...record },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

export async function getCannedResponse(id: string): Promise<CannedResponse | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.cannedResponse(id) }));
  return out.Item ? strip(out.Item) : undefined;
}

/** False when there was nothing to delete. */
export async function deleteCannedResponse(id: string): Promise<boolean> {
  const out = await ddb().send(new DeleteCommand({ TableName: config.tableName, Key: keys.cannedResponse(id), ReturnValues: 'ALL_OLD' }));
  return Boolean(out.Attributes);
}

/** The whole library in one Query: a workspace keeps hundreds, not millions. */
export async function listCannedResponses(): Promise<CannedResponse[]> {
  const found: CannedResponse[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.cannedPartition },
        ExclusiveStartKey: start,
      }),
    );
    found.push(...(out.Items ?? []).map(strip));
    start = out.LastEvaluatedKey;
  } while (start);
  return found;
}
