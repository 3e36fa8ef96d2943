/**
 * The local Lambda event source mapping for SQS, with ReportBatchItemFailures: pollers take
 * batches from an in-memory queue, call the handler with a real SQSEvent, and delete the records
 * it did not report as failed. Pollers wake on every queue change, so a sent message reaches the
 * handler within milliseconds.
 */
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { ChangeSignal, REGION, type LocalQueue, type LocalSqs, type MessageAttributes, type ReceivedMessage } from './sqs';

export interface EventSourceOptions {
  /** The queue object, or its name together with `sqs`. */
  queue: LocalQueue | string;
  sqs?: LocalSqs;
  batchSize: number;
  handler: (event: SQSEvent) => Promise<SQSBatchResponse | void>;
  /** Longest a poller sleeps when nothing wakes it; sends and deletes wake it at once. @default 1000 */
  pollIntervalMs?: number;
  /**
   * How long after a wake-up a poller takes its batch. Lambda's pollers run apart from the
   * producer and hand a batch over some milliseconds after it is visible, never inside the
   * request that sent it; in this one process, taking it at once would run the consumer's first
   * CPU burst inside the producer's reply. @default 0
   */
  pickupDelayMs?: number;
  /** Batches handled at the same time. A FIFO group is never in two batches at once. @default 4 */
  concurrency?: number;
  /** @default console */
  logger?: Pick<Console, 'warn' | 'error'>;
}

export interface EventSource {
  /** Stops polling and waits for the handler calls under way. */
  stop(): Promise<void>;
  /** Resolves once nothing is receivable and no handler call is under way. */
  drain(): Promise<void>;
}

function lambdaMessageAttributes(attributes: MessageAttributes): SQSMessageAttributes {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      { stringValue: value.StringValue, binaryValue: value.BinaryValue, stringListValues: [], binaryListValues: [], dataType: value.DataType },
    ]),
  );
}

function toRecord(message: ReceivedMessage, queue: LocalQueue): SQSRecord {
  return {
    messageId: message.messageId,
    receiptHandle: message.receiptHandle,
    body: message.body,
    attributes: { ...message.attributes },
    messageAttributes: lambdaMessageAttributes(message.messageAttributes),
    md5OfBody: message.md5OfBody,
    ...(message.md5OfMessageAttributes ? { md5OfMessageAttributes: message.md5OfMessageAttributes } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: queue.arn,
    awsRegion: REGION,
  };
}

/**
 * The ids to keep, or 'all' when the response is malformed: like Lambda, an identifier that is
 * missing or not in the batch fails the whole batch.
 */
function failedIds(response: SQSBatchResponse | void, messages: ReceivedMessage[]): Set<string> | 'all' {
  const failures = (response as Partial<SQSBatchResponse> | undefined | null)?.batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) return 'all';
  const inBatch = new Set(messages.map((message) => message.messageId));
  const ids = new Set<string>();
  for (const failure of failures as unknown[]) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || !inBatch.has(id)) return 'all';
    ids.add(id);
  }
  return ids;
}

/** A FIFO handler that fails a record must fail the rest of its group too, or order breaks in AWS. */
function groupsBrokenOutOfOrder(messages: ReceivedMessage[], failed: Set<string>): string[] {
  const failedGroups = new Set<string>();
  const broken = new Set<string>();
  for (const message of messages) {
    const group = message.attributes.MessageGroupId;
    if (group === undefined) continue;
    if (failed.has(message.messageId)) failedGroups.add(group);
    else if (failedGroups.has(group)) broken.add(group);
  }
  return [...broken];
}

export function startEventSource(options: EventSourceOptions): EventSource {
  const queue = resolveQueue(options);
  const { batchSize, handler } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const pickupDelayMs = options.pickupDelayMs ?? 0;
  const concurrency = options.concurrency ?? 4;
  const logger = options.logger ?? console;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, not ${batchSize}`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a positive integer, not ${concurrency}`);

  const stopping = new AbortController();
  const settled = new ChangeSignal();
  let running = 0;

  async function invoke(messages: ReceivedMessage[]): Promise<void> {
    let response: SQSBatchResponse | void;
    try {
      response = await handler({ Records: messages.map((message) => toRecord(message, queue)) });
    } catch (error) {
      logger.error(`Handler for ${queue.name} failed; the batch of ${messages.length} returns after the visibility timeout.`, error);
      return;
    }
    const failed = failedIds(response, messages);
    if (failed === 'all') {
      logger.error(`Handler for ${queue.name} returned invalid batchItemFailures; the whole batch counts as failed.`, response);
      return;
    }
    const broken = groupsBrokenOutOfOrder(messages, failed);
    if (broken.length > 0) {
      logger.warn(`Handler for ${queue.name} failed a record but not the later ones of groups ${broken.join(', ')}; those are deleted out of order.`);
    }
    for (const message of messages) {
      if (!failed.has(message.messageId)) queue.delete(message.receiptHandle);
    }
  }

  async function poll(): Promise<void> {
    while (!stopping.signal.aborted) {
      // Receiving synchronously and counting the call in the same tick keeps drain() exact.
      const messages = queue.receiveNow({ maxMessages: batchSize });
      if (messages.length === 0) {
        const now = Date.now();
        const wakeAt = Math.min(now + pollIntervalMs, queue.nextVisibleAt(now) ?? Infinity);
        await queue.changes.wait(wakeAt - now, stopping.signal);
        if (pickupDelayMs > 0 && !stopping.signal.aborted) await new Promise((resolve) => setTimeout(resolve, pickupDelayMs));
        continue;
      }
      running += 1;
      try {
        await invoke(messages);
      } finally {
        running -= 1;
        settled.notify();
      }
    }
  }

  const pollers = Array.from({ length: concurrency }, () => poll());

  return {
    async stop() {
      stopping.abort();
      await Promise.all(pollers);
    },
    async drain() {
      while (running > 0 || (!stopping.signal.aborted && queue.hasReceivable())) {
        // The short timeout covers messages that turn visible with no event to announce it.
        await settled.wait(50);
      }
    },
  };
}

function resolveQueue(options: EventSourceOptions): LocalQueue {
  if (typeof options.queue !== 'string') return options.queue;
  if (!options.sqs) throw new Error(`startEventSource needs the LocalSqs to find queue ${options.queue}`);
  return options.sqs.getQueue(options.queue);
}
