/**
 * The files of an email reply: taken out of the MIME email (attachedFiles), read from where the
 * SES receipt rule's S3 action stored the email, and kept in the media bucket as the message's
 * attachments (mocked S3, SQS and DynamoDB). The channels' size limit is lowered to 100 bytes here,
 * so that a file over it costs no large fixture.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { attachedFileNames, attachedFiles, replyAddress, textFromMime } from '../../src/domain/email';
import { emailFileKey } from '../../src/aws/media-store';
import { handler } from '../../functions/engagement/handler';
import { keys } from '../../src/store/keys';
import type { BatchEntry } from '../../src/aws/sqs-send';
import type { Attachment } from '../../src/domain/types';
import { png } from '../support/png';
import { stubEmailEnv } from '../support/email-env';

vi.mock('../../src/manifest', async (original) => ({ ...(await original<typeof import('../../src/manifest')>()), MAX_UPLOAD_BYTES: 100 }));
const sendMessageBatch = vi.hoisted(() => vi.fn());
vi.mock('../../src/aws/sqs-send', async (original) => ({ ...(await original<typeof import('../../src/aws/sqs-send')>()), sendMessageBatch }));
const ddb = mockClient(DynamoDBDocumentClient);
const s3 = mockClient(S3Client);
const CONVERSATION = '01JD5Q8Z7V4R0M3X6N2B9C1K8T';

beforeEach(() => {
  stubEmailEnv();
  sendMessageBatch.mockReset().mockResolvedValue({ Successful: [], Failed: [] });
  ddb.reset();
  s3.reset();
});
afterEach(() => vi.unstubAllEnvs());

/** A 1×1 PNG (under the lowered 100-byte limit). */
const PIXEL = png(1, 1);
const mime = (...lines: string[]) => lines.join('\r\n');

