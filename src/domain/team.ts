/** The team as agents see it: presence, load against capacity, unread messages. */
import { listAgents, updateAgentProfile, type AgentProfilePatch, type AgentRecord, type LoadKind } from '../store/agents';
import { isErasing, listConversations } from '../store/conversations';
import { settlePresence } from './presence';
import { capacityOf, loadOf, routeOnCapacityChange } from './routing';
import { getSettings, type Settings } from './settings';

export interface AgentView {
  id: string;
  name?: string;
  role: 'agent' | 'admin';
  status: AgentRecord['status'];
  /** When `status` was last set (a `presence` frame's `at`); the item's last change for an agent never present. */
  presenceAt: string;
  teams: string[];
  load: Record<LoadKind, number>;
  capacity: Record<LoadKind, number>;
  /** Only the per-agent overrides (null: the workspace setting applies). */
  capacityOverride: Record<LoadKind, number | null>;
  /** Customer messages not yet read, over the agent's open conversations. */
  unreadCount: number;
  /**
   * Open conversations assigned to the agent, as their inbox lists them: one whose customer's
   * erasure was asked for is left out (and its unread messages), though it holds its slot in
   * `load` until the erasure's step resolves it (seconds).
   */
  openCount: number;
}

function view(agent: AgentRecord, settings: Settings, open: { unread: number; count: number }): AgentView {
  return {
    id: agent.id,
    ...(agent.name ? { name: agent.name } : {}),
    role: agent.role,
    status: agent.status,
    presenceAt: agent.presenceAt ?? agent.updatedAt,
    teams: agent.teams ?? [],
    load: { live: loadOf(agent, 'live'), async: loadOf(agent, 'async') },
    capacity: { live: capacityOf(agent, 'live', settings), async: capacityOf(agent, 'async', settings) },
    capacityOverride: { live: agent.liveCapacity ?? null, async: agent.asyncCapacity ?? null },
    unreadCount: open.unread,
    openCount: open.count,
  };
}

/** One query per 100 open conversations of the agent (their load is a handful). */
async function openConversationsOf(agentId: string): Promise<{ unread: number; count: number }> {
  let unread = 0;
  let count = 0;
  let cursor: string | undefined;
  do {
    const page = await listConversations({ status: 'open', assignee: agentId, limit: 100, ...(cursor ? { cursor } : {}) });
    // Marked ones are gone to agents (404, out of the inbox): the items are read here anyway.
    for (const c of page.items.filter((c) => !isErasing(c))) {
      unread += c.unreadCount;
      count++;
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return { unread, count };
}

export async function listTeam(): Promise<AgentView[]> {
  const [agents, settings] = await Promise.all([listAgents().then((a) => settlePresence(a)), getSettings()]);
  const open = await Promise.all(agents.map((a) => openConversationsOf(a.id)));
  return agents.map((a, i) => view(a, settings, open[i]!)).sort((a, b) => a.id.localeCompare(b.id));
}

export async function updateAgent(id: string, patch: AgentProfilePatch): Promise<AgentView> {
  const [agent, settings] = await Promise.all([updateAgentProfile(id, patch), getSettings()]);
  // A larger capacity or a new team may let waiting conversations in.
  if (patch.liveCapacity !== undefined || patch.asyncCapacity !== undefined || patch.teams !== undefined) await routeOnCapacityChange();
  return view(agent, settings, await openConversationsOf(id));
}
