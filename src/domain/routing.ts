/**
 * Routing: which agent works a conversation.
 *
 * - An open conversation holds one slot of its assignee's capacity, of its kind (live chat
 *   for web, asynchronous for the other channels). Pending, snoozed and resolved ones hold none.
 * - Automatic assignment goes to available agents (online, or within the grace period after
 *   their last connection closed), least busy first and round-robin among equals, and only
 *   through the conditional writes in src/store/assignment.ts (a slot is reserved before the
 *   conversation names its agent), so capacity holds under any concurrency. A customer's new
 *   conversation is written with its agent already named.
 * - Conversations nobody can take wait in the unassigned queue (arrival order) and are
 *   handed out when a slot frees, an agent comes online or a capacity grows.
 * - Manual assignment and transfer to a named agent are a person's decision and may exceed
 *   capacity; the counter still follows.
 */
import type { ConversationRecord } from '../store/conversations';
import { getConversation, isErasing, listConversations, queueTime } from '../store/conversations';
import { addAgentLoad, getAgent, listAgents, reserveAgentSlot, releaseAgentSlot, setAgentLoads, type AgentRecord, type LoadKind } from '../store/agents';
import { assignIfAvailable, requeueConversation } from '../store/assignment';
import type { InboundHookContext } from './automation';
import { conversationEvent, publishToConversation } from './events';
import { getSettings, type Settings } from './settings';
import type { Channel, OutboundJob } from './types';
import { enqueueOutbound } from '../aws/queues';
import { newId } from './ids';

export const loadKindOf = (channel: Channel): LoadKind => (channel === 'web' ? 'live' : 'async');

export function capacityOf(agent: AgentRecord, kind: LoadKind, settings: Pick<Settings, 'capacity'>): number {
  const override = kind === 'live' ? agent.liveCapacity : agent.asyncCapacity;
  return override ?? settings.capacity[kind];
}

export const loadOf = (agent: AgentRecord, kind: LoadKind): number => (kind === 'live' ? agent.liveLoad : agent.asyncLoad) ?? 0;

/** Online, or still within the grace period after the last connection closed. */
export function isAvailable(agent: AgentRecord, now: string): boolean {
  return agent.status === 'online' && (!agent.graceUntil || agent.graceUntil > now);
}

/**
 * A hand-off back to the queue keeps the agent who gave it up out of the offers for the
 * workspace's `routing.handoffHoldMinutes` (settings, 15 by default; 0: no hold). After it, or
 * once the customer has written since, that agent is offered it when nobody else can take it
 * (after everyone else): a customer is never stranded by who touched the conversation last.
 */
export const handoffHoldMs = (settings: Pick<Settings, 'routing'>): number => settings.routing.handoffHoldMinutes * 60_000;

type HandOff = Pick<ConversationRecord, 'handedOffBy' | 'handedOffAt' | 'lastInboundAt'>;

/** True while the hand-off keeps its agent out entirely (not merely last). */
export function handOffHolds(c: Partial<HandOff>, now: string, settings: Pick<Settings, 'routing'>): boolean {
  // A hand-off stored without its time predates the hold: treated as lapsed.
  if (!c.handedOffBy || !c.handedOffAt) return false;
  if (c.lastInboundAt && c.lastInboundAt > c.handedOffAt) return false;
  return Date.parse(now) - Date.parse(c.handedOffAt) < handoffHoldMs(settings);
}

/**
 * Agents who may take a conversation of this kind (and team), best first: least busy in
 * this kind, then least busy overall, then the one who waited longest since their last
 * automatic assignment (round-robin among equals). The agent it was handed off by is left out
 * while the hand-off holds, and comes after everyone else once it has lapsed.
 */
export function rankCandidates(
  agents: AgentRecord[],
  conversation: { kind: LoadKind; team?: string | null } & Partial<HandOff>,
  settings: Pick<Settings, 'capacity' | 'routing'>,
  now: string,
): AgentRecord[] {
  const total = (a: AgentRecord) => loadOf(a, 'live') + loadOf(a, 'async');
  const holds = handOffHolds(conversation, now, settings);
  const handedOff = (a: AgentRecord) => (a.id === conversation.handedOffBy ? 1 : 0);
  return agents
    .filter((a) => isAvailable(a, now))
    // The agent a transfer took it from would most often be the least busy one (their slot just freed).
    .filter((a) => !(holds && handedOff(a)))
    .filter((a) => !conversation.team || (a.teams ?? []).includes(conversation.team))
    .filter((a) => loadOf(a, conversation.kind) < capacityOf(a, conversation.kind, settings))
    .sort(
      (a, b) =>
        handedOff(a) - handedOff(b) ||
        loadOf(a, conversation.kind) - loadOf(b, conversation.kind) ||
        total(a) - total(b) ||
        (a.lastAssignedAt ?? '').localeCompare(b.lastAssignedAt ?? '') ||
        a.id.localeCompare(b.id),
    );
}

