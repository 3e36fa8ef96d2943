/**
 * Half of a UTF-16 surrogate pair without its other half. JSON can carry one (`"\udc00"`), a
 * browser never sends one, and UTF-8 cannot encode it: encodeURIComponent throws on it, and a
 * provider, SES or DynamoDB may refuse the text later, where the customer's message would fail.
 */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** An escape of a surrogate in JSON text: only a body with one can parse to a lone surrogate. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** Whether what was parsed from `raw` may hold a lone surrogate: a cheap look at the text spares the walk. */
const mayHoldLoneSurrogate = (raw: string): boolean => SURROGATE_ESCAPE.test(raw) || LONE_SURROGATE.test(raw);

/** Whether every string in a parsed JSON value (keys too) is well-formed Unicode; `raw` is the text it was parsed from. */
export function wellFormedJson(raw: string, value: unknown): boolean {
  if (!mayHoldLoneSurrogate(raw)) return true;
  const wellFormed = (v: unknown): boolean => {
    if (typeof v === 'string') return !LONE_SURROGATE.test(v);
    if (Array.isArray(v)) return v.every(wellFormed);
    if (v !== null && typeof v === 'object') return Object.entries(v).every(([key, inner]) => !LONE_SURROGATE.test(key) && wellFormed(inner));
    return true;
  };
  return wellFormed(value);
}

/** `text` with each lone surrogate replaced by U+FFFD, as a UTF-8 encoder would write it. */
export const mendLoneSurrogates = (text: string): string => text.replace(LONE_SURROGATES, '\uFFFD');

/**
 * `value` (plain data made from `raw`) with each lone surrogate in its strings, keys too, replaced
 * by U+FFFD; `value` itself when `raw` cannot have brought one. What a provider sends is taken,
 * not refused (it would send it again for days), and stored readable: a lone surrogate kept would
 * fail later, at a send, an email or a file's name.
 */
export function mendedFrom<T>(raw: string, value: T): T {
  if (!mayHoldLoneSurrogate(raw)) return value;
  const mend = (v: unknown): unknown => {
    if (typeof v === 'string') return mendLoneSurrogates(v);
    if (Array.isArray(v)) return v.map(mend);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([key, inner]) => [mendLoneSurrogates(key), mend(inner)]));
    return v;
  };
  return mend(value) as T;
}
