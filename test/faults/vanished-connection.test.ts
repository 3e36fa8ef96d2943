/**
 * A WebSocket client that vanishes without a close frame ($disconnect never arrives): fan-out
 * to everyone else carries on, the stale connection item is removed on its first 410 Gone, and
 * the recurring presence sweep turns its agent away (nobody is there to take conversations).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../local/stack';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';
import { getAgent } from '../../src/store/agents';
import { sweepPresence } from '../../src/domain/presence';
import { startTestStack } from '../support/stack';
import { eventually, WsClient } from '../support/clients';
import { phone, postWhatsapp, whatsappBody } from './support';

/** src/store/connections.ts keeps connections younger than this on 410 (they may still be inside $connect). */
const CONNECT_GRACE_MS = 5000;

let stack: LocalStack;
const clients: WsClient[] = [];

beforeAll(async () => {
  stack = await startTestStack({ env: { CONVERSA_PRESENCE_GRACE_SECONDS: '1' } });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

async function connectAgent(sub: string, role: 'agent' | 'admin' = 'agent'): Promise<{ client: WsClient; connectionId: string }> {
  const before = new Set(stack.websocket.connections());
  const client = await WsClient.connect(stack.wsUrl, stack.issueAgentToken(sub, role));
  clients.push(client);
  const connectionId = await eventually(() => stack.websocket.connections().find((id) => !before.has(id)));
  return { client, connectionId };
}

const connectionItem = async (connectionId: string) =>
  (await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.connection({ kind: 'agents' }, connectionId), ConsistentRead: true }))).Item;

describe('a connection that vanished without a close frame', () => {
  it('does not stop delivery to the others, and its item is removed', async () => {
    // Prepare: an agent who will vanish once past the $connect grace period, and an admin (who
    // follows every conversation, whoever it is assigned to)
    const { connectionId: lostId } = await connectAgent('agent-lost');
    const { client: stayed } = await connectAgent('agent-stayed', 'admin');
    expect(await connectionItem(lostId)).toBeDefined();
    await new Promise((r) => setTimeout(r, CONNECT_GRACE_MS + 500));

    // Act: the client disappears (no close frame, no $disconnect), then customers write
    expect(stack.websocket.dropConnection(lostId, { notify: false })).toBe(true);
    const from = phone(10, 1);
    expect(await postWhatsapp(stack, whatsappBody(from, 'first after the loss'))).toBe(200);
    expect(await postWhatsapp(stack, whatsappBody(from, 'second after the loss'))).toBe(200);

    // Assess: the remaining agent gets both messages; the stale item is gone
    await stayed.waitFor((f) => f.type === 'message.created' && f.message.text === 'first after the loss', 60_000);
    await stayed.waitFor((f) => f.type === 'message.created' && f.message.text === 'second after the loss', 60_000);
    await eventually(async () => (await connectionItem(lostId)) === undefined, 30_000);
    expect(await connectionItem(lostId)).toBeUndefined();

    // Without a $disconnect nothing started the agent's grace period: still online, still assignable
    expect((await getAgent('agent-lost'))?.status).toBe('online');
    // Act: the recurring sweep (with the load recount) runs, and again once the grace period is over
    expect(await sweepPresence()).toBe(1);
    await new Promise((r) => setTimeout(r, 1500));
    await sweepPresence();
    // Assess: away and announced; the agent who is still connected is untouched
    expect((await getAgent('agent-lost'))?.status).toBe('away');
    await stayed.waitFor((f) => f.type === 'presence' && f.agentId === 'agent-lost' && f.status === 'away', 10_000);
    expect((await getAgent('agent-stayed'))).toMatchObject({ status: 'online' });
    expect((await getAgent('agent-stayed'))?.graceUntil).toBeUndefined();
  }, 90_000);
});
