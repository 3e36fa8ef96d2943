/** Agent routes on conversations and their messages. */
import * as z from 'zod';
import type { Route } from './context';
import { json, parseBody, validate } from '../http/http';
import { notFound } from '../domain/errors';
import { postAgentMessage } from '../domain/outbound';
import { changeConversation, withStatus } from '../domain/conversations';
import { CHANNELS } from '../domain/types';
import { getConversation, listConversations, toConversation } from '../store/conversations';
import { listMessages } from '../store/messages';

const ListQuery = z.object({
  status: z.enum(['open', 'pending', 'snoozed', 'resolved']).default('open'),
  assignee: z.string().min(1).max(128).optional(),
  channel: z.enum(CHANNELS).optional(),
  team: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().max(2048).optional(),
});

const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(2048).optional(),
});

const Template = z.object({
  name: z.string().min(1).max(512),
  language: z.string().min(2).max(16).optional(),
  params: z.array(z.string().max(1024)).max(20).optional(),
});

const SendBody = z
  .object({
    text: z.string().trim().max(4096).default(''),
    clientMessageId: z.string().min(1).max(128).optional(),
    private: z.boolean().optional(),
    template: Template.optional(),
  })
  .refine((b) => b.text.length > 0 || b.template, { message: 'text is required (or a template)', path: ['text'] });

export const listConversationsRoute: Route = async ({ query, agent }) => {
  const q = validate(ListQuery, query);
  const assignee = q.assignee === undefined ? undefined : q.assignee === 'me' ? agent.id : q.assignee === 'unassigned' ? null : q.assignee;
  const page = await listConversations({ status: q.status, assignee, channel: q.channel, team: q.team, limit: q.limit, cursor: q.cursor });
  return json(200, { items: page.items.map(toConversation), nextCursor: page.nextCursor });
};

export const getConversationRoute: Route = async ({ params }) => {
  const conversation = await getConversation(params.id!);
  if (!conversation) throw notFound('conversation');
  return json(200, toConversation(conversation));
};

export const listMessagesRoute: Route = async ({ params, query }) => {
  const q = validate(PageQuery, query);
  if (!(await getConversation(params.id!))) throw notFound('conversation');
  return json(200, await listMessages(params.id!, { limit: q.limit, cursor: q.cursor, includePrivate: true }));
};

export const postMessageRoute: Route = async ({ event, params, agent }) => {
  const body = parseBody(event, SendBody);
  const message = await postAgentMessage(params.id!, agent, {
    text: body.text,
    ...(body.clientMessageId ? { clientMessageId: body.clientMessageId } : {}),
    ...(body.private ? { private: true } : {}),
    ...(body.template ? { template: body.template } : {}),
  });
  return json(202, { message });
};

export const resolveRoute: Route = async ({ params }) => {
  const { after } = await changeConversation(params.id!, (c) => (c.status === 'resolved' ? undefined : withStatus(c, 'resolved')));
  return json(200, toConversation(after));
};

export const reopenRoute: Route = async ({ params }) => {
  const { after } = await changeConversation(params.id!, (c) => (c.status === 'open' ? undefined : withStatus(c, 'open')));
  return json(200, toConversation(after));
};
