/**
 * Shared by the fault tests: signed WhatsApp webhooks, the store read back the way an operator
 * would check it, and the queues' state through the real SQS client.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { GetQueueAttributesCommand, SetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { LocalStack } from '../../local/stack';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { getConversation } from '../../src/store/conversations';
import { getHandle } from '../../src/store/contacts';
import { listMessages } from '../../src/store/messages';
import type { Message } from '../../src/domain/types';
import { providerHeaders } from '../fixtures/sign';
import { http } from '../support/clients';

/** A distinct customer phone number per test and index. */
export function phone(prefix: number, index: number): string {
  return `1666${String(prefix).padStart(3, '0')}${String(index).padStart(5, '0')}`;
}

export { whatsappTextWebhook as whatsappBody } from '../fixtures/sign';

/** Posts a correctly signed WhatsApp webhook; returns the status. */
export async function postWhatsapp(stack: LocalStack, body: string): Promise<number> {
  const res = await http(stack.httpUrl, 'POST', '/webhooks/whatsapp', { raw: body, headers: providerHeaders('whatsapp', body) });
  return res.status;
}

/**
 * The customer's own messages in its WhatsApp conversation, oldest first (empty when there is
 * none); replies and the autoresponder's greeting are left out.
 */
export async function storedMessages(from: string, channel = 'whatsapp'): Promise<Message[]> {
  const handle = await getHandle(channel, from);
  if (!handle?.conversationId) return [];
  return (await allMessages(handle.conversationId)).filter((m) => m.direction === 'inbound');
}

export async function allMessages(conversationId: string): Promise<Message[]> {
  const pages: Message[][] = [];
  let cursor: string | undefined;
  do {
    const page = await listMessages(conversationId, { limit: 100, ...(cursor ? { cursor } : {}), includePrivate: true });
    pages.unshift(page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return pages.flat();
}

export async function conversationOf(from: string, channel = 'whatsapp') {
  const handle = await getHandle(channel, from);
  return handle?.conversationId ? getConversation(handle.conversationId, true) : undefined;
}

/** Every item of the table, read consistently (a Scan, for tests only): what an orphan check looks through. */
export async function scanAll(): Promise<Record<string, any>[]> {
  const items: Record<string, any>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb().send(new ScanCommand({ TableName: config.tableName, ExclusiveStartKey: start, ConsistentRead: true }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/** How many items the table holds: the "nothing stored" check (a Scan, for tests only). */
export async function countItems(): Promise<number> {
  let count = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb().send(new ScanCommand({ TableName: config.tableName, Select: 'COUNT', ExclusiveStartKey: start, ConsistentRead: true }));
    count += out.Count ?? 0;
    start = out.LastEvaluatedKey;
  } while (start);
  return count;
}

export function sqsClient(stack: LocalStack): SQSClient {
  return new SQSClient({ endpoint: stack.aws.url, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
}

export const queueUrl = (stack: LocalStack, name: string) => stack.aws.sqs.queueUrl(name);

/**
 * The inbound queue's visibility timeout, for tests that want retries sooner. Its receive count
 * before the DLQ is not set here: the consumer dead-letters a record itself on the receive
 * QUEUES.inbound.maxReceiveCount names, whatever the queue's redrive policy says.
 */
export async function setInboundQueue(stack: LocalStack, attributes: { visibilityTimeoutSeconds: number }): Promise<void> {
  const sqs = sqsClient(stack);
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: queueUrl(stack, 'conversa-inbound.fifo'),
      Attributes: { VisibilityTimeout: String(attributes.visibilityTimeoutSeconds) },
    }),
  );
  sqs.destroy();
}

/** ApproximateNumberOfMessages (+ in flight) of a queue, as CloudWatch and the DLQ alarm see it. */
export async function queueDepth(stack: LocalStack, name: string): Promise<{ visible: number; inFlight: number }> {
  const sqs = sqsClient(stack);
  try {
    const out = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl(stack, name), AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return { visible: Number(out.Attributes?.ApproximateNumberOfMessages), inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible) };
  } finally {
    sqs.destroy();
  }
}

/** Sequence numbers carried at the end of texts like "order 7 3", in stored order. */
export const sequenceOf = (messages: Message[], prefix: string) =>
  messages.filter((m) => m.text.startsWith(prefix)).map((m) => Number(m.text.slice(prefix.length)));
