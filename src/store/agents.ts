import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { keys } from './keys';

export type Presence = 'online' | 'away' | 'offline';

export interface AgentRecord {
  id: string;
  name?: string;
  role: 'agent' | 'admin';
  status: Presence;
  updatedAt: string;
  teams?: string[];
  /** Open conversations assigned, per kind: live chat (web) and asynchronous (other channels). */
  liveLoad?: number;
  asyncLoad?: number;
  /** Per-agent overrides of the capacities in settings. */
  liveCapacity?: number;
  asyncCapacity?: number;
}

const strip = (item: Record<string, unknown>): AgentRecord => {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as unknown as AgentRecord;
};

/** Records an agent seen at login; their presence is set separately. */
export async function touchAgent(id: string, fields: { name?: string; role: 'agent' | 'admin' }): Promise<void> {
  await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.agent(id),
      UpdateExpression: 'SET id = :id, #role = :role, updatedAt = :now, #status = if_not_exists(#status, :offline)' + (fields.name ? ', #name = :name' : ''),
      ExpressionAttributeNames: { '#role': 'role', '#status': 'status', ...(fields.name ? { '#name': 'name' } : {}) },
      ExpressionAttributeValues: {
        ':id': id,
        ':role': fields.role,
        ':now': new Date().toISOString(),
        ':offline': 'offline',
        ...(fields.name ? { ':name': fields.name } : {}),
      },
    }),
  );
}

export async function setAgentPresence(id: string, status: Presence): Promise<AgentRecord> {
  const out = await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.agent(id),
      UpdateExpression: 'SET id = :id, #status = :status, updatedAt = :now, #role = if_not_exists(#role, :agent)',
      ExpressionAttributeNames: { '#status': 'status', '#role': 'role' },
      ExpressionAttributeValues: { ':id': id, ':status': status, ':now': new Date().toISOString(), ':agent': 'agent' },
      ReturnValues: 'ALL_NEW',
    }),
  );
  return strip(out.Attributes ?? {});
}

export async function getAgent(id: string): Promise<AgentRecord | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.agent(id), ConsistentRead: true }));
  return out.Item ? strip(out.Item) : undefined;
}

/** The whole team in one Query (teams are tens of agents, not thousands). */
export async function listAgents(): Promise<AgentRecord[]> {
  const found: AgentRecord[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.agentsPartition, ':prefix': keys.agentPrefix },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    found.push(...(out.Items ?? []).map(strip));
    start = out.LastEvaluatedKey;
  } while (start);
  return found;
}
