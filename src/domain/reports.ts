/**
 * The figures that run a support team, overall, per channel and per agent, for conversations started in
 * a period (a customer back with a new issue starts one again: src/domain/episodes.ts): volume, first reply time, handle time, resolution time and rate,
 * first-contact resolution, SLA attainment and CSAT. Read from the reports index (one Query
 * per UTC day), which projects only what these figures need, and for the few reopened
 * conversations whose figures may go to another agent than their holder (reopened, or resolved
 * with nobody holding them), who resolved them.
 * Narrowed to a team or a label, it reads the conversations' current team and labels too.
 */
import { keys, UNASSIGNED_ID } from '../store/keys';
import { batchGetAll, mapConcurrently, queryAll } from '../store/items';
import { badRequest } from './errors';
import type { Channel } from './types';

export interface ReportRow {
  id: string;
  channel: Channel;
  status: string;
  createdAt: string;
  firstReplyAt?: string;
  resolvedAt?: string;
  reopenCount?: number;
  /** `ofEarlierEpisode`: a rating its conversation keeps, of an episode before the one this row counts. */
  csat?: { score: number; at?: string; ofEarlierEpisode?: boolean };
  /** The agent holding it now (or when its episode closed): the one its figures are credited to, as a rule. */
  assigneeId?: string;
  /**
   * The agent credited with its latest resolution (not in the index: read only for the rows that
   * need it, see needsResolver).
   */
  resolvedBy?: string;
  /** Its item's key, to read what the index does not project. */
  key?: { pk: string; sk: string };
}

export interface Kpis {
  conversations: number;
  resolved: number;
  resolutionRate: number | null;
  firstReplySeconds: { avg: number | null; median: number | null; count: number };
  /** From the first agent reply to resolution: the time the team spent on it. */
  handleSeconds: { avg: number | null; median: number | null; count: number };
  resolutionSeconds: { avg: number | null; median: number | null; count: number };
  /** Resolved and never reopened, among the conversations ever resolved (reopened and open again included). */
  firstContactResolutionRate: number | null;
  sla: { firstReplyTargetSeconds: number; firstReplyAttainment: number | null; resolutionTargetSeconds: number; resolutionAttainment: number | null };
  csat: { responses: number; average: number | null; satisfiedRate: number | null };
}

export const MAX_REPORT_DAYS = 92;

const seconds = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000;
const ratio = (part: number, whole: number) => (whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000);

