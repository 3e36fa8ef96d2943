/**
 * Files agents and web visitors attach: an upload ticket first (a presigned PUT for one file of
 * a declared size and type), then a message naming the upload. Sending copies the file out of
 * the uploads area (expired daily) into the kept media area, so a message never points at a file
 * that goes away, and a retried send copies to the same place again.
 */
import * as z from '../zod';
import { MAX_ATTACHMENTS, MAX_UPLOAD_BYTES } from '../manifest';
import { copyObject, headObject, mediaKeyOf, MEDIA_SCHEME, presignDownload, presignUpload, storedKey, uploadKey, type UploaderKind } from '../aws/media-store';
import { badRequest, ClientError } from './errors';
import { newId } from './ids';
import type { Attachment } from './types';
import type { MediaLimits, MediaTypes } from '../channels/types';
import { LONE_SURROGATE, mendLoneSurrogates } from '../unicode';
import { config } from '../config';
import { keys } from '../store/keys';
import { takeUploadTicket } from '../store/quota';

/** type/subtype with optional parameters, nothing a header could be split with. */
export const CONTENT_TYPE = /^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+"-]+)*$/;
/** Long enough for a slow phone to start a 25 MiB upload, short enough that a leaked URL soon dies. */
const UPLOAD_URL_SECONDS = 300;
/** Consoles and widgets follow the redirect at once; a copied link stops working soon after. */
const DOWNLOAD_URL_SECONDS = 300;
/** Providers fetch a reply's file when it is sent; Twilio may take a few minutes under load. */
const PROVIDER_URL_SECONDS = 3600;
const HOUR_MS = 3_600_000;
/**
 * Shown in the page, by exact type; everything else downloads. Nothing that a browser could run
 * as a document (HTML, SVG, any `+xml`) is in the list: S3 cannot add nosniff or a CSP.
 */
const INLINE_TYPES = /^(image\/(png|jpeg|gif|webp)|audio\/(mpeg|mp4|aac|ogg|wav|webm)|video\/(mp4|webm|ogg|quicktime)|application\/pdf)$/i;

export interface Uploader {
  kind: UploaderKind;
  id: string;
  /** The conversation an agent's files go to: each keeps its own copy (src/aws/media-store.ts). */
  conversationId?: string;
}

/** What an upload ticket is asked for with: the file's type and exact size (both are signed). */
export const UploadBody = z.object({
  contentType: z.text(3, 255),
  size: z.wholeNumber(1, MAX_UPLOAD_BYTES),
});
export type UploadRequest = z.infer<typeof UploadBody>;

export interface UploadTicket {
  uploadId: string;
  url: string;
  method: 'PUT';
  /** Send exactly these with the file: both are part of the signature. */
  headers: { 'content-type': string };
  expiresAt: string;
}

export async function createUpload(uploader: Uploader, request: UploadRequest, now = new Date()): Promise<UploadTicket> {
  if (!CONTENT_TYPE.test(request.contentType)) throw badRequest('invalid_content_type', 'contentType must be a MIME type such as image/png');
  if (request.size > MAX_UPLOAD_BYTES) throw new ClientError(413, 'file_too_large', `files are limited to ${MAX_UPLOAD_BYTES} bytes`);
  // Counted after the checks, so that a refused request takes nothing.
  await takeUploadQuota(uploader, now);
  const uploadId = newId();
  const contentType = registeredType(request.contentType);
  const url = await presignUpload(uploadKey(uploader.kind, uploader.id, uploadId), contentType, request.size, UPLOAD_URL_SECONDS);
  return {
    uploadId,
    url,
    method: 'PUT',
    headers: { 'content-type': contentType },
    expiresAt: new Date(Date.now() + UPLOAD_URL_SECONDS * 1000).toISOString(),
  };
}

/**
 * Takes one of the uploader's tickets for `now`'s UTC hour (config.uploadsPerHour), or refuses with
 * 429 `too_many_uploads` naming when the hour ends. The tally expires an hour after that.
 */
async function takeUploadQuota(uploader: Uploader, now: Date): Promise<void> {
  const limit = config.uploadsPerHour[uploader.kind];
  const hourEnd = (Math.floor(now.getTime() / HOUR_MS) + 1) * HOUR_MS;
  const key = keys.uploadQuota(uploader.kind, uploader.id, now.toISOString().slice(0, 13));
  if (await takeUploadTicket(key, limit, (hourEnd + HOUR_MS) / 1000)) return;
  const wait = Math.ceil((hourEnd - now.getTime()) / 1000);
  const at = new Date(hourEnd).toISOString();
  throw new ClientError(429, 'too_many_uploads', `at most ${limit} uploads an hour; try again after ${at} (in ${wait} s)`, undefined, wait);
}

