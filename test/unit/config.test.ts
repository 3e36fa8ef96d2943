/** Runtime settings read from the environment: a value that is not one is refused, never replaced by the default. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { config } from '../../src/config';

afterEach(() => vi.unstubAllEnvs());

describe('config.presenceGraceSeconds', () => {
  it('is 30 unless set, and takes 0 (away at once) or any number of seconds', () => {
    expect(config.presenceGraceSeconds).toBe(30);
    vi.stubEnv('CONVERSA_PRESENCE_GRACE_SECONDS', '0');
    expect(config.presenceGraceSeconds).toBe(0);
    vi.stubEnv('CONVERSA_PRESENCE_GRACE_SECONDS', '90');
    expect(config.presenceGraceSeconds).toBe(90);
  });

  it.each(['thirty', '-5'])('refuses %s rather than taking 30 silently', (value) => {
    vi.stubEnv('CONVERSA_PRESENCE_GRACE_SECONDS', value);
    expect(() => config.presenceGraceSeconds).toThrow(/CONVERSA_PRESENCE_GRACE_SECONDS must be a number of seconds/);
  });
});

describe('config.retryBaseSeconds', () => {
  it('is 2 unless set', () => {
    expect(config.retryBaseSeconds).toBe(2);
    vi.stubEnv('CONVERSA_RETRY_BASE_SECONDS', '0.5');
    expect(config.retryBaseSeconds).toBe(0.5);
  });
});

describe('config.uploadsPerHour', () => {
  it('is 60 a visitor and 600 an agent unless set', () => {
    expect(config.uploadsPerHour).toEqual({ visitor: 60, agent: 600 });
    vi.stubEnv('CONVERSA_VISITOR_UPLOADS_PER_HOUR', '5');
    vi.stubEnv('CONVERSA_AGENT_UPLOADS_PER_HOUR', '50');
    expect(config.uploadsPerHour).toEqual({ visitor: 5, agent: 50 });
  });

  it.each(['0', '2.5', 'many'])('refuses %s rather than taking the default silently', (value) => {
    vi.stubEnv('CONVERSA_VISITOR_UPLOADS_PER_HOUR', value);
    expect(() => config.uploadsPerHour).toThrow(/CONVERSA_VISITOR_UPLOADS_PER_HOUR must be a whole number of upload tickets/);
  });
});
