/**
 * Raw emails the SES receipt rule's S3 action stored (lib/constructs/inbound-mail.ts), read once
 * by the engagement function and deleted once taken in; the bucket's lifecycle rule deletes any left.
 */
import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';

let client: S3Client | undefined;

function s3(): S3Client {
  // The local stack's stand-in answers on one host: path-style addressing (as src/aws/media-store.ts).
  client ??= new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL) });
  return client;
}

/** The stored email's bytes; undefined when the object is gone (expired, or never written). */
export async function readRawEmail(bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const object = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return object.Body ? Buffer.from(await object.Body.transformToByteArray()) : Buffer.alloc(0);
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey' || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
}

/** Deletes a stored email that was taken in (S3 answers a missing key with success too). */
export async function deleteRawEmail(bucket: string, key: string): Promise<void> {
  await s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}
