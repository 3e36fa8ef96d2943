/**
 * The reference agent console in a real browser (Debian's chromium through playwright-core),
 * served by the local stack at /local/console/ and signed in through its identity provider: a
 * web visitor's and a WhatsApp customer's messages show live, the agent's replies reach them,
 * notes never do, canned responses, macros, typing and read receipts both ways, assign, transfer,
 * resolve and reopen, a note's @mention from one console to another, drafts kept per conversation and sent again under their clientMessageId,
 * the log's scrolling and paging, answers that come after the agent moved to another conversation, right-to-left and long text, a customer's reply quoting an earlier message and a reaction naming the message it is on (a click on the quote brings that message into view),
 * erasure and an expiring token. Every wait is for a DOM state or a frame, never a fixed sleep.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page, type WebSocketRoute } from 'playwright-core';
import type { LocalStack } from '../../local/stack';
import { CONSOLE_PATH } from '../../local/console';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';
import { blockSockets, unblockSockets } from '../support/browser';
import { png } from '../support/png';
import { newHandle, postWebhook, textWebhook } from './channels-support';
import { fixture } from '../fixtures/sign';

const CHROMIUM = '/usr/bin/chromium';
// CI installs chromium (.ci/run): there the test must run. Elsewhere it needs the package.
const runs = existsSync(CHROMIUM) || process.env.CI === 'true';

let stack: LocalStack;
let browser: Browser;
// A colleague's console, in Node: the transfer's target, and a witness that a frame went out.
let colleague: WsClient;
const contexts = new Set<BrowserContext>();

beforeAll(async () => {
  if (!runs) return;
  stack = await startTestStack();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  colleague = await WsClient.connect(stack.wsUrl, await agentToken(stack.httpUrl, 'agent-olga', 'agent', 'Olga'));
});

afterAll(async () => {
  await colleague?.close();
  await browser?.close();
  await stack?.stop();
});

// A console left open keeps its agent online and its socket: the next test would count on neither.
afterEach(async () => {
  await Promise.all([...contexts].map((context) => context.close().catch(() => undefined)));
  contexts.clear();
});

/**
 * A new browser on the local console, signed in as `agentId` through the form; `query` goes on
 * the page's URL, and `sockets` gets the URL of every WebSocket the page opens.
 */
async function openConsole(agentId: string, name: string, options: { query?: string; sockets?: string[]; prepare?: (page: Page) => Promise<void> } = {}): Promise<Page> {
  const context = await browser.newContext();
  contexts.add(context);
  const page = await context.newPage();
  await options.prepare?.(page);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('websocket', (socket) => options.sockets?.push(socket.url()));
  await page.goto(`${stack.httpUrl}${CONSOLE_PATH}${options.query ?? ''}`);
  await page.getByLabel('Agent id').fill(agentId);
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => page.locator('header .state').textContent()).toBe('online');
  expect(errors).toEqual([]);
  return page;
}

const row = (page: Page, conversationId: string) => page.locator(`.inbox .conversation[data-id="${conversationId}"]`);
const texts = (page: Page, selector: string) => page.locator(`.log ${selector} .text`).allTextContents();
const details = (page: Page) => page.locator('.head .details').textContent();

/** A web visitor, on a socket of their own, who wrote `text`: the conversation it opened. Close `visitor` after. */
async function webVisitorSays(name: string, text: string): Promise<{ visitor: WsClient; conversationId: string }> {
  const session = await visitorSession(stack.httpUrl, { name });
  const visitor = await WsClient.connect(session.websocketUrl, session.token);
  try {
    const clientMessageId = crypto.randomUUID();
    visitor.send({ action: 'sendMessage', text, clientMessageId });
    return { visitor, conversationId: (await visitor.waitFor((f) => f.type === 'ack' && f.clientMessageId === clientMessageId, 15_000, 'the ack')).conversationId };
  } catch (error) {
    await visitor.close();
    throw error;
  }
}

async function send(page: Page, text: string, note = false): Promise<void> {
  await page.getByLabel('Private note').setChecked(note);
  await page.getByLabel('Message').fill(text);
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => page.getByLabel('Message').inputValue()).toBe('');
}

it.skipIf(!runs)('a web visitor live in the console: canned reply, typing and receipts both ways, a note the visitor never gets, resolve and reopen', async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-ada', 'admin', 'Ada');
  const created = await http(stack.httpUrl, 'POST', '/v1/canned-responses', { token: admin, body: { shortCode: 'hello', text: 'Hi {{contact.name|there}}, {{agent.name}} here.' } });
  expect(created.status).toBe(201);
  const page = await openConsole('agent-cora', 'Cora');

  // The visitor writes: the conversation shows in the open inbox without a reload.
  const session = await visitorSession(stack.httpUrl, { name: 'Vic', email: 'vic@example.com' });
  const visitor = await WsClient.connect(session.websocketUrl, session.token);
  try {
    visitor.send({ action: 'sendMessage', text: 'Where is my parcel?', clientMessageId: 'v-1' });
    const ack = await visitor.waitFor((f) => f.type === 'ack' && f.clientMessageId === 'v-1', 15_000, 'the ack');
    const conversationId: string = ack.conversationId;
    await expect.poll(() => row(page, conversationId).textContent(), { timeout: 15_000 }).toContain('Vic');

    // Opened: the history, and the console's read reaches the visitor.
    await row(page, conversationId).click();
    await expect.poll(() => texts(page, '.message.inbound')).toContain('Where is my parcel?');
    await visitor.waitFor((f) => f.type === 'read' && f.messageId === ack.messageId && f.by?.type === 'agent', 15_000, "the console's read");

    // Typing both ways.
    visitor.send({ action: 'typing', state: 'on' });
    await expect.poll(() => page.locator('.typing').textContent()).toBe('Vic is typing…');
    await page.getByLabel('Message').fill('H');
    await visitor.waitFor((f) => f.type === 'typing' && f.state === 'on' && f.sender?.name === 'Cora', 15_000, "the console's typing");
    // Turned to a note mid-word: the customer's "typing…" ends then, not 6 s later on their side
    // (the note's own sign, and its "off", are the team's only).
    await page.getByLabel('Private note').setChecked(true);
    await page.getByLabel('Message').fill('Hm');
    await visitor.waitFor((f) => f.type === 'typing' && f.state === 'off' && f.sender?.name === 'Cora', 15_000, "the console's typing ended");
    await page.getByLabel('Private note').setChecked(false);

    // A colleague's sign outlasts the customer's message and ends with the colleague's own.
    colleague.send({ action: 'typing', conversationId, state: 'on', private: true });
    await expect.poll(() => page.locator('.typing').textContent()).toBe('Olga is writing a note…');
    visitor.send({ action: 'sendMessage', text: 'It was due on Monday.', clientMessageId: 'v-typing' });
    await expect.poll(() => texts(page, '.message.inbound')).toContain('It was due on Monday.');
    expect(await page.locator('.typing').textContent()).toBe('Olga is writing a note…');
    colleague.send({ action: 'sendMessage', conversationId, text: 'Courier says Tuesday.', private: true, clientMessageId: 'olga-note' });
    await expect.poll(() => texts(page, '.message.note')).toContain('Courier says Tuesday.');
    expect(await page.locator('.typing').textContent()).toBe('');

    // A canned response, filled for this visitor and this agent, is inserted, then sent.
    await page.getByLabel('Message').fill('');
    await expect.poll(() => page.getByLabel('Canned response').locator('option').allTextContents()).toContain('/hello: Hi {{contact.name|there}}, {{agent.name}} here.');
    await page.getByLabel('Canned response').selectOption({ label: '/hello: Hi {{contact.name|there}}, {{agent.name}} here.' });
    await expect.poll(() => page.getByLabel('Message').inputValue()).toBe('Hi Vic, Cora here.');
    await page.getByLabel('Message').press('Enter');
    const reply = await visitor.waitFor((f) => f.type === 'message.created' && f.message.text === 'Hi Vic, Cora here.', 15_000, 'the reply');
    expect(reply.message).toMatchObject({ direction: 'outbound', sender: { type: 'agent', id: 'agent-cora' } });
    await expect.poll(() => texts(page, '.message.outbound')).toContain('Hi Vic, Cora here.');

    // The visitor reads the reply: the console says it was seen.
    visitor.send({ action: 'markRead', messageId: reply.message.id });
    await expect.poll(() => page.locator(`.message[data-id="${reply.message.id}"] .meta`).textContent()).toContain('seen');

    // A note: shown to the team as a note, never to the visitor (the reply after it is).
    await send(page, 'VIP: ship it express', true);
    await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'VIP: ship it express', 15_000, 'the note to the team');
    await expect.poll(() => texts(page, '.message.note')).toEqual(['Courier says Tuesday.', 'VIP: ship it express']);
    await send(page, 'Anything else?');
    await visitor.waitFor((f) => f.type === 'message.created' && f.message.text === 'Anything else?', 15_000, 'the reply after the note');
    expect(JSON.stringify(visitor.frames)).not.toContain('VIP: ship it express');

    // Markup in the customer's text is text: nothing rendered, nothing run.
    // (The title carries the unread count, and the console writes it when that changes: what a
    // script wrote would stay until then. The mark on <html> is left to nobody else.)
    const markup = '<img src=x onerror="document.title=\'owned\';document.documentElement.dataset.owned=1"><b>bold</b>';
    const ran = async () => ({ title: await page.title(), owned: await page.locator('html[data-owned]').count() });
    visitor.send({ action: 'sendMessage', text: markup, clientMessageId: 'v-2' });
    await expect.poll(() => texts(page, '.message.inbound')).toContain(markup);
    expect(await page.locator('.log img, .log b').count()).toBe(0);
    expect(await ran()).toEqual({ title: expect.stringMatching(/^(\(\d+\) )?Conversa console$/), owned: 0 });

    // Resolve: the visitor hears it, the conversation leaves the open inbox; the resolved one has it, to reopen.
    await page.getByRole('button', { name: 'Resolve', exact: true }).click();
    await visitor.waitFor((f) => f.type === 'conversation.updated' && f.conversation.status === 'resolved', 15_000, 'the resolution');
    await expect.poll(() => details(page)).toContain('resolved');
    // The resolution asked the visitor for a rating (CSAT is on by default); the agent sees theirs.
    await visitor.waitFor((f) => f.type === 'message.created' && f.message.attachments.some((a: { type: string }) => a.type === 'csat'), 15_000, 'the CSAT question');
    expect(await details(page)).not.toContain('rated');
    visitor.send({ action: 'sendMessage', text: '4 - quick and kind', clientMessageId: 'v-rating' });
    await expect.poll(() => details(page)).toMatch(/^web · resolved · [^·]+ · rated 4\/5: “quick and kind”$/);
    await expect.poll(() => row(page, conversationId).count()).toBe(0);
    await page.getByRole('button', { name: 'Resolved', exact: true }).click();
    await expect.poll(() => row(page, conversationId).count()).toBe(1);
    await page.getByRole('button', { name: 'Reopen' }).click();
    await expect.poll(() => details(page)).toContain('open');
    await expect.poll(() => row(page, conversationId).count()).toBe(0);
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await expect.poll(() => row(page, conversationId).count()).toBe(1);
    // Round trips later, the markup still never ran.
    expect((await ran()).owned).toBe(0);
  } finally {
    await visitor.close();
  }
});

