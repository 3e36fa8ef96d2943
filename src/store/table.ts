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

/** The inbox index: slim on a fresh table, every attribute projected on one deployed before 2026-11-27. */
export const INBOX_INDEX = 'gsi1';
/**
 * The slim inbox index of a table migrated from the old `gsi1` (every attribute): the same keys
 * under another name, since CloudFormation cannot change a projection in place, and DynamoDB
 * builds a new index from the table's items by itself.
 */
export const MIGRATED_INBOX_INDEX = 'gsi1slim';

/**
 * Where a table's inbox index stands (context `inboxIndex`; README, Deploy, has the steps):
 * - `slim`: `gsi1` projects what the inbox filters on (a fresh table);
 * - `all`: `gsi1` projects every attribute (a table deployed before 2026-11-27);
 * - `migrating`: step 1, `gsi1slim` is built beside that `gsi1`, which the code still reads;
 * - `switched`: step 2, both indexes, the code reads `gsi1slim`;
 * - `migrated`: step 3, `gsi1` is gone, `gsi1slim` is the inbox index.
 */
export const INBOX_INDEX_STAGES = ['slim', 'all', 'migrating', 'switched', 'migrated'] as const;
export type InboxIndexStage = (typeof INBOX_INDEX_STAGES)[number];

export function isInboxIndexStage(value: unknown): value is InboxIndexStage {
  return (INBOX_INDEX_STAGES as readonly unknown[]).includes(value);
}

/** A table's indexes at one stage of the inbox index, and the one the inbox list queries. */
export interface TableIndexes {
  readonly indexes: readonly IndexSpec[];
  readonly inbox: string;
}

/** The indexes of a table whose inbox index is at `stage`: the others are the same at every stage. */
export function tableIndexes(stage: InboxIndexStage = 'slim'): TableIndexes {
  const slim = TABLE.indexes.find((index) => index.name === INBOX_INDEX)!;
  const all: IndexSpec = { name: INBOX_INDEX, partitionKey: slim.partitionKey, sortKey: slim.sortKey, projection: 'ALL' };
  const renamed: IndexSpec = { ...slim, name: MIGRATED_INBOX_INDEX };
  const inbox: Record<InboxIndexStage, readonly IndexSpec[]> = {
    slim: [slim],
    all: [all],
    migrating: [all, renamed],
    switched: [all, renamed],
    migrated: [renamed],
  };
  return {
    indexes: TABLE.indexes.flatMap((index) => (index.name === INBOX_INDEX ? inbox[stage] : [index])),
    inbox: stage === 'switched' || stage === 'migrated' ? MIGRATED_INBOX_INDEX : INBOX_INDEX,
  };
}

/**
 * A CreateTable input for DynamoDB Local, built from the same definition as the CDK table; the
 * local stack's is slim, a test may make one at another stage of the inbox index.
 */
export function createTableInput(tableName: string, stage: InboxIndexStage = 'slim') {
  const { indexes } = tableIndexes(stage);
  const attrs = new Set<string>([TABLE.partitionKey, TABLE.sortKey]);
  for (const index of indexes) {
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
    GlobalSecondaryIndexes: indexes.map((index) => ({
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
