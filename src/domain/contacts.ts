/**
 * One customer across channels: a contact keeps every handle, and identity handles
 * (a phone number, an email address) link a new channel to the contact that already has them.
 */
import type { Channel } from './types';
import { newId } from './ids';
import { addContactHandles, claimHandle, getHandle, putContact, type ContactRecord } from '../store/contacts';

export interface Profile {
  name?: string;
  email?: string;
  phone?: string;
}

/** E.164 with a leading +, digits only; undefined when it does not look like a phone number. */
export function normalizePhone(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const digits = raw.replace(/[^\d]/g, '');
  return digits.length >= 7 && digits.length <= 15 ? `+${digits}` : undefined;
}

export function normalizeEmail(raw: string | undefined): string | undefined {
  const value = raw?.trim().toLowerCase();
  return value && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value) ? value : undefined;
}

function identities(profile: Profile): { channel: 'phone' | 'email'; handle: string }[] {
  const out: { channel: 'phone' | 'email'; handle: string }[] = [];
  const phone = normalizePhone(profile.phone);
  const email = normalizeEmail(profile.email);
  if (phone) out.push({ channel: 'phone', handle: phone });
  if (email) out.push({ channel: 'email', handle: email });
  return out;
}

/**
 * The contact for a customer's handle on a channel: the one the handle already belongs to,
 * else the one holding the same phone or email, else a new one. Safe to repeat after a crash.
 */
export async function findOrCreateContact(channel: Channel, handle: string, profile: Profile): Promise<string> {
  const ids = identities(profile);
  let contactId: string | undefined;
  for (const identity of ids) {
    contactId = (await getHandle(identity.channel, identity.handle))?.contactId;
    if (contactId) break;
  }
  if (!contactId) {
    const candidate = newId();
    // Claim identities before creating the contact so two channels racing for one phone agree.
    const first = ids[0];
    contactId = first ? (await claimHandle(first.channel, first.handle, { contactId: candidate })).contactId : candidate;
    if (contactId === candidate) {
      const contact: ContactRecord = {
        id: candidate,
        name: profile.name,
        email: normalizeEmail(profile.email),
        phone: normalizePhone(profile.phone),
        handles: [{ channel, handle }, ...ids],
        createdAt: new Date().toISOString(),
      };
      await putContact(contact).catch((error: Error) => {
        if (error.name !== 'ConditionalCheckFailedException') throw error;
      });
    }
  }
  for (const identity of ids) await claimHandle(identity.channel, identity.handle, { contactId });
  // A web visitor's handle lives on its visitor item; other channels get a handle item.
  if (channel !== 'web') await claimHandle(channel, handle, { contactId });
  await addContactHandles(contactId, [{ channel, handle }, ...ids], {
    name: profile.name,
    email: normalizeEmail(profile.email),
    phone: normalizePhone(profile.phone),
  });
  return contactId;
}
