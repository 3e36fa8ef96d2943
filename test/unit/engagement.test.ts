/**
 * Engagement units against mocked AWS clients: schedule shape and replacement, the reply-to
 * address, the fallback email, CSAT parsing, re-engagement across provider windows, and the
 * pacing of proactive sends.
 */
import { createHash } from 'node:crypto';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { cancelTimer, scheduleName, setTimer, useInvokedFunctionAsTarget } from '../../src/domain/timers';
import { conversationFromReplyAddress, renderReplyEmail, replyAddress, sendReplyEmail, stripQuotedReply } from '../../src/domain/email';
import { autoresponseText, csatRatingFor, CSAT_RERATE_WINDOW_MS, engageOnConversationChange, engageOnVisitorRead, ownEmailIn, parseCsatAnswer, runTimer } from '../../src/domain/engagement';
import { HOURLY_RECIPIENT_LIMIT, MAX_RECIPIENTS, PROACTIVE_LANES, queueProactive } from '../../src/domain/proactive';
import { abandonOutbound } from '../../src/domain/outbound';
import { clearSettingsCache, defaultSettings, saveSettings, type Settings } from '../../src/domain/settings';
import { keys } from '../../src/store/keys';
import { idFor } from '../../src/domain/ids';
import type { BatchEntry } from '../../src/aws/sqs-send';
import type { ConversationRecord } from '../../src/store/conversations';
import type { Message } from '../../src/domain/types';

const scheduler = mockClient(SchedulerClient);
const ses = mockClient(SESv2Client);
const ws = mockClient(ApiGatewayManagementApiClient);
/** The queue sender, faked: what would have been sent to SQS. */
const sendMessageBatch = vi.hoisted(() => vi.fn());
vi.mock('../../src/aws/sqs-send', async (original) => ({ ...(await original<typeof import('../../src/aws/sqs-send')>()), sendMessageBatch }));
const ddb = mockClient(DynamoDBDocumentClient);

const ENV = {
  TABLE_NAME: 'conversa-unit',
  OUTBOUND_QUEUE_URL: 'http://sqs.local/000000000000/conversa-outbound.fifo',
  INBOUND_QUEUE_URL: 'http://sqs.local/000000000000/conversa-inbound.fifo',
  WS_CALLBACK_URL: 'http://ws.local/live',
  SCHEDULE_GROUP: 'conversa-timers',
  SCHEDULER_ROLE_ARN: 'arn:aws:iam::123456789012:role/conversa-scheduler',
  ENGAGEMENT_FUNCTION_ARN: 'arn:aws:lambda:eu-west-1:123456789012:function:conversa-engagement',
  SCHEDULER_DLQ_ARN: 'arn:aws:sqs:eu-west-1:123456789012:conversa-scheduler-dlq',
  MAIL_FROM: 'support@example.com',
  MAIL_REPLY_DOMAIN: 'reply.example.com',
  REPLY_ADDRESS_SECRET: 'unit-secret',
  CONVERSA_PUBLIC_URL: 'https://api.example.com',
  CONVERSA_WIDGET_URL: 'https://www.example.com/support?lang=en',
};
const CONVERSATION = '01JD5Q8Z7V4R0M3X6N2B9C1K8T';

beforeEach(() => {
  for (const [k, v] of Object.entries(ENV)) vi.stubEnv(k, v);
  scheduler.reset();
  ses.reset();
  ws.reset();
  sendMessageBatch.mockReset().mockResolvedValue({ Successful: [], Failed: [] });
  ddb.reset();
  clearSettingsCache();
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.useRealTimers();
});

describe('timers', () => {
  it('arms a one-time at() schedule named after the conversation and kind, deleted after completion', async () => {
    // Prepare
    vi.useFakeTimers({ now: new Date('2026-05-01T10:00:00.300Z'), toFake: ['Date'] });
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });

    // Act
    await setTimer('reengage', CONVERSATION, 90, { messageId: 'M1' });

    // Assess
    const input = scheduler.commandCalls(CreateScheduleCommand)[0]!.args[0].input;
    expect(input).toMatchObject({
      Name: `reengage-${CONVERSATION}`,
      GroupName: 'conversa-timers',
      ScheduleExpression: 'at(2026-05-01T10:01:31)',
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      ActionAfterCompletion: 'DELETE',
      Target: {
        Arn: ENV.ENGAGEMENT_FUNCTION_ARN,
        RoleArn: ENV.SCHEDULER_ROLE_ARN,
        DeadLetterConfig: { Arn: ENV.SCHEDULER_DLQ_ARN },
      },
    });
    expect(JSON.parse(input.Target!.Input!)).toEqual({ kind: 'reengage', conversationId: CONVERSATION, dueAt: '2026-05-01T10:01:31.000Z', messageId: 'M1' });
  });

  it('replaces the schedule when one of that name exists (a newer event)', async () => {
    scheduler.on(CreateScheduleCommand).rejects(new ConflictException({ message: 'exists', Message: 'exists', $metadata: {} }));
    scheduler.on(UpdateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    await setTimer('autoResolve', CONVERSATION, 60);
    expect(scheduler.commandCalls(UpdateScheduleCommand)).toHaveLength(1);
    expect(scheduler.commandCalls(UpdateScheduleCommand)[0]!.args[0].input.Name).toBe(`autoResolve-${CONVERSATION}`);
  });

  it('tries the update first when the schedule likely exists, and creates it when it had fired', async () => {
    scheduler.on(UpdateScheduleCommand).rejects(new ResourceNotFoundException({ message: 'gone', Message: 'gone', $metadata: {} }));
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    await setTimer('autoResolve', CONVERSATION, 60, { likelyExists: true });
    expect(scheduler.commandCalls(UpdateScheduleCommand)).toHaveLength(1);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(1);
  });

  it('cancels with DeleteSchedule and treats a missing schedule as cancelled', async () => {
    scheduler.on(DeleteScheduleCommand).rejects(new ResourceNotFoundException({ message: 'gone', Message: 'gone', $metadata: {} }));
    await expect(cancelTimer('emailFallback', CONVERSATION)).resolves.toBeUndefined();
    expect(scheduler.commandCalls(DeleteScheduleCommand)[0]!.args[0].input).toEqual({ Name: `emailFallback-${CONVERSATION}`, GroupName: 'conversa-timers' });

    scheduler.reset();
    scheduler.on(DeleteScheduleCommand).rejects(new Error('throttled'));
    await expect(cancelTimer('emailFallback', CONVERSATION)).rejects.toThrow('throttled');
  });

  it('targets the engagement function itself (unqualified) when it arms a timer without the ARN in its environment', async () => {
    vi.stubEnv('ENGAGEMENT_FUNCTION_ARN', '');
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    useInvokedFunctionAsTarget('arn:aws:lambda:eu-west-1:123456789012:function:conversa-engagement:live');
    await setTimer('autoResolve', CONVERSATION, 60);
    expect(scheduler.commandCalls(CreateScheduleCommand)[0]!.args[0].input.Target!.Arn).toBe('arn:aws:lambda:eu-west-1:123456789012:function:conversa-engagement');
  });

  it('keeps names within the Scheduler alphabet and 64 characters', () => {
    const name = scheduleName('weird id/with:chars and more than forty-eight characters in it', 'autoResolve');
    expect(name).toMatch(/^[0-9A-Za-z_.-]{1,64}$/);
  });
});

