/** Macros: admins save them, any agent lists them and runs one on a conversation. */
import * as z from '../zod';
import { ID_PATTERN, requireAdmin, type Route } from './context';
import { json, parseBody } from '../http/http';
import { MAX_SNOOZE_MINUTES, createMacro, getMacro, listMacros, removeMacro, runMacro, updateMacro } from '../domain/macros';
import { LabelName } from '../domain/settings';
import { MAX_CONVERSATION_LABELS } from '../domain/conversations';
import { toConversation } from '../store/conversations';
import { readable } from './conversations';

const Labels = z.array(LabelName).check(z.minLength(1), z.maxLength(MAX_CONVERSATION_LABELS));
// Texts that show nothing would go out as an empty bubble, or a blank line in the macro list.
const Text = z.shownTrimmedText(1, 4096);

const Action = z.discriminatedUnion('type', [
  z.strictObject({ type: z.enum(['addLabels', 'removeLabels']), labels: Labels }),
  z.strictObject({
    type: z.literal('assign'),
    agentId: z.nullable(z.string().check(z.regex(ID_PATTERN, 'an agent id (letters, digits and _ . : @ + - only, at most 128), "me" or null'))),
  }),
  z.strictObject({ type: z.literal('transfer'), team: z.trimmedText(1, 64), note: z.optional(Text) }),
  z.strictObject({ type: z.enum(['sendMessage', 'addNote']), text: Text }),
  z.strictObject({ type: z.literal('setStatus'), status: z.enum(['open', 'pending', 'resolved']) }),
  // Minutes from the run's start; `until` is the run's to fix, not the macro's.
  z.strictObject({ type: z.literal('snooze'), minutes: z.wholeNumber(1, MAX_SNOOZE_MINUTES) }),
]);

const MacroBody = z.strictObject({
  name: z.shownTrimmedText(1, 100),
  actions: z.array(Action).check(z.minLength(1), z.maxLength(10)),
});

const RunBody = z.strictObject({ clientRequestId: z.optional(z.text(1, 128)) });

export const listMacrosRoute: Route = async () => json(200, { items: await listMacros() });

export const getMacroRoute: Route = async ({ params }) => json(200, await getMacro(params.id!));

export const createMacroRoute: Route = async ({ event, agent }) => {
  requireAdmin(agent);
  return json(201, await createMacro(parseBody(event, MacroBody), agent.id));
};

export const updateMacroRoute: Route = async ({ event, agent, params }) => {
  requireAdmin(agent);
  return json(200, await updateMacro(params.id!, parseBody(event, MacroBody)));
};

export const deleteMacroRoute: Route = async ({ agent, params }) => {
  requireAdmin(agent);
  await removeMacro(params.id!);
  return { statusCode: 204 };
};

/** POST /v1/conversations/{id}/macros/{macroId}/run `{clientRequestId?}`: the conversation after it, and the messages it wrote. */
export const runMacroRoute: Route = async ({ event, agent, params }) => {
  const body = parseBody(event, RunBody, { optional: true });
  const conversation = await readable(params.id!);
  const result = await runMacro(conversation, params.macroId!, agent, body.clientRequestId);
  return json(200, { conversation: toConversation(result.conversation), messageIds: result.messageIds });
};
