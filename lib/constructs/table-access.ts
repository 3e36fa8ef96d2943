import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { TABLE } from '../../src/store/table';

/**
 * Read actions. No `dynamodb:Scan`: the architecture keeps Scan off every request path,
 * and the policy makes that a rule rather than a habit.
 */
export const TABLE_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:ConditionCheckItem'] as const;
/** Write actions, on top of the read ones; transactions are authorized by these per-item actions. */
export const TABLE_WRITE_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'] as const;

export type TableAccess = 'read' | 'readWrite';

/**
 * Grants item access to the table, and Query on each index declared in src/store/table.ts
 * by name rather than CDK's `index/*`, so that the policy names exactly what exists.
 */
export function grantTableAccess(table: ITable, grantee: IGrantable, access: TableAccess): Grant {
  const actions = access === 'read' ? [...TABLE_READ_ACTIONS] : [...TABLE_READ_ACTIONS, ...TABLE_WRITE_ACTIONS];
  const items = Grant.addToPrincipal({ grantee, actions, resourceArns: [table.tableArn] });
  const indexes = Grant.addToPrincipal({
    grantee,
    actions: ['dynamodb:Query'],
    resourceArns: TABLE.indexes.map((index) => `${table.tableArn}/index/${index.name}`),
  });
  return items.combine(indexes);
}
