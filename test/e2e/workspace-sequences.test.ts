/**
 * Randomized sequences of what a team of agents does to a handful of web and WhatsApp
 * conversations, through the local stack's HTTP and WebSocket APIs: assign, transfer (to an agent,
 * a team, back to the queue, with notes), status changes and snoozes waking, customers writing,
 * channel moves, erasures, presence and reconnections, capacities and teams changing, the
 * recurring recount; some of them at once, several on one conversation. After each step: no 5xx,
 * every load counter equals the open conversations its agent holds, only a person's decision
 * takes an agent past capacity, no conversation waits while an online agent of its team has room,
 * no note reached a customer's frames or the provider, and no customer heard of another's conversation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';
import { phoneHandles, whatsappCustomerWrites } from './channels-support';
import { wakeSnoozed } from '../../src/domain/snooze';
import { recountAllLoads } from '../../src/domain/routing';

if (process.env.CI) fc.configureGlobal({ seed: 20261128 });

let stack: LocalStack;
let admin: string;
const sockets: WsClient[] = [];
const agentSockets: Record<string, WsClient> = {};
const tokens: Record<string, string> = {};
const TEAMS: Record<string, string[]> = { 'sq-ana': ['sales'], 'sq-ben': ['sales'], 'sq-cy': ['support'] };
const AGENTS = Object.keys(TEAMS);
const CAPACITY = { live: 2, async: 2 };

interface Customer {
  id: string;
  channel: 'web' | 'whatsapp';
  write: (text: string) => Promise<void>;
  frames?: WsClient;
}
const customers: Customer[] = [];
const notes: string[] = [];
const failures: string[] = [];

const get = (path: string, token = admin) => http(stack.httpUrl, 'GET', path, { token });
const post = (path: string, body: unknown, token = admin) => http(stack.httpUrl, 'POST', path, { token, body });

async function webCustomer(i: number): Promise<Customer> {
  const session = await visitorSession(stack.httpUrl, { name: `Visitor ${i}` });
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  const write = async (text: string) => {
    const clientMessageId = crypto.randomUUID();
    ws.send({ action: 'sendMessage', text, clientMessageId });
    await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
  };
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text: `hello ${i}`, clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 10_000, 'ack');
  return { id: ack.conversationId as string, channel: 'web', write, frames: ws };
}

async function whatsappCustomer(i: number): Promise<Customer> {
  const handle = phoneHandles().whatsapp;
  const customer: Customer = {
    id: await whatsappCustomerWrites(stack, handle, `hello ${i}`),
    channel: 'whatsapp',
    // After an erasure the same number is a new customer, in a new conversation.
    write: async (text) => void (customer.id = await whatsappCustomerWrites(stack, handle, text)),
  };
  return customer;
}

type Conv = { id: string; channel: string; status: string; assigneeId: string | null; team?: string | null };
type AgentView = { id: string; status: string; teams: string[]; load: { live: number; async: number }; capacity: { live: number; async: number } };

/** The loads as the last step left them. */
const lastLoads = new Map<string, AgentView['load']>();

/** A person's decision, which may put `agentId` past capacity (Assignment in the README). */
const manualFor = (agentId: string) => (op: Op) =>
  ((op.op === 'assign' || op.op === 'transferAgent') && op.to === agentId) || ((op.op === 'move' || op.op === 'reopen' || op.op === 'status') && op.by === agentId);

/**
 * Each load counter is what its agent holds; only a person's decision of this step takes anyone
 * past capacity; nobody free while a conversation of theirs waits.
 */
async function invariants(ops: Op[]): Promise<string | undefined> {
  const team: AgentView[] = (await get('/v1/agents')).body.items;
  const listed: Conv[] = (await get('/v1/conversations?status=open&limit=100')).body.items;
  const ids = [...new Set([...customers.map((c) => c.id), ...listed.map((c) => c.id)])];
  const conversations: Conv[] = await Promise.all(ids.map(async (id) => (await get(`/v1/conversations/${id}`)).body));
  for (const agent of team.filter((a) => AGENTS.includes(a.id))) {
    const held = (kind: 'live' | 'async') =>
      conversations.filter((c) => c.status === 'open' && c.assigneeId === agent.id && (c.channel === 'web') === (kind === 'live')).length;
    for (const kind of ['live', 'async'] as const) {
      if (agent.load[kind] !== held(kind)) return `${agent.id} ${kind} load ${agent.load[kind]}, holds ${held(kind)}`;
      const grew = agent.load[kind] > (lastLoads.get(agent.id)?.[kind] ?? 0);
      if (grew && agent.load[kind] > agent.capacity[kind] && !ops.some(manualFor(agent.id))) return `${agent.id} ${kind} past capacity (${agent.load[kind]})`;
    }
  }
  for (const c of conversations.filter((c) => c.status === 'open' && !c.assigneeId)) {
    const kind = c.channel === 'web' ? 'live' : 'async';
    const free = team.find((a) => AGENTS.includes(a.id) && a.status === 'online' && (!c.team || a.teams.includes(c.team)) && a.load[kind] < a.capacity[kind]);
    if (free) return `${c.id} (${c.channel}, team ${c.team ?? '-'}) waits while ${free.id} has room`;
  }
  for (const agent of team) lastLoads.set(agent.id, agent.load);
  return undefined;
}

