/**
 * WebSocket $connect authorizer: an agent's JWT (verified through the issuer's JWKS) or a
 * visitor's widget token. Anything else is refused at the handshake (401).
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { createAgentTokenVerifier } from '../../src/auth/agent-token';
import { verifyVisitorToken } from '../../src/domain/visitor-tokens';
import { WS_TOKEN_QUERY_PARAM } from '../../src/manifest';
import { config } from '../../src/config';

const agents = createAgentTokenVerifier(config.jwt);

function allow(principalId: string, methodArn: string, context: Record<string, string>): APIGatewayAuthorizerResult {
  return {
    principalId,
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: methodArn }] },
    context,
  };
}

export const handler = async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
  const token = event.queryStringParameters?.[WS_TOKEN_QUERY_PARAM] ?? '';
  if (token.split('.').length === 3) {
    const claims = await agents.verify(token);
    if (claims) return allow(claims.sub, event.methodArn, { role: claims.role, principalId: claims.sub, name: claims.name ?? '' });
  } else if (token) {
    const visitor = await verifyVisitorToken(token);
    if (visitor) return allow(visitor.id, event.methodArn, { role: 'visitor', principalId: visitor.id, name: visitor.name ?? '' });
  }
  // API Gateway answers this exact message with 401.
  throw new Error('Unauthorized');
};
