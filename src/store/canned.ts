import { DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { withoutKeys, queryAll, putNew } from './items';
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
  if (!(await putNew({ ...keys.cannedResponse(record.id), ...record }))) throw new Error(`canned response ${record.id} exists already`);
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
  return (await queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': keys.cannedPartition } })).map(strip);
}
