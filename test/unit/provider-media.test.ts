/**
 * Copying a customer's files from the provider, with AWS mocked: which messages get a copy job
 * (none for links the customer shared); a copy whose queue attempts ran out in an outage arms a
 * later round (a one-time schedule), backing off round by round until the last; a file the
 * provider no longer has arms none; and a round that fires goes back on the outbound queue as a
 * job SQS does not take for the first one again.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CreateScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { DeleteObjectCommand, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { clearCredentialCache } from '../../src/channels/credentials';
import { keys } from '../../src/store/keys';
import type { BatchEntry } from '../../src/aws/sqs-send';
import type { Message, OutboundJob } from '../../src/domain/types';

vi.mock('../../src/domain/fanout', () => ({ publish: vi.fn(async () => 0), agentConnectionsAhead: () => Promise.resolve([]), scopeOf: () => true }));
/** The queue sender, faked: what would have been sent to SQS. */
const sendMessageBatch = vi.hoisted(() => vi.fn());
vi.mock('../../src/aws/sqs-send', async (original) => ({ ...(await original<typeof import('../../src/aws/sqs-send')>()), sendMessageBatch }));
const { keepProviderMedia } = await import('../../src/domain/provider-media');
const { COPY_RETRY_HOURS, keepMediaJob } = await import('../../src/domain/media-jobs');
const { abandonOutbound } = await import('../../src/domain/outbound');
const { runTimer } = await import('../../src/domain/engagement');
const { publish } = await import('../../src/domain/fanout');

const scheduler = mockClient(SchedulerClient);
const s3 = mockClient(S3Client);
const ddb = mockClient(DynamoDBDocumentClient);

const CONVERSATION = '01JD5Q8Z7V4R0M3X6N2B9C1K8T';
const MESSAGE = '01JD5Q8Z7V4R0M3X6N2B9C1K9V';
const API = 'https://graph.whatsapp.test';
const HOUR_MS = 3_600_000;
const NOW = new Date('2026-05-01T10:00:00.000Z');

const photo: Message = {
  id: MESSAGE,
  conversationId: CONVERSATION,
  direction: 'inbound',
  sender: { type: 'contact', id: 'contact-1' },
  channel: 'whatsapp',
  text: '',
  attachments: [{ type: 'image', url: 'whatsapp-media://MEDIA1', mimeType: 'image/jpeg' }],
  status: 'received',
  private: false,
  createdAt: NOW.toISOString(),
};

const conversation = { ...keys.conversation(CONVERSATION), id: CONVERSATION, channel: 'whatsapp', status: 'open', assigneeId: null, contact: { id: 'contact-1' }, version: 4 };
/** As the erasure request leaves it. */
const beingErased = { ...conversation, erasureRequestedAt: NOW.toISOString(), version: 5 };
const COPY_KEY = `media/provider/${CONVERSATION}/${MESSAGE}/0`;

const job = (round?: number): OutboundJob => ({ conversationId: CONVERSATION, messageId: MESSAGE, kind: 'keepMedia', ...(round ? { round } : {}) });

/** WhatsApp answers the media id's lookup with `status` (and the file with 200 when it is up). */
function provider(status: number): void {
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string) => {
      if (status !== 200) return new Response('{}', { status });
      if (url === `${API}/MEDIA1`) return Response.json({ url: `${API}/files/MEDIA1`, mime_type: 'image/jpeg', file_size: 4 });
      return new Response(Buffer.from([0xff, 0xd8, 0xff, 0xe0]), { status: 200, headers: { 'content-type': 'image/jpeg' } });
    }),
  );
}

const armed = () => scheduler.commandCalls(CreateScheduleCommand).map((c) => c.args[0].input);

beforeEach(() => {
  vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
  for (const [k, v] of Object.entries({
    TABLE_NAME: 'conversa-unit',
    MEDIA_BUCKET: 'conversa-media',
    OUTBOUND_QUEUE_URL: 'http://sqs.local/000000000000/conversa-outbound.fifo',
    WHATSAPP_API_BASE_URL: API,
    SCHEDULE_GROUP: 'conversa-timers',
    SCHEDULER_ROLE_ARN: 'arn:aws:iam::123456789012:role/conversa-scheduler',
    ENGAGEMENT_FUNCTION_ARN: 'arn:aws:lambda:eu-west-1:123456789012:function:conversa-engagement',
    SCHEDULER_DLQ_ARN: 'arn:aws:sqs:eu-west-1:123456789012:conversa-scheduler-dlq',
  })) {
    vi.stubEnv(k, v);
  }
  scheduler.reset();
  scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
  s3.reset();
  s3.on(PutObjectCommand).resolves({});
  ddb.reset();
  ddb.on(GetCommand).resolves({});
  ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });
  ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({ Item: { ...keys.message(CONVERSATION, MESSAGE), ...photo } });
  ddb.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: Record<string, unknown> }) => ({
    Attributes: { ...keys.message(CONVERSATION, MESSAGE), ...photo, attachments: [input.ExpressionAttributeValues[':to']] },
  }));
  sendMessageBatch.mockReset().mockResolvedValue({ Successful: [], Failed: [] });
  vi.mocked(publish).mockClear();
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
  vi.unstubAllGlobals();
});

