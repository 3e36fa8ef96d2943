/**
 * Snooze wake-ups: one EventBridge Scheduler one-time schedule per conversation, named after
 * it, so that snoozing again replaces the wake-up and any other status change cancels it.
 * The schedule invokes the engagement function with {@link SnoozeWakeEvent}; that handler
 * calls {@link wakeSnoozed}.
 */
import { ConflictException, CreateScheduleCommand, DeleteScheduleCommand, ResourceNotFoundException, SchedulerClient, UpdateScheduleCommand } from '@aws-sdk/client-scheduler';
import { ENV } from '../config';
import { changeConversation, withStatus } from './conversations';
import type { ConversationRecord } from '../store/conversations';

export const SNOOZE_WAKE_EVENT = 'conversation.snoozeWake';
export interface SnoozeWakeEvent {
  type: typeof SNOOZE_WAKE_EVENT;
  conversationId: string;
}

let client: SchedulerClient | undefined;
const scheduler = () => (client ??= new SchedulerClient({}));

const required = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`Missing environment variable ${name}`);
  return value;
};

/** Schedule names allow [0-9a-zA-Z-_.] up to 64 characters; conversation ids are ULIDs. */
export const snoozeScheduleName = (conversationId: string) => `snooze-${conversationId}`;

/** `at(...)` takes UTC without a zone designator or milliseconds. */
const atExpression = (iso: string) => `at(${new Date(iso).toISOString().slice(0, 19)})`;

export async function scheduleSnoozeWake(conversationId: string, wakeAt: string): Promise<void> {
  const input = {
    Name: snoozeScheduleName(conversationId),
    GroupName: required(ENV.scheduleGroup),
    ScheduleExpression: atExpression(wakeAt),
    ScheduleExpressionTimezone: 'UTC',
    FlexibleTimeWindow: { Mode: 'OFF' as const },
    ActionAfterCompletion: 'DELETE' as const,
    Target: {
      Arn: required(ENV.engagementFunctionArn),
      RoleArn: required(ENV.schedulerRoleArn),
      Input: JSON.stringify({ type: SNOOZE_WAKE_EVENT, conversationId } satisfies SnoozeWakeEvent),
      ...(process.env[ENV.schedulerDlqArn] ? { DeadLetterConfig: { Arn: process.env[ENV.schedulerDlqArn] } } : {}),
    },
  };
  try {
    await scheduler().send(new CreateScheduleCommand(input));
  } catch (error) {
    if (!(error instanceof ConflictException)) throw error;
    await scheduler().send(new UpdateScheduleCommand(input));
  }
}

export async function cancelSnoozeWake(conversationId: string): Promise<void> {
  try {
    await scheduler().send(new DeleteScheduleCommand({ Name: snoozeScheduleName(conversationId), GroupName: required(ENV.scheduleGroup) }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
}

/** The wake-up fired: reopens the conversation if it is still snoozed and due (a late or repeated fire is harmless). */
export async function wakeSnoozed(conversationId: string, now = new Date()): Promise<ConversationRecord | undefined> {
  const { after } = await changeConversation(conversationId, (c) =>
    c.status === 'snoozed' && (!c.snoozedUntil || c.snoozedUntil <= now.toISOString()) ? withStatus(c, 'open', now.toISOString()) : undefined,
  );
  return after.status === 'open' ? after : undefined;
}
