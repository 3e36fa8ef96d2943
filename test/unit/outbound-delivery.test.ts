/**
 * Delivering one stored reply, with DynamoDB mocked so that its eventually consistent reads can
 * lag the writes before them (DynamoDB Local never does): the delivery reads again, consistently,
 * before it gives up on a reply.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { clearCredentialCache } from '../../src/channels/credentials';
import { keys } from '../../src/store/keys';
import type { ConversationRecord } from '../../src/store/conversations';
import type { Message } from '../../src/domain/types';
import type { ProactiveJob } from '../../src/domain/proactive';

const automation = vi.hoisted(() => ({ afterOutbound: vi.fn(), beforeSend: vi.fn(async () => undefined) }));
vi.mock('../../src/domain/automation', () => automation);
vi.mock('../../src/domain/fanout', () => ({ publish: vi.fn(async () => 0), agentConnectionsAhead: () => Promise.resolve([]), scopeOf: () => true, REPEATS_ACTIVITY: Symbol('repeatsActivity') }));
const { deliverOutbound, RetryableSendError } = await import('../../src/domain/outbound');
const { handler } = await import('../../functions/outbound/handler');
const { publish } = await import('../../src/domain/fanout');

const ddb = mockClient(DynamoDBDocumentClient);
const CONVERSATION = '01JD5Q8Z7V4R0M3X6N2B9C1K8T';
const MESSAGE = '01JD5Q8Z7V4R0M3X6N2B9C1K9V';
const HOUR = 3_600_000;

const reply: Message = {
  id: MESSAGE,
  conversationId: CONVERSATION,
  direction: 'outbound',
  sender: { type: 'bot', id: 'autoresponder' },
  channel: 'whatsapp',
  text: 'Thanks for getting in touch!',
  attachments: [],
  status: 'queued',
  private: false,
  createdAt: new Date().toISOString(),
};

function conversation(lastInboundAt: string): ConversationRecord {
  return {
    id: CONVERSATION,
    channel: 'whatsapp',
    status: 'open',
    contact: { id: 'c1' },
    assigneeId: null,
    unreadCount: 0,
    createdAt: lastInboundAt,
    updatedAt: lastInboundAt,
    lastMessageAt: lastInboundAt,
    lastInboundAt,
    handle: '15550001111',
    version: 1,
  } as ConversationRecord;
}

/** The eventually consistent read of the conversation answers `eventual`; the consistent one, the latest. */
function arrange(eventual: ConversationRecord | undefined, latest: ConversationRecord) {
  ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({ Item: { ...keys.message(CONVERSATION, MESSAGE), ...reply } });
  ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION), ConsistentRead: false }).resolves({ Item: eventual });
  ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION), ConsistentRead: true }).resolves({ Item: latest });
  ddb.on(PutCommand).resolves({});
  ddb.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: Record<string, unknown> }) => ({
    Attributes: { ...reply, status: input.ExpressionAttributeValues[':status'], ...(input.ExpressionAttributeValues[':error'] ? { error: input.ExpressionAttributeValues[':error'] } : {}) },
  }));
}

const statuses = () => ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input.ExpressionAttributeValues?.[':status']);

beforeEach(() => {
  vi.stubEnv('TABLE_NAME', 'conversa-unit');
  vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ messaging_product: 'whatsapp', messages: [{ id: 'wamid.SENT' }] }), { status: 200 })));
  ddb.reset();
  automation.afterOutbound.mockReset();
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.unstubAllGlobals();
});

describe('delivering a reply', () => {
  it('sends the greeting of a conversation the eventually consistent read does not show yet', async () => {
    arrange(undefined, conversation(new Date().toISOString()));
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);
    expect(statuses()).toEqual(['sent']);
    expect(automation.afterOutbound).toHaveBeenCalledTimes(1);
  });

  it('sends an answer to a customer back after two days, whose message an eventually consistent read misses', async () => {
    const now = new Date().toISOString();
    arrange(conversation(new Date(Date.now() - 48 * HOUR).toISOString()), conversation(now));
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);
    expect(statuses()).toEqual(['sent']);
  });

  it('still refuses a free-form reply when the consistent read agrees the window is closed', async () => {
    const old = conversation(new Date(Date.now() - 48 * HOUR).toISOString());
    arrange(old, old);
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);
    expect(statuses()).toEqual(['failed']);
  });
});

