/**
 * The single table's shape, declared once: the CDK stateful stack and the local stack's
 * CreateTable both read it. Generic key names; what each key holds is decided in keys.ts.
 */

export interface IndexSpec {
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey: string;
  /**
   * KEYS_ONLY and INCLUDE indexes cost no write when only attributes they do not project
   * change: that keeps the per-message conversation update off them.
   */
  readonly projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
  /** With INCLUDE: the projected attributes. */
  readonly nonKeyAttributes?: readonly string[];
}

export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'expiresAt',
  indexes: [
    // Inbox by status, newest activity first: the id and what the inbox filters on, the rest
    // by BatchGet. A conversation item passes 1 KB (a CSAT comment, labels, an email address),
    // and an ALL projection then doubled the index's two writes for every message's key move.
    { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk', projection: 'INCLUDE', nonKeyAttributes: ['id', 'channel', 'team', 'labels'] },
    // Conversations by assignee (or the unassigned queue) and status, in arrival order.
    { name: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk', projection: 'KEYS_ONLY' },
    // Conversations by creation day, with just what reports need (not lastMessageAt or unreadCount).
    {
      name: 'gsi3',
      partitionKey: 'gsi3pk',
      sortKey: 'gsi3sk',
      projection: 'INCLUDE',
      nonKeyAttributes: ['id', 'channel', 'status', 'createdAt', 'firstReplyAt', 'resolvedAt', 'reopenCount', 'csat', 'assigneeId'],
    },
  ] as readonly IndexSpec[],
} as const;

/** A CreateTable input for DynamoDB Local, built from the same definition as the CDK table. */
export function createTableInput(tableName: string) {
  const attrs = new Set<string>([TABLE.partitionKey, TABLE.sortKey]);
  for (const index of TABLE.indexes) {
    attrs.add(index.partitionKey);
    attrs.add(index.sortKey);
  }
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: [...attrs].map((AttributeName) => ({ AttributeName, AttributeType: 'S' as const })),
    KeySchema: [
      { AttributeName: TABLE.partitionKey, KeyType: 'HASH' as const },
      { AttributeName: TABLE.sortKey, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: TABLE.indexes.map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
        { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
      ],
      Projection: {
        ProjectionType: index.projection,
        ...(index.nonKeyAttributes ? { NonKeyAttributes: [...index.nonKeyAttributes] } : {}),
      },
    })),
  };
}
