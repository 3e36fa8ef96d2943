/**
 * Conversation timers as EventBridge Scheduler one-time schedules. A schedule's name is derived
 * from the conversation (a message's timer: the message) and the timer's kind, so arming again
 * replaces it and cancelling needs no lookup. Schedules delete themselves after firing; the
 * engagement handler re-checks state, so a schedule that fires late, twice, or after a lost
 * cancel changes nothing.
 */
import { createHash } from 'node:crypto';
import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
  UpdateScheduleCommand,
  type CreateScheduleCommandInput,
} from '@aws-sdk/client-scheduler';
import { ENV } from '../config';

export const TIMER_KINDS = ['emailFallback', 'reengage', 'autoResolve', 'snoozeWake', 'keepMedia', 'presenceGrace', 'campaignSend'] as const;
export type TimerKind = (typeof TIMER_KINDS)[number];

/**
 * Timers of an agent rather than of a conversation: their `conversationId` carries the agent's id
 * (src/domain/presence.ts: the end of a grace period after the last connection closed).
 */
const AGENT_TIMERS: ReadonlySet<TimerKind> = new Set<TimerKind>(['presenceGrace']);

/** Timers of a campaign (src/domain/campaigns.ts): their `conversationId` carries its batch id. */
const CAMPAIGN_TIMERS: ReadonlySet<TimerKind> = new Set<TimerKind>(['campaignSend']);

/**
 * Timers of one message rather than of its conversation, named after the message: a copy retry
 * (src/domain/media-jobs.ts) of one customer message must not replace another's.
 */
const MESSAGE_TIMERS: ReadonlySet<TimerKind> = new Set<TimerKind>(['keepMedia']);

/** What the schedule hands the engagement function (the target's Input). */
export interface TimerInput {
  kind: TimerKind;
  /** The conversation's id; an agent's timer (AGENT_TIMERS): the agent's; a campaign's: its batch id. */
  conversationId: string;
  /** When the timer was meant to fire: the handler compares it with the current state. */
  dueAt: string;
  /** The message that armed the timer (e.g. the agent reply a follow-up is for). */
  messageId?: string;
  /** The round a copy retry (`keepMedia`) starts when it fires. */
  round?: number;
}

let client: SchedulerClient | undefined;
const scheduler = () => (client ??= new SchedulerClient({}));

/** For tests: use this client (e.g. one wrapped by aws-sdk-client-mock). */
export function setSchedulerClient(next: SchedulerClient | undefined): void {
  client = next;
}

/**
 * The engagement function cannot carry its own ARN in its environment (the ARN would depend on
 * itself), so when it arms timers it names itself from its invocation context instead.
 */
let selfTarget: string | undefined;
export function useInvokedFunctionAsTarget(invokedFunctionArn: string): void {
  // arn:aws:lambda:region:account:function:name[:qualifier]: schedules target the unqualified function.
  selfTarget = invokedFunctionArn.split(':').slice(0, 7).join(':');
}

