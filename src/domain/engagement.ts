/**
 * Engagement: what keeps a conversation moving without an agent watching it. The hooks below run
 * on the inbound, outbound, read and change paths; the timers they arm (src/domain/timers.ts)
 * come back through `runTimer`. Every timer re-reads the conversation before acting, so firing
 * late, twice, or after activity that should have cancelled it changes nothing.
 */
import { decodeTime } from 'ulid';
import type { ConversationRecord, EngagementState } from '../store/conversations';
import { getConversation, isErasing, updateConversation } from '../store/conversations';
import { getMessage, listMessages, markReadInFlight, putMessage, STATUS_RANK, updateMessageStatus } from '../store/messages';
import { claimHandle, updateVisitor } from '../store/contacts';
import { enqueueOutbound } from '../aws/queues';
import { sendDecision } from '../channels/window';
import { afterConversationChange, type HookResult, type InboundHookContext } from './automation';
import { describeOpening, isOpen, nextOpening } from './business-hours';
import { addHandlesFollowingMerges, normalizeEmail } from './contacts';
import { changeConversation, withStatus } from './conversations';
import { customerEmail, sendReplyEmail, sesAddress } from './email';
import { ClientError } from './errors';
import { wakeSnoozed } from './snooze';
import { endPresenceGrace } from './presence';
import { requeueCopy } from './media-jobs';
import { conversationEvent, conversationEventAfterMessage, messageEvent, messageUpdatedEvent } from './events';
import { publish, scopeOf } from './fanout';
import { idFor, newId } from './ids';
import { applyOutboundToConversation } from './outbound';
import { getSettings, type Settings } from './settings';
import { cancelTimer, setTimer, setTimerAt, type TimerInput } from './timers';
import { isProviderChannel, type Attachment, type Message } from './types';
import { fireCampaign } from './campaigns';

export const BOT_SENDER = { type: 'bot', id: 'conversa', name: 'Conversa' } as const;
export const ASK_FOR_EMAIL_TEXT = 'Leave us your email address and we will reply there if you are gone by then.';
/** Messages shown as context under the unseen replies in a fallback email. */
const EMAIL_CONTEXT_MESSAGES = 5;
/** How far back a timer looks for unseen replies: more than anyone writes before a fallback. */
const RECENT_MESSAGES = 50;
/**
 * Bounded as addresses are (64-character local part, 253-character domain), and whole: it starts
 * after a delimiter and its domain ends at one, so a longer run is no address rather than a cut
 * one (someone else's mailbox). Unbounded, each start in a long run was scanned to its end, and a
 * customer's 140 000-character message held the inbound consumer for ten seconds.
 */
const EMAIL_IN_TEXT = /(?<![^\s@<>()[\]"',;:])[^\s@<>()[\]"',;:]{1,64}@[^\s@<>()[\]"',;:]{1,253}\.[a-z]{2,63}(?![a-z0-9_-])/i;

/**
 * The visitor's own address in their message: after we asked for it, or a message that is little
 * more than an address ("Sure: ana@example.com thanks"). An address inside a longer sentence ("the
 * invoice went to billing@acme.com") may well be someone else's, and replies would be mailed there.
 */
export function ownEmailIn(text: string, asked: boolean): string | undefined {
  const found = text.includes('@') ? EMAIL_IN_TEXT.exec(text)?.[0] : undefined;
  if (!found) return undefined;
  const otherWords = text.replace(found, ' ').split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).length;
  return asked || otherWords <= 4 ? normalizeEmail(found) : undefined;
}

type Delivery =
  /** Published by the caller (the inbound path, right after the customer's message). */
  | 'inline'
  /** Through the outbound queue, like an agent reply. */
  | 'queue'
  /** A private note: agents only, never sent. */
  | 'note'
  /** Stored as queued; the caller delivers it (a queue consumer already in the right lane). */
  | 'stored';

export interface OutboundDraft {
  text: string;
  attachments?: Attachment[];
  template?: Message['template'];
  sender?: Message['sender'];
  /** Sent without the customer asking (proactive): written, but no reply (reports' first reply). */
  unprompted?: boolean;
  /** The campaign a proactive message is of (its counters follow the message's status). */
  campaignId?: string;
}

/** A message the team (or the bot) sends, not stored yet. */
function outboundMessage(conversation: ConversationRecord, draft: OutboundDraft, delivery: Delivery, id: string): Message {
  return {
    id,
    conversationId: conversation.id,
    direction: 'outbound',
    sender: draft.sender ?? BOT_SENDER,
    channel: conversation.channel,
    text: draft.text,
    attachments: draft.attachments ?? [],
    status: delivery === 'queue' || delivery === 'stored' ? 'queued' : 'sent',
    private: delivery === 'note',
    ...(draft.template ? { template: draft.template } : {}),
    ...(draft.unprompted ? { unprompted: true as const } : {}),
    createdAt: new Date().toISOString(),
  };
}

/** Stores a message the team (or the bot) sends and hands it to its delivery path. */
export async function storeOutbound(
  conversation: ConversationRecord,
  draft: OutboundDraft,
  delivery: Delivery,
  id: string = newId(),
  /** `show: false`: the caller publishes it (the inbound path, after the customer's message). */
  options: { show?: boolean } = {},
): Promise<{ message: Message; conversation: ConversationRecord }> {
  const message = outboundMessage(conversation, draft, delivery, id);
  // A campaign's id is stored with the message (its status changes count there), never shown.
  const stored = await putMessage(draft.campaignId ? { ...message, campaignId: draft.campaignId } : message);
  const applied = await applyOutboundToConversation(conversation.id, message, { unprompted: draft.unprompted === true });
  const updated = applied ?? conversation;
  if ((delivery === 'queue' || delivery === 'stored') && options.show !== false) {
    // Agents see it before its delivery can report message.updated, as an agent's reply (CONTRACT.md
    // section 4: a message of a conversation they see). Found stored, it is shown as it stands: its
    // delivery may have moved it on, and a queued copy must not be the last word.
    const shown = stored ? message : ((await getMessage(conversation.id, message.id)) ?? message);
    await showQueued(shown, conversation, applied);
  }
  // A redelivered job finds its message stored, maybe by an attempt that died before queueing it:
  // queued again under the same deduplication id, it is still sent at most once (deliverOutbound).
  if (delivery === 'queue') await enqueueOutbound([{ conversationId: conversation.id, messageId: message.id }]);
  if (delivery !== 'note') return { message, conversation: updated };
  // Found stored: the attempt that stored it may have died before showing it. Shown again as
  // stored (consoles keep one message per id), not as rebuilt here with this attempt's time.
  const note = stored ? message : ((await getMessage(conversation.id, message.id)) ?? message);
  await showNote(note, updated);
  return { message: note, conversation: updated };
}

/** Shows a message the team or the bot sends without an agent's request (a follow-up, a CSAT question, a proactive message) to the agents. */
async function showQueued(message: Message, before: ConversationRecord, after: ConversationRecord | undefined): Promise<void> {
  await publish([messageEvent(message, after), ...(after ? [conversationEventAfterMessage(before, after)] : [])], { agents: scopeOf(after ?? before, before) });
}

