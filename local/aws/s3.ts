/**
 * S3 stand-in: path-style object storage in memory (PutObject, HeadObject, GetObject, CopyObject,
 * DeleteObject, DeleteObjects, and for a versioned bucket ListObjectVersions and a version by id
 * to GET, HEAD, DELETE and copy from) behind the bucket's CORS rule, for S3Client with forcePathStyle and for browsers
 * holding presigned URLs. Query-signed (presigned) requests are verified, signature and expiry, so
 * that a tampered or stale URL, or an upload of another size or type than signed, fails here as it
 * does on AWS. Header-signed SDK requests are not, like the other stand-ins: any credentials do.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';
import { readBody } from '../body';

export interface LocalS3Options {
  /** Larger uploads are refused with EntityTooLarge. @default 100 MiB */
  maxObjectBytes?: number;
  /** The secret presigned URLs must be signed with. @default 'local' */
  secretAccessKey?: string;
}

export interface S3ObjectView {
  body: Buffer;
  contentType: string;
  /** User metadata (`x-amz-meta-*`), keys in lower case as S3 returns them. */
  metadata: Record<string, string>;
  lastModified: Date;
  /** Quoted, as in the ETag header. */
  etag: string;
}

/** One version of a key in a versioned bucket (ListObjectVersions), or an unversioned object's (`null`). */
export interface S3VersionView {
  key: string;
  versionId: string;
  isLatest: boolean;
  deleteMarker: boolean;
}

export interface BucketOptions {
  /** Keeps every version of a key, as the deployed media bucket does: a plain DELETE leaves a delete marker. */
  versioned?: boolean;
}

export interface PutOptions {
  contentType?: string;
  metadata?: Record<string, string>;
}

interface StoredObject {
  readonly body: Buffer;
  readonly etag: string;
  readonly contentType: string;
  readonly metadata: Record<string, string>;
  /** Content headers given at upload (cache-control, content-disposition...), returned with the object. */
  readonly headers: Record<string, string>;
  /** Verified x-amz-checksum-* values by algorithm, returned when the client asks (x-amz-checksum-mode). */
  readonly checksums: Record<string, string>;
  readonly lastModified: Date;
}

/** `object` absent: a delete marker. */
interface Version {
  readonly versionId: string;
  readonly object?: StoredObject;
  readonly lastModified: Date;
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body?: Buffer | string;
}

interface Target {
  bucket: string;
  key: string;
  rawPath: string;
  /** Decoded query parameters in order; `+` is not a space in S3 URLs. */
  query: [string, string][];
}

class S3Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    /** Extra elements of the XML error body. */
    readonly details: Record<string, string> = {},
    /** Headers of the error answer (a delete marker's). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = code;
  }
}

const DEFAULT_MAX_OBJECT_BYTES = 100 * 1024 * 1024;
const DEFAULT_SECRET_ACCESS_KEY = 'local';
const DEFAULT_CONTENT_TYPE = 'binary/octet-stream';
const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2 * 1024;
const MAX_PRESIGN_EXPIRES_SECONDS = 7 * 24 * 60 * 60;
/** Room for aws-chunked framing (chunk sizes, signatures, trailers) on top of the decoded length. */
const CHUNK_FRAMING_ALLOWANCE = 1024 * 1024;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const SIGNING_ALGORITHM = 'AWS4-HMAC-SHA256';
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const META_PREFIX = 'x-amz-meta-';
/** The deployed bucket's CORS rule (lib/constructs/media-bucket.ts): any origin and request header, these methods, etag readable. */
const CORS_METHODS = ['GET', 'PUT', 'HEAD'];
const CORS_MAX_AGE_SECONDS = 3600;
/** Content headers S3 keeps with an object and answers with. */
const STORED_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];
/** GetObject's query overrides of response headers. */
const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
  'response-content-language': 'content-language',
  'response-content-type': 'content-type',
  'response-expires': 'expires',
};
/** Sub-resources of operations not stood in for: refused rather than mistaken for the plain operation. */
const UNSUPPORTED_SUBRESOURCES = [
  'uploads',
  'uploadId',
  'partNumber',
  'acl',
  'tagging',
  'attributes',
  'retention',
  'legal-hold',
  'restore',
  'select',
  'torrent',
];
/** The flexible checksums node can compute; others (crc32c, crc64nvme) are accepted unchecked. */
const CHECKSUMS: Record<string, (body: Buffer) => string> = {
  crc32: (body) => {
    const digest = Buffer.alloc(4);
    digest.writeUInt32BE(crc32(body));
    return digest.toString('base64');
  },
  sha1: (body) => createHash('sha1').update(body).digest('base64'),
  sha256: (body) => createHash('sha256').update(body).digest('base64'),
};

function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** RFC 3986 encoding, as SigV4 canonicalises paths and query parameters. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

function xmlEscape(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function splitUrl(rawUrl: string): { rawPath: string; rawQuery: string } {
  const queryStart = rawUrl.indexOf('?');
  return queryStart < 0 ? { rawPath: rawUrl, rawQuery: '' } : { rawPath: rawUrl.slice(0, queryStart), rawQuery: rawUrl.slice(queryStart + 1) };
}

/** The bucket of a path-style request target (path and query, as in IncomingMessage.url). */
function bucketOf(rawUrl: string): string | undefined {
  const { rawPath } = splitUrl(rawUrl);
  if (!rawPath.startsWith('/')) return undefined;
  const slash = rawPath.indexOf('/', 1);
  return safeDecode(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash));
}