describe('reply-to address', () => {
  it('names exactly its conversation and cannot be forged', () => {
    const address = replyAddress(CONVERSATION);
    expect(address).toMatch(/^c-[0-9a-z]{26}-[0-9a-f]{32}@reply\.example\.com$/);
    expect(conversationFromReplyAddress(address)).toBe(CONVERSATION);
    expect(conversationFromReplyAddress(`Vera <${address.toUpperCase()}>`)).toBe(CONVERSATION);

    const other = '01JD5Q8Z7V4R0M3X6N2B9C1K8V';
    const [, , mac] = /^c-([^-]+)-([^@]+)@/.exec(address)!;
    expect(conversationFromReplyAddress(`c-${other.toLowerCase()}-${mac}@reply.example.com`)).toBeUndefined();
    expect(conversationFromReplyAddress(address.replace(/@.*/, '@evil.example.com'))).toBeUndefined();
    expect(conversationFromReplyAddress(address.replace(/-[0-9a-f]{32}@/, '-deadbeef@'))).toBeUndefined();
    vi.stubEnv('REPLY_ADDRESS_SECRET', 'another-secret');
    expect(conversationFromReplyAddress(address)).toBeUndefined();
  });

  it('keeps only the new text of an email reply', () => {
    expect(stripQuotedReply('Thanks!\r\n\r\nOn Tue, 5 May 2026, Support wrote:\r\n> earlier\r\n')).toBe('Thanks!');
    expect(stripQuotedReply('> quoted\nmine')).toBe('mine');
    // Written under the quote (bottom posting): the reply is below it, not gone.
    expect(stripQuotedReply('On 02/01/2024 10:00, Conversa wrote:\n> Can you send the order number?\n\nSure, it is 12345.')).toBe('Sure, it is 12345.');
    // The customer's own words, not an attribution: no quote follows.
    expect(stripQuotedReply('Hi,\n\nOn Monday I wrote:\nthe box was damaged')).toBe('Hi,\n\nOn Monday I wrote:\nthe box was damaged');
    // Gmail's attribution wrapped after the sender's "<": the secret reply address is not kept.
    expect(stripQuotedReply('Thanks!\n\nOn Tue, 5 May 2026 at 10:00, Support <\nc-abc-123@reply.example.com> wrote:\n> earlier')).toBe('Thanks!');
  });

  it.each([
    ['French', 'Merci !\n\nLe lun. 5 janv. 2026 à 10:00, Conversa <support@example.com> a écrit :\n> Ana: Hi Vera\n'],
    ['German', 'Merci !\n\nAm Mo., 5. Jan. 2026 um 10:00 Uhr schrieb Conversa <support@example.com>:\n> Ana: Hi\n'],
    ['Spanish', 'Merci !\n\nEl lun, 5 ene 2026 a las 10:00, Conversa (<support@example.com>) escribió:\n> Ana: Hola\n'],
    ['iOS, the quote unprefixed', 'Merci !\n\nOn Jan 5, 2026, at 10:00, Conversa <support@example.com> wrote:\n\nYou have a new reply to your conversation:\n\nAna: Hi Vera\n'],
    ['Swedish, Danish and Norwegian', 'Merci !\n\nDen mån 5 jan. 2026 kl 10:00 skrev Conversa <support@example.com>:\n> Ana: Hej\n'],
    ['Polish', 'Merci !\n\nW dniu pon., 5 sty 2026 o 10:00 Conversa <support@example.com> napisał(a):\n> Ana: Cześć\n'],
    ['Dutch on iOS', 'Merci !\n\nOp 5 jan. 2026 om 10:00 heeft Conversa <support@example.com> het volgende geschreven:\n\nYou have a new reply to your conversation:\n\nAna: Hoi\n'],
    ['Outlook, no separator', 'Merci !\r\n\r\nFrom: Conversa <support@example.com>\r\nSent: Monday, January 5, 2026 10:00 AM\r\nTo: vera@example.com\r\nSubject: You have a new reply\r\n\r\nYou have a new reply to your conversation:\r\n\r\nAna: Hi Vera\r\n'],
    ['Outlook in French', 'Merci !\n\nDe : Conversa <support@example.com>\nEnvoyé : lundi 5 janvier 2026 10:00\nÀ : vera@example.com\nObjet : Réponse\n\nYou have 2 new replies to your conversation:\n\nAna: Hi Vera\n'],
  ])('drops the earlier email quoted the way %s clients do', (_, email) => {
    expect(stripQuotedReply(email)).toBe('Merci !');
  });

  it.each([
    ['French, after the sender\'s "<"', 'Merci !\n\nLe mar. 5 mai 2026 à 10:00, Conversa <\nsupport@example.com> a écrit :\n> Ana: Hi Vera\n'],
    ['French, before its last word', 'Merci !\n\nLe mar. 5 mai 2026 à 10:00, Conversa <support@example.com> a\nécrit :\n> Ana: Hi Vera\n'],
    ['German', 'Merci !\n\nAm Di., 5. Mai 2026 um 10:00 Uhr schrieb Conversa <\nsupport@example.com>:\n> Ana: Hi\n'],
    ['Dutch', 'Merci !\n\nOp di 5 mei 2026 om 10:00 schreef Conversa <support@example.com\n>:\n> Ana: Hi\n'],
    ['English, the quote unprefixed under it (iOS)', 'Merci !\n\nOn 5 May 2026, at 10:00, Conversa <support@example.com>\nwrote:\n\nYou have a new reply to your conversation:\n\nAna: Hi Vera\n'],
  ])('drops the quote under an attribution wrapped in %s', (_, email) => {
    expect(stripQuotedReply(email)).toBe('Merci !');
  });

  it('leaves out a signature under its separator and the line a phone adds last', () => {
    expect(stripQuotedReply('Thanks, that works.\n\n-- \nVera Novak\nAcme Ltd, +44 20 7946 0000\n\nOn Tue, 5 May 2026, Support wrote:\n> earlier')).toBe('Thanks, that works.');
    expect(stripQuotedReply('Yes please\n--\nVera')).toBe('Yes please');
    expect(stripQuotedReply('Yes please\n\nSent from my iPhone')).toBe('Yes please');
    expect(stripQuotedReply('Oui\n\nEnvoyé de mon iPhone\n\nLe mar. 5 mai 2026 à 10:00, Support a écrit :\n> earlier')).toBe('Oui');
    expect(stripQuotedReply('Sent from my iPhone')).toBe('');
    // Dashes within a line, and a device named mid-message, are the customer's words.
    expect(stripQuotedReply('Order 12 -- the blue one\nSent from my iPhone, the photo was blurry\nthanks')).toBe('Order 12 -- the blue one\nSent from my iPhone, the photo was blurry\nthanks');
  });

  it('keeps the line breaks of the customer\'s own words that read like a wrapped attribution', () => {
    expect(stripQuotedReply('On Monday\nI wrote: the box was damaged\nPlease check')).toBe('On Monday\nI wrote: the box was damaged\nPlease check');
    expect(stripQuotedReply('Le colis\na écrit :\nrien')).toBe('Le colis\na écrit :\nrien');
  });

  it('reads a long hostile line in one pass', () => {
    const line = `Am ${' schrieb x'.repeat(20_000)}`;
    expect(stripQuotedReply(`${line}\n${'On '.repeat(60_000)}<`)).toBe(`${line}\n${'On '.repeat(60_000)}<`.trim());
  });

  it.each([
    ['a line that reads like a header', 'From: my phone, sorry for typos\nThe order never came.\nOn Monday I wrote:\nit was late'],
    ['an itinerary', 'From: Lisbon\nTo: Porto\nDate: 12 June\nCan you book this for two people?'],
    ['a forwarded email', 'See what the shop sent me:\n\n---------- Forwarded message ---------\nFrom: Shop <orders@shop.com>\nDate: Mon, 5 May 2026 at 10:00\nSubject: Your order\nTo: <me@x.com>\n\nYour order 123 was cancelled.\n\nWhy??'],
    ['a date in an attribution-like line', 'Am 05.05.2026 schrieb ich Ihnen:\nBestellung 123 fehlt. Bitte prüfen.'],
  ])('keeps %s, which is the customer\'s own message', (_, text) => {
    expect(stripQuotedReply(text)).toBe(text);
  });
});

const message = (over: Partial<Message>): Message => ({
  id: '01A',
  conversationId: CONVERSATION,
  direction: 'outbound',
  sender: { type: 'agent', id: 'a1', name: 'Eve' },
  channel: 'web',
  text: 'hello',
  attachments: [],
  status: 'sent',
  private: false,
  createdAt: '2026-05-01T10:00:00.000Z',
  ...over,
});

describe('fallback email', () => {
  it('sends text and HTML with the unseen replies, context, a link and the signed reply-to', async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: 'm-1' });
    await sendReplyEmail({
      to: 'vera@example.com',
      conversation: { id: CONVERSATION },
      unseen: [message({ text: 'First <b>reply</b>' }), message({ id: '01B', text: 'Second reply' })],
      context: [message({ id: '009', direction: 'inbound', sender: { type: 'contact', id: 'c1' }, text: 'Where is my order?' })],
    });
    const input = ses.commandCalls(SendEmailCommand)[0]!.args[0].input;
    expect(input.Destination?.ToAddresses).toEqual(['vera@example.com']);
    expect(input.FromEmailAddress).toBe('support@example.com');
    expect(input.ReplyToAddresses).toEqual([replyAddress(CONVERSATION)]);
    // Marked automatic, so that a vacation responder does not answer it.
    expect(input.Content!.Simple!.Headers).toEqual(expect.arrayContaining([{ Name: 'Auto-Submitted', Value: 'auto-generated' }]));
    const body = input.Content!.Simple!.Body!;
    expect(input.Content!.Simple!.Subject!.Data).toBe('You have 2 new replies');
    expect(body.Text!.Data).toContain('Eve: First <b>reply</b>');
    expect(body.Text!.Data).toContain('> You: Where is my order?');
    expect(body.Text!.Data).toContain(`https://www.example.com/support?lang=en&conversation=${CONVERSATION}`);
    expect(body.Text!.Data).not.toContain('api.example.com');
    expect(body.Html!.Data).toContain('First &lt;b&gt;reply&lt;/b&gt;');
    expect(body.Html!.Data).not.toContain('<b>reply</b>');
  });

  it('offers replying by email only when no widget page is configured (the API has no page to show)', () => {
    vi.stubEnv('CONVERSA_WIDGET_URL', '');
    const email = renderReplyEmail({ to: 'x@example.com', conversation: { id: CONVERSATION }, unseen: [message({})], context: [] });
    expect(email.text).toContain('Reply to this email to continue the conversation.');
    expect(email.text).not.toContain('http');
    expect(email.html).not.toContain('href');
  });

  it('reads one reply in the singular', () => {
    expect(renderReplyEmail({ to: 'x@example.com', conversation: { id: CONVERSATION }, unseen: [message({})], context: [] }).subject).toBe('You have a new reply');
  });
});

describe('CSAT answers', () => {
  it.each([
    ['5', { score: 5 }],
    ['4 - quick and friendly', { score: 4, comment: 'quick and friendly' }],
    ['3/5 ok I guess', { score: 3, comment: 'ok I guess' }],
    ['  1: slow', { score: 1, comment: 'slow' }],
    ['5!', { score: 5 }],
    ['4 stars, great', { score: 4, comment: 'great' }],
    ['4-quick', { score: 4, comment: 'quick' }],
    ['2 stars: slow', { score: 2, comment: 'slow' }],
    ['⭐⭐⭐⭐', { score: 4 }],
    ['⭐️⭐️⭐️⭐️⭐️', { score: 5 }],
    ['⭐⭐⭐ ok I guess', { score: 3, comment: 'ok I guess' }],
    ['4️⃣', { score: 4 }],
    ['2️⃣ - slow', { score: 2, comment: 'slow' }],
  ])('reads %j', (text, expected) => {
    expect(parseCsatAnswer(text)).toEqual(expected);
  });

  it.each(['10', '0', '6', 'great', '4.5', 'I have another question', '3 items are missing from my order', '2nd order broken', '5 great service', '2:30 works for me?', '1-800-555-0100 called me', '⭐⭐⭐⭐⭐⭐', '⭐️⭐️⭐️⭐️⭐️⭐️', '6️⃣', '4️⃣ items are missing'])('does not read %j as a rating', (text) => {
    expect(parseCsatAnswer(text)).toBeUndefined();
  });
});

