/** `npm start`: the whole backend on this machine. Ctrl-C stops every child process. */
import { startLocalStack } from './stack';

const port = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw ? Number(raw) : fallback;
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${name} must be a port number`);
  return value;
};

const ports = { httpPort: port('CONVERSA_HTTP_PORT', 3000), wsPort: port('CONVERSA_WS_PORT', 3001) };
const stack = await startLocalStack({
  ...ports,
  ...(process.env.CONVERSA_DATA_DIR ? { dataDir: process.env.CONVERSA_DATA_DIR } : {}),
  verbose: true,
}).catch((error: unknown) => {
  // Another npm start (or anything else) on the port: say which and what to do, not a stack trace.
  const { code, port: taken } = error as { code?: string; port?: number };
  if (code !== 'EADDRINUSE') throw error;
  const variable = taken === ports.wsPort ? 'CONVERSA_WS_PORT' : 'CONVERSA_HTTP_PORT';
  console.error(`Port ${taken} is in use: stop what listens on it, or set ${variable} to another port (0 picks a free one).`);
  process.exit(1);
});

console.log(`Conversa local stack is up
  HTTP API       ${stack.httpUrl}
  WebSocket API  ${stack.wsUrl}
  AWS stand-ins  ${stack.aws.url}   (SQS, Scheduler, SES)
  DynamoDB       ${process.env.AWS_ENDPOINT_URL_DYNAMODB}
  Health         ${stack.httpUrl}/local/health
  Widget demo    ${stack.httpUrl}/local/widget/
  Agent console  ${stack.httpUrl}/local/console/
  Agent token    curl -s -XPOST ${stack.httpUrl}/local/auth/token -d '{"sub":"agent-1","name":"Ana","role":"agent"}'
Ctrl-C stops everything.`);

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping…`);
  await stack.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
