/**
 * The reference widget in a real browser (Debian's chromium through playwright-core), on a page
 * of another origin than the API, as a shop's site is: CORS, the session, the WebSocket, typing,
 * read receipts both ways, a reconnection that catches up (more than a page too), older pages on demand, and the conversation
 * resumed after a reload; also the log's scrolling, right-to-left and long text, a phone's window, an
 * erasure while the page is open and the launcher's count across tabs.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { LocalStack } from '../../local/stack';
import { demoCustomer, widgetDemoPage, WIDGET_PATH } from '../../local/widget';
import { startTestStack } from '../support/stack';
import { agentToken, http, WsClient } from '../support/clients';
import { blockSockets, unblockSockets } from '../support/browser';
import { png } from '../support/png';
import { MAX_VISITOR_CONNECTIONS } from '../../src/domain/fanout';
import { identityHashOf } from '../../src/domain/visitors';

const CHROMIUM = '/usr/bin/chromium';
// CI installs chromium (.ci/run): there the test must run. Elsewhere it needs the package.
const runs = existsSync(CHROMIUM) || process.env.CI === 'true';

let stack: LocalStack;
let site: Server;
let siteUrl: string;
let browser: Browser;
let agent: WsClient;
let jwt: string;
let agentConnections: string[];

beforeAll(async () => {
  if (!runs) return;
  stack = await startTestStack();
  // The shop's own site: another origin than the API's.
  site = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    const customer = demoCustomer(new URL(req.url ?? '/', 'http://shop').searchParams);
    res.end(widgetDemoPage(stack.httpUrl, `${stack.httpUrl}${WIDGET_PATH}conversa-widget.js`, customer));
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/shop`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  jwt = await agentToken(stack.httpUrl, 'agent-wanda', 'agent', 'Wanda');
  agent = await WsClient.connect(stack.wsUrl, jwt);
  agentConnections = stack.websocket.connections();
});

afterAll(async () => {
  await agent?.close();
  await browser?.close();
  await new Promise((resolve) => (site ? site.close(resolve) : resolve(undefined)));
  await stack?.stop();
});

/**
 * Every browser context a test opens, closed after it even when it fails: a page left open keeps
 * its visitor socket, and the next test would count it.
 */
const openContexts = new Set<BrowserContext>();

async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext();
  openContexts.add(context);
  context.on('close', () => openContexts.delete(context));
  return context;
}

afterEach(async () => {
  await Promise.all([...openContexts].map((context) => context.close().catch(() => undefined)));
  openContexts.clear();
});

const widget = (page: Page) => page.locator('.conversa-widget');

/** Opens the chat on a page of the shop and starts it through the pre-chat form. */
async function fillPreChat(page: Page, name: string): Promise<void> {
  await widget(page).getByRole('button', { name: 'Chat with us' }).click();
  await widget(page).getByPlaceholder('Your name').fill(name);
  await widget(page).getByPlaceholder(/^Email/).fill(`${name.toLowerCase()}@example.com`);
  await widget(page).getByRole('button', { name: 'Start chatting' }).click();
}

/** A new browser (its own storage) on the shop's page, the chat started through the pre-chat form. */
async function startChat(name: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(siteUrl);
  await fillPreChat(page, name);
  return { context, page };
}

/** The visitor writes `text` in the chat and sends it: the agent's `message.created` frame for it. */
async function visitorSays(page: Page, text: string, what: string) {
  await widget(page).getByLabel('Message').fill(text);
  await widget(page).getByLabel('Message').press('Enter');
  return agent.waitFor((f) => f.type === 'message.created' && f.message.text === text, 15_000, what);
}

/** An agent's file, through an upload ticket, as a console sends one. */
async function agentSendsFile(conversationId: string, bytes: Buffer, name: string): Promise<void> {
  const ticket = await http(stack.httpUrl, 'POST', '/v1/uploads', { token: jwt, body: { contentType: 'image/png', size: bytes.length } });
  expect(ticket.status).toBe(201);
  const put = await fetch(ticket.body.url, { method: ticket.body.method, headers: ticket.body.headers, body: bytes });
  expect(put.status).toBe(200);
  const sent = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: '', attachments: [{ uploadId: ticket.body.uploadId, name }] } });
  expect(sent.status).toBe(202);
}

it.skipIf(!runs)('chats from a page of another origin: session, messages both ways, typing, receipts, a reconnection and a reload that resume', async () => {
  const context = await newContext();
  const page = await context.newPage();
  const browserErrors: string[] = [];
  page.on('pageerror', (error) => browserErrors.push(error.message));
  await page.goto(siteUrl);

  // The pre-chat form, then the visitor's first message.
  await fillPreChat(page, 'Bea');
  const created = await visitorSays(page, 'Is my order on its way?', 'the visitor message');
  const conversationId: string = created.conversationId;
  expect(created.message).toMatchObject({ channel: 'web', direction: 'inbound', sender: { type: 'contact' } });
  const conversation = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}`, { token: jwt });
  expect(conversation.body.contact).toMatchObject({ name: 'Bea', email: 'bea@example.com' });
  // The page's own copy took the stored message's id (from the ack or the event): one bubble.
  await expect.poll(() => widget(page).locator(`.message.inbound[data-id="${created.message.id}"]`).count()).toBe(1);
  await expect.poll(() => widget(page).locator('.message.inbound').count()).toBe(1);

  // The agent types, then replies: the widget shows both, and reads the reply on its own.
  agent.send({ action: 'typing', conversationId, state: 'on' });
  // Within the sign's 6 s life, but not within the poll's default second on a loaded machine (CI read it once).
  await expect.poll(() => widget(page).locator('.typing').textContent(), { timeout: 5_000 }).toBe('Wanda is typing…');
  const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: 'It ships today.' } });
  expect(reply.status).toBe(202);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent()).toContain('It ships today.');
  expect(await widget(page).locator('.typing').textContent()).toBe('');
  const sent = await agent.waitFor((f) => f.type === 'message.created' && f.message.text === 'It ships today.', 15_000, 'the reply');
  await agent.waitFor((f) => f.type === 'read' && f.messageId === sent.message.id && f.by?.type === 'contact', 15_000, "the visitor's read of the reply");

  // The agent reads the visitor's message: the widget says it was seen.
  agent.send({ action: 'markRead', conversationId, messageId: created.message.id });
  await expect.poll(() => widget(page).locator('.message.inbound .meta').last().textContent()).toBe('Seen');

  // API Gateway ends the socket (its two hours are up): what the agent writes meanwhile comes
  // with the history the widget reloads once it has reconnected.
  const visitorSockets = stack.websocket.connections().filter((id) => !agentConnections.includes(id));
  expect(visitorSockets).toHaveLength(1);
  stack.websocket.dropConnection(visitorSockets[0]!, { notify: true });
  await expect.poll(() => stack.websocket.connections().length).toBe(agentConnections.length);
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: 'Tracking: ZX-1' } })).status).toBe(202);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent(), { timeout: 15_000 }).toContain('Tracking: ZX-1');
  expect(stack.websocket.connections().filter((id) => !agentConnections.includes(id))).toHaveLength(1);
  // The history reloaded over what was shown: each message once (greeting, question, two replies).
  expect(await widget(page).locator('.message').count()).toBe(4);

  // A reload resumes the same visitor and conversation from the token the page kept.
  // It connects with the chat still closed, so that a reply shows on the launcher.
  await page.reload();
  await expect.poll(() => stack.websocket.connections().length).toBe(agentConnections.length + 1);
  const nudge = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: 'Anything else?' } });
  expect(nudge.status).toBe(202);
  await expect.poll(() => widget(page).locator('.badge').textContent()).toBe('1');
  expect(await widget(page).locator('.badge').isVisible()).toBe(true);
  await widget(page).getByRole('button', { name: 'Chat with us' }).click();
  expect(await widget(page).locator('.badge').isVisible()).toBe(false);
  // The history: the visitor's message, the autoresponder's greeting and the replies, once each.
  await expect.poll(() => widget(page).locator('.message').allTextContents()).toEqual([
    expect.stringContaining('Is my order on its way?'),
    expect.stringContaining('Thanks for getting in touch'),
    expect.stringContaining('It ships today.'),
    expect.stringContaining('Tracking: ZX-1'),
    expect.stringContaining('Anything else?'),
  ]);
  // Opened, the reply is read.
  await agent.waitFor((f) => f.type === 'read' && f.messageId === nudge.body.message.id && f.by?.type === 'contact', 15_000, "the visitor's read once opened");
  const again = await visitorSays(page, 'Thanks!', 'the message after the reload');
  expect(again.conversationId).toBe(conversationId);

  // An agent's text is text: markup in it is shown, never run or rendered.
  const markup = '<img src=x onerror="document.title=\'owned\'"><b>bold</b>';
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: markup } })).status).toBe(202);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent()).toContain(markup);
  expect(await widget(page).locator('.message img, .message b').count()).toBe(0);
  expect(await page.title()).toBe('Conversa widget demo');

  // Files both ways: the visitor's goes straight to storage from the page (the bucket's CORS),
  // the agent's opens in the page through the API's redirect.
  const screenshot = png(3, 2);
  await widget(page).locator('input[type=file]').setInputFiles({ name: 'screenshot.png', mimeType: 'image/png', buffer: screenshot });
  const withFile = await agent.waitFor((f) => f.type === 'message.created' && f.message.attachments?.length === 1, 15_000, "the visitor's file");
  expect(withFile.message.attachments[0]).toMatchObject({ type: 'image', mimeType: 'image/png', name: 'screenshot.png', size: screenshot.length });
  const stored = await fetch(`${stack.httpUrl}/v1/conversations/${conversationId}/messages/${withFile.message.id}/attachments/0`, { headers: { authorization: `Bearer ${jwt}` } });
  expect(Buffer.from(await stored.arrayBuffer()).equals(screenshot)).toBe(true);
  await agentSendsFile(conversationId, png(5, 4), 'label.png');
  const label = widget(page).getByRole('button', { name: '📎 label.png' });
  await label.click();
  await expect.poll(() => widget(page).locator('img[alt="label.png"]').evaluate((img) => {
      // Decoded by the browser: the bytes came through whole.
      const decoded = img as unknown as { naturalWidth: number; naturalHeight: number };
      return `${decoded.naturalWidth}x${decoded.naturalHeight}`;
    })).toBe('5x4');

  expect(browserErrors).toEqual([]);
  await context.close();
}, 90_000);

it.skipIf(!runs)('tells a visitor outside business hours when the team is back, and asks for an email to answer at', async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-olga', 'admin', 'Olga');
  const timeZone = 'Europe/Paris';
  const mondays = [{ open: '09:00', close: '09:01' }];
  const saved = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { businessHours: { enabled: true, timeZone, weekly: { mon: mondays }, holidays: [] } } });
  expect(saved.status).toBe(200);
  const team = await http(stack.httpUrl, 'GET', '/v1/widget/availability');
  expect(team.body).toMatchObject({ open: false, asksForEmail: true, nextOpen: expect.stringContaining(`at 09:00 (${timeZone})`) });

  const context = await newContext();
  const page = await context.newPage();
  await page.goto(siteUrl);
  await widget(page).getByRole('button', { name: 'Chat with us' }).click();
  await expect.poll(() => widget(page).locator('.hours').textContent()).toBe(`We're away right now and back ${team.body.nextOpen}. Leave a message and your email: we will answer there.`);
  // The form will not start a chat without the email the team needs to answer.
  await widget(page).getByPlaceholder('Your name').fill('Nico');
  await widget(page).getByRole('button', { name: 'Start chatting' }).click();
  expect(await widget(page).getByPlaceholder(/^Email/).evaluate((input) => (input as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing)).toBe(true);
  expect(await widget(page).getByLabel('Message').isVisible()).toBe(false);
  await context.close();
});