describe('a rating sent again', () => {
  const askedAt = '2026-11-02T09:00:00.000Z';
  const later = (ms: number) => new Date(Date.parse(askedAt) + ms).toISOString();
  const rated = (at: string) =>
    ({ id: 'c1', status: 'resolved', resolvedAt: askedAt, engagement: { csatAskedAt: askedAt, csatResolvedAt: askedAt }, csat: { score: 5, at } }) as unknown as ConversationRecord;

  it('is the newest rating right after the first (a second tap, a change of mind)', () => {
    const first = later(60_000);
    expect(csatRatingFor(rated(first), { text: '4', createdAt: later(90_000) })).toEqual({ score: 4 });
    expect(csatRatingFor(rated(first), { text: '2 - actually slow', createdAt: later(60_000 + CSAT_RERATE_WINDOW_MS) })).toEqual({ score: 2, comment: 'actually slow' });
  });

  it('is a customer back with something once the rating is a while old: "1. My refund never came" a day later reopens', () => {
    const first = later(60_000);
    expect(csatRatingFor(rated(first), { text: '1. My refund never came', createdAt: later(86_400_000) })).toBeUndefined();
    expect(csatRatingFor(rated(first), { text: '3', createdAt: later(60_000 + CSAT_RERATE_WINDOW_MS + 1000) })).toBeUndefined();
    // Not rated yet: the question waits for its first answer as long as before.
    const asked = { ...rated(first), csat: undefined } as ConversationRecord;
    expect(csatRatingFor(asked, { text: '1. My refund never came', createdAt: later(86_400_000) })).toEqual({ score: 1, comment: 'My refund never came' });
  });
});

describe('a visitor\'s own email in a message', () => {
  it.each([
    ['Sure: Nora.Smith@Example.com thanks', false, 'nora.smith@example.com'],
    ['Write to omar@example.com please', false, 'omar@example.com'],
    ['the invoice went to billing@acme.com but I never got it', false, undefined],
    ['the invoice went to billing@acme.com but I never got it', true, 'billing@acme.com'],
    ['no address here', true, undefined],
    ['(ana@example.co.uk).', true, 'ana@example.co.uk'],
    ['Write to me: omar@example.com.', false, 'omar@example.com'],
  ])('reads %j (asked: %s) as %j', (text, asked, expected) => {
    expect(ownEmailIn(text, asked)).toBe(expected);
  });

  // Each took minutes (a scan from every start to the end of the run) before the bounds.
  it.each([
    ['one long word', 'é'.repeat(250_000), undefined],
    ['long runs around each @', `${'a'.repeat(5_000)}@${'b'.repeat(5_000)}`.repeat(25), undefined],
    ['an address after a long word', `${'x'.repeat(250_000)} ana@example.com`, 'ana@example.com'],
    // Longer than an address may be: no address, rather than a cut one (another mailbox).
    ['a local part over 64 characters', `my address is ${'x'.repeat(70)}@example.com`, undefined],
    ['a domain over 253 characters', `my address is ana@${'d'.repeat(300)}.com`, undefined],
  ])('reads a message of %s, as long as a body may be, in one pass', (_, text, expected) => {
    expect(ownEmailIn(text, true)).toBe(expected);
  });
});

describe('autoresponder text', () => {
  it('says when the team is back outside hours', () => {
    const settings: Settings = defaultSettings();
    settings.businessHours = { enabled: true, timeZone: 'UTC', weekly: { mon: [{ open: '09:00', close: '17:00' }] }, holidays: [] };
    settings.autoresponder = { ...settings.autoresponder, outOfHoursMessage: 'Back {{nextOpen}}.', helpCenterUrl: 'https://help.example.com' };
    const sunday = new Date('2026-05-03T12:00:00Z');
    expect(autoresponseText(settings, sunday)).toBe('Back tomorrow at 09:00 (UTC).\n\nIn the meantime, our help center may have your answer: https://help.example.com');
    expect(autoresponseText(settings, new Date('2026-05-04T10:00:00Z'))).toContain(settings.autoresponder.message);
  });
});

/** An open conversation an agent answered with `reply` (the timers' usual subject). */
function answeredConversation(reply: Message, over: Partial<ConversationRecord>): ConversationRecord {
  return {
    id: CONVERSATION,
    channel: 'telegram',
    status: 'open',
    contact: { id: 'c1' },
    assigneeId: 'a1',
    unreadCount: 0,
    createdAt: '2026-04-30T10:00:00.000Z',
    updatedAt: reply.createdAt,
    lastMessageAt: reply.createdAt,
    lastInboundAt: '2026-05-01T09:00:00.000Z',
    firstReplyAt: reply.createdAt,
    handle: '12345',
    version: 3,
    ...over,
  };
}

