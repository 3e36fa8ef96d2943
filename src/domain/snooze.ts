/**
 * Snooze wake-ups: a conversation timer of kind `snoozeWake` (src/domain/timers.ts), so that
 * snoozing again replaces the wake-up and leaving `snoozed` through `/status` cancels it. One left
 * by `/resolve`, `/reopen` or a customer's message finds the conversation no longer snoozed when it
 * fires and does nothing (README, timers table). The engagement function runs {@link wakeSnoozed}.
 */
import { changeConversation, withStatus } from './conversations';
import { cancelTimer, scheduleName, setTimerAt } from './timers';
import { getConversation, type ConversationRecord } from '../store/conversations';

export const snoozeScheduleName = (conversationId: string) => scheduleName(conversationId, 'snoozeWake');

export async function scheduleSnoozeWake(conversationId: string, wakeAt: string): Promise<void> {
  await setTimerAt('snoozeWake', conversationId, new Date(wakeAt));
}

export async function cancelSnoozeWake(conversationId: string): Promise<void> {
  await cancelTimer('snoozeWake', conversationId);
}

/** When a conversation as stored should wake: its snoozedUntil while snoozed, else never. */
const wakeOf = (c: ConversationRecord | undefined) => (c?.status === 'snoozed' ? c.snoozedUntil : undefined);

/** Rounds of arming and reading again before giving up on a conversation that keeps changing. */
const SYNC_ROUNDS = 5;

/**
 * Makes the wake-up agree with the conversation as stored, from a record of it just written or
 * read: armed for its snoozedUntil while snoozed, cancelled otherwise. Two changes at once (two
 * snoozes, a snooze and a reopening) are written in one order and may arm in the other, so each
 * reads the conversation again after arming and arms again if it changed meanwhile: whoever arms
 * last has read what is stored (one consistent read per change).
 */
export async function syncSnoozeWake(conversation: ConversationRecord): Promise<void> {
  let wake = wakeOf(conversation);
  for (let round = 0; round < SYNC_ROUNDS; round++) {
    if (wake) await scheduleSnoozeWake(conversation.id, wake);
    else await cancelSnoozeWake(conversation.id);
    const stored = wakeOf(await getConversation(conversation.id, true));
    if (stored === wake) return;
    wake = stored;
  }
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
  if (after.status === 'snoozed' && !due(after)) await syncSnoozeWake(after);
  return after.status === 'open' ? after : undefined;
}
