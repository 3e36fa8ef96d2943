import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchGetCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { computeKpis, DAY_QUERY_CONCURRENCY, daysBetween, keepTeamAndLabel, loadReportRows, matchesTeamAndLabel, summarizeRows, type ConversationTags, type ReportRow } from '../../src/domain/reports';
import { withStatus } from '../../src/domain/conversations';
import { closedEpisodeItem, movedEpisode } from '../../src/domain/episodes';
import type { ConversationRecord } from '../../src/store/conversations';

const at = (minutes: number) => new Date(Date.UTC(2026, 10, 2, 9, 0) + minutes * 60_000).toISOString();
const row = (over: Partial<ReportRow>): ReportRow => ({ id: crypto.randomUUID(), channel: 'web', status: 'open', createdAt: at(0), ...over });

describe('computeKpis', () => {
  it('computes first reply, handle and resolution times, rates, FCR, SLA and CSAT', () => {
    // Prepare: 4 conversations; 3 replied (5, 10, 30 min), 2 resolved (one reopened once)
    const rows = [
      row({ firstReplyAt: at(5), status: 'resolved', resolvedAt: at(65), csat: { score: 5 } }),
      row({ firstReplyAt: at(10), status: 'resolved', resolvedAt: at(130), reopenCount: 1, csat: { score: 2 } }),
      row({ firstReplyAt: at(30) }),
      row({ channel: 'whatsapp' }),
    ];

    // Act
    const kpis = computeKpis(rows, { firstReplySeconds: 15 * 60, resolutionSeconds: 90 * 60 }, at(200));

    // Assess
    expect(kpis.conversations).toBe(4);
    expect(kpis.resolved).toBe(2);
    expect(kpis.resolutionRate).toBe(0.5);
    expect(kpis.firstReplySeconds).toEqual({ avg: 900, median: 600, count: 3 });
    expect(kpis.handleSeconds).toEqual({ avg: 5400, median: 5400, count: 2 });
    expect(kpis.resolutionSeconds).toEqual({ avg: 5850, median: 5850, count: 2 });
    expect(kpis.firstContactResolutionRate).toBe(0.5);
    // The WhatsApp conversation has waited 200 min for a reply: a miss, as are the two open
    // conversations for resolution.
    expect(kpis.sla.firstReplyAttainment).toBe(0.5);
    expect(kpis.sla.resolutionAttainment).toBe(0.25);
    expect(kpis.csat).toEqual({ responses: 2, average: 3.5, satisfiedRate: 0.5 });
  });

  it('counts a conversation still waiting past a target as a miss, and leaves out one still inside it', () => {
    const sla = { firstReplySeconds: 15 * 60, resolutionSeconds: 90 * 60 };
    const rows = [row({ firstReplyAt: at(5), status: 'resolved', resolvedAt: at(20) }), row({})];

    // 10 minutes in, the second conversation is still inside both targets: nothing to judge yet.
    expect(computeKpis(rows, sla, at(10)).sla).toMatchObject({ firstReplyAttainment: 1, resolutionAttainment: 1 });
    // 60 minutes in, its first reply is late whatever happens next; its resolution is not yet.
    expect(computeKpis(rows, sla, at(60)).sla).toMatchObject({ firstReplyAttainment: 0.5, resolutionAttainment: 1 });
    expect(computeKpis(rows, sla, at(100)).sla).toMatchObject({ firstReplyAttainment: 0.5, resolutionAttainment: 0.5 });
  });

  it('judges a conversation resolved without a reply by how long the customer waited', () => {
    const sla = { firstReplySeconds: 15 * 60, resolutionSeconds: 90 * 60 };
    const quick = row({ status: 'resolved', resolvedAt: at(5) });
    const slow = row({ status: 'resolved', resolvedAt: at(40) });

    expect(computeKpis([quick], sla, at(300)).sla.firstReplyAttainment).toBeNull();
    expect(computeKpis([quick, slow], sla, at(300)).sla.firstReplyAttainment).toBe(0);
  });

  it('leaves a first reply written after the resolution (a follow-up) out of handle time', () => {
    const rows = [
      row({ firstReplyAt: at(10), status: 'resolved', resolvedAt: at(40) }),
      row({ firstReplyAt: at(300), status: 'resolved', resolvedAt: at(60) }),
    ];

    expect(computeKpis(rows, { firstReplySeconds: 60, resolutionSeconds: 60 }, at(400)).handleSeconds).toEqual({ avg: 1800, median: 1800, count: 1 });
  });

  it('takes no reply written before the episode started for its first reply', () => {
    // A follow-up written on the resolved conversation, applied just after the customer's new
    // message had started a new episode: the customer is still waiting.
    const rows = [row({ createdAt: at(100), firstReplyAt: at(99) }), row({ createdAt: at(100), firstReplyAt: at(104), status: 'resolved', resolvedAt: at(110) })];

    const kpis = computeKpis(rows, { firstReplySeconds: 15 * 60, resolutionSeconds: 90 * 60 }, at(200));

    expect(kpis.firstReplySeconds).toEqual({ avg: 240, median: 240, count: 1 });
    expect(kpis.handleSeconds).toEqual({ avg: 360, median: 360, count: 1 });
    // Waiting 100 minutes for a reply: a miss.
    expect(kpis.sla.firstReplyAttainment).toBe(0.5);
  });

  it('counts a conversation reopened and still open against first-contact resolution', () => {
    const rows = [
      row({ firstReplyAt: at(5), status: 'resolved', resolvedAt: at(20) }),
      row({ firstReplyAt: at(5), status: 'resolved', resolvedAt: at(30) }),
      // Resolved, then the customer wrote again: open, waiting for the team again.
      row({ firstReplyAt: at(5), status: 'open', reopenCount: 1 }),
      row({ status: 'open' }),
    ];

    expect(computeKpis(rows, { firstReplySeconds: 60, resolutionSeconds: 60 }, at(100)).firstContactResolutionRate).toBe(0.6667);
  });

  it('counts a conversation resolved without any agent reply as resolved, with no first reply or handle time', () => {
    const sla = { firstReplySeconds: 15 * 60, resolutionSeconds: 90 * 60 };
    // "Never mind, found it": resolved after 20 minutes, nobody having answered
    const kpis = computeKpis([row({ status: 'resolved', resolvedAt: at(20) })], sla, at(300));

    expect(kpis).toMatchObject({ conversations: 1, resolved: 1, resolutionRate: 1, firstContactResolutionRate: 1 });
    expect(kpis.firstReplySeconds.count).toBe(0);
    expect(kpis.handleSeconds.count).toBe(0);
    expect(kpis.resolutionSeconds).toEqual({ avg: 1200, median: 1200, count: 1 });
    // The customer waited 20 minutes with no answer: past the 15-minute target.
    expect(kpis.sla).toMatchObject({ firstReplyAttainment: 0, resolutionAttainment: 1 });
  });

  it('counts a resolved conversation snoozed or set pending since as reopened, and not resolved', () => {
    const rows = [row({ firstReplyAt: at(5), status: 'snoozed', reopenCount: 1 }), row({ firstReplyAt: at(5), status: 'pending', reopenCount: 1 }), row({ firstReplyAt: at(5), status: 'resolved', resolvedAt: at(10) })];

    const kpis = computeKpis(rows, { firstReplySeconds: 60 * 60, resolutionSeconds: 60 * 60 }, at(30));

    expect(kpis).toMatchObject({ resolved: 1, resolutionRate: 0.3333, firstContactResolutionRate: 0.3333 });
    // Still inside the resolution target, the two are not judged yet.
    expect(kpis.sla.resolutionAttainment).toBe(1);
  });

  it('leaves a rating given in an earlier episode to that episode', () => {
    const rows = [
      // A returning customer's new issue still shows the rating of the last one.
      row({ createdAt: at(100), csat: { score: 1, at: at(50) } }),
      row({ status: 'resolved', resolvedAt: at(40), csat: { score: 4, at: at(45) } }),
      row({ status: 'resolved', resolvedAt: at(40), csat: { score: 5 } }),
      // A conversation that took an issue begun before its rating (moved from another channel) keeps
      // the rating of the episode it closed, which that episode's own item counts.
      row({ createdAt: at(10), csat: { score: 2, at: at(60), ofEarlierEpisode: true } }),
    ];

    expect(computeKpis(rows, { firstReplySeconds: 60, resolutionSeconds: 60 }, at(200)).csat).toEqual({ responses: 2, average: 4.5, satisfiedRate: 1 });
  });

  it('gives null rather than a made-up number when nothing is there to measure', () => {
    const kpis = computeKpis([], { firstReplySeconds: 60, resolutionSeconds: 60 });
    expect(kpis.resolutionRate).toBeNull();
    expect(kpis.firstReplySeconds.avg).toBeNull();
    expect(kpis.csat.average).toBeNull();
  });
});