it.skipIf(!runs)('keeps a reply at its furthest status when the answer to its POST comes after its sent frame', async () => {
  // Prepare: a WhatsApp customer's conversation open in the console
  const page = await openConsole('agent-erin', 'Erin');
  // A text of its own: the colleague's socket also holds the web visitor's 'Where is my parcel?' from another case.
  const question = 'Has my parcel left the depot?';
  const inbound = textWebhook('whatsapp', newHandle('whatsapp'), question);
  expect((await postWebhook(stack, 'whatsapp', inbound.body)).status).toBe(200);
  const { conversationId } = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === question, 15_000, 'the WhatsApp message');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual([question]);
  // The reply's answer is held until its frames have told the console it was sent.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route(`**/v1/conversations/${conversationId}/messages`, async (route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    const response = await route.fetch();
    await held;
    await route.fulfill({ response });
  });
  const meta = () => page.locator('.message', { hasText: 'On its way today.' }).locator('.meta').last().textContent();

  // Act
  await page.getByLabel('Message').fill('On its way today.');
  await page.getByLabel('Message').press('Enter');
  await expect.poll(meta, { timeout: 15_000 }).toContain('sent');
  release();

  // Assess: the answer (queued, as the reply stood when it was taken) does not take it back
  await expect.poll(() => page.getByLabel('Message').inputValue()).toBe('');
  expect(await meta()).toContain('sent');
});

it.skipIf(!runs)('a WhatsApp customer live in the console: assign to me, a reply WhatsApp gets, a note it never gets, transfer and resolve', async () => {
  const page = await openConsole('agent-dora', 'Dora');
  const handle = newHandle('whatsapp');
  const inbound = textWebhook('whatsapp', handle, 'Hola, is my order ready?');
  expect((await postWebhook(stack, 'whatsapp', inbound.body)).status).toBe(200);
  const created = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'Hola, is my order ready?', 15_000, 'the WhatsApp message');
  const conversationId: string = created.conversationId;

  // Live in the open inbox; opened, then taken.
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Hola, is my order ready?']);
  await expect.poll(() => details(page)).toMatch(/assigned to|unassigned/);
  if ((await details(page))?.includes('assigned to me')) {
    // Routing gave it to Dora already: hand it to the colleague first, so that taking it is seen.
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/assign`, { token: await agentToken(stack.httpUrl, 'agent-olga'), body: { agentId: 'agent-olga' } })).status).toBe(200);
    await expect.poll(() => details(page)).toContain('assigned to agent-olga');
  }
  await page.getByRole('button', { name: 'Assign to me' }).click();
  await expect.poll(() => details(page)).toContain('assigned to me');
  await page.getByRole('button', { name: 'Mine' }).click();
  await expect.poll(() => row(page, conversationId).count()).toBe(1);

  // The reply goes to WhatsApp and its status follows; the note does not go anywhere.
  const sentTo = (text: string) => stack.providers.outbox('whatsapp').filter((item) => JSON.stringify(item.body).includes(text));
  await send(page, 'It ships tomorrow.');
  const [request] = await eventually(() => sentTo('It ships tomorrow.').length > 0 && sentTo('It ships tomorrow.'), 15_000);
  expect(request!.body).toMatchObject({ to: handle, type: 'text', text: { body: 'It ships tomorrow.' } });
  await expect.poll(() => page.locator('.message', { hasText: 'It ships tomorrow.' }).locator('.meta').last().textContent(), { timeout: 15_000 }).toContain('sent');
  await send(page, 'Check the warehouse first', true);
  await send(page, 'Anything else?');
  await eventually(() => sentTo('Anything else?').length > 0, 15_000);
  expect(sentTo('Check the warehouse')).toEqual([]);
  await expect.poll(async () => (await texts(page, '.message.outbound')).slice(-3)).toEqual(['It ships tomorrow.', 'Check the warehouse first', 'Anything else?']);

  // Transfer with a note: the colleague has it, the note shows in the history, it leaves Mine.
  await expect.poll(() => page.getByLabel('Transfer to').locator('option').allTextContents()).toContain('Olga (online)');
  await page.getByLabel('Transfer to').selectOption('agent-olga');
  await page.getByLabel('Transfer note').fill('Olga knows this order');
  await page.getByRole('button', { name: 'Transfer', exact: true }).click();
  await expect.poll(() => details(page)).toContain('assigned to agent-olga');
  await expect.poll(() => texts(page, '.message.note')).toContain('Olga knows this order');
  await expect.poll(() => row(page, conversationId).count()).toBe(0);
  expect(sentTo('Olga knows this order')).toEqual([]);

  // Resolved from the console.
  await page.getByRole('button', { name: 'Resolve', exact: true }).click();
  await expect.poll(() => details(page)).toContain('resolved');
  const stored = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}`, { token: await agentToken(stack.httpUrl, 'agent-dora') });
  expect(stored.body.status).toBe('resolved');
});

it.skipIf(!runs)('a customer’s reply to one of the agent’s questions shows "↪" and the question it quotes; a quote not shown reads the provider’s words, else says so', async () => {
  // Prepare: a WhatsApp customer's conversation open in the console, the agent asks two questions
  const page = await openConsole('agent-quinn', 'Quinn');
  const handle = newHandle('whatsapp');
  const opening = textWebhook('whatsapp', handle, 'I want to return my blender');
  expect((await postWebhook(stack, 'whatsapp', opening.body)).status).toBe(200);
  const { conversationId } = await colleague.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === opening.providerMessageId, 15_000, 'the opening');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['I want to return my blender']);
  const wamidOf = (text: string) =>
    eventually(() => {
      const item = stack.providers.outbox('whatsapp').find((i) => i.status === 200 && JSON.stringify(i.body).includes(text));
      return (item?.answer as { messages?: { id: string }[] } | undefined)?.messages?.[0]?.id;
    }, 15_000);
  await send(page, 'Is the box undamaged?');
  await send(page, 'Do you still have the receipt?');
  const boxQuestion = await wamidOf('Is the box undamaged?');
  await expect.poll(() => page.locator('.message', { hasText: 'Do you still have the receipt?' }).locator('.meta').last().textContent(), { timeout: 15_000 }).toContain('sent');

  // Act: the customer swipes the first question to answer it, then one the console does not show
  const swipeReply = (text: string, quotedId: string) => {
    const reply = textWebhook('whatsapp', handle, text);
    const body = JSON.parse(reply.body);
    body.entry[0].changes[0].value.messages[0].context = { from: '15550783881', id: quotedId };
    return postWebhook(stack, 'whatsapp', JSON.stringify(body));
  };
  expect((await swipeReply('Yes', boxQuestion)).status).toBe(200);
  const unseen = `wamid.UNSEEN${Date.now()}`;
  expect((await swipeReply('That one too', unseen)).status).toBe(200);

  // Assess: each reply says what it answers; the one quoting a message not shown, that it answers one
  const quoteOf = (text: string) => page.locator('.message.inbound', { has: page.locator('.text', { hasText: new RegExp(`^${text}$`) }) }).locator('.quote');
  await expect.poll(() => quoteOf('Yes').textContent(), { timeout: 15_000 }).toBe('↪ Is the box undamaged?');
  await expect.poll(() => quoteOf('That one too').textContent(), { timeout: 15_000 }).toBe('↪ Reply to an earlier message');
  expect(await quoteOf('I want to return my blender').count()).toBe(0);
  // The quoted message, sent from the WhatsApp Business app, arrives after the reply: the quote finds it.
  const echo = JSON.parse(fixture('whatsapp', 'smb-message-echoes'));
  const value = echo.entry[0].changes[0].value;
  value.message_echoes = [{ ...value.message_echoes[0], to: handle, id: unseen, timestamp: String(Math.floor(Date.now() / 1000)), text: { body: 'Shall I send a label for the jug as well?' } }];
  expect((await postWebhook(stack, 'whatsapp', JSON.stringify(echo))).status).toBe(200);
  await expect.poll(() => quoteOf('That one too').textContent(), { timeout: 15_000 }).toBe('↪ Shall I send a label for the jug as well?');
  // Read again (a reload of the history), the quotes stand.
  await page.reload();
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => quoteOf('Yes').textContent(), { timeout: 15_000 }).toBe('↪ Is the box undamaged?');

  // A Telegram customer quoting a message the console never had: the words Telegram handed over.
  const chat = Number(newHandle('telegram'));
  const quoting = JSON.parse(fixture('telegram', 'reply'));
  Object.assign(quoting.message, { message_id: 45, date: Math.floor(Date.now() / 1000), text: 'Yes please' });
  quoting.message.from.id = quoting.message.chat.id = quoting.message.reply_to_message.chat.id = chat;
  expect((await postWebhook(stack, 'telegram', JSON.stringify(quoting))).status).toBe(200);
  const { conversationId: telegramId } = await colleague.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === `${chat}:45`, 15_000, 'the Telegram reply');
  await page.getByRole('button', { name: 'Open', exact: true }).click();
  await expect.poll(() => row(page, telegramId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, telegramId).click();
  await expect.poll(() => quoteOf('Yes please').textContent(), { timeout: 15_000 }).toBe('↪ Shall we send a replacement? Or would you rather have your money back?');
});

it.skipIf(!runs)('a customer’s reaction shows "↪" and the message it is on; a click on a quote brings the quoted message, scrolled out of view, back into it', async () => {
  // Prepare: the agent asks a question, then a long talk among the team pushes it out of view
  const handle = newHandle('whatsapp');
  const opening = textWebhook('whatsapp', handle, 'Is the kettle in stock?');
  expect((await postWebhook(stack, 'whatsapp', opening.body)).status).toBe(200);
  const { conversationId } = await colleague.waitFor((f) => f.type === 'message.created' && f.message.providerMessageId === opening.providerMessageId, 15_000, 'the opening');
  const page = await openConsole('agent-rhea', 'Rhea');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Is the kettle in stock?']);
  await send(page, 'Which colour would you like?');
  const question = await eventually(() => {
    const item = stack.providers.outbox('whatsapp').find((i) => i.status === 200 && JSON.stringify(i.body).includes('Which colour would you like?'));
    return (item?.answer as { messages?: { id: string }[] } | undefined)?.messages?.[0]?.id;
  }, 15_000);
  await colleagueNotes(conversationId, 'stock check', 30);
  await expect.poll(() => texts(page, '.message.note'), { timeout: 15_000 }).toContain('stock check 29');

  // Act: the customer reacts to the question
  const reaction = JSON.parse(textWebhook('whatsapp', handle, '').body);
  const message = reaction.entry[0].changes[0].value.messages[0];
  delete message.text;
  Object.assign(message, { type: 'reaction', reaction: { message_id: question, emoji: '👍' } });
  expect((await postWebhook(stack, 'whatsapp', JSON.stringify(reaction))).status).toBe(200);

  // Assess: the reaction says which message it is on; the question is out of view until its quote is clicked
  const reacted = page.locator('.message.inbound', { has: page.locator('.text', { hasText: /^reacted 👍 to a message$/ }) });
  await expect.poll(() => reacted.locator('.quote').textContent(), { timeout: 15_000 }).toBe('↪ Which colour would you like?');
  await expect.poll(() => inWindow(page, '.log .message:last-child')).toBe(true);
  const questionSelector = '.log .message.outbound:has(> .text:text-is("Which colour would you like?"))';
  expect(await inWindow(page, questionSelector)).toBe(false);
  await reacted.locator('.quote').click();
  await expect.poll(() => inWindow(page, questionSelector)).toBe(true);
});