/**
 * Names browsers and phones give common files that are not the registered type (Chrome's and
 * Safari's `.m4a`, some Android apps' `.jpg`): providers check the registered one, so WhatsApp
 * would refuse an M4A it takes. The ticket signs the registered name, and the file is kept as it.
 */
const TYPE_ALIASES: Readonly<Record<string, string>> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'audio/x-m4a': 'audio/mp4',
  'audio/m4a': 'audio/mp4',
  'audio/mp3': 'audio/mpeg',
  'audio/x-mp3': 'audio/mpeg',
  'audio/x-mpeg': 'audio/mpeg',
  'audio/x-aac': 'audio/aac',
  'video/x-m4v': 'video/mp4',
};

function registeredType(contentType: string): string {
  const [base, ...parameters] = contentType.split(';');
  const registered = TYPE_ALIASES[base!.trim().toLowerCase()];
  return registered ? [registered, ...parameters].join(';') : contentType;
}

/** Upload ids are ULIDs (newId): nothing else can name a key of the uploader's. */
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** `attachments` on a reply or a visitor's message: uploads by id, each with the name to show. */
export const AttachmentRefs = z
  .array(
    z.object({
      uploadId: z.string().check(z.regex(ULID, 'an uploadId from POST …/uploads')),
      name: z.optional(
        z.trimmedText(1, 255).check(
          z.refine((name) => !LONE_SURROGATE.test(name), 'must be well-formed Unicode (no lone surrogate)'),
          // Providers take the name as a document's filename (WhatsApp) or a multipart header (Telegram), where a line break or NUL is refused or cuts it.
          z.refine((name) => !CONTROL_CHARACTER.test(name), 'must have no control characters (line breaks, tabs, NUL)'),
        ),
      ),
    }),
  )
  .check(z.maxLength(MAX_ATTACHMENTS));
export type AttachmentRef = z.infer<typeof AttachmentRefs>[number];

/**
 * What the uploads a message names become once kept (the URL and the name to show), known before
 * any file is looked up: what a send's content hash needs (src/domain/inbound.ts dedupScope).
 */
export function keptFiles(uploader: Uploader, refs: readonly AttachmentRef[]): Pick<Attachment, 'url' | 'name'>[] {
  return refs.map((ref) => ({ url: `${MEDIA_SCHEME}${storedKey(uploader.kind, uploader.id, ref.uploadId, uploader.conversationId)}`, ...(ref.name ? { name: ref.name } : {}) }));
}

/**
 * The attachments of a message from the uploads it names: each must be the sender's own upload
 * (the key holds the uploader), else 400 `upload_not_found` and nothing is copied for it.
 */
export async function attachUploads(
  uploader: Uploader,
  refs: readonly AttachmentRef[],
  /** Refuses the files (or the message) once they are found, before any is copied (throws). */
  check?: (attachments: readonly Attachment[]) => void | Promise<void>,
): Promise<Attachment[]> {
  if (refs.length > MAX_ATTACHMENTS) throw badRequest('too_many_attachments', `a message takes at most ${MAX_ATTACHMENTS} attachments`);
  const found = await Promise.all(
    refs.map(async (ref) => {
      const kept = storedKey(uploader.kind, uploader.id, ref.uploadId, uploader.conversationId);
      // Kept already: an earlier attempt at this message copied it, or another message here sent it.
      const keptHead = await headObject(kept);
      if (keptHead) return { ref, kept, head: keptHead };
      // Else the upload; or, once it expired, the copy a message sent before copies went per conversation kept.
      for (const source of [uploadKey(uploader.kind, uploader.id, ref.uploadId), ...(uploader.conversationId ? [storedKey(uploader.kind, uploader.id, ref.uploadId)] : [])]) {
        const head = await headObject(source);
        if (head) return { ref, kept, source, head };
      }
      return { ref, kept, head: undefined };
    }),
  );
  const missing = found.find((f) => !f.head);
  if (missing) throw badRequest('upload_not_found', `upload ${missing.ref.uploadId} has no file: PUT the file to the upload URL first`);
  if (found.some((f) => f.head!.size > MAX_UPLOAD_BYTES)) throw new ClientError(413, 'file_too_large', `files are limited to ${MAX_UPLOAD_BYTES} bytes`);
  const files = keptFiles(uploader, refs);
  const attachments = found.map(({ head }, i) => {
    const mimeType = head!.contentType && CONTENT_TYPE.test(head!.contentType) ? head!.contentType : 'application/octet-stream';
    const { url, name } = files[i]!;
    const attachment: Attachment = { type: attachmentType(mimeType), url, mimeType, size: head!.size };
    if (name) attachment.name = name;
    return attachment;
  });
  await check?.(attachments);
  await Promise.all(found.flatMap((f) => (f.source ? [copyObject(f.source, f.kept)] : [])));
  return attachments;
}

