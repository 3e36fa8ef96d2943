/** What an agent route receives: the parsed request and who is asking. */
import type { APIGatewayProxyEventV2WithJWTAuthorizer, APIGatewayProxyEventV2 } from 'aws-lambda';
import { ClientError, forbidden } from '../domain/errors';
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
 * What an id in a path may look like (ULIDs, UUIDs, short names): anything else names nothing, and
 * could not be a table key. An agent id given in a body must look the same, or the agent it makes
 * up could never be reached at PUT /v1/agents/{id}.
 */
export const ID_PATTERN = /^[A-Za-z0-9_.:@+-]{1,128}$/;

/** Claims as the HTTP API JWT authorizer passes them: arrays arrive as "[a b]" strings. */
function groups(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'string') return value.replace(/^\[|\]$/g, '').split(/[\s,]+/).filter(Boolean);
  return [];
}

export function agentFromEvent(event: APIGatewayProxyEventV2): AgentIdentity {
  const claims = (event as APIGatewayProxyEventV2WithJWTAuthorizer).requestContext.authorizer?.jwt?.claims;
  const sub = claims?.sub;
  if (typeof sub !== 'string' || sub === '') throw new ClientError(401, 'unauthorized', 'an agent token is required');
  const name = typeof claims?.name === 'string' ? claims.name : undefined;
  return { id: sub, role: groups(claims?.['cognito:groups']).includes('admin') ? 'admin' : 'agent', ...(name ? { name } : {}) };
}

export function requireAdmin(agent: AgentIdentity): void {
  if (agent.role !== 'admin') throw forbidden('this needs the admin role');
}