it.skipIf(!runs)('after its socket drops, the console catches up on reconnecting: the open history and the inbox as they are now; presence kept over a reload', async () => {
  const others = stack.websocket.connections();
  const page = await openConsole('agent-esme', 'Esme');
  const [own] = stack.websocket.connections().filter((id) => !others.includes(id));
  // Two WhatsApp customers: one open in the view, one waiting in the inbox.
  const customer = async (text: string, handle = newHandle('whatsapp')) => {
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, text).body)).status).toBe(200);
    const frame = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === text, 15_000, text);
    return { conversationId: frame.conversationId as string, handle };
  };
  const { conversationId: shown, handle } = await customer('Do you deliver on Sundays?');
  const { conversationId: waiting } = await customer('Cancel my order please');
  await expect.poll(() => row(page, waiting).count(), { timeout: 15_000 }).toBe(1);
  await expect.poll(() => row(page, shown).count()).toBe(1);
  await row(page, shown).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Do you deliver on Sundays?']);

  // The socket goes, and the browser cannot reconnect (the page's WebSocket is pointed at a closed
  // port while `blocked`; Chromium's offline emulation leaves WebSockets alone): what happens now
  // reaches no frame of it.
  await blockSockets(page);
  expect(stack.websocket.dropConnection(own!, { notify: true })).toBe(true);
  await expect.poll(() => page.locator('header .state').textContent()).not.toBe('online');
  const token = await agentToken(stack.httpUrl, 'agent-olga');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${waiting}/resolve`, { token })).status).toBe(200);
  expect((await customer('And on holidays?', handle)).conversationId).toBe(shown);
  expect(await texts(page, '.message.inbound')).toEqual(['Do you deliver on Sundays?']);

  // Back: the history and the inbox are read again.
  await unblockSockets(page);
  await expect.poll(() => page.locator('header .state').textContent(), { timeout: 20_000 }).toBe('online');
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Do you deliver on Sundays?', 'And on holidays?']);
  await expect.poll(() => row(page, waiting).count()).toBe(0);
  expect(await row(page, shown).count()).toBe(1);

  // Away: the team hears it, and a reload (still signed in) shows the choice the API kept.
  await page.getByLabel('Presence').selectOption('away');
  await colleague.waitFor((f) => f.type === 'presence' && f.agentId === 'agent-esme' && f.status === 'away', 15_000, 'the presence');
  await page.reload();
  await expect.poll(() => page.locator('header .state').textContent()).toBe('online');
  expect(await page.locator('header .me').textContent()).toBe('Esme');
  await expect.poll(() => page.getByLabel('Presence').inputValue()).toBe('away');
});

it.skipIf(!runs)('keeps the inbox pages the agent loaded, and their place in the list, over a reconnection', async () => {
  // Prepare: 30 new open conversations, the oldest 5 of them on the inbox's second page
  const ids: string[] = [];
  for (let i = 0; i < 30; i += 1) ids.push(await whatsappCustomer(`Where is order ${1000 + i}?`));
  const others = stack.websocket.connections();
  const page = await openConsole('agent-uma', 'Uma');
  const [own] = stack.websocket.connections().filter((id) => !others.includes(id));
  await expect.poll(() => row(page, ids[29]!).count(), { timeout: 15_000 }).toBe(1);
  expect(await row(page, ids[0]!).count()).toBe(0);
  await page.getByRole('button', { name: 'More', exact: true }).click();
  await expect.poll(() => row(page, ids[0]!).count(), { timeout: 15_000 }).toBe(1);
  const inInbox = (id: string) =>
    row(page, id).evaluate((node) => {
      const box = node.getBoundingClientRect();
      const list = node.closest('.inbox')!.getBoundingClientRect();
      return box.height > 0 && box.top >= list.top && box.bottom <= list.bottom;
    });
  await row(page, ids[1]!).evaluate((node) => node.scrollIntoView({ block: 'center' }));
  expect(await inInbox(ids[1]!)).toBe(true);

  // Act: the socket drops and cannot come back while a colleague resolves one of the second page's
  await blockSockets(page);
  expect(stack.websocket.dropConnection(own!, { notify: true })).toBe(true);
  await expect.poll(() => page.locator('header .state').textContent()).not.toBe('online');
  const token = await agentToken(stack.httpUrl, 'agent-olga');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${ids[2]}/resolve`, { token })).status).toBe(200);
  await unblockSockets(page);
  await expect.poll(() => page.locator('header .state').textContent(), { timeout: 20_000 }).toBe('online');

  // Assess: the list was read again (the resolved one left it), as far as the agent had it, where they were
  await expect.poll(() => row(page, ids[2]!).count(), { timeout: 15_000 }).toBe(0);
  expect(await row(page, ids[0]!).count()).toBe(1);
  expect(await row(page, ids[29]!).count()).toBe(1);
  expect(await inInbox(ids[1]!)).toBe(true);
});

it.skipIf(!runs)('keeps the page "More" asked for while a reconnection was reading the inbox again', async () => {
  // Prepare: 30 new open conversations, the oldest 5 of them on the inbox's second page; the page's
  // inbox reads are counted as it makes them
  const ids: string[] = [];
  for (let i = 0; i < 30; i += 1) ids.push(await whatsappCustomer(`Is order ${2000 + i} paid?`));
  const others = stack.websocket.connections();
  const page = await openConsole('agent-vera', 'Vera', {
    prepare: async (p) => {
      await p.addInitScript(() => {
        const g = globalThis as any;
        const fetch = g.fetch.bind(g);
        g.pagesRead = [];
        g.fetch = (url: string, init: unknown) => (g.pagesRead.push(String(url)), fetch(url, init));
      });
    },
  });
  const [own] = stack.websocket.connections().filter((id) => !others.includes(id));
  await expect.poll(() => row(page, ids[29]!).count(), { timeout: 15_000 }).toBe(1);
  expect(await row(page, ids[0]!).count()).toBe(0);

  // The socket drops and cannot come back while a colleague resolves one of the first page's
  await blockSockets(page);
  expect(stack.websocket.dropConnection(own!, { notify: true })).toBe(true);
  await expect.poll(() => page.locator('header .state').textContent()).not.toBe('online');
  const token = await agentToken(stack.httpUrl, 'agent-olga');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${ids[20]}/resolve`, { token })).status).toBe(200);
  // The reconnection's read of the list (its first page) is held until the agent has clicked More
  let reloadAsked!: () => void;
  const asked = new Promise<void>((resolve) => (reloadAsked = resolve));
  let letGo!: () => void;
  const held = new Promise<void>((resolve) => (letGo = resolve));
  await page.route(
    (url) => url.pathname === '/v1/conversations' && !url.searchParams.has('cursor'),
    async (route) => {
      reloadAsked();
      await held;
      await route.continue();
    },
  );
  const nextPageRead = new Promise<void>((resolve) => page.on('requestfinished', (request) => request.url().includes('/v1/conversations?') && request.url().includes('cursor=') && resolve()));
  await unblockSockets(page);
  await asked;

  // Act: More, while the reload is on its way. A console that reads the next page at once has its
  // answer before the reload's (the order in which the reload used to undo it)
  await page.getByRole('button', { name: 'More', exact: true }).click();
  const readAtOnce = await page.evaluate(() => (globalThis as any).pagesRead.some((url: string) => url.includes('cursor=')));
  if (readAtOnce) await nextPageRead;
  letGo();

  // Assess: the reload came in (the resolved one left the list), and the page More asked for is there
  await expect.poll(() => row(page, ids[20]!).count(), { timeout: 15_000 }).toBe(0);
  await expect.poll(() => row(page, ids[0]!).count(), { timeout: 15_000 }).toBe(1);
  expect(await row(page, ids[29]!).count()).toBe(1);
  expect(await page.locator('header .state').textContent()).toBe('online');
});

it.skipIf(!runs)("shows presence as unknown while its socket is down (the agent's own) or as last known (colleagues'), and as it is once back", async () => {
  const conversationId = await whatsappCustomer('Can someone call me back?');
  const others = stack.websocket.connections();
  const page = await openConsole('agent-wren', 'Wren');
  const [own] = stack.websocket.connections().filter((id) => !others.includes(id));
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  const picker = () => page.getByLabel('Transfer to').locator('option').allTextContents();
  const presence = page.getByLabel('Presence');
  await expect.poll(picker).toContain('Olga (online)');
  await expect.poll(() => presence.inputValue()).toBe('online');

  // A read of the team still on its way when the socket drops (opening a conversation reads it).
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/v1/agents', async (route) => {
    await held;
    await route.continue();
  });
  const teamRead = page.waitForResponse((response) => new URL(response.url()).pathname === '/v1/agents');
  await row(page, conversationId).click();

  // The socket drops and cannot come back: what the console shows is no longer live.
  await blockSockets(page);
  expect(stack.websocket.dropConnection(own!, { notify: true })).toBe(true);
  await expect.poll(() => page.locator('header .state').textContent()).not.toBe('online');
  // The read answers after the drop: it does not bring back the agent's status from before it.
  release();
  await teamRead;
  await page.unroute('**/v1/agents');
  await expect.poll(picker).toContain('Olga (last known: online)');
  expect(await presence.inputValue()).toBe('');
  expect(await presence.locator('option:checked').textContent()).toBe('unknown');
  expect(await presence.isDisabled()).toBe(true);
  try {
    // Meanwhile the colleague goes away: no frame reaches this console.
    colleague.send({ action: 'setPresence', status: 'away' });
    await colleague.waitFor((f) => f.type === 'presence' && f.agentId === 'agent-olga' && f.status === 'away', 15_000, 'the presence');

    // Back: presence is read again and live.
    await unblockSockets(page);
    await expect.poll(() => page.locator('header .state').textContent(), { timeout: 20_000 }).toBe('online');
    await expect.poll(picker).toContain('Olga (away)');
    await expect.poll(() => presence.inputValue()).toBe('online');
    expect(await presence.isDisabled()).toBe(false);
  } finally {
    colleague.send({ action: 'setPresence', status: 'online' });
  }
  await expect.poll(picker).toContain('Olga (online)');
});

it.skipIf(!runs)("takes a refreshed token in place (the next request carries it), and another agent's token as a new sign-in", async () => {
  const others = stack.websocket.connections();
  const page = await openConsole('agent-gus', 'Gus');
  const inbound = textWebhook('whatsapp', newHandle('whatsapp'), 'Is the shop open today?');
  expect((await postWebhook(stack, 'whatsapp', inbound.body)).status).toBe(200);
  const { conversationId } = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'Is the shop open today?', 15_000, 'the message');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Is the shop open today?']);

  // The page's sign-in refreshed the id token: the view stays, and the API sees the new token.
  const refreshed = stack.issueAgentToken('agent-gus', 'agent', 'Gus', 7200);
  const sent: string[] = [];
  await page.route('**/v1/**', (route) => {
    sent.push(route.request().headers().authorization ?? '');
    return route.continue();
  });
  await page.evaluate((token) => (globalThis as any).ConversaConsole.signIn(token), refreshed);
  await page.getByRole('button', { name: 'Open', exact: true }).click();
  await expect.poll(() => sent.length).toBeGreaterThan(0);
  expect(new Set(sent)).toEqual(new Set([`Bearer ${refreshed}`]));
  expect(await page.locator('.view').isVisible()).toBe(true);
  expect(await page.locator('header .me').textContent()).toBe('Gus');

  // Another agent's token: a new sign-in, on one socket, with nothing of Gus's conversation shown.
  await page.evaluate((token) => (globalThis as any).ConversaConsole.signIn(token), stack.issueAgentToken('agent-hana', 'agent', 'Hana'));
  await expect.poll(() => page.locator('header .me').textContent()).toBe('Hana');
  await expect.poll(() => page.locator('header .state').textContent()).toBe('online');
  await expect.poll(() => stack.websocket.connections().filter((id) => !others.includes(id)).length).toBe(1);
  expect(await page.locator('.view').isVisible()).toBe(false);
});

it.skipIf(!runs)('sends a reply whose answer was lost again under the same clientMessageId: the customer gets it once', async () => {
  const page = await openConsole('agent-ivy', 'Ivy');
  const handle = newHandle('whatsapp');
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, 'Can I change my address?').body)).status).toBe(200);
  const { conversationId } = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'Can I change my address?', 15_000, 'the message');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Can I change my address?']);

  // The API stores the first attempt, but its answer never reaches the browser.
  let lost = 0;
  await page.route('**/v1/conversations/*/messages', async (route) => {
    if (route.request().method() !== 'POST' || lost++ > 0) return route.continue();
    await route.fetch();
    return route.abort('failed');
  });
  await page.getByLabel('Message').fill('Yes, send me the new one.');
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => page.locator('.view .notice').textContent()).toContain('Not sent');
  expect(await page.getByLabel('Message').inputValue()).toBe('Yes, send me the new one.');
  await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'Yes, send me the new one.', 15_000, 'the stored reply');

  // Sent again as it stands: the same message, not a second one.
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => page.getByLabel('Message').inputValue()).toBe('');
  const sentTo = () => stack.providers.outbox('whatsapp').filter((item) => JSON.stringify(item.body).includes('Yes, send me the new one.'));
  await eventually(() => sentTo().length > 0, 15_000);
  const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: await agentToken(stack.httpUrl, 'agent-ivy') });
  expect(history.body.items.filter((m: { text: string }) => m.text === 'Yes, send me the new one.')).toHaveLength(1);
  expect((await texts(page, '.message.outbound')).filter((t) => t === 'Yes, send me the new one.')).toHaveLength(1);
  expect(sentTo()).toHaveLength(1);
});

/** A WhatsApp customer writes: their conversation's id, once the team's feed carried the message. */
async function whatsappCustomer(text: string): Promise<string> {
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', newHandle('whatsapp'), text).body)).status).toBe(200);
  const frame = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === text, 15_000, text);
  return frame.conversationId as string;
}

/** What the composer holds: the text and whether it writes a note. */
const composer = async (page: Page) => ({ text: await page.getByLabel('Message').inputValue(), note: await page.getByLabel('Private note').isChecked() });

it.skipIf(!runs)("keeps each conversation's draft, note mode and files when the agent works elsewhere, over a reload too, for that agent alone, until it is sent", async () => {
  const page = await openConsole('agent-pia', 'Pia');
  const invoice = await whatsappCustomer('Can I pay by invoice?');
  const norway = await whatsappCustomer('Do you ship to Norway?');
  await expect.poll(() => row(page, invoice).count(), { timeout: 15_000 }).toBe(1);
  await expect.poll(() => row(page, norway).count(), { timeout: 15_000 }).toBe(1);
  const open = async (conversationId: string, question: string) => {
    await row(page, conversationId).click();
    await expect.poll(() => texts(page, '.message.inbound')).toEqual([question]);
  };

  // A note half written, with a file, in one conversation; a reply begun in another.
  await open(invoice, 'Can I pay by invoice?');
  await page.getByLabel('Private note').check();
  await page.getByLabel('Message').fill('Check her credit limit first');
  await page.getByLabel('Attach files').setInputFiles({ name: 'terms.txt', mimeType: 'text/plain', buffer: Buffer.from('Net 30 days.') });
  await open(norway, 'Do you ship to Norway?');
  expect(await composer(page)).toEqual({ text: '', note: false });
  expect(await page.getByLabel('Attach files').inputValue()).toBe('');
  await page.getByLabel('Message').fill('Yes, within five days');

  // Back and forth: each finds its own again.
  await open(invoice, 'Can I pay by invoice?');
  expect(await composer(page)).toEqual({ text: 'Check her credit limit first', note: true });
  expect(await page.getByLabel('Attach files').inputValue()).toContain('terms.txt');
  await open(norway, 'Do you ship to Norway?');
  expect(await composer(page)).toEqual({ text: 'Yes, within five days', note: false });

  // Sent and taken: its draft is gone, here and on coming back; the other one stays.
  await page.getByLabel('Message').press('Enter');
  // (Its frame may show it before the 202, which empties the draft.)
  await expect.poll(() => texts(page, '.message.outbound')).toContain('Yes, within five days');
  await expect.poll(() => composer(page)).toEqual({ text: '', note: false });
  await open(invoice, 'Can I pay by invoice?');
  expect(await composer(page)).toEqual({ text: 'Check her credit limit first', note: true });
  await open(norway, 'Do you ship to Norway?');
  expect(await composer(page)).toEqual({ text: '', note: false });

  // A reload (still signed in) keeps the text and the note mode; a picked file it cannot keep.
  await page.reload();
  await expect.poll(() => page.locator('header .state').textContent()).toBe('online');
  await expect.poll(() => row(page, invoice).count(), { timeout: 15_000 }).toBe(1);
  await open(invoice, 'Can I pay by invoice?');
  expect(await composer(page)).toEqual({ text: 'Check her credit limit first', note: true });
  expect(await page.getByLabel('Attach files').inputValue()).toBe('');
  await open(norway, 'Do you ship to Norway?');
  expect(await composer(page)).toEqual({ text: '', note: false });
  const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${norway}/messages`, { token: await agentToken(stack.httpUrl, 'agent-pia') });
  expect(history.body.items.filter((m: { text: string }) => m.text === 'Yes, within five days')).toHaveLength(1);

  // Another agent signing in on this tab finds none of Pia's drafts.
  await page.evaluate((token) => (globalThis as any).ConversaConsole.signIn(token), stack.issueAgentToken('agent-quinn', 'agent', 'Quinn'));
  await expect.poll(() => page.locator('header .me').textContent()).toBe('Quinn');
  await expect.poll(() => row(page, invoice).count(), { timeout: 15_000 }).toBe(1);
  await open(invoice, 'Can I pay by invoice?');
  expect(await composer(page)).toEqual({ text: '', note: false });
});

