/**
 * Email around a web conversation: the fallback email with unseen agent replies (SES v2), and
 * email replies coming back into the same conversation. The reply-to address carries the
 * conversation id and an HMAC of it, so it names exactly one conversation and cannot be guessed;
 * since an address can still be forwarded or quoted, a reply is also taken as the customer's only
 * from the address the email went to; one from another address reaches the team as a private note.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import * as z from '../zod';
import { loadSecretIntoEnv } from '../aws/secret-env';
import { config, ENV } from '../config';
import { enqueueInbound } from '../aws/queues';
import { getConversation, isErasing, type ConversationRecord } from '../store/conversations';
import { getVisitor } from '../store/contacts';
import { claimDedup, getMessage } from '../store/messages';
import { keys } from '../store/keys';
import { takeSend } from '../store/quota';
import { normalizeEmail } from './contacts';
import { showNote, storeOutbound } from './engagement';
import { contentHash, newId } from './ids';
import { CONTENT_TYPE, attachmentType } from './media';
import { MAX_ATTACHMENTS, MAX_UPLOAD_BYTES } from '../manifest';
import { emailFileKey, MEDIA_SCHEME, putObject } from '../aws/media-store';
import { mapConcurrently } from '../store/items';
import { SYSTEM_SENDER, type Attachment, type InboundMessageEvent, type Message } from './types';

let client: SESv2Client | undefined;
const ses = () => (client ??= new SESv2Client({}));

/** For tests: use this client (e.g. one wrapped by aws-sdk-client-mock). */
export function setSesClient(next: SESv2Client | undefined): void {
  client = next;
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Missing environment variable ${name}`);
  return value;
}

/** 128 bits of HMAC: far beyond guessing, short enough for a 64-character local part. */
const MAC_HEX = 32;

/**
 * Deployed, the HMAC key lives in Secrets Manager (REPLY_ADDRESS_SECRET_ARN) and is read once
 * per cold start into REPLY_ADDRESS_SECRET, where the local stack puts it directly.
 */
export async function loadReplySecret(): Promise<void> {
  await loadSecretIntoEnv(ENV.replySecret, ENV.replySecretArn);
}

function mac(conversationId: string): string {
  return createHmac('sha256', env(ENV.replySecret)).update(`reply#${conversationId}`).digest('hex').slice(0, MAC_HEX);
}

/**
 * `c-<id>-<mac>@<reply domain>`, lower-case because mail systems may fold the local part's case;
 * conversation ids are ULIDs (Crockford base32), which read back upper-case.
 */
export function replyAddress(conversationId: string): string {
  return `c-${conversationId.toLowerCase()}-${mac(conversationId)}@${env(ENV.mailReplyDomain)}`;
}

/** The conversation a reply-to address names, or undefined when it is not one of ours or is forged. */
export function conversationFromReplyAddress(address: string): string | undefined {
  const bare = /<([^>]+)>/.exec(address)?.[1] ?? address;
  const match = /^c-([0-9a-z]{1,64})-([0-9a-f]+)@(.+)$/i.exec(bare.trim());
  if (!match || match[3]!.toLowerCase() !== env(ENV.mailReplyDomain).toLowerCase()) return undefined;
  const conversationId = match[1]!.toUpperCase();
  const expected = Buffer.from(mac(conversationId));
  const given = Buffer.from(match[2]!.toLowerCase());
  return expected.length === given.length && timingSafeEqual(expected, given) ? conversationId : undefined;
}

/**
 * Where the visitor goes back to the conversation: the page with the widget, told which
 * conversation (the widget's session token resumes it there). None without a configured page:
 * the API's own URL has nothing to show a person.
 */