/** The page's WebSockets, counted by a wrapper installed before the widget runs (browser code, as text). */
async function countSockets(context: BrowserContext): Promise<void> {
  await context.addInitScript(`
    const Native = window.WebSocket;
    window.conversaSockets = [];
    window.WebSocket = class extends Native {
      constructor(url, protocols) {
        super(url, protocols);
        window.conversaSockets.push(this);
      }
    };
  `);
}
const openSockets = (page: Page): Promise<number> => page.evaluate('window.conversaSockets.filter((s) => s.readyState <= 1).length');

it.skipIf(!runs)('starts one session at a time: a second click on the form, or the chat opened again while the API is down, adds no visitor and no socket', async () => {
  const context = await newContext();
  await countSockets(context);
  const page = await context.newPage();
  // A slow session call: the visitor clicks "Start chatting" twice.
  await page.route('**/v1/widget/sessions', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 400));
    await route.continue();
  });
  await page.goto(siteUrl);
  await widget(page).getByRole('button', { name: 'Chat with us' }).click();
  await widget(page).getByPlaceholder('Your name').fill('Dora');
  await widget(page).getByPlaceholder(/^Email/).fill('dora@example.com');
  await widget(page).getByRole('button', { name: 'Start chatting' }).click();
  await widget(page).getByRole('button', { name: 'Start chatting' }).click({ force: true });
  await expect.poll(() => openSockets(page)).toBe(1);
  await new Promise((resolve) => setTimeout(resolve, 800));
  expect(await openSockets(page)).toBe(1);
  const conversationId = (await visitorSays(page, 'Hello from Dora', "Dora's message")).conversationId;

  // A returning visitor whose page loads while the API is out of reach opens and closes the chat
  // twice; once the API is back, one socket, and a reply counts once on the launcher.
  await page.unroute('**/v1/widget/sessions');
  let down = true;
  await page.route('**/v1/widget/sessions', (route) => (down ? route.abort('connectionrefused') : route.continue()));
  // Without the WebSocket URL kept from an earlier session, the page must ask the session route.
  await page.evaluate("localStorage.removeItem('conversa.websocketUrl')");
  await page.reload();
  const launcher = widget(page).getByRole('button', { name: /^Chat with us/ });
  for (let i = 0; i < 4; i++) await launcher.click();
  down = false;
  await expect.poll(() => openSockets(page), { timeout: 15_000 }).toBe(1);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  expect(await openSockets(page)).toBe(1);
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: 'Welcome back' } })).status).toBe(202);
  await expect.poll(() => widget(page).locator('.badge').textContent()).toBe('1');
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(await widget(page).locator('.badge').textContent()).toBe('1');
  await context.close();
}, 60_000);

it.skipIf(!runs)("joins the chat another tab started: the form this tab shows gives way to that conversation, not a second one", async () => {
  const context = await newContext();
  const first = await context.newPage();
  const second = await context.newPage();
  await first.goto(siteUrl);
  await second.goto(siteUrl);
  // Both tabs open before the visitor ever chatted: the second shows the form too.
  await widget(second).getByRole('button', { name: 'Chat with us' }).click();
  await expect.poll(() => widget(second).getByPlaceholder('Your name').isVisible()).toBe(true);

  await fillPreChat(first, 'Tess');
  const created = await visitorSays(first, 'Hello from the first tab', "the first tab's message");

  await expect.poll(() => widget(second).getByLabel('Message').isVisible()).toBe(true);
  expect(await widget(second).getByPlaceholder('Your name').isVisible()).toBe(false);
  await expect.poll(() => widget(second).locator('.message.inbound').allTextContents()).toEqual([expect.stringContaining('Hello from the first tab')]);
  const again = await visitorSays(second, 'And from the second', "the second tab's message");
  expect(again.conversationId).toBe(created.conversationId);
  await context.close();
});

it.skipIf(!runs)('keeps a message within what the API takes, and says "Not sent" of one it refused', async () => {
  const { context, page } = await startChat('Lena');

  // A long paste stops at the API's 4096 characters, and goes.
  const message = widget(page).getByLabel('Message');
  await message.fill(`${'long '.repeat(1200)}end`);
  expect((await message.inputValue()).length).toBe(4096);
  await message.press('Enter');
  const long = await agent.waitFor((f) => f.type === 'message.created' && f.message.text?.startsWith('long long'), 15_000, 'the long message');
  expect(long.message.text).toBe(`${'long '.repeat(1200)}end`.slice(0, 4096));

  // More than 20 messages in 10 s: the ones refused say so, none stays "Sending…".
  for (let i = 0; i < 45; i++) {
    await message.fill(`quick ${i}`);
    await message.press('Enter');
  }
  await expect.poll(() => widget(page).locator('.message.inbound .meta:last-child').allTextContents(), { timeout: 30_000 }).not.toContain('Sending…');
  const outcomes = await widget(page).locator('.message.inbound .meta:last-child').allTextContents();
  expect(outcomes).toContain('Not sent');
  expect(new Set(outcomes)).toEqual(new Set(['Sent', 'Not sent']));
  await context.close();
}, 60_000);

it.skipIf(!runs)('sends messages written back to back one at a time, each once the one before is answered, and they are stored in the order written', async () => {
  const context = await newContext();
  const page = await context.newPage();
  const frames: { way: 'sent' | 'received'; frame: { action?: string; type?: string; clientMessageId?: string; text?: string } }[] = [];
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => frames.push({ way: 'sent', frame: JSON.parse(String(payload)) }));
    socket.on('framereceived', ({ payload }) => frames.push({ way: 'received', frame: JSON.parse(String(payload)) }));
  });
  await page.goto(siteUrl);
  await fillPreChat(page, 'Olga');
  const first = await visitorSays(page, 'Three things:', 'the first message');

  // Three lines sent in one go, faster than any answer can come back.
  const lines = ['one, the size', 'two, the colour', 'three, the date'];
  await page.evaluate(`{
    const box = document.querySelector('.conversa-widget').shadowRoot.querySelector('textarea');
    for (const line of ${JSON.stringify(lines)}) {
      box.value = line;
      box.closest('form').requestSubmit();
    }
  }`);
  await expect.poll(() => widget(page).locator('.message.inbound .meta:last-child').allTextContents(), { timeout: 15_000 }).toEqual(['Sent', 'Sent', 'Sent', 'Sent']);

  // Each message frame went only after the one before it had its ack.
  // (Its first time out: a socket that reconnected meanwhile sends an unanswered frame again.)
  const sends = lines.map((line) => {
    const at = frames.findIndex((f) => f.way === 'sent' && f.frame.action === 'sendMessage' && f.frame.text === line);
    return { at, id: frames[at]?.frame.clientMessageId };
  });
  for (const [n, send] of sends.entries()) {
    if (n === 0) continue;
    const ackAt = frames.findIndex((f) => f.way === 'received' && f.frame.type === 'ack' && f.frame.clientMessageId === sends[n - 1]!.id);
    expect(ackAt, `the ack of line ${n} before line ${n + 1} goes`).toBeGreaterThan(-1);
    expect(ackAt).toBeLessThan(send.at);
  }
  const stored = (await http(stack.httpUrl, 'GET', `/v1/conversations/${first.conversationId}/messages`, { token: jwt })).body.items as { text: string; direction: string }[];
  expect(stored.filter((m) => m.direction === 'inbound').map((m) => m.text)).toEqual(['Three things:', ...lines]);
  await context.close();
});

it.skipIf(!runs)('shows "Seen" only on what the agent read: a message sent after the one read stays "Sent"', async () => {
  const { context, page } = await startChat('Rhea');
  const first = await visitorSays(page, 'Where is parcel A?', 'the first message');
  const conversationId: string = first.conversationId;
  const reply = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: 'On its way.' } });
  expect(reply.status).toBe(202);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent()).toContain('On its way.');
  const second = await visitorSays(page, 'And parcel B?', 'the second message');
  await expect.poll(() => widget(page).locator(`.message.inbound[data-id="${second.message.id}"]`).count()).toBe(1);

  // The console marks its own reply read, as it shows it, before the visitor's next message reached it.
  agent.send({ action: 'markRead', conversationId, messageId: reply.body.message.id });
  await expect.poll(() => widget(page).locator(`.message.inbound[data-id="${first.message.id}"] .meta`).textContent()).toBe('Seen');
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(await widget(page).locator(`.message.inbound[data-id="${second.message.id}"] .meta`).textContent()).toBe('Sent');
  await context.close();
});

it.skipIf(!runs)('reads each team message once: a reload, the chat opened again or the tab shown again sends no markRead for a reply read already, a newer reply is read', async () => {
  const context = await newContext();
  const page = await context.newPage();
  // What the page sends on its sockets, in order (a reload keeps the page, and this listener).
  const sent: { action: string; messageId?: string; text?: string }[] = [];
  page.on('websocket', (socket) => socket.on('framesent', ({ payload }) => sent.push(JSON.parse(String(payload)))));
  const reads = () => sent.filter((f) => f.action === 'markRead').map((f) => f.messageId);
  await page.goto(siteUrl);
  await fillPreChat(page, 'Ines');
  const { conversationId } = await visitorSays(page, 'Ines here', 'the first message');
  /** The agent replies; answers its id once the visitor's read of it reached the agent. */
  const reply = async (text: string) => {
    const res = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text } });
    expect(res.status).toBe(202);
    await agent.waitFor((f) => f.type === 'read' && f.messageId === res.body.message.id && f.by?.type === 'contact', 15_000, `the read of "${text}"`);
    return res.body.message.id as string;
  };
  /** The visitor writes: every frame the page sent before has been seen here by then (frames go in order). */
  const settle = async (text: string) => {
    await visitorSays(page, text, text);
    await expect.poll(() => sent.some((f) => f.action === 'sendMessage' && f.text === text)).toBe(true);
  };
  const first = await reply('First answer');
  await settle('Thanks');
  const readBefore = reads();
  expect(readBefore.filter((id) => id === first)).toHaveLength(1);

  // Act: the page reloaded and the chat opened (the history shows the reply read), closed and
  // opened again, the tab shown again
  await page.reload();
  const launcher = widget(page).getByRole('button', { name: /^Chat with us/ });
  await launcher.click();
  await expect.poll(() => widget(page).locator('.message.outbound').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('First answer')]));
  await launcher.click();
  await launcher.click();
  await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))");
  await settle('Still there?');
  const readAfterReload = reads();
  const second = await reply('Second answer');
  await settle('Got it');

  // Assess: nothing read again; the newer reply read once
  expect(readAfterReload).toEqual(readBefore);
  expect(reads()).toEqual([...readBefore, second]);
});