describe('a reply whose customer asked to be erased before it went out', () => {
  it('is not sent: nothing more goes to a customer being erased (the erasure deletes the reply with the rest)', async () => {
    // Prepare: the erasure request marked the conversation while the reply waited in its lane
    const marked = { ...conversation(new Date().toISOString()), erasureRequestedAt: new Date().toISOString() } as ConversationRecord;
    arrange(marked, marked);

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);

    // Assess
    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
    expect(statuses()).toEqual([]);
    expect(automation.afterOutbound).not.toHaveBeenCalled();
  });
});

describe('a reply reached late in a slow batch', () => {
  // Its send would start with less than the provider timeout left before the batch's send deadline:
  // an answer could come after the function is stopped, and the retry send it again.
  const late = () => Date.now() + 5_000;

  it('is not started: it goes back to the queue, with no attempt counted, its next part known untaken', async () => {
    // Prepare
    arrange(conversation(new Date().toISOString()), conversation(new Date().toISOString()));

    // Act
    const delivery = deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false, false, Date.now() + 15_000, late());

    // Assess
    await expect(delivery).rejects.toBeInstanceOf(RetryableSendError);
    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
    const writes = ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input.UpdateExpression);
    expect(writes).toEqual(['SET nextPartUntaken = :untaken']);
  });

  it('is sent all the same on the queue’s last receive, which would otherwise give up on it', async () => {
    // Prepare
    arrange(conversation(new Date().toISOString()), conversation(new Date().toISOString()));

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, true, false, Date.now() + 15_000, late());

    // Assess
    expect(vi.mocked(fetch)).toHaveBeenCalledTimes(1);
    expect(statuses()).toEqual(['sent']);
  });

  it('is not started for a proactive job either: the batch’s deadline reaches the send it expands into', async () => {
    // Prepare: a contact with one WhatsApp conversation, its window open; what the job stores is read back
    const open = conversation(new Date().toISOString());
    const items = new Map<string, Record<string, unknown>>();
    const at = (key: Record<string, unknown>) => `${String(key.pk)}|${String(key.sk)}`;
    ddb.on(QueryCommand).resolves({
      Items: [
        { ...keys.contact('c1'), id: 'c1', handles: [{ channel: 'whatsapp', handle: open.handle }] },
        { ...keys.contactConversation('c1', CONVERSATION), conversationId: CONVERSATION },
      ],
    });
    ddb.on(BatchGetCommand).resolves({ Responses: { 'conversa-unit': [{ ...keys.conversation(CONVERSATION), ...open }] } });
    ddb.on(PutCommand).callsFake((input: { Item: Record<string, unknown> }) => {
      items.set(at(input.Item), input.Item);
      return {};
    });
    ddb.on(GetCommand).callsFake((input: { Key: Record<string, unknown> }) => ({ Item: input.Key.sk === 'CONV' ? { ...keys.conversation(CONVERSATION), ...open } : items.get(at(input.Key)) }));
    ddb.on(UpdateCommand).resolves({ Attributes: open });
    const job: ProactiveJob = {
      conversationId: 'proactive-lane-0',
      messageId: 'proactive-B1-c1',
      proactive: { batchId: 'B1', contactId: 'c1', text: 'Our sale starts today', sender: { id: 'admin-1' } },
    };

    // Act
    const delivery = deliverOutbound(job, false, false, Date.now() + 15_000, late());

    // Assess: stored, and left queued for the next delivery (which finds it by the job's claim)
    await expect(delivery).rejects.toBeInstanceOf(RetryableSendError);
    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
    const stored = [...items.values()].filter((item) => String(item.sk).startsWith('MSG#'));
    expect(stored).toEqual([expect.objectContaining({ text: 'Our sale starts today', status: 'queued', unprompted: true })]);
  });
});