export function conversationLink(conversationId: string): string | undefined {
  const page = config.widgetUrl;
  if (!page) return undefined;
  const url = new URL(page);
  url.searchParams.set('conversation', conversationId);
  return url.toString();
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const who = (m: Message) => (m.direction === 'inbound' ? 'You' : (m.sender.name ?? (m.sender.type === 'agent' ? 'Support' : 'Conversa')));

/** The CSAT question's buttons in the widget: no file. */
const isRatingButtons = (a: Attachment) => a.type === 'csat';

/** Files are named, not attached: they open in the conversation, where the visitor's token reaches them. */
function shown(m: Message): string {
  const attachments = m.attachments.filter((a) => !isRatingButtons(a));
  if (attachments.length === 0) return m.text;
  const files = `[${attachments.length === 1 ? 'a file' : `${attachments.length} files`}: ${attachments.map((a) => a.name ?? a.type).join(', ')}]`;
  return m.text ? `${m.text}\n${files}` : files;
}

export interface ReplyEmail {
  to: string;
  conversation: Pick<ConversationRecord, 'id'>;
  /** The agent replies the visitor has not seen, oldest first, and the CSAT question while it takes an answer. */
  unseen: Message[];
  /** Earlier messages shown for context, oldest first. */
  context: Message[];
}

const RATE_BY_REPLY = 'To rate this conversation, reply to this email with a number from 1 (poor) to 5 (great), and a comment if you like (for example: 5 - thanks).';

export function renderReplyEmail(email: ReplyEmail): { subject: string; text: string; html: string } {
  const link = conversationLink(email.conversation.id);
  const count = email.unseen.length;
  const subject = count === 1 ? 'You have a new reply' : `You have ${count} new replies`;
  const line = (m: Message) => `${who(m)}: ${shown(m)}`;
  // The widget's buttons are not in an email: a reply with the number rates (ratingIn reads it).
  const rates = email.unseen.some((m) => m.attachments.some(isRatingButtons));
  const text = [
    `${subject} to your conversation:`,
    '',
    ...email.unseen.map(line),
    ...(rates ? ['', RATE_BY_REPLY] : []),
    '',
    // Every line of an earlier message is quoted, its file line and the lines of a longer text too.
    // (A line break written \r\n is one break: `^` would also quote after its \r, leaving a bare CR.)
    ...(email.context.length > 0 ? ['Earlier in the conversation:', ...email.context.map((m) => line(m).replace(/\r\n?/g, '\n').replace(/^/gm, '> ')), ''] : []),
    link ? `Reply to this email or continue the conversation here: ${link}` : 'Reply to this email to continue the conversation.',
  ].join('\n');
  const block = (m: Message) => `<p><strong>${escapeHtml(who(m))}:</strong> ${escapeHtml(shown(m)).replace(/\n/g, '<br>')}</p>`;
  const html = [
    `<p>${escapeHtml(subject)} to your conversation:</p>`,
    ...email.unseen.map(block),
    ...(rates ? [`<p>${escapeHtml(RATE_BY_REPLY)}</p>`] : []),
    ...(email.context.length > 0
      ? ['<hr><p style="color:#666">Earlier in the conversation:</p><blockquote style="color:#666">', ...email.context.map(block), '</blockquote>']
      : []),
    link ? `<p>Reply to this email or <a href="${escapeHtml(link)}">continue the conversation</a>.</p>` : '<p>Reply to this email to continue the conversation.</p>',
  ].join('\n');
  return { subject, text, html };
}

/**
 * The address as SES can send to it, undefined when it cannot: SES has no SMTPUTF8, so a Unicode
 * domain goes as its Punycode, and a Unicode local part (which has no ASCII form) cannot be sent to.
 */
export function sesAddress(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  if (at < 1 || !/^[\x21-\x7e]+$/.test(local)) return undefined;
  const domain = domainToASCII(address.slice(at + 1));
  return domain ? `${local}@${domain}` : undefined;
}

export async function sendReplyEmail(email: ReplyEmail): Promise<string | undefined> {
  const { subject, text, html } = renderReplyEmail(email);
  const to = sesAddress(email.to);
  if (!to) throw new Error(`SES cannot send to ${email.to} (no SMTPUTF8)`);
  const out = await ses().send(
    new SendEmailCommand({
      FromEmailAddress: env(ENV.mailFrom),
      Destination: { ToAddresses: [to] },
      ReplyToAddresses: [replyAddress(email.conversation.id)],
      Content: {
        Simple: {
          Subject: { Data: subject, Charset: 'UTF-8' },
          Body: { Text: { Data: text, Charset: 'UTF-8' }, Html: { Data: html, Charset: 'UTF-8' } },
          // Sent by us, not typed to them as a mail: the customer's out-of-office (RFC 3834, and
          // Exchange's own header) then does not answer it, and no reply-domain mail is spent on one.
          Headers: [
            { Name: 'Auto-Submitted', Value: 'auto-generated' },
            { Name: 'X-Auto-Response-Suppress', Value: 'OOF, AutoReply' },
          ],
        },
      },
    }),
  );
  return out.MessageId;
}

/** "On … wrote:" as mail clients put it in the languages customers most often write in. */
const ATTRIBUTION = /^(On .+ wrote|Le .+ a écrit|Am .+ schrieb.*|El .+ escribió|Em .+ escreveu|Il .+ ha scritto|Op .+ (schreef.*|het volgende geschreven)|Den .+ skrev.*|W dniu .+ napisał.*)\s*:\s*$/i;
/** How each of ATTRIBUTION's forms begins: only such a line is tried joined with the next. */
const ATTRIBUTION_START = /^(On|Le|Am|El|Em|Il|Op|Den|W dniu) /i;
/** Longer than any attribution line: longer lines are never tested against ATTRIBUTION (it backtracks). */
const MAX_ATTRIBUTION_CHARS = 400;
const isAttribution = (line: string) => line.length <= MAX_ATTRIBUTION_CHARS && ATTRIBUTION.test(line);
/** An attribution as a client writes it, with the time or the address (not "On Monday I wrote:"). */
const DATED_ATTRIBUTION = /\b\d{1,2}:\d{2}\b|@/;
/** The first line of the emails we send (renderReplyEmail): what marks a quote without `>` as ours. */
const OUR_EMAIL = /You have (a new reply|\d+ new replies) to your conversation:/;
/** Outlook's header block over the earlier email, in a few languages: From, then Sent or Date, To and Subject. */
const SENT_FROM_DEVICE = /^(Sent from my .{1,40}|Get Outlook for (iOS|Android)|Envoyé de mon .{1,40}|Von meinem .{1,40} gesendet|Enviado desde mi .{1,40}|Enviado do meu .{1,40}|Inviato da(l mio)? .{1,40}|Verzonden (met|vanaf) mijn .{1,40})\s*$/i;
const HEADER_FROM = /^\*?(From|De|Von|Van|Da)\s*:\*?\s*\S/i;
const HEADER_NEXT = /^\*?(Sent|Date|Envoyé|Gesendet|Verzonden|Inviato|Enviado|To|À|An|Aan|A|Para|Cc|Subject|Objet|Betreff|Onderwerp|Oggetto|Asunto|Assunto)\s*:/i;

/** Whether line `i` starts Outlook's header block: at least two more header lines right under it. */
function startsHeaderBlock(lines: readonly string[], i: number): boolean {
  if (!HEADER_FROM.test(lines[i]!)) return false;
  let headers = 0;
  for (let j = i + 1; j < lines.length && j <= i + 4 && HEADER_NEXT.test(lines[j]!); j++) headers += 1;
  return headers >= 2;
}

/**
 * The new part of a reply: mail clients quote the earlier email under a "On … wrote:" line, with
 * "> " prefixes, or (ours, unprefixed) under Outlook's header block, and that text is already in
 * the conversation.
 */
export function stripQuotedReply(text: string): string {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  // A quote without `>` is cut only above our own email: a customer's itinerary ("From: Lisbon /
  // To: Porto / Date: …") or a forwarded email is their message, never in the conversation yet.
  const ourEmailAt = lines.findIndex((line) => OUR_EMAIL.test(line));
  // Whether the next non-blank line after each one is quoted (or there is none): one pass from the end.
  const quoteNext: boolean[] = [];
  for (let i = lines.length - 1, next = true; i >= 0; i--) {
    quoteNext[i] = next;
    if (lines[i]!.trim() !== '') next = lines[i]!.startsWith('>');
  }
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    // Gmail wraps a long attribution line, after the sender's "<" or at a space ("… a\nécrit :"), in
    // every language; joined only where the whole line is then dropped, so the customer's own words keep their breaks.
    if (i + 1 < lines.length && line.length <= MAX_ATTRIBUTION_CHARS && ATTRIBUTION_START.test(line) && !isAttribution(line)) {
      const joined = /<\s*$/.test(line) ? `${line}${lines[i + 1]}` : `${line} ${lines[i + 1]}`;
      if (isAttribution(joined) && (quoteNext[i + 1] || (ourEmailAt > i && DATED_ATTRIBUTION.test(joined)))) {
        line = joined;
        i += 1;
      }
    }
    // Outlook's separators and header block: everything under them is the earlier email.
    if (/^-{2,}\s*Original Message\s*-{2,}/i.test(line) || /^_{5,}$/.test(line) || (ourEmailAt > i && startsHeaderBlock(lines, i))) break;
    // An attribution heads the quote under it, which is skipped; the customer may write on below
    // it. Followed by unprefixed text (iOS), all of it is the quote. Neither dated nor followed by
    // a quote, "On Monday I wrote:" is the customer's own words.
    if (isAttribution(line)) {
      if (quoteNext[i]) continue;
      if (ourEmailAt > i && DATED_ATTRIBUTION.test(line)) break;
    }
    // A signature under its separator (RFC 3676's `-- `, which some clients trim) is not the message.
    if (/^-- ?$/.test(line)) break;
    if (line.startsWith('>')) continue;
    kept.push(line);
  }
  const reply = kept.join('\n').trim();
  // The line a phone's mail app adds last ("Sent from my iPhone") is not the customer's either.
  const lastBreak = reply.lastIndexOf('\n');
  return SENT_FROM_DEVICE.test(reply.slice(lastBreak + 1)) ? reply.slice(0, Math.max(lastBreak, 0)).trim() : reply;
}

