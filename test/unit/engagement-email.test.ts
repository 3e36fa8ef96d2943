/**
 * Email replies coming back: MIME parsing and the SES-over-SNS event the deployed engagement
 * function receives, through to the inbound queue, or to a private note for an email from another
 * address (mocked SQS and DynamoDB).
 */
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { EMAIL_NOTE_LIMIT, NOTE_EMAIL_CHARS, otherSenderNote, otherSenderNoteScope, receiveLocalEmail, renderReplyEmail, replyAddress, senderAddress, textFromMime } from '../../src/domain/email';
import type { Message } from '../../src/domain/types';
import { handler } from '../../functions/engagement/handler';
import { keys } from '../../src/store/keys';
import type { BatchEntry } from '../../src/aws/sqs-send';
import { stubEmailEnv } from '../support/email-env';

/** The queue sender, faked: what would have been sent to SQS. */
const sendMessageBatch = vi.hoisted(() => vi.fn());
vi.mock('../../src/aws/sqs-send', async (original) => ({ ...(await original<typeof import('../../src/aws/sqs-send')>()), sendMessageBatch }));
const ddb = mockClient(DynamoDBDocumentClient);
const ws = mockClient(ApiGatewayManagementApiClient);
const s3 = mockClient(S3Client);
const CONVERSATION = '01JD5Q8Z7V4R0M3X6N2B9C1K8T';

beforeEach(() => {
  stubEmailEnv();
  s3.reset();
  sendMessageBatch.mockReset().mockResolvedValue({ Successful: [], Failed: [] });
  ddb.reset();
  ws.reset();
});
afterEach(() => vi.unstubAllEnvs());

const multipart = [
  'From: Vera <vera@example.com>',
  'Content-Type: multipart/alternative;',
  ' boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Merci, =C3=A7a marche =',
  'tr=C3=A8s bien!',
  '',
  'On Tue, Support wrote:',
  '> old',
  '--b1',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>Merci</p>',
  '--b1--',
  '',
].join('\r\n');

describe('fallback email', () => {
  const reply = (text: string, attachments: Message['attachments']): Message => ({
    id: '01JD5Q8Z7V4R0M3X6N2B9C1K9A', conversationId: CONVERSATION, direction: 'outbound', sender: { type: 'agent', id: 'ana', name: 'Ana' },
    channel: 'web', text, attachments, status: 'sent', private: false, createdAt: '2026-11-26T10:00:00.000Z',
  });

  it('names the files a missed reply carried, which the visitor opens in the chat', () => {
    const file = { type: 'file', url: 'conversa-media://media/agent/ana/01JD5Q8Z7V4R0M3X6N2B9C1K9B', name: 'invoice <2>.pdf' };
    const email = renderReplyEmail({ to: 'vera@example.com', conversation: { id: CONVERSATION }, unseen: [reply('', [file]), reply('See both', [file, { ...file, name: undefined, type: 'image' }])], context: [] });

    expect(email.text).toContain('Ana: [a file: invoice <2>.pdf]');
    expect(email.text).toContain('Ana: See both\n[2 files: invoice <2>.pdf, image]');
    expect(email.html).toContain('[a file: invoice &lt;2&gt;.pdf]');
    expect(email.text).not.toContain('conversa-media://');
  });

  it('quotes every line of an earlier message shown for context, its files and a longer text', () => {
    const visitor = { ...reply('My screenshot', [{ type: 'image', url: 'conversa-media://media/visitor/v1/01JD5Q8Z7V4R0M3X6N2B9C1K9C', name: 'shot.png' }]), direction: 'inbound' as const };
    const twoLines = { ...reply('Line one\nLine two', []), direction: 'inbound' as const };
    const email = renderReplyEmail({ to: 'vera@example.com', conversation: { id: CONVERSATION }, unseen: [reply('Got it', [])], context: [visitor, twoLines] });

    expect(email.text).toContain('> You: My screenshot\n> [a file: shot.png]\n> You: Line one\n> Line two\n');
  });

  it('quotes a context line broken as \\r\\n once, leaving no bare CR', () => {
    const crlf = { ...reply('Line one\r\nLine two', []), direction: 'inbound' as const };
    const email = renderReplyEmail({ to: 'vera@example.com', conversation: { id: CONVERSATION }, unseen: [reply('Got it', [])], context: [crlf] });

    expect(email.text).toContain('> You: Line one\n> Line two\n');
    expect(email.text).not.toMatch(/\r(?!\n)/);
  });
});