/**
 * Shows a stored note to the agents. Also on every redelivery that finds it stored: nothing records
 * that an attempt showed it, and one that died between its write and this would leave consoles
 * without it until they reload. Showing it again is harmless: consoles keep one message per id.
 */
export async function showNote(note: Message, conversation: ConversationRecord): Promise<void> {
  await publish([messageEvent(note), conversationEvent(conversation)], { agents: scopeOf(conversation) });
}

// ---------------------------------------------------------------------------------------------
// Hooks

export async function engageOnInbound(context: InboundHookContext): Promise<HookResult> {
  const answered = await recordCsatAnswer(context);
  if (answered) return { conversation: answered, messages: [] };

  const settings = await getSettings();
  let conversation = await captureEmail(context.conversation, context.message, settings.widget.identityVerification);
  // The autoresponder's messages go out with the customer's (the inbound fan-out shows them to the
  // agents, and to a web visitor); those the outbound queue sends are queued once that fan-out is out,
  // so that their status updates never reach a console before they do.
  const auto = context.greeting
    ? { conversation, messages: context.greeting.messages, queue: context.greeting.delivery === 'queue' ? context.greeting.messages : [] }
    : await autorespond(conversation, context.message, settings, new Date(), context.resumed === true);
  conversation = auto.conversation;
  const queued = auto.queue.filter((m) => m.status === 'queued').map((m) => ({ conversationId: m.conversationId, messageId: m.id }));
  // The customer is here: no follow-up, and (web) the replies before this message were seen.
  const replied = teamWrote(conversation);
  const conversationId = conversation.id;
  const channel = conversation.channel;
  const timers = async () => {
    await Promise.all([
      setTimer('autoResolve', conversationId, settings.timers.autoResolveAfterSeconds, { likelyExists: !context.created }),
      replied ? cancelTimer('reengage', conversationId) : undefined,
      replied && channel === 'web' ? cancelTimer('emailFallback', conversationId) : undefined,
    ]);
  };
  const afterPublish = queued.length > 0 ? () => enqueueOutbound(queued) : undefined;
  return { conversation, messages: auto.messages, timers, afterPublish };
}

/** After a reply, note or bot message was delivered (or failed). */
export async function engageOnOutbound(conversation: ConversationRecord, message: Message): Promise<void> {
  if (message.status === 'failed') return disarmFailedReply(message);
  if (message.private || message.direction !== 'outbound') return;
  const settings = await getSettings();
  const active = conversation.status !== 'resolved' && conversation.status !== 'snoozed';
  const byAgent = message.sender.type === 'agent';
  await Promise.all([
    active ? setTimer('autoResolve', conversation.id, settings.timers.autoResolveAfterSeconds, { likelyExists: true }) : undefined,
    // A campaign is no reply: a customer still waiting for an answer would get "anything else?" for it.
    active && byAgent && !message.unprompted && settings.reengagement.enabled
      ? setTimer('reengage', conversation.id, settings.timers.reengageAfterSeconds, { messageId: message.id })
      : undefined,
    // The CSAT question too: a visitor who left is asked by email, as for an unseen reply.
    (byAgent || isCsatQuestion(message)) && conversation.channel === 'web' && message.status !== 'read'
      ? setTimer('emailFallback', conversation.id, settings.timers.emailFallbackDelaySeconds, { messageId: message.id })
      : undefined,
  ]);
}

/**
 * An agent's reply that never reached the customer: the provider refused it, or reported it failed
 * or undelivered after taking it. While it is the newest message the customer would see, the
 * conversation waits for the agent to send it again: no auto-resolve (nor CSAT question) and no
 * follow-up, whether the reply armed them (sent first) or the customer's message before it did.
 * The mark keeps a fire that the cancel did not reach (lost, or already running) from resolving; a
 * later message moves `lastMessageAt` past it and arms the timers as any message does.
 */
export async function disarmFailedReply(message: Message): Promise<void> {
  if (message.status !== 'failed' || message.private || message.direction !== 'outbound' || message.sender.type !== 'agent' || message.unprompted) return;
  const at = message.createdAt;
  const result = await updateConversation(message.conversationId, (c) =>
    c.lastMessageAt !== at || c.engagement?.failedReplyAt === at ? undefined : { ...c, engagement: { ...c.engagement, failedReplyAt: at } },
  );
  // Marked by an earlier run (a redelivered callback finishes its cancels), or not the newest message: a later one armed what it should.
  if (!result) return;
  if (awaitsRetry(result.after)) await Promise.all([cancelTimer('autoResolve', message.conversationId), cancelTimer('reengage', message.conversationId)]);
  await reopenForFailedReply(message, result.after);
}

/**
 * A reply reported failed once the conversation it was the last word of was resolved after it: by
 * the auto-resolve, or by an agent closing it right after their reply (the "thanks, closing" flow),
 * whose failure nobody would see on a resolved conversation. The customer never got the answer
 * (maybe only the CSAT question after it). Reopened, so that its agent sees it and sends it again,
 * and held open as any failed newest reply is (reopenedForFailedReply). A conversation anyone wrote
 * in since (the bot aside) is left as it is, and so is one being erased.
 */
async function reopenForFailedReply(message: Message, first: ConversationRecord): Promise<void> {
  const resolvedAfterIt = (c: ConversationRecord) => c.status === 'resolved' && c.resolvedAt !== undefined && c.resolvedAt > message.createdAt && !isErasing(c);
  if (!resolvedAfterIt(first)) return;
  const newest = (await recentMessages(first.id, true)).filter((m) => m.sender.type !== 'bot').at(-1);
  if (newest?.id !== message.id) return;
  // Anything written since the read above (lastMessageAt moved) is checked again by its own path.
  await changeConversation(first.id, (c) => (resolvedAfterIt(c) && c.lastMessageAt === first.lastMessageAt ? reopenedForFailedReply(c) : undefined));
}

/**
 * The resolved conversation `c` reopened because the team's own reply failed: not the customer
 * back, so not counted as a reopen (its reopen count, first-contact resolution and the resolver
 * the reports credit stay as they were), no autoresponder (only a customer's message greets) and
 * no CSAT question (the ask is dropped as at any reopening; the auto-resolve stays disarmed while
 * the failed reply is the newest message). It goes back to its assignee, or, when nobody held it,
 * to the agent who resolved it; routing gives either their slot back when they have room, else
 * the queue (routeOnConversationChange).
 */
function reopenedForFailedReply(c: ConversationRecord): ConversationRecord {
  const reopened = withStatus(c, 'open');
  return {
    ...reopened,
    reopenCount: c.reopenCount,
    assigneeId: c.assigneeId ?? c.resolvedBy ?? null,
    engagement: { ...reopened.engagement, failedReplyAt: c.lastMessageAt },
  };
}

/** The newest message the customer would see is an agent reply that never reached them (disarmFailedReply). */
const awaitsRetry = (c: ConversationRecord) => c.engagement?.failedReplyAt !== undefined && c.engagement.failedReplyAt === c.lastMessageAt;

