/**
 * Workspace settings: business hours, autoresponder, capacities, routing, timers, engagement
 * texts and SLA targets. One item, validated by one schema, cached for a minute per function
 * instance (changes reach every function within that minute).
 */
import * as z from '../zod';
import { config, TIMER_MAX_SECONDS } from '../config';
import { getStoredSettings, putSettings } from '../store/settings';
import { badRequest, conflict } from './errors';

/** Labels a workspace may define. */
export const MAX_LABELS = 100;

/**
 * How long a conversation handed back to the queue is kept from the agent who gave it up
 * (src/domain/routing.ts), in minutes: at most a day; 0 is no hold (they are still offered it
 * after everyone else).
 */
export const HANDOFF_HOLD_MAX_MINUTES = 1440;
export const DEFAULT_HANDOFF_HOLD_MINUTES = 15;

const time = z.string().check(z.regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'use HH:MM (24-hour)'));
/** `24:00` closes at the end of the day: with the next day's `00:00` opening, hours run through midnight. */
const closing = z.string().check(z.regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'use HH:MM (24-hour; 24:00 for the end of the day)'));
const interval = z.strictObject({ open: time, close: closing }).check(z.refine((i) => i.open < i.close, { message: 'open must be before close' }));
const day = z.array(interval).check(z.maxLength(6));
const timeZone = z.string().check(
  z.refine(
    (tz) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    },
    { message: 'not an IANA time zone' },
  ),
  // Zones are matched without case: `europe/paris` is kept as `Europe/Paris`, as customers are told
  // it. Only the case: the runtime's own name may be an older alias (Asia/Kolkata → Asia/Calcutta).
  z.overwrite((tz) => {
    try {
      const known = new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
      return known.toLowerCase() === tz.toLowerCase() ? known : tz;
    } catch {
      return tz; // refused above
    }
  }),
);

/** A real calendar date: `2026-02-30` would never match a day, and the holiday would silently not be one. */
const calendarDate = z.string().check(
  z.regex(/^\d{4}-\d{2}-\d{2}$/, 'use YYYY-MM-DD'),
  z.refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), { message: 'not a calendar date' }),
);

