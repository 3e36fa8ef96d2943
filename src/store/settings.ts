import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { keys } from './keys';

/** The workspace's settings as saved (any shape an older version saved), and the item's version. */
export async function getStoredSettings(consistent = false): Promise<{ settings: unknown; version: number } | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.settings(), ConsistentRead: consistent }));
  // Items saved before versions were kept count as version 0.
  return out.Item ? { settings: out.Item.settings, version: Number(out.Item.version ?? 0) } : undefined;
}

/**
 * Saves the settings only if they are still at `version` (read before the change was merged
 * in): two admins saving different sections at once must not each erase the other's change.
 * False when another save came first.
 */
export async function putSettings(settings: unknown, now: Date, version: number | undefined): Promise<boolean> {
  const condition =
    version === undefined
      ? { ConditionExpression: 'attribute_not_exists(pk)' }
      : version === 0
        ? { ConditionExpression: 'attribute_not_exists(version)' }
        : { ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': version } };
  try {
    await ddb().send(
      new PutCommand({ TableName: config.tableName, Item: { ...keys.settings(), settings, version: (version ?? 0) + 1, updatedAt: now.toISOString() }, ...condition }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