describe('MIME text', () => {
  it('takes the text/plain part of a multipart email and decodes quoted-printable UTF-8', () => {
    expect(textFromMime(multipart)).toContain('Merci, ça marche très bien!');
  });

  it('decodes base64 and falls back to HTML without tags', () => {
    const b64 = `Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n${Buffer.from('Hallo Welt').toString('base64')}\n`;
    expect(textFromMime(b64)?.trim()).toBe('Hallo Welt');
    expect(textFromMime('Content-Type: text/html\n\n<p>Hi <b>there</b></p>')?.trim()).toBe('Hi there');
  });

  it('decodes each charset by its own table, and leaves text the mail carried decoded as it is', () => {
    const qp = 'Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: quoted-printable\n\nI=92m =93ok=94';
    expect(textFromMime(qp)).toBe('I’m “ok”');
    expect(textFromMime('Content-Type: text/plain; charset=utf-8\n\nGrüße, ça va €')).toBe('Grüße, ça va €');
    const latin9 = `Content-Type: text/plain; charset=iso-8859-15\nContent-Transfer-Encoding: base64\n\n${Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xa4]).toString('base64')}`;
    expect(textFromMime(latin9)).toBe('café €');
  });

  it('joins quoted-printable soft breaks that carry padding before the line end, and drops that padding', () => {
    const qp = 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nThe parcel never arrived, could you =  \r\ncheck it?   \r\nVera =C3=A7a';
    expect(textFromMime(qp.replace(/\n/g, '\r\n'))).toBe('The parcel never arrived, could you check it?\nVera ça');
  });

  it('reads format=flowed text as its paragraphs, with DelSp and stuffed spaces, and keeps its quotes and signature apart', () => {
    const flowed = [
      'Content-Type: text/plain; charset=utf-8; format=flowed', '',
      'The parcel never arrived, could ', 'you check it?', ' From Lisbon', '', '-- ', 'Vera', '> On Tue you ', '> wrote: hi',
    ].join('\r\n');
    expect(textFromMime(flowed)).toBe('The parcel never arrived, could you check it?\nFrom Lisbon\n\n-- \nVera\n> On Tue you wrote: hi');
    const delsp = 'Content-Type: text/plain; format=flowed; delsp=yes\n\n\u3053\u3093\u306b \n\u3061\u306f';
    expect(textFromMime(delsp)).toBe('\u3053\u3093\u306b\u3061\u306f');
    // Without format=flowed, a trailing space is the line's own.
    expect(textFromMime('Content-Type: text/plain\n\nline one \nline two')).toBe('line one \nline two');
  });

  it('reads an HTML-only email without its styles, scripts and quoted earlier email, a line per block', () => {
    const html = 'Content-Type: text/html\n\n<style>p{color:red}</style><div>Hi</div><div>there</div><blockquote>You wrote: old</blockquote><SCRIPT>x()</SCRIPT>';
    expect(textFromMime(html)?.trim()).toBe('Hi\nthere');
  });

  it('reads an HTML-only email\'s character references and leaves out its title', () => {
    const html = 'Content-Type: text/html; charset=utf-8\n\n<html><head><title>Re: You have a new reply</title></head><body><p>I&#8217;m in &Uuml;ber&shy;lingen &#x2014; &eacute;t&eacute;, caf&#233; &amp;lt;3 &bogus;</p></body></html>';
    expect(textFromMime(html)?.trim()).toBe('I’m in Überlingen — été, café &lt;3 &bogus;');
  });

  it('reads the words the customer wrote, not a text file they attached under an HTML-only body', () => {
    const mixed = [
      'Content-Type: multipart/mixed; boundary="m"', '',
      '--m', 'Content-Type: text/html; charset=utf-8', '', '<p>The log is attached</p>',
      '--m', 'Content-Type: text/plain; name="error.log"', 'Content-Disposition: attachment; filename="error.log"', '', 'ERROR 42 at line 7',
      '--m--', '',
    ].join('\r\n');
    expect(textFromMime(mixed)?.trim()).toBe('The log is attached');
  });

  it('gives up on multiparts nested deeper than any mail client makes them', () => {
    let mime = 'Content-Type: text/plain\n\nhi\n';
    for (let i = 2999; i >= 0; i--) mime = `Content-Type: multipart/mixed; boundary="b${i}"\n\n--b${i}\n${mime}--b${i}--\n`;
    expect(textFromMime(mime)).toBeUndefined();
  });

  it('strips tags in one pass over a hostile body (an unclosed `<` run took seconds, quadratically)', () => {
    // Anyone may mail the reply domain, and the body is parsed before the address is checked.
    const hostile = `Content-Type: text/html\n\n${'<'.repeat(145_000)}hello`;
    expect(textFromMime(hostile)?.endsWith('hello')).toBe(true);
  });
});

