import { BadRequestException, SESv2Client, SendEmailCommand, type SendEmailCommandInput } from '@aws-sdk/client-sesv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsStandIns, type AwsStandIns } from '../../local/aws/server';

let aws: AwsStandIns;
let ses: SESv2Client;

const email = (overrides: Partial<SendEmailCommandInput> = {}): SendEmailCommandInput => ({
  FromEmailAddress: 'Conversa <support@example.com>',
  Destination: { ToAddresses: ['visitor@example.org'] },
  ReplyToAddresses: ['reply+conv-1.sig@reply.example.com'],
  Content: {
    Simple: {
      Subject: { Data: 'You have a new reply', Charset: 'UTF-8' },
      Body: { Text: { Data: 'Hello from the agent' }, Html: { Data: '<p>Hello from the agent</p>' } },
    },
  },
  ...overrides,
});

beforeAll(async () => {
  aws = await startAwsStandIns({ onScheduleFire: async () => {} });
  ses = new SESv2Client({ endpoint: aws.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});

afterAll(async () => {
  ses.destroy();
  await aws.close();
});

describe('SES v2 SendEmail', () => {
  it('records what would have been sent and answers with a MessageId', async () => {
    const before = Date.now();
    const { MessageId } = await ses.send(new SendEmailCommand(email()));
    expect(MessageId).toBeTruthy();

    expect(aws.ses.sent.at(-1)).toMatchObject({
      messageId: MessageId,
      to: ['visitor@example.org'],
      from: 'Conversa <support@example.com>',
      replyTo: ['reply+conv-1.sig@reply.example.com'],
      subject: 'You have a new reply',
      text: 'Hello from the agent',
      html: '<p>Hello from the agent</p>',
    });
    expect(aws.ses.sent.at(-1)!.at.getTime()).toBeGreaterThanOrEqual(before);
  });

  it('keeps emails oldest first, text-only ones included', async () => {
    const count = aws.ses.sent.length;
    await ses.send(new SendEmailCommand(email({ Content: { Simple: { Subject: { Data: 'first' }, Body: { Text: { Data: 'a' } } } } })));
    await ses.send(new SendEmailCommand(email({ Content: { Simple: { Subject: { Data: 'second' }, Body: { Text: { Data: 'b' } } } } })));
    const latest = aws.ses.sent.slice(count);
    expect(latest.map((sent) => sent.subject)).toEqual(['first', 'second']);
    expect(latest[0]).toMatchObject({ text: 'a', html: undefined });
  });

  it('rejects emails SES would reject, with BadRequestException', async () => {
    const count = aws.ses.sent.length;
    const invalid: SendEmailCommandInput[] = [
      email({ Destination: { ToAddresses: [] } }),
      email({ FromEmailAddress: undefined }),
      email({ Content: { Simple: { Subject: { Data: 'no body' }, Body: {} } } }),
      email({ Content: { Raw: { Data: new Uint8Array([1]) } } }),
    ];
    for (const input of invalid) {
      await expect(ses.send(new SendEmailCommand(input))).rejects.toBeInstanceOf(BadRequestException);
    }
    expect(aws.ses.sent).toHaveLength(count);
  });

  it('rejects addresses that are not 7-bit ASCII, as SES does not support SMTPUTF8', async () => {
    const count = aws.ses.sent.length;
    const invalid: SendEmailCommandInput[] = [
      email({ Destination: { ToAddresses: ['josé@example.org'] } }),
      email({ Destination: { ToAddresses: ['vera@bücher.de'] } }),
      email({ Destination: { ToAddresses: ['visitor@example.org'], BccAddresses: ['ñ@example.org'] } }),
      email({ FromEmailAddress: 'Café <support@example.com>' }),
      email({ ReplyToAddresses: ['réponse@example.com'] }),
    ];
    for (const input of invalid) {
      await expect(ses.send(new SendEmailCommand(input))).rejects.toBeInstanceOf(BadRequestException);
    }
    expect(aws.ses.sent).toHaveLength(count);
    // The Punycode of a Unicode domain, and an encoded-word name, are what SES takes.
    await ses.send(new SendEmailCommand(email({ FromEmailAddress: '=?UTF-8?B?Q2Fmw6k=?= <support@example.com>', Destination: { ToAddresses: ['vera@xn--bcher-kva.de'] } })));
    expect(aws.ses.sent.at(-1)!.to).toEqual(['vera@xn--bcher-kva.de']);
  });

  it('answers unknown SES routes and malformed bodies with 400 JSON errors', async () => {
    const responses = await Promise.all([
      fetch(`${aws.url}/v2/email/identities`, { method: 'POST', body: '{}' }),
      fetch(`${aws.url}/v2/email/outbound-emails`, { method: 'POST', body: '{"Content":' }),
      fetch(`${aws.url}/v2/email/outbound-emails`, { method: 'POST', body: JSON.stringify({ FromEmailAddress: 'a@b.c', Destination: 'x' }) }),
    ]);
    expect(responses.map((r) => r.status)).toEqual([400, 400, 400]);
    for (const response of responses) expect(typeof ((await response.json()) as { message?: unknown }).message).toBe('string');
  });
});