/** The files of one email named in its message, at most. */
const MAX_LISTED_FILES = 20;

export const InboundEmailSchema = z.object({
  to: z.union([z.text(3, 1000), z.array(z.text(3, 320)).check(z.minLength(1), z.maxLength(50))]),
  from: z.text(3, 320),
  subject: z.optional(z.text(0, 1000)),
  text: z.text(0, 200_000),
  /** The email's Message-ID: a retried delivery of the same email is stored once. */
  messageId: z.optional(z.text(1, 998)),
  /** Headed as no person's writing (isAutomaticEmail): an out-of-office reply, a bounce. */
  automatic: z.optional(z.boolean()),
  /** The names of the files it came with (attachedFileNames): those not kept as attachments are said, so none goes unseen. */
  files: z.optional(z.array(z.text(1, 255)).check(z.maxLength(MAX_LISTED_FILES))),
});
export type InboundEmail = z.infer<typeof InboundEmailSchema>;

/** `kept`: as the customer's message, or as a private note for the team (another sender, see receiveEmail). */
export type InboundEmailResult =
  | { accepted: true; conversationId: string; kept: 'message' | 'note' }
  | { accepted: false; reason: 'unknown_recipient' | 'unknown_sender' | 'empty' | 'rate_limited' | 'auto_reply' };

/**
 * Whether an email's headers mark it as sent by a program, not a person (RFC 3834's Auto-Submitted,
 * the X-Autoreply/X-Autorespond and Precedence marks older responders use, a bounce's
 * multipart/report). Taken as the customer's, an out-of-office reply to the fallback email would
 * answer the follow-up, reopen a resolved conversation, and be answered, mailed and auto-replied again.
 */
export function isAutomaticEmail(headers: Readonly<Record<string, string | undefined>>): boolean {
  const header = (name: string) => headers[name]?.trim().toLowerCase();
  const autoSubmitted = header('auto-submitted');
  if (autoSubmitted && !/^no\b/.test(autoSubmitted)) return true;
  const marked = (name: string) => header(name) !== undefined && !/^(no|false)$/.test(header(name)!);
  if (['x-autoreply', 'x-autorespond', 'x-autoresponder'].some(marked)) return true;
  return /^(bulk|junk|auto_reply)$/.test(header('precedence') ?? '') || /^multipart\/report\b/.test(header('content-type') ?? '');
}

/** The customer's email address as the fallback finds it: the contact's, else the web visitor's (a pre-chat form given later). */
export async function customerEmail(conversation: ConversationRecord): Promise<string | undefined> {
  if (conversation.contact.email) return conversation.contact.email;
  return conversation.visitorId ? (await getVisitor(conversation.visitorId))?.email : undefined;
}

/**
 * The bare, normalized address of a From header (`Vera <Vera@Example.com>` → `vera@example.com`).
 * A quoted display name or a (comment) may hold anything, an address too (`vera@example.com (Vera)`,
 * the older form); a From naming two addresses names nobody (else a stranger could list the
 * customer's beside their own), but one whose unquoted display name is its own address
 * (`vera@example.com <vera@example.com>`, as some clients write it) names that one.
 */
export function senderAddress(from: string): string | undefined {
  const text = from.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\((?:[^()\\]|\\.)*\)/g, ' ');
  const angle = /<([^<>]+)>\s*$/.exec(text);
  const address = normalizeEmail(angle?.[1] ?? text);
  const named = angle ? text.slice(0, angle.index).split(/[\s<>,;]+/).filter((word) => word.includes('@')) : [];
  return address && named.every((word) => normalizeEmail(word) === address) ? address : undefined;
}

/**
 * Whether `sender` (the From's address) is the one the conversation's email went to (recorded when it was sent; for
 * one emailed before that was recorded, the customer's address, which is what it was sent to).
 */
async function fromCustomer(conversation: ConversationRecord, sender: string | undefined): Promise<boolean> {
  const emailedTo = conversation.engagement?.emailedTo ?? normalizeEmail(await customerEmail(conversation));
  if (sender === undefined || emailedTo === undefined) return false;
  // A Unicode domain was emailed at its Punycode: the reply may name it in either form.
  const ascii = sesAddress(sender);
  return sender === emailedTo || (ascii !== undefined && ascii === sesAddress(emailedTo));
}

/**
 * How much of another sender's email its note keeps: with the line above it, the note stays within
 * the 4096 characters of an agent's note, and an email of 200 000 would bury the conversation.
 */