const targetArn = () => process.env[ENV.engagementFunctionArn] || selfTarget || env(ENV.engagementFunctionArn);

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Missing environment variable ${name}`);
  return value;
}

/**
 * Scheduler names allow 64 characters of [0-9a-zA-Z-_.]; odd or long ids are hashed. `id` is the
 * conversation's, or the message's for a timer of one message.
 */
export function scheduleName(id: string, kind: TimerKind): string {
  const safe = /^[0-9A-Za-z_.-]{1,48}$/.test(id) ? id : createHash('sha256').update(id).digest('hex').slice(0, 48);
  return `${kind}-${safe}`;
}

function nameOf(input: TimerInput): string {
  if (!MESSAGE_TIMERS.has(input.kind)) return scheduleName(input.conversationId, input.kind);
  if (!input.messageId) throw new Error(`a ${input.kind} timer is armed for a message`);
  return scheduleName(input.messageId, input.kind);
}

/** `at()` takes wall time without a zone (the zone is a separate field) and whole seconds. */
export function atExpression(at: Date): string {
  return `at(${at.toISOString().slice(0, 19)})`;
}

function scheduleInput(input: TimerInput, at: Date): CreateScheduleCommandInput {
  return {
    Name: nameOf(input),
    GroupName: env(ENV.scheduleGroup),
    ScheduleExpression: atExpression(at),
    ScheduleExpressionTimezone: 'UTC',
    FlexibleTimeWindow: { Mode: 'OFF' },
    ActionAfterCompletion: 'DELETE',
    Description: `Conversa ${input.kind} for ${AGENT_TIMERS.has(input.kind) ? 'agent' : CAMPAIGN_TIMERS.has(input.kind) ? 'campaign' : 'conversation'} ${input.conversationId}${MESSAGE_TIMERS.has(input.kind) ? `, message ${input.messageId}` : ''}`,
    Target: {
      Arn: targetArn(),
      RoleArn: env(ENV.schedulerRoleArn),
      Input: JSON.stringify(input),
      DeadLetterConfig: { Arn: env(ENV.schedulerDlqArn) },
      // A timer that could not run within the hour is better dropped to the DLQ than acted on late.
      RetryPolicy: { MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 3600 },
    },
  };
}

/**
 * Arms (or re-arms) a conversation's timer of one kind: a name that exists means a newer event
 * replaces the older schedule. `likelyExists` picks which call to try first (one call instead of
 * two on the hot path, e.g. auto-resolve re-armed by every message).
 */
export async function setTimer(
  kind: TimerKind,
  conversationId: string,
  afterSeconds: number,
  extra: Pick<TimerInput, 'messageId' | 'round'> & { likelyExists?: boolean } = {},
): Promise<void> {
  await setTimerAt(kind, conversationId, new Date(Date.now() + Math.max(1, afterSeconds) * 1000), extra);
}

/** Arms a timer for a moment in time (e.g. a snooze's wake-up). */
export async function setTimerAt(
  kind: TimerKind,
  conversationId: string,
  when: Date,
  extra: Pick<TimerInput, 'messageId' | 'round'> & { likelyExists?: boolean } = {},
): Promise<void> {
  // at() has second resolution: round up, so the timer never fires before it is due.
  const at = new Date(Math.ceil(when.getTime() / 1000) * 1000);
  const timer: TimerInput = {
    kind,
    conversationId,
    dueAt: at.toISOString(),
    ...(extra.messageId ? { messageId: extra.messageId } : {}),
    ...(extra.round ? { round: extra.round } : {}),
  };
  const input = scheduleInput(timer, at);
  const create = () => scheduler().send(new CreateScheduleCommand(input));
  const update = () => scheduler().send(new UpdateScheduleCommand(input));
  const [first, second] = extra.likelyExists ? [update, create] : [create, update];
  const expected = (error: unknown) => isError(error, ConflictException, 'ConflictException') || isError(error, ResourceNotFoundException, 'ResourceNotFoundException');
  try {
    await first();
  } catch (error) {
    if (!expected(error)) throw error;
    try {
      await second();
    } catch (again) {
      // Created or fired-and-deleted between our two calls: the first call is right again.
      if (!expected(again)) throw again;
      await first();
    }
  }
}

/** Cancels a conversation's timer of one kind; a timer that is not there is already cancelled. */
export async function cancelTimer(kind: TimerKind, conversationId: string): Promise<void> {
  try {
    await scheduler().send(new DeleteScheduleCommand({ Name: scheduleName(conversationId, kind), GroupName: env(ENV.scheduleGroup) }));
  } catch (error) {
    if (!isError(error, ResourceNotFoundException, 'ResourceNotFoundException')) throw error;
  }
}

function isError(error: unknown, type: abstract new (...args: never[]) => Error, name: string): boolean {
  return error instanceof type || (error as { name?: string } | null)?.name === name;
}

/**
 * `work` and `timers` side by side. Both finish before a failure of either is thrown, so none of
 * a failed record's work runs on after its handler answered.
 */
export async function besideTimers<T>(work: Promise<T>, timers: Promise<void> | undefined): Promise<T> {
  const [done, armed] = await Promise.allSettled([work, timers]);
  if (done.status === 'rejected') throw done.reason;
  if (armed.status === 'rejected') throw armed.reason;
  return done.value;
}
