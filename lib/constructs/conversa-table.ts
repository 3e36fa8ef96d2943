import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, CfnTable, ProjectionType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { type IndexSpec, TABLE } from '../../src/store/table';

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
   * The inbox index (gsi1) projects every attribute, as tables deployed before 2026-11-27 have
   * it: CloudFormation cannot change an index's projection in place. The code reads either; the
   * slim projection halves what a message costs that index once a conversation passes 1 KB.
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

  constructor(scope: Construct, id: string, props: ConversaTableProps = {}) {
    super(scope, id);

    this.table = new Table(this, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection ?? true,
      timeToLiveAttribute: TABLE.ttlAttribute,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });

    for (const spec of TABLE.indexes) {
      const index: IndexSpec = spec.name === 'gsi1' && props.inboxIndexAll ? { ...spec, projection: 'ALL' } : spec;
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
