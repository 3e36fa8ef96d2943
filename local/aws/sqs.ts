/**
 * In-memory SQS: standard and FIFO queues, visibility timeouts, long polling and redrive to a
 * dead-letter queue. `execute` speaks the operations of the AWS JSON protocol (what SDK v3 sends);
 * the queue objects are also used directly by the local event source mapping and by tests.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';

export const ACCOUNT_ID = '000000000000';
export const REGION = 'us-east-1';

const DEDUPLICATION_WINDOW_MS = 5 * 60 * 1000;
const MAX_MESSAGE_BYTES = 1024 * 1024;
const MAX_BATCH_ENTRIES = 10;
const MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 60 * 60;
const MAX_WAIT_TIME_SECONDS = 20;
const MAX_DELAY_SECONDS = 15 * 60;
const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30;
/** SQS rejects bodies with characters outside this XML-safe set, so code that passes here passes there. */
const INVALID_BODY_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const BATCH_ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;
const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;

/** Codes SQS answers with; the SDK maps the modelled ones to exception classes. */
export type SqsErrorCode =
  | 'BatchEntryIdsNotDistinct'
  | 'BatchRequestTooLong'
  | 'EmptyBatchRequest'
  | 'InvalidAttributeName'
  | 'InvalidAttributeValue'
  | 'InvalidBatchEntryId'
  | 'InvalidMessageContents'
  | 'InvalidParameterValue'
  | 'MessageNotInflight'
  | 'MissingParameter'
  | 'QueueDoesNotExist'
  | 'QueueNameExists'
  | 'ReceiptHandleIsInvalid'
  | 'TooManyEntriesInBatchRequest'
  | 'UnknownOperationException';

/** The awsQueryError codes of the SQS model: the SDK reads them from the x-amzn-query-error header. */
const QUERY_ERROR_CODES: Partial<Record<SqsErrorCode, string>> = {
  BatchEntryIdsNotDistinct: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
  BatchRequestTooLong: 'AWS.SimpleQueueService.BatchRequestTooLong',
  EmptyBatchRequest: 'AWS.SimpleQueueService.EmptyBatchRequest',
  InvalidBatchEntryId: 'AWS.SimpleQueueService.InvalidBatchEntryId',
  MessageNotInflight: 'AWS.SimpleQueueService.MessageNotInflight',
  QueueDoesNotExist: 'AWS.SimpleQueueService.NonExistentQueue',
  QueueNameExists: 'QueueAlreadyExists',
  TooManyEntriesInBatchRequest: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
};

export class SqsError extends Error {
  constructor(
    readonly code: SqsErrorCode,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = code;
  }

  get queryErrorCode(): string {
    return QUERY_ERROR_CODES[this.code] ?? this.code;
  }
}

export interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  /** Base64, as on the wire. */
  BinaryValue?: string;
}

export type MessageAttributes = Record<string, MessageAttributeValue>;

export interface SendInput {
  body: string;
  messageAttributes?: MessageAttributes;
  groupId?: string;
  deduplicationId?: string;
  delaySeconds?: number;
}

export interface SendResult {
  messageId: string;
  md5OfMessageBody: string;
  md5OfMessageAttributes?: string;
  sequenceNumber?: string;
}

/** The system attributes SQS can return with a message, keyed by their wire names. */
export interface SystemAttributes {
  ApproximateReceiveCount: string;
  ApproximateFirstReceiveTimestamp: string;
  SentTimestamp: string;
  SenderId: string;
  MessageGroupId?: string;
  MessageDeduplicationId?: string;
  SequenceNumber?: string;
  DeadLetterQueueSourceArn?: string;
}

export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  md5OfBody: string;
  md5OfMessageAttributes?: string;
  messageAttributes: MessageAttributes;
  attributes: SystemAttributes;
}

export interface ReceiveOptions {
  maxMessages?: number;
  visibilityTimeoutSeconds?: number;
}

export interface QueueOptions {
  /** @default true when the name ends in `.fifo` */
  fifo?: boolean;
  /** @default 30 */
  visibilityTimeoutSeconds?: number;
  /** Created (with the same type) when it does not exist yet. */
  deadLetterQueueName?: string;
  /** @default 10 when a dead-letter queue is set */
  maxReceiveCount?: number;
  contentBasedDeduplication?: boolean;
  /**
   * Where a deduplication id is unique: the whole queue (SQS's default) or each message group (a
   * high-throughput FIFO queue, as lib/constructs/buffered-queue.ts deploys them).
   * @default 'queue'
   */
  deduplicationScope?: DeduplicationScope;
  /** @default 0 */
  delaySeconds?: number;
}

export type DeduplicationScope = 'queue' | 'messageGroup';

interface StoredMessage {
  readonly messageId: string;
  readonly body: string;
  readonly md5OfBody: string;
  readonly messageAttributes: MessageAttributes;
  readonly md5OfMessageAttributes: string | undefined;
  readonly sentTimestamp: number;
  readonly groupId: string | undefined;
  readonly deduplicationId: string | undefined;
  readonly sequenceNumber: string | undefined;
  deadLetterQueueSourceArn?: string;
  /** Epoch ms before which the message is delayed (never received) or in flight (received). */
  visibleAt: number;
  receiveCount: number;
  firstReceiveTimestamp: number | undefined;
  /** Only the latest receipt handle may delete the message or change its visibility. */
  receiptHandle: string | undefined;
}

