import { badRequest } from '../domain/errors';

/** Opaque pagination cursors: the LastEvaluatedKey, base64url JSON. */
export function encodeCursor(key: Record<string, unknown> | undefined): string | null {
  return key ? Buffer.from(JSON.stringify(key)).toString('base64url') : null;
}

/** What a cursor of one query must hold to be handed to DynamoDB as its start key. */
export interface CursorShape {
  /** The partition key attribute and value the query reads. */
  partition: { attribute: string; value: string };
  /** Every attribute a LastEvaluatedKey of this query has (an index's keys and the table's). */
  attributes: readonly string[];
  /** A sort key the key condition limits to a prefix: a start key outside it is refused by DynamoDB. */
  sortPrefix?: { attribute: string; prefix: string };
}

/**
 * A cursor from another query, or a forged one, would reach DynamoDB as an invalid start key
 * (a ValidationException, so a 500): it must have exactly this query's key attributes, in its
 * partition and within its sort-key range.
 */
export function decodeCursor(cursor: string | undefined | null, shape: CursorShape): Record<string, string> | undefined {
  if (!cursor) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const key = value as Record<string, unknown>;
      const names = Object.keys(key);
      const valid =
        names.length === shape.attributes.length &&
        shape.attributes.every((name) => typeof key[name] === 'string' && key[name] !== '') &&
        key[shape.partition.attribute] === shape.partition.value &&
        (!shape.sortPrefix || (key[shape.sortPrefix.attribute] as string).startsWith(shape.sortPrefix.prefix));
      if (valid) return key as Record<string, string>;
    }
  } catch {
    // fall through to the client error
  }
  throw badRequest('invalid_cursor', 'cursor is not one this API returned');
}