describe('summarizeRows', () => {
  it('breaks the figures down per channel and per agent, unassigned conversations in the totals only', () => {
    const sla = { firstReplySeconds: 15 * 60, resolutionSeconds: 90 * 60 };
    const rows = [
      row({ assigneeId: 'ana', firstReplyAt: at(2), status: 'resolved', resolvedAt: at(30), csat: { score: 5 } }),
      row({ assigneeId: 'ana', channel: 'whatsapp', firstReplyAt: at(20) }),
      row({ assigneeId: 'bo', firstReplyAt: at(4), status: 'resolved', resolvedAt: at(10), reopenCount: 1 }),
      row({ assigneeId: 'none' }),
      row({}),
    ];

    const report = summarizeRows(rows, sla, at(100));

    expect(Object.keys(report.byAgent)).toEqual(['ana', 'bo']);
    expect(report.byAgent.ana).toMatchObject({ conversations: 2, resolved: 1, firstReplySeconds: { avg: 660, median: 660, count: 2 }, csat: { responses: 1, average: 5 } });
    expect(report.byAgent.ana!.sla.firstReplyAttainment).toBe(0.5);
    expect(report.byAgent.bo).toMatchObject({ conversations: 1, resolved: 1, firstContactResolutionRate: 0 });
    expect(report.conversations).toBe(5);
    expect(report.byChannel.web!.conversations).toBe(4);
    expect(report.byChannel.whatsapp!.conversations).toBe(1);
  });

  it('credits a reopened conversation its holder has not resolved again to the agent whose resolution it undid', () => {
    const sla = { firstReplySeconds: 15 * 60, resolutionSeconds: 90 * 60 };
    const rows = [
      // Rita resolved these; the customer reopened them: back in the queue, or taken by Sam
      row({ reopenCount: 1, resolvedBy: 'rita' }),
      row({ assigneeId: 'sam', reopenCount: 1, resolvedBy: 'rita' }),
      // Rita's, resolved on first contact
      row({ assigneeId: 'rita', status: 'resolved', resolvedAt: at(30), resolvedBy: 'rita' }),
      // Sam resolved it again himself: his, not resolved on first contact
      row({ assigneeId: 'sam', status: 'resolved', resolvedAt: at(40), reopenCount: 1, resolvedBy: 'sam' }),
      // Never reopened: its holder's, whoever resolved it
      row({ assigneeId: 'sam', status: 'resolved', resolvedAt: at(50), resolvedBy: 'rita' }),
      // Auto-resolved in the queue, then reopened: nobody's
      row({ reopenCount: 1 }),
    ];

    const report = summarizeRows(rows, sla, at(100));

    expect(Object.keys(report.byAgent)).toEqual(['rita', 'sam']);
    expect(report.byAgent.rita).toMatchObject({ conversations: 3, resolved: 1, firstContactResolutionRate: 0.3333 });
    expect(report.byAgent.sam).toMatchObject({ conversations: 2, resolved: 2, firstContactResolutionRate: 0.5 });
    expect(report).toMatchObject({ conversations: 6, resolved: 3, firstContactResolutionRate: 0.3333 });
  });

  it('credits a resolution made from the queue to its resolver, whether it holds or the customer undoes it', () => {
    const sla = { firstReplySeconds: 15 * 60, resolutionSeconds: 90 * 60 };
    const rows = [
      // Rita answered and resolved these with nobody holding them; the customer rated one, reopened the other
      row({ firstReplyAt: at(2), status: 'resolved', resolvedAt: at(30), resolvedBy: 'rita', csat: { score: 5, at: at(31) } }),
      row({ reopenCount: 1, resolvedBy: 'rita' }),
      // Auto-resolved in the queue: nobody's
      row({ status: 'resolved', resolvedAt: at(40) }),
    ];

    const report = summarizeRows(rows, sla, at(100));

    expect(Object.keys(report.byAgent)).toEqual(['rita']);
    expect(report.byAgent.rita).toMatchObject({ conversations: 2, resolved: 1, firstContactResolutionRate: 0.5, handleSeconds: { count: 1 }, csat: { responses: 1, average: 5 } });
    expect(report).toMatchObject({ conversations: 3, resolved: 2 });
  });

  it('has a row for every agent id the API accepts, "__proto__" and "constructor" too', () => {
    const sla = { firstReplySeconds: 15 * 60, resolutionSeconds: 90 * 60 };
    const rows = [row({ assigneeId: '__proto__' }), row({ assigneeId: 'constructor' }), row({ assigneeId: 'ana' })];

    const report = JSON.parse(JSON.stringify(summarizeRows(rows, sla, at(100)))) as ReturnType<typeof summarizeRows>;

    expect(Object.keys(report.byAgent)).toEqual(['__proto__', 'ana', 'constructor']);
    expect(Object.values(report.byAgent).map((k) => k.conversations)).toEqual([1, 1, 1]);
  });
});