describe('a message on Messenger two days after the customer last wrote (its HUMAN_AGENT days)', () => {
  function arrangeMessenger(message: Message) {
    const old = { ...conversation(new Date(Date.now() - 48 * HOUR).toISOString()), channel: 'messenger' as const, handle: '2468013579' };
    ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({ Item: { ...keys.message(CONVERSATION, MESSAGE), ...message } });
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: old });
    ddb.on(PutCommand).resolves({});
    ddb.on(QueryCommand).resolves({ Items: [] });
    ddb.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: Record<string, unknown> }) => ({
      Attributes: { ...message, status: input.ExpressionAttributeValues[':status'], ...(input.ExpressionAttributeValues[':error'] ? { error: input.ExpressionAttributeValues[':error'] } : {}) },
    }));
    vi.mocked(fetch).mockImplementation(async () => new Response(JSON.stringify({ recipient_id: old.handle, message_id: 'm_SENT' }), { status: 200 }));
  }
  const onMessenger: Message = { ...reply, channel: 'messenger', sender: { type: 'agent', id: 'admin-1' }, text: 'Our sale starts today' };

  it('is not sent when it is a proactive one: the tag is for answering the customer, not for campaigns', async () => {
    // Prepare
    arrangeMessenger({ ...onMessenger, unprompted: true });

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);

    // Assess
    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
    expect(statuses()).toEqual(['failed']);
    expect(ddb.commandCalls(UpdateCommand)[0]!.args[0].input.ExpressionAttributeValues?.[':error']).toMatch(/proactive message goes only within the 24-hour/);
  });

  it('goes under the tag when it is an agent’s reply', async () => {
    arrangeMessenger(onMessenger);
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);
    expect(vi.mocked(fetch)).toHaveBeenCalledTimes(1);
    expect(JSON.parse(String(vi.mocked(fetch).mock.calls[0]![1]!.body))).toMatchObject({ messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT' });
    expect(statuses()).toEqual(['sent']);
  });
});

describe('a reply on a channel nobody set up', () => {
  const secrets = mockClient(SecretsManagerClient);
  const record = (receiveCount: number): SQSRecord =>
    ({
      messageId: 'sqs-1',
      receiptHandle: 'rh-1',
      body: JSON.stringify({ conversationId: CONVERSATION, messageId: MESSAGE }),
      attributes: { MessageGroupId: CONVERSATION, ApproximateReceiveCount: String(receiveCount) },
    }) as unknown as SQSRecord;

  beforeEach(() => {
    vi.stubEnv('WHATSAPP_SECRET_ARN', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:conversa/whatsapp-AbCdEf');
    vi.stubEnv('OUTBOUND_QUEUE_URL', 'http://sqs.local/000000000000/conversa-outbound.fifo');
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    // As the stack creates it: placeholders where the team has not typed its credentials in.
    secrets.reset();
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ WHATSAPP_APP_SECRET: 'generated', WHATSAPP_VERIFY_TOKEN: '', WHATSAPP_ACCESS_TOKEN: '', WHATSAPP_PHONE_NUMBER_ID: '' }) });
    clearCredentialCache();
    vi.mocked(publish).mockClear();
  });

  afterEach(() => {
    vi.restoreAllMocks();
    clearCredentialCache();
  });

  it('fails at its first attempt with the reason, tells the agents, and leaves nothing to the queue or its DLQ', async () => {
    arrange(conversation(new Date().toISOString()), conversation(new Date().toISOString()));

    const response = await handler({ Records: [record(1)] } as SQSEvent);

    expect(response).toEqual({ batchItemFailures: [] });
    expect(statuses()).toEqual(['failed']);
    const [update] = ddb.commandCalls(UpdateCommand);
    expect(update!.args[0].input.ExpressionAttributeValues?.[':error']).toBe('the whatsapp channel is not configured');
    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
    const frames = vi.mocked(publish).mock.calls.flatMap(([events]) => events);
    expect(frames).toEqual([expect.objectContaining({ type: 'message.updated', message: expect.objectContaining({ id: MESSAGE, status: 'failed', error: 'the whatsapp channel is not configured' }) })]);
    expect(automation.afterOutbound).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ status: 'failed' }));
  });
});

