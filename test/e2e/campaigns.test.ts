/**
 * Campaigns end to end on the local stack: a proactive request scheduled with `sendAt`, fired by
 * its schedule's input through runTimer (a minute ahead at the least, too long to wait for the
 * Scheduler stand-in), cancelled before and after it starts, and its outcome counts after a
 * delivery, a failure, a customer's reply and a skipped recipient.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http } from '../support/clients';
import { newHandle, postWebhook, statusWebhook, textWebhook, whatsappCustomerWrites } from './channels-support';
import { runTimer } from '../../src/domain/engagement';
import { deliverProactive, type ProactiveJob } from '../../src/domain/proactive';
import { getConversation } from '../../src/store/conversations';
import { claimHandle, getHandle, putContact } from '../../src/store/contacts';
import { newId } from '../../src/domain/ids';
import { cancelTimer, type TimerInput } from '../../src/domain/timers';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';

let stack: LocalStack;
let adminJwt: string;
let agentJwt: string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  stack = await startTestStack({});
  adminJwt = await agentToken(stack.httpUrl, 'admin-camp', 'admin', 'Cam');
  agentJwt = await agentToken(stack.httpUrl, 'agent-camp', 'agent', 'Abe');
  const off = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: adminJwt, body: { autoresponder: { enabled: false } } });
  expect(off.status, off.text).toBe(200);
});

afterAll(async () => {
  await stack?.stop();
});

/** A WhatsApp customer who wrote once: their handle, contact and conversation. */
async function whatsappCustomer(): Promise<{ handle: string; contactId: string; conversationId: string }> {
  const handle = newHandle('whatsapp');
  const conversationId = await whatsappCustomerWrites(stack, handle, 'Hi there');
  const contactId = (await getHandle('whatsapp', handle))!.contactId;
  return { handle, contactId, conversationId };
}

const inMinutes = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();
const schedule = (body: Record<string, unknown>) => http(stack.httpUrl, 'POST', '/v1/proactive', { token: adminJwt, body });
const campaign = async (batchId: string) => {
  const res = await http(stack.httpUrl, 'GET', `/v1/proactive/${batchId}`, { token: adminJwt });
  expect(res.status, res.text).toBe(200);
  return res.body;
};
const sendsOf = async (text: string) =>
  ((await http(stack.httpUrl, 'GET', '/local/outbox?channel=whatsapp')).body.items as { body: unknown }[]).filter((i) => JSON.stringify(i.body).includes(text));
/** The campaign's pending schedule in the Scheduler stand-in. */
const pendingSchedule = (batchId: string) => stack.aws.scheduler.list().find((s) => s.name === `campaignSend-${batchId}` && s.fireAt);
/** Fires the campaign's schedule as the Scheduler would at its time: its input, to the engagement code. */
const fire = (input: TimerInput) => runTimer(input, new Date(Date.parse(input.dueAt) + 1000));
const history = async (conversationId: string) =>
  (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: agentJwt })).body.items as { id: string; text: string; providerMessageId?: string; status: string }[];

