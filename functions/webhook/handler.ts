/**
 * Provider webhooks: verify the signature on the raw body, normalize, queue, answer.
 * Nothing else happens before the 200: providers retry slow answers.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { httpHandler, rawBody, type HttpResult } from '../../src/http/http';
import { BadWebhookError, type WebhookRequest } from '../../src/channels/types';
import { hasUsableIds } from '../../src/channels/common';
import { getAdapter } from '../../src/channels/registry';
import { ChannelNotConfiguredError, loadCredentials } from '../../src/channels/credentials';
import { isProviderChannel } from '../../src/domain/types';
import { badRequest, ClientError, notFound } from '../../src/domain/errors';
import { enqueueInbound } from '../../src/aws/queues';
import { config } from '../../src/config';
import { mendedFrom } from '../../src/unicode';

const reply = (r: { status: number; contentType: string; body: string }): HttpResult => ({
  statusCode: r.status,
  headers: { 'content-type': r.contentType },
  body: r.body,
});

export const handler = httpHandler(async (event: APIGatewayProxyEventV2) => {
  const channel = event.pathParameters?.channel ?? '';
  if (!isProviderChannel(channel)) throw notFound(`channel ${channel}`);
  const adapter = getAdapter(channel);
  const credentials = await loadCredentials(channel).catch((error: unknown) => {
    // Without a secret no signature or verify token can match: the contract's 401 (a challenge's 403), with the reason.
    if (error instanceof ChannelNotConfiguredError) throw new ClientError(event.requestContext.http.method === 'GET' ? 403 : 401, error.code, error.message);
    throw error;
  });
  // Its size (API Gateway passes up to 10 MB) was checked before the handler ran (httpHandler).
  const body = rawBody(event);
  const request: WebhookRequest = {
    method: event.requestContext.http.method,
    rawBody: body,
    headers: event.headers ?? {},
    query: event.queryStringParameters ?? {},
    url: `${config.publicUrl}${event.rawPath}${event.rawQueryString ? `?${event.rawQueryString}` : ''}`,
  };
  if (request.method === 'GET') {
    if (!adapter.challenge) throw notFound('verification endpoint');
    return reply(adapter.challenge(request, credentials));
  }
  if (!adapter.verify(request, credentials)) throw new ClientError(401, 'invalid_signature', 'the webhook signature does not match');
  let events;
  try {
    // Half a surrogate pair in a provider's text is taken as U+FFFD: refused, the provider would retry for days.
    events = mendedFrom(body, adapter.normalize(request, credentials)).filter(hasUsableIds);
  } catch (error) {
    if (error instanceof BadWebhookError) throw badRequest('invalid_payload', error.message);
    throw error;
  }
  const receivedAt = new Date().toISOString();
  if (events.length > 0) await enqueueInbound(events.map((e) => (e.kind === 'message' ? { ...e, receivedAt } : e)));
  return reply(adapter.ack(request));
});
