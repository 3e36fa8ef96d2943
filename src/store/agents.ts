import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { queryAll, updateIf, withoutKeys } from './items';
import { keys } from './keys';

export type Presence = 'online' | 'away' | 'offline';
/** Live chat (web) and asynchronous messaging (every other channel) have separate capacities. */
export type LoadKind = 'live' | 'async';

export interface AgentRecord {
  id: string;
  name?: string;
  role: 'agent' | 'admin';
  status: Presence;
  updatedAt: string;
  /**
   * When `status` was last written (a choice, a connection, a grace period running out): presence
   * frames carry it, so a console that gets two of them out of order keeps the newer.
   */
  presenceAt?: string;
  teams?: string[];
  /** Open conversations assigned, per kind: live chat (web) and asynchronous (other channels). */
  liveLoad?: number;
  asyncLoad?: number;
  /** Per-agent overrides of the capacities in settings. */
  liveCapacity?: number;
  asyncCapacity?: number;
  /** Last automatic assignment: the round-robin tie-breaker among equally busy agents. */
  lastAssignedAt?: string;
  /** Last change of either load counter: a recount waits until the assignee index caught up. */
  loadChangedAt?: string;
  /**
   * The customer message whose reopening of a conversation last took a slot back for this agent
   * (src/domain/routing.ts): that message's hooks run again after a crash take no second one.
   */
  reclaimedFor?: string;
  /**
   * Set when the agent's last connection closed: until then the agent still counts as online
   * (a page reload must not cost their queue); after it, as away.
   */
  graceUntil?: string;
  /** Away or offline by the agent's own choice: a new connection does not turn them online. */
  statusChosen?: boolean;
}

export const loadAttribute = (kind: LoadKind) => (kind === 'live' ? 'liveLoad' : 'asyncLoad');

const strip = (item: Record<string, unknown>) => withoutKeys<AgentRecord>(item);

/** Load counters exist from the first write on, so that conditions can compare them. */
const INIT_LOADS = 'liveLoad = if_not_exists(liveLoad, :zero), asyncLoad = if_not_exists(asyncLoad, :zero)';

/** A presence write that also creates the agent item (`:status` and the values of presenceValues). */
const SET_PRESENCE = `SET id = :id, #status = :status, updatedAt = :now, presenceAt = :now, #role = if_not_exists(#role, :agent), ${INIT_LOADS}`;
const presenceNames = { '#status': 'status', '#role': 'role' };
const presenceValues = (id: string, status: Presence, now: string) => ({ ':id': id, ':status': status, ':now': now, ':agent': 'agent', ':zero': 0 });

/** Records an agent seen at login; their presence is set separately. */
export async function touchAgent(id: string, fields: { name?: string; role: 'agent' | 'admin' }): Promise<void> {
  await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.agent(id),
      UpdateExpression:
        `SET id = :id, #role = :role, updatedAt = :now, #status = if_not_exists(#status, :offline), ${INIT_LOADS}` + (fields.name ? ', #name = :name' : ''),
      ExpressionAttributeNames: { '#role': 'role', '#status': 'status', ...(fields.name ? { '#name': 'name' } : {}) },
      ExpressionAttributeValues: {
        ':id': id,
        ':role': fields.role,
        ':now': new Date().toISOString(),
        ':offline': 'offline',
        ':zero': 0,
        ...(fields.name ? { ':name': fields.name } : {}),
      },
    }),
  );
}

/**
 * The agent's own choice of presence; it ends any grace period. Away or offline is remembered
 * as chosen, so that the console reconnecting (API Gateway closes sockets after two hours at
 * most) does not put an agent on a break back in the queue.
 */
export async function setAgentPresence(id: string, status: Presence, now = new Date().toISOString()): Promise<AgentRecord> {
  const chosen = status !== 'online';
  const out = await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.agent(id),
      UpdateExpression: `${SET_PRESENCE}${chosen ? ', statusChosen = :true REMOVE graceUntil' : ' REMOVE graceUntil, statusChosen'}`,
      ExpressionAttributeNames: presenceNames,
      ExpressionAttributeValues: { ...presenceValues(id, status, now), ...(chosen ? { ':true': true } : {}) },
      ReturnValues: 'ALL_NEW',
    }),
  );
  return strip(out.Attributes ?? {});
}

