/**
 * Erasure steps with AWS mocked: a step that erased a page queues the next one in the contact's
 * own lane under a new deduplication id (a redelivered step's copy is dropped by SQS, the next is
 * not), and deletes every version of a message's files and of its upload's first copy, and its
 * provider id's record; a step that finds nothing left records the end and queues nothing; a step about to reach the DLQ
 * untried goes back to its lane; a repeated request records nothing new and queues the first
 * step again.
 */
import { createHash } from 'node:crypto';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { DeleteScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { DeleteObjectCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { keys } from '../../src/store/keys';
import type { BatchEntry } from '../../src/aws/sqs-send';
import type { OutboundJob } from '../../src/domain/types';

vi.mock('../../src/domain/fanout', () => ({ publish: vi.fn(async () => 0), agentConnectionsAhead: () => Promise.resolve([]), scopeOf: () => true }));
/** The queue sender, faked: what would have been sent to SQS. */
const sendMessageBatch = vi.hoisted(() => vi.fn());
vi.mock('../../src/aws/sqs-send', async (original) => ({ ...(await original<typeof import('../../src/aws/sqs-send')>()), sendMessageBatch }));
const { requestErasure, runErasureStep } = await import('../../src/domain/erasure');
const { abandonOutbound } = await import('../../src/domain/outbound');

const scheduler = mockClient(SchedulerClient);
const s3 = mockClient(S3Client);
const ddb = mockClient(DynamoDBDocumentClient);

const CONTACT = '01JCONTACT0000000000000000';
const CONVERSATION = '01JCONVERSATION00000000000';
const ERASURE_KEY = keys.erasure(createHash('sha256').update(CONTACT).digest('hex'));
const step = (round?: number): OutboundJob => ({ kind: 'eraseContact', conversationId: CONTACT, messageId: `erase-${CONTACT}`, ...(round ? { round } : {}) });
const sent = () => (sendMessageBatch.mock.calls as [string, BatchEntry[]][]).flatMap(([, entries]) => entries);
const partition = (pk: string, items: Record<string, unknown>[]) => ddb.on(QueryCommand, { ExpressionAttributeValues: { ':pk': pk } }).resolves({ Items: items });

beforeEach(() => {
  vi.stubEnv('TABLE_NAME', 'conversa-unit');
  vi.stubEnv('OUTBOUND_QUEUE_URL', 'http://sqs.local/000000000000/conversa-outbound.fifo');
  vi.stubEnv('SCHEDULE_GROUP', 'conversa-unit');
  vi.stubEnv('MEDIA_BUCKET', 'conversa-unit-media');
  scheduler.reset();
  scheduler.on(DeleteScheduleCommand).resolves({});
  s3.reset();
  s3.on(DeleteObjectCommand).resolves({});
  // Each key's versions (an earlier one and the current), a delete marker, and another key its name begins.
  s3.on(ListObjectVersionsCommand).callsFake((input: { Prefix: string }) => ({
    IsTruncated: false,
    Versions: [
      { Key: input.Prefix, VersionId: `${input.Prefix}@2` },
      { Key: input.Prefix, VersionId: `${input.Prefix}@1` },
      { Key: `${input.Prefix}0`, VersionId: 'other' },
    ],
    DeleteMarkers: [{ Key: input.Prefix, VersionId: `${input.Prefix}@marker` }],
  }));
  ddb.reset();
  ddb.on(QueryCommand).resolves({ Items: [] });
  ddb.on(GetCommand).resolves({});
  sendMessageBatch.mockReset().mockResolvedValue({ Successful: [], Failed: [] });
});

describe('an erasure step', () => {
  it('erases a page of a conversation with its files and provider id records, then queues the next step in the contact lane', async () => {
    // Prepare: the contact (no handles left) lists one conversation, already resolved, unassigned and marked, with one message.
    partition(keys.contactPartition(CONTACT), [
      { ...keys.contact(CONTACT), id: CONTACT, handles: [] },
      { ...keys.contactConversation(CONTACT, CONVERSATION), conversationId: CONVERSATION },
    ]);
    const conversation = {
      ...keys.conversation(CONVERSATION),
      id: CONVERSATION,
      status: 'resolved',
      assigneeId: null,
      contact: { id: CONTACT },
      version: 3,
      erasureRequestedAt: '2026-11-27T00:00:00.000Z',
    };
    partition(keys.messagePartition(CONVERSATION), [
      conversation,
      {
        ...keys.message(CONVERSATION, '01JMSG'),
        id: '01JMSG',
        channel: 'sms',
        providerMessageId: 'SM1',
        sender: { type: 'contact', id: CONTACT },
        attachments: [{ type: 'image', url: 'conversa-media://media/visitor/v-1/up-1' }],
      },
    ]);
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });

    // Act
    const outcome = await runErasureStep(step(2));

    // Assess
    expect(outcome).toBe('continues');
    // Every version of both files, by id: none of the other key's, no plain delete that would leave a marker.
    const versionsDeleted = s3.commandCalls(DeleteObjectCommand).map((c) => `${c.args[0].input.Key} ${c.args[0].input.VersionId}`);
    expect(versionsDeleted.sort()).toEqual(
      ['media/visitor/v-1/up-1', 'uploads/visitor/v-1/up-1'].flatMap((key) => ['1', '2', 'marker'].map((v) => `${key} ${key}@${v}`)).sort(),
    );
    const deleted = ddb.commandCalls(DeleteCommand).map((c) => c.args[0].input.Key);
    expect(deleted).toContainEqual(keys.message(CONVERSATION, '01JMSG'));
    expect(deleted).toContainEqual(keys.dedup('sms#SM1'));
    // The conversation item stays until its last page is gone, and nothing was written to it.
    expect(deleted).not.toContainEqual(keys.conversation(CONVERSATION));
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    expect(sent()).toEqual([expect.objectContaining({ MessageGroupId: `eraseContact#${CONTACT}`, MessageDeduplicationId: `eraseContact#erase-${CONTACT}#3` })]);
    expect(ddb.commandCalls(UpdateCommand).filter((c) => c.args[0].input.Key?.pk === ERASURE_KEY.pk)).toHaveLength(0);
  });

  it('marks a conversation the request did not (a racing message started it) before it reads its page', async () => {
    // Prepare: open, Ana's, and unmarked.
    partition(keys.contactPartition(CONTACT), [
      { ...keys.contact(CONTACT), id: CONTACT, handles: [] },
      { ...keys.contactConversation(CONTACT, CONVERSATION), conversationId: CONVERSATION },
    ]);
    const conversation = {
      ...keys.conversation(CONVERSATION),
      id: CONVERSATION,
      channel: 'sms',
      status: 'resolved',
      assigneeId: 'ana',
      contact: { id: CONTACT },
      createdAt: '2026-11-27T00:00:00.000Z',
      lastMessageAt: '2026-11-27T00:00:00.000Z',
      version: 3,
    };
    partition(keys.messagePartition(CONVERSATION), [conversation, { ...keys.message(CONVERSATION, '01JMSG'), id: '01JMSG', channel: 'sms', attachments: [] }]);
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });
    ddb.on(PutCommand).resolves({});

    // Act
    await runErasureStep(step(1));

    // Assess: written marked, unassigned, before the page of its messages was read (a file copy landing after that read finds the mark).
    const calls = ddb.calls().map((call) => call.args[0].input as { Item?: Record<string, unknown>; ExpressionAttributeValues?: Record<string, unknown> });
    const marked = calls.findIndex((input) => input.Item?.pk === conversation.pk && input.Item.erasureRequestedAt !== undefined);
    const pageRead = calls.findIndex((input) => input.ExpressionAttributeValues?.[':pk'] === keys.messagePartition(CONVERSATION));
    expect(marked).toBeGreaterThanOrEqual(0);
    expect(calls[marked]!.Item).toMatchObject({ assigneeId: null, status: 'resolved' });
    expect(pageRead).toBeGreaterThan(marked);
  });

  it('records the end and queues nothing once the contact has nothing left', async () => {
    const outcome = await runErasureStep(step(7));

    expect(outcome).toBe('erased');
    const [update] = ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    expect(update).toMatchObject({ Key: ERASURE_KEY, ExpressionAttributeValues: expect.objectContaining({ ':erased': 'erased' }) });
    expect(sent()).toEqual([]);
  });

  it("continues a chain started again under that chain's own id", async () => {
    const restarted = { ...step(), messageId: `erase-${CONTACT}-01JAGAIN` };
    partition(keys.contactPartition(CONTACT), [{ ...keys.contact(CONTACT), id: CONTACT, handles: [] }, { ...keys.contactVisitor(CONTACT, 'v-2'), visitorId: 'v-2' }]);

    expect(await runErasureStep(restarted)).toBe('continues');

    expect(sent()).toEqual([expect.objectContaining({ MessageGroupId: `eraseContact#${CONTACT}`, MessageDeduplicationId: `eraseContact#erase-${CONTACT}-01JAGAIN#1` })]);
    expect(ddb.commandCalls(DeleteCommand).map((c) => c.args[0].input.Key)).toContainEqual(keys.contactVisitor(CONTACT, 'v-2'));
  });

  it("deletes every file of a visitor it erases, also a copy no message names (a send that failed after its file was kept)", async () => {
    // Prepare: the contact's one web visitor, with no conversation
    partition(keys.contactPartition(CONTACT), [{ ...keys.contact(CONTACT), id: CONTACT, handles: [] }, { ...keys.contactVisitor(CONTACT, 'v-3'), visitorId: 'v-3' }]);
    ddb.on(GetCommand, { Key: keys.visitor('v-3') }).resolves({ Item: { ...keys.visitor('v-3'), id: 'v-3', contactId: CONTACT } });

    // Act
    await runErasureStep(step(1));

    // Assess: every version under the visitor's kept and upload folders, whatever key it has there
    const versionsDeleted = s3.commandCalls(DeleteObjectCommand).map((c) => `${c.args[0].input.Key} ${c.args[0].input.VersionId}`);
    for (const folder of ['media/visitor/v-3/', 'uploads/visitor/v-3/']) {
      expect(versionsDeleted).toEqual(expect.arrayContaining([`${folder}0 other`, `${folder} ${folder}@1`, `${folder} ${folder}@marker`]));
    }
  });

  it('goes back to its lane under a new deduplication id when it would reach the DLQ untried', async () => {
    expect(await abandonOutbound(step(4), 'skipped')).toBe(true);

    const [entry] = sent();
    expect(entry).toMatchObject({ MessageGroupId: `eraseContact#${CONTACT}` });
    expect(entry!.MessageDeduplicationId).not.toBe(`eraseContact#erase-${CONTACT}#4`);
  });
});

describe('a repeated erasure request', () => {
  it('records nothing new and queues the first step again, as a job SQS does not drop as a copy', async () => {
    ddb.on(GetCommand, { Key: ERASURE_KEY }).resolves({ Item: { ...ERASURE_KEY, status: 'erased', requestedAt: '2026-11-27T00:00:00.000Z', requestedBy: 'admin-1' } });

    expect(await requestErasure(CONTACT, { id: 'admin-2' })).toEqual({ contactId: CONTACT, status: 'erasing' });

    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    const [entry] = sent();
    expect(entry).toMatchObject({ MessageGroupId: `eraseContact#${CONTACT}` });
    expect(entry!.MessageDeduplicationId).toMatch(new RegExp(`^eraseContact#erase-${CONTACT}-`));
  });
});
