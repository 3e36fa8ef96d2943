/** Canned responses: a shared library of replies with placeholders filled when used. */
import { newId } from './ids';
import { conflict, notFound } from './errors';
import type { ConversationRecord } from '../store/conversations';
import { deleteCannedResponse, getCannedResponse, listCannedResponses, putCannedResponse, type CannedResponse } from '../store/canned';

export async function createCanned(input: { shortCode: string; text: string }, createdBy: string): Promise<CannedResponse> {
  const taken = () => conflict('short_code_taken', `a canned response with short code "${input.shortCode}" exists`);
  // Responses stored before short codes were claimed have no claim: the library is read for them.
  const existing = await listCannedResponses();
  if (existing.some((c) => c.shortCode.toLowerCase() === input.shortCode.toLowerCase())) throw taken();
  const record: CannedResponse = { id: newId(), shortCode: input.shortCode, text: input.text, createdAt: new Date().toISOString(), createdBy };
  if (!(await putCannedResponse(record))) throw taken();
  return record;
}

export async function getCanned(id: string): Promise<CannedResponse> {
  const canned = await getCannedResponse(id);
  if (!canned) throw notFound('canned response');
  return canned;
}

export async function removeCanned(id: string): Promise<void> {
  if (!(await deleteCannedResponse(id))) throw notFound('canned response');
}

/** Short-code matches first, then text matches; both case-insensitive. */
export async function searchCanned(q: string | undefined): Promise<CannedResponse[]> {
  const all = (await listCannedResponses()).sort((a, b) => a.shortCode.localeCompare(b.shortCode));
  const needle = q?.trim().toLowerCase();
  if (!needle) return all;
  const byCode = all.filter((c) => c.shortCode.toLowerCase().includes(needle));
  const byText = all.filter((c) => !byCode.includes(c) && c.text.toLowerCase().includes(needle));
  return [...byCode, ...byText];
}

export interface PlaceholderValues {
  contact: ConversationRecord['contact'];
  agent: { id: string; name?: string };
}

/** What each placeholder reads: fillPlaceholders fills these, and unknownPlaceholders refuses others. */
const PLACEHOLDERS: Readonly<Record<string, (values: PlaceholderValues) => string | undefined>> = {
  'contact.name': (v) => v.contact.name,
  'contact.email': (v) => v.contact.email,
  'contact.phone': (v) => v.contact.phone,
  'agent.name': (v) => v.agent.name,
};

/**
 * The `{{…}}` a text holds that fillPlaceholders does not know: where a typo would go out as
 * written (a proactive message goes to many customers, unread by an agent first).
 */
export function unknownPlaceholders(text: string): string[] {
  const whole = /\{\{[^{}]{0,100}\}\}/g;
  const unknown = [...text.matchAll(whole)].map((m) => m[0]).filter((p) => !Object.hasOwn(PLACEHOLDERS, p.slice(2, -2).split('|')[0]!.trim()));
  // A `{{` that opens no whole placeholder (one inside a fallback, one closed by a single brace)
  // is not filled: it would go out as written ("Hi {{contact.name|there}, …", "Hi Ana}}").
  const stray = text.replace(whole, '').match(/\{\{[^]{0,20}/g) ?? [];
  return [...unknown, ...stray];
}

/**
 * Fills `{{contact.name}}`, `{{contact.email}}`, `{{contact.phone}}`, `{{agent.name}}`;
 * `{{contact.name|there}}` gives a fallback for a missing value. Unknown placeholders stay
 * as written, so a typo shows up in the agent's composer instead of vanishing.
 */
export function fillPlaceholders(text: string, values: PlaceholderValues): string {
  return text.replace(/\{\{\s*([a-z]+\.[a-z]+)\s*(?:\|([^}]*))?\}\}/g, (whole, key: string, fallback: string | undefined) => {
    const read = Object.hasOwn(PLACEHOLDERS, key) ? PLACEHOLDERS[key] : undefined;
    if (!read) return whole;
    return read(values) ?? fallback?.trim() ?? '';
  });
}

export async function renderCanned(id: string, values: PlaceholderValues): Promise<{ id: string; shortCode: string; text: string }> {
  const canned = await getCanned(id);
  return { id: canned.id, shortCode: canned.shortCode, text: fillPlaceholders(canned.text, values) };
}