describe('a redelivered job whose reply was already sent', () => {
  it('applies a status held for its provider id, which the first delivery died before applying', async () => {
    const sms = { ...reply, channel: 'sms' as const, status: 'sent' as const, providerMessageId: 'SM1' };
    const now = new Date().toISOString();
    ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({ Item: { ...keys.message(CONVERSATION, MESSAGE), ...sms } });
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: { ...conversation(now), channel: 'sms', handle: '+15550001111' } });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':pk': keys.earlyStatusPartition('sms#SM1') } }).resolves({ Items: [{ status: 'failed', error: 'Twilio error 30003' }] });
    ddb.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: Record<string, unknown> }) => ({
      Attributes: { ...sms, status: input.ExpressionAttributeValues[':status'], error: input.ExpressionAttributeValues[':error'] },
    }));

    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false, true);

    expect(statuses()).toEqual(['failed']);
    expect(automation.afterOutbound).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ status: 'failed', error: 'Twilio error 30003' }));
    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
  });
});

/** Every DynamoDB call of the delivery, in order: what it wrote or read, and on which key. */
const calls = () =>
  ddb.calls().map((call) => {
    const input = call.args[0].input as { Key?: { pk: string }; Item?: { pk: string }; ExpressionAttributeValues?: Record<string, unknown> };
    return { command: call.args[0].constructor.name, pk: input.Key?.pk ?? input.Item?.pk ?? input.ExpressionAttributeValues?.[':pk'], values: input.ExpressionAttributeValues ?? {}, input };
  });

/** A reply on `channel`, stored as `item`, in a conversation whose customer just wrote. */
function arrangeOn(channel: 'sms' | 'messenger' | 'whatsapp', item: Record<string, unknown>) {
  const now = new Date().toISOString();
  const handle = { sms: '+15550001111', messenger: '7001', whatsapp: '15550001111' }[channel];
  ddb.on(GetCommand, { Key: keys.message(CONVERSATION, MESSAGE) }).resolves({ Item: { ...keys.message(CONVERSATION, MESSAGE), ...item } });
  ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: { ...conversation(now), channel, handle } });
  ddb.on(PutCommand).resolves({});
  ddb.on(QueryCommand).resolves({ Items: [] });
  ddb.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: Record<string, unknown> }) => ({
    Attributes: { ...item, status: input.ExpressionAttributeValues[':status'] ?? item.status },
  }));
}

const answers = (...bodies: unknown[]) => {
  const fetchMock = vi.fn();
  for (const body of bodies) fetchMock.mockResolvedValueOnce(new Response(JSON.stringify(body), { status: 200 }));
  vi.stubGlobal('fetch', fetchMock);
};

describe('a reply the provider took: its record before its provider ids’ claims', () => {
  it('writes an SMS reply sent, with its provider id, before claiming that id', async () => {
    // Prepare
    arrangeOn('sms', { ...reply, channel: 'sms' });
    answers({ sid: 'SM1', status: 'queued' });

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);

    // Assess
    const writes = calls().filter((c) => c.command !== 'GetCommand' && c.command !== 'QueryCommand');
    expect(writes.map((c) => [c.command, c.pk, c.values[':status'] ?? null, c.values[':pmid'] ?? null])).toEqual([
      ['UpdateCommand', keys.message(CONVERSATION, MESSAGE).pk, 'sent', 'SM1'],
      ['PutCommand', keys.dedup('sms#SM1').pk, null, null],
    ]);
  });

  it('records every part’s provider id of a reply sent in parts in its sent write, before any claim', async () => {
    // Prepare: Messenger takes 2000 characters a message, so this goes as two
    const text = `${'first part. '.repeat(150)}\n\n${'second part. '.repeat(100)}`;
    arrangeOn('messenger', { ...reply, channel: 'messenger', text });
    answers({ recipient_id: '7001', message_id: 'm_1' }, { recipient_id: '7001', message_id: 'm_2' });

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false);

    // Assess
    expect(vi.mocked(fetch)).toHaveBeenCalledTimes(2);
    const writes = calls().filter((c) => c.values[':status'] === 'sent' || c.command === 'PutCommand');
    expect(writes.map((c) => [c.command, c.pk])).toEqual([
      ['UpdateCommand', keys.message(CONVERSATION, MESSAGE).pk],
      ['PutCommand', keys.dedup('messenger#m_1').pk],
      ['PutCommand', keys.dedup('messenger#m_2').pk],
    ]);
    expect(writes[0]!.values).toMatchObject({ ':pmid': 'm_1', ':progress': { partsSent: 2, primaryId: 'm_1', otherIds: ['m_2'] } });
  });
});

