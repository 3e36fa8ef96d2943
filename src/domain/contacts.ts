/**
 * One customer across channels: a contact keeps every handle, and identity handles
 * (a phone number, an email address) link a new channel to the contact that already has them.
 */
import type { Channel } from './types';
import { newId } from './ids';
import { badRequest, conflict, notFound } from './errors';
import { conversationEvent, publishToConversation } from './events';
import {
  acquireMergeLock,
  addContactHandles,
  claimHandle,
  clearReleasing,
  forgetMerge,
  getContact,
  getContactWithConversationIds,
  getHandle,
  linkContactConversation,
  markContactMerged,
  moveHandle,
  moveVisitor,
  putContact,
  recordMerge,
  releaseHandle,
  releaseMergeLock,
  removeVisitorFields,
  replaceContactPhone,
  setHandleConversation,
  writeContactEdit,
  unlinkContactConversation,
  type ContactRecord,
  type Identity,
  type ProfileField,
  type VisitorRecord,
} from '../store/contacts';
import { getConversations, updateConversation, type ConversationRecord } from '../store/conversations';
import { getErasure } from '../store/erasure';
import { mapConcurrently } from '../store/items';
import { sameHandle } from '../store/keys';
import { agentConnectionsAhead } from './fanout';
import { getSettings } from './settings';

export interface Profile {
  name?: string;
  email?: string;
  phone?: string;
}

/**
 * The international prefix `00` (most of Europe, Africa, Asia) written where E.164 has its `+`:
 * `0044 20…`, `(00) 1 555…`; a country code follows, which never starts with 0.
 */
const INTERNATIONAL_PREFIX = /^[^\d+]*00(?=[^\d]*[1-9])/;

/**
 * `+44 (0)20…`, `0049 (0) 30…`: the trunk prefix a country's own callers dial, in brackets after
 * the country code, which E.123 says to leave out from abroad. Kept as a digit, it made a web
 * visitor's `+44 (0)7700…` another number than their WhatsApp id `447700…`: two customers.
 */
