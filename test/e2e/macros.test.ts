/**
 * Macros: admins save sequences of actions, any agent runs one on a conversation. A run has the
 * effects of the agent doing each action by hand (frames to the team, the reply to the customer,
 * notes only to the team); a failing action stops it with the earlier ones kept; the same run
 * again (a retry after a lost answer, a crash part-way, or the error fixed) writes nothing twice
 * and completes. A crash is a throw from postAgentMessage right after a message with an armed text
 * was stored: the route answers 5xx and the client sends the same request again.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { updateConversation } from '../../src/store/conversations';
import { snoozeScheduleName } from '../../src/domain/snooze';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { keys } from '../../src/store/keys';
import { phoneHandles, whatsappCustomerWrites } from './channels-support';

/** The next crash: right after the first postAgentMessage of a message with this text. */
const crash = vi.hoisted(() => ({ afterText: undefined as string | undefined }));

vi.mock('../../src/domain/outbound', async (orig) => {
  const real = await orig<typeof import('../../src/domain/outbound')>();
  return {
    ...real,
    postAgentMessage: async (...args: Parameters<typeof real.postAgentMessage>) => {
      const armed = crash.afterText === args[2].text;
      if (armed) crash.afterText = undefined;
      const message = await real.postAgentMessage(...args);
      if (armed) throw new Error('simulated crash after the message');
      return message;
    },
  };
});

let stack: LocalStack;
let admin: string;
let adminSocket: WsClient;
const tokens: Record<string, string> = {};
const sockets: WsClient[] = [];
const AGENTS = { 'mc-ana': 'Ana', 'mc-ben': 'Ben' } as const;
type AgentId = keyof typeof AGENTS;

beforeAll(async () => {
  stack = await startTestStack();
  admin = await agentToken(stack.httpUrl, 'mc-admin', 'admin', 'Ada');
  expect((await put('/v1/settings', { autoresponder: { enabled: false }, labels: [{ name: 'vip' }, { name: 'refund' }, { name: 'legacy' }] })).status).toBe(200);
  // The admin supervises (no conversations of their own) and watches every frame.
  expect((await put('/v1/agents/mc-admin', { liveCapacity: 0, asyncCapacity: 0 })).status).toBe(200);
  adminSocket = await WsClient.connect(stack.wsUrl, admin);
  sockets.push(adminSocket);
  for (const [id, name] of Object.entries(AGENTS)) {
    tokens[id] = await agentToken(stack.httpUrl, id, 'agent', name);
    sockets.push(await WsClient.connect(stack.wsUrl, tokens[id]!));
  }
  expect((await put('/v1/agents/mc-ben', { teams: ['billing'] })).status).toBe(200);
  await eventually(async () => (await get('/v1/agents')).body.items.filter((a: { id: string; status: string }) => a.id in AGENTS && a.status === 'online').length === 2);
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

const get = (path: string, token = admin) => http(stack.httpUrl, 'GET', path, { token });
const post = (path: string, body: unknown, token = admin) => http(stack.httpUrl, 'POST', path, { token, body });
const put = (path: string, body: unknown, token = admin) => http(stack.httpUrl, 'PUT', path, { token, body });
const del = (path: string, token = admin) => http(stack.httpUrl, 'DELETE', path, { token });
const run = (conversationId: string, macroId: string, token: string, body: unknown = {}) => post(`/v1/conversations/${conversationId}/macros/${macroId}/run`, body, token);
const history = async (id: string) => (await get(`/v1/conversations/${id}/messages?limit=100`)).body.items as { id: string; text: string; private: boolean; direction: string }[];
const count = async (id: string, text: string) => (await history(id)).filter((m) => m.text === text).length;
const macroNames = async () => ((await get('/v1/macros')).body.items as { name: string }[]).map((m) => m.name).sort();

async function createMacro(name: string, actions: unknown[]): Promise<string> {
  const res = await post('/v1/macros', { name, actions });
  expect(res.status, res.text).toBe(201);
  return res.body.id as string;
}

/**
 * Sets the end the unfinished run of a conversation fixed for its snooze to `until`: a retry
 * sent after an end in the past finds the record as this leaves it.
 */
async function unfinishedRunsSnoozeUntil(conversationId: string, until: string): Promise<void> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :run)',
      ExpressionAttributeValues: { ':pk': keys.messagePartition(conversationId), ':run': 'MACRORUN#' },
      ConsistentRead: true,
    }),
  );
  const unfinished = (out.Items ?? []).filter((run) => run.done < run.actions.length);
  expect(unfinished).toHaveLength(1);
  for (const run of unfinished) {
    const actions = run.actions.map((a: { type: string }) => (a.type === 'snooze' ? { ...a, until } : a));
    await ddb().send(new PutCommand({ TableName: config.tableName, Item: { ...run, actions } }));
  }
}

