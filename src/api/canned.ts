/** Canned responses: agents list, search and render them; admins create and delete them. */
import * as z from '../zod';
import { requireAdmin, type Route } from './context';
import { json, parseBody, validate } from '../http/http';
import { createCanned, getCanned, removeCanned, renderCanned, searchCanned } from '../domain/canned';
import { readable } from './conversations';
import { getAgent } from '../store/agents';

const CannedBody = z.strictObject({
  shortCode: z.trimmedText(1, 64).check(z.regex(/^[\w.-]+$/, 'letters, digits, _ . - only')),
  // One of invisible characters only would fill the composer with a blank reply.
  text: z.shownTrimmedText(1, 4096),
});
const ListQuery = z.object({ q: z.optional(z.text(0, 200)) });
const RenderQuery = z.object({ conversationId: z.text(1, 128) });

export const listCannedRoute: Route = async ({ query }) => json(200, { items: await searchCanned(validate(ListQuery, query).q) });

export const createCannedRoute: Route = async ({ event, agent }) => {
  requireAdmin(agent);
  return json(201, await createCanned(parseBody(event, CannedBody), agent.id));
};

export const getCannedRoute: Route = async ({ params }) => json(200, await getCanned(params.id!));

export const deleteCannedRoute: Route = async ({ agent, params }) => {
  requireAdmin(agent);
  await removeCanned(params.id!);
  return { statusCode: 204 };
};

/** The text with placeholders filled for this conversation and the asking agent, ready to send. */
export const renderCannedRoute: Route = async ({ agent, params, query }) => {
  const { conversationId } = validate(RenderQuery, query);
  // As GET /v1/conversations/{id} reads it: a conversation whose customer's erasure was asked for is
  // gone to agents, its contact's details too.
  const conversation = await readable(conversationId);
  const name = agent.name ?? (await getAgent(agent.id))?.name;
  return json(200, await renderCanned(params.id!, { contact: conversation.contact, agent: { id: agent.id, ...(name ? { name } : {}) } }));
};
