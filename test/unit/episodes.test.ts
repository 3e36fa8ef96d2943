import { describe, expect, it } from 'vitest';
import { closedEpisodeItem, closesOwnEpisode, frozenEpisode, movedEpisode, newEpisode, reopenedByAgent, REOPEN_WINDOW_MS, startsNewEpisode, withMovedEpisode, type MovedEpisode } from '../../src/domain/episodes';
import { withStatus } from '../../src/domain/conversations';
import type { ConversationRecord } from '../../src/store/conversations';

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

describe('withMovedEpisode', () => {
  const base = { id: 'c2', channel: 'sms', contact: { id: 'k1' }, assigneeId: 'a1', unreadCount: 0, handle: '+1', version: 3 } as const;
  const weeksAgo = '2026-10-01T10:00:00.000Z';
  const movedStart = after(7 * 86_400_000);
  const episode = { reportStartedAt: movedStart, firstReplyAt: after(7 * 86_400_000 + 600_000), reopenCount: undefined, resolvedBy: undefined };
  const dated = (c: object) => ({ ...base, createdAt: weeksAgo, updatedAt: weeksAgo, lastMessageAt: weeksAgo, ...c }) as ConversationRecord;

  it('gives the moved issue whole to a resolved conversation, whose own episode is closed and frozen', () => {
    const resolved = dated({ status: 'resolved', resolvedAt, firstReplyAt: after(-60_000), reopenCount: 2, resolvedBy: 'a1', csat: { score: 5 } });

    // Its own first reply, reopen count and resolver were the closed episode's; its undated rating is dated by its resolution.
    expect(withMovedEpisode(resolved, episode)).toMatchObject({ reportStartedAt: movedStart, firstReplyAt: episode.firstReplyAt, reopenCount: 0, resolvedBy: undefined, csat: { score: 5, at: resolvedAt } });
    expect(withMovedEpisode(resolved, { ...episode, firstReplyAt: undefined, reopenCount: 1, resolvedBy: 'a9' })).toMatchObject({ firstReplyAt: undefined, reopenCount: 1, resolvedBy: 'a9' });
    expect(closesOwnEpisode(resolved)).toBe(true);
    // Resolved after its own episode went elsewhere: nothing of its own to freeze.
    expect(withMovedEpisode({ ...resolved, movedTo: 'c1' }, episode)).toMatchObject({ reportStartedAt: movedStart, movedTo: undefined });
    expect(closesOwnEpisode({ ...resolved, movedTo: 'c1' })).toBe(false);
    // Resolved with this very episode (taken before the move was retried): counted already, left as it is.
    expect(withMovedEpisode({ ...resolved, reportStartedAt: movedStart }, episode)).toBeUndefined();
  });

  it('folds the moved issue into a live episode of the conversation’s own, from the earlier start and first reply', () => {
    const later = after(7 * 86_400_000 + 300_000);
    const live = dated({ status: 'open', reportStartedAt: later, firstReplyAt: after(7 * 86_400_000 + 900_000), reopenCount: 1, resolvedBy: 'a2' });

    const folded = withMovedEpisode(live, episode);

    expect(folded).toMatchObject({ reportStartedAt: movedStart, firstReplyAt: episode.firstReplyAt, reopenCount: 1, resolvedBy: 'a2' });
    // Applied again (a retried or concurrent move), it changes nothing: the reopen count is not added up.
    expect(withMovedEpisode({ ...live, ...folded }, episode)).toBeUndefined();
    // Its own start and reply earlier: kept.
    const earlier = { ...live, reportStartedAt: after(86_400_000), firstReplyAt: after(86_400_000 + 60_000) };
    expect(withMovedEpisode(earlier, { ...episode, reopenCount: 3, resolvedBy: 'a9' })).toEqual({ reportStartedAt: earlier.reportStartedAt, firstReplyAt: earlier.firstReplyAt, reopenCount: 3, resolvedBy: 'a2' });
    // Reopened after a resolution that was nobody's (auto-resolved in the queue), folded into an episode
    // not reopened: nobody's still, not the resolver of an older episode there, whose resolution held.
    const unreopened = { ...live, reopenCount: 0 };
    expect(withMovedEpisode(unreopened, { ...episode, reopenCount: 1, resolvedBy: undefined })).toMatchObject({ reopenCount: 1 });
    expect(withMovedEpisode(unreopened, { ...episode, reopenCount: 1, resolvedBy: undefined })!.resolvedBy).toBeUndefined();
  });

  it('gives the moved issue as it is to a conversation made for a move, or whose own episode went elsewhere', () => {
    expect(withMovedEpisode(dated({ status: 'open', teamStarted: true }), episode)).toMatchObject({ ...episode, reopenCount: 0, teamStarted: undefined });
    expect(withMovedEpisode(dated({ status: 'open', movedTo: 'c1', reportStartedAt: after(8 * 86_400_000) }), episode)).toMatchObject({ ...episode, reopenCount: 0, movedTo: undefined });
  });

  // As movedEpisode gives it: no first reply, reopen count or resolver when it has none.
  const unanswered = movedEpisode(dated({ status: 'open', reportStartedAt: movedStart }));
  // The record once it takes the moved episode, as the move writes it.
  const taking = (c: ConversationRecord, moved: MovedEpisode, since?: string): ConversationRecord => ({ ...c, ...withMovedEpisode(c, moved, since) });

  it('gives the moved issue no first reply the team wrote before it began, nor the first reply or reopens of an episode that went elsewhere', () => {
    const teamText = after(7 * 86_400_000 - 600_000);
    const made = dated({ status: 'open', teamStarted: true, firstReplyAt: teamText, reopenCount: 1 });

    // What the team wrote before the issue is no reply to it (it was written: kept as unprompted).
    const taken = taking(made, unanswered);
    // Nor is a reopening of the team's conversation before it.
    expect(taken).toMatchObject({ reportStartedAt: movedStart, lastUnpromptedAt: teamText, reopenCount: 0 });
    expect(taken.firstReplyAt).toBeUndefined();
    // A reply written there after the issue began is its first one, when none came earlier.
    const since = after(7 * 86_400_000 + 60_000);
    expect(taking({ ...made, firstReplyAt: since }, unanswered)).toMatchObject({ firstReplyAt: since });
    expect(taking({ ...made, firstReplyAt: since }, unanswered)).not.toHaveProperty('lastUnpromptedAt');
    expect(taking({ ...made, firstReplyAt: since }, episode)).toMatchObject({ firstReplyAt: since });
    // Its own episode, reopened twice, went elsewhere with its first reply: neither is the moved issue's.
    const left = dated({ status: 'open', movedTo: 'c1', reportStartedAt: after(6 * 86_400_000), firstReplyAt: after(7 * 86_400_000 + 60_000), reopenCount: 2 });
    expect(taking(left, unanswered)).toMatchObject({ reopenCount: 0 });
    expect(taking(left, unanswered).firstReplyAt).toBeUndefined();
    expect(taking(left, { ...unanswered, reopenCount: 1 })).toMatchObject({ reopenCount: 1 });
  });

  it('leaves a rating the conversation was given before taking the moved issue to the episode it was asked about', () => {
    // Rated after the moved issue began, for the episode the move closes (frozen with it).
    const ratedAt = after(7 * 86_400_000 + 120_000);
    const resolved = dated({ status: 'resolved', resolvedAt, csat: { score: 2, at: ratedAt } });

    const taken = withMovedEpisode(resolved, unanswered);

    expect(taken).toMatchObject({ reportStartedAt: movedStart, csat: { score: 2, at: ratedAt, ofEarlierEpisode: true } });
    expect(closedEpisodeItem(resolved)).toMatchObject({ csat: { score: 2, at: ratedAt } });
    expect(closedEpisodeItem(resolved).csat).not.toHaveProperty('ofEarlierEpisode');
    // Frozen later with the moved issue, it stays the earlier episode's.
    expect(closedEpisodeItem({ ...resolved, ...taken, status: 'resolved' }).csat).toMatchObject({ ofEarlierEpisode: true });
    // A live episode's own rating (it was reopened since) rates the issue the moved one folds into.
    const live = dated({ status: 'open', reportStartedAt: after(7 * 86_400_000 + 60_000), csat: { score: 4, at: ratedAt } });
    expect(withMovedEpisode(live, unanswered)).toMatchObject({ reportStartedAt: movedStart, csat: { score: 4, at: ratedAt } });
    expect(withMovedEpisode(live, unanswered)!.csat).not.toHaveProperty('ofEarlierEpisode');
    // One of an earlier episode of its own, frozen then, though given after the moved issue began.
    const earlier = { ...live, reportStartedAt: after(7 * 86_400_000 + 180_000) };
    expect(withMovedEpisode(earlier, unanswered)).toMatchObject({ csat: { score: 4, ofEarlierEpisode: true } });
    // Marked once: a retried move changes nothing.
    expect(withMovedEpisode({ ...earlier, ...withMovedEpisode(earlier, unanswered) }, unanswered)).toBeUndefined();
  });

  it('keeps the conversation’s own first reply that a fold drops as written, for the timers and reads', () => {
    // Its own reply came after the moved issue's first one, which the fold takes.
    const ownReply = after(7 * 86_400_000 + 900_000);
    const live = dated({ status: 'open', reportStartedAt: after(7 * 86_400_000 + 300_000), firstReplyAt: ownReply, lastUnpromptedAt: after(-60_000) });

    const folded = taking(live, episode);

    expect(folded).toMatchObject({ firstReplyAt: episode.firstReplyAt, lastUnpromptedAt: ownReply });
    // Its own reply is the earlier one: kept as the first reply, nothing else to keep.
    expect(withMovedEpisode({ ...live, firstReplyAt: after(7 * 86_400_000 + 400_000) }, episode)).not.toHaveProperty('lastUnpromptedAt');
    // Applied again, nothing changes.
    expect(withMovedEpisode(folded, episode)).toBeUndefined();
  });

  it('takes the first reply the team wrote on its own conversation since the issue began, after one it wrote before', () => {
    const teamText = after(7 * 86_400_000 - 600_000);
    const since = after(7 * 86_400_000 + 60_000);
    const made = dated({ status: 'open', teamStarted: true, firstReplyAt: teamText });

    // The conversation keeps its first reply only: the caller reads the later one from its messages.
    expect(taking(made, unanswered, since)).toMatchObject({ firstReplyAt: since, lastUnpromptedAt: teamText });
    // Still the earlier of it and the first reply on the old channel.
    expect(taking(made, episode, since)).toMatchObject({ firstReplyAt: since });
    expect(taking(made, { ...episode, firstReplyAt: after(7 * 86_400_000 + 30_000) }, since)).toMatchObject({ firstReplyAt: after(7 * 86_400_000 + 30_000) });
  });
});

