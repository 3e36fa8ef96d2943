/** Routing rules without a table: candidate order, and the conditional transaction's shape and outcomes. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { capacityOf, rankCandidates, slotOf } from '../../src/domain/routing';
import { assignIfAvailable } from '../../src/store/assignment';
import type { AgentRecord } from '../../src/store/agents';

const settings = { capacity: { live: 3, async: 8 } };
const NOW = '2030-01-01T12:00:00.000Z';
const agent = (id: string, fields: Partial<AgentRecord> = {}): AgentRecord => ({
  id,
  role: 'agent',
  status: 'online',
  updatedAt: NOW,
  liveLoad: 0,
  asyncLoad: 0,
  ...fields,
});

describe('rankCandidates', () => {
  it('puts the least busy first and rotates among equals by last assignment', () => {
    // Prepare
    const agents = [
      agent('busy', { liveLoad: 2 }),
      agent('recent', { liveLoad: 1, lastAssignedAt: '2030-01-01T11:59:00.000Z' }),
      agent('waited', { liveLoad: 1, lastAssignedAt: '2030-01-01T11:00:00.000Z' }),
    ];
    // Act
    const ranked = rankCandidates(agents, { kind: 'live' }, settings, NOW);
    // Assess
    expect(ranked.map((a) => a.id)).toEqual(['waited', 'recent', 'busy']);
  });

  it('leaves out full, away, past-grace and other-team agents, honouring per-agent capacity', () => {
    const agents = [
      agent('full', { liveLoad: 3 }),
      agent('override', { liveLoad: 3, liveCapacity: 5 }),
      agent('away', { status: 'away' }),
      agent('gone', { graceUntil: '2030-01-01T11:59:59.000Z' }),
      agent('blip', { graceUntil: '2030-01-01T12:00:30.000Z' }),
      agent('sales', { teams: ['sales'] }),
    ];
    expect(rankCandidates(agents, { kind: 'live' }, settings, NOW).map((a) => a.id).sort()).toEqual(['blip', 'override', 'sales']);
    expect(rankCandidates(agents, { kind: 'live', team: 'sales' }, settings, NOW).map((a) => a.id)).toEqual(['sales']);
    expect(capacityOf(agent('x', { asyncCapacity: 2 }), 'async', settings)).toBe(2);
  });

  it('counts a slot only for open assigned conversations, by kind', () => {
    expect(slotOf({ status: 'open', assigneeId: 'a', channel: 'web' })).toEqual({ agentId: 'a', kind: 'live' });
    expect(slotOf({ status: 'open', assigneeId: 'a', channel: 'whatsapp' })).toEqual({ agentId: 'a', kind: 'async' });
    expect(slotOf({ status: 'resolved', assigneeId: 'a', channel: 'web' })).toBeUndefined();
    expect(slotOf({ status: 'open', assigneeId: null, channel: 'web' })).toBeUndefined();
  });
});

describe('assignIfAvailable', () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  const input = { conversationId: 'c1', agentId: 'a1', kind: 'live' as const, capacity: 3, now: NOW };
  const cancelled = (codes: string[]) =>
    new TransactionCanceledException({ message: 'cancelled', $metadata: {}, CancellationReasons: codes.map((Code) => ({ Code })) });

  beforeEach(() => {
    process.env.TABLE_NAME = 'unit';
    ddb.reset();
  });
  afterEach(() => ddb.reset());

  it('conditions the load increment on capacity and presence, and the conversation on being unassigned', async () => {
    // Prepare
    ddb.on(TransactWriteCommand).resolves({});
    // Act
    const outcome = await assignIfAvailable(input);
    // Assess
    expect(outcome).toBe('assigned');
    const [agentUpdate, conversationUpdate] = ddb.commandCalls(TransactWriteCommand)[0]!.args[0].input.TransactItems!;
    expect(agentUpdate!.Update).toMatchObject({
      Key: { pk: 'AGENTS', sk: 'AGENT#a1' },
      ConditionExpression: expect.stringContaining('#load < :cap'),
      ExpressionAttributeNames: { '#load': 'liveLoad', '#status': 'status' },
      ExpressionAttributeValues: expect.objectContaining({ ':cap': 3, ':online': 'online' }),
    });
    expect(conversationUpdate!.Update).toMatchObject({
      Key: { pk: 'CONV#c1', sk: 'CONV' },
      ConditionExpression: expect.stringContaining('attribute_type(assigneeId, :null)'),
      ExpressionAttributeValues: expect.objectContaining({ ':gsi2pk': 'ASSIGNEE#a1#open' }),
    });
  });

  it('tells a full agent, a taken conversation and a race apart', async () => {
    ddb.on(TransactWriteCommand).rejects(cancelled(['ConditionalCheckFailed', 'None']));
    expect(await assignIfAvailable(input)).toBe('agent_unavailable');
    ddb.on(TransactWriteCommand).rejects(cancelled(['None', 'ConditionalCheckFailed']));
    expect(await assignIfAvailable(input)).toBe('conversation_taken');
    ddb.on(TransactWriteCommand).rejects(cancelled(['TransactionConflict', 'None']));
    expect(await assignIfAvailable(input)).toBe('conflict');
  });
});
