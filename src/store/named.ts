/**
 * A small collection of records with unique names (canned responses by short code, macros by
 * name): each record in one partition beside the claim of its name (case-insensitive, built by
 * `claim`), the two written and deleted together in one transaction.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../aws/clients';
import { config } from '../config';
import { queryAll, transactIf, withoutKeys } from './items';

type Key = { pk: string; sk: string };

export interface NamedCollection<T extends { id: string }> {
  /** The claim of `record`'s name, for a transaction of the caller's (a rename). */
  claimPut(record: T): { Put: { TableName: string; Item: Record<string, unknown>; ConditionExpression: string } };
  /** Stores a new record with the claim of its name; false when the name is taken. */
  put(record: T): Promise<boolean>;
  get(id: string, consistent?: boolean): Promise<T | undefined>;
  /** False when there was nothing to delete. The name's claim goes with it, in one transaction. */
  remove(id: string): Promise<boolean>;
  /** Every record in one Query: a workspace keeps hundreds, not millions. */
  list(): Promise<T[]>;
}

export function namedCollection<T extends { id: string }>(shape: {
  record: (id: string) => Key;
  claim: (name: string) => Key;
  partition: string;
  prefix: string;
  nameOf: (record: T) => string;
  /** Records stored before names were claimed may have none: their deletion does not ask for one. */
  unclaimedRecords?: boolean;
}): NamedCollection<T> {
  const strip = (item: Record<string, unknown>) => withoutKeys<T>(item);
  const claimPut = (record: T) => ({
    Put: { TableName: config.tableName, Item: { ...shape.claim(shape.nameOf(record)), id: record.id }, ConditionExpression: 'attribute_not_exists(pk)' },
  });
  const get = async (id: string, consistent = false) => {
    const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: shape.record(id), ConsistentRead: consistent }));
    return out.Item ? strip(out.Item) : undefined;
  };
  return {
    claimPut,
    put: (record) =>
      transactIf([claimPut(record), { Put: { TableName: config.tableName, Item: { ...shape.record(record.id), ...record }, ConditionExpression: 'attribute_not_exists(pk)' } }]),
    get,
    async remove(id) {
      const record = await get(id, true);
      if (!record) return false;
      return transactIf([
        { Delete: { TableName: config.tableName, Key: shape.record(id), ConditionExpression: 'attribute_exists(pk)' } },
        // Only this record's claim.
        {
          Delete: {
            TableName: config.tableName,
            Key: shape.claim(shape.nameOf(record)),
            ConditionExpression: shape.unclaimedRecords ? 'attribute_not_exists(pk) OR id = :id' : 'id = :id',
            ExpressionAttributeValues: { ':id': id },
          },
        },
      ]);
    },
    list: async () =>
      (
        await queryAll({
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': shape.partition, ':prefix': shape.prefix },
        })
      ).map(strip),
  };
}