describe('a rating and a moved issue', () => {
  const base = { channel: 'sms', contact: { id: 'k1' }, assigneeId: 'a1', unreadCount: 0, handle: '+1', version: 3 } as const;
  const weeksAgo = '2026-10-01T10:00:00.000Z';
  const dated = (c: object) => ({ ...base, id: 'c1', createdAt: weeksAgo, updatedAt: weeksAgo, lastMessageAt: weeksAgo, ...c }) as ConversationRecord;
  const issueStart = after(-86_400_000);
  const ratedAt = after(60_000);
  // Resolved, rated, then reopened by the customer within the window: the same issue, rated.
  const source = dated({ id: 'c1', status: 'open', reportStartedAt: issueStart, reopenCount: 1, resolvedBy: 'a1', csat: { score: 2, at: ratedAt } });
  const taking = (c: ConversationRecord, moved: MovedEpisode): ConversationRecord => ({ ...c, ...withMovedEpisode(c, moved) });

  it('goes with the issue it rates when the issue moves', () => {
    const moved = movedEpisode(source);

    expect(moved).toMatchObject({ reportStartedAt: issueStart, reopenCount: 1, csat: { score: 2, at: ratedAt } });
    // Made for the move, or with an episode of its own going on: either way the issue's rating counts there.
    expect(taking(dated({ id: 'c2', status: 'open', ...moved }), moved).csat).toEqual({ score: 2, at: ratedAt });
    const resolved = dated({ id: 'c2', status: 'resolved', resolvedAt: after(-2 * 86_400_000), csat: { score: 5, at: after(-2 * 86_400_000) } });
    expect(taking(resolved, moved).csat).toEqual({ score: 2, at: ratedAt });
    // (the resolved one's own rating stays with its frozen episode)
    expect(closedEpisodeItem(resolved)).toMatchObject({ csat: { score: 5 } });
    expect(taking(dated({ id: 'c2', status: 'open', teamStarted: true, csat: { score: 4, at: after(-3 * 86_400_000) } }), moved).csat).toEqual({ score: 2, at: ratedAt });
    // A rating of an earlier episode of the source is not the issue's.
    expect(movedEpisode({ ...source, csat: { score: 2, at: after(-2 * 86_400_000) } })).not.toHaveProperty('csat');
    expect(movedEpisode({ ...source, csat: { score: 2, at: ratedAt, ofEarlierEpisode: true } })).not.toHaveProperty('csat');
  });

  it('keeps the newer of two ratings of a folded issue', () => {
    const moved = movedEpisode(source);
    const live = dated({ id: 'c2', status: 'open', reportStartedAt: after(-3_600_000), reopenCount: 1, csat: { score: 4, at: after(120_000) } });

    expect(taking(live, moved).csat).toEqual({ score: 4, at: after(120_000) });
    expect(taking({ ...live, csat: { score: 4, at: after(30_000) } }, moved).csat).toEqual({ score: 2, at: ratedAt });
    expect(withMovedEpisode(taking(live, moved), moved)).toBeUndefined();
  });

  it('never counts a rating of an episode that went elsewhere for another issue moved there later', () => {
    // c1's issue, rated, went to c2; then an issue begun before that rating moves from c3 to c1.
    const left = { ...source, movedTo: 'c2' };
    const other = movedEpisode(dated({ id: 'c3', status: 'open', reportStartedAt: after(-2 * 3_600_000) }));

    const taken = taking(left, other);

    expect(taken).toMatchObject({ reportStartedAt: other.reportStartedAt, csat: { score: 2, ofEarlierEpisode: true } });
    // Moved back, the issue brings its rating home, counted again there (and out of c2, which leaves the reports).
    expect(taking(left, movedEpisode(taking(dated({ id: 'c2', status: 'open', teamStarted: true }), movedEpisode(source)))).csat).toEqual({ score: 2, at: ratedAt });
    // Moved back from where its rating did not go (moved before ratings went with it): still its own.
    expect(taking(left, { ...movedEpisode(source), csat: undefined }).csat).toEqual({ score: 2, at: ratedAt });
  });
});