export async function engageOnVisitorRead(read: ConversationRecord, messageId: string): Promise<void> {
  // The frame's read of the conversation may not show a reply written a moment ago (the widget
  // marks it read as soon as it shows it): asked again, consistently, before the read is ignored,
  // or the email fallback would mail the visitor a reply they saw.
  const conversation = wroteToVisitor(read) ? read : await getConversation(read.id, true);
  if (!conversation || !wroteToVisitor(conversation)) return;
  await updateConversation(conversation.id, (c) =>
    (c.engagement?.visitorReadUpTo ?? '') >= messageId ? undefined : { ...c, engagement: { ...c.engagement, visitorReadUpTo: messageId } },
  );
  let recent = await recentMessages(conversation.id);
  // The widget reads a reply as soon as it shows it: a read that lags its write is asked again.
  if (!recent.some((m) => m.id >= messageId)) recent = await recentMessages(conversation.id, true);
  await markRepliesRead(conversation, recent, messageId);
  // Read up to the newest reply: nothing is left to email. A partial read leaves the check to the timer.
  if (unseenReplies(conversation, recent, messageId).length === 0) await cancelTimer('emailFallback', conversation.id);
}

/** Something the email fallback may send was written: a reply, or (asked, maybe with no reply before it) the CSAT question. */
const wroteToVisitor = (c: ConversationRecord) => teamWrote(c) || c.engagement?.csatAskedAt !== undefined;

const recentMessages = async (conversationId: string, consistent = false): Promise<Message[]> =>
  (await listMessages(conversationId, { limit: RECENT_MESSAGES, includePrivate: false, consistent })).items;

/**
 * The web visitor's read is each reply's `read` status, as a provider's read receipt is: a console
 * loaded later shows it too, not only the `read` frame. Only replies not read yet are written
 * (one write unit each, told to the agents in one fan-out); a read of a read reply writes nothing.
 */
async function markRepliesRead(conversation: ConversationRecord, recent: Message[], upTo: string): Promise<void> {
  const covered = recent.filter((m) => m.direction === 'outbound' && m.id <= upTo && STATUS_RANK[m.status] < STATUS_RANK.read);
  const markRead = async (m: Message): Promise<Message | undefined> => {
    // Queued: a reply the visitor had from its delivery job before that job wrote `delivered` (a
    // web one; another channel's is not theirs to have yet). Marked for that write to find, or,
    // once it has landed, written read here.
    if (m.status === 'queued' && (m.channel !== 'web' || (await markReadInFlight(conversation.id, m.id)))) return undefined;
    return updateMessageStatus(conversation.id, m.id, 'read');
  };
  const read = (await Promise.all(covered.map(markRead))).filter((m) => m !== undefined);
  if (read.length > 0) await publish(read.map(messageUpdatedEvent), { agents: scopeOf(conversation) });
}

/**
 * Agent replies after `seenUpTo` that the web visitor has neither read nor answered, oldest first,
 * and the CSAT question while it still takes an answer.
 */
function unseenReplies(conversation: ConversationRecord, recent: Message[], seenUpTo: string, now = new Date()): Message[] {
  return recent.filter(
    (m) =>
      m.direction === 'outbound' &&
      (m.sender.type === 'agent' || (isCsatQuestion(m) && questionOpen(conversation, m, now))) &&
      m.status !== 'read' &&
      m.status !== 'failed' &&
      m.id > seenUpTo &&
      (!conversation.lastInboundAt || m.createdAt > conversation.lastInboundAt),
  );
}

export async function engageOnConversationChange(before: ConversationRecord, after: ConversationRecord): Promise<void> {
  const tasks: Promise<void>[] = [];
  if (after.status === 'resolved' && before.status !== 'resolved') {
    tasks.push(cancelTimer('reengage', after.id), cancelTimer('autoResolve', after.id));
  }
  const waking = before.status === 'snoozed' && (after.status === 'open' || after.status === 'pending');
  if ((after.status === 'open' && before.status !== 'open') || waking) {
    const settings = await getSettings();
    if (!awaitsRetry(after)) tasks.push(setTimer('autoResolve', after.id, settings.timers.autoResolveAfterSeconds));
    if (waking) tasks.push(resumeFollowUp(after, settings));
  }
  // The wake-up itself is src/domain/snooze.ts's schedule; a snoozed conversation must not auto-resolve meanwhile.
  if (after.status === 'snoozed' && before.status !== 'snoozed') tasks.push(cancelTimer('autoResolve', after.id));
  await Promise.all(tasks);
}

/**
 * A snooze holds back what the team would say on its own (the follow-up does not go while it
 * sleeps), not what an agent wrote, and postpones nothing it did not hold back: waking, or an agent
 * opening it, brings back the follow-up of the newest reply the customer has not answered, sent
 * before or during the snooze, for when it is due (the delay after that reply, as without the
 * snooze). One that fell due while it slept is counted in full from the wake: the agent chose to
 * come back to the conversation then, and a follow-up must not land the moment they do.
 */
async function resumeFollowUp(conversation: ConversationRecord, settings: Settings, now = new Date()): Promise<void> {
  if (!settings.reengagement.enabled) return;
  const items = await recentMessages(conversation.id);
  // The newest reply failed (it never reached the customer): the agent is to send it again, and no follow-up goes for an older one.
  const reply = items.filter((m) => m.direction === 'outbound' && m.sender.type === 'agent' && !m.unprompted).at(-1);
  if (!reply || reply.status === 'failed' || (conversation.lastInboundAt && conversation.lastInboundAt >= reply.createdAt)) return;
  if ((conversation.engagement?.reengagedFor ?? '') >= reply.id) return;
  // Armed anew either way: a reply written while it slept armed nothing, and one before it may have fired and found it asleep.
  const delayMs = settings.timers.reengageAfterSeconds * 1000;
  const dueAt = Date.parse(reply.createdAt) + delayMs;
  await setTimerAt('reengage', conversation.id, new Date(dueAt > now.getTime() ? dueAt : now.getTime() + delayMs), { messageId: reply.id });
}

// ---------------------------------------------------------------------------------------------
// Autoresponder and leave-a-message

export function autoresponseText(settings: Settings, now: Date): string {
  const { autoresponder } = settings;
  const text = isOpen(settings, now)
    ? autoresponder.message
    : autoresponder.outOfHoursMessage.replaceAll('{{nextOpen}}', describeOpening(settings, nextOpening(settings, now), now));
  return autoresponder.helpCenterUrl ? `${text}\n\nIn the meantime, our help center may have your answer: ${autoresponder.helpCenterUrl}` : text;
}

/**
 * What the autoresponder says to this conversation now: the opening-hours text, and outside
 * them (web, no email known) a request for one.
 */
async function autoresponse(
  conversation: ConversationRecord,
  settings: Settings,
  now: Date,
  /** The customer's message gives an email (captured by the hooks, maybe not yet). */
  givesEmail = false,
): Promise<{ texts: string[]; askForEmail: boolean; delivery: Delivery }> {
  const outOfHours = !isOpen(settings, now);
  const askForEmail = outOfHours && settings.autoresponder.askForEmail && conversation.channel === 'web' && !givesEmail && !(await customerEmail(conversation));
  const texts = [autoresponseText(settings, now), ...(askForEmail ? [ASK_FOR_EMAIL_TEXT] : [])];
  // Web: published by the inbound path right after the customer's message, so it cannot overtake it.
  return { texts, askForEmail, delivery: conversation.channel === 'web' ? 'inline' : 'queue' };
}