/** Any customer frame or provider send that carries a note. */
async function leakedNotes(): Promise<string[]> {
  const frames = customers.flatMap((c) => c.frames?.frames ?? []).map((f) => JSON.stringify(f));
  const outbox = ((await get('/local/outbox?channel=whatsapp')).body.items as unknown[]).map((r) => JSON.stringify(r));
  return notes.filter((n) => [...frames, ...outbox].some((text) => text.includes(n)));
}

/** Frames a web customer got about another conversation than their own. */
function foreignFrames(): string[] {
  return customers.flatMap((c) =>
    (c.frames?.frames ?? [])
      .filter((f) => [f.conversationId, f.conversation?.id].some((id) => id !== undefined && id !== c.id))
      .map((f) => `${c.id}: ${JSON.stringify(f)}`),
  );
}

const conv = fc.nat({ max: 5 });
const agentOrNull = fc.constantFrom<string | null>(...AGENTS, null);
const actor = fc.constantFrom(...AGENTS, 'admin');
const single = fc.oneof(
  fc.record({ op: fc.constant('assign' as const), conv, to: agentOrNull, by: actor }),
  fc.record({ op: fc.constant('transferAgent' as const), conv, to: fc.constantFrom(...AGENTS), note: fc.boolean(), by: actor }),
  fc.record({ op: fc.constant('transferTeam' as const), conv, team: fc.constantFrom('sales', 'support'), note: fc.boolean(), by: actor }),
  fc.record({ op: fc.constant('transferNote' as const), conv, by: actor }),
  fc.record({ op: fc.constant('status' as const), conv, status: fc.constantFrom('open', 'pending', 'snoozed', 'resolved'), by: actor }),
  fc.record({ op: fc.constant('reopen' as const), conv, by: actor }),
  fc.record({ op: fc.constant('customer' as const), conv }),
  fc.record({ op: fc.constant('presence' as const), agent: fc.constantFrom(...AGENTS), status: fc.constantFrom('online', 'away', 'offline') }),
  fc.record({ op: fc.constant('note' as const), conv, by: actor }),
  fc.record({ op: fc.constant('teams' as const), agent: fc.constantFrom(...AGENTS), teams: fc.subarray(['sales', 'support']) }),
  fc.record({ op: fc.constant('capacity' as const), agent: fc.constantFrom(...AGENTS), live: fc.constantFrom(0, 1, 2, 3, null), async: fc.constantFrom(0, 1, 2, 3, null) }),
  fc.record({ op: fc.constant('move' as const), conv, by: actor }),
  fc.record({ op: fc.constant('reconnect' as const), agent: fc.constantFrom(...AGENTS) }),
  fc.record({ op: fc.constant('wake' as const), conv }),
  fc.record({ op: fc.constant('recount' as const) }),
  fc.record({ op: fc.constant('erase' as const), conv }),
);
type Op = typeof single extends fc.Arbitrary<infer T> ? T : never;
/** One presence change or reconnection per agent a step (each waits for its own outcome). */
const onePerAgent = (ops: Op[]) => ops.filter((op, i) => !('agent' in op) || (op.op !== 'presence' && op.op !== 'reconnect') || !ops.slice(0, i).some((o) => 'agent' in o && o.agent === op.agent && (o.op === 'presence' || o.op === 'reconnect')));
const step = fc.oneof(
  { arbitrary: single.map((op) => [op]), weight: 3 },
  { arbitrary: fc.tuple(single, single).map(onePerAgent), weight: 1 },
  // Several agents on one conversation at the same moment.
  { arbitrary: fc.tuple(conv, fc.array(single, { minLength: 3, maxLength: 4 })).map(([c, ops]) => onePerAgent(ops.map((op) => ('conv' in op ? { ...op, conv: c } : op)))), weight: 1 },
);

