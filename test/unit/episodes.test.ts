import { describe, expect, it } from 'vitest';
import { closesOwnEpisode, newEpisode, REOPEN_WINDOW_MS, startsNewEpisode } from '../../src/domain/episodes';

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

describe('newEpisode', () => {
  const base = { id: 'c1', channel: 'sms', status: 'open', contact: { id: 'k1' }, assigneeId: 'a1', unreadCount: 0, handle: '+1', version: 3 } as const;
  const at = after(3_600_000);

  it('starts the episode of a conversation the team started with the customer’s first message, keeping what the team wrote as unprompted', () => {
    const c = { ...base, createdAt: resolvedAt, updatedAt: resolvedAt, lastMessageAt: resolvedAt, teamStarted: true, firstReplyAt: after(60_000) };

    const episode = newEpisode(c, at);

    // No first reply yet, and no longer out of the reports; the text before it was still written (no greeting).
    expect(episode).toMatchObject({ reportStartedAt: at, firstReplyAt: undefined, teamStarted: undefined, reopenCount: 0, lastUnpromptedAt: after(60_000) });
    expect(closesOwnEpisode(c)).toBe(false);
    expect(startsNewEpisode(c, at)).toBe(true);
  });

  it('brings a conversation whose episode was moved away back into the reports, closing nothing of its own', () => {
    const c = { ...base, status: 'resolved' as const, resolvedAt, createdAt: resolvedAt, updatedAt: resolvedAt, lastMessageAt: resolvedAt, movedTo: 'c2' };

    expect(newEpisode(c, at)).toMatchObject({ movedTo: undefined, reportStartedAt: at });
    expect(newEpisode(c, at)).not.toHaveProperty('lastUnpromptedAt');
    expect(closesOwnEpisode(c)).toBe(false);
    expect(closesOwnEpisode({})).toBe(true);
  });
});
