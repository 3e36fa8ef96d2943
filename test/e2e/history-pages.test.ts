/**
 * History pages (GET .../messages and the widget's history) against DynamoDB Local: walking the
 * cursor back reaches every message once, in order, and the last page carries no cursor, also when
 * the history is a whole number of pages (no empty page at the end) and when notes are left out.
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureTable } from '../../local/dynamodb';
import { listMessages, putMessage } from '../../src/store/messages';
import type { Message } from '../../src/domain/types';

beforeAll(async () => {
  const endpoint = inject('dynamodbEndpoint');
  const tableName = `conversa-test-history-${crypto.randomUUID().slice(0, 8)}`;
  Object.assign(process.env, {
    TABLE_NAME: tableName,
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  });
  await ensureTable(endpoint, tableName);
});

/** A conversation with one message per entry (true: a private note), oldest first; their ids. */
async function history(notes: boolean[]): Promise<{ conversationId: string; ids: string[] }> {
  const conversationId = crypto.randomUUID();
  const ids: string[] = [];
  for (const [i, isNote] of notes.entries()) {
    const id = `01JHISTORY${String(i).padStart(16, '0')}`;
    const message: Message = {
      id,
      conversationId,
      direction: isNote ? 'outbound' : 'inbound',
      sender: isNote ? { type: 'agent', id: 'agent-1' } : { type: 'contact', id: 'contact-1' },
      channel: 'web',
      text: `message ${i}`,
      attachments: [],
      status: isNote ? 'sent' : 'received',
      private: isNote,
      createdAt: new Date(Date.UTC(2026, 10, 28, 4, 0, i)).toISOString(),
    };
    expect(await putMessage(message)).toBe(true);
    ids.push(id);
  }
  return { conversationId, ids };
}

/** Every page from the newest back, as a client walks them. */
async function walk(conversationId: string, limit: number, includePrivate: boolean): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await listMessages(conversationId, { limit, includePrivate, ...(cursor ? { cursor } : {}) });
    pages.push(page.items.map((m) => m.id));
    cursor = page.nextCursor ?? undefined;
    expect(pages.length).toBeLessThan(20);
  } while (cursor);
  return pages;
}

describe('history pages', () => {
  it('gives the last page no cursor when the history is a whole number of pages', async () => {
    // Prepare
    const { conversationId, ids } = await history([false, false, false, false, false, false]);

    // Act
    const pages = await walk(conversationId, 3, true);

    // Assess: two full pages, newest first, each oldest first within, and nothing after
    expect(pages).toEqual([ids.slice(3), ids.slice(0, 3)]);
  });

  it('gives one page of exactly `limit` messages no cursor', async () => {
    const { conversationId, ids } = await history([false, true, false, false]);

    expect(await listMessages(conversationId, { limit: 4, includePrivate: true })).toMatchObject({ items: ids.map((id) => ({ id })), nextCursor: null });
  });

  it('leaves notes out of a visitor’s pages and still ends on the last one', async () => {
    // Prepare: notes among the newest and between the visitor's messages
    const notes = [false, true, false, false, true, true, false, true];
    const { conversationId, ids } = await history(notes);
    const shown = ids.filter((_, i) => !notes[i]);

    // Act
    const pages = await walk(conversationId, 2, false);

    // Assess
    expect(pages).toEqual([shown.slice(2), shown.slice(0, 2)]);
  });

  it('still hands a cursor on while older messages remain', async () => {
    const { conversationId, ids } = await history([false, false, false, false, false]);

    const pages = await walk(conversationId, 2, true);

    expect(pages).toEqual([ids.slice(3), ids.slice(1, 3), ids.slice(0, 1)]);
  });
});