let noteCount = 0;
async function run(op: Op): Promise<void> {
  const token = 'by' in op ? (op.by === 'admin' ? admin : tokens[op.by]!) : admin;
  const id = 'conv' in op ? customers[op.conv % customers.length]!.id : '';
  const newNote = () => {
    const text = `note-secret-${++noteCount}-${crypto.randomUUID().slice(0, 6)}`;
    notes.push(text);
    return text;
  };
  let res: { status: number; text: string } | undefined;
  switch (op.op) {
    case 'assign':
      res = await post(`/v1/conversations/${id}/assign`, { agentId: op.to }, token);
      break;
    case 'transferAgent':
      res = await post(`/v1/conversations/${id}/transfer`, { agentId: op.to, ...(op.note ? { note: newNote() } : {}) }, token);
      break;
    case 'transferTeam':
      res = await post(`/v1/conversations/${id}/transfer`, { team: op.team, ...(op.note ? { note: newNote() } : {}) }, token);
      break;
    case 'transferNote':
      res = await post(`/v1/conversations/${id}/transfer`, { note: newNote() }, token);
      break;
    case 'status':
      res = await post(`/v1/conversations/${id}/status`, { status: op.status, ...(op.status === 'snoozed' ? { snoozedUntil: new Date(Date.now() + 3_600_000).toISOString() } : {}) }, token);
      break;
    case 'reopen':
      res = await post(`/v1/conversations/${id}/reopen`, {}, token);
      break;
    case 'note':
      res = await post(`/v1/conversations/${id}/messages`, { text: newNote(), private: true }, token);
      break;
    case 'teams':
      res = await http(stack.httpUrl, 'PUT', `/v1/agents/${op.agent}`, { token: admin, body: { teams: op.teams } });
      break;
    case 'capacity':
      res = await http(stack.httpUrl, 'PUT', `/v1/agents/${op.agent}`, { token: admin, body: { liveCapacity: op.live, asyncCapacity: op.async } });
      break;
    case 'move': {
      const channel = customers[op.conv % customers.length]!.channel === 'whatsapp' ? 'sms' : 'whatsapp';
      res = await post(`/v1/conversations/${id}/channel`, { channel }, token);
      break;
    }
    case 'reconnect': {
      await agentSockets[op.agent]!.close();
      agentSockets[op.agent] = await WsClient.connect(stack.wsUrl, tokens[op.agent]!);
      sockets.push(agentSockets[op.agent]!);
      return;
    }
    case 'wake':
      // The snooze's timer firing (as the engagement function runs it), early or late.
      // (An erased conversation's timer finds nothing: the engagement function drops its 404.)
      await wakeSnoozed(id, new Date(Date.now() + 7_200_000)).catch((error: { status?: number }) => (error.status === 404 ? undefined : Promise.reject(error)));
      return;
    case 'recount':
      // The recurring job: loads recounted, the queue drained.
      await recountAllLoads();
      return;
    case 'erase': {
      // WhatsApp customers only: after it the same number writes as a new customer.
      if (customers[op.conv % customers.length]!.channel !== 'whatsapp') return;
      const contactId = (await get(`/v1/conversations/${id}`)).body.contact?.id as string | undefined;
      if (contactId) res = await http(stack.httpUrl, 'DELETE', `/v1/contacts/${contactId}`, { token: admin });
      if (!res) return;
      break;
    }
    case 'customer':
      await customers[op.conv % customers.length]!.write(`more ${crypto.randomUUID().slice(0, 6)}`);
      return;
    case 'presence':
      agentSockets[op.agent]!.send({ action: 'setPresence', status: op.status });
      await eventually(async () => (await get('/v1/agents')).body.items.find((a: AgentView) => a.id === op.agent)?.status === op.status);
      return;
  }
  if (res.status >= 500) failures.push(`${JSON.stringify(op)} → ${res.status} ${res.text}`);
}

beforeAll(async () => {
  stack = await startTestStack({ env: { CONVERSA_PRESENCE_GRACE_SECONDS: '0' } });
  admin = await agentToken(stack.httpUrl, 'sq-admin', 'admin', 'Ada');
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { autoresponder: { enabled: false }, capacity: CAPACITY, routing: { handoffHoldMinutes: 0 } } })).status).toBe(200);
  expect((await http(stack.httpUrl, 'PUT', '/v1/agents/sq-admin', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } })).status).toBe(200);
  for (const id of AGENTS) {
    tokens[id] = await agentToken(stack.httpUrl, id, 'agent', id);
    agentSockets[id] = await WsClient.connect(stack.wsUrl, tokens[id]!);
    sockets.push(agentSockets[id]!);
    expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${id}`, { token: admin, body: { teams: TEAMS[id] } })).status).toBe(200);
  }
  await eventually(async () => (await get('/v1/agents')).body.items.filter((a: AgentView) => a.status === 'online').length === AGENTS.length);
  for (let i = 0; i < 4; i++) customers.push(await webCustomer(i));
  for (let i = 4; i < 6; i++) customers.push(await whatsappCustomer(i));
  // The loads the customers' first messages gave (lastLoads): a first step lowering a capacity below
  // one of them is no assignment past capacity.
  let last: string | undefined;
  await eventually(async () => !(last = await invariants([])), 10_000).catch(() => expect(last).toBeUndefined());
});

afterAll(async () => {
  await Promise.all(sockets.map((c) => c.close()));
  await stack?.stop();
});

describe('workspace sequences', () => {
  it('keeps loads, assignments and notes right through random sequences of agents’ actions', { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 30, maxLength: 30 }), async (steps) => {
        const done: Op[][] = [];
        for (const ops of steps) {
          done.push(ops);
          await Promise.all(ops.map(run));
          expect(failures, JSON.stringify(done)).toEqual([]);
          let last: string | undefined;
          try {
            await eventually(async () => !(last = await invariants(ops)), 5_000);
          } catch {
            expect(last, JSON.stringify(done)).toBeUndefined();
          }
          expect(await leakedNotes(), JSON.stringify(done)).toEqual([]);
          expect(foreignFrames(), JSON.stringify(done)).toEqual([]);
        }
      }),
      { numRuns: Number(process.env.SQ_RUNS ?? 2), endOnFailure: true },
    );
  });
});