const deadline = () => Date.now() + 10_000;

describe('a copy job', () => {
  const cdnPhoto = { type: 'image', url: 'https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?oh=00_AbC' };
  const sharedPage = { type: 'file', url: 'https://example.com/menu.pdf', name: 'share' };
  const messenger = (attachments: Message['attachments']): Message => ({ ...photo, channel: 'messenger', attachments });

  it('is queued for a customer\'s Messenger file on Meta\'s CDN, and a WhatsApp media id', () => {
    expect(keepMediaJob(messenger([sharedPage, cdnPhoto]))).toEqual(job());
    expect(keepMediaJob({ ...photo, channel: 'instagram', attachments: [{ ...cdnPhoto, url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1' }] })).toEqual(job());
    expect(keepMediaJob(photo)).toEqual(job());
  });

  it('is queued for the files of the team’s message from Meta’s own inbox (an echo): its CDN links expire as the customer’s do', () => {
    const echo: Message = { ...messenger([cdnPhoto]), direction: 'outbound', sender: { type: 'agent', id: 'external', name: 'Page inbox' }, status: 'sent' };
    expect(keepMediaJob(echo)).toEqual(job());
    // An agent's own reply holds our copies only: nothing to fetch.
    expect(keepMediaJob({ ...echo, sender: { type: 'agent', id: 'agent-1' }, attachments: [{ type: 'image', url: 'conversa-media://media/agent/agent-1/U1' }] })).toBeUndefined();
  });

  it('is not queued for a message whose files are only links the customer shared', () => {
    expect(keepMediaJob(messenger([sharedPage]))).toBeUndefined();
    expect(keepMediaJob(messenger([sharedPage, { type: 'image', url: 'http://scontent.xx.fbcdn.net/photo.jpg' }]))).toBeUndefined();
    expect(keepMediaJob({ ...messenger([sharedPage]), channel: 'instagram' })).toBeUndefined();
  });
});

describe('a copy in a provider outage', () => {
  it('leaves the retry to the queue before its last attempt', async () => {
    provider(503);
    await expect(keepProviderMedia(job(), false, deadline())).rejects.toThrow(/copying whatsapp-media:\/\/MEDIA1/);
    expect(armed()).toEqual([]);
  });

  it('arms its next round an hour later, named after the message, when the queue\'s attempts ran out', async () => {
    provider(503);

    await keepProviderMedia(job(), true, deadline());

    const [input, ...more] = armed();
    expect(more).toEqual([]);
    expect(input).toMatchObject({ Name: `keepMedia-${MESSAGE}`, ScheduleExpression: 'at(2026-05-01T11:00:00)', ActionAfterCompletion: 'DELETE' });
    expect(JSON.parse(input!.Target!.Input!)).toEqual({ kind: 'keepMedia', conversationId: CONVERSATION, messageId: MESSAGE, round: 1, dueAt: '2026-05-01T11:00:00.000Z' });
    expect(ddb.commandCalls(UpdateCommand)).toEqual([]);
  });

  it('backs off round by round, about 3½ days in all, and gives up after the last round', async () => {
    provider(503);
    const waits: number[] = [];
    for (let round = 0; round <= COPY_RETRY_HOURS.length; round++) {
      scheduler.resetHistory();
      await keepProviderMedia(job(round), true, deadline());
      const [input] = armed();
      if (!input) break;
      expect(JSON.parse(input.Target!.Input!).round).toBe(round + 1);
      waits.push((Date.parse(JSON.parse(input.Target!.Input!).dueAt) - NOW.getTime()) / HOUR_MS);
    }
    expect(waits).toEqual([1, 2, 4, 8, 16, 24, 24]);
    // The last round armed nothing: the attachment keeps the provider's reference.
    expect(ddb.commandCalls(UpdateCommand)).toEqual([]);
  });

  it('arms its next round when S3 fails on the last attempt', async () => {
    provider(200);
    s3.on(PutObjectCommand).rejects(new Error('S3 is down'));
    await keepProviderMedia(job(2), true, deadline());
    expect(armed().map((input) => JSON.parse(input.Target!.Input!).round)).toEqual([3]);
  });

  it('arms nothing for a file the provider no longer has', async () => {
    provider(404);
    await keepProviderMedia(job(), true, deadline());
    expect(armed()).toEqual([]);
  });

  it('arms nothing once the file is copied, and a later round changes nothing', async () => {
    provider(200);
    await keepProviderMedia(job(), true, deadline());
    expect(armed()).toEqual([]);
    const [update] = ddb.commandCalls(UpdateCommand);
    const kept = update!.args[0].input.ExpressionAttributeValues![':to'];
    expect(kept).toMatchObject({ url: `conversa-media://media/provider/${CONVERSATION}/${MESSAGE}/0`, size: 4 });

    // The round armed by an earlier attempt fires after all: the message already points at the copy.
    ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({ Item: { ...keys.message(CONVERSATION, MESSAGE), ...photo, attachments: [kept] } });
    ddb.resetHistory();
    s3.resetHistory();
    provider(503);
    await keepProviderMedia(job(1), true, deadline());
    expect(ddb.commandCalls(UpdateCommand)).toEqual([]);
    expect(s3.commandCalls(PutObjectCommand)).toEqual([]);
    expect(armed()).toEqual([]);
  });

  it('arms the next round of a copy job skipped behind a failing one until its last receive', async () => {
    expect(await abandonOutbound(job(1), 'not sent')).toBe(true);
    expect(armed().map((input) => JSON.parse(input.Target!.Input!).round)).toEqual([2]);
  });
});

describe("a copy of an erased customer's file", () => {
  /** The bucket's versions under a prefix: an earlier and the current one of the copy's key. */
  const versioned = () =>
    s3.on(ListObjectVersionsCommand).callsFake((input: { Prefix: string }) => ({
      IsTruncated: false,
      Versions: COPY_KEY.startsWith(input.Prefix) ? [{ Key: COPY_KEY, VersionId: 'v2' }, { Key: COPY_KEY, VersionId: 'v1' }] : [],
    }));
  const versionsDeleted = () => s3.commandCalls(DeleteObjectCommand).map((c) => `${c.args[0].input.Key} ${c.args[0].input.VersionId}`);

  it('removes the copy when the erasure was asked for while it ran (the erasure may have read the message before it named the copy)', async () => {
    // Prepare: the conversation is marked between the copy's first read and its write.
    provider(200);
    versioned();
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolvesOnce({ Item: conversation }).resolves({ Item: beingErased });

    // Act
    await keepProviderMedia(job(), true, deadline());

    // Assess: written, then every version of it deleted; nobody told of a copy that is gone.
    expect(s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key)).toEqual([COPY_KEY]);
    expect(versionsDeleted().sort()).toEqual([`${COPY_KEY} v1`, `${COPY_KEY} v2`]);
    expect(publish).not.toHaveBeenCalled();
    expect(armed()).toEqual([]);
  });

  it('removes the copy when the message and its conversation were erased before it landed', async () => {
    provider(200);
    versioned();
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolvesOnce({ Item: conversation }).resolves({});
    ddb.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: 'gone', $metadata: {} }));

    await keepProviderMedia(job(), true, deadline());

    expect(versionsDeleted().sort()).toEqual([`${COPY_KEY} v1`, `${COPY_KEY} v2`]);
  });

  it('copies nothing once the erasure was asked for, and removes what an attempt that died had written', async () => {
    provider(200);
    versioned();
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: beingErased });

    await keepProviderMedia(job(), false, deadline());

    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
    expect(s3.commandCalls(PutObjectCommand)).toEqual([]);
    expect(s3.commandCalls(ListObjectVersionsCommand).map((c) => c.args[0].input.Prefix)).toEqual([`media/provider/${CONVERSATION}/${MESSAGE}/`]);
    expect(versionsDeleted().sort()).toEqual([`${COPY_KEY} v1`, `${COPY_KEY} v2`]);
  });

  it('keeps the copy, and tells the consoles, while nobody asked to erase the customer', async () => {
    provider(200);
    versioned();

    await keepProviderMedia(job(), true, deadline());

    expect(versionsDeleted()).toEqual([]);
    expect(publish).toHaveBeenCalledTimes(1);
  });
});

