/**
 * Snooze wake-ups: a conversation timer of kind `snoozeWake` (src/domain/timers.ts), so that
 * snoozing again replaces the wake-up and any other status change cancels it. The engagement
 * function runs {@link wakeSnoozed} when it fires.
 */
import { changeConversation, withStatus } from './conversations';
import { cancelTimer, scheduleName, setTimerAt } from './timers';
import type { ConversationRecord } from '../store/conversations';

export const snoozeScheduleName = (conversationId: string) => scheduleName(conversationId, 'snoozeWake');

export async function scheduleSnoozeWake(conversationId: string, wakeAt: string): Promise<void> {
  await setTimerAt('snoozeWake', conversationId, new Date(wakeAt));
}

export async function cancelSnoozeWake(conversationId: string): Promise<void> {
  await cancelTimer('snoozeWake', conversationId);
}

/**
 * The wake-up fired: reopens the conversation if it is still snoozed and due (a late or repeated
 * fire is harmless). Like the other timers it allows a second of clock skew; a fire earlier than
 * that is re-armed for the rest, from the stored `snoozedUntil` (what a newer snooze armed, and the
 * same again on a retried fire), since the schedule deletes itself after firing.
 */
export async function wakeSnoozed(conversationId: string, now = new Date()): Promise<ConversationRecord | undefined> {
  const due = (c: ConversationRecord) => !c.snoozedUntil || Date.parse(c.snoozedUntil) <= now.getTime() + 1000;
  const { after } = await changeConversation(conversationId, (c) => (c.status === 'snoozed' && due(c) ? withStatus(c, 'open', now.toISOString()) : undefined));
  if (after.status === 'snoozed' && !due(after)) await scheduleSnoozeWake(conversationId, after.snoozedUntil!);
  return after.status === 'open' ? after : undefined;
}
