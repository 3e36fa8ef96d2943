/** What an agent route receives: the parsed request and who is asking. */
import type { APIGatewayProxyEventV2WithJWTAuthorizer, APIGatewayProxyEventV2 } from 'aws-lambda';
import { ClientError, forbidden } from '../domain/errors';
import { agentFromClaims } from '../auth/claims';
import type { AgentIdentity } from '../domain/outbound';
import type { HttpResult } from '../http/http';

export interface RouteContext {
  event: APIGatewayProxyEventV2;
  agent: AgentIdentity;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
}

export type Route = (context: RouteContext) => Promise<HttpResult>;

/**
 * What an id in a path may look like: anything else names nothing, and could not be a table key. An
 * agent id given in a body must look the same, or the agent it makes up could never be reached at
 * PUT /v1/agents/{id}.
 */
export { ID_PATTERN } from '../store/keys';

export function agentFromEvent(event: APIGatewayProxyEventV2): AgentIdentity {
  const claims = (event as APIGatewayProxyEventV2WithJWTAuthorizer).requestContext.authorizer?.jwt?.claims;
  // Read as the WebSocket authorizer reads them: a subject it refuses (`none`, the unassigned queue's id) is no agent here either.
  const agent = claims ? agentFromClaims(claims) : null;
  if (!agent) throw new ClientError(401, 'unauthorized', 'an agent token is required');
  return { id: agent.sub, role: agent.role, ...(agent.name ? { name: agent.name } : {}) };
}

export function requireAdmin(agent: AgentIdentity): void {
  if (agent.role !== 'admin') throw forbidden('this needs the admin role');
}
