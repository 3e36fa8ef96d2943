/**
 * The one place the functions get zod from: its mini build, with the English messages our
 * 400s quote (the same ones the classic build gives), and the few field shapes we repeat.
 * The classic build costs about 30 ms more to load in every function that validates: it sets
 * up every method on every schema. Import it as a namespace (`import * as z`): esbuild then
 * keeps only what a function uses.
 */
import { _default, coerce, config, int, maximum, maxLength, minimum, minLength, number, overwrite, refine, string, trim } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

export * from 'zod/mini';

/** A string of `min` to `max` characters. */
export const text = (min: number, max: number) => string().check(minLength(min), maxLength(max));

/** The same, counted after surrounding whitespace is trimmed (and stored trimmed). */
export const trimmedText = (min: number, max: number) => string().check(trim(), minLength(min), maxLength(max));

/**
 * What shows nothing: whitespace, format characters (zero-width space and joiners, word joiner,
 * BOM, bidi marks, soft hyphen), variation selectors, and the blank letters (Hangul fillers,
 * the braille blank) that people paste to send an empty-looking message.
 */
const INVISIBLE_ONLY = /^[\s\p{Cf}\uFE00-\uFE0F\u115F\u1160\u3164\uFFA0\u2800]*$/u;

/** Whether a text is empty or of invisible characters only (a filled template may come out so). */
export const showsNothing = (text: string): boolean => INVISIBLE_ONLY.test(text);

/**
 * A message's text, up to `max` characters once trimmed: one of invisible characters only is no
 * text (''), so that the "text is required" rules refuse it as they refuse an empty one.
 */
export const messageText = (max: number) => _default(string().check(trim(), overwrite((value) => (showsNothing(value) ? '' : value)), maxLength(max)), '');

/** Refuses a text that shows nothing. */
const showsSomething = () => refine<string>((value) => !showsNothing(value), { message: 'must show something, not only spaces or invisible characters' });

/**
 * A text the team sends customers as it is written (the autoresponder's, a follow-up, the CSAT
 * question, a campaign): `min` to `max` characters that show something. One of invisible
 * characters only would go out as an empty bubble, or be refused by the provider every time.
 */
export const shownText = (min: number, max: number) =>
  string().check(minLength(min), maxLength(max), showsSomething());

/** Trimmed as trimmedText, and showing something (a contact's name: a blank one is an empty line in every inbox). */
export const shownTrimmedText = (min: number, max: number) =>
  string().check(trim(), minLength(min), maxLength(max), showsSomething());

/** A whole number from `min` to `max`. */
export const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) => number().check(int(), minimum(min), maximum(max));

/** A page size from a query string. */
export const pageLimit = (fallback: number) => _default(coerce.number().check(int(), minimum(1), maximum(100)), fallback);
