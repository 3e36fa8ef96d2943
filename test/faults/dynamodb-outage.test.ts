/**
 * DynamoDB unavailable for a while in the middle of traffic: webhooks are still acknowledged
 * (the queue holds the events), and once the database is back every message is stored exactly
 * once, in order. This file starts its own DynamoDB Local with its data on disk, so the data
 * survives the restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { eventually } from '../support/clients';
import { phone, postWhatsapp, queueDepth, sequenceOf, setInboundQueue, storedMessages, whatsappBody } from './support';

let stack: LocalStack;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'conversa-outage-'));
  stack = await startLocalStack({ httpPort: 0, wsPort: 0, dataDir });
  // The consumer dead-letters a record itself on its last receive (QUEUES.inbound.maxReceiveCount,
  // 5, whatever the queue's redrive says), so the receives must outlast the JVM's restart, which on
  // a loaded machine takes tens of seconds: 5 receives 10 s apart ride out about 40 s (deployed:
  // 180 s apart, a 15-minute outage). Not much shorter: a batch still being handled when its
  // visibility ends would be handed out a second time.
  await setInboundQueue(stack, { visibilityTimeoutSeconds: 10 });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('DynamoDB outage', () => {
  it('acknowledges webhooks while DynamoDB is down and stores every message exactly once after', async () => {
    // Prepare: customers with a conversation already
    const senders = Array.from({ length: 5 }, (_, i) => phone(20, i));
    for (const from of senders) expect(await postWhatsapp(stack, whatsappBody(from, 'seq 0'))).toBe(200);
    for (const from of senders) await eventually(async () => (await storedMessages(from)).length === 1, 60_000);

    // Act: the database goes away; customers keep writing
    await stack.dynamodb!.stop();
    const statuses: number[] = [];
    for (let k = 1; k <= 4; k++) {
      for (const from of senders) statuses.push(await postWhatsapp(stack, whatsappBody(from, `seq ${k}`)));
    }
    const held = await queueDepth(stack, 'conversa-inbound.fifo');
    // Let the consumers fail against the missing database for a few rounds.
    await new Promise((r) => setTimeout(r, 2500));
    await stack.dynamodb!.restart();

    // Assess
    expect(statuses).toEqual(Array(20).fill(200));
    expect(held.visible + held.inFlight).toBeGreaterThan(0);
    for (const from of senders) {
      const sequence = await eventually(async () => {
        const seq = sequenceOf(await storedMessages(from), 'seq ');
        return seq.length >= 5 ? seq : undefined;
      }, 90_000, 200);
      expect(sequence).toEqual([0, 1, 2, 3, 4]);
    }
    await eventually(async () => {
      const depth = await queueDepth(stack, 'conversa-inbound.fifo');
      return depth.visible + depth.inFlight === 0;
    }, 60_000);
    for (const from of senders) expect(sequenceOf(await storedMessages(from), 'seq ')).toEqual([0, 1, 2, 3, 4]);
    expect(await queueDepth(stack, 'conversa-inbound-dlq.fifo')).toEqual({ visible: 0, inFlight: 0 });
  }, 240_000);
});