describe('who a resolution is credited to', () => {
  const conversation = (over: Partial<ConversationRecord>) =>
    ({ id: 'c1', channel: 'web', status: 'open', assigneeId: null, createdAt: at(0), updatedAt: at(0), lastMessageAt: at(0), version: 1, ...over }) as ConversationRecord;

  it('records the agent holding it, else the agent who resolved it, else nobody, and keeps it through a reopening', () => {
    expect(withStatus(conversation({ assigneeId: 'rita' }), 'resolved', at(5), 'ana').resolvedBy).toBe('rita');
    expect(withStatus(conversation({}), 'resolved', at(5), 'ana').resolvedBy).toBe('ana');
    // Auto-resolved in the queue after an agent's earlier resolution: not theirs any more
    expect(withStatus(conversation({ resolvedBy: 'ana' }), 'resolved', at(5)).resolvedBy).toBeUndefined();
    const reopened = withStatus(conversation({ status: 'resolved', resolvedAt: at(5), resolvedBy: 'rita' }), 'open', at(9));
    expect(reopened).toMatchObject({ reopenCount: 1, resolvedBy: 'rita' });
  });

  it('keeps it with a closed episode, and moves it with a reopened episode only, replacing the target’s own', () => {
    expect(closedEpisodeItem(conversation({ status: 'resolved', resolvedAt: at(5), reopenCount: 1, resolvedBy: 'rita' })).resolvedBy).toBe('rita');
    expect(movedEpisode(conversation({ reopenCount: 1, resolvedBy: 'rita' }))).toMatchObject({ reopenCount: 1, resolvedBy: 'rita' });
    // Resolved in an episode before this one, which starts afresh: nothing to carry, and the
    // target's own (of an episode of its own) must go
    const fresh = movedEpisode(conversation({ resolvedBy: 'rita' }));
    expect('resolvedBy' in fresh && fresh.resolvedBy === undefined).toBe(true);
  });
});

