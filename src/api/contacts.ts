/** The 360° view of a customer: every handle and every conversation. */
import type { Route } from './context';
import { json } from '../http/http';
import { notFound } from '../domain/errors';
import type { Contact } from '../domain/types';
import { getContactWithConversationIds } from '../store/contacts';
import { getConversations, toConversation } from '../store/conversations';
import { notYet } from './not-yet';

export const getContactRoute: Route = async ({ params }) => {
  const found = await getContactWithConversationIds(params.id!);
  if (!found) throw notFound('contact');
  const conversations = (await getConversations(found.conversationIds))
    .sort((a, b) => b.lastMessageAt.localeCompare(a.lastMessageAt))
    .map(toConversation);
  const { contact } = found;
  const body: Contact = {
    id: contact.id,
    ...(contact.name ? { name: contact.name } : {}),
    ...(contact.email ? { email: contact.email } : {}),
    ...(contact.phone ? { phone: contact.phone } : {}),
    handles: contact.handles as Contact['handles'],
    conversations,
  };
  return json(200, body);
};

export const mergeContactRoute = notYet('merging contacts');
