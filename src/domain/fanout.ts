/**
 * Pushes server events to WebSocket connections through the @connections API.
 * Connections are looked up by key; a connection that answers 410 Gone is deleted, exactly
 * that one, and delivery to everyone else carries on.
 */
import { DeleteConnectionCommand, GoneException, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { connectionsApi } from '../aws/clients';
import { config } from '../config';
import { deleteConnection, deleteGoneConnection, listConnections, type ConnectionRecord } from '../store/connections';
import type { ConnectionAudience } from '../store/keys';

/** Marks a conversation.updated that only repeats what its message.created carries. */
export const REPEATS_ACTIVITY: unique symbol = Symbol('repeatsActivity');

/** A frame's content; symbol-keyed marks stay out of the JSON. */
export type ServerEvent = { type: string; [REPEATS_ACTIVITY]?: true } & Record<string, unknown>;

/**
 * Agent consoles get every event of every conversation, as CONTRACT.md promises, unless they
 * connect with `?feed=focused`. A focused console follows, live, the conversations assigned to
 * its agent, and every one while it is unassigned (any agent may take it) or while its assignee
 * has no console connected (nobody else would see it move), and those its agent wrote in while
 * another had it (participants, as in Chatwoot); admins follow all. `assignees`
 * lists the assignee and, on a change, the one before: an agent it left, or everyone when it
 * leaves the queue, hears of the change once. A focused console also skips the
 * conversation.updated that only repeats a message's activity. Anything else it reads over HTTP.
 */
export interface ConversationScope {
  assignees: (string | null)[];
  participants?: readonly string[];
}

export function scopeOf(conversation: { assigneeId: string | null; participants?: Iterable<string> }, before?: { assigneeId: string | null }): ConversationScope {
  const assignees = before && before.assigneeId !== conversation.assigneeId ? [conversation.assigneeId, before.assigneeId] : [conversation.assigneeId];
  return conversation.participants ? { assignees, participants: [...conversation.participants] } : { assignees };
}

function follows(connection: ConnectionRecord, scope: ConversationScope, connected: Set<string>): boolean {
  if (connection.feed !== 'focused' || connection.role === 'admin') return true;
  const [assignee, ...former] = scope.assignees;
  if (!assignee || !connected.has(assignee)) return true;
  return connection.principalId === assignee || former.some((f) => !f || f === connection.principalId) || (scope.participants?.includes(connection.principalId) ?? false);
}

export interface Audience {
  /**
   * All agents (team-wide events such as presence), or those who follow one conversation: its
   * scope, or how to find it (only looked up when a focused console is connected).
   */
  agents: boolean | ConversationScope | (() => Promise<ConversationScope>);
  /** A web visitor's connections; never set for private notes. */
  visitorId?: string | null;
  /** Connection ids not to send to (e.g. the sender of a typing signal). */
  except?: string;
  /**
   * The console a change came from over HTTP, which has the message from the answer: it gets no
   * message.created (the other events still go). Only that principal's own connection is skipped,
   * so naming someone else's connection silences nobody.
   */
  sender?: { connectionId: string; principalId: string };
  /** The agents' connections, already being looked up (agentConnectionsAhead). */
  agentConnections?: Promise<ConnectionRecord[]>;
}

/**
 * Starts the agents' connection lookup for a publish that comes after other round trips, so
 * that it overlaps them instead of following them. The publish that gets it awaits it (and
 * surfaces its failure); a caller that ends up not publishing just drops it.
 */
export function agentConnectionsAhead(): Promise<ConnectionRecord[]> {
  const listed = listConnections({ kind: 'agents' });
  listed.catch(() => undefined);
  return listed;
}

/**
 * agentConnectionsAhead for a queue consumer's batch: a lookup in flight answers every record
 * that asks meanwhile (the batch's conversations reach it together: one Query, not one each).
 * What a record gets is at most one round trip older than its own lookup would be; an answered
 * lookup is never reused, and each batch makes its own.
 */
export function sharedConnectionLookups(): () => Promise<ConnectionRecord[]> {
  let inFlight: Promise<ConnectionRecord[]> | undefined;
  return () => {
    if (inFlight) return inFlight;
    const listed = agentConnectionsAhead();
    inFlight = listed;
    const answered = () => {
      if (inFlight === listed) inFlight = undefined;
    };
    listed.then(answered, answered);
    return listed;
  };
}

/** API Gateway refuses WebSocket frames over 128 KiB; this leaves room for its own framing. */
export const MAX_FRAME_OUT_BYTES = 120 * 1024;

/**
 * The frame for an event, within MAX_FRAME_OUT_BYTES: an oversized message (a long email reply)
 * goes with its text cut and `truncated: true`, and without the conversation; the full message is
 * in the history (GET .../messages). Refused by API Gateway, it would reach nobody.
 */
export function frameOf(event: ServerEvent): Buffer {
  const whole = Buffer.from(JSON.stringify(event));
  if (whole.length <= MAX_FRAME_OUT_BYTES) return whole;
  const message = (event as { message?: { text?: unknown } }).message;
  const { conversation: _conversation, ...rest } = event as ServerEvent & { conversation?: unknown };
  if (message && typeof message.text === 'string') {
    // JSON escaping can take up to 6 bytes a character: cut to what surely fits, then check.
    const text = message.text.slice(0, Math.max(0, Math.floor((MAX_FRAME_OUT_BYTES - 8 * 1024) / 6)));
    const slim = Buffer.from(JSON.stringify({ ...rest, message: { ...message, text, truncated: true } }));
    if (slim.length <= MAX_FRAME_OUT_BYTES) return slim;
  }
  const id = (message as { id?: unknown } | undefined)?.id;
  return Buffer.from(JSON.stringify({ type: event.type, conversationId: (event as { conversationId?: unknown }).conversationId, ...(id ? { message: { id, truncated: true } } : {}), truncated: true }));
}

/**
 * A visitor's connections at most (tabs, devices). One token holding thousands would have every
 * frame of its conversation sent thousands of times (billed, and slow for everyone).
 */
export const MAX_VISITOR_CONNECTIONS = 10;

/** Closes a visitor's oldest connections beyond MAX_VISITOR_CONNECTIONS, keeping `newest`. */
export async function closeOldestVisitorConnections(visitorId: string, newest: string): Promise<void> {
  const audience: ConnectionAudience = { kind: 'visitor', visitorId };
  const connections = await listConnections(audience, { consistent: true });
  if (connections.length <= MAX_VISITOR_CONNECTIONS) return;
  const oldest = connections
    .filter((c) => c.connectionId !== newest)
    .sort((a, b) => a.connectedAt.localeCompare(b.connectedAt))
    .slice(0, connections.length - MAX_VISITOR_CONNECTIONS);
  await Promise.all(
    oldest.map(async (c) => {
      try {
        await connectionsApi(config.wsCallbackUrl).send(new DeleteConnectionCommand({ ConnectionId: c.connectionId }));
      } catch (error) {
        // Not closed (throttled, say): its record stays, or the open tab would hear nothing more.
        // Gone already (a tab that vanished without a close) is as good as closed.
        if (!isGone(error)) return;
      }
      await deleteConnection(audience, c.connectionId);
    }),
  );
}

const isGone = (error: unknown) => error instanceof GoneException || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 410;

/** Sends to one connection; false when it is gone (and now forgotten). */
export async function sendToConnection(connection: Pick<ConnectionRecord, 'connectionId' | 'audience'>, event: ServerEvent): Promise<boolean> {
  try {
    await connectionsApi(config.wsCallbackUrl).send(new PostToConnectionCommand({ ConnectionId: connection.connectionId, Data: frameOf(event) }));
    return true;
  } catch (error) {
    if (isGone(error)) {
      await deleteGoneConnection(connection.audience, connection.connectionId);
      return false;
    }
    throw error;
  }
}

/** Sends every event to every connection of the audience; returns how many connections took them. */
export async function publish(events: ServerEvent[], audience: Audience): Promise<number> {
  if (events.length === 0) return 0;
  const groups: ConnectionAudience[] = [];
  if (audience.agents) groups.push({ kind: 'agents' });
  if (audience.visitorId) groups.push({ kind: 'visitor', visitorId: audience.visitorId });
  const listed = (await Promise.all(groups.map((g) => (g.kind === 'agents' && audience.agentConnections) || listConnections(g)))).flat();
  const { agents } = audience;
  const focused = listed.some((c) => c.feed === 'focused' && c.role !== 'admin');
  const scope = typeof agents === 'boolean' || !focused ? undefined : typeof agents === 'function' ? await agents() : agents;
  const connected = new Set(listed.filter((c) => c.audience.kind === 'agents').map((c) => c.principalId));
  const connections = listed.filter((c) => c.connectionId !== audience.except && (!scope || c.audience.kind !== 'agents' || follows(c, scope, connected)));
  return deliver(connections, events, (connection, event) => {
    if (connection.feed === 'focused' && event[REPEATS_ACTIVITY]) return true;
    const isSender = connection.connectionId === audience.sender?.connectionId && connection.principalId === audience.sender.principalId;
    return isSender && event.type === 'message.created';
  });
}

/** Each event to each connection (but those `skips`); returns how many connections took them. */
async function deliver(connections: ConnectionRecord[], events: ServerEvent[], skips?: (connection: ConnectionRecord, event: ServerEvent) => boolean): Promise<number> {
  const results = await Promise.allSettled(
    connections.map(async (connection) => {
      let failure: unknown;
      for (const event of events) {
        if (skips?.(connection, event)) continue;
        try {
          if (!(await sendToConnection(connection, event))) return false;
        } catch (error) {
          // One refused frame must not keep the events after it from this connection.
          failure ??= error;
        }
      }
      if (failure) throw failure;
      return true;
    }),
  );
  // One broken connection must not stop the others.
  for (const r of results) if (r.status === 'rejected') console.error('a frame did not reach its connection', r.reason);
  return results.filter((r) => r.status === 'fulfilled' && r.value).length;
}

/**
 * Sends events to every connection of the named agents, whatever their feed: news for those
 * people (a mention), not for whoever follows a conversation. Returns how many connections took them.
 */
export async function publishToAgents(agentIds: readonly string[], events: ServerEvent[], agentConnections?: Promise<ConnectionRecord[]>): Promise<number> {
  if (agentIds.length === 0 || events.length === 0) return 0;
  const wanted = new Set(agentIds);
  const connections = ((await agentConnections) ?? (await listConnections({ kind: 'agents' }))).filter((c) => wanted.has(c.principalId));
  return deliver(connections, events);
}
