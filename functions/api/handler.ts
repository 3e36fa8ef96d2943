/** The agent HTTP API: one function, routed by API Gateway's route key. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { httpHandler, queryOf } from '../../src/http/http';
import { agentFromEvent, ID_PATTERN } from '../../src/api/context';
import { ROUTES } from '../../src/api/routes';
import { ClientError } from '../../src/domain/errors';

export const handler = httpHandler(async (event: APIGatewayProxyEventV2) => {
  // The API's `$default` route (HTTP_FALLBACK_FN) brings here, unauthenticated, what no route matched.
  const route = ROUTES[event.routeKey];
  if (!route) {
    // $default catches OPTIONS too, so deployed API Gateway hands it the browsers' CORS preflights
    // instead of answering them; a 2xx gets the API's CORS headers added, a 404 fails the preflight.
    if (isCorsPreflight(event)) return { statusCode: 204 };
    throw new ClientError(404, 'not_found', `no route ${event.requestContext.http.method} ${event.rawPath}`);
  }
  const agent = agentFromEvent(event);
  const params = (event.pathParameters ?? {}) as Record<string, string>;
  for (const [name, value] of Object.entries(params)) {
    if (!ID_PATTERN.test(value)) throw new ClientError(404, 'not_found', `no ${name} like that`);
  }
  return route({ event, agent, params, query: queryOf(event) });
});

/** A browser's CORS preflight: OPTIONS with the Origin and Access-Control-Request-Method headers. */
function isCorsPreflight(event: APIGatewayProxyEventV2): boolean {
  const headers = event.headers ?? {};
  return event.requestContext.http.method === 'OPTIONS' && Boolean(headers.origin) && Boolean(headers['access-control-request-method']);
}
