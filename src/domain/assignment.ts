/**
 * What agents do to a conversation's ownership and lifecycle: assign, transfer, change
 * status, mark read. Each goes through changeConversation (one `conversation.updated`, and
 * routing keeps the load counters and the queue in step).
 */
import { badRequest, notFound } from './errors';
import { changeConversation, withStatus } from './conversations';
import { contentHash, newId } from './ids';
import { postAgentMessage, type AgentIdentity } from './outbound';
import { syncSnoozeWake } from './snooze';
import { askAfterAgentResolution, withAgentResolutionAsk } from './engagement';
import { getSettings } from './settings';
import { frozenEpisode, reopenedByAgent } from './episodes';
import type { ConversationStatus, Message } from './types';
import { getAgent, listAgents, touchAgent, updateAgentProfile } from '../store/agents';
import { agentChange, getConversation, isErasing, updateConversation, type ConversationRecord } from '../store/conversations';
import { UNASSIGNED_ID } from '../store/keys';

/**
 * Agents get a record when they first open the console. One named in an assignment before that
 * gets it here (offline, no load yet) when the caller vouches for them: themselves (their token
 * proves them), or an admin (who manages the team, as with PUT /v1/agents/{id}). An agent naming
 * an id nobody has seen gets a 404, so that a typo does not make up a colleague.
 */
export async function ensureAgent(agentId: string, by: AgentIdentity, conversationId?: string): Promise<void> {
  refuseReservedAgentId(agentId);
  if (await getAgent(agentId)) return;
  // A request that fails (no such conversation) must not have made up a colleague either.
  if (conversationId) {
    const conversation = await getConversation(conversationId);
    if (!conversation || isErasing(conversation)) throw notFound('conversation');
  }
  if (agentId === by.id) await touchAgent(by.id, { role: by.role, ...(by.name ? { name: by.name } : {}) });
  else if (by.role === 'admin') await updateAgentProfile(agentId, {});
  else throw notFound('agent (an agent appears once they have opened the console)');
}

/**
 * Teams are what agents belong to (PUT /v1/agents/{id}): a conversation sent to a team nobody is
 * in (a typo) would wait in a queue no agent is offered.
 */
async function requireTeam(team: string): Promise<void> {
  if (!(await listAgents()).some((agent) => agent.teams?.includes(team))) throw notFound(`team ${team} (no agent belongs to it)`);
}

/**
 * Names no agent can have: the id the assignee index files unassigned conversations under, and the
 * inbox filter's own words (`assignee=me`, `assignee=unassigned`), which an agent so named could
 * never be listed by. A console that sends `"me"` meaning its own agent must not make up a colleague.
 */
const RESERVED_AGENT_IDS: ReadonlySet<string> = new Set([UNASSIGNED_ID, 'me', 'unassigned']);

export function refuseReservedAgentId(agentId: string): void {
  if (!RESERVED_AGENT_IDS.has(agentId)) return;
  const instead = agentId === UNASSIGNED_ID || agentId === 'unassigned' ? 'null unassigns' : 'name the agent by their id';
  throw badRequest('invalid_request', `agentId: "${agentId}" is reserved (${instead})`);
}

/**
 * Who had it, and when, when a change sends a conversation back to the queue: routing then offers
 * it to anyone else, since the agent whose slot just freed would most often be the least busy and
 * get it straight back; once the customer writes again or the hold lapses they may have it too, if
 * nobody else can (src/domain/routing.ts). Someone taking it (a person or routing) ends that.
 */
function handedOff(c: ConversationRecord, assigneeId: string | null, now: string): Pick<ConversationRecord, 'handedOffBy' | 'handedOffAt'> {
  if (assigneeId) return { handedOffBy: undefined, handedOffAt: undefined };
  if (c.assigneeId) return { handedOffBy: c.assigneeId, handedOffAt: now };
  return { handedOffBy: c.handedOffBy, handedOffAt: c.handedOffAt };
}

/** Manual assignment (null unassigns: back to the queue, for anyone but who had it). */
export async function assignConversation(conversationId: string, agentId: string | null, by: AgentIdentity): Promise<ConversationRecord> {
  if (agentId) await ensureAgent(agentId, by, conversationId);
  const { after } = await changeConversation(
    conversationId,
    agentChange((c) => {
      if (c.assigneeId === agentId) return undefined;
      const now = new Date().toISOString();
      // A person chose who has it: a transfer asked for before is no longer the last word (transferNote).
      return { ...c, assigneeId: agentId, ...handedOff(c, agentId, now), updatedAt: now, transferNote: undefined };
    }),
  );
  return after;
}

export interface TransferInput {
  agentId?: string;
  team?: string;
  note?: string;
  /** The client's id for this request: the same id again is a retry, another a new transfer. */
  clientRequestId?: string;
}

/**
 * Who asked for which transfer, with which note. The conversation's reopen count is in it: once
 * resolved and reopened, the same request is a new hand-off of a new issue.
 */
const transferKey = (by: string, input: TransferInput, c: ConversationRecord) =>
  contentHash(JSON.stringify([by, input.agentId ?? null, input.team ?? null, input.note ?? null, c.reopenCount ?? 0, ...(input.clientRequestId ? [input.clientRequestId] : [])]));

/**
 * The id of the note of the transfer this request repeats, if it does: the conversation records
 * the same agent's same transfer with the same note as its last one, and it is still where that
 * transfer put it (with the named agent, in the named team; a transfer to the queue counts however
 * routing handed it out since). Clients and load balancers send a request again after a timeout,
 * a 5xx or a lost answer; a person's assignment or status change since (which clear the record),
 * another transfer or a reopening makes the same request a new transfer. A request that names
 * itself (clientRequestId) is a retry exactly when the last transfer had its id and content.
 */
