/**
 * The inbox list on a table moved from the old inbox index to the slim one (README, Deploy): the
 * functions query the index CONVERSA_INBOX_INDEX names. The local stack runs on a table made as a
 * migrated deployment has it (gsi1slim, no gsi1); a second table is one mid-migration (both).
 */
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { ENV, config } from '../../src/config';
import { newId } from '../../src/domain/ids';
import { createConversation, listConversations, type ConversationRecord } from '../../src/store/conversations';
import { createTableInput, type InboxIndexStage, MIGRATED_INBOX_INDEX } from '../../src/store/table';
import { agentToken, http } from '../support/clients';
import { startTestStack } from '../support/stack';

const suffix = crypto.randomUUID().slice(0, 8);
const MIGRATED_TABLE = `conversa-test-migrated-${suffix}`;
const BOTH_TABLE = `conversa-test-both-${suffix}`;

let stack: LocalStack;
let agentJwt: string;

beforeAll(async () => {
  const client = new DynamoDBClient({ endpoint: inject('dynamodbEndpoint'), region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    for (const [TableName, stage] of [[MIGRATED_TABLE, 'migrated'], [BOTH_TABLE, 'switched']] as [string, InboxIndexStage][]) {
      await client.send(new CreateTableCommand(createTableInput(TableName, stage)));
      await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { TableName });
    }
  } finally {
    client.destroy();
  }
  // As the stateless stack sets it at `switched` and `migrated`; the local stack finds its table made.
  process.env[ENV.inboxIndex] = MIGRATED_INBOX_INDEX;
  stack = await startTestStack({ tableName: MIGRATED_TABLE });
  agentJwt = await agentToken(stack.httpUrl, 'agent-ivy', 'agent', 'Ivy');
});

afterAll(async () => {
  await stack?.stop();
  delete process.env[ENV.inboxIndex];
});

/** Runs `act` with the environment variables `values` set (undefined: unset), then puts them back. */
async function withEnv<T>(values: Record<string, string | undefined>, act: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  const set = (entries: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(entries)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  set(values);
  try {
    return await act();
  } finally {
    set(before);
  }
}

/** An open conversation whose last activity was `minutesAgo`, stored as the inbound path creates one. */
async function openConversation(minutesAgo: number, extra: Partial<ConversationRecord> = {}): Promise<string> {
  const id = newId();
  const at = new Date(Date.now() - minutesAgo * 60_000).toISOString();
  await createConversation({
    id,
    channel: 'whatsapp',
    status: 'open',
    contact: { id: newId(), name: `Customer ${minutesAgo}` },
    assigneeId: null,
    unreadCount: 0,
    createdAt: at,
    updatedAt: at,
    lastMessageAt: at,
    handle: `+1555${String(Date.now()).slice(-7)}`,
    version: 1,
    ...extra,
  });
  return id;
}

/** Every page of the open inbox, `limit` at a time, through the agent API. */
async function walkInbox(query = ''): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const res = await http(stack.httpUrl, 'GET', `/v1/conversations?status=open&limit=1${query}${cursor ? `&cursor=${cursor}` : ''}`, { token: agentJwt });
    expect(res.status, res.text).toBe(200);
    ids.push(...(res.body.items as { id: string }[]).map((c) => c.id));
    cursor = res.body.nextCursor as string | null;
  } while (cursor);
  return ids;
}

describe('inbox list on a table migrated to gsi1slim', () => {
  it('lists the inbox from gsi1slim: newest activity first, page by page, filters applied, whole conversations', async () => {
    // Prepare: three open conversations, the middle one labelled and routed to a team
    const oldest = await openConversation(30);
    const middle = await openConversation(20, { labels: ['vip'], team: 'billing', channel: 'telegram' });
    const newest = await openConversation(10);

    // Act
    const all = await walkInbox();
    const vip = await http(stack.httpUrl, 'GET', '/v1/conversations?status=open&label=vip', { token: agentJwt });
    const billing = await walkInbox('&team=billing&channel=telegram');

    // Assess
    expect(all).toEqual([newest, middle, oldest]);
    expect(vip.status).toBe(200);
    expect(vip.body.items).toMatchObject([{ id: middle, channel: 'telegram', team: 'billing', labels: ['vip'], contact: { name: 'Customer 20' }, unreadCount: 0 }]);
    expect(billing).toEqual([middle]);
  });

  it('reads the index the variable names: gsi1, the default, is not on this table', async () => {
    // Prepare
    const id = await openConversation(5);

    // Act + Assess: a function left at the default fails; set, it lists
    await withEnv({ [ENV.inboxIndex]: undefined }, async () => {
      await expect(listConversations({ status: 'open', limit: 10 })).rejects.toThrow(/index/i);
    });
    expect((await listConversations({ status: 'open', limit: 10 })).items.map((c) => c.id)).toContain(id);
  });

  it('refuses an index name that is neither gsi1 nor gsi1slim', async () => {
    await withEnv({ [ENV.inboxIndex]: 'gsi1-slim' }, async () => {
      expect(() => config.inboxIndex).toThrow('CONVERSA_INBOX_INDEX must be gsi1 or gsi1slim, got gsi1-slim');
    });
  });
});

describe('inbox list on a table mid-migration (gsi1 with every attribute, and gsi1slim)', () => {
  it('lists the same from either index, and a cursor of gsi1 goes on in gsi1slim (step 2 switches functions under open pages)', async () => {
    await withEnv({ [ENV.tableName]: BOTH_TABLE }, async () => {
      // Prepare
      const ids = [await openConversation(3), await openConversation(2, { labels: ['vip'] }), await openConversation(1)].reverse();

      // Act
      const fromOld = await withEnv({ [ENV.inboxIndex]: undefined }, () => listConversations({ status: 'open', limit: 10 }));
      const fromSlim = await listConversations({ status: 'open', limit: 10 });
      const firstPage = await withEnv({ [ENV.inboxIndex]: 'gsi1' }, () => listConversations({ status: 'open', limit: 1 }));
      const nextPage = await listConversations({ status: 'open', limit: 2, cursor: firstPage.nextCursor! });

      // Assess
      expect(fromOld.items.map((c) => c.id)).toEqual(ids);
      expect(fromSlim.items).toEqual(fromOld.items);
      expect([...firstPage.items, ...nextPage.items].map((c) => c.id)).toEqual(ids);
    });
  });
});