const BRACKETED_TRUNK_ZERO = /^([^\d+]*(?:\+|00)[^\d]*?)(\d{1,3})([^\d(]*)\(\s*0\s*\)/;
/** Countries whose numbers begin with a 0 dialled from abroad too (no trunk prefix): Italy, San Marino, the Vatican, Côte d'Ivoire, Gabon, Congo. */
const LEADING_ZERO_COUNTRIES = new Set(['39', '378', '379', '225', '241', '242']);

/** E.164 with a leading +, digits only; undefined when it does not look like a phone number. */
export function normalizePhone(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const international = raw.replace(BRACKETED_TRUNK_ZERO, (_, lead: string, country: string, gap: string) => `${lead}${country}${gap}${LEADING_ZERO_COUNTRIES.has(country) ? '0' : ''}`);
  const digits = international.replace(INTERNATIONAL_PREFIX, '').replace(/[^\d]/g, '');
  return digits.length >= 7 && digits.length <= 15 ? `+${digits}` : undefined;
}

/**
 * An address as people have them (RFC 5322's dot-atom, letters of any script): a comma, a bracket
 * or a quote is a list or a display name the mail service would refuse or read as other addresses,
 * and so is a control character.
 */
const EMAIL = /^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+(?:\.[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+)*@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+[\p{L}\p{N}][\p{L}\p{N}-]*$/u;

export function normalizeEmail(raw: string | undefined): string | undefined {
  const value = raw?.trim().toLowerCase();
  return value && value.length <= 254 && EMAIL.test(value) ? value : undefined;
}

function identities(profile: Profile): Identity[] {
  const out: Identity[] = [];
  const phone = normalizePhone(profile.phone);
  const email = normalizeEmail(profile.email);
  if (phone) out.push({ channel: 'phone', handle: phone });
  if (email) out.push({ channel: 'email', handle: email });
  return out;
}

/** Merges chained one after another are at most this deep here (each hop is a merge that ran meanwhile). */
const MAX_MERGE_HOPS = 5;

/**
 * addContactHandles, following the contact into the one it was merged into while the caller held
 * it: what was claimed for it (handle items, visitors) moves there too, as the merge would have
 * moved it. Returns the contact that has them in the end.
 */
export async function addHandlesFollowingMerges(contactId: string, handles: ContactRecord['handles'], profile: Profile = {}): Promise<string> {
  return (await addFollowingMerges(contactId, handles, profile)).contactId;
}

/** The same, with the contact as that write read it (`missing` when there is no contact item by that id). */
async function addFollowingMerges(contactId: string, handles: ContactRecord['handles'], profile: Profile): Promise<{ contactId: string; contact?: ContactRecord; missing?: true }> {
  let current = contactId;
  for (let hop = 0; hop < MAX_MERGE_HOPS; hop++) {
    const added = await addContactHandles(current, handles, profile);
    if (!added) return { contactId: current, missing: true };
    if ('contact' in added) return { contactId: current, contact: added.contact };
    for (const { channel, handle } of handles) {
      if (channel === 'web') await moveVisitor(handle, current, added.mergedInto);
      else await moveHandle(channel, handle, current, added.mergedInto);
    }
    current = added.mergedInto;
  }
  return { contactId: current };
}

/**
 * What an agent edited on the contact, as the contact has it (an absent value: cleared): a new
 * conversation shows these rather than the provider's or visitor's profile.
 */
export function agentEdits(contact: ContactRecord): Profile {
  return Object.fromEntries((contact.edited ?? []).map((field) => [field, contact[field]]));
}

/**
 * Lists a new conversation under its contact, or under the one that contact was merged into
 * meanwhile: listed first, then the contact read. A merge reads a contact's conversations once,
 * after marking it: a listing it missed was written after that mark, which this read then sees,
 * and the listing moves to the survivor. Returns the contact the conversation belongs to.
 */
export async function listUnderContact(contactId: string, conversationId: string): Promise<string> {
  let current = contactId;
  for (let hop = 0; hop < MAX_MERGE_HOPS; hop++) {
    await linkContactConversation(current, conversationId);
    const mergedInto = (await getContact(current, true))?.mergedInto;
    if (!mergedInto) return current;
    await unlinkContactConversation(current, conversationId);
    current = mergedInto;
  }
  return current;
}

/**
 * Which of a web visitor's email and phone link to other contacts: what the website vouched for
 * while identity verification was on (none if it vouched for nothing), else both.
 */
export function visitorLinks(visitor: VisitorRecord): readonly ('phone' | 'email')[] | undefined {
  return visitor.unverified ? [] : visitor.vouched ? [visitor.vouched] : undefined;
}

const PROFILE_FIELDS = ['name', 'email', 'phone'] as const;

/**
 * What a web visitor told the pre-chat form after its conversation began (a resumed session,
 * leave-a-message), brought to the contact and to the conversation agents see, with the
 * visitor's next message: each field only where they lack it. An email or phone links as a first
 * message's would (with identity verification on, only what the website vouched for), and only if
 * no other contact has it: that one is not merged in (agents can merge the two).
 */
export async function withVisitorProfile(conversation: ConversationRecord, visitor: VisitorRecord): Promise<ConversationRecord> {
  const lacking = (contact: Profile) => {
    const fill: Profile = {};
    for (const field of PROFILE_FIELDS) if (visitor[field] && !contact[field]) fill[field] = visitor[field];
    return fill;
  };
  const fill = lacking(conversation.contact);
  if (Object.keys(fill).length === 0) return conversation;
  const contactId = conversation.contact.id;
  // An address captured from the chat (captureEmail) carries no flag: with verification on it vouches for nothing.
  const linkBy = (await getSettings()).widget.identityVerification && !visitor.vouched ? [] : visitorLinks(visitor);
  const ids = identities(fill).filter((identity) => !linkBy || linkBy.includes(identity.channel));
  const claims = await Promise.all(ids.map((identity) => claimHandle(identity.channel, identity.handle, { contactId })));
  await addHandlesFollowingMerges(
    contactId,
    ids.filter((_, i) => claims[i]!.contactId === contactId),
    fill,
  );
  const result = await updateConversation(conversation.id, (c) => {
    const add = lacking(c.contact);
    return Object.keys(add).length > 0 ? { ...c, contact: { ...c.contact, ...add }, updatedAt: new Date().toISOString() } : undefined;
  });
  return result?.after ?? conversation;
}

/**
 * The contact for a customer's handle on a channel: the one the handle already belongs to,
 * else the one holding the same phone or email, else a new one. Safe to repeat after a crash.
 * A new handle item points at `conversationId` from the start (the conversation its first
 * message opens); the answer says which conversation the handle points at in the end.
 */
export async function findOrCreateContact(
  channel: Channel,
  handle: string,
  profile: Profile,
  conversationId?: string,
  /**
   * Which of the profile's email and phone link to (and are claimed for) the contact; the others
   * are contact details only. Default: both.
   */
  options: { linkBy?: readonly ('phone' | 'email')[] } = {},
): Promise<{ contactId: string; conversationId?: string | undefined; edited?: Profile }> {
  const ids = identities(profile).filter((identity) => !options.linkBy || options.linkBy.includes(identity.channel));
  let contactId: string | undefined;
  let created = false;
  for (const identity of ids) {
    contactId = (await getHandle(identity.channel, identity.handle))?.contactId;
    if (contactId) break;
  }
  const newContact = (id: string): ContactRecord => ({
    id,
    name: profile.name,
    email: normalizeEmail(profile.email),
    phone: normalizePhone(profile.phone),
    handles: [{ channel, handle }, ...ids],
    createdAt: new Date().toISOString(),
  });
  if (!contactId) {
    // A web visitor with nothing to link by is its contact's only way in: the visitor's own id, so
    // that a retry after a crash before the visitor names its contact (pointVisitorAt) makes the same one.
    const candidate = channel === 'web' && ids.length === 0 ? handle : newId();
    // Claim identities before creating the contact so two channels racing for one phone agree.
    const first = ids[0];
    contactId = first ? (await claimHandle(first.channel, first.handle, { contactId: candidate })).contactId : candidate;
    // Already there (another channel's first message found the claim and wrote it, or an attempt
    // that died did): this message's handle and profile are added to it below, as to any contact.
    if (contactId === candidate) created = await putContact(newContact(candidate));
  }
  // The first identity was claimed above when the contact was created here.
  for (const identity of created ? ids.slice(1) : ids) await claimHandle(identity.channel, identity.handle, { contactId });
  // A web visitor's handle lives on its visitor item; other channels get a handle item.
  const claimed = channel === 'web' ? undefined : await claimHandle(channel, handle, { contactId, ...(conversationId ? { conversationId } : {}) });
  // Claimed first by a message naming the handle beside this one (a WhatsApp BSUID that a message
  // with the number names too): that contact and its conversation are the customer's.
  if (claimed && claimed.contactId !== contactId) return { contactId: claimed.contactId, conversationId: claimed.conversationId };
  // A contact created here has these handles and this profile already.
  let edited: Profile | undefined;
  if (!created) {
    const added = await addFollowingMerges(contactId, [{ channel, handle }, ...ids], {
      name: profile.name,
      email: normalizeEmail(profile.email),
      phone: normalizePhone(profile.phone),
    });
    contactId = added.contactId;
    // An identity claimed for a new contact by an attempt that died before writing it (its retry
    // found the claim): the contact is written now, under the id the claim names.
    if (added.missing) await putContact(newContact(contactId));
    // Read by that write already: no extra read for the new conversation to show the agent's edits.
    if (added.contact?.edited?.length) edited = agentEdits(added.contact);
    // A web visitor's own value of a field an agent cleared would come back on its next message
    // (withVisitorProfile) and be the email fallback's address: the agent's clearing stands.
    const cleared = (Object.keys(edited ?? {}) as ProfileField[]).filter((field) => edited![field] === undefined && profile[field]);
    if (channel === 'web' && cleared.length > 0) await removeVisitorFields(handle, cleared);
  }
  return { contactId, conversationId: claimed?.conversationId, ...(edited ? { edited } : {}) };
}

/**
 * Links another handle of a customer's on a channel (a WhatsApp number beside the BSUID their
 * conversation has) to their contact and that conversation, with the profile's phone linking as a
 * first message's would. Claimed only where no one holds it, so two messages linking it at once
 * agree. False when it leads elsewhere already (another contact or conversation: an earlier split,
 * which an admin merges), in which case nothing is changed.
 */
export async function linkChannelHandle(
  channel: Channel,
  handle: string,
  owner: { contactId: string; conversationId: string },
  profile: Profile = {},
): Promise<boolean> {
  // Read first: every later message naming both finds it linked, and a refused put would cost a write.
  const claimed = (await getHandle(channel, handle)) ?? (await claimHandle(channel, handle, owner));
  if (claimed.contactId !== owner.contactId) return false;
  // A handle item left without a conversation (an attempt that died in between) takes this one.
  const conversationId = claimed.conversationId ?? (await setHandleConversation(channel, handle, owner.conversationId));
  if (conversationId !== owner.conversationId) return false;
  const ids = identities(profile);
  const claims = await Promise.all(ids.map((identity) => claimHandle(identity.channel, identity.handle, { contactId: owner.contactId })));
  await addHandlesFollowingMerges(owner.contactId, [{ channel, handle }, ...ids.filter((_, i) => claims[i]!.contactId === owner.contactId)], {
    name: profile.name,
    phone: normalizePhone(profile.phone),
  });
  return true;
}

/**
 * A customer's number changed (WhatsApp's user_changed_number): the contact's phone follows, from
 * the old number (`from`, E.164, in either of its forms) or none, so that it shows the number
 * replies go to and a transfer to SMS texts it; not a phone an agent set, nor another number.
 * Whether it is `to` now (a redelivery finds it so).
 */
export async function followPhone(contactId: string, from: string | undefined, to: string): Promise<boolean> {
  const contact = await getContact(contactId, true);
  if (!contact || contact.mergedInto) return false;
  const same = (a: string, b: string | undefined) => b !== undefined && sameHandle({ channel: 'phone', handle: a }, { channel: 'phone', handle: b });
  if (contact.phone !== undefined && same(contact.phone, to)) return true;
  if (contact.edited?.includes('phone') || (contact.phone !== undefined && !same(contact.phone, from))) return false;
  return replaceContactPhone(contact.id, contact.phone, to);
}

/** A contact merged into another answers as the one it was merged into (one hop per merge). */
export async function loadContact(id: string): Promise<{ contact: ContactRecord; conversationIds: string[] } | undefined> {
  const seen = new Set<string>();
  let found = await getContactWithConversationIds(id);
  while (found?.contact.mergedInto && !seen.has(found.contact.id)) {
    seen.add(found.contact.id);
    found = await getContactWithConversationIds(found.contact.mergedInto);
  }
  return found;
}

/**
 * The contact an email address or phone number links to (its identity handle), as merges left
 * it; undefined when none does. An address a web visitor typed while identity verification was
 * on, unvouched, links nothing and is not found.
 */
export async function findContactBy(identity: { email: string } | { phone: string }): Promise<{ contact: ContactRecord; conversationIds: string[] } | undefined> {
  const [channel, handle] = 'email' in identity ? (['email', normalizeEmail(identity.email)] as const) : (['phone', normalizePhone(identity.phone)] as const);
  if (!handle) throw badRequest('invalid_request', `${channel}: not ${channel === 'email' ? 'an email address' : 'a phone number'}`);
  const found = await getHandle(channel, handle);
  return found ? loadContact(found.contactId) : undefined;
}

/**
 * Merges `otherId` into `survivorId`: every handle (and its handle or visitor item), every
 * conversation pointer and the conversations' contact move to the survivor; the other contact
 * is marked `mergedInto`. Conversations keep their messages. Every step is idempotent, so a
 * merge that failed half-way is finished by asking again.
 */
export async function mergeContacts(survivorId: string, otherId: string): Promise<void> {
  if (survivorId === otherId) throw badRequest('same_contact', 'a contact cannot be merged into itself');
  // One merge at a time: two at once could each absorb the other (A into B, B into A), or move a
  // third contact's conversations into one that is being merged away.
  await underMergeLock({ waitMs: 0, busy: 'another merge is running; try again in a moment' }, async () => {
    // Under the lock, which an erasure request holds while it records itself (src/domain/erasure.ts):
    // a merge would move an erased contact's conversations out of its erasure's reach, or bring
    // another's into it. Consistent reads: the record may be a moment old.
    const erased = await Promise.all([survivorId, otherId].map((id) => getErasure(id)));
    if (erased.some(Boolean)) throw notFound('contact');
    await mergeLocked(survivorId, otherId);
  });
}

/** Longer than the API function may run: a lock is only taken over from a merge that died. */
const MERGE_LEASE_MS = 60_000;

/**
 * Runs `work` holding the merge lock, trying to take it for up to `waitMs` (a merge of many
 * conversations takes seconds); 409 merge_in_progress with `busy` if it stays taken.
 */
export async function underMergeLock<T>(options: { waitMs: number; busy: string }, work: () => Promise<T>): Promise<T> {
  const owner = newId();
  const until = Date.now() + options.waitMs;
  while (!(await acquireMergeLock(owner, MERGE_LEASE_MS))) {
    if (Date.now() >= until) throw conflict('merge_in_progress', options.busy);
    await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 100));
  }
  try {
    return await work();
  } finally {
    await releaseMergeLock(owner);
  }
}

