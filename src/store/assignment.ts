/**
 * The writes that move a conversation between the waiting queue and an agent. An automatic
 * assignment is two conditional writes, not a transaction (which DynamoDB bills at twice the
 * units, index writes included): the agent's slot is reserved first, only while it is below
 * capacity, then the conversation takes the agent only while it is open and unassigned; if
 * it was taken meanwhile the slot is given back. Two handlers racing for the last slot (or
 * for the same conversation) still cannot both win. A crash between the two writes leaves
 * the agent's counter one high: it errs towards fewer assignments, never past capacity.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { keys } from './keys';
import { updateIf } from './items';
import { releaseAgentSlot, reserveAgentSlot, type LoadKind } from './agents';
import type { ConversationRecord } from './conversations';

export type AssignOutcome =
  /** Both writes happened: the conversation as stored afterwards. */
  | { outcome: 'assigned'; conversation: ConversationRecord }
  /** The agent is full, away or gone: try the next one. */
  | { outcome: 'agent_unavailable' }
  /** Someone else assigned (or closed) the conversation first. */
  | { outcome: 'conversation_taken' };

export interface AssignInput {
  conversationId: string;
  agentId: string;
  kind: LoadKind;
  /** The agent's capacity for this kind (their override, else the workspace setting). */
  capacity: number;
  now: string;
  /** The reopening customer message it is assigned for (AgentRecord.reclaimedFor). */
  reclaimFor?: string;
}

export function takeConversationUpdate(input: AssignInput) {
  return new UpdateCommand({
    TableName: config.tableName,
    Key: keys.conversation(input.conversationId),
    // `version` moves so that a concurrent read-modify-write of the conversation retries.
    UpdateExpression: 'SET assigneeId = :agent, gsi2pk = :gsi2pk, updatedAt = :now, version = version + :one REMOVE handedOffBy, handedOffAt',
    // Not one whose customer's erasure was asked for since the caller read it (it is about to go).
    ConditionExpression: '#status = :open AND (attribute_not_exists(assigneeId) OR attribute_type(assigneeId, :null)) AND attribute_not_exists(erasureRequestedAt)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: {
      ':agent': input.agentId,
      ':gsi2pk': keys.assigneePartition(input.agentId, 'open'),
      ':now': input.now,
      ':one': 1,
      ':open': 'open',
      ':null': 'NULL',
    },
    // The caller publishes the assigned conversation: no read after the write.
    ReturnValues: 'ALL_NEW',
  });
}

export async function assignIfAvailable(input: AssignInput): Promise<AssignOutcome> {
  if (!(await reserveAgentSlot(input.agentId, input.kind, input.capacity, input.now, input.reclaimFor))) return { outcome: 'agent_unavailable' };
  try {
    const out = await ddb().send(takeConversationUpdate(input));
    return { outcome: 'assigned', conversation: out.Attributes as ConversationRecord };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    await releaseAgentSlot(input.agentId, input.kind);
    return { outcome: 'conversation_taken' };
  }
}

/**
 * Puts an open conversation back in the queue, only if it is still with `fromAgentId`.
 * Used when a conversation reopens and its agent has no slot for it: no load changes hands.
 */
export async function requeueConversation(conversationId: string, fromAgentId: string, now: string): Promise<boolean> {
  const queued = keys.conversationAssignee(null, 'open', now, conversationId);
  return updateIf({
    Key: keys.conversation(conversationId),
    // It joins the queue now, behind those waiting (ConversationRecord.queuedAt).
    UpdateExpression: 'SET assigneeId = :none, gsi2pk = :gsi2pk, gsi2sk = :gsi2sk, queuedAt = :now, updatedAt = :now, version = version + :one',
    ConditionExpression: '#status = :open AND assigneeId = :from',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: {
      ':none': null,
      ':gsi2pk': queued.gsi2pk,
      ':gsi2sk': queued.gsi2sk,
      ':now': now,
      ':one': 1,
      ':open': 'open',
      ':from': fromAgentId,
    },
  });
}
