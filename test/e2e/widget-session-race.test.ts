/**
 * A resumed widget session (`POST /v1/widget/sessions` with a token) that another request for the
 * same visitor overtakes: two tabs sending their pre-chat forms at once, or the customer's erasure.
 * The other request's write lands between this one's read of the visitor and its own write.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { http, visitorSession } from '../support/clients';
import { getVisitor } from '../../src/store/contacts';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';

/** Armed for a visitor, the next read of it runs `meanwhile` after reading, then answers what it read. */
const overtake = vi.hoisted(() => ({ visitorId: undefined as string | undefined, meanwhile: async () => {} }));
vi.mock('../../src/store/contacts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/store/contacts')>();
  return {
    ...real,
    getVisitor: async (...args: Parameters<typeof real.getVisitor>) => {
      const read = await real.getVisitor(...args);
      if (overtake.visitorId === args[0]) {
        overtake.visitorId = undefined;
        await overtake.meanwhile();
      }
      return read;
    },
  };
});

let stack: LocalStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

const resume = (body: Record<string, unknown>) => http(stack.httpUrl, 'POST', '/v1/widget/sessions', { body });

describe('a resumed widget session overtaken by another request', () => {
  it('keeps the email another tab gave first, and fills what that tab left unset', async () => {
    // Prepare: an anonymous visitor; another tab's form (email only) lands while this one resumes
    const session = await visitorSession(stack.httpUrl);
    const { updateVisitor } = await vi.importActual<typeof import('../../src/store/contacts')>('../../src/store/contacts');
    Object.assign(overtake, { visitorId: session.visitorId, meanwhile: () => updateVisitor(session.visitorId, { email: 'first-tab@example.com' }) });

    // Act
    const answer = await resume({ token: session.token, name: 'Vera', email: 'second-tab@example.com' });

    // Assess: what was given before is never overwritten; the name, still unset, is taken
    expect(answer.status).toBe(201);
    expect(answer.body.visitorId).toBe(session.visitorId);
    expect(await getVisitor(session.visitorId, true)).toMatchObject({ email: 'first-tab@example.com', name: 'Vera' });
  });

  it('answers 401 to a resumed session whose visitor is erased meanwhile, and writes nothing back', async () => {
    // Prepare
    const session = await visitorSession(stack.httpUrl);
    Object.assign(overtake, { visitorId: session.visitorId, meanwhile: async () => void (await ddb().send(new DeleteCommand({ TableName: config.tableName, Key: keys.visitor(session.visitorId) }))) });

    // Act
    const answer = await resume({ token: session.token, name: 'Vera' });

    // Assess
    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('invalid_token');
    expect(await getVisitor(session.visitorId, true)).toBeUndefined();
  });
});
