/**
 * The report's figures against a reference model: seeded random stories (customers writing on several
 * channels, replies, notes, transfers, snoozes, resolutions and reopenings by agents and customers,
 * ratings, a customer back days later) are played on the local stack while the model follows them
 * from the README's definitions, from the times the stack gave each event; every figure of the
 * summary, overall, per channel and per agent, must be the model's.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';
import { customerWritesOn, newHandle, phoneHandles } from './channels-support';
import { getConversation, updateConversation } from '../../src/store/conversations';
import { listMessages } from '../../src/store/messages';
import { runTimer } from '../../src/domain/engagement';
import { getSettings } from '../../src/domain/settings';

let stack: LocalStack;
let jwt: string;
const sockets: WsClient[] = [];

const DAY = 86_400_000;
const SLA = { firstReplySeconds: 1, resolutionSeconds: 3 };
const iso = (ms: number) => new Date(ms).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  stack = await startTestStack();
  jwt = await agentToken(stack.httpUrl, 'agent-rita', 'admin', 'Rita');
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: jwt, body: { sla: SLA } })).status).toBe(200);
});
afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

type Channel = 'web' | 'whatsapp' | 'sms';
type Status = 'open' | 'pending' | 'snoozed' | 'resolved';

/** One episode as the README defines its figures. */
interface Episode {
  channel: Channel;
  /** The conversation counting it (the one on the new channel once moved). */
  conversationId: string;
  /** Closed by a customer back days later: its holder is the one it had then. */
  frozen?: boolean;
  start: string;
  firstReplyAt?: string;
  status: Status;
  resolvedAt?: string;
  reopened: boolean;
  csat?: number;
  /** Whom its latest resolution is credited to: its holder then, else the agent who resolved it. */
  resolvedBy?: string;
  /** Its holder, when the episode closed (a frozen one) or now (read from the stack at the end). */
  holder?: string;
}

interface Story {
  id: string;
  channel: Channel;
  /** Frozen episodes first, the live one last. */
  episodes: Episode[];
  wentBack: boolean;
  /** Moved to SMS (a WhatsApp customer's phone number takes them there). */
  moved: boolean;
  /** Moved once resolved: the conversation made there is the team's until the customer writes. */
  awaitingCustomer: boolean;
  /** A campaign went out since the resolution: the customer's answer is a new contact. */
  campaigned: boolean;
  sms?: string;
  /** What was played, to read a failure by. */
  played: Step[];
  say: (text: string) => Promise<void>;
}

/** A seeded generator (mulberry32): a failing seed plays the same stories again. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

let said = 0;
const unique = (text: string) => `${text} #${++said}`;

/** The time the stack stored the customer's message `text` under. */
async function inboundAt(id: string, text: string): Promise<string> {
  return eventually(async () => (await listMessages(id, { limit: 100, includePrivate: true, consistent: true })).items.find((m) => m.direction === 'inbound' && m.text === text)?.createdAt);
}

async function begin(channel: Channel): Promise<Story> {
  const text = unique('Hello, I need help');
  let id: string;
  let say: (text: string) => Promise<void>;
  let sms: string | undefined;
  if (channel === 'web') {
    const session = await visitorSession(stack.httpUrl);
    const ws = await WsClient.connect(stack.wsUrl, session.token);
    sockets.push(ws);
    const send = async (t: string) => {
      const clientMessageId = crypto.randomUUID();
      ws.send({ action: 'sendMessage', text: t, clientMessageId });
      return (await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId)).conversationId as string;
    };
    id = await send(text);
    say = async (t) => void (await send(t));
  } else {
    const phone = phoneHandles();
    const handle = channel === 'whatsapp' ? phone.whatsapp : newHandle(channel);
    id = await customerWritesOn(stack, channel, handle, text);
    say = async (t) => void (await customerWritesOn(stack, channel, handle, t));
    if (channel === 'whatsapp') sms = phone.sms;
  }
  // A conversation starts with the customer's first message.
  const start = await inboundAt(id, text);
  return { id, channel, episodes: [{ channel, conversationId: id, start, status: 'open', reopened: false }], wentBack: false, moved: false, awaitingCustomer: false, campaigned: false, sms, played: [], say };
}