async function mergeLocked(survivorId: string, otherId: string): Promise<void> {
  const [survivor, other] = await Promise.all([getContactWithConversationIds(survivorId, true), getContactWithConversationIds(otherId, true)]);
  if (!survivor) throw notFound('contact');
  if (!other) throw notFound('other contact');
  if (survivor.contact.mergedInto) {
    throw conflict('contact_merged', `contact ${survivorId} was itself merged into ${survivor.contact.mergedInto}; merge into that one`);
  }
  // Recorded before the mark, so a merged contact is always found by the survivor's erasure; one
  // that then was not merged (refused below, or a crash before the mark) is checked there and skipped.
  await recordMerge(survivorId, otherId);
  // Claimed first: a second merge of the same contact elsewhere is refused from here on.
  if (!(await markContactMerged(otherId, survivorId))) {
    await forgetMerge(survivorId, otherId);
    throw conflict('contact_merged', `contact ${otherId} was already merged into ${other.contact.mergedInto ?? 'another contact'}`);
  }
  // Read again now that it is marked: a handle added before the mark is in this read, and one
  // added after it is moved here by its writer (addHandlesFollowingMerges).
  const marked = (await getContactWithConversationIds(otherId, true)) ?? other;
  const { contact } = marked;
  for (const { channel, handle } of contact.handles) {
    // A visitor's handle lives on its visitor item; every other handle has a handle item.
    if (channel === 'web') await moveVisitor(handle, otherId, survivorId);
    else await moveHandle(channel, handle, otherId, survivorId);
  }
  const added = await addContactHandles(survivorId, contact.handles, { name: contact.name, email: contact.email, phone: contact.phone });
  // The moved conversations show the survivor as it now is (its details, what the other filled in),
  // as its own conversations do: one customer, one name in the inbox.
  const now = added && 'contact' in added ? added.contact : survivor.contact;
  const shown = { id: survivorId, ...(now.name ? { name: now.name } : {}), ...(now.email ? { email: now.email } : {}), ...(now.phone ? { phone: now.phone } : {}) };
  for (const conversationId of marked.conversationIds) {
    await linkContactConversation(survivorId, conversationId);
    const result = await updateConversation(conversationId, (c) =>
      c.contact.id === survivorId ? undefined : { ...c, contact: shown },
    );
    if (result && result.after !== result.before) await publishToConversation(result.after, [conversationEvent(result.after)], result.before);
    await unlinkContactConversation(otherId, conversationId);
  }
  // The survivor's own conversations show what the other filled in too (the moved ones do already).
  const filled = PROFILE_FIELDS.filter((field) => now[field] !== undefined && now[field] !== survivor.contact[field]);
  if (filled.length > 0) {
    await syncConversations(survivorId, (contact) => Object.fromEntries(filled.filter((field) => contact[field] !== undefined).map((field) => [field, contact[field]])));
  }
}

