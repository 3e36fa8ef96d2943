/**
 * The agent side of a conversation: replies and private notes are stored first (so the
 * API can answer 202 with the message), then delivered by the outbound queue's consumer.
 */
import { contentHash, newId } from './ids';
import { badRequest, ClientError, notFound } from './errors';
import type { Attachment, Message, MessageStatus, OutboundJob, SendProgress } from './types';
import { isProviderChannel } from './types';
import { afterOutbound, afterReplyFailed, beforeSend } from './automation';
import { besideTimers } from './timers';
import { drainQueue, isDrainJob } from './routing';
import { deliverProactive, isProactiveJob, requeueProactive } from './proactive';
import { isErasureJob, requeueErasure, runErasureStep } from './erasure';
import { conversationEventAfterMessage, messageEvent, messageUpdatedEvent, visitorMessageEvent } from './events';
import { agentConnectionsAhead, publish, scopeOf } from './fanout';
import { announceMentions, checkMentions, mentionedOthers } from './mentions';
import { attachUploads, forProvider, sendingKinds, type AttachmentRef } from './media';
import { keepProviderMedia } from './provider-media';
import { isKeepMediaJob, retryCopyLater } from './media-jobs';
import { getAdapter } from '../channels/registry';
import { sendDecision } from '../channels/window';
import { baseUrl, ChannelNotConfiguredError, loadCredentials } from '../channels/credentials';
import { PROVIDER_TIMEOUT_MS } from '../channels/common';
import type { Credentials, WindowDecision } from '../channels/types';
import { enqueueOutbound } from '../aws/queues';
import { FUNCTIONS } from '../manifest';
import {
  applyMessageToOpenConversation,
  getConversation,
  isErasing,
  updateConversation,
  type ConversationRecord,
} from '../store/conversations';
import type { ConnectionRecord } from '../store/connections';
import {
  claimDedup,
  earlyStatuses,
  STATUS_RANK,
  getMessage,
  releaseDedup,
  restoreDedup,
  getMessageToSend,
  listMessages,
  type MessageToSend,
  putMessage,
  recordSendDeferred,
  recordSendFailure,
  recordSendProgress,
  settleOvertakenSend,
  READ_IN_FLIGHT,
  STATUS_HELD,
  updateMessageStatus,
} from '../store/messages';

/**
 * The share of an outbound batch's time its copy jobs may take: the replies beside them must be
 * sent and recorded before the function's timeout, or a reply the provider took could go again.
 */
export const COPY_BUDGET_MS = (FUNCTIONS.outbound.timeoutSeconds * 1000) / 2;

/**
 * How long into its batch a reply's send may run: a large file's transfer (Telegram's uploads) is
 * given time for its size up to then, and the rest of the function's time records what the provider took.
 */
export const SEND_BUDGET_MS = FUNCTIONS.outbound.timeoutSeconds * 1000 - 5_000;

export interface AgentIdentity {
  id: string;
  name?: string;
  role: 'agent' | 'admin';
}

export interface AgentMessageInput {
  text: string;
  clientMessageId?: string;
  private?: boolean;
  template?: { name: string; language?: string; params?: string[] };
  /** Files the agent uploaded (src/domain/media.ts). */
  attachments?: AttachmentRef[];
  /**
   * A transfer's note: its writer handed the conversation over, which is no help on a colleague's
   * conversation, so they do not join its participants (a focused console stops following it).
   */
  handoff?: boolean;
  /**
   * The replying console's own WebSocket connection (the getConnection action names it): it has
   * the message from the answer, so it is not sent the message.created (Pusher's socket_id); its
   * other tabs are.
   */
  connectionId?: string;
  /** Agents a private note mentions (src/domain/mentions.ts). */
  mentions?: string[];
}

export interface OutboundEffects {
  /** Agents who join the conversation's participants: its writer helping on a colleague's conversation, those a note mentions. */
  participants?: readonly string[];
  /** Sent without the customer asking (proactive): no first reply, recorded as `lastUnpromptedAt`. */
  unprompted?: boolean;
}