/** What a file is shown as; a vCard stays a file (as a `contact`, adapters would send its URL as text). */
export function attachmentType(mimeType: string): string {
  const major = mimeType.split('/')[0]!.toLowerCase();
  return major === 'image' || major === 'audio' || major === 'video' ? major : 'file';
}

/**
 * `filename*` as RFC 8187 has it: every byte outside attr-char percent-encoded (encodeURIComponent
 * leaves ' ( ) * as they are), and a name with a lone surrogate (which it cannot encode) mended first.
 */
export function filenameParameter(name: string): string {
  const encoded = encodeURIComponent(mendLoneSurrogates(name)).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `filename*=UTF-8''${encoded}`;
}

/** A media type without its parameters (`audio/ogg; codecs=opus` → `audio/ogg`), as both lists match it. */
const baseType = (type: string) => type.split(';')[0]!.trim();

/** A short-lived URL of one of our files, served as its type allows (inline, or as a download). */
export function downloadUrl(attachment: Attachment, audience: 'person' | 'provider'): Promise<string> | undefined {
  const key = mediaKeyOf(attachment.url);
  // Only kept files: never an upload (which no message holds), whatever a URL claims.
  if (!key?.startsWith('media/')) return undefined;
  const type = attachment.mimeType && CONTENT_TYPE.test(attachment.mimeType) ? attachment.mimeType : 'application/octet-stream';
  const name = attachment.name ? `; ${filenameParameter(attachment.name)}` : '';
  return presignDownload(key, {
    contentType: type,
    disposition: `${INLINE_TYPES.test(baseType(type)) ? 'inline' : 'attachment'}${name}`,
    expiresInSeconds: audience === 'provider' ? PROVIDER_URL_SECONDS : DOWNLOAD_URL_SECONDS,
  });
}

/**
 * Media types every provider's send API takes as that kind (WhatsApp's lists are the narrowest);
 * anything else goes as a document, which they all take, rather than be refused as a photo.
 */
const PROVIDER_MEDIA: Readonly<Record<string, RegExp>> = {
  image: /^image\/(jpeg|png)$/i,
  video: /^video\/mp4$/i,
  audio: /^audio\/(mpeg|mp4|aac|ogg|amr)$/i,
};

const MB = 1_000_000;
// Two decimals: a file just over a limit must not read as the limit itself.
const megabytes = (bytes: number) => `${Math.round((bytes / MB) * 100) / 100} MB`;

/**
 * The kind each attachment goes to a provider as: its own, or a document where the provider would
 * refuse it as that kind (a type it does not take, or larger than it takes that kind at); and, when
 * a file is too large even as a document (or all of them for one message), or the provider takes
 * it neither as its kind nor as a document (`types`: Instagram's documents are PDFs only), why.
 */
export function sendingKinds(
  attachments: readonly Attachment[],
  limits: MediaLimits = {},
  types?: MediaTypes,
): { kinds: string[]; tooLarge?: string; unsupported?: string } {
  let tooLarge: string | undefined;
  let unsupported: string | undefined;
  // A kind without a limit of its own is taken up to the document limit.
  const limitOf = (kind: string) => limits[kind as keyof MediaLimits] ?? limits.file ?? Number.POSITIVE_INFINITY;
  const kinds = attachments.map((a) => {
    const type = baseType(a.mimeType ?? '');
    const takes = (kind: string) => (types?.kinds[kind as keyof MediaTypes['kinds']] ?? PROVIDER_MEDIA[kind])?.test(type) ?? true;
    const fits = takes(a.type);
    let kind = fits ? a.type : 'file';
    const size = a.size ?? 0;
    if (size > limitOf(kind) && size <= limitOf('file')) kind = 'file';
    // The most it takes the file at: as its kind, or as a document.
    const most = Math.max(limitOf(kind), limitOf('file'));
    const named = a.name ? `"${a.name}"` : 'a file';
    if (size > limitOf(kind)) tooLarge ??= `${named} is ${megabytes(size)}: this channel takes files up to ${megabytes(most)}`;
    else if (kind === 'file' && !takes('file')) {
      // A document the provider does not take: too large for its own kind, or of a type it takes in no way.
      if (fits) tooLarge ??= `${named} is ${megabytes(size)}: this channel takes files of its kind (${a.type}) up to ${megabytes(limitOf(a.type))}`;
      else unsupported ??= `${named} is ${type || 'of no known type'}: this channel takes ${types?.described ?? 'other files'}`;
    }
    return kind;
  });
  const total = attachments.reduce((sum, a) => sum + (a.size ?? 0), 0);
  if (limits.perMessage !== undefined && total > limits.perMessage) {
    tooLarge ??= `the files are ${megabytes(total)} together: this channel takes up to ${megabytes(limits.perMessage)} in one message`;
  }
  return { kinds, ...(tooLarge ? { tooLarge } : {}), ...(unsupported ? { unsupported } : {}) };
}

