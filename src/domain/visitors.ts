/**
 * Web widget visitors. A visitor token is `<visitorId>.<secret>`; only the secret's SHA-256
 * is stored, so a leaked table does not leak sessions. The token reaches only that
 * visitor's own conversation.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { hashOfSecret, verifyVisitorToken } from './visitor-tokens';
import { newId } from './ids';
import { normalizeEmail, normalizePhone } from './contacts';
import { getSettings } from './settings';
import { ClientError } from './errors';
import { ENV } from '../config';
import { loadSecretIntoEnv } from '../aws/secret-env';
import { fillVisitor, putVisitor, type VisitorRecord } from '../store/contacts';
import { getConversation } from '../store/conversations';
import type { ConversationStatus } from './types';

export interface SessionInput {
  name?: string;
  email?: string;
  phone?: string;
  token?: string;
  /** The website's hex HMAC-SHA256 of the visitor's email (else phone) with the widget identity key. */
  identityHash?: string;
}

/**
 * What the website vouches for, as Chatwoot's identity validation does: its backend signs the
 * signed-in user's email (or, without one, phone) with the widget identity key, so that a visitor
 * cannot claim a customer's address and be linked to their history.
 */
export function identityHashOf(identifier: string, key: string): string {
  return createHmac('sha256', key).update(identifier).digest('hex');
}

/**
 * Which of `profile`'s email and phone may link the visitor to the contact that has it: both with
 * identity verification off; with it on, the one the website's hash signs (the email, or without
 * one the phone), so that a vouched email cannot carry an unvouched phone into someone's
 * history. Without a hash the visitor is anonymous (`unverified`); a hash that does not match is
 * refused, as a misconfigured site or a forgery.
 */
async function vouchedFor(
  profile: Pick<VisitorRecord, 'email' | 'phone'>,
  identityHash: string | undefined,
  given: Pick<SessionInput, 'email' | 'phone'>,
): Promise<Pick<VisitorRecord, 'unverified' | 'vouched'>> {
  if (!profile.email && !profile.phone) return {};
  if (!(await getSettings()).widget.identityVerification) return {};
  if (!identityHash) return { unverified: true };
  if (!(await signs(identityHash, profile, given))) {
    throw new ClientError(401, 'invalid_identity_hash', 'identityHash does not match the email (or phone) given');
  }
  return { vouched: profile.email ? 'email' : 'phone' };
}

/**
 * Whether the hash signs the profile's email (else its phone), as we keep it (normalized) or as
 * the request wrote it: a website signs the address as its own records have it ("Vera@Example.com",
 * "+1 555 010 0000"), and that is the same identity.
 */
async function signs(identityHash: string, profile: Pick<VisitorRecord, 'email' | 'phone'>, given: Pick<SessionInput, 'email' | 'phone'>): Promise<boolean> {
  await loadSecretIntoEnv(ENV.widgetIdentitySecret, ENV.widgetIdentitySecretArn);
  const key = process.env[ENV.widgetIdentitySecret];
  if (!key) throw new Error(`${ENV.widgetIdentitySecret} is not set`);
  const identifier = (profile.email ?? profile.phone)!;
  const written = profile.email ? given.email?.trim() : given.phone?.trim();
  const sameIdentity = written !== undefined && (profile.email ? normalizeEmail(written) : normalizePhone(written)) === identifier;
  const hash = Buffer.from(identityHash, 'hex');
  return [identifier, ...(sameIdentity && written !== identifier ? [written] : [])].some((form) => {
    const expected = Buffer.from(identityHashOf(form, key), 'hex');
    return hash.length === expected.length && timingSafeEqual(expected, hash);
  });
}

/**
 * What a resumed session changes in what the website vouches for. Details it brings are vouched
 * for as in a new session (a hash that does not match them is refused). A hash alone signs the
 * details the visitor has (someone who chatted anonymously signs in on the website): it vouches
 * for them if it matches, and changes nothing if it does not. A visitor already vouched for keeps
 * that: details added later without a hash are contact details only.
 */