interface RedrivePolicy {
  deadLetterQueue: LocalQueue;
  maxReceiveCount: number;
}

interface DeduplicationRecord {
  messageId: string;
  sequenceNumber: string | undefined;
  expiresAt: number;
}

/**
 * Wakes whoever waits for a queue to change (a send, a delete that unblocks a FIFO group, a
 * visibility change), so that long polls and the event source answer within milliseconds.
 */
export class ChangeSignal {
  private readonly waiters = new Set<() => void>();
  private waking = false;

  /**
   * The waiters wake once the current I/O callback is done, all together however many changes it
   * made: the request that caused the change is answered first, as SQS answers a send without
   * waiting for the pollers it wakes (other machines there, this event loop here).
   */
  notify(): void {
    if (this.waking || this.waiters.size === 0) return;
    this.waking = true;
    setImmediate(() => {
      this.waking = false;
      const waiters = [...this.waiters];
      this.waiters.clear();
      for (const wake of waiters) wake();
    });
  }

  /** Resolves on the next notify, after `timeoutMs`, or on abort, whichever comes first. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, timeoutMs));
      this.waiters.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }
}

export function md5Hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * The MD5 SQS computes over message attributes: names sorted, each field length-prefixed
 * (4 bytes, big endian), with a transport byte telling string (1) from binary (2) values.
 */
export function md5OfMessageAttributes(attributes: MessageAttributes): string | undefined {
  const names = Object.keys(attributes).sort();
  if (names.length === 0) return undefined;
  const chunks: Buffer[] = [];
  const field = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    chunks.push(length, bytes);
  };
  for (const name of names) {
    const value = attributes[name]!;
    field(Buffer.from(name, 'utf8'));
    field(Buffer.from(value.DataType, 'utf8'));
    if (value.BinaryValue !== undefined) {
      chunks.push(Buffer.from([2]));
      field(Buffer.from(value.BinaryValue, 'base64'));
    } else {
      chunks.push(Buffer.from([1]));
      field(Buffer.from(value.StringValue ?? '', 'utf8'));
    }
  }
  return md5Hex(Buffer.concat(chunks));
}

/**
 * The bytes attributes add to a message's size: each name, type and value. Read loosely, as the
 * batch's size is checked before its entries are (a malformed one fails on its own later).
 */
function attributeBytes(attributes: unknown): number {
  if (!isObject(attributes)) return 0;
  let bytes = 0;
  for (const [name, value] of Object.entries(attributes)) {
    bytes += Buffer.byteLength(name);
    if (!isObject(value)) continue;
    for (const field of ['DataType', 'StringValue'] as const) if (typeof value[field] === 'string') bytes += Buffer.byteLength(value[field]);
    if (typeof value.BinaryValue === 'string') bytes += Buffer.from(value.BinaryValue, 'base64').length;
  }
  return bytes;
}

function encodeReceiptHandle(messageId: string, receiveCount: number): string {
  return Buffer.from(`${messageId}:${receiveCount}:${randomBytes(8).toString('hex')}`).toString('base64url');
}

function decodeReceiptHandle(handle: string): string {
  const [messageId, count, nonce, extra] = Buffer.from(handle, 'base64url').toString('utf8').split(':');
  if (!messageId || !count || !/^\d+$/.test(count) || !nonce || extra !== undefined) {
    throw new SqsError('ReceiptHandleIsInvalid', `The input receipt handle "${handle}" is not a valid receipt handle.`, 404);
  }
  return messageId;
}

export class LocalQueue {
  readonly arn: string;
  readonly fifo: boolean;
  readonly createdAt = Date.now();
  visibilityTimeoutSeconds: number;
  delaySeconds: number;
  contentBasedDeduplication: boolean;
  deduplicationScope: DeduplicationScope;
  redrive: RedrivePolicy | undefined;
  /** Notified on every change that may make a message receivable. */
  readonly changes = new ChangeSignal();

  private readonly messages = new Map<string, StoredMessage>();
  private readonly deduplication = new Map<string, DeduplicationRecord>();
  private sequence = 0n;

  constructor(
    readonly name: string,
    readonly url: string,
    options: QueueOptions,
  ) {
    this.arn = `arn:aws:sqs:${REGION}:${ACCOUNT_ID}:${name}`;
    this.fifo = options.fifo ?? name.endsWith('.fifo');
    this.visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS;
    this.delaySeconds = options.delaySeconds ?? 0;
    this.contentBasedDeduplication = options.contentBasedDeduplication ?? false;
    this.deduplicationScope = options.deduplicationScope ?? 'queue';
  }

