import { badRequest } from '../domain/errors';

/** Opaque pagination cursors: the LastEvaluatedKey, base64url JSON. */
export function encodeCursor(key: Record<string, unknown> | undefined): string | null {
  return key ? Buffer.from(JSON.stringify(key)).toString('base64url') : null;
}

/**
 * `partition` names the key attribute and value the cursor must belong to: a cursor from
 * another query (or a forged one) would otherwise reach DynamoDB as an invalid start key.
 */
export function decodeCursor(
  cursor: string | undefined | null,
  partition: { attribute: string; value: string },
): Record<string, string> | undefined {
  if (!cursor) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      value &&
      typeof value === 'object' &&
      Object.values(value).every((v) => typeof v === 'string') &&
      (value as Record<string, string>)[partition.attribute] === partition.value
    ) {
      return value as Record<string, string>;
    }
  } catch {
    // fall through to the client error
  }
  throw badRequest('invalid_cursor', 'cursor is not one this API returned');
}
