/**
 * Report episodes. A conversation is one thread per customer and channel, but a customer who
 * writes again long after a resolution brings a new issue, which the figures must count as a
 * new conversation in the period it started: a ticket solved in Zendesk takes replies as a
 * reopen until it closes (4 days by default), and a later reply opens a follow-up ticket.
 * Within REOPEN_WINDOW_MS the same episode is reopened (not resolved on first contact), unless
 * the customer answers a proactive message sent since the resolution; otherwise the closed
 * episode keeps its figures in an item of its own in the reports index, and the
 * conversation's first reply and reopen count start again (it still shows its newest rating,
 * dated, which the reports leave to the episode it was given in).
 */
import { keys } from '../store/keys';
import type { ConversationRecord } from '../store/conversations';

export const REOPEN_WINDOW_MS = 4 * 86_400_000;

export const episodeStart = (c: Pick<ConversationRecord, 'reportStartedAt' | 'createdAt'>): string => c.reportStartedAt ?? c.createdAt;

/** The customer's message at `at` on this conversation starts a new episode. */
export function startsNewEpisode(c: Pick<ConversationRecord, 'status' | 'resolvedAt' | 'lastUnpromptedAt' | 'teamStarted'>, at: string): boolean {
  // The team made it: the customer's first message there is where it starts.
  if (c.teamStarted) return true;
  if (c.status !== 'resolved' || c.resolvedAt === undefined) return false;
  // An answer to a proactive message (a campaign) sent since the resolution is a contact the team
  // started, as Chatwoot opens a new conversation per campaign message: not the old issue back.
  if (c.lastUnpromptedAt !== undefined && c.lastUnpromptedAt >= c.resolvedAt) return true;
  return Date.parse(at) - Date.parse(c.resolvedAt) > REOPEN_WINDOW_MS;
}

/** The fields that start an episode at `at` on the conversation `c`'s own item. */
export function newEpisode(
  c: ConversationRecord,
  at: string,
): Pick<ConversationRecord, 'reportStartedAt' | 'firstReplyAt' | 'csat' | 'reopenCount' | 'movedTo' | 'teamStarted' | 'lastUnpromptedAt'> {
  // A rating given before ratings were dated belongs to the closing episode: dated by its resolution.
  const csat = c.csat && !c.csat.at ? { ...c.csat, at: c.resolvedAt ?? episodeStart(c) } : c.csat;
  // What the team wrote before the customer's first message on a conversation it started answered
  // nothing, but was written (no greeting for it).
  const wrote = c.teamStarted ? keptAsWritten(c, undefined) : {};
  // A conversation whose episode was moved away counts again from its new one.
  return { reportStartedAt: at, firstReplyAt: undefined, csat, reopenCount: 0, movedTo: undefined, teamStarted: undefined, ...wrote };
}

/**
 * An agent taking `before` out of `resolved` (`next`, at `at`: a reopening, a status) more than
 * REOPEN_WINDOW_MS after its resolution. Its issue had closed, as a Zendesk ticket closes 4 days after
 * it was solved and only a follow-up ticket takes more: its episode keeps its figures where it started
 * (frozen by frozenEpisode in the same write), and what the agent starts is the team's contact, out of
 * the figures until the customer writes (as a conversation made for a move). Within the window it is a reopen.
 */
export function reopenedByAgent(before: ConversationRecord, next: ConversationRecord, at: string): ConversationRecord {
  if (before.status !== 'resolved' || next.status === 'resolved' || before.resolvedAt === undefined || !closesOwnEpisode(before)) return next;
  if (Date.parse(at) - Date.parse(before.resolvedAt) <= REOPEN_WINDOW_MS) return next;
  return { ...next, ...newEpisode(before, at), teamStarted: true };
}

/** The episode a change closed on its own conversation (a new one started there), to write with it. */
export const frozenEpisode = (before: ConversationRecord, after: ConversationRecord): Record<string, unknown> | undefined =>
  after.reportStartedAt !== before.reportStartedAt && closesOwnEpisode(before) ? closedEpisodeItem(before) : undefined;

/**
 * `c`'s first reply, dropped for `firstReplyAt` as the first reply of the episode it counts now, was
 * written all the same: kept as unprompted, which the timers and reads follow as they do a reply.
 */
function keptAsWritten(c: ConversationRecord, firstReplyAt: string | undefined): Pick<ConversationRecord, 'lastUnpromptedAt'> {
  return c.firstReplyAt && c.firstReplyAt !== firstReplyAt && c.firstReplyAt > (c.lastUnpromptedAt ?? '') ? { lastUnpromptedAt: c.firstReplyAt } : {};
}