describe('scheduled campaigns', () => {
  it('stores a campaign for later, which its schedule queues and sends once, and counts deliveries, failures and replies', async () => {
    const [ana, ben] = [await whatsappCustomer(), await whatsappCustomer()];
    const text = `Spring sale ${crypto.randomUUID()}`;
    const sendAt = inMinutes(2);
    const res = await schedule({ contactIds: [ana.contactId, ben.contactId], text, channel: 'whatsapp', sendAt });
    expect(res.status, res.text).toBe(202);
    const { batchId, scheduledFor } = res.body;
    expect(Date.parse(scheduledFor)).toBeGreaterThanOrEqual(Date.parse(sendAt));
    expect(await campaign(batchId)).toMatchObject({ state: 'scheduled', text, sendAt: scheduledFor, counts: { recipients: 2, sent: 0 } });

    // Nothing goes before its time; the schedule waits in the Scheduler for it.
    const pending = pendingSchedule(batchId);
    expect(pending?.fireAt?.toISOString()).toBe(scheduledFor);
    await sleep(500);
    expect(await sendsOf(text)).toHaveLength(0);

    const input = JSON.parse(pending!.target.input!) as TimerInput;
    expect(await fire(input)).toBe('done');
    // The Scheduler retries a fire it thinks failed: nothing is queued again.
    expect(await fire(input)).toBe('skipped');
    await eventually(async () => ((await sendsOf(text)).length === 2 ? true : undefined), 15_000);
    await eventually(async () => ((await campaign(batchId)).state === 'done' ? true : undefined), 10_000);
    await sleep(1000);
    expect(await sendsOf(text)).toHaveLength(2);
    expect((await campaign(batchId)).counts).toMatchObject({ recipients: 2, sent: 2, delivered: 0, failed: 0, replied: 0 });

    // Ana's is delivered (twice, as providers repeat a status) and she answers; Ben's fails.
    const sentTo = async (c: { conversationId: string }) => (await history(c.conversationId)).find((m) => m.text === text)!;
    const [toAna, toBen] = [await sentTo(ana), await sentTo(ben)];
    const status = (c: { handle: string; conversationId: string }, m: { id: string; providerMessageId?: string }, s: 'delivered' | 'failed') =>
      postWebhook(stack, 'whatsapp', statusWebhook('whatsapp', c.handle, s, m.providerMessageId, Date.now(), `${c.conversationId}/${m.id}`));
    expect((await status(ana, toAna, 'delivered')).status).toBe(200);
    expect((await status(ana, toAna, 'delivered')).status).toBe(200);
    expect((await status(ben, toBen, 'failed')).status).toBe(200);
    await eventually(async () => ((await history(ben.conversationId)).find((m) => m.id === toBen.id)?.status === 'failed' ? true : undefined), 10_000);
    // Ben never got it: his next message is no reply to it.
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', ben.handle, 'Any news on my order?').body)).status).toBe(200);
    await eventually(async () => ((await history(ben.conversationId)).some((m) => m.text === 'Any news on my order?') ? true : undefined), 10_000);
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', ana.handle, 'Is the blue one in it?').body)).status).toBe(200);
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', ana.handle, 'And the red one?').body)).status).toBe(200);
    await eventually(async () => ((await campaign(batchId)).counts.replied === 1 ? true : undefined), 10_000);
    await sleep(1000);
    expect((await campaign(batchId)).counts).toMatchObject({ recipients: 2, sent: 2, delivered: 1, read: 0, failed: 1, skipped: 0, replied: 1 });
  });

  it('cancels a campaign that has not started, and refuses once it has', async () => {
    const ana = await whatsappCustomer();
    const text = `Cancelled ${crypto.randomUUID()}`;
    const first = await schedule({ contactId: ana.contactId, text, sendAt: inMinutes(5) });
    expect(first.status, first.text).toBe(202);
    const input = JSON.parse(pendingSchedule(first.body.batchId)!.target.input!) as TimerInput;
    const cancel = (id: string) => http(stack.httpUrl, 'DELETE', `/v1/proactive/${id}`, { token: adminJwt });
    // An agent cannot cancel an admin's campaign: it stays scheduled.
    expect((await http(stack.httpUrl, 'DELETE', `/v1/proactive/${first.body.batchId}`, { token: agentJwt })).status).toBe(403);
    expect(await campaign(first.body.batchId)).toMatchObject({ state: 'scheduled' });

    expect((await cancel(first.body.batchId)).status).toBe(204);
    expect(pendingSchedule(first.body.batchId)).toBeUndefined();
    expect(await campaign(first.body.batchId)).toMatchObject({ state: 'cancelled' });
    // A schedule the cancel missed sends nothing; cancelling again is the same answer.
    expect(await fire(input)).toBe('skipped');
    expect((await cancel(first.body.batchId)).status).toBe(204);
    await sleep(1000);
    expect(await sendsOf(text)).toHaveLength(0);

    const started = await schedule({ contactId: ana.contactId, text: `${text} again`, sendAt: inMinutes(5) });
    expect(await fire(JSON.parse(pendingSchedule(started.body.batchId)!.target.input!) as TimerInput)).toBe('done');
    const late = await cancel(started.body.batchId);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('campaign_started');
    await eventually(async () => ((await sendsOf(`${text} again`)).length === 1 ? true : undefined), 15_000);

    // An immediate request has started when it is answered.
    const now = await schedule({ contactId: ana.contactId, text: `${text} now` });
    expect(now.status).toBe(202);
    expect((await cancel(now.body.batchId)).status).toBe(409);
    expect((await cancel('01ARZ3NDEKTSV4RRFFQ69G5FAV')).status).toBe(404);
    expect((await http(stack.httpUrl, 'GET', '/v1/proactive/01ARZ3NDEKTSV4RRFFQ69G5FAV', { token: adminJwt })).status).toBe(404);
    expect((await http(stack.httpUrl, 'GET', `/v1/proactive/${now.body.batchId}`, { token: agentJwt })).status).toBe(403);
  });

  it('gives the quota of the hour it was to go in back when it is cancelled', async () => {
    const [ana, ben] = [await whatsappCustomer(), await whatsappCustomer()];
    // An hour of its own, days ahead: nothing else in this file takes from it.
    const sendAt = inMinutes((10 * 24 + 7) * 60);
    const tally = async () => {
      const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.proactiveQuota(sendAt.slice(0, 13)), ConsistentRead: true }));
      return Number(out.Item?.recipients ?? 0);
    };
    const before = await tally();
    const res = await schedule({ contactIds: [ana.contactId, ben.contactId], text: `Quota back ${crypto.randomUUID()}`, sendAt });
    expect(res.status, res.text).toBe(202);
    expect(await tally()).toBe(before + 2);
    const cancel = () => http(stack.httpUrl, 'DELETE', `/v1/proactive/${res.body.batchId}`, { token: adminJwt });
    expect((await cancel()).status).toBe(204);
    expect(await tally()).toBe(before);
    // Cancelling again gives nothing back twice.
    expect((await cancel()).status).toBe(204);
    expect(await tally()).toBe(before);
  });

  it('arms its schedule again when it fires early, and sends only at its time', async () => {
    const ana = await whatsappCustomer();
    const text = `Early ${crypto.randomUUID()}`;
    const res = await schedule({ contactId: ana.contactId, text, sendAt: inMinutes(4) });
    expect(res.status, res.text).toBe(202);
    const { batchId, scheduledFor } = res.body;
    const input = JSON.parse(pendingSchedule(batchId)!.target.input!) as TimerInput;
    // The Scheduler deletes a schedule once it has fired (ActionAfterCompletion DELETE).
    await cancelTimer('campaignSend', batchId);
    expect(pendingSchedule(batchId)).toBeUndefined();

    // Fired two minutes early (a clock ahead): nothing is queued, the schedule is there again.
    expect(await runTimer(input, new Date(Date.parse(scheduledFor) - 120_000))).toBe('skipped');
    expect(pendingSchedule(batchId)?.fireAt?.toISOString()).toBe(scheduledFor);
    expect(await campaign(batchId)).toMatchObject({ state: 'scheduled', counts: { recipients: 1 } });

    expect(await fire(JSON.parse(pendingSchedule(batchId)!.target.input!) as TimerInput)).toBe('done');
    await eventually(async () => ((await sendsOf(text)).length === 1 ? true : undefined), 15_000);
    await sleep(500);
    expect(await sendsOf(text)).toHaveLength(1);
  });

  it('refuses a sendAt that is no time, too soon or too far, and stores nothing', async () => {
    const ana = await whatsappCustomer();
    // Campaign schedules only: the customer's own timers (auto-resolve) may still be arming.
    const campaignSchedules = () => stack.aws.scheduler.list().filter((s) => s.name.startsWith('campaignSend-')).length;
    const before = campaignSchedules();
    for (const [sendAt, code] of [
      ['tomorrow', undefined],
      [inMinutes(0.2), 'send_at_too_soon'],
      [inMinutes(-5), 'send_at_too_soon'],
      [inMinutes(31 * 24 * 60), 'send_at_too_late'],
    ] as const) {
      const res = await schedule({ contactId: ana.contactId, text: 'Soon', sendAt });
      expect(res.status, `${sendAt}: ${res.text}`).toBe(400);
      if (code) expect(res.body.error.code).toBe(code);
    }
    expect(campaignSchedules()).toBe(before);
  });

  it('refuses a text whose braces would reach customers as written, for now and for later', async () => {
    const ana = await whatsappCustomer();
    const before = stack.aws.scheduler.list().length;
    // A placeholder inside a fallback fills to "Hi Ana}}" or "Hi {{agent.name}}"; one closed by a single brace is sent as typed.
    for (const text of ['Hi {{contact.name|{{agent.name}}}}', 'Hi {{contact.name|there}, welcome back']) {
      for (const sendAt of [undefined, inMinutes(5)]) {
        const res = await schedule({ contactId: ana.contactId, text, ...(sendAt ? { sendAt } : {}) });
        expect([res.status, res.body.error?.message], `${text} ${sendAt ?? 'now'}`).toEqual([400, expect.stringContaining('placeholder')]);
      }
    }
    expect(stack.aws.scheduler.list().length).toBe(before);
    await sleep(500);
    expect(await sendsOf('Hi {{')).toHaveLength(0);
  });

  it('skips a recipient whose erasure was asked for after the campaign was scheduled', async () => {
    const [ana, ben] = [await whatsappCustomer(), await whatsappCustomer()];
    const text = `Erased meanwhile ${crypto.randomUUID()}`;
    const res = await schedule({ contactIds: [ana.contactId, ben.contactId], text, sendAt: inMinutes(3) });
    expect(res.status, res.text).toBe(202);
    const erase = await http(stack.httpUrl, 'DELETE', `/v1/contacts/${ben.contactId}`, { token: adminJwt });
    expect(erase.status, erase.text).toBeLessThan(300);
    expect(await fire(JSON.parse(pendingSchedule(res.body.batchId)!.target.input!) as TimerInput)).toBe('done');
    await eventually(async () => ((await campaign(res.body.batchId)).state === 'done' ? true : undefined), 15_000);
    const sends = await sendsOf(text);
    expect(sends).toHaveLength(1);
    expect(JSON.stringify(sends[0]!.body)).toContain(ana.handle);
    // Skipped for the erasure the fire found, not for a conversation the job missed.
    expect((await campaign(res.body.batchId)).counts).toMatchObject({ recipients: 2, sent: 1, skipped: 1, skippedFor: { erased: 1, noConversation: 0, blank: 0 } });
  });
});