it.skipIf(!runs)("waits, out of sight, when a visitor's newer tabs took its socket's place: with more tabs than the cap, they do not take turns for good", async () => {
  const context = await newContext();
  await countSockets(context);
  // The tab's visibility, as the test sets it (a headless page is always visible).
  await context.addInitScript(`
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (window.conversaHidden ? 'hidden' : 'visible') });
  `);
  const page = await context.newPage();
  await page.goto(siteUrl);
  await widget(page).getByRole('button', { name: 'Chat with us' }).click();
  await widget(page).getByPlaceholder('Your name').fill('Ines');
  await widget(page).getByPlaceholder(/^Email/).fill('ines@example.com');
  await widget(page).getByRole('button', { name: 'Start chatting' }).click();
  await expect.poll(() => openSockets(page)).toBe(1);
  const token = await page.evaluate<string>("localStorage.getItem('conversa.visitorToken')");

  // The visitor moves to other tabs (as many as the cap allows): this one, the oldest, is closed.
  await page.evaluate("window.conversaHidden = true; document.dispatchEvent(new Event('visibilitychange'))");
  const others: WsClient[] = [];
  for (let i = 0; i < MAX_VISITOR_CONNECTIONS; i++) others.push(await WsClient.connect(stack.wsUrl, token));
  await expect.poll(() => openSockets(page)).toBe(0);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  expect(await openSockets(page)).toBe(0);
  expect(others.every((client) => client.socket.readyState === client.socket.OPEN)).toBe(true);

  // Back to this tab: it connects again (and the oldest of the others gives way).
  await page.evaluate("window.conversaHidden = false; document.dispatchEvent(new Event('visibilitychange'))");
  await expect.poll(() => openSockets(page)).toBe(1);
  await expect.poll(() => others[0]!.socket.readyState).toBe(others[0]!.socket.CLOSED);
  await Promise.all(others.map((client) => client.close()));
  await context.close();
});

it.skipIf(!runs)('gives the form to a visitor whose kept token is no token at all, instead of retrying it for good', async () => {
  const context = await newContext();
  // Something else on the site wrote the key (or a token from another widget version): 300 characters.
  await context.addInitScript(`if (!sessionStorage.getItem('seeded')) { localStorage.setItem('conversa.visitorToken', '${'x'.repeat(300)}'); sessionStorage.setItem('seeded', '1'); }`);
  const page = await context.newPage();
  await page.goto(siteUrl);
  await widget(page).getByRole('button', { name: 'Chat with us' }).click();
  await expect.poll(() => widget(page).getByPlaceholder('Your name').isVisible()).toBe(true);
  expect(await page.evaluate("localStorage.getItem('conversa.visitorToken')")).toBeNull();
  await context.close();
});

/**
 * A page script: with `window.conversaLoseNext` set, the next `sendMessage` frame is lost as its
 * connection dies under it (a phone changing networks).
 */
const LOSE_NEXT_SEND = `
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (window.conversaLoseNext && String(data).includes('"sendMessage"')) {
      window.conversaLoseNext = false;
      this.close(4000);
      return;
    }
    return send.call(this, data);
  };
`;

it.skipIf(!runs)('sends again, once reconnected, a message whose socket died under it before the API had it', async () => {
  const context = await newContext();
  // A connection that dies as the frame goes out (a phone changing networks): the frame is lost.
  await context.addInitScript(LOSE_NEXT_SEND);
  const page = await context.newPage();
  await page.goto(siteUrl);
  await widget(page).getByRole('button', { name: 'Chat with us' }).click();
  await widget(page).getByPlaceholder('Your name').fill('Mona');
  await widget(page).getByPlaceholder(/^Email/).fill('mona@example.com');
  await widget(page).getByRole('button', { name: 'Start chatting' }).click();
  const first = await visitorSays(page, 'First, before the tunnel', 'the first message');

  await page.evaluate('window.conversaLoseNext = true');
  const second = await visitorSays(page, 'Lost in the tunnel?', 'the message sent again');
  expect(second.conversationId).toBe(first.conversationId);
  await expect.poll(() => widget(page).locator('.message.inbound .meta:last-child').allTextContents()).toEqual(['Sent', 'Sent']);
  // Once: the reconnection's history and the ack make one bubble of it.
  const texts = (await http(stack.httpUrl, 'GET', `/v1/conversations/${first.conversationId}/messages`, { token: jwt })).body.items.map((m: { text: string }) => m.text);
  expect(texts.filter((t: string) => t === 'Lost in the tunnel?')).toHaveLength(1);
  await context.close();
});

it.skipIf(!runs)("lets \"typing…\" go when the agent's console stops saying so (it died mid-word), and keeps saying it while the visitor types on", async () => {
  const { context, page } = await startChat('Tina');
  const message = widget(page).getByLabel('Message');
  const created = await visitorSays(page, 'Are you there?', 'the first message');
  const conversationId: string = created.conversationId;

  // One "on" and then nothing, no "off": the sign goes after a few seconds.
  agent.send({ action: 'typing', conversationId, state: 'on' });
  // The sign's 6 s life starts when the frame arrives, so a longer wait is safe: a loaded machine
  // delivered it after the poll's default second (CI read it once), and once after 5 s.
  await expect.poll(() => widget(page).locator('.typing').textContent(), { timeout: 15_000 }).toBe('Wanda is typing…');
  await expect.poll(() => widget(page).locator('.typing').textContent(), { timeout: 15_000 }).toBe('');

  // The visitor types on for several seconds: the agent's console hears "on" again while it lasts.
  const ons = () => agent.frames.filter((f) => f.type === 'typing' && f.conversationId === conversationId && f.state === 'on').length;
  const before = ons();
  for (let i = 0; i < 8; i++) {
    await message.press('a');
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
  await expect.poll(ons).toBeGreaterThanOrEqual(before + 2);
  await context.close();
}, 60_000);

it.skipIf(!runs)("keeps the agent's \"typing…\" through a colleague's message, and lets it go with the agent's own", async () => {
  // Prepare: a chat whose greeting has shown (it cannot come late), the agent typing
  const { context, page } = await startChat('Theo');
  const created = await visitorSays(page, 'Anyone about?', 'the first message');
  const conversationId: string = created.conversationId;
  await expect.poll(() => widget(page).locator('.message.outbound').count(), { timeout: 15_000 }).toBeGreaterThan(0);
  const typingSign = () => widget(page).locator('.typing').textContent();
  agent.send({ action: 'typing', conversationId, state: 'on' });
  await expect.poll(typingSign, { timeout: 15_000 }).toBe('Wanda is typing…');

  // Act: a colleague's message comes while Wanda types
  const admin = await agentToken(stack.httpUrl, 'admin-olga', 'admin', 'Olga');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: admin, body: { text: 'Olga here, a moment.' } })).status).toBe(202);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent(), { timeout: 15_000 }).toContain('Olga here, a moment.');

  // Assess: still Wanda's sign; her own message ends it
  expect(await typingSign()).toBe('Wanda is typing…');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: 'Wanda here.' } })).status).toBe(202);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent(), { timeout: 15_000 }).toContain('Wanda here.');
  expect(await typingSign()).toBe('');
  await context.close();
}, 60_000);

it.skipIf(!runs)('says content-type only on a request with a body: a GET of the availability needs no CORS preflight', async () => {
  const context = await newContext();
  const page = await context.newPage();
  const sent: { method: string; path: string; contentType: string | undefined }[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (request.url().startsWith(`${stack.httpUrl}/v1/`)) sent.push({ method: request.method(), path: url.pathname, contentType: request.headers()['content-type'] });
  });
  await page.goto(siteUrl);
  await fillPreChat(page, 'Gus');
  await expect.poll(() => widget(page).getByLabel('Message').isVisible()).toBe(true);
  await expect.poll(() => sent.map((r) => `${r.method} ${r.path}`)).toEqual(
    expect.arrayContaining(['GET /v1/widget/availability', 'POST /v1/widget/sessions', 'GET /v1/widget/messages']),
  );
  expect(sent.filter((r) => r.method === 'GET').map((r) => r.contentType)).toEqual(sent.filter((r) => r.method === 'GET').map(() => undefined));
  expect(sent.find((r) => r.method === 'POST')?.contentType).toBe('application/json');
  await context.close();
});

it.skipIf(!runs)('asks for the email only while the team is away: the form shown follows the team coming back and leaving again', async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-olga', 'admin', 'Olga');
  const hours = (enabled: boolean) => http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { businessHours: { enabled, timeZone: 'Europe/Paris', weekly: { mon: [{ open: '09:00', close: '09:01' }] }, holidays: [] } } });
  expect((await hours(true)).status).toBe(200);
  const context = await newContext();
  const page = await context.newPage();
  // The page's own timers, run ahead by the test; a route keeps the browser from caching the answer for its minute.
  await page.clock.install();
  await page.route('**/v1/widget/availability', (route) => route.continue());
  await page.goto(siteUrl);
  const launcher = widget(page).getByRole('button', { name: 'Chat with us' });
  const email = widget(page).getByPlaceholder(/^Email/);
  const required = () => email.evaluate((input) => (input as unknown as { required: boolean }).required);
  await launcher.click();
  await expect.poll(required).toBe(true);

  // The team is back while the form is open: a minute later it no longer insists on the email.
  expect((await hours(false)).status).toBe(200);
  await page.clock.fastForward(61_000);
  await expect.poll(required).toBe(false);
  expect(await widget(page).locator('.hours').isVisible()).toBe(false);
  await widget(page).getByPlaceholder('Your name').fill('Ulla');
  await widget(page).getByRole('button', { name: 'Start chatting' }).click();
  await expect.poll(() => widget(page).getByLabel('Message').isVisible()).toBe(true);

  // Shown again on another page of the shop while the team is away: the email is asked for again.
  expect((await hours(true)).status).toBe(200);
  const other = await newContext();
  const next = await other.newPage();
  await next.route('**/v1/widget/availability', (route) => route.continue());
  await next.goto(siteUrl);
  await widget(next).getByRole('button', { name: 'Chat with us' }).click();
  await expect.poll(() => widget(next).getByPlaceholder(/^Email/).evaluate((input) => (input as unknown as { required: boolean }).required)).toBe(true);
  expect((await hours(false)).status).toBe(200);
  await widget(next).getByRole('button', { name: 'Chat with us' }).click();
  await widget(next).getByRole('button', { name: 'Chat with us' }).click();
  await expect.poll(() => widget(next).getByPlaceholder(/^Email/).evaluate((input) => (input as unknown as { required: boolean }).required)).toBe(false);
  await Promise.all([context.close(), other.close()]);
});

