/**
 * Capacity-based assignment under concurrency, on the local stack: many visitors write at
 * once to a few agents; nobody goes past capacity, the load counters match the conversations
 * each agent really holds, and waiting conversations move in arrival order when a slot frees
 * or an agent comes online.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';
import { capacityTotals, resetCapacityTotals } from '../../src/aws/capacity';
import { autoAssign, drainQueue, recountLoad, routeOnConversationChange } from '../../src/domain/routing';
import { withStatus } from '../../src/domain/conversations';
import { assignIfAvailable } from '../../src/store/assignment';
import { getConversation, listConversations, queueTime, updateConversation, type ConversationRecord } from '../../src/store/conversations';
import { updateAgentProfile } from '../../src/store/agents';
import { ddb } from '../../src/aws/clients';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';
import { RECURRING } from '../../src/manifest';
import { handler as engagementHandler } from '../../functions/engagement/handler';

let stack: LocalStack;
let admin: string;
const clients: WsClient[] = [];
const AGENTS = ['cap-a', 'cap-b', 'cap-c'];
const VISITORS = 24;
const LIVE_CAPACITY = 3;

async function connect(token: string): Promise<WsClient> {
  const client = await WsClient.connect(stack.wsUrl, token);
  clients.push(client);
  return client;
}

async function openConversation(i: number): Promise<string> {
  const session = await visitorSession(stack.httpUrl, { name: `Visitor ${i}` });
  const ws = await connect(session.token);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text: `help ${i}`, clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 20_000, 'ack');
  return ack.conversationId as string;
}

type AgentView = { id: string; status: string; load: { live: number; async: number }; capacity: { live: number } };

async function team(): Promise<AgentView[]> {
  const res = await http(stack.httpUrl, 'GET', '/v1/agents', { token: admin });
  expect(res.status).toBe(200);
  return res.body.items;
}

async function heldBy(agentId: string): Promise<string[]> {
  const res = await http(stack.httpUrl, 'GET', `/v1/conversations?status=open&assignee=${agentId}&limit=100`, { token: admin });
  return res.body.items.map((c: { id: string }) => c.id);
}

/** The waiting queue in the order routing hands it out (when each joined it, which the API does not show). */
async function waiting(): Promise<ConversationRecord[]> {
  const res = await http(stack.httpUrl, 'GET', '/v1/conversations?status=open&assignee=unassigned&limit=100', { token: admin });
  const records = await Promise.all(res.body.items.map((c: { id: string }) => getConversation(c.id, true)));
  return (records as ConversationRecord[]).sort((a, b) => queueTime(a).localeCompare(queueTime(b)) || a.id.localeCompare(b.id));
}

/** Every agent within capacity, and each counter equal to what the agent really holds. */
async function assertLoadsMatchReality(): Promise<Map<string, string[]>> {
  const held = new Map<string, string[]>();
  for (const agent of await team()) {
    const ids = await heldBy(agent.id);
    held.set(agent.id, ids);
    expect(ids.length, `${agent.id} holds`).toBeLessThanOrEqual(agent.capacity.live);
    expect(agent.load.live, `${agent.id} live load counter`).toBe(ids.length);
  }
  return held;
}

beforeAll(async () => {
  stack = await startTestStack();
  admin = await agentToken(stack.httpUrl, 'cap-admin', 'admin', 'Boss');
  // The admin reads but takes no conversations: capacity 0.
  await http(stack.httpUrl, 'PUT', '/v1/agents/cap-admin', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } });
  for (const id of AGENTS) await connect(await agentToken(stack.httpUrl, id, 'agent', id));
  await eventually(async () => (await team()).filter((a) => AGENTS.includes(a.id) && a.status === 'online').length === AGENTS.length);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack?.stop();
});

