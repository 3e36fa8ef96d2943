/**
 * WebSocket client actions (CONTRACT.md section 4). Every answer goes back through the
 * @connections API, so the same code serves API Gateway and the local stand-in.
 */
import { isIPv4, isIPv6 } from 'node:net';
import * as z from '../zod';
import { MAX_FRAME_BYTES } from '../manifest';
import { ClientError, forbidden, notFound } from './errors';
import { afterVisitorRead } from './automation';
import { resolveByVisitor } from './engagement';
import { agentConnected, agentConnectionClosed, changePresence } from './presence';
import { conversationEvent, visitorConversationEvent } from './events';
import { closeOldestVisitorConnections, publish, scopeOf, sendToConnection, type ServerEvent } from './fanout';
import { postAgentMessage } from './outbound';
import { MAX_MENTIONS } from './mentions';
import { readByAgent } from './assignment';
import { attachUploads, AttachmentRefs, keptFiles } from './media';
import type { Attachment } from './types';
import { enqueueInbound } from '../aws/queues';
import { getConversation, isErasing, updateConversation, type ConversationRecord } from '../store/conversations';
import { deleteConnection, putConnection } from '../store/connections';
import { getVisitor } from '../store/contacts';
import { getDedup, getMessage } from '../store/messages';
import { dedupScope } from './inbound';
import { giveSendBack, takeSend } from '../store/quota';
import { config } from '../config';
import { touchAgent } from '../store/agents';
import { keys, type ConnectionAudience, type Key } from '../store/keys';
import { wellFormedJson } from '../unicode';

export interface Principal {
  role: 'agent' | 'admin' | 'visitor';
  /** Agent id (the token's subject) or visitor id. */
  id: string;
  name?: string;
}

const audienceOf = (p: Principal): ConnectionAudience => (p.role === 'visitor' ? { kind: 'visitor', visitorId: p.id } : { kind: 'agents' });

export async function connect(principal: Principal, connectionId: string, options: { focused?: boolean } = {}): Promise<void> {
  await putConnection({
    connectionId,
    audience: audienceOf(principal),
    principalId: principal.id,
    role: principal.role,
    ...(principal.name ? { name: principal.name } : {}),
    ...(options.focused && principal.role !== 'visitor' ? { feed: 'focused' as const } : {}),
    connectedAt: new Date().toISOString(),
  });
  if (principal.role !== 'visitor') {
    await touchAgent(principal.id, { role: principal.role, ...(principal.name ? { name: principal.name } : {}) });
    await agentConnected(principal.id, connectionId);
  } else {
    await closeOldestVisitorConnections(principal.id, connectionId);
  }
}

export async function disconnect(principal: Principal, connectionId: string): Promise<void> {
  await deleteConnection(audienceOf(principal), connectionId);
  // Away only after a grace period (src/domain/presence.ts): a reload must not cost the queue.
  if (principal.role !== 'visitor') await agentConnectionClosed(principal.id);
}

const id = z.text(1, 128);
const Frame = z.discriminatedUnion('action', [
  // `private` as on the HTTP route: a console must not see its note go to the customer instead.
  z.object({
    action: z.literal('sendMessage'),
    conversationId: z.optional(id),
    text: z.messageText(4096),
    clientMessageId: id,
    private: z.optional(z.boolean()),
    attachments: z.optional(AttachmentRefs),
    // Agents a private note mentions (src/domain/mentions.ts), as on the HTTP route.
    mentions: z.optional(z.array(id).check(z.maxLength(2 * MAX_MENTIONS))),
  }),
  // `private`: an agent typing a note, which the customer must not see as someone typing to them.
  z.object({ action: z.literal('typing'), conversationId: z.optional(id), state: z.enum(['on', 'off']), private: z.optional(z.boolean()) }),
  z.object({ action: z.literal('markRead'), conversationId: z.optional(id), messageId: id }),
  z.object({ action: z.literal('setPresence'), status: z.enum(['online', 'away', 'offline']) }),
  z.object({ action: z.literal('ping') }),
  // The connection's own id, which a console replying over HTTP names to skip its echo
  // (POST .../messages `connectionId`).
  z.object({ action: z.literal('getConnection') }),
  // A visitor ending their own conversation (the widget's "End conversation"); agents resolve over HTTP.
  z.object({ action: z.literal('resolve'), conversationId: z.optional(id) }),
]);
type Frame = z.infer<typeof Frame>;
const ACTIONS = new Set(['sendMessage', 'typing', 'markRead', 'setPresence', 'ping', 'getConnection', 'resolve']);

