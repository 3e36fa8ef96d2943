/**
 * Web widget visitors. A visitor token is `<visitorId>.<secret>`; only the secret's SHA-256
 * is stored, so a leaked table does not leak sessions. The token reaches only that
 * visitor's own conversation.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { newId } from './ids';
import { normalizeEmail, normalizePhone } from './contacts';
import { getVisitor, putVisitor, updateVisitor, type VisitorRecord } from '../store/contacts';

const hash = (secret: string) => createHash('sha256').update(secret).digest();

export function parseVisitorToken(token: string): { visitorId: string; secret: string } | undefined {
  const match = /^([0-9A-HJKMNP-TV-Z]{26})\.([A-Za-z0-9_-]{32,64})$/.exec(token);
  return match ? { visitorId: match[1]!, secret: match[2]! } : undefined;
}

export async function verifyVisitorToken(token: string): Promise<VisitorRecord | undefined> {
  const parsed = parseVisitorToken(token);
  if (!parsed) return undefined;
  const visitor = await getVisitor(parsed.visitorId);
  if (!visitor) return undefined;
  const expected = Buffer.from(visitor.tokenHash, 'base64url');
  const actual = hash(parsed.secret);
  return expected.length === actual.length && timingSafeEqual(expected, actual) ? visitor : undefined;
}

export interface SessionInput {
  name?: string;
  email?: string;
  phone?: string;
  token?: string;
}

/** What the pre-chat form says about the visitor, normalized; unusable values are left out. */
function profileOf(input: SessionInput): Pick<VisitorRecord, 'name' | 'email' | 'phone'> {
  const email = normalizeEmail(input.email);
  const phone = normalizePhone(input.phone);
  return { ...(input.name ? { name: input.name } : {}), ...(email ? { email } : {}), ...(phone ? { phone } : {}) };
}

export interface Session {
  visitor: VisitorRecord;
  token: string;
}

/** Starts a visitor session, or resumes the one a token belongs to (another tab or device). */
export async function startSession(input: SessionInput): Promise<Session | undefined> {
  if (input.token) {
    const visitor = await verifyVisitorToken(input.token);
    if (!visitor) return undefined;
    // The pre-chat form may come later than the first session (e.g. leave-a-message).
    const fill = Object.fromEntries(Object.entries(profileOf(input)).filter(([key]) => !visitor[key as keyof typeof visitor]));
    if (Object.keys(fill).length > 0) await updateVisitor(visitor.id, fill);
    return { visitor: { ...visitor, ...fill }, token: input.token };
  }
  const secret = randomBytes(32).toString('base64url');
  const visitor: VisitorRecord = {
    id: newId(),
    tokenHash: hash(secret).toString('base64url'),
    createdAt: new Date().toISOString(),
    ...profileOf(input),
  };
  await putVisitor(visitor);
  return { visitor, token: `${visitor.id}.${secret}` };
}