/** Moves the conversation's activity forward for a message that is not the customer's. */
export async function applyOutboundToConversation(conversationId: string, message: Message, effects: OutboundEffects = {}): Promise<ConversationRecord | undefined> {
  const { participants = [], unprompted = false } = effects;
  const fast = await applyMessageToOpenConversation(conversationId, {
    id: message.id,
    createdAt: message.createdAt,
    direction: 'outbound',
    private: message.private,
    senderType: message.sender.type,
    ...(unprompted ? { unprompted } : {}),
    ...(participants.length ? { participants } : {}),
  });
  if (fast === 'duplicate') return undefined;
  if (fast) return fast;
  // Not open: an agent may still write (e.g. a follow-up on a resolved conversation) without reopening it.
  const result = await updateConversation(conversationId, (c) => {
    if (c.lastOutboundId === message.id) return undefined;
    return {
      ...c,
      lastOutboundId: message.id,
      updatedAt: message.createdAt,
      ...(participants.length ? { participants: new Set([...(c.participants ?? []), ...participants]) } : {}),
      ...(message.private ? {} : { lastMessageAt: message.createdAt }),
      ...(unprompted ? { lastUnpromptedAt: message.createdAt, ...withoutCsatAskBefore(c, message.createdAt) } : {}),
      ...(!unprompted && message.sender.type === 'agent' && !message.private
        ? { followedUpAt: message.createdAt, ...(c.firstReplyAt || answersNothingWaiting(c, message) ? {} : { firstReplyAt: message.createdAt }) }
        : {}),
    };
  });
  return result?.after;
}

/**
 * A campaign reaching a resolved conversation after its rating question is what the customer
 * answers next: their "2" to "reply 1 to confirm, 2 to reschedule" is no rating, and must reopen
 * the conversation for the team. So the question is dropped, as a status change drops it. An
 * agent's own follow-up keeps it ("thanks for chatting" after the visitor ended the chat).
 */
const withoutCsatAskBefore = (c: ConversationRecord, at: string): Pick<ConversationRecord, 'engagement'> | Record<string, never> =>
  c.engagement?.csatAskedAt !== undefined && c.engagement.csatAskedAt < at ? { engagement: { ...c.engagement, csatAskedAt: undefined, csatResolvedAt: undefined } } : {};

/**
 * A follow-up on a resolved conversation answers nothing waiting: it is no first reply, nor is one
 * written before the customer's message that reopened it, or that started its episode (applied
 * after it). A reply written before a colleague resolved it (and applied after) still is.
 */
const answersNothingWaiting = (c: ConversationRecord, message: Message) =>
  (c.status === 'resolved' && (c.resolvedAt ?? '') <= message.createdAt) || [c.episodeStartedAt, c.reportStartedAt].some((at) => (at ?? '') > message.createdAt);

/**
 * What a stored reply's conversation write would have added, for a retry after that write failed:
 * its first reply, its activity (never moved back by a later message) and its participants. The
 * conversation as it stands after (the retry tells the consoles: the write may have landed without them hearing of it).
 */
export async function catchUpConversation(conversationId: string, message: Message, participants: readonly string[] = []): Promise<ConversationRecord | undefined> {
  const result = await updateConversation(conversationId, (c) => {
    const reply = message.sender.type === 'agent' && !message.private;
    const firstReply = reply && !c.firstReplyAt && !answersNothingWaiting(c, message);
    // A follow-up (written while not open), as applyOutboundToConversation records it.
    const followUp = reply && c.status !== 'open' && (c.followedUpAt ?? '') < message.createdAt;
    const latest = !message.private && c.lastMessageAt < message.createdAt;
    const joining = participants.filter((p) => !c.participants?.has(p));
    const joins = joining.length > 0;
    if (!firstReply && !followUp && !latest && !joins) return undefined;
    return {
      ...c,
      ...(firstReply ? { firstReplyAt: message.createdAt } : {}),
      ...(followUp ? { followedUpAt: message.createdAt } : {}),
      ...(latest ? { lastMessageAt: message.createdAt } : {}),
      ...(c.updatedAt < message.createdAt ? { updatedAt: message.createdAt } : {}),
      ...((c.lastOutboundId ?? '') < message.id ? { lastOutboundId: message.id } : {}),
      ...(joins ? { participants: new Set([...(c.participants ?? []), ...joining]) } : {}),
    };
  });
  return result?.after;
}

