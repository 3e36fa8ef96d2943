/**
 * Files people upload (agents' and web visitors' attachments), in the media bucket.
 * Clients upload straight to S3 with a presigned PUT and everyone downloads with a presigned GET:
 * no file passes through a Lambda, so neither the 6 MB payload limit nor its cost applies.
 *
 * Layout (the one place that names keys):
 * - `uploads/<agent|visitor>/<owner>/<uploadId>`: where a presigned PUT lands; expired by a
 *   lifecycle rule after a day, so an upload never sent costs nothing for long;
 * - `media/agent/<owner>/<conversationId>/<uploadId>`: the copy an agent's sent message refers to,
 *   kept, one per conversation: an upload sent to two customers is two files, so that erasing one
 *   customer's leaves the other's (messages sent before kept `media/agent/<owner>/<uploadId>`);
 * - `media/visitor/<owner>/<uploadId>`: the copy a visitor's message refers to (a visitor writes
 *   in their own conversations only, all erased together), kept;
 * - `media/provider/<conversationId>/<messageId>/<index>`: a customer's file copied from the provider;
 * - `media/provider/<conversationId>/email-<hash of the email's provider id>/<index>`: a file of a
 *   customer's email reply, written before its message exists, the same on every delivery of the email.
 */
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ENV } from '../config';
import { MEDIA_SCHEME } from '../domain/types';

export type UploaderKind = 'agent' | 'visitor';

export { MEDIA_SCHEME };

let client: S3Client | undefined;

