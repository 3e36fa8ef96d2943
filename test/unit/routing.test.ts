/** Routing rules without a table: candidate order, and the conditional writes' shape and outcomes. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { capacityOf, handOffHolds, handoffHoldMs, rankCandidates, slotOf } from '../../src/domain/routing';
import { assignIfAvailable } from '../../src/store/assignment';
import type { AgentRecord } from '../../src/store/agents';

const settings = { capacity: { live: 3, async: 8 }, routing: { handoffHoldMinutes: 15 } };
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

  it('leaves out the agent a transfer took the conversation from, least busy as they are', () => {
    const agents = [agent('handed-off'), agent('colleague', { liveLoad: 2 })];
    const handOff = { handedOffBy: 'handed-off', handedOffAt: '2030-01-01T11:59:00.000Z', lastInboundAt: '2030-01-01T11:58:00.000Z' };
    expect(rankCandidates(agents, { kind: 'live', ...handOff }, settings, NOW).map((a) => a.id)).toEqual(['colleague']);
    expect(rankCandidates(agents, { kind: 'live' }, settings, NOW).map((a) => a.id)).toEqual(['handed-off', 'colleague']);
  });

  it('offers the agent it was handed off by last once the customer has written since, or the hold has lapsed', () => {
    // Prepare
    const agents = [agent('handed-off'), agent('colleague', { liveLoad: 2 })];
    const handedOffAt = '2030-01-01T11:59:00.000Z';
    const wroteSince = { handedOffBy: 'handed-off', handedOffAt, lastInboundAt: '2030-01-01T11:59:30.000Z' };
    const lapsed = { handedOffBy: 'handed-off', handedOffAt: new Date(Date.parse(NOW) - handoffHoldMs(settings)).toISOString() };
    // Act
    const afterMessage = rankCandidates(agents, { kind: 'live', ...wroteSince }, settings, NOW);
    const afterHold = rankCandidates(agents, { kind: 'live', ...lapsed }, settings, NOW);
    const alone = rankCandidates([agent('handed-off')], { kind: 'live', ...wroteSince }, settings, NOW);
    // Assess: someone else first, still; but never nobody because of who had it
    expect(afterMessage.map((a) => a.id)).toEqual(['colleague', 'handed-off']);
    expect(afterHold.map((a) => a.id)).toEqual(['colleague', 'handed-off']);
    expect(alone.map((a) => a.id)).toEqual(['handed-off']);
    expect(handOffHolds({ handedOffBy: 'handed-off', handedOffAt }, NOW, settings)).toBe(true);
    expect(handOffHolds(lapsed, NOW, settings)).toBe(false);
  });

  it("keeps the agent it was handed off by out for the workspace's hold: longer, shorter, or not at all", () => {
    // Prepare: handed off 20 minutes ago, and nobody else has room
    const agents = [agent('handed-off'), agent('colleague', { liveLoad: 3 })];
    const handOff = { handedOffBy: 'handed-off', handedOffAt: '2030-01-01T11:40:00.000Z' };
    const withHold = (handoffHoldMinutes: number) => ({ ...settings, routing: { handoffHoldMinutes } });
    const offered = (minutes: number, now = NOW) => rankCandidates(agents, { kind: 'live', ...handOff }, withHold(minutes), now).map((a) => a.id);

    // Act and assess: the default 15 minutes have passed; an hour has not, until it has
    expect(offered(15)).toEqual(['handed-off']);
    expect(offered(60)).toEqual([]);
    expect(offered(60, '2030-01-01T12:39:59.999Z')).toEqual([]);
    expect(offered(60, '2030-01-01T12:40:00.000Z')).toEqual(['handed-off']);
    // 0: offered at once, the moment it is handed off, though still after anyone else with room
    expect(offered(0, handOff.handedOffAt)).toEqual(['handed-off']);
    const roomy = [agent('handed-off'), agent('colleague', { liveLoad: 2 })];
    expect(rankCandidates(roomy, { kind: 'live', ...handOff }, withHold(0), handOff.handedOffAt).map((a) => a.id)).toEqual(['colleague', 'handed-off']);
    expect(handOffHolds(handOff, handOff.handedOffAt, withHold(0))).toBe(false);
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
  const failed = () => new ConditionalCheckFailedException({ message: 'failed', $metadata: {} });
  const agentKey = { pk: 'AGENTS', sk: 'AGENT#a1' };
  const conversationKey = { pk: 'CONV#c1', sk: 'CONV' };
  const updates = () => ddb.commandCalls(UpdateCommand).map((call) => call.args[0].input);

  beforeEach(() => {
    process.env.TABLE_NAME = 'unit';
    ddb.reset();
  });
  afterEach(() => ddb.reset());

  it('reserves a slot only below capacity, then takes the conversation only while unassigned', async () => {
    // Prepare
    ddb.on(UpdateCommand, { Key: conversationKey }).resolves({ Attributes: { id: 'c1', assigneeId: 'a1' } });
    ddb.on(UpdateCommand, { Key: agentKey }).resolves({});
    // Act
    const result = await assignIfAvailable(input);
    // Assess
    expect(result).toEqual({ outcome: 'assigned', conversation: { id: 'c1', assigneeId: 'a1' } });
    const [reserve, take] = updates();
    expect(reserve).toMatchObject({
      Key: agentKey,
      UpdateExpression: expect.stringContaining('#load = #load + :one'),
      ConditionExpression: expect.stringContaining('#load < :cap'),
      ExpressionAttributeNames: { '#load': 'liveLoad', '#status': 'status' },
      ExpressionAttributeValues: expect.objectContaining({ ':cap': 3, ':online': 'online' }),
    });
    expect(take).toMatchObject({
      Key: conversationKey,
      ConditionExpression: expect.stringContaining('attribute_type(assigneeId, :null)'),
      ExpressionAttributeValues: expect.objectContaining({ ':gsi2pk': 'ASSIGNEE#a1#open' }),
      ReturnValues: 'ALL_NEW',
    });
  });

  it('leaves the conversation alone when the agent has no room', async () => {
    ddb.on(UpdateCommand, { Key: agentKey }).rejects(failed());
    expect(await assignIfAvailable(input)).toEqual({ outcome: 'agent_unavailable' });
    expect(updates().map((u) => u.Key)).toEqual([agentKey]);
  });

  it('gives the reserved slot back when the conversation was taken first', async () => {
    ddb.on(UpdateCommand, { Key: agentKey }).resolves({});
    ddb.on(UpdateCommand, { Key: conversationKey }).rejects(failed());
    expect(await assignIfAvailable(input)).toEqual({ outcome: 'conversation_taken' });
    const [reserve, take, release] = updates();
    expect([reserve!.Key, take!.Key, release!.Key]).toEqual([agentKey, conversationKey, agentKey]);
    expect(release).toMatchObject({ UpdateExpression: expect.stringContaining('#load = #load - :one'), ExpressionAttributeNames: { '#load': 'liveLoad' } });
  });
});
