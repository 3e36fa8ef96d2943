import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { TABLE } from '../../src/store/table';

/**
 * Read actions. No `dynamodb:Scan`: the architecture keeps Scan off every request path,
 * and the policy makes that a rule rather than a habit.
 */
export const TABLE_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:ConditionCheckItem'] as const;
/**
 * Write actions, on top of the read ones; transactions are authorized by these per-item actions.
 * No `dynamodb:BatchWriteItem`: no function calls it (grant it with the first one that does).
 */
export const TABLE_WRITE_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'] as const;

/**
 * - `read`, `readWrite`: the table and its indexes;
 * - `visitorSessions`: what the anonymous widget routes do (items read, put and updated, a
 *   conversation's history queried; nothing deleted, no index);
 * - `itemLookup`: single items by key (the WebSocket authorizer reads a visitor).
 */
export type TableAccess = 'read' | 'readWrite' | 'visitorSessions' | 'itemLookup';

const ACCESS: Readonly<Record<TableAccess, { readonly actions: readonly string[]; readonly indexes: boolean }>> = {
  read: { actions: TABLE_READ_ACTIONS, indexes: true },
  readWrite: { actions: [...TABLE_READ_ACTIONS, ...TABLE_WRITE_ACTIONS], indexes: true },
  visitorSessions: { actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], indexes: false },
  itemLookup: { actions: ['dynamodb:GetItem'], indexes: false },
};

/** Whether `access` queries the table's indexes. */
export function queriesIndexes(access: TableAccess): boolean {
  return ACCESS[access].indexes;
}

/**
 * Grants item access to the table, and Query on each of its indexes by name rather than CDK's
 * `index/*`, so that the policy names exactly what exists.
 * @param indexNames the table's indexes (ConversaTable.indexNames); by default those of src/store/table.ts
 */
export function grantTableAccess(table: ITable, grantee: IGrantable, access: TableAccess, indexNames: readonly string[] = TABLE.indexes.map((index) => index.name)): Grant {
  const { actions, indexes } = ACCESS[access];
  const items = Grant.addToPrincipal({ grantee, actions: [...actions], resourceArns: [table.tableArn] });
  if (!indexes) return items;
  const onIndexes = Grant.addToPrincipal({
    grantee,
    actions: ['dynamodb:Query'],
    resourceArns: indexNames.map((name) => `${table.tableArn}/index/${name}`),
  });
  return items.combine(onIndexes);
}
