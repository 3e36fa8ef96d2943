/**
 * The hot path's SigV4 signer against the SDK's own (@smithy/signature-v4, as the SDK clients
 * configure it by default): for any body, path, region, credentials and time, the same headers.
 */
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signRequest, type SigV4Credentials } from '../../src/aws/sigv4';

type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (data: Data) => (typeof data === 'string' ? data : ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data));

class Sha256 {
  private readonly hash;
  constructor(secret?: Data) {
    this.hash = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(data: Data): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

async function smithySign(input: { service: string; region: string; credentials: SigV4Credentials; host: string; path: string; headers: Record<string, string>; body: string; date: Date }) {
  const signer = new SignatureV4({ service: input.service, region: input.region, sha256: Sha256, credentials: input.credentials });
  const signed = await signer.sign(
    { method: 'POST', protocol: 'https:', hostname: input.host, path: input.path, query: {}, headers: { host: input.host, ...input.headers }, body: input.body },
    { signingDate: input.date },
  );
  return signed.headers;
}

const token = fc.stringMatching(/^[A-Za-z0-9/+=]{1,40}$/);

describe('signRequest', () => {
  it('signs a SendMessageBatch exactly as the SDK signer does', async () => {
    const date = new Date('2026-11-26T03:04:05.678Z');
    const request = {
      service: 'sqs',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session' },
      path: '/',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessageBatch' },
      body: '{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/1/q.fifo","Entries":[]}',
      date,
    };
    const ours = signRequest({ ...request, method: 'POST', headers: { host: 'sqs.eu-west-1.amazonaws.com', ...request.headers } });
    expect(ours).toEqual(await smithySign({ ...request, host: 'sqs.eu-west-1.amazonaws.com' }));
    expect(ours.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261126\/eu-west-1\/sqs\/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$/);
  });

  it('agrees with the SDK signer on generated requests', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          service: fc.constantFrom('sqs', 'scheduler', 'execute-api'),
          region: fc.constantFrom('us-east-1', 'eu-central-1', 'ap-southeast-2'),
          credentials: fc.record({ accessKeyId: token, secretAccessKey: token, sessionToken: fc.option(token, { nil: undefined }) }, { requiredKeys: ['accessKeyId', 'secretAccessKey'] }),
          host: fc.constantFrom('sqs.us-east-1.amazonaws.com', '127.0.0.1:4566', 'localhost'),
          path: fc.constantFrom('/', '/queue', '/a/b/', '/a/./b/../c', '/with space/ü', "/it's(*)!"),
          target: fc.stringMatching(/^[A-Za-z.]{1,30}$/),
          padding: fc.constantFrom('', ' ', '  x  y '),
          body: fc.string({ unit: 'binary', maxLength: 300 }),
          date: fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2035-12-31T23:59:59Z'), noInvalidDate: true }),
        }),
        async ({ padding, target, ...input }) => {
          const headers = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `${padding}${target}${padding}` };
          const ours = signRequest({ ...input, method: 'POST', headers: { host: input.host, ...headers } });
          expect(ours).toEqual(await smithySign({ ...input, headers }));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('signs with the new day once the date moves past midnight', () => {
    const request = { service: 'sqs', region: 'us-east-1', credentials: { accessKeyId: 'A', secretAccessKey: 'S' }, method: 'POST', path: '/', headers: { host: 'h' }, body: '' };
    const before = signRequest({ ...request, date: new Date('2026-11-26T23:59:59Z') });
    const after = signRequest({ ...request, date: new Date('2026-11-27T00:00:00Z') });
    expect(before.authorization).toContain('/20261126/');
    expect(after.authorization).toContain('/20261127/');
    expect(after['x-amz-date']).toBe('20261127T000000Z');
  });
});