describe('narrowing a report to a team or a label', () => {
  it('keeps a conversation of that team, or carrying that label, both when both are asked', () => {
    const billingRefund: ConversationTags = { team: 'billing', labels: ['refund', 'vip'] };
    expect(matchesTeamAndLabel(billingRefund, { team: 'billing' })).toBe(true);
    expect(matchesTeamAndLabel(billingRefund, { label: 'vip' })).toBe(true);
    expect(matchesTeamAndLabel(billingRefund, { team: 'billing', label: 'refund' })).toBe(true);
    expect(matchesTeamAndLabel(billingRefund, { team: 'billing', label: 'shipping' })).toBe(false);
    expect(matchesTeamAndLabel(billingRefund, { team: 'sales', label: 'refund' })).toBe(false);
    // Names match exactly: a team is not a prefix, a label not a substring
    expect(matchesTeamAndLabel(billingRefund, { team: 'bill' })).toBe(false);
    expect(matchesTeamAndLabel(billingRefund, { label: 'ref' })).toBe(false);
  });

  it('leaves out a conversation with no team, no labels or no item, and keeps every row without a filter', () => {
    for (const tags of [undefined, {}, { team: null, labels: [] }]) {
      expect(matchesTeamAndLabel(tags, { team: 'billing' })).toBe(false);
      expect(matchesTeamAndLabel(tags, { label: 'refund' })).toBe(false);
      expect(matchesTeamAndLabel(tags, {})).toBe(true);
    }
  });

  it('counts a closed episode under its conversation’s current team and labels', () => {
    // c1 is now billing's, labelled refund: its earlier episode goes with it; c2 is sales'
    const episode = row({ id: 'c1', createdAt: at(-9000), key: { pk: 'CONV#c1', sk: `EPISODE#${at(-9000)}` } });
    const current = row({ id: 'c1', key: { pk: 'CONV#c1', sk: 'CONV' } });
    const other = row({ id: 'c2', key: { pk: 'CONV#c2', sk: 'CONV' } });
    const tags = new Map<string, ConversationTags>([
      ['c1', { team: 'billing', labels: ['refund'] }],
      ['c2', { team: 'sales', labels: [] }],
    ]);

    expect(keepTeamAndLabel([episode, current, other], tags, { team: 'billing' })).toEqual([episode, current]);
    expect(keepTeamAndLabel([episode, current, other], tags, { label: 'refund' })).toEqual([episode, current]);
    expect(keepTeamAndLabel([episode, current, other], tags, { team: 'sales' })).toEqual([other]);
    expect(keepTeamAndLabel([episode, current, other], tags, {})).toEqual([episode, current, other]);
  });
});

