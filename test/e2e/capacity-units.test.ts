/**
 * Capacity units of the per-message conversation update as a conversation grows. DynamoDB bills
 * a write per started KB of the item, and again for each index entry the write changes, at that
 * entry's size: the inbox index projects only what it filters on, so a conversation past 1 KB
 * (labels, a CSAT comment, the customer's email) costs its item twice but never its index entries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { capacityTotals, resetCapacityTotals } from '../../src/aws/capacity';
import { applyMessageToOpenConversation, createConversation, listConversations, type ConversationRecord } from '../../src/store/conversations';
import { newId } from '../../src/domain/ids';

let stack: LocalStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

/** An open WhatsApp conversation, stored as the inbound path creates one. */
async function openConversation(extra: Partial<ConversationRecord> = {}): Promise<string> {
  const id = newId();
  const now = new Date().toISOString();
  await createConversation({
    id,
    channel: 'whatsapp',
    status: 'open',
    contact: { id: newId(), name: 'Ana' },
    assigneeId: null,
    unreadCount: 0,
    createdAt: now,
    updatedAt: now,
    lastMessageAt: now,
    handle: `+1555${String(Date.now()).slice(-7)}`,
    version: 1,
    ...extra,
  });
  return id;
}

/** As a conversation looks after a while: a full contact, labels, a team, a rating with a comment. */
const GROWN: Partial<ConversationRecord> = {
  contact: { id: newId(), name: 'Ana Maria de Souza Ferreira', email: 'ana.maria.souza.ferreira@example-company.com.br', phone: '+5511987654321' },
  labels: ['billing-issue', 'follow-up', 'refund-requested', 'vip'],
  team: 'billing',
  csat: { score: 2, comment: 'The first answer took a while and I had to explain the refund twice. '.repeat(5), at: new Date().toISOString() },
};

async function writeUnits(act: () => Promise<unknown>): Promise<number> {
  resetCapacityTotals();
  await act();
  return capacityTotals.write;
}

function message(kind: 'customer' | 'note') {
  return kind === 'customer'
    ? { id: newId(), createdAt: new Date().toISOString(), direction: 'inbound' as const, private: false, senderType: 'contact' }
    : { id: newId(), createdAt: new Date().toISOString(), direction: 'outbound' as const, private: true, senderType: 'agent' };
}

describe('capacity units of the per-message conversation update', () => {
  // A note moves no index key: it shows what the item alone costs. Projecting every attribute into
  // the inbox index made them 2 and 3 for a small conversation, 4 and 6 past 1 KB (the customer's
  // message: the item, and the old and new index entries at 2 each).
  it.each([
    ['a small conversation', {}, { note: 1, customer: 3 }],
    ['a conversation past 1 KB (its item twice, its inbox entry still once per key move)', GROWN, { note: 2, customer: 4 }],
  ])('costs %s its item, and 2 WRU for the inbox key move', async (_, extra, expected) => {
    // Prepare
    const id = await openConversation(extra);

    // Act
    const note = await writeUnits(() => applyMessageToOpenConversation(id, message('note')));
    const customer = await writeUnits(() => applyMessageToOpenConversation(id, message('customer')));

    // Assess
    expect({ note, customer }).toEqual(expected);
  });

  it('lists the inbox from the index and the items: every attribute, filters applied', async () => {
    // Prepare
    const grown = await openConversation(GROWN);
    const plain = await openConversation();

    // Act
    const vip = await listConversations({ status: 'open', label: 'vip', limit: 50 });
    const whatsapp = await listConversations({ status: 'open', channel: 'whatsapp', team: 'billing', limit: 50 });
    const open = await listConversations({ status: 'open', limit: 50 });

    // Assess
    expect(vip.items.map((c) => c.id)).toContain(grown);
    expect(vip.items.map((c) => c.id)).not.toContain(plain);
    expect(vip.items.find((c) => c.id === grown)).toMatchObject({ ...GROWN, status: 'open', unreadCount: 0 });
    expect(whatsapp.items.map((c) => c.id)).toContain(grown);
    expect(whatsapp.items.map((c) => c.id)).not.toContain(plain);
    const ids = open.items.map((c) => c.id);
    expect(ids.indexOf(plain)).toBeLessThan(ids.indexOf(grown));
    expect(open.items.map((c) => c.lastMessageAt)).toEqual(open.items.map((c) => c.lastMessageAt).sort().reverse());
  });
});
