/** The idempotency scope of customers' messages: a provider's id, or a web visitor's clientMessageId with a hash of what it sent. */
import { describe, expect, it } from 'vitest';
import { dedupScope } from '../../src/domain/inbound';

const VISITOR = '01JD5Q8Z7V4R0M3X6N2B9C1K8V';
const file = (uploadId: string, name?: string) => ({ type: 'image', url: `conversa-media://media/visitor/${VISITOR}/${uploadId}`, mimeType: 'image/png', size: 10, ...(name ? { name } : {}) });
const A = '01JD5Q8Z7V4R0M3X6N2B9C1K8A';
const B = '01JD5Q8Z7V4R0M3X6N2B9C1K8B';
const visitor = (text: string, attachments?: ReturnType<typeof file>[]) => dedupScope({ channel: 'web', handle: VISITOR, clientMessageId: 'c-1', text, ...(attachments ? { attachments } : {}) });

describe('dedupScope', () => {
  it("keeps a text's scope as records stored before files counted have it, so a send retried across a deploy is still found", () => {
    // The hash the text alone always had (sha256, base64url, 16 characters).
    expect(visitor('Where is my order?')).toBe(`client#web#${VISITOR}#c-1#aVGsGGw8YgfyWhHr`);
    expect(visitor('Where is my order?', [])).toBe(visitor('Where is my order?'));
  });

  it('tells apart the same id and text with other files, and finds the same files again', () => {
    const withA = visitor('my receipt', [file(A)]);

    expect(withA).not.toBe(visitor('my receipt'));
    expect(withA).not.toBe(visitor('my receipt', [file(B)]));
    expect(visitor('my receipt', [file(A), file(B)])).not.toBe(visitor('my receipt', [file(B), file(A)]));
    expect(visitor('my receipt', [file(A)])).toBe(withA);
    expect(withA).toMatch(new RegExp(`^client#web#${VISITOR}#c-1#[\\w-]{16}$`));
  });

  it("scopes a provider's message by its id alone", () => {
    expect(dedupScope({ channel: 'whatsapp', handle: '15550001111', providerMessageId: 'wamid.1', text: 'hi', attachments: [file(A)] })).toBe('whatsapp#wamid.1');
  });
});
