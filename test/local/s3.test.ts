import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsStandIns, type AwsStandIns } from '../../local/aws/server';

const BUCKET = 'conversa-media';
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, index) => index));

let aws: AwsStandIns;
let s3: S3Client;
let keyCount = 0;

function client(endpoint: string): S3Client {
  return new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials });
}

/** A fresh key per test, with characters that need encoding in paths and copy sources. */
function newKey(name = 'file.bin'): string {
  keyCount += 1;
  return `uploads/visitor/v%40${keyCount}/a b+(${keyCount})!/${name}`;
}

/** What the media store hands out: type and size signed, so S3 refuses another. */
function presignUpload(key: string, contentType: string, size: number, options: { expiresIn?: number; signingDate?: Date } = {}) {
  return getSignedUrl(s3, new PutObjectCommand({ Bucket: BUCKET, Key: key, ContentType: contentType, ContentLength: size }), {
    expiresIn: options.expiresIn ?? 300,
    signableHeaders: new Set(['content-type', 'content-length']),
    ...(options.signingDate ? { signingDate: options.signingDate } : {}),
  });
}

async function s3Error(promise: Promise<unknown>): Promise<S3ServiceException> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(S3ServiceException);
  return error as S3ServiceException;
}

/** The code of an S3 XML error answer. */
async function errorCode(response: Response): Promise<string | undefined> {
  expect(response.headers.get('content-type')).toBe('application/xml');
  return /<Error><Code>([^<]*)<\/Code>/.exec(await response.text())?.[1];
}

beforeAll(async () => {
  aws = await startAwsStandIns({ onScheduleFire: async () => undefined });
  aws.s3.createBucket(BUCKET);
  s3 = client(aws.url);
});

afterAll(async () => {
  s3.destroy();
  await aws.close();
});