const MAX_ROUNDS = 25;
const pause = (attempt: number) => new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * Math.min(attempt, 5)));

/**
 * Offers the conversation to the available agents, best first, until `offer` answers with
 * something other than 'agent_unavailable' (a stale snapshot: the next candidate may still have
 * room; after the whole list, the team is read again). Undefined when nobody has room.
 */
async function offerToCandidates<T>(
  target: { kind: LoadKind; team?: string | null | undefined } & Partial<HandOff>,
  offer: (agent: AgentRecord, capacity: number, now: string) => Promise<T | 'agent_unavailable'>,
): Promise<T | undefined> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const now = new Date().toISOString();
    const [agents, settings] = await Promise.all([listAgents(), getSettings()]);
    const candidates = rankCandidates(agents, { ...target, team: target.team ?? null }, settings, now);
    if (candidates.length === 0) return undefined;
    for (const agent of candidates) {
      const answer = await offer(agent, capacityOf(agent, target.kind, settings), now);
      if (answer !== 'agent_unavailable') return answer;
    }
    await pause(round + 1);
  }
  return undefined;
}

/**
 * Gives a waiting conversation to the best available agent. Returns the conversation as
 * stored afterwards, or undefined when it stays in the queue (nobody has room) or was
 * taken by someone else. Does not publish.
 */
export async function autoAssign(
  conversation: Pick<ConversationRecord, 'id' | 'channel' | 'team'> & Partial<HandOff>,
  /** The reopening message it is handed out for, recorded with the slot (reclaimOrRequeue). */
  reclaimFor?: string,
): Promise<ConversationRecord | undefined> {
  const kind = loadKindOf(conversation.channel);
  const { handedOffBy, handedOffAt, lastInboundAt } = conversation;
  const assigned = await offerToCandidates({ kind, team: conversation.team, handedOffBy, handedOffAt, lastInboundAt }, async (agent, capacity, now) => {
    const result = await assignIfAvailable({ conversationId: conversation.id, agentId: agent.id, kind, capacity, now, ...(reclaimFor ? { reclaimFor } : {}) });
    if (result.outcome === 'conversation_taken') await slotGivenBack();
    return result.outcome === 'agent_unavailable' ? result.outcome : result;
  });
  return assigned?.outcome === 'assigned' ? assigned.conversation : undefined;
}

/**
 * The agent for a conversation about to be created: their slot is reserved here, and the
 * write that creates the conversation names them (one write instead of a second one that
 * moves it out of the queue). Undefined when nobody has room: it is created waiting.
 */
export async function reserveAgentForNew(conversation: Pick<ConversationRecord, 'channel' | 'team'>): Promise<string | undefined> {
  const kind = loadKindOf(conversation.channel);
  return offerToCandidates({ kind, team: conversation.team }, async (agent, capacity, now) =>
    (await reserveAgentSlot(agent.id, kind, capacity, now)) ? agent.id : 'agent_unavailable',
  );
}

/** Gives back the slot reserved for a conversation that was not created after all. */
export async function releaseReservation(conversation: Pick<ConversationRecord, 'channel'>, agentId: string): Promise<void> {
  await releaseAgentSlot(agentId, loadKindOf(conversation.channel));
  await slotGivenBack();
}

/**
 * A slot was reserved and given back unused (its conversation taken meanwhile, or not created
 * after all). While it was held, a customer writing may have found its agent full and stayed
 * waiting, with nothing but the recurring drain (15 minutes) to hand them out: a drain now does.
 * One queued job, only in that race.
 */
async function slotGivenBack(): Promise<void> {
  await requestDrain();
}

/**
 * A drain's bounds, a safety net for the function's time (not page sizes): conversations offered
 * to the team, and index pages read. Conversations skipped in lanes that found nobody count only
 * towards the pages, so that a backlog of one team cannot hide another team's waiting customers.
 */
export const DRAIN_LIMITS = { offers: 1000, pages: 200, pageSize: 50 };

/**
 * Hands waiting conversations, oldest first, to whoever has room. Kinds and teams that
 * found nobody are skipped for the rest of the drain. Publishes each assignment.
 */
