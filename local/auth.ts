/**
 * The local identity provider: a stand-in for the deployed Cognito user pool. It signs RS256 id
 * tokens shaped like Cognito's and publishes its key as a JWKS, so that the backend checks them
 * with src/auth/agent-token.ts exactly as it checks Cognito's.
 */
import { createHash, createSign, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as z from '../src/zod';
import type { AgentRole } from '../src/auth/agent-token';

export const LOCAL_AUTH_TOKEN_PATH = '/local/auth/token';
export const LOCAL_AUTH_JWKS_PATH = '/local/auth/.well-known/jwks.json';

const DEFAULT_EXPIRES_IN_SECONDS = 3600;

export interface LocalIdentityOptions {
  readonly issuer: string;
  readonly audience: string;
}

export interface IssueOptions {
  readonly sub: string;
  readonly name?: string;
  readonly role: AgentRole;
  /** Lifetime from now; zero or negative issues an already expired token (for tests). Default 3600. */
  readonly expiresInSeconds?: number;
}

export interface PublicJwk extends JsonWebKey {
  kid: string;
  alg: 'RS256';
  use: 'sig';
}

export interface LocalIdentity {
  readonly issuer: string;
  readonly audience: string;
  readonly kid: string;
  jwks(): { keys: PublicJwk[] };
  issue(options: IssueOptions): string;
  /** Serves the identity provider's routes; false when the request is not one of them. */
  handle(req: IncomingMessage, res: ServerResponse, body: string): boolean;
}

const tokenRequest = z.object({
  sub: z.string().check(z.minLength(1, 'sub must not be empty'), z.maxLength(128, 'sub must be at most 128 characters')),
  name: z.optional(z.string().check(z.maxLength(256, 'name must be at most 256 characters'))),
  role: z.enum(['agent', 'admin'], { error: 'role must be "agent" or "admin"' }),
});

export function createLocalIdentity(options: LocalIdentityOptions): LocalIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicJwk = publicKey.export({ format: 'jwk' });
  const kid = thumbprint(publicJwk);
  const jwks = { keys: [{ ...publicJwk, kid, alg: 'RS256' as const, use: 'sig' as const }] };

  function issue({ sub, name, role, expiresInSeconds = DEFAULT_EXPIRES_IN_SECONDS }: IssueOptions): string {
    const iat = Math.floor(Date.now() / 1000);
    // Cognito id tokens carry the audience in `aud` and the user's groups in `cognito:groups`.
    const claims = {
      iss: options.issuer,
      aud: options.audience,
      sub,
      ...(name === undefined ? {} : { name }),
      'cognito:groups': [role],
      token_use: 'id',
      auth_time: iat,
      iat,
      exp: iat + expiresInSeconds,
    };
    return signJwt({ alg: 'RS256', typ: 'JWT', kid }, claims, privateKey);
  }

  function handle(req: IncomingMessage, res: ServerResponse, body: string): boolean {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === LOCAL_AUTH_JWKS_PATH) {
      if (req.method === 'GET') sendJson(res, 200, jwks, { 'cache-control': 'max-age=300' });
      else methodNotAllowed(res, 'GET');
      return true;
    }
    if (path === LOCAL_AUTH_TOKEN_PATH) {
      if (req.method === 'POST') issueFromRequest(res, body);
      else methodNotAllowed(res, 'POST');
      return true;
    }
    return false;
  }

  function issueFromRequest(res: ServerResponse, body: string): void {
    const parsed = tokenRequest.safeParse(parseJson(body));
    if (!parsed.success) {
      const message = parsed.error.issues.map((issue) => issue.message).join('; ');
      sendJson(res, 400, { error: { code: 'invalid_request', message } });
      return;
    }
    sendJson(res, 200, { token: issue(parsed.data) }, { 'cache-control': 'no-store' });
  }

  return { issuer: options.issuer, audience: options.audience, kid, jwks: () => jwks, issue, handle };
}

/** Signs a compact JWS; exported so tests can forge tokens with keys the provider never published. */
export function signJwt(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject): string {
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(signingInput).sign(key);
  return `${signingInput}.${base64url(signature)}`;
}

/** RFC 7638 thumbprint: a kid that changes whenever the key does. */
function thumbprint(jwk: JsonWebKey): string {
  const canonical = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return createHash('sha256').update(canonical).digest('base64url');
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendJson(res, 405, { error: { code: 'method_not_allowed', message: `Use ${allow}` } }, { allow });
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