it.skipIf(!runs)('keeps the order the API gives when a message comes live while the history is reloading after a reconnection, each message once', async () => {
  const { context, page } = await startChat('Olaf');
  const created = await visitorSays(page, 'Order 7?', 'the first message');
  const conversationId: string = created.conversationId;
  const say = async (text: string) => {
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text } })).status).toBe(202);
    await agent.waitFor((f) => f.type === 'message.created' && f.message.text === text, 15_000, text);
  };
  await say('one');
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent()).toContain('one');

  // The history the widget reloads once reconnected is slow to come.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let asked = false;
  await page.route('**/v1/widget/messages?*', async (route) => {
    asked = true;
    await released;
    await route.continue();
  });
  const visitorSockets = () => stack.websocket.connections().filter((id) => !agentConnections.includes(id));
  // An earlier test's closed page may still be leaving the gateway (CI saw its socket once).
  await expect.poll(() => visitorSockets().length, { timeout: 10_000 }).toBe(1);
  const visitorSocket = visitorSockets();
  stack.websocket.dropConnection(visitorSocket[0]!, { notify: true });
  await expect.poll(() => stack.websocket.connections().length).toBe(agentConnections.length);
  // Written while the socket is down: it comes with the history.
  await say('two');
  await expect.poll(() => asked, { timeout: 15_000 }).toBe(true);
  await expect.poll(() => stack.websocket.connections().length).toBe(agentConnections.length + 1);
  // Written once reconnected, before the history came: it comes live, first.
  await say('three');
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent()).toContain('three');
  release();

  const texts = () => widget(page).locator('.message').evaluateAll((nodes) => nodes.map((node) => node.firstChild?.textContent ?? ''));
  await expect.poll(texts).toEqual(expect.arrayContaining(['two']));
  const shown = await texts();
  expect(shown.filter((t) => ['Order 7?', 'one', 'two', 'three'].includes(t))).toEqual(['Order 7?', 'one', 'two', 'three']);
  // In the order of the ids (the history's order).
  const ids = await widget(page).locator('.message').evaluateAll((nodes) => nodes.map((node) => (node as unknown as { dataset: { id: string } }).dataset.id));
  expect(ids).toEqual([...ids].sort());
  await context.close();
}, 60_000);

it.skipIf(!runs)("answers only the live CSAT question: a rating given shows as chosen, and an older question's buttons no longer work", async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-olga', 'admin', 'Olga');
  const { timers, csat } = (await http(stack.httpUrl, 'GET', '/v1/settings', { token: admin })).body;
  const quick = await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { timers: { autoResolveAfterSeconds: 2 }, csat: { enabled: true, question: 'Rate us, 1 to 5' } } });
  expect(quick.status).toBe(200);
  try {
    const { context, page } = await startChat('Cleo');
    const message = widget(page).getByLabel('Message');
    const created = await visitorSays(page, 'Just one question', 'the first message');
    const conversationId: string = created.conversationId;
    // Each question's buttons: the score, "-" when it no longer works, "*" when it is the rating given.
    const buttons = (n: number) =>
      widget(page).locator('.csat').nth(n).locator('button').evaluateAll((nodes) =>
        nodes.map((b) => `${b.textContent}${(b as unknown as { disabled: boolean }).disabled ? '-' : ''}${b.getAttribute('aria-pressed') === 'true' ? '*' : ''}`),
      );
    await expect.poll(() => widget(page).locator('.csat').count(), { timeout: 20_000 }).toBe(1);
    expect(await buttons(0)).toEqual(['1', '2', '3', '4', '5']);

    await widget(page).locator('.csat').first().getByRole('button', { name: '4' }).click();
    await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.csat?.score === 4, 15_000, 'the rating');
    await expect.poll(() => buttons(0)).toEqual(['1-', '2-', '3-', '4-*', '5-']);

    // The visitor writes again, and is asked again once the conversation is resolved again.
    await message.fill('Actually, one more thing');
    await message.press('Enter');
    await expect.poll(() => widget(page).locator('.csat').count(), { timeout: 20_000 }).toBe(2);
    expect(await buttons(0)).toEqual(['1-', '2-', '3-', '4-*', '5-']);
    expect(await buttons(1)).toEqual(['1', '2', '3', '4', '5']);

    // A reload shows the same from the history alone; the old question's "2" sends nothing.
    await page.reload();
    await widget(page).getByRole('button', { name: /^Chat with us/ }).click();
    await expect.poll(() => widget(page).locator('.csat').count()).toBe(2);
    expect(await buttons(0)).toEqual(['1-', '2-', '3-', '4-*', '5-']);
    expect(await buttons(1)).toEqual(['1', '2', '3', '4', '5']);
    await widget(page).locator('.csat').first().getByRole('button', { name: '2' }).click({ force: true });
    await widget(page).locator('.csat').nth(1).getByRole('button', { name: '5' }).click();
    await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.csat?.score === 5, 15_000, 'the second rating');
    await expect.poll(() => buttons(1)).toEqual(['1-', '2-', '3-', '4-', '5-*']);
    const texts = (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: jwt })).body.items.map((m: { text: string }) => m.text);
    expect(texts.filter((t: string) => /^[1-5]$/.test(t))).toEqual(['4', '5']);
    await context.close();
  } finally {
    await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { timers, csat } });
  }
}, 90_000);

it.skipIf(!runs)('ends the conversation with its "End conversation" button: resolved for the agent, the rating asked at once, the button gone until the visitor writes again', async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-edda', 'admin', 'Edda');
  const { csat } = (await http(stack.httpUrl, 'GET', '/v1/settings', { token: admin })).body;
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { csat: { enabled: true, question: 'Rate us, 1 to 5' } } })).status).toBe(200);
  try {
    const { context, page } = await startChat('Enzo');
    const end = widget(page).getByRole('button', { name: 'End conversation' });
    expect(await end.isVisible()).toBe(false); // no conversation yet
    const { conversationId } = await visitorSays(page, 'Found it myself, thanks', 'the first message');
    await expect.poll(() => end.isVisible()).toBe(true);

    await end.click();
    await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.status === 'resolved', 15_000, 'the resolution');
    await expect.poll(() => widget(page).locator('.csat').count(), { timeout: 15_000 }).toBe(1);
    expect(await end.isVisible()).toBe(false);
    await widget(page).locator('.csat').getByRole('button', { name: '5' }).click();
    await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.csat?.score === 5, 15_000, 'the rating');
    expect(await end.isVisible()).toBe(false);

    // Writing again reopens it: the button is back.
    await widget(page).getByLabel('Message').fill('Oh, and one more thing');
    await widget(page).getByLabel('Message').press('Enter');
    await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.status === 'open', 15_000, 'the reopening');
    await expect.poll(() => end.isVisible()).toBe(true);
    await context.close();
  } finally {
    await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { csat } });
  }
}, 60_000);

it.skipIf(!runs)('offers no "End conversation" on a reloaded conversation that was resolved, and offers it again once the visitor writes', async () => {
  const { page } = await startChat('Rhea');
  const end = widget(page).getByRole('button', { name: 'End conversation' });
  const { conversationId } = await visitorSays(page, 'Where is my parcel?', 'the first message');
  await expect.poll(() => end.isVisible()).toBe(true);
  const resolved = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: jwt });
  expect(resolved.status).toBe(200);
  await expect.poll(() => end.isVisible()).toBe(false);

  // A reload resumes straight on the socket, without the session call that would tell the status.
  await page.reload();
  await expect.poll(() => stack.websocket.connections().length).toBe(agentConnections.length + 1);
  await widget(page).getByRole('button', { name: 'Chat with us' }).click();
  await expect.poll(() => widget(page).locator('.message').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('Where is my parcel?')]));
  expect(await end.isVisible()).toBe(false);

  // Writing again reopens it: the button is back.
  await visitorSays(page, 'It came, thanks', 'the message after the reload');
  await agent.waitFor((f) => f.type === 'conversation.updated' && f.conversation.id === conversationId && f.conversation.status === 'open', 15_000, 'the reopening');
  await expect.poll(() => end.isVisible()).toBe(true);
}, 60_000);

