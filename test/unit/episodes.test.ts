import { describe, expect, it } from 'vitest';
import { REOPEN_WINDOW_MS, startsNewEpisode } from '../../src/domain/episodes';

const resolvedAt = '2026-11-02T10:00:00.000Z';
const after = (ms: number) => new Date(Date.parse(resolvedAt) + ms).toISOString();

describe('startsNewEpisode', () => {
  it('reopens the same episode within the reopen window, and starts a new one after it', () => {
    const c = { status: 'resolved' as const, resolvedAt };

    expect(startsNewEpisode(c, after(REOPEN_WINDOW_MS))).toBe(false);
    expect(startsNewEpisode(c, after(REOPEN_WINDOW_MS + 1))).toBe(true);
    expect(startsNewEpisode({ status: 'open' }, after(REOPEN_WINDOW_MS + 1))).toBe(false);
  });

  it('starts a new episode for an answer to a proactive message sent since the resolution, however soon', () => {
    // The team started this contact: it is not the resolved issue coming back.
    expect(startsNewEpisode({ status: 'resolved', resolvedAt, lastUnpromptedAt: after(60_000) }, after(120_000))).toBe(true);
    // A campaign sent before the resolution was part of the issue it closed.
    expect(startsNewEpisode({ status: 'resolved', resolvedAt, lastUnpromptedAt: after(-60_000) }, after(120_000))).toBe(false);
    // Not resolved: whatever the team sent, the customer is still on the same issue.
    expect(startsNewEpisode({ status: 'snoozed', resolvedAt: undefined, lastUnpromptedAt: after(60_000) }, after(120_000))).toBe(false);
  });
});