describe('an email from another sender', () => {
  it('is a note naming the sender over the new text, cut by code point past its cap, saying how much was left out', () => {
    expect(otherSenderNote('mallory@example.net', 'Refund me')).toMatch(/^Email from mallory@example\.net, not the address this conversation was emailed at: .*\n\nRefund me$/s);
    // A 320-character address (the longest taken) over a 200 000-character email: within an agent note's 4096.
    const longest = `${'m'.repeat(64)}@${'d'.repeat(251)}.net`;
    // Emoji take two UTF-16 units, as a note's 4096 are counted: the cap falls inside one, which is left out whole.
    const emoji = `x${'😀'.repeat(NOTE_EMAIL_CHARS / 2 + 10)}`;
    const note = otherSenderNote(longest, emoji);
    expect(note.length).toBeLessThanOrEqual(4096);
    expect(note).toContain(`\n\nx${'😀'.repeat(NOTE_EMAIL_CHARS / 2 - 1)}…\n[cut: 11 more characters]`);
    expect(note).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(otherSenderNote(longest, 'x'.repeat(200_000)).length).toBeLessThanOrEqual(4096);
    expect(otherSenderNote('a@example.com', 'x'.repeat(NOTE_EMAIL_CHARS))).not.toContain('[cut:');
  });

  it('is recognised again by its Message-ID, else by its sender and text, within its conversation', () => {
    const scope = (conversationId: string, address: string, email: { messageId?: string; text: string }) => otherSenderNoteScope(conversationId, address, email);
    const other = '01JD5Q8Z7V4R0M3X6N2B9C1K8V';
    expect(scope(CONVERSATION, 'm@example.net', { messageId: '<1@x>', text: 'a' })).toBe(scope(CONVERSATION, 'm@example.net', { messageId: '<1@x>', text: 'a' }));
    expect(scope(CONVERSATION, 'm@example.net', { messageId: '<1@x>', text: 'a' })).not.toBe(scope(CONVERSATION, 'm@example.net', { messageId: '<2@x>', text: 'a' }));
    expect(scope(CONVERSATION, 'm@example.net', { messageId: '<1@x>', text: 'a' })).not.toBe(scope(other, 'm@example.net', { messageId: '<1@x>', text: 'a' }));
    expect(scope(CONVERSATION, 'm@example.net', { text: 'a' })).toBe(scope(CONVERSATION, 'm@example.net', { text: 'a' }));
    expect(scope(CONVERSATION, 'm@example.net', { text: 'a' })).not.toBe(scope(CONVERSATION, 'n@example.net', { text: 'a' }));
    expect(scope(CONVERSATION, 'm@example.net', { text: 'a' })).not.toBe(scope(CONVERSATION, 'm@example.net', { text: 'b' }));
    // A Message-ID of any length makes a key of bounded length.
    expect(scope(CONVERSATION, 'm@example.net', { messageId: `<${'x'.repeat(990)}@x>`, text: 'a' }).length).toBeLessThan(80);
  });
});

