import { describe, expect, it } from 'vitest';
import { availability, describeOpening, isOpen, nextOpening, zonedTimeToInstant } from '../../src/domain/business-hours';
import { SettingsSchema, defaultSettings, type Settings } from '../../src/domain/settings';

const nineToFive = [{ open: '09:00', close: '17:00' }];

function hours(overrides: Partial<Settings['businessHours']> = {}): Pick<Settings, 'businessHours'> {
  return {
    businessHours: {
      enabled: true,
      timeZone: 'Europe/Berlin',
      weekly: { mon: nineToFive, tue: nineToFive, wed: nineToFive, thu: nineToFive, fri: nineToFive, sat: [], sun: [] },
      holidays: [],
      ...overrides,
    },
  };
}

describe('business hours', () => {
  it('is always open when switched off', () => {
    const settings = hours({ enabled: false, weekly: {} });
    const now = new Date('2026-01-04T03:00:00Z');
    expect(isOpen(settings, now)).toBe(true);
    expect(nextOpening(settings, now)).toEqual(now);
  });

  it('reads intervals on the zone\'s wall clock, open inclusive and close exclusive', () => {
    const settings = hours();
    // Tuesday 2026-01-06; Berlin is UTC+1 in winter
    expect(isOpen(settings, new Date('2026-01-06T07:59:00Z'))).toBe(false);
    expect(isOpen(settings, new Date('2026-01-06T08:00:00Z'))).toBe(true);
    expect(isOpen(settings, new Date('2026-01-06T15:59:00Z'))).toBe(true);
    expect(isOpen(settings, new Date('2026-01-06T16:00:00Z'))).toBe(false);
  });

  it('supports several intervals a day (a lunch break)', () => {
    const settings = hours({ timeZone: 'UTC', weekly: { wed: [{ open: '13:00', close: '17:00' }, { open: '08:00', close: '12:00' }] } });
    const lunch = new Date('2026-01-07T12:30:00Z');
    expect(isOpen(settings, lunch)).toBe(false);
    expect(nextOpening(settings, lunch)).toEqual(new Date('2026-01-07T13:00:00Z'));
  });

  it('skips the weekend: Friday evening opens again on Monday morning', () => {
    const settings = hours();
    const friday = new Date('2026-01-09T18:00:00Z');
    expect(nextOpening(settings, friday)).toEqual(new Date('2026-01-12T08:00:00Z'));
  });

  it('skips holidays (dates in the business\'s zone)', () => {
    const settings = hours({ holidays: ['2026-01-12', '2026-01-13'] });
    const friday = new Date('2026-01-09T18:00:00Z');
    expect(isOpen(settings, new Date('2026-01-12T10:00:00Z'))).toBe(false);
    expect(nextOpening(settings, friday)).toEqual(new Date('2026-01-14T08:00:00Z'));
  });

  it('keeps 09:00 local across the spring-forward change (offset +1 → +2)', () => {
    const settings = hours();
    // Berlin switches on Sunday 2026-03-29: Friday 09:00 is 08:00Z, Monday 09:00 is 07:00Z
    expect(isOpen(settings, new Date('2026-03-27T08:30:00Z'))).toBe(true);
    expect(nextOpening(settings, new Date('2026-03-27T17:00:00Z'))).toEqual(new Date('2026-03-30T07:00:00Z'));
    expect(isOpen(settings, new Date('2026-03-30T07:30:00Z'))).toBe(true);
    expect(isOpen(settings, new Date('2026-03-30T06:30:00Z'))).toBe(false);
  });

  it('keeps 09:00 local across the fall-back change (offset +2 → +1), here in New York', () => {
    const settings = hours({ timeZone: 'America/New_York' });
    // New York falls back on Sunday 2026-11-01: Friday 09:00 is 13:00Z, Monday 09:00 is 14:00Z
    expect(nextOpening(settings, new Date('2026-10-30T22:00:00Z'))).toEqual(new Date('2026-11-02T14:00:00Z'));
  });

  it('opens just after a spring-forward gap when the opening time does not exist that night', () => {
    const settings = hours({ weekly: { sun: [{ open: '02:30', close: '05:00' }] } });
    // 02:30 does not exist in Berlin on 2026-03-29; the clock jumps from 02:00 to 03:00 (01:00Z)
    const at = nextOpening(settings, new Date('2026-03-28T12:00:00Z'))!;
    expect(at.getTime()).toBeGreaterThanOrEqual(new Date('2026-03-29T01:00:00Z').getTime());
    expect(at.getTime()).toBeLessThanOrEqual(new Date('2026-03-29T01:30:00Z').getTime());
    expect(isOpen(settings, new Date('2026-03-29T02:00:00Z'))).toBe(true);
  });

  it('opens when a spring-forward gap ends, as isOpen reads it, also for an interval that closes within the hour after it', () => {
    // 02:30 does not exist in Berlin on Sunday 2026-03-29: the clock shows 03:00 at 01:00Z, past the opening
    const settings = hours({ weekly: { sun: [{ open: '02:30', close: '03:15' }] } });
    expect(isOpen(settings, new Date('2026-03-29T01:00:00Z'))).toBe(true);
    expect(nextOpening(settings, new Date('2026-03-28T12:00:00Z'))).toEqual(new Date('2026-03-29T01:00:00Z'));
  });

  it('opens again when a fall-back shows its opening time a second time', () => {
    // Berlin on Sunday 2026-10-25 shows 02:00–03:00 twice; at 01:10Z it is 02:10 for the second time
    const settings = hours({ weekly: { sun: [{ open: '02:30', close: '03:30' }] } });
    expect(isOpen(settings, new Date('2026-10-25T01:10:00Z'))).toBe(false);
    expect(isOpen(settings, new Date('2026-10-25T01:30:00Z'))).toBe(true);
    expect(nextOpening(settings, new Date('2026-10-25T01:10:00Z'))).toEqual(new Date('2026-10-25T01:30:00Z'));
  });

  it('names as the next opening the first minute isOpen reads open, around every change of the clock', () => {
    const night = [{ open: '00:00', close: '06:00' }, { open: '22:00', close: '24:00' }];
    const cases = [
      { timeZone: 'America/New_York', days: ['2026-03-08', '2026-11-01'], weekly: { sun: [{ open: '01:30', close: '02:45' }], mon: [{ open: '09:00', close: '17:00' }] } },
      { timeZone: 'America/New_York', days: ['2026-03-08', '2026-11-01'], weekly: { sat: night, sun: night, mon: night } },
      { timeZone: 'Europe/Berlin', days: ['2026-03-29', '2026-10-25'], weekly: { sun: [{ open: '02:15', close: '02:45' }, { open: '02:50', close: '03:10' }], mon: [{ open: '08:00', close: '12:00' }] } },
      { timeZone: 'Australia/Lord_Howe', days: ['2026-10-04', '2026-04-05'], weekly: { sun: [{ open: '01:45', close: '02:20' }], mon: [{ open: '09:00', close: '10:00' }] } },
    ];
    for (const { timeZone, days, weekly } of cases) {
      const settings = hours({ timeZone, weekly });
      for (const day of days) {
        // A day either side, every 40 minutes (17 s past the minute); openings and changes of the clock fall on fives of minutes
        for (let now = Date.parse(`${day}T00:00:17Z`) - 86_400_000; now < Date.parse(`${day}T00:00:17Z`) + 86_400_000; now += 40 * 60_000) {
          let first = Math.ceil(now / 300_000) * 300_000;
          while (!isOpen(settings, new Date(first))) first += 300_000;
          const expected = isOpen(settings, new Date(now)) ? now : first;
          expect(nextOpening(settings, new Date(now))?.getTime(), `${timeZone} at ${new Date(now).toISOString()}`).toBe(expected);
        }
      }
    }
  });

  it('gives up (undefined) when no day ever opens', () => {
    expect(nextOpening(hours({ weekly: {} }), new Date('2026-01-06T10:00:00Z'))).toBeUndefined();
  });

  it('converts zone wall times to instants', () => {
    expect(zonedTimeToInstant('Asia/Kolkata', 2026, 1, 6, 9, 0)).toEqual(new Date('2026-01-06T03:30:00Z'));
    expect(zonedTimeToInstant('UTC', 2026, 12, 31, 23, 59)).toEqual(new Date('2026-12-31T23:59:00Z'));
  });

  it('describes the next opening for {{nextOpen}}', () => {
    const settings = hours();
    const friday = new Date('2026-01-09T18:00:00Z');
    expect(describeOpening(settings, nextOpening(settings, friday), friday)).toBe('on Monday 12 January at 09:00 (Europe/Berlin)');
    const monday = new Date('2026-01-12T06:00:00Z');
    expect(describeOpening(settings, nextOpening(settings, monday), monday)).toBe('today at 09:00 (Europe/Berlin)');
    const tuesdayEvening = new Date('2026-01-13T18:00:00Z');
    expect(describeOpening(settings, nextOpening(settings, tuesdayEvening), tuesdayEvening)).toBe('tomorrow at 09:00 (Europe/Berlin)');
    expect(describeOpening(settings, undefined, monday)).toBe('as soon as possible');
  });

  /** The zone's wall clock at an instant, as `YYYY-MM-DD HH:MM:SS`. */
  const wallAt = (timeZone: string, at: Date) => new Intl.DateTimeFormat('sv-SE', { timeZone, dateStyle: 'short', timeStyle: 'medium' }).format(at);

  it.each([
    // [zone, wall time asked, instant, what the zone's clock shows then]
    ['America/Havana', '2025-03-09 00:00:00', '2025-03-09T05:00:00Z', '2025-03-09 01:00:00', 'gap at midnight, behind UTC'],
    ['America/New_York', '2025-03-09 02:30:00', '2025-03-09T07:30:00Z', '2025-03-09 03:30:00', 'gap, behind UTC'],
    ['America/Santiago', '2025-09-07 00:00:00', '2025-09-07T04:00:00Z', '2025-09-07 01:00:00', 'gap at midnight, southern hemisphere'],
    ['America/Santiago', '2025-09-06 23:59:30', '2025-09-07T03:59:30Z', '2025-09-06 23:59:30', 'the second before that gap'],
    ['Europe/Berlin', '2026-03-29 02:30:00', '2026-03-29T01:30:00Z', '2026-03-29 03:30:00', 'gap, ahead of UTC'],
    ['Australia/Lord_Howe', '2025-10-05 02:15:00', '2025-10-04T15:45:00Z', '2025-10-05 02:45:00', 'a 30-minute gap'],
    ['America/New_York', '2025-06-10 09:00:00', '2025-06-10T13:00:00Z', '2025-06-10 09:00:00', 'an ordinary day'],
    ['America/New_York', '2025-11-02 01:30:00', '2025-11-02T05:30:00Z', '2025-11-02 01:30:00', 'fall-back: the first 01:30'],
    ['Europe/Berlin', '2025-10-26 02:30:00', '2025-10-26T00:30:00Z', '2025-10-26 02:30:00', 'fall-back ahead of UTC: the first 02:30'],
    ['America/New_York', '2025-11-02 03:00:00', '2025-11-02T08:00:00Z', '2025-11-02 03:00:00', 'after the fall-back'],
  ])('converts %s %s to %s, shown as %s (%s)', (timeZone, wall, instant, shown) => {
    const [y, mo, d, h, mi, s] = wall.split(/[- :]/).map(Number) as [number, number, number, number, number, number];
    const at = zonedTimeToInstant(timeZone, y, mo, d, h, mi, s);
    expect(at).toEqual(new Date(instant));
    expect(wallAt(timeZone, at)).toBe(shown);
  });

  it.each([
    ['America/Havana', '2025-03-09'],
    ['America/New_York', '2025-03-09'],
    ['America/Santiago', '2025-09-07'],
    ['America/Sao_Paulo', '2018-11-04'],
    ['Europe/Berlin', '2026-03-29'],
    ['Australia/Lord_Howe', '2025-10-05'],
    ['America/New_York', '2025-11-02'],
    ['America/Santiago', '2025-04-06'],
  ])('never lands before the wall time asked, every 5 minutes of %s %s', (timeZone, date) => {
    const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
    for (let minute = 0; minute < 1440; minute += 5) {
      const asked = `${date} ${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}:00`;
      const shown = wallAt(timeZone, zonedTimeToInstant(timeZone, y, mo, d, Math.floor(minute / 60), minute % 60));
      // Shown as asked, or (in a gap) at most an hour later.
      expect(shown >= asked, `${asked} shown as ${shown}`).toBe(true);
      expect(Date.parse(shown.replace(' ', 'T') + 'Z') - Date.parse(asked.replace(' ', 'T') + 'Z')).toBeLessThanOrEqual(3_600_000);
    }
  });

  it.each<[string, Settings['businessHours']['weekly'], string, string, string]>([
    ['America/Havana', { sun: [{ open: '00:00', close: '12:00' }] }, '2025-03-09T01:00:00Z', '2025-03-09T05:00:00Z', 'tomorrow at 01:00 (America/Havana)'],
    // 02:30 is skipped: the clock shows 03:00, past it, at 07:00Z, and isOpen reads the interval open from then
    ['America/New_York', { sun: [{ open: '02:30', close: '05:00' }] }, '2025-03-09T05:00:00Z', '2025-03-09T07:00:00Z', 'today at 03:00 (America/New_York)'],
    // Saturday 23:59:30: the Sunday that opens at (the missing) midnight is not skipped for the next one
    ['America/Santiago', { sun: [{ open: '00:00', close: '12:00' }] }, '2025-09-07T03:59:30Z', '2025-09-07T04:00:00Z', 'tomorrow at 01:00 (America/Santiago)'],
    // An interval wholly inside the gap never opens that day
    ['America/Havana', { sun: [{ open: '00:00', close: '00:30' }] }, '2025-03-08T12:00:00Z', '2025-03-16T04:00:00Z', 'on Sunday 16 March at 00:00 (America/Havana)'],
  ])('opens after a spring-forward gap in %s', (timeZone, weekly, now, opening, described) => {
    const settings = hours({ timeZone, weekly });
    const at = nextOpening(settings, new Date(now));
    expect(at).toEqual(new Date(opening));
    expect(isOpen(settings, at!)).toBe(true);
    expect(describeOpening(settings, at, new Date(now))).toBe(described);
  });

  it('accepts 24:00 as a closing time only', () => {
    const valid = (interval: { open: string; close: string }) => {
      const settings = defaultSettings();
      return SettingsSchema.safeParse({ ...settings, businessHours: { ...settings.businessHours, weekly: { mon: [interval] } } }).success;
    };
    expect(valid({ open: '00:00', close: '24:00' })).toBe(true);
    expect(valid({ open: '22:00', close: '24:00' })).toBe(true);
    expect(valid({ open: '09:00', close: '23:59' })).toBe(true);
    expect(valid({ open: '24:00', close: '24:00' })).toBe(false);
    expect(valid({ open: '24:00', close: '23:00' })).toBe(false);
    expect(valid({ open: '09:00', close: '24:30' })).toBe(false);
    expect(valid({ open: '09:00', close: '25:00' })).toBe(false);
  });

  it('is open all day, to the last second, with 00:00–24:00 (a 25-hour fall-back day included)', () => {
    const always = [{ open: '00:00', close: '24:00' }];
    const settings = hours({ timeZone: 'America/New_York', weekly: { sun: always, mon: always, tue: always, wed: always, thu: always, fri: always, sat: always } });
    // Saturday 00:00 EDT to Monday 00:00 EST, across the fall-back on Sunday 2025-11-02, every 30 s
    for (let t = Date.parse('2025-11-01T04:00:00Z'); t < Date.parse('2025-11-03T05:00:00Z'); t += 30_000) {
      expect(isOpen(settings, new Date(t)), new Date(t).toISOString()).toBe(true);
    }
    expect(nextOpening(settings, new Date('2025-11-02T04:59:59Z'))).toEqual(new Date('2025-11-02T04:59:59Z'));
  });

  it('stays open through midnight with 22:00–24:00 and the next day\'s 00:00–06:00', () => {
    const settings = hours({ timeZone: 'UTC', weekly: { mon: [{ open: '22:00', close: '24:00' }], tue: [{ open: '00:00', close: '06:00' }] } });
    // Monday 2026-01-05
    expect(isOpen(settings, new Date('2026-01-05T21:59:59Z'))).toBe(false);
    expect(nextOpening(settings, new Date('2026-01-05T21:00:00Z'))).toEqual(new Date('2026-01-05T22:00:00Z'));
    for (const at of ['2026-01-05T22:00:00Z', '2026-01-05T23:59:00Z', '2026-01-05T23:59:59Z', '2026-01-06T00:00:00Z', '2026-01-06T05:59:59Z']) {
      expect(isOpen(settings, new Date(at)), at).toBe(true);
    }
    expect(isOpen(settings, new Date('2026-01-06T06:00:00Z'))).toBe(false);
    expect(nextOpening(settings, new Date('2026-01-06T06:00:00Z'))).toEqual(new Date('2026-01-12T22:00:00Z'));
  });
});

