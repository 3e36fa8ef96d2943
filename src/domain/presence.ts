/**
 * Agent presence. `online`, `away` and `offline` are set by the agent; when an agent's last
 * WebSocket connection closes they stay assignable for a grace period
 * (CONVERSA_PRESENCE_GRACE_SECONDS, default 30: a page reload or a network blip must not
 * cost them their queue) and then count as away.
 *
 * The grace period needs no timer: the deadline is stored on the agent item, the assignment
 * condition refuses agents past it, and whoever reads the team next (the agent list, the
 * assignment path) turns them `away` and announces it. `expirePresenceGrace` is exported for
 * a scheduled check as well, should a deployment want the `presence` event on the dot.
 */
import { afterPresence } from './automation';
import { publish } from './fanout';
import { expireAgentGrace, getAgent, setAgentPresence, startAgentGrace, type AgentRecord, type Presence } from '../store/agents';
import { listConnections } from '../store/connections';

export const PRESENCE_GRACE_ENV = 'CONVERSA_PRESENCE_GRACE_SECONDS';

export function presenceGraceSeconds(): number {
  const raw = process.env[PRESENCE_GRACE_ENV];
  const value = raw === undefined || raw === '' ? 30 : Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : 30;
}

/** Sets presence, tells the other agents and lets routing react. `except`: a connection still inside $connect. */
export async function changePresence(agentId: string, status: Presence, except?: string): Promise<void> {
  await setAgentPresence(agentId, status);
  await publish([{ type: 'presence', agentId, status }], { agents: true, ...(except ? { except } : {}) });
  await afterPresence(agentId, status);
}

/** The agent's last connection closed (checked by the caller): start the grace period. */
export async function agentDisconnected(agentId: string): Promise<void> {
  const grace = presenceGraceSeconds();
  if (grace === 0) {
    await changePresence(agentId, 'away');
    return;
  }
  await startAgentGrace(agentId, new Date(Date.now() + grace * 1000).toISOString());
}

/** Turns an agent whose grace ran out (and who did not come back) away, once. */
export async function expirePresenceGrace(agentId: string, now = new Date().toISOString()): Promise<boolean> {
  const connections = await listConnections({ kind: 'agents' });
  if (connections.some((c) => c.principalId === agentId)) return false;
  if (!(await expireAgentGrace(agentId, now))) return false;
  await publish([{ type: 'presence', agentId, status: 'away' }], { agents: true });
  await afterPresence(agentId, 'away');
  return true;
}

/** The agents as they are now: expired grace periods are settled (and announced) on the way. */
export async function settlePresence(agents: AgentRecord[], now = new Date().toISOString()): Promise<AgentRecord[]> {
  return Promise.all(
    agents.map(async (agent) => {
      if (agent.status !== 'online' || !agent.graceUntil || agent.graceUntil > now) return agent;
      await expirePresenceGrace(agent.id, now);
      return (await getAgent(agent.id)) ?? agent;
    }),
  );
}
