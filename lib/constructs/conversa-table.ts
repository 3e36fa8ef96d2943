import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, CfnTable, ProjectionType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { type IndexSpec, type InboxIndexStage, INBOX_INDEX_STAGES, isInboxIndexStage, TABLE, tableIndexes } from '../../src/store/table';

const PROJECTIONS: Readonly<Record<IndexSpec['projection'], ProjectionType>> = {
  ALL: ProjectionType.ALL,
  KEYS_ONLY: ProjectionType.KEYS_ONLY,
  INCLUDE: ProjectionType.INCLUDE,
};

/** Properties of {@link ConversaTable}. */
export interface ConversaTableProps {
  /**
   * What happens to the table when it leaves the stack. Conversations are customer data:
   * only tests or throw-away environments should choose anything but RETAIN.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Refuse DeleteTable calls, even from CloudFormation.
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * CloudFormation logical ID of the table. Changing a stateful resource's logical ID makes
   * CloudFormation create a new, empty table, so it is pinned instead of derived from the tree.
   * @default 'ConversaTable'
   */
  readonly logicalId?: string;
  /**
   * Where the inbox index stands (src/store/table.ts `InboxIndexStage`): `slim` on a fresh table,
   * `all` on one deployed before 2026-11-27 (CloudFormation cannot change an index's projection
   * in place), then `migrating`, `switched` and `migrated`, one deploy each, to move such a table
   * to the slim index (README, Deploy). The code reads any of them.
   * @default 'slim'
   */
  readonly inboxIndex?: InboxIndexStage;
  /**
   * `true` is `inboxIndex: 'all'`, as deployments before the migration path set it.
   * @deprecated use `inboxIndex`
   * @default false
   */
  readonly inboxIndexAll?: boolean;
}

/**
 * The single DynamoDB table, built from the shared definition in src/store/table.ts that the
 * local stack's CreateTable also reads: on-demand, point-in-time recovery, TTL, every GSI.
 */
export class ConversaTable extends Construct {
  /** Default logical ID; a test keeps it from changing. */
  public static readonly DEFAULT_LOGICAL_ID = 'ConversaTable';

  public readonly table: Table;
  /** Every global secondary index of the table: the functions may query each, the alarms watch each. */
  public readonly indexNames: readonly string[];
  /** The index the inbox list queries (`CONVERSA_INBOX_INDEX`). */
  public readonly inboxIndexName: string;

  constructor(scope: Construct, id: string, props: ConversaTableProps = {}) {
    super(scope, id);
    const { indexes, inbox } = tableIndexes(inboxIndexStage(props));
    this.indexNames = indexes.map((index) => index.name);
    this.inboxIndexName = inbox;

    this.table = new Table(this, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection ?? true,
      timeToLiveAttribute: TABLE.ttlAttribute,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });

    for (const index of indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        projectionType: PROJECTIONS[index.projection],
        ...(index.projection === 'INCLUDE' ? { nonKeyAttributes: [...(index.nonKeyAttributes ?? [])] } : {}),
      });
    }

    (this.table.node.defaultChild as CfnTable).overrideLogicalId(props.logicalId ?? ConversaTable.DEFAULT_LOGICAL_ID);
  }
}

/** The stage `props` name; an `inboxIndexAll` that says otherwise than `inboxIndex` is refused. */
function inboxIndexStage(props: ConversaTableProps): InboxIndexStage {
  if (props.inboxIndex !== undefined && !isInboxIndexStage(props.inboxIndex)) {
    throw new Error(`inboxIndex must be one of ${INBOX_INDEX_STAGES.join(', ')}, got ${String(props.inboxIndex)}`);
  }
  const fromAll: InboxIndexStage | undefined = props.inboxIndexAll === undefined ? undefined : props.inboxIndexAll ? 'all' : 'slim';
  if (props.inboxIndex !== undefined && fromAll !== undefined && props.inboxIndex !== fromAll) {
    throw new Error(`inboxIndexAll ${String(props.inboxIndexAll)} (inboxIndex ${fromAll}) and inboxIndex ${props.inboxIndex} disagree: set inboxIndex alone`);
  }
  return props.inboxIndex ?? fromAll ?? 'slim';
}
