/**
 * Who verified claims name: shared by the WebSocket authorizer (src/auth/agent-token.ts) and the
 * HTTP API's handlers (src/api/context.ts), which read the claims API Gateway's JWT authorizer
 * passes on, so both sides take the same agents. Free of the verifier (aws-jwt-verify), which the
 * API function does not need.
 */
import { isAgentId } from '../store/keys';

export type AgentRole = 'agent' | 'admin';

export interface AgentClaims {
  readonly sub: string;
  readonly name?: string;
  readonly role: AgentRole;
}

const GROUPS_CLAIM = 'cognito:groups';

/**
 * The agent described by verified claims: either the JWT payload itself, or the claims an HTTP API
 * JWT authorizer puts in `requestContext.authorizer.jwt.claims`, where API Gateway has turned
 * arrays into strings like "[admin agent]".
 */
export function agentFromClaims(claims: Record<string, unknown>): AgentClaims | null {
  const sub = claims.sub;
  // The assignee index files unassigned conversations under that id: it names no agent. A subject
  // outside the id pattern could not be assigned or reached at /v1/agents/{id}, and a `#` in it
  // would split its keys.
  if (typeof sub !== 'string' || !isAgentId(sub)) return null;
  const role: AgentRole = groupsOf(claims[GROUPS_CLAIM]).includes('admin') ? 'admin' : 'agent';
  const name = claims.name;
  return typeof name === 'string' ? { sub, name, role } : { sub, role };
}

function groupsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((group): group is string => typeof group === 'string');
  if (typeof value !== 'string') return [];
  const inner = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  return inner.split(/[\s,]+/).filter(Boolean);
}