it.skipIf(!runs)('sends a reply that failed at the network again from its kept draft, after a switch and a reload, under the same clientMessageId: stored once', async () => {
  const page = await openConsole('agent-rex', 'Rex');
  const refund = await whatsappCustomer('Where is my refund?');
  const stock = await whatsappCustomer('Is the blue one in stock?');
  await expect.poll(() => row(page, refund).count(), { timeout: 15_000 }).toBe(1);
  await expect.poll(() => row(page, stock).count(), { timeout: 15_000 }).toBe(1);
  const open = async (conversationId: string, question: string) => {
    await row(page, conversationId).click();
    await expect.poll(() => texts(page, '.message.inbound')).toEqual([question]);
  };
  await open(refund, 'Where is my refund?');

  // The first attempt reaches the API, which stores it; its answer never reaches the browser.
  const ids: string[] = [];
  await page.route(`**/v1/conversations/${refund}/messages`, async (route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    ids.push(route.request().postDataJSON().clientMessageId);
    if (ids.length !== 1 && ids.length !== 3) return route.continue();
    await route.fetch();
    return route.abort('failed');
  });
  const reply = 'It left our bank on Monday.';
  await page.getByLabel('Message').fill(reply);
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => page.locator('.view .notice').textContent()).toContain('Not sent');
  await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === reply, 15_000, 'the stored reply');

  // The agent answers another customer and comes back, then reloads the page: the draft waits, not sent.
  await open(stock, 'Is the blue one in stock?');
  expect(await composer(page)).toEqual({ text: '', note: false });
  await open(refund, 'Where is my refund?');
  expect(await composer(page)).toEqual({ text: reply, note: false });
  expect(await page.locator('.view .notice').textContent()).toContain('Not sent');
  await page.reload();
  await expect.poll(() => page.locator('header .state').textContent()).toBe('online');
  await expect.poll(() => row(page, refund).count(), { timeout: 15_000 }).toBe(1);
  await row(page, refund).click();
  await expect.poll(() => texts(page, '.message.outbound')).toContain(reply);
  expect(await composer(page)).toEqual({ text: reply, note: false });

  // Sent again: the same clientMessageId, so the API keeps the one message; the draft goes.
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => page.getByLabel('Message').inputValue()).toBe('');
  expect(ids).toHaveLength(2);
  expect(ids[1]).toBe(ids[0]);
  const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${refund}/messages`, { token: await agentToken(stack.httpUrl, 'agent-rex') });
  expect(history.body.items.filter((m: { text: string }) => m.text === reply)).toHaveLength(1);
  expect((await texts(page, '.message.outbound')).filter((t) => t === reply)).toHaveLength(1);
  await open(stock, 'Is the blue one in stock?');
  await open(refund, 'Where is my refund?');
  expect(await composer(page)).toEqual({ text: '', note: false });
  expect(await page.locator('.view .notice').textContent()).toBe('');

  // Not sent, then edited: another message, under another id (the contract's "the same id twice
  // sends once" would otherwise drop it).
  await page.getByLabel('Message').fill('It takes three days.');
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => page.locator('.view .notice').textContent()).toContain('Not sent');
  await page.getByLabel('Message').fill('It takes five days.');
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => page.getByLabel('Message').inputValue()).toBe('');
  expect(ids).toHaveLength(4);
  expect(new Set(ids.slice(1)).size).toBe(3);
  await expect.poll(() => texts(page, '.message.outbound')).toContain('It takes five days.');
});

it.skipIf(!runs)('sends a reply with a file whose answer was a 503 again after a reload with the uploads its draft kept: one message, one copy of the file', async () => {
  const page = await openConsole('agent-sol', 'Sol');
  const label = await whatsappCustomer('Can you mail me a label?');
  await expect.poll(() => row(page, label).count(), { timeout: 15_000 }).toBe(1);
  await row(page, label).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Can you mail me a label?']);

  // Stored by the API, answered 503 to the browser.
  const bodies: { clientMessageId: string; attachments: { uploadId: string }[] }[] = [];
  await page.route(`**/v1/conversations/${label}/messages`, async (route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    bodies.push(route.request().postDataJSON());
    if (bodies.length > 1) return route.continue();
    await route.fetch();
    return route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ message: 'Service Unavailable' }) });
  });
  const reply = 'Here it is.';
  await page.getByLabel('Attach files').setInputFiles({ name: 'label.png', mimeType: 'image/png', buffer: png(5, 4) });
  await page.getByLabel('Message').fill(reply);
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => page.locator('.view .notice').textContent()).toContain('Not sent');
  await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === reply, 15_000, 'the stored reply');

  // After a reload the picker is empty, but the draft names the file it uploaded and sends it.
  await page.reload();
  await expect.poll(() => page.locator('header .state').textContent()).toBe('online');
  await expect.poll(() => row(page, label).count(), { timeout: 15_000 }).toBe(1);
  await row(page, label).click();
  await expect.poll(() => composer(page)).toEqual({ text: reply, note: false });
  expect(await page.locator('.composer .kept').textContent()).toContain('label.png');
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => page.getByLabel('Message').inputValue()).toBe('');
  expect(await page.locator('.composer .kept').isVisible()).toBe(false);
  expect(bodies).toHaveLength(2);
  expect(bodies[1]!.clientMessageId).toBe(bodies[0]!.clientMessageId);
  expect(bodies[1]!.attachments.map((a) => a.uploadId)).toEqual(bodies[0]!.attachments.map((a) => a.uploadId));
  const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${label}/messages`, { token: await agentToken(stack.httpUrl, 'agent-sol') });
  const sent = history.body.items.filter((m: { text: string }) => m.text === reply);
  expect(sent).toHaveLength(1);
  expect(sent[0].attachments).toEqual([expect.objectContaining({ name: 'label.png', mimeType: 'image/png' })]);
});

