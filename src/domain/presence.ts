/**
 * Agent presence. `online`, `away` and `offline` are set by the agent; when an agent's last
 * WebSocket connection closes they stay assignable for a grace period
 * (CONVERSA_PRESENCE_GRACE_SECONDS, default 30: a page reload or a network blip must not
 * cost them their queue) and then count as away.
 *
 * The deadline is stored on the agent item and the assignment condition refuses agents past it,
 * so assignment needs no timer. The rest of the team hears of it from a one-time timer armed with
 * the grace period (`presenceGrace`, run by the engagement function), which turns them `away` and
 * announces it; whoever reads the team first (the agent list) does the same, once. The load
 * recount's schedule also runs `sweepPresence`, for agents whose last connection ended without a
 * $disconnect, or whose timer could not be armed.
 *
 * A console that connects turns its agent online, unless the agent chose away or offline: that
 * choice outlives reconnections, as an agent status does in Amazon Connect.
 */
import { afterPresence } from './automation';
import { publish } from './fanout';
import {
  clearAgentGrace,
  expireAgentGrace,
  getAgent,
  listAgents,
  setAgentOnlineOnConnect,
  setAgentPresence,
  startAgentGrace,
  type AgentRecord,
  type Presence,
} from '../store/agents';
import { listConnections } from '../store/connections';
import { setTimerAt } from './timers';
import { config } from '../config';


/** The agent's own choice of presence: stored, told to the other agents, and routing reacts. */
export async function changePresence(agentId: string, status: Presence): Promise<void> {
  const now = new Date().toISOString();
  await setAgentPresence(agentId, status, now);
  await announce(agentId, status, now);
}

/** A console connected (`connectionId`, still inside $connect): online, unless away or offline by choice. */
export async function agentConnected(agentId: string, connectionId: string): Promise<void> {
  const now = new Date().toISOString();
  if (await setAgentOnlineOnConnect(agentId, now)) await announce(agentId, 'online', now, connectionId);
}

/** `at` is the stored `presenceAt`: frames from separate invocations may arrive in either order. */
async function announce(agentId: string, status: Presence, at: string, except?: string): Promise<void> {
  await publish([{ type: 'presence', agentId, status, at }], { agents: true, ...(except ? { except } : {}) });
  await afterPresence(agentId, status);
}

/** The agents with a connection now (a strongly consistent read: one may have closed a moment ago). */
async function connectedAgents(): Promise<Set<string>> {
  return new Set((await listConnections({ kind: 'agents' }, { consistent: true })).map((c) => c.principalId));
}

/** One of the agent's connections closed: the last one starts the grace period. */
export async function agentConnectionClosed(agentId: string): Promise<void> {
  if (!(await connectedAgents()).has(agentId)) await agentDisconnected(agentId);
}

/** The agent's last connection closed (checked by the caller): start the grace period. */
async function agentDisconnected(agentId: string): Promise<void> {
  const grace = config.presenceGraceSeconds;
  const until = new Date(Date.now() + grace * 1000).toISOString();
  const started = await startAgentGrace(agentId, until);
  // Without a grace period, away at once, the same automatic way (not as the agent's own
  // choice, which a reconnection would keep).
  if (grace === 0) await expirePresenceGrace(agentId, until, until);
  else if (started) await armGraceTimer(agentId, until);
}

/**
 * The timer that ends a grace period, so that the team hears of it then and not when someone next
 * reads the agent list. Best effort, as $disconnect itself is: a timer that could not be armed
 * leaves the period to the agent list and to the recurring sweep, as before.
 */
async function armGraceTimer(agentId: string, until: string): Promise<void> {
  try {
    await setTimerAt('presenceGrace', agentId, new Date(until));
  } catch (error) {
    console.warn('the timer that ends an agent\'s grace period could not be armed', agentId, error);
  }
}

/**
 * The grace timer fired: the agent turns away (announced) unless they came back meanwhile. The
 * timer fires no earlier than the deadline it was armed for (`dueAt`, rounded up to the second),
 * so that deadline counts as passed even on a clock a little behind; a later period (the agent
 * came back and left again) has a timer of its own.
 */
export async function endPresenceGrace(agentId: string, dueAt: string, now = new Date()): Promise<boolean> {
  const agent = await getAgent(agentId);
  if (!agent || agent.status !== 'online' || !agent.graceUntil) return false;
  const at = [now.toISOString(), Number.isNaN(Date.parse(dueAt)) ? '' : new Date(dueAt).toISOString()].sort().at(-1)!;
  if (agent.graceUntil > at) return false;
  return expirePresenceGrace(agentId, at, agent.graceUntil);
}

/**
 * Turns an agent whose grace ran out (and who did not come back) away, once. An agent who is
 * connected after all (a reload whose old tab's close was handled after the new tab opened)
 * loses the stale deadline instead, which would otherwise keep them out of assignment.
 */
export async function expirePresenceGrace(agentId: string, now = new Date().toISOString(), graceUntil?: string): Promise<boolean> {
  if ((await connectedAgents()).has(agentId)) {
    if (graceUntil) await clearAgentGrace(agentId, graceUntil);
    return false;
  }
  if (!(await expireAgentGrace(agentId, now))) return false;
  await announce(agentId, 'away', now);
  return true;
}

/**
 * The recurring check (every 15 minutes, with the load recount): an agent online without any
 * connection — whose $disconnect never came (API Gateway sends it on a best-effort basis) or
 * whose last connection was found gone by a delivery — starts the grace period, and expired
 * ones are settled. Without it such an agent would stay assignable with nobody there.
 */
export async function sweepPresence(now = new Date()): Promise<number> {
  const [agents, connected] = await Promise.all([listAgents(), connectedAgents()]);
  const orphaned = agents.filter((a) => a.status === 'online' && !a.graceUntil && !connected.has(a.id));
  // The periods started here end later (each with its timer); the ones that have ended are those read above.
  const until = new Date(now.getTime() + config.presenceGraceSeconds * 1000).toISOString();
  await Promise.all([
    ...orphaned.map(async (a) => {
      if (await startAgentGrace(a.id, until)) await armGraceTimer(a.id, until);
    }),
    settlePresence(agents, now.toISOString()),
  ]);
  return orphaned.length;
}

/** The agents as they are now: expired grace periods are settled (and announced) on the way. */
export async function settlePresence(agents: AgentRecord[], now = new Date().toISOString()): Promise<AgentRecord[]> {
  return Promise.all(
    agents.map(async (agent) => {
      if (agent.status !== 'online' || !agent.graceUntil || agent.graceUntil > now) return agent;
      await expirePresenceGrace(agent.id, now, agent.graceUntil);
      return (await getAgent(agent.id)) ?? agent;
    }),
  );
}
