/** Reports read what the conversations did, per channel, over HTTP on the local stack. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/stack';
import { agentToken, eventually, http, visitorSession, WsClient } from '../support/clients';

let stack: LocalStack;
let jwt: string;
const sockets: WsClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  jwt = await agentToken(stack.httpUrl, 'agent-rita', 'admin', 'Rita');
});
afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await stack?.stop();
});

async function conversation(): Promise<string> {
  const session = await visitorSession(stack.httpUrl);
  const ws = await WsClient.connect(stack.wsUrl, session.token);
  sockets.push(ws);
  ws.send({ action: 'sendMessage', text: 'help', clientMessageId: crypto.randomUUID() });
  return (await ws.waitFor((f) => f.type === 'ack')).conversationId;
}

it('reports volume, replies, resolution and FCR for the period, per channel', async () => {
  const from = new Date(Date.now() - 60_000).toISOString();
  const [a, b, c] = [await conversation(), await conversation(), await conversation()];
  await http(stack.httpUrl, 'POST', `/v1/conversations/${a}/messages`, { token: jwt, body: { text: 'hi' } });
  await http(stack.httpUrl, 'POST', `/v1/conversations/${b}/messages`, { token: jwt, body: { text: 'hi' } });
  expect((await http(stack.httpUrl, 'POST', `/v1/conversations/${a}/resolve`, { token: jwt })).status).toBe(200);
  await http(stack.httpUrl, 'POST', `/v1/conversations/${b}/resolve`, { token: jwt });
  await http(stack.httpUrl, 'POST', `/v1/conversations/${b}/reopen`, { token: jwt });
  await http(stack.httpUrl, 'POST', `/v1/conversations/${b}/resolve`, { token: jwt });

  const report = await eventually(async () => {
    const res = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${from}&to=${new Date(Date.now() + 1000).toISOString()}`, { token: jwt });
    return res.body.resolved === 2 ? res : undefined;
  });
  expect(report.status).toBe(200);
  expect(report.body).toMatchObject({ conversations: 3, resolved: 2, resolutionRate: 0.6667, firstContactResolutionRate: 0.5 });
  expect(report.body.firstReplySeconds.count).toBe(2);
  expect(report.body.byChannel.web.conversations).toBe(3);
  expect(report.body.sla.firstReplyAttainment).toBe(1);
  expect(c).toBeTruthy();

  const none = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${from}&channel=sms`, { token: jwt });
  expect(none.body.conversations).toBe(0);
  const bad = await http(stack.httpUrl, 'GET', '/v1/reports/summary?from=yesterday', { token: jwt });
  expect(bad.status).toBe(400);
  const reversed = await http(stack.httpUrl, 'GET', `/v1/reports/summary?from=${new Date().toISOString()}&to=${from}`, { token: jwt });
  expect(reversed.status).toBe(400);
});