/**
 * The contact's handle on `channel`: one it wrote from, else (for channels addressed by phone)
 * its phone number, so that a WhatsApp customer can be answered by SMS and the other way round.
 * `fromPhone` says which; a phone is only a lead (a web visitor may have typed someone's).
 */
export function handleOnChannel(
  contact: ContactRecord,
  channel: Channel,
  handleForPhone?: (phone: string) => string,
): { handle: string; fromPhone?: string } | undefined {
  const own = contact.handles.find((h) => h.channel === channel)?.handle;
  if (own) return { handle: own };
  const phone = normalizePhone(contact.phone) ?? contact.handles.find((h) => h.channel === 'phone')?.handle;
  return phone && handleForPhone ? { handle: handleForPhone(phone), fromPhone: phone } : undefined;
}

/** An agent's change of a contact's details: a value sets the field, null clears it. */
export type ContactEdit = Partial<Record<ProfileField, string | null>>;

/** Channels whose handle is the customer's phone number: their number stays an identity of the contact. */
const PHONE_CHANNELS: readonly string[] = ['whatsapp', 'sms'];

/** Edits tried again when another writer (an agent, a customer's first message) changed the contact meanwhile. */
const EDIT_ATTEMPTS = 4;

/**
 * Edits a contact's name, email and phone (any agent, as Chatwoot lets them). A merged contact
 * is edited as the one it was merged into, as GET shows it. Email and phone are identities: a new
 * value is claimed (409 contact_exists, nothing changed, when another contact holds it: merge
 * them instead) and the old one stops linking, except a number the customer writes from on
 * WhatsApp or SMS. Each field edited is marked so that no provider or visitor profile fills it
 * again. The contact is written on condition of the version it was read at and read again when
 * another change landed first; its conversations then show the edit (syncConversations).
 */