function stats(values: number[]) {
  if (values.length === 0) return { avg: null, median: null, count: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const avg = values.reduce((a, b) => a + b, 0) / values.length;
  return { avg: Math.round(avg * 10) / 10, median: Math.round(median * 10) / 10, count: values.length };
}

/**
 * The share of conversations that met a target, among those it can be judged for: the ones done
 * (`doneAt`) and the ones still waiting past the target, which have missed it whatever comes
 * next. Those still waiting inside the target are left out, not counted as met.
 */
function attainment(rows: ReportRow[], targetSeconds: number, doneAt: (r: ReportRow) => string | undefined, now: string): number | null {
  let met = 0;
  let judged = 0;
  for (const r of rows) {
    const done = doneAt(r);
    const waited = seconds(r.createdAt, done ?? now);
    if (done) {
      judged++;
      if (waited <= targetSeconds) met++;
    } else if (waited > targetSeconds) {
      judged++;
    }
  }
  return ratio(met, judged);
}

/**
 * A reply written before its episode started answered nothing in it: a follow-up on the resolved
 * conversation, applied just after the customer's new message had started the episode.
 */
function replyInEpisode(r: ReportRow): ReportRow {
  if (!r.firstReplyAt || r.firstReplyAt >= r.createdAt) return r;
  const { firstReplyAt: _before, ...row } = r;
  return row;
}

/** Pure: the KPIs of a set of conversations against SLA targets, as they stand at `now`. */
export function computeKpis(all: ReportRow[], sla: { firstReplySeconds: number; resolutionSeconds: number }, now = new Date().toISOString()): Kpis {
  const rows = all.map(replyInEpisode);
  const replied = rows.filter((r) => r.firstReplyAt);
  const resolved = rows.filter((r) => r.status === 'resolved' && r.resolvedAt);
  const firstReply = replied.map((r) => seconds(r.createdAt, r.firstReplyAt!));
  const resolution = resolved.map((r) => seconds(r.createdAt, r.resolvedAt!));
  // A first reply after the resolution (a follow-up on a closed conversation) handled nothing.
  const handle = resolved.filter((r) => r.firstReplyAt && r.firstReplyAt <= r.resolvedAt!).map((r) => seconds(r.firstReplyAt!, r.resolvedAt!));
  // A conversation shows its newest rating; one given before this episode started is the last one's,
  // as is one kept by a conversation that took an episode moved from another channel (which may
  // start before it: src/domain/episodes.ts).
  const rated = rows.filter((r) => r.csat && typeof r.csat.score === 'number' && !(r.csat.at && r.csat.at < r.createdAt) && !r.csat.ofEarlierEpisode);
  const isResolved = (r: ReportRow) => (r.status === 'resolved' ? r.resolvedAt : undefined);
  // Resolved unanswered within the first-reply target: nobody was kept waiting, nothing to judge.
  const closedUnanswered = (r: ReportRow) => !r.firstReplyAt && r.status === 'resolved' && r.resolvedAt && seconds(r.createdAt, r.resolvedAt) <= sla.firstReplySeconds;
  return {
    conversations: rows.length,
    resolved: resolved.length,
    resolutionRate: ratio(resolved.length, rows.length),
    firstReplySeconds: stats(firstReply),
    handleSeconds: stats(handle),
    resolutionSeconds: stats(resolution),
    // Among those ever resolved: one reopened and open again was not resolved on first contact.
    firstContactResolutionRate: ratio(resolved.filter((r) => !r.reopenCount).length, rows.filter((r) => isResolved(r) || r.reopenCount).length),
    sla: {
      firstReplyTargetSeconds: sla.firstReplySeconds,
      firstReplyAttainment: attainment(
        rows.filter((r) => !closedUnanswered(r)),
        sla.firstReplySeconds,
        (r) => r.firstReplyAt,
        now,
      ),
      resolutionTargetSeconds: sla.resolutionSeconds,
      resolutionAttainment: attainment(rows, sla.resolutionSeconds, isResolved, now),
    },
    csat: {
      responses: rated.length,
      average: rated.length ? Math.round((rated.reduce((a, r) => a + r.csat!.score, 0) / rated.length) * 100) / 100 : null,
      satisfiedRate: ratio(rated.filter((r) => r.csat!.score >= 4).length, rated.length),
    },
  };
}

const DAY_MS = 86_400_000;
/**
 * The times the reports index can be asked about: it keys episodes by their ISO start, whose year
 * has four digits; past 9999 (or before 0) in UTC the string sorts apart and DynamoDB refuses the
 * query as reversed, a 5xx for a query zod took (`9999-12-31T23:00:00-02:00`).
 */
const FIRST_TIME = Date.parse('0000-01-01T00:00:00.000Z');
const LAST_TIME = Date.parse('9999-12-31T23:59:59.999Z');

/** UTC days from `from` to `to`, inclusive; refuses ranges the report would not read in one go. */
export function daysBetween(from: Date, to: Date): string[] {
  if (!(from <= to)) throw badRequest('invalid_range', 'from must not be after to');
  if (from.getTime() < FIRST_TIME || to.getTime() > LAST_TIME) throw badRequest('invalid_range', 'from and to must fall in the years 0000 to 9999 in UTC');
  // The length of the range, not its UTC days: a 92-day quarter in a zone off UTC touches 93.
  if (to.getTime() - from.getTime() > MAX_REPORT_DAYS * DAY_MS) throw badRequest('invalid_range', `a report covers at most ${MAX_REPORT_DAYS} days`);
  const days: string[] = [];
  // From the time itself: Date.UTC takes the years 0 to 99 for 1900 to 1999.
  const midnight = from.getTime() - (((from.getTime() % DAY_MS) + DAY_MS) % DAY_MS);
  for (let d = midnight; d <= to.getTime(); d += DAY_MS) {
    days.push(new Date(d).toISOString().slice(0, 10));
  }
  return days;
}

/**
 * Day queries in flight at once: 92 of them one after another (and their pages) would spend
 * seconds of the API function's 15; eight keep a long range well inside it without taking the
 * table's burst from the message path.
 */
export const DAY_QUERY_CONCURRENCY = 8;

const holder = (r: ReportRow) => (r.assigneeId && r.assigneeId !== UNASSIGNED_ID ? r.assigneeId : undefined);

/**
 * A conversation whose figures may go to the agent credited with its resolution rather than its
 * holder: one resolved with nobody holding it (resolved from the queue, credited to its resolver),
 * and one reopened since and open again (the reopening went to the queue or to someone else). One
 * resolved again by its holder is theirs.
 */
export const needsResolver = (r: ReportRow): boolean => (r.status === 'resolved' ? !holder(r) : Boolean(r.reopenCount));

/**
 * The agent a conversation's figures are credited to in `byAgent`: its holder, else the agent who
 * resolved it (a resolution from the queue is its resolver's, whether it holds or the customer
 * undoes it); and one reopened after an agent resolved it, not resolved again since by its holder,
 * is that agent's (as Chatwoot credits a resolution to the agent who had it): their first-contact
 * resolution failed, whoever took the conversation back, or if nobody did.
 */
export function creditedAgent(r: ReportRow): string | undefined {
  if (needsResolver(r) && r.resolvedBy) return r.resolvedBy;
  return holder(r);
}

/** Reads `resolvedBy` for the rows that need it: one BatchGet of that attribute alone, those rows only. */
async function withResolvers(rows: ReportRow[]): Promise<ReportRow[]> {
  const id = (key: { pk: string; sk: string }) => `${key.pk}\n${key.sk}`;
  const wanted = new Map<string, { pk: string; sk: string }>();
  for (const r of rows) if (r.key && needsResolver(r)) wanted.set(id(r.key), r.key);
  if (wanted.size === 0) return rows;
  const found = await batchGetAll([...wanted.values()], { projection: ['pk', 'sk', 'resolvedBy'] });
  const resolvers = new Map(found.map((item) => [id(item as { pk: string; sk: string }), item.resolvedBy]));
  return rows.map((r) => {
    const resolvedBy = r.key ? resolvers.get(id(r.key)) : undefined;
    return typeof resolvedBy === 'string' ? { ...r, resolvedBy } : r;
  });
}

/** What a report may be narrowed to; every filter given must hold. */
export interface ReportFilter {
  channel?: Channel;
  /** The conversation's team, as it is now (not in the index: read at report time). */
  team?: string;
  /** A label the conversation carries now (not in the index: read at report time). */
  label?: string;
}

/** A conversation's team and labels, as its item holds them (what a team or label report reads). */
export interface ConversationTags {
  team?: string | null;
  labels?: string[];
}

/**
 * Pure: whether a conversation whose item holds `tags` (undefined: no item found) is in a report
 * narrowed by `filter`'s team and label. Without either, every conversation is.
 */
export function matchesTeamAndLabel(tags: ConversationTags | undefined, filter: Pick<ReportFilter, 'team' | 'label'>): boolean {
  if (filter.team !== undefined && tags?.team !== filter.team) return false;
  if (filter.label !== undefined && !(Array.isArray(tags?.labels) && tags.labels.includes(filter.label))) return false;
  return true;
}

/**
 * Pure: the rows of the conversations in the team and label asked for, `tagsById` holding what
 * each conversation's item holds now. A closed episode (`EPISODE#<start>`) is its conversation's:
 * its row carries the conversation's id, so it goes with the conversation's current team and labels.
 */
export function keepTeamAndLabel(rows: ReportRow[], tagsById: ReadonlyMap<string, ConversationTags>, filter: Pick<ReportFilter, 'team' | 'label'>): ReportRow[] {
  if (filter.team === undefined && filter.label === undefined) return rows;
  return rows.filter((r) => matchesTeamAndLabel(tagsById.get(r.id), filter));
}

/**
 * Narrows the rows to a team and/or label: one BatchGet of the conversations' `team` and `labels`
 * alone (each conversation once, however many of its episodes are in the range). Neither in the
 * reports index, whose projection cannot change in place; nothing is read without those filters.
 */
async function withTeamAndLabel(rows: ReportRow[], filter: Pick<ReportFilter, 'team' | 'label'>): Promise<ReportRow[]> {
  if ((filter.team === undefined && filter.label === undefined) || rows.length === 0) return rows;
  const ids = [...new Set(rows.map((r) => r.id))];
  const found = await batchGetAll(ids.map((id) => keys.conversation(id)), { projection: ['id', 'team', 'labels'] });
  const tagsById = new Map<string, ConversationTags>();
  for (const item of found) if (typeof item.id === 'string') tagsById.set(item.id, item as ConversationTags);
  return keepTeamAndLabel(rows, tagsById, filter);
}

export async function loadReportRows(from: Date, to: Date, filter: ReportFilter = {}): Promise<ReportRow[]> {
  const perDay = await mapConcurrently(daysBetween(from, to), DAY_QUERY_CONCURRENCY, (day) => loadDay(day, from, to, filter.channel));
  // The team and label are read for the rows the channel kept; who resolved them, for the rows kept then.
  return withResolvers(await withTeamAndLabel(perDay.flat(), filter));
}

async function loadDay(day: string, from: Date, to: Date, channel: Channel | undefined): Promise<ReportRow[]> {
  const items = await queryAll({
    IndexName: 'gsi3',
    KeyConditionExpression: 'gsi3pk = :pk AND gsi3sk BETWEEN :from AND :to',
    ExpressionAttributeValues: {
      ':pk': keys.createdPartition(day),
      ':from': from.toISOString(),
      // '~' sorts after the '#<id>' suffix, so conversations created at `to` itself count.
      ':to': `${to.toISOString()}~`,
      ...(channel ? { ':channel': channel } : {}),
    },
    ...(channel ? { FilterExpression: 'channel = :channel' } : {}),
  });
  // A conversation's row starts with the episode the index keys it by (src/domain/episodes.ts).
  return items.map((item) => ({
    ...(item as unknown as ReportRow),
    createdAt: keys.startOfReportKey(String(item.gsi3sk)),
    ...(typeof item.pk === 'string' && typeof item.sk === 'string' ? { key: { pk: item.pk, sk: item.sk } } : {}),
  }));
}

export interface Summary extends Kpis {
  from: string;
  to: string;
  channel: Channel | null;
  team: string | null;
  label: string | null;
  byChannel: Partial<Record<Channel, Kpis>>;
  /**
   * Per agent id, the conversations each holds, but a reopened one that its holder did not resolve
   * again goes to the agent whose resolution it undid, and one resolved from the queue to its
   * resolver (creditedAgent); ones credited to nobody count only in the totals.
   */
  byAgent: Record<string, Kpis>;
}

/** The rows grouped by `keyOf` (rows without a key left out), keys sorted, each group's KPIs. */
function breakdown<K extends string>(rows: ReportRow[], keyOf: (r: ReportRow) => K | undefined, kpisOf: (group: ReportRow[]) => Kpis): Partial<Record<K, Kpis>> {
  const groups = new Map<K, ReportRow[]>();
  for (const r of rows) {
    const key = keyOf(r);
    if (key === undefined) continue;
    const group = groups.get(key);
    if (group) group.push(r);
    else groups.set(key, [r]);
  }
  // Defined as entries, not assigned: an agent id such as "__proto__" (a valid id) would set the
  // object's prototype instead of a field, and its row would be missing from the answer.
  return Object.fromEntries([...groups.keys()].sort().map((key) => [key, kpisOf(groups.get(key)!)])) as Partial<Record<K, Kpis>>;
}

/** Pure: the report of the rows loaded for a period, every figure as it stands at `now`. */
export function summarizeRows(rows: ReportRow[], sla: { firstReplySeconds: number; resolutionSeconds: number }, now: string): Kpis & Pick<Summary, 'byChannel' | 'byAgent'> {
  // One "now" for every figure, so that the channels and the agents add up to the total.
  const kpisOf = (group: ReportRow[]) => computeKpis(group, sla, now);
  return {
    ...kpisOf(rows),
    byChannel: breakdown(rows, (r) => r.channel, kpisOf),
    byAgent: breakdown(rows, creditedAgent, kpisOf) as Record<string, Kpis>,
  };
}

export async function summary(from: Date, to: Date, sla: { firstReplySeconds: number; resolutionSeconds: number }, filter: ReportFilter = {}): Promise<Summary> {
  const rows = await loadReportRows(from, to, filter);
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    channel: filter.channel ?? null,
    team: filter.team ?? null,
    label: filter.label ?? null,
    ...summarizeRows(rows, sla, new Date().toISOString()),
  };
}