describe('re-engagement across provider windows', () => {
  const now = new Date('2026-05-03T12:00:00Z');
  const reply = message({ id: '01REPLY', channel: 'whatsapp', createdAt: '2026-05-01T10:00:00.000Z' });

  function arrange(channel: ConversationRecord['channel'], lastInboundAt: string, template?: Settings['reengagement']['whatsappTemplate']) {
    const conversation = answeredConversation(reply, { channel, lastInboundAt, handle: '+15550001' });
    const settings = { ...defaultSettings(), timers: { emailFallbackDelaySeconds: 60, reengageAfterSeconds: 3600, autoResolveAfterSeconds: 999_999 } };
    if (template) settings.reengagement = { ...settings.reengagement, whatsappTemplate: template };
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });
    ddb.on(GetCommand, { Key: keys.settings() }).resolves({ Item: { settings } });
    ddb.on(GetCommand, { Key: keys.message(CONVERSATION, reply.id) }).resolves({ Item: { ...reply, channel } });
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({ Attributes: { ...conversation, version: 5 } });
    ddb.on(QueryCommand).resolves({ Items: [] });
    sendMessageBatch.mockResolvedValue({ Successful: [], Failed: [] });
    return conversation;
  }

  const storedMessages = () =>
    ddb
      .commandCalls(PutCommand)
      .map((c) => c.args[0].input.Item as Record<string, unknown>)
      .filter((item) => String(item.sk).startsWith('MSG#')) as unknown as Message[];

  it('inside the window sends the follow-up through the outbound queue', async () => {
    // Telegram has no service window: the customer's last message 51 h ago does not matter.
    arrange('telegram', '2026-05-01T09:00:00.000Z');
    await expect(runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now)).resolves.toBe('done');
    const [followUp] = storedMessages();
    expect(followUp).toMatchObject({ sender: { type: 'bot' }, private: false, status: 'queued', text: defaultSettings().reengagement.message });
    expect(sendMessageBatch.mock.calls).toHaveLength(1);
  });

  it('outside the WhatsApp window uses the approved template when one is configured', async () => {
    arrange('whatsapp', '2026-05-01T09:00:00.000Z', { name: 'follow_up', language: 'en_US' });
    await runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now);
    const [followUp] = storedMessages();
    expect(followUp).toMatchObject({ private: false, status: 'queued', template: { name: 'follow_up', language: 'en_US' } });
  });

  it('outside the WhatsApp window without a template sends nothing and leaves the agent a note', async () => {
    arrange('whatsapp', '2026-05-01T09:00:00.000Z');
    await runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now);
    const [note] = storedMessages();
    expect(note).toMatchObject({ private: true, sender: { type: 'bot' } });
    expect(note!.text).toMatch(/not sent/);
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it.each(['messenger', 'instagram'] as const)("past %s's 24 hours sends nothing under the HUMAN_AGENT tag (it is for people) and leaves the agent a note", async (channel) => {
    // The customer last wrote 51 h ago: within the tag's 7 days, past the standard 24 hours.
    arrange(channel, '2026-05-01T09:00:00.000Z');
    await runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now);
    const [note] = storedMessages();
    expect(note).toMatchObject({ private: true, sender: { type: 'bot' }, text: expect.stringMatching(/^Automatic follow-up not sent: .*HUMAN_AGENT/) });
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it('does nothing when the customer writes between the timer’s first read and its claim', async () => {
    const conversation = arrange('telegram', '2026-05-01T09:00:00.000Z');
    // The first read still shows the old message; the claim's fresh read has the customer's answer.
    ddb
      .on(GetCommand, { Key: keys.conversation(CONVERSATION) })
      .resolvesOnce({ Item: conversation })
      .resolves({ Item: { ...conversation, lastInboundAt: '2026-05-03T11:59:59.000Z', version: 4 } });
    await expect(runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now)).resolves.toBe('skipped');
    expect(storedMessages()).toEqual([]);
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it('does nothing for a reply the provider reported failed after it was sent (the customer never got it)', async () => {
    arrange('telegram', '2026-05-01T09:00:00.000Z');
    ddb.on(GetCommand, { Key: keys.message(CONVERSATION, reply.id) }).resolves({ Item: { ...reply, channel: 'telegram', status: 'failed' } });
    await expect(runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now)).resolves.toBe('skipped');
    expect(storedMessages()).toEqual([]);
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it('does nothing when the customer answered after the reply (a late or stale fire)', async () => {
    arrange('telegram', '2026-05-02T09:00:00.000Z');
    await expect(runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now)).resolves.toBe('skipped');
    expect(storedMessages()).toEqual([]);
  });
});

describe('timers that fire early (a delay raised since they were armed)', () => {
  const now = new Date('2026-05-03T12:00:00Z');
  const reply = message({ id: '01REPLY', channel: 'telegram', createdAt: '2026-05-01T10:00:00.000Z' });

  /** One conversation, the settings with these timers, and a Scheduler that takes every schedule. */
  function arrange(over: Partial<ConversationRecord>, timers: Partial<Settings['timers']>) {
    const conversation = answeredConversation(reply, over);
    const defaults = defaultSettings();
    const settings = { ...defaults, timers: { ...defaults.timers, ...timers } };
    ddb.on(GetCommand).resolves({});
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });
    ddb.on(GetCommand, { Key: keys.settings() }).resolves({ Item: { settings } });
    ddb.on(GetCommand, { Key: keys.message(CONVERSATION, reply.id) }).resolves({ Item: reply });
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    ddb.on(QueryCommand).resolves({ Items: [] });
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    return conversation;
  }

  /** The schedules armed for this kind: their at() and what they hand the engagement function. */
  const armed = (kind: string) =>
    scheduler
      .commandCalls(CreateScheduleCommand)
      .map((c) => c.args[0].input)
      .filter((input) => input.Name === `${kind}-${CONVERSATION}`)
      .map((input) => ({ at: input.ScheduleExpression, input: JSON.parse(input.Target!.Input!) as Record<string, unknown> }));
  const conversationWrites = () => ddb.commandCalls(PutCommand).filter((c) => c.args[0].input.Item?.pk === keys.conversation(CONVERSATION).pk);

  it('re-arms a follow-up for the rest of a raised delay, the same on a retried fire, and sends nothing yet', async () => {
    // Prepare: armed for 1 hour, raised to 3 days; the 1-hour schedule fires 50 hours after the reply
    arrange({}, { reengageAfterSeconds: 3 * 86400 });
    const fire = { kind: 'reengage' as const, conversationId: CONVERSATION, dueAt: '2026-05-01T11:00:00.000Z', messageId: reply.id };

    // Act: the Scheduler may deliver a fire twice
    await expect(runTimer(fire, now)).resolves.toBe('skipped');
    await expect(runTimer(fire, now)).resolves.toBe('skipped');

    // Assess
    const expected = { at: 'at(2026-05-04T10:00:00)', input: { kind: 'reengage', conversationId: CONVERSATION, dueAt: '2026-05-04T10:00:00.000Z', messageId: reply.id } };
    expect(armed('reengage')).toEqual([expected, expected]);
    expect(ddb.commandCalls(UpdateCommand)).toEqual([]);
    expect(ddb.commandCalls(PutCommand)).toEqual([]);
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it('does not re-arm a follow-up that a later message made stale (a newer reply armed its own)', async () => {
    arrange({ lastMessageAt: '2026-05-02T08:00:00.000Z' }, { reengageAfterSeconds: 3 * 86400 });
    await expect(runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now)).resolves.toBe('skipped');
    expect(scheduler.commandCalls(CreateScheduleCommand)).toEqual([]);
  });

  it('does not re-arm a follow-up already sent for that reply, nor one for a snoozed conversation', async () => {
    arrange({ engagement: { reengagedFor: reply.id } }, { reengageAfterSeconds: 3 * 86400 });
    await expect(runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now)).resolves.toBe('skipped');
    arrange({ status: 'snoozed', snoozedUntil: '2026-05-09T00:00:00.000Z' }, { reengageAfterSeconds: 3 * 86400 });
    await expect(runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now)).resolves.toBe('skipped');
    expect(scheduler.commandCalls(CreateScheduleCommand)).toEqual([]);
  });

  it('sends a follow-up that fires within a second of its time without re-arming it', async () => {
    arrange({}, { reengageAfterSeconds: 50 * 3600 });
    const almost = new Date(now.getTime() - 500);
    await expect(runTimer({ kind: 'reengage', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, almost)).resolves.toBe('done');
    expect(armed('reengage')).toEqual([]);
  });

  it('re-arms an auto-resolve for the rest of a raised delay, counted from the last message, and leaves the conversation open', async () => {
    // Prepare: idle since 11:00; the delay went from 1 hour to 2 hours after the schedule was armed
    arrange({ lastMessageAt: '2026-05-03T11:00:00.000Z' }, { autoResolveAfterSeconds: 7200 });

    // Act
    await expect(runTimer({ kind: 'autoResolve', conversationId: CONVERSATION, dueAt: now.toISOString() }, now)).resolves.toBe('skipped');

    // Assess
    expect(armed('autoResolve')).toEqual([{ at: 'at(2026-05-03T13:00:00)', input: { kind: 'autoResolve', conversationId: CONVERSATION, dueAt: '2026-05-03T13:00:00.000Z' } }]);
    expect(conversationWrites()).toEqual([]);
  });

  it.each(['autoResolve', 'reengage', 'emailFallback'] as const)('does nothing, due or not, for a conversation whose customer\'s erasure was asked for (%s)', async (kind) => {
    // Prepare: a web conversation due for every timer (an unseen, unanswered reply two days old), marked for erasure
    const erasing = { channel: 'web' as const, contact: { id: 'c1', email: 'vera@example.com' }, erasureRequestedAt: '2026-05-03T11:59:00.000Z' };
    arrange(erasing, { autoResolveAfterSeconds: 3600, reengageAfterSeconds: 3600, emailFallbackDelaySeconds: 60 });
    ddb.on(QueryCommand).resolves({ Items: [{ ...keys.message(CONVERSATION, reply.id), ...reply, channel: 'web' }] });
    ses.on(SendEmailCommand).resolves({ MessageId: 'm-1' });

    // Act
    await expect(runTimer({ kind, conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: reply.id }, now)).resolves.toBe('skipped');

    // Assess: nothing written in it, sent from it or emailed to its customer
    expect(conversationWrites()).toEqual([]);
    expect(ddb.commandCalls(PutCommand).filter((c) => String(c.args[0].input.Item?.sk).startsWith('MSG#'))).toEqual([]);
    expect(ses.commandCalls(SendEmailCommand)).toEqual([]);
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it('resolves nothing and asks nothing when the customer writes as the auto-resolve fires (between its read and its write)', async () => {
    // Prepare: idle for the whole hour when the run reads it; the customer's message lands before its write
    const idle = arrange({ lastMessageAt: '2026-05-03T10:00:00.000Z' }, { autoResolveAfterSeconds: 3600 });
    const written = { ...idle, lastMessageAt: '2026-05-03T11:59:59.900Z', lastInboundAt: '2026-05-03T11:59:59.900Z', version: idle.version + 1 };
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolvesOnce({ Item: idle }).resolvesOnce({ Item: idle }).resolves({ Item: written });
    ddb.on(PutCommand).rejectsOnce(new ConditionalCheckFailedException({ message: 'version moved', $metadata: {} })).resolves({});

    // Act
    await expect(runTimer({ kind: 'autoResolve', conversationId: CONVERSATION, dueAt: now.toISOString() }, now)).resolves.toBe('skipped');

    // Assess: the one write tried lost to the message; nothing resolved, no question stored or queued
    expect(conversationWrites().map((c) => c.args[0].input.Item?.status)).toEqual(['resolved']);
    expect(ddb.commandCalls(PutCommand).filter((c) => String(c.args[0].input.Item?.sk).startsWith('MSG#'))).toEqual([]);
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it.each([
    ['resolved', { status: 'resolved' as const, resolvedAt: '2026-05-03T11:30:00.000Z' }],
    ['snoozed', { status: 'snoozed' as const, snoozedUntil: '2026-05-09T00:00:00.000Z' }],
  ])('does not re-arm an auto-resolve for a %s conversation', async (_, over) => {
    arrange({ lastMessageAt: '2026-05-03T11:00:00.000Z', ...over }, { autoResolveAfterSeconds: 7200 });
    await expect(runTimer({ kind: 'autoResolve', conversationId: CONVERSATION, dueAt: now.toISOString() }, now)).resolves.toBe('skipped');
    expect(scheduler.commandCalls(CreateScheduleCommand)).toEqual([]);
  });

  it('re-arms an email fallback for the rest of a raised delay, counted from the newest unseen reply, and emails nothing yet', async () => {
    // Prepare: a web visitor left two replies unread; the delay went from 1 minute to 10 after they were armed
    const older = message({ id: '01REPLYA', channel: 'web', createdAt: '2026-05-03T11:50:00.000Z' });
    const newer = message({ id: '01REPLYB', channel: 'web', createdAt: '2026-05-03T11:59:00.000Z' });
    arrange({ channel: 'web', visitorId: 'v1', lastInboundAt: '2026-05-03T11:40:00.000Z' }, { emailFallbackDelaySeconds: 600 });
    ddb.on(QueryCommand).resolves({ Items: [newer, older].map((m) => ({ ...keys.message(CONVERSATION, m.id), ...m })) });

    // Act
    await expect(runTimer({ kind: 'emailFallback', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: newer.id }, now)).resolves.toBe('skipped');

    // Assess
    expect(armed('emailFallback')).toEqual([
      { at: 'at(2026-05-03T12:09:00)', input: { kind: 'emailFallback', conversationId: CONVERSATION, dueAt: '2026-05-03T12:09:00.000Z', messageId: newer.id } },
    ]);
    expect(ddb.commandCalls(UpdateCommand)).toEqual([]);
    expect(ses.commandCalls(SendEmailCommand)).toEqual([]);
  });

  it('emails nothing when the visitor comes back and reads the reply as the fallback fires (between its read and its claim)', async () => {
    // Prepare: unseen when the run reads the conversation; the visitor's read lands before the claim's read
    const unseen = message({ id: '01REPLYC', channel: 'web', createdAt: '2026-05-03T11:50:00.000Z' });
    const unread = arrange({ channel: 'web', contact: { id: 'c1', email: 'vera@example.com' }, lastInboundAt: '2026-05-03T11:40:00.000Z' }, { emailFallbackDelaySeconds: 60 });
    const read = { ...unread, engagement: { ...unread.engagement, visitorReadUpTo: unseen.id }, version: unread.version + 1 };
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolvesOnce({ Item: unread }).resolves({ Item: read });
    ddb.on(QueryCommand).resolves({ Items: [{ ...keys.message(CONVERSATION, unseen.id), ...unseen }] });
    ses.on(SendEmailCommand).resolves({ MessageId: 'm-1' });

    // Act
    await expect(runTimer({ kind: 'emailFallback', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: unseen.id }, now)).resolves.toBe('skipped');

    // Assess: nothing claimed, nothing emailed
    expect(conversationWrites()).toEqual([]);
    expect(ses.commandCalls(SendEmailCommand)).toEqual([]);
  });

  it('emails the reply without the rating question when an agent reopens the conversation as the fallback fires (between its read and its claim)', async () => {
    // Prepare: an agent's reply and, at the resolution right after, the rating question, both unseen;
    // the agent reopens the conversation (dropping the ask) after the run's first read
    const askedAt = '2026-05-03T11:50:01.000Z';
    const reply = message({ id: idFor(Date.parse('2026-05-03T11:50:00.000Z'), 'reply'), text: 'Done: refunded', createdAt: '2026-05-03T11:50:00.000Z' });
    const question = message({
      id: idFor(Date.parse(askedAt), `${CONVERSATION}#csat#${askedAt}`),
      sender: { type: 'bot', id: 'conversa', name: 'Conversa' },
      text: 'Rate us 1 to 5',
      attachments: [{ type: 'csat', url: '', name: 'rating 1-5' }],
      createdAt: askedAt,
    });
    const asking = arrange(
      { channel: 'web', status: 'resolved', resolvedAt: askedAt, contact: { id: 'c1', email: 'vera@example.com' }, lastInboundAt: '2026-05-03T11:40:00.000Z', engagement: { csatAskedAt: askedAt, csatResolvedAt: askedAt } },
      { emailFallbackDelaySeconds: 60 },
    );
    const reopened = { ...asking, status: 'open' as const, resolvedAt: undefined, engagement: {}, version: asking.version + 1 };
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolvesOnce({ Item: asking }).resolves({ Item: reopened });
    ddb.on(QueryCommand).resolves({ Items: [question, reply].map((m) => ({ ...keys.message(CONVERSATION, m.id), ...m })) });
    ses.on(SendEmailCommand).resolves({ MessageId: 'm-1' });

    // Act
    await expect(runTimer({ kind: 'emailFallback', conversationId: CONVERSATION, dueAt: now.toISOString(), messageId: question.id }, now)).resolves.toBe('done');

    // Assess: one email, with the reply and not the withdrawn question; the claim stops at the reply
    const sent = ses.commandCalls(SendEmailCommand).map((c) => c.args[0].input.Content!.Simple!.Body!.Text!.Data!);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toContain('Eve: Done: refunded');
    expect(sent[0]).not.toContain('Rate us 1 to 5');
    expect(sent[0]).not.toMatch(/to rate this conversation/i);
    expect(conversationWrites().map((c) => (c.args[0].input.Item as ConversationRecord).engagement?.emailedUpTo)).toEqual([reply.id]);
  });

  it('keeps a snoozed conversation asleep when its wake-up comes early, and re-arms it for snoozedUntil', async () => {
    arrange({ status: 'snoozed', snoozedUntil: '2026-05-03T12:00:05.000Z' }, {});
    await expect(runTimer({ kind: 'snoozeWake', conversationId: CONVERSATION, dueAt: '2026-05-03T12:00:05.000Z' }, now)).resolves.toBe('skipped');
    expect(armed('snoozeWake')).toEqual([{ at: 'at(2026-05-03T12:00:05)', input: { kind: 'snoozeWake', conversationId: CONVERSATION, dueAt: '2026-05-03T12:00:05.000Z' } }]);
    expect(conversationWrites()).toEqual([]);
  });

  it('wakes a snoozed conversation whose wake-up comes less than a second early (clock skew)', async () => {
    arrange({ status: 'snoozed', snoozedUntil: '2026-05-03T12:00:00.500Z' }, {});
    await expect(runTimer({ kind: 'snoozeWake', conversationId: CONVERSATION, dueAt: '2026-05-03T12:00:01.000Z' }, now)).resolves.toBe('done');
    expect(conversationWrites().map((c) => c.args[0].input.Item?.status)).toEqual(['open']);
    expect(armed('snoozeWake')).toEqual([]);
  });
});

describe('a snoozed conversation waking with an agent reply unanswered', () => {
  // The reply at 10:00 arms its follow-up for an hour later, 11:00.
  const reply = message({ id: '01REPLY', channel: 'telegram', createdAt: '2026-05-03T10:00:00.000Z' });

  /** Wakes the conversation (snoozed, then open again) at `now`, and returns the follow-up schedules armed. */
  async function wake(now: string, history: Message[] = [reply]) {
    vi.useFakeTimers({ now: new Date(now), toFake: ['Date'] });
    const defaults = defaultSettings();
    const settings = { ...defaults, timers: { ...defaults.timers, reengageAfterSeconds: 3600 } };
    ddb.on(GetCommand, { Key: keys.settings() }).resolves({ Item: { settings } });
    ddb.on(QueryCommand).resolves({ Items: history.map((m) => ({ ...keys.message(CONVERSATION, m.id), ...m })).reverse() });
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    const newest = history.at(-1)!;
    const failedReplyAt = newest.status === 'failed' ? { engagement: { failedReplyAt: newest.createdAt } } : {};
    const before = answeredConversation(newest, { status: 'snoozed', snoozedUntil: now, ...failedReplyAt });
    await engageOnConversationChange(before, { ...before, status: 'open', snoozedUntil: undefined, updatedAt: now });
    return scheduler
      .commandCalls(CreateScheduleCommand)
      .map((c) => c.args[0].input)
      .filter((input) => input.Name === `reengage-${CONVERSATION}`)
      .map((input) => ({ at: input.ScheduleExpression, input: JSON.parse(input.Target!.Input!) as Record<string, unknown> }));
  }

  it('arms neither a follow-up of an earlier reply nor the auto-resolve when the newest reply never reached the customer (failed)', async () => {
    // Prepare: a reply the customer got, then one the provider reported failed while it slept
    const failed = message({ id: '01REPLZ', channel: 'telegram', status: 'failed', createdAt: '2026-05-03T10:05:00.000Z' });

    // Act
    const followUps = await wake('2026-05-03T10:20:00.000Z', [reply, failed]);

    // Assess: the agent is to send it again; nothing speaks or resolves for them meanwhile
    expect(followUps).toEqual([]);
    expect(scheduler.commandCalls(CreateScheduleCommand).map((c) => c.args[0].input.Name)).toEqual([]);
  });

  it('keeps the follow-up when it was due after a snooze that ended before then, not the whole delay after the wake', async () => {
    // Act: snoozed at 10:10 for 10 minutes; the follow-up was not due yet when it woke
    const armed = await wake('2026-05-03T10:20:00.000Z');

    // Assess: still 11:00, as without the snooze (not 11:20)
    expect(armed).toEqual([{ at: 'at(2026-05-03T11:00:00)', input: { kind: 'reengage', conversationId: CONVERSATION, dueAt: '2026-05-03T11:00:00.000Z', messageId: reply.id } }]);
  });

  it('counts a follow-up that fell due while the conversation slept in full from the wake, not the moment the agent comes back', async () => {
    // Act: it slept through 11:00 and wakes at 12:30
    const armed = await wake('2026-05-03T12:30:00.000Z');

    // Assess: the whole delay after the wake (13:30), leaving the agent the time they chose to come back
    expect(armed).toEqual([{ at: 'at(2026-05-03T13:30:00)', input: { kind: 'reengage', conversationId: CONVERSATION, dueAt: '2026-05-03T13:30:00.000Z', messageId: reply.id } }]);
  });
});

describe('a web visitor marking a reply read', () => {
  it('takes the read of a reply that the frame\'s own read of the conversation did not show yet, and cancels the email fallback', async () => {
    // Prepare: the realtime function's read lags the reply's write; a consistent read has it
    const reply = message({ id: '01JD5Q8Z7V4R0M3X6N2B9C1K9R', createdAt: '2026-05-03T12:00:00.000Z' });
    const stale = answeredConversation(reply, { channel: 'web', visitorId: 'v1', firstReplyAt: undefined, lastInboundAt: '2026-05-03T11:59:00.000Z' });
    const fresh = { ...stale, firstReplyAt: reply.createdAt, version: 4 };
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: fresh });
    ddb.on(PutCommand).resolves({});
    // (read already: marking replies read is the e2e web chat test's)
    ddb.on(QueryCommand).resolves({ Items: [{ ...keys.message(CONVERSATION, reply.id), ...reply, status: 'read' }] });
    scheduler.on(DeleteScheduleCommand).resolves({});

    // Act
    await engageOnVisitorRead(stale, reply.id);

    // Assess
    const written = ddb.commandCalls(PutCommand).map((c) => c.args[0].input.Item as ConversationRecord);
    expect(written.map((c) => c.engagement?.visitorReadUpTo)).toEqual([reply.id]);
    expect(scheduler.commandCalls(DeleteScheduleCommand).map((c) => c.args[0].input.Name)).toEqual([`emailFallback-${CONVERSATION}`]);
  });

  it('writes nothing for a read before anyone on the team wrote (the greeting)', async () => {
    const greeting = message({ id: '01JD5Q8Z7V4R0M3X6N2B9C1K9G', sender: { type: 'bot', id: 'conversa' } });
    const conversation = answeredConversation(greeting, { channel: 'web', visitorId: 'v1', firstReplyAt: undefined });
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });
    await engageOnVisitorRead(conversation, greeting.id);
    expect(ddb.commandCalls(PutCommand)).toEqual([]);
    expect(scheduler.commandCalls(DeleteScheduleCommand)).toEqual([]);
  });
});