export async function drainQueue(limits = DRAIN_LIMITS): Promise<number> {
  let cursor: string | undefined;
  let offered = 0;
  let pages = 0;
  let assigned = 0;
  const exhausted = new Set<string>();
  do {
    const page = await listConversations({ status: 'open', assignee: null, limit: limits.pageSize, ...(cursor ? { cursor } : {}) });
    pages++;
    const waiting = page.items
      // One whose customer's erasure was asked for is about to be deleted: it takes nobody's slot.
      // The mark is on the item the page read anyway (one of the last second, which the read may
      // miss, is refused by the assignment's conditional write).
      .filter((c) => c.status === 'open' && !c.assigneeId && !isErasing(c))
      .sort((a, b) => queueTime(a).localeCompare(queueTime(b)) || a.id.localeCompare(b.id));
    // The copy each offer reads anyway (cached for a minute): no read of its own.
    const settings = waiting.length > 0 ? await getSettings() : undefined;
    for (const conversation of waiting) {
      // One whose hand-off still holds may find nobody where the others of its kind and team would.
      const held = settings && handOffHolds(conversation, new Date().toISOString(), settings) ? conversation.handedOffBy : '';
      const lane = `${loadKindOf(conversation.channel)}#${conversation.team ?? ''}#${held}`;
      if (exhausted.has(lane)) continue;
      if (offered >= limits.offers) break;
      offered++;
      const after = await autoAssign(conversation);
      if (after?.assigneeId) {
        assigned++;
        await publishToConversation(after, [conversationEvent(after)], conversation);
      } else if (after === undefined && (await stillWaiting(conversation.id))) {
        exhausted.add(lane);
      }
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor && offered < limits.offers && pages < limits.pages);
  return assigned;
}

async function stillWaiting(id: string): Promise<boolean> {
  const current = await getConversation(id, true);
  return Boolean(current && current.status === 'open' && !current.assigneeId);
}

/** The slot a conversation holds: its assignee's, of its kind, while it is open. */
export function slotOf(c: Pick<ConversationRecord, 'status' | 'assigneeId' | 'channel'>): { agentId: string; kind: LoadKind } | undefined {
  return c.status === 'open' && c.assigneeId ? { agentId: c.assigneeId, kind: loadKindOf(c.channel) } : undefined;
}

/**
 * A conversation came back to `open` with its assignee: the agent takes the slot back when
 * available with room, otherwise the conversation goes back to the queue for someone else.
 * `by`: the customer message that reopened it, which the slot's reservation records, so that
 * its hooks run again after a crash (`resumed`) take no second slot if the first run took one.
 */
async function reclaimOrRequeue(conversation: ConversationRecord, by?: { messageId: string; resumed: boolean }): Promise<ConversationRecord> {
  const slot = slotOf(conversation);
  if (!slot) return conversation;
  const [agent, settings] = await Promise.all([getAgent(slot.agentId), getSettings()]);
  if (by?.resumed && agent?.reclaimedFor === by.messageId) return conversation;
  const now = new Date().toISOString();
  if (agent && (await reserveAgentSlot(slot.agentId, slot.kind, capacityOf(agent, slot.kind, settings), now, by?.messageId))) return conversation;
  if (!(await requeueConversation(conversation.id, slot.agentId, now))) {
    // A later change has moved it on from open with this agent, and that change's routing gives
    // back the slot this state holds: counted here, so that the give-back does not undercount.
    await addAgentLoad(slot.agentId, slot.kind);
    return (await getConversation(conversation.id, true)) ?? conversation;
  }
  // Back in the queue, where the drain leaves it too, until the erasure's step deletes it.
  if (isErasing(conversation)) return (await getConversation(conversation.id, true)) ?? conversation;
  const assigned = await autoAssign(conversation, by?.messageId);
  return assigned ?? (await getConversation(conversation.id, true)) ?? conversation;
}

/** Called for every stored customer message; returns the conversation after any assignment. */
export async function routeOnInbound(context: InboundHookContext): Promise<ConversationRecord> {
  const conversation = context.conversation;
  if (conversation.status !== 'open') return conversation;
  // Reopened with its agent, it holds their slot whatever its mark: the slot is counted (or the
  // conversation requeued), so that the erasure's step, which releases it, leaves the counter true.
  if (context.reopened && conversation.assigneeId) return reclaimOrRequeue(conversation, { messageId: context.message.id, resumed: context.resumed === true });
  // A message racing the erasure landed in a conversation being erased: nobody is to take it.
  if (conversation.assigneeId || isErasing(conversation)) return conversation;
  return (await autoAssign(conversation)) ?? conversation;
}

/**
 * An agent's presence changed: one who comes online gets true counters and takes waiting
 * conversations. The drain runs in the outbound consumer, not here: this runs inside the
 * console's $connect, where the agent's own connection cannot take the frames of what they get
 * yet, and a long drain would hold the handshake (and its connection record) past its limits.
 */
export async function routeOnPresence(agentId: string, status: 'online' | 'away' | 'offline'): Promise<void> {
  if (status !== 'online') return;
  await recountLoad(agentId);
  await requestDrain();
}

/** The outbound queue's group for drain requests: one drain at a time, beside the replies. */
const DRAIN_JOB_GROUP = 'routing-drain';

export function isDrainJob(job: OutboundJob): boolean {
  return job.conversationId === DRAIN_JOB_GROUP;
}

/** Has the outbound consumer run drainQueue (deliverOutbound), moments from now. */
export async function requestDrain(): Promise<void> {
  await enqueueOutbound([{ conversationId: DRAIN_JOB_GROUP, messageId: `drain-${newId()}` }]);
}

/**
 * How long after a load change a recount waits: a conversation assigned just before may not be
 * in the assignee index yet (GSIs lag by well under a second).
 */
const RECOUNT_SETTLE_MS = 10_000;

/**
 * Sets the agent's load counters to the open conversations they really hold, read from the
 * assignee index and checked against the table. Counters drift only through a crash between
 * a slot's reservation and the conversation's write (one too high); this heals them when the
 * agent next comes online, and every team's counters on a recurring schedule (recountAllLoads).
 * Skipped while a load change is recent, and dropped if one happens while counting. True when a
 * counter went down (a slot is free).
 */
export async function recountLoad(agentId: string, now = new Date()): Promise<boolean> {
  return recount(await getAgent(agentId), now);
}

/**
 * Every agent's recount, then a drain while anyone has room: a freed slot takes the
 * longest-waiting conversations, and a hand-off whose hold lapsed with time (no event of its own)
 * reaches the agent who gave it up. Returns how many agents got slots back.
 */
export async function recountAllLoads(now = new Date()): Promise<number> {
  const [agents, settings] = await Promise.all([listAgents(), getSettings()]);
  const healed = (await Promise.all(agents.map((agent) => recount(agent, now)))).filter(Boolean).length;
  // With nobody to offer them to, reading the whole waiting queue every 15 minutes is for nothing.
  const room = agents.some((a) => isAvailable(a, now.toISOString()) && (['live', 'async'] as const).some((kind) => loadOf(a, kind) < capacityOf(a, kind, settings)));
  if (healed > 0 || room) await drainQueue();
  return healed;
}

async function recount(agent: AgentRecord | undefined, now: Date): Promise<boolean> {
  if (!agent || (agent.loadChangedAt && now.getTime() - Date.parse(agent.loadChangedAt) < RECOUNT_SETTLE_MS)) return false;
  const agentId = agent.id;
  const held: Record<LoadKind, number> = { live: 0, async: 0 };
  let cursor: string | undefined;
  do {
    const page = await listConversations({ status: 'open', assignee: agentId, limit: 100, consistent: true, ...(cursor ? { cursor } : {}) });
    for (const conversation of page.items) {
      const slot = slotOf(conversation);
      if (slot?.agentId === agentId) held[slot.kind] += 1;
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  if (held.live === loadOf(agent, 'live') && held.async === loadOf(agent, 'async')) return false;
  const set = await setAgentLoads(agentId, held, agent, now.toISOString());
  return set && (held.live < loadOf(agent, 'live') || held.async < loadOf(agent, 'async'));
}

/**
 * A conversation changed status or assignee: the load counters follow the slot it holds,
 * and a freed slot (or a conversation that became unassigned) drains the queue. True when
 * routing may have given `after` another assignee (requeued, or assigned by the drain).
 */
export async function routeOnConversationChange(before: ConversationRecord, after: ConversationRecord, options: { by?: string } = {}): Promise<boolean> {
  const was = slotOf(before);
  const is = slotOf(after);
  const same = was && is && was.agentId === is.agentId && was.kind === is.kind;
  if (same) return false;
  if (was) await releaseAgentSlot(was.agentId, was.kind);
  let waiting = after.status === 'open' && !after.assigneeId;
  let moved = false;
  if (is) {
    // Reopened with the agent who had it, or (nobody held it) with the agent who resolved it, as a
    // reopening for a failed reply of theirs gives it (src/domain/engagement.ts): their slot back if they have room.
    const had = before.assigneeId ?? (before.status === 'resolved' ? before.resolvedBy : undefined);
    const reopenedWithSameAgent = before.status !== 'open' && had === after.assigneeId;
    // Its agent reopening it is taking it back, as a manual assignment is: it may exceed capacity.
    if (reopenedWithSameAgent && options.by !== after.assigneeId) {
      const routed = await reclaimOrRequeue(after);
      moved = routed.assigneeId !== after.assigneeId;
      if (moved) await publishToConversation(routed, [conversationEvent(routed)], after);
      waiting = false;
    } else {
      await addAgentLoad(is.agentId, is.kind);
    }
  }
  const drained = was || waiting ? await drainQueue() : 0;
  return moved || (waiting && drained > 0);
}

/**
 * A capacity grew (settings or an agent's override), or the hand-off hold shortened: waiting
 * conversations may fit now.
 */
export async function routeOnCapacityChange(): Promise<void> {
  await drainQueue();
}