function parseTarget(rawUrl: string): Target {
  const invalid = () => new S3Error('InvalidURI', "Couldn't parse the specified URI.", 400);
  const { rawPath, rawQuery } = splitUrl(rawUrl);
  const bucket = bucketOf(rawUrl);
  const slash = rawPath.indexOf('/', 1);
  const key = slash < 0 ? '' : safeDecode(rawPath.slice(slash + 1));
  if (bucket === undefined || key === undefined) throw invalid();
  const query: [string, string][] = [];
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const name = safeDecode(equals < 0 ? pair : pair.slice(0, equals));
    const value = safeDecode(equals < 0 ? '' : pair.slice(equals + 1));
    if (name === undefined || value === undefined) throw invalid();
    query.push([name, value]);
  }
  return { bucket, key, rawPath, query };
}

function parseAmzDate(value: string): number | undefined {
  const parts = AMZ_DATE.exec(value);
  if (!parts) return undefined;
  const [year, month, day, hours, minutes, seconds] = parts.slice(1).map(Number) as [number, number, number, number, number, number];
  return Date.UTC(year, month - 1, day, hours, minutes, seconds);
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function noSuchKey(key: string, headers: Record<string, string> = {}): S3Error {
  return new S3Error('NoSuchKey', 'The specified key does not exist.', 404, { Key: key }, headers);
}

function invalidVersionId(versionId: string): S3Error {
  return new S3Error('InvalidArgument', 'Invalid version id specified', 400, { ArgumentName: 'versionId', ArgumentValue: versionId });
}

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** The text of an XML element's content: entities and character references decoded, CDATA kept as is. */
function xmlText(raw: string): string | undefined {
  let bad = false;
  const text = raw.replace(/<!\[CDATA\[([\s\S]*?)\]\]>|&(#x[0-9a-fA-F]+|#\d+|[a-z]+);|[<&]/g, (match, cdata: string | undefined, entity: string | undefined) => {
    if (cdata !== undefined) return cdata;
    if (entity === undefined) {
      bad = true;
      return match;
    }
    if (entity.startsWith('#')) {
      const code = entity[1] === 'x' ? Number.parseInt(entity.slice(2), 16) : Number(entity.slice(1));
      if (code > 0x10ffff) bad = true;
      return bad ? match : String.fromCodePoint(code);
    }
    const decoded = XML_ENTITIES[entity];
    if (decoded === undefined) bad = true;
    return decoded ?? match;
  });
  return bad ? undefined : text;
}

/** The first `<name>` child's text in `xml`; undefined when there is none, null when it is malformed. */
function childText(xml: string, name: string): string | undefined | null {
  const match = new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>|<${name}(?:\\s[^>]*)?/>`).exec(xml);
  if (!match) return undefined;
  return xmlText(match[1] ?? '') ?? null;
}

function authQueryError(message: string): S3Error {
  return new S3Error('AuthorizationQueryParametersError', message, 400);
}

function isAwsChunked(headers: IncomingHttpHeaders): boolean {
  const encoding = header(headers, 'content-encoding') ?? '';
  return encoding.split(',').some((part) => part.trim() === 'aws-chunked') || (header(headers, 'x-amz-content-sha256') ?? '').startsWith('STREAMING-');
}

/** The payload of an aws-chunked body (`<hex size>[;chunk-signature=...]\r\n<data>\r\n ... 0\r\n<trailers>\r\n\r\n`) and its trailers. */
function decodeAwsChunked(raw: Buffer): { body: Buffer; trailers: Record<string, string> } {
  const malformed = () => new S3Error('IncompleteBody', 'The aws-chunked request body is malformed.', 400);
  const chunks: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', offset);
    if (lineEnd < 0) throw malformed();
    const sizeField = raw.toString('latin1', offset, lineEnd).split(';')[0]!.trim();
    if (!/^[0-9a-fA-F]+$/.test(sizeField)) throw malformed();
    const size = Number.parseInt(sizeField, 16);
    offset = lineEnd + 2;
    if (size === 0) break;
    if (offset + size + 2 > raw.length || raw.toString('latin1', offset + size, offset + size + 2) !== '\r\n') throw malformed();
    chunks.push(raw.subarray(offset, offset + size));
    offset += size + 2;
  }
  const trailers: Record<string, string> = {};
  for (const line of raw.toString('latin1', offset).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { body: Buffer.concat(chunks), trailers };
}

/** User metadata from x-amz-meta-* headers and, in presigned URLs, query parameters (S3 takes both). */
function metadataOf(headers: IncomingHttpHeaders, query: [string, string][]): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of query) if (name.toLowerCase().startsWith(META_PREFIX)) metadata[name.toLowerCase().slice(META_PREFIX.length)] = value;
  for (const name of Object.keys(headers)) if (name.startsWith(META_PREFIX)) metadata[name.slice(META_PREFIX.length)] = header(headers, name)!;
  const size = Object.entries(metadata).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + Buffer.byteLength(value), 0);
  if (size > MAX_METADATA_BYTES) throw new S3Error('MetadataTooLarge', `User metadata is limited to ${MAX_METADATA_BYTES} bytes.`, 400);
  return metadata;
}

function storedHeadersOf(headers: IncomingHttpHeaders): Record<string, string> {
  const stored: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    let value = header(headers, name);
    // aws-chunked describes the transfer, not the object.
    if (name === 'content-encoding' && value !== undefined) {
      value = value
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== '' && part !== 'aws-chunked')
        .join(',');
    }
    if (value) stored[name] = value;
  }
  return stored;
}

/** Checks Content-MD5 and the x-amz-checksum-* values (header or trailer) against the body; answers the verified checksums. */
function verifiedChecksums(headers: IncomingHttpHeaders, trailers: Record<string, string>, body: Buffer): Record<string, string> {
  const md5 = header(headers, 'content-md5');
  if (md5 !== undefined) {
    const expected = Buffer.from(md5, 'base64');
    if (expected.length !== 16) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified is not valid.', 400);
    if (!expected.equals(createHash('md5').update(body).digest())) {
      throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what was received.', 400);
    }
  }
  const verified: Record<string, string> = {};
  for (const [algorithm, compute] of Object.entries(CHECKSUMS)) {
    const name = `x-amz-checksum-${algorithm}`;
    const given = trailers[name] ?? header(headers, name);
    if (given === undefined) continue;
    if (compute(body) !== given) throw new S3Error('BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`, 400);
    verified[algorithm] = given;
  }
  return verified;
}

function requestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

/** ListObjectVersions' page size when the request names none (S3's). */
const MAX_LIST_KEYS = 1000;
/** A checksum of the body, as S3 takes one instead of Content-MD5. */
const CHECKSUM_HEADER = /^x-amz-checksum-(crc32|crc32c|crc64nvme|sha1|sha256)$/;
/** Keys one DeleteObjects request may name (S3's limit). */
const MAX_DELETE_KEYS = 1000;
/** A DeleteObjects body: a thousand keys of a kilobyte, escaped, with room for the markup. */
const MAX_DELETE_BODY_BYTES = 8 * 1024 * 1024;

/** What one delete did, as DeleteObject's headers and DeleteObjects' `<Deleted>` say it. */
interface DeleteOutcome {
  /** The version deleted for good (a delete by id). */
  versionId?: string;
  /** A delete marker was made (a plain delete in a versioned bucket) or deleted (by its id). */
  deleteMarker?: boolean;
  /** The marker's id: the one made, or the one deleted. */
  deleteMarkerVersionId?: string;
}

export class LocalS3 {
  /** The current object of each key, as GET, HEAD and listKeys see it. */
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  /** A versioned bucket's versions of each key, oldest first (the last is the current one, or a delete marker). */
  private readonly versions = new Map<string, Map<string, Version[]>>();
  private readonly maxObjectBytes: number;
  private readonly secretAccessKey: string;

  constructor(options: LocalS3Options = {}) {
    this.maxObjectBytes = options.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES;
    this.secretAccessKey = options.secretAccessKey ?? DEFAULT_SECRET_ACCESS_KEY;
  }

  /** Idempotent. Only requests to created buckets reach the stand-in. */
  createBucket(name: string, options: BucketOptions = {}): void {
    if (!BUCKET_NAME.test(name)) throw new Error(`Invalid S3 bucket name: ${name}`);
    if (!this.buckets.has(name)) this.buckets.set(name, new Map());
    // Like S3's, versioning once on stays on.
    if (options.versioned && !this.versions.has(name)) this.versions.set(name, new Map());
  }

  /** Stores an object as PutObject would, for seeding. */
  putObject(bucket: string, key: string, body: Buffer | string, options: PutOptions = {}): void {
    const data = Buffer.from(body);
    this.store(bucket, key, {
      body: data,
      etag: `"${createHash('md5').update(data).digest('hex')}"`,
      contentType: options.contentType ?? DEFAULT_CONTENT_TYPE,
      metadata: Object.fromEntries(Object.entries(options.metadata ?? {}).map(([name, value]) => [name.toLowerCase(), value])),
      headers: {},
      checksums: {},
      lastModified: new Date(),
    });
  }

  getObject(bucket: string, key: string): S3ObjectView | undefined {
    const object = this.objects(bucket).get(key);
    if (!object) return undefined;
    const { body, contentType, metadata, lastModified, etag } = object;
    return { body: Buffer.from(body), contentType, metadata: { ...metadata }, lastModified, etag };
  }

