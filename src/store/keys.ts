/**
 * The one place that builds table keys. Every item's pk/sk (and index keys) come from here;
 * README.md's access-pattern table documents each.
 */
import type { ConversationStatus } from '../domain/types';
import { phoneKey } from '../domain/phone-numbers';

export type Key = { pk: string; sk: string };

const ONE = (pk: string, sk: string): Key => ({ pk, sk });

/** Where unassigned conversations are listed in the assignee index: no agent may have this id. */
export const UNASSIGNED_ID = 'none';

/**
 * What an id in a key may look like (ULIDs, UUIDs, short names): anything else names nothing here.
 * `#` is the keys' separator, so an id with one could read as another item's key.
 */
export const ID_PATTERN = /^[A-Za-z0-9_.:@+-]{1,128}$/;

/** Whether `id` could be an agent's: an id by ID_PATTERN, and not the one the unassigned queue is filed under. */
export const isAgentId = (id: string): boolean => id !== UNASSIGNED_ID && ID_PATTERN.test(id);

export const keys = {
  conversation: (id: string) => ONE(`CONV#${id}`, 'CONV'),
  /** A conversation's closed report episode, frozen when the customer came back with a new issue. */
  conversationEpisode: (id: string, startedAt: string) => ONE(`CONV#${id}`, `EPISODE#${startedAt}`),
  /** Inbox index: by status, newest activity first. */
  conversationInbox: (status: ConversationStatus, lastMessageAt: string, id: string) => ({
    gsi1pk: `INBOX#${status}`,
    gsi1sk: `${lastMessageAt}#${id}`,
  }),
  inboxPartition: (status: ConversationStatus) => `INBOX#${status}`,
  /**
   * Assignee index: per agent (or `none`, the waiting queue) and status, in arrival order: `since`
   * is when it last joined the queue (createdAt, unless it went back there since).
   */
  conversationAssignee: (assigneeId: string | null, status: ConversationStatus, since: string, id: string) => ({
    gsi2pk: assigneePartition(assigneeId, status),
    gsi2sk: `${since}#${id}`,
  }),
  assigneePartition: (assigneeId: string | null, status: ConversationStatus) => assigneePartition(assigneeId, status),
  /** Reports index: conversations (and closed episodes) by the UTC day their episode started. */
  conversationCreated: (startedAt: string, id: string) => ({ gsi3pk: createdPartition(startedAt.slice(0, 10)), gsi3sk: `${startedAt}#${id}` }),
  /** The episode start a reports index key names. */
  startOfReportKey: (gsi3sk: string) => gsi3sk.slice(0, gsi3sk.lastIndexOf('#')),
  createdPartition: (day: string) => createdPartition(day),

  /**
   * An agent's latest mention in a conversation (src/domain/mentions.ts). In the conversation's
   * partition, so that an erasure deletes it with the messages; filed in gsi2 (keys only) under the
   * agent, newest mention last, for their Mentions view.
   */
  mention: (conversationId: string, agentId: string) => ONE(`CONV#${conversationId}`, `MENTION#${agentId}`),
  mentionIndex: (agentId: string, createdAt: string, messageId: string) => ({ gsi2pk: mentionsPartition(agentId), gsi2sk: `${createdAt}#${messageId}` }),
  mentionsPartition: (agentId: string) => mentionsPartition(agentId),
  message: (conversationId: string, messageId: string) => ONE(`CONV#${conversationId}`, `MSG#${messageId}`),
  messagePartition: (conversationId: string) => `CONV#${conversationId}`,
  messagePrefix: 'MSG#',

  /** Idempotency record: a provider message id, or a client's message id, seen once. */
  dedup: (scope: string) => ONE(`DEDUP#${scope}`, 'DEDUP'),
  /** A provider status that came before what names its provider id (its send's answer, or an echo): that one applies it. */
  earlyStatus: (scope: string, status: string) => ONE(`EARLY#${scope}`, `STATUS#${status}`),
  earlyStatusPartition: (scope: string) => `EARLY#${scope}`,

  contact: (id: string) => ONE(`CONTACT#${id}`, 'CONTACT'),
  contactPartition: (id: string) => `CONTACT#${id}`,
  /** Pointer from a contact to one of its conversations (the 360° history). */
  contactConversation: (contactId: string, conversationId: string) => ONE(`CONTACT#${contactId}`, `CONV#${conversationId}`),
  contactConversationPrefix: 'CONV#',
  /**
   * One of a contact's web visitors. Not in the contact item's handles list: visitors sharing
   * an email (identity verification off) are unbounded, and the item must stay small.
   */
  contactVisitor: (contactId: string, visitorId: string) => ONE(`CONTACT#${contactId}`, `VISITOR#${visitorId}`),
  contactVisitorPrefix: 'VISITOR#',
  /**
   * A contact merged into this one: an erasure of this one finds it here (the merged contact's
   * item keeps its details, and nothing else on this one need name it).
   */
  contactMerged: (survivorId: string, otherId: string) => ONE(`CONTACT#${survivorId}`, `MERGED#${otherId}`),
  contactMergedPrefix: 'MERGED#',
  /**
   * A customer's id on a channel → its contact and that channel's conversation.
   * Identity handles (`phone`, `email`) link channels to one contact.
   */
  handle: (channel: string, handle: string) => ONE(`HANDLE#${channel}#${(PHONE_HANDLES.has(channel) ? phoneKey(handle) : handle).toLowerCase()}`, 'HANDLE'),

  visitor: (id: string) => ONE(`VISITOR#${id}`, 'VISITOR'),
  /** A web visitor's item and its send windows: what an erasure removes with the visitor. */
  visitorPartition: (id: string) => `VISITOR#${id}`,
  /** A web visitor's messages in one window of time (the per-visitor send limit). */
  visitorSends: (id: string, windowStart: string) => ONE(`VISITOR#${id}`, `SENDS#${windowStart}`),
  /**
   * Upload tickets one uploader took in one UTC hour (YYYY-MM-DDTHH): the upload quota. A visitor's
   * in their partition, so that an erasure removes it with them.
   */
  uploadQuota: (kind: 'agent' | 'visitor', id: string, hour: string) =>
    kind === 'visitor' ? ONE(`VISITOR#${id}`, `UPLOADS#${hour}`) : ONE(`UPLOADS#agent#${id}`, `UPLOADS#${hour}`),
  /** Web visitors' messages from one network (an IPv4 address, an IPv6 /64: addressNetwork) in one window, however many sessions it opened. */
  addressSends: (address: string, windowStart: string) => ONE(`ADDRESS#${address}`, `SENDS#${windowStart}`),
  /** Emails from other senders kept as notes on one conversation in one window (src/domain/email.ts). */
  emailNotes: (conversationId: string, windowStart: string) => ONE(`EMAILNOTES#${conversationId}`, `SENDS#${windowStart}`),
  emailNotesPartition: (conversationId: string) => `EMAILNOTES#${conversationId}`,
  /**
   * A contact's erasure (src/domain/erasure.ts), by a hash of its id: what is left once the
   * customer is gone says that an erasure ran, never whose.
   */
  erasure: (contactIdHash: string) => ONE(`ERASURE#${contactIdHash}`, 'ERASURE'),
  /**
   * A customer message an erasure deleted, by a hash of `<channel>#<provider id>` (a WhatsApp id
   * carries the number): a provider's later copy of it is dropped, not stored anew.
   */
  erasedMessage: (scopeHash: string) => ONE(`ERASED#${scopeHash}`, 'ERASED'),

  /** WebSocket connections, grouped by who may receive: all agents, or one visitor. */
  connection: (audience: ConnectionAudience, connectionId: string) => ONE(audiencePartition(audience), connectionId),
  connectionPartition: (audience: ConnectionAudience) => audiencePartition(audience),

  agent: (id: string) => ONE('AGENTS', `AGENT#${id}`),
  agentsPartition: 'AGENTS',
  agentPrefix: 'AGENT#',

  settings: () => ONE('SETTINGS', 'SETTINGS'),
  /** Proactive recipients sent in one UTC hour (YYYY-MM-DDTHH): the admin rate limit. */
  proactiveQuota: (hour: string) => ONE('PROACTIVE', `QUOTA#${hour}`),
  /**
   * A proactive request (a campaign, src/domain/campaigns.ts): its text, state and, while scheduled,
   * its recipients; its outcome counters on an item of their own, small, so each ADD costs 1 WRU
   * whatever the text's length.
   */
  campaign: (batchId: string) => ONE(`CAMPAIGN#${batchId}`, 'CAMPAIGN'),
  campaignCounts: (batchId: string) => ONE(`CAMPAIGN#${batchId}`, 'COUNTS'),
  campaignPartition: (batchId: string) => `CAMPAIGN#${batchId}`,
  /** Held while contacts merge: merges run one at a time (two at once could each absorb the other). */
  mergeLock: () => ONE('MERGE', 'LOCK'),
  cannedResponse: (id: string) => ONE('CANNED', `CANNED#${id}`),
  cannedPartition: 'CANNED',
  cannedPrefix: 'CANNED#',
  /** A short code's claim (lower case): two admins saving the same code at once cannot both win. */
  cannedCode: (shortCode: string) => ONE('CANNED', `CODE#${shortCode.toLowerCase()}`),
  macro: (id: string) => ONE('MACROS', `MACRO#${id}`),
  macroPartition: 'MACROS',
  macroPrefix: 'MACRO#',
  /** A macro name's claim (lower case), as a canned short code's. */
  macroName: (name: string) => ONE('MACROS', `NAME#${name.toLowerCase()}`),
  /**
   * One run of a macro on a conversation (src/domain/macros.ts): how far it got, so that a retry
   * goes on from there. In the conversation's partition, so that an erasure deletes it with the messages.
   */
  macroRun: (conversationId: string, runKey: string) => ONE(`CONV#${conversationId}`, `MACRORUN#${runKey}`),
} as const;