/**
 * Whether a customer's new episode on `c` closes one of its own: not when its last one went to
 * another channel's conversation (that one keeps its figures), nor on one the team started.
 */
export const closesOwnEpisode = (c: Pick<ConversationRecord, 'movedTo' | 'teamStarted'>): boolean => c.movedTo === undefined && !c.teamStarted;

/**
 * The unresolved episode of `source`, for the conversation on another channel an agent moves it
 * to: one customer issue, counted once, from the customer's first message. Its first reply is
 * the first the team wrote on either channel; its resolution, the new conversation's.
 */
export function movedEpisode(source: ConversationRecord): Pick<ConversationRecord, 'firstReplyAt' | 'reopenCount' | 'resolvedBy' | 'csat'> & { reportStartedAt: string } {
  const start = episodeStart(source);
  return {
    reportStartedAt: start,
    ...(source.firstReplyAt && source.firstReplyAt >= start ? { firstReplyAt: source.firstReplyAt } : {}),
    ...(source.reopenCount ? { reopenCount: source.reopenCount } : {}),
    // Rated when it was resolved there, then reopened within the window: the issue's own rating,
    // which the reports would count on the source and count nowhere once it leaves them.
    ...(ratesEpisode(source.csat, start) ? { csat: source.csat } : {}),
    // Whose resolution of it did not hold; the target's own, of an episode of its own, is not this one's.
    resolvedBy: source.reopenCount ? source.resolvedBy : undefined,
  };
}

export type MovedEpisode = ReturnType<typeof movedEpisode>;

/**
 * The report fields of `c`, another channel's conversation of the customer, once it counts the
 * `episode` an agent moved to it; undefined when it counts it already (a retried or concurrent
 * move). One resolved takes it whole: its own episode is closed (the caller freezes it, as a
 * customer's new episode does, and reopens it for the agent going on there), so its first reply,
 * reopen count and resolver are the moved issue's. One made for the move, or whose own episode
 * went elsewhere, takes it as it is: its own reopens and first reply went with its episode, and
 * what the team wrote on one it started before the issue began answered nothing in it
 * (`teamReplySince`: the first reply the team wrote there since the issue began, read from its
 * messages by the caller when `c.firstReplyAt`, set once, is older). One with a live episode of
 * its own (the customer wrote there too) holds the same issue twice over: folded, it counts from
 * the earlier start with the earlier first reply. Whichever it is, a rating it was given stays its
 * episode's (ratingKeptBy), and the moved issue's own rating comes with it (ratingOf). A first
 * reply of its own that the result drops was written all the same (keptAsWritten). Idempotent:
 * the fold keeps the larger reopen count, not their sum.
 */
export function withMovedEpisode(c: ConversationRecord, episode: MovedEpisode, teamReplySince?: string): Partial<ConversationRecord> | undefined {
  if (c.status === 'resolved') {
    // Its episode is this one already, resolved there (a move retried after a crash): it counts it.
    if (closesOwnEpisode(c) && episodeStart(c) === episode.reportStartedAt) return undefined;
    const fields = newEpisode(c, episode.reportStartedAt);
    return {
      ...fields,
      firstReplyAt: episode.firstReplyAt,
      reopenCount: episode.reopenCount ?? 0,
      resolvedBy: episode.resolvedBy,
      csat: ratingOf(ratingKeptBy({ ...c, csat: fields.csat }, episode), episode),
    };
  }
  // Made for a move, or its own episode went elsewhere: nothing of its own to fold in. A reply the
  // team wrote on one it made since the issue began is the first agent reply after that start.
  if (c.movedTo || c.teamStarted) {
    const since = c.teamStarted ? earliest([c.firstReplyAt, teamReplySince].filter((at) => at !== undefined && at >= episode.reportStartedAt)) : undefined;
    const firstReplyAt = earliest([since, episode.firstReplyAt]);
    return {
      ...episode,
      firstReplyAt,
      reopenCount: episode.reopenCount ?? 0,
      movedTo: undefined,
      teamStarted: undefined,
      ...keptAsWritten(c, firstReplyAt),
      csat: ratingOf(ratingKeptBy(c, episode), episode),
    };
  }
  const own = episodeStart(c);
  const start = own < episode.reportStartedAt ? own : episode.reportStartedAt;
  // A reply dated before its own episode started answered nothing in it (src/domain/reports.ts).
  const firstReplyAt = earliest([c.firstReplyAt && c.firstReplyAt >= own ? c.firstReplyAt : undefined, episode.firstReplyAt]);
  const reopenCount = Math.max(c.reopenCount ?? 0, episode.reopenCount ?? 0);
  // Whose resolution did not hold: its own resolver's if it was reopened, else the moved one's, nobody
  // when that was nobody's (its holder is charged then). `c`'s resolver, unreopened, resolved an
  // older episode, which held.
  const resolvedBy = c.reopenCount ? c.resolvedBy : episode.reopenCount ? episode.resolvedBy : c.resolvedBy;
  const csat = ratingOf(ratingKeptBy(c, episode), episode);
  if (start === own && firstReplyAt === c.firstReplyAt && reopenCount === (c.reopenCount ?? 0) && resolvedBy === c.resolvedBy && sameRating(csat, c.csat)) return undefined;
  return { reportStartedAt: start, firstReplyAt, reopenCount, resolvedBy, csat, ...keptAsWritten(c, firstReplyAt) };
}