describe('objects through the SDK', () => {
  it('puts, heads and gets binary bytes with their type and metadata', async () => {
    const key = newKey();
    const before = Date.now();
    const put = await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: ALL_BYTES, ContentType: 'application/x-test', Metadata: { Purpose: 'round-trip', owner: 'a1' } }),
    );
    const md5 = createHash('md5').update(ALL_BYTES).digest('hex');
    expect(put.ETag).toBe(`"${md5}"`);

    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    const described = { ContentLength: 256, ContentType: 'application/x-test', ETag: `"${md5}"`, Metadata: { purpose: 'round-trip', owner: 'a1' } };
    expect(head).toMatchObject(described);
    // Last-Modified is an HTTP date: whole seconds.
    expect(head.LastModified!.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(head.LastModified!.getTime()).toBeLessThanOrEqual(Date.now());

    const get = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(get).toMatchObject(described);
    expect(Buffer.from(await get.Body!.transformToByteArray())).toEqual(ALL_BYTES);

    expect(aws.s3.getObject(BUCKET, key)).toMatchObject({ body: ALL_BYTES, contentType: 'application/x-test', metadata: described.Metadata });
    expect(aws.s3.listKeys(BUCKET, key)).toEqual([key]);
  });

  it('takes string, Uint8Array and streamed (aws-chunked) bodies', async () => {
    const [text, bytes, streamed] = [newKey('text.txt'), newKey('bytes.bin'), newKey('streamed.bin')];
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: text, Body: 'héllo wörld', ContentType: 'text/plain; charset=utf-8' }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: bytes, Body: new Uint8Array(ALL_BYTES) }));
    // A stream of known length goes out as aws-chunked with a trailing CRC32, which the stand-in unframes and checks.
    const parts = [ALL_BYTES.subarray(0, 100), ALL_BYTES.subarray(100)];
    const put = await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: streamed, Body: Readable.from(parts), ContentLength: 256, ContentType: 'image/png' }),
    );

    expect(aws.s3.getObject(BUCKET, text)).toMatchObject({ body: Buffer.from('héllo wörld'), contentType: 'text/plain; charset=utf-8' });
    expect(aws.s3.getObject(BUCKET, bytes)?.body).toEqual(ALL_BYTES);
    expect(aws.s3.getObject(BUCKET, streamed)).toMatchObject({ body: ALL_BYTES, contentType: 'image/png' });
    expect(put.ETag).toBe(`"${createHash('md5').update(ALL_BYTES).digest('hex')}"`);
    const get = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: streamed }));
    expect(Buffer.from(await get.Body!.transformToByteArray())).toEqual(ALL_BYTES);
  });

  it('refuses a body that does not match its checksum, with BadDigest', async () => {
    const key = newKey();
    const error = await s3Error(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'hello', ChecksumCRC32: 'AAAAAA==' })));
    expect(error.name).toBe('BadDigest');
    expect(error.$metadata.httpStatusCode).toBe(400);
    expect(aws.s3.getObject(BUCKET, key)).toBeUndefined();
  });

  it('answers a missing object with NotFound to HEAD and NoSuchKey to GET', async () => {
    const key = newKey();
    const head = await s3Error(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })));
    expect(head.name).toBe('NotFound');
    expect(head.$metadata.httpStatusCode).toBe(404);
    const get = await s3Error(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })));
    expect(get).toBeInstanceOf(NoSuchKey);
    expect(get.$metadata.httpStatusCode).toBe(404);
  });

  it('copies bytes, type and metadata, or takes the request’s with the REPLACE directive', async () => {
    const [source, copy, replaced] = [newKey('source.png'), newKey('copy.png'), newKey('replaced.png')];
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: source, Body: ALL_BYTES, ContentType: 'image/png', Metadata: { owner: 'a1' } }));
    // As the media store names the source: the key URL-encoded, slashes kept.
    const copySource = `${BUCKET}/${encodeURIComponent(source).replace(/%2F/g, '/')}`;

    const result = await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: copy, CopySource: copySource }));
    expect(result.CopyObjectResult?.ETag).toBe(`"${createHash('md5').update(ALL_BYTES).digest('hex')}"`);
    expect(result.CopyObjectResult?.LastModified).toBeInstanceOf(Date);
    expect(aws.s3.getObject(BUCKET, copy)).toMatchObject({ body: ALL_BYTES, contentType: 'image/png', metadata: { owner: 'a1' } });

    await s3.send(
      new CopyObjectCommand({
        Bucket: BUCKET,
        Key: replaced,
        CopySource: `/${copySource}`,
        MetadataDirective: 'REPLACE',
        ContentType: 'image/x-png',
        Metadata: { owner: 'b2' },
      }),
    );
    expect(aws.s3.getObject(BUCKET, replaced)).toMatchObject({ body: ALL_BYTES, contentType: 'image/x-png', metadata: { owner: 'b2' } });
    expect(aws.s3.getObject(BUCKET, source)).toMatchObject({ contentType: 'image/png', metadata: { owner: 'a1' } });
  });

  it('answers a copy of a missing source with NoSuchKey', async () => {
    const target = newKey();
    const error = await s3Error(s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: target, CopySource: `${BUCKET}/uploads/never-uploaded` })));
    expect(error).toBeInstanceOf(NoSuchKey);
    expect(error.$metadata.httpStatusCode).toBe(404);
    expect(aws.s3.getObject(BUCKET, target)).toBeUndefined();
  });

  it('deletes with 204, a missing object too', async () => {
    const key = newKey();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'bye' }));
    expect((await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }))).$metadata.httpStatusCode).toBe(204);
    expect(aws.s3.getObject(BUCKET, key)).toBeUndefined();
    expect((await s3Error(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })))).name).toBe('NotFound');
    expect((await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }))).$metadata.httpStatusCode).toBe(204);
  });
});

