/** Fan-out with the @connections API and DynamoDB mocked: a gone connection is forgotten, exactly that one. */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { ApiGatewayManagementApiClient, DeleteConnectionCommand, GoneException, LimitExceededException, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBDocumentClient, DeleteCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';

process.env.TABLE_NAME = 'conversa-test';
process.env.WS_CALLBACK_URL = 'https://example.execute-api.us-east-1.amazonaws.com/live';
process.env.AWS_REGION = 'us-east-1';
const ddbMock = mockClient(DynamoDBDocumentClient);
const wsMock = mockClient(ApiGatewayManagementApiClient);
const { agentConnectionsAhead, closeOldestVisitorConnections, MAX_VISITOR_CONNECTIONS, publish, scopeOf, REPEATS_ACTIVITY } = await import('../../src/domain/fanout');

const future = Math.floor(Date.now() / 1000) + 3600;
const old = new Date(Date.now() - 60_000).toISOString();
const connection = (id: string) => ({ connectionId: id, audience: { kind: 'agents' }, principalId: `agent-${id}`, role: 'agent', connectedAt: old, expiresAt: future });

beforeEach(() => {
  ddbMock.reset();
  wsMock.reset();
});

describe('publish', () => {
  it('delivers to every live connection and deletes only the one that answered 410', async () => {
    // Prepare
    ddbMock.on(QueryCommand).resolves({ Items: [connection('a'), connection('gone'), connection('c')] });
    ddbMock.on(DeleteCommand).resolves({});
    wsMock.on(PostToConnectionCommand).resolves({});
    wsMock.on(PostToConnectionCommand, { ConnectionId: 'gone' }).rejects(new GoneException({ message: 'gone', $metadata: {} }));

    // Act
    const reached = await publish([{ type: 'ping' }], { agents: true });

    // Assess
    expect(reached).toBe(2);
    const posted = wsMock.commandCalls(PostToConnectionCommand).map((c) => c.args[0].input.ConnectionId);
    expect(posted.sort()).toEqual(['a', 'c', 'gone']);
    const deletes = ddbMock.commandCalls(DeleteCommand).map((c) => c.args[0].input.Key);
    expect(deletes).toEqual([{ pk: 'WS#agents', sk: 'gone' }]);
    expect(ddbMock.commandCalls(QueryCommand)[0]!.args[0].input.KeyConditionExpression).toBe('pk = :pk');
  });

  it('skips expired connections that TTL has not removed yet, and the excluded sender', async () => {
    ddbMock.on(QueryCommand).resolves({ Items: [connection('a'), { ...connection('stale'), expiresAt: 1 }, connection('sender')] });
    wsMock.on(PostToConnectionCommand).resolves({});
    await publish([{ type: 'typing' }], { agents: true, except: 'sender' });
    expect(wsMock.commandCalls(PostToConnectionCommand).map((c) => c.args[0].input.ConnectionId)).toEqual(['a']);
  });

  it('uses the agents looked up ahead instead of querying again, and still asks for a visitor', async () => {
    // Prepare: the agents' lookup starts before the publish, then the table changes
    ddbMock.on(QueryCommand).resolvesOnce({ Items: [connection('early')] }).resolves({ Items: [{ ...connection('v1'), audience: { kind: 'visitor', visitorId: 'v' } }] });
    wsMock.on(PostToConnectionCommand).resolves({});
    const agentConnections = agentConnectionsAhead();

    // Act
    await publish([{ type: 'ping' }], { agents: true, visitorId: 'v', agentConnections });

    // Assess: one query for the agents (ahead), one for the visitor
    const queried = ddbMock.commandCalls(QueryCommand).map((c) => c.args[0].input.ExpressionAttributeValues?.[':pk']);
    expect(queried).toEqual(['WS#agents', 'WS#visitor#v']);
    expect(wsMock.commandCalls(PostToConnectionCommand).map((c) => c.args[0].input.ConnectionId).sort()).toEqual(['early', 'v1']);
  });

  it('surfaces a failed lookup ahead at the publish that uses it, and nowhere when none does', async () => {
    ddbMock.on(QueryCommand).rejects(new Error('throttled'));
    const unused = agentConnectionsAhead();
    const used = agentConnectionsAhead();
    await expect(publish([{ type: 'ping' }], { agents: true, agentConnections: used })).rejects.toThrow('throttled');
    // Dropping the unused one must raise no unhandled rejection: vitest fails the run on one.
    void unused;
    await new Promise((resolve) => setTimeout(resolve, 10));
  });
});

describe('publish to focused consoles: the agents who follow a conversation', () => {
  const as = (id: string, role: 'agent' | 'admin') => ({ ...connection(id), principalId: id, role, feed: 'focused' });
  const team = [as('ana', 'agent'), as('ben', 'agent'), as('cy', 'agent'), as('boss', 'admin')];
  const reached = () => wsMock.commandCalls(PostToConnectionCommand).map((c) => c.args[0].input.ConnectionId).sort();

  beforeEach(() => {
    ddbMock.on(QueryCommand).resolves({ Items: team });
    wsMock.on(PostToConnectionCommand).resolves({});
  });

  it('sends an assigned conversation’s events to its assignee and the admins only', async () => {
    await publish([{ type: 'message.created' }], { agents: scopeOf({ assigneeId: 'ben' }) });
    expect(reached()).toEqual(['ben', 'boss']);
  });

  it('sends an assigned conversation’s events to the agents who wrote in it as well (participants)', async () => {
    await publish([{ type: 'message.created' }], { agents: scopeOf({ assigneeId: 'ben', participants: new Set(['cy']) }) });
    expect(reached()).toEqual(['ben', 'boss', 'cy']);
  });

  it('sends to every agent while the assignee has no console connected', async () => {
    await publish([{ type: 'message.created' }], { agents: scopeOf({ assigneeId: 'dee' }) });
    expect(reached()).toEqual(['ana', 'ben', 'boss', 'cy']);
  });

  it('sends a waiting (unassigned) conversation’s events to every agent', async () => {
    await publish([{ type: 'message.created' }], { agents: scopeOf({ assigneeId: null }) });
    expect(reached()).toEqual(['ana', 'ben', 'boss', 'cy']);
  });

  it('tells the agent a conversation left, and everyone when it leaves the queue', async () => {
    await publish([{ type: 'conversation.updated' }], { agents: scopeOf({ assigneeId: 'cy' }, { assigneeId: 'ana' }) });
    expect(reached()).toEqual(['ana', 'boss', 'cy']);
    wsMock.resetHistory();
    await publish([{ type: 'conversation.updated' }], { agents: scopeOf({ assigneeId: 'cy' }, { assigneeId: null }) });
    expect(reached()).toEqual(['ana', 'ben', 'boss', 'cy']);
  });
});

describe('publish to full feeds (the contract default) and focused ones side by side', () => {
  it('gives a full feed every conversation and every repeat, a focused one neither', async () => {
    ddbMock.on(QueryCommand).resolves({
      Items: [
        { ...connection('full'), principalId: 'ana' },
        { ...connection('focused'), principalId: 'ben', feed: 'focused' },
        { ...connection('assignee'), principalId: 'cy', feed: 'focused' },
      ],
    });
    wsMock.on(PostToConnectionCommand).resolves({});
    const repeat = { type: 'conversation.updated', [REPEATS_ACTIVITY]: true as const };

    await publish([{ type: 'message.created' }, repeat], { agents: scopeOf({ assigneeId: 'cy' }) });

    const sent = wsMock.commandCalls(PostToConnectionCommand).map((c) => `${c.args[0].input.ConnectionId}:${JSON.parse(Buffer.from(c.args[0].input.Data as Uint8Array).toString()).type}`);
    expect(sent.sort()).toEqual(['assignee:message.created', 'full:conversation.updated', 'full:message.created']);
  });
});

describe('publish with a scope to look up', () => {
  it('looks the conversation up only when a focused console is connected', async () => {
    wsMock.on(PostToConnectionCommand).resolves({});
    let lookups = 0;
    const scope = async () => {
      lookups += 1;
      return scopeOf({ assigneeId: 'cy' });
    };
    ddbMock.on(QueryCommand).resolves({ Items: [{ ...connection('full'), principalId: 'ana' }] });
    await publish([{ type: 'message.updated' }], { agents: scope });
    expect(lookups).toBe(0);

    ddbMock.on(QueryCommand).resolves({
      Items: [
        { ...connection('full'), principalId: 'ana' },
        { ...connection('other'), principalId: 'ben', feed: 'focused' },
        { ...connection('assignee'), principalId: 'cy', feed: 'focused' },
      ],
    });
    wsMock.resetHistory();
    await publish([{ type: 'message.updated' }], { agents: scope });
    expect(lookups).toBe(1);
    expect(wsMock.commandCalls(PostToConnectionCommand).map((c) => c.args[0].input.ConnectionId).sort()).toEqual(['assignee', 'full']);
  });
});

describe('closeOldestVisitorConnections', () => {
  const tab = (i: number) => ({ connectionId: `tab-${i}`, audience: { kind: 'visitor', visitorId: 'v1' }, principalId: 'v1', role: 'visitor', connectedAt: new Date(Date.UTC(2030, 0, 1, 0, i)).toISOString(), expiresAt: future });

  it('closes the oldest beyond the cap and forgets those closed or gone, keeping the record of one it could not close', async () => {
    // Prepare: three tabs too many; closing the oldest is throttled, the second is gone already
    ddbMock.on(QueryCommand).resolves({ Items: Array.from({ length: MAX_VISITOR_CONNECTIONS + 3 }, (_, i) => tab(i)) });
    ddbMock.on(DeleteCommand).resolves({});
    wsMock.on(DeleteConnectionCommand).resolves({});
    wsMock.on(DeleteConnectionCommand, { ConnectionId: 'tab-0' }).rejects(new LimitExceededException({ message: 'slow down', $metadata: {} }));
    wsMock.on(DeleteConnectionCommand, { ConnectionId: 'tab-1' }).rejects(new GoneException({ message: 'gone', $metadata: {} }));

    // Act
    await closeOldestVisitorConnections('v1', `tab-${MAX_VISITOR_CONNECTIONS + 2}`);

    // Assess: tabs 0–2 asked to close; the records of 1 and 2 deleted, tab 0 (still open) kept
    expect(wsMock.commandCalls(DeleteConnectionCommand).map((c) => c.args[0].input.ConnectionId).sort()).toEqual(['tab-0', 'tab-1', 'tab-2']);
    expect(ddbMock.commandCalls(DeleteCommand).map((c) => c.args[0].input.Key!.sk).sort()).toEqual(['tab-1', 'tab-2']);
  });
});
