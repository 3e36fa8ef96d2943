/** Agent routes on conversations and their messages. */
import * as z from '../zod';
import type { Route } from './context';
import { json, parseBody, validate } from '../http/http';
import { badRequest, notFound } from '../domain/errors';
import { postAgentMessage } from '../domain/outbound';
import { setConversationStatus } from '../domain/assignment';
import { frozenEpisode, reopenedByAgent } from '../domain/episodes';
import { MAX_MENTIONS, mentionedConversations } from '../domain/mentions';
import { isErased } from '../domain/erasure';
import { changeConversation, MAX_CONVERSATION_LABELS, setLabels, withStatus } from '../domain/conversations';
import { LabelName } from '../domain/settings';
import { CHANNELS } from '../domain/types';
import { AttachmentRefs } from '../domain/media';
import { agentChange, getConversation, isErasing, listConversations, toConversation, type ConversationRecord } from '../store/conversations';
import { listMessages } from '../store/messages';
import { isAgentId } from '../store/keys';

const ListQuery = z.object({
  status: z._default(z.enum(['open', 'pending', 'snoozed', 'resolved']), 'open'),
  // `none` is the id the index files the queue under (`unassigned` reads it); anything else outside the id pattern names nobody.
  assignee: z.optional(
    z.string().check(
      z.refine(isAgentId, '`me`, `unassigned` or an agent id (letters, digits and _ . : @ + - only, at most 128)'),
    ),
  ),
  channel: z.optional(z.enum(CHANNELS)),
  team: z.optional(z.text(1, 64)),
  label: z.optional(LabelName),
  limit: z.pageLimit(25),
  cursor: z.optional(z.text(0, 2048)),
});

const PageQuery = z.object({
  limit: z.pageLimit(50),
  cursor: z.optional(z.text(0, 2048)),
});

const Template = z.object({
  name: z.text(1, 512),
  language: z.optional(z.text(2, 16)),
  params: z.optional(z.array(z.text(0, 1024)).check(z.maxLength(20))),
});

const SendBody = z
  .object({
    text: z.messageText(4096),
    clientMessageId: z.optional(z.text(1, 128)),
    private: z.optional(z.boolean()),
    template: z.optional(Template),
    attachments: z.optional(AttachmentRefs),
    /** The console's own WebSocket connection (the getConnection action): no message.created echo there. */
    connectionId: z.optional(z.text(1, 128)),
    /** Agents a private note mentions. Twice the limit passes here so that the domain's message names the limit. */
    mentions: z.optional(z.array(z.text(1, 128)).check(z.maxLength(2 * MAX_MENTIONS))),
  })
  .check(
    z.refine((b) => b.text.length > 0 || Boolean(b.template) || (b.attachments?.length ?? 0) > 0, {
      message: 'text is required (or a template, or attachments)',
      path: ['text'],
    }),
  );

const MentionQuery = z.object({
  mentioned: z.literal('me'),
  limit: z.pageLimit(25),
  cursor: z.optional(z.text(0, 2048)),
});

export const listConversationsRoute: Route = async ({ query, agent }) => {
  if (query.mentioned !== undefined) return listMentionedRoute(query, agent.id);
  const q = validate(ListQuery, query);
  const assignee = q.assignee === undefined ? undefined : q.assignee === 'me' ? agent.id : q.assignee === 'unassigned' ? null : q.assignee;
  const page = await listConversations({ status: q.status, assignee, channel: q.channel, team: q.team, label: q.label, limit: q.limit, cursor: q.cursor, order: 'activity' });
  // Out from the erasure request on, by the mark on the items the page read anyway (a page may come out short, as when the index lags).
  return json(200, { items: page.items.filter((c) => !isErasing(c)).map(toConversation), nextCursor: page.nextCursor });
};

/** GET /v1/conversations?mentioned=me, the Mentions view (src/domain/mentions.ts): no other filter beside it. */
async function listMentionedRoute(query: Record<string, string | undefined>, agentId: string) {
  const other = Object.keys(query).filter((name) => !['mentioned', 'limit', 'cursor'].includes(name) && query[name] !== undefined);
  if (other.length > 0) throw badRequest('invalid_request', `mentioned lists every status and takes no other filter (not ${other.join(', ')})`);
  const q = validate(MentionQuery, query);
  return json(200, await mentionedConversations(agentId, { limit: q.limit, cursor: q.cursor }));
}

/**
 * The conversation, or 404: also once its contact's erasure was asked for, before the erasure's
 * step reaches it. The mark the request left on it says so; one a racing message started after
 * the request carries none until the step reaches it, so the record is read too (one more read).
 */
export async function readable(id: string): Promise<ConversationRecord> {
  const conversation = await getConversation(id);
  if (!conversation || isErasing(conversation) || (await isErased(conversation.contact.id))) throw notFound('conversation');
  return conversation;
}

export const getConversationRoute: Route = async ({ params }) => json(200, toConversation(await readable(params.id!)));

export const listMessagesRoute: Route = async ({ params, query }) => {
  const q = validate(PageQuery, query);
  // The page is read beside the check: the console opens a conversation with this call.
  const [, page] = await Promise.all([readable(params.id!), listMessages(params.id!, { limit: q.limit, cursor: q.cursor, includePrivate: true })]);
  return json(200, page);
};

export const postMessageRoute: Route = async ({ event, params, agent }) => {
  const body = parseBody(event, SendBody);
  const message = await postAgentMessage(params.id!, agent, {
    text: body.text,
    ...(body.clientMessageId ? { clientMessageId: body.clientMessageId } : {}),
    ...(body.private ? { private: true } : {}),
    ...(body.template ? { template: body.template } : {}),
    ...(body.attachments ? { attachments: body.attachments } : {}),
    ...(body.connectionId ? { connectionId: body.connectionId } : {}),
    ...(body.mentions ? { mentions: body.mentions } : {}),
  });
  return json(202, { message });
};

// Twice the limit passes here so that the domain's message names the limit rather than zod's.
const LabelsBody = z.object({ labels: z.array(z.text(1, 64)).check(z.maxLength(2 * MAX_CONVERSATION_LABELS)) });

/** PUT /v1/conversations/{id}/labels `{labels}`: the conversation's whole set of labels. */
export const setLabelsRoute: Route = async ({ event, params }) => {
  const body = parseBody(event, LabelsBody);
  return json(200, toConversation(await setLabels(params.id!, body.labels)));
};

// POST .../status {status: "resolved"}: the same change, with its CSAT question.
export const resolveRoute: Route = async ({ params, agent }) => json(200, toConversation(await setConversationStatus(params.id!, 'resolved', undefined, agent.id)));

export const reopenRoute: Route = async ({ params, agent }) => {
  const at = new Date().toISOString();
  const { after } = await changeConversation(
    params.id!,
    agentChange((c) => (c.status === 'open' ? undefined : reopenedByAgent(c, { ...withStatus(c, 'open', at), transferNote: undefined }, at))),
    { by: agent.id },
    frozenEpisode,
  );
  return json(200, toConversation(after));
};