  /** Keys in S3's listing order. */
  listKeys(bucket: string, prefix = ''): string[] {
    return [...this.objects(bucket).keys()].filter((key) => key.startsWith(prefix)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  /**
   * Every version of the keys under `prefix`, by key in listing order and newest first, delete
   * markers included; an unversioned bucket's objects as version `null`.
   */
  listVersions(bucket: string, prefix = ''): S3VersionView[] {
    const versions = this.versions.get(bucket);
    const keys = versions ? [...versions.keys()] : [...this.objects(bucket).keys()];
    const sorted = keys.filter((key) => key.startsWith(prefix)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return sorted.flatMap((key) => {
      if (!versions) return [{ key, versionId: 'null', isLatest: true, deleteMarker: false }];
      const list = versions.get(key)!;
      return list.map((version, index) => ({ key, versionId: version.versionId, isLatest: index === list.length - 1, deleteMarker: !version.object })).reverse();
    });
  }

  /** Whether the request target (path and query, as in IncomingMessage.url) is for S3: its first path segment names a created bucket. */
  serves(rawUrl: string): boolean {
    const bucket = bucketOf(rawUrl);
    return bucket !== undefined && this.buckets.has(bucket);
  }

  /** Answers a request `serves` accepted; never rejects. */
  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const id = requestId();
    let reply: Reply;
    try {
      reply = await this.dispatch(request);
    } catch (error) {
      if (!(error instanceof S3Error)) console.error('S3 stand-in failure:', error);
      const failure = error instanceof S3Error ? error : new S3Error('InternalError', 'The local stand-in failed; see its log.', 500);
      reply = this.errorReply(failure, id);
      // A body not yet received (refused before reading) is not worth waiting for.
      if (!request.complete) reply.headers.connection = 'close';
      request.resume();
    }
    this.send(request, response, reply, id);
  }

  private objects(bucket: string): Map<string, StoredObject> {
    const objects = this.buckets.get(bucket);
    if (!objects) throw new Error(`No local S3 bucket ${bucket}`);
    return objects;
  }

  private store(bucket: string, key: string, object: StoredObject): string | undefined {
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new S3Error('KeyTooLongError', 'Your key is too long.', 400);
    this.objects(bucket).set(key, object);
    return this.addVersion(bucket, key, object, object.lastModified);
  }

  /** Appends a version (a delete marker without `object`) in a versioned bucket; its id, else undefined. */
  private addVersion(bucket: string, key: string, object: StoredObject | undefined, lastModified: Date): string | undefined {
    const versions = this.versions.get(bucket);
    if (!versions) return undefined;
    const versionId = randomBytes(16).toString('base64url');
    versions.set(key, [...(versions.get(key) ?? []), { versionId, ...(object ? { object } : {}), lastModified }]);
    return versionId;
  }

  /**
   * DeleteObject: without a version, the current object goes (a versioned bucket keeps it as an
   * earlier version behind a new delete marker); with one, that version goes for good and the
   * newest left, if an object, is current again.
   */
  private deleteOne(bucket: string, key: string, versionId: string | undefined): DeleteOutcome {
    const objects = this.objects(bucket);
    const versions = this.versions.get(bucket);
    if (versionId === undefined) {
      objects.delete(key);
      const marker = this.addVersion(bucket, key, undefined, new Date());
      return marker ? { deleteMarker: true, deleteMarkerVersionId: marker } : {};
    }
    if (!versions) {
      if (versionId !== 'null') throw invalidVersionId(versionId);
      objects.delete(key);
      return { versionId };
    }
    const list = versions.get(key) ?? [];
    const removed = list.find((version) => version.versionId === versionId);
    // A version not there (deleted already) is no error, as on S3.
    if (!removed) return { versionId };
    const left = list.filter((version) => version !== removed);
    if (left.length > 0) versions.set(key, left);
    else versions.delete(key);
    const current = left.at(-1)?.object;
    if (current) objects.set(key, current);
    else objects.delete(key);
    return removed.object ? { versionId } : { versionId, deleteMarker: true, deleteMarkerVersionId: versionId };
  }

  private deleteReply(target: Target, versionId: string | undefined): Reply {
    const outcome = this.deleteOne(target.bucket, target.key, versionId);
    const id = outcome.versionId ?? outcome.deleteMarkerVersionId;
    // An unversioned bucket's `null` version names no version in the answer.
    const named = id !== undefined && this.versions.has(target.bucket);
    return { status: 204, headers: { ...(named ? { 'x-amz-version-id': id } : {}), ...(outcome.deleteMarker ? { 'x-amz-delete-marker': 'true' } : {}) } };
  }

  /**
   * DeleteObjects (POST /<bucket>?delete): `<Delete><Object><Key/><VersionId/></Object>…<Quiet/></Delete>`,
   * with its Content-MD5 or an x-amz-checksum-* header, as S3 requires. Each key is deleted as
   * DeleteObject would; the answer lists each `<Deleted>` (none when quiet) and each `<Error>`.
   */
  private async deleteObjects(request: IncomingMessage, target: Target): Promise<Reply> {
    this.objects(target.bucket);
    const headers = request.headers;
    const tooLarge = () => new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema', 400);
    const chunked = isAwsChunked(headers);
    const raw = await readBody(request, MAX_DELETE_BODY_BYTES, tooLarge);
    const { body, trailers } = chunked ? decodeAwsChunked(raw) : { body: raw, trailers: {} };
    const checked = header(headers, 'content-md5') !== undefined || Object.keys({ ...headers, ...trailers }).some((name) => CHECKSUM_HEADER.test(name));
    if (!checked) throw new S3Error('InvalidRequest', 'Missing required header for this request: Content-MD5 or x-amz-checksum-*', 400);
    verifiedChecksums(headers, trailers, body);

    const malformed = tooLarge;
    const xml = body.toString('utf8').replace(/^\uFEFF?\s*(<\?xml[^>]*\?>)?\s*/, '');
    const root = /^<Delete(?:\s[^>]*)?>([\s\S]*)<\/Delete>\s*$/.exec(xml);
    if (!root) throw malformed();
    const objects = [...root[1]!.matchAll(/<Object(?:\s[^>]*)?>([\s\S]*?)<\/Object>/g)].map((match) => {
      const key = childText(match[1]!, 'Key');
      const versionId = childText(match[1]!, 'VersionId');
      if (!key || versionId === null) throw malformed();
      return { key, ...(versionId !== undefined ? { versionId } : {}) };
    });
    if (objects.length === 0 || objects.length > MAX_DELETE_KEYS) throw malformed();
    const quiet = childText(root[1]!.replace(/<Object(?:\s[^>]*)?>[\s\S]*?<\/Object>/g, ''), 'Quiet');
    if (quiet === null || (quiet !== undefined && quiet !== 'true' && quiet !== 'false')) throw malformed();

    const versioned = this.versions.has(target.bucket);
    const entries = objects.map(({ key, versionId }) => {
      const named = `<Key>${xmlEscape(key)}</Key>${versionId !== undefined ? `<VersionId>${xmlEscape(versionId)}</VersionId>` : ''}`;
      try {
        if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new S3Error('KeyTooLongError', 'Your key is too long.', 400);
        const outcome = this.deleteOne(target.bucket, key, versionId);
        if (quiet === 'true') return '';
        const marker = outcome.deleteMarker ? `<DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>${xmlEscape(outcome.deleteMarkerVersionId!)}</DeleteMarkerVersionId>` : '';
        return `<Deleted>${versioned || versionId !== undefined ? named : `<Key>${xmlEscape(key)}</Key>`}${marker}</Deleted>`;
      } catch (error) {
        if (!(error instanceof S3Error)) throw error;
        return `<Error>${named}<Code>${error.code}</Code><Message>${xmlEscape(error.message)}</Message></Error>`;
      }
    });
    const result = `${XML_DECLARATION}<DeleteResult xmlns="${S3_XMLNS}">${entries.join('')}</DeleteResult>`;
    return { status: 200, headers: { 'content-type': 'application/xml' }, body: result };
  }

  /** ListObjectVersions (GET /<bucket>?versions): `prefix`, `max-keys`, `key-marker` and `version-id-marker`; no delimiter. */
  private listVersionsReply(target: Target, query: Map<string, string>): Reply {
    if (query.has('delimiter')) throw new S3Error('NotImplemented', 'The local S3 does not support a delimiter in ListObjectVersions.', 501);
    const prefix = query.get('prefix') ?? '';
    const maxKeys = Math.min(Number(query.get('max-keys') ?? MAX_LIST_KEYS), MAX_LIST_KEYS);
    if (!Number.isInteger(maxKeys) || maxKeys < 0) throw new S3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', 400);
    const keyMarker = query.get('key-marker') ?? '';
    const versionMarker = query.get('version-id-marker');
    const all = this.listVersions(target.bucket, prefix);
    // After the marker: that key's versions after version-id-marker, else the keys after key-marker.
    const atVersion = versionMarker === undefined ? -1 : all.findIndex((v) => v.key === keyMarker && v.versionId === versionMarker);
    const afterKey = all.findIndex((v) => Buffer.compare(Buffer.from(v.key), Buffer.from(keyMarker)) > 0);
    const start = keyMarker === '' ? 0 : atVersion >= 0 ? atVersion + 1 : afterKey >= 0 ? afterKey : all.length;
    const page = all.slice(start, start + maxKeys);
    const truncated = start + maxKeys < all.length;
    const objects = this.objects(target.bucket);
    const entries = page
      .map((v) => {
        const version = this.versions.get(target.bucket)?.get(v.key)?.find((entry) => entry.versionId === v.versionId);
        const object = version ? version.object : objects.get(v.key);
        const lastModified = (version?.lastModified ?? object?.lastModified ?? new Date()).toISOString();
        const common = `<Key>${xmlEscape(v.key)}</Key><VersionId>${xmlEscape(v.versionId)}</VersionId><IsLatest>${v.isLatest}</IsLatest><LastModified>${lastModified}</LastModified>`;
        return v.deleteMarker
          ? `<DeleteMarker>${common}</DeleteMarker>`
          : `<Version>${common}<ETag>${xmlEscape(object!.etag)}</ETag><Size>${object!.body.length}</Size><StorageClass>STANDARD</StorageClass></Version>`;
      })
      .join('');
    const last = page.at(-1);
    const next = truncated && last ? `<NextKeyMarker>${xmlEscape(last.key)}</NextKeyMarker><NextVersionIdMarker>${xmlEscape(last.versionId)}</NextVersionIdMarker>` : '';
    const body =
      `${XML_DECLARATION}<ListVersionsResult xmlns="${S3_XMLNS}"><Name>${xmlEscape(target.bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix>` +
      `<KeyMarker>${xmlEscape(keyMarker)}</KeyMarker><VersionIdMarker>${xmlEscape(versionMarker ?? '')}</VersionIdMarker><MaxKeys>${maxKeys}</MaxKeys>` +
      `<IsTruncated>${truncated}</IsTruncated>${next}${entries}</ListVersionsResult>`;
    return { status: 200, headers: { 'content-type': 'application/xml' }, body };
  }

  private async dispatch(request: IncomingMessage): Promise<Reply> {
    const method = request.method ?? 'GET';
    const target = parseTarget(request.url ?? '/');
    if (method === 'OPTIONS') return this.preflight(request.headers);
    const query = new Map(target.query);
    if (query.has('X-Amz-Algorithm')) this.verifyPresigned(method, target, query, request.headers);
    if (target.key === '') {
      if (method === 'GET' && query.has('versions')) return this.listVersionsReply(target, query);
      if (method === 'POST' && query.has('delete')) return this.deleteObjects(request, target);
      throw new S3Error('NotImplemented', 'The local S3 supports object operations, ListObjectVersions and DeleteObjects only.', 501);
    }
    // A PutObject names no version (S3 makes one): a versionId there would be one of the sub-resources of a version not stood in for.
    const unsupported = UNSUPPORTED_SUBRESOURCES.find((name) => query.has(name)) ?? (query.has('versionId') && method === 'PUT' ? 'versionId' : undefined);
    if (unsupported) throw new S3Error('NotImplemented', `The local S3 does not support the ${unsupported} sub-resource.`, 501);

    switch (method) {
      case 'PUT':
        return header(request.headers, 'x-amz-copy-source') === undefined ? this.put(request, target) : this.copy(request, target);
      case 'GET':
      case 'HEAD':
        return this.get(request.headers, target, method === 'HEAD', query.get('versionId'));
      case 'DELETE':
        return this.deleteReply(target, query.get('versionId'));
      default:
        throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.', 405, { Method: method, ResourceType: 'OBJECT' });
    }
  }

  private async put(request: IncomingMessage, target: Target): Promise<Reply> {
    const headers = request.headers;
    const chunked = isAwsChunked(headers);
    const declared = header(headers, chunked ? 'x-amz-decoded-content-length' : 'content-length');
    if (declared === undefined) throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.', 411);
    const size = Number(declared);
    if (!/^\d+$/.test(declared) || !Number.isSafeInteger(size)) throw new S3Error('InvalidArgument', 'The Content-Length is not a valid number.', 400);
    const tooLarge = () =>
      new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size.', 400, {
        ProposedSize: String(size),
        MaxSizeAllowed: String(this.maxObjectBytes),
      });
    if (size > this.maxObjectBytes) throw tooLarge();
    if (Buffer.byteLength(target.key) > MAX_KEY_BYTES) throw new S3Error('KeyTooLongError', 'Your key is too long.', 400);
    const metadata = metadataOf(headers, target.query);

    const raw = await readBody(request, chunked ? size + CHUNK_FRAMING_ALLOWANCE : size, tooLarge);
    const { body, trailers } = chunked ? decodeAwsChunked(raw) : { body: raw, trailers: {} };
    if (body.length !== size) throw new S3Error('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.', 400);
    const checksums = verifiedChecksums(headers, trailers, body);
    const etag = `"${createHash('md5').update(body).digest('hex')}"`;
    const versionId = this.store(target.bucket, target.key, {
      body,
      etag,
      contentType: header(headers, 'content-type') ?? DEFAULT_CONTENT_TYPE,
      metadata,
      headers: storedHeadersOf(headers),
      checksums,
      lastModified: new Date(),
    });
    const checksumHeaders = Object.fromEntries(Object.entries(checksums).map(([algorithm, value]) => [`x-amz-checksum-${algorithm}`, value]));
    return { status: 200, headers: { etag, ...checksumHeaders, ...(versionId ? { 'x-amz-version-id': versionId } : {}) } };
  }

