/** Web widget sessions (pre-chat form, resumable token) and the visitor's own history. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as z from '../../src/zod';
import { httpHandler, json, parseBody, queryOf, validate } from '../../src/http/http';
import { startSession } from '../../src/domain/visitors';
import { verifyVisitorToken } from '../../src/domain/visitor-tokens';
import { ClientError } from '../../src/domain/errors';
import { listMessages } from '../../src/store/messages';
import { config } from '../../src/config';

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

export const handler = httpHandler(async (event: APIGatewayProxyEventV2) => {
  if (event.requestContext.http.method === 'GET') {
    // GET /v1/widget/messages: the visitor's own conversation, without private notes.
    // The scheme name is case-insensitive (RFC 9110), as on the agent routes.
    const token = /^Bearer\s+(.+)$/i.exec(event.headers?.authorization ?? '')?.[1];
    const visitor = token ? await verifyVisitorToken(token) : undefined;
    if (!visitor) throw unauthorized();
    const query = validate(HistoryQuery, queryOf(event));
    if (!visitor.conversationId) return json(200, { items: [], nextCursor: null });
    return json(200, await listMessages(visitor.conversationId, { limit: query.limit, cursor: query.cursor, includePrivate: false }));
  }
  const body = parseBody(event, SessionBody, { optional: true });
  const session = await startSession(body);
  if (!session) throw unauthorized();
  return json(201, {
    visitorId: session.visitor.id,
    token: session.token,
    websocketUrl: config.wsPublicUrl,
    conversationId: session.visitor.conversationId ?? null,
  });
});