describe('a copy on a channel nobody set up', () => {
  const secrets = mockClient(SecretsManagerClient);

  afterEach(() => {
    vi.restoreAllMocks();
    clearCredentialCache();
  });

  it('keeps the provider reference: no fetch, no retry, no round, nothing thrown to the DLQ', async () => {
    vi.stubEnv('WHATSAPP_SECRET_ARN', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:conversa/whatsapp-AbCdEf');
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    secrets.reset();
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ WHATSAPP_APP_SECRET: 'generated', WHATSAPP_VERIFY_TOKEN: '', WHATSAPP_ACCESS_TOKEN: '', WHATSAPP_PHONE_NUMBER_ID: '' }) });
    clearCredentialCache();
    provider(200);

    for (const lastAttempt of [false, true]) await keepProviderMedia(job(), lastAttempt, deadline());

    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
    expect(ddb.commandCalls(UpdateCommand)).toEqual([]);
    expect(s3.commandCalls(PutObjectCommand)).toEqual([]);
    expect(armed()).toEqual([]);
  });
});

describe('a copy round that fires', () => {
  it('goes back on the outbound queue in the copy lane, as a job of its own to SQS', async () => {
    const outcome = await runTimer({ kind: 'keepMedia', conversationId: CONVERSATION, messageId: MESSAGE, round: 3, dueAt: NOW.toISOString() });

    expect(outcome).toBe('done');
    const [[, entries]] = sendMessageBatch.mock.calls as [[string, BatchEntry[]]];
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ MessageGroupId: `keepMedia#${CONVERSATION}`, MessageDeduplicationId: `keepMedia#${MESSAGE}#3` });
    expect(JSON.parse(entries[0]!.MessageBody)).toEqual(job(3));
  });
});

