/**
 * Mention items (src/domain/mentions.ts): one per agent and conversation, holding that agent's
 * latest mention there, filed in gsi2 under the agent for the Mentions view.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { keys } from './keys';
import { gsi2Page } from './items';
import { decodeCursor, encodeCursor } from './cursor';

export interface MentionRecord {
  conversationId: string;
  agentId: string;
  messageId: string;
  createdAt: string;
  by: { id: string; name?: string };
}

/**
 * Records a mention unless this one or a later one of the agent in that conversation is there:
 * true when this call recorded it (its notification is this caller's to send), false for a retry
 * of the same note or an older note applied late.
 */
export async function recordMention(mention: MentionRecord): Promise<boolean> {
  const index = keys.mentionIndex(mention.agentId, mention.createdAt, mention.messageId);
  try {
    await ddb().send(
      new PutCommand({
        TableName: config.tableName,
        Item: { ...keys.mention(mention.conversationId, mention.agentId), ...index, ...mention },
        ConditionExpression: 'attribute_not_exists(pk) OR gsi2sk < :sk',
        ExpressionAttributeValues: { ':sk': index.gsi2sk },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** One page of an agent's mentions, newest first: the conversations' ids, and when and by which message each latest mention was. */
export async function listMentionKeys(
  agentId: string,
  page: { limit: number; cursor?: string | undefined },
): Promise<{ items: { conversationId: string; messageId: string; at: string }[]; nextCursor: string | null }> {
  const pk = keys.mentionsPartition(agentId);
  // One more than the page: a cursor is given only when something is after it (DynamoDB's own
  // LastEvaluatedKey after a full page would lead to an empty one).
  const { items: found } = await gsi2Page(pk, {
    limit: page.limit + 1,
    forward: false,
    startKey: decodeCursor(page.cursor, { partition: { attribute: 'gsi2pk', value: pk }, attributes: ['gsi2pk', 'gsi2sk', 'pk', 'sk'] }),
  });
  const kept = found.slice(0, page.limit);
  const last = kept.at(-1);
  const nextCursor = found.length > page.limit && last ? encodeCursor({ gsi2pk: last.gsi2pk, gsi2sk: last.gsi2sk, pk: last.pk, sk: last.sk }) : null;
  const items = kept.map((item) => {
    const sk = String(item.gsi2sk);
    const cut = sk.lastIndexOf('#');
    return { conversationId: String(item.pk).slice('CONV#'.length), at: sk.slice(0, cut), messageId: sk.slice(cut + 1) };
  });
  return { items, nextCursor };
}