/** Refuses a send the provider would refuse (24-hour windows, an opt-out), with a reason the agent can act on. */
export function checkWindow(conversation: ConversationRecord, hasTemplate: boolean, now = new Date()): void {
  if (!isProviderChannel(conversation.channel)) return;
  const decision = sendDecision(conversation, now, hasTemplate);
  if (!decision.allowed) throw new ClientError(422, decision.code, decision.message);
}

/**
 * The idempotency scope of an agent's send with a clientMessageId. Per conversation (a client
 * counting its ids per conversation must not collide across them), and per content (text, note or
 * reply, template, files): the same id for another message (a console that counts its ids anew)
 * is that other message, sent, as a retry of the same one is not.
 */
export function agentMessageScope(agentId: string, conversationId: string, input: AgentMessageInput): string | undefined {
  if (!input.clientMessageId) return undefined;
  const content: unknown[] = [input.text, input.private === true, input.template ?? null, (input.attachments ?? []).map((a) => [a.uploadId, a.name ?? null])];
  // Only when given, so that the scopes of messages without mentions stay what they were.
  if (input.mentions?.length) content.push([...new Set(input.mentions)].sort());
  return `agent#${agentId}#${conversationId}#${input.clientMessageId}#${contentHash(JSON.stringify(content))}`;
}

/** A file the channel would refuse for its size or type is refused now, with the reason, not failed after the 202. */
function refuseUnsendableFiles(channel: string, attachments: readonly Attachment[]): void {
  if (attachments.length === 0 || !isProviderChannel(channel)) return;
  const adapter = getAdapter(channel);
  const { tooLarge, unsupported } = sendingKinds(attachments, adapter.mediaLimits, adapter.mediaTypes);
  if (tooLarge) throw new ClientError(413, 'attachment_too_large', tooLarge);
  if (unsupported) throw new ClientError(415, 'attachment_type_not_supported', unsupported);
}

