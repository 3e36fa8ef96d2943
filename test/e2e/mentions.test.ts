/**
 * @mentions in private notes, end to end on the local stack: Ana holds every conversation, Ben and
 * Cy are colleagues with no slots. A note of Ana's mentioning Ben makes him a participant (his
 * focused console follows the conversation from then on), reaches every connection of his with a
 * `mention` frame and nobody else's, never reaches the visitor, is stored and announced once
 * however often it is sent, lists the conversation in his Mentions view, and goes with the
 * customer's erasure. Bad mentions are 400s that store nothing.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient, type Frame } from '../support/clients';
import { ddb } from '../../src/aws/clients';
import { config } from '../../src/config';
import { getErasure } from '../../src/store/erasure';

/**
 * The next crash: around the announcement of a note with this text (before: the note and its
 * conversation write landed, no mention was recorded; after: recorded and told, the answer lost).
 */
const crash = vi.hoisted(() => ({ armed: undefined as { text: string; when: 'before' | 'after' } | undefined }));

vi.mock('../../src/domain/mentions', async (orig) => {
  const real = await orig<typeof import('../../src/domain/mentions')>();
  return {
    ...real,
    announceMentions: async (...args: Parameters<typeof real.announceMentions>) => {
      const armed = crash.armed?.text === args[0].text ? crash.armed : undefined;
      if (armed) crash.armed = undefined;
      if (armed?.when === 'before') throw new Error('simulated crash before the mentions');
      await real.announceMentions(...args);
      if (armed?.when === 'after') throw new Error('simulated crash after the mentions');
    },
  };
});

/**
 * Two attempts of one note at once, in the order that made two messages of it: the first attempt
 * to store it waits until the other has looked for it (and found nothing), the other's store waits
 * for the first's to land.
 */
const race = vi.hoisted(() => ({
  armed: undefined as
    | {
        text: string;
        conversationId: string;
        puts: number;
        looked: () => void;
        lookedFor: Promise<void>;
        landed: () => void;
        firstLanded: Promise<void>;
        /** The first attempt's conversation update also waits, for the other's to land first. */
        secondMovesConversation?: { applies: number; moved: () => void; secondMoved: Promise<void> };
      }
    | undefined,
}));

vi.mock('../../src/store/conversations', async (orig) => {
  const real = await orig<typeof import('../../src/store/conversations')>();
  return {
    ...real,
    applyMessageToOpenConversation: async (...args: Parameters<typeof real.applyMessageToOpenConversation>) => {
      const order = race.armed?.conversationId === args[0] ? race.armed.secondMovesConversation : undefined;
      if (!order) return real.applyMessageToOpenConversation(...args);
      order.applies += 1;
      if (order.applies === 1) {
        await order.secondMoved;
        return real.applyMessageToOpenConversation(...args);
      }
      try {
        return await real.applyMessageToOpenConversation(...args);
      } finally {
        order.moved();
      }
    },
  };
});

vi.mock('../../src/store/messages', async (orig) => {
  const real = await orig<typeof import('../../src/store/messages')>();
  return {
    ...real,
    getMessage: async (...args: Parameters<typeof real.getMessage>) => {
      const found = await real.getMessage(...args);
      // Before the first attempt's store or while it waits (a retry looks before its checks).
      if (race.armed?.conversationId === args[0] && race.armed.puts <= 1) race.armed.looked();
      return found;
    },
    putMessage: async (...args: Parameters<typeof real.putMessage>) => {
      const armed = race.armed?.text === args[0].text ? race.armed : undefined;
      if (!armed) return real.putMessage(...args);
      armed.puts += 1;
      if (armed.puts > 1) {
        await armed.firstLanded;
        return real.putMessage(...args);
      }
      await armed.lookedFor;
      try {
        return await real.putMessage(...args);
      } finally {
        armed.landed();
      }
    },
  };
});

const ANA = 'mn-ana';
const BEN = 'mn-ben';
const CY = 'mn-cy';

