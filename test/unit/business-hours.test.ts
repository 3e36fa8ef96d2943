import { describe, expect, it } from 'vitest';
import { describeOpening, isOpen, nextOpening, zonedTimeToInstant } from '../../src/domain/business-hours';
import type { Settings } from '../../src/domain/settings';

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
});
