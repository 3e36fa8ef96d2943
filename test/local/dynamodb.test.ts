import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTable, startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb';
import { TABLE } from '../../src/store/table';
import { capacityTotals, countConsumedCapacity, resetCapacityTotals } from '../../src/aws/capacity';

const TABLE_NAME = 'conversa-test';
/** Each case starts or restarts a JVM, which can take a while on a busy two-core machine. */
const JVM_TIMEOUT_MS = 180_000;

function clientFor(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
}

describe('DynamoDB Local in memory', () => {
  let db: DynamoDbLocal;
  let client: DynamoDBClient;

  beforeAll(async () => {
    db = await startDynamoDbLocal({ port: 0 });
    client = clientFor(db.endpoint);
  }, JVM_TIMEOUT_MS);

  afterAll(async () => {
    client?.destroy();
    await db?.stop();
  }, JVM_TIMEOUT_MS);

  it('creates the table from the shared definition, with TTL, and tolerates being asked twice', async () => {
    await ensureTable(db.endpoint, TABLE_NAME);
    await ensureTable(db.endpoint, TABLE_NAME);

    const { Table } = await client.send(new DescribeTableCommand({ TableName: TABLE_NAME }));
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.KeySchema).toEqual([
      { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
    ]);
    expect(Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName).sort()).toEqual(TABLE.indexes.map((index) => index.name).sort());

    const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: TABLE_NAME }));
    expect(ttl.TimeToLiveDescription).toMatchObject({ AttributeName: TABLE.ttlAttribute, TimeToLiveStatus: 'ENABLED' });
  }, JVM_TIMEOUT_MS);

  it('reports the units each request consumed, a write refused by its condition counted as one', async () => {
    // Prepare
    await ensureTable(db.endpoint, TABLE_NAME);
    const counted = clientFor(db.endpoint);
    countConsumedCapacity(counted);
    resetCapacityTotals();
    const put = () =>
      counted.send(new PutItemCommand({ TableName: TABLE_NAME, Item: { pk: { S: 'CAP' }, sk: { S: 'ONE' } }, ConditionExpression: 'attribute_not_exists(pk)' }));

    // Act
    await put();
    await expect(put()).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    await counted.send(new GetItemCommand({ TableName: TABLE_NAME, Key: { pk: { S: 'CAP' }, sk: { S: 'ONE' } }, ConsistentRead: true }));

    // Assess
    expect(capacityTotals).toEqual({ write: 2, read: 1, requests: 3 });
    counted.destroy();
  }, JVM_TIMEOUT_MS);

  it('loses its data on restart', async () => {
    await ensureTable(db.endpoint, TABLE_NAME);
    await db.restart();
    const { TableNames } = await client.send(new ListTablesCommand({}));
    expect(TableNames).toEqual([]);
  }, JVM_TIMEOUT_MS);
});

describe('DynamoDB Local with a data directory', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'conversa-ddb-'));
  let db: DynamoDbLocal | undefined;

  afterAll(async () => {
    await db?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps items across a restart, and refuses connections once stopped', async () => {
    db = await startDynamoDbLocal({ port: 0, dataDir });
    await ensureTable(db.endpoint, TABLE_NAME);
    const client = clientFor(db.endpoint);
    try {
      const key = { pk: { S: 'K#1' }, sk: { S: 'S#1' } };
      await client.send(new PutItemCommand({ TableName: TABLE_NAME, Item: { ...key, text: { S: 'kept' } } }));

      await db.restart();
      const { Item } = await client.send(new GetItemCommand({ TableName: TABLE_NAME, Key: key }));
      expect(Item?.text).toEqual({ S: 'kept' });

      await db.stop();
      await expect(client.send(new ListTablesCommand({}))).rejects.toThrow();
    } finally {
      client.destroy();
    }
  }, JVM_TIMEOUT_MS);
});

describe('DynamoDB Local lifetime', () => {
  it('dies with the process that started it when that process gets SIGTERM', async () => {
    const module = resolve('local/dynamodb.ts');
    const script = `const { startDynamoDbLocal } = await import(${JSON.stringify(module)});
      const db = await startDynamoDbLocal();
      console.log(db.endpoint);
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((done) => parent.once('exit', done));
    try {
      const endpoint = await new Promise<string>((found, failed) => {
        parent.stdout.setEncoding('utf8').on('data', (text: string) => {
          const match = /http:\/\/[\d.]+:\d+/.exec(text);
          if (match) found(match[0]);
        });
        parent.once('exit', (code) => failed(new Error(`the parent exited early with ${code}`)));
      });
      const client = clientFor(endpoint);
      try {
        await client.send(new ListTablesCommand({}));
        parent.kill('SIGTERM');
        await exited;
        const deadline = Date.now() + 15_000;
        let stillAnswering = true;
        while (stillAnswering && Date.now() < deadline) {
          stillAnswering = await client.send(new ListTablesCommand({})).then(() => true, () => false);
          if (stillAnswering) await new Promise((wait) => setTimeout(wait, 200));
        }
        expect(stillAnswering, 'the JVM should be gone').toBe(false);
      } finally {
        client.destroy();
      }
    } finally {
      parent.kill('SIGKILL');
    }
  }, JVM_TIMEOUT_MS);
});