it.skipIf(!runs)('keeps the newest view of the conversation: a session answer asked for before a frame said it was resolved does not bring "End conversation" back', async () => {
  const { page } = await startChat('Tia');
  const end = widget(page).getByRole('button', { name: 'End conversation' });
  const { conversationId } = await visitorSays(page, 'Can I still return it?', 'the first message');
  await expect.poll(() => end.isVisible()).toBe(true);
  // The next session call is answered by the API at once and reaches the page only when released.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let made!: (answer: { conversationStatus: string }) => void;
  const answered = new Promise<{ conversationStatus: string }>((resolve) => (made = resolve));
  await page.route('**/v1/widget/sessions', async (route) => {
    const response = await route.fetch();
    made(await response.json());
    await released;
    await route.fulfill({ response });
  });

  // A session call (the website names its customer) while the conversation is open; the agent
  // resolves it before that answer arrives, and the widget hears so live.
  await page.evaluate("window.ConversaWidget.identify({ name: 'Tia' })");
  expect((await answered).conversationStatus).toBe('open');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/resolve`, { token: jwt })).status).toBe(200);
  await expect.poll(() => end.isVisible()).toBe(false);
  // The answer's WebSocket URL is kept as it is taken: stored again, the answer was taken whole.
  await page.evaluate("localStorage.removeItem('conversa.websocketUrl')");
  release();
  await expect.poll(() => page.evaluate("localStorage.getItem('conversa.websocketUrl')")).not.toBeNull();

  // The older view (open) does not undo the frame's
  expect(await end.isVisible()).toBe(false);
}, 60_000);

it.skipIf(!runs)('closes a CSAT question an agent dropped (reopened) while the page was away: after a reload its buttons send nothing; the history alone says so, with no session call', async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-olga', 'admin', 'Olga');
  const { timers, csat } = (await http(stack.httpUrl, 'GET', '/v1/settings', { token: admin })).body;
  const restore = () => http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { timers, csat } });
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { timers: { autoResolveAfterSeconds: 2 }, csat: { enabled: true, question: 'Rate us, 1 to 5' } } })).status).toBe(200);
  try {
    const { context, page } = await startChat('Dora');
    // Session calls from here on: a reload resumes on the socket, and the history tells the question's state.
    const sessions: string[] = [];
    context.on('request', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/v1/widget/sessions')) sessions.push(request.url());
    });
    const created = await visitorSays(page, 'Dora, one question', 'the first message');
    const conversationId: string = created.conversationId;
    const disabled = () => widget(page).locator('.csat button').evaluateAll((nodes) => nodes.map((b) => (b as unknown as { disabled: boolean }).disabled));
    await expect.poll(() => widget(page).locator('.csat').count(), { timeout: 20_000 }).toBe(1);
    expect(await disabled()).toEqual([false, false, false, false, false]);
    // No second question once reopened.
    expect((await restore()).status).toBe(200);
    // Reloaded while the question is still open: it takes a rating.
    await page.reload();
    await widget(page).getByRole('button', { name: /^Chat with us/ }).click();
    await expect.poll(() => widget(page).locator('.csat').count()).toBe(1);
    await expect.poll(() => disabled()).toEqual([false, false, false, false, false]);

    // The page is away (closed) when the agent reopens the conversation.
    const url = page.url();
    await page.close();
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/reopen`, { token: jwt })).status).toBe(200);
    const again = await context.newPage();
    await again.goto(url);
    await widget(again).getByRole('button', { name: /^Chat with us/ }).click();
    await expect.poll(() => widget(again).locator('.csat').count()).toBe(1);
    await expect.poll(() => widget(again).locator('.csat button').evaluateAll((nodes) => nodes.map((b) => (b as unknown as { disabled: boolean }).disabled))).toEqual([true, true, true, true, true]);
    expect(sessions).toEqual([]);

    // A click on "4" sends nothing: the next message the agent sees is the visitor's own words.
    await widget(again).locator('.csat').getByRole('button', { name: '4' }).click({ force: true });
    await visitorSays(again, 'Dora again', 'the next message');
    const texts = (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages`, { token: jwt })).body.items.map((m: { text: string }) => m.text);
    expect(texts).not.toContain('4');
    await context.close();
  } finally {
    await restore();
  }
}, 90_000);

it.skipIf(!runs)('takes the signed-in customer from the website (identify), and forgets them at its logout (reset): the next person on that browser never sees their chat', async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-olga', 'admin', 'Olga');
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { widget: { identityVerification: true } } })).status).toBe(200);
  const who = (name: string) => {
    const email = `${name.toLowerCase()}.${crypto.randomUUID().slice(0, 6)}@example.com`;
    return { name, email, identityHash: identityHashOf(email, 'dev-widget-identity-secret') };
  };
  const vera = who('Vera');
  const walt = who('Walt');
  try {
    const context = await newContext();
    await countSockets(context);
    const page = await context.newPage();
    // The website's own code, once the widget is there (it may load after the page's scripts).
    const identify = (identity: object) => page.evaluate(`new Promise((resolve) => {
      const go = () => resolve(window.ConversaWidget.identify(${JSON.stringify(identity)}));
      window.ConversaWidget ? go() : window.addEventListener('conversa:ready', go);
    })`);
    const message = widget(page).getByLabel('Message');
    const texts = () => widget(page).locator('.message').allTextContents();
    await page.goto(siteUrl);
    await identify(vera);
    // Known to the website: no pre-chat form.
    await widget(page).getByRole('button', { name: 'Chat with us' }).click();
    await expect.poll(() => message.isVisible()).toBe(true);
    expect(await widget(page).getByPlaceholder('Your name').isVisible()).toBe(false);
    const first = await visitorSays(page, 'Vera here, about invoice 12', "Vera's message");
    const conversationId: string = first.conversationId;
    expect((await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}`, { token: jwt })).body.contact).toMatchObject({ name: 'Vera', email: vera.email });

    // Vera's next page: the same chat.
    await page.reload();
    await identify(vera);
    await widget(page).getByRole('button', { name: /^Chat with us/ }).click();
    await expect.poll(texts).toEqual(expect.arrayContaining([expect.stringContaining('Vera here, about invoice 12')]));
    await message.fill('Still Vera');
    await message.press('Enter');
    expect((await agent.waitFor((f) => f.type === 'message.created' && f.message.text === 'Still Vera', 15_000, "Vera's second message")).conversationId).toBe(conversationId);
    const veraToken = await page.evaluate<string>("localStorage.getItem('conversa.visitorToken')");

    // Walt signs in on the same browser, the website forgot its reset: a chat of his own, and Vera's is gone from the page.
    await identify(walt);
    await expect.poll(() => page.evaluate<string>("localStorage.getItem('conversa.visitorToken')")).not.toBe(veraToken);
    await expect.poll(texts).not.toEqual(expect.arrayContaining([expect.stringContaining('Vera')]));
    await expect.poll(() => openSockets(page)).toBe(1);
    const walts = await visitorSays(page, 'Walt asking about shipping', "Walt's message");
    expect(walts.conversationId).not.toBe(conversationId);
    expect((await texts()).join('\n')).not.toContain('Vera');

    // Walt logs out: the widget forgets him, and the next person gets a fresh chat through the form.
    await page.evaluate('window.ConversaWidget.reset()');
    expect(await page.evaluate("localStorage.getItem('conversa.visitorToken')")).toBeNull();
    // Nor what he read (the greeting): no trace of his chat stays in the browser.
    expect(await page.evaluate("localStorage.getItem('conversa.readUpTo')")).toBeNull();
    await expect.poll(() => openSockets(page)).toBe(0);
    expect(await texts()).toEqual([]);
    await expect.poll(() => widget(page).getByPlaceholder('Your name').isVisible()).toBe(true);
    expect(await widget(page).getByPlaceholder('Your name').inputValue()).toBe('');
    // A reply to Walt after his logout reaches no one on this page.
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${walts.conversationId}/messages`, { token: jwt, body: { text: 'Walt, it ships Monday' } })).status).toBe(202);
    // The chat is still open: the form is there to fill.
    await widget(page).getByPlaceholder('Your name').fill('Nora');
    await widget(page).getByPlaceholder(/^Email/).fill('nora@example.com');
    await widget(page).getByRole('button', { name: 'Start chatting' }).click();
    const noras = await visitorSays(page, 'Hello, Nora here', "Nora's message");
    expect([conversationId, walts.conversationId]).not.toContain(noras.conversationId);
    expect((await texts()).join('\n')).not.toMatch(/Vera|Walt/);
    await page.reload();
    await widget(page).getByRole('button', { name: /^Chat with us/ }).click();
    await expect.poll(texts).toEqual(expect.arrayContaining([expect.stringContaining('Hello, Nora here')]));
    expect((await texts()).join('\n')).not.toMatch(/Vera|Walt/);
    await context.close();
  } finally {
    await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { widget: { identityVerification: false } } });
  }
}, 90_000);

it.skipIf(!runs)("shows no chat to a signed-in customer whose hash does not check, and a logout in one tab empties the site's other tabs", async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-olga', 'admin', 'Olga');
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { widget: { identityVerification: true } } })).status).toBe(200);
  const email = `yara.${crypto.randomUUID().slice(0, 6)}@example.com`;
  const yara = { name: 'Yara', email, identityHash: identityHashOf(email, 'dev-widget-identity-secret') };
  const forged = { name: 'Mallory', email: `mallory.${crypto.randomUUID().slice(0, 6)}@example.com`, identityHash: identityHashOf(email, 'not the key') };
  try {
    const context = await newContext();
    await countSockets(context);
    const [one, two] = [await context.newPage(), await context.newPage()];
    const identify = (page: Page, identity: object) => page.evaluate(`new Promise((resolve) => {
      const go = () => resolve(window.ConversaWidget.identify(${JSON.stringify(identity)}));
      window.ConversaWidget ? go() : window.addEventListener('conversa:ready', go);
    })`);
    const texts = (page: Page) => widget(page).locator('.message').allTextContents();
    const kept = (page: Page) => page.evaluate<string | null>("localStorage.getItem('conversa.visitorToken')");
    await one.goto(siteUrl);
    await identify(one, yara);
    await widget(one).getByRole('button', { name: 'Chat with us' }).click();
    await visitorSays(one, 'Yara: where is my refund?', "Yara's message");
    await two.goto(siteUrl);
    await identify(two, yara);
    await widget(two).getByRole('button', { name: /^Chat with us/ }).click();
    await expect.poll(() => texts(two)).toEqual(expect.arrayContaining([expect.stringContaining('Yara: where is my refund?')]));
    const token = await kept(one);

    // The website names someone else with a hash that does not check: no chat shown, the reason said.
    await identify(one, forged);
    await expect.poll(() => widget(one).locator('.notice').textContent()).toContain('identityHash');
    expect(await texts(one)).toEqual([]);
    expect(await openSockets(one)).toBe(0);
    expect(await kept(one)).toBe(token);
    // Yara again (the site fixed its hash): her chat is back.
    await identify(one, yara);
    await expect.poll(() => texts(one)).toEqual(expect.arrayContaining([expect.stringContaining('Yara: where is my refund?')]));

    // Yara logs out in the first tab: the second tab shows her chat no more either.
    await one.evaluate('window.ConversaWidget.reset()');
    await expect.poll(() => texts(two)).toEqual([]);
    await expect.poll(() => openSockets(two)).toBe(0);
    expect(await kept(two)).toBeNull();
    await expect.poll(() => widget(two).getByPlaceholder('Your name').isVisible()).toBe(true);
    await context.close();
  } finally {
    await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { widget: { identityVerification: false } } });
  }
}, 60_000);

it.skipIf(!runs)("explains, on a browser without the chat, that the email's link cannot show it here, and asks for the email before a new chat starts", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${siteUrl}?conversation=01JC0NVERSAT10NFR0MANEMA1L`);
  // Opened by the link: the form, with why, and the email required.
  await expect.poll(() => widget(page).locator('.linked').textContent()).toContain('started in another browser');
  expect(await widget(page).locator('.linked').isVisible()).toBe(true);
  await widget(page).getByPlaceholder('Your name').fill('Pia');
  await widget(page).getByRole('button', { name: 'Start chatting' }).click();
  expect(await widget(page).getByPlaceholder(/^Email/).evaluate((input) => (input as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing)).toBe(true);
  expect(await widget(page).getByLabel('Message').isVisible()).toBe(false);
  await widget(page).getByPlaceholder(/^Email/).fill('pia@example.com');
  await widget(page).getByRole('button', { name: 'Start chatting' }).click();
  await expect.poll(() => widget(page).getByLabel('Message').isVisible()).toBe(true);
  expect(await widget(page).locator('.linked').isVisible()).toBe(false);
  await context.close();
});

it.skipIf(!runs)("sends again after a reconnection a message that the history seems to hold, when that is another tab's message with the same words: nothing is lost", async () => {
  const context = await newContext();
  // The second tab's connection dies as its frame goes out.
  await context.addInitScript(LOSE_NEXT_SEND);
  const first = await context.newPage();
  await first.goto(siteUrl);
  await fillPreChat(first, 'Vik');
  const hello = await visitorSays(first, 'Hello from Vik', 'the first message');
  const second = await context.newPage();
  await second.goto(siteUrl);
  await widget(second).getByRole('button', { name: /^Chat with us/ }).click();
  await expect.poll(() => widget(second).locator('.message').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('Hello from Vik')]));

  // The second tab's history, once it reconnects, waits until the first tab's message is stored.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await second.route('**/v1/widget/messages?*', async (route) => {
    await released;
    await route.continue();
  });
  await second.evaluate('window.conversaLoseNext = true');
  await widget(second).getByLabel('Message').fill('Same words');
  await widget(second).getByLabel('Message').press('Enter');
  await visitorSays(first, 'Same words', "the first tab's message");
  release();

  const stored = async () =>
    ((await http(stack.httpUrl, 'GET', `/v1/conversations/${hello.conversationId}/messages`, { token: jwt })).body.items as { text: string }[]).filter((m) => m.text === 'Same words').length;
  await expect.poll(stored, { timeout: 15_000 }).toBe(2);
  await expect.poll(() => widget(second).locator('.message.inbound').allTextContents()).toEqual(['Hello from VikSent', 'Same wordsSent', 'Same wordsSent']);
  await context.close();
}, 60_000);

