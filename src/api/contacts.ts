/** The 360° view of a customer (every handle and every conversation), agents' edits and admin merges. */
import * as z from '../zod';
import type { Route } from './context';
import { requireAdmin } from './context';
import { json, parseBody, validate } from '../http/http';
import { badRequest, notFound } from '../domain/errors';
import { isChannel, type Contact } from '../domain/types';
import { editContact, findContactBy, loadContact, mergeContacts } from '../domain/contacts';
import { getConversations, toConversation, type ConversationRecord } from '../store/conversations';
import type { ContactRecord } from '../store/contacts';

const MergeBody = z.object({ otherContactId: z.trimmedText(1, 128) });
// null clears a field; an empty string is no value (400), so a blank form field is not taken for "clear".
const ContactPatch = z.strictObject({
  name: z.optional(z.nullable(z.shownTrimmedText(1, 255))),
  email: z.optional(z.nullable(z.text(3, 320))),
  phone: z.optional(z.nullable(z.text(3, 40))),
});
const FindQuery = z.object({ email: z.optional(z.text(3, 320)), phone: z.optional(z.text(3, 40)) });

export async function contactView(id: string): Promise<Contact> {
  const found = await loadContact(id);
  if (!found) throw notFound('contact');
  return viewOf(found);
}

async function viewOf(found: NonNullable<Awaited<ReturnType<typeof loadContact>>>): Promise<Contact> {
  return viewFrom(found.contact, await getConversations(found.conversationIds));
}

function viewFrom(contact: ContactRecord, records: ConversationRecord[]): Contact {
  const conversations = [...records].sort((a, b) => b.lastMessageAt.localeCompare(a.lastMessageAt)).map(toConversation);
  return {
    id: contact.id,
    ...(contact.name ? { name: contact.name } : {}),
    ...(contact.email ? { email: contact.email } : {}),
    ...(contact.phone ? { phone: contact.phone } : {}),
    // The phone identity that links WhatsApp and SMS is the contact's `phone`, not a channel.
    handles: contact.handles.filter((h): h is Contact['handles'][number] => isChannel(h.channel)),
    conversations,
  };
}

export const getContactRoute: Route = async ({ params }) => json(200, await contactView(params.id!));

/**
 * GET /v1/contacts?email= or ?phone=: the contact that address or number links, as `items` (none
 * or one). An exact lookup (the handle's GetItem), not a search: the table has no text index.
 */
export const findContactsRoute: Route = async ({ query }) => {
  const q = validate(FindQuery, query);
  if ((q.email === undefined) === (q.phone === undefined)) throw badRequest('invalid_request', 'give either email or phone');
  const found = await findContactBy(q.email !== undefined ? { email: q.email } : { phone: q.phone! });
  return json(200, { items: found ? [await viewOf(found)] : [] });
};

/**
 * `{id}` survives; `otherContactId` is merged into it. Answers the surviving contact. A contact
 * whose erasure was asked for is gone to it (404), as to GET (mergeContacts reads both erasure
 * records under the merge lock).
 */
export const mergeContactRoute: Route = async ({ event, params, agent }) => {
  requireAdmin(agent);
  const body = parseBody(event, MergeBody);
  await mergeContacts(params.id!, body.otherContactId);
  return json(200, await contactView(params.id!));
};

/**
 * PATCH /v1/contacts/{id} `{name?, email?, phone?}` (null clears one): any agent. Answers the
 * contact as GET does, with its conversations as the edit left them.
 */
export const editContactRoute: Route = async ({ event, params }) => {
  const body = parseBody(event, ContactPatch);
  if (Object.keys(body).length === 0) throw badRequest('invalid_request', 'body: give at least one of name, email, phone');
  const { contact, conversations } = await editContact(params.id!, body);
  return json(200, viewFrom(contact, conversations));
};