describe('a versioned bucket', () => {
  const VERSIONED = 'conversa-media-versioned';
  const versionsOf = async (prefix: string, extra: { MaxKeys?: number; KeyMarker?: string; VersionIdMarker?: string } = {}) =>
    s3.send(new ListObjectVersionsCommand({ Bucket: VERSIONED, Prefix: prefix, ...extra }));

  it('keeps every version: a plain delete leaves a marker, a delete by version id removes that one for good', async () => {
    aws.s3.createBucket(VERSIONED, { versioned: true });
    const key = newKey();
    const first = await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: key, Body: 'one' }));
    const second = await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: key, Body: 'two' }));
    // A key that starts with the other is listed under its prefix too.
    await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: `${key}0`, Body: 'other' }));
    expect(first.VersionId).toBeTruthy();
    expect(second.VersionId).not.toBe(first.VersionId);
    const deleted = await s3.send(new DeleteObjectCommand({ Bucket: VERSIONED, Key: key }));
    expect([deleted.$metadata.httpStatusCode, deleted.DeleteMarker]).toEqual([204, true]);
    expect((await s3Error(s3.send(new HeadObjectCommand({ Bucket: VERSIONED, Key: key })))).name).toBe('NotFound');
    expect(aws.s3.listKeys(VERSIONED, key)).toEqual([`${key}0`]);

    const listed = await versionsOf(key);
    expect(listed.IsTruncated).toBe(false);
    expect(listed.Versions?.map((v) => [v.Key, v.VersionId, v.IsLatest, v.Size])).toEqual([
      [key, second.VersionId, false, 3],
      [key, first.VersionId, false, 3],
      [`${key}0`, expect.any(String), true, 5],
    ]);
    expect(listed.DeleteMarkers?.map((m) => [m.Key, m.VersionId, m.IsLatest])).toEqual([[key, deleted.VersionId, true]]);

    // The marker gone, the newest version is current again; then each version by id.
    expect((await s3.send(new DeleteObjectCommand({ Bucket: VERSIONED, Key: key, VersionId: deleted.VersionId! }))).DeleteMarker).toBe(true);
    expect(await (await s3.send(new GetObjectCommand({ Bucket: VERSIONED, Key: key }))).Body!.transformToString()).toBe('two');
    for (const id of [second.VersionId!, first.VersionId!]) await s3.send(new DeleteObjectCommand({ Bucket: VERSIONED, Key: key, VersionId: id }));
    expect(aws.s3.listVersions(VERSIONED, key).map((v) => v.key)).toEqual([`${key}0`]);
    expect(aws.s3.getObject(VERSIONED, key)).toBeUndefined();
    // A version deleted already: no error.
    expect((await s3.send(new DeleteObjectCommand({ Bucket: VERSIONED, Key: key, VersionId: first.VersionId! }))).$metadata.httpStatusCode).toBe(204);
  });

  it('pages ListObjectVersions with max-keys and the markers it answers', async () => {
    aws.s3.createBucket(VERSIONED, { versioned: true });
    const key = newKey();
    for (const body of ['a', 'b', 'c']) await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: key, Body: body }));
    const seen: string[] = [];
    let markers: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (let page = 0; page < 5; page++) {
      const listed = await versionsOf(key, { MaxKeys: 2, ...markers });
      seen.push(...(listed.Versions ?? []).map((v) => v.VersionId!));
      if (!listed.IsTruncated) break;
      markers = { KeyMarker: listed.NextKeyMarker!, VersionIdMarker: listed.NextVersionIdMarker! };
    }
    expect(seen).toEqual(aws.s3.listVersions(VERSIONED, key).map((v) => v.versionId));
    expect(seen).toHaveLength(3);
  });

  it('lists an unversioned bucket\'s objects as version null, which a delete by that id removes', async () => {
    const key = newKey();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'plain' }));
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: key }));
    expect(listed.Versions?.map((v) => [v.Key, v.VersionId, v.IsLatest])).toEqual([[key, 'null', true]]);
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key, VersionId: 'null' }));
    expect(aws.s3.getObject(BUCKET, key)).toBeUndefined();
    expect((await s3Error(s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key, VersionId: 'abc' })))).name).toBe('InvalidArgument');
    // Read by that id too; any other id is malformed there.
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'again' }));
    const read = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, VersionId: 'null' }));
    expect([await read.Body!.transformToString(), read.VersionId]).toEqual(['again', undefined]);
    expect((await s3Error(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, VersionId: 'abc' })))).name).toBe('InvalidArgument');
  });

  it('reads a version by id with GET and HEAD, names the current one, and answers a delete marker as S3 does', async () => {
    // Prepare: two versions, then a plain delete's marker.
    aws.s3.createBucket(VERSIONED, { versioned: true });
    const key = newKey();
    const first = await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: key, Body: 'one', ContentType: 'text/plain' }));
    const second = await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: key, Body: 'second' }));
    const current = await s3.send(new GetObjectCommand({ Bucket: VERSIONED, Key: key }));
    const marker = await s3.send(new DeleteObjectCommand({ Bucket: VERSIONED, Key: key }));

    // Act
    const old = await s3.send(new GetObjectCommand({ Bucket: VERSIONED, Key: key, VersionId: first.VersionId! }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: VERSIONED, Key: key, VersionId: first.VersionId! }));
    const gone = await s3Error(s3.send(new GetObjectCommand({ Bucket: VERSIONED, Key: key })));
    const markerRead = await s3Error(s3.send(new GetObjectCommand({ Bucket: VERSIONED, Key: key, VersionId: marker.VersionId! })));
    const markerHead = await s3Error(s3.send(new HeadObjectCommand({ Bucket: VERSIONED, Key: key, VersionId: marker.VersionId! })));
    const unknown = await s3Error(s3.send(new GetObjectCommand({ Bucket: VERSIONED, Key: key, VersionId: 'no-such-version' })));

    // Assess
    expect(current.VersionId).toBe(second.VersionId);
    expect([await old.Body!.transformToString(), old.VersionId, old.ContentType]).toEqual(['one', first.VersionId, 'text/plain']);
    expect([head.ContentLength, head.VersionId]).toEqual([3, first.VersionId]);
    expect([gone.name, gone.$response?.headers['x-amz-delete-marker'], gone.$response?.headers['x-amz-version-id']]).toEqual(['NoSuchKey', 'true', marker.VersionId]);
    expect([markerRead.name, markerRead.$metadata.httpStatusCode, markerRead.$response?.headers['x-amz-delete-marker']]).toEqual(['MethodNotAllowed', 405, 'true']);
    expect([markerHead.$metadata.httpStatusCode, markerHead.$response?.headers['x-amz-delete-marker']]).toEqual([405, 'true']);
    expect([unknown.name, unknown.$metadata.httpStatusCode]).toEqual(['NoSuchVersion', 404]);
  });

  it('copies a version by id, restores one over its own key, and refuses to copy a delete marker', async () => {
    aws.s3.createBucket(VERSIONED, { versioned: true });
    const key = newKey();
    const first = await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: key, Body: 'one' }));
    await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: key, Body: 'two' }));
    const source = (versionId: string) => `${VERSIONED}/${encodeURIComponent(key)}?versionId=${encodeURIComponent(versionId)}`;

    const copied = await s3.send(new CopyObjectCommand({ Bucket: VERSIONED, Key: `${key}.copy`, CopySource: source(first.VersionId!) }));
    const restored = await s3.send(new CopyObjectCommand({ Bucket: VERSIONED, Key: key, CopySource: source(first.VersionId!) }));
    const marker = await s3.send(new DeleteObjectCommand({ Bucket: VERSIONED, Key: key }));
    const fromMarker = await s3Error(s3.send(new CopyObjectCommand({ Bucket: VERSIONED, Key: `${key}.again`, CopySource: source(marker.VersionId!) })));

    expect(copied.CopySourceVersionId).toBe(first.VersionId);
    expect(aws.s3.getObject(VERSIONED, `${key}.copy`)?.body.toString()).toBe('one');
    expect(restored.VersionId).not.toBe(first.VersionId);
    expect(aws.s3.listVersions(VERSIONED, key).filter((v) => v.key === key)).toHaveLength(4);
    expect([fromMarker.name, fromMarker.$metadata.httpStatusCode]).toEqual(['InvalidRequest', 400]);
  });
});

