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
