/**
 * batchGetAll: many keys in requests of 100, a few requests at a time, the keys DynamoDB leaves
 * unprocessed asked again; mocked, so that requests can be held open and throttled at will.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BATCH_GET_CONCURRENCY, batchGetAll } from '../../src/store/items';

const ddb = mockClient(DynamoDBDocumentClient);
const TABLE = 'conversa-unit';

type Key = { pk: string; sk: string };
type Input = { RequestItems: Record<string, { Keys: Key[]; ConsistentRead?: boolean }> };

const keysFor = (count: number): Key[] => Array.from({ length: count }, (_, i) => ({ pk: `CONTACT#C${i}`, sk: 'CONTACT' }));
const item = (key: Key) => ({ ...key, id: key.pk.slice('CONTACT#'.length) });

/**
 * Answers every key after a few milliseconds (each request held open a different while, so they
 * finish out of order), the first key of each request's first try left unprocessed; records the
 * requests and how many were in flight at most.
 */
function table() {
  const requests: Key[][] = [];
  const leftOnce = new Set<string>();
  let inFlight = 0;
  let maxInFlight = 0;
  ddb.on(BatchGetCommand).callsFake(async (input: Input) => {
    const { Keys } = input.RequestItems[TABLE]!;
    requests.push(Keys);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 2 + ((requests.length * 7) % 11)));
    inFlight--;
    const [first, ...rest] = Keys;
    const left = first && !leftOnce.has(first.pk) ? (leftOnce.add(first.pk), [first]) : [];
    return {
      Responses: { [TABLE]: (left.length > 0 ? rest : Keys).map(item) },
      ...(left.length > 0 ? { UnprocessedKeys: { [TABLE]: { ...input.RequestItems[TABLE], Keys: left } } } : {}),
    };
  });
  return { requests, maxInFlight: () => maxInFlight };
}

beforeEach(() => {
  vi.stubEnv('TABLE_NAME', TABLE);
  ddb.reset();
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('batchGetAll', () => {
  it('asks for 8 000 keys a few requests at a time, never more than its bound', async () => {
    // Prepare
    const mock = table();
    const keys = keysFor(8_000);

    // Act
    const found = await batchGetAll(keys);

    // Assess: every item once, requests of at most 100 keys, several at once but no more than the bound
    expect(found).toHaveLength(8_000);
    expect(new Set(found.map((f) => f.pk)).size).toBe(8_000);
    expect(mock.requests.every((r) => r.length <= 100)).toBe(true);
    expect(mock.maxInFlight()).toBeGreaterThan(1);
    expect(mock.maxInFlight()).toBeLessThanOrEqual(BATCH_GET_CONCURRENCY);
  });

  it('asks again for the keys DynamoDB left unprocessed, and answers in the order of the requests', async () => {
    // Prepare
    const mock = table();
    const keys = keysFor(350);

    // Act
    const found = await batchGetAll(keys, { consistent: true });

    // Assess: 4 requests and a retry of each one's unprocessed key; request by request, each retried key after its request's others
    const retries = mock.requests.filter((r) => r.length === 1);
    expect(retries.map((r) => r[0]!.pk).sort()).toEqual(['CONTACT#C0', 'CONTACT#C100', 'CONTACT#C200', 'CONTACT#C300']);
    expect(mock.requests).toHaveLength(8);
    expect(ddb.commandCalls(BatchGetCommand).every((c) => (c.args[0].input as Input).RequestItems[TABLE]!.ConsistentRead === true)).toBe(true);
    const order = (start: number, end: number) => [...keys.slice(start + 1, end), keys[start]!].map((k) => k.pk);
    expect(found.map((f) => f.pk)).toEqual([...order(0, 100), ...order(100, 200), ...order(200, 300), ...order(300, 350)]);
  });

  it('makes no request for no keys', async () => {
    table();

    expect(await batchGetAll([])).toEqual([]);
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(0);
  });

  it('fails when a request fails, and starts no request after it', async () => {
    // Prepare: the table fails the third request
    let calls = 0;
    let atFailure = 0;
    ddb.on(BatchGetCommand).callsFake(async (input: Input) => {
      const call = ++calls;
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (call === 3) {
        atFailure = calls;
        throw Object.assign(new Error('Internal server error'), { name: 'InternalServerError' });
      }
      return { Responses: { [TABLE]: input.RequestItems[TABLE]!.Keys.map(item) } };
    });

    // Act + Assess: the requests already in flight finish, and no other starts
    await expect(batchGetAll(keysFor(8_000))).rejects.toThrow('Internal server error');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(calls).toBe(atFailure);
    expect(calls).toBeLessThan(80);
  });
});