export const NOTE_EMAIL_CHARS = 3500;

/** The note for an email from `address`, not the customer's: who sent it, and its new part (cut past NOTE_EMAIL_CHARS, saying so). */
export function otherSenderNote(address: string, text: string): string {
  let body = text;
  if (text.length > NOTE_EMAIL_CHARS) {
    // Counted as the 4096 are (UTF-16 units), but never cutting an emoji into half a surrogate pair.
    const high = text.charCodeAt(NOTE_EMAIL_CHARS - 1);
    const end = high >= 0xd800 && high <= 0xdbff ? NOTE_EMAIL_CHARS - 1 : NOTE_EMAIL_CHARS;
    body = `${text.slice(0, end)}…\n[cut: ${Array.from(text.slice(end)).length} more characters]`;
  }
  return (
    `Email from ${address}, not the address this conversation was emailed at: kept as a note, not as the customer's message ` +
    `(it may be the customer's other address, or someone the email was forwarded to).\n\n${body}`
  );
}

/**
 * The idempotency scope of another sender's email in a conversation: its Message-ID, else (a
 * caller that gave none) its sender and whole text, so that a redelivery makes no second note.
 * Hashed: a Message-ID may be 998 characters of anything, too long for a key.
 */
export function otherSenderNoteScope(conversationId: string, address: string, email: Pick<InboundEmail, 'messageId' | 'text'>): string {
  const what = email.messageId ? ['id', email.messageId] : ['content', address, email.text];
  return `email-note#${conversationId}#${contentHash(JSON.stringify(what))}`;
}

/**
 * Stores another sender's email as a private note, once: the claim gives every delivery of the
 * email the same message id, and the note's conditional put (storeOutbound) stores it once. A
 * note stays with the team (no outbound job, no visitor frame), and as a note it moves neither
 * the unread count, the customer's last message nor the status: a resolved conversation stays
 * resolved (a stranger must not reopen it), and agents see the note live and in its history.
 */
async function keepAsNote(conversation: ConversationRecord, address: string, text: string, email: InboundEmail, now = Date.now()): Promise<boolean> {
  const { claimed, record } = await claimDedup(otherSenderNoteScope(conversation.id, address, email), { conversationId: conversation.id, messageId: newId() });
  // Stored by an earlier delivery, which may have died before showing it: shown again (showNote).
  // One that died after the claim and before the note is finished here.
  const stored = claimed ? undefined : await getMessage(record.conversationId, record.messageId);
  if (stored) {
    await showNote(stored, conversation);
    return true;
  }
  // Counted once claimed, so that a redelivery takes no room; one refused here and delivered
  // again after the hour is stored then.
  const windowStart = now - (now % EMAIL_NOTE_LIMIT.windowMs);
  if (claimed && !(await takeSend(keys.emailNotes(conversation.id, new Date(windowStart).toISOString()), windowStart, EMAIL_NOTE_LIMIT.windowMs, EMAIL_NOTE_LIMIT.notes))) {
    return false;
  }
  await storeOutbound(conversation, { text: otherSenderNote(address, text), sender: SYSTEM_SENDER }, 'note', record.messageId);
  return true;
}

/**
 * Notes from other senders per conversation and hour: anyone who holds the reply address (a
 * forward, a mailing list it reached) can write them, and each reaches every agent live.
 */
export const EMAIL_NOTE_LIMIT = { notes: 20, windowMs: 3_600_000 };

/**
 * A customer's email as a provider message id, the key that stores it once: its Message-ID, hashed
 * when long, since the idempotency record's key holds 2048 bytes and a Message-ID may be 998
 * characters (of UTF-8, with SMTPUTF8).
 */
export function emailProviderId(messageId: string): string {
  return Buffer.byteLength(messageId) <= 500 ? `email:${messageId}` : `email:#${contentHash(messageId)}`;
}

/**
 * An email reply (SES receiving, or POST /local/mail/inbound) → an InboundMessageEvent on the
 * conversation its reply-to address names, through the inbound queue like every customer message.
 * Only the address the conversation's email went to may write in it as the customer: anyone else
 * holding the reply address (a forward, a quote in a thread, or the customer's other address) is
 * kept as a private note for the team instead, so that nobody speaks as the customer and nothing
 * the customer wrote is lost. A From naming no single address, or another sender's email with no
 * new text, is refused, and nothing is stored. The customer's `files` (decoded from the raw email,
 * attachedFiles) become the message's attachments; another sender's note only names them.
 */
export async function receiveEmail(email: InboundEmail, files: readonly EmailFile[] = []): Promise<InboundEmailResult> {
  if (email.automatic) return { accepted: false, reason: 'auto_reply' };
  const recipients = (Array.isArray(email.to) ? email.to : email.to.split(',')).map((r) => r.trim());
  let conversation: ConversationRecord | undefined;
  for (const recipient of recipients) {
    const id = conversationFromReplyAddress(recipient);
    const found = id ? await getConversation(id) : undefined;
    // One whose customer's erasure was asked for is gone: nothing more is written in it (Erasure).
    if (found && !isErasing(found)) {
      conversation = found;
      break;
    }
  }
  if (!conversation) return { accepted: false, reason: 'unknown_recipient' };
  const sender = senderAddress(email.from);
  const words = stripQuotedReply(email.text);
  if (!(await fromCustomer(conversation, sender))) {
    const text = withFilesNotKept(words, email.files);
    if (!sender || !text) return { accepted: false, reason: 'unknown_sender' };
    if (!(await keepAsNote(conversation, sender, text, email))) return { accepted: false, reason: 'rate_limited' };
    return { accepted: true, conversationId: conversation.id, kept: 'note' };
  }
  const providerMessageId = email.messageId ? emailProviderId(email.messageId) : undefined;
  // Without a Message-ID a redelivery could not find the same keys: its files stay named.
  const kept = providerMessageId ? await keepEmailFiles(conversation.id, providerMessageId, files) : [];
  const keptIndexes = new Set(kept.map((k) => k.index));
  const notKept = files.length > 0 ? files.flatMap((file, i) => (keptIndexes.has(i) ? [] : [file.name])) : email.files;
  const text = withFilesNotKept(words, notKept);
  if (!text && kept.length === 0) return { accepted: false, reason: 'empty' };
  const event: InboundMessageEvent = {
    kind: 'message',
    channel: conversation.channel,
    // The conversation's own handle keeps the event in its FIFO group and resolves to it.
    handle: conversation.handle,
    conversationId: conversation.id,
    text,
    attachments: kept.map((k) => k.attachment),
    sentAt: new Date().toISOString(),
    ...(providerMessageId ? { providerMessageId } : {}),
  };
  await enqueueInbound([event]);
  return { accepted: true, conversationId: conversation.id, kept: 'message' };
}