describe('availability', () => {
  const autoresponder = defaultSettings().autoresponder;

  it('says when a closed team is back and that a chat now is asked for an email', () => {
    // Friday 2026-01-09, 18:00 in Berlin: back on Monday at 09:00 local (08:00 UTC).
    const now = new Date('2026-01-09T17:00:00Z');
    expect(availability({ ...hours(), autoresponder }, now)).toEqual({
      open: false,
      nextOpenAt: '2026-01-12T08:00:00.000Z',
      nextOpen: describeOpening(hours(), new Date('2026-01-12T08:00:00Z'), now),
      asksForEmail: true,
    });
    expect(availability({ ...hours(), autoresponder: { ...autoresponder, askForEmail: false } }, now).asksForEmail).toBe(false);
    // The autoresponder switched off asks for nothing.
    expect(availability({ ...hours(), autoresponder: { ...autoresponder, enabled: false } }, now).asksForEmail).toBe(false);
  });

  it('is open with nothing to say while the team is in, and null when it never opens', () => {
    expect(availability({ ...hours(), autoresponder }, new Date('2026-01-09T09:00:00Z'))).toEqual({ open: true, nextOpenAt: null, nextOpen: null, asksForEmail: false });
    expect(availability({ ...hours({ weekly: {} }), autoresponder }, new Date('2026-01-09T09:00:00Z'))).toMatchObject({ open: false, nextOpenAt: null, nextOpen: null });
  });
});
