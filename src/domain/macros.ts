/**
 * Macros (as Chatwoot's): saved sequences of actions an agent runs on a conversation in one
 * click. Each action is the domain function the agent's own request calls, as that agent, so a
 * macro has exactly the effects of doing the same by hand (frames, routing, reports, timers).
 */
import { ClientError, badRequest, conflict, notFound } from './errors';
import { contentHash, newId } from './ids';
import { fillPlaceholders } from './canned';
import { showsNothing } from '../zod';
import { changeLabels } from './conversations';
import { MAX_SNOOZE_DAYS, assignConversation, refuseReservedAgentId, setConversationStatus, transferWithNote } from './assignment';
import { postAgentMessage, type AgentIdentity } from './outbound';
import { getSettings } from './settings';
import type { Message } from './types';
import { getAgent, listAgents } from '../store/agents';
import { getConversation, type ConversationRecord } from '../store/conversations';
import {
  advanceMacroRun,
  deleteMacro,
  getMacroRecord,
  getMacroRun,
  listMacroRecords,
  putMacro,
  putMacroRun,
  replaceMacro,
  type MacroAction,
  type MacroRecord,
  type MacroRun,
  type MacroRunAction,
} from '../store/macros';

export type { MacroAction, MacroRecord } from '../store/macros';

export interface MacroInput {
  name: string;
  actions: MacroAction[];
}

/** What `"me"` in an assign action stands for: whoever runs the macro. */
export const RUNNER = 'me';

/** The longest a snooze action may snooze for: as far ahead as /status lets an agent snooze (a leap year). */
export const MAX_SNOOZE_MINUTES = MAX_SNOOZE_DAYS * 24 * 60;

/**
 * The names a macro refers to must exist when it is saved, as they must when an agent does the
 * same by hand: defined labels, known agents, teams someone belongs to. Labels an admin removes
 * later make the action fail when run (a 4xx naming it), as the label picker would.
 */
async function checkReferences(actions: readonly MacroAction[]): Promise<void> {
  const labels = actions.flatMap((a) => (a.type === 'addLabels' || a.type === 'removeLabels' ? a.labels : []));
  if (labels.length > 0) {
    const defined = new Set((await getSettings({ fresh: true })).labels.map((l) => l.name));
    const unknown = labels.find((name) => !defined.has(name));
    if (unknown !== undefined) throw badRequest('unknown_label', `label ${unknown} is not defined (settings.labels)`);
  }
  for (const action of actions) {
    if (action.type !== 'assign' || action.agentId === null || action.agentId === RUNNER) continue;
    refuseReservedAgentId(action.agentId);
    if (!(await getAgent(action.agentId))) throw badRequest('unknown_agent', `agent ${action.agentId} is unknown (an agent appears once they have opened the console)`);
  }
  const teams = actions.flatMap((a) => (a.type === 'transfer' ? [a.team] : []));
  if (teams.length > 0) {
    const known = new Set((await listAgents()).flatMap((agent) => agent.teams ?? []));
    const unknown = teams.find((team) => !known.has(team));
    if (unknown !== undefined) throw badRequest('unknown_team', `team ${unknown}: no agent belongs to it`);
  }
}

const nameTaken = (name: string) => conflict('macro_name_taken', `a macro named "${name}" exists`);

export async function createMacro(input: MacroInput, createdBy: string): Promise<MacroRecord> {
  await checkReferences(input.actions);
  const now = new Date().toISOString();
  const record: MacroRecord = { id: newId(), name: input.name, actions: input.actions, createdAt: now, createdBy, updatedAt: now };
  if (!(await putMacro(record))) throw nameTaken(input.name);
  return record;
}

export async function getMacro(id: string): Promise<MacroRecord> {
  const macro = await getMacroRecord(id);
  if (!macro) throw notFound('macro');
  return macro;
}

export async function listMacros(): Promise<MacroRecord[]> {
  return (await listMacroRecords()).sort((a, b) => a.name.localeCompare(b.name));
}