/** Files written at once (an email has a few). */
const FILE_CONCURRENCY = 4;

/**
 * Writes the decoded files of a customer's email into the media bucket, where the channels keep a
 * customer's files, under keys made of the conversation, the email's provider id and the file's
 * place: a redelivered email writes the same bytes to the same keys, and its message (stored once
 * by that id) names them once. The attachments, with the index of the file each came from.
 */
async function keepEmailFiles(conversationId: string, providerMessageId: string, files: readonly EmailFile[]): Promise<{ index: number; attachment: Attachment }[]> {
  const keptFiles = files.flatMap((file, index) => (file.bytes && file.mimeType ? [{ index, file: { ...file, bytes: file.bytes, mimeType: file.mimeType } }] : [])).slice(0, MAX_ATTACHMENTS);
  return mapConcurrently(keptFiles, FILE_CONCURRENCY, async ({ index, file }) => {
    const key = emailFileKey(conversationId, providerMessageId, index);
    await putObject(key, file.bytes, file.mimeType);
    const attachment: Attachment = { type: attachmentType(file.mimeType), url: `${MEDIA_SCHEME}${key}`, mimeType: file.mimeType, name: file.name, size: file.bytes.length };
    return { index, attachment };
  });
}

/**
 * The files of an email that are not kept (over the channels' limit, past a message's number of
 * files, or only named: the engagement function's `inboundEmail` event and the local JSON route):
 * the message names them, so that a customer's photo is not dropped unseen, and the team asks for it in the chat.
 */
function withFilesNotKept(text: string, files: readonly string[] | undefined): string {
  if (!files?.length) return text;
  const line = `📎 Sent by email, not kept here: ${files.join(', ')}`;
  return text ? `${text}\n\n${line}` : line;
}

/** The local route's body: an email as SES hands it over, and the Date header it may give. */
const LocalInboundEmailSchema = z.extend(InboundEmailSchema, {
  date: z.optional(z.text(1, 200)),
  /** Other header fields by name (any case), e.g. `{"Auto-Submitted": "auto-replied"}`. */
  headers: z.optional(z.record(z.string().check(z.maxLength(200)), z.text(0, 998))),
});

/**
 * A Message-ID for a locally posted email that gives none, made from what makes it that email
 * (addresses, subject, text, Date): posted again, it is the same email and is stored once, as one
 * SES receives always has a Message-ID. Two emails alike in all of that need a messageId or a date.
 */
function localMessageId(email: z.infer<typeof LocalInboundEmailSchema>): string {
  return `<${contentHash(JSON.stringify([email.to, email.from, email.subject ?? '', email.text, email.date ?? '']))}@local.conversa>`;
}

/**
 * Local stand-in for SES receiving (POST /local/mail/inbound): status and body to answer with. The
 * body is the email as JSON (LocalInboundEmailSchema), or, with `contentType` message/rfc822, the raw
 * MIME email as SES stores it, read as the deployed path reads it (its files kept likewise).
 */
export async function receiveLocalEmail(rawBody: string, contentType?: string): Promise<{ status: number; body: unknown }> {
  if (/^message\/rfc822\b/i.test(contentType ?? '')) {
    const received = emailFromMime(rawBody);
    if (!received) return { status: 400, body: { error: { code: 'invalid_request', message: 'the email needs a To naming a reply address and a From' } } };
    // A raw email without a Message-ID is the same email when it is the same bytes.
    return localAnswer(await receiveEmail({ ...received.email, messageId: received.email.messageId ?? `<${contentHash(rawBody)}@local.conversa>` }, received.files));
  }
  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch {
    return { status: 400, body: { error: { code: 'invalid_json', message: 'the body must be a JSON object (or, with Content-Type message/rfc822, a MIME email)' } } };
  }
  const parsed = LocalInboundEmailSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { status: 400, body: { error: { code: 'invalid_request', message: `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}` } } };
  }
  const { headers, ...email } = parsed.data;
  const automatic = email.automatic ?? isAutomaticEmail(Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name.toLowerCase(), value])));
  return localAnswer(await receiveEmail({ ...email, automatic, messageId: email.messageId ?? localMessageId(email) }));
}

function localAnswer(result: InboundEmailResult): { status: number; body: unknown } {
  if (!result.accepted) {
    if (result.reason === 'unknown_sender') {
      return {
        status: 403,
        body: { error: { code: result.reason, message: 'the From names no single address, or is not the address this conversation was emailed at and wrote no new text' } },
      };
    }
    if (result.reason === 'auto_reply') {
      return { status: 422, body: { error: { code: result.reason, message: 'an automatic reply (out of office, auto-responder) or a bounce: nobody wrote it, so nothing is kept' } } };
    }
    if (result.reason === 'rate_limited') {
      return { status: 429, body: { error: { code: result.reason, message: `at most ${EMAIL_NOTE_LIMIT.notes} emails from other senders per conversation and hour` } } };
    }
    return { status: 422, body: { error: { code: result.reason, message: result.reason === 'empty' ? 'the email has no new text' : 'no conversation has this address' } } };
  }
  return { status: 202, body: { conversationId: result.conversationId, kept: result.kept } };
}

// SES receiving, deployed: the stack's receipt rule's S3 action stores the whole email (up to
// SES's 40 MB) and notifies the topic with where; a rule with an SNS action (encoding UTF-8, emails up
// to 150 KB, larger ones bounce) publishes the email itself, as deployments before the S3 action did.
// The engagement function, subscribed to that topic, gets either here.

