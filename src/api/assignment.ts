/** Assignment, transfer, status and read routes on one conversation. */
import * as z from '../zod';
import { ID_PATTERN, type Route } from './context';
import { json, parseBody } from '../http/http';
import { assignConversation, markConversationRead, setConversationStatus, transferConversation } from '../domain/assignment';
import { toConversation } from '../store/conversations';

const agentId = z.string().check(z.regex(ID_PATTERN, 'an agent id (letters, digits and _ . : @ + - only, at most 128)'));
const AssignBody = z.object({ agentId: z.nullable(agentId) });
const TransferBody = z
  .object({
    agentId: z.optional(agentId),
    team: z.optional(z.trimmedText(1, 64)),
    // A note of invisible characters only would be a blank line in the history.
    note: z.optional(z.shownTrimmedText(1, 4096)),
    clientRequestId: z.optional(z.text(1, 128)),
  })
  .check(z.refine((b) => Boolean(b.agentId || b.team || b.note), { message: 'agentId, team or note is required', path: ['agentId'] }));
const StatusBody = z.object({
  status: z.enum(['open', 'pending', 'snoozed', 'resolved']),
  snoozedUntil: z.optional(z.pipe(z.iso.datetime({ offset: true }), z.transform((s) => new Date(s).toISOString()))),
});

export const assignRoute: Route = async ({ event, params, agent }) => {
  const body = parseBody(event, AssignBody);
  return json(200, toConversation(await assignConversation(params.id!, body.agentId, agent)));
};

export const transferRoute: Route = async ({ event, params, agent }) => {
  const body = parseBody(event, TransferBody);
  return json(200, toConversation(await transferConversation(params.id!, agent, body)));
};

export const statusRoute: Route = async ({ event, params, agent }) => {
  const body = parseBody(event, StatusBody);
  return json(200, toConversation(await setConversationStatus(params.id!, body.status, body.snoozedUntil, agent.id)));
};

export const markReadRoute: Route = async ({ params }) => json(200, toConversation(await markConversationRead(params.id!)));
