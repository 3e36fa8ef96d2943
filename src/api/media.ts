/**
 * An attachment's file for the agent console. WhatsApp and Telegram media arrive as references,
 * Twilio's as URLs behind the account's credentials: the file is fetched here and answered
 * inline (up to MEDIA_MAX_BYTES). Public URLs (Messenger and Instagram CDN links until they are
 * copied, links customers shared) are answered with a redirect to them.
 */
import type { Route } from './context';
import { json, parseBody, type HttpResult } from '../http/http';
import { ClientError, notFound } from '../domain/errors';
import { CONTENT_TYPE, createUpload, downloadUrl, filenameParameter, UploadBody } from '../domain/media';
import type { Attachment } from '../domain/types';
import { isProviderChannel } from '../domain/types';
import { getAdapter } from '../channels/registry';
import { baseUrl, loadCredentials } from '../channels/credentials';
import { getMessage } from '../store/messages';
import { readable } from './conversations';
import { PROVIDER_UNAVAILABLE } from '../manifest';

const MEDIA_ERRORS = { 404: 'media_gone', 413: 'media_too_large', 502: PROVIDER_UNAVAILABLE } as const;
const GENERIC_TYPE = 'application/octet-stream';

/** POST /v1/uploads: a presigned PUT for one file an agent will attach to a reply or note. */
export const uploadRoute: Route = async ({ event, agent }) => json(201, await createUpload({ kind: 'agent', id: agent.id }, parseBody(event, UploadBody)));

/** A file of ours opens through a short-lived presigned URL: no 4 MiB limit, no bytes through the function. */
export async function redirectToStored(attachment: Attachment): Promise<HttpResult | undefined> {
  const location = await downloadUrl(attachment, 'person');
  return location ? { statusCode: 302, headers: { location, 'cache-control': 'private, no-store' }, body: '' } : undefined;
}

export const attachmentRoute: Route = async ({ params }) => {
  if (!/^\d{1,3}$/.test(params.index ?? '')) throw notFound('attachment');
  // The conversation beside the message, read as GET /v1/conversations/{id} reads it: its customer's
  // files close with it once their erasure is asked for, also on one a racing message started (no mark yet).
  const [message] = await Promise.all([getMessage(params.id!, params.messageId!), readable(params.id!)]);
  if (!message) throw notFound('message');
  const attachment = message.attachments[Number(params.index)];
  if (!attachment) throw notFound('attachment');

  const stored = await redirectToStored(attachment);
  if (stored) return stored;
  const channel = message.channel;
  const adapter = isProviderChannel(channel) ? getAdapter(channel) : undefined;
  const result = adapter?.fetchMedia
    ? await adapter.fetchMedia(attachment.url, { credentials: await loadCredentials(adapter.channel), baseUrl: baseUrl(adapter.channel), fetch })
    : undefined;
  if (!result) {
    // Not a file only the channel's credentials open: a public URL is the console's to open.
    const location = headerSafeUrl(attachment.url);
    if (location) return { statusCode: 302, headers: { location, 'cache-control': 'private, max-age=300' }, body: '' };
    throw new ClientError(404, 'no_file', 'this attachment has no file to fetch');
  }
  if (!result.ok) throw new ClientError(result.status, MEDIA_ERRORS[result.status], result.error);

  // Providers often label files generically; the type the webhook announced is more precise.
  const announced = attachment.mimeType && CONTENT_TYPE.test(attachment.mimeType) ? attachment.mimeType : undefined;
  const served = CONTENT_TYPE.test(result.contentType) ? result.contentType : GENERIC_TYPE;
  const response: HttpResult = {
    statusCode: 200,
    headers: {
      'content-type': served === GENERIC_TYPE && announced ? announced : served,
      'cache-control': 'private, max-age=3600',
      // A customer's file must never run as a page of the API's origin.
      'x-content-type-options': 'nosniff',
      'content-security-policy': "sandbox; default-src 'none'",
      ...(attachment.name ? { 'content-disposition': `inline; ${filenameParameter(attachment.name)}` } : {}),
    },
    body: result.bytes.toString('base64'),
    isBase64Encoded: true,
  };
  return response;
};

/**
 * An http(s) URL as a Location header can carry it: URL parsing drops newlines and
 * percent-encodes what is not ASCII (a provider's URL with either made Node refuse the header: a 500).
 */
function headerSafeUrl(raw: string): string | undefined {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}