const post = (path: string, body?: unknown) => http(stack.httpUrl, 'POST', path, { token: jwt, ...(body ? { body } : {}) });

type Step = 'campaign' | 'autoResolve' | 'move' | 'customer' | 'reply' | 'note' | 'resolve' | 'reopen' | 'snooze' | 'pending' | 'assign' | 'transfer' | 'wait' | 'rate' | 'backLater';

/** The steps that make sense for the live episode as it stands. */
function possible(story: Story): Step[] {
  const live = story.episodes.at(-1)!;
  if (story.awaitingCustomer) return ['customer'];
  const always: Step[] = [
    'customer',
    'reply',
    'note',
    'assign',
    'transfer',
    'wait',
    ...(story.sms && !story.moved ? ['move' as const] : []),
    ...(story.channel === 'web' ? [] : ['campaign' as const]),
  ];
  if (live.status === 'resolved') return [...always, 'reopen', 'snooze', 'rate', ...(story.wentBack ? [] : ['backLater' as const])];
  return [...always, 'resolve', 'resolve', ...(live.status === 'snoozed' ? [] : ['autoResolve' as const]), 'snooze', 'pending'];
}

/** Plays one step on the stack and follows it in the model. */
async function play(story: Story, step: Step, next: () => number): Promise<void> {
  story.played.push(step);
  const live = story.episodes.at(-1)!;
  // Whatever else happens to it drops the campaign's hold on the customer's next message.
  const campaigned = story.campaigned;
  if (!['campaign', 'note', 'reply', 'assign', 'transfer', 'wait', 'rate'].includes(step)) story.campaigned = false;
  const leaveResolved = () => {
    if (live.status === 'resolved') {
      live.reopened = true;
      live.resolvedAt = undefined;
    }
  };
  switch (step) {
    case 'customer': {
      const text = unique('One more thing');
      if (campaigned) {
        // Answering a campaign sent since the resolution: a new contact, however soon.
        Object.assign(live, { frozen: true, holder: (await getConversation(story.id, true))!.assigneeId ?? undefined });
        await story.say(text);
        story.episodes.push({ channel: story.channel, conversationId: story.id, start: await inboundAt(story.id, text), status: 'open', reopened: false });
        return;
      }
      await story.say(text);
      const at = await inboundAt(story.id, text);
      if (story.awaitingCustomer) {
        // The customer's first message on the conversation the team started there starts its episode.
        story.awaitingCustomer = false;
        story.episodes.push({ channel: story.channel, conversationId: story.id, start: at, status: 'open', reopened: false });
        return;
      }
      leaveResolved();
      live.status = 'open';
      return;
    }
    case 'move': {
      const res = await post(`/v1/conversations/${story.id}/channel`, { channel: 'sms' });
      expect(res.status).toBe(201);
      story.moved = true;
      story.id = res.body.id;
      story.channel = 'sms';
      const handle = story.sms!;
      story.say = async (t) => void (await customerWritesOn(stack, 'sms', handle, t));
      // A resolved issue is over: it stays where it was, and the team starts the new conversation.
      if (live.status === 'resolved') story.awaitingCustomer = true;
      else Object.assign(live, { channel: 'sms', conversationId: story.id, status: 'open' });
      return;
    }
    case 'reply': {
      const res = await post(`/v1/conversations/${story.id}/messages`, { text: unique('Here is the answer') });
      expect(res.status).toBe(202);
      const at = res.body.message.createdAt as string;
      // A follow-up on a resolved conversation answers nothing waiting.
      if (live.status !== 'resolved' && !live.firstReplyAt && at >= live.start) live.firstReplyAt = at;
      return;
    }
    case 'note':
      expect((await post(`/v1/conversations/${story.id}/messages`, { text: unique('Internal note'), private: true })).status).toBe(202);
      return;
    case 'resolve': {
      const res = await post(`/v1/conversations/${story.id}/resolve`);
      expect(res.status).toBe(200);
      live.status = 'resolved';
      live.resolvedAt = res.body.resolvedAt;
      live.resolvedBy = res.body.assigneeId ?? 'agent-rita';
      return;
    }
    case 'campaign': {
      // A proactive message: no reply, whatever it finds.
      const contactId = (await getConversation(story.id, true))!.contact.id;
      const since = iso(Date.now());
      const sent = await post('/v1/proactive', { contactId, text: unique('Our summer sale starts today'), channel: story.channel });
      expect(sent.status).toBe(202);
      await eventually(async () => ((await getConversation(story.id, true))!.lastUnpromptedAt! >= since ? true : undefined));
      if (live.status === 'resolved') story.campaigned = true;
      return;
    }
    case 'autoResolve': {
      // Nobody wrote for the configured time: the timer resolves it (and asks for a rating).
      const delay = (await getSettings()).timers.autoResolveAfterSeconds * 1000;
      const after = await eventually(async () => {
        await updateConversation(story.id, (c) => ({ ...c, lastMessageAt: iso(Date.parse(c.lastMessageAt) - delay - 2000) }));
        await runTimer({ kind: 'autoResolve', conversationId: story.id, dueAt: iso(Date.now()) });
        const c = (await getConversation(story.id, true))!;
        return c.status === 'resolved' ? c : undefined;
      });
      live.status = 'resolved';
      live.resolvedAt = after.resolvedAt;
      live.resolvedBy = after.assigneeId ?? undefined;
      return;
    }
    case 'reopen':
      expect((await post(`/v1/conversations/${story.id}/reopen`)).status).toBe(200);
      leaveResolved();
      live.status = 'open';
      return;
    case 'snooze':
    case 'pending': {
      const body = step === 'snooze' ? { status: 'snoozed', snoozedUntil: iso(Date.now() + 3_600_000) } : { status: 'pending' };
      expect((await post(`/v1/conversations/${story.id}/status`, body)).status).toBe(200);
      leaveResolved();
      live.status = body.status as Status;
      return;
    }
    case 'assign':
      expect((await post(`/v1/conversations/${story.id}/assign`, { agentId: 'agent-rita' })).status).toBe(200);
      return;
    case 'transfer':
      expect((await post(`/v1/conversations/${story.id}/transfer`, { agentId: 'agent-sam', note: 'Yours' })).status).toBe(200);
      return;
    case 'wait':
      // Past the first-reply target (1 s): what comes next is late.
      await sleep(1100);
      return;
    case 'rate': {
      // Asked at the resolution, as an auto-resolve asks (an agent's resolution asks nothing).
      await updateConversation(story.id, (c) => ({ ...c, engagement: { ...c.engagement, csatAskedAt: c.resolvedAt, csatResolvedAt: c.resolvedAt } }));
      const score = 1 + Math.floor(next() * 5);
      await story.say(String(score));
      await eventually(async () => ((await getConversation(story.id, true))?.csat?.score === score ? true : undefined));
      live.csat = score;
      return;
    }
    case 'backLater': {
      // The resolved episode happened five days ago; the customer now writes about something else.
      const back = (at: string | undefined) => (at === undefined ? undefined : iso(Date.parse(at) - 5 * DAY));
      await updateConversation(story.id, (c) => ({
        ...c,
        createdAt: back(c.createdAt)!,
        ...(c.reportStartedAt ? { reportStartedAt: back(c.reportStartedAt) } : {}),
        ...(c.firstReplyAt ? { firstReplyAt: back(c.firstReplyAt) } : {}),
        resolvedAt: back(c.resolvedAt),
        ...(c.csat?.at ? { csat: { ...c.csat, at: back(c.csat.at)! } } : {}),
      }));
      Object.assign(live, { start: back(live.start), firstReplyAt: back(live.firstReplyAt), resolvedAt: back(live.resolvedAt) });
      live.holder = (await getConversation(story.id, true))!.assigneeId ?? undefined;
      live.frozen = true;
      story.wentBack = true;
      const text = unique('Something else now');
      await story.say(text);
      story.episodes.push({ channel: story.channel, conversationId: story.id, start: await inboundAt(story.id, text), status: 'open', reopened: false });
      return;
    }
  }
}