  send(input: SendInput, now = Date.now()): SendResult {
    this.validateSend(input);
    const md5OfMessageBody = md5Hex(input.body);
    const attributes = input.messageAttributes ?? {};
    const md5OfAttributes = md5OfMessageAttributes(attributes);
    const deduplicationId = this.fifo ? this.deduplicationIdOf(input) : undefined;

    const deduplicationKey = deduplicationId === undefined ? undefined : this.deduplicationScope === 'messageGroup' ? `${input.groupId}\u0000${deduplicationId}` : deduplicationId;
    if (deduplicationKey !== undefined) {
      this.forgetExpiredDeduplication(now);
      const original = this.deduplication.get(deduplicationKey);
      // A duplicate succeeds without being enqueued, as SQS does within the deduplication window.
      if (original) {
        return {
          messageId: original.messageId,
          md5OfMessageBody,
          md5OfMessageAttributes: md5OfAttributes,
          sequenceNumber: original.sequenceNumber,
        };
      }
    }

    const messageId = randomUUID();
    const sequenceNumber = this.fifo ? this.nextSequenceNumber() : undefined;
    this.messages.set(messageId, {
      messageId,
      body: input.body,
      md5OfBody: md5OfMessageBody,
      messageAttributes: attributes,
      md5OfMessageAttributes: md5OfAttributes,
      sentTimestamp: now,
      groupId: input.groupId,
      deduplicationId,
      sequenceNumber,
      visibleAt: now + (input.delaySeconds ?? this.delaySeconds) * 1000,
      receiveCount: 0,
      firstReceiveTimestamp: undefined,
      receiptHandle: undefined,
    });
    if (deduplicationKey !== undefined) {
      this.deduplication.set(deduplicationKey, { messageId, sequenceNumber, expiresAt: now + DEDUPLICATION_WINDOW_MS });
    }
    this.changes.notify();
    return { messageId, md5OfMessageBody, md5OfMessageAttributes: md5OfAttributes, sequenceNumber };
  }

  /**
   * Takes the messages receivable now, without waiting. In a FIFO queue a group is skipped from
   * its first message that is in flight (or delayed), which keeps each group strictly in order.
   */
  receiveNow(options: ReceiveOptions = {}, now = Date.now()): ReceivedMessage[] {
    const max = options.maxMessages ?? 1;
    const visibilityMs = (options.visibilityTimeoutSeconds ?? this.visibilityTimeoutSeconds) * 1000;
    const received: ReceivedMessage[] = [];
    const blockedGroups = new Set<string>();
    for (const message of this.messages.values()) {
      if (received.length >= max) break;
      const group = this.fifo ? message.groupId : undefined;
      if (group !== undefined && blockedGroups.has(group)) continue;
      if (message.visibleAt > now) {
        if (group !== undefined) blockedGroups.add(group);
        continue;
      }
      if (this.redrive && message.receiveCount >= this.redrive.maxReceiveCount) {
        this.moveToDeadLetterQueue(message, this.redrive.deadLetterQueue);
        continue;
      }
      message.receiveCount += 1;
      message.firstReceiveTimestamp ??= now;
      message.visibleAt = now + visibilityMs;
      message.receiptHandle = encodeReceiptHandle(message.messageId, message.receiveCount);
      received.push(this.snapshot(message));
    }
    return received;
  }

