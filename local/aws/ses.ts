/**
 * SES v2 stand-in: SendEmail with simple content is recorded instead of delivered, so that the
 * local stack and tests can read what would have gone out.
 */
import { randomUUID } from 'node:crypto';

export interface SentEmail {
  messageId: string;
  to: string[];
  cc: string[];
  bcc: string[];
  from: string;
  replyTo: string[];
  subject: string;
  text: string | undefined;
  html: string | undefined;
  at: Date;
}

export type SesErrorCode = 'BadRequestException';

export class SesError extends Error {
  readonly status = 400;

  constructor(
    readonly code: SesErrorCode,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function badRequest(message: string): SesError {
  return new SesError('BadRequestException', message);
}

function structure(input: Json, name: string): Json | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw badRequest(`${name} must be a structure.`);
  return value;
}

/**
 * SES does not support SMTPUTF8: an address (display name included) must be 7-bit ASCII, a
 * Unicode domain given in Punycode and a Unicode name as a MIME encoded-word.
 */
const ASCII_ADDRESS = /^[\x20-\x7e]*@[\x20-\x7e]*$/;

function address(value: unknown, name: string): string {
  if (typeof value !== 'string' || !value.includes('@')) throw badRequest(`${name} must be an email address.`);
  if (!ASCII_ADDRESS.test(value)) throw badRequest(`${name}: the address must be 7-bit ASCII (SES does not support SMTPUTF8): ${value}`);
  return value;
}

function addresses(input: Json | undefined, name: string): string[] {
  const value = input?.[name];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw badRequest(`${name} must be a list of email addresses.`);
  return value.map((item) => address(item, name));
}

/** The Data of a Content structure ({ Data, Charset }). */
function contentData(input: Json | undefined, name: string): string | undefined {
  const content = input && structure(input, name);
  if (content === undefined) return undefined;
  if (typeof content.Data !== 'string') throw badRequest(`${name}.Data is required.`);
  return content.Data;
}

export class LocalSes {
  /** Every accepted email, oldest first. */
  readonly sent: SentEmail[] = [];

  sendEmail(input: Json): Json {
    if (input.FromEmailAddress === undefined || input.FromEmailAddress === null) throw badRequest('FromEmailAddress is required.');
    const from = address(input.FromEmailAddress, 'FromEmailAddress');
    const destination = structure(input, 'Destination');
    const [to, cc, bcc] = [addresses(destination, 'ToAddresses'), addresses(destination, 'CcAddresses'), addresses(destination, 'BccAddresses')];
    if (to.length + cc.length + bcc.length === 0) throw badRequest('Destination must have at least one recipient.');

    const content = structure(input, 'Content');
    const simple = content && structure(content, 'Simple');
    if (!simple) throw badRequest('The local SES supports Content.Simple only (not Raw or Template).');
    const subject = contentData(simple, 'Subject');
    if (subject === undefined) throw badRequest('Content.Simple.Subject is required.');
    const body = structure(simple, 'Body');
    const text = contentData(body, 'Text');
    const html = contentData(body, 'Html');
    if (text === undefined && html === undefined) throw badRequest('Content.Simple.Body needs Text or Html.');

    const messageId = `local-${randomUUID()}`;
    this.sent.push({ messageId, to, cc, bcc, from, replyTo: addresses(input, 'ReplyToAddresses'), subject, text, html, at: new Date() });
    return { MessageId: messageId };
  }
}
