import { vi } from 'vitest';

/** The environment the engagement function's email path reads, for unit tests without a stack. */
export function stubEmailEnv(): void {
  vi.stubEnv('TABLE_NAME', 'conversa-unit');
  vi.stubEnv('INBOUND_QUEUE_URL', 'http://sqs.local/000000000000/conversa-inbound.fifo');
  vi.stubEnv('MAIL_REPLY_DOMAIN', 'reply.example.com');
  vi.stubEnv('REPLY_ADDRESS_SECRET', 'unit-secret');
  vi.stubEnv('MEDIA_BUCKET', 'conversa-unit-media');
}