export async function editContact(id: string, edit: ContactEdit): Promise<{ contact: ContactRecord; conversations: ConversationRecord[] }> {
  const wanted = normalizedEdit(edit);
  const fields = Object.keys(wanted) as ProfileField[];
  let claimed: Identity[] = [];
  let read: ContactRecord | undefined;
  for (let attempt = 0; attempt < EDIT_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    // The item itself (not loadContact's view, which lists web visitors among its handles): its list is written back.
    const contact = await resolveContact(id);
    if (!contact) throw notFound('contact');
    read = contact;
    claimed = [];
    // Left by an edit that died before its releases (or lost them to a failure): finished first.
    for (const { channel, handle } of contact.releasing ?? []) {
      if (!contact.handles.some((h) => sameHandle(h, { channel, handle }))) await releaseHandle(channel, handle, contact.id);
    }
    const dropped: Identity[] = [];
    let handles = contact.handles;
    for (const channel of ['email', 'phone'] as const) {
      const value = wanted[channel];
      if (value === undefined) continue;
      const old = contact[channel];
      // The same number in its other form (src/domain/phone-numbers.ts): one identity, one item, written as the agent typed it.
      const sameIdentity = value !== null && value !== old && old !== undefined && sameHandle({ channel, handle: value }, { channel, handle: old });
      if (value === old || sameIdentity) {
        if (sameIdentity) handles = handles.map((h) => (h.channel === channel && h.handle === old ? { channel, handle: value } : h));
        // A detail the contact has but does not link by (a web visitor's unverified address): the
        // agent vouches for it now, unless another contact holds it (left as it was, no error).
        if (value !== null && !handles.some((h) => sameHandle(h, { channel, handle: value }))) {
          const holder = await claimHandle(channel, value, { contactId: contact.id });
          if (holder.contactId === contact.id) {
            claimed.push({ channel, handle: value });
            handles = [...handles, { channel, handle: value }];
          }
        }
        continue;
      }
      if (value !== null) {
        const holder = await claimHandle(channel, value, { contactId: contact.id });
        const owner = holder.contactId === contact.id ? contact.id : ((await resolveContact(holder.contactId))?.id ?? holder.contactId);
        if (owner !== contact.id) {
          await releaseFresh(claimed, contact);
          throw conflict('contact_exists', `${channel} ${value} belongs to contact ${owner}: merge the two contacts instead`);
        }
        claimed.push({ channel, handle: value });
        if (!handles.some((h) => sameHandle(h, { channel, handle: value }))) handles = [...handles, { channel, handle: value }];
      }
      const writesFromIt = (h: ContactRecord['handles'][number]) => PHONE_CHANNELS.includes(h.channel) && normalizePhone(h.handle) === old;
      if (old && !(channel === 'phone' && contact.handles.some(writesFromIt))) {
        dropped.push({ channel, handle: old });
        handles = handles.filter((h) => !(h.channel === channel && h.handle === old));
      }
    }
    const written = await writeContactEdit(contact, {
      set: Object.fromEntries(Object.entries(wanted).filter(([, v]) => v !== null)) as Partial<Record<ProfileField, string>>,
      remove: fields.filter((f) => wanted[f] === null && contact[f] !== undefined),
      handles,
      edited: [...new Set([...(contact.edited ?? []), ...fields])],
      // With the write that stops listing them: a crash before their items go leaves them named here.
      releasing: dropped,
    });
    if (written === undefined) continue;
    // Once the contact no longer lists them (a handle item gone already is no error).
    for (const { channel, handle } of dropped) await releaseHandle(channel, handle, contact.id);
    if (dropped.length > 0) await clearReleasing(contact.id, written);
    return syncConversations(contact.id);
  }
  if (read) await releaseFresh(claimed, read);
  throw conflict('contact_busy', `contact ${id} kept changing while it was edited; try again`);
}