let stack: LocalStack;
let admin: string;
const tokens: Record<string, string> = {};
const sockets: WsClient[] = [];
/** Ana's console; Ben's two (a focused one and a default one); Cy's. */
let ana: WsClient;
let benFocused: WsClient;
let benDefault: WsClient;
let cy: WsClient;

const connect = async (token: string, query = '') => {
  const socket = await WsClient.connect(`${stack.wsUrl}${query}`, token);
  sockets.push(socket);
  return socket;
};

beforeAll(async () => {
  stack = await startTestStack();
  admin = await agentToken(stack.httpUrl, 'mn-admin', 'admin', 'Ada');
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { autoresponder: { enabled: false } } })).status).toBe(200);
  // Ana takes every conversation: the others have no slots.
  for (const id of ['mn-admin', BEN, CY]) {
    expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${id}`, { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } })).status).toBe(200);
  }
  expect((await http(stack.httpUrl, 'PUT', `/v1/agents/${ANA}`, { token: admin, body: { liveCapacity: 20 } })).status).toBe(200);
  tokens[ANA] = await agentToken(stack.httpUrl, ANA, 'agent', 'Ana');
  tokens[BEN] = await agentToken(stack.httpUrl, BEN, 'agent', 'Ben');
  tokens[CY] = await agentToken(stack.httpUrl, CY, 'agent', 'Cy');
  ana = await connect(tokens[ANA]!);
  benFocused = await connect(tokens[BEN]!, '?feed=focused');
  benDefault = await connect(tokens[BEN]!);
  cy = await connect(tokens[CY]!);
  await eventually(async () => (await get('/v1/agents')).body.items.filter((a: { status: string }) => a.status === 'online').length === 3);
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

const get = (path: string, token = admin) => http(stack.httpUrl, 'GET', path, { token });
const post = (path: string, body: unknown, token: string) => http(stack.httpUrl, 'POST', path, { token, body });
const note = (id: string, body: Record<string, unknown>, token = tokens[ANA]!) => post(`/v1/conversations/${id}/messages`, { private: true, ...body }, token);
const history = async (id: string) => (await get(`/v1/conversations/${id}/messages?limit=100`)).body.items as { id: string; text: string; private: boolean; mentions?: string[]; createdAt: string }[];
const mentionsOf = (socket: WsClient, messageId: string) => socket.frames.filter((f) => f.type === 'mention' && f.messageId === messageId);

/** A web visitor's conversation, which routing hands to Ana; the visitor's socket with it. */
async function visitorConversation(name: string, text: string): Promise<{ id: string; visitor: WsClient; token: string }> {
  const session = await visitorSession(stack.httpUrl, { name });
  const visitor = await connect(session.token);
  const clientMessageId = crypto.randomUUID();
  visitor.send({ action: 'sendMessage', text, clientMessageId });
  const ack = await visitor.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
  const id = ack.conversationId as string;
  expect(await eventually(async () => (await get(`/v1/conversations/${id}`)).body.assigneeId)).toBe(ANA);
  return { id, visitor, token: session.token };
}

/** The visitor writes; the message as Ana's console got it. */
async function visitorWrites(visitor: WsClient, text: string): Promise<Frame> {
  const clientMessageId = crypto.randomUUID();
  visitor.send({ action: 'sendMessage', text, clientMessageId });
  const ack = await visitor.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
  return ana.waitFor((f) => f.type === 'message.created' && f.message.id === ack.messageId, 10_000, text);
}

describe('mentions in private notes', () => {
  it("refuses bad mentions with a 400 (a visitor's with forbidden) and stores nothing, over HTTP and the WebSocket", async () => {
    // Prepare
    const { id, visitor } = await visitorConversation('Vic', 'Where is my refund?');
    const before = await get(`/v1/conversations/${id}`);
    const clientMessageId = crypto.randomUUID();

    // Act
    const onReply = await post(`/v1/conversations/${id}/messages`, { text: 'Ben, see this', mentions: [BEN], clientMessageId }, tokens[ANA]!);
    const unknown = await note(id, { text: 'Ben, see this', mentions: [BEN, 'mn-nobody'], clientMessageId });
    const tooMany = await note(id, { text: 'Everyone!', mentions: Array.from({ length: 21 }, (_, i) => `mn-x${i}`) });
    const notAList = await note(id, { text: 'Ben', mentions: BEN });
    ana.send({ action: 'sendMessage', conversationId: id, text: 'Over the socket', clientMessageId: 'ws-bad', private: true, mentions: ['mn-nobody'] });
    const wsError = await ana.waitFor((f) => f.type === 'error' && f.clientMessageId === 'ws-bad');
    visitor.send({ action: 'sendMessage', text: 'Hey @Ben', clientMessageId: 'visitor-bad', mentions: [BEN] });
    const visitorError = await visitor.waitFor((f) => f.type === 'error' && f.clientMessageId === 'visitor-bad');

    // Assess: each named, nothing stored or changed, nobody told
    expect([onReply.status, onReply.body.error.code]).toEqual([400, 'invalid_request']);
    expect(onReply.body.error.message).toContain('private');
    expect([unknown.status, unknown.body.error.code]).toEqual([400, 'unknown_agent']);
    expect(unknown.body.error.message).toContain('mn-nobody');
    expect([tooMany.status, tooMany.body.error.code]).toEqual([400, 'invalid_request']);
    expect(tooMany.body.error.message).toContain('20');
    expect([notAList.status, notAList.body.error.code]).toEqual([400, 'invalid_request']);
    expect(wsError.code).toBe('unknown_agent');
    expect(visitorError.code).toBe('forbidden');
    expect((await history(id)).map((m) => m.text)).toEqual(['Where is my refund?']);
    const after = await get(`/v1/conversations/${id}`);
    expect(after.body).toEqual(before.body);
    expect(after.body.participants).toBeUndefined();
    expect([...benDefault.frames, ...cy.frames].filter((f) => f.type === 'mention' && f.conversationId === id)).toEqual([]);

    // The same clientMessageId with the mistake fixed is a note, stored once.
    const fixed = await note(id, { text: 'Ben, see this', mentions: [BEN], clientMessageId });
    expect(fixed.status).toBe(202);
    expect(fixed.body.message.mentions).toEqual([BEN]);
    expect((await history(id)).filter((m) => m.text === 'Ben, see this')).toHaveLength(1);
  });

  it("makes the mentioned agent a participant and tells every connection of theirs, nobody else's, never the visitor", async () => {
    // Prepare: Ben's focused console does not follow Ana's conversation
    const { id, visitor, token } = await visitorConversation('Wanda', 'My card was charged twice');
    const unseen = await visitorWrites(visitor, 'Hello? Anyone?');
    // Cy's default console got it, so Ben's focused one had it too if it followed the conversation.
    await cy.waitFor((f) => f.type === 'message.created' && f.message.id === unseen.message.id);
    expect(benFocused.frames.some((f) => f.type === 'message.created' && f.message.id === unseen.message.id)).toBe(false);

    // Act: Ana's note mentions Ben (twice over, and herself)
    const sent = await note(id, { text: '@Ben can you check the double charge?', mentions: [BEN, BEN, ANA] });

    // Assess: stored with its mentions, Ben a participant
    expect(sent.status).toBe(202);
    const messageId = sent.body.message.id as string;
    expect(sent.body.message.mentions).toEqual([BEN, ANA]);
    expect((await history(id)).find((m) => m.id === messageId)?.mentions).toEqual([BEN, ANA]);
    expect((await get(`/v1/conversations/${id}`)).body.participants).toEqual([BEN]);
    // Both of Ben's connections get the notice, focused or not
    for (const socket of [benFocused, benDefault]) {
      const frame = await socket.waitFor((f) => f.type === 'mention' && f.messageId === messageId, 10_000, 'the mention');
      expect(frame).toEqual({
        type: 'mention',
        conversationId: id,
        messageId,
        by: { id: ANA, name: 'Ana' },
        text: '@Ben can you check the double charge?',
        contact: { id: expect.any(String), name: 'Wanda' },
        at: sent.body.message.createdAt,
      });
    }
    // ...and his focused console now follows the conversation
    const next = await visitorWrites(visitor, 'Still waiting');
    await benFocused.waitFor((f) => f.type === 'message.created' && f.message.id === next.message.id, 10_000, 'the next customer message');
    // Cy (not mentioned) and Ana (who mentioned herself) got no notice, though both saw the note.
    await cy.waitFor((f) => f.type === 'message.created' && f.message.id === next.message.id);
    expect(cy.frames.some((f) => f.type === 'message.created' && f.message.id === messageId)).toBe(true);
    expect(mentionsOf(cy, messageId)).toEqual([]);
    expect(mentionsOf(ana, messageId)).toEqual([]);
    // The visitor never saw the note or its mentions, live or in the history
    await visitor.waitFor((f) => f.type === 'message.created' && f.message.id === next.message.id);
    expect(JSON.stringify(visitor.frames)).not.toContain('double charge');
    expect(JSON.stringify(visitor.frames)).not.toContain('mentions');
    expect(JSON.stringify(visitor.frames)).not.toContain(BEN);
    const widget = await http(stack.httpUrl, 'GET', '/v1/widget/messages', { token });
    expect(widget.status).toBe(200);
    expect(widget.text).not.toContain('double charge');
    expect(widget.text).not.toContain('mentions');
    // Ana's own Mentions view stays empty of it
    expect((await get('/v1/conversations?mentioned=me', tokens[ANA]!)).body.items.map((c: { id: string }) => c.id)).not.toContain(id);
  });

  it('stores and announces a note sent twice with the same clientMessageId once, over HTTP and the WebSocket', async () => {
    // Prepare
    const { id } = await visitorConversation('Xena', 'Can I change my address?');
    const clientMessageId = crypto.randomUUID();

    // Act: the same note twice over HTTP, then another over the socket twice
    const first = await note(id, { text: 'Cy, address change again', mentions: [CY], clientMessageId });
    const again = await note(id, { text: 'Cy, address change again', mentions: [CY], clientMessageId });
    const wsId = crypto.randomUUID();
    for (let i = 0; i < 2; i++) ana.send({ action: 'sendMessage', conversationId: id, text: 'Cy, and the parcel', clientMessageId: wsId, private: true, mentions: [CY] });
    const acks = await eventually(() => {
      const got = ana.frames.filter((f) => f.type === 'ack' && f.clientMessageId === wsId);
      return got.length === 2 && got;
    });
    // A later note's notice: whatever the repeats sent came before it on Cy's socket.
    const later = await note(id, { text: 'Cy, last one', mentions: [CY] });
    await cy.waitFor((f) => f.type === 'mention' && f.messageId === later.body.message.id, 10_000, 'the later mention');

    // Assess
    expect([first.status, again.status]).toEqual([202, 202]);
    expect(again.body.message.id).toBe(first.body.message.id);
    expect(acks[1]!.messageId).toBe(acks[0]!.messageId);
    const texts = (await history(id)).map((m) => m.text);
    expect(texts.filter((t) => t === 'Cy, address change again')).toHaveLength(1);
    expect(texts.filter((t) => t === 'Cy, and the parcel')).toHaveLength(1);
    expect(mentionsOf(cy, first.body.message.id)).toHaveLength(1);
    expect(mentionsOf(cy, acks[0]!.messageId)).toHaveLength(1);
  });

  it.each([
    { conversation: 'the first attempt', secondMoves: false },
    { conversation: 'the second attempt', secondMoves: true },
  ])('stores, shows and announces once a note sent twice at once, when the second looked for it before the first stored it ($conversation moving the conversation)', async ({ secondMoves }) => {
    // Prepare
    const { id } = await visitorConversation('Yara', 'Is the shop open on Sunday?');
    const text = `Cy, Sunday hours ${crypto.randomUUID()}`;
    let looked!: () => void;
    let landed!: () => void;
    let moved!: () => void;
    const lookedFor = new Promise<void>((resolve) => (looked = resolve));
    const firstLanded = new Promise<void>((resolve) => (landed = resolve));
    const secondMoved = new Promise<void>((resolve) => (moved = resolve));
    race.armed = { text, conversationId: id, puts: 0, looked, lookedFor, landed, firstLanded, ...(secondMoves ? { secondMovesConversation: { applies: 0, moved, secondMoved } } : {}) };
    const framesBefore = ana.frames.length;

    // Act: the same note twice at once over the socket
    const clientMessageId = crypto.randomUUID();
    try {
      for (let i = 0; i < 2; i++) ana.send({ action: 'sendMessage', conversationId: id, text, clientMessageId, private: true, mentions: [CY] });
      await eventually(() => ana.frames.filter((f) => f.type === 'ack' && f.clientMessageId === clientMessageId).length === 2);
    } finally {
      race.armed = undefined;
    }
    const later = await note(id, { text: 'Cy, one more', mentions: [CY] });
    await cy.waitFor((f) => f.type === 'mention' && f.messageId === later.body.message.id, 10_000, 'the later mention');

    // Assess: one note, one message.created and one mention for it, at the time it was stored
    const acks = ana.frames.filter((f) => f.type === 'ack' && f.clientMessageId === clientMessageId);
    expect(acks[1]!.messageId).toBe(acks[0]!.messageId);
    const stored = (await history(id)).filter((m) => m.text === text);
    expect(stored).toHaveLength(1);
    const shown = cy.frames.filter((f) => f.type === 'message.created' && f.message.id === acks[0]!.messageId);
    expect(shown).toHaveLength(1);
    expect(shown[0]!.message.createdAt).toBe(stored[0]!.createdAt);
    expect(mentionsOf(cy, acks[0]!.messageId)).toHaveLength(1);
    // Whichever attempt moved the conversation told the team of it, before the later note
    const laterAt = ana.frames.findIndex((f) => f.type === 'message.created' && f.message.id === later.body.message.id);
    const noteAt = stored[0]!.createdAt;
    const moves = ana.frames.slice(framesBefore, laterAt).filter((f) => f.type === 'conversation.updated' && f.conversation.id === id && f.conversation.updatedAt >= noteAt);
    expect(moves.length).toBeGreaterThan(0);
  });

  it('announces a note once when its first attempt died before or after announcing it and the client sends it again', async () => {
    // Prepare
    const { id } = await visitorConversation('Yusuf', 'Is the warranty transferable?');
    const attempts: { text: string; when: 'before' | 'after' }[] = [
      { text: 'Cy, warranty question (first try died early)', when: 'before' },
      { text: 'Cy, warranty question (answer lost)', when: 'after' },
    ];
    for (const { text, when } of attempts) {
      const clientMessageId = crypto.randomUUID();
      crash.armed = { text, when };

      // Act: the first attempt dies; the client sends the same note again
      const died = await note(id, { text, mentions: [CY], clientMessageId });
      const retry = await note(id, { text, mentions: [CY], clientMessageId });
      const marker = await note(id, { text: `${text}: marker`, mentions: [CY] });
      await cy.waitFor((f) => f.type === 'mention' && f.messageId === marker.body.message.id, 10_000, 'the marker mention');

      // Assess: stored once, Cy told once (whatever the first attempt sent came before the marker)
      expect(died.status).toBeGreaterThanOrEqual(500);
      expect(retry.status).toBe(202);
      expect((await history(id)).filter((m) => m.text === text)).toHaveLength(1);
      expect(mentionsOf(cy, retry.body.message.id)).toHaveLength(1);
    }
    expect((await get(`/v1/conversations/${id}`)).body.participants).toEqual([CY]);
  });

  it("lists the agent's mentions newest first, each conversation once, page by page, and erases them with the customer", async () => {
    // Prepare: three conversations; Ben mentioned in each, the first one twice (the later one last)
    const convs = [await visitorConversation('Yara', 'Question one'), await visitorConversation('Zoe', 'Question two'), await visitorConversation('Abe', 'Question three')];
    const mention = async (id: string, text: string) => {
      const sent = await note(id, { text, mentions: [BEN] });
      expect(sent.status).toBe(202);
      return sent.body.message.id as string;
    };
    await mention(convs[0]!.id, 'Ben: one');
    await mention(convs[1]!.id, 'Ben: two');
    const three = await mention(convs[2]!.id, 'Ben: three');
    const oneAgain = await mention(convs[0]!.id, 'Ben: one again');

    // Act: Ben reads his Mentions view two at a time
    const first = await get('/v1/conversations?mentioned=me&limit=2', tokens[BEN]!);
    const second = await get(`/v1/conversations?mentioned=me&limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`, tokens[BEN]!);

    // Assess
    expect(first.status).toBe(200);
    expect(first.body.items.map((c: { id: string }) => c.id)).toEqual([convs[0]!.id, convs[2]!.id]);
    expect(first.body.items[0].mention).toEqual({ messageId: oneAgain, at: expect.any(String) });
    expect(first.body.items[1].mention.messageId).toBe(three);
    expect(first.body.items[0].contact.name).toBe('Yara');
    expect(second.body.items.map((c: { id: string }) => c.id).slice(0, 1)).toEqual([convs[1]!.id]);
    // A view that ends on a full page says so: no cursor to an empty page.
    expect((await http(stack.httpUrl, 'PUT', '/v1/agents/mn-dee', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } })).status).toBe(200);
    for (const c of convs.slice(1)) expect((await note(c.id, { text: 'Dee, have a look', mentions: ['mn-dee'] })).status).toBe(202);
    const dee = await agentToken(stack.httpUrl, 'mn-dee', 'agent', 'Dee');
    const whole = await get('/v1/conversations?mentioned=me&limit=2', dee);
    expect([whole.body.items.length, whole.body.nextCursor]).toEqual([2, null]);
    const half = await get('/v1/conversations?mentioned=me&limit=1', dee);
    const rest = await get(`/v1/conversations?mentioned=me&limit=1&cursor=${encodeURIComponent(half.body.nextCursor)}`, dee);
    expect([...half.body.items, ...rest.body.items].map((c: { id: string }) => c.id)).toEqual([convs[2]!.id, convs[1]!.id]);
    expect(rest.body.nextCursor).toBeNull();
    const all = await get('/v1/conversations?mentioned=me&limit=100', tokens[BEN]!);
    const ids = all.body.items.map((c: { id: string }) => c.id) as string[];
    expect(ids.filter((id) => id === convs[0]!.id)).toHaveLength(1);
    // Cy was mentioned elsewhere, not here; filters do not combine with it
    expect((await get('/v1/conversations?mentioned=me&limit=100', tokens[CY]!)).body.items.map((c: { id: string }) => c.id)).not.toContain(convs[0]!.id);
    const combined = await get('/v1/conversations?mentioned=me&status=open', tokens[BEN]!);
    expect([combined.status, combined.body.error.code]).toEqual([400, 'invalid_request']);
    expect((await get('/v1/conversations?mentioned=ben', tokens[BEN]!)).status).toBe(400);

    // Act: the first customer's erasure
    const contactId = first.body.items[0].contact.id as string;
    expect((await http(stack.httpUrl, 'DELETE', `/v1/contacts/${contactId}`, { token: admin })).status).toBe(202);

    // Assess: out of the view at once, and the mention items gone with the conversation
    expect((await get('/v1/conversations?mentioned=me&limit=100', tokens[BEN]!)).body.items.map((c: { id: string }) => c.id)).not.toContain(convs[0]!.id);
    await eventually(async () => (await getErasure(contactId))?.status === 'erased', 20_000);
    const left = await ddb().send(
      new QueryCommand({ TableName: config.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `CONV#${convs[0]!.id}` }, ConsistentRead: true }),
    );
    expect(left.Items ?? []).toEqual([]);
    const byIndex = await ddb().send(
      new QueryCommand({ TableName: config.tableName, IndexName: 'gsi2', KeyConditionExpression: 'gsi2pk = :pk', ExpressionAttributeValues: { ':pk': `MENTIONS#${BEN}` } }),
    );
    expect((byIndex.Items ?? []).map((i) => String(i.pk))).not.toContain(`CONV#${convs[0]!.id}`);
    expect((byIndex.Items ?? []).map((i) => String(i.pk))).toContain(`CONV#${convs[1]!.id}`);
  });
});
