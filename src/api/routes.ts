/**
 * Agent routes by API Gateway route key. Each feature keeps its routes in its own module;
 * the manifest (src/manifest.ts) declares the same keys for CDK and the local stack, and a
 * test keeps the two lists equal.
 */
import type { Route } from './context';
import {
  getConversationRoute,
  listConversationsRoute,
  listMessagesRoute,
  postMessageRoute,
  reopenRoute,
  resolveRoute,
} from './conversations';
import { assignRoute } from './assignment';
import { getContactRoute } from './contacts';

export const ROUTES: Readonly<Record<string, Route>> = {
  'GET /v1/conversations': listConversationsRoute,
  'GET /v1/conversations/{id}': getConversationRoute,
  'GET /v1/conversations/{id}/messages': listMessagesRoute,
  'POST /v1/conversations/{id}/messages': postMessageRoute,
  'POST /v1/conversations/{id}/assign': assignRoute,
  'POST /v1/conversations/{id}/resolve': resolveRoute,
  'POST /v1/conversations/{id}/reopen': reopenRoute,
  'GET /v1/contacts/{id}': getContactRoute,
};