interface SesNotification {
  notificationType?: string;
  mail?: { messageId?: string; source?: string; commonHeaders?: { from?: string[]; to?: string[]; subject?: string; messageId?: string } };
  receipt?: {
    recipients?: string[];
    spamVerdict?: { status?: string };
    virusVerdict?: { status?: string };
    dmarcVerdict?: { status?: string };
    action?: { type?: string; bucketName?: string; objectKey?: string };
  };
  content?: string;
}

/** An email as received: its fields, and the files it came with (attachedFiles). */
export interface ReceivedEmail {
  email: InboundEmail;
  files: EmailFile[];
}

/** Reads a stored raw email (the S3 action's object): its bytes, or undefined when there is none. */
export type RawEmailReader = (bucket: string, key: string) => Promise<Buffer | undefined>;

/**
 * The emails in an SNS event carrying SES "Received" notifications; spam, viruses and emails whose
 * From fails DMARC (forged: the sender check in receiveEmail trusts the From) are left out. An email
 * the notification does not carry is read where the S3 action stored it; one gone from there
 * (expired) is left out, and a failure to read it throws, so that the delivery is tried again.
 */
/**
 * Where the S3 action stored the emails of an SNS event (spam and unreadable ones included): once
 * every one of them is taken in, their copies are deleted, so a customer's words and files are not
 * kept twice (and outside erasure's reach) for the bucket's 14 days.
 */
export function storedEmailLocations(event: { Records?: { Sns?: { Message?: string } }[] }): { bucket: string; key: string }[] {
  return (event.Records ?? []).flatMap((record) => {
    try {
      const action = (JSON.parse(record.Sns?.Message ?? '') as SesNotification).receipt?.action;
      return action?.type === 'S3' && action.bucketName && action.objectKey ? [{ bucket: action.bucketName, key: action.objectKey }] : [];
    } catch {
      return [];
    }
  });
}

export async function emailsFromSesNotifications(event: { Records?: { Sns?: { Message?: string } }[] }, readRaw: RawEmailReader): Promise<ReceivedEmail[]> {
  const emails: ReceivedEmail[] = [];
  for (const record of event.Records ?? []) {
    let note: SesNotification;
    try {
      note = JSON.parse(record.Sns?.Message ?? '') as SesNotification;
    } catch {
      continue;
    }
    if (note.notificationType !== 'Received') continue;
    if ([note.receipt?.spamVerdict, note.receipt?.virusVerdict, note.receipt?.dmarcVerdict].some((verdict) => verdict?.status === 'FAIL')) continue;
    const raw = await rawEmailOf(note, readRaw);
    if (raw === undefined) continue;
    const to = [...(note.receipt?.recipients ?? []), ...(note.mail?.commonHeaders?.to ?? [])];
    const from = note.mail?.commonHeaders?.from?.[0] ?? note.mail?.source;
    const received = emailFromMime(raw, { to, from, subject: note.mail?.commonHeaders?.subject, messageId: note.mail?.commonHeaders?.messageId ?? note.mail?.messageId });
    if (received) emails.push(received);
  }
  return emails;
}

async function rawEmailOf(note: SesNotification, readRaw: RawEmailReader): Promise<string | undefined> {
  if (note.content) return /^[A-Za-z0-9+/=\r\n]+$/.test(note.content) ? Buffer.from(note.content, 'base64').toString('utf8') : note.content;
  const action = note.receipt?.action;
  if (action?.type !== 'S3' || !action.bucketName || !action.objectKey) return undefined;
  const bytes = await readRaw(action.bucketName, action.objectKey);
  if (!bytes) console.warn('an inbound email was dropped: its stored copy is gone', action.objectKey);
  // As the SNS action's UTF-8 encoding hands it over: 8-bit text parts are read as UTF-8.
  return bytes?.toString('utf8');
}

/**
 * A raw MIME email as an InboundEmail and its files; `envelope` gives what SES read from it (the
 * recipients, the From, the Message-ID), else its own headers do. Undefined, logged, when it is not one.
 */
export function emailFromMime(raw: string, envelope: { to?: string[]; from?: string; subject?: string; messageId?: string } = {}): ReceivedEmail | undefined {
  const { headers } = splitMessage(raw);
  const files = attachedFiles(raw);
  const to = envelope.to?.length ? envelope.to : [headers.to, headers.cc].filter((h): h is string => Boolean(h)).flatMap((h) => h.split(','));
  const parsed = InboundEmailSchema.safeParse({
    to,
    from: envelope.from ?? headers.from,
    // Never used: a long one must not cost the reply.
    subject: (envelope.subject ?? headers.subject)?.slice(0, 1000),
    text: textFromMime(raw) ?? '',
    messageId: envelope.messageId ?? headers['message-id'],
    automatic: isAutomaticEmail(headers),
    ...(files.length ? { files: files.map((f) => f.name) } : {}),
  });
  if (parsed.success) return { email: parsed.data, files };
  console.warn('an inbound email was dropped', parsed.error.issues[0]?.path.join('.'), parsed.error.issues[0]?.message);
  return undefined;
}

function splitMessage(raw: string): { headers: Record<string, string>; body: string } {
  const normalised = raw.replace(/\r\n/g, '\n');
  const end = normalised.indexOf('\n\n');
  const head = end < 0 ? normalised : normalised.slice(0, end);
  const headers: Record<string, string> = {};
  // Folded header lines continue with whitespace.
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body: end < 0 ? '' : normalised.slice(end + 2) };
}