// ---- The README's definitions, written out on the model ----

const secondsBetween = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000;
const rate = (part: number, whole: number) => (whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000);
function stats(values: number[]) {
  if (values.length === 0) return { avg: null, median: null, count: 0 };
  const s = [...values].sort((a, b) => a - b);
  const m = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { avg: Math.round((values.reduce((a, b) => a + b, 0) / values.length) * 10) / 10, median: Math.round(m * 10) / 10, count: values.length };
}

/** Every figure of a group of episodes; `now` is after every target has passed for what still waits. */
function expected(episodes: Episode[]) {
  const resolved = episodes.filter((e) => e.status === 'resolved');
  const handled = resolved.filter((e) => e.firstReplyAt && e.firstReplyAt <= e.resolvedAt!);
  const everResolved = episodes.filter((e) => e.status === 'resolved' || e.reopened);
  // First reply: judged when answered, or when the customer waited past the target (all who still wait have).
  const frJudged = episodes.filter((e) => e.firstReplyAt || !(e.status === 'resolved' && secondsBetween(e.start, e.resolvedAt!) <= SLA.firstReplySeconds));
  const frMet = frJudged.filter((e) => e.firstReplyAt && secondsBetween(e.start, e.firstReplyAt) <= SLA.firstReplySeconds);
  const resMet = resolved.filter((e) => secondsBetween(e.start, e.resolvedAt!) <= SLA.resolutionSeconds);
  const rated = episodes.filter((e) => e.csat !== undefined);
  return {
    conversations: episodes.length,
    resolved: resolved.length,
    resolutionRate: rate(resolved.length, episodes.length),
    firstReplySeconds: stats(episodes.filter((e) => e.firstReplyAt).map((e) => secondsBetween(e.start, e.firstReplyAt!))),
    handleSeconds: stats(handled.map((e) => secondsBetween(e.firstReplyAt!, e.resolvedAt!))),
    resolutionSeconds: stats(resolved.map((e) => secondsBetween(e.start, e.resolvedAt!))),
    firstContactResolutionRate: rate(resolved.filter((e) => !e.reopened).length, everResolved.length),
    sla: {
      firstReplyTargetSeconds: SLA.firstReplySeconds,
      firstReplyAttainment: rate(frMet.length, frJudged.length),
      resolutionTargetSeconds: SLA.resolutionSeconds,
      // Every one not resolved has waited past the target by now.
      resolutionAttainment: rate(resMet.length, episodes.length),
    },
    csat: {
      responses: rated.length,
      average: rated.length ? Math.round((rated.reduce((a, e) => a + e.csat!, 0) / rated.length) * 100) / 100 : null,
      satisfiedRate: rate(rated.filter((e) => e.csat! >= 4).length, rated.length),
    },
  };
}

