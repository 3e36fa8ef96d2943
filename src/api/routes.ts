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
  setLabelsRoute,
} from './conversations';
import { assignRoute, markReadRoute, statusRoute, transferRoute } from './assignment';
import { editContactRoute, findContactsRoute, getContactRoute, mergeContactRoute } from './contacts';
import { eraseContactRoute, unlessErased } from './erasure';
import { channelTransferRoute } from './channel-transfer';
import { listAgentsRoute, updateAgentRoute } from './agents';
import { getSettingsRoute, putSettingsRoute } from './settings';
import { createCannedRoute, deleteCannedRoute, getCannedRoute, listCannedRoute, renderCannedRoute } from './canned';
import { createMacroRoute, deleteMacroRoute, getMacroRoute, listMacrosRoute, runMacroRoute, updateMacroRoute } from './macros';
import { reportSummaryRoute } from './reports';
import { cancelCampaignRoute, getCampaignRoute, proactiveRoute } from './proactive';
import { attachmentRoute, uploadRoute } from './media';

export const ROUTES: Readonly<Record<string, Route>> = {
  'GET /v1/conversations': listConversationsRoute,
  'GET /v1/conversations/{id}': getConversationRoute,
  'GET /v1/conversations/{id}/messages': listMessagesRoute,
  'POST /v1/conversations/{id}/messages': postMessageRoute,
  'GET /v1/conversations/{id}/messages/{messageId}/attachments/{index}': attachmentRoute,
  'POST /v1/conversations/{id}/assign': assignRoute,
  'POST /v1/conversations/{id}/transfer': transferRoute,
  'POST /v1/conversations/{id}/resolve': resolveRoute,
  'POST /v1/conversations/{id}/reopen': reopenRoute,
  'POST /v1/conversations/{id}/status': statusRoute,
  'POST /v1/conversations/{id}/read': markReadRoute,
  'POST /v1/conversations/{id}/channel': channelTransferRoute,
  'PUT /v1/conversations/{id}/labels': setLabelsRoute,
  'GET /v1/contacts': findContactsRoute,
  'GET /v1/contacts/{id}': unlessErased(getContactRoute),
  'PATCH /v1/contacts/{id}': unlessErased(editContactRoute),
  'DELETE /v1/contacts/{id}': eraseContactRoute,
  'POST /v1/contacts/{id}/merge': mergeContactRoute,
  'GET /v1/agents': listAgentsRoute,
  'PUT /v1/agents/{id}': updateAgentRoute,
  'GET /v1/settings': getSettingsRoute,
  'PUT /v1/settings': putSettingsRoute,
  'GET /v1/canned-responses': listCannedRoute,
  'POST /v1/canned-responses': createCannedRoute,
  'GET /v1/canned-responses/{id}': getCannedRoute,
  'DELETE /v1/canned-responses/{id}': deleteCannedRoute,
  'GET /v1/canned-responses/{id}/render': renderCannedRoute,
  'GET /v1/macros': listMacrosRoute,
  'POST /v1/macros': createMacroRoute,
  'GET /v1/macros/{id}': getMacroRoute,
  'PUT /v1/macros/{id}': updateMacroRoute,
  'DELETE /v1/macros/{id}': deleteMacroRoute,
  'POST /v1/conversations/{id}/macros/{macroId}/run': runMacroRoute,
  'GET /v1/reports/summary': reportSummaryRoute,
  'POST /v1/proactive': proactiveRoute,
  'GET /v1/proactive/{id}': getCampaignRoute,
  'DELETE /v1/proactive/{id}': cancelCampaignRoute,
  'POST /v1/uploads': uploadRoute,
};