/** Sent to customers as a link: http(s) only. */
const helpCenterUrl = z.string().check(z.url(), z.maxLength(500), z.refine((u) => /^https?:\/\//i.test(u), { message: 'must be an http(s) URL' }));

/**
 * Strict objects throughout: a key we do not know (a misspelt weekday, a setting in the wrong
 * section) is a 400, not dropped with a 200 (a dropped `Mon` left the business closed all week).
 */
/** Chatwoot's label rule: lower case, digits, `-` and `_`; a name is how filters and reports match it. */
export const LabelName = z.string().check(z.regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'use 1–32 lower-case letters, digits, - or _'));
const labelDefinition = z.strictObject({
  name: LabelName,
  description: z.optional(z.text(0, 200)),
  color: z.optional(z.string().check(z.regex(/^#[0-9a-fA-F]{6}$/, 'use #rrggbb'))),
});
/** Labels agents may put on conversations; names unique. */
const labels = z.array(labelDefinition).check(
  z.maxLength(MAX_LABELS),
  z.refine((defs) => new Set(defs.map((d) => d.name)).size === defs.length, { message: 'label names must be unique' }),
);

export const SettingsSchema = z.strictObject({
  businessHours: z.strictObject({
    enabled: z.boolean(),
    timeZone,
    /** Opening intervals per weekday; a missing or empty day is closed. */
    weekly: z.partial(z.strictObject({ mon: day, tue: day, wed: day, thu: day, fri: day, sat: day, sun: day })),
    /** Dates (YYYY-MM-DD, in the business's time zone) that are closed all day. */
    holidays: z.array(calendarDate).check(z.maxLength(366)),
  }),
  autoresponder: z.strictObject({
    enabled: z.boolean(),
    message: z.shownText(1, 1000),
    helpCenterUrl: z.optional(helpCenterUrl),
    /** `{{nextOpen}}` is replaced by when the team is back. */
    outOfHoursMessage: z.shownText(1, 1000),
    /** Outside hours, a web visitor with no email is asked for one. */
    askForEmail: z.boolean(),
  }),
  capacity: z.strictObject({ live: z.wholeNumber(0, 50), async: z.wholeNumber(0, 200) }),
  routing: z.strictObject({ handoffHoldMinutes: z.wholeNumber(0, HANDOFF_HOLD_MAX_MINUTES) }),
  timers: z.strictObject({
    emailFallbackDelaySeconds: z.wholeNumber(1, TIMER_MAX_SECONDS.emailFallbackDelaySeconds),
    reengageAfterSeconds: z.wholeNumber(1, TIMER_MAX_SECONDS.reengageAfterSeconds),
    autoResolveAfterSeconds: z.wholeNumber(1, TIMER_MAX_SECONDS.autoResolveAfterSeconds),
  }),
  reengagement: z.strictObject({
    enabled: z.boolean(),
    message: z.shownText(1, 1000),
    /** WhatsApp outside 24 h needs an approved template. */
    whatsappTemplate: z.optional(z.strictObject({ name: z.text(1, 512), language: z.text(2, 16) })),
  }),
  csat: z.strictObject({ enabled: z.boolean(), question: z.shownText(1, 500) }),
  sla: z.strictObject({ firstReplySeconds: z.wholeNumber(1), resolutionSeconds: z.wholeNumber(1) }),
  /**
   * With identityVerification, a web visitor's email or phone links them to the contact that has
   * it only when the website vouches for it (identityHash, src/domain/visitors.ts).
   */
  widget: z.strictObject({ identityVerification: z.boolean() }),
  /** The labels agents put on conversations (as Chatwoot's): defined here first, by an admin. */
  labels,
});

export type Settings = z.infer<typeof SettingsSchema>;

/**
 * Any subset of the settings, each section merged into the current one. A setting that may be
 * absent (the help center link, the follow-up template) is removed with `null`.
 */
const shape = SettingsSchema.shape;
const whatsappTemplate = shape.reengagement.shape.whatsappTemplate.def.innerType;
export const SettingsPatchSchema = z.strictObject({
  businessHours: z.optional(z.partial(shape.businessHours)),
  autoresponder: z.optional(z.extend(z.partial(shape.autoresponder), { helpCenterUrl: z.optional(z.nullable(helpCenterUrl)) })),
  capacity: z.optional(z.partial(shape.capacity)),
  routing: z.optional(z.partial(shape.routing)),
  timers: z.optional(z.partial(shape.timers)),
  reengagement: z.optional(z.extend(z.partial(shape.reengagement), { whatsappTemplate: z.optional(z.nullable(whatsappTemplate)) })),
  csat: z.optional(z.partial(shape.csat)),
  sla: z.optional(z.partial(shape.sla)),
  widget: z.optional(z.partial(shape.widget)),
  /** The whole list: a label left out is no longer offered (conversations keep theirs). */
  labels: z.optional(labels),
});
export type SettingsPatch = z.infer<typeof SettingsPatchSchema>;

/**
 * Whole seconds within the settings' bounds, as settings keep timers: an environment's 0 or 0.5
 * (a test's "at once") or a value past the bound must not make every later save invalid.
 */
const withinBounds = (value: number, max: number) => Math.min(max, Math.max(1, Math.ceil(value)));

export function defaultSettings(): Settings {
  const env = config.timers;
  const timers = {
    emailFallbackDelaySeconds: withinBounds(env.emailFallbackDelaySeconds, TIMER_MAX_SECONDS.emailFallbackDelaySeconds),
    reengageAfterSeconds: withinBounds(env.reengageAfterSeconds, TIMER_MAX_SECONDS.reengageAfterSeconds),
    autoResolveAfterSeconds: withinBounds(env.autoResolveAfterSeconds, TIMER_MAX_SECONDS.autoResolveAfterSeconds),
  };
  const weekday = [{ open: '09:00', close: '17:00' }];
  return {
    businessHours: {
      enabled: false,
      timeZone: 'UTC',
      weekly: { mon: weekday, tue: weekday, wed: weekday, thu: weekday, fri: weekday, sat: [], sun: [] },
      holidays: [],
    },
    autoresponder: {
      enabled: true,
      message: 'Thanks for getting in touch! A member of our team will be with you shortly.',
      outOfHoursMessage: 'Thanks for your message. Our team is away right now and will be back {{nextOpen}}.',
      askForEmail: true,
    },
    capacity: { live: 3, async: 8 },
    routing: { handoffHoldMinutes: DEFAULT_HANDOFF_HOLD_MINUTES },
    timers,
    reengagement: { enabled: true, message: 'Just checking in: is there anything else we can help you with?' },
    csat: { enabled: true, question: 'How would you rate our support? Reply with a number from 1 (poor) to 5 (great).' },
    sla: { firstReplySeconds: 15 * 60, resolutionSeconds: 24 * 3600 },
    widget: { identityVerification: false },
    labels: [],
  };
}

const CACHE_MS = 60_000;
let cached: { value: Settings; at: number } | undefined;

export async function getSettings(options: { fresh?: boolean } = {}): Promise<Settings> {
  if (!options.fresh && cached && Date.now() - cached.at < CACHE_MS) return cached.value;
  // Fresh means as saved: a label defined a moment ago must be there (a consistent read).
  return (await readSettings(options.fresh === true)).value;
}

async function readSettings(consistent: boolean): Promise<{ value: Settings; version: number | undefined }> {
  const stored = await getStoredSettings(consistent);
  const defaults = defaultSettings();
  // Sections added after a workspace saved its settings take their defaults.
  const value = stored ? withoutRefused(mergeSettings(defaults, stored.settings as SettingsPatch)) : defaults;
  cached = { value, at: Date.now() };
  return { value, version: stored?.version };
}

/** Any length: what the rules refuse of a stored text is only its showing nothing. */
const shown = z.shownText(0, Number.MAX_SAFE_INTEGER);

/**
 * Settings stored before the rules became stricter, minus what the rules now refuse (a holiday
 * that is not on the calendar never matched a day; a link that is not http(s) is not sent; a text
 * for customers that shows nothing takes the default's): a save of any other section must not fail on them.
 */
function withoutRefused(settings: Settings): Settings {
  const { helpCenterUrl: url, ...autoresponder } = settings.autoresponder;
  const defaults = defaultSettings();
  const text = (value: string, fallback: string) => (shown.safeParse(value).success ? value : fallback);
  return {
    ...settings,
    businessHours: { ...settings.businessHours, holidays: settings.businessHours.holidays.filter((d) => calendarDate.safeParse(d).success) },
    autoresponder: {
      ...(url === undefined || helpCenterUrl.safeParse(url).success ? settings.autoresponder : autoresponder),
      message: text(settings.autoresponder.message, defaults.autoresponder.message),
      outOfHoursMessage: text(settings.autoresponder.outOfHoursMessage, defaults.autoresponder.outOfHoursMessage),
    },
    reengagement: { ...settings.reengagement, message: text(settings.reengagement.message, defaults.reengagement.message) },
    csat: { ...settings.csat, question: text(settings.csat.question, defaults.csat.question) },
  };
}

export function mergeSettings(base: Settings, patch: SettingsPatch): Settings {
  const out = { ...base } as Record<string, unknown>;
  for (const [section, values] of Object.entries(patch)) {
    if (!values) continue;
    if (Array.isArray(values)) {
      out[section] = values;
      continue;
    }
    const merged: Record<string, unknown> = { ...(base as Record<string, object>)[section], ...values };
    for (const [key, value] of Object.entries(merged)) if (value === null) delete merged[key];
    out[section] = merged;
  }
  return out as Settings;
}

/** Saves of the settings one request tries when others keep landing in between. */
const SAVE_ATTEMPTS = 5;

/**
 * Merges `patch` into the settings as stored and saves the result, unless another save landed
 * since they were read: then it reads and merges again, so that concurrent saves of different
 * sections both hold. A patch that is invalid against the current settings changes nothing.
 */
export async function saveSettings(patch: SettingsPatch): Promise<Settings> {
  for (let attempt = 0; attempt < SAVE_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
    const current = await readSettings(true);
    const parsed = SettingsSchema.safeParse(mergeSettings(current.value, patch));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest('invalid_request', `${issue?.path.join('.') || 'settings'}: ${issue?.message ?? 'invalid'}`);
    }
    const next = parsed.data;
    if (await putSettings(next, new Date(), current.version)) {
      cached = { value: next, at: Date.now() };
      return next;
    }
  }
  throw conflict('settings_busy', 'the settings kept changing while this change was saved; try again');
}

/** For tests: forget the cached copy. */
export function clearSettingsCache(): void {
  cached = undefined;
}