/** The size an image was decoded at in the page: its bytes came through whole. */
const decoded = (page: Page, selector: string) =>
  page.locator(selector).evaluate((img) => {
    const { naturalWidth, naturalHeight } = img as unknown as { naturalWidth: number; naturalHeight: number };
    return `${naturalWidth}x${naturalHeight}`;
  });

it.skipIf(!runs)("files both ways: a customer's image shows as a thumbnail, any file saves under its name, and a reply takes files through uploads", async () => {
  const page = await openConsole('agent-jay', 'Jay');
  const session = await visitorSession(stack.httpUrl, { name: 'Fay' });
  const visitor = await WsClient.connect(session.websocketUrl, session.token);
  try {
    // The visitor's two files, through upload tickets as the widget sends them.
    const upload = async (bytes: Buffer, contentType: string, name: string) => {
      const ticket = await http(stack.httpUrl, 'POST', '/v1/widget/uploads', { token: session.token, body: { contentType, size: bytes.length } });
      expect(ticket.status).toBe(201);
      expect((await fetch(ticket.body.url, { method: ticket.body.method, headers: ticket.body.headers, body: bytes })).status).toBe(200);
      return { uploadId: ticket.body.uploadId as string, name };
    };
    const photo = png(3, 2);
    const receipt = Buffer.from('Order 1234: paid, 2 items\n');
    const attachments = [await upload(photo, 'image/png', 'parcel.png'), await upload(receipt, 'text/plain', 'receipt.txt')];
    visitor.send({ action: 'sendMessage', text: 'It arrived broken', clientMessageId: 'f-1', attachments });
    const ack = await visitor.waitFor((f) => f.type === 'ack' && f.clientMessageId === 'f-1', 15_000, 'the ack');
    const conversationId: string = ack.conversationId;
    await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
    await row(page, conversationId).click();

    // The image shows as itself without a click; the other file saves, whole, under its name.
    await expect.poll(() => decoded(page, '.log .file img[alt="parcel.png"]')).toBe('3x2');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: '📎 receipt.txt' }).click()]);
    expect(download.suggestedFilename()).toBe('receipt.txt');
    expect(readFileSync(await download.path())).toEqual(receipt);

    // A reply with a file: uploaded from the page, then the message names it; the visitor gets both.
    const label = png(5, 4);
    await page.getByLabel('Attach files').setInputFiles({ name: 'label.png', mimeType: 'image/png', buffer: label });
    await send(page, 'Here is the return label');
    const reply = await visitor.waitFor((f) => f.type === 'message.created' && f.message.text === 'Here is the return label', 15_000, 'the reply');
    expect(reply.message.attachments).toEqual([expect.objectContaining({ type: 'image', mimeType: 'image/png', name: 'label.png', size: label.length })]);
    await expect.poll(() => page.getByLabel('Attach files').inputValue()).toBe('');
    await expect.poll(() => decoded(page, `.message[data-id="${reply.message.id}"] .file img`)).toBe('5x4');

    // A file alone is a message too.
    await page.getByLabel('Attach files').setInputFiles({ name: 'terms.txt', mimeType: 'text/plain', buffer: Buffer.from('Returns within 30 days.') });
    await page.getByLabel('Message').press('Enter');
    const alone = await visitor.waitFor((f) => f.type === 'message.created' && f.message.attachments?.[0]?.name === 'terms.txt', 15_000, 'the file alone');
    expect(alone.message).toMatchObject({ text: '', direction: 'outbound' });

    // Send pressed again while the file is still uploading: one upload, one message.
    const tickets: string[] = [];
    page.on('request', (r) => r.method() === 'POST' && r.url().endsWith('/v1/uploads') && tickets.push(r.url()));
    let release!: () => void;
    const uploading = new Promise<void>((resolve) => (release = resolve));
    await page.route(
      (url) => !url.pathname.startsWith('/v1/'),
      async (route) => {
        if (route.request().method() === 'PUT') await uploading;
        await route.continue();
      },
    );
    await page.getByLabel('Attach files').setInputFiles({ name: 'invoice.txt', mimeType: 'text/plain', buffer: Buffer.from('Invoice 99') });
    await page.getByLabel('Message').fill('And the invoice');
    await page.getByLabel('Message').press('Enter');
    await expect.poll(() => tickets.length).toBe(1);
    await page.getByLabel('Message').press('Enter');
    await page.getByRole('button', { name: 'Send' }).click();
    release();
    await visitor.waitFor((f) => f.type === 'message.created' && f.message.text === 'And the invoice', 15_000, 'the invoice');
    await expect.poll(() => page.getByLabel('Message').inputValue()).toBe('');
    expect(tickets).toHaveLength(1);
    const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: await agentToken(stack.httpUrl, 'agent-jay') });
    expect(history.body.items.filter((m: { sender: { type: string } }) => m.sender.type === 'agent').map((m: { text: string }) => m.text)).toEqual(['Here is the return label', '', 'And the invoice']);
  } finally {
    await visitor.close();
  }
});

it.skipIf(!runs)("shows colleagues' presence live in the transfer picker, those online first, a frame older than what it shows changing nothing", async () => {
  // The page's socket, passed through, so that the test can also hand it a frame of its own.
  let socket: WebSocketRoute | undefined;
  const page = await openConsole('agent-kit', 'Kit', {
    prepare: (p) =>
      p.routeWebSocket(/./, (ws) => {
        ws.connectToServer();
        socket = ws;
      }),
  });
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', newHandle('whatsapp'), 'Who can help me?').body)).status).toBe(200);
  const { conversationId } = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'Who can help me?', 15_000, 'the message');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  const picker = () => page.getByLabel('Transfer to').locator('option').allTextContents();
  const inOrder = (labels: string[]) => {
    const ranks = labels.slice(1).map((l) => ['online', 'away', 'offline'].indexOf(/\((\w+)\)$/.exec(l)![1]!));
    return ranks.every((rank, i) => i === 0 || ranks[i - 1]! <= rank);
  };
  await expect.poll(picker).toContain('Olga (online)');
  try {
    colleague.send({ action: 'setPresence', status: 'away' });
    const away = await colleague.waitFor((f) => f.type === 'presence' && f.agentId === 'agent-olga' && f.status === 'away', 15_000, 'the presence');
    await expect.poll(picker).toContain('Olga (away)');
    expect(inOrder(await picker())).toBe(true);

    // Frames of two changes delivered in the wrong order: the older "online" comes after "away"
    // (then a frame of nobody's, to know the console has taken both).
    const earlier = new Date(Date.parse(away.at) - 1000).toISOString();
    socket!.send(JSON.stringify({ type: 'presence', agentId: 'agent-olga', status: 'online', at: earlier }));
    socket!.send(JSON.stringify({ type: 'presence', agentId: 'agent-zed', status: 'offline', at: away.at }));
    await expect.poll(picker).toContain('agent-zed (offline)');
    expect(await picker()).toContain('Olga (away)');
  } finally {
    colleague.send({ action: 'setPresence', status: 'online' });
  }
  await expect.poll(picker).toContain('Olga (online)');
  expect(inOrder(await picker())).toBe(true);
});

it.skipIf(!runs)("leaves a colleague's conversation it shows unread for them, reads its own, and reads the colleague's once it is the agent's", async () => {
  // Every frame the page sends, on its way to the server.
  const sent: { action?: string; conversationId?: string }[] = [];
  const page = await openConsole('agent-max', 'Max', {
    prepare: (p) =>
      p.routeWebSocket(/./, (ws) => {
        const server = ws.connectToServer();
        ws.onMessage((m) => {
          sent.push(JSON.parse(String(m)));
          server.send(m);
        });
      }),
  });
  const customer = async (text: string) => {
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', newHandle('whatsapp'), text).body)).status).toBe(200);
    return (await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === text, 15_000, text)).conversationId as string;
  };
  const olgas = await customer('Olga said she would call me back');
  const olga = await agentToken(stack.httpUrl, 'agent-olga');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${olgas}/assign`, { token: olga, body: { agentId: 'agent-olga' } })).status).toBe(200);
  // Max's own (routing may hand a new conversation to anyone online: assigned, to be sure).
  const maxs = await customer('Anyone there?');
  const max = await agentToken(stack.httpUrl, 'agent-max');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${maxs}/assign`, { token: max, body: { agentId: 'agent-max' } })).status).toBe(200);
  const reads = () => sent.filter((f) => f.action === 'markRead').map((f) => f.conversationId);

  // Act: Max looks into Olga's conversation, then opens his own
  await expect.poll(() => row(page, olgas).textContent(), { timeout: 15_000 }).toContain('agent-olga');
  await row(page, olgas).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Olga said she would call me back']);
  await expect.poll(() => row(page, maxs).textContent(), { timeout: 15_000 }).toContain(' · me · ');
  await row(page, maxs).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Anyone there?']);

  // Assess: his own is read; Olga's is not (the page sends in order)
  await expect.poll(reads).toContain(maxs);
  expect(reads()).not.toContain(olgas);
  expect((await http(stack.httpUrl, 'GET', `/v1/conversations/${olgas}`, { token: olga })).body.unreadCount).toBe(1);

  // ...until Max takes it: then it is his to read
  await row(page, olgas).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Olga said she would call me back']);
  await page.getByRole('button', { name: 'Assign to me' }).click();
  await expect.poll(reads).toContain(olgas);
  await expect.poll(async () => (await http(stack.httpUrl, 'GET', `/v1/conversations/${olgas}`, { token: olga })).body.unreadCount).toBe(0);
});

