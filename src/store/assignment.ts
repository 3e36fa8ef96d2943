/**
 * The writes that move a conversation between the waiting queue and an agent. An automatic
 * assignment is one transaction: the agent's load counter goes up only while it is below
 * capacity, and the conversation takes the agent only while it is open and unassigned. Two
 * handlers racing for the last slot (or for the same conversation) cannot both win.
 */
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { keys } from './keys';
import { availableCondition, loadAttribute, type LoadKind } from './agents';

export type AssignOutcome =
  /** Both writes happened. */
  | 'assigned'
  /** The agent is full, away or gone: try the next one. */
  | 'agent_unavailable'
  /** Someone else assigned (or closed) the conversation first. */
  | 'conversation_taken'
  /** Another transaction touched one of the items at the same moment: read again and retry. */
  | 'conflict';

export interface AssignInput {
  conversationId: string;
  agentId: string;
  kind: LoadKind;
  /** The agent's capacity for this kind (their override, else the workspace setting). */
  capacity: number;
  now: string;
}

export function assignTransaction(input: AssignInput) {
  return new TransactWriteCommand({
    TransactItems: [
      {
        Update: {
          TableName: config.tableName,
          Key: keys.agent(input.agentId),
          UpdateExpression: 'SET #load = #load + :one, lastAssignedAt = :now',
          ConditionExpression: availableCondition,
          ExpressionAttributeNames: { '#load': loadAttribute(input.kind), '#status': 'status' },
          ExpressionAttributeValues: { ':one': 1, ':cap': input.capacity, ':online': 'online', ':now': input.now },
        },
      },
      {
        Update: {
          TableName: config.tableName,
          Key: keys.conversation(input.conversationId),
          // `version` moves so that a concurrent read-modify-write of the conversation retries.
          UpdateExpression: 'SET assigneeId = :agent, gsi2pk = :gsi2pk, updatedAt = :now, version = version + :one',
          ConditionExpression: '#status = :open AND (attribute_not_exists(assigneeId) OR attribute_type(assigneeId, :null))',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':agent': input.agentId,
            ':gsi2pk': keys.assigneePartition(input.agentId, 'open'),
            ':now': input.now,
            ':one': 1,
            ':open': 'open',
            ':null': 'NULL',
          },
        },
      },
    ],
  });
}

interface CancellationReason {
  Code?: string;
}

export async function assignIfAvailable(input: AssignInput): Promise<AssignOutcome> {
  try {
    await ddb().send(assignTransaction(input));
    return 'assigned';
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'TransactionConflictException') return 'conflict';
    if (name !== 'TransactionCanceledException') throw error;
    const reasons = ((error as { CancellationReasons?: CancellationReason[] }).CancellationReasons ?? []).map((r) => r.Code ?? 'None');
    if (reasons[1] === 'ConditionalCheckFailed') return 'conversation_taken';
    if (reasons[0] === 'ConditionalCheckFailed') return 'agent_unavailable';
    return 'conflict';
  }
}

/**
 * Puts an open conversation back in the queue, only if it is still with `fromAgentId`.
 * Used when a conversation reopens and its agent has no slot for it: no load changes hands.
 */
export async function requeueConversation(conversationId: string, fromAgentId: string, now: string): Promise<boolean> {
  try {
    await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.conversation(conversationId),
        UpdateExpression: 'SET assigneeId = :none, gsi2pk = :gsi2pk, updatedAt = :now, version = version + :one',
        ConditionExpression: '#status = :open AND assigneeId = :from',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':none': null,
          ':gsi2pk': keys.assigneePartition(null, 'open'),
          ':now': now,
          ':one': 1,
          ':open': 'open',
          ':from': fromAgentId,
        },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
