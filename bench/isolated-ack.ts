/**
 * The webhook ack as deployed: the webhook function on its own CPU, with nothing else in its
 * event loop. Runs in a child process of `npm run bench` holding only the HTTP gateway
 * stand-in, the real webhook handler and the SQS stand-in (no consumers, no DynamoDB), and
 * prints one JSON line. The local stack's own figure (webhookAck) shares one event loop with
 * every consumer, which the deployed webhook never does.
 */
import { startAwsStandIns } from '../local/aws/server';
import { startHttpGateway } from '../local/gateway/http';
import { HTTP_ROUTES, type FunctionName } from '../src/manifest';
import { ackWithReferences } from './measure';
import { whatsappWebhook } from './traffic';

const n = Number(process.argv[2] ?? 200);
const WARMUP = 50;

const aws = await startAwsStandIns({ onScheduleFire: async () => undefined });
Object.assign(process.env, {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_ENDPOINT_URL_SQS: aws.url,
  INBOUND_QUEUE_URL: aws.sqs.createQueue('conversa-inbound.fifo', { fifo: true }),
});
const { handler } = await import('../functions/webhook/handler');
const gateway = await startHttpGateway({
  port: 0,
  routes: HTTP_ROUTES,
  invoke: (fn: FunctionName, event) => (fn === 'webhook' ? handler(event, {} as never) : Promise.reject(new Error(`${fn} is not here`))),
  authorizeJwt: async () => null,
});
const result = await ackWithReferences(`${gateway.url}/webhooks/whatsapp`, { from: -WARMUP, to: n }, (i) =>
  whatsappWebhook(`1555000${String(i + WARMUP).padStart(5, '0')}`, `isolated ${i}`),
);
console.log(JSON.stringify(result));
await gateway.close();
await aws.close();
process.exit(0);