const earliest = (times: (string | undefined)[]): string | undefined => times.filter((at): at is string => at !== undefined).sort()[0];

/** Whether `csat` rates the episode that started at `start` (as the reports read it: src/domain/reports.ts). */
const ratesEpisode = (csat: ConversationRecord['csat'], start: string): csat is NonNullable<ConversationRecord['csat']> =>
  csat !== undefined && !csat.ofEarlierEpisode && !(csat.at !== undefined && csat.at < start);

const sameRating = (a: ConversationRecord['csat'], b: ConversationRecord['csat']): boolean =>
  a?.score === b?.score && a?.at === b?.at && a?.comment === b?.comment && !a?.ofEarlierEpisode === !b?.ofEarlierEpisode;

/**
 * The rating `c` shows once it takes a moved episode. A rating answers the question asked when the
 * episode it was given in was resolved: the moved issue (whose start may come before it) was never
 * asked about there. One given in an episode of `c` that is frozen, or frozen in this write (a
 * resolved target), on a contact the team started, or in an episode that went to another channel
 * (which took its rating: movedEpisode), stays shown but marked as an earlier episode's, counted on
 * that episode's item alone. One of the live episode the moved one folds into, or of this very
 * episode coming back (moved back), is left as it is.
 */
function ratingKeptBy(c: ConversationRecord, episode: MovedEpisode): ConversationRecord['csat'] {
  const csat = c.csat;
  if (!csat || csat.ofEarlierEpisode) return csat;
  const wentElsewhere = c.movedTo !== undefined && episodeStart(c) !== episode.reportStartedAt;
  const earlier = c.teamStarted || wentElsewhere || (c.status === 'resolved' && closesOwnEpisode(c)) || (csat.at !== undefined && csat.at < episodeStart(c));
  return earlier ? { ...csat, ofEarlierEpisode: true } : csat;
}

/**
 * The rating `c` shows and counts once it takes the moved `episode`: the issue's own rating, given
 * on the old conversation, replaces one kept for an earlier episode (counted on that one's item,
 * or with the episode that went elsewhere, so only what is shown changes); of two ratings of the
 * folded issue, the newer, as a re-rating is.
 */
function ratingOf(kept: ConversationRecord['csat'], episode: MovedEpisode): ConversationRecord['csat'] {
  const moved = episode.csat;
  if (!moved || !ratesEpisode(moved, episode.reportStartedAt)) return kept;
  if (!kept || kept.ofEarlierEpisode) return moved;
  return (kept.at ?? '') >= (moved.at ?? '') ? kept : moved;
}

/**
 * The closed episode of `c` (as it stood before the new one), frozen: the fields the reports
 * index projects, under the episode's own start.
 */
export function closedEpisodeItem(c: ConversationRecord): Record<string, unknown> {
  const start = episodeStart(c);
  return {
    ...keys.conversationEpisode(c.id, start),
    ...keys.conversationCreated(start, c.id),
    id: c.id,
    channel: c.channel,
    status: c.status,
    createdAt: c.createdAt,
    assigneeId: c.assigneeId,
    ...(c.firstReplyAt ? { firstReplyAt: c.firstReplyAt } : {}),
    ...(c.resolvedAt ? { resolvedAt: c.resolvedAt } : {}),
    ...(c.reopenCount ? { reopenCount: c.reopenCount } : {}),
    ...(c.csat ? { csat: c.csat } : {}),
    // Not in the reports index: read with the row when its figures go to the resolver.
    ...(c.resolvedBy ? { resolvedBy: c.resolvedBy } : {}),
  };
}