  /** Long poll: waits up to `waitTimeSeconds` for at least one message. */
  async receive(options: ReceiveOptions & { waitTimeSeconds?: number; signal?: AbortSignal } = {}): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + (options.waitTimeSeconds ?? 0) * 1000;
    for (;;) {
      const now = Date.now();
      const received = this.receiveNow(options, now);
      if (received.length > 0 || now >= deadline || options.signal?.aborted) return received;
      await this.changes.wait(Math.min(deadline, this.nextVisibleAt(now) ?? deadline) - now, options.signal);
    }
  }

  /** True when a receive would return something right now. */
  hasReceivable(now = Date.now()): boolean {
    const blockedGroups = new Set<string>();
    for (const message of this.messages.values()) {
      const group = this.fifo ? message.groupId : undefined;
      if (group !== undefined && blockedGroups.has(group)) continue;
      if (message.visibleAt <= now) return true;
      if (group !== undefined) blockedGroups.add(group);
    }
    return false;
  }

  /** The earliest time a delayed or in-flight message becomes visible again. */
  nextVisibleAt(now = Date.now()): number | undefined {
    let next: number | undefined;
    for (const message of this.messages.values()) {
      if (message.visibleAt > now && (next === undefined || message.visibleAt < next)) next = message.visibleAt;
    }
    return next;
  }

  /** Deleting with a stale handle or one of a deleted message succeeds and does nothing, as in SQS. */
  delete(receiptHandle: string): void {
    const message = this.messages.get(decodeReceiptHandle(receiptHandle));
    if (!message || message.receiptHandle !== receiptHandle) return;
    this.messages.delete(message.messageId);
    this.changes.notify();
  }

  changeVisibility(receiptHandle: string, visibilityTimeoutSeconds: number, now = Date.now()): void {
    const message = this.messages.get(decodeReceiptHandle(receiptHandle));
    if (!message || message.receiptHandle !== receiptHandle) {
      throw new SqsError(
        'InvalidParameterValue',
        `Value ${receiptHandle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.`,
      );
    }
    if (message.visibleAt <= now) {
      throw new SqsError('MessageNotInflight', 'The message referred to is not in flight.');
    }
    message.visibleAt = now + visibilityTimeoutSeconds * 1000;
    this.changes.notify();
  }

  purge(): void {
    this.messages.clear();
    this.changes.notify();
  }

  counts(now = Date.now()): { visible: number; inFlight: number; delayed: number } {
    const counts = { visible: 0, inFlight: 0, delayed: 0 };
    for (const message of this.messages.values()) {
      if (message.visibleAt <= now) counts.visible += 1;
      else if (message.receiveCount > 0) counts.inFlight += 1;
      else counts.delayed += 1;
    }
    return counts;
  }

  /** Keeps identity and order fields; the receive count restarts, as the dead-letter queue is a new queue. */
  private moveToDeadLetterQueue(message: StoredMessage, deadLetterQueue: LocalQueue): void {
    this.messages.delete(message.messageId);
    deadLetterQueue.messages.set(message.messageId, {
      ...message,
      deadLetterQueueSourceArn: this.arn,
      visibleAt: 0,
      receiveCount: 0,
      firstReceiveTimestamp: undefined,
      receiptHandle: undefined,
    });
    deadLetterQueue.changes.notify();
  }

  private snapshot(message: StoredMessage): ReceivedMessage {
    const attributes: SystemAttributes = {
      ApproximateReceiveCount: String(message.receiveCount),
      ApproximateFirstReceiveTimestamp: String(message.firstReceiveTimestamp ?? message.sentTimestamp),
      SentTimestamp: String(message.sentTimestamp),
      SenderId: ACCOUNT_ID,
    };
    if (message.groupId !== undefined) attributes.MessageGroupId = message.groupId;
    if (message.deduplicationId !== undefined) attributes.MessageDeduplicationId = message.deduplicationId;
    if (message.sequenceNumber !== undefined) attributes.SequenceNumber = message.sequenceNumber;
    if (message.deadLetterQueueSourceArn !== undefined) attributes.DeadLetterQueueSourceArn = message.deadLetterQueueSourceArn;
    return {
      messageId: message.messageId,
      receiptHandle: message.receiptHandle!,
      body: message.body,
      md5OfBody: message.md5OfBody,
      md5OfMessageAttributes: message.md5OfMessageAttributes,
      messageAttributes: message.messageAttributes,
      attributes,
    };
  }

  private validateSend(input: SendInput): void {
    if (input.body.length === 0) throw new SqsError('MissingParameter', 'The request must contain the parameter MessageBody.');
    // Attributes count towards the message's size, as SQS counts them.
    if (Buffer.byteLength(input.body) + attributeBytes(input.messageAttributes) > MAX_MESSAGE_BYTES) {
      throw new SqsError('InvalidParameterValue', `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_MESSAGE_BYTES} bytes.`);
    }
    if (INVALID_BODY_CHARACTER.test(input.body)) {
      throw new SqsError('InvalidMessageContents', 'Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF');
    }
    if (!this.fifo) return;
    if (input.groupId === undefined || input.groupId === '') {
      throw new SqsError('MissingParameter', 'The request must contain the parameter MessageGroupId.');
    }
    if (input.delaySeconds !== undefined) {
      throw new SqsError('InvalidParameterValue', 'Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.');
    }
  }

  private deduplicationIdOf(input: SendInput): string {
    if (input.deduplicationId) return input.deduplicationId;
    if (this.contentBasedDeduplication) return createHash('sha256').update(input.body).digest('hex');
    throw new SqsError(
      'InvalidParameterValue',
      'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly',
    );
  }

  private forgetExpiredDeduplication(now: number): void {
    // Records are inserted in time order, so the expired ones are all at the front.
    for (const [id, record] of this.deduplication) {
      if (record.expiresAt > now) break;
      this.deduplication.delete(id);
    }
  }

  /**
   * Increasing for the life of the queue, as SQS's are, and also across restarts of the stand-in:
   * consumers keep the last number they applied (src/domain/inbound.ts) in a store that may outlive
   * the process (CONVERSA_DATA_DIR).
   */
  private nextSequenceNumber(): string {
    const fromClock = 10n ** 19n + BigInt(Date.now()) * 1000n;
    this.sequence = this.sequence >= fromClock ? this.sequence + 1n : fromClock;
    return this.sequence.toString();
  }
}

// ---------------------------------------------------------------------------------------------
// Wire operations (AWS JSON 1.0). Input arrives as untrusted JSON: every read is checked so that
// bad input is answered with an SQS error, never an exception of ours.

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(name: string, reason: string): SqsError {
  return new SqsError('InvalidParameterValue', `Value for parameter ${name} is invalid. Reason: ${reason}`);
}

function optionalString(input: Json, name: string): string | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(name, 'must be a string.');
  return value;
}

function requiredString(input: Json, name: string): string {
  const value = optionalString(input, name);
  if (value === undefined || value === '') throw new SqsError('MissingParameter', `The request must contain the parameter ${name}.`);
  return value;
}