it.skipIf(!runs)('with feed=focused: connects focused and lists what that feed keeps live, Mine, Unassigned and Mentions, a transfer taking a conversation out', async () => {
  const sockets: string[] = [];
  const page = await openConsole('agent-lou', 'Lou', { query: '?feed=focused', sockets });
  expect(sockets.map((url) => new URL(url).searchParams.get('feed'))).toEqual(['focused']);
  // Open, Pending and Resolved would hold colleagues' conversations, which this feed no longer follows.
  const shown = async () => (await page.locator('.filters button:visible').allTextContents()).join(',');
  expect(await shown()).toBe('Mine,Unassigned,Mentions');
  expect(await page.locator('.filters button[aria-pressed=true]').textContent()).toBe('Mine');

  // Assigned to Lou: in Mine, live, and its next message moves its unread count.
  const handle = newHandle('whatsapp');
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, 'Is my refund through?').body)).status).toBe(200);
  const { conversationId } = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'Is my refund through?', 15_000, 'the message');
  const lou = await agentToken(stack.httpUrl, 'agent-lou');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/assign`, { token: lou, body: { agentId: 'agent-lou' } })).status).toBe(200);
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  const unread = () => row(page, conversationId).locator('.unread').textContent();
  const before = Number(await unread());
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, 'It has been a week').body)).status).toBe(200);
  await expect.poll(async () => Number(await unread()), { timeout: 15_000 }).toBe(before + 1);
  // One too long for a frame comes cut, without its conversation, and no conversation.updated
  // repeats it on this feed: the console reads the conversation.
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, `${'é'.repeat(70_000)} end`).body)).status).toBe(200);
  await expect.poll(async () => Number(await unread()), { timeout: 15_000 }).toBe(before + 2);

  // Transferred, while Lou has it open, to a colleague whose console is connected: it leaves
  // Lou's list, and the view says it is no longer followed instead of silently going stale.
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toContain('It has been a week');
  expect(await page.locator('.view .unfollowed').isVisible()).toBe(false);
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/transfer`, { token: lou, body: { agentId: 'agent-olga' } })).status).toBe(200);
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(0);
  await expect.poll(() => details(page)).toContain('assigned to agent-olga');
  const unfollowed = async () => (await page.locator('.view .unfollowed:visible').allTextContents()).join(' ');
  await expect.poll(unfollowed).toContain('Handed to Olga: this console no longer follows it live');

  // What the customer writes next reaches Olga; Lou's view shows it once Lou reloads it.
  expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, 'Any news on it?').body)).status).toBe(200);
  await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'Any news on it?', 15_000, 'the next message');
  await page.locator('.view .unfollowed').getByRole('button', { name: 'Reload' }).click();
  await expect.poll(() => texts(page, '.message.inbound'), { timeout: 15_000 }).toContain('Any news on it?');

  // Given back to Lou: followed again, the notice gone.
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/assign`, { token: lou, body: { agentId: 'agent-lou' } })).status).toBe(200);
  await expect.poll(() => page.locator('.view .unfollowed').isVisible(), { timeout: 15_000 }).toBe(false);
  await expect.poll(() => details(page)).toContain('assigned to me');
});

it.skipIf(!runs)("puts the unread count of the list shown in the tab's title, live: read in the open conversation, grown in a tab left in the background, plain again at 0", async () => {
  // Routing gives Nia nothing: what she holds, she was given here.
  const admin = await agentToken(stack.httpUrl, 'admin-ada', 'admin', 'Ada');
  expect((await http(stack.httpUrl, 'PUT', '/v1/agents/agent-nia', { token: admin, body: { liveCapacity: 0, asyncCapacity: 0 } })).status).toBe(200);
  const page = await openConsole('agent-nia', 'Nia');
  await page.getByRole('button', { name: 'Mine' }).click();
  await expect.poll(() => page.locator('.filters button[aria-pressed=true]').textContent()).toBe('Mine');
  expect(await page.title()).toBe('Conversa console');

  const nia = await agentToken(stack.httpUrl, 'agent-nia');
  const customer = async (text: string, handle = newHandle('whatsapp')) => {
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', handle, text).body)).status).toBe(200);
    const frame = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === text, 15_000, text);
    return { conversationId: frame.conversationId as string, handle };
  };
  const first = await customer('Where do I send the return?');
  const second = await customer('Do you price match?');
  for (const { conversationId } of [first, second]) {
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/assign`, { token: nia, body: { agentId: 'agent-nia' } })).status).toBe(200);
  }
  await expect.poll(() => page.title(), { timeout: 15_000 }).toBe('(2) Conversa console');
  await customer('The label is torn', first.handle);
  await expect.poll(() => page.title(), { timeout: 15_000 }).toBe('(3) Conversa console');

  // Opened in a visible tab: read, so it counts no more.
  await row(page, first.conversationId).click();
  await expect.poll(() => page.title(), { timeout: 15_000 }).toBe('(1) Conversa console');

  // The tab goes to the background: what the customer writes in the open conversation is not read, and counts.
  const visibility = (state: 'visible' | 'hidden') =>
    page.evaluate((value) => {
      const { document } = globalThis as any;
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => value });
      document.dispatchEvent(new Event('visibilitychange'));
    }, state);
  await visibility('hidden');
  await customer('Hello?', first.handle);
  await expect.poll(() => texts(page, '.message.inbound'), { timeout: 15_000 }).toContain('Hello?');
  await expect.poll(() => page.title(), { timeout: 15_000 }).toBe('(2) Conversa console');

  // Back to the tab: read; then the other one too, and the title is the page's own again.
  await visibility('visible');
  await expect.poll(() => page.title(), { timeout: 15_000 }).toBe('(1) Conversa console');
  await row(page, second.conversationId).click();
  await expect.poll(() => page.title(), { timeout: 15_000 }).toBe('Conversa console');
});

it.skipIf(!runs)("mentions a colleague from a note: '@' offers the team, the colleague's console shows a notice naming the conversation, opens it, and lists it under Mentions", async () => {
  const ben = await openConsole('agent-ben', 'Ben');
  const ana = await openConsole('agent-ana', 'Ana');
  const { visitor, conversationId } = await webVisitorSays('Mira', 'My voucher does not work');
  try {
    await expect.poll(() => row(ana, conversationId).count(), { timeout: 15_000 }).toBe(1);
    await row(ana, conversationId).click();
    await expect.poll(() => texts(ana, '.message.inbound')).toContain('My voucher does not work');

    // A reply offers nobody; in a note, "@Be" offers Ben, and Enter picks him.
    const message = ana.getByLabel('Message');
    await message.fill('Hi @Be');
    expect(await ana.locator('.mention-picker button:visible').count()).toBe(0);
    await message.fill('');
    await ana.getByLabel('Private note').setChecked(true);
    await message.fill('Voucher issue, @Be');
    await expect.poll(() => ana.locator('.mention-picker button:visible').allTextContents()).toEqual(['@Ben']);
    await message.press('Enter');
    await expect.poll(() => message.inputValue()).toBe('Voucher issue, @Ben ');
    await message.pressSequentially('can you check?');

    // The pick stays with the draft: another conversation opened meanwhile, and a reload.
    expect((await postWebhook(stack, 'whatsapp', textWebhook('whatsapp', newHandle('whatsapp'), 'Is my voucher still valid?').body)).status).toBe(200);
    const other = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'Is my voucher still valid?', 15_000, 'the other customer');
    await expect.poll(() => row(ana, other.conversationId).count(), { timeout: 15_000 }).toBe(1);
    await row(ana, other.conversationId).click();
    await expect.poll(() => message.inputValue()).not.toContain('Voucher issue');
    await row(ana, conversationId).click();
    await expect.poll(() => message.inputValue()).toBe('Voucher issue, @Ben can you check?');
    await ana.reload();
    await expect.poll(() => ana.locator('header .state').textContent()).toBe('online');
    await expect.poll(() => row(ana, conversationId).count(), { timeout: 15_000 }).toBe(1);
    await row(ana, conversationId).click();
    await expect.poll(() => message.inputValue()).toBe('Voucher issue, @Ben can you check?');
    expect(await ana.getByLabel('Private note').isChecked()).toBe(true);
    await message.press('Enter');
    await expect.poll(() => message.inputValue()).toBe('');

    // Sent as a note naming Ben (the team sees it with its mentions; the visitor never does).
    const note = await colleague.waitFor((f) => f.type === 'message.created' && f.message.text === 'Voucher issue, @Ben can you check?', 15_000, 'the note');
    expect(note.message).toMatchObject({ private: true, mentions: ['agent-ben'] });

    // Ben's console says who mentioned him where, and opens it.
    const notice = ben.locator('.mentioned:visible');
    await expect.poll(() => notice.textContent(), { timeout: 15_000 }).toContain('Ana mentioned you in the conversation with Mira');
    await notice.getByRole('button', { name: 'Open' }).click();
    await expect.poll(() => texts(ben, '.message.note')).toEqual(['Voucher issue, @Ben can you check?']);
    await expect.poll(() => ben.locator('.head .who').textContent()).toContain('Mira');
    expect(await ben.locator('.mentioned:visible').count()).toBe(0);

    // His Mentions list has it (GET /v1/conversations?mentioned=me).
    await ben.getByRole('button', { name: 'Mentions', exact: true }).click();
    await expect.poll(() => row(ben, conversationId).count(), { timeout: 15_000 }).toBe(1);
    await expect.poll(() => ben.locator('.inbox .conversation').count()).toBe(1);
    expect(JSON.stringify(visitor.frames)).not.toContain('Voucher issue');
  } finally {
    await visitor.close();
  }
});

it.skipIf(!runs)('runs a macro from the head: the customer gets its reply, the team its note; a failed run, chosen again once fixed, goes on without writing twice', async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-ada', 'admin', 'Ada');
  const settings = (labels: string[]) => http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { labels: labels.map((name) => ({ name })) } });
  const macro = (name: string, actions: unknown[]) => http(stack.httpUrl, 'POST', '/v1/macros', { token: admin, body: { name, actions } });
  expect((await settings(['vip', 'gone'])).status).toBe(200);
  expect((await macro('Tag and thank', [{ type: 'addLabels', labels: ['vip'] }, { type: 'sendMessage', text: 'Thanks {{contact.name|there}}!' }, { type: 'addNote', text: 'Tagged VIP' }])).status).toBe(201);
  expect((await macro('Needs a label', [{ type: 'addNote', text: 'Before the stop' }, { type: 'addLabels', labels: ['gone'] }])).status).toBe(201);
  // Removed from the settings after the macro was saved: its run stops at that action.
  expect((await settings(['vip'])).status).toBe(200);
  const page = await openConsole('agent-maya', 'Maya');
  const { visitor, conversationId } = await webVisitorSays('Rita', 'I order every week');
  try {
    await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
    await row(page, conversationId).click();
    await expect.poll(() => texts(page, '.message.inbound')).toContain('I order every week');
    const conversation = async () => (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}`, { token: admin })).body;
    const notes = async (text: string) =>
      ((await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=100`, { token: admin })).body.items as { text: string }[]).filter((m) => m.text === text).length;

    // Chosen in the head: the label, the reply to the customer written as Maya, the note to the team only.
    const choose = page.getByLabel('Macros');
    await expect.poll(() => choose.locator('option').allTextContents()).toEqual(['Macros…', 'Needs a label', 'Tag and thank']);
    await choose.selectOption({ label: 'Tag and thank' });
    const reply = await visitor.waitFor((f) => f.type === 'message.created' && f.message.text === 'Thanks Rita!', 15_000, 'the reply');
    expect(reply.message.sender).toMatchObject({ type: 'agent', id: 'agent-maya' });
    await expect.poll(() => page.locator('.view .notice').textContent()).toBe('Tag and thank done.');
    await expect.poll(() => texts(page, '.message.note')).toEqual(['Tagged VIP']);
    expect((await conversation()).labels).toEqual(['vip']);

    // A run that stops: the console says where and why; what it did before stays.
    await choose.selectOption({ label: 'Needs a label' });
    await expect.poll(() => page.locator('.view .notice').textContent()).toContain('Needs a label failed: action 1 (addLabels) failed: label gone is not defined');
    await expect.poll(() => texts(page, '.message.note')).toEqual(['Tagged VIP', 'Before the stop']);

    // Fixed, and chosen again: the same run goes on from the failed action, the note not written again.
    expect((await settings(['vip', 'gone'])).status).toBe(200);
    await choose.selectOption({ label: 'Needs a label' });
    await expect.poll(() => page.locator('.view .notice').textContent()).toBe('Needs a label done.');
    expect((await conversation()).labels).toEqual(['gone', 'vip']);
    expect(await notes('Before the stop')).toBe(1);
    expect(JSON.stringify(visitor.frames)).not.toContain('Tagged VIP');
    expect(JSON.stringify(visitor.frames)).not.toContain('Before the stop');
  } finally {
    await visitor.close();
  }
});

