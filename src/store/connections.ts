import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { deleteIf, queryAll } from './items';
import { keys, type ConnectionAudience } from './keys';

/** API Gateway closes WebSocket connections after 2 hours; the item outlives that a little. */
const CONNECTION_TTL_SECONDS = 3 * 3600;

export interface ConnectionRecord {
  connectionId: string;
  audience: ConnectionAudience;
  /** Agent id or visitor id. */
  principalId: string;
  role: 'agent' | 'admin' | 'visitor';
  name?: string;
  /** An agent console that asked for the focused feed (src/domain/fanout.ts); absent: every event. */
  feed?: 'focused';
  connectedAt: string;
}

export async function putConnection(record: ConnectionRecord): Promise<void> {
  await ddb().send(
    new PutCommand({
      TableName: config.tableName,
      Item: {
        ...keys.connection(record.audience, record.connectionId),
        ...record,
        expiresAt: Math.floor(Date.now() / 1000) + CONNECTION_TTL_SECONDS,
      },
    }),
  );
}

export async function deleteConnection(audience: ConnectionAudience, connectionId: string): Promise<void> {
  await ddb().send(new DeleteCommand({ TableName: config.tableName, Key: keys.connection(audience, connectionId) }));
}

/**
 * Forgets a connection that answered 410 Gone, unless it was stored moments ago: API Gateway
 * answers 410 while a connection is still inside its $connect, and that one is about to live.
 */
export async function deleteGoneConnection(audience: ConnectionAudience, connectionId: string, graceMs = 5000): Promise<void> {
  await deleteIf({
    Key: keys.connection(audience, connectionId),
    ConditionExpression: 'connectedAt < :recent',
    ExpressionAttributeValues: { ':recent': new Date(Date.now() - graceMs).toISOString() },
  });
}

/**
 * Every live connection of an audience: one Query by key, never a Scan. `consistent` for the
 * presence decisions, which must see a connection closed or opened a moment ago.
 */
export async function listConnections(audience: ConnectionAudience, options: { consistent?: boolean } = {}): Promise<ConnectionRecord[]> {
  const now = Math.floor(Date.now() / 1000);
  const items = await queryAll({
    ...(options.consistent ? { ConsistentRead: true } : {}),
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': keys.connectionPartition(audience) },
    ProjectionExpression: 'connectionId, audience, principalId, #role, feed, connectedAt, expiresAt',
    ExpressionAttributeNames: { '#role': 'role' },
  });
  // TTL deletion lags by up to days: expired items are skipped here.
  return items.filter((item) => Number(item.expiresAt) > now) as unknown as ConnectionRecord[];
}