describe('DeleteObjects', () => {
  const VERSIONED = 'conversa-media-versioned';

  it('deletes keys and versions in one request, each as DeleteObject would, and lists what went (nothing when quiet)', async () => {
    // Prepare: a key with two versions, another with one, both with characters XML escapes.
    aws.s3.createBucket(VERSIONED, { versioned: true });
    const [a, b] = [newKey('a&<b>.bin'), newKey('"b".bin')];
    const a1 = (await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: a, Body: '1' }))).VersionId!;
    const a2 = (await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: a, Body: '2' }))).VersionId!;
    const b1 = (await s3.send(new PutObjectCommand({ Bucket: VERSIONED, Key: b, Body: '1' }))).VersionId!;

    // Act: both of a's versions by id and b plainly; then b's version and marker, quietly.
    const loud = await s3.send(new DeleteObjectsCommand({ Bucket: VERSIONED, Delete: { Objects: [{ Key: a, VersionId: a1 }, { Key: a, VersionId: a2 }, { Key: b }] } }));
    const marker = loud.Deleted?.find((d) => d.Key === b)?.DeleteMarkerVersionId;
    // Through a client configured as the media store's (checksums only where S3 requires one, as here).
    const sparing = new S3Client({ endpoint: aws.url, forcePathStyle: true, region: 'us-east-1', credentials, requestChecksumCalculation: 'WHEN_REQUIRED' });
    const quiet = await sparing.send(new DeleteObjectsCommand({ Bucket: VERSIONED, Delete: { Quiet: true, Objects: [{ Key: b, VersionId: b1 }, { Key: b, VersionId: marker! }] } }));
    sparing.destroy();

    // Assess
    expect(loud.Errors ?? []).toEqual([]);
    expect(loud.Deleted?.map((d) => [d.Key, d.VersionId, d.DeleteMarker])).toEqual([
      [a, a1, undefined],
      [a, a2, undefined],
      [b, undefined, true],
    ]);
    expect(marker).toBeTruthy();
    expect([quiet.Deleted ?? [], quiet.Errors ?? []]).toEqual([[], []]);
    expect(aws.s3.listVersions(VERSIONED).filter((v) => v.key === a || v.key === b)).toEqual([]);
  });

  it('answers a key it could not delete in the result, and deletes the others', async () => {
    const [kept, gone] = [newKey(), newKey()];
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: gone, Body: 'x' }));

    const out = await s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: gone }, { Key: kept, VersionId: 'abc' }] } }));

    expect(out.Deleted?.map((d) => d.Key)).toEqual([gone]);
    expect(out.Errors?.map((e) => [e.Key, e.VersionId, e.Code])).toEqual([[kept, 'abc', 'InvalidArgument']]);
    expect(aws.s3.getObject(BUCKET, gone)).toBeUndefined();
  });

  it('refuses a request without a checksum, a body that does not match it, malformed XML and over 1000 keys, with 400 and nothing deleted', async () => {
    const key = newKey();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'x' }));
    const xml = (inner: string) => `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${inner}</Delete>`;
    const post = (body: string, md5 = createHash('md5').update(body).digest('base64')) =>
      fetch(`${aws.url}/${BUCKET}?delete`, { method: 'POST', body, headers: { 'content-type': 'application/xml', ...(md5 ? { 'content-md5': md5 } : {}) } });
    const one = xml(`<Object><Key>${key}</Key></Object>`);

    const answers = [
      await post(one, ''),
      await post(one, createHash('md5').update('other').digest('base64')),
      await post(xml('<Object><VersionId>1</VersionId></Object>')),
      await post('<Delete><Object><Key>x</Key></Object>'),
      await post(xml('<Quiet>true</Quiet>')),
    ];
    const tooMany = await s3Error(s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: Array.from({ length: 1001 }, (_, i) => ({ Key: `${key}${i}` })) } })));

    expect(answers.map((a) => a.status)).toEqual([400, 400, 400, 400, 400]);
    expect(await Promise.all(answers.map(errorCode))).toEqual(['InvalidRequest', 'BadDigest', 'MalformedXML', 'MalformedXML', 'MalformedXML']);
    expect([tooMany.name, tooMany.$metadata.httpStatusCode]).toEqual(['MalformedXML', 400]);
    expect(aws.s3.getObject(BUCKET, key)).toBeDefined();
  });
});