/** A colleague's notes in a conversation, one after the other (ids in that order): a long history fast. */
async function colleagueNotes(conversationId: string, prefix: string, count: number): Promise<void> {
  const token = await agentToken(stack.httpUrl, 'agent-olga', 'agent', 'Olga');
  for (let i = 0; i < count; i += 1) {
    const sent = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, {
      token,
      body: { text: `${prefix} ${String(i).padStart(2, '0')}`, private: true, clientMessageId: `${prefix}-${i}` },
    });
    expect(sent.status).toBe(202);
  }
}

/** Whether the element lies wholly inside the browser's window. */
const inWindow = (page: Page, selector: string) =>
  page.locator(selector).evaluate((node) => {
    const box = node.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= (globalThis as any).innerHeight && box.height > 0;
  });

it.skipIf(!runs)('keeps a long history scrolling inside its log: the newest message and the composer stay in the window', async () => {
  const conversationId = await whatsappCustomer('Is my order on its way?');
  await colleagueNotes(conversationId, 'long history', 40);
  const page = await openConsole('agent-rosa', 'Rosa');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.note')).toContain('long history 39');
  // The page itself does not grow with the history: the log scrolls, at its newest message.
  expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollHeight <= (globalThis as any).innerHeight)).toBe(true);
  expect(await page.locator('.log').evaluate((log) => log.scrollHeight > log.clientHeight)).toBe(true);
  await expect.poll(() => inWindow(page, '.log .message:last-child')).toBe(true);
  expect(await inWindow(page, '.composer')).toBe(true);
  // The header bar is styled as the console's (its rule once missed the element).
  expect(await page.locator('header').evaluate((header) => (globalThis as any).getComputedStyle(header).display)).toBe('flex');
});

it.skipIf(!runs)("puts a canned response whose fill answered after the agent opened another conversation in the draft it was filled for, not in the one shown", async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-ada', 'admin', 'Ada');
  const created = await http(stack.httpUrl, 'POST', '/v1/canned-responses', { token: admin, body: { shortCode: 'switch', text: 'Dear {{contact.name|customer}}, thanks.' } });
  expect(created.status).toBe(201);
  const first = await whatsappCustomer('Where is parcel one?');
  const second = await whatsappCustomer('Where is parcel two?');
  const name = (await http(stack.httpUrl, 'GET', `/v1/conversations/${first}`, { token: admin })).body.contact.name as string;
  const page = await openConsole('agent-sami', 'Sami');
  // The fill's answer waits until the agent is in the other conversation.
  let release: (() => void) | undefined;
  await page.route('**/v1/canned-responses/*/render?**', async (route) => {
    await new Promise<void>((resolve) => (release = resolve));
    await route.continue();
  });
  await expect.poll(() => row(page, first).count(), { timeout: 15_000 }).toBe(1);
  await row(page, first).click();
  const label = '/switch: Dear {{contact.name|customer}}, thanks.';
  await expect.poll(() => page.getByLabel('Canned response').locator('option').allTextContents()).toContain(label);
  // Something written already: the fill goes after it.
  await page.getByLabel('Message').fill('Hello!');
  await page.getByLabel('Canned response').selectOption({ label });
  await expect.poll(() => release !== undefined).toBe(true);
  await row(page, second).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Where is parcel two?']);
  release!();
  // Once the fill is in a draft (kept in sessionStorage), it is the first conversation's, and the one shown has none.
  const kept = () => page.evaluate(() => JSON.parse((globalThis as any).sessionStorage.getItem('conversa.drafts.agent-sami') || '{}'));
  await expect.poll(async () => JSON.stringify(await kept())).toContain('Dear');
  expect(Object.keys(await kept())).toEqual([first]);
  expect(await page.getByLabel('Message').inputValue()).toBe('');
  await row(page, first).click();
  await expect.poll(() => page.getByLabel('Message').inputValue()).toBe(`Hello! Dear ${name}, thanks.`);
});

it.skipIf(!runs)('catches up on more than a page of messages said while its socket was down: none missing, none twice, in order', async () => {
  const others = stack.websocket.connections();
  const conversationId = await whatsappCustomer('Can I change my address?');
  const page = await openConsole('agent-tova', 'Tova');
  const [own] = stack.websocket.connections().filter((id) => !others.includes(id));
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Can I change my address?']);
  const before = await texts(page, '.message');

  // As in the reconnection case above: the socket drops and cannot come back while `blocked`.
  await blockSockets(page);
  expect(stack.websocket.dropConnection(own!, { notify: true })).toBe(true);
  await expect.poll(() => page.locator('header .state').textContent()).not.toBe('online');
  // More than the history's page of 50 while nothing listens.
  await colleagueNotes(conversationId, 'while away', 60);
  await unblockSockets(page);
  await expect.poll(() => page.locator('header .state').textContent(), { timeout: 20_000 }).toBe('online');

  const expected = [...before, ...Array.from({ length: 60 }, (_, i) => `while away ${String(i).padStart(2, '0')}`)];
  await expect.poll(() => texts(page, '.message')).toEqual(expected);
  // Everything is shown: there is nothing older to offer.
  expect(await page.getByRole('button', { name: 'Older messages' }).isVisible()).toBe(false);
});

it.skipIf(!runs)("offers no 'Older messages' of the conversation it left in the one it opens", async () => {
  const long = await whatsappCustomer('I have a long story');
  const short = await whatsappCustomer('Quick question');
  await colleagueNotes(long, 'story', 55);
  const page = await openConsole('agent-uma', 'Uma');
  await expect.poll(() => row(page, long).count(), { timeout: 15_000 }).toBe(1);
  await row(page, long).click();
  await expect.poll(() => texts(page, '.message.note')).toContain('story 54');
  await expect.poll(() => page.getByRole('button', { name: 'Older messages' }).isVisible()).toBe(true);

  // The other conversation's history is on its way: its own page says whether there is more.
  let release: (() => void) | undefined;
  await page.route(`**/v1/conversations/${short}/messages?**`, async (route) => {
    await new Promise<void>((resolve) => (release = resolve));
    await route.continue();
  });
  await row(page, short).click();
  await expect.poll(() => release !== undefined).toBe(true);
  expect(await page.getByRole('button', { name: 'Older messages' }).isVisible()).toBe(false);
  release!();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Quick question']);
  expect(await page.getByRole('button', { name: 'Older messages' }).isVisible()).toBe(false);
  expect(await page.locator('.notice[role=status]').textContent()).toBe('');
});

it.skipIf(!runs)('shows a live message at the newest end of the log in full, and leaves an agent who scrolled back to read where they were', async () => {
  const conversationId = await whatsappCustomer('Do you ship abroad?');
  await colleagueNotes(conversationId, 'earlier', 30);
  const page = await openConsole('agent-vera', 'Vera');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.note')).toContain('earlier 29');
  await expect.poll(() => inWindow(page, '.log .message:last-child')).toBe(true);

  // At the newest end: a live message shows whole.
  await colleagueNotes(conversationId, 'live one', 1);
  await expect.poll(() => texts(page, '.message.note')).toContain('live one 00');
  await expect.poll(() => inWindow(page, '.log .message:last-child')).toBe(true);

  // Scrolled back: the next one leaves the log where the agent put it.
  await page.locator('.log').evaluate((log) => (log.scrollTop = 100));
  await colleagueNotes(conversationId, 'live two', 1);
  await expect.poll(() => texts(page, '.message.note')).toContain('live two 00');
  expect(await page.locator('.log').evaluate((log) => log.scrollTop)).toBe(100);
});

it.skipIf(!runs)("lays a right-to-left customer's name and messages out right to left, and a left-to-right reply as before", async () => {
  const session = await visitorSession(stack.httpUrl, { name: 'سارة' });
  const visitor = await WsClient.connect(session.websocketUrl, session.token);
  try {
    visitor.send({ action: 'sendMessage', text: 'مرحبا! أين طلبي؟', clientMessageId: 'rtl-1' });
    const ack = await visitor.waitFor((f) => f.type === 'ack' && f.clientMessageId === 'rtl-1', 15_000, 'the ack');
    const page = await openConsole('agent-wren', 'Wren');
    await expect.poll(() => row(page, ack.conversationId).count(), { timeout: 15_000 }).toBe(1);
    // The direction the element holding exactly `text` is laid out in (a re-render may replace it: read again).
    const direction = (selector: string, text: string) =>
      page.locator(selector).evaluate((scope, wanted) => {
        const holder = [...scope.querySelectorAll('*')].find((node: any) => node.textContent === wanted) ?? scope;
        return (globalThis as any).getComputedStyle(holder).direction;
      }, text);
    expect(await direction(`.inbox .conversation[data-id="${ack.conversationId}"]`, 'سارة')).toBe('rtl');
    await row(page, ack.conversationId).click();
    await expect.poll(() => texts(page, '.message.inbound')).toEqual(['مرحبا! أين طلبي؟']);
    await expect.poll(() => direction('.log', 'مرحبا! أين طلبي؟')).toBe('rtl');
    await send(page, 'Hello! Let me check.');
    await expect.poll(() => texts(page, '.message.outbound')).toContain('Hello! Let me check.');
    await expect.poll(() => direction('.log', 'Hello! Let me check.')).toBe('ltr');
  } finally {
    await visitor.close();
  }
});

it.skipIf(!runs)('wraps a name of one very long word in the inbox and the head, so the page never scrolls sideways', async () => {
  const name = 'Bartholomew'.repeat(18);
  const session = await visitorSession(stack.httpUrl, { name });
  const visitor = await WsClient.connect(session.websocketUrl, session.token);
  try {
    visitor.send({ action: 'sendMessage', text: `Hi, I am ${name}`, clientMessageId: 'long-name' });
    const ack = await visitor.waitFor((f) => f.type === 'ack' && f.clientMessageId === 'long-name', 15_000, 'the ack');
    const page = await openConsole('agent-yara', 'Yara');
    await expect.poll(() => row(page, ack.conversationId).count(), { timeout: 15_000 }).toBe(1);
    await row(page, ack.conversationId).click();
    await expect.poll(() => page.locator('.head .who').textContent()).toContain(name);
    const overflows = (selector: string) => page.locator(selector).evaluate((node) => node.scrollWidth > node.clientWidth);
    expect(await overflows('html')).toBe(false);
    expect(await overflows('.inbox')).toBe(false);
    expect(await overflows('.head')).toBe(false);
  } finally {
    await visitor.close();
  }
});