describe('a copy of an MMS text part', () => {
  const TWILIO = 'https://api.twilio.test';
  const media = (id: string) => `${TWILIO}/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/MM0123456789abcdef0123456789abcdef/Media/${id}`;
  const [PHOTO, PART] = [media('ME00000000000000000000000000000001'), media('ME00000000000000000000000000000002')];
  const mms = (text: string): Message => ({
    ...photo,
    channel: 'sms',
    text,
    attachments: [
      { type: 'image', url: PHOTO, mimeType: 'image/jpeg' },
      { type: 'file', url: PART, mimeType: 'text/plain' },
    ],
  });

  /** Copies the MMS whose Body was `body` and whose text part Twilio serves as `bytes` of `contentType`; the text of each write. */
  async function copy(body: string, bytes: Buffer, contentType = 'text/plain; charset=utf-8'): Promise<(string | undefined)[]> {
    vi.stubEnv('TWILIO_API_BASE_URL', TWILIO);
    ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({ Item: { ...keys.message(CONVERSATION, MESSAGE), ...mms(body) } });
    // As DynamoDB answers ALL_NEW: the message with what the write set.
    let stored = mms(body);
    ddb.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: Record<string, unknown>; ConditionExpression: string }) => {
      const index = Number(/\[(\d)\]/.exec(input.ConditionExpression)![1]);
      const text = (input.ExpressionAttributeValues[':text'] as string | undefined) ?? stored.text;
      stored = { ...stored, text, attachments: stored.attachments.map((a, i) => (i === index ? (input.ExpressionAttributeValues[':to'] as Message['attachments'][number]) : a)) };
      return { Attributes: { ...keys.message(CONVERSATION, MESSAGE), ...stored } };
    });
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) =>
        url === PART ? new Response(bytes, { status: 200, headers: { 'content-type': contentType } }) : new Response(Buffer.from([0xff, 0xd8]), { status: 200, headers: { 'content-type': 'image/jpeg' } }),
      ),
    );
    await keepProviderMedia(job(), true, deadline());
    return ddb.commandCalls(UpdateCommand).map((call) => call.args[0].input.ExpressionAttributeValues?.[':text'] as string | undefined);
  }

  it('reads the part into the message text in the write that keeps it, and tells the consoles; the photo stays a file', async () => {
    const words = 'My order 1234 arrived damaged: the box was open and two plates are broken. What now?';

    const texts = await copy('', Buffer.from(words));

    expect(texts).toEqual([undefined, words]);
    const [, partWrite] = ddb.commandCalls(UpdateCommand);
    expect(partWrite!.args[0].input.ConditionExpression).toBe('attachments[1].#url = :from AND #text = :was');
    expect(partWrite!.args[0].input.ExpressionAttributeValues![':was']).toBe('');
    expect(partWrite!.args[0].input.ExpressionAttributeValues![':to']).toMatchObject({ type: 'file', url: `conversa-media://media/provider/${CONVERSATION}/${MESSAGE}/1` });
    expect(vi.mocked(publish).mock.calls.map(([events]) => events)).toEqual([[expect.objectContaining({ type: 'message.updated', message: expect.objectContaining({ text: words }) })]]);
  });

  it('puts the part after a Body that differs, not twice the same words; reads the charset Twilio names; cuts a long part near 4096 characters', async () => {
    expect((await copy('See below', Buffer.from('the rest')))[1]).toBe('See below\nthe rest');
    ddb.resetHistory();
    expect((await copy('Same words', Buffer.from('Same words\n')))[1]).toBe('Same words');
    ddb.resetHistory();
    expect((await copy('', Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'text/plain; charset=ISO-8859-1'))[1]).toBe('café');
    ddb.resetHistory();
    const long = (await copy('', Buffer.from('A sentence of some words. '.repeat(400))))[1]!;
    expect(long.length).toBeLessThanOrEqual(4096);
    expect(long).toMatch(/words\.…$/);
  });
});
