/** Public shapes (CONTRACT.md section 5) and the events that travel through the queues. */

export const CHANNELS = ['web', 'whatsapp', 'messenger', 'instagram', 'telegram', 'sms', 'email'] as const;
export type Channel = (typeof CHANNELS)[number];
export const PROVIDER_CHANNELS = ['whatsapp', 'messenger', 'instagram', 'telegram', 'sms'] as const;
export type ProviderChannel = (typeof PROVIDER_CHANNELS)[number];

export function isChannel(value: string): value is Channel {
  return (CHANNELS as readonly string[]).includes(value);
}

export function isProviderChannel(value: string): value is ProviderChannel {
  return (PROVIDER_CHANNELS as readonly string[]).includes(value);
}

export type MessageStatus = 'received' | 'queued' | 'sent' | 'delivered' | 'read' | 'failed';
export type SenderType = 'contact' | 'agent' | 'bot' | 'system';

/** The attachment URL of a file in our media bucket; it opens through the attachment routes. */
export const MEDIA_SCHEME = 'conversa-media://';

/** The sender id of messages the team sent from outside Conversa (Meta's Page inbox): no agent of ours. */
export const EXTERNAL_SENDER_ID = 'external';

/**
 * The sender of notes Conversa writes for the team about something that came in but is not the
 * customer's message (an email reply from another address): neither the customer, an agent nor
 * the bot, which speaks to the customer, wrote it.
 */
export const SYSTEM_SENDER = { type: 'system', id: 'conversa', name: 'Conversa' } as const;

export interface Attachment {
  type: string;
  url: string;
  mimeType?: string;
  name?: string;
  size?: number;
}

export interface Message {
  id: string;
  conversationId: string;
  direction: 'inbound' | 'outbound';
  sender: { type: SenderType; id: string; name?: string };
  channel: Channel;
  text: string;
  attachments: Attachment[];
  status: MessageStatus;
  private: boolean;
  providerMessageId?: string;
  /** Why a send failed, shown to the agent. */
  error?: string;
  /** WhatsApp template used for a send outside the customer-service window. */
  template?: { name: string; language?: string; params?: string[] };
  /** Sent without the customer asking (a proactive message): no reply, so no first reply and no follow-up. */
  unprompted?: true;
  /** The campaign (proactive batch) a proactive message belongs to: its status changes count there. Stored, never shown. */
  campaignId?: string;
  /** The agents a private note mentions (src/domain/mentions.ts); the team's, never a visitor's. */
  mentions?: string[];
  /** The earlier message a customer's message quotes (InboundMessageEvent.replyTo); the team's, never a visitor's. */
  replyTo?: ReplyTo;
  /**
   * The provider's ids of a reply's other parts (a text sent in several messages), read from what
   * the send recorded: a customer may quote any of them. The team's, never a visitor's.
   */
  otherProviderMessageIds?: string[];
  createdAt: string;
}

/**
 * The message a customer's message answers, as the provider names it (a swipe-reply, a quote):
 * its id in the form our messages' `providerMessageId` take, and a short excerpt of its words where
 * the provider hands them over (Telegram). Consoles find the quoted message by that id.
 */
export interface ReplyTo {
  providerMessageId: string;
  text?: string;
}

/** How far an earlier attempt got with a reply that goes out in parts (kept on the message, never shown). */
export interface SendProgress {
  /** Parts the provider accepted, in order: a retry starts after them. */
  partsSent: number;
  /** The provider's id of the primary part, when it is among them. */
  primaryId?: string;
  /** The provider's ids of the other parts among them. */
  otherIds?: string[];
  /** How many parts the send has: kept while it is under way (the `sent` write's progress has none). */
  partsTotal?: number;
}

export type ConversationStatus = 'open' | 'pending' | 'snoozed' | 'resolved';

/**
 * The provider's customer-service window, computed when the conversation is read:
 * `open` free replies; `tag_required` replies go out tagged (Messenger HUMAN_AGENT);
 * `template_required` only approved templates (WhatsApp); `closed` nothing can be sent.
 * `closesAt` is when the current state ends, for channels that have a window.
 */
export interface ConversationWindow {
  state: 'open' | 'tag_required' | 'template_required' | 'closed';
  closesAt?: string;
}