async function vouchingOnResume(
  visitor: VisitorRecord,
  fill: Partial<VisitorRecord>,
  input: SessionInput,
): Promise<Pick<VisitorRecord, 'unverified' | 'vouched'>> {
  if (visitor.vouched) return {};
  const merged = { ...visitor, ...fill };
  if (fill.email !== undefined || fill.phone !== undefined) {
    const vouching = await vouchedFor(merged, input.identityHash, input);
    return vouching.vouched && visitor.unverified ? { ...vouching, unverified: false } : vouching;
  }
  if (!input.identityHash || (!merged.email && !merged.phone) || !(await getSettings()).widget.identityVerification) return {};
  if (!(await signs(input.identityHash, merged, input))) return {};
  return { vouched: merged.email ? 'email' : 'phone', ...(visitor.unverified ? { unverified: false } : {}) };
}

/**
 * Whether a resumed session's hash comes with an email (else phone) other than the visitor's own:
 * the website now vouches for another person than the one the kept token belongs to.
 */
async function vouchesForSomeoneElse(visitor: VisitorRecord, input: SessionInput): Promise<boolean> {
  if (!input.identityHash) return false;
  const claimed = profileOf(input);
  const [theirs, own] = claimed.email ? [claimed.email, visitor.email] : [claimed.phone, visitor.phone];
  if (!theirs || !own || theirs === own) return false;
  return (await getSettings()).widget.identityVerification;
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

/** Times a resumed session reads the visitor again after another session filled it first. */
const FILL_ATTEMPTS = 3;

/** Starts a visitor session, or resumes the one a token belongs to (another tab or device). */
export async function startSession(input: SessionInput, attempt = 1): Promise<Session | undefined> {
  if (input.token) {
    const visitor = await verifyVisitorToken(input.token, attempt > 1);
    if (!visitor) return undefined;
    // Someone else signed in on this browser (a shared computer): theirs is a session of its own,
    // never the history the kept token reaches.
    if (await vouchesForSomeoneElse(visitor, input)) return startSession({ ...input, token: undefined });
    // The pre-chat form may come later than the first session (e.g. leave-a-message).
    const fill: Partial<VisitorRecord> = Object.fromEntries(Object.entries(profileOf(input)).filter(([key]) => !visitor[key as keyof typeof visitor]));
    Object.assign(fill, await vouchingOnResume(visitor, fill, input));
    // Two tabs may send their forms at once: each field is written only while still unset (and
    // the vouching only while the visitor is not vouched for), else the visitor is read again.
    const unset = [...(Object.keys(fill) as (keyof VisitorRecord)[]).filter((key) => key !== 'unverified'), ...(visitor.vouched ? [] : (['vouched'] as const))];
    if (Object.keys(fill).length > 0 && !(await fillVisitor(visitor.id, fill, unset))) {
      if (attempt < FILL_ATTEMPTS) return startSession(input, attempt + 1);
      throw new ClientError(409, 'session_conflict', 'the visitor changed while this session was resumed; try again');
    }
    return { visitor: { ...visitor, ...fill }, token: input.token };
  }
  const secret = randomBytes(32).toString('base64url');
  const profile = profileOf(input);
  const visitor: VisitorRecord = {
    id: newId(),
    tokenHash: hashOfSecret(secret).toString('base64url'),
    createdAt: new Date().toISOString(),
    ...profile,
    ...(await vouchedFor(profile, input.identityHash, input)),
  };
  await putVisitor(visitor);
  return { visitor, token: `${visitor.id}.${secret}` };
}

/** What the widget may know of its conversation besides its messages: never the team's (assignee, notes). */
export interface VisitorConversationState {
  conversationStatus: ConversationStatus | null;
  /**
   * The CSAT question asked when the conversation was resolved still takes a rating: false once
   * a status change dropped it (an agent reopened it, even if resolved again since). The widget's
   * own rules (the visitor's next message, 3 days) end it as well.
   */
  csatOpen: boolean;
}

/**
 * A reloaded widget learns from this what happened while it was away: a question it shows may
 * have been dropped, and a score clicked then would be an ordinary message.
 */
export async function conversationStateOf(visitor: VisitorRecord): Promise<VisitorConversationState> {
  // Strongly consistent: the widget asks right after a change (an agent's reopen) it must not miss.
  const conversation = visitor.conversationId ? await getConversation(visitor.conversationId, true) : undefined;
  if (!conversation) return { conversationStatus: null, csatOpen: false };
  return {
    conversationStatus: conversation.status,
    csatOpen: conversation.status === 'resolved' && conversation.engagement?.csatAskedAt !== undefined,
  };
}
