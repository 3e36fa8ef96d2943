/**
 * Pushes server events to WebSocket connections through the @connections API.
 * Connections are looked up by key; a connection that answers 410 Gone is deleted, exactly
 * that one, and delivery to everyone else carries on.
 */
import { GoneException, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { connectionsApi } from '../aws/clients';
import { config } from '../config';
import { deleteGoneConnection, listConnections, type ConnectionRecord } from '../store/connections';
import type { ConnectionAudience } from '../store/keys';

export type ServerEvent = { type: string } & Record<string, unknown>;

export interface Audience {
  /** All agents (the team inbox). */
  agents: boolean;
  /** A web visitor's connections; never set for private notes. */
  visitorId?: string | null;
  /** Connection ids not to send to (e.g. the sender of a typing signal). */
  except?: string;
}

/** Sends to one connection; false when it is gone (and now forgotten). */
export async function sendToConnection(connection: Pick<ConnectionRecord, 'connectionId' | 'audience'>, event: ServerEvent): Promise<boolean> {
  try {
    await connectionsApi(config.wsCallbackUrl).send(
      new PostToConnectionCommand({ ConnectionId: connection.connectionId, Data: Buffer.from(JSON.stringify(event)) }),
    );
    return true;
  } catch (error) {
    if (error instanceof GoneException || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 410) {
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
  const connections = (await Promise.all(groups.map((g) => listConnections(g)))).flat().filter((c) => c.connectionId !== audience.except);
  const results = await Promise.allSettled(
    connections.map(async (connection) => {
      for (const event of events) if (!(await sendToConnection(connection, event))) return false;
      return true;
    }),
  );
  // One broken connection must not stop the others; failures other than 410 are logged by callers' retries.
  return results.filter((r) => r.status === 'fulfilled' && r.value).length;
}
