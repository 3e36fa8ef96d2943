/** Web widget sessions (pre-chat form, resumable token), the team's availability, the visitor's own history and files. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from '../../src/zod';
import { httpHandler, json, parseBody, queryOf, validate, type HttpResult } from '../../src/http/http';
import { conversationStateOf, startSession } from '../../src/domain/visitors';
import { verifyVisitorToken } from '../../src/domain/visitor-tokens';
import { ClientError, notFound } from '../../src/domain/errors';
import { createUpload, downloadUrl, UploadBody } from '../../src/domain/media';
import { getMessage, listMessages } from '../../src/store/messages';
import type { VisitorRecord } from '../../src/store/contacts';
import { config } from '../../src/config';
import { getSettings } from '../../src/domain/settings';
import { visitorMessage } from '../../src/domain/events';
import { availability } from '../../src/domain/business-hours';

const SessionBody = z.object({
  name: z.optional(z.trimmedText(1, 200)),
  email: z.optional(z.string().check(z.trim(), z.email(), z.maxLength(320))),
  phone: z.optional(z.string().check(z.trim(), z.regex(/^\+?[\d\s().-]{7,24}$/, 'a phone number'))),
  token: z.optional(z.text(1, 200)),
  identityHash: z.optional(z.string().check(z.regex(/^[0-9a-fA-F]{64}$/, 'a hex HMAC-SHA256'))),
});

const HistoryQuery = z.object({
  limit: z.pageLimit(50),
  cursor: z.optional(z.text(0, 2048)),
});

const unauthorized = () => new ClientError(401, 'invalid_token', 'the visitor token is missing or not valid');

/** The visitor whose token the request carries; the scheme name is case-insensitive (RFC 9110), as on the agent routes. */
async function visitorOf(event: APIGatewayProxyEventV2): Promise<VisitorRecord> {
  const token = /^Bearer\s+(.+)$/i.exec(event.headers?.authorization ?? '')?.[1];
  const visitor = token ? await verifyVisitorToken(token) : undefined;
  if (!visitor) throw unauthorized();
  return visitor;
}

/** A file of the visitor's own conversation (never of a private note): a short-lived URL of it. */
async function attachment(visitor: VisitorRecord, params: Record<string, string | undefined>): Promise<HttpResult> {
  const messageId = params.messageId ?? '';
  if (!visitor.conversationId || !/^[A-Za-z0-9]{1,64}$/.test(messageId) || !/^\d{1,3}$/.test(params.index ?? '')) throw notFound('attachment');
  const message = await getMessage(visitor.conversationId, messageId);
  const file = message && !message.private ? message.attachments[Number(params.index)] : undefined;
  const location = file ? await downloadUrl(file, 'person') : undefined;
  if (!location) throw notFound('attachment');
  return { statusCode: 302, headers: { location, 'cache-control': 'private, no-store' }, body: '' };
}

export const handler = httpHandler(async (event: APIGatewayProxyEventV2) => {
  switch (event.routeKey) {
    case 'GET /v1/widget/messages': {
      // The visitor's own conversation as it reached them: no private notes, nothing that failed,
      // each message with the fields its frames carry. Its state beside them: a widget that
      // resumed without a session call (a reload, a reconnection) learns it was resolved meanwhile,
      // and whether the CSAT question it shows still takes a rating. The conversation is read after
      // the messages: a question is stored after the resolution that asks it, so one the page holds
      // is one this read knows of (read side by side, it could miss it and say it takes none).
      const visitor = await visitorOf(event);
      const query = validate(HistoryQuery, queryOf(event));
      if (!visitor.conversationId) return json(200, { items: [], nextCursor: null, conversationStatus: null, csatOpen: false });
      const page = await listMessages(visitor.conversationId, { limit: query.limit, cursor: query.cursor, includePrivate: false, withoutFailed: true });
      return json(200, { ...page, items: page.items.map(visitorMessage), ...(await conversationStateOf(visitor)) });
    }
    case 'POST /v1/widget/uploads': {
      const visitor = await visitorOf(event);
      return json(201, await createUpload({ kind: 'visitor', id: visitor.id }, parseBody(event, UploadBody)));
    }
    case 'GET /v1/widget/messages/{messageId}/attachments/{index}':
      return attachment(await visitorOf(event), event.pathParameters ?? {});
    case 'GET /v1/widget/availability': {
      // Every visitor of a site asks: a minute in browsers' caches (settings are cached as long).
      return json(200, availability(await getSettings(), new Date()), { 'cache-control': 'public, max-age=60' });
    }
    case 'POST /v1/widget/sessions': {
      const body = parseBody(event, SessionBody, { optional: true });
      const session = await startSession(body);
      if (!session) throw unauthorized();
      return json(201, {
        visitorId: session.visitor.id,
        token: session.token,
        websocketUrl: config.wsPublicUrl,
        conversationId: session.visitor.conversationId ?? null,
        ...(await conversationStateOf(session.visitor)),
      });
    }
    default:
      throw new ClientError(404, 'not_found', `no route ${event.routeKey}`);
  }
});
