import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { keys } from './keys';

/** The workspace's settings as saved (any shape an older version saved), or undefined. */
export async function getStoredSettings(): Promise<unknown> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.settings() }));
  return out.Item?.settings;
}

export async function putSettings(settings: unknown, now: Date): Promise<void> {
  await ddb().send(new PutCommand({ TableName: config.tableName, Item: { ...keys.settings(), settings, updatedAt: now.toISOString() } }));
}