export async function postAgentMessage(conversationId: string, agent: AgentIdentity, input: AgentMessageInput): Promise<Message> {
  const isPrivate = input.private === true;
  const tentative = { conversationId, messageId: newId() };
  const scope = agentMessageScope(agent.id, conversationId, input);
  // The claim beside the read, one round trip less; a request refused by the checks that follow
  // takes its claim back, so bad input changes nothing.
  const [conversation, { claimed, record }] = await Promise.all([
    getConversation(conversationId),
    scope ? claimDedup(scope, tentative) : Promise.resolve({ claimed: true, record: tentative }),
  ]);
  let attachments: Attachment[] = [];
  let mentions: string[] = [];
  // The same reply again, stored by an earlier attempt: answered with it whatever the checks would
  // say now (the window may have closed since, the upload expired).
  const existing = claimed ? undefined : await getMessage(record.conversationId, record.messageId);
  try {
    // Being erased (its contact's erasure was asked for): gone to agents, as the reads answer.
    if (!conversation || isErasing(conversation)) throw notFound('conversation');
    if (!existing) {
      if (input.template && (isPrivate || conversation.channel !== 'whatsapp')) {
        throw badRequest('template_not_supported', 'templates are WhatsApp message templates: send text on this conversation');
      }
      if (input.template && input.attachments?.length) {
        throw badRequest('template_not_supported', 'a template carries no attachments: send the files in a reply of their own');
      }
      mentions = await checkMentions(input.mentions, isPrivate);
      if (!isPrivate) checkWindow(conversation, Boolean(input.template));
      if (input.attachments?.length) {
        const channel = conversation.channel;
        attachments = await attachUploads({ kind: 'agent', id: agent.id, conversationId }, input.attachments, isPrivate ? undefined : (files) => refuseUnsendableFiles(channel, files));
      }
    }
  } catch (error) {
    // Refused input changes nothing; an outage (S3, DynamoDB) keeps the claim, so a retry beside it cannot store twice.
    if (scope && claimed && error instanceof ClientError) await releaseDedup(scope);
    throw error;
  }
  // Helping on a colleague's conversation makes an agent follow it (src/domain/fanout.ts), as
  // being mentioned in a note does.
  const writer = conversation.assigneeId === agent.id || input.handoff ? [] : [agent.id];
  const participantsFor = (m: Pick<Message, 'mentions' | 'sender'>) => [...new Set([...writer, ...mentionedOthers(m)])];
  const sender = input.connectionId ? { sender: { connectionId: input.connectionId, principalId: agent.id } } : {};
  if (!claimed) {
    // The same reply again: a first attempt that died after storing it may not have moved the
    // conversation, shown the reply (or note) or queued it. Queued again under the same
    // deduplication id, and sent at most once (deliverOutbound).
    const caughtUp = existing ? await catchUpConversation(conversationId, existing, participantsFor(existing)) : undefined;
    const show = (m: Message) =>
      publish([messageEvent(m, caughtUp), ...(caughtUp ? [conversationEventAfterMessage(conversation, caughtUp)] : [])], {
        agents: scopeOf(caughtUp ?? conversation, conversation),
        ...sender,
      });
    if (existing?.private) {
      await show(existing);
      // Told once: recorded by the first attempt, a mention is not announced again.
      await announceMentions(existing, conversation);
      return existing;
    }
    if (existing?.status === 'queued') {
      await show(existing);
      await enqueueOutbound([{ conversationId: existing.conversationId, messageId: existing.id }]);
      // The first attempt's delivery may have moved it on since the read: that frame must not be the last word.
      const current = await getMessage(existing.conversationId, existing.id);
      if (current && current.status !== 'queued') await publish([messageUpdatedEvent(current)], { agents: scopeOf(conversation) });
      return current ?? existing;
    }
    if (existing) return existing;
  }
  const message: Message = {
    id: record.messageId,
    conversationId,
    direction: 'outbound',
    sender: { type: 'agent', id: agent.id, ...(agent.name ? { name: agent.name } : {}) },
    channel: conversation.channel,
    text: input.text,
    attachments,
    status: isPrivate ? 'sent' : 'queued',
    private: isPrivate,
    ...(input.template ? { template: input.template } : {}),
    ...(mentions.length ? { mentions } : {}),
    createdAt: new Date().toISOString(),
  };
  // The two writes and the lookup of who to tell do not depend on each other: side by side, the
  // reply waits two round trips less. If the message's write fails after the conversation's, the
  // client's retry (same clientMessageId) writes the message and finds the conversation moved on.
  const agentConnections = agentConnectionsAhead();
  const [stored, updated] = await Promise.all([putMessage(message), applyOutboundToConversation(conversationId, message, { participants: participantsFor(message) })]);
  // The same request sent twice at once: the other attempt, past the claim first, stored it after
  // this one found nothing, and shows, announces and queues it. Ours, of a later createdAt, would
  // be a second message.created and, its mention index past the first, a second mention notice.
  if (!stored) {
    const existing = await getMessage(conversationId, message.id);
    if (existing) {
      // The conversation's move may be this attempt's (the other's then refused as a duplicate): told here.
      if (updated) await publish([conversationEventAfterMessage(conversation, updated)], { agents: scopeOf(updated, conversation), agentConnections });
      return existing;
    }
  }
  // Agents see the reply at once (queued, or a note), before its delivery can report message.updated.
  await publish(
    [messageEvent(message, updated), ...(updated ? [conversationEventAfterMessage(conversation, updated)] : [])],
    { agents: scopeOf(updated ?? conversation, conversation), agentConnections, ...sender },
  );
  // After the note itself, which the notice points at.
  await announceMentions(message, conversation, agentConnections);
  // Notes never leave the team: no outbound job.
  if (!isPrivate) await enqueueOutbound([{ conversationId, messageId: message.id }]);
  return message;
}

/** Whether the channel's status callbacks find a reply by the provider's id (so ids are recorded and statuses may be held). */
function statusesById(channel: string): boolean {
  if (!isProviderChannel(channel)) return false;
  const adapter = getAdapter(channel);
  return !adapter.statusesCarryReference && adapter.reportsStatuses !== false;
}

/** The idempotency scopes of a send's provider ids, which lead status callbacks back to it. */
const idScopes = (channel: string, providerIds: string[]) => providerIds.map((id) => `${channel}#${id}`);

/**
 * Applies the furthest of the statuses held for the provider ids in `scopes` (src/domain/inbound.ts
 * ingestStatus): a status never moves back, so the ones before it would add writes and nothing else.
 * The reply as it is after, or undefined when it did not move it. A held status that covers the
 * earlier replies (Instagram's seen) is applied to them as well, and they are told to the agents
 * here; `redelivered`: a send or echo handed over again, whose dead attempt may have written them.
 */