describe('a timer run that dies after its claim, retried', () => {
  const now = new Date('2026-05-03T12:00:00Z');
  const reply = message({ id: '01JD5Q0000REPLY0000000000A', channel: 'telegram', createdAt: '2026-05-01T10:00:00.000Z' });

  /** A table in memory: items by key, conditional puts as DynamoDB checks them. */
  function table(conversation: ConversationRecord) {
    const items = new Map<string, Record<string, unknown>>();
    const at = (key: { pk: unknown; sk: unknown }) => `${String(key.pk)}|${String(key.sk)}`;
    items.set(at(keys.conversation(CONVERSATION)), { ...conversation, ...keys.conversation(CONVERSATION) });
    items.set(at(keys.message(CONVERSATION, reply.id)), { ...reply, ...keys.message(CONVERSATION, reply.id) });
    const settings = { ...defaultSettings(), timers: { emailFallbackDelaySeconds: 60, reengageAfterSeconds: 3600, autoResolveAfterSeconds: 3600 } };
    items.set(at(keys.settings()), { ...keys.settings(), settings });
    ddb.on(GetCommand).callsFake((input: { Key: { pk: string; sk: string } }) => ({ Item: structuredClone(items.get(at(input.Key))) }));
    const failing = { messageWrites: 0 };
    ddb.on(PutCommand).callsFake((input: { Item: Record<string, unknown>; ConditionExpression?: string; ExpressionAttributeValues?: Record<string, unknown> }) => {
      if (String(input.Item.sk).startsWith('MSG#') && failing.messageWrites > 0) {
        failing.messageWrites -= 1;
        throw new Error('DynamoDB is throttling');
      }
      const existing = items.get(at(input.Item as { pk: string; sk: string }));
      const refused =
        (input.ConditionExpression?.includes('attribute_not_exists') && existing) ||
        (input.ConditionExpression === 'version = :v' && existing?.version !== input.ExpressionAttributeValues?.[':v']);
      if (refused) throw new ConditionalCheckFailedException({ message: 'condition', $metadata: {} });
      items.set(at(input.Item as { pk: string; sk: string }), structuredClone(input.Item));
      return {};
    });
    // The open conversation's fast path; a resolved one's refuses it, as DynamoDB would.
    ddb.on(UpdateCommand).callsFake((input: { Key: { pk: string; sk: string } }) => {
      const item = items.get(at(input.Key));
      if (item?.status !== 'open') throw new ConditionalCheckFailedException({ message: 'not open', $metadata: {} });
      return { Attributes: item };
    });
    // The messages newest first, a page of Limit read before the filter (as DynamoDB does); an agent's console.
    const lookupFailures = { agents: 0 };
    ddb.on(QueryCommand).callsFake(
      (input: { ExpressionAttributeValues: Record<string, unknown>; FilterExpression?: string; Limit?: number; ExclusiveStartKey?: { sk: string } }) => {
        const pk = input.ExpressionAttributeValues[':pk'];
        if (pk === keys.connectionPartition({ kind: 'agents' })) {
          if (lookupFailures.agents > 0) {
            lookupFailures.agents -= 1;
            throw new Error('DynamoDB is throttling');
          }
          return { Items: [{ connectionId: 'console-1', audience: { kind: 'agents' }, principalId: 'a1', role: 'agent', connectedAt: now.toISOString(), expiresAt: 4_102_444_800 }] };
        }
        if (pk !== keys.messagePartition(CONVERSATION)) return { Items: [] };
        const newestFirst = [...items.values()]
          .filter((item) => item.pk === pk && String(item.sk).startsWith(keys.messagePrefix) && String(item.sk) < (input.ExclusiveStartKey?.sk ?? '~'))
          .sort((a, b) => String(b.sk).localeCompare(String(a.sk)));
        const page = newestFirst.slice(0, input.Limit);
        const last = page.length < newestFirst.length ? page.at(-1) : undefined;
        return {
          Items: page.filter((item) => !input.FilterExpression || item.private === false).map((item) => structuredClone(item)),
          ...(last ? { LastEvaluatedKey: { pk: last.pk, sk: last.sk } } : {}),
        };
      },
    );
    ws.on(PostToConnectionCommand).resolves({});
    scheduler.on(DeleteScheduleCommand).resolves({});
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    const messages = () => [...items.values()].filter((item) => String(item.sk).startsWith('MSG#') && item.id !== reply.id) as unknown as Message[];
    const conversationNow = () => items.get(at(keys.conversation(CONVERSATION))) as unknown as ConversationRecord;
    /** A message written meanwhile (by the code under test's neighbours): stored, and its conversation write made. */
    const written = (m: Message) => {
      items.set(at(keys.message(CONVERSATION, m.id)), { ...m, ...keys.message(CONVERSATION, m.id) });
      Object.assign(conversationNow(), m.direction === 'outbound' ? { lastOutboundId: m.id } : { lastInboundId: m.id, lastInboundAt: m.createdAt, lastMessageAt: m.createdAt });
    };
    return {
      messages,
      conversationNow,
      written,
      failNextMessageWrite: () => (failing.messageWrites = 1),
      failNextAgentLookup: () => (lookupFailures.agents = 1),
    };
  }

  /** The frames the agent's console got. */
  const framesAtAgent = () => ws.commandCalls(PostToConnectionCommand).map((call) => JSON.parse(Buffer.from(call.args[0].input.Data as Uint8Array).toString()) as Record<string, any>);

  /** The jobs queued on the outbound queue, by message id. */
  const queuedJobs = () =>
    sendMessageBatch.mock.calls.flatMap((call) => (call[1] as BatchEntry[]).map((entry) => (JSON.parse(entry.MessageBody) as { messageId: string }).messageId));

  it('stores the follow-up its first run claimed but did not store, once, under the same id', async () => {
    // Prepare: the first run's write of the follow-up fails after its claim
    const { messages, conversationNow, failNextMessageWrite } = table(answeredConversation(reply, {}));
    failNextMessageWrite();
    const fire = { kind: 'reengage' as const, conversationId: CONVERSATION, dueAt: '2026-05-01T11:00:00.000Z', messageId: reply.id };

    // Act: the run fails, the Scheduler retries it, and delivers it once more later
    await expect(runTimer(fire, now)).rejects.toThrow(/throttling/);
    expect(conversationNow().engagement?.reengagedFor).toBe(reply.id);
    await expect(runTimer(fire, now)).resolves.toBe('done');
    await expect(runTimer(fire, now)).resolves.toBe('skipped');

    // Assess: one follow-up, queued (the last fire found it queued and queued it again: sent at most once)
    expect(messages()).toHaveLength(1);
    expect(messages()[0]).toMatchObject({ sender: { type: 'bot' }, status: 'queued', text: defaultSettings().reengagement.message });
    expect(queuedJobs()).toEqual([messages()[0]!.id, messages()[0]!.id]);
  });

  it('queues again a follow-up its first run stored but could not queue, and stores no second one', async () => {
    const { messages } = table(answeredConversation(reply, {}));
    sendMessageBatch.mockRejectedValueOnce(new Error('SQS is unavailable'));
    const fire = { kind: 'reengage' as const, conversationId: CONVERSATION, dueAt: '2026-05-01T11:00:00.000Z', messageId: reply.id };
    await expect(runTimer(fire, now)).rejects.toThrow(/unavailable/);
    await expect(runTimer(fire, now)).resolves.toBe('skipped');
    expect(messages()).toHaveLength(1);
    expect(queuedJobs()).toEqual([messages()[0]!.id, messages()[0]!.id]);
  });

  it('sends no follow-up on the retry once the customer has written since the claim', async () => {
    const { messages, conversationNow, failNextMessageWrite } = table(answeredConversation(reply, {}));
    failNextMessageWrite();
    const fire = { kind: 'reengage' as const, conversationId: CONVERSATION, dueAt: '2026-05-01T11:00:00.000Z', messageId: reply.id };
    await expect(runTimer(fire, now)).rejects.toThrow();
    Object.assign(conversationNow(), { lastInboundAt: '2026-05-03T11:59:30.000Z' });
    await expect(runTimer(fire, now)).resolves.toBe('skipped');
    expect(messages()).toEqual([]);
  });

  it('asks the CSAT question an auto-resolve resolved for but did not ask, once', async () => {
    // Prepare: idle for the whole period; the question's write fails after the resolution
    const { messages, conversationNow, failNextMessageWrite } = table(answeredConversation(reply, { lastMessageAt: '2026-05-03T10:00:00.000Z', lastInboundAt: '2026-05-03T10:00:00.000Z' }));
    failNextMessageWrite();
    const fire = { kind: 'autoResolve' as const, conversationId: CONVERSATION, dueAt: '2026-05-03T11:00:00.000Z' };

    // Act
    await expect(runTimer(fire, now)).rejects.toThrow(/throttling/);
    expect(conversationNow()).toMatchObject({ status: 'resolved', engagement: { csatAskedAt: now.toISOString() } });
    await expect(runTimer(fire, now)).resolves.toBe('done');
    await expect(runTimer(fire, now)).resolves.toBe('skipped');

    // Assess
    expect(messages()).toHaveLength(1);
    expect(messages()[0]).toMatchObject({ sender: { type: 'bot' }, text: defaultSettings().csat.question, status: 'queued' });
    expect(queuedJobs()).toEqual([messages()[0]!.id, messages()[0]!.id]);
  });

  it('asks nothing again for a conversation an earlier version resolved and asked (its question has an id of its own)', async () => {
    const askedAt = '2026-05-03T11:00:00.000Z';
    const earlier = message({ id: idFor(Date.parse(askedAt) + 40, 'a question stored under a random id'), channel: 'telegram', sender: { type: 'bot', id: 'conversa' }, status: 'queued', createdAt: askedAt });
    const { messages, written } = table(
      answeredConversation(reply, { status: 'resolved', resolvedAt: askedAt, engagement: { csatAskedAt: askedAt, csatResolvedAt: askedAt } }),
    );
    written(earlier);
    await expect(runTimer({ kind: 'autoResolve', conversationId: CONVERSATION, dueAt: askedAt }, now)).resolves.toBe('skipped');
    expect(messages().map((m) => m.id)).toEqual([earlier.id]);
    expect(queuedJobs()).toEqual([]);
  });

  it('asks the CSAT question on the retry when an agent wrote a private note since the resolution, once', async () => {
    // Prepare: the question's write fails after the resolution; an agent writes a note before the retry
    const { messages, written, failNextMessageWrite } = table(answeredConversation(reply, { lastMessageAt: '2026-05-03T10:00:00.000Z', lastInboundAt: '2026-05-03T10:00:00.000Z' }));
    failNextMessageWrite();
    const fire = { kind: 'autoResolve' as const, conversationId: CONVERSATION, dueAt: '2026-05-03T11:00:00.000Z' };
    await expect(runTimer(fire, now)).rejects.toThrow(/throttling/);
    const note = message({ id: idFor(now.getTime() + 5_000, 'a note'), channel: 'telegram', private: true, text: 'Customer called, all good', createdAt: new Date(now.getTime() + 5_000).toISOString() });
    written(note);

    // Act: the Scheduler's retry, and one more late fire
    const retried = await runTimer(fire, now);
    const late = await runTimer(fire, now);

    // Assess: the question, stored and queued once (the late fire queued it again: sent at most once)
    expect([retried, late]).toEqual(['done', 'skipped']);
    const questions = messages().filter((m) => !m.private);
    expect(questions.map((m) => [m.sender.type, m.text, m.status])).toEqual([['bot', defaultSettings().csat.question, 'queued']]);
    expect(queuedJobs()).toEqual([questions[0]!.id, questions[0]!.id]);
  });

  it('asks nothing on the retry once the customer has rated since the resolution', async () => {
    // Prepare: the question's write fails after the resolution; the customer's "5" comes before the retry
    const { messages, written, failNextMessageWrite } = table(answeredConversation(reply, { lastMessageAt: '2026-05-03T10:00:00.000Z', lastInboundAt: '2026-05-03T10:00:00.000Z' }));
    failNextMessageWrite();
    const fire = { kind: 'autoResolve' as const, conversationId: CONVERSATION, dueAt: '2026-05-03T11:00:00.000Z' };
    await expect(runTimer(fire, now)).rejects.toThrow(/throttling/);
    const rating = message({ id: idFor(now.getTime() + 5_000, 'a rating'), channel: 'telegram', direction: 'inbound', sender: { type: 'contact', id: 'c1' }, status: 'received', text: '5', createdAt: new Date(now.getTime() + 5_000).toISOString() });
    written(rating);

    // Act
    const retried = await runTimer(fire, now);

    // Assess
    expect(retried).toBe('skipped');
    expect(messages().map((m) => m.id)).toEqual([rating.id]);
    expect(queuedJobs()).toEqual([]);
  });

  it('shows the agents a note its first run stored instead of the follow-up but could not show, on the retry', async () => {
    // Prepare: WhatsApp past its 24 hours without a template (a note, not a follow-up); the lookup of
    // the agents' consoles fails once, after the note's write
    const { messages, failNextAgentLookup } = table(answeredConversation(reply, { channel: 'whatsapp', handle: '+15550001' }));
    failNextAgentLookup();
    const fire = { kind: 'reengage' as const, conversationId: CONVERSATION, dueAt: '2026-05-01T11:00:00.000Z', messageId: reply.id };
    await expect(runTimer(fire, now)).rejects.toThrow(/throttling/);
    expect(framesAtAgent()).toEqual([]);

    // Act
    const retried = await runTimer(fire, now);

    // Assess: one note, stored once and shown on the retry; nothing queued for the customer
    expect(retried).toBe('skipped');
    const [note, ...others] = messages();
    expect(others).toEqual([]);
    expect(note).toMatchObject({ private: true, text: expect.stringMatching(/^Automatic follow-up not sent/) });
    const shown = framesAtAgent().filter((f) => f.type === 'message.created');
    expect(shown.map((f) => [f.message.id, f.message.private, f.message.createdAt])).toEqual([[note!.id, true, note!.createdAt]]);
    expect(queuedJobs()).toEqual([]);
  });
});