it.skipIf(!runs)("the demo shop's own code signs its customer in and out, as the README shows a website doing it", async () => {
  const admin = await agentToken(stack.httpUrl, 'admin-olga', 'admin', 'Olga');
  expect((await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { widget: { identityVerification: true } } })).status).toBe(200);
  const email = `dana.${crypto.randomUUID().slice(0, 6)}@example.com`;
  try {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${siteUrl}?as=${encodeURIComponent(email)}&name=${encodeURIComponent('Dana </script>')}`);
    await widget(page).getByRole('button', { name: 'Chat with us' }).click();
    const created = await visitorSays(page, 'Dana, signed in', "Dana's message");
    expect((await http(stack.httpUrl, 'GET', `/v1/conversations/${created.conversationId}`, { token: jwt })).body.contact).toMatchObject({ name: 'Dana </script>', email });

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL((url) => !url.search);
    expect(await page.evaluate("localStorage.getItem('conversa.visitorToken')")).toBeNull();
    await widget(page).getByRole('button', { name: 'Chat with us' }).click();
    await expect.poll(() => widget(page).getByPlaceholder('Your name').isVisible()).toBe(true);
    expect(await widget(page).locator('.message').count()).toBe(0);
    await context.close();
  } finally {
    await http(stack.httpUrl, 'PUT', '/v1/settings', { token: admin, body: { widget: { identityVerification: false } } });
  }
});

it.skipIf(!runs)("says so when the email's link names another conversation than the one this browser keeps", async () => {
  const { context, page } = await startChat('Hal');
  const created = await visitorSays(page, 'Hal here', "Hal's message");
  // Hal's own link: his chat, nothing to say.
  await page.goto(`${siteUrl}?conversation=${created.conversationId}`);
  await expect.poll(() => widget(page).locator('.message').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('Hal here')]));
  expect(await widget(page).locator('.notice').textContent()).toBe('');
  // Someone else's (a shared computer, a forwarded email): the chat shown is not that one.
  await page.goto(`${siteUrl}?conversation=01JC0NVERSAT10NFR0MANEMA1L`);
  await expect.poll(() => widget(page).locator('.notice').textContent()).toContain('another browser');
  await context.close();
});

it.skipIf(!runs)("resumes a returning visitor's chat on the next page without a session call (its limit is shared by every visitor), and asks one when the socket refuses the token", async () => {
  const context = await newContext();
  await countSockets(context);
  const page = await context.newPage();
  const sessions: string[] = [];
  const histories: string[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/v1/widget/sessions')) sessions.push(request.url());
    if (request.method() === 'GET' && request.url().includes('/v1/widget/messages?')) histories.push(request.url());
  });
  await page.goto(siteUrl);
  await fillPreChat(page, 'Rui');
  const created = await visitorSays(page, 'Rui, first page', "Rui's message");
  expect(sessions).toHaveLength(1);

  // The next page: connected, replies counted on the launcher, no session call, and the history
  // only once the chat is opened.
  await page.goto(siteUrl);
  await expect.poll(() => openSockets(page)).toBe(1);
  const historiesBefore = histories.length;
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${created.conversationId}/messages`, { token: jwt, body: { text: 'Hi Rui' } })).status).toBe(202);
  await expect.poll(() => widget(page).locator('.badge').textContent()).toBe('1');
  expect(histories).toHaveLength(historiesBefore);
  await widget(page).getByRole('button', { name: /^Chat with us/ }).click();
  await expect.poll(() => widget(page).locator('.message').allTextContents()).toEqual([
    expect.stringContaining('Rui, first page'),
    expect.stringContaining('Thanks for getting in touch'),
    expect.stringContaining('Hi Rui'),
  ]);
  expect(histories).toHaveLength(historiesBefore + 1);
  expect(sessions).toHaveLength(1);

  // A token the API no longer takes (here: another secret): the handshake is refused, the session call says why, and the form comes back.
  await page.evaluate("localStorage.setItem('conversa.visitorToken', localStorage.getItem('conversa.visitorToken').split('.')[0] + '.not-the-secret')");
  await page.goto(siteUrl);
  await widget(page).getByRole('button', { name: /^Chat with us/ }).click();
  await expect.poll(() => widget(page).getByPlaceholder('Your name').isVisible(), { timeout: 15_000 }).toBe(true);
  expect(await widget(page).getByLabel('Message').isVisible()).toBe(false);
  expect(sessions).toHaveLength(2);
  await context.close();
}, 60_000);

it.skipIf(!runs)("leaves the Enter that confirms an input method's composition to it: the visitor's text goes whole, on their own Enter", async () => {
  const { context, page } = await startChat('Mei');
  const { conversationId } = await visitorSays(page, 'Hello', 'the first message');
  const message = widget(page).getByLabel('Message');
  // Mid-composition the text holds the reading; Enter (as the browser sends it then) picks the characters.
  await message.fill('ありがとう');
  await message.evaluate((node) => {
    const g = globalThis as any;
    node.dispatchEvent(new g.KeyboardEvent('keydown', { key: 'Enter', keyCode: 229, isComposing: true, bubbles: true, cancelable: true }));
  });
  await message.fill('ありがとうございます');
  await visitorSays(page, 'ありがとうございます', 'the composed message');
  // The widget sends one message at a time, in order: a half-composed one would have come first.
  const said = agent.frames.filter((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.direction === 'inbound').map((f) => f.message.text);
  expect(said).toEqual(['Hello', 'ありがとうございます']);
  await context.close();
});

it.skipIf(!runs)('leaves a visitor reading older messages where they are when a reply comes, and follows the newest when they were at it', async () => {
  const { context, page } = await startChat('Ruth');
  const { conversationId } = await visitorSays(page, 'A long story', 'the first message');
  const reply = async (text: string) => {
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text } })).status).toBe(202);
  };
  for (let i = 1; i <= 20; i += 1) await reply(`line ${i}\nsecond row\nthird row`);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent(), { timeout: 15_000 }).toContain('line 20');
  const log = widget(page).locator('.log');
  const atEnd = () => log.evaluate((node) => node.scrollHeight - node.scrollTop - node.clientHeight);
  // The log scrolls inside the panel, at its newest message.
  expect(await log.evaluate((node) => node.scrollHeight > node.clientHeight + 500)).toBe(true);
  await expect.poll(atEnd).toBeLessThan(5);

  // Scrolled back to read: a reply (and its status updates) leaves the visitor where they are.
  await log.evaluate((node) => (node.scrollTop = 100));
  await reply('Are you still there?');
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent()).toContain('Are you still there?');
  await agent.waitFor((f) => f.type === 'read' && f.by?.type === 'contact' && f.conversationId === conversationId, 15_000, 'the read of the reply');
  expect(await log.evaluate((node) => node.scrollTop)).toBe(100);

  // Back at the newest end: the next reply shows, whole.
  await log.evaluate((node) => (node.scrollTop = node.scrollHeight));
  await reply('Last one\nwith two rows');
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent()).toContain('Last one');
  await expect.poll(atEnd).toBeLessThan(5);

  // Replies that came with the chat closed (the badge) are in view once it opens.
  await log.evaluate((node) => (node.scrollTop = 0));
  await widget(page).locator('.launcher').click();
  await reply('While you were away\none\ntwo');
  await expect.poll(() => widget(page).locator('.badge').textContent()).toBe('1');
  await widget(page).locator('.launcher').click();
  await expect.poll(atEnd).toBeLessThan(5);
  await context.close();
}, 60_000);

it.skipIf(!runs)("says in a visitor's words when a file cannot be opened: gone, or the network", async () => {
  const { context, page } = await startChat('Fenna');
  const { conversationId } = await visitorSays(page, 'Can you send the label?', 'the label request');
  await agentSendsFile(conversationId, png(2, 2), 'label.png');
  await expect.poll(() => widget(page).locator('.file').count()).toBe(1);

  await page.route('**/attachments/0', (route) => route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":{"code":"not_found","message":"no file"}}' }));
  await widget(page).locator('.file').first().click();
  await expect.poll(() => widget(page).locator('.notice').textContent()).toBe('This file is no longer available.');

  await page.unroute('**/attachments/0');
  await page.route('**/attachments/0', (route) => route.abort('connectionreset'));
  await widget(page).locator('.file').first().click();
  await expect.poll(() => widget(page).locator('.notice').textContent()).toBe('Could not open the file. Please try again.');
  await context.close();
}, 60_000);

it.skipIf(!runs)('lays right-to-left text out in its own direction, in the log and while the visitor writes it', async () => {
  const { context, page } = await startChat('Omar');
  const { conversationId } = await visitorSays(page, 'مرحبا، أين طلبي؟', 'the Arabic message');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: 'شكرا!' } })).status).toBe(202);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent()).toContain('شكرا!');
  const direction = (selector: string) => widget(page).locator(selector).last().evaluate((node) => (globalThis as any).getComputedStyle(node).direction);
  expect(await direction('.message.inbound')).toBe('rtl');
  expect(await direction('.message.outbound')).toBe('rtl');
  // A visitor writing Arabic sees it laid out as Arabic while writing.
  await widget(page).getByLabel('Message').fill('سؤال آخر');
  expect(await widget(page).getByLabel('Message').evaluate((node) => (globalThis as any).getComputedStyle(node).direction)).toBe('rtl');
  await context.close();
});

it.skipIf(!runs)('wraps a word longer than the panel (a URL, a file name, a name) inside it', async () => {
  const { context, page } = await startChat('Wim');
  const { conversationId } = await visitorSays(page, 'See this', 'the first message');

  // A word longer than the panel (a URL, a file's name) wraps inside it.
  const long = `https://example.com/${'a'.repeat(300)}`;
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: long } })).status).toBe(202);
  await agentSendsFile(conversationId, png(2, 2), `${'b'.repeat(200)}.png`);
  await expect.poll(() => widget(page).locator('.file').count()).toBe(1);
  // A colleague whose name is one long word types.
  const colleague = await WsClient.connect(stack.wsUrl, await agentToken(stack.httpUrl, 'agent-long', 'agent', 'Maximilian'.repeat(12)));
  colleague.send({ action: 'typing', conversationId, state: 'on' });
  await expect.poll(() => widget(page).locator('.typing').textContent()).toContain('is typing');
  await colleague.close();
  const overflow = await widget(page).locator('.panel').evaluate((panel) => {
    const box = panel.getBoundingClientRect();
    // Neither sticking out of the panel nor cut off inside its own box.
    return [...panel.querySelectorAll('*')].filter((node) => node.getBoundingClientRect().right > box.right + 1 || node.scrollWidth > node.clientWidth + 1).map((node) => node.className || node.tagName);
  });
  expect(overflow).toEqual([]);
  await context.close();
}, 60_000);