/** A body's bytes: base64 and quoted-printable decoded, anything else as the UTF-8 text SNS (or the S3 object, read so) gives. */
function bodyBytes(body: string, encoding: string | undefined): Buffer {
  const enc = (encoding ?? '').toLowerCase();
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64');
  if (enc === 'quoted-printable') return Buffer.from(softBreaksJoined(body).replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  return Buffer.from(body, 'utf8');
}

function decodeBody(body: string, encoding: string | undefined, charset: string | undefined): string {
  const enc = (encoding ?? '').toLowerCase();
  // 7bit, 8bit, binary or none: SNS hands the email over as decoded text already.
  if (enc !== 'base64' && enc !== 'quoted-printable') return body;
  const bytes = bodyBytes(body, enc);
  // Mail clients label windows-1252 text latin1 too (WHATWG reads both as windows-1252); Node's
  // decoder takes them as ISO-8859-1, which turns ’ “ ” € into invisible control characters.
  if (/^(windows-1252|cp1252|iso-8859-1|latin1|us-ascii)$/i.test(charset ?? '')) return windows1252(bytes);
  try {
    // iso-8859-15, iso-8859-2, koi8-r…: each by its own table.
    return new TextDecoder(charset ?? 'utf-8').decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

/**
 * Quoted-printable's line ends (RFC 2045): whitespace before a break is transport padding, and a
 * `=` then ends a soft break (Outlook pads them). Split and trimmed per line, which a regex over a
 * long run of spaces would do in quadratic time; an encoded word (one line) is left as it is.
 */
function softBreaksJoined(body: string): string {
  const lines = body.split('\n');
  let joined = '';
  for (let i = 0; i < lines.length - 1; i++) {
    const line = lines[i]!.trimEnd();
    joined += line.endsWith('=') ? line.slice(0, -1) : `${line}\n`;
  }
  return joined + lines[lines.length - 1]!;
}

/**
 * format=flowed text (RFC 3676, Thunderbird's and Apple Mail's default) as its paragraphs: a line
 * ending in a space goes on in the next line of the same quote depth (without that space under
 * DelSp=yes), and a line's leading stuffed space is dropped. The signature line `-- ` is not flowed.
 */
function unflowed(text: string, delSp: boolean): string {
  const out: string[] = [];
  const write = (depth: number, line: string) => out.push(depth ? `${'>'.repeat(depth)} ${line}` : line);
  let open: { depth: number; text: string } | undefined;
  for (const line of text.split('\n')) {
    const depth = /^>*/.exec(line)![0].length;
    const content = line.slice(depth).replace(/^ /, '');
    const joined = open && open.depth === depth ? open.text + content : content;
    if (open && open.depth !== depth) write(open.depth, open.text);
    if (content.endsWith(' ') && content !== '-- ') {
      open = { depth, text: delSp ? joined.slice(0, -1) : joined };
    } else {
      write(depth, joined);
      open = undefined;
    }
  }
  if (open) write(open.depth, open.text);
  return out.join('\n');
}

/** RFC 2047's encoded words (`=?UTF-8?B?…?=`, `=?ISO-8859-1?Q?…?=`) as their text; adjacent ones join. */
function decodeWords(text: string): string {
  return text
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?\s]+)\?([bq])\?([^?\s]*)\?=/gi, (_, charset: string, kind: string, data: string) =>
      kind.toLowerCase() === 'b' ? decodeBody(data, 'base64', charset) : decodeBody(data.replace(/_/g, ' '), 'quoted-printable', charset),
    );
}

/** windows-1252's characters for 0x80–0x9F (undefined slots stay as they are). */
const CP1252_HIGH = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';

function windows1252(bytes: Buffer): string {
  let out = '';
  for (const byte of bytes) out += byte >= 0x80 && byte <= 0x9f ? CP1252_HIGH[byte - 0x80]! : String.fromCharCode(byte);
  return out;
}

/** Nested multiparts deeper than any mail client makes: a hostile email, not a reply. */
const MAX_MIME_DEPTH = 10;
/** Parts of one multipart read, and parts looked at for files in one email: more is a hostile email, read no further. */
const MAX_MIME_PARTS = 100;

/** Removes each `<tag …>…</tag>` with its content, in one pass (an unclosed one runs to the end). */
function dropElements(html: string, tag: string): string {
  const opening = new RegExp(`<${tag}\\b`, 'gi');
  const closing = new RegExp(`</${tag}\\s*>`, 'gi');
  let out = '';
  let at = 0;
  for (;;) {
    opening.lastIndex = at;
    const open = opening.exec(html);
    if (!open) return out + html.slice(at);
    out += html.slice(at, open.index);
    closing.lastIndex = open.index;
    const close = closing.exec(html);
    if (!close) return out;
    at = close.index + close[0].length;
  }
}

/** Named character references mail clients write beyond the accented letters (ACCENTS). */
const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', shy: '', zwnj: '\u200c', zwj: '\u200d',
  lsquo: '‘', rsquo: '’', sbquo: '‚', ldquo: '“', rdquo: '”', bdquo: '„', laquo: '«', raquo: '»',
  ndash: '–', mdash: '—', hellip: '…', bull: '•', middot: '·', copy: '©', reg: '®', trade: '™',
  euro: '€', pound: '£', yen: '¥', cent: '¢', deg: '°', times: '×', divide: '÷', iexcl: '¡', iquest: '¿',
  szlig: 'ß', aelig: 'æ', AElig: 'Æ', oelig: 'œ', OElig: 'Œ', oslash: 'ø', Oslash: 'Ø', eth: 'ð', ETH: 'Ð', thorn: 'þ', THORN: 'Þ',
};
/** `&eacute;`, `&Uuml;`, `&ccedil;`…: the letter with its combining mark, composed. */
const ACCENTS: Record<string, string> = { acute: '\u0301', grave: '\u0300', circ: '\u0302', uml: '\u0308', tilde: '\u0303', cedil: '\u0327', ring: '\u030a' };

/** One pass, so that `&amp;lt;` stays the text `&lt;`; a reference it does not know stays as written. */
function decodeEntities(text: string): string {
  return text.replace(/&(?:#(\d{1,7})|#x([0-9a-f]{1,6})|([a-z]{2,8}));/gi, (whole, dec?: string, hex?: string, name?: string) => {
    if (name) {
      const accented = /^([a-z])(acute|grave|circ|uml|tilde|cedil|ring)$/i.exec(name);
      return Object.hasOwn(ENTITIES, name) ? ENTITIES[name]! : (accented ? `${accented[1]}${ACCENTS[accented[2]!]}`.normalize('NFC') : whole);
    }
    const code = dec ? parseInt(dec, 10) : parseInt(hex!, 16);
    return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff) ? String.fromCodePoint(code) : whole;
  });
}

