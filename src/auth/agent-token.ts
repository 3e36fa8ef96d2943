/**
 * Agent identity from a JWT (a Cognito id token when deployed, the local identity provider's
 * token under `npm start`). The deployed WebSocket authorizer and the local HTTP gateway's JWT
 * authorizer both verify through `createAgentTokenVerifier`, so both stacks accept exactly the
 * same tokens.
 */
import { JwtRsaVerifier } from 'aws-jwt-verify';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import type { Fetcher } from 'aws-jwt-verify/https';
import { agentFromClaims, type AgentClaims } from './claims';

export { agentFromClaims, type AgentClaims, type AgentRole } from './claims';

export interface AgentTokenVerifierOptions {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audience: string;
}

export interface AgentTokenVerifier {
  /**
   * The agent named by a valid token; null for anything else (bad signature, expired, wrong issuer
   * or audience, garbage). Never throws.
   */
  verify(token: string): Promise<AgentClaims | null>;
  /** Every claim of a valid token, as an HTTP API JWT authorizer would pass them on; null when invalid. Never throws. */
  verifyClaims(token: string): Promise<Record<string, unknown> | null>;
}

const JWKS_FETCH_TIMEOUT_MS = 3000;

/**
 * aws-jwt-verify's own fetcher speaks HTTPS only; the local identity provider serves its JWKS over
 * plain HTTP. The platform fetch handles both, so deployed and local take the same path.
 */
const jwksFetcher: Fetcher = {
  async fetch(uri: string): Promise<ArrayBuffer> {
    const response = await fetch(uri, { signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`JWKS fetch from ${uri} answered ${response.status}`);
    return response.arrayBuffer();
  },
};

export function createAgentTokenVerifier(options: AgentTokenVerifierOptions): AgentTokenVerifier {
  const verifier = JwtRsaVerifier.create(
    { issuer: options.issuer, audience: options.audience, jwksUri: options.jwksUri },
    { jwksCache: new SimpleJwksCache({ fetcher: jwksFetcher }) },
  );

  async function verifyClaims(token: string): Promise<Record<string, unknown> | null> {
    if (typeof token !== 'string' || token === '') return null;
    try {
      return (await verifier.verify(token)) as Record<string, unknown>;
    } catch {
      // Every failure (signature, expiry, issuer, audience, unreachable JWKS) means "not an agent".
      return null;
    }
  }

  return {
    verifyClaims,
    async verify(token) {
      const claims = await verifyClaims(token);
      return claims ? agentFromClaims(claims) : null;
    },
  };
}