/** A web visitor's conversation, handed by routing to one of the agents. */
async function visitorConversation(name: string, text: string): Promise<{ id: string; holder: AgentId; ws: WsClient }> {
  const session = await visitorSession(stack.httpUrl, { name });
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  const clientMessageId = crypto.randomUUID();
  ws.send({ action: 'sendMessage', text, clientMessageId });
  const ack = await ws.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
  const holder = await eventually(async () => (await get(`/v1/conversations/${ack.conversationId}`)).body.assigneeId as AgentId | null);
  return { id: ack.conversationId, holder, ws };
}

describe('macro library', () => {
  it('lets admins create, edit and delete macros, agents list and read them, and refuses bad ones changing nothing', async () => {
    // Prepare
    const body = { name: 'Escalate', actions: [{ type: 'addLabels', labels: ['vip'] }, { type: 'assign', agentId: 'me' }] };

    // Act: an agent may not write, an admin may
    const byAgent = await post('/v1/macros', body, tokens['mc-ana']);
    const created = await post('/v1/macros', body);
    const id = created.body.id as string;

    // Assess
    expect(byAgent.status).toBe(403);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Escalate', actions: body.actions });
    const listed = await get('/v1/macros', tokens['mc-ana']);
    expect(listed.status).toBe(200);
    expect(listed.body.items.filter((m: { name: string }) => m.name === 'Escalate')).toHaveLength(1);
    expect((await get(`/v1/macros/${id}`, tokens['mc-ben'])).body).toMatchObject({ id, name: 'Escalate' });

    // Act: bad macros, each refused with its code
    const refusals: [unknown, number, string][] = [
      [{ name: 'escalate', actions: [{ type: 'setStatus', status: 'open' }] }, 409, 'macro_name_taken'],
      [{ name: 'Other', actions: [{ type: 'addLabels', labels: ['nope'] }] }, 400, 'unknown_label'],
      [{ name: 'Other', actions: [{ type: 'removeLabels', labels: ['nope'] }] }, 400, 'unknown_label'],
      [{ name: 'Other', actions: [{ type: 'assign', agentId: 'nobody-here' }] }, 400, 'unknown_agent'],
      [{ name: 'Other', actions: [{ type: 'assign', agentId: 'unassigned' }] }, 400, 'invalid_request'],
      [{ name: 'Other', actions: [{ type: 'transfer', team: 'no-such-team' }] }, 400, 'unknown_team'],
      [{ name: 'Other', actions: [] }, 400, 'invalid_request'],
      [{ name: 'Other', actions: Array.from({ length: 11 }, () => ({ type: 'setStatus', status: 'open' })) }, 400, 'invalid_request'],
      [{ name: 'Other', actions: [{ type: 'setStatus', status: 'snoozed' }] }, 400, 'invalid_request'],
      [{ name: 'Other', actions: [{ type: 'launchRocket' }] }, 400, 'invalid_request'],
      [{ name: 'Other', actions: [{ type: 'sendMessage', text: '   ' }] }, 400, 'invalid_request'],
      [{ name: 'Other', actions: [{ type: 'addNote', text: 'x', extra: 1 }] }, 400, 'invalid_request'],
      [{ name: ' ', actions: [{ type: 'setStatus', status: 'open' }] }, 400, 'invalid_request'],
      [{ name: 'x'.repeat(101), actions: [{ type: 'setStatus', status: 'open' }] }, 400, 'invalid_request'],
    ];
    const before = await macroNames();
    for (const [bad, status, code] of refusals) {
      const res = await post('/v1/macros', bad);
      expect([res.status, res.body.error?.code], JSON.stringify(bad)).toEqual([status, code]);
    }
    const badEdit = await put(`/v1/macros/${id}`, { name: 'Escalate', actions: [{ type: 'addLabels', labels: ['nope'] }] });

    // Assess: nothing stored or changed
    expect(await macroNames()).toEqual(before);
    expect([badEdit.status, badEdit.body.error.code]).toEqual([400, 'unknown_label']);
    expect((await get(`/v1/macros/${id}`)).body.actions).toEqual(body.actions);

    // Act: edits
    const editByAgent = await put(`/v1/macros/${id}`, { name: 'Escalate', actions: [] }, tokens['mc-ana']);
    const edited = await put(`/v1/macros/${id}`, { name: 'Escalate to billing', actions: [{ type: 'transfer', team: 'billing', note: 'Yours' }] });
    const other = await createMacro('Close', [{ type: 'setStatus', status: 'resolved' }]);
    const renamedOnto = await put(`/v1/macros/${other}`, { name: 'ESCALATE TO BILLING', actions: [{ type: 'setStatus', status: 'resolved' }] });

    // Assess
    expect(editByAgent.status).toBe(403);
    expect(edited.status).toBe(200);
    expect((await get(`/v1/macros/${id}`)).body).toMatchObject({ name: 'Escalate to billing', actions: [{ type: 'transfer', team: 'billing', note: 'Yours' }] });
    expect([renamedOnto.status, renamedOnto.body.error.code]).toEqual([409, 'macro_name_taken']);
    expect((await get(`/v1/macros/${other}`)).body.name).toBe('Close');
    // The old name is free once renamed
    const reuse = await createMacro('Escalate', [{ type: 'setStatus', status: 'pending' }]);

    // Act: deletes
    const deleteByAgent = await del(`/v1/macros/${id}`, tokens['mc-ana']);
    const deleted = await del(`/v1/macros/${id}`);

    // Assess
    expect(deleteByAgent.status).toBe(403);
    expect(deleted.status).toBe(204);
    expect((await get(`/v1/macros/${id}`)).status).toBe(404);
    expect((await del(`/v1/macros/${id}`)).status).toBe(404);
    expect((await put(`/v1/macros/${id}`, { name: 'Gone', actions: [{ type: 'setStatus', status: 'open' }] })).status).toBe(404);
    expect(await createMacro('Escalate to billing', [{ type: 'setStatus', status: 'open' }])).toBeTruthy();
    await del(`/v1/macros/${reuse}`);
    await del(`/v1/macros/${other}`);
  });

  it('keeps a snooze of 1 to 527040 whole minutes as written, and refuses any other storing nothing', async () => {
    // Act: the bounds, one minute and a leap year of them
    const shortest = await post('/v1/macros', { name: 'Snooze a minute', actions: [{ type: 'snooze', minutes: 1 }] });
    const longest = await post('/v1/macros', { name: 'Snooze a year', actions: [{ type: 'addLabels', labels: ['vip'] }, { type: 'snooze', minutes: 527040 }] });

    // Assess: stored as written (the end is fixed by each run, not by the macro)
    expect(shortest.status, shortest.text).toBe(201);
    expect(longest.status, longest.text).toBe(201);
    expect((await get(`/v1/macros/${longest.body.id}`)).body.actions).toEqual([{ type: 'addLabels', labels: ['vip'] }, { type: 'snooze', minutes: 527040 }]);

    // Act: anything else, on create and on replace
    const bad = [{}, { minutes: 0 }, { minutes: -5 }, { minutes: 1.5 }, { minutes: 527041 }, { minutes: '60' }, { minutes: null }, { minutes: 60, until: '2030-01-01T00:00:00Z' }];
    const before = await macroNames();
    const refused = [];
    for (const fields of bad) {
      const actions = [{ type: 'addLabels', labels: ['vip'] }, { type: 'snooze', ...fields }];
      refused.push(await post('/v1/macros', { name: 'Bad snooze', actions }), await put(`/v1/macros/${shortest.body.id}`, { name: 'Bad snooze', actions }));
    }

    // Assess: each a 400 invalid_request, nothing stored or changed
    for (const res of refused) expect([res.status, res.body.error?.code], res.text).toEqual([400, 'invalid_request']);
    expect(await macroNames()).toEqual(before);
    expect((await get(`/v1/macros/${shortest.body.id}`)).body).toMatchObject({ name: 'Snooze a minute', actions: [{ type: 'snooze', minutes: 1 }] });
    await del(`/v1/macros/${shortest.body.id}`);
    await del(`/v1/macros/${longest.body.id}`);
  });
});