/** An agent wrote to the customer (a reply, or a proactive message): what the timers and reads follow. */
function teamWrote(c: ConversationRecord, since = ''): boolean {
  // A follow-up on a resolved conversation sets no first reply, but it was written all the same.
  return [c.firstReplyAt, c.lastUnpromptedAt, c.followedUpAt].some((at) => at !== undefined && at >= since);
}

/** An agent wrote since the conversation started, or since the customer reopened it. */
const answeredSinceStart = (c: ConversationRecord) => teamWrote(c, c.episodeStartedAt ?? '');

/**
 * Once per conversation, and never once an agent has answered; a customer who comes back to a
 * resolved conversation starts anew and is greeted again (and, outside hours, told when the team
 * is back), as a new conversation would be.
 */
async function autorespond(
  conversation: ConversationRecord,
  trigger: Message,
  settings: Settings,
  now: Date,
  resumed: boolean,
): Promise<{ conversation: ConversationRecord; messages: Message[]; queue: Message[] }> {
  const none = { conversation, messages: [], queue: [] };
  // The hooks of the message it answers run again (their first run died after the claim): the
  // greeting is stored under the same ids, so what the first run stored stays, and is queued once.
  const redo = resumed && conversation.autoresponded === true && conversation.engagement?.greetedFor === trigger.id;
  if (!settings.autoresponder.enabled || (conversation.autoresponded && !redo) || answeredSinceStart(conversation)) return none;
  if (!redo && !canSendNow(conversation, now)) return none;
  const { texts, askForEmail, delivery } = await autoresponse(conversation, settings, now);
  let current = conversation;
  if (!redo) {
    // The claim is a conditional write: two messages racing at the start answer once.
    const claim = await updateConversation(conversation.id, (c) =>
      c.autoresponded || answeredSinceStart(c)
        ? undefined
        : { ...c, autoresponded: true, engagement: { ...(askForEmail ? askedForEmail(c, trigger) : c.engagement), greetedFor: trigger.id } },
    );
    if (!claim || claim.after === claim.before) return none;
    current = claim.after;
  }
  const messages: Message[] = [];
  for (const [i, text] of texts.entries()) {
    const id = greetingId(trigger.id, i);
    // Stored and applied by the first run: as it stands (queued again, sent at most once).
    const earlier = redo && (current.lastOutboundId ?? '') >= id ? await getMessage(current.id, id) : undefined;
    if (earlier) {
      messages.push(earlier);
      continue;
    }
    // Queued by the caller once the fan-out showed it (engageOnInbound).
    const stored = await storeOutbound(current, { text }, delivery === 'queue' ? 'stored' : delivery, id, { show: false });
    current = stored.conversation;
    messages.push(stored.message);
  }
  return { conversation: current, messages, queue: delivery === 'queue' ? messages : [] };
}

/** The autoresponder's messages for a conversation its first message is about to create. */
export interface Greeting {
  /** Stored already; delivered by the inbound hooks once the conversation exists. */
  messages: Message[];
  delivery: Delivery;
  /** What the conversation records about them: answered, and its activity. */
  fields: Partial<ConversationRecord>;
}

/**
 * The autoresponder at the start of a conversation, before the conversation is written: its
 * messages are stored now, with ids made from the customer's first message (a retry after a
 * crash stores the same ones), and the write that creates the conversation records them. That
 * spares the claim and the activity update a greeting of an existing conversation costs.
 */
export async function greetNewConversation(
  conversation: ConversationRecord,
  first: Message,
  /** When the customer wrote it, when the provider delivered it late: the provider's window counts from then. */
  windowFrom?: string,
): Promise<Greeting | undefined> {
  const settings = await getSettings();
  if (!settings.autoresponder.enabled) return undefined;
  if (!canSendNow({ ...conversation, lastInboundAt: first.createdAt, ...(windowFrom ? { windowFrom } : {}) }, new Date())) return undefined;
  const { texts, askForEmail, delivery } = await autoresponse(conversation, settings, new Date(), ownEmailIn(first.text, false) !== undefined);
  const messages = texts.map((text, i) => outboundMessage(conversation, { text }, delivery, greetingId(first.id, i)));
  await Promise.all(messages.map(putMessage));
  const last = messages[messages.length - 1]!;
  return {
    messages,
    delivery,
    fields: {
      autoresponded: true,
      ...(askForEmail ? { engagement: askedForEmail(conversation, first) } : {}),
      lastOutboundId: last.id,
      lastMessageAt: last.createdAt,
      updatedAt: last.createdAt,
    },
  };
}

/** The id of a greeting's `index`th message: made from the first message's, after it. */
function greetingId(firstMessageId: string, index: number): string {
  return idFor(decodeTime(firstMessageId) + 1 + index, `${firstMessageId}#greeting#${index}`);
}

/** At most two texts: the autoresponse and the request for an email. */
const GREETING_TEXTS = 2;

/**
 * The greeting stored with a conversation its first message created, when that message's
 * delivery comes back (the attempt died after creating the conversation, maybe before the hooks
 * queued the greeting): what is still to deliver, found by its ids. Undefined for any other message.
 */
export async function unfinishedGreeting(conversation: ConversationRecord, message: Message): Promise<Greeting | undefined> {
  if (!conversation.autoresponded || conversation.firstReplyAt) return undefined;
  const found = await Promise.all(Array.from({ length: GREETING_TEXTS }, (_, i) => getMessage(conversation.id, greetingId(message.id, i))));
  const messages = found.filter((m): m is Message => m !== undefined && m.sender.type === 'bot');
  if (messages.length === 0) return undefined;
  if (conversation.channel === 'web') return { messages, delivery: 'inline', fields: {} };
  const queued = messages.filter((m) => m.status === 'queued');
  return queued.length > 0 ? { messages: queued, delivery: 'queue', fields: {} } : undefined;
}

/** The engagement state of a conversation whose greeting for `trigger` asks for an email. */
function askedForEmail(conversation: ConversationRecord, trigger: Message): EngagementState {
  return { ...conversation.engagement, askedForEmail: true, emailAskedAfter: trigger.id };
}

/**
 * A web visitor without an email who gives theirs (ownEmailIn): kept on visitor and contact. The
 * request for an email is answered by the visitor's next message only; an address in a later one
 * may be anybody's (a colleague's), and the email fallback would send them the replies. With
 * identity verification on, nothing vouches for an address typed in the chat: it is a contact
 * detail (the email fallback uses it), never an identity that links other channels.
 */