const UPDATE_ATTEMPTS = 4;

/** Replaces a macro's name and actions (a run already started goes on with the actions it started with). */
export async function updateMacro(id: string, input: MacroInput): Promise<MacroRecord> {
  await checkReferences(input.actions);
  for (let attempt = 1; attempt <= UPDATE_ATTEMPTS; attempt++) {
    const previous = await getMacroRecord(id, true);
    if (!previous) throw notFound('macro');
    // Another millisecond than the one read: the write's condition tells the two versions apart.
    const at = new Date(Math.max(Date.now(), Date.parse(previous.updatedAt) + 1)).toISOString();
    const record: MacroRecord = { ...previous, name: input.name, actions: input.actions, updatedAt: at };
    if (await replaceMacro(previous, record)) return record;
    const lower = input.name.toLowerCase();
    if ((await listMacroRecords()).some((m) => m.id !== id && m.name.toLowerCase() === lower)) throw nameTaken(input.name);
  }
  throw conflict('macro_busy', 'the macro kept changing while it was saved: read it again');
}

export async function removeMacro(id: string): Promise<void> {
  if (!(await deleteMacro(id))) throw notFound('macro');
}

export interface MacroRunResult {
  conversation: ConversationRecord;
  /** The messages and notes the run wrote (a retry's include the first attempt's), in order. */
  messageIds: string[];
}

/**
 * Which run a request is. Named by the client (clientRequestId), the same id is the same run;
 * otherwise, as with transfers, the same agent running the same macro on the same issue again
 * is taken for a retry (the conversation reopened after a resolution is a new issue).
 */
function runKeyOf(conversation: ConversationRecord, macroId: string, agentId: string, clientRequestId?: string): string {
  const which = clientRequestId ? ['request', clientRequestId] : ['issue', conversation.reportStartedAt ?? conversation.createdAt, conversation.reopenCount ?? 0];
  return contentHash(JSON.stringify([agentId, macroId, ...which]));
}

/**
 * The run's record: the one an earlier attempt left, or a new one with the macro's actions as they
 * are now and their texts filled as they read now (as GET /v1/canned-responses/{id}/render fills
 * them). Kept filled, a retry sends the very text the first attempt stored under the step's id:
 * filled again after the contact's name was edited, it would be another message, sent twice.
 * A snooze's end is fixed alike, from the run's start: a retry snoozes to the same instant, not
 * to one the time the crash took later.
 */
async function startRun(conversation: ConversationRecord, runKey: string, macroId: string, agent: AgentIdentity): Promise<MacroRun> {
  const conversationId = conversation.id;
  const earlier = await getMacroRun(conversationId, runKey);
  if (earlier) return earlier;
  const macro = await getMacro(macroId);
  const textOf = (a: MacroAction) => (a.type === 'sendMessage' || a.type === 'addNote' ? a.text : a.type === 'transfer' ? a.note : undefined);
  const needsName = macro.actions.some((a) => textOf(a)?.includes('{{'));
  const agentName = agent.name ?? (needsName ? (await getAgent(agent.id))?.name : undefined);
  const fill = (text: string) => fillPlaceholders(text, { contact: conversation.contact, agent: { id: agent.id, ...(agentName ? { name: agentName } : {}) } });
  const startedAt = Date.now();
  const actions = macro.actions.map((a): MacroRunAction => {
    if (a.type === 'sendMessage' || a.type === 'addNote') return { ...a, text: fill(a.text) };
    // A transfer's note is a note: filled alike, and kept filled for a retry's same note.
    if (a.type === 'transfer' && a.note !== undefined) return { ...a, note: fill(a.note) };
    if (a.type === 'snooze') return { ...a, until: new Date(startedAt + a.minutes * 60_000).toISOString() };
    return a;
  });
  const run: MacroRun = { macroId, agentId: agent.id, actions, done: 0, messageIds: [] };
  if (await putMacroRun(conversationId, runKey, run)) return run;
  // Another attempt of the same run (a double click) recorded it first: go on with its record.
  const theirs = await getMacroRun(conversationId, runKey);
  if (!theirs) throw new Error(`macro run ${runKey} vanished`);
  return theirs;
}