describe('daysBetween', () => {
  it('lists UTC days inclusively and refuses reversed or too long ranges', () => {
    expect(daysBetween(new Date('2026-11-01T23:00:00Z'), new Date('2026-11-03T01:00:00Z'))).toEqual(['2026-11-01', '2026-11-02', '2026-11-03']);
    expect(() => daysBetween(new Date('2026-11-03T00:00:00Z'), new Date('2026-11-01T00:00:00Z'))).toThrow(/from must not be after to/);
    expect(() => daysBetween(new Date('2026-01-01T00:00:00Z'), new Date('2026-12-01T00:00:00Z'))).toThrow(/at most/);
  });

  it('lists the days of any year from 0000 to 9999 in UTC, and refuses a time outside them', () => {
    // Date.UTC takes the years 0 to 99 for 1900 to 1999: the days must come from the time itself.
    expect(daysBetween(new Date('0050-01-01T12:00:00Z'), new Date('0050-01-02T00:00:00Z'))).toEqual(['0050-01-01', '0050-01-02']);
    expect(daysBetween(new Date('9999-12-31T00:00:00Z'), new Date('9999-12-31T23:59:59.999Z'))).toEqual(['9999-12-31']);
    expect(() => daysBetween(new Date('9999-12-31T00:00:00Z'), new Date('9999-12-31T23:00:00-02:00'))).toThrow(/0000 to 9999/);
    expect(() => daysBetween(new Date('0000-01-01T00:00:00+01:00'), new Date('0000-01-01T12:00:00Z'))).toThrow(/0000 to 9999/);
  });

  it('takes a 92-day quarter in any time zone, though it touches 93 UTC days, and refuses a millisecond more', () => {
    // The third quarter in Paris: from 22:00 UTC on 30 June to 21:59:59.999 UTC on 30 September
    const from = new Date('2026-07-01T00:00:00+02:00');
    const days = daysBetween(from, new Date('2026-09-30T23:59:59.999+02:00'));

    expect(days).toHaveLength(93);
    expect([days[0], days.at(-1)]).toEqual(['2026-06-30', '2026-09-30']);
    expect(daysBetween(from, new Date('2026-10-01T00:00:00+02:00'))).toHaveLength(93);
    expect(() => daysBetween(from, new Date('2026-10-01T00:00:00.001+02:00'))).toThrow(/at most 92 days/);
  });
});