async function captureEmail(conversation: ConversationRecord, message: Message, verifying: boolean): Promise<ConversationRecord> {
  if (conversation.channel !== 'web' || conversation.contact.email) return conversation;
  const state = conversation.engagement;
  const asked = state?.askedForEmail === true && message.id > (state.emailAskedAfter ?? '');
  const email = ownEmailIn(message.text, asked);
  if (!email) {
    if (!asked) return conversation;
    const cleared = await updateConversation(conversation.id, (c) =>
      c.engagement?.askedForEmail ? { ...c, engagement: { ...c.engagement, askedForEmail: false } } : undefined,
    );
    return cleared?.after ?? conversation;
  }
  const contactId = conversation.contact.id;
  await Promise.all([
    conversation.visitorId ? updateVisitor(conversation.visitorId, { email }) : undefined,
    (async () => {
      // Links a later channel with this email to the same contact (unless another contact has it);
      // claimed first, so that a merge meanwhile takes the claim along with the address.
      if (!verifying) await claimHandle('email', email, { contactId });
      await addHandlesFollowingMerges(contactId, verifying ? [] : [{ channel: 'email', handle: email }], { email });
    })(),
  ]);
  const result = await updateConversation(conversation.id, (c) =>
    c.contact.email ? undefined : { ...c, contact: { ...c.contact, email }, updatedAt: new Date().toISOString() },
  );
  return result?.after ?? conversation;
}

// ---------------------------------------------------------------------------------------------
// CSAT

/**
 * "5", "4 - quick and kind", "3/5", "2 stars: slow": a score from 1 to 5 and an optional comment.
 * A digit that only starts a sentence ("3 items are missing", "2nd order", "2:30 works for me?",
 * "1-800-555-0100 called") is not a rating: the customer is asking something, and taken for an
 * answer it would never reach an agent.
 */
export function parseCsatAnswer(text: string): { score: number; comment?: string } | undefined {
  const match = /^\s*([1-5])(?![\d]|[.,:\-–]\d)\s*(?:(?:\/\s*5|out of 5|stars?|⭐+)\s*[-–—:;,.!)]*|[-–—:;,.!)]+|$)\s*([\s\S]*)$/i.exec(asDigit(text));
  if (!match) return undefined;
  const comment = match[2]!.trim().slice(0, 1000);
  return { score: Number(match[1]), ...(comment ? { comment } : {}) };
}

/**
 * A rating as a phone keyboard offers it, read as the digit: a keycap ("4️⃣") is the digit, and one
 * to five stars alone ("⭐⭐⭐⭐", with or without emoji presentation selectors) are that many stars.
 * Six stars or more are no rating.
 */
function asDigit(text: string): string {
  return text
    .replace(/^(\s*)([1-5])\uFE0F?\u20E3/, '$1$2')
    .replace(/^(\s*)((?:\u2B50\uFE0F?){1,5})(?!\uFE0F|\u2B50)/, (_, space: string, stars: string) => `${space}${stars.replace(/\uFE0F/g, '').length} stars `);
}

/** How long a CSAT question waits for its answer: a score sent later is about something else. */
export const CSAT_ANSWER_WINDOW_MS = 3 * 86_400_000;

/**
 * The first message after a CSAT question that reopened the conversation: it drops the question.
 * A rating is recorded by the inbound write itself (csatRatingFor); one that a previous version
 * took for a reopening, and redelivered since, puts it back as it was (resolved, same resolvedAt,
 * not counted as a reopen). A customer who comes back and is asked again rates again: the newest
 * rating is the conversation's.
 */
async function recordCsatAnswer(context: InboundHookContext): Promise<ConversationRecord | undefined> {
  const { conversation, message } = context;
  if (!pendingCsatAsk(context)) return undefined;
  const askedAt = conversation.engagement?.csatAskedAt;
  const answer = csatAnswerIn(context);
  const result = await updateConversation(conversation.id, (c) => {
    if (c.engagement?.csatAskedAt !== askedAt) return undefined;
    const engagement = { ...c.engagement, csatAskedAt: undefined, csatResolvedAt: undefined };
    if (!answer) return { ...c, engagement };
    return {
      ...c,
      status: 'resolved',
      resolvedAt: c.engagement?.csatResolvedAt ?? c.updatedAt,
      reopenCount: Math.max(0, (c.reopenCount ?? 1) - 1),
      csat: { ...answer, at: message.createdAt },
      engagement,
    };
  });
  if (!answer || !result) return undefined;
  if (result.after === result.before) return result.after;
  // Routing left the brief reopening alone (src/domain/automation.ts): no slot to give back,
  // unless a change in between (an assignment) gave the conversation someone's slot.
  if (result.before.assigneeId !== conversation.assigneeId) await afterConversationChange(result.before, result.after);
  else await engageOnConversationChange(result.before, result.after);
  return result.after;
}

/**
 * The message came right after a CSAT question: resumed, a pending ask on an open conversation
 * means this message reopened it (any other change of status drops the ask, withStatus), and the
 * first message after it answers or drops it.
 */
function pendingCsatAsk(context: InboundHookContext): boolean {
  const { conversation, reopened, resumed } = context;
  return (reopened || (resumed === true && conversation.status === 'open')) && conversation.engagement?.csatAskedAt !== undefined;
}

/** The customer's rating, when the message answers a pending CSAT question in time. */
export function csatAnswerIn(context: InboundHookContext): { score: number; comment?: string } | undefined {
  return pendingCsatAsk(context) ? ratingIn(context.conversation, context.message) : undefined;
}

/**
 * The rating a customer's message gives a resolved conversation's CSAT question: the inbound
 * write records it and leaves the conversation resolved, so that no reopening is ever seen (a
 * brief one held no agent's slot, and a change made meanwhile gave one back, or lost the rating).
 */
export function csatRatingFor(
  conversation: ConversationRecord,
  message: Pick<Message, 'text' | 'createdAt'>,
  /** When the customer wrote it, as the provider dates it: a message written before the question answers nothing. */
  writtenAt?: string,
): { score: number; comment?: string } | undefined {
  if (conversation.status !== 'resolved') return undefined;
  const askedAt = conversation.engagement?.csatAskedAt;
  // Providers date in whole seconds: written within the question's second may be after it.
  if (writtenAt && askedAt && Date.parse(writtenAt) + 1000 <= Date.parse(askedAt)) return undefined;
  return ratingIn(conversation, message);
}

/** The stored message was the conversation's rating (csatRatingFor, applied in its write), whatever its status since. */
export function ratedBy(context: Pick<InboundHookContext, 'conversation' | 'message'>): boolean {
  return context.conversation.csat?.at === context.message.createdAt;
}

/**
 * How long after a rating another one is taken as a change of mind (a second tap, a correction).
 * Later, a message that reads as a rating ("1. My refund never came") is a customer back with
 * something: it reopens, as it did before the question stayed open to ratings.
 */
export const CSAT_RERATE_WINDOW_MS = 10 * 60_000;

