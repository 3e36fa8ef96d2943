/**
 * The queue drain's bounds on the local stack: a backlog in a lane nobody can take (a team with
 * nobody online) does not use up a drain, so customers waiting behind it in a lane with room
 * are still reached; and a slot given back unused after a customer found it taken hands that
 * customer out.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, http, visitorSession, WsClient } from '../support/clients';
import { autoAssign, drainQueue } from '../../src/domain/routing';
import { getConversation } from '../../src/store/conversations';
import type { LoadKind } from '../../src/store/agents';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';

/** Runs once, just before the next slot of `agentId` is given back. */
const beforeRelease = vi.hoisted(() => ({ agentId: '', run: undefined as (() => Promise<void>) | undefined }));

vi.mock('../../src/store/agents', async (orig) => {
  const real = await orig<typeof import('../../src/store/agents')>();
  return {
    ...real,
    releaseAgentSlot: async (id: string, kind: LoadKind) => {
      const run = id === beforeRelease.agentId ? beforeRelease.run : undefined;
      beforeRelease.run = undefined;
      await run?.();
      return real.releaseAgentSlot(id, kind);
    },
  };
});

let stack: LocalStack;
let admin: string;
const clients: WsClient[] = [];

async function waitingConversation(i: number): Promise<string> {
  const session = await visitorSession(stack.httpUrl, { name: `Visitor ${i}` });
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  clients.push(ws);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text: `help ${i}`, clientMessageId });
  return (await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack')).conversationId as string;
}

beforeAll(async () => {
  stack = await startTestStack();
  admin = await agentToken(stack.httpUrl, 'drain-admin', 'admin', 'Ada');
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

describe('queue drain', () => {
  it('reaches a customer waiting behind a backlog of a team with nobody online', async () => {
    // Prepare: nobody online; three customers wait for team "night" (its one member offline), then one for anyone
    expect((await http(stack.httpUrl, 'PUT', '/v1/agents/drain-nina', { token: admin, body: { teams: ['night'] } })).status).toBe(200);
    const backlog = [];
    for (let i = 0; i < 3; i++) {
      const id = await waitingConversation(i);
      expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/transfer`, { token: admin, body: { team: 'night' } })).status).toBe(200);
      backlog.push(id);
    }
    const newest = await waitingConversation(9);
    // An agent with room, online without the drain their console's connection would start
    expect((await http(stack.httpUrl, 'PUT', '/v1/agents/drain-ana', { token: admin, body: { liveCapacity: 3 } })).status).toBe(200);
    await ddb().send(
      new UpdateCommand({ TableName: config.tableName, Key: keys.agent('drain-ana'), UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'online' } }),
    );

    // Act: a drain that may offer two conversations, reading pages of two
    await drainQueue({ offers: 2, pages: 10, pageSize: 2 });

    // Assess: the backlog's lane was tried once; the customer behind it has the agent
    expect((await getConversation(newest, true))?.assigneeId).toBe('drain-ana');
    for (const id of backlog) expect((await getConversation(id, true))?.assigneeId ?? null).toBeNull();
  });

  it('reaches a customer waiting behind one that only the agent it was handed off by could take', async () => {
    // Prepare: one agent online (the first test's agent has no room left); the oldest waiting
    // conversation was handed off by them
    expect((await http(stack.httpUrl, 'PUT', '/v1/agents/drain-ana', { token: admin, body: { liveCapacity: 0 } })).status).toBe(200);
    const agentId = 'drain-hal';
    expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${agentId}`, { token: admin, body: { liveCapacity: 0 } })).status).toBe(200);
    await ddb().send(
      new UpdateCommand({ TableName: config.tableName, Key: keys.agent(agentId), UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'online' } }),
    );
    const handedOff = await waitingConversation(20);
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${handedOff}/assign`, { token: admin, body: { agentId } })).status).toBe(200);
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${handedOff}/transfer`, { token: admin, body: { note: 'someone else, please' } })).body.assigneeId).toBeNull();
    const behind = await waitingConversation(21);
    expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${agentId}`, { token: admin, body: { liveCapacity: 3 } })).status).toBe(200);

    // Act: a drain (the capacity change ran one too)
    await drainQueue();

    // Assess: the one handed off still waits for someone else; the one behind it has the agent
    expect((await getConversation(handedOff, true))?.assigneeId ?? null).toBeNull();
    expect((await getConversation(behind, true))?.assigneeId).toBe(agentId);
  });

  it('hands out a customer who found the only agent full while that slot was held for a conversation taken meanwhile', async () => {
    // Prepare: nobody else takes anything (the conversation the hand-off left waiting is resolved);
    // Ray, room for one, comes online once X waits and has been assigned to Hal by a person
    for (const id of ['drain-ana', 'drain-hal']) expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${id}`, { token: admin, body: { liveCapacity: 0 } })).status).toBe(200);
    const leftWaiting = (await http(stack.httpUrl, 'GET', '/v1/conversations?status=open&assignee=unassigned&limit=100', { token: admin })).body.items as { id: string; team?: string | null }[];
    for (const c of leftWaiting.filter((c) => !c.team)) expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${c.id}/resolve`, { token: admin })).status).toBe(200);
    const ray = 'drain-ray';
    expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${ray}`, { token: admin, body: { liveCapacity: 1 } })).status).toBe(200);
    const x = await waitingConversation(30);
    const stale = (await getConversation(x, true))!;
    expect(stale.assigneeId ?? null).toBeNull();
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${x}/assign`, { token: admin, body: { agentId: 'drain-hal' } })).status).toBe(200);
    await ddb().send(
      new UpdateCommand({ TableName: config.tableName, Key: keys.agent(ray), UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'online' } }),
    );
    // While Ray's slot is held for X, a new customer writes and finds Ray full
    let y = '';
    beforeRelease.agentId = ray;
    beforeRelease.run = async () => {
      y = await waitingConversation(31);
      expect((await getConversation(y, true))?.assigneeId ?? null).toBeNull();
    };

    // Act: an assigner that read X before the person's assignment offers it to Ray
    await autoAssign(stale);

    // Assess: X stays Hal's; the customer who found Ray full gets Ray once the slot is back
    expect(beforeRelease.run).toBeUndefined();
    expect(y).not.toBe('');
    expect((await getConversation(x, true))?.assigneeId).toBe('drain-hal');
    await expect.poll(async () => (await getConversation(y, true))?.assigneeId ?? null, { timeout: 10_000 }).toBe(ray);
  });
});