describe('loadReportRows', () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  beforeEach(() => {
    vi.stubEnv('TABLE_NAME', 'conversa-unit');
    ddb.reset();
  });
  afterEach(() => vi.unstubAllEnvs());

  it('reads a 92-day range with one Query per day, a few at a time, each conversation once from its episode start', async () => {
    // Prepare: every day's partition holds one conversation, answered after a varying while
    const partitions: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    ddb.on(QueryCommand).callsFake(async (input: { IndexName: string; ExpressionAttributeValues: Record<string, string> }) => {
      const pk = input.ExpressionAttributeValues[':pk']!;
      partitions.push(pk);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 1 + ((partitions.length * 7) % 5)));
      inFlight--;
      const day = pk.slice('CREATED#'.length);
      return { Items: [{ id: day, channel: 'web', status: 'open', createdAt: '2020-01-01T00:00:00.000Z', gsi3sk: `${day}T12:00:00.000Z#${day}` }] };
    });

    // Act
    const rows = await loadReportRows(new Date('2026-08-01T00:00:00Z'), new Date('2026-10-31T23:59:59Z'));

    // Assess
    expect(ddb.commandCalls(QueryCommand).every((c) => c.args[0].input.IndexName === 'gsi3')).toBe(true);
    expect(new Set(partitions).size).toBe(92);
    expect(partitions).toHaveLength(92);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(maxInFlight).toBeLessThanOrEqual(DAY_QUERY_CONCURRENCY);
    expect(rows.map((r) => r.id)).toEqual(daysBetween(new Date('2026-08-01T00:00:00Z'), new Date('2026-10-31T23:59:59Z')));
    expect(rows[0]!.createdAt).toBe('2026-08-01T12:00:00.000Z');
  });

  it('reads who resolved a reopened conversation in one BatchGet of that attribute, for the rows that need it only', async () => {
    // Prepare: one day holding a reopened conversation in the queue, one resolved on first
    // contact, one reopened and resolved again by its holder
    const item = (id: string, over: Record<string, unknown>) => ({ pk: `CONV#${id}`, sk: 'CONV', id, channel: 'web', gsi3sk: `2026-11-02T09:00:00.000Z#${id}`, ...over });
    ddb.on(QueryCommand).resolves({
      Items: [
        item('c1', { status: 'open', reopenCount: 1 }),
        item('c2', { status: 'resolved', resolvedAt: at(30), assigneeId: 'ana' }),
        item('c3', { status: 'resolved', resolvedAt: at(30), assigneeId: 'bo', reopenCount: 2 }),
      ],
    });
    ddb.on(BatchGetCommand).resolves({ Responses: { 'conversa-unit': [{ pk: 'CONV#c1', sk: 'CONV', resolvedBy: 'rita' }] } });

    // Act
    const rows = await loadReportRows(new Date('2026-11-02T00:00:00Z'), new Date('2026-11-02T23:59:59Z'));

    // Assess
    expect(rows.map((r) => [r.id, r.resolvedBy])).toEqual([
      ['c1', 'rita'],
      ['c2', undefined],
      ['c3', undefined],
    ]);
    const gets = ddb.commandCalls(BatchGetCommand);
    expect(gets).toHaveLength(1);
    const request = gets[0]!.args[0].input.RequestItems!['conversa-unit']!;
    expect(request.Keys).toEqual([{ pk: 'CONV#c1', sk: 'CONV' }]);
    expect(request.ProjectionExpression!.split(', ').map((name) => request.ExpressionAttributeNames![name])).toEqual(['pk', 'sk', 'resolvedBy']);
  });

  it('reads who resolved a conversation resolved with nobody holding it, and for nobody else resolved', async () => {
    // Prepare: resolved from the queue (never reopened), and resolved by its holder
    const item = (id: string, over: Record<string, unknown>) => ({ pk: `CONV#${id}`, sk: 'CONV', id, channel: 'web', status: 'resolved', resolvedAt: at(30), gsi3sk: `2026-11-02T09:00:00.000Z#${id}`, ...over });
    ddb.on(QueryCommand).resolves({ Items: [item('c1', {}), item('c2', { assigneeId: 'ana' })] });
    ddb.on(BatchGetCommand).resolves({ Responses: { 'conversa-unit': [{ pk: 'CONV#c1', sk: 'CONV', resolvedBy: 'rita' }] } });

    // Act
    const rows = await loadReportRows(new Date('2026-11-02T00:00:00Z'), new Date('2026-11-02T23:59:59Z'));

    // Assess
    expect(rows.map((r) => [r.id, r.resolvedBy])).toEqual([
      ['c1', 'rita'],
      ['c2', undefined],
    ]);
    expect(ddb.commandCalls(BatchGetCommand).map((c) => c.args[0].input.RequestItems!['conversa-unit']!.Keys)).toEqual([[{ pk: 'CONV#c1', sk: 'CONV' }]]);
  });

  it('reads each conversation’s team and labels once, only when asked for, then who resolved the rows kept', async () => {
    // Prepare: one day holding c1 (billing, refund) and an earlier episode of it (Ana's), c2 (sales,
    // refund, reopened in the queue) and c3 (billing, reopened in the queue)
    const item = (id: string, sk: string, over: Record<string, unknown>) => ({ pk: `CONV#${id}`, sk, id, channel: 'web', status: 'open', gsi3sk: `2026-11-02T09:00:00.000Z#${id}`, ...over });
    ddb.on(QueryCommand).resolves({
      Items: [
        item('c1', 'EPISODE#2026-11-02T08:00:00.000Z', { status: 'resolved', resolvedAt: at(30), assigneeId: 'ana', gsi3sk: '2026-11-02T08:00:00.000Z#c1' }),
        item('c1', 'CONV', {}),
        item('c2', 'CONV', { reopenCount: 1 }),
        item('c3', 'CONV', { reopenCount: 1 }),
      ],
    });
    const tags: Record<string, Record<string, unknown>> = {
      c1: { id: 'c1', team: 'billing', labels: ['refund'] },
      c2: { id: 'c2', team: 'sales', labels: ['refund'] },
      c3: { id: 'c3', team: 'billing' },
    };
    ddb.on(BatchGetCommand).callsFake(async (input: { RequestItems: Record<string, { Keys: { pk: string; sk: string }[]; ExpressionAttributeNames: Record<string, string> }> }) => {
      const request = input.RequestItems['conversa-unit']!;
      const wantsTags = Object.values(request.ExpressionAttributeNames).includes('labels');
      const items = request.Keys.map((k) => (wantsTags ? tags[k.pk.slice('CONV#'.length)]! : { ...k, resolvedBy: 'rita' }));
      return { Responses: { 'conversa-unit': items } };
    });
    const day = [new Date('2026-11-02T00:00:00Z'), new Date('2026-11-02T23:59:59Z')] as const;
    const projection = (call: number) => {
      const request = ddb.commandCalls(BatchGetCommand)[call]!.args[0].input.RequestItems!['conversa-unit']!;
      return { keys: request.Keys, attributes: request.ProjectionExpression!.split(', ').map((name) => request.ExpressionAttributeNames![name]) };
    };

    // Act: billing's conversations
    const billing = await loadReportRows(...day, { team: 'billing' });

    // Assess: c1's two rows and c3; the three conversations read once each, then c3's resolver
    expect(billing.map((r) => [r.id, r.key!.sk, r.resolvedBy])).toEqual([
      ['c1', 'EPISODE#2026-11-02T08:00:00.000Z', undefined],
      ['c1', 'CONV', undefined],
      ['c3', 'CONV', 'rita'],
    ]);
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(2);
    expect(projection(0)).toEqual({ keys: ['c1', 'c2', 'c3'].map((id) => ({ pk: `CONV#${id}`, sk: 'CONV' })), attributes: ['id', 'team', 'labels'] });
    expect(projection(1)).toEqual({ keys: [{ pk: 'CONV#c3', sk: 'CONV' }], attributes: ['pk', 'sk', 'resolvedBy'] });

    // Act: billing's conversations labelled refund; then the label alone
    ddb.resetHistory();
    expect((await loadReportRows(...day, { team: 'billing', label: 'refund' })).map((r) => r.key!.sk)).toEqual(['EPISODE#2026-11-02T08:00:00.000Z', 'CONV']);
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(1);
    expect((await loadReportRows(...day, { label: 'refund' })).map((r) => r.id)).toEqual(['c1', 'c1', 'c2']);

    // Act: no team or label: nothing read beyond the resolvers
    ddb.resetHistory();
    expect(await loadReportRows(...day)).toHaveLength(4);
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(1);
    expect(projection(0).attributes).toEqual(['pk', 'sk', 'resolvedBy']);
  });
});