describe('a redelivered job whose reply was sent, its provider ids’ claims maybe never made', () => {
  it('claims every part’s recorded provider id (unless claimed), applies what was held for any, and sends nothing', async () => {
    // Prepare
    const sent = { ...reply, channel: 'messenger' as const, status: 'sent' as const, providerMessageId: 'm_1' };
    arrangeOn('messenger', { ...sent, sendProgress: { partsSent: 2, primaryId: 'm_1', otherIds: ['m_2'] } });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':pk': keys.earlyStatusPartition('messenger#m_2') } }).resolves({ Items: [{ status: 'delivered' }] });

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false, true);

    // Assess
    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
    const claims = calls().filter((c) => c.command === 'PutCommand');
    expect(claims.map((c) => c.pk)).toEqual([keys.dedup('messenger#m_1').pk, keys.dedup('messenger#m_2').pk]);
    for (const claim of claims) {
      expect(claim.input).toMatchObject({ ConditionExpression: 'attribute_not_exists(pk)', Item: { conversationId: CONVERSATION, messageId: MESSAGE } });
    }
    expect(statuses()).toEqual(['delivered']);
    expect(automation.afterOutbound).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ status: 'delivered' }));
  });

  it('claims nothing for a reply that failed', async () => {
    // Prepare
    arrangeOn('messenger', { ...reply, channel: 'messenger', status: 'failed', providerMessageId: 'm_1', sendProgress: { partsSent: 2, primaryId: 'm_1', otherIds: ['m_2'] }, error: 'part 2 failed' });

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false, true);

    // Assess
    expect(calls().filter((c) => c.command === 'PutCommand')).toEqual([]);
    expect(automation.afterOutbound).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ status: 'failed' }));
  });
});

describe('a WhatsApp reply in parts that an earlier part’s receipt moved on while a later part was to go', () => {
  // A text too long for a caption goes before the photo: two parts. The first was taken, and its
  // receipt (our reference rides on each part) made the reply delivered.
  const inParts = {
    ...reply,
    sender: { type: 'agent', id: 'agent-ana' },
    text: 'x'.repeat(1100),
    attachments: [{ type: 'image', url: 'https://files.example/photo.png', mimeType: 'image/png' }],
    status: 'delivered',
    providerMessageId: 'wamid.TEXT',
    sendProgress: { partsSent: 1, partsTotal: 2, primaryId: 'wamid.TEXT' },
    sendFailures: 1,
  };

  it('sends the part the provider refused (it answered: the part was not taken), and only that one', async () => {
    // Prepare
    arrangeOn('whatsapp', { ...inParts, nextPartUntaken: true });
    answers({ messaging_product: 'whatsapp', messages: [{ id: 'wamid.PHOTO' }] });

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false, true);

    // Assess: the photo goes, the text does not go again; the receipt's status stands, with both ids
    expect(vi.mocked(fetch)).toHaveBeenCalledTimes(1);
    const sent = JSON.parse(String(vi.mocked(fetch).mock.calls[0]![1]!.body)) as Record<string, unknown>;
    expect(sent).toMatchObject({ type: 'image', image: { link: 'https://files.example/photo.png' } });
    const recorded = calls().find((c) => c.command === 'UpdateCommand' && c.values[':pmid'] === 'wamid.TEXT');
    expect(recorded?.values[':progress']).toEqual({ partsSent: 2, primaryId: 'wamid.TEXT', otherIds: ['wamid.PHOTO'] });
  });

  it('sends nothing again after a timeout, when the provider may have taken the part (its receipt would tell, not its lack)', async () => {
    // Prepare
    arrangeOn('whatsapp', { ...inParts, nextPartUntaken: false });

    // Act
    await deliverOutbound({ conversationId: CONVERSATION, messageId: MESSAGE }, false, true);

    // Assess
    expect(vi.mocked(fetch)).not.toHaveBeenCalled();
    expect(automation.afterOutbound).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ status: 'delivered' }));
  });
});