function optionalInteger(input: Json, name: string, min: number, max: number): number | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(name, `must be an integer between ${min} and ${max}.`);
  }
  return value;
}

function optionalStringList(input: Json, name: string): string[] | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw invalid(name, 'must be a list of strings.');
  return value;
}

function optionalStringMap(input: Json, name: string): Record<string, string> | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value) || !Object.values(value).every((item) => typeof item === 'string')) throw invalid(name, 'must be a map of strings.');
  return value as Record<string, string>;
}

function parseMessageAttributes(input: Json): MessageAttributes | undefined {
  const value = input.MessageAttributes;
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid('MessageAttributes', 'must be a map.');
  const entries = Object.entries(value);
  if (entries.length > 10) throw invalid('MessageAttributes', 'a message can have at most 10 attributes.');
  const attributes: MessageAttributes = {};
  for (const [name, raw] of entries) {
    if (!isObject(raw)) throw invalid(`MessageAttributes.${name}`, 'must be a structure.');
    const dataType = optionalString(raw, 'DataType');
    if (!dataType || !/^(String|Number|Binary)(\..+)?$/.test(dataType)) {
      throw new SqsError('InvalidParameterValue', `The message attribute '${name}' has an invalid message attribute type.`);
    }
    const stringValue = optionalString(raw, 'StringValue');
    const binaryValue = optionalString(raw, 'BinaryValue');
    const binary = dataType.startsWith('Binary');
    if ((binary ? binaryValue : stringValue) === undefined) {
      throw new SqsError('InvalidParameterValue', `The message attribute '${name}' must contain a non-empty message attribute value for message attribute type '${dataType}'.`);
    }
    attributes[name] = binary ? { DataType: dataType, BinaryValue: binaryValue } : { DataType: dataType, StringValue: stringValue };
  }
  return attributes;
}

function sendInputOf(input: Json): SendInput {
  return {
    body: requiredString(input, 'MessageBody'),
    messageAttributes: parseMessageAttributes(input),
    groupId: optionalString(input, 'MessageGroupId'),
    deduplicationId: optionalString(input, 'MessageDeduplicationId'),
    delaySeconds: optionalInteger(input, 'DelaySeconds', 0, MAX_DELAY_SECONDS),
  };
}

function sendOutputOf(result: SendResult): Json {
  return {
    MessageId: result.messageId,
    MD5OfMessageBody: result.md5OfMessageBody,
    MD5OfMessageAttributes: result.md5OfMessageAttributes,
    SequenceNumber: result.sequenceNumber,
  };
}

/** Validates batch entries as SQS does, before any entry runs. */
function batchEntries(input: Json): Json[] {
  const entries = input.Entries;
  if (entries === undefined || entries === null || (Array.isArray(entries) && entries.length === 0)) {
    throw new SqsError('EmptyBatchRequest', 'There should be at least one SendMessageBatchRequestEntry in the request.');
  }
  if (!Array.isArray(entries) || !entries.every(isObject)) throw invalid('Entries', 'must be a list of structures.');
  if (entries.length > MAX_BATCH_ENTRIES) {
    throw new SqsError('TooManyEntriesInBatchRequest', `Maximum number of entries per request are ${MAX_BATCH_ENTRIES}. You have sent ${entries.length}.`);
  }
  const ids = new Set<string>();
  for (const entry of entries) {
    const id = entry.Id;
    if (typeof id !== 'string' || !BATCH_ENTRY_ID.test(id)) {
      throw new SqsError('InvalidBatchEntryId', 'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.');
    }
    if (ids.has(id)) throw new SqsError('BatchEntryIdsNotDistinct', `Id ${id} repeated.`);
    ids.add(id);
  }
  return entries;
}

/**
 * SQS refuses the whole SendMessageBatch, sending none of it, when its messages together (bodies
 * and attributes) exceed what one message may hold; ten entries each within the limit can still.
 */
function checkBatchSize(entries: Json[]): void {
  let total = 0;
  for (const entry of entries) {
    if (typeof entry.MessageBody === 'string') total += Buffer.byteLength(entry.MessageBody);
    total += attributeBytes(entry.MessageAttributes);
  }
  if (total > MAX_MESSAGE_BYTES) {
    throw new SqsError('BatchRequestTooLong', `Batch requests cannot be longer than ${MAX_MESSAGE_BYTES} bytes. You have sent ${total} bytes.`);
  }
}

/** Runs each entry on its own: one entry's error becomes its Failed item, as in SQS. */
function runBatch(entries: Json[], run: (entry: Json) => Json): Json {
  const Successful: Json[] = [];
  const Failed: Json[] = [];
  for (const entry of entries) {
    try {
      Successful.push({ Id: entry.Id, ...run(entry) });
    } catch (error) {
      if (!(error instanceof SqsError)) throw error;
      Failed.push({ Id: entry.Id, SenderFault: true, Code: error.code, Message: error.message });
    }
  }
  return { Successful, Failed };
}

