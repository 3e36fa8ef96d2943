/**
 * The queue drain's bounds on the local stack: a backlog in a lane nobody can take (a team with
 * nobody online) does not use up a drain, so customers waiting behind it in a lane with room
 * are still reached.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, http, visitorSession, WsClient } from '../support/clients';
import { drainQueue } from '../../src/domain/routing';
import { getConversation } from '../../src/store/conversations';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';

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
});