/**
 * A connection opened: the agent is online again, unless away or offline by choice. False when
 * the choice stands (nothing changed).
 */
export async function setAgentOnlineOnConnect(id: string, now = new Date().toISOString()): Promise<boolean> {
  return updateIf({
    Key: keys.agent(id),
    UpdateExpression: `${SET_PRESENCE} REMOVE graceUntil`,
    ConditionExpression: 'attribute_not_exists(statusChosen) OR statusChosen = :false',
    ExpressionAttributeNames: presenceNames,
    ExpressionAttributeValues: { ...presenceValues(id, 'online', now), ':false': false },
  });
}

/** A grace period that started while the agent was in fact connected (a reload's race): gone. */
export async function clearAgentGrace(id: string, until: string): Promise<void> {
  await updateIf({
    Key: keys.agent(id),
    UpdateExpression: 'REMOVE graceUntil',
    ConditionExpression: 'graceUntil = :until',
    ExpressionAttributeValues: { ':until': until },
  });
}

/** Starts the grace period of an online agent whose last connection closed; false when they are not online. */
export async function startAgentGrace(id: string, until: string): Promise<boolean> {
  return updateIf({
    Key: keys.agent(id),
    UpdateExpression: 'SET graceUntil = :until',
    ConditionExpression: '#status = :online',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':until': until, ':online': 'online' },
  });
}

/**
 * Turns an agent whose grace period ran out into `away`; false when something else happened
 * first (they reconnected, or another caller already did it), so only one caller announces it.
 */
export async function expireAgentGrace(id: string, now: string): Promise<boolean> {
  return updateIf({
    Key: keys.agent(id),
    UpdateExpression: 'SET #status = :away, updatedAt = :now, presenceAt = :now REMOVE graceUntil',
    ConditionExpression: '#status = :online AND graceUntil <= :now',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':away': 'away', ':online': 'online', ':now': now },
  });
}

export interface AgentProfilePatch {
  name?: string;
  teams?: string[];
  /** null removes the override (the workspace setting applies again). */
  liveCapacity?: number | null;
  asyncCapacity?: number | null;
}

/** Admin changes to an agent; creates the agent (offline) when they never logged in yet. */
export async function updateAgentProfile(id: string, patch: AgentProfilePatch): Promise<AgentRecord> {
  const sets = ['id = :id', 'updatedAt = :now', '#role = if_not_exists(#role, :agent)', '#status = if_not_exists(#status, :offline)', INIT_LOADS];
  const removes: string[] = [];
  const names: Record<string, string> = { '#role': 'role', '#status': 'status' };
  const values: Record<string, unknown> = { ':id': id, ':now': new Date().toISOString(), ':agent': 'agent', ':offline': 'offline', ':zero': 0 };
  for (const [field, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    names[`#${field}`] = field;
    if (value === null) {
      removes.push(`#${field}`);
    } else {
      sets.push(`#${field} = :${field}`);
      values[`:${field}`] = value;
    }
  }
  const out = await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.agent(id),
      UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ReturnValues: 'ALL_NEW',
    }),
  );
  return strip(out.Attributes ?? {});
}

/** Counts a conversation an agent was given by hand (no capacity check: a person decided). */
export async function addAgentLoad(id: string, kind: LoadKind): Promise<void> {
  await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.agent(id),
      UpdateExpression: 'SET #load = if_not_exists(#load, :zero) + :one, loadChangedAt = :now',
      ExpressionAttributeNames: { '#load': loadAttribute(kind) },
      ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':now': new Date().toISOString() },
    }),
  );
}

/**
 * Marks the agents' counters as about to change: a conversation write that moves a slot comes
 * before the counter update that follows it (src/domain/routing.ts), and a recount counting in
 * between would take the one for the other. Marked first, the recount waits (or is dropped).
 */