describe('attachedFiles', () => {
  it('decodes a base64 file and a quoted-printable one to their bytes, with their type and name', () => {
    const raw = mime(
      'Content-Type: multipart/mixed; boundary="m"', '',
      '--m', 'Content-Type: text/plain; charset=utf-8', '', 'See attached',
      '--m', 'Content-Type: image/png; name="shot.png"', 'Content-Disposition: attachment; filename="shot.png"', 'Content-Transfer-Encoding: base64', '',
      ...(PIXEL.toString('base64').match(/.{1,20}/g) ?? []),
      '--m', 'Content-Type: text/csv; charset=utf-8', 'Content-Disposition: attachment; filename="rows.csv"', 'Content-Transfer-Encoding: quoted-printable', '',
      'caf=C3=A9;1 =', 'long;2',
      '--m--', '',
    );

    const files = attachedFiles(raw);

    expect(files.map(({ name, mimeType }) => ({ name, mimeType }))).toEqual([
      { name: 'shot.png', mimeType: 'image/png' },
      { name: 'rows.csv', mimeType: 'text/csv' },
    ]);
    expect(files[0]!.bytes!.equals(PIXEL)).toBe(true);
    expect(files[1]!.bytes!.toString('utf8')).toBe('café;1 long;2');
    expect(textFromMime(raw)?.trim()).toBe('See attached');
  });

  it('finds a file in a multipart/mixed nested inside multipart/alternative, and a pasted inline image named without a Content-ID, but not a logo the HTML shows', () => {
    const raw = mime(
      'Content-Type: multipart/alternative; boundary="a"', '',
      '--a', 'Content-Type: text/plain', '', 'Hello',
      '--a', 'Content-Type: multipart/mixed; boundary="m"', '',
      '--m', 'Content-Type: multipart/related; boundary="r"', '',
      '--r', 'Content-Type: text/html', '', '<p>Hello</p><img src="cid:logo">',
      '--r', 'Content-Type: image/png; name="logo.png"', 'Content-Disposition: inline; filename="logo.png"', 'Content-ID: <logo>', 'Content-Transfer-Encoding: base64', '', PIXEL.toString('base64'),
      '--r--',
      '--m', 'Content-Type: image/png', 'Content-Disposition: inline; filename="pasted.png"', 'Content-Transfer-Encoding: base64', '', PIXEL.toString('base64'),
      '--m', 'Content-Type: application/pdf; name="deep.pdf"', 'Content-Disposition: attachment', '', '%PDF-1.4',
      '--m--',
      '--a--', '',
    );

    const files = attachedFiles(raw);

    expect(files.map((f) => [f.name, f.mimeType, f.bytes?.length])).toEqual([
      ['pasted.png', 'image/png', PIXEL.length],
      ['deep.pdf', 'application/pdf', 8],
    ]);
    expect(attachedFileNames(raw)).toEqual(['pasted.png', 'deep.pdf']);
  });

  it('keeps the name only of a file over the limit, past a message\'s ten files, or empty; a malformed type is application/octet-stream', () => {
    const part = (name: string, type: string, body: string) => ['--m', `Content-Type: ${type}`, `Content-Disposition: attachment; filename="${name}"`, '', body];
    const raw = mime(
      'Content-Type: multipart/mixed; boundary="m"', '',
      ...part('big.bin', 'application/octet-stream', 'x'.repeat(101)),
      ...part('empty.txt', 'text/plain', ''),
      ...part('odd.dat', 'not a type', 'odd'),
      ...Array.from({ length: 10 }, (_, i) => part(`n${i}.txt`, 'text/plain', `n${i}`)).flat(),
      '--m--', '',
    );

    const files = attachedFiles(raw);

    expect(files.map((f) => [f.name, f.mimeType ?? null])).toEqual([
      ['big.bin', null],
      ['empty.txt', null],
      ['odd.dat', 'application/octet-stream'],
      ...Array.from({ length: 7 }, (_, i) => [`n${i}.txt`, 'text/plain']),
      // The 11th file on: named only.
      ['n7.txt', null],
      ['n8.txt', null],
      ['n9.txt', null],
    ]);
  });

  it('reads no further than 100 parts of a hostile email with thousands, and lists at most 20 files', () => {
    const empty = Array.from({ length: 5000 }, () => ['--m', 'Content-Type: text/plain', '', ''].join('\r\n'));
    const file = (name: string) => ['--m', 'Content-Type: text/plain', `Content-Disposition: attachment; filename="${name}"`, '', 'hi'].join('\r\n');
    const lateFile = mime('Content-Type: multipart/mixed; boundary="m"', '', ...empty, file('late.txt'), '--m--', '');
    const manyFiles = mime('Content-Type: multipart/mixed; boundary="m"', '', ...Array.from({ length: 5000 }, (_, i) => file(`f${i}.txt`)), '--m--', '');

    expect(attachedFiles(lateFile)).toEqual([]);
    const files = attachedFiles(manyFiles);
    expect(files.map((f) => f.name)).toEqual(Array.from({ length: 20 }, (_, i) => `f${i}.txt`));
    expect(files.filter((f) => f.bytes)).toHaveLength(10);
  });
});