it.skipIf(!runs)('fits a phone: on 360x640, and turned to 640x360, the panel stays in the window with its composer in view', async () => {
  const context = await newContext();
  const page = await context.newPage();
  const inWindow = async (selector: string) => {
    const { width, height } = page.viewportSize()!;
    const boxes = await widget(page).locator(selector).evaluateAll((nodes) => nodes.map((node) => {
      const box = node.getBoundingClientRect();
      return { left: box.left, top: box.top, right: box.right, bottom: box.bottom };
    }));
    expect(boxes.length, selector).toBeGreaterThan(0);
    for (const box of boxes) {
      expect(box.left, `${selector} at ${width}x${height}`).toBeGreaterThanOrEqual(0);
      expect(box.top, `${selector} at ${width}x${height}`).toBeGreaterThanOrEqual(0);
      expect(box.right, `${selector} at ${width}x${height}`).toBeLessThanOrEqual(width);
      expect(box.bottom, `${selector} at ${width}x${height}`).toBeLessThanOrEqual(height);
    }
  };
  // Turned sideways, the pre-chat form (with the away notice above it) can still be sent.
  await page.setViewportSize({ width: 640, height: 360 });
  await page.goto(siteUrl);
  await widget(page).getByRole('button', { name: 'Chat with us' }).click();
  const start = widget(page).getByRole('button', { name: 'Start chatting' });
  await start.scrollIntoViewIfNeeded();
  await inWindow('.panel');
  await inWindow('form.prechat button');
  await page.setViewportSize({ width: 360, height: 640 });
  await widget(page).getByPlaceholder('Your name').fill('Pia');
  await widget(page).getByPlaceholder(/^Email/).fill('pia@example.com');
  await start.click();
  const { conversationId } = await visitorSays(page, 'From my phone', 'the first message');
  for (let i = 1; i <= 12; i += 1) {
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: `reply ${i}\nmore\nmore` } })).status).toBe(202);
  }
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent(), { timeout: 15_000 }).toContain('reply 12');
  for (const [width, height] of [[360, 640], [640, 360], [320, 568]] as const) {
    await page.setViewportSize({ width, height });
    await inWindow('.panel');
    await inWindow('form.composer');
    await inWindow('.launcher');
  }
  await context.close();
}, 60_000);

it.skipIf(!runs)('catches up on more than a page of replies written while its socket was down: none is missing after the reconnection', async () => {
  const { context, page } = await startChat('Gil');
  const { conversationId } = await visitorSays(page, 'Please send me the whole list', 'the first message');
  await expect.poll(() => widget(page).locator('.state').textContent()).toBe(' · online');
  const visitorSockets = () => stack.websocket.connections().filter((id) => !agentConnections.includes(id));
  await expect.poll(() => visitorSockets().length, { timeout: 10_000 }).toBe(1);
  // The socket goes and cannot come back while `blocked` (pointed at a closed port).
  await blockSockets(page);
  stack.websocket.dropConnection(visitorSockets()[0]!, { notify: true });
  await expect.poll(() => widget(page).locator('.state').textContent()).not.toBe(' · online');
  const lines = Array.from({ length: 60 }, (_, i) => `item ${i + 1}`);
  for (const text of lines) {
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text } })).status).toBe(202);
  }
  await agent.waitFor((f) => f.type === 'message.created' && f.message.text === 'item 60', 15_000, 'the last reply');
  await unblockSockets(page);
  await expect.poll(() => widget(page).locator('.state').textContent(), { timeout: 30_000 }).toBe(' · online');
  const shown = () => widget(page).locator('.message.outbound').evaluateAll((nodes) => nodes.map((node) => node.firstChild?.textContent ?? '').filter((t) => t.startsWith('item ')));
  await expect.poll(shown, { timeout: 10_000 }).toEqual(lines);
  await context.close();
}, 90_000);

it.skipIf(!runs)("takes an erased visitor's conversation off the open page: the form comes back, and a new chat shows none of it", async () => {
  const { context, page } = await startChat('Edda');
  const { conversationId } = await visitorSays(page, 'My card number is 4111', 'the message to erase');
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text: 'Noted, Edda' } })).status).toBe(202);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent()).toContain('Noted, Edda');
  const contactId = (await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}`, { token: jwt })).body.contact.id;
  const admin = await agentToken(stack.httpUrl, 'admin-erin', 'admin', 'Erin');
  expect((await http(stack.httpUrl, 'DELETE', `/v1/contacts/${contactId}`, { token: admin })).status).toBe(202);
  // Its socket closed and its token refused: the page forgets what it showed.
  await expect.poll(() => widget(page).getByRole('button', { name: 'Start chatting' }).isVisible(), { timeout: 20_000 }).toBe(true);
  await expect.poll(() => widget(page).locator('.message').count()).toBe(0);
  expect(await page.evaluate(() => (globalThis as any).localStorage.getItem('conversa.visitorToken'))).toBeNull();

  await widget(page).getByPlaceholder('Your name').fill('Edda');
  await widget(page).getByRole('button', { name: 'Start chatting' }).click();
  const fresh = await visitorSays(page, 'Hello again', 'the new chat');
  expect(fresh.conversationId).not.toBe(conversationId);
  await expect.poll(() => widget(page).locator('.message').allTextContents()).not.toContainEqual(expect.stringContaining('4111'));
  expect(await widget(page).locator('.message').allTextContents()).not.toContainEqual(expect.stringContaining('Noted, Edda'));
  await context.close();
}, 60_000);

it.skipIf(!runs)("stops counting a reply on the launcher once another tab of the visitor's read it, and counts the next", async () => {
  const { context, page } = await startChat('Tess');
  const { conversationId } = await visitorSays(page, 'I have two tabs open', 'the first message');
  const other = await context.newPage();
  await other.goto(siteUrl);
  await expect.poll(() => stack.websocket.connections().filter((id) => !agentConnections.includes(id)).length, { timeout: 10_000 }).toBe(2);
  const reply = async (text: string) => {
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text } })).status).toBe(202);
  };
  // Both tabs with the chat closed: the reply counts on both launchers.
  await widget(page).locator('.launcher').click();
  await reply('Your refund is on its way');
  await expect.poll(() => widget(other).locator('.badge').textContent()).toBe('1');
  await expect.poll(() => widget(page).locator('.badge').textContent()).toBe('1');
  expect(await other.title()).toBe('(1) Conversa widget demo');
  // Read in the first tab: the other's launcher no longer says it is unread.
  await page.bringToFront();
  await widget(page).locator('.launcher').click();
  await agent.waitFor((f) => f.type === 'read' && f.by?.type === 'contact' && f.conversationId === conversationId, 15_000, 'the read');
  await expect.poll(() => widget(other).locator('.badge').isVisible()).toBe(false);
  await expect.poll(() => other.title()).toBe('Conversa widget demo');
  // A later reply, not read yet (the first tab closed again), counts alone.
  await widget(page).locator('.launcher').click();
  await reply('It should arrive Monday');
  await expect.poll(() => widget(other).locator('.badge').textContent()).toBe('1');
  expect(await widget(other).locator('.badge').isVisible()).toBe(true);
  await context.close();
}, 60_000);

it.skipIf(!runs)('catches up on the replies written while its socket was down when the chat opens later, though a newer reply came live meanwhile', async () => {
  const { context, page } = await startChat('Hal');
  const { conversationId } = await visitorSays(page, 'I will check back later', 'the first message');
  await expect.poll(() => widget(page).locator('.state').textContent()).toBe(' · online');
  const visitorSockets = () => stack.websocket.connections().filter((id) => !agentConnections.includes(id));
  await expect.poll(() => visitorSockets().length, { timeout: 10_000 }).toBe(1);
  const reply = async (text: string) => {
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text } })).status).toBe(202);
  };
  // The chat closed, the socket goes and cannot come back while `blocked`.
  await widget(page).locator('.launcher').click();
  await blockSockets(page);
  stack.websocket.dropConnection(visitorSockets()[0]!, { notify: true });
  await expect.poll(() => widget(page).locator('.state').textContent()).not.toBe(' · online');
  const lines = Array.from({ length: 55 }, (_, i) => `note ${i + 1}`);
  for (const text of lines) await reply(text);
  await agent.waitFor((f) => f.type === 'message.created' && f.message.text === 'note 55', 15_000, 'the last reply');
  await unblockSockets(page);
  await expect.poll(() => widget(page).locator('.state').textContent(), { timeout: 30_000 }).toBe(' · online');
  // Reconnected with the chat closed (its history is read once it opens), a reply comes live.
  await reply('note 56');
  await expect.poll(() => widget(page).locator('.badge').textContent()).toBe('1');
  await widget(page).locator('.launcher').click();
  const shown = () => widget(page).locator('.message.outbound').evaluateAll((nodes) => nodes.map((node) => node.firstChild?.textContent ?? '').filter((t) => t.startsWith('note ')));
  await expect.poll(shown, { timeout: 10_000 }).toEqual([...lines, 'note 56']);
  await context.close();
}, 90_000);

it.skipIf(!runs)('shows a returning visitor older messages on demand, above the one they were reading, through a reconnection, until the first; a logout takes the button away', async () => {
  const { context, page } = await startChat('Orla');
  const { conversationId } = await visitorSays(page, 'Start of a long chat', 'the first message');
  const reply = async (text: string) => {
    expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text } })).status).toBe(202);
  };
  for (let i = 1; i <= 60; i += 1) await reply(`old ${i}`);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent(), { timeout: 15_000 }).toContain('old 60');
  const older = widget(page).getByRole('button', { name: 'Older messages' });
  const log = widget(page).locator('.log');
  const shownIds = () => widget(page).locator('.message').evaluateAll((nodes) => nodes.map((node) => (node as unknown as { dataset: { id?: string } }).dataset.id));

  // A later visit: the newest page, and the way to the older ones.
  await page.reload();
  await widget(page).getByRole('button', { name: /^Chat with us/ }).click();
  await expect.poll(() => widget(page).locator('.message').count(), { timeout: 10_000 }).toBe(50);
  await expect.poll(() => older.isVisible()).toBe(true);

  // The socket goes and comes back with replies written meanwhile (read with the history).
  await expect.poll(() => widget(page).locator('.state').textContent()).toBe(' · online');
  await blockSockets(page);
  const visitorSockets = () => stack.websocket.connections().filter((id) => !agentConnections.includes(id));
  stack.websocket.dropConnection(visitorSockets()[0]!, { notify: true });
  await expect.poll(() => widget(page).locator('.state').textContent()).not.toBe(' · online');
  for (let i = 1; i <= 3; i += 1) await reply(`new ${i}`);
  await unblockSockets(page);
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent(), { timeout: 30_000 }).toContain('new 3');
  expect(await older.isVisible()).toBe(true);

  // The visitor reads the oldest shown, then asks for what came before: it goes above, and the
  // message they read stays where it was in the panel.
  await log.evaluate((node) => (node.scrollTop = 0));
  const firstShown = (await shownIds())[0]!;
  const offset = () => log.evaluate((node, id) => node.querySelector(`[data-id="${id}"]`)!.getBoundingClientRect().top - node.getBoundingClientRect().top, firstShown);
  const before = await offset();
  await older.click();
  await expect.poll(() => widget(page).locator('.message').count()).toBeGreaterThan(53);
  expect(await offset()).toBeCloseTo(before, 0);

  // Every message of the conversation, once each, in its order; nothing older to ask for.
  const all: string[] = [];
  let cursor: string | null = null;
  do {
    const res: { body: { items: { id: string }[]; nextCursor: string | null } } = await http(stack.httpUrl, 'GET', `/v1/conversations/${conversationId}/messages?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: jwt });
    all.unshift(...res.body.items.map((m) => m.id));
    cursor = res.body.nextCursor;
  } while (cursor);
  expect(all.length).toBe(await widget(page).locator('.message').count());
  expect(await shownIds()).toEqual(all);
  expect(await older.isVisible()).toBe(false);

  // Reading older messages, a reply does not take them down.
  const reading = await log.evaluate((node) => node.scrollTop);
  await reply('Are you still there?');
  await expect.poll(() => widget(page).locator('.message.outbound').last().textContent(), { timeout: 15_000 }).toContain('Are you still there?');
  expect(await log.evaluate((node) => node.scrollTop)).toBe(reading);

  // The site's logout: no way back into the previous visitor's history.
  await page.evaluate('ConversaWidget.reset()');
  await expect.poll(() => widget(page).locator('.message').count()).toBe(0);
  expect(await older.isVisible()).toBe(false);
  await context.close();
}, 120_000);