/**
 * Whom an episode's figures go to: its holder, unless a resolution it undid was someone's (not an
 * auto-resolve in the queue) and its holder has not resolved it since; one resolved with nobody
 * holding it, whoever resolved it (nobody for an auto-resolve in the queue).
 */
const credited = (e: Episode) => {
  if (e.status === 'resolved' && !e.holder) return e.resolvedBy;
  return e.reopened && e.resolvedBy && e.status !== 'resolved' ? e.resolvedBy : e.holder;
};

function groups<K extends string>(episodes: Episode[], keyOf: (e: Episode) => K | undefined) {
  const out: Record<string, ReturnType<typeof expected>> = {};
  for (const key of [...new Set(episodes.map(keyOf).filter((k): k is K => k !== undefined))].sort()) out[key] = expected(episodes.filter((e) => keyOf(e) === key));
  return out;
}

/** An ISO time in India's offset (+05:30), escaped for a query string. */
const inIndia = (ms: number) => encodeURIComponent(new Date(ms + 5.5 * 3_600_000).toISOString().replace('Z', '+05:30'));

async function summary(from: number, to: number) {
  const res = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${inIndia(from)}&to=${inIndia(to)}`, { token: jwt });
  expect(res.status).toBe(200);
  return res.body;
}

const STEPS_PER_STORY = 6;
const CHANNELS: Channel[] = ['web', 'whatsapp', 'sms'];

/** One seed a run (the stories share the stack's table): REPORTS_SEED plays another. */
const seed = Number(process.env.REPORTS_SEED ?? 20261128);

it(`gives the figures the README defines, overall, per channel and per agent, for random stories (seed ${seed})`, async () => {
  const next = random(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const started = Date.now();
  const stories: Story[] = [];
  for (let n = 0; n < 12; n++) stories.push(await begin(CHANNELS[n % CHANNELS.length]!));
  const fifth = Date.parse(stories[4]!.episodes[0]!.start);
  // Turn by turn, so that the later part of the period holds what happened to the earlier stories.
  for (let s = 0; s < STEPS_PER_STORY; s++) for (const story of stories) await play(story, pick(possible(story)), next);
  // Every live episode still waiting is past both targets; its holder is who holds it now.
  await sleep(SLA.resolutionSeconds * 1000 + 100);
  const episodes = stories.flatMap((s) => s.episodes);
  for (const e of episodes.filter((e) => !e.frozen)) e.holder = (await getConversation(e.conversationId, true))!.assigneeId ?? undefined;
  const want = (within: Episode[]) => ({ ...expected(within), byChannel: groups(within, (e) => e.channel), byAgent: groups(within, credited) });
  const steps = stories.map((s) => `${s.channel} ${s.id}: ${s.played.join(' ')}`);
  if (process.env.REPORTS_DEBUG) {
    console.log(steps.join('\n'));
    for (const s of stories) {
      const c = (await getConversation(s.id, true))!;
      const live = s.episodes.at(-1)!;
      const stored = { start: c.reportStartedAt ?? c.createdAt, firstReplyAt: c.firstReplyAt, resolvedAt: c.resolvedAt, status: c.status, reopened: Boolean(c.reopenCount) };
      const model = { start: live.start, firstReplyAt: live.firstReplyAt, resolvedAt: live.resolvedAt, status: live.status, reopened: live.reopened };
      if (JSON.stringify(stored) !== JSON.stringify(model)) console.log(s.id, s.channel, s.played.join(' '), JSON.stringify({ stored, model }, null, 1));
    }
  }

  // The whole period, and the part of it from the fifth story's start on: the earlier stories started
  // before it, and are not in it, whatever happened to them in it
  for (const [from, to] of [
    [started - 6 * DAY, Date.now() + 60_000],
    [fifth, Date.now() + 60_000],
  ] as const) {
    const within = episodes.filter((e) => Date.parse(e.start) >= from && Date.parse(e.start) <= to);
    const body = await summary(from, to);
    const { from: _f, to: _t, channel: _c, team: _team, label: _label, ...figures } = body;
    expect({ seed, steps, figures }).toEqual({ seed, steps, figures: want(within) });
    // The channels add up to the totals in every count
    const counts = (k: typeof figures) => [k.conversations, k.resolved, k.firstReplySeconds.count, k.handleSeconds.count, k.resolutionSeconds.count, k.csat.responses];
    const channels = Object.values(figures.byChannel as Record<string, typeof figures>).map(counts);
    expect(channels.reduce((sum, c) => sum.map((n, i) => n + c[i]!), [0, 0, 0, 0, 0, 0])).toEqual(counts(figures));
  }

  // A period before any of it: zeros and nulls, nothing divided by zero
  const empty = await summary(started - 7 * DAY, started - 6 * DAY - 1);
  expect(empty).toEqual({ from: iso(started - 7 * DAY), to: iso(started - 6 * DAY - 1), channel: null, team: null, label: null, ...want([]) });
}, 120_000);