describe('an agent reopening a resolved conversation', () => {
  const resolved = (over: Partial<ConversationRecord> = {}) =>
    ({
      id: 'c1',
      channel: 'whatsapp',
      status: 'resolved',
      resolvedAt,
      resolvedBy: 'rita',
      assigneeId: 'rita',
      createdAt: after(-3_600_000),
      updatedAt: resolvedAt,
      lastMessageAt: resolvedAt,
      firstReplyAt: after(-3_000_000),
      version: 3,
      ...over,
    }) as ConversationRecord;
  const reopen = (c: ConversationRecord, at: string, status: 'open' | 'pending' = 'open') => reopenedByAgent(c, withStatus(c, status, at), at);

  it('reopens the same episode within the reopen window, a reopen against first-contact resolution', () => {
    const at = after(REOPEN_WINDOW_MS);
    const c = resolved();

    const next = reopen(c, at);

    expect(next).toMatchObject({ status: 'open', reopenCount: 1, firstReplyAt: c.firstReplyAt });
    expect(next.reportStartedAt).toBeUndefined();
    expect(frozenEpisode(c, next)).toBeUndefined();
  });

  it('after it, leaves the closed episode its figures and starts the team’s contact, counted once the customer writes', () => {
    const at = after(REOPEN_WINDOW_MS + 1);
    const c = resolved();

    const next = reopen(c, at, 'pending');

    expect(next).toMatchObject({ status: 'pending', reopenCount: 0, reportStartedAt: at, teamStarted: true });
    expect(next.firstReplyAt).toBeUndefined();
    expect(frozenEpisode(c, next)).toEqual(closedEpisodeItem(c));
    expect(closedEpisodeItem(c)).toMatchObject({ sk: `EPISODE#${c.createdAt}`, status: 'resolved', resolvedAt });
    // The customer's next message starts its episode, and is no reopen
    expect(startsNewEpisode(next, after(REOPEN_WINDOW_MS + 60_000))).toBe(true);
  });

  it('leaves alone one with no episode of its own (the team’s contact, or one whose issue went to another channel)', () => {
    const at = after(REOPEN_WINDOW_MS + 1);
    for (const c of [resolved({ teamStarted: true }), resolved({ movedTo: 'c2' })]) {
      const next = withStatus(c, 'open', at);
      expect(reopenedByAgent(c, next, at)).toBe(next);
    }
  });
});
