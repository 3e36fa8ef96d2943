/**
 * What happens around a message without an agent: routing (src/domain/routing.ts) and
 * engagement (src/domain/engagement.ts). The inbound, outbound and realtime paths call
 * these hooks; hooks return what to publish so that those paths stay the only publishers.
 */
import type { ConversationRecord } from '../store/conversations';
import { deleteMessage } from '../store/messages';
import type { Message } from './types';
import { releaseReservation, reserveAgentForNew, routeOnConversationChange, routeOnInbound, routeOnPresence } from './routing';
import { countCampaignReply } from './campaigns';
import { csatAnswerIn, disarmFailedReply, withdrawnBeforeSending, engageOnConversationChange, ratedBy, engageOnInbound, engageOnOutbound, engageOnVisitorRead, greetNewConversation, type Greeting } from './engagement';

export interface InboundHookContext {
  conversation: ConversationRecord;
  message: Message;
  /** The conversation was created by this message. */
  created: boolean;
  /** The conversation was resolved/snoozed/pending and this message reopened it. */
  reopened: boolean;
  /**
   * The hooks run again for the message applied last, whose first run died before it finished
   * (`reopened` then comes from the conversation's `reopenedBy`: its agent's slot may be taken
   * back yet, and routing checks whether the first run took it already).
   */
  resumed?: boolean;
  /** The autoresponder's messages, stored with the conversation this message created. */
  greeting?: Greeting | undefined;
}

export interface HookResult {
  /** The conversation after the hooks' changes (assignment, flags). */
  conversation: ConversationRecord;
  /** Messages the hooks stored (autoresponder), published after the customer's own message. */
  messages: Message[];
  /** Timer schedules: run beside the fan-out, which they neither wait for nor delay. */
  timers?: () => Promise<void>;
  /** Work that must follow the fan-out (queueing the greeting: its status updates come after its message.created). */
  afterPublish?: () => Promise<void>;
}

/**
 * Before a customer's new conversation is written (its first message is stored): the agent it
 * goes to (their slot reserved) and the autoresponder's greeting (stored), so that the one write
 * that creates the conversation also assigns and answers it. `abandon` undoes both if that write
 * finds the conversation there already (made meanwhile by another path, e.g. a channel move).
 */
export async function beforeNewConversation(
  conversation: ConversationRecord,
  first: Message,
  /** When the customer wrote it, when it arrived late (src/domain/inbound.ts). */
  wroteLate?: string,
): Promise<{ fields: Partial<ConversationRecord>; greeting: Greeting | undefined; abandon: () => Promise<void> }> {
  const [assigneeId, greeting] = await Promise.all([reserveAgentForNew(conversation), greetNewConversation(conversation, first, wroteLate)]);
  return {
    fields: { assigneeId: assigneeId ?? null, ...greeting?.fields },
    greeting,
    abandon: async () => {
      await Promise.all([
        assigneeId ? releaseReservation(conversation, assigneeId) : undefined,
        ...(greeting?.messages ?? []).map((m) => deleteMessage(m.conversationId, m.id)),
      ]);
    },
  };
}

export async function afterInbound(context: InboundHookContext): Promise<HookResult> {
  // Beside the hooks: a campaign the customer answers counts the reply (a write only for a conversation a campaign marked).
  const [result] = await Promise.all([inboundHooks(context), countCampaignReply(context.conversation, context.message)]);
  return result;
}

async function inboundHooks(context: InboundHookContext): Promise<HookResult> {
  // Recorded with the message, the conversation left resolved: nothing to route or answer.
  if (ratedBy(context)) return { conversation: context.conversation, messages: [] };
  if (csatAnswerIn(context)) {
    // A rating that reopened the conversation (written before ratings were recorded with their
    // message, and redelivered since) puts it back as it was, resolved and its agent's: routing
    // the reopening first could hand it to someone else when its agent has no room left.
    const result = await engageOnInbound(context);
    if (result.conversation.status !== 'open') return result;
    // Not taken as a rating after all (the ask changed meanwhile): routed as any customer message.
    return { ...result, conversation: await routeOnInbound({ ...context, conversation: result.conversation }) };
  }
  const conversation = await routeOnInbound(context);
  return engageOnInbound({ ...context, conversation });
}

/** After an agent (or bot) reply was delivered. */
export async function afterOutbound(conversation: ConversationRecord, message: Message): Promise<void> {
  await engageOnOutbound(conversation, message);
}

/** Just before a queued message is sent: why it must not go after all (a CSAT question the customer overtook), else undefined. */
export async function beforeSend(message: Message): Promise<string | undefined> {
  return withdrawnBeforeSending(message);
}

/** A reply's provider reported it failed after it was sent (or it was given up on): what it armed waits for the agent. */
export async function afterReplyFailed(message: Message): Promise<void> {
  await disarmFailedReply(message);
}

/** An agent's presence changed (online agents may take waiting conversations). */
export async function afterPresence(agentId: string, status: 'online' | 'away' | 'offline'): Promise<void> {
  await routeOnPresence(agentId, status);
}

/** A web visitor read up to a message (cancels the email fallback). */
export async function afterVisitorRead(conversation: ConversationRecord, messageId: string): Promise<void> {
  await engageOnVisitorRead(conversation, messageId);
}

/** An agent changed a conversation (status, assignee). True when routing may have reassigned it since. */
/** Who made a change, when a person did (an agent's id): routing keeps what they chose to take. */
export interface ChangeOptions {
  readonly by?: string;
}

export async function afterConversationChange(before: ConversationRecord, after: ConversationRecord, options: ChangeOptions = {}): Promise<boolean> {
  const [rerouted] = await Promise.all([routeOnConversationChange(before, after, options), engageOnConversationChange(before, after)]);
  return rerouted;
}