function s3(): S3Client {
  // The local stack's stand-in (AWS_ENDPOINT_URL_S3) answers on one host: path-style addressing.
  client ??= new S3Client({
    forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
    // Otherwise presigned PUTs carry the CRC32 of an empty body, which S3 ignores today and other stores refuse.
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  return client;
}

function bucket(): string {
  const name = process.env[ENV.mediaBucket];
  if (!name) throw new Error(`Missing environment variable ${ENV.mediaBucket}`);
  return name;
}

const ownerPath = (kind: UploaderKind, owner: string, uploadId: string) => `${kind}/${encodeURIComponent(owner)}/${uploadId}`;
export const uploadKey = (kind: UploaderKind, owner: string, uploadId: string) => `uploads/${ownerPath(kind, owner, uploadId)}`;
/** The kept copy of an upload; `conversationId` for an agent's (one copy per conversation it went to). */
export const storedKey = (kind: UploaderKind, owner: string, uploadId: string, conversationId?: string) =>
  conversationId ? `media/${kind}/${encodeURIComponent(owner)}/${encodeURIComponent(conversationId)}/${uploadId}` : `media/${ownerPath(kind, owner, uploadId)}`;
/** Every file of one uploader, sent or not (a visitor's erasure takes them all). */
export const uploaderFolders = (kind: UploaderKind, owner: string) => [`media/${kind}/${encodeURIComponent(owner)}/`, `uploads/${kind}/${encodeURIComponent(owner)}/`];
/** The upload a kept copy was made from (either layout), if the key is one of an uploader's. */
export function uploadKeyOfStored(key: string): string | undefined {
  const parts = /^media\/(agent|visitor)\/([^/]+)\/(?:[^/]+\/)?([^/]+)$/.exec(key);
  return parts ? `uploads/${parts[1]}/${parts[2]}/${parts[3]}` : undefined;
}
export const providerFileKey = (conversationId: string, messageId: string, index: number) => `${providerFilesPrefix(conversationId, messageId)}${index}`;
export const emailFileKey = (conversationId: string, providerMessageId: string, index: number) =>
  `${providerFilesPrefix(conversationId, `email-${createHash('sha256').update(providerMessageId).digest('base64url').slice(0, 22)}`)}${index}`;
/** Where every file copied for one customer message lies. */
export const providerFilesPrefix = (conversationId: string, messageId: string) => `media/provider/${conversationId}/${messageId}/`;

/** The key behind an attachment URL, when the file is ours. */
export function mediaKeyOf(url: string): string | undefined {
  return url.startsWith(MEDIA_SCHEME) && url.length > MEDIA_SCHEME.length ? url.slice(MEDIA_SCHEME.length) : undefined;
}

/** A PUT URL for exactly this size and type: S3 refuses another (both headers are signed). */
export function presignUpload(key: string, contentType: string, size: number, expiresInSeconds: number): Promise<string> {
  const command = new PutObjectCommand({ Bucket: bucket(), Key: key, ContentType: contentType, ContentLength: size });
  return getSignedUrl(s3(), command, { expiresIn: expiresInSeconds, signableHeaders: new Set(['content-type', 'content-length']) });
}

export interface DownloadOptions {
  contentType?: string;
  /** `Content-Disposition` to answer with, e.g. `attachment; filename*=UTF-8''report.pdf`. */
  disposition?: string;
  expiresInSeconds: number;
}

export function presignDownload(key: string, options: DownloadOptions): Promise<string> {
  const command = new GetObjectCommand({
    Bucket: bucket(),
    Key: key,
    ...(options.contentType ? { ResponseContentType: options.contentType } : {}),
    ...(options.disposition ? { ResponseContentDisposition: options.disposition } : {}),
  });
  return getSignedUrl(s3(), command, { expiresIn: options.expiresInSeconds });
}

/** Size and type of a stored object; undefined when there is none. */
export async function headObject(key: string): Promise<{ size: number; contentType?: string } | undefined> {
  try {
    const head = await s3().send(new HeadObjectCommand({ Bucket: bucket(), Key: key }));
    return { size: head.ContentLength ?? 0, ...(head.ContentType ? { contentType: head.ContentType } : {}) };
  } catch (error) {
    if ((error as { name?: string }).name === 'NotFound' || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
}

export async function putObject(key: string, bytes: Buffer, contentType: string, signal?: AbortSignal): Promise<void> {
  await s3().send(new PutObjectCommand({ Bucket: bucket(), Key: key, Body: bytes, ContentType: contentType }), signal ? { abortSignal: signal } : {});
}

/** Server-side copy; copying again over the same key is harmless (retries). */
export async function copyObject(from: string, to: string): Promise<void> {
  await s3().send(new CopyObjectCommand({ Bucket: bucket(), Key: to, CopySource: `${bucket()}/${encodeURIComponent(from).replace(/%2F/g, '/')}` }));
}

/**
 * Deletes a file for good (an erasure): every version of the key, earlier ones and delete markers
 * included (the deployed bucket is versioned, and a plain delete would leave the file behind a
 * marker for 30 days). A key with no version left is done, so a repeated erasure step is harmless.
 */
export async function deleteEveryVersion(key: string): Promise<void> {
  // The key as a prefix lists other keys that start with it as well: only its own versions go.
  await deleteVersions(key, (listed) => listed === key);
}

/** Every version of every key under `prefix` (a folder: it ends with `/`), as deleteEveryVersion does for one key. */
export async function deleteEveryVersionUnder(prefix: string): Promise<void> {
  if (!prefix.endsWith('/')) throw new Error(`not a folder: ${prefix}`);
  await deleteVersions(prefix, () => true);
}

async function deleteVersions(prefix: string, mine: (key: string) => boolean): Promise<void> {
  let markers: { KeyMarker?: string; VersionIdMarker?: string } = {};
  for (;;) {
    const page = await s3().send(new ListObjectVersionsCommand({ Bucket: bucket(), Prefix: prefix, ...markers }));
    const versions = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].filter((v) => v.Key !== undefined && mine(v.Key) && v.VersionId);
    for (const { Key, VersionId } of versions) await s3().send(new DeleteObjectCommand({ Bucket: bucket(), Key: Key!, VersionId: VersionId! }));
    if (!page.IsTruncated) return;
    // A deleted version makes no marker to go on from: start over, where this page's are gone now.
    markers = versions.length > 0 ? {} : { ...(page.NextKeyMarker ? { KeyMarker: page.NextKeyMarker } : {}), ...(page.NextVersionIdMarker ? { VersionIdMarker: page.NextVersionIdMarker } : {}) };
  }
}