/** The email and phone of an edit as identities are kept (400 when one is not an address or a number). */
function normalizedEdit(edit: ContactEdit): ContactEdit {
  const out: ContactEdit = { ...edit };
  if (typeof edit.email === 'string') {
    out.email = normalizeEmail(edit.email);
    if (!out.email) throw badRequest('invalid_request', 'email: not an email address');
  }
  if (typeof edit.phone === 'string') {
    // Words or an extension beside the digits ("ext 12") would be read into another number.
    if (/\p{L}/u.test(edit.phone)) throw badRequest('invalid_request', 'phone: digits only, with +, spaces, dashes, dots or brackets');
    out.phone = normalizePhone(edit.phone);
    if (!out.phone) throw badRequest('invalid_request', 'phone: not a phone number');
  }
  return out;
}

/** A contact item, or the one it was merged into (read consistently: an edit writes on condition of it). */
async function resolveContact(id: string): Promise<ContactRecord | undefined> {
  let contact = await getContact(id, true);
  for (let hop = 0; contact?.mergedInto && hop < MAX_MERGE_HOPS; hop++) contact = await getContact(contact.mergedInto, true);
  return contact?.mergedInto ? undefined : contact;
}

/** Gives up the identities an edit that did not land claimed and the contact did not list before. */
async function releaseFresh(claimed: Identity[], contact: ContactRecord): Promise<void> {
  for (const { channel, handle } of claimed) {
    if (!contact.handles.some((h) => sameHandle(h, { channel, handle }))) await releaseHandle(channel, handle, contact.id);
  }
}