export async function applyHeldStatuses(message: Message, scopes: string[], redelivered = false): Promise<Message | undefined> {
  const held = (await Promise.all(scopes.map(earlyStatuses))).flat().sort((a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status]);
  const furthest = held.at(-1);
  if (!furthest) return undefined;
  const applied = await updateMessageStatus(message.conversationId, message.id, furthest.status, furthest.error ? { error: furthest.error } : {});
  // Whether or not this reply moved now: a redelivery after a crash past its write still owes the rest.
  const covering = held.filter((s) => s.coversEarlier).at(-1);
  if (covering) await applyToCovered(message.conversationId, covering.status, (m) => m.id < message.id, [], redelivered);
  return applied;
}

/**
 * How far back a receipt for everything up to a point looks (Messenger's watermarks, Instagram's
 * seen): one Query on the conversation's newest messages. Older outbound messages were covered by
 * earlier receipts.
 */
const COVERED_LOOKBACK = 50;

/**
 * A receipt for everything up to a point: applied to the conversation's newest outbound messages
 * that `covers`, and told to agents with `updated` (what was already applied) in one fan-out.
 */
export async function applyToCovered(
  conversationId: string,
  status: MessageStatus,
  covers: (m: Message) => boolean,
  updated: Message[] = [],
  /** The queue hands the receipt (or the send or echo that applies it) over again: the attempt that died may have written some of them. */
  redelivered = false,
): Promise<void> {
  // A redelivery reads what the dead attempt wrote (consistently: a lagging read would try those
  // writes again, be refused, and tell nobody); the first delivery takes the cheaper read.
  const { items } = await listMessages(conversationId, { limit: COVERED_LOOKBACK, includePrivate: false, ...(redelivered ? { consistent: true } : {}) });
  const covered = items.filter((m) => m.direction === 'outbound' && m.providerMessageId && covers(m) && !updated.some((u) => u.id === m.id));
  // Statuses only move forward, so a message the read shows at this status or past it is skipped:
  // its write would be refused, and a refused write is billed all the same (the read may lag, so
  // one a step behind is still tried, and updateMessageStatus refuses it if it moved on meanwhile).
  for (const message of covered.filter((m) => STATUS_RANK[m.status] < STATUS_RANK[status])) {
    const after = await updateMessageStatus(conversationId, message.id, status);
    if (after) updated.push(after);
  }
  // The dead attempt may have written these and died before telling the agents: told the status
  // as it stands (one an earlier receipt had set is told again, the same frame).
  if (redelivered) updated.push(...covered.filter((m) => m.status === status));
  if (updated.length > 0) await publishStatuses(conversationId, updated);
}

/**
 * Status changes go to the agents who follow the conversation; its assignee is read only when a
 * focused console needs it (a read that may lag a write is fine for that).
 */
export async function publishStatuses(conversationId: string, messages: Message[]): Promise<void> {
  const scope = async () => scopeOf((await getConversation(conversationId)) ?? { assigneeId: null });
  await publish(messages.map(messageUpdatedEvent), { agents: scope });
}