describe('engagement handler', () => {
  const sesEvent = (to: string, content: string, verdict = 'PASS', subject = 'Re: reply', from = 'Vera <vera@example.com>', dmarc = 'PASS') => ({
    Records: [
      {
        Sns: {
          Message: JSON.stringify({
            notificationType: 'Received',
            mail: { messageId: 'ses-1', source: senderAddress(from), commonHeaders: { from: [from], to: [to], subject, messageId: '<m1@example.com>' } },
            receipt: { recipients: [to], spamVerdict: { status: verdict }, virusVerdict: { status: 'PASS' }, dmarcVerdict: { status: dmarc } },
            content,
          }),
        },
      },
    ],
  });

  it('queues an SES email reply as an inbound message on the conversation its address names', async () => {
    // Prepare
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: { id: CONVERSATION, channel: 'web', handle: 'VISITOR1', contact: { id: 'K1', email: 'vera@example.com' }, version: 1 } });
    sendMessageBatch.mockResolvedValue({ Successful: [], Failed: [] });

    // Act
    const out = await handler(sesEvent(replyAddress(CONVERSATION), multipart));

    // Assess
    expect(out.outcome).toBe('queued 1 of 1');
    const entry = (sendMessageBatch.mock.calls[0]![1] as BatchEntry[])[0]!;
    const event = JSON.parse(entry.MessageBody!);
    expect(event).toMatchObject({ kind: 'message', channel: 'web', handle: 'VISITOR1', conversationId: CONVERSATION, providerMessageId: 'email:<m1@example.com>' });
    expect(event.text).toBe('Merci, ça marche très bien!');
    expect(event.attachments).toEqual([]);
    // A reply without files costs what it did: no bucket call, the table only read.
    expect(s3.calls()).toEqual([]);
    expect(ddb.calls().map((call) => call.args[0].constructor.name)).toEqual(['GetCommand']);
  });

  it("keeps the files a reply came with as its attachments, so a photo sent alone is a message; a signature's inline logo is no file", async () => {
    // Prepare: a photo alone (no words), and a reply with words, a PDF, an encoded name and a logo the HTML shows
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: { id: CONVERSATION, channel: 'web', handle: 'VISITOR1', contact: { id: 'K1', email: 'vera@example.com' }, version: 1 } });
    const photoOnly = [
      'Content-Type: multipart/mixed; boundary="m"', '',
      '--m', 'Content-Type: text/plain; charset=utf-8', '', '',
      '--m', 'Content-Type: image/jpeg; name="IMG_2041.jpg"', 'Content-Disposition: attachment; filename="IMG_2041.jpg"', 'Content-Transfer-Encoding: base64', '', '/9j/4AAQ',
      '--m--', '',
    ].join('\r\n');
    const withWords = [
      'Content-Type: multipart/mixed; boundary="m"', '',
      '--m', 'Content-Type: multipart/related; boundary="r"', '',
      '--r', 'Content-Type: text/html; charset=utf-8', '', '<p>Here is the invoice</p><img src="cid:logo1">',
      '--r', 'Content-Type: image/png; name="logo.png"', 'Content-Disposition: inline; filename="logo.png"', 'Content-ID: <logo1>', '', 'iVBOR',
      '--r--',
      '--m', 'Content-Type: application/pdf', "Content-Disposition: attachment; filename*=UTF-8''facture%20n%C2%B012.pdf", '', '%PDF',
      '--m', 'Content-Type: text/plain; name="=?UTF-8?B?w6l0w6kudHh0?="', 'Content-Disposition: attachment', '', 'summer',
      '--m--', '',
    ].join('\r\n');

    // Act
    const alone = await handler(sesEvent(replyAddress(CONVERSATION), photoOnly));
    const words = await handler(sesEvent(replyAddress(CONVERSATION), withWords));

    // Assess: both queued, each with its files kept in the media bucket; the logo is not one
    expect([alone.outcome, words.outcome]).toEqual(['queued 1 of 1', 'queued 1 of 1']);
    const events = sendMessageBatch.mock.calls.map((call) => JSON.parse((call[1] as BatchEntry[])[0]!.MessageBody!) as { text: string; attachments: Message['attachments'] });
    expect(events.map((e) => e.text)).toEqual(['', 'Here is the invoice']);
    expect(events.map((e) => e.attachments.map(({ type, mimeType, name, size }) => ({ type, mimeType, name, size })))).toEqual([
      [{ type: 'image', mimeType: 'image/jpeg', name: 'IMG_2041.jpg', size: 6 }],
      [
        { type: 'file', mimeType: 'application/pdf', name: 'facture n°12.pdf', size: 4 },
        { type: 'file', mimeType: 'text/plain', name: 'été.txt', size: 6 },
      ],
    ]);
    const written = s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
    expect(written.map((w) => `conversa-media://${w.Key}`)).toEqual(events.flatMap((e) => e.attachments.map((a) => a.url)));
    expect(written.map((w) => [w.ContentType, Buffer.from(w.Body as Uint8Array).toString('latin1')])).toEqual([
      ['image/jpeg', Buffer.from('/9j/4AAQ', 'base64').toString('latin1')],
      ['application/pdf', '%PDF'],
      ['text/plain', 'summer'],
    ]);
  });

  it('keys a customer email by its Message-ID, hashed when too long for an idempotency key', async () => {
    // Prepare
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: { id: CONVERSATION, channel: 'web', handle: 'VISITOR1', contact: { id: 'K1', email: 'vera@example.com' }, version: 1 } });
    sendMessageBatch.mockResolvedValue({ Successful: [], Failed: [] });
    const email = (messageId: string) => ({ kind: 'inboundEmail', email: { to: replyAddress(CONVERSATION), from: 'vera@example.com', text: 'Thanks!', messageId } });
    const long = `<${'é'.repeat(900)}@example.com>`;

    // Act
    for (const messageId of ['<short@example.com>', long, long, `<${'é'.repeat(899)}ü@example.com>`]) await handler(email(messageId));

    // Assess: a key of DEDUP# plus the id stays far below 2048 bytes, and the same id hashes alike
    const ids = sendMessageBatch.mock.calls.map((call) => JSON.parse((call[1] as BatchEntry[])[0]!.MessageBody!).providerMessageId as string);
    expect(ids).toHaveLength(4);
    expect(ids[0]).toBe('email:<short@example.com>');
    expect(Buffer.byteLength(ids[1]!)).toBeLessThan(40);
    expect(ids[2]).toBe(ids[1]);
    expect(ids[3]).not.toBe(ids[1]);
  });

  it('drops spam, forged addresses and malformed events without throwing (no retries, no DLQ)', async () => {
    ddb.on(GetCommand).resolves({ Item: { id: CONVERSATION, channel: 'web', handle: 'VISITOR1', contact: { id: 'K1', email: 'vera@example.com' }, version: 1 } });
    expect((await handler(sesEvent(replyAddress(CONVERSATION), multipart, 'FAIL'))).outcome).toBe('queued 0 of 1');
    expect((await handler(sesEvent(`c-${CONVERSATION.toLowerCase()}-${'a'.repeat(32)}@reply.example.com`, multipart))).outcome).toBe('queued 0 of 1');
    expect((await handler({ kind: 'reengage' })).outcome).toBe('invalid');
    expect((await handler('nonsense')).outcome).toBe('invalid');
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
  });

  it('drops an email to a conversation whose customer\'s erasure was asked for, the customer\'s or anyone\'s, storing and queueing nothing', async () => {
    // Prepare: the conversation is marked; its steps have not deleted it yet
    const erasing = { id: CONVERSATION, channel: 'web', status: 'open', handle: 'VISITOR1', contact: { id: 'K1', email: 'vera@example.com' }, erasureRequestedAt: '2026-11-26T10:00:00.000Z', version: 2 };
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: erasing });
    ddb.on(QueryCommand).resolves({ Items: [] });
    const to = replyAddress(CONVERSATION);

    // Act
    const customer = await handler(sesEvent(to, multipart));
    const other = await handler(sesEvent(to, multipart, 'PASS', 'Fwd: reply', 'Mallory <mallory@example.net>'));

    // Assess
    expect([customer.outcome, other.outcome]).toEqual(['queued 0 of 1', 'queued 0 of 1']);
    expect(sendMessageBatch.mock.calls).toHaveLength(0);
    expect(ddb.commandCalls(PutCommand)).toEqual([]);
    expect(ddb.commandCalls(UpdateCommand)).toEqual([]);
  });

  /** Emailed at the visitor's address (the contact has none). */
  const emailed = { id: CONVERSATION, channel: 'web', status: 'open', assigneeId: null, handle: 'VISITOR1', contact: { id: 'K1' }, engagement: { emailedUpTo: 'M1', emailedTo: 'vera@example.com' }, version: 1 };
  /** The items put (dedup claims and messages), as the mocked table got them. */
  const puts = () => ddb.commandCalls(PutCommand).map((call) => call.args[0].input.Item as Record<string, any>);
  const notesPut = () => puts().filter((item) => String(item.sk).startsWith('MSG#'));

  it('takes a reply as the customer\'s only from the address the conversation was emailed at, and not one whose From fails DMARC', async () => {
    // Prepare
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: emailed });
    ddb.on(UpdateCommand).resolves({ Attributes: { ...emailed, version: 2 } });
    ddb.on(QueryCommand).resolves({ Items: [] });
    const to = replyAddress(CONVERSATION);

    // Act
    const forwarded = await handler(sesEvent(to, multipart, 'PASS', 'Fwd: reply', 'Mallory <mallory@example.net>'));
    const spoofed = await handler(sesEvent(to, multipart, 'PASS', 'Re: reply', 'Vera <vera@example.com>', 'FAIL'));
    const noAddress = await handler(sesEvent(to, multipart, 'PASS', 'Re: reply', 'Vera'));
    const queuedBefore = sendMessageBatch.mock.calls.length;
    const customer = await handler(sesEvent(to, multipart, 'PASS', 'Re: reply', '"Vera V." <Vera@Example.COM>'));

    // Assess: only the customer's reply is queued; the forward is a private note, nothing else is stored
    expect([forwarded.outcome, spoofed.outcome, noAddress.outcome]).toEqual(['queued 0 of 1, 1 kept as notes', 'queued 0 of 1', 'queued 0 of 1']);
    expect(queuedBefore).toBe(0);
    expect(customer.outcome).toBe('queued 1 of 1');
    expect(notesPut()).toHaveLength(1);
    expect(notesPut()[0]).toMatchObject({ conversationId: CONVERSATION, direction: 'outbound', private: true, status: 'sent', sender: { type: 'system' } });
    expect(notesPut()[0]!.text).toMatch(/^Email from mallory@example\.net, not the address/);
    expect(senderAddress('"vera@example.com" <Vera@Example.com>')).toBe('vera@example.com');
    expect(senderAddress('Mallory <m@example.net>, Vera <vera@example.com>')).toBeUndefined();
    expect(senderAddress('m@example.net, vera@example.com')).toBeUndefined();
  });

  it('takes the customer\'s reply from a From that names their address in a comment\'s older form or as its own display name', async () => {
    // Prepare
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: emailed });
    const to = replyAddress(CONVERSATION);

    // Act
    const outcomes = [];
    for (const from of ['vera@example.com (Vera Vieira)', 'Vera@Example.com <vera@example.com>', 'Vera <vera@example.com> (home)']) outcomes.push((await handler(sesEvent(to, multipart, 'PASS', 'Re: reply', from))).outcome);

    // Assess: each is the customer's message; a From naming another address beside it still names nobody
    expect(outcomes).toEqual(['queued 1 of 1', 'queued 1 of 1', 'queued 1 of 1']);
    expect(senderAddress('vera@example.com <mallory@example.net>')).toBeUndefined();
    expect(senderAddress('(vera@example.com) mallory@example.net')).toBe('mallory@example.net');
    expect(senderAddress('Vera <vera@example.com> <mallory@example.net>')).toBeUndefined();
  });

  it('stores a redelivered email from another sender once: the second delivery finds the first one\'s claim and note', async () => {
    // Prepare: the table as the first delivery leaves it (the claim taken, the note stored)
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: emailed });
    ddb.on(UpdateCommand).resolves({ Attributes: { ...emailed, version: 2 } });
    ddb.on(QueryCommand).resolves({ Items: [] });
    const claims = new Map<string, Record<string, unknown>>();
    const messages = new Map<string, Record<string, unknown>>();
    ddb.on(PutCommand).callsFake((input: { Item: Record<string, any> }) => {
      const stored = String(input.Item.pk).startsWith('DEDUP#') ? claims : messages;
      const key = `${input.Item.pk}|${input.Item.sk}`;
      if (stored.has(key)) throw new ConditionalCheckFailedException({ message: 'exists', $metadata: {} });
      stored.set(key, input.Item);
      return {};
    });
    ddb.on(GetCommand).callsFake((input: { Key: { pk: string; sk: string } }) => {
      if (input.Key.pk === keys.conversation(CONVERSATION).pk && input.Key.sk === 'CONV') return { Item: emailed };
      const key = `${input.Key.pk}|${input.Key.sk}`;
      return { Item: claims.get(key) ?? messages.get(key) };
    });
    const forward = sesEvent(replyAddress(CONVERSATION), multipart, 'PASS', 'Fwd: reply', 'Mallory <mallory@example.net>');

    // Act
    const first = await handler(forward);
    const again = await handler(forward);

    // Assess: one claim, one note, both deliveries answered as kept
    expect([first.outcome, again.outcome]).toEqual(['queued 0 of 1, 1 kept as notes', 'queued 0 of 1, 1 kept as notes']);
    expect(claims.size).toBe(1);
    expect(notesPut()).toHaveLength(1);
    const updated = ddb.commandCalls(UpdateCommand).map((call) => String(call.args[0].input.Key!.pk));
    // The conversation once, and the hour's count of notes once: the redelivery takes no room.
    expect(updated.sort()).toEqual([keys.conversation(CONVERSATION).pk, `EMAILNOTES#${CONVERSATION}`]);
    expect(sendMessageBatch).not.toHaveBeenCalled();
  });

  it('shows the agents a redelivered email\'s note that the first delivery stored but died before showing', async () => {
    // Prepare: an agent's console is connected; the first delivery's lookup of the consoles fails, after the note's write
    vi.stubEnv('WS_CALLBACK_URL', 'http://ws.local/live');
    ws.on(PostToConnectionCommand).resolves({});
    ddb.on(UpdateCommand).resolves({ Attributes: { ...emailed, version: 2 } });
    const items = new Map<string, Record<string, any>>();
    const key = (k: { pk: string; sk: string }) => `${k.pk}|${k.sk}`;
    ddb.on(PutCommand).callsFake((input: { Item: Record<string, any> }) => {
      if (items.has(key(input.Item as { pk: string; sk: string }))) throw new ConditionalCheckFailedException({ message: 'exists', $metadata: {} });
      items.set(key(input.Item as { pk: string; sk: string }), input.Item);
      return {};
    });
    ddb.on(GetCommand).callsFake((input: { Key: { pk: string; sk: string } }) => ({ Item: input.Key.sk === keys.conversation(CONVERSATION).sk && input.Key.pk === keys.conversation(CONVERSATION).pk ? emailed : items.get(key(input.Key)) }));
    const console1 = { connectionId: 'console-1', audience: { kind: 'agents' }, principalId: 'ana', role: 'agent', connectedAt: new Date().toISOString(), expiresAt: 4_102_444_800 };
    ddb.on(QueryCommand).rejectsOnce(new Error('DynamoDB is throttling')).resolves({ Items: [console1] });
    const forward = { kind: 'inboundEmail', email: { to: replyAddress(CONVERSATION), from: 'mallory@example.net', text: 'Forwarding this to you', messageId: '<fwd-1@example.net>' } };

    // Act: the first delivery fails after storing the note; Lambda's retry delivers it again
    await expect(handler(forward)).rejects.toThrow(/throttling/);
    const again = await handler(forward);

    // Assess: the note, stored once, reached the console on the retry
    expect(again.outcome).toBe('noted');
    expect(notesPut()).toHaveLength(1);
    const shown = ws.commandCalls(PostToConnectionCommand).map((call) => JSON.parse(Buffer.from(call.args[0].input.Data as Uint8Array).toString()) as Record<string, any>);
    const created = shown.filter((f) => f.type === 'message.created');
    expect(created.map((f) => [f.message.id, f.message.private, f.message.createdAt])).toEqual([[notesPut()[0]!.id, true, notesPut()[0]!.createdAt]]);
  });

  it('refuses another sender\'s email past the hour\'s notes on the conversation, storing nothing', async () => {
    // Prepare: the hour's count is full
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: emailed });
    ddb.on(UpdateCommand).callsFake((input: { Key: { pk: string }; ExpressionAttributeValues: Record<string, unknown> }) => {
      if (input.Key.pk !== `EMAILNOTES#${CONVERSATION}`) return { Attributes: { ...emailed, version: 2 } };
      expect(input.ExpressionAttributeValues[':limit']).toBe(EMAIL_NOTE_LIMIT.notes);
      throw new ConditionalCheckFailedException({ message: 'full', $metadata: {} });
    });
    const forward = (n: number) => ({ kind: 'inboundEmail', email: { to: replyAddress(CONVERSATION), from: 'mallory@example.net', text: `Buy now ${n}`, messageId: `<spam-${n}@example.net>` } });

    // Act
    const out = await handler(forward(1));

    // Assess
    expect(out.outcome).toBe('rate_limited');
    expect(notesPut()).toEqual([]);
    expect(ddb.commandCalls(UpdateCommand).map((call) => call.args[0].input.Key!.pk)).toEqual([`EMAILNOTES#${CONVERSATION}`]);
  });

  it('refuses another sender\'s email with no new text, storing nothing', async () => {
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: emailed });
    const onlyQuote = ['Content-Type: text/plain', '', 'On Tue, Support wrote:', '> Sorry about that!', ''].join('\r\n');
    const twoAddresses = 'Mallory <mallory@example.net>, Vera <vera@example.com>';
    expect((await handler(sesEvent(replyAddress(CONVERSATION), onlyQuote, 'PASS', 'Fwd: reply', 'Mallory <mallory@example.net>'))).outcome).toBe('queued 0 of 1');
    expect((await handler({ kind: 'inboundEmail', email: { to: replyAddress(CONVERSATION), from: twoAddresses, text: 'Write as Vera' } })).outcome).toBe('unknown_sender');
    expect((await handler({ kind: 'inboundEmail', email: { to: replyAddress(CONVERSATION), from: 'mallory@example.net', text: '> quoted only' } })).outcome).toBe('unknown_sender');
    expect(puts()).toEqual([]);
    expect(sendMessageBatch).not.toHaveBeenCalled();
  });

  it('keeps a reply whose subject is longer than any it stores, and says why it drops one it cannot read', async () => {
    // Prepare
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: { id: CONVERSATION, channel: 'web', handle: 'VISITOR1', contact: { id: 'K1', email: 'vera@example.com' }, version: 1 } });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);

    // Act
    const long = await handler(sesEvent(replyAddress(CONVERSATION), multipart, 'PASS', `Re: ${'very '.repeat(400)}long`));
    const unreadable = await handler(sesEvent('x', multipart));

    // Assess
    expect(long.outcome).toBe('queued 1 of 1');
    expect(JSON.parse((sendMessageBatch.mock.calls[0]![1] as BatchEntry[])[0]!.MessageBody).text).toBe('Merci, ça marche très bien!');
    expect(unreadable.outcome).toBe('queued 0 of 1');
    expect(warn).toHaveBeenCalledWith('an inbound email was dropped', expect.stringMatching(/^to/), expect.any(String));
    warn.mockRestore();
  });

  it('drops out-of-office replies and bounces from the customer\'s address, storing and queueing nothing, and keeps a reply marked Auto-Submitted: no', async () => {
    // Prepare: the customer's own address, as an auto-responder answers the fallback email from it
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: emailed });
    ddb.on(UpdateCommand).resolves({ Attributes: { ...emailed, version: 2 } });
    ddb.on(QueryCommand).resolves({ Items: [] });
    const to = replyAddress(CONVERSATION);
    const headed = (header: string, type = 'text/plain') => [header, `Content-Type: ${type}`, '', 'I am out of the office until Monday.', ''].join('\r\n');
    const automatic = [
      headed('Auto-Submitted: auto-replied'),
      headed('auto-submitted: Auto-Generated; owner-email="vera@example.com"'),
      headed('X-Autoreply: yes'),
      headed('X-Autorespond: Vacation'),
      headed('Precedence: bulk'),
      headed('Precedence: auto_reply'),
      headed('Subject: Undelivered Mail', 'multipart/report; report-type=delivery-status; boundary="r"'),
    ];

    // Act
    const outcomes = [];
    for (const content of automatic) outcomes.push((await handler(sesEvent(to, content, 'PASS', 'Automatic reply: You have a new reply', 'Vera <vera@example.com>'))).outcome);
    const local = await receiveLocalEmail(JSON.stringify({ to, from: 'vera@example.com', text: 'Out of office', headers: { 'Auto-Submitted': 'auto-replied' } }));
    const queuedBefore = sendMessageBatch.mock.calls.length;
    const person = await handler(sesEvent(to, headed('Auto-Submitted: no'), 'PASS', 'Re: reply', 'Vera <vera@example.com>'));

    // Assess
    expect(outcomes).toEqual(automatic.map(() => 'queued 0 of 1'));
    expect(local).toMatchObject({ status: 422, body: { error: { code: 'auto_reply' } } });
    expect(queuedBefore).toBe(0);
    expect(puts()).toEqual([]);
    expect(person.outcome).toBe('queued 1 of 1');
  });

  it('re-checks state for a timer whose conversation is gone', async () => {
    ddb.on(GetCommand).resolves({});
    expect((await handler({ kind: 'autoResolve', conversationId: CONVERSATION, dueAt: new Date().toISOString() })).outcome).toBe('skipped');
  });
});
