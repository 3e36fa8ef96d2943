import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalIdentity,
  LOCAL_AUTH_JWKS_PATH,
  LOCAL_AUTH_TOKEN_PATH,
  signJwt,
  type LocalIdentity,
} from '../../local/auth';
import { agentFromClaims, createAgentTokenVerifier, type AgentTokenVerifier } from '../../src/auth/agent-token';

const AUDIENCE = 'conversa-local';

let server: Server;
let baseUrl: string;
let identity: LocalIdentity;
let verifier: AgentTokenVerifier;

beforeAll(async () => {
  // The issuer is only known once the port is; the server looks the identity up per request.
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (!identity.handle(req, res, Buffer.concat(chunks).toString('utf8'))) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  identity = createLocalIdentity({ issuer: `${baseUrl}/local/auth`, audience: AUDIENCE });
  verifier = createAgentTokenVerifier({ issuer: identity.issuer, jwksUri: `${baseUrl}${LOCAL_AUTH_JWKS_PATH}`, audience: AUDIENCE });
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

async function postToken(body: unknown): Promise<Response> {
  return fetch(`${baseUrl}${LOCAL_AUTH_TOKEN_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function decodePart(token: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('local identity provider', () => {
  it('publishes its signing key as a JWKS', async () => {
    const response = await fetch(`${baseUrl}${LOCAL_AUTH_JWKS_PATH}`);
    expect(response.status).toBe(200);
    const jwks = (await response.json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', kid: identity.kid, alg: 'RS256', use: 'sig', e: 'AQAB' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('issues a token over HTTP that the verifier accepts through the JWKS', async () => {
    const response = await postToken({ sub: 'agent-1', name: 'Ana', role: 'agent' });
    expect(response.status).toBe(200);
    const { token } = (await response.json()) as { token: string };

    expect(decodePart(token, 0)).toEqual({ alg: 'RS256', typ: 'JWT', kid: identity.kid });
    expect(decodePart(token, 1)).toMatchObject({
      iss: identity.issuer,
      aud: AUDIENCE,
      sub: 'agent-1',
      name: 'Ana',
      'cognito:groups': ['agent'],
      token_use: 'id',
    });
    await expect(verifier.verify(token)).resolves.toEqual({ sub: 'agent-1', name: 'Ana', role: 'agent' });
  });

  it('maps the admin group to the admin role and passes every claim through verifyClaims', async () => {
    const token = identity.issue({ sub: 'boss', role: 'admin' });
    await expect(verifier.verify(token)).resolves.toEqual({ sub: 'boss', role: 'admin' });
    const claims = await verifier.verifyClaims(token);
    expect(claims).toMatchObject({ sub: 'boss', 'cognito:groups': ['admin'], token_use: 'id' });
  });

  it.each([
    ['a non-JSON body', 'not json'],
    ['an empty sub', { sub: '', role: 'agent' }],
    ['a sub over 128 characters', { sub: 'x'.repeat(129), role: 'agent' }],
    ['an unknown role', { sub: 'a', role: 'root' }],
    ['a missing role', { sub: 'a' }],
    ['a non-string name', { sub: 'a', role: 'agent', name: 42 }],
  ])('answers 400 invalid_request to %s', async (_label, body) => {
    const response = await postToken(body);
    expect(response.status).toBe(400);
    const payload = (await response.json()) as { error: { code: string; message: string } };
    expect(payload.error.code).toBe('invalid_request');
    expect(payload.error.message).not.toBe('');
  });

  it('leaves other paths to the caller', async () => {
    const response = await fetch(`${baseUrl}/local/other`);
    expect(response.status).toBe(404);
  });
});

describe('agent token verifier', () => {
  it('rejects an expired token', async () => {
    const token = identity.issue({ sub: 'agent-1', role: 'agent', expiresInSeconds: -60 });
    await expect(verifier.verify(token)).resolves.toBeNull();
  });

  it('rejects a token from another identity provider (a key it never published)', async () => {
    const stranger = createLocalIdentity({ issuer: identity.issuer, audience: AUDIENCE });
    await expect(verifier.verify(stranger.issue({ sub: 'agent-1', role: 'admin' }))).resolves.toBeNull();
  });

  it('rejects a token signed by another key under the published kid', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const genuine = identity.issue({ sub: 'agent-1', role: 'agent' });
    const forged = signJwt(decodePart(genuine, 0), { ...decodePart(genuine, 1), 'cognito:groups': ['admin'] }, privateKey);
    await expect(verifier.verify(genuine)).resolves.not.toBeNull();
    await expect(verifier.verify(forged)).resolves.toBeNull();
  });

  it('rejects a token for another audience or issuer', async () => {
    const otherAudience = createAgentTokenVerifier({
      issuer: identity.issuer,
      jwksUri: `${baseUrl}${LOCAL_AUTH_JWKS_PATH}`,
      audience: 'someone-else',
    });
    const otherIssuer = createAgentTokenVerifier({
      issuer: 'https://issuer.example',
      jwksUri: `${baseUrl}${LOCAL_AUTH_JWKS_PATH}`,
      audience: AUDIENCE,
    });
    const token = identity.issue({ sub: 'agent-1', role: 'agent' });
    await expect(otherAudience.verify(token)).resolves.toBeNull();
    await expect(otherIssuer.verify(token)).resolves.toBeNull();
  });

  it('returns null instead of throwing for garbage and for an unreachable JWKS', async () => {
    await expect(verifier.verify('')).resolves.toBeNull();
    await expect(verifier.verify('not.a.jwt')).resolves.toBeNull();
    const unreachable = createAgentTokenVerifier({
      issuer: identity.issuer,
      jwksUri: 'http://127.0.0.1:1/jwks.json',
      audience: AUDIENCE,
    });
    await expect(unreachable.verify(identity.issue({ sub: 'a', role: 'agent' }))).resolves.toBeNull();
  });
});

describe('agentFromClaims', () => {
  it('reads the groups as API Gateway passes them (a "[a b]" string) and as an array', () => {
    expect(agentFromClaims({ sub: 'x', 'cognito:groups': '[agent admin]' })).toEqual({ sub: 'x', role: 'admin' });
    expect(agentFromClaims({ sub: 'x', name: 'X', 'cognito:groups': '[agent]' })).toEqual({ sub: 'x', name: 'X', role: 'agent' });
    expect(agentFromClaims({ sub: 'x', 'cognito:groups': ['admin'] })).toEqual({ sub: 'x', role: 'admin' });
    expect(agentFromClaims({ sub: 'x' })).toEqual({ sub: 'x', role: 'agent' });
    expect(agentFromClaims({ name: 'no sub' })).toBeNull();
  });

  it('takes no token whose subject is the id unassigned conversations are filed under', () => {
    expect(agentFromClaims({ sub: 'none', 'cognito:groups': '[agent]' })).toBeNull();
  });

  it('takes no subject that could not be an agent id: a key separator, spaces, too long', () => {
    for (const sub of ['a#b', 'ASSIGNEE#none#open', 'a b', 'x'.repeat(129), '']) {
      expect(agentFromClaims({ sub, 'cognito:groups': '[admin]' }), sub).toBeNull();
    }
    expect(agentFromClaims({ sub: '7b1f0c3e-5d2a-4c1e-9f00-1a2b3c4d5e6f' })).not.toBeNull();
  });
});