describe('proactive messages', () => {
  /**
   * The table holds a contact for every id but those in `missing`, and an erasure record for those
   * in `erased` (DynamoDB leaves one key of each request unprocessed once).
   */
  function contactsExist(missing: string[] = [], erased: string[] = []): void {
    const retried = new Set<string>();
    const erasures = new Set(erased.map((id) => keys.erasure(createHash('sha256').update(id).digest('hex')).pk));
    ddb.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, { Keys: { pk: string; sk: string }[] }> }) => {
      const [table, { Keys }] = Object.entries(input.RequestItems)[0]!;
      const [first, ...rest] = Keys;
      const leftOver = first && !retried.has(first.pk) ? (retried.add(first.pk), [first]) : [];
      const answered = leftOver.length > 0 ? rest : Keys;
      const contacts = answered.filter((k) => k.pk.startsWith('CONTACT#')).map((k) => ({ ...k, id: k.pk.slice('CONTACT#'.length), handles: [] }));
      const items = [...contacts.filter((c) => !missing.includes(c.id)), ...answered.filter((k) => erasures.has(k.pk)).map((k) => ({ pk: k.pk }))];
      return { Responses: { [table]: items }, ...(leftOver.length > 0 ? { UnprocessedKeys: { [table]: { Keys: leftOver } } } : {}) };
    });
  }

  it('queues eight thousand recipients as paced jobs without a single provider call', async () => {
    // Prepare
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    contactsExist();
    ddb.on(UpdateCommand).resolves({});
    sendMessageBatch.mockImplementation(async (_queueUrl: string, entries: unknown[]) => ({ Successful: entries, Failed: [] }));
    const contactIds = Array.from({ length: 8_000 }, (_, i) => `C${i}`);

    // Act
    const result = await queueProactive({ contactIds, text: 'Sale!' }, { id: 'admin-1', role: 'admin' });

    // Assess
    expect(result.queued).toBe(8_000);
    expect(result.unknownContactIds).toBeUndefined();
    const batches = sendMessageBatch.mock.calls.map(([, entries]) => entries as BatchEntry[]);
    expect(batches).toHaveLength(800);
    expect(batches.every((b) => b.length <= 10)).toBe(true);
    const groups = new Set(batches.flat().map((e) => e.MessageGroupId));
    expect(groups.size).toBe(PROACTIVE_LANES);
    expect(new Set(batches.flat().map((e) => e.MessageDeduplicationId)).size).toBe(8_000);
    expect(fetchSpy).not.toHaveBeenCalled();
    const quota = ddb.commandCalls(UpdateCommand)[0]!.args[0].input;
    expect(quota.ExpressionAttributeValues).toMatchObject({ ':n': 8_000 });
    fetchSpy.mockRestore();
  });

  it('queues only the ids that are contacts, takes quota for those only, and answers the others back', async () => {
    contactsExist(['TYPO-1', 'GONE-2']);
    ddb.on(UpdateCommand).resolves({});
    sendMessageBatch.mockImplementation(async (_queueUrl: string, entries: unknown[]) => ({ Successful: entries, Failed: [] }));

    const result = await queueProactive({ contactIds: ['C1', 'TYPO-1', 'C2', 'GONE-2'], text: 'Sale!' }, { id: 'admin-1', role: 'admin' });

    expect(result).toMatchObject({ queued: 2, unknownContactIds: ['TYPO-1', 'GONE-2'] });
    const queued = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]).map((e) => JSON.parse(e.MessageBody).proactive.contactId);
    expect(queued.sort()).toEqual(['C1', 'C2']);
    expect(ddb.commandCalls(UpdateCommand)[0]!.args[0].input.ExpressionAttributeValues).toMatchObject({ ':n': 2 });
  });

  it('answers contacts whose erasure was asked for back as erased, running or done, and queues and charges them nothing', async () => {
    // Prepare: E1's erasure is running (its contact item still there), E2's is done (its item gone, its record left)
    contactsExist(['E2'], ['E1', 'E2']);
    ddb.on(UpdateCommand).resolves({});
    sendMessageBatch.mockImplementation(async (_queueUrl: string, entries: unknown[]) => ({ Successful: entries, Failed: [] }));

    // Act
    const result = await queueProactive({ contactIds: ['E1', 'C1', 'E2'], text: 'Sale!' }, { id: 'admin-1', role: 'admin' });
    const onlyErased = queueProactive({ contactIds: ['E1'], text: 'Sale!' }, { id: 'admin-1', role: 'admin' });

    // Assess
    expect(result).toEqual({ batchId: expect.any(String), queued: 1, erasedContactIds: ['E1', 'E2'] });
    const queued = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]).map((e) => JSON.parse(e.MessageBody).proactive.contactId);
    expect(queued).toEqual(['C1']);
    expect(ddb.commandCalls(UpdateCommand)[0]!.args[0].input.ExpressionAttributeValues).toMatchObject({ ':n': 1 });
    await expect(onlyErased).rejects.toMatchObject({ status: 404, code: 'not_found' });
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
  });

  /** Claims (conditional puts) kept and read back as DynamoDB would, and every queue send taken. */
  const storeClaimsAsDynamoDb = () => {
    const claims = new Map<string, Record<string, unknown>>();
    ddb.on(PutCommand).callsFake((input: { Item: Record<string, unknown> }) => {
      const key = `${String(input.Item.pk)}|${String(input.Item.sk)}`;
      if (claims.has(key)) throw new ConditionalCheckFailedException({ message: 'exists', $metadata: {} });
      claims.set(key, input.Item);
      return {};
    });
    ddb.on(GetCommand).callsFake((input: { Key: { pk: string; sk: string } }) => ({ Item: claims.get(`${input.Key.pk}|${input.Key.sk}`) }));
    ddb.on(UpdateCommand).resolves({});
    sendMessageBatch.mockImplementation(async (_queueUrl: string, entries: unknown[]) => ({ Successful: entries, Failed: [] }));
  };

  it("takes a request retried with its clientRequestId after a recipient's erasure was asked for as the same request", async () => {
    // Prepare: the first attempt's claim stored as DynamoDB would
    storeClaimsAsDynamoDb();
    const request = { contactIds: ['C1', 'C2'], text: 'Sale!', clientRequestId: 'campaign-43' };
    const admin = { id: 'admin-1', role: 'admin' as const };
    contactsExist();
    const first = await queueProactive(request, admin);

    // Act: C2's erasure asked for before the retry
    contactsExist([], ['C2']);
    const retried = await queueProactive(request, admin);

    // Assess: the same batch, C2 answered back, the quota taken once
    expect(retried).toEqual({ batchId: first.batchId, queued: 1, erasedContactIds: ['C2'] });
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
  });

  it('takes a request retried with its clientRequestId after a recipient was merged into another (no longer a contact) as the same request', async () => {
    // Prepare: the first attempt's claim stored as DynamoDB would
    storeClaimsAsDynamoDb();
    const request = { contactIds: ['C1', 'C2'], text: 'Sale!', clientRequestId: 'campaign-44' };
    const admin = { id: 'admin-1', role: 'admin' as const };
    contactsExist();
    const first = await queueProactive(request, admin);

    // Act: C2 is no contact any more by the retry
    contactsExist(['C2']);
    const retried = await queueProactive(request, admin);

    // Assess: the same batch, C2 answered back, the quota taken once; another list is still another request
    expect(retried).toEqual({ batchId: first.batchId, queued: 1, unknownContactIds: ['C2'] });
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
    await expect(queueProactive({ ...request, contactIds: ['C1'] }, admin)).rejects.toMatchObject({ status: 409, code: 'client_request_id_reused' });
  });

  it('answers a contact merged into another back, as one no longer to write to', async () => {
    contactsExist();
    ddb.on(BatchGetCommand).resolves({ Responses: { 'conversa-unit': [{ pk: 'CONTACT#C1', sk: 'CONTACT', id: 'C1', handles: [] }, { pk: 'CONTACT#OLD', sk: 'CONTACT', id: 'OLD', handles: [], mergedInto: 'C1' }] } });
    ddb.on(UpdateCommand).resolves({});
    sendMessageBatch.mockImplementation(async (_queueUrl: string, entries: unknown[]) => ({ Successful: entries, Failed: [] }));

    const result = await queueProactive({ contactIds: ['C1', 'OLD'], text: 'Sale!' }, { id: 'admin-1', role: 'admin' });

    expect(result).toMatchObject({ queued: 1, unknownContactIds: ['OLD'] });
  });

  it('with channel web, queues only contacts with a web visitor (on their list or an item of their own), answers the others back and charges them no quota', async () => {
    // Prepare: W1 started on the web; W2 on WhatsApp, its web visitor linked later; P1 only ever on WhatsApp
    const contact = (id: string, handles: { channel: string; handle: string }[]) => ({ pk: `CONTACT#${id}`, sk: 'CONTACT', id, handles });
    ddb.on(BatchGetCommand).resolves({
      Responses: {
        'conversa-unit': [
          contact('W1', [{ channel: 'web', handle: 'V1' }]),
          contact('W2', [{ channel: 'whatsapp', handle: '+15550001' }]),
          contact('P1', [{ channel: 'whatsapp', handle: '+15550002' }, { channel: 'email', handle: 'p1@example.com' }]),
        ],
      },
    });
    ddb.on(QueryCommand).resolves({ Items: [] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':pk': 'CONTACT#W2', ':visitor': 'VISITOR#' } }).resolves({ Items: [{ pk: 'CONTACT#W2' }] });
    ddb.on(UpdateCommand).resolves({});
    sendMessageBatch.mockImplementation(async (_queueUrl: string, entries: unknown[]) => ({ Successful: entries, Failed: [] }));
    const admin = { id: 'admin-1', role: 'admin' as const };

    // Act
    const result = await queueProactive({ contactIds: ['W1', 'W2', 'P1'], text: 'Sale!', channel: 'web' }, admin);
    const onlyWhatsapp = queueProactive({ contactIds: ['P1'], text: 'Sale!', channel: 'web' }, admin);
    const byEmail = queueProactive({ contactIds: ['P1'], text: 'Sale!', channel: 'email' }, admin);

    // Assess
    expect(result).toMatchObject({ queued: 2, unreachableContactIds: ['P1'] });
    const queued = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]).map((e) => JSON.parse(e.MessageBody).proactive.contactId);
    expect(queued.sort()).toEqual(['W1', 'W2']);
    expect(ddb.commandCalls(UpdateCommand)[0]!.args[0].input.ExpressionAttributeValues).toMatchObject({ ':n': 2 });
    await expect(onlyWhatsapp).rejects.toMatchObject({ status: 422, code: 'not_reachable' });
    // No conversation is ever on email (a reply by email joins the web conversation it answers).
    await expect(byEmail).rejects.toMatchObject({ status: 422, code: 'not_reachable' });
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
  });

  it('answers 404 and takes no quota when no id is a contact', async () => {
    contactsExist(['TYPO-1']);
    await expect(queueProactive({ contactIds: ['TYPO-1'], text: 'hi' }, { id: 'admin-1', role: 'admin' })).rejects.toMatchObject({ status: 404 });
    expect(ddb.commandCalls(UpdateCommand)).toEqual([]);
    expect(sendMessageBatch).not.toHaveBeenCalled();
  });

  it('sends a campaign job that would reach the DLQ untried (skipped behind failing sends) to the end of its lane as a new job', async () => {
    // Prepare: one queued job, as the consumer got it
    contactsExist();
    ddb.on(UpdateCommand).resolves({});
    sendMessageBatch.mockImplementation(async (_queueUrl: string, entries: unknown[]) => ({ Successful: entries, Failed: [] }));
    await queueProactive({ contactIds: ['C1'], text: 'Sale!' }, { id: 'admin-1', role: 'admin' });
    const [queued] = sendMessageBatch.mock.calls[0]![1] as BatchEntry[];
    sendMessageBatch.mockClear();

    // Act
    const done = await abandonOutbound(JSON.parse(queued!.MessageBody), 'not sent: the provider kept refusing the messages before it');

    // Assess: the same recipient and text, in the same lane, under an id SQS will not drop as a copy
    expect(done).toBe(true);
    const [again] = sendMessageBatch.mock.calls[0]![1] as BatchEntry[];
    expect(JSON.parse(again!.MessageBody).proactive).toEqual(JSON.parse(queued!.MessageBody).proactive);
    expect(again!.MessageGroupId).toBe(queued!.MessageGroupId);
    expect(again!.MessageDeduplicationId).not.toBe(queued!.MessageDeduplicationId);
  });

  it('queues the same batch again, and takes the quota once, for a request retried with its clientRequestId', async () => {
    // Prepare: the request's claim is stored as DynamoDB would; one of its slices fails to queue
    contactsExist();
    const claims = new Map<string, Record<string, unknown>>();
    ddb.on(PutCommand).callsFake((input: { Item: Record<string, unknown> }) => {
      const key = `${String(input.Item.pk)}|${String(input.Item.sk)}`;
      if (claims.has(key)) throw new ConditionalCheckFailedException({ message: 'exists', $metadata: {} });
      claims.set(key, input.Item);
      return {};
    });
    ddb.on(GetCommand).callsFake((input: { Key: { pk: string; sk: string } }) => ({ Item: claims.get(`${input.Key.pk}|${input.Key.sk}`) }));
    ddb.on(UpdateCommand).resolves({});
    let calls = 0;
    sendMessageBatch.mockImplementation(async (_queueUrl: string, entries: unknown[]) => {
      calls += 1;
      return calls === 3 ? { Successful: [], Failed: [{ Id: '0', Code: 'InternalError', SenderFault: false }] } : { Successful: entries, Failed: [] };
    });
    const request = { contactIds: Array.from({ length: 100 }, (_, i) => `C${i}`), text: 'Sale!', clientRequestId: 'campaign-42' };
    const admin = { id: 'admin-1', role: 'admin' as const };

    // Act
    await expect(queueProactive(request, admin)).rejects.toThrow(/SQS refused/);
    const first = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]);
    sendMessageBatch.mockClear();
    const retried = await queueProactive(request, admin);

    // Assess: every job again under the ids of the first attempt; one quota take
    const again = sendMessageBatch.mock.calls.flatMap(([, entries]) => entries as BatchEntry[]);
    expect(retried.queued).toBe(100);
    expect(new Set(again.map((e) => e.MessageDeduplicationId)).size).toBe(100);
    expect(first.every((e) => again.some((a) => a.MessageDeduplicationId === e.MessageDeduplicationId))).toBe(true);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
    // The same id for another request (other text): refused, nothing queued, no quota taken.
    sendMessageBatch.mockClear();
    await expect(queueProactive({ ...request, text: 'Another sale!' }, admin)).rejects.toMatchObject({ status: 409, code: 'client_request_id_reused' });
    expect(sendMessageBatch).not.toHaveBeenCalled();
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
  });

  it('answers 429 once the hourly quota is used up', async () => {
    contactsExist();
    ddb.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }));
    await expect(queueProactive({ contactIds: ['C1'], text: 'hi' }, { id: 'admin-1', role: 'admin' })).rejects.toMatchObject({ status: 429, code: 'rate_limited' });
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
    expect(HOURLY_RECIPIENT_LIMIT).toBeGreaterThanOrEqual(MAX_RECIPIENTS);
  });
});

