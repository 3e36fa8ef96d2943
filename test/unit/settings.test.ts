/** Settings defaults taken from the environment stay valid settings. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultSettings, mergeSettings, SettingsSchema } from '../../src/domain/settings';

afterEach(() => vi.unstubAllEnvs());

describe('default settings', () => {
  it('keeps timers set to "at once", fractions or past the bounds valid, so that later saves still pass', () => {
    // Prepare
    vi.stubEnv('CONVERSA_EMAIL_FALLBACK_DELAY_SECONDS', '0.5');
    vi.stubEnv('CONVERSA_AUTO_RESOLVE_AFTER_SECONDS', '0');
    vi.stubEnv('CONVERSA_REENGAGE_AFTER_SECONDS', String(40 * 86400));

    // Act
    const defaults = defaultSettings();

    // Assess
    expect(defaults.timers).toEqual({ emailFallbackDelaySeconds: 1, autoResolveAfterSeconds: 1, reengageAfterSeconds: 30 * 86400 });
    expect(SettingsSchema.safeParse(mergeSettings(defaults, { capacity: { live: 2 } })).success).toBe(true);
  });
});

describe('a settings save', () => {
  it('merges the keys a section names and replaces each one whole: the week sent is the whole week', () => {
    // Prepare: Monday to Friday 09–17 (the defaults), in Paris
    const base = mergeSettings(defaultSettings(), { businessHours: { timeZone: 'Europe/Paris' } });
    const saturdays = [{ open: '10:00', close: '14:00' }];

    // Act: clients send the week they want ("open only on Saturdays"), as GET returned it or not
    const saved = mergeSettings(base, { businessHours: { weekly: { sat: saturdays } } });

    // Assess: a day left out is closed; the section's other keys stay
    expect(saved.businessHours.weekly).toEqual({ sat: saturdays });
    expect(saved.businessHours).toMatchObject({ timeZone: 'Europe/Paris', enabled: false, holidays: [] });
  });
});

describe('the hand-off hold', () => {
  it('is 15 minutes for a workspace whose settings were saved before it existed, and a later save keeps them valid', () => {
    // Prepare: settings as stored before the routing section
    const { routing: _, ...older } = defaultSettings();

    // Act: what reading them gives (src/domain/settings.ts readSettings), then a save of another section
    const read = mergeSettings(defaultSettings(), older);
    const saved = SettingsSchema.safeParse(mergeSettings(read, { capacity: { live: 4 } }));

    // Assess
    expect(read.routing).toEqual({ handoffHoldMinutes: 15 });
    expect(saved.success).toBe(true);
  });
});

describe('the business hours time zone', () => {
  const zoneSaved = (timeZone: string) => SettingsSchema.safeParse(mergeSettings(defaultSettings(), { businessHours: { timeZone } }));

  it("is kept as the zone is spelled, whatever the case it was typed in (customers are told it: 'back at 09:00 (Europe/Paris)')", () => {
    expect(zoneSaved('europe/paris').data?.businessHours.timeZone).toBe('Europe/Paris');
    expect(zoneSaved('AMERICA/NEW_YORK').data?.businessHours.timeZone).toBe('America/New_York');
    expect(zoneSaved('utc').data?.businessHours.timeZone).toBe('UTC');
    // Not swapped for the runtime's older alias, nor for the zone an alias stands for.
    expect(zoneSaved('Asia/Kolkata').data?.businessHours.timeZone).toBe('Asia/Kolkata');
    expect(zoneSaved('US/Eastern').data?.businessHours.timeZone).toBe('US/Eastern');
  });

  it('refuses a name that is no zone, without throwing', () => {
    for (const zone of ['Mars/Base', '', 'UTC+3', '+05:00', 'Europe/Paris ']) expect(zoneSaved(zone).success, zone).toBe(false);
  });
});