  private copy(request: IncomingMessage, target: Target): Reply {
    request.resume();
    // `<bucket>/<key>`, URL-encoded, and `?versionId=<id>` to copy a version other than the current one.
    const [rawSource, rawSourceQuery = ''] = header(request.headers, 'x-amz-copy-source')!.split('?') as [string, string?];
    const source = safeDecode(rawSource.startsWith('/') ? rawSource.slice(1) : rawSource);
    const slash = source?.indexOf('/') ?? -1;
    if (source === undefined || slash <= 0 || slash === source.length - 1) throw new S3Error('InvalidArgument', 'Invalid copy source object key', 400);
    const [sourceBucket, sourceKey] = [source.slice(0, slash), source.slice(slash + 1)];
    if (!this.buckets.has(sourceBucket)) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', 404, { BucketName: sourceBucket });
    const versionParameter = new URLSearchParams(rawSourceQuery.replace(/\+/g, '%2B')).get('versionId') ?? undefined;
    const found = this.find(sourceBucket, sourceKey, versionParameter);
    if (found.deleteMarker) {
      // A marker as the current version: the key reads as gone; named by its id: refused as such.
      if (versionParameter === undefined) throw noSuchKey(sourceKey);
      throw new S3Error('InvalidRequest', 'The source of a copy request may not specifically refer to a delete marker by version id.', 400);
    }
    const original = found.object;
    if (!original) throw noSuchKey(sourceKey);

    const directive = header(request.headers, 'x-amz-metadata-directive') ?? 'COPY';
    if (directive !== 'COPY' && directive !== 'REPLACE') throw new S3Error('InvalidArgument', 'Unknown metadata directive.', 400);
    // Copying an earlier version over its own key is how a version is restored: allowed.
    if (directive === 'COPY' && sourceBucket === target.bucket && sourceKey === target.key && versionParameter === undefined) {
      throw new S3Error('InvalidRequest', 'This copy request is illegal: it copies an object onto itself without changing its metadata.', 400);
    }
    const described =
      directive === 'REPLACE'
        ? {
            contentType: header(request.headers, 'content-type') ?? DEFAULT_CONTENT_TYPE,
            metadata: metadataOf(request.headers, target.query),
            headers: storedHeadersOf(request.headers),
          }
        : { contentType: original.contentType, metadata: original.metadata, headers: original.headers };
    const lastModified = new Date();
    const versionId = this.store(target.bucket, target.key, { body: original.body, etag: original.etag, checksums: original.checksums, lastModified, ...described });
    const result =
      `${XML_DECLARATION}<CopyObjectResult xmlns="${S3_XMLNS}"><LastModified>${lastModified.toISOString()}</LastModified>` +
      `<ETag>${xmlEscape(original.etag)}</ETag></CopyObjectResult>`;
    const headers = {
      'content-type': 'application/xml',
      ...(versionId ? { 'x-amz-version-id': versionId } : {}),
      ...(found.versionId ? { 'x-amz-copy-source-version-id': found.versionId } : {}),
    };
    return { status: 200, headers, body: result };
  }

