/**
 * Half of a UTF-16 surrogate pair without its other half. JSON can carry one (`"\udc00"`), a
 * browser never sends one, and UTF-8 cannot encode it: encodeURIComponent throws on it, and a
 * provider, SES or DynamoDB may refuse the text later, where the customer's message would fail.
 */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** An escape of a surrogate in JSON text: only a body with one can parse to a lone surrogate. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** Whether every string in a parsed JSON value (keys too) is well-formed Unicode; `raw` is the text it was parsed from. */
export function wellFormedJson(raw: string, value: unknown): boolean {
  if (!SURROGATE_ESCAPE.test(raw) && !LONE_SURROGATE.test(raw)) return true;
  const wellFormed = (v: unknown): boolean => {
    if (typeof v === 'string') return !LONE_SURROGATE.test(v);
    if (Array.isArray(v)) return v.every(wellFormed);
    if (v !== null && typeof v === 'object') return Object.entries(v).every(([key, inner]) => !LONE_SURROGATE.test(key) && wellFormed(inner));
    return true;
  };
  return wellFormed(value);
}