/** HTML to text: the title, styles, scripts and quoted earlier emails dropped, blocks and breaks as lines. */
function htmlText(html: string): string {
  const visible = ['title', 'style', 'script', 'blockquote'].reduce(dropElements, html);
  return decodeEntities(visible.replace(/<br\s*\/?>|<\/(p|div|li|tr|h[1-6])>/gi, '\n').replace(/<[^<>]*>/g, ''));
}

/** A multipart's parts, each as written and its headers; undefined for a body that is none (or names no boundary). */
function multipartParts(headers: Record<string, string>, body: string): { raw: string; headers: Record<string, string> }[] | undefined {
  const type = headers['content-type'] ?? '';
  const boundary = /^multipart\//i.test(type) ? /boundary="?([^";]+)"?/i.exec(type)?.[1] : undefined;
  if (!boundary) return undefined;
  // Split no further than MAX_MIME_PARTS: a hostile email's thousands of parts are never made into strings.
  return body
    .split(`--${boundary}`, MAX_MIME_PARTS + 1)
    .slice(1)
    .filter((part) => !part.startsWith('--'))
    .map((part) => {
      const raw = part.replace(/^\n/, '');
      return { raw, headers: splitMessage(raw).headers };
    });
}

/** A part the sender attached (a file, even one of text), not the words they wrote. */
const isAttachedFile = (headers: Record<string, string>) => /^attachment\b|\bfilename\*?=/i.test(headers['content-disposition'] ?? '');

/** A file a person attached: its name, and its type and bytes when it can be kept (emailFileParts). */
export interface EmailFile {
  name: string;
  mimeType?: string;
  bytes?: Buffer;
}

/**
 * The parts a person attached as files, in order, at most MAX_LISTED_FILES among at most
 * MAX_MIME_PARTS parts: a part attached as a file, or an inline one named but not shown in the HTML
 * by Content-ID (a pasted photo, not a signature's logo).
 */
function fileParts(raw: string): { name: string; raw: string; headers: Record<string, string> }[] {
  const found: { name: string; raw: string; headers: Record<string, string> }[] = [];
  let looked = 0;
  const walk = (raw: string, depth: number): void => {
    if (depth > MAX_MIME_DEPTH) return;
    const { headers, body } = splitMessage(raw);
    for (const part of multipartParts(headers, body) ?? []) {
      if (found.length >= MAX_LISTED_FILES || ++looked > MAX_MIME_PARTS) return;
      const name = fileNameOf(part.headers);
      const disposition = part.headers['content-disposition'] ?? '';
      if (name && (/^attachment\b/i.test(disposition) || !part.headers['content-id'])) found.push({ name, ...part });
      else if (!name) walk(part.raw, depth + 1);
    }
  };
  walk(raw, 0);
  return found;
}

/** The names of the files a person attached, in order (fileParts). */
export function attachedFileNames(raw: string): string[] {
  return fileParts(raw).map((part) => part.name);
}

/**
 * The files a person attached (fileParts), the first MAX_ATTACHMENTS of them decoded with their
 * type, as a message takes that many; one larger than MAX_UPLOAD_BYTES (the channels' limit) keeps
 * its name only. A type that is no well-formed media type is application/octet-stream, as the
 * channels keep a provider's file.
 */
export function attachedFiles(raw: string): EmailFile[] {
  return fileParts(raw).map((part, i) => {
    if (i >= MAX_ATTACHMENTS) return { name: part.name };
    const { headers, body } = splitMessage(part.raw);
    const encoding = headers['content-transfer-encoding'];
    // Base64 takes 4 characters for 3 bytes: one far too long is not decoded at all.
    if (body.length > (/^\s*base64\s*$/i.test(encoding ?? '') ? (MAX_UPLOAD_BYTES / 3) * 4 * 1.1 : MAX_UPLOAD_BYTES * 3)) return { name: part.name };
    // The line break before the next boundary belongs to the boundary.
    const bytes = bodyBytes(body.replace(/\n$/, ''), encoding);
    if (bytes.length === 0 || bytes.length > MAX_UPLOAD_BYTES) return { name: part.name };
    const type = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    return { name: part.name, mimeType: CONTENT_TYPE.test(type) ? type : 'application/octet-stream', bytes };
  });
}

/** A part's file name: `filename` (RFC 2231's `filename*=UTF-8''…` too), else the type's `name`. */
function fileNameOf(headers: Record<string, string>): string | undefined {
  const disposition = headers['content-disposition'] ?? '';
  const extended = /filename\*=(?:([\w-]+)?'[^']*')?([^;\s]+)/i.exec(disposition);
  let name: string | undefined;
  if (extended) {
    try {
      name = decodeURIComponent(extended[2]!);
    } catch {
      name = extended[2];
    }
  } else {
    name = /\bfilename="?([^";]+)"?/i.exec(disposition)?.[1] ?? /\bname="?([^";]+)"?/i.exec(headers['content-type'] ?? '')?.[1];
  }
  const shown = name ? decodeWords(name).replace(/\p{Cc}/gu, '').trim().slice(0, 255) : '';
  return shown || undefined;
}

/** The readable text of a MIME email: its text/plain part, else its HTML with the tags dropped. */
export function textFromMime(raw: string, depth = 0): string | undefined {
  if (depth > MAX_MIME_DEPTH) return undefined;
  const { headers, body } = splitMessage(raw);
  const type = headers['content-type'] ?? 'text/plain';
  const charset = /charset="?([^";\s]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type)) {
    const parts = multipartParts(headers, body);
    if (!parts) return undefined;
    const texts = parts
      .filter((part) => !isAttachedFile(part.headers))
      .map((part) => ({ type: part.headers['content-type'] ?? 'text/plain', text: textFromMime(part.raw, depth + 1) }));
    return (texts.find((t) => /^(text\/plain|multipart\/)/i.test(t.type) && t.text) ?? texts.find((t) => t.text))?.text;
  }
  const text = decodeBody(body, headers['content-transfer-encoding'], charset);
  if (/^text\/plain/i.test(type)) return /;\s*format="?flowed/i.test(type) ? unflowed(text.replace(/\r\n/g, '\n'), /;\s*delsp="?yes/i.test(type)) : text;
  if (/^text\/html/i.test(type)) return htmlText(text);
  return undefined;
}