  /**
   * The object a GET, HEAD or copy names: the current one, or with `versionId` that version (an
   * unversioned bucket's objects are version `null`). `versionId` in the answer: the version's id,
   * in a versioned bucket. Throws as S3 does for a version that is not there or is malformed.
   */
  private find(bucket: string, key: string, versionId: string | undefined): { object?: StoredObject; versionId?: string; deleteMarker?: Version } {
    const objects = this.objects(bucket);
    const versions = this.versions.get(bucket);
    if (!versions) {
      if (versionId !== undefined && versionId !== 'null') throw invalidVersionId(versionId);
      const object = objects.get(key);
      return object ? { object } : {};
    }
    const list = versions.get(key) ?? [];
    const version = versionId === undefined ? list.at(-1) : list.find((v) => v.versionId === versionId);
    if (!version) {
      if (versionId === undefined) {
        // Stored before versioning was turned on: the `null` version.
        const object = objects.get(key);
        return object ? { object } : {};
      }
      throw new S3Error('NoSuchVersion', 'The specified version does not exist.', 404, { Key: key, VersionId: versionId });
    }
    return version.object ? { object: version.object, versionId: version.versionId } : { versionId: version.versionId, deleteMarker: version };
  }

  private get(headers: IncomingHttpHeaders, target: Target, head: boolean, versionId: string | undefined): Reply {
    const found = this.find(target.bucket, target.key, versionId);
    if (found.deleteMarker) {
      const markerHeaders = { 'x-amz-delete-marker': 'true', 'x-amz-version-id': found.deleteMarker.versionId };
      // The current version a marker: the key reads as gone. A marker named by its id: no object to answer with.
      if (versionId === undefined) throw noSuchKey(target.key, markerHeaders);
      throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.', 405, { Method: head ? 'HEAD' : 'GET', ResourceType: 'DeleteMarker' }, {
        ...markerHeaders,
        'last-modified': found.deleteMarker.lastModified.toUTCString(),
        allow: 'DELETE',
      });
    }
    const object = found.object;
    if (!object) throw noSuchKey(target.key);
    const replyHeaders: Record<string, string> = {
      ...(found.versionId ? { 'x-amz-version-id': found.versionId } : {}),
      'content-type': object.contentType,
      'content-length': String(object.body.length),
      etag: object.etag,
      'last-modified': object.lastModified.toUTCString(),
      ...object.headers,
    };
    for (const [name, value] of Object.entries(object.metadata)) replyHeaders[`${META_PREFIX}${name}`] = value;
    if (header(headers, 'x-amz-checksum-mode') === 'ENABLED' && Object.keys(object.checksums).length > 0) {
      for (const [algorithm, value] of Object.entries(object.checksums)) replyHeaders[`x-amz-checksum-${algorithm}`] = value;
      replyHeaders['x-amz-checksum-type'] = 'FULL_OBJECT';
    }
    for (const [name, value] of target.query) {
      const overridden = RESPONSE_OVERRIDES[name];
      if (overridden) replyHeaders[overridden] = value;
    }
    return { status: 200, headers: replyHeaders, ...(head ? {} : { body: object.body }) };
  }

  private preflight(headers: IncomingHttpHeaders): Reply {
    const requestMethod = header(headers, 'access-control-request-method');
    if (header(headers, 'origin') === undefined) throw new S3Error('BadRequest', 'A CORS preflight request needs an Origin header.', 400);
    if (requestMethod === undefined) throw new S3Error('BadRequest', 'A CORS preflight request needs an Access-Control-Request-Method header.', 400);
    if (!CORS_METHODS.includes(requestMethod)) {
      throw new S3Error('AccessForbidden', `CORSResponse: the bucket's CORS rule does not allow ${requestMethod} (only ${CORS_METHODS.join(', ')}).`, 403, {
        Method: requestMethod,
        ResourceType: 'OBJECT',
      });
    }
    const requestHeaders = header(headers, 'access-control-request-headers');
    return {
      status: 200,
      headers: {
        'access-control-allow-methods': CORS_METHODS.join(', '),
        ...(requestHeaders ? { 'access-control-allow-headers': requestHeaders.toLowerCase() } : {}),
        'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
      },
    };
  }

  /** SigV4 query authentication, as S3 checks a presigned URL. */
  private verifyPresigned(method: string, target: Target, query: Map<string, string>, headers: IncomingHttpHeaders): void {
    const [algorithm, credential, amzDate, expires, signedHeaders, signature] = [
      'X-Amz-Algorithm',
      'X-Amz-Credential',
      'X-Amz-Date',
      'X-Amz-Expires',
      'X-Amz-SignedHeaders',
      'X-Amz-Signature',
    ].map((name) => query.get(name));
    if (!algorithm || !credential || !amzDate || !expires || !signedHeaders || !signature) {
      throw authQueryError('A presigned URL needs X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Expires.');
    }
    if (algorithm !== SIGNING_ALGORITHM) throw authQueryError(`X-Amz-Algorithm only supports "${SIGNING_ALGORITHM}".`);
    if (header(headers, 'authorization') !== undefined) {
      throw new S3Error('InvalidArgument', 'Only one auth mechanism allowed: the X-Amz-Algorithm query parameter or the Authorization header.', 400);
    }
    const credentialParts = credential.split('/');
    if (credentialParts.length < 5 || credentialParts.at(-1) !== 'aws4_request') throw authQueryError('X-Amz-Credential is malformed.');
    const signedAt = parseAmzDate(amzDate);
    if (signedAt === undefined) throw authQueryError("X-Amz-Date must be in the ISO8601 long format \"yyyyMMdd'T'HHmmss'Z'\".");
    if (!/^\d+$/.test(expires)) throw authQueryError('X-Amz-Expires should be a number.');
    if (Number(expires) > MAX_PRESIGN_EXPIRES_SECONDS) throw authQueryError('X-Amz-Expires must be less than a week (in seconds) that is 7 days.');
    const expiresAt = signedAt + Number(expires) * 1000;
    if (Date.now() > expiresAt) {
      throw new S3Error('AccessDenied', 'Request has expired', 403, {
        'X-Amz-Expires': expires,
        Expires: new Date(expiresAt).toISOString(),
        ServerTime: new Date().toISOString(),
      });
    }

    const signed = signedHeaders.split(';');
    const notSigned = Object.keys(headers).filter((name) => name.startsWith('x-amz-') && !signed.includes(name));
    if (notSigned.length > 0) {
      throw new S3Error('AccessDenied', 'There were headers present in the request which were not signed', 403, { HeadersNotSigned: notSigned.join(', ') });
    }
    const canonicalHeaders = signed.map((name) => `${name}:${(header(headers, name) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
    const canonicalQuery = [...target.query]
      .filter(([name]) => name !== 'X-Amz-Signature')
      .map(([name, value]) => `${uriEncode(name)}=${uriEncode(value)}`)
      .sort()
      .join('&');
    // S3 paths are encoded once (no double encoding as for other services), segment by segment.
    const canonicalPath = target.rawPath
      .split('/')
      .map((segment) => uriEncode(safeDecode(segment) ?? segment))
      .join('/');
    const payloadHash = query.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
    const canonicalRequest = [method, canonicalPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
    const scope = credentialParts.slice(-4);
    const stringToSign = [SIGNING_ALGORITHM, amzDate, scope.join('/'), createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
    const signingKey = scope.reduce<Buffer | string>((key, part) => hmac(key, part), `AWS4${this.secretAccessKey}`);
    const expected = Buffer.from(hmac(signingKey, stringToSign).toString('hex'));
    const provided = Buffer.from(signature);
    if (expected.length !== provided.length || !timingSafeEqual(expected, provided)) {
      const message = 'The request signature we calculated does not match the signature you provided. Check your key and signing method.';
      throw new S3Error('SignatureDoesNotMatch', message, 403, {
        AWSAccessKeyId: credentialParts.slice(0, -4).join('/'),
        StringToSign: stringToSign,
        SignatureProvided: signature,
        CanonicalRequest: canonicalRequest,
      });
    }
  }

  private errorReply(error: S3Error, id: string): Reply {
    const details = Object.entries(error.details)
      .map(([name, value]) => `<${name}>${xmlEscape(value)}</${name}>`)
      .join('');
    const message = xmlEscape(error.message);
    const body = `${XML_DECLARATION}<Error><Code>${error.code}</Code><Message>${message}</Message>${details}<RequestId>${id}</RequestId></Error>`;
    return { status: error.status, headers: { ...error.headers, 'content-type': 'application/xml' }, body };
  }

  private send(request: IncomingMessage, response: ServerResponse, reply: Reply, id: string): void {
    if (response.headersSent || response.destroyed) return;
    const method = request.method ?? 'GET';
    const headers: Record<string, string> = { 'x-amz-request-id': id };
    // The CORS rule's headers, on errors too so that a page can read why its upload failed.
    if (header(request.headers, 'origin') !== undefined && (CORS_METHODS.includes(method) || (method === 'OPTIONS' && reply.status === 200))) {
      headers['access-control-allow-origin'] = '*';
      headers['access-control-expose-headers'] = 'etag';
      if (method !== 'OPTIONS') headers['access-control-allow-methods'] = CORS_METHODS.join(', ');
      headers.vary = 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method';
    }
    Object.assign(headers, reply.headers);
    // HEAD answers carry no body, errors included (the SDK then names them by status: NotFound).
    if (method === 'HEAD') {
      if (reply.status >= 300) delete headers['content-type'];
      response.writeHead(reply.status, headers);
      response.end();
      return;
    }
    const body = reply.body ?? '';
    if (reply.status !== 204) headers['content-length'] = String(Buffer.byteLength(body));
    response.writeHead(reply.status, headers);
    response.end(body);
  }
}