describe('campaign counts', () => {
  it('counts a recipient whose text fills to nothing as skipped, once however often its job runs', async () => {
    // A WhatsApp customer has no email: `{{contact.email}}` fills to nothing for them.
    const handle = newHandle('whatsapp');
    const conversationId = await whatsappCustomerWrites(stack, handle, 'hello');
    expect((await getConversation(conversationId, true))?.contact.email).toBeUndefined();
    const contactId = (await getHandle('whatsapp', handle))!.contactId;
    const res = await schedule({ contactId, text: '{{contact.email}}' });
    expect(res.status, res.text).toBe(202);
    await eventually(async () => ((await campaign(res.body.batchId)).state === 'done' ? true : undefined), 15_000);
    // The queue delivers the job again (a batch that failed elsewhere): still one skipped.
    const job: ProactiveJob = {
      conversationId: 'proactive-lane-0',
      messageId: `proactive-${res.body.batchId}-${contactId}`,
      proactive: { batchId: res.body.batchId, contactId, text: '{{contact.email}}', sender: { id: 'admin-camp', name: 'Cam' } },
    };
    expect(await deliverProactive(job, false, true)).toBe('blank');
    expect((await campaign(res.body.batchId)).counts).toMatchObject({ recipients: 1, sent: 0, skipped: 1, skippedFor: { blank: 1, noConversation: 0, erased: 0 } });
  });

  it('counts a reply once when the job is delivered again after the customer answered', async () => {
    const ana = await whatsappCustomer();
    const text = `Once ${crypto.randomUUID()}`;
    const res = await schedule({ contactId: ana.contactId, text, channel: 'whatsapp' });
    expect(res.status, res.text).toBe(202);
    await eventually(async () => ((await campaign(res.body.batchId)).state === 'done' ? true : undefined), 15_000);
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', ana.handle, 'Tell me more').body)).status).toBe(200);
    await eventually(async () => ((await campaign(res.body.batchId)).counts.replied === 1 ? true : undefined), 10_000);
    // The queue hands the job over again (a provider's 429 on the first attempt, a timeout): nothing is sent again, and the mark is not set again.
    const job: ProactiveJob = {
      conversationId: 'proactive-lane-0',
      messageId: `proactive-${res.body.batchId}-${ana.contactId}`,
      proactive: { batchId: res.body.batchId, contactId: ana.contactId, text, channel: 'whatsapp', sender: { id: 'admin-camp', name: 'Cam' } },
    };
    expect(await deliverProactive(job, false, true)).toBe('sent');
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', ana.handle, 'And the price?').body)).status).toBe(200);
    await eventually(async () => ((await history(ana.conversationId)).some((m) => m.text === 'And the price?') ? true : undefined), 10_000);
    await sleep(1000);
    expect((await campaign(res.body.batchId)).counts).toMatchObject({ sent: 1, replied: 1 });
    expect(await sendsOf(text)).toHaveLength(1);
  });

  it('counts a new customer whose conversation was not stored yet as skipped for no conversation, and says so', async () => {
    // Mid-way through a new customer's first message: their contact and handle are stored, their conversation not yet.
    const handle = newHandle('whatsapp');
    const contactId = newId();
    expect(await putContact({ id: contactId, handles: [{ channel: 'whatsapp', handle }], createdAt: new Date().toISOString() })).toBe(true);
    await claimHandle('whatsapp', handle, { contactId });
    const text = `Too soon ${crypto.randomUUID()}`;
    const res = await schedule({ contactId, text, channel: 'whatsapp' });
    expect(res.status, res.text).toBe(202);
    expect(res.body.queued).toBe(1);
    await eventually(async () => ((await campaign(res.body.batchId)).state === 'done' ? true : undefined), 15_000);
    expect((await campaign(res.body.batchId)).counts).toMatchObject({ recipients: 1, sent: 0, skipped: 1, skippedFor: { noConversation: 1, blank: 0, erased: 0 } });
    expect(await sendsOf(text)).toHaveLength(0);
  });
});