describe('settings stored under older, laxer rules', () => {
  it('drops what the rules now refuse, so that saving another section still works', async () => {
    // Prepare: a holiday that is not on the calendar and a mailto: help link, both once accepted
    const old = defaultSettings();
    old.businessHours.holidays = ['2025-02-29', '2025-12-25'];
    old.autoresponder.helpCenterUrl = 'mailto:help@example.com';
    // Texts for customers that show nothing (a blank greeting went out as an empty bubble)
    old.autoresponder.message = '   ';
    old.autoresponder.outOfHoursMessage = '\u200b';
    old.reengagement.message = '\n';
    old.csat.question = ' \u200d ';
    ddb.on(GetCommand, { Key: keys.settings() }).resolves({ Item: { ...keys.settings(), settings: old } });
    ddb.on(PutCommand).resolves({});

    // Act
    const saved = await saveSettings({ capacity: { live: 5 } });

    // Assess
    const defaults = defaultSettings();
    expect(saved.capacity.live).toBe(5);
    expect(saved.businessHours.holidays).toEqual(['2025-12-25']);
    expect(saved.autoresponder).not.toHaveProperty('helpCenterUrl');
    expect([saved.autoresponder.message, saved.autoresponder.outOfHoursMessage, saved.reengagement.message, saved.csat.question]).toEqual([
      defaults.autoresponder.message,
      defaults.autoresponder.outOfHoursMessage,
      defaults.reengagement.message,
      defaults.csat.question,
    ]);
  });
});
