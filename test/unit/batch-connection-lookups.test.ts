/**
 * The inbound consumer's records share the agents' connection lookup while one is in flight: a
 * batch of conversations reaching it together costs one Query, not one each. Nothing is reused
 * once it answered, and two batches (two invocations, one process as in the local stack) share
 * nothing. DynamoDB is mocked; each Query answers on a later turn of the event loop, as a round
 * trip does.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent, SQSRecord } from 'aws-lambda';

process.env.TABLE_NAME = 'conversa-test';
process.env.AWS_REGION = 'us-east-1';

const ingestMessage = vi.hoisted(() => vi.fn());
vi.mock('../../src/domain/inbound', async (original) => ({ ...(await original<typeof import('../../src/domain/inbound')>()), ingestMessage }));
const ddbMock = mockClient(DynamoDBDocumentClient);
const { sharedConnectionLookups } = await import('../../src/domain/fanout');
const { handler } = await import('../../functions/inbound/handler');

const future = Math.floor(Date.now() / 1000) + 3600;
const agent = { connectionId: 'a', audience: { kind: 'agents' }, principalId: 'agent-1', role: 'agent', connectedAt: new Date().toISOString(), expiresAt: future };
const queries = () => ddbMock.commandCalls(QueryCommand).length;
const tick = () => new Promise((resolve) => setImmediate(resolve));

function record(group: string, seq: number): SQSRecord {
  return {
    messageId: `${group}-${seq}`,
    receiptHandle: `rh-${group}-${seq}`,
    body: JSON.stringify({ kind: 'message', channel: 'whatsapp', handle: group, providerMessageId: `wamid.${group}.${seq}`, text: 'hi', attachments: [], sentAt: new Date().toISOString() }),
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'x', ApproximateFirstReceiveTimestamp: '0', MessageGroupId: group, SequenceNumber: String(seq) },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:conversa-inbound.fifo',
    awsRegion: 'us-east-1',
  } as SQSRecord;
}

beforeEach(() => {
  ddbMock.reset();
  ddbMock.on(QueryCommand).callsFake(async () => {
    await tick();
    return { Items: [agent] };
  });
  // Each record looks its agents up after a read of its own, as ingestMessage does.
  ingestMessage.mockReset();
  ingestMessage.mockImplementation(async (_event: unknown, delivery: { agentConnections?: () => Promise<unknown> }) => {
    await Promise.resolve();
    expect(await delivery.agentConnections?.()).toEqual([agent]);
  });
});

describe('the inbound consumer', () => {
  it("looks the agents' connections up once for a batch of conversations that reach it together", async () => {
    // Act
    const answer = await handler({ Records: [record('15550000001', 1), record('15550000002', 2), record('15550000003', 3)] } as SQSEvent);

    // Assess
    expect(answer.batchItemFailures).toEqual([]);
    expect(ingestMessage).toHaveBeenCalledTimes(3);
    expect(queries()).toBe(1);
  });

  it('looks them up again for a record that comes after the lookup answered (the next of a conversation)', async () => {
    // Act
    await handler({ Records: [record('15550000001', 1), record('15550000001', 2)] } as SQSEvent);

    // Assess
    expect(queries()).toBe(2);
  });
});

describe('sharedConnectionLookups', () => {
  it('shares nothing between two batches running at once', async () => {
    // Prepare
    const [one, two] = [sharedConnectionLookups(), sharedConnectionLookups()];

    // Act
    const both = await Promise.all([one(), two()]);

    // Assess
    expect(both).toEqual([[agent], [agent]]);
    expect(queries()).toBe(2);
  });

  it('hands a failed lookup to the records that shared it, and the next record queries again', async () => {
    // Prepare
    ddbMock.on(QueryCommand).rejectsOnce(new Error('throttled')).resolves({ Items: [agent] });
    const lookUp = sharedConnectionLookups();

    // Act
    const shared = await Promise.allSettled([lookUp(), lookUp()]);
    const later = await lookUp();

    // Assess
    expect(shared.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(later).toEqual([agent]);
    expect(queries()).toBe(2);
  });
});
