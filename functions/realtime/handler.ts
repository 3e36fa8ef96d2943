/** WebSocket routes: $connect, $disconnect and every client action on $default. */
import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { connect, disconnect, handleFrame, type Principal } from '../../src/domain/realtime';
import { WS_FEED_QUERY_PARAM } from '../../src/manifest';

const logger = new Logger({ serviceName: 'conversa' });

type WebSocketEvent = APIGatewayProxyWebsocketEventV2 & {
  /** API Gateway sends `identity` on every route (the types leave it out). */
  requestContext: { authorizer?: Record<string, unknown>; identity?: { sourceIp?: string } };
  /** Sent on $connect only. */
  queryStringParameters?: Record<string, string | undefined>;
};

function principalOf(event: WebSocketEvent): Principal | undefined {
  const context = event.requestContext.authorizer;
  const role = context?.role;
  const id = context?.principalId;
  if ((role !== 'agent' && role !== 'admin' && role !== 'visitor') || typeof id !== 'string' || !id) return undefined;
  const name = typeof context?.name === 'string' && context.name ? context.name : undefined;
  return { role, id, ...(name ? { name } : {}) };
}

export const handler = async (event: WebSocketEvent): Promise<APIGatewayProxyResultV2> => {
  const { routeKey, connectionId } = event.requestContext;
  const principal = principalOf(event);
  // The authorizer guards $connect; without its context there is nobody to act for.
  if (!principal) return { statusCode: 401, body: 'Unauthorized' };
  try {
    if (routeKey === '$connect') await connect(principal, connectionId, { focused: event.queryStringParameters?.[WS_FEED_QUERY_PARAM] === 'focused' });
    else if (routeKey === '$disconnect') await disconnect(principal, connectionId);
    else await handleFrame(principal, connectionId, event.body ?? '', { sourceIp: event.requestContext.identity?.sourceIp });
    return { statusCode: 200 };
  } catch (error) {
    logger.error('websocket route failed', { error: error as Error, routeKey });
    return { statusCode: 500 };
  }
};