it.skipIf(!runs)('says an action refused after the agent opened another conversation as about the conversation it was for', async () => {
  const { visitor, conversationId: first } = await webVisitorSays('Zelda', 'Please close this');
  try {
    const second = await whatsappCustomer('Another question');
    const page = await openConsole('agent-zora', 'Zora');
    await expect.poll(() => row(page, first).count(), { timeout: 15_000 }).toBe(1);
    await row(page, first).click();
    await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Please close this']);
    // The API's refusal (a 409, as a resolve racing a colleague's change may get) comes once the agent is elsewhere.
    let release: (() => void) | undefined;
    await page.route(`**/v1/conversations/${first}/resolve`, async (route) => {
      await new Promise<void>((resolve) => (release = resolve));
      await route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: { code: 'conflict', message: 'The conversation changed meanwhile' } }) });
    });
    await page.getByRole('button', { name: 'Resolve', exact: true }).click();
    await expect.poll(() => release !== undefined).toBe(true);
    await row(page, second).click();
    await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Another question']);
    release!();
    await expect.poll(() => page.locator('.notice[role=status]').textContent()).toBe('Not done in the conversation with Zelda: The conversation changed meanwhile');
    // In the conversation it was for, the refusal is said as the API put it.
    await row(page, first).click();
    release = undefined;
    await page.getByRole('button', { name: 'Resolve', exact: true }).click();
    await expect.poll(() => release !== undefined).toBe(true);
    release!();
    await expect.poll(() => page.locator('.notice[role=status]').textContent()).toBe('The conversation changed meanwhile');
    expect(await details(page)).toContain('open');
  } finally {
    await visitor.close();
  }
});

it.skipIf(!runs)("never carries a transfer set up in one conversation, its note and colleague, into the next one opened", async () => {
  const first = await whatsappCustomer('Refund please');
  const second = await whatsappCustomer('Just a question');
  const page = await openConsole('agent-abel', 'Abel');
  await expect.poll(() => row(page, first).count(), { timeout: 15_000 }).toBe(1);
  await row(page, first).click();
  await expect.poll(() => page.getByLabel('Transfer to').locator('option').allTextContents()).toContain('Olga (online)');
  await page.getByLabel('Transfer to').selectOption('agent-olga');
  await page.getByLabel('Transfer note').fill('Angry about the refund');
  await row(page, second).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Just a question']);
  expect(await page.getByLabel('Transfer note').inputValue()).toBe('');
  expect(await page.getByLabel('Transfer to').inputValue()).toBe('');
  // Transfer pressed now asks whom to, rather than sending the first conversation's note with this one.
  await page.getByRole('button', { name: 'Transfer', exact: true }).click();
  await expect.poll(() => page.locator('.notice[role=status]').textContent()).toBe('Choose whom to transfer to.');
  const token = await agentToken(stack.httpUrl, 'agent-abel');
  const history = await http(stack.httpUrl, 'GET', `/v1/conversations/${second}/messages`, { token });
  expect(JSON.stringify(history.body)).not.toContain('Angry about the refund');
});

it.skipIf(!runs)("puts an older page above the message the agent scrolled back to, which stays where it was", async () => {
  const conversationId = await whatsappCustomer('A story in many parts');
  await colleagueNotes(conversationId, 'part', 70);
  const page = await openConsole('agent-bria', 'Bria');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.note')).toContain('part 69');
  await page.locator('.log').evaluate((log) => (log.scrollTop = 0));
  const oldest = page.locator('.log .message').first();
  const reading = await oldest.textContent();
  // How far down the log's visible area a message is.
  const inLog = (message: typeof oldest) => message.evaluate((node) => node.getBoundingClientRect().top - node.parentElement!.getBoundingClientRect().top);
  const before = await inLog(oldest);
  await page.getByRole('button', { name: 'Older messages' }).click();
  await expect.poll(() => texts(page, '.message.note')).toContain('part 00');
  const after = await inLog(page.locator('.log .message', { hasText: reading! }));
  expect(Math.abs(after - before)).toBeLessThan(2);
});

it.skipIf(!runs)("lets an erased customer's conversation go at once: out of the inbox, off the screen and out of the tab's drafts", async () => {
  const erased = await whatsappCustomer('Please forget me');
  const kept = await whatsappCustomer('I stay');
  const admin = await agentToken(stack.httpUrl, 'admin-ada', 'admin', 'Ada');
  const contactId: string = (await http(stack.httpUrl, 'GET', `/v1/conversations/${erased}`, { token: admin })).body.contact.id;
  const page = await openConsole('agent-cyra', 'Cyra');
  await expect.poll(() => row(page, erased).count(), { timeout: 15_000 }).toBe(1);
  await row(page, kept).click();
  await page.getByLabel('Message').fill('A draft that stays');
  await row(page, erased).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Please forget me']);
  await page.getByLabel('Message').fill('A draft naming what they asked');
  const drafts = () => page.evaluate(() => Object.keys(JSON.parse((globalThis as any).sessionStorage.getItem('conversa.drafts.agent-cyra') || '{}')));
  await expect.poll(async () => (await drafts()).sort()).toEqual([erased, kept].sort());

  expect((await http(stack.httpUrl, 'DELETE', `/v1/contacts/${contactId}`, { token: admin })).status).toBe(202);
  await colleague.waitFor((f) => f.type === 'conversation.deleted' && f.conversationId === erased, 15_000, 'conversation.deleted');
  await expect.poll(() => row(page, erased).count()).toBe(0);
  await expect.poll(() => page.locator('.view').isVisible()).toBe(false);
  expect(await page.locator('.log').textContent()).toBe('');
  expect(await drafts()).toEqual([kept]);
  // The other conversation and its draft are as they were.
  await row(page, kept).click();
  await expect.poll(() => page.getByLabel('Message').inputValue()).toBe('A draft that stays');
});

it.skipIf(!runs)("says a macro's end after the agent opened another conversation as about the conversation it ran in, so it is not run again in the wrong one", async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-ada', 'admin', 'Ada');
  expect((await http(stack.httpUrl, 'POST', '/v1/macros', { token: admin, body: { name: 'Note the call', actions: [{ type: 'addNote', text: 'Called back' }] } })).status).toBe(201);
  const { visitor, conversationId: first } = await webVisitorSays('Dalia', 'Call me back');
  try {
    const second = await whatsappCustomer('Unrelated question');
    const page = await openConsole('agent-dina', 'Dina');
    await expect.poll(() => row(page, first).count(), { timeout: 15_000 }).toBe(1);
    await row(page, first).click();
    await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Call me back']);
    // The run's answer (here a 503) comes once the agent is in the other conversation.
    let release: (() => void) | undefined;
    await page.route('**/macros/*/run', async (route) => {
      await new Promise<void>((resolve) => (release = resolve));
      await route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'Try again' } }) });
    });
    await expect.poll(() => page.getByLabel('Macros').locator('option').allTextContents()).toContain('Note the call');
    await page.getByLabel('Macros').selectOption({ label: 'Note the call' });
    await expect.poll(() => release !== undefined).toBe(true);
    await row(page, second).click();
    await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Unrelated question']);
    release!();
    await expect.poll(() => page.locator('.notice[role=status]').textContent()).toBe(
      'Note the call failed in the conversation with Dalia: Try again (choose it again to retry from there)',
    );
  } finally {
    await visitor.close();
  }
});

it.skipIf(!runs)('keeps an update of a message older than the pages shown for its own page, in its place there', async () => {
  const { visitor, conversationId } = await webVisitorSays('Elif', 'Status of my claim?');
  try {
    const page = await openConsole('agent-edda', 'Edda');
    await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
    await row(page, conversationId).click();
    await send(page, 'We are on it.');
    const reply = await visitor.waitFor((f) => f.type === 'message.created' && f.message.text === 'We are on it.', 15_000, 'the reply');
    // The team writes more than a page after it; opened again, the console shows the newest page only.
    await colleagueNotes(conversationId, 'team', 55);
    // What the reloaded console's socket receives (to know the update reached it).
    const received: string[] = [];
    page.on('websocket', (socket) => socket.on('framereceived', (frame) => received.push(String(frame.payload))));
    await page.reload();
    await expect.poll(() => page.locator('header .state').textContent()).toBe('online');
    await row(page, conversationId).click();
    await expect.poll(() => texts(page, '.message.note')).toContain('team 54');
    await expect.poll(() => page.getByRole('button', { name: 'Older messages' }).isVisible()).toBe(true);

    // The visitor reads the reply now: its update is for a page not shown.
    visitor.send({ action: 'markRead', messageId: reply.message.id });
    await expect.poll(() => received.some((frame) => frame.includes('"message.updated"') && frame.includes(reply.message.id)), { timeout: 15_000 }).toBe(true);
    // A frame after it shown is the update handled (one socket's frames are handled in order).
    await colleagueNotes(conversationId, 'after the read', 1);
    await expect.poll(() => texts(page, '.message.note')).toContain('after the read 00');
    expect(await texts(page, '.message.outbound:not(.note)')).not.toContain('We are on it.');
    // Its page, read, has it once, in order, as read.
    await page.getByRole('button', { name: 'Older messages' }).click();
    await expect.poll(() => texts(page, '.message.outbound:not(.note)')).toContain('We are on it.');
    const shown = await texts(page, '.message');
    expect(shown.filter((t) => t === 'We are on it.')).toHaveLength(1);
    expect(shown.indexOf('We are on it.')).toBeLessThan(shown.indexOf('team 00'));
    // Said as a live read says it.
    expect(await page.locator(`.message[data-id="${reply.message.id}"] .meta`).textContent()).toContain('seen');
  } finally {
    await visitor.close();
  }
});

it.skipIf(!runs)('goes back to the sign-in form once its token has expired, though its socket stays open', async () => {
  const conversationId = await whatsappCustomer('Are you there?');
  const page = await openConsole('agent-faye', 'Faye');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['Are you there?']);
  // The page hands over a token of the same agent that ends in a few seconds (taken in place, on the same socket).
  await page.evaluate((token) => (globalThis as any).ConversaConsole.signIn(token), stack.issueAgentToken('agent-faye', 'agent', 'Faye', 3));
  await expect.poll(() => page.locator('form.signin').isVisible(), { timeout: 15_000 }).toBe(true);
  expect(await page.locator('form.signin .notice').textContent()).toBe('Your session ended: sign in again.');
  expect(await page.locator('.view').isVisible()).toBe(false);
  expect(await page.locator('.inbox').textContent()).toBe('');
});

it.skipIf(!runs)("leaves the Enter that confirms an input method's composition to it: nothing is sent until the agent's own Enter", async () => {
  const conversationId = await whatsappCustomer('こんにちは');
  const page = await openConsole('agent-gina', 'Gina');
  await expect.poll(() => row(page, conversationId).count(), { timeout: 15_000 }).toBe(1);
  await row(page, conversationId).click();
  await expect.poll(() => texts(page, '.message.inbound')).toEqual(['こんにちは']);
  const posted: string[] = [];
  await page.route(`**/v1/conversations/${conversationId}/messages`, (route) => {
    if (route.request().method() === 'POST') posted.push(route.request().postDataJSON().text);
    return route.continue();
  });
  // Mid-composition the text holds the reading; Enter (as the browser sends it then) picks the characters.
  await page.getByLabel('Message').fill('ありがとう');
  await page.getByLabel('Message').evaluate((node) => {
    const g = globalThis as any;
    node.dispatchEvent(new g.KeyboardEvent('keydown', { key: 'Enter', keyCode: 229, isComposing: true, bubbles: true, cancelable: true }));
  });
  // The agent's own Enter, once composed, sends the whole text, once.
  await page.getByLabel('Message').fill('ありがとうございます');
  await page.getByLabel('Message').press('Enter');
  await expect.poll(() => texts(page, '.message.outbound')).toContain('ありがとうございます');
  expect(posted).toEqual(['ありがとうございます']);
});