export async function markLoadChanging(ids: readonly string[]): Promise<void> {
  const now = new Date().toISOString();
  await Promise.all(
    ids.map((id) =>
      updateIf({ Key: keys.agent(id), UpdateExpression: 'SET loadChangedAt = :now', ConditionExpression: 'attribute_exists(pk)', ExpressionAttributeValues: { ':now': now } }),
    ),
  );
}

/**
 * Reserves one slot of the agent's capacity, only while the agent is available and below
 * `capacity`: for an automatic assignment, or for a conversation that reopened with its
 * assignee. False means the agent has no room (the conversation goes elsewhere or waits).
 */
export async function reserveAgentSlot(
  id: string,
  kind: LoadKind,
  capacity: number,
  now: string,
  /** The reopening message a slot is taken back for, recorded in the same write (AgentRecord.reclaimedFor). */
  reclaimFor?: string,
): Promise<boolean> {
  return updateIf({
    Key: keys.agent(id),
    UpdateExpression: `SET #load = #load + :one, lastAssignedAt = :now, loadChangedAt = :now${reclaimFor ? ', reclaimedFor = :for' : ''}`,
    ConditionExpression: availableCondition,
    ExpressionAttributeNames: { '#load': loadAttribute(kind), '#status': 'status' },
    ExpressionAttributeValues: { ':one': 1, ':cap': capacity, ':online': 'online', ':now': now, ...(reclaimFor ? { ':for': reclaimFor } : {}) },
  });
}

/**
 * The one rule for "may take one more conversation", checked by DynamoDB at write time:
 * online (or within the grace period) and below capacity. Uses #status, #load, :online,
 * :cap and :now.
 */
export const availableCondition = '#status = :online AND #load < :cap AND (attribute_not_exists(graceUntil) OR graceUntil > :now)';

/** Frees a slot; never below zero (a repeated release is a no-op). */
export async function releaseAgentSlot(id: string, kind: LoadKind): Promise<void> {
  await updateIf({
    Key: keys.agent(id),
    UpdateExpression: 'SET #load = #load - :one, loadChangedAt = :now',
    ConditionExpression: '#load > :zero',
    ExpressionAttributeNames: { '#load': loadAttribute(kind) },
    ExpressionAttributeValues: { ':one': 1, ':zero': 0, ':now': new Date().toISOString() },
  });
}

/**
 * Sets both load counters to what a recount found, only if neither changed since `seen` was
 * read (an assignment or release in between makes the recount stale: it is dropped).
 */
export async function setAgentLoads(
  id: string,
  counted: Record<LoadKind, number>,
  seen: Pick<AgentRecord, 'liveLoad' | 'asyncLoad' | 'loadChangedAt'>,
  now: string,
): Promise<boolean> {
  return updateIf({
    Key: keys.agent(id),
    UpdateExpression: 'SET liveLoad = :live, asyncLoad = :async, loadChangedAt = :now',
    ConditionExpression: `liveLoad = :seenLive AND asyncLoad = :seenAsync AND ${seen.loadChangedAt ? 'loadChangedAt = :seenAt' : 'attribute_not_exists(loadChangedAt)'}`,
    ExpressionAttributeValues: {
      ':live': counted.live,
      ':async': counted.async,
      ':now': now,
      ':seenLive': seen.liveLoad ?? 0,
      ':seenAsync': seen.asyncLoad ?? 0,
      ...(seen.loadChangedAt ? { ':seenAt': seen.loadChangedAt } : {}),
    },
  });
}

export async function getAgent(id: string): Promise<AgentRecord | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.agent(id), ConsistentRead: true }));
  return out.Item ? strip(out.Item) : undefined;
}

/** The whole team in one Query (teams are tens of agents, not thousands). */
export async function listAgents(): Promise<AgentRecord[]> {
  return (
    await queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': keys.agentsPartition, ':prefix': keys.agentPrefix },
      ConsistentRead: true,
    })
  ).map(strip);
}