const QUEUE_ATTRIBUTE_NAMES = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'CreatedTimestamp',
  'LastModifiedTimestamp',
  'QueueArn',
  'VisibilityTimeout',
  'DelaySeconds',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'ReceiveMessageWaitTimeSeconds',
  'RedrivePolicy',
  'FifoQueue',
  'ContentBasedDeduplication',
  'DeduplicationScope',
] as const;

const MESSAGE_SYSTEM_ATTRIBUTE_NAMES: readonly (keyof SystemAttributes)[] = [
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
  'SentTimestamp',
  'SenderId',
  'MessageGroupId',
  'MessageDeduplicationId',
  'SequenceNumber',
  'DeadLetterQueueSourceArn',
];

function selectSystemAttributes(attributes: SystemAttributes, requested: Set<string>): Record<string, string> | undefined {
  const all = requested.has('All');
  const selected: Record<string, string> = {};
  for (const name of MESSAGE_SYSTEM_ATTRIBUTE_NAMES) {
    const value = attributes[name];
    if (value !== undefined && (all || requested.has(name))) selected[name] = value;
  }
  return Object.keys(selected).length > 0 ? selected : undefined;
}

/** `All`, `.*`, `prefix.*` or exact names, as ReceiveMessage's MessageAttributeNames accepts. */
function selectMessageAttributes(attributes: MessageAttributes, requested: string[]): MessageAttributes | undefined {
  const wanted = (name: string) =>
    requested.some((pattern) =>
      pattern === 'All' || pattern === '.*' ? true : pattern.endsWith('.*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name,
    );
  const selected = Object.fromEntries(Object.entries(attributes).filter(([name]) => wanted(name)));
  return Object.keys(selected).length > 0 ? selected : undefined;
}

export class LocalSqs {
  private readonly queues = new Map<string, LocalQueue>();
  /** Requests served, by operation (the bench prices them; the event source's receives are not requests here). */
  readonly requests = new Map<string, number>();
  private readonly closing = new AbortController();

  /** `baseUrl` is the server's own URL; queue URLs are `${baseUrl}/${account}/${name}`. */
  constructor(private readonly baseUrl: string) {}

  createQueue(name: string, options: QueueOptions = {}): string {
    this.addQueue(name, options);
    return this.queueUrl(name);
  }

  queueUrl(name: string): string {
    return `${this.baseUrl}/${ACCOUNT_ID}/${name}`;
  }

  /** Finds a queue by name, URL (any host: clients may say localhost or 127.0.0.1) or ARN. */
  getQueue(nameUrlOrArn: string): LocalQueue {
    const name = nameUrlOrArn.split(/[/:]/).pop() ?? '';
    const queue = this.queues.get(name);
    if (!queue) throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.');
    return queue;
  }

  listQueues(prefix = ''): LocalQueue[] {
    return [...this.queues.values()].filter((queue) => queue.name.startsWith(prefix));
  }

  /** Ends every long poll, so that the HTTP server can close without waiting up to 20 s. */
  close(): void {
    this.closing.abort();
  }

  private addQueue(name: string, options: QueueOptions): LocalQueue {
    const fifo = options.fifo ?? name.endsWith('.fifo');
    if (!QUEUE_NAME.test(name.replace(/\.fifo$/, '')) || fifo !== name.endsWith('.fifo')) {
      throw new SqsError('InvalidParameterValue', `Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length. FIFO queue names end in .fifo: ${name}`);
    }
    if (this.queues.has(name)) throw new SqsError('QueueNameExists', `A queue already exists with the same name and a different value for attribute(s): ${name}`);
    const queue = new LocalQueue(name, this.queueUrl(name), { ...options, fifo });
    if (options.deadLetterQueueName !== undefined) {
      const deadLetterQueue = this.queues.get(options.deadLetterQueueName) ?? this.addQueue(options.deadLetterQueueName, { fifo });
      this.setRedrive(queue, deadLetterQueue, options.maxReceiveCount ?? 10);
    }
    this.queues.set(name, queue);
    return queue;
  }

  private setRedrive(queue: LocalQueue, deadLetterQueue: LocalQueue, maxReceiveCount: number): void {
    if (deadLetterQueue.fifo !== queue.fifo) {
      throw invalid('RedrivePolicy', 'Dead-letter target must be the same type of queue (FIFO or standard) as the source.');
    }
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
      throw invalid('RedrivePolicy', 'maxReceiveCount must be an integer between 1 and 1000.');
    }
    queue.redrive = { deadLetterQueue, maxReceiveCount };
  }

  /** Applies CreateQueue / SetQueueAttributes attributes (strings on the wire, as in the query API). */
  private applyAttributes(queue: LocalQueue, attributes: Record<string, string>): void {
    const seconds = (name: string, value: string, max: number) => {
      const parsed = Number(value);
      if (!/^\d+$/.test(value) || parsed > max) throw new SqsError('InvalidAttributeValue', `Invalid value for the parameter ${name}.`);
      return parsed;
    };
    for (const [name, value] of Object.entries(attributes)) {
      switch (name) {
        case 'VisibilityTimeout':
          queue.visibilityTimeoutSeconds = seconds(name, value, MAX_VISIBILITY_TIMEOUT_SECONDS);
          break;
        case 'DelaySeconds':
          queue.delaySeconds = seconds(name, value, MAX_DELAY_SECONDS);
          break;
        case 'ContentBasedDeduplication':
          if (!queue.fifo) throw new SqsError('InvalidAttributeName', 'Unknown Attribute ContentBasedDeduplication.');
          queue.contentBasedDeduplication = value === 'true';
          break;
        case 'RedrivePolicy':
          this.applyRedrivePolicy(queue, value);
          break;
        case 'DeduplicationScope':
          if (!queue.fifo) throw new SqsError('InvalidAttributeName', 'Unknown Attribute DeduplicationScope.');
          if (value !== 'queue' && value !== 'messageGroup') throw new SqsError('InvalidAttributeValue', `Invalid value for the parameter ${name}.`);
          queue.deduplicationScope = value;
          break;
        case 'FifoQueue':
        case 'MessageRetentionPeriod':
        case 'MaximumMessageSize':
        case 'ReceiveMessageWaitTimeSeconds':
        case 'KmsMasterKeyId':
        case 'KmsDataKeyReusePeriodSeconds':
        case 'SqsManagedSseEnabled':
        case 'Policy':
        case 'FifoThroughputLimit':
        case 'RedriveAllowPolicy':
          break; // Accepted so that real configurations load; nothing local depends on them.
        default:
          throw new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);
      }
    }
  }

  private applyRedrivePolicy(queue: LocalQueue, value: string): void {
    if (value === '') {
      queue.redrive = undefined;
      return;
    }
    let policy: unknown;
    try {
      policy = JSON.parse(value);
    } catch {
      throw new SqsError('InvalidAttributeValue', 'Invalid value for the parameter RedrivePolicy. Reason: Redrive policy is not a valid JSON map.');
    }
    const target = isObject(policy) ? policy.deadLetterTargetArn : undefined;
    const maxReceiveCount = isObject(policy) ? Number(policy.maxReceiveCount) : NaN;
    if (typeof target !== 'string') {
      throw new SqsError('InvalidAttributeValue', 'Invalid value for the parameter RedrivePolicy. Reason: Redrive policy does not contain mandatory attribute: deadLetterTargetArn.');
    }
    this.setRedrive(queue, this.getQueue(target), maxReceiveCount);
  }

  private queueAttributes(queue: LocalQueue, requested: string[]): Record<string, string> {
    const names = requested.includes('All') ? QUEUE_ATTRIBUTE_NAMES : requested;
    const counts = queue.counts();
    const values: Record<string, string | undefined> = {
      ApproximateNumberOfMessages: String(counts.visible),
      ApproximateNumberOfMessagesNotVisible: String(counts.inFlight),
      ApproximateNumberOfMessagesDelayed: String(counts.delayed),
      CreatedTimestamp: String(Math.floor(queue.createdAt / 1000)),
      LastModifiedTimestamp: String(Math.floor(queue.createdAt / 1000)),
      QueueArn: queue.arn,
      VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
      DelaySeconds: String(queue.delaySeconds),
      MaximumMessageSize: String(MAX_MESSAGE_BYTES),
      MessageRetentionPeriod: '345600',
      ReceiveMessageWaitTimeSeconds: '0',
      RedrivePolicy: queue.redrive
        ? JSON.stringify({ deadLetterTargetArn: queue.redrive.deadLetterQueue.arn, maxReceiveCount: queue.redrive.maxReceiveCount })
        : undefined,
      FifoQueue: queue.fifo ? 'true' : undefined,
      ContentBasedDeduplication: queue.fifo ? String(queue.contentBasedDeduplication) : undefined,
      DeduplicationScope: queue.fifo ? queue.deduplicationScope : undefined,
    };
    const attributes: Record<string, string> = {};
    for (const name of names) {
      if (!(QUEUE_ATTRIBUTE_NAMES as readonly string[]).includes(name)) throw new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);
      const value = values[name];
      if (value !== undefined) attributes[name] = value;
    }
    return attributes;
  }

  /** One SQS operation, by its X-Amz-Target name. `signal` ends a long poll when the client goes away. */
  async execute(operation: string, input: Json, signal?: AbortSignal): Promise<Json> {
    this.requests.set(operation, (this.requests.get(operation) ?? 0) + 1);
    const queue = () => this.getQueue(requiredString(input, 'QueueUrl'));
    switch (operation) {
      case 'CreateQueue':
        return { QueueUrl: this.createQueueFromWire(requiredString(input, 'QueueName'), optionalStringMap(input, 'Attributes') ?? {}) };
      case 'GetQueueUrl':
        return { QueueUrl: this.getQueue(requiredString(input, 'QueueName')).url };
      case 'ListQueues':
        return this.listQueuesFromWire(input);
      case 'DeleteQueue':
        this.queues.delete(queue().name);
        return {};
      case 'PurgeQueue':
        queue().purge();
        return {};
      case 'GetQueueAttributes':
        return { Attributes: this.queueAttributes(queue(), optionalStringList(input, 'AttributeNames') ?? ['All']) };
      case 'SetQueueAttributes':
        this.applyAttributes(queue(), optionalStringMap(input, 'Attributes') ?? {});
        return {};
      case 'SendMessage':
        return sendOutputOf(queue().send(sendInputOf(input)));
      case 'SendMessageBatch': {
        const target = queue();
        const entries = batchEntries(input);
        checkBatchSize(entries);
        return runBatch(entries, (entry) => sendOutputOf(target.send(sendInputOf(entry))));
      }
      case 'ReceiveMessage':
        return this.receiveFromWire(queue(), input, signal);
      case 'DeleteMessage':
        queue().delete(requiredString(input, 'ReceiptHandle'));
        return {};
      case 'DeleteMessageBatch': {
        const target = queue();
        return runBatch(batchEntries(input), (entry) => {
          target.delete(requiredString(entry, 'ReceiptHandle'));
          return {};
        });
      }
      case 'ChangeMessageVisibility':
        queue().changeVisibility(requiredString(input, 'ReceiptHandle'), this.visibilityTimeoutOf(input, true)!);
        return {};
      case 'ChangeMessageVisibilityBatch': {
        const target = queue();
        return runBatch(batchEntries(input), (entry) => {
          target.changeVisibility(requiredString(entry, 'ReceiptHandle'), this.visibilityTimeoutOf(entry, true)!);
          return {};
        });
      }
      default:
        throw new SqsError('UnknownOperationException', `Operation ${operation} is not supported by the local SQS.`);
    }
  }

  private createQueueFromWire(name: string, attributes: Record<string, string>): string {
    const existing = this.queues.get(name);
    if (existing) {
      // CreateQueue is idempotent unless the attributes disagree with the existing queue's.
      const current = this.queueAttributes(existing, ['All']);
      const differs = Object.entries(attributes).some(([key, value]) => key in current && current[key] !== value);
      if (differs) throw new SqsError('QueueNameExists', `A queue already exists with the same name and a different value for attribute(s): ${name}`);
      return existing.url;
    }
    if (attributes.FifoQueue === 'true' && !name.endsWith('.fifo')) {
      throw invalid('QueueName', 'The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix.');
    }
    const queue = this.addQueue(name, {});
    try {
      this.applyAttributes(queue, attributes);
    } catch (error) {
      this.queues.delete(name);
      throw error;
    }
    return queue.url;
  }

  private listQueuesFromWire(input: Json): Json {
    const maxResults = optionalInteger(input, 'MaxResults', 1, 1000);
    const start = Number(optionalString(input, 'NextToken') ?? '0');
    if (!Number.isInteger(start) || start < 0) throw invalid('NextToken', 'Invalid token.');
    const all = this.listQueues(optionalString(input, 'QueueNamePrefix'));
    const page = maxResults === undefined ? all.slice(start) : all.slice(start, start + maxResults);
    const next = start + page.length;
    return {
      QueueUrls: page.map((queue) => queue.url),
      NextToken: maxResults !== undefined && next < all.length ? String(next) : undefined,
    };
  }

  private visibilityTimeoutOf(input: Json, required: boolean): number | undefined {
    const value = optionalInteger(input, 'VisibilityTimeout', 0, MAX_VISIBILITY_TIMEOUT_SECONDS);
    if (required && value === undefined) throw new SqsError('MissingParameter', 'The request must contain the parameter VisibilityTimeout.');
    return value;
  }

  private async receiveFromWire(queue: LocalQueue, input: Json, requestSignal?: AbortSignal): Promise<Json> {
    const requestedAttributes = new Set([
      ...(optionalStringList(input, 'AttributeNames') ?? []),
      ...(optionalStringList(input, 'MessageSystemAttributeNames') ?? []),
    ]);
    const requestedMessageAttributes = optionalStringList(input, 'MessageAttributeNames') ?? [];
    const signal = requestSignal ? AbortSignal.any([requestSignal, this.closing.signal]) : this.closing.signal;
    const messages = await queue.receive({
      maxMessages: optionalInteger(input, 'MaxNumberOfMessages', 1, MAX_BATCH_ENTRIES) ?? 1,
      visibilityTimeoutSeconds: this.visibilityTimeoutOf(input, false),
      waitTimeSeconds: optionalInteger(input, 'WaitTimeSeconds', 0, MAX_WAIT_TIME_SECONDS) ?? 0,
      signal,
    });
    if (messages.length === 0) return {};
    return {
      Messages: messages.map((message) => {
        const messageAttributes = selectMessageAttributes(message.messageAttributes, requestedMessageAttributes);
        return {
          MessageId: message.messageId,
          ReceiptHandle: message.receiptHandle,
          MD5OfBody: message.md5OfBody,
          Body: message.body,
          Attributes: selectSystemAttributes(message.attributes, requestedAttributes),
          MessageAttributes: messageAttributes,
          MD5OfMessageAttributes: messageAttributes ? message.md5OfMessageAttributes : undefined,
        };
      }),
    };
  }
}