describe('capacity-based assignment', () => {
  it('never puts an agent past capacity when many visitors write at once', async () => {
    // Prepare: note every write that moves a conversation out of the queue after it was created
    const movedOutOfQueue = new Set<string>();
    ddb().middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: { pk?: string }; UpdateExpression?: string };
        if (input.UpdateExpression?.includes('assigneeId = :agent')) movedOutOfQueue.add(String(input.Key?.pk));
        return next(args);
      },
      { step: 'initialize', name: 'testWatchAssignments' },
    );

    // Act: every visitor writes at the same moment
    const conversations = await Promise.all(Array.from({ length: VISITORS }, (_, i) => openConversation(i)));

    // Assess: exactly the capacity of the team is assigned, the rest waits
    const capacity = AGENTS.length * LIVE_CAPACITY;
    await eventually(async () => {
      const assigned = (await Promise.all(AGENTS.map(heldBy))).flat();
      return assigned.length === capacity;
    }, 30_000);
    const held = await assertLoadsMatchReality();
    for (const id of AGENTS) expect(held.get(id)).toHaveLength(LIVE_CAPACITY);
    expect(new Set(conversations).size).toBe(VISITORS);
    expect(await waiting()).toHaveLength(VISITORS - capacity);
    // Each assigned newcomer was written with its agent: no second write took it from the queue.
    ddb().middlewareStack.remove('testWatchAssignments');
    expect([...held.values()].flat().filter((id) => movedOutOfQueue.has(`CONV#${id}`))).toEqual([]);
  });

  it('keeps capacity when many assigners race for one newcomer', async () => {
    // Prepare: a new agent with room for 3, and every waiting conversation
    const before = await waiting();
    await connect(await agentToken(stack.httpUrl, 'cap-d', 'agent', 'Dee'));

    // Act: besides the drain its coming online starts, one assigner per waiting conversation,
    // all at once: each sees the newcomer with room (without the conditional write, all would win)
    const records = await Promise.all(before.map((c) => getConversation(c.id, true)));
    await Promise.all([...records.map((c) => autoAssign(c!)), drainQueue()]);

    // Assess: the newcomer took exactly its capacity, and the counters tell the truth
    await eventually(async () => (await heldBy('cap-d')).length === LIVE_CAPACITY);
    await assertLoadsMatchReality();
    expect(await waiting()).toHaveLength(before.length - LIVE_CAPACITY);
  });

  it('gives the oldest waiting conversation to the agent whose slot frees on resolve', async () => {
    // Prepare
    const [oldest] = await waiting();
    const [mine] = await heldBy('cap-a');

    // Act
    const resolved = await http(stack.httpUrl, 'POST', `/v1/conversations/${mine}/resolve`, { token: admin });

    // Assess
    expect(resolved.body.status).toBe('resolved');
    const taken = await eventually(async () => {
      const c = await http(stack.httpUrl, 'GET', `/v1/conversations/${oldest!.id}`, { token: admin });
      return c.body.assigneeId ? c.body : undefined;
    });
    expect(taken.assigneeId).toBe('cap-a');
    await assertLoadsMatchReality();
  });

  it('sends a reopened conversation back to the queue when its agent is full', async () => {
    // Prepare: cap-a is full again, and its resolved conversation gets a new customer message
    const resolvedId = (await listConversations({ status: 'resolved', limit: 10 })).items[0]!.id;
    expect((await getConversation(resolvedId))!.assigneeId).toBe('cap-a');

    // Act
    const reopened = await http(stack.httpUrl, 'POST', `/v1/conversations/${resolvedId}/reopen`, { token: admin });

    // Assess: open, not with cap-a (full), waiting in the queue; counters unchanged. The answer
    // says so too: a console trusting it must not show cap-a as the owner.
    expect(reopened.status).toBe(200);
    expect(reopened.body).toMatchObject({ status: 'open', assigneeId: null });
    const now = await eventually(async () => {
      const c = await getConversation(resolvedId, true);
      return c?.status === 'open' && c.assigneeId === null ? c : undefined;
    });
    expect(now.assigneeId).toBeNull();
    await assertLoadsMatchReality();
  });

  it('keeps a conversation its own agent reopens with them, full or not, as a manual assignment', async () => {
    // Prepare: cap-a resolves one of its conversations, and its freed slot takes a waiting one
    const capA = await agentToken(stack.httpUrl, 'cap-a', 'agent', 'cap-a');
    const [mine] = await heldBy('cap-a');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${mine}/resolve`, { token: capA })).status).toBe(200);
    await eventually(async () => (await heldBy('cap-a')).length === LIVE_CAPACITY);

    // Act: cap-a takes the resolved one back, full as it is
    const reopened = await http(stack.httpUrl, 'POST', `/v1/conversations/${mine}/status`, { token: capA, body: { status: 'open' } });

    // Assess: with cap-a, one over capacity, and the counter says so
    expect(reopened.status).toBe(200);
    expect(reopened.body).toMatchObject({ status: 'open', assigneeId: 'cap-a' });
    await eventually(async () => {
      const me = (await team()).find((a) => a.id === 'cap-a')!;
      return me.load.live === LIVE_CAPACITY + 1 && (await heldBy('cap-a')).length === LIVE_CAPACITY + 1;
    });
    // Back within capacity for the tests that follow (nothing waiting takes the freed slot: cap-a is still full).
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${mine}/resolve`, { token: capA })).status).toBe(200);
    await eventually(async () => (await team()).find((a) => a.id === 'cap-a')!.load.live === LIVE_CAPACITY);
    await assertLoadsMatchReality();
  });

  it('measures the capacity units of one automatic assignment', async () => {
    // Prepare: one more slot for cap-b, without triggering a drain
    await updateAgentProfile('cap-b', { liveCapacity: LIVE_CAPACITY + 2 });
    const [first, second] = await waiting();

    // Act: the whole automatic assignment (read the team, reserve the slot, take the conversation)…
    resetCapacityTotals();
    const assigned = await autoAssign((await getConversation(first!.id))!);
    const whole = { ...capacityTotals };
    // …and the two conditional writes alone
    resetCapacityTotals();
    const result = await assignIfAvailable({ conversationId: second!.id, agentId: 'cap-b', kind: 'live', capacity: LIVE_CAPACITY + 2, now: new Date().toISOString() });
    const writes = { ...capacityTotals };

    // Assess
    expect(assigned?.assigneeId).toBe('cap-b');
    expect(result.outcome).toBe('assigned');
    console.log(`capacity units per assignment: whole ${JSON.stringify(whole)}, writes ${JSON.stringify(writes)}`);
    // Agent slot (1) + conversation with its assignee (key move) and report indexes (1 + 2 + 1);
    // the inbox index projects nothing an assignment changes.
    expect(writes.write).toBe(5);
    expect(whole.read).toBeLessThanOrEqual(2);
  });

  it('heals a load counter left one high by a crash, when the agent next comes online', async () => {
    // Prepare: cap-c's counter says one more than it holds, as after a crash between a slot's
    // reservation and the conversation's write, some time ago
    const drift = (changedAt: string) =>
      ddb().send(
        new UpdateCommand({
          TableName: config.tableName,
          Key: keys.agent('cap-c'),
          UpdateExpression: 'SET liveLoad = liveLoad + :one, loadChangedAt = :at',
          ExpressionAttributeValues: { ':one': 1, ':at': changedAt },
        }),
      );
    await assertLoadsMatchReality();
    await drift(new Date().toISOString());
    // A recount right after a load change waits (the assignee index may not show it yet)…
    await recountLoad('cap-c');
    expect((await team()).find((a) => a.id === 'cap-c')!.load.live).toBe((await heldBy('cap-c')).length + 1);
    await drift('2020-01-01T00:00:00.000Z');

    // Act: a second console of cap-c connects (the agent comes online)
    await connect(await agentToken(stack.httpUrl, 'cap-c', 'agent', 'cap-c'));

    // Assess: the counter is back to what cap-c holds (two drifts, both healed)
    await eventually(async () => {
      const agent = (await team()).find((a) => a.id === 'cap-c')!;
      return agent.load.live === (await heldBy('cap-c')).length;
    });
    await assertLoadsMatchReality();
  });

  it('heals a counter on the recurring recount, and the freed slot takes the oldest waiting conversation', async () => {
    // Prepare: cap-c gets a fourth slot that its counter, left high by a crash long ago, hides
    await updateAgentProfile('cap-c', { liveCapacity: LIVE_CAPACITY + 1 });
    await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.agent('cap-c'),
        UpdateExpression: 'SET liveLoad = liveLoad + :one, loadChangedAt = :at',
        ExpressionAttributeValues: { ':one': 1, ':at': '2020-01-01T00:00:00.000Z' },
      }),
    );
    const held = (await heldBy('cap-c')).length;
    const [oldest] = await waiting();
    expect(oldest).toBeDefined();
    expect((await team()).find((a) => a.id === 'cap-c')!.load.live).toBe(LIVE_CAPACITY + 1);

    // Act: the recurring schedule's event, as EventBridge Scheduler delivers it
    const result = await engagementHandler(RECURRING.loadRecount!.input);

    // Assess: one agent healed, the oldest waiting conversation went to cap-c, counters true
    expect(result.outcome).toBe('healed 1');
    await eventually(async () => (await getConversation(oldest!.id, true))?.assigneeId === 'cap-c');
    expect((await heldBy('cap-c')).length).toBe(held + 1);
    await assertLoadsMatchReality();
  });

  it('hands waiting conversations out when an admin raises the workspace’s live capacity', async () => {
    // Prepare: the agents who follow the workspace capacity (no override) are full; some still wait
    type Member = AgentView & { capacityOverride: { live: number | null } };
    const following = ((await team()) as Member[]).filter((a) => AGENTS.concat('cap-d').includes(a.id) && a.capacityOverride.live === null);
    expect(following.length).toBeGreaterThanOrEqual(2);
    for (const agent of following) expect(agent.load.live).toBe(LIVE_CAPACITY);
    const before = await waiting();
    expect(before.length).toBeGreaterThanOrEqual(following.length);

    // Act
    const saved = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { capacity: { live: LIVE_CAPACITY + 1 } } });

    // Assess: each of them took one more, without any other event
    expect(saved.status).toBe(200);
    for (const { id } of following) await eventually(async () => (await heldBy(id)).length === LIVE_CAPACITY + 1);
    expect(await waiting()).toHaveLength(before.length - following.length);
    await assertLoadsMatchReality();
  });

  it('tells an agent who comes online of each conversation they take', async () => {
    // Prepare: everybody full, and two visitors waiting
    await Promise.all([openConversation(100), openConversation(101)]);
    // The workspace capacity is LIVE_CAPACITY + 1 since the test before.
    const expected = Math.min(LIVE_CAPACITY + 1, (await waiting()).length);
    expect(expected).toBeGreaterThanOrEqual(2);

    // Act: a new agent's console connects
    const console_ = await connect(await agentToken(stack.httpUrl, 'cap-e', 'agent', 'Eve'));

    // Assess: what they took reached their console, not only the store
    const held = await eventually(async () => {
      const ids = await heldBy('cap-e');
      return ids.length === expected ? ids : undefined;
    }, 20_000);
    for (const id of held) {
      await console_.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === id && f.conversation.assigneeId === 'cap-e', 10_000, `conversation ${id}`);
    }
    await assertLoadsMatchReality();
  });

  it('keeps the counter true when a reopening that found its agent away is overtaken by the next change', async () => {
    // Prepare: one of cap-e's conversations set pending (its slot given back)
    const [mine] = await heldBy('cap-e');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${mine}/status`, { token: admin, body: { status: 'pending' } })).status).toBe(200);
    const setStatus = (status: string) =>
      ddb().send(new UpdateCommand({ TableName: config.tableName, Key: keys.agent('cap-e'), UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': status } }));

    // Act: two clicks stored before the first one's routing runs (open with cap-e, then pending
    // again), cap-e away in between: the reopening cannot take a slot, nor requeue what has moved on
    const reopen = (await updateConversation(mine!, (c) => withStatus(c, 'open')))!;
    await setStatus('away');
    const again = (await updateConversation(mine!, (c) => withStatus(c, 'pending')))!;
    await routeOnConversationChange(reopen.before, reopen.after);
    await routeOnConversationChange(again.before, again.after);

    // Assess: the second change gave back the slot the first one was counted for
    const eve = (await team()).find((a) => a.id === 'cap-e')!;
    expect(eve.load.live).toBe((await heldBy('cap-e')).length);
    await setStatus('online');
  });

  it('serves a customer who comes back to a full agent, or is sent back to the queue, after those already waiting, not by the age of their conversation', async () => {
    // Prepare: cap-a resolves an old conversation of theirs (their freed slot takes a waiting one)…
    const [old] = await heldBy('cap-a');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${old}/resolve`, { token: admin })).status).toBe(200);
    await eventually(async () => (await team()).find((a) => a.id === 'cap-a')!.load.live === (await heldBy('cap-a')).length && (await heldBy('cap-a')).length > 0);
    // …then a new customer writes and waits, everybody being full…
    const newcomer = await openConversation(950);
    for (const agent of await team()) if (agent.status === 'online') expect(agent.load.live, agent.id).toBeGreaterThanOrEqual(agent.capacity.live);
    // …and only then is the old one reopened (cap-a is full, so it goes back to the queue), and an
    // old one of cap-b's sent back to the queue: both behind the newcomer
    const reopened = await http(stack.httpUrl, 'POST', `/v1/conversations/${old}/reopen`, { token: admin });
    expect(reopened.body).toMatchObject({ status: 'open', assigneeId: null });
    const [handedBack] = await heldBy('cap-b');
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${handedBack}/assign`, { token: admin, body: { agentId: null } })).status).toBe(200);
    // cap-b's freed slot took the head of the queue (not the one it gave up): everyone is full again.
    await eventually(async () => (await team()).find((a) => a.id === 'cap-b')!.load.live === (await heldBy('cap-b')).length);
    const ahead = (await waiting()).filter((c) => ![newcomer, old, handedBack].includes(c.id)).length;

    // Act: an agent comes online with room for those who waited before the newcomer, and the newcomer
    expect((await http(stack.httpUrl, 'PUT', '/v1/agents/cap-g', { token: admin, body: { liveCapacity: ahead + 1 } })).status).toBe(200);
    await connect(await agentToken(stack.httpUrl, 'cap-g', 'agent', 'Gil'));

    // Assess: the newcomer was served, the customer who came back after it still waits
    const held = await eventually(async () => {
      const ids = await heldBy('cap-g');
      return ids.length === ahead + 1 ? ids : undefined;
    }, 20_000);
    expect(held).toContain(newcomer);
    expect(held).not.toContain(old);
    expect(held).not.toContain(handedBack);
    expect((await waiting()).map((c) => c.id)).toEqual(expect.arrayContaining([old, handedBack]));
    await assertLoadsMatchReality();
  });

  it('drops a recount that counts between a conversation\'s change and the counter update that follows it', async () => {
    // Prepare: cap-b holds at least two conversations, its counter true and last changed long ago
    for (const i of [900, 901]) {
      const id = await openConversation(i);
      expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${id}/assign`, { token: admin, body: { agentId: 'cap-b' } })).status).toBe(200);
    }
    const [target] = await heldBy('cap-b');
    expect((await heldBy('cap-b')).length).toBeGreaterThanOrEqual(2);
    expect((await team()).find((a) => a.id === 'cap-b')!.load.live).toBe((await heldBy('cap-b')).length);
    await ddb().send(new UpdateCommand({ TableName: config.tableName, Key: keys.agent('cap-b'), UpdateExpression: 'SET loadChangedAt = :at', ExpressionAttributeValues: { ':at': '2020-01-01T00:00:00.000Z' } }));
    // The release that follows the resolve is slow to land (a slow function, a busy table).
    let slowRelease = true;
    const name = 'slowRelease';
    ddb().middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: { pk?: string; sk?: string }; UpdateExpression?: string };
        if (slowRelease && input.Key?.sk === keys.agent('cap-b').sk && input.UpdateExpression?.includes('#load - :one')) {
          slowRelease = false;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        return next(args);
      },
      { step: 'initialize', name },
    );
    try {
      // Act: an agent resolves one; the recount runs once the conversation is written, before its release
      const resolving = http(stack.httpUrl, 'POST', `/v1/conversations/${target}/status`, { token: admin, body: { status: 'resolved' } });
      await eventually(async () => (await getConversation(target!, true))?.status === 'resolved');
      await recountLoad('cap-b');
      expect((await resolving).status).toBe(200);
    } finally {
      ddb().middlewareStack.remove(name);
    }

    // Assess: the counter is what cap-b holds, not one less
    await eventually(async () => {
      const agent = (await team()).find((a) => a.id === 'cap-b')!;
      return agent.load.live === (await heldBy('cap-b')).length;
    });
  });
});