describe('an email reply stored by the S3 action', () => {
  const conversation = { id: CONVERSATION, channel: 'web', handle: 'VISITOR1', contact: { id: 'K1', email: 'vera@example.com' }, version: 1 };
  /** Built per test: the reply address needs the test's secret. */
  const rawEmail = () => mime(
    'From: Vera <vera@example.com>',
    `To: ${replyAddress(CONVERSATION)}`,
    'Message-ID: <photo-1@example.com>',
    'Content-Type: multipart/mixed; boundary="m"', '',
    '--m', 'Content-Type: text/plain; charset=utf-8', '', 'Here it is',
    '--m', 'Content-Type: image/png', 'Content-Disposition: attachment; filename="screen.png"', 'Content-Transfer-Encoding: base64', '', PIXEL.toString('base64'),
    '--m', 'Content-Type: application/zip', 'Content-Disposition: attachment; filename="logs.zip"', 'Content-Transfer-Encoding: base64', '', Buffer.alloc(101, 7).toString('base64'),
    '--m--', '',
  );
  /** The notification an S3 action with a topic publishes: where the email is, not the email. */
  const stored = (key = 'inbound/abc123') => ({
    Records: [
      {
        Sns: {
          Message: JSON.stringify({
            notificationType: 'Received',
            mail: { messageId: 'abc123', source: 'vera@example.com', commonHeaders: { from: ['Vera <vera@example.com>'], to: [replyAddress(CONVERSATION)], subject: 'Re: reply', messageId: '<photo-1@example.com>' } },
            receipt: {
              recipients: [replyAddress(CONVERSATION)],
              spamVerdict: { status: 'PASS' }, virusVerdict: { status: 'PASS' }, dmarcVerdict: { status: 'PASS' },
              action: { type: 'S3', topicArn: 'arn:aws:sns:eu-west-1:111111111111:mail', bucketName: 'conversa-inbound-mail', objectKeyPrefix: 'inbound/', objectKey: key },
            },
          }),
        },
      },
    ],
  });
  const body = (bytes: string) => ({ transformToByteArray: async () => new Uint8Array(Buffer.from(bytes)) }) as never;
  const queued = () => sendMessageBatch.mock.calls.map((call) => JSON.parse((call[1] as BatchEntry[])[0]!.MessageBody!) as { text: string; attachments: Attachment[]; providerMessageId: string });

  it('reads the email from the bucket, keeps its file under the conversation as the message\'s attachment, and names the one over the limit', async () => {
    // Prepare
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });
    s3.on(GetObjectCommand, { Bucket: 'conversa-inbound-mail', Key: 'inbound/abc123' }).resolves({ Body: body(rawEmail()) });

    // Act
    const out = await handler(stored());

    // Assess
    expect(out.outcome).toBe('queued 1 of 1');
    const key = emailFileKey(CONVERSATION, 'email:<photo-1@example.com>', 0);
    expect(key).toMatch(new RegExp(`^media/provider/${CONVERSATION}/email-[\\w-]+/0$`));
    const [event] = queued();
    expect(event!.text).toBe('Here it is\n\n📎 Sent by email, not kept here: logs.zip');
    expect(event!.attachments).toEqual([{ type: 'image', url: `conversa-media://${key}`, mimeType: 'image/png', name: 'screen.png', size: PIXEL.length }]);
    const [put] = s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
    expect(put).toMatchObject({ Bucket: 'conversa-unit-media', Key: key, ContentType: 'image/png' });
    expect(Buffer.from(put!.Body as Uint8Array).equals(PIXEL)).toBe(true);
    // Taken in: the stored email is deleted, not kept beside the message for the bucket's 14 days.
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input)).toEqual([{ Bucket: 'conversa-inbound-mail', Key: 'inbound/abc123' }]);
  });

  it('writes a redelivered email\'s file to the same key and queues it under the same id, which the inbound store keeps once', async () => {
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });
    s3.on(GetObjectCommand).resolves({ Body: body(rawEmail()) });

    await handler(stored());
    await handler(stored());

    const keysWritten = s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input.Key);
    expect(keysWritten).toHaveLength(2);
    expect(keysWritten[1]).toBe(keysWritten[0]);
    const [first, second] = queued();
    expect(second!.providerMessageId).toBe(first!.providerMessageId);
    expect(second!.attachments).toEqual(first!.attachments);
  });

  it('drops an email whose stored copy is gone, and throws when the bucket fails, so that Lambda tries again', async () => {
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });
    s3.on(GetObjectCommand, { Key: 'inbound/gone' }).rejects(new NoSuchKey({ message: 'gone', $metadata: { httpStatusCode: 404 } }));
    s3.on(GetObjectCommand, { Key: 'inbound/flaky' }).rejects(new S3ServiceException({ name: 'InternalError', $fault: 'server', message: 'try again', $metadata: { httpStatusCode: 500 } }));

    expect((await handler(stored('inbound/gone'))).outcome).toBe('queued 0 of 1');
    await expect(handler(stored('inbound/flaky'))).rejects.toThrow(/try again/);
    expect(sendMessageBatch).not.toHaveBeenCalled();
    // The retry needs the copy the failed read left.
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input.Key)).toEqual(['inbound/gone']);
  });

  it('keeps the stored email when taking it in fails, for Lambda\'s retry, and takes it in once a deletion fails', async () => {
    ddb.on(GetCommand, { Key: keys.conversation(CONVERSATION) }).resolves({ Item: conversation });
    s3.on(GetObjectCommand).resolves({ Body: body(rawEmail()) });
    s3.on(PutObjectCommand).rejectsOnce(new S3ServiceException({ name: 'SlowDown', $fault: 'server', message: 'slow down', $metadata: { httpStatusCode: 503 } }));

    await expect(handler(stored())).rejects.toThrow(/slow down/);
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);

    s3.on(DeleteObjectCommand).rejects(new S3ServiceException({ name: 'InternalError', $fault: 'server', message: 'later', $metadata: { httpStatusCode: 500 } }));
    expect((await handler(stored())).outcome).toBe('queued 1 of 1');
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(1);
  });
});