export type ConnectionAudience = { kind: 'agents' } | { kind: 'visitor'; visitorId: string };

function audiencePartition(audience: ConnectionAudience): string {
  return audience.kind === 'agents' ? 'WS#agents' : `WS#visitor#${audience.visitorId}`;
}

function mentionsPartition(agentId: string): string {
  return `MENTIONS#${agentId}`;
}

function createdPartition(day: string): string {
  return `CREATED#${day}`;
}

function assigneePartition(assigneeId: string | null, status: ConversationStatus): string {
  return `ASSIGNEE#${assigneeId ?? UNASSIGNED_ID}#${status}`;
}

/**
 * Whether two of a contact's handles name one handle item: a number in either of its forms
 * (phoneKey), an address in any case. A contact lists each once.
 */
export function sameHandle(a: { channel: string; handle: string }, b: { channel: string; handle: string }): boolean {
  if (a.channel !== b.channel) return false;
  return a.handle === b.handle || (a.channel !== 'web' && keys.handle(a.channel, a.handle).pk === keys.handle(b.channel, b.handle).pk);
}

/** Channels whose handle is a phone number: WhatsApp's wa_id, an SMS sender, a contact's phone identity. */
export const PHONE_HANDLES: ReadonlySet<string> = new Set(['whatsapp', 'sms', 'phone']);