function repeatedTransfer(c: ConversationRecord, by: string, input: TransferInput): string | undefined {
  const last = c.transferNote;
  if (!last || last.key !== transferKey(by, input, c)) return undefined;
  // The client said which request this is: no guessing from where the conversation is now.
  if (input.clientRequestId) return last.id;
  if (input.team !== undefined && c.team !== input.team) return undefined;
  if (input.agentId !== undefined && c.assigneeId !== input.agentId) return undefined;
  return last.id;
}

/**
 * To an agent (optionally naming the team it now belongs to), to a team, or with only a note
 * back to its team's queue (unassigned, so that routing picks an available member other than the
 * agent it was taken from). The note is
 * a private message written after the move, so that it goes live to the agents who now follow
 * the conversation (the new assignee); its writer does not become a participant by it.
 * The note's clientMessageId comes from the record the transfer's own write leaves (transferNote),
 * so the same request again, after a crash before or after the note, stores it once.
 */
export async function transferConversation(conversationId: string, by: AgentIdentity, input: TransferInput): Promise<ConversationRecord> {
  return (await transferWithNote(conversationId, by, input)).conversation;
}

/** transferConversation, with the note it wrote (a macro answers with the ids of its messages). */
export async function transferWithNote(conversationId: string, by: AgentIdentity, input: TransferInput): Promise<{ conversation: ConversationRecord; note?: Message }> {
  if (!input.agentId && !input.team && !input.note) throw badRequest('invalid_request', 'agentId, team or note is required');
  if (input.agentId) await ensureAgent(input.agentId, by, conversationId);
  if (input.team) await requireTeam(input.team);
  // Decided on the record each write replaces (a retried write decides again).
  let noteId: string | undefined;
  let { after } = await changeConversation(
    conversationId,
    agentChange((c) => {
      noteId = repeatedTransfer(c, by.id, input);
      if (noteId) return undefined;
      const assigneeId = input.agentId ?? null;
      const team = input.team ?? (c.team ?? null);
      if (c.assigneeId === assigneeId && (c.team ?? null) === team) return undefined;
      const now = new Date().toISOString();
      noteId = input.note ? newId() : undefined;
      const transferNote = noteId ? { key: transferKey(by.id, input, c), id: noteId } : undefined;
      return { ...c, assigneeId, team, ...handedOff(c, assigneeId, now), updatedAt: now, transferNote };
    }),
  );
  if (!input.note) return { conversation: after };
  if (!noteId) {
    // Nothing to move (a note alone on a waiting conversation, or to the agent who has it): the
    // record alone, with nothing for the consoles or routing to hear (one read and write more).
    const marked = await updateConversation(
      conversationId,
      agentChange((c) => {
        noteId = repeatedTransfer(c, by.id, input);
        if (noteId) return undefined;
        noteId = newId();
        return { ...c, transferNote: { key: transferKey(by.id, input, c), id: noteId } };
      }),
    );
    if (!marked) throw notFound('conversation');
    after = marked.after;
  }
  const note = await postAgentMessage(conversationId, by, { text: input.note, private: true, handoff: true, clientMessageId: `transfer:${noteId}` });
  return { conversation: after, note };
}

/** How far ahead a conversation may be snoozed. */
export const MAX_SNOOZE_DAYS = 366;

export async function setConversationStatus(conversationId: string, status: ConversationStatus, snoozedUntil?: string, by?: string): Promise<ConversationRecord> {
  if (status === 'snoozed') {
    if (!snoozedUntil) throw badRequest('invalid_request', 'snoozedUntil: required to snooze');
    if (snoozedUntil <= new Date().toISOString()) throw badRequest('invalid_request', 'snoozedUntil: must be in the future');
    // A wake-up timer far off is a typo (9999), and one that outlives every reason to snooze.
    if (Date.parse(snoozedUntil) > Date.now() + MAX_SNOOZE_DAYS * 86_400_000) throw badRequest('invalid_request', `snoozedUntil: at most ${MAX_SNOOZE_DAYS} days ahead`);
  } else if (snoozedUntil) {
    throw badRequest('invalid_request', 'snoozedUntil: only with status "snoozed"');
  }
  const settings = status === 'resolved' ? await getSettings() : undefined;
  const at = new Date().toISOString();
  const { before, after } = await changeConversation(
    conversationId,
    agentChange((c) => {
      if (c.status === status && c.snoozedUntil === snoozedUntil) return undefined;
      // A person changed it: a transfer asked for before is no longer the last word (transferNote).
      const next = reopenedByAgent(c, { ...withStatus(c, status, at, by), transferNote: undefined }, at);
      if (settings) return withAgentResolutionAsk(next, settings, at);
      return status === 'snoozed' ? { ...next, snoozedUntil, updatedAt: at } : next;
    }),
    { by },
    frozenEpisode,
  );
  if (settings) await askAfterAgentResolution(before, after, settings);
  if (after.status === 'snoozed' || before.status === 'snoozed') await syncSnoozeWake(after);
  return after;
}

/**
 * An agent read the conversation: its unread count starts again from zero. Nothing to write (nor
 * to announce) when it is zero already; refused (404) once its contact's erasure was asked for.
 * The HTTP route and the WebSocket's `markRead` both make this change.
 */
export const readByAgent = agentChange((c) => (c.unreadCount === 0 ? undefined : { ...c, unreadCount: 0 }));

export async function markConversationRead(conversationId: string): Promise<ConversationRecord> {
  const { after } = await changeConversation(conversationId, readByAgent);
  return after;
}
