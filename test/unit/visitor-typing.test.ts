/** Which of a web visitor's typing signals go out to the agents, on a clock the test sets. */
import { describe, expect, it } from 'vitest';

process.env.TABLE_NAME = 'conversa-test';
process.env.AWS_REGION = 'us-east-1';
const { TYPING_INTERVAL_MS, typingPasses } = await import('../../src/domain/realtime');

const I = TYPING_INTERVAL_MS;

describe('typingPasses', () => {
  it("lets through every signal of the widget's cadence (on every 3 s while typing, off 2 s after the last key)", () => {
    const visitor = `v-${crypto.randomUUID()}`;
    // Types from 0 to 4 s (on at 0 and 3 s), pauses, off at 6 s; types again at 6.1 s, off at 8.1 s.
    const script: [number, 'on' | 'off'][] = [[0, 'on'], [3_000, 'on'], [6_000, 'off'], [6_100, 'on'], [8_100, 'off']];
    for (const [at, state] of script) expect(typingPasses(visitor, state, 1_000_000 + at), `${state} at ${at}`).toBe(true);
  });

  it('drops an on within the interval of the last on sent, and an off repeated within it', () => {
    const visitor = `v-${crypto.randomUUID()}`;
    const t = 2_000_000;
    expect(typingPasses(visitor, 'on', t)).toBe(true);
    expect(typingPasses(visitor, 'on', t + 1)).toBe(false);
    expect(typingPasses(visitor, 'on', t + I - 1)).toBe(false);
    // The stop goes at once: the console's sign must not outlive the typing.
    expect(typingPasses(visitor, 'off', t + 10)).toBe(true);
    expect(typingPasses(visitor, 'off', t + 11)).toBe(false);
    // On and off alternating: the on waits for the interval, the off for an on sent.
    expect(typingPasses(visitor, 'on', t + 12)).toBe(false);
    expect(typingPasses(visitor, 'off', t + 13)).toBe(false);
    expect(typingPasses(visitor, 'on', t + I)).toBe(true);
    expect(typingPasses(visitor, 'on', t + I + 1)).toBe(false);
    // Repeated offs: one per interval.
    expect(typingPasses(visitor, 'off', t + I + 2)).toBe(true);
    expect(typingPasses(visitor, 'off', t + 2 * I + 1)).toBe(false);
    expect(typingPasses(visitor, 'off', t + 2 * I + 2)).toBe(true);
  });

  it('limits each visitor on their own', () => {
    const [one, two] = [`v-${crypto.randomUUID()}`, `v-${crypto.randomUUID()}`];
    const t = 3_000_000;
    expect(typingPasses(one, 'on', t)).toBe(true);
    expect(typingPasses(two, 'on', t + 1)).toBe(true);
    expect(typingPasses(one, 'on', t + 2)).toBe(false);
    // Many other typers later (their entries push the stale ones out) change nothing for them.
    for (let i = 0; i < 100; i++) expect(typingPasses(`v-${i}-${crypto.randomUUID()}`, 'on', t + I + i)).toBe(true);
    expect(typingPasses(two, 'on', t + I + 200)).toBe(true);
    expect(typingPasses(two, 'on', t + I + 201)).toBe(false);
  });
});
