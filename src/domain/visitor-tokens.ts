/**
 * Visitor tokens: `<visitorId>.<secret>`, only the secret's SHA-256 stored. Apart from session
 * start (./visitors) so that the WebSocket authorizer, which only checks tokens, stays small.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { getVisitor, type VisitorRecord } from '../store/contacts';

export const hashOfSecret = (secret: string) => createHash('sha256').update(secret).digest();

export function parseVisitorToken(token: string): { visitorId: string; secret: string } | undefined {
  const match = /^([0-9A-HJKMNP-TV-Z]{26})\.([A-Za-z0-9_-]{32,64})$/.exec(token);
  return match ? { visitorId: match[1]!, secret: match[2]! } : undefined;
}

/** `consistent`: read after a write the caller must see (a resumed session that lost a race). */
export async function verifyVisitorToken(token: string, consistent = false): Promise<VisitorRecord | undefined> {
  const parsed = parseVisitorToken(token);
  if (!parsed) return undefined;
  const visitor = await getVisitor(parsed.visitorId, consistent);
  if (!visitor) return undefined;
  const expected = Buffer.from(visitor.tokenHash, 'base64url');
  const actual = hashOfSecret(parsed.secret);
  return expected.length === actual.length && timingSafeEqual(expected, actual) ? visitor : undefined;
}