/** The visitor picks a file the page makes (a 25 MiB one costs nothing to hand over this way). */
function pickFile(page: Page, name: string, size: number, type: string) {
  return widget(page).locator('input[type=file]').evaluate((input, file) => {
    const picked = new (globalThis as any).DataTransfer();
    picked.items.add(new File([new Uint8Array(file.size)], file.name, { type: file.type }));
    (input as unknown as { files: unknown }).files = picked.files;
    input.dispatchEvent(new Event('change'));
  }, { name, size, type });
}

it.skipIf(!runs)('past the hourly upload quota, says when the visitor can send a file again rather than "try again"', async () => {
  const { context, page } = await startChat('Quinn');
  await visitorSays(page, 'I have lots of photos', 'the first message');
  // The visitor's tickets for this hour, taken as the widget takes them (its own token and origin).
  const statuses = await page.evaluate(async (url) => {
    const token = (globalThis as any).localStorage.getItem('conversa.visitorToken') as string;
    const take = () =>
      fetch(`${url}/v1/widget/uploads`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ contentType: 'image/jpeg', size: 100 }),
      }).then((res) => res.status);
    const seen: number[] = [];
    for (let i = 0; i < 200 && !seen.includes(429); i++) seen.push(await take());
    return seen;
  }, stack.httpUrl);
  expect(statuses.at(-1)).toBe(429);
  expect(statuses.slice(0, -1).every((status) => status === 201 || status === 200)).toBe(true);

  const draft = 'And one more';
  await widget(page).getByLabel('Message').fill(draft);
  await pickFile(page, 'beach.jpg', 100, 'image/jpeg');
  const notice = widget(page).locator('.notice');
  // The quota's hour is the UTC hour: the answer's Retry-After runs to its end (read, so not a flat hour).
  const minutesLeft = () => Math.ceil((3_600_000 - (Date.now() % 3_600_000)) / 60_000);
  const said = (minutes: number) => `"beach.jpg" was not sent: too many files this hour. Please try again in ${minutes === 1 ? 'a minute' : `${minutes} minutes`}.`;
  const before = minutesLeft();
  await expect.poll(() => notice.textContent()).toMatch(/^"beach\.jpg" was not sent/);
  expect([said(before), said(minutesLeft())]).toContain(await notice.textContent());
  expect(await widget(page).getByLabel('Message').inputValue()).toBe(draft);
  expect(await widget(page).locator('.message.inbound').count()).toBe(1);
  await context.close();
}, 60_000);

it.skipIf(!runs)('says in a few words why a file did not go (too large, a type not taken, an upload that failed, a message refused), keeps the draft, and sends it with the file picked again', async () => {
  const context = await newContext();
  const page = await context.newPage();
  // The visitor's socket, passed through, except error frames while `holding`: the test writes in
  // the composer while the refusal is on its way.
  let holding = false;
  let held: (() => void) | undefined;
  const errorHeld = new Promise<void>((resolve) => (held = resolve));
  const release: string[] = [];
  let toPage: ((message: string) => void) | undefined;
  await page.routeWebSocket(/./, (ws) => {
    const server = ws.connectToServer();
    toPage = (message) => ws.send(message);
    server.onMessage((message) => {
      if (holding && typeof message === 'string' && JSON.parse(message).type === 'error') {
        release.push(message);
        held?.();
      } else ws.send(message);
    });
  });
  await page.goto(siteUrl);
  await fillPreChat(page, 'Ugo');
  const { conversationId } = await visitorSays(page, 'I will send you the invoice', 'the first message');
  const draft = 'Here it is';
  await widget(page).getByLabel('Message').fill(draft);
  const notice = widget(page).locator('.notice');
  const pick = (name: string, size: number, type: string) => pickFile(page, name, size, type);

  await pick('scan.pdf', 25 * 1024 * 1024 + 1, 'application/pdf');
  await expect.poll(() => notice.textContent()).toBe('"scan.pdf" is too large to send here (25 MB at most).');
  await pick('odd.bin', 10, 'application/x odd');
  await expect.poll(() => notice.textContent()).toBe('"odd.bin" is a type of file that cannot be sent here.');
  // The file never reaches storage (the network fails under it).
  await page.route('**/*', (route) => (route.request().method() === 'PUT' ? route.abort() : route.continue()));
  await pick('invoice.pdf', 100, 'application/pdf');
  await expect.poll(() => notice.textContent()).toBe('"invoice.pdf" could not be sent. Please try again.');
  expect(await widget(page).getByLabel('Message').inputValue()).toBe(draft);
  expect(await widget(page).locator('.message.inbound').count()).toBe(1);

  // Storage said yes without keeping it: the API refuses the message naming it (an error frame,
  // upload_not_found). The words left the composer with the file, and more are written meanwhile.
  await page.unrouteAll();
  await page.route('**/*', (route) => (route.request().method() === 'PUT' ? route.fulfill({ status: 200, headers: { 'access-control-allow-origin': '*' } }) : route.continue()));
  holding = true;
  await pick('invoice.pdf', 100, 'application/pdf');
  await errorHeld;
  expect(JSON.parse(release[0]!)).toMatchObject({ type: 'error', code: 'upload_not_found' });
  expect(await widget(page).getByLabel('Message').inputValue()).toBe('');
  expect(await notice.textContent()).toBe('');
  await widget(page).getByLabel('Message').fill('And the receipt');
  holding = false;
  toPage!(release[0]!);
  // Back in the composer ahead of what came since, as after a failed upload, and said why; no "Not sent" bubble.
  const words = `${draft}\nAnd the receipt`;
  await expect.poll(() => widget(page).getByLabel('Message').inputValue(), { timeout: 10_000 }).toBe(words);
  expect(await notice.textContent()).toBe('"invoice.pdf" could not be sent. Please try again.');
  expect(await widget(page).locator('.message.failed').count()).toBe(0);
  expect(await widget(page).locator('.message.inbound').count()).toBe(1);

  // Picked again once storage works: the file goes, with the words the composer kept.
  await page.unrouteAll();
  await pick('invoice.pdf', 100, 'application/pdf');
  const sent = await agent.waitFor((f) => f.type === 'message.created' && f.conversationId === conversationId && f.message.attachments?.length === 1, 15_000, "the visitor's file");
  expect(sent.message).toMatchObject({ text: words, attachments: [{ name: 'invoice.pdf', size: 100 }] });
  expect(await widget(page).getByLabel('Message').inputValue()).toBe('');
  await context.close();
}, 60_000);

it.skipIf(!runs)("counts the team's replies in the page's title while its tab is out of sight, and gives the title back once the visitor sees them", async () => {
  const context = await newContext();
  // The tab's visibility, as the test sets it (a headless page is always visible).
  await context.addInitScript(`
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (window.conversaHidden ? 'hidden' : 'visible') });
  `);
  const page = await context.newPage();
  await page.goto(siteUrl);
  await fillPreChat(page, 'Tilda');
  const { conversationId } = await visitorSays(page, "Where is Tilda's parcel?", 'the first message');
  const reply = async (text: string) => {
    const res = await http(stack.httpUrl, 'POST', `/v1/conversations/${conversationId}/messages`, { token: jwt, body: { text } });
    expect(res.status).toBe(202);
    await expect.poll(() => widget(page).locator('.message.outbound').last().textContent(), { timeout: 15_000 }).toContain(text);
    return res.body.message.id as string;
  };
  const setHidden = (hidden: boolean) => page.evaluate(`window.conversaHidden = ${hidden}; document.dispatchEvent(new Event('visibilitychange'))`);
  await reply('Let me look');
  expect(await page.title()).toBe('Conversa widget demo');

  // The chat open in a tab out of sight: each reply counts in the title (not on the launcher, under the open chat).
  await setHidden(true);
  await reply('Found it');
  await expect.poll(() => page.title()).toBe('(1) Conversa widget demo');
  const last = await reply('It is at the depot');
  await expect.poll(() => page.title()).toBe('(2) Conversa widget demo');
  expect(await widget(page).locator('.badge').isVisible()).toBe(false);
  // Seen: the title is the page's again, and the reply is read.
  await setHidden(false);
  await expect.poll(() => page.title()).toBe('Conversa widget demo');
  await agent.waitFor((f) => f.type === 'read' && f.messageId === last && f.by?.type === 'contact', 15_000, 'the read once seen');

  // The chat closed: a reply out of sight counts on the launcher and in the title, still unread
  // when the tab is seen, until the chat opens; the page's own new title is kept.
  await widget(page).locator('.launcher').click();
  await setHidden(true);
  await reply('Delivery tomorrow');
  await expect.poll(() => page.title()).toBe('(1) Conversa widget demo');
  await page.evaluate("document.title = 'Checkout'");
  await reply('Between 9 and 12');
  await expect.poll(() => page.title()).toBe('(2) Checkout');
  await setHidden(false);
  expect(await page.title()).toBe('(2) Checkout');
  expect(await widget(page).locator('.badge').textContent()).toBe('2');
  await widget(page).locator('.launcher').click();
  await expect.poll(() => page.title()).toBe('Checkout');
  // The site's logout takes the count away with the chat.
  await setHidden(true);
  await reply('Anything else?');
  await expect.poll(() => page.title()).toBe('(1) Checkout');
  await page.evaluate('ConversaWidget.reset()');
  expect(await page.title()).toBe('Checkout');
  await context.close();
}, 60_000);
