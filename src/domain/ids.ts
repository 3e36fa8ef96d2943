import { createHash } from 'node:crypto';
import { encodeTime, monotonicFactory } from 'ulid';

/** Ids are ULIDs: opaque, unique, and sortable by creation time (CONTRACT.md section 5). */
export const newId = monotonicFactory();

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The same ULID every time for the same time and seed: a retried step that makes an id this way
 * writes the same item again instead of a second one.
 */
export function idFor(timeMs: number, seed: string): string {
  const digest = createHash('sha256').update(seed).digest();
  let random = '';
  for (let i = 0; i < 16; i++) random += CROCKFORD[digest[i]! & 31];
  return encodeTime(timeMs, 10) + random;
}

/** A short digest of what an idempotency key stands for: two sends with the same id and other content are two messages. */
export function contentHash(content: string): string {
  return createHash('sha256').update(content).digest('base64url').slice(0, 16);
}