describe('running a macro', () => {
  it('labels, replies, notes, transfers and resolves as the agent would, each seen by the team, the reply alone by the customer', async () => {
    // Prepare
    const macro = await createMacro('Billing hand-off', [
      { type: 'addLabels', labels: ['vip', 'refund'] },
      { type: 'sendMessage', text: 'Hi {{contact.name|there}}, {{agent.name}} here: billing takes it from now.' },
      { type: 'addNote', text: 'Customer asked for a refund' },
      { type: 'transfer', team: 'billing', note: 'Refund for a VIP' },
      { type: 'setStatus', status: 'resolved' },
    ]);
    const { id, holder, ws } = await visitorConversation('Vera', 'I want my money back');
    const seen = (f: Frame) => f.conversationId === id || f.conversation?.id === id;
    const framesBefore = adminSocket.frames.length;

    // Act
    const res = await run(id, macro, tokens[holder]!);

    // Assess: the answer
    expect(res.status, res.text).toBe(200);
    expect(res.body.conversation).toMatchObject({ id, status: 'resolved', labels: ['refund', 'vip'], team: 'billing' });
    expect(res.body.messageIds).toHaveLength(3);
    const reply = `Hi Vera, ${AGENTS[holder]} here: billing takes it from now.`;
    const stored = await history(id);
    expect(res.body.messageIds).toEqual(
      ['reply', 'Customer asked for a refund', 'Refund for a VIP'].map((text) => stored.find((m) => (text === 'reply' ? m.text === reply : m.text === text))?.id),
    );
    expect(stored.filter((m) => m.private).map((m) => m.text)).toEqual(['Customer asked for a refund', 'Refund for a VIP']);
    // The customer gets the reply, written as the agent
    const got = await ws.waitFor((f) => f.type === 'message.created' && f.message.text === reply, 10_000, 'reply at the visitor');
    expect(got.message.sender).toMatchObject({ type: 'agent', id: holder });
    // The team sees each step as frames
    const team = () => adminSocket.frames.slice(framesBefore).filter(seen);
    await adminSocket.waitFor((f) => seen(f) && f.type === 'conversation.updated' && f.conversation.status === 'resolved', 10_000, 'resolved frame');
    expect(team().some((f) => f.type === 'conversation.updated' && JSON.stringify(f.conversation.labels) === '["refund","vip"]')).toBe(true);
    expect(team().some((f) => f.type === 'conversation.updated' && f.conversation.team === 'billing')).toBe(true);
    for (const text of [reply, 'Customer asked for a refund', 'Refund for a VIP']) {
      expect(team().filter((f) => f.type === 'message.created' && f.message.text === text).length, text).toBeGreaterThanOrEqual(1);
    }
    // Reports credit the resolution as /resolve does
    expect((await get(`/v1/conversations/${id}`)).body.resolvedAt).toBeTruthy();
    // The visitor never gets the notes
    await ws.waitFor((f) => f.type === 'conversation.updated' && f.conversation.status === 'resolved', 10_000, 'resolved at the visitor');
    expect(ws.frames.filter((f) => f.type === 'message.created' && f.message.private !== false && f.message.direction === 'outbound')).toEqual([]);
    expect(ws.frames.some((f) => JSON.stringify(f).includes('refund for a vip') || JSON.stringify(f).includes('Customer asked'))).toBe(false);

    // Act: the same run again without a clientRequestId (a retry after a lost answer)
    const again = await run(id, macro, tokens[holder]!);

    // Assess: answered the same, nothing written again
    expect(again.status).toBe(200);
    expect(again.body.messageIds).toEqual(res.body.messageIds);
    expect(await count(id, reply)).toBe(1);
    expect(await count(id, 'Refund for a VIP')).toBe(1);
  });

  it('refuses an unknown macro or conversation, and a bad body, changing nothing', async () => {
    // Prepare
    const macro = await createMacro('Pending', [{ type: 'setStatus', status: 'pending' }]);
    const { id, holder } = await visitorConversation('Nora', 'Hello?');

    // Act
    const noMacro = await run(id, 'no-such-macro', tokens[holder]!);
    const noConversation = await run('no-such-conversation', macro, tokens[holder]!);
    const badBody = await run(id, macro, tokens[holder]!, { clientRequestId: '', extra: true });

    // Assess
    expect([noMacro.status, noMacro.body.error.code]).toEqual([404, 'not_found']);
    expect([noConversation.status, noConversation.body.error.code]).toEqual([404, 'not_found']);
    expect([badBody.status, badBody.body.error.code]).toEqual([400, 'invalid_request']);
    expect((await get(`/v1/conversations/${id}`)).body.status).toBe('open');
  });

  it('stops at a failing action with a 4xx naming it, keeps what came before, and completes when the same run is sent again once fixed', async () => {
    // Prepare: a label the macro adds is removed from the settings after it was saved
    const macro = await createMacro('Legacy flow', [
      { type: 'addNote', text: 'Legacy customer, handle with care' },
      { type: 'addLabels', labels: ['legacy'] },
      { type: 'setStatus', status: 'pending' },
    ]);
    expect((await put('/v1/settings', { labels: [{ name: 'vip' }, { name: 'refund' }] })).status).toBe(200);
    const { id, holder } = await visitorConversation('Otto', 'Still on the old plan');
    const clientRequestId = crypto.randomUUID();

    // Act
    const failed = await run(id, macro, tokens[holder]!, { clientRequestId });

    // Assess: stopped at action 1, the note kept, nothing after it applied
    expect(failed.status).toBe(400);
    expect(failed.body.error).toMatchObject({ code: 'macro_action_failed', action: { index: 1, type: 'addLabels' }, cause: { code: 'unknown_label' } });
    expect(failed.body.error.message).toMatch(/action 1 \(addLabels\)/);
    const after = (await get(`/v1/conversations/${id}`)).body;
    expect([after.status, after.labels]).toEqual(['open', []]);
    expect(await count(id, 'Legacy customer, handle with care')).toBe(1);

    // Act: the admin defines the label again and the agent retries the same run
    expect((await put('/v1/settings', { labels: [{ name: 'vip' }, { name: 'refund' }, { name: 'legacy' }] })).status).toBe(200);
    const retried = await run(id, macro, tokens[holder]!, { clientRequestId });

    // Assess: completed, the note still once
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body.conversation).toMatchObject({ status: 'pending', labels: ['legacy'] });
    expect(await count(id, 'Legacy customer, handle with care')).toBe(1);
    expect(retried.body.messageIds).toHaveLength(1);
  });

  it('stops at a reply outside the WhatsApp 24-hour window, after the earlier actions, and sends nothing to the customer', async () => {
    // Prepare: a WhatsApp customer who last wrote 25 hours ago
    const macro = await createMacro('Follow up', [
      { type: 'addLabels', labels: ['vip'] },
      { type: 'addNote', text: 'Following up on the order' },
      { type: 'sendMessage', text: 'Any news on your order?' },
      { type: 'setStatus', status: 'pending' },
    ]);
    const id = await whatsappCustomerWrites(stack, phoneHandles().whatsapp, 'Where is my order?');
    const holder = await eventually(async () => (await get(`/v1/conversations/${id}`)).body.assigneeId as AgentId | null);
    await updateConversation(id, (c) => ({ ...c, lastInboundAt: new Date(Date.now() - 25 * 3_600_000).toISOString(), windowFrom: undefined }));

    // Act
    const failed = await run(id, macro, tokens[holder]!);

    // Assess: a 4xx naming the reply, the label and note kept, the status untouched, nothing sent
    expect(failed.status).toBe(422);
    expect(failed.body.error).toMatchObject({ code: 'macro_action_failed', action: { index: 2, type: 'sendMessage' }, cause: { code: 'template_required' } });
    expect(failed.body.error.messageIds).toHaveLength(1);
    expect((await get(`/v1/conversations/${id}`)).body).toMatchObject({ labels: ['vip'], status: 'open' });
    expect(await count(id, 'Following up on the order')).toBe(1);
    expect(await count(id, 'Any news on your order?')).toBe(0);
    const outbox = (await http(stack.httpUrl, 'GET', '/local/outbox?channel=whatsapp')).body.items as { body: unknown }[];
    expect(outbox.filter((item) => JSON.stringify(item.body).includes('Any news') || JSON.stringify(item.body).includes('Following up'))).toEqual([]);
  });

  it("sends a reply once when the run is sent again after a crash and the customer's name was edited meanwhile", async () => {
    // Prepare: a reply with the customer's name; the first attempt dies right after storing it
    const macro = await createMacro('Greet by name', [{ type: 'sendMessage', text: 'Hi {{contact.name|there}}, we are on it' }]);
    const { id, holder } = await visitorConversation('Rosa', 'My order is late');
    const clientRequestId = crypto.randomUUID();
    crash.afterText = 'Hi Rosa, we are on it';
    expect((await run(id, macro, tokens[holder]!, { clientRequestId })).status).toBeGreaterThanOrEqual(500);

    // Act: an agent corrects the name before the client sends the run again
    const contactId = (await get(`/v1/conversations/${id}`)).body.contact.id as string;
    expect((await http(stack.httpUrl, 'PATCH', `/v1/contacts/${contactId}`, { token: admin, body: { name: 'Rosalind' } })).status).toBe(200);
    await eventually(async () => (await get(`/v1/conversations/${id}`)).body.contact.name === 'Rosalind');
    const retried = await run(id, macro, tokens[holder]!, { clientRequestId });

    // Assess: the reply the first attempt stored, once; not a second one with the new name
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body.messageIds).toHaveLength(1);
    expect(await count(id, 'Hi Rosa, we are on it')).toBe(1);
    expect(await count(id, 'Hi Rosalind, we are on it')).toBe(0);
  });

  it("fills a transfer note's placeholders as a note's, for the conversation and the agent running it", async () => {
    // Prepare
    const macro = await createMacro('Hand to billing, signed', [{ type: 'transfer', team: 'billing', note: 'From {{agent.name}}: {{contact.name|the customer}} wants a refund' }]);
    const { id, holder } = await visitorConversation('Nadia', 'Refund please');

    // Act
    const res = await run(id, macro, tokens[holder]!);

    // Assess: the note as the team reads it, filled; not the placeholders as written
    expect(res.status, res.text).toBe(200);
    expect(res.body.conversation).toMatchObject({ team: 'billing' });
    const notes = (await history(id)).filter((m) => m.private).map((m) => m.text);
    expect(notes).toEqual([`From ${AGENTS[holder]}: Nadia wants a refund`]);
  });

  it('stops at a reply or note whose placeholders fill to nothing, sending no empty message, and refuses texts that show nothing', async () => {
    // Prepare: the visitor gave no email, so the reply fills to an empty text
    const macro = await createMacro('Email only', [
      { type: 'addLabels', labels: ['legacy'] },
      { type: 'sendMessage', text: ' {{contact.email}} ' },
      { type: 'setStatus', status: 'resolved' },
    ]);
    const { id, holder } = await visitorConversation('Omar', 'Hello?');
    const before = (await history(id)).length;

    // Act
    const res = await run(id, macro, tokens[holder]!);

    // Assess: a 4xx naming the reply, the label kept, no message stored or sent, the status untouched
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'macro_action_failed', action: { index: 1, type: 'sendMessage' }, cause: { code: 'invalid_request' } });
    expect((await history(id)).length).toBe(before);
    expect((await get(`/v1/conversations/${id}`)).body).toMatchObject({ labels: ['legacy'], status: 'open' });

    // Act: texts and names of invisible characters only, saved
    const names = await macroNames();
    const refused = await Promise.all([
      post('/v1/macros', { name: 'Blank reply', actions: [{ type: 'sendMessage', text: '\u200b' }] }),
      post('/v1/macros', { name: 'Blank note', actions: [{ type: 'transfer', team: 'billing', note: '\u200b\u200d' }] }),
      post('/v1/macros', { name: '\u200b', actions: [{ type: 'setStatus', status: 'open' }] }),
    ]);

    // Assess: each a 400, nothing stored
    expect(refused.map((r) => [r.status, r.body.error?.code])).toEqual([
      [400, 'invalid_request'],
      [400, 'invalid_request'],
      [400, 'invalid_request'],
    ]);
    expect(await macroNames()).toEqual(names);
  });

  it('snoozes until the run start plus the minutes, with the wake armed and the team told, as a snooze by hand', async () => {
    // Prepare
    const macro = await createMacro('Snooze 90', [{ type: 'snooze', minutes: 90 }]);
    const { id, holder } = await visitorConversation('Sam', 'Call me back later');

    // Act
    const from = Date.now();
    const res = await run(id, macro, tokens[holder]!);
    const to = Date.now();

    // Assess: snoozed until 90 minutes after the run started, within the run's window
    expect(res.status, res.text).toBe(200);
    expect(res.body.conversation).toMatchObject({ id, status: 'snoozed', assigneeId: holder });
    const until = Date.parse(res.body.conversation.snoozedUntil);
    expect(until).toBeGreaterThanOrEqual(from + 90 * 60_000);
    expect(until).toBeLessThanOrEqual(to + 90 * 60_000);
    expect((await get(`/v1/conversations/${id}`)).body).toMatchObject({ status: 'snoozed', snoozedUntil: res.body.conversation.snoozedUntil });
    // The wake-up armed as /status arms it: the snooze's own schedule, due at its end (to the second)
    const schedule = stack.aws.scheduler.list().find((s) => s.name === snoozeScheduleName(id));
    expect(JSON.parse(schedule!.target.input!)).toEqual({ kind: 'snoozeWake', conversationId: id, dueAt: new Date(Math.ceil(until / 1000) * 1000).toISOString() });
    // The team sees it
    await adminSocket.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === id && f.conversation.status === 'snoozed', 10_000, 'snoozed frame');
  });

  it('applies the actions around a snooze: labels before it, a note after it', async () => {
    // Prepare
    const macro = await createMacro('Label and snooze', [
      { type: 'addLabels', labels: ['vip'] },
      { type: 'snooze', minutes: 30 },
      { type: 'addNote', text: 'Snoozed for half an hour' },
    ]);
    const { id, holder } = await visitorConversation('Tia', 'Back in a bit');

    // Act
    const from = Date.now();
    const res = await run(id, macro, tokens[holder]!);
    const to = Date.now();

    // Assess: all three applied
    expect(res.status, res.text).toBe(200);
    expect(res.body.conversation).toMatchObject({ status: 'snoozed', labels: ['vip'] });
    const until = Date.parse(res.body.conversation.snoozedUntil);
    expect(until).toBeGreaterThanOrEqual(from + 30 * 60_000);
    expect(until).toBeLessThanOrEqual(to + 30 * 60_000);
    expect(res.body.messageIds).toHaveLength(1);
    expect(await count(id, 'Snoozed for half an hour')).toBe(1);
  });

  it('snoozes a run sent again after a crash to the instant fixed when it started, and refuses once that instant passed', async () => {
    // Prepare: the first attempt dies after the note, before the snooze
    const macro = await createMacro('Note and snooze', [
      { type: 'addNote', text: 'Crash before the snooze' },
      { type: 'snooze', minutes: 60 },
    ]);
    const { id, holder } = await visitorConversation('Uma', 'Ping me tomorrow');
    const clientRequestId = crypto.randomUUID();
    crash.afterText = 'Crash before the snooze';
    const from = Date.now();
    const died = await run(id, macro, tokens[holder]!, { clientRequestId });
    const to = Date.now();
    expect(died.status).toBeGreaterThanOrEqual(500);
    expect((await get(`/v1/conversations/${id}`)).body.status).toBe('open');
    // Later than the first attempt by some milliseconds at least, so a new start would give another end
    await eventually(async () => Date.now() > to + 20);

    // Act
    const retryFrom = Date.now();
    const retried = await run(id, macro, tokens[holder]!, { clientRequestId });

    // Assess: the end the first attempt fixed, not one counted from the retry
    expect(retried.status, retried.text).toBe(200);
    const until = Date.parse(retried.body.conversation.snoozedUntil);
    expect(retried.body.conversation.status).toBe('snoozed');
    expect(until).toBeGreaterThanOrEqual(from + 60 * 60_000);
    expect(until).toBeLessThanOrEqual(to + 60 * 60_000);
    expect(until).toBeLessThan(retryFrom + 60 * 60_000);
    expect(await count(id, 'Crash before the snooze')).toBe(1);

    // Prepare: another run dies alike, and is sent again only after the end it fixed
    const second = crypto.randomUUID();
    const reopened = await post(`/v1/conversations/${id}/status`, { status: 'open' }, tokens[holder]!);
    expect(reopened.status, reopened.text).toBe(200);
    crash.afterText = 'Crash before the snooze';
    expect((await run(id, macro, tokens[holder]!, { clientRequestId: second })).status).toBeGreaterThanOrEqual(500);
    await unfinishedRunsSnoozeUntil(id, new Date(Date.now() - 60_000).toISOString());

    // Act
    const late = await run(id, macro, tokens[holder]!, { clientRequestId: second });

    // Assess: the snooze refused as a snooze into the past is, the note before it kept once
    expect(late.status).toBe(400);
    expect(late.body.error).toMatchObject({ code: 'macro_action_failed', action: { index: 1, type: 'snooze' }, cause: { code: 'invalid_request' } });
    expect((await get(`/v1/conversations/${id}`)).body.status).toBe('open');
    expect(await count(id, 'Crash before the snooze')).toBe(2);
  });

  it('sends nothing twice and completes when the same run is sent again after a crash part-way', async () => {
    // Prepare: the transfer is undone by no later step on a retry: the run goes on from where it died
    const macro = await createMacro('Hand over and close', [
      { type: 'sendMessage', text: 'Passing you to billing' },
      { type: 'transfer', team: 'billing', note: 'Over to billing' },
      { type: 'setStatus', status: 'pending' },
      { type: 'addNote', text: 'Crash right after me' },
      { type: 'setStatus', status: 'resolved' },
    ]);
    const { id, holder, ws } = await visitorConversation('Quinn', 'Billing question');
    const clientRequestId = crypto.randomUUID();
    crash.afterText = 'Crash right after me';

    // Act: the first attempt dies right after storing the note; the client sends it again
    const died = await run(id, macro, tokens[holder]!, { clientRequestId });
    const retried = await run(id, macro, tokens[holder]!, { clientRequestId });

    // Assess
    expect(died.status).toBeGreaterThanOrEqual(500);
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body.conversation).toMatchObject({ status: 'resolved', team: 'billing' });
    expect(retried.body.messageIds).toHaveLength(3);
    expect(await count(id, 'Passing you to billing')).toBe(1);
    expect(await count(id, 'Over to billing')).toBe(1);
    expect(await count(id, 'Crash right after me')).toBe(1);
    await ws.waitFor((f) => f.type === 'conversation.updated' && f.conversation.status === 'resolved', 10_000, 'resolved at the visitor');
    expect(ws.frames.filter((f) => f.type === 'message.created' && f.message.text === 'Passing you to billing')).toHaveLength(1);
  });
});