/**
 * Conversations one edit brings up to date, newest activity first. Only a contact with many web
 * visitors sharing an address has more; the same edit asked again takes the next ones (only the
 * conversations that do not show it yet are written).
 */
export const EDIT_SYNC_MAX = 100;
const SYNC_CONCURRENCY = 4;
/** Rounds of syncConversations while other edits keep landing during it. */
const SYNC_ROUNDS = 3;

/**
 * Copies what agents edited on the contact (or what `shownOf` picks: the fields a merge filled
 * in) into its conversations' embedded `contact` (what inboxes show, and the address the email
 * fallback writes to) and tells the agents (`conversation.updated`). A web visitor's own value of a cleared field is removed too: the
 * visitor's next message would otherwise bring it back to the conversation, and the email
 * fallback reads it when the contact has none. Copied from the contact as read here, and read
 * again after: an edit that landed meanwhile (whose own copy may have finished first) is copied
 * by whichever finishes last. Returns the contact and all its conversations as they are now.
 */
async function syncConversations(
  contactId: string,
  shownOf: (contact: ContactRecord) => Profile = agentEdits,
): Promise<{ contact: ContactRecord; conversations: ConversationRecord[] }> {
  let result: { contact: ContactRecord; conversations: ConversationRecord[] } | undefined;
  for (let round = 0; round < SYNC_ROUNDS; round++) {
    const found = await getContactWithConversationIds(contactId, true);
    if (!found) throw notFound('contact');
    const shown = shownOf(found.contact);
    const conversations = await getConversations(found.conversationIds, true);
    const stale = conversations
      .filter((c) => c.contact.id === contactId && differs(c.contact, shown))
      .sort((a, b) => b.lastMessageAt.localeCompare(a.lastMessageAt))
      .slice(0, EDIT_SYNC_MAX);
    const agentConnections = stale.length > 0 ? agentConnectionsAhead() : undefined;
    const updated = await mapConcurrently(stale, SYNC_CONCURRENCY, (c) => showEdits(c, contactId, shown, agentConnections));
    const byId = new Map(updated.map((c) => [c.id, c]));
    result = { contact: found.contact, conversations: conversations.map((c) => byId.get(c.id) ?? c) };
    if ((await getContact(contactId, true))?.version === found.contact.version) break;
  }
  return result!;
}

const differs = (shown: Profile, edits: Profile) => (Object.keys(edits) as ProfileField[]).some((f) => shown[f] !== edits[f]);

async function showEdits(conversation: ConversationRecord, contactId: string, edits: Profile, agentConnections?: ReturnType<typeof agentConnectionsAhead>): Promise<ConversationRecord> {
  const cleared = (Object.keys(edits) as ProfileField[]).filter((f) => edits[f] === undefined);
  if (conversation.visitorId && cleared.length > 0) await removeVisitorFields(conversation.visitorId, cleared);
  const result = await updateConversation(conversation.id, (c) =>
    c.contact.id !== contactId || !differs(c.contact, edits) ? undefined : { ...c, contact: { ...c.contact, ...edits }, updatedAt: new Date().toISOString() },
  );
  if (!result) return conversation;
  if (result.after !== result.before) await publishToConversation(result.after, [conversationEvent(result.after)], result.before, agentConnections);
  return result.after;
}