export interface Conversation {
  id: string;
  channel: Channel;
  status: ConversationStatus;
  contact: { id: string; name?: string; email?: string; phone?: string };
  assigneeId: string | null;
  team?: string | null;
  unreadCount: number;
  createdAt: string;
  updatedAt: string;
  lastMessageAt: string;
  /** Last message from the customer: opens the providers' 24-hour service window. */
  lastInboundAt?: string;
  firstReplyAt?: string;
  resolvedAt?: string;
  snoozedUntil?: string;
  /** The newest rating; `at` (when it was given) tells which report episode it belongs to. */
  csat?: { score: number; comment?: string; at?: string };
  window?: ConversationWindow;
  /** Agents besides the assignee who wrote in it (a reply or a note): their focused consoles follow it. */
  participants?: string[];
  /** Labels agents put on it (defined in the settings), sorted; `[]` when none. */
  labels?: string[];
  /**
   * SMS: the customer texted STOP (Twilio's Advanced Opt-Out), at `at`: Twilio refuses every send to
   * the number until they text START, so replies are refused before they are stored (422 `opted_out`).
   */
  optedOut?: { at: string };
}

export interface Contact {
  id: string;
  name?: string;
  email?: string;
  phone?: string;
  handles: { channel: Channel; handle: string }[];
  conversations: Conversation[];
}

/**
 * What a channel adapter (or the web widget) hands to the inbound queue.
 * `handle` is the customer's id on that channel (phone, PSID, IGSID, chat id, visitor id):
 * together with `channel` it names the conversation, so it is also the FIFO group.
 */
export type InboundEvent = InboundMessageEvent | InboundStatusEvent | InboundMovedEvent;

export interface InboundMessageEvent {
  kind: 'message';
  channel: Channel;
  handle: string;
  /**
   * Another handle the same message names the customer by on this channel (WhatsApp: their
   * business-scoped user id beside their number): both lead to one conversation (src/domain/inbound.ts).
   */
  otherHandle?: string;
  /** What the provider tells us about the customer. */
  profile?: { name?: string; phone?: string; email?: string };
  /** The provider's message id: the key that makes redeliveries idempotent. */
  providerMessageId?: string;
  /** The web widget's client-side id (idempotency for visitor sends). */
  clientMessageId?: string;
  /** The earlier message this one quotes (Message.replyTo). */
  replyTo?: ReplyTo;
  /** The provider's own opt-out handling took it as an opt-out (STOP) or opt-in (START): Conversation.optedOut follows. */
  optOut?: 'stop' | 'start';
  text: string;
  attachments: Attachment[];
  /** ISO time the provider says the message was sent, else when we received it. */
  sentAt: string;
  /** sentAt is the provider's own time: a redelivery of the message carries it unchanged. */
  dated?: boolean;
  /** When the webhook queued the event (provider events only). */
  receivedAt?: string;
  /** Web only: the connection to acknowledge once stored. */
  replyToConnectionId?: string;
  /** Web only: the conversation the visitor's session already points at. */
  conversationId?: string;
  /**
   * An edit (Meta's message_edit): the provider id of the message it edits. Stored only when that
   * is the customer's own message of this conversation, never for an edit of one of ours.
   */
  edits?: string;
  /**
   * An echo (Meta): a message the business sent the customer from outside Conversa (the Page
   * inbox, the WhatsApp Business app), shown under this name: stored as the team's outbound
   * message, not the customer's.
   */
  echo?: { name: string };
}

export interface InboundStatusEvent {
  kind: 'status';
  channel: Channel;
  handle: string;
  providerMessageId: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  error?: string;
  at: string;
  /** The reference our send gave the provider (OutboundSend.reference), when the provider returns it. */
  reference?: string;
  /** The receipt names the newest message it covers: every earlier one we sent has that status too (Instagram's seen). */
  coversEarlier?: true;
}

/**
 * The customer's id on the channel changed (a Telegram group upgraded to a supergroup gets a new
 * chat id; a WhatsApp customer changed their number): their conversation goes on under `handle`,
 * the new one (src/domain/inbound.ts ingestMove). No message: it stores none. Queued in the new
 * handle's lane, so it runs in turn with the messages written there.
 */
export interface InboundMovedEvent {
  kind: 'moved';
  channel: Channel;
  /** The new handle. */
  handle: string;
  /** The handle the customer had until now. */
  from: string;
  /** What the provider says of the new handle: a customer's new number, which their contact's phone follows. */
  profile?: { phone?: string };
  /** No provider message: absent, so that code reading it on any inbound event still compiles. */
  providerMessageId?: never;
}

/** Outbound queue body: the message is already stored; the consumer delivers it. */
export interface OutboundJob {
  conversationId: string;
  messageId: string;
  /**
   * `keepMedia`: copy a customer's files from the provider into our bucket (src/domain/provider-media.ts).
   * `eraseContact`: one step of erasing a customer, `conversationId` naming the contact (src/domain/erasure.ts).
   */
  kind?: 'keepMedia' | 'eraseContact';
  /**
   * A copy's round of queue attempts after the first, put back on the queue by a timer
   * (src/domain/media-jobs.ts), or an erasure's step: a job of its own to SQS's deduplication,
   * not the first one again.
   */
  round?: number;
}