describe('presigned URLs', () => {
  it('uploads with a presigned PUT and downloads with a presigned GET that sets the disposition', async () => {
    const key = newKey('photo.png');
    const url = await presignUpload(key, 'image/png', ALL_BYTES.length);
    const put = await fetch(url, { method: 'PUT', body: ALL_BYTES, headers: { 'content-type': 'image/png' } });
    expect(put.status).toBe(200);
    expect(put.headers.get('etag')).toBe(`"${createHash('md5').update(ALL_BYTES).digest('hex')}"`);
    expect(aws.s3.getObject(BUCKET, key)).toMatchObject({ body: ALL_BYTES, contentType: 'image/png' });

    const disposition = `attachment; filename*=UTF-8''photo%20(1).png`;
    const download = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key, ResponseContentDisposition: disposition }), { expiresIn: 60 });
    const get = await fetch(download);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-disposition')).toBe(disposition);
    expect(get.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await get.arrayBuffer())).toEqual(ALL_BYTES);
  });

  it('stores binary/octet-stream when the upload names no type', async () => {
    const key = newKey();
    const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 60 });
    expect((await fetch(url, { method: 'PUT', body: new Uint8Array([1, 2, 3]) })).status).toBe(200);
    expect(aws.s3.getObject(BUCKET, key)?.contentType).toBe('binary/octet-stream');
  });

  it('refuses a tampered URL with 403 SignatureDoesNotMatch', async () => {
    const key = newKey();
    aws.s3.putObject(BUCKET, key, 'secret');
    const url = new URL(await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 60 }));
    expect((await fetch(url)).status).toBe(200);

    const signature = url.searchParams.get('X-Amz-Signature')!;
    const badSignature = new URL(url);
    badSignature.searchParams.set('X-Amz-Signature', `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`);
    const longer = new URL(url);
    longer.searchParams.set('X-Amz-Expires', '600');
    const otherKey = new URL(url);
    otherKey.pathname = otherKey.pathname.replace(/[^/]+$/, 'other.bin');
    const overridden = new URL(url);
    overridden.searchParams.set('response-content-type', 'text/html');
    for (const tampered of [badSignature, longer, otherKey, overridden]) {
      const response = await fetch(tampered);
      expect(response.status, tampered.href).toBe(403);
      expect(await errorCode(response)).toBe('SignatureDoesNotMatch');
    }
  });

  it('refuses an expired URL with 403 AccessDenied', async () => {
    const key = newKey();
    aws.s3.putObject(BUCKET, key, 'old news');
    const signingDate = new Date(Date.now() - 2 * 60 * 1000);
    const stale = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 60, signingDate });
    const response = await fetch(stale);
    expect(response.status).toBe(403);
    const body = await response.text();
    expect(body).toContain('<Code>AccessDenied</Code>');
    expect(body).toContain('<Message>Request has expired</Message>');
    // Signed as long ago, but still within its lifetime.
    const fresh = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 300, signingDate });
    expect((await fetch(fresh)).status).toBe(200);
  });

  it('refuses an upload of another size or type than signed, with 403', async () => {
    const key = newKey();
    const url = await presignUpload(key, 'image/png', 256);
    const attempts: [Buffer, string][] = [
      [Buffer.concat([ALL_BYTES, Buffer.from([0])]), 'image/png'],
      [ALL_BYTES.subarray(1), 'image/png'],
      [ALL_BYTES, 'text/html'],
    ];
    for (const [body, contentType] of attempts) {
      const response = await fetch(url, { method: 'PUT', body, headers: { 'content-type': contentType } });
      expect(response.status).toBe(403);
      expect(await errorCode(response)).toBe('SignatureDoesNotMatch');
    }
    expect(aws.s3.getObject(BUCKET, key)).toBeUndefined();
    // Unsigned x-amz-* headers are refused as well.
    const extra = await fetch(url, { method: 'PUT', body: ALL_BYTES, headers: { 'content-type': 'image/png', 'x-amz-meta-owner': 'someone' } });
    expect(extra.status).toBe(403);
    expect(await extra.text()).toContain('<HeadersNotSigned>x-amz-meta-owner</HeadersNotSigned>');
    expect((await fetch(url, { method: 'PUT', body: ALL_BYTES, headers: { 'content-type': 'image/png' } })).status).toBe(200);
  });
});