/**
 * Runs a macro's actions in order as `agent`. A failing action stops the run with its 4xx,
 * naming the action; the earlier ones stay. The run's record says how far it got: the same run
 * again (a retry after a lost answer, a crash, or the error fixed) goes on from the action that did
 * not complete, which is applied again under the same ids (a message's clientMessageId, a
 * transfer's clientRequestId), so nothing is sent twice; labels, assignment and status come to
 * the same when applied again.
 */
export async function runMacro(conversation: ConversationRecord, macroId: string, agent: AgentIdentity, clientRequestId?: string): Promise<MacroRunResult> {
  const runKey = runKeyOf(conversation, macroId, agent.id, clientRequestId);
  const run = await startRun(conversation, runKey, macroId, agent);
  const messageIds = [...run.messageIds];
  for (let index = run.done; index < run.actions.length; index++) {
    const action = run.actions[index]!;
    const stepId = `macro:${runKey}:${index}`;
    let written: Message | undefined;
    try {
      written = await applyAction(conversation.id, action, agent, stepId);
    } catch (error) {
      // A 503 (the conversation kept changing) stays what it is: the same run again goes on from here.
      if (!(error instanceof ClientError) || error.status >= 500) throw error;
      throw new ClientError(error.status, 'macro_action_failed', `action ${index} (${action.type}) failed: ${error.message}`, {
        action: { index, type: action.type },
        cause: { code: error.code, message: error.message },
        messageIds,
      });
    }
    if (written && !messageIds.includes(written.id)) messageIds.push(written.id);
    await advanceMacroRun(conversation.id, runKey, index + 1, messageIds);
  }
  const after = await getConversation(conversation.id, true);
  if (!after) throw notFound('conversation');
  return { conversation: after, messageIds };
}

/**
 * A text whose placeholders filled to nothing (`{{contact.email}}` for a contact without one) is
 * refused as an empty reply or note by hand is: sent, it would be an empty bubble to the customer.
 */
function refuseBlank(text: string | undefined, what: string): void {
  if (text !== undefined && showsNothing(text)) throw badRequest('invalid_request', `${what}: its placeholders fill to nothing for this conversation`);
}

/** One action of a run; its texts were filled and its snooze's end fixed when the run started (startRun). */
async function applyAction(conversationId: string, action: MacroRunAction, agent: AgentIdentity, stepId: string): Promise<Message | undefined> {
  if (action.type === 'sendMessage' || action.type === 'addNote') refuseBlank(action.text, 'text');
  if (action.type === 'transfer') refuseBlank(action.note, 'note');
  switch (action.type) {
    case 'addLabels':
      await changeLabels(conversationId, { add: action.labels });
      return undefined;
    case 'removeLabels':
      await changeLabels(conversationId, { remove: action.labels });
      return undefined;
    case 'assign':
      await assignConversation(conversationId, action.agentId === RUNNER ? agent.id : action.agentId, agent);
      return undefined;
    case 'transfer':
      return (await transferWithNote(conversationId, agent, { team: action.team, ...(action.note ? { note: action.note } : {}), clientRequestId: stepId })).note;
    case 'sendMessage':
      return postAgentMessage(conversationId, agent, { text: action.text, clientMessageId: stepId });
    case 'addNote':
      return postAgentMessage(conversationId, agent, { text: action.text, private: true, clientMessageId: stepId });
    case 'setStatus':
      await setConversationStatus(conversationId, action.status, undefined, agent.id);
      return undefined;
    case 'snooze':
      // A retry after `until` passed is refused as /status refuses a snooze into the past (400).
      await setConversationStatus(conversationId, 'snoozed', action.until, agent.id);
      return undefined;
  }
}