/** Where a frame came from, as the gateway saw it. */
export interface FrameOrigin {
  sourceIp?: string;
}

/** Handles one frame; bad input gets an error frame and changes nothing. */
export async function handleFrame(principal: Principal, connectionId: string, raw: string, origin: FrameOrigin = {}): Promise<void> {
  const reply = (event: ServerEvent) => sendToConnection({ connectionId, audience: audienceOf(principal) }, event);
  let clientMessageId: string | undefined;
  try {
    const tooLarge = new ClientError(413, 'frame_too_large', `frames are limited to ${MAX_FRAME_BYTES} bytes`);
    // Read even when too large (API Gateway passes at most 128 KiB): the error names the message,
    // and a client sending one at a time knows which it was.
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      throw Buffer.byteLength(raw) > MAX_FRAME_BYTES ? tooLarge : new ClientError(400, 'invalid_json', 'frames must be JSON objects');
    }
    const action = (json as { action?: unknown } | null)?.action;
    // `null` is valid JSON: every property read here must survive it.
    const claimed = (json as { clientMessageId?: unknown } | null)?.clientMessageId;
    clientMessageId = typeof claimed === 'string' ? claimed : undefined;
    if (Buffer.byteLength(raw) > MAX_FRAME_BYTES) throw tooLarge;
    if (!wellFormedJson(raw, json)) throw new ClientError(400, 'invalid_json', 'strings must be well-formed Unicode (no lone surrogate)');
    if (typeof action !== 'string' || !ACTIONS.has(action)) {
      throw new ClientError(400, 'unknown_action', `action must be one of ${[...ACTIONS].join(', ')}`);
    }
    const parsed = Frame.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ClientError(400, 'invalid_frame', `${issue?.path.join('.') || 'frame'}: ${issue?.message ?? 'invalid'}`);
    }
    await dispatch(principal, connectionId, parsed.data, reply, origin);
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    await reply({ type: 'error', code: error.code, message: error.message, ...(clientMessageId ? { clientMessageId } : {}) });
  }
}

/**
 * Web visitors' messages per window: per visitor, more than a person types and fewer than a
 * script sends; per network address, what many people behind one address (an office, a carrier's
 * NAT) send, and what stops a script that opens session after session. The stage's throttling is
 * shared by every visitor; these keep one of them from using it all (and from filling an agent's
 * inbox). Agents are not limited.
 */
export const VISITOR_SEND_LIMIT = { messages: 20, windowMs: 10_000 };

/**
 * The network a per-address limit counts: an IPv4 address itself; for IPv6 its /64 prefix, which a
 * provider hands a single home or host whole, so a script could take a fresh address from it for
 * every session. An IPv4-mapped IPv6 address (::ffff:203.0.113.7, an IPv4 client as a dual-stack
 * socket shows it) is that IPv4 address. Anything else is kept as it came.
 */
export function addressNetwork(sourceIp: string): string {
  const address = sourceIp.replace(/%.*$/, ''); // a zone id (fe80::1%eth0) names no other network
  if (isIPv4(address) || !isIPv6(address)) return sourceIp;
  const groups = ipv6Groups(address);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail as two groups). */