function ratingIn(conversation: ConversationRecord, message: Pick<Message, 'text' | 'createdAt'>): { score: number; comment?: string } | undefined {
  const askedAt = conversation.engagement?.csatAskedAt;
  if (!askedAt) return undefined;
  // An ask of an earlier report episode is never answered in a later one (src/domain/episodes.ts).
  const inTime = Date.parse(message.createdAt) - Date.parse(askedAt) <= CSAT_ANSWER_WINDOW_MS && !(conversation.reportStartedAt && conversation.reportStartedAt > askedAt);
  // Rated already for this question: only right after that rating is another one a change of mind.
  const ratedAt = conversation.csat?.at && conversation.csat.at >= askedAt ? conversation.csat.at : undefined;
  const rerateInTime = !ratedAt || Date.parse(message.createdAt) - Date.parse(ratedAt) <= CSAT_RERATE_WINDOW_MS;
  return inTime && rerateInTime ? parseCsatAnswer(message.text) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Timers

export type TimerOutcome = 'done' | 'skipped';

export async function runTimer(input: TimerInput, now = new Date()): Promise<TimerOutcome> {
  switch (input.kind) {
    case 'emailFallback':
      return emailFallback(input.conversationId, now);
    case 'reengage':
      return reengage(input, now);
    case 'autoResolve':
      return autoResolve(input.conversationId, now);
    case 'snoozeWake':
      // A conversation deleted since is nothing to wake (notFound), not a failure to retry; one
      // that kept changing (conversation_busy) is, so the schedule's retries try again.
      return (await wakeSnoozed(input.conversationId, now).catch((error: unknown) => (error instanceof ClientError && error.status === 404 ? undefined : Promise.reject(error))))
        ? 'done'
        : 'skipped';
    case 'keepMedia':
      return (await requeueCopy(input)) ? 'done' : 'skipped';
    case 'presenceGrace':
      return (await endPresenceGrace(input.conversationId, input.dueAt, now)) ? 'done' : 'skipped';
    case 'campaignSend':
      return fireCampaign(input.conversationId, now);
  }
}

/**
 * One email with every agent reply the web visitor has not seen (read, or answered after), and the
 * CSAT question while it takes an answer. `retries`: a question withdrawn as the claim was made
 * (an agent reopened) leaves the replies still to email, read again without it.
 */
async function emailFallback(conversationId: string, now: Date, retries = 1): Promise<TimerOutcome> {
  const conversation = await getConversation(conversationId, true);
  if (!conversation || conversation.channel !== 'web' || isErasing(conversation)) return 'skipped';
  const state = conversation.engagement ?? {};
  const seenUpTo = [state.visitorReadUpTo ?? '', state.emailedUpTo ?? ''].sort().at(-1)!;
  const [recent, settings] = await Promise.all([recentMessages(conversation.id), getSettings()]);
  const unseen = unseenReplies(conversation, recent, seenUpTo, now);
  if (unseen.length === 0) return 'skipped';
  // Each reply re-arms the fallback, so it is due the delay after the newest one. Early: the delay
  // was raised since this was armed (the schedule deletes itself after firing), so wait out the rest.
  const newest = unseen.at(-1)!;
  const dueAt = Date.parse(newest.createdAt) + settings.timers.emailFallbackDelaySeconds * 1000;
  if (now.getTime() + 1000 < dueAt) {
    await setTimerAt('emailFallback', conversationId, new Date(dueAt), { messageId: newest.id });
    return 'skipped';
  }
  const to = await customerEmail(conversation);
  // An address SES cannot send to (a Unicode local part) is as good as none.
  if (!to || !sesAddress(to)) return 'skipped';
  // Claimed before sending: a second fire (or a concurrent one) finds the replies emailed.
  // The address is recorded with the claim: replies are taken only from it (receiveEmail).
  // Checked again on the record the claim replaces: the visitor may have come back and read (or
  // answered) the replies since the read above, and the cancel of this timer can lose that race.
  const emailedTo = normalizeEmail(to) ?? to.toLowerCase();
  const seenSince = (c: ConversationRecord) => (c.engagement?.visitorReadUpTo ?? '') >= newest.id || (c.lastInboundAt !== undefined && c.lastInboundAt >= newest.createdAt);
  const withdrawn = (c: ConversationRecord) => unseen.some((m) => isCsatQuestion(m) && !questionOpen(c, m, now));
  const claim = await updateConversation(conversationId, (c) =>
    (c.engagement?.emailedUpTo ?? '') >= newest.id || isErasing(c) || seenSince(c) || withdrawn(c)
      ? undefined
      : { ...c, engagement: { ...c.engagement, emailedUpTo: newest.id, emailedTo } },
  );
  if (!claim || claim.after === claim.before) return claim && retries > 0 && withdrawn(claim.after) ? emailFallback(conversationId, now, retries - 1) : 'skipped';
  const { items } = await listMessages(conversationId, { limit: EMAIL_CONTEXT_MESSAGES + unseen.length, includePrivate: false });
  const context = items.filter((m) => m.id < unseen[0]!.id).slice(-EMAIL_CONTEXT_MESSAGES);
  try {
    await sendReplyEmail({ to, conversation, unseen, context });
  } catch (error) {
    // Give the claim back so that the Scheduler's retry can send.
    await updateConversation(conversationId, (c) =>
      c.engagement?.emailedUpTo === newest.id ? { ...c, engagement: { ...c.engagement, emailedUpTo: state.emailedUpTo } } : undefined,
    );
    throw error;
  }
  return 'done';
}

/**
 * One follow-up when the customer has not answered an agent's reply. Provider windows decide
 * how: a plain message inside the window, a tag (Messenger/Instagram, added by the adapter) or an
 * approved template (WhatsApp), else no send and a private note telling the agent why.
 */
async function reengage(input: TimerInput, now: Date): Promise<TimerOutcome> {
  const first = await getConversation(input.conversationId, true);
  const active = (c: ConversationRecord) => c.status !== 'resolved' && c.status !== 'snoozed';
  if (!first || !active(first) || !input.messageId || isErasing(first)) return 'skipped';
  const settings = await getSettings();
  if (!settings.reengagement.enabled) return 'skipped';
  const reply = await getMessage(first.id, input.messageId);
  // A reply the provider reported failed (after it was sent) never reached the customer: nothing to follow up.
  if (!reply || reply.status === 'failed') return 'skipped';
  const unanswered = (c: ConversationRecord) => active(c) && !isErasing(c) && !(c.lastInboundAt && c.lastInboundAt >= reply.createdAt);
  if (!unanswered(first)) return 'skipped';
  const claimedFor = first.engagement?.reengagedFor ?? '';
  // Claimed for this reply by a run that may have died before its follow-up was stored or queued
  // (the Scheduler retries a run that failed): finished here, under the same id, never twice.
  if (claimedFor === reply.id) return (await finishFollowUp(first, reply, settings, now)) ? 'done' : 'skipped';
  if (claimedFor > reply.id) return 'skipped';
  const dueAt = Date.parse(reply.createdAt) + settings.timers.reengageAfterSeconds * 1000;
  if (now.getTime() + 1000 < dueAt) {
    // Early: the delay was raised since this was armed, and the schedule deletes itself after
    // firing, so wait out the rest. Not when a later message (a newer reply arms its own
    // follow-up) made this fire stale. The time comes from stored state: a retried fire re-arms the same.
    if (first.lastMessageAt <= reply.createdAt) await setTimerAt('reengage', first.id, new Date(dueAt), { messageId: reply.id });
    return 'skipped';
  }
  // Checked again on the record the claim replaces: the customer may have written (or an agent
  // resolved) since the read above, and the cancel of this timer can lose that race. The claim's
  // time names the follow-up (followUpId), so that a retry after a failure stores the same one.
  const claim = await updateConversation(first.id, (c) =>
    !unanswered(c) || (c.engagement?.reengagedFor ?? '') >= reply.id
      ? undefined
      : { ...c, engagement: { ...c.engagement, reengagedFor: reply.id, reengagedAt: now.toISOString() } },
  );
  if (!claim || claim.after === claim.before) return 'skipped';
  await sendFollowUp(claim.after, settings, now, followUpId(claim.after, reply.id)!);
  return 'done';
}

/** The id of the follow-up claimed for `replyId`: made from the claim, the same on every retry. */
function followUpId(conversation: ConversationRecord, replyId: string): string | undefined {
  const at = conversation.engagement?.reengagedFor === replyId ? conversation.engagement.reengagedAt : undefined;
  return at ? idFor(Date.parse(at), `${conversation.id}#reengage#${replyId}`) : undefined;
}

/**
 * A follow-up claimed by an earlier run: stored and queued if that run died before it did, queued
 * again if it died before the queue took it (sent at most once, deliverOutbound). True when this
 * run stored it. A claim made before follow-ups had ids of their own is left as it stands.
 */
async function finishFollowUp(conversation: ConversationRecord, reply: Message, settings: Settings, now: Date): Promise<boolean> {
  const id = followUpId(conversation, reply.id);
  if (!id) return false;
  const stored = await getMessage(conversation.id, id);
  if (!stored) {
    await sendFollowUp(conversation, settings, now, id);
    return true;
  }
  // A note instead of the follow-up (outside the provider's window): the run that stored it may have died before showing it.
  if (stored.private) await showNote(stored, conversation);
  else if (stored.status === 'queued') await enqueueOutbound([{ conversationId: stored.conversationId, messageId: stored.id }]);
  return false;
}

/** The follow-up itself, as the conversation's channel and its provider window allow it now. */
async function sendFollowUp(conversation: ConversationRecord, settings: Settings, now: Date, id: string): Promise<void> {
  const text = settings.reengagement.message;
  if (!isProviderChannel(conversation.channel)) {
    await storeOutbound(conversation, { text }, 'queue', id);
    return;
  }
  // Not under Messenger's and Instagram's HUMAN_AGENT tag past their 24 hours: it is for people
  // answering, as the greeting and the CSAT question keep to (canSendNow).
  if (canSendNow(conversation, now)) {
    await storeOutbound(conversation, { text }, 'queue', id);
    return;
  }
  const template = conversation.channel === 'whatsapp' ? settings.reengagement.whatsappTemplate : undefined;
  const decision = sendDecision(conversation, now, Boolean(template));
  if (template && decision.allowed && !decision.tag) {
    await storeOutbound(conversation, { text, template }, 'queue', id);
    return;
  }
  const reason = !decision.allowed
    ? decision.message
    : decision.tag
      ? 'the customer last wrote more than 24 hours ago, and the HUMAN_AGENT tag that lets a message through now is for people answering, not automatic messages.'
      : 'the channel does not allow it now';
  await storeOutbound(conversation, { text: `Automatic follow-up not sent: ${reason} Follow up yourself if needed.` }, 'note', id);
}

/** Resolves a conversation nobody touched for the configured time, then asks for a rating. */
async function autoResolve(conversationId: string, now: Date): Promise<TimerOutcome> {
  const conversation = await getConversation(conversationId, true);
  // Its newest message is a reply that never reached the customer: open until the agent sends it again.
  // Being erased (Erasure): its steps resolve it; nothing more is written in it, no question sent.
  if (!conversation || conversation.status === 'snoozed' || isErasing(conversation) || (conversation.status !== 'resolved' && awaitsRetry(conversation))) return 'skipped';
  const settings = await getSettings();
  // Resolved by a run that may have died before its question was stored (the Scheduler retries it).
  if (conversation.status === 'resolved') return (await finishCsatQuestion(conversation, settings)) ? 'done' : 'skipped';
  const dueAt = Date.parse(conversation.lastMessageAt) + settings.timers.autoResolveAfterSeconds * 1000;
  if (now.getTime() + 1000 < dueAt) {
    // Early: the delay was raised since this was armed (the schedule deletes itself after firing,
    // so wait out the rest), or activity since re-armed a later one. Counted from the newest
    // activity, the rest is what that activity armed anyway, and a retried fire re-arms the same.
    await setTimerAt('autoResolve', conversationId, new Date(dueAt));
    return 'skipped';
  }
  const at = now.toISOString();
  const { before, after } = await resolveWithoutAgent(conversationId, at, settings, {
    askCsat: settings.csat.enabled && canSendNow(conversation, now),
    keep: (c) => c.status === 'resolved' || c.status === 'snoozed' || c.lastMessageAt !== conversation.lastMessageAt || awaitsRetry(c) || isErasing(c),
  });
  return after === before ? 'skipped' : 'done';
}

/**
 * Resolves a conversation with no agent resolving it (the idle timer, or the web visitor ending it)
 * unless `keep` holds on the stored record, through the path an agent's resolution takes (the
 * holder's slot given back, the timers cancelled: changeConversation). No `by`: it is credited to
 * the agent holding it, nobody's in the queue. With `askCsat` the rating is asked at the same
 * moment, under an id made from the ask, so a retry finding it resolved asks once (finishCsatQuestion).
 */
async function resolveWithoutAgent(
  conversationId: string,
  at: string,
  settings: Settings,
  options: { askCsat: boolean; keep: (c: ConversationRecord) => boolean },
): Promise<{ before: ConversationRecord; after: ConversationRecord }> {
  const { askCsat, keep } = options;
  const result = await changeConversation(conversationId, (c) =>
    keep(c) ? undefined : { ...withStatus(c, 'resolved', at), engagement: { ...c.engagement, ...(askCsat ? { csatAskedAt: at, csatResolvedAt: at } : {}) } },
  );
  if (result.after !== result.before && askCsat) await askForRating(result.after, settings, csatQuestionId(conversationId, at));
  return result;
}

/**
 * The web visitor ends their conversation (the widget's "End conversation", as Chatwoot's): an open,
 * pending or snoozed one is resolved as the auto-resolve resolves it, and with CSAT on the rating is
 * asked at once. Resolved already (another tab, a second tap), nothing changes, and no second
 * question: only one a run that died after the resolution left unasked is asked now, under its id.
 * `changed`: this call resolved it (and published the change).
 */
export async function resolveByVisitor(conversationId: string, now = new Date()): Promise<{ conversation: ConversationRecord; changed: boolean }> {
  const settings = await getSettings();
  const { before, after } = await resolveWithoutAgent(conversationId, now.toISOString(), settings, {
    askCsat: settings.csat.enabled,
    keep: (c) => c.status === 'resolved' || isErasing(c),
  });
  const changed = after !== before;
  if (!changed && after.status === 'resolved' && !isErasing(after)) await finishCsatQuestion(after, settings);
  return { conversation: after, changed };
}

/**
 * An agent's resolution (`/resolve`, `/status`, a macro's `setStatus`) asks the CSAT question as
 * the auto-resolve does, as Chatwoot asks when an agent resolves: `next`, the conversation resolved
 * at `at`, carries the ask in the same write. Not to a customer who never wrote (a proactive message
 * nobody answered), nor one whose last word was a rating of this issue, nor where the question could
 * not go now (the provider's window, an SMS opt-out), nor after a reply that never reached them (as
 * the auto-resolve), nor during an erasure.
 */
export function withAgentResolutionAsk(next: ConversationRecord, settings: Settings, at: string): ConversationRecord {
  if (next.status !== 'resolved' || !settings.csat.enabled || !next.lastInboundAt || isErasing(next) || awaitsRetry(next)) return next;
  if (next.csat?.at && next.csat.at >= next.lastInboundAt) return next;
  if (!canSendNow(next, new Date(at))) return next;
  return { ...next, engagement: { ...next.engagement, csatAskedAt: at, csatResolvedAt: at } };
}

/**
 * After the write withAgentResolutionAsk shaped: the question, under the id made from the ask. A
 * retried call that changed nothing (the first died after its write) asks the question that one
 * left unasked, once, as the auto-resolve's retry does.
 */
export async function askAfterAgentResolution(before: ConversationRecord, after: ConversationRecord, settings: Settings): Promise<void> {
  const askedAt = after.engagement?.csatAskedAt;
  if (after.status !== 'resolved' || !askedAt || isErasing(after)) return;
  if (after === before) await finishCsatQuestion(after, settings);
  else if (before.engagement?.csatAskedAt !== askedAt) await askForRating(after, settings, csatQuestionId(after.id, askedAt));
}

/** The CSAT question an auto-resolve asked at `askedAt`: its id is made from the ask, the same on every retry. */
const csatQuestionId = (conversationId: string, askedAt: string) => idFor(Date.parse(askedAt), `${conversationId}#csat#${askedAt}`);

/** When the CSAT question `message` was asked (its id is made from the ask), or undefined for any other message. */
function csatAskOf(message: Message): string | undefined {
  let askedAt: string;
  try {
    askedAt = new Date(decodeTime(message.id)).toISOString();
  } catch {
    return undefined; // no id this code made (a time it cannot read)
  }
  return message.id === csatQuestionId(message.conversationId, askedAt) ? askedAt : undefined;
}

/**
 * Why a queued message of the bot must not go out after all, asked just before it is sent: a CSAT
 * question whose ask was dropped since it was queued (the customer wrote in the moment between the
 * resolution and the send, reopening the conversation, or an agent changed its status) would land
 * after the customer's message as though it answered it. Read consistently: that message is a moment old.
 */
export async function withdrawnBeforeSending(message: Message): Promise<string | undefined> {
  if (message.sender.type !== 'bot' || message.direction !== 'outbound') return undefined;
  const askedAt = csatAskOf(message);
  if (askedAt) {
    const conversation = await getConversation(message.conversationId, true);
    if (conversation?.status === 'resolved' && conversation.engagement?.csatAskedAt === askedAt) return undefined;
    return 'Not sent: the conversation was reopened (the customer wrote, or an agent changed it) before the rating question went out.';
  }
  return (await answeredBeforeFollowUp(message)) ? 'Not sent: the customer wrote before the follow-up went out.' : undefined;
}

/**
 * Whether `message` is the follow-up claimed for an agent's reply that the customer has answered
 * since the claim (writing in the moment between its queueing and its send): "anything else?"
 * would land after their message. Only a message with the follow-up's text is looked up.
 */
async function answeredBeforeFollowUp(message: Message): Promise<boolean> {
  if (message.text !== (await getSettings()).reengagement.message) return false;
  const conversation = await getConversation(message.conversationId, true);
  const replyId = conversation?.engagement?.reengagedFor;
  if (!conversation?.lastInboundAt || !replyId || followUpId(conversation, replyId) !== message.id) return false;
  const reply = await getMessage(conversation.id, replyId);
  return reply !== undefined && conversation.lastInboundAt >= reply.createdAt;
}

/** The bot's CSAT question as the widget gets it (its buttons are the `csat` attachment). */
const isCsatQuestion = (m: Message) => m.sender.type === 'bot' && m.direction === 'outbound' && m.attachments.some((a) => a.type === 'csat');

/**
 * Whether `question` still takes an answer: its ask is the conversation's, which is still resolved
 * (a customer's message or any change of status drops the ask), and its answer window is open.
 * Emailed otherwise, the customer's "5" would reopen the conversation instead of rating it.
 */
function questionOpen(conversation: ConversationRecord, question: Message, now: Date): boolean {
  const askedAt = csatAskOf(question);
  return (
    askedAt !== undefined &&
    conversation.status === 'resolved' &&
    conversation.engagement?.csatAskedAt === askedAt &&
    now.getTime() - Date.parse(askedAt) < CSAT_ANSWER_WINDOW_MS
  );
}

async function askForRating(conversation: ConversationRecord, settings: Settings, id: string): Promise<void> {
  // The widget draws buttons 1–5 for a `csat` attachment; other channels read the question as text.
  const attachments: Attachment[] = conversation.channel === 'web' ? [{ type: 'csat', url: '', name: 'rating 1-5' }] : [];
  await storeOutbound(conversation, { text: settings.csat.question, attachments }, 'queue', id);
}

/**
 * An auto-resolve whose run died after the resolution (its fan-out, routing, or the question's
 * write or queueing failed) left its question unasked: asked now, or queued again if it is stored
 * but still queued (sent at most once). True when this run stored it. Nothing once the customer
 * answered or anything changed the status (the ask is dropped then), nor when a message the
 * customer sees was written since the ask without being the question (a question of an earlier
 * version, whose id was not made from the ask; an agent's follow-up; the customer's own). A
 * private note is none: the team's, written meanwhile, must not cost the customer the question.
 */
async function finishCsatQuestion(conversation: ConversationRecord, settings: Settings): Promise<boolean> {
  const askedAt = conversation.engagement?.csatAskedAt;
  // An auto-resolve resolves and asks at one moment.
  if (!askedAt || conversation.resolvedAt !== askedAt) return false;
  const id = csatQuestionId(conversation.id, askedAt);
  const stored = await getMessage(conversation.id, id);
  if (stored) {
    if (stored.status === 'queued') await enqueueOutbound([{ conversationId: stored.conversationId, messageId: stored.id }]);
    return false;
  }
  // Not lastOutboundId: every note moves it too (agents', another sender's email, a channel move's).
  if (await shownSince(conversation.id, Date.parse(askedAt))) return false;
  await askForRating(conversation, settings, id);
  return true;
}

/**
 * Whether the newest message the customer sees (notes left out) was written at `sinceMs` or after.
 * listMessages looks through a few pages of notes for it: past them, it answers no, and the
 * question is asked rather than lost.
 */
async function shownSince(conversationId: string, sinceMs: number): Promise<boolean> {
  const { items } = await listMessages(conversationId, { limit: 1, includePrivate: false });
  const newest = items.at(-1);
  return newest !== undefined && decodeTime(newest.id) >= sinceMs;
}

/**
 * Inside the provider's free window (no template or tag needed): neither the CSAT question nor a
 * greeting is worth a template, and Messenger's HUMAN_AGENT tag is for people. A greeting outside
 * it (the provider delivered the customer's message after its window closed) would only fail.
 */
function canSendNow(conversation: ConversationRecord, now: Date): boolean {
  if (!isProviderChannel(conversation.channel)) return true;
  const decision = sendDecision(conversation, now, false);
  return decision.allowed && !decision.tag;
}
