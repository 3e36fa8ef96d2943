/**
 * Which of a web visitor's typing signals go out to the agents, on a clock the test sets; and what
 * a dropped one costs, with DynamoDB and the fan-out mocked.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { keys } from '../../src/store/keys';
import type { ServerEvent } from '../../src/domain/fanout';

process.env.TABLE_NAME = 'conversa-test';
process.env.AWS_REGION = 'us-east-1';
const publish = vi.hoisted(() => vi.fn(async () => 1));
const sendToConnection = vi.hoisted(() => vi.fn(async () => true));
vi.mock('../../src/domain/fanout', async (original) => ({ ...(await original<typeof import('../../src/domain/fanout')>()), publish, sendToConnection }));
const { TYPING_INTERVAL_MS, handleFrame, typingPasses } = await import('../../src/domain/realtime');
const ddb = mockClient(DynamoDBDocumentClient);

const I = TYPING_INTERVAL_MS;

describe('typingPasses', () => {
  it("lets through every signal of the widget's cadence (on every 3 s while typing, off 2 s after the last key)", () => {
    const visitor = `v-${crypto.randomUUID()}`;
    // Types from 0 to 4 s (on at 0 and 3 s), pauses, off at 6 s; types again at 6.1 s, off at 8.1 s.
    const script: [number, 'on' | 'off'][] = [[0, 'on'], [3_000, 'on'], [6_000, 'off'], [6_100, 'on'], [8_100, 'off']];
    for (const [at, state] of script) expect(typingPasses(visitor, state, 1_000_000 + at), `${state} at ${at}`).toBe(true);
  });

  it('drops an on within the interval of the last on sent, and an off repeated within it', () => {
    const visitor = `v-${crypto.randomUUID()}`;
    const t = 2_000_000;
    expect(typingPasses(visitor, 'on', t)).toBe(true);
    expect(typingPasses(visitor, 'on', t + 1)).toBe(false);
    expect(typingPasses(visitor, 'on', t + I - 1)).toBe(false);
    // The stop goes at once: the console's sign must not outlive the typing.
    expect(typingPasses(visitor, 'off', t + 10)).toBe(true);
    expect(typingPasses(visitor, 'off', t + 11)).toBe(false);
    // On and off alternating: the on waits for the interval, the off for an on sent.
    expect(typingPasses(visitor, 'on', t + 12)).toBe(false);
    expect(typingPasses(visitor, 'off', t + 13)).toBe(false);
    expect(typingPasses(visitor, 'on', t + I)).toBe(true);
    expect(typingPasses(visitor, 'on', t + I + 1)).toBe(false);
    // Repeated offs: one per interval.
    expect(typingPasses(visitor, 'off', t + I + 2)).toBe(true);
    expect(typingPasses(visitor, 'off', t + 2 * I + 1)).toBe(false);
    expect(typingPasses(visitor, 'off', t + 2 * I + 2)).toBe(true);
  });

  it('limits each visitor on their own', () => {
    const [one, two] = [`v-${crypto.randomUUID()}`, `v-${crypto.randomUUID()}`];
    const t = 3_000_000;
    expect(typingPasses(one, 'on', t)).toBe(true);
    expect(typingPasses(two, 'on', t + 1)).toBe(true);
    expect(typingPasses(one, 'on', t + 2)).toBe(false);
    // Many other typers later (their entries push the stale ones out) change nothing for them.
    for (let i = 0; i < 100; i++) expect(typingPasses(`v-${i}-${crypto.randomUUID()}`, 'on', t + I + i)).toBe(true);
    expect(typingPasses(two, 'on', t + I + 200)).toBe(true);
    expect(typingPasses(two, 'on', t + I + 201)).toBe(false);
  });
});

describe("a visitor's typing frame", () => {
  it('is dropped by the throttle before anything is read: a flood costs the reads of the signal that goes', async () => {
    // Prepare: a visitor with a conversation
    const visitorId = `v-${crypto.randomUUID()}`;
    const conversationId = `c-${crypto.randomUUID()}`;
    const at = new Date().toISOString();
    ddb.reset();
    ddb.on(GetCommand, { Key: keys.visitor(visitorId) }).resolves({ Item: { ...keys.visitor(visitorId), id: visitorId, conversationId } });
    ddb.on(GetCommand, { Key: keys.conversation(conversationId) }).resolves({
      Item: { ...keys.conversation(conversationId), id: conversationId, channel: 'web', status: 'open', contact: { id: 'contact-t' }, assigneeId: null, visitorId, createdAt: at, updatedAt: at, lastMessageAt: at },
    });
    publish.mockClear();
    sendToConnection.mockClear();
    const visitor = { role: 'visitor', id: visitorId } as const;

    // Act: a script's burst of ten "on"
    for (let i = 0; i < 10; i++) await handleFrame(visitor, 'conn-typing', JSON.stringify({ action: 'typing', state: 'on' }));

    // Assess: one signal out, and only its two reads (the visitor's item, its conversation)
    const sent = (publish.mock.calls as unknown as [ServerEvent[], unknown][]).flatMap(([events]) => events);
    expect(sent).toMatchObject([{ type: 'typing', conversationId, state: 'on' }]);
    expect(ddb.calls()).toHaveLength(2);
    expect(sendToConnection).not.toHaveBeenCalled();
  });
});