describe('CORS', () => {
  it('answers preflights for GET, PUT and HEAD from any origin, and refuses other methods', async () => {
    const url = `${aws.url}/${BUCKET}/${encodeURIComponent(newKey()).replace(/%2F/g, '/')}`;
    const preflight = await fetch(url, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'Content-Type, X-Custom' },
    });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')?.split(', ')).toEqual(expect.arrayContaining(['GET', 'PUT', 'HEAD']));
    expect(preflight.headers.get('access-control-allow-headers')).toBe('content-type, x-custom');
    expect(Number(preflight.headers.get('access-control-max-age'))).toBeGreaterThan(0);

    const refused = await fetch(url, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'DELETE' } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('lets a page on another origin read objects and their ETag', async () => {
    const key = newKey();
    aws.s3.putObject(BUCKET, key, 'shared');
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 60 });
    const get = await fetch(url, { headers: { origin: 'http://localhost:5173' } });
    expect(get.status).toBe(200);
    expect(get.headers.get('access-control-allow-origin')).toBe('*');
    expect(get.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('etag');
    expect(await get.text()).toBe('shared');
    // Without an Origin (not a cross-origin request) there is nothing to allow.
    expect((await fetch(url)).headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('object size limit', () => {
  it('refuses a Content-Length above the maximum with 400 EntityTooLarge', async () => {
    const small = await startAwsStandIns({ onScheduleFire: async () => undefined, s3: { maxObjectBytes: 1024 } });
    small.s3.createBucket(BUCKET);
    const smallClient = client(small.url);
    try {
      const error = await s3Error(smallClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'big', Body: Buffer.alloc(1025) })));
      expect(error.name).toBe('EntityTooLarge');
      expect(error.$metadata.httpStatusCode).toBe(400);
      expect(small.s3.getObject(BUCKET, 'big')).toBeUndefined();

      const url = await getSignedUrl(smallClient, new PutObjectCommand({ Bucket: BUCKET, Key: 'big', ContentLength: 4096 }), {
        expiresIn: 60,
        signableHeaders: new Set(['content-length']),
      });
      const response = await fetch(url, { method: 'PUT', body: Buffer.alloc(4096) });
      expect(response.status).toBe(400);
      expect(await errorCode(response)).toBe('EntityTooLarge');

      await smallClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'fits', Body: Buffer.alloc(1024) }));
      expect(small.s3.getObject(BUCKET, 'fits')?.body.length).toBe(1024);
    } finally {
      smallClient.destroy();
      await small.close();
    }
  });
});

describe('the other services on the same server', () => {
  it('still serves SQS, and paths of unknown buckets still go to the REST routes', async () => {
    const sqs = new SQSClient({ endpoint: aws.url, region: 'us-east-1', credentials });
    try {
      const queueUrl = aws.sqs.createQueue('s3-neighbour');
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'still here' }));
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1 }));
      expect(Messages?.map((message) => message.Body)).toEqual(['still here']);
    } finally {
      sqs.destroy();
    }
    const unknown = await fetch(`${aws.url}/not-a-bucket/key`, { method: 'PUT', body: 'x' });
    expect(unknown.status).toBe(400);
    expect(unknown.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
  });
});
