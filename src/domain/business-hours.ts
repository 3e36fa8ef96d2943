/**
 * Business hours: per-weekday opening intervals in an IANA time zone, plus closed dates.
 * Pure functions over the settings and a clock, so that DST and holidays are unit-testable.
 * Wall-clock arithmetic goes through Intl (the only tz database Node ships), never fixed offsets.
 */
import type { Settings } from './settings';

type Hours = Settings['businessHours'];
type Weekday = keyof Hours['weekly'];

const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
/** Far enough to cross a year of holidays; a schedule with no opening at all gives up there. */
const LOOKAHEAD_DAYS = 400;
const DAY_MS = 86_400_000;

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallClock(timeZone: string, instant: number): WallClock {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, format);
  }
  const parts: Record<string, number> = {};
  for (const part of format.formatToParts(new Date(instant))) if (part.type !== 'literal') parts[part.type] = Number(part.value);
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, second: parts.second! };
}

/** How far the zone's wall clock is ahead of UTC at an instant. */
function offsetMs(timeZone: string, instant: number): number {
  const w = wallClock(timeZone, instant);
  const wallAsUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return wallAsUtc - (instant - (((instant % 1000) + 1000) % 1000));
}

/**
 * The instant at which the zone's clock shows this wall time. The zone's offsets a day either side
 * give the candidates: an ordinary time matches one; a time shown twice (fall-back) takes the first.
 * A time skipped by a spring-forward matches neither and lands after the gap, as far past it as it
 * was into it (02:30 → 03:30), which is when the door actually opens, east and west of UTC alike.
 */
export function zonedTimeToInstant(timeZone: string, year: number, month: number, day: number, hour: number, minute: number, second = 0): Date {
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  const before = offsetMs(timeZone, wall - DAY_MS);
  const after = offsetMs(timeZone, wall + DAY_MS);
  const exact = [wall - Math.max(before, after), wall - Math.min(before, after)].find((at) => at + offsetMs(timeZone, at) === wall);
  return new Date(exact ?? wall - before);
}

const isoDate = (year: number, month: number, day: number) => `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
/** `24:00` (a closing time only) is 1440: past every minute of the day, so the day is open to its end. */
const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

function intervalsOn(hours: Hours, year: number, month: number, day: number) {
  if (hours.holidays.includes(isoDate(year, month, day))) return [];
  const weekday = WEEKDAYS[new Date(Date.UTC(year, month - 1, day)).getUTCDay()]!;
  return [...(hours.weekly[weekday] ?? [])].sort((a, b) => a.open.localeCompare(b.open));
}

/**
 * When an interval opening at `hhmm` on that date opens, as isOpen reads it: at that wall time, at
 * both moments a fall-back shows it twice (the doors open again when the clock shows it again), or,
 * when a spring-forward skips it (02:30 on a night the clock jumps from 02:00 to 03:00), at the end
 * of the gap, the first minute the clock shows past it.
 */
function openingInstants(timeZone: string, year: number, month: number, day: number, hhmm: string): number[] {
  const wall = Date.UTC(year, month - 1, day, Number(hhmm.slice(0, 2)), Number(hhmm.slice(3, 5)));
  const offsets = [offsetMs(timeZone, wall - DAY_MS), offsetMs(timeZone, wall + DAY_MS)];
  const [earliest, latest] = [wall - Math.max(...offsets), wall - Math.min(...offsets)];
  const shown = [...new Set([earliest, latest])].filter((at) => at + offsetMs(timeZone, at) === wall);
  if (shown.length > 0) return shown;
  // Skipped: the gap ended between the two candidates. Zone changes fall on whole minutes: the
  // first minute at the later offset.
  const after = offsetMs(timeZone, latest);
  let [lo, hi] = [earliest, latest];
  while (hi - lo > 60_000) {
    const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
    if (offsetMs(timeZone, mid) === after) hi = mid;
    else lo = mid;
  }
  return [hi];
}

/** Whether the team is in. Business hours switched off means always open. */
export function isOpen(settings: Pick<Settings, 'businessHours'>, now: Date): boolean {
  const hours = settings.businessHours;
  if (!hours.enabled) return true;
  const w = wallClock(hours.timeZone, now.getTime());
  const minute = w.hour * 60 + w.minute;
  return intervalsOn(hours, w.year, w.month, w.day).some((i) => minutesOf(i.open) <= minute && minute < minutesOf(i.close));
}

/** When the team is next in: `now` when open, undefined when no opening comes within a year. */
export function nextOpening(settings: Pick<Settings, 'businessHours'>, now: Date): Date | undefined {
  if (isOpen(settings, now)) return now;
  const hours = settings.businessHours;
  const today = wallClock(hours.timeZone, now.getTime());
  for (let offset = 0; offset < LOOKAHEAD_DAYS; offset++) {
    // Date.UTC normalises day overflow, so this walks calendar dates, not 24-hour steps.
    const date = new Date(Date.UTC(today.year, today.month - 1, today.day + offset));
    const [y, m, d] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
    const openings = intervalsOn(hours, y, m, d)
      .flatMap((interval) => openingInstants(hours.timeZone, y, m, d, interval.open))
      .sort((a, b) => a - b);
    // An interval that lies wholly in a spring-forward gap never opens that day.
    const at = openings.find((instant) => instant > now.getTime() && isOpen(settings, new Date(instant)));
    if (at !== undefined) return new Date(at);
  }
  return undefined;
}

/** "today at 09:00 (Europe/Paris)", "tomorrow at …", "on Monday 5 January at …": for `{{nextOpen}}`. */
export function describeOpening(settings: Pick<Settings, 'businessHours'>, at: Date | undefined, now: Date): string {
  if (!at) return 'as soon as possible';
  const timeZone = settings.businessHours.timeZone;
  const time = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(at);
  const a = wallClock(timeZone, at.getTime());
  const n = wallClock(timeZone, now.getTime());
  const days = Math.round((Date.UTC(a.year, a.month - 1, a.day) - Date.UTC(n.year, n.month - 1, n.day)) / 86_400_000);
  const day =
    days === 0
      ? 'today'
      : days === 1
        ? 'tomorrow'
        : `on ${new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'long', day: 'numeric', month: 'long' }).format(at)}`;
  return `${day} at ${time} (${timeZone})`;
}

/**
 * What a website widget shows before a chat starts (as Chatwoot's "we are away" and Amazon
 * Connect's hours of operation): whether the team is in, when it is next, and whether a visitor
 * starting a chat now is asked for an email to be answered at.
 */
export function availability(settings: Pick<Settings, 'businessHours' | 'autoresponder'>, now: Date): { open: boolean; nextOpenAt: string | null; nextOpen: string | null; asksForEmail: boolean } {
  if (isOpen(settings, now)) return { open: true, nextOpenAt: null, nextOpen: null, asksForEmail: false };
  const at = nextOpening(settings, now);
  return {
    open: false,
    nextOpenAt: at?.toISOString() ?? null,
    nextOpen: at ? describeOpening(settings, at, now) : null,
    asksForEmail: settings.autoresponder.enabled && settings.autoresponder.askForEmail,
  };
}