/**
 * Extensions that are not the media type's subtype (or whose subtype is not a short name), for the
 * types people commonly send; any other short subtype (png, pdf, heic) is its own.
 */
const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/jpeg': 'jpg',
  'image/svg+xml': 'svg',
  'image/x-icon': 'ico',
  'image/vnd.microsoft.icon': 'ico',
  'audio/mpeg': 'mp3',
  'audio/mp4': 'm4a',
  'audio/x-m4a': 'm4a',
  'audio/wave': 'wav',
  'audio/x-wav': 'wav',
  'audio/vnd.wave': 'wav',
  'audio/x-flac': 'flac',
  'audio/3gpp': '3gp',
  'audio/midi': 'mid',
  'audio/x-midi': 'mid',
  'video/mpeg': 'mpg',
  'video/quicktime': 'mov',
  'video/3gpp': '3gp',
  'video/3gpp2': '3g2',
  'video/x-msvideo': 'avi',
  'video/x-matroska': 'mkv',
  'video/x-ms-wmv': 'wmv',
  'video/x-m4v': 'm4v',
  'video/ogg': 'ogv',
  'video/mp2t': 'ts',
  'text/plain': 'txt',
  'text/vcard': 'vcf',
  'text/x-vcard': 'vcf',
  'text/calendar': 'ics',
  'text/markdown': 'md',
  'text/javascript': 'js',
  'text/tab-separated-values': 'tsv',
  'message/rfc822': 'eml',
  'application/msword': 'doc',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.ms-powerpoint': 'ppt',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 'pptx',
  'application/vnd.oasis.opendocument.text': 'odt',
  'application/vnd.oasis.opendocument.spreadsheet': 'ods',
  'application/vnd.oasis.opendocument.presentation': 'odp',
  'application/vnd.ms-outlook': 'msg',
  'application/epub+zip': 'epub',
  'application/x-zip-compressed': 'zip',
  'application/gzip': 'gz',
  'application/x-gzip': 'gz',
  'application/x-bzip2': 'bz2',
  'application/x-tar': 'tar',
  'application/vnd.rar': 'rar',
  'application/x-rar-compressed': 'rar',
  'application/x-7z-compressed': '7z',
  'application/vnd.android.package-archive': 'apk',
  'application/javascript': 'js',
  'application/postscript': 'ps',
};

/** The extension a file of this media type is known by (`jpg`, `zip`), if any. */
function extensionOf(mimeType: string | undefined): string | undefined {
  const type = baseType(mimeType ?? '').toLowerCase();
  const subtype = type.split('/')[1] ?? '';
  return EXTENSIONS[type] ?? (/^[a-z0-9]{2,4}$/.test(subtype) ? subtype : undefined);
}

/**
 * A name that ends in an extension: a dot, then up to 8 letters and digits with a letter among
 * them (`.pdf`, `.7z`, `.docx`); not a version or a date (`v1.2`, `12.05.2024`) nor `Mr. Smith`.
 */
const HAS_EXTENSION = /\.(?=[a-z0-9]{0,7}[a-z])[a-z0-9]{1,8}$/i;

/**
 * The name a document goes to the provider under, by which the customer's phone knows what opens
 * it (providers show a document without a filename as an unnamed file): the agent's, with its
 * type's extension when it has none (`receipt` → `receipt.jpg`); else one from its key (the upload
 * id: the same on every retry, and one support can find) and that extension.
 */
function documentNameOf(attachment: Attachment): string | undefined {
  const extension = extensionOf(attachment.mimeType);
  if (attachment.name !== undefined) {
    return extension && !HAS_EXTENSION.test(attachment.name) ? `${attachment.name.replace(/\.+$/, '')}.${extension}` : attachment.name;
  }
  const stem = mediaKeyOf(attachment.url)?.split('/').pop();
  if (!stem) return undefined;
  return extension ? `${stem}.${extension}` : stem;
}

/**
 * A reply's attachments as a provider can fetch them: our files by a presigned URL, as the kind
 * they go as, a document named if it has no name and given its extension if its name has none (in
 * the URL's disposition too, for the providers that name a fetched file by it); others as they are.
 */
export async function forProvider(attachments: readonly Attachment[], limits?: MediaLimits, types?: MediaTypes): Promise<Attachment[]> {
  const { kinds } = sendingKinds(attachments, limits, types);
  return Promise.all(
    attachments.map(async (a, i) => {
      const type = kinds[i]!;
      const name = type === 'file' ? documentNameOf(a) : a.name;
      const sent: Attachment = { ...a, type, ...(name ? { name } : {}) };
      const url = await downloadUrl(sent, 'provider');
      if (!url) return a;
      return { ...sent, url };
    }),
  );
}