/** A provider said "try later" (429, 5xx, network): the queue redelivers the job. */
export class RetryableSendError extends Error {
  constructor(
    message: string,
    /** How many attempts at this message failed so far: the backoff grows with it. */
    readonly failures: number,
    /** The provider's own "not before" (Telegram's retry_after), when it gave one. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** Attempts at one message before a provider that keeps saying "later" makes it `failed`. */
export const MAX_SEND_ATTEMPTS = 5;

/**
 * Delivers one stored reply. After MAX_SEND_ATTEMPTS retryable failures (counted on the message),
 * or on the queue's last delivery of the job (`lastReceive`), a retryable failure becomes a
 * permanent one instead of a trip to the DLQ.
 */
export async function deliverOutbound(
  job: OutboundJob,
  lastReceive: boolean,
  redelivered = false,
  copyDeadlineMs = Date.now() + COPY_BUDGET_MS,
  sendDeadlineMs = Date.now() + SEND_BUDGET_MS,
): Promise<void> {
  // A customer's files to copy from the provider, in a lane of their own.
  if (isKeepMediaJob(job)) {
    await keepProviderMedia(job, lastReceive, copyDeadlineMs);
    return;
  }
  // A proactive job names a contact, not a stored message: it is expanded (and sent) there, under
  // this batch's deadlines (a send started too late could be taken and then sent again).
  if (isProactiveJob(job)) {
    await deliverProactive(job, lastReceive, redelivered, { copyMs: copyDeadlineMs, sendMs: sendDeadlineMs });
    return;
  }
  // Routing's request to hand waiting conversations out (an agent came online).
  if (isDrainJob(job)) {
    await drainQueue();
    return;
  }
  // One step of erasing a customer, in the contact's own lane.
  if (isErasureJob(job)) {
    await runErasureStep(job);
    return;
  }
  // Both reads at once: one round trip less before the send (a redelivered job wastes half a unit).
  const [stored, seen] = await Promise.all([getMessageToSend(job.conversationId, job.messageId), getConversation(job.conversationId)]);
  if (!stored) return;
  // A conversation written moments ago (a new customer's greeting) may not show in that read yet.
  const conversation = seen ?? (await getConversation(job.conversationId, true));
  // Its customer asked to be erased (README, Erasure): nothing more goes to them, as no timer
  // does; the erasure's step deletes the reply with the rest.
  if (!conversation || isErasing(conversation)) return;
  const message = stored.message;
  // Handled by an earlier delivery of the same job: nothing is sent twice. One that died after the
  // status write may not have told the agents or armed the reply's timers: a redelivery does (a
  // failed one too: its agent must see it failed to send it again; it arms no timers).
  if (message.status !== 'queued' && !partsLeft(stored)) {
    if (!redelivered) return;
    // A delivery that died after its `sent` write may not have claimed its parts' provider ids
    // (recorded on the reply by that write) nor applied what was held for them.
    const scopes =
      statusesById(conversation.channel) && message.providerMessageId && message.status !== 'failed'
        ? idScopes(conversation.channel, [message.providerMessageId, ...(stored.sendProgress?.otherIds ?? [])])
        : [];
    await Promise.all(scopes.map((scope) => restoreDedup(scope, { conversationId: message.conversationId, messageId: message.id })));
    // On WhatsApp, a `failed` without our reference that marked the send was held under its wamid.
    const heldScopes = stored.statusHeld ? [...scopes, `${conversation.channel}#${message.providerMessageId}`] : scopes;
    const held = heldScopes.length > 0 ? await applyHeldStatuses(message, heldScopes, true) : undefined;
    // Died between the delivery write and the `read` the visitor's read left for it (markReadInFlight).
    const read = stored.readInFlight && STATUS_RANK[message.status] < STATUS_RANK.read ? await updateMessageStatus(message.conversationId, message.id, 'read') : undefined;
    await finishDelivery(conversation, read ?? held ?? message);
    return;
  }
  // One of the bot's that the conversation no longer wants: never sent, and the agents see why.
  const withdrawn = await beforeSend(message);
  if (withdrawn) {
    const final = await updateMessageStatus(message.conversationId, message.id, 'failed', { error: withdrawn });
    if (final) await finishDelivery(conversation, final);
    return;
  }
  const lastAttempt = lastReceive || stored.sendFailures + 1 >= MAX_SEND_ATTEMPTS;

  // Who hears of the new status is looked up as soon as the status is known, beside its write.
  let agentConnections: Promise<ConnectionRecord[]> | undefined;
  const statusKnown = () => {
    agentConnections = agentConnectionsAhead();
  };
  let final: Message | undefined;
  if (conversation.channel === 'web') {
    statusKnown();
    const reached = conversation.visitorId
      ? await publish([visitorMessageEvent({ ...message, status: 'delivered' })], { agents: false, visitorId: conversation.visitorId })
      : 0;
    const written = await updateMessageStatus(message.conversationId, message.id, reached > 0 ? 'delivered' : 'sent');
    // The visitor read it between the frame and that write: its read left it for this job.
    final = written?.[READ_IN_FLIGHT] ? ((await updateMessageStatus(message.conversationId, message.id, 'read')) ?? written) : written;
  } else if (isProviderChannel(conversation.channel)) {
    // A part is started only while its answer can come in time (on the last receive, at any time:
    // the queue would give up on the job instead).
    const startBy = lastReceive ? undefined : sendDeadlineMs - PROVIDER_TIMEOUT_MS;
    final = await sendToProvider(conversation, message, lastAttempt, stored.sendProgress, statusKnown, { deadlineMs: sendDeadlineMs, startBy });
  } else {
    final = await updateMessageStatus(message.conversationId, message.id, 'failed', { error: `no sender for channel ${conversation.channel}` });
  }
  if (final) await finishDelivery(conversation, final, agentConnections);
}

/**
 * A reply in parts that a receipt moved past `queued` while some were still to go: WhatsApp's carry
 * our reference, so an earlier part's applies to the reply at once. When the next part is known
 * untaken (the provider refused it with an answer, not a timeout after which it may have taken it;
 * or it was put off unstarted), the rest is still sent.
 */
function partsLeft(stored: MessageToSend): boolean {
  const progress = stored.sendProgress;
  return stored.message.status !== 'failed' && stored.nextPartUntaken === true && progress?.partsTotal !== undefined && progress.partsSent < progress.partsTotal;
}

/**
 * Tells the agents a reply's status and arms its timers. Only the status is news (after an
 * overtaking receipt, the status as it stands: the same frame again, never an older one): the
 * conversation as it stands went out when the reply was posted.
 */
async function finishDelivery(conversation: ConversationRecord, message: Message, agentConnections?: Promise<ConnectionRecord[]>): Promise<void> {
  const told = () => publish([messageUpdatedEvent(message)], { agents: scopeOf(conversation), ...(agentConnections ? { agentConnections } : {}) });
  // A failed reply's disarm may reopen the conversation: its conversation.updated comes after the
  // message.updated. A sent one's timers go beside the frame, one round trip less.
  if (message.status === 'failed') {
    await told();
    await afterOutbound(conversation, message);
    return;
  }
  await besideTimers(told(), afterOutbound(conversation, message));
}

/**
 * A job about to reach the DLQ without ever being tried (skipped behind failing sends): gives up
 * on its stored reply if still queued, with `reason` for the agent. A proactive job names no
 * stored message yet: it goes back to the end of its lane as a new job instead, so that a
 * provider outage does not silently drop recipients; a copy job gets its next round, as one that
 * failed would. True once the job has nothing left to do.
 */
export async function abandonOutbound(job: OutboundJob, reason: string): Promise<boolean> {
  if (isDrainJob(job)) return true;
  if (isProactiveJob(job)) {
    await requeueProactive(job);
    return true;
  }
  if (isKeepMediaJob(job)) {
    await retryCopyLater(job);
    return true;
  }
  if (isErasureJob(job)) {
    await requeueErasure(job);
    return true;
  }
  const [stored, conversation] = await Promise.all([getMessageToSend(job.conversationId, job.messageId), getConversation(job.conversationId)]);
  if (!stored || (stored.message.status !== 'queued' && !partsLeft(stored)) || !conversation) return true;
  const failed = await updateMessageStatus(job.conversationId, job.messageId, 'failed', { error: reason });
  if (failed) await Promise.all([publish([messageUpdatedEvent(failed)], { agents: scopeOf(conversation) }), afterReplyFailed(failed)]);
  return true;
}

/**
 * What the provider's window allows this message now. A proactive message answers nobody: past the
 * 24 hours, Messenger's and Instagram's HUMAN_AGENT tag is for an agent's answer to the customer,
 * and Meta forbids it for campaigns (a Page that uses it so risks its messaging).
 */
function windowFor(conversation: ConversationRecord, message: Message): WindowDecision {
  const decision = sendDecision(conversation, new Date(), Boolean(message.template));
  if (!decision.allowed || !decision.tag || !message.unprompted) return decision;
  return {
    allowed: false,
    code: 'outside_window',
    message: 'The customer last wrote more than 24 hours ago: a proactive message goes only within the 24-hour standard messaging window (the HUMAN_AGENT tag after it is for answering the customer).',
  };
}

async function sendToProvider(
  conversation: ConversationRecord,
  message: Message,
  lastAttempt: boolean,
  resume: SendProgress | undefined,
  /** Called once the provider has answered (the reply's status is then known). */
  answered: () => void,
  time: { deadlineMs: number; startBy: number | undefined },
): Promise<Message | undefined> {
  const channel = conversation.channel;
  if (!isProviderChannel(channel)) return undefined;
  const adapter = getAdapter(channel);
  let decision = windowFor(conversation, message);
  if (!decision.allowed) {
    // The customer's newest message (the one a greeting answers) may be missing from an eventually consistent read.
    const fresh = await getConversation(conversation.id, true);
    decision = windowFor(fresh ?? conversation, message);
  }
  if (!decision.allowed) {
    return updateMessageStatus(message.conversationId, message.id, 'failed', { error: decision.message });
  }
  let credentials: Credentials;
  try {
    credentials = await loadCredentials(channel);
  } catch (error) {
    // Nobody set the channel up (its secret lacks a key, is not JSON or does not exist): no retry
    // changes that within the job's attempts, and the DLQ would leave the reply queued for good.
    // The agent sees why, and can send it again once the secret is filled in.
    if (error instanceof ChannelNotConfiguredError) return updateMessageStatus(message.conversationId, message.id, 'failed', { error: error.message });
    throw error;
  }
  const result = await adapter.send(
    {
      to: conversation.handle,
      text: message.text,
      attachments: await forProvider(message.attachments, adapter.mediaLimits, adapter.mediaTypes),
      ...(message.template ? { template: message.template } : {}),
      ...(decision.tag ? { tag: decision.tag } : {}),
      idempotencyKey: message.id,
      reference: `${message.conversationId}/${message.id}`,
    },
    {
      credentials,
      baseUrl: baseUrl(channel),
      fetch,
      deadlineMs: time.deadlineMs,
      ...(time.startBy !== undefined ? { startBy: time.startBy } : {}),
      ...(resume ? { resume } : {}),
      // A reply sent in parts: a retry after a failed part must not resend the ones before it.
      onPartSent: (progress) => recordSendProgress(message.conversationId, message.id, progress),
    },
  );
  // Late in a slow batch: back to the queue (with the jobs behind it) for the next one, at no
  // attempt's cost; the part it did not start is known untaken (partsLeft).
  if (!result.ok && result.deferred) {
    await recordSendDeferred(message.conversationId, message.id);
    throw new RetryableSendError(result.error, 0);
  }
  answered();
  if (result.ok) {
    const otherIds = result.otherIds ?? [];
    // A reply in parts: its progress made whole, every part's id in it.
    const progress = otherIds.length > 0 ? { partsSent: otherIds.length + 1, primaryId: result.providerMessageId, otherIds } : undefined;
    const ids = { providerMessageId: result.providerMessageId, ...(progress ? { sendProgress: progress } : {}) };
    // The reply's own record first, with every part's provider id: a retry after a crash anywhere
    // past it finds the reply sent (nothing goes twice) and makes the claims below from those ids.
    const sent = await updateMessageStatus(message.conversationId, message.id, 'sent', ids);
    // A status callback can overtake the provider's own answer (by our reference: no claim exists
    // yet for one by id): the reply still gets its ids and its timers.
    const final = sent ?? (await settleOvertakenSend(message.conversationId, message.id, result.providerMessageId, progress));
    if (!final) return undefined;
    // Each part's provider id leads its status callbacks back to this message (a later part that
    // fails fails the reply), unless the callbacks bring our reference themselves.
    const scopes = statusesById(channel) ? idScopes(channel, [result.providerMessageId, ...otherIds]) : [];
    const pointer = { conversationId: message.conversationId, messageId: message.id };
    await Promise.all(scopes.map((scope) => claimDedup(scope, pointer)));
    // A callback that came before its id was claimed was held (ingestStatus): applied now, after the
    // claims; on WhatsApp only when a `failed` without our reference marked this send (STATUS_HELD).
    const held = sent?.[STATUS_HELD] ? [...scopes, `${channel}#${result.providerMessageId}`] : scopes;
    return (await applyHeldStatuses(message, held)) ?? final;
  }
  if (result.retryable && !lastAttempt) {
    throw new RetryableSendError(result.error, await recordSendFailure(message.conversationId, message.id, !result.unanswered), result.retryAfterSeconds);
  }
  return updateMessageStatus(message.conversationId, message.id, 'failed', { error: result.error });
}