function ipv6Groups(address: string): number[] {
  const groupsOf = (side: string) =>
    side === ''
      ? []
      : side.split(':').flatMap((piece) => {
          if (!piece.includes('.')) return [parseInt(piece, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = piece.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = address.split('::');
  const left = groupsOf(head);
  const right = tail === undefined ? [] : groupsOf(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/**
 * Counts the visitor's message in both windows, and answers the tallies it counted it in. A
 * message refused there that was stored already (a widget sending it again after a lost ack)
 * still goes on: the consumer answers its ack.
 */
async function limitVisitorSends(
  visitorId: string,
  sourceIp: string | undefined,
  sent: { clientMessageId: string; text: string; attachments: readonly Pick<Attachment, 'url' | 'name'>[] },
  now = Date.now(),
): Promise<Key[]> {
  const { messages, windowMs } = VISITOR_SEND_LIMIT;
  const windowStart = now - (now % windowMs);
  const window = new Date(windowStart).toISOString();
  const wait = Math.ceil((windowStart + windowMs - now) / 1000);
  const counted: Key[] = [];
  const take = async (key: Key, limit: number) => {
    const room = await takeSend(key, windowStart, windowMs, limit);
    if (room) counted.push(key);
    return room;
  };
  const refusal = !(await take(keys.visitorSends(visitorId, window), messages))
    ? `at most ${messages} messages every ${windowMs / 1000} s; send it again in ${wait} s`
    : sourceIp && !(await take(keys.addressSends(addressNetwork(sourceIp), window), config.visitorAddressSends))
      ? `too many messages from your network just now; send it again in ${wait} s`
      : undefined;
  if (!refusal) return counted;
  const scope = dedupScope({ channel: 'web', handle: visitorId, ...sent });
  if (scope && (await getDedup(scope))) return counted;
  throw new ClientError(429, 'rate_limited', refusal);
}

/** The conversation a frame is about: a visitor's own, or the one an agent names. */
async function conversationFor(principal: Principal, conversationId: string | undefined): Promise<ConversationRecord | undefined> {
  if (principal.role === 'visitor') {
    const visitor = await getVisitor(principal.id);
    if (conversationId && conversationId !== visitor?.conversationId) throw forbidden('visitors can only reach their own conversation');
    const own = visitor?.conversationId ? await getConversation(visitor.conversationId) : undefined;
    // Being erased: their signals reach nobody (the erasure closes their sockets).
    return own && !isErasing(own) ? own : undefined;
  }
  if (!conversationId) throw new ClientError(400, 'invalid_frame', 'conversationId: required for agents');
  const conversation = await getConversation(conversationId);
  // Being erased (its contact's erasure was asked for): gone to agents, as the HTTP reads answer.
  if (!conversation || isErasing(conversation)) throw notFound('conversation');
  return conversation;
}

/**
 * Who a typing or read signal is from, named as their messages' `sender` is: a visitor as the
 * contact; the name lets a widget say who is typing before any reply carries it.
 */
function signalSender(principal: Principal, conversation: ConversationRecord): { type: 'contact' | 'agent'; id: string; name?: string } {
  const [type, id, name] = principal.role === 'visitor' ? (['contact', conversation.contact.id, conversation.contact.name] as const) : (['agent', principal.id, principal.name] as const);
  return name ? { type, id, name } : { type, id };
}

/**
 * A web visitor's typing signals reach the agents at most once per TYPING_INTERVAL_MS each way,
 * and an agent's reach the visitor as often (per agent and conversation): a script or a broken
 * console sending hundreds a second would otherwise have every one fanned out. An `on` goes when
 * the last `on` sent is that old; an `off` goes at once after an `on` (the other side's sign must
 * stop), a repeated one when the last is that old. The rest are dropped quietly, as chat products
 * do. The widget and the console say `on` every 3 s while their person types and `off` 2 s after
 * they stop (or on sending), so their signals go, bar an `on` for the next message within 2 s of
 * the last. Kept in memory, with no DynamoDB write a frame (and a visitor's decided before any
 * read): each function instance holds its own, so a flood spread over N instances gets N signals
 * through per interval. An agent's signals still reach every colleague's console.
 */
export const TYPING_INTERVAL_MS = 2_000;

/** What passed last, per typist; a Map keeps insertion order, so the stalest entry is first. */
const typingSent = new Map<string, { state: 'on' | 'off'; at: number; onAt: number }>();

/**
 * Who a typing entry counts: a visitor (who has one conversation, so their id alone, known before
 * anything is read), or an agent in one conversation.
 */
const typist = (principal: Principal, conversationId?: string): string =>
  principal.role === 'visitor' ? principal.id : `agent#${principal.id}#${conversationId ?? ''}`;

/** Whether a typist's signal goes out now (and then it is counted as sent). */
export function typingPasses(typistKey: string, state: 'on' | 'off', now = Date.now()): boolean {
  const last = typingSent.get(typistKey);
  const passes = !last || (state === 'on' ? now - last.onAt >= TYPING_INTERVAL_MS : last.state === 'on' || now - last.at >= TYPING_INTERVAL_MS);
  if (!passes) return false;
  typingSent.delete(typistKey);
  typingSent.set(typistKey, { state, at: now, onAt: state === 'on' ? now : (last?.onAt ?? -Infinity) });
  // An entry older than the interval stops nothing: forgotten, so the map holds recent typers only.
  for (const [key, sent] of typingSent) {
    if (now - sent.at < TYPING_INTERVAL_MS) break;
    typingSent.delete(key);
  }
  return true;
}

async function dispatch(principal: Principal, connectionId: string, frame: Frame, reply: (e: ServerEvent) => Promise<boolean>, origin: FrameOrigin): Promise<void> {
  const isVisitor = principal.role === 'visitor';
  switch (frame.action) {
    case 'ping':
      await reply({ type: 'pong' });
      return;
    case 'getConnection':
      await reply({ type: 'connection', connectionId });
      return;
    case 'sendMessage': {
      if (!frame.text && !frame.attachments?.length) throw new ClientError(400, 'invalid_frame', 'text: required (or attachments)');
      if (isVisitor) {
        if (frame.private) throw forbidden('visitors cannot write private notes');
        if (frame.mentions) throw forbidden('visitors cannot mention agents');
        if (frame.conversationId) await conversationFor(principal, frame.conversationId);
        const uploader = { kind: 'visitor', id: principal.id } as const;
        const refs = frame.attachments ?? [];
        // Counted before the files are looked up, so that past the limit a frame costs no S3 request
        // (a script naming files ran up two HEADs a file)...
        const counted = await limitVisitorSends(principal.id, origin.sourceIp, { clientMessageId: frame.clientMessageId, text: frame.text, attachments: keptFiles(uploader, refs) });
        // ...and checked and kept here, so a bad upload id is an error frame, not a message stored
        // without its file; such a send is not counted (a widget whose upload failed is no flood).
        const attachments = await attachUploads(uploader, refs).catch(async (error: unknown) => {
          if (error instanceof ClientError) await Promise.all(counted.map(giveSendBack));
          throw error;
        });
        // Stored by the inbound consumer, which acknowledges once the message is durable.
        await enqueueInbound([
          {
            kind: 'message',
            channel: 'web',
            handle: principal.id,
            clientMessageId: frame.clientMessageId,
            text: frame.text,
            attachments,
            sentAt: new Date().toISOString(),
            replyToConnectionId: connectionId,
          },
        ]);
        return;
      }
      const conversation = await conversationFor(principal, frame.conversationId);
      const message = await postAgentMessage(conversation!.id, { id: principal.id, role: principal.role as 'agent' | 'admin', ...(principal.name ? { name: principal.name } : {}) }, {
        text: frame.text,
        clientMessageId: frame.clientMessageId,
        private: frame.private === true,
        ...(frame.attachments?.length ? { attachments: frame.attachments } : {}),
        ...(frame.mentions ? { mentions: frame.mentions } : {}),
      });
      await reply({ type: 'ack', clientMessageId: frame.clientMessageId, messageId: message.id, conversationId: message.conversationId });
      return;
    }
    case 'typing': {
      if (isVisitor && frame.private) throw forbidden('visitors cannot write private notes');
      // A visitor's flood is dropped before the frame's two reads (their visitor item and
      // conversation): a dropped frame is dropped quietly whatever it names, and one that then
      // reaches nobody (no conversation yet) still counts.
      if (isVisitor && !typingPasses(typist(principal), frame.state)) return;
      const conversation = await conversationFor(principal, frame.conversationId);
      if (!conversation) return;
      const isPrivate = frame.private === true;
      const event = { type: 'typing', conversationId: conversation.id, sender: signalSender(principal, conversation), state: frame.state, ...(isPrivate ? { private: true } : {}) };
      // A note's signals never reach the visitor, so they do not count toward what does.
      const toVisitor = !isVisitor && !isPrivate && conversation.visitorId && typingPasses(typist(principal, conversation.id), frame.state);
      await Promise.all([
        publish([event], { agents: scopeOf(conversation), except: connectionId }),
        toVisitor ? publish([event], { agents: false, visitorId: conversation.visitorId }) : undefined,
      ]);
      return;
    }
    case 'markRead': {
      const conversation = await conversationFor(principal, frame.conversationId);
      // A visitor with no conversation yet (or its erasure asked for) can see no message: refused as an unknown one.
      if (!conversation) throw notFound('message');
      // The id becomes the visitor's read watermark (what the email fallback skips) and the agents'
      // receipt: only a message of this conversation its reader can see may be one.
      const read = await getMessage(conversation.id, frame.messageId);
      if (!read || (isVisitor && read.private)) throw notFound('message');
      const event = { type: 'read', conversationId: conversation.id, messageId: frame.messageId, by: signalSender(principal, conversation) };
      // Read already (another tab, a reload, a script): a reply is `read` only once a read of the
      // visitor's covered it, after it moved their watermark, so this one would mark, cancel and
      // tell nothing new. Decided on the three reads made anyway; a stale one goes the whole way.
      if (isVisitor && read.status === 'read' && (conversation.engagement?.visitorReadUpTo ?? '') >= read.id) return;
      if (isVisitor) {
        await publish([event], { agents: scopeOf(conversation) });
        await afterVisitorRead(conversation, frame.messageId);
        return;
      }
      // updateConversation answers an unchanged record when there was nothing to reset: no frame then.
      const result = await updateConversation(conversation.id, readByAgent);
      if (!result) throw notFound('conversation');
      const reset = result.after !== result.before ? result.after : undefined;
      // A note's id is not the visitor's to know (it would tell them one was written, and when):
      // read up to a note written after the visitor's last message, that message is what they hear of.
      const last = conversation.lastInboundId;
      const seen = !read.private ? frame.messageId : last && last < read.id ? last : undefined;
      await Promise.all([
        publish([event, ...(reset ? [conversationEvent(reset)] : [])], { agents: scopeOf(conversation) }),
        conversation.visitorId && seen ? publish([{ ...event, messageId: seen }], { agents: false, visitorId: conversation.visitorId }) : undefined,
      ]);
      return;
    }
    case 'setPresence':
      if (isVisitor) throw forbidden('only agents have presence');
      await changePresence(principal.id, frame.status);
      return;
    case 'resolve': {
      if (!isVisitor) throw forbidden('agents resolve with POST /v1/conversations/{id}/resolve');
      const conversation = await conversationFor(principal, frame.conversationId);
      if (!conversation) throw notFound('conversation');
      // Answered by the change's conversation.updated frames, to the agents and every tab of the
      // visitor's. Resolved already (another tab ended it), nothing changes: this tab alone hears how it stands.
      const { conversation: after, changed } = await resolveByVisitor(conversation.id);
      if (!changed && !isErasing(after)) await reply(visitorConversationEvent(after));
      return;
    }
  }
}
