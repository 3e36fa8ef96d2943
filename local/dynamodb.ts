/**
 * DynamoDB Local (the JVM build that the amplify-dynamodb-simulator package ships) as a child
 * process, and the single table created in it from the same definition as the CDK table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { createTableInput, TABLE } from '../src/store/table';

export interface DynamoDbLocalOptions {
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Keep the data in this directory instead of in memory. */
  readonly dataDir?: string;
  /** How long to wait for the JVM to answer. @default 60000 */
  readonly startTimeoutMs?: number;
}

export interface DynamoDbLocal {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  /** Kills the JVM and waits for it to exit. */
  stop(): Promise<void>;
  /** Stops and starts again on the same port (in memory, the data is gone; with dataDir, it stays). */
  restart(): Promise<void>;
}

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 5000;
const POLL_INTERVAL_MS = 200;
/** DynamoDB Local accepts any credentials and, with -sharedDb, ignores the region. */
const LOCAL_CLIENT_CONFIG = {
  region: process.env.AWS_REGION ?? 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
};

export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const port = options.port ? options.port : await freePort();
  const endpoint = `http://${HOST}:${port}`;
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });

  let child = await launch(port, options.dataDir, endpoint, timeoutMs);
  return {
    endpoint,
    stop: () => stopChild(child),
    async restart() {
      await stopChild(child);
      child = await launch(port, options.dataDir, endpoint, timeoutMs);
    },
  };
}

/** Creates the table if it is missing, waits until it is active and turns TTL on. Idempotent. */
export async function ensureTable(endpoint: string, tableName: string): Promise<void> {
  const client = new DynamoDBClient({ ...LOCAL_CLIENT_CONFIG, endpoint });
  try {
    try {
      await client.send(new CreateTableCommand(createTableInput(tableName)));
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { TableName: tableName });
    const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
    // Enabling TTL twice is a ValidationException, so only ask when it is off.
    if (ttl.TimeToLiveDescription?.TimeToLiveStatus !== 'ENABLED') {
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: tableName,
          TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
        }),
      );
    }
  } finally {
    client.destroy();
  }
}

function emulatorDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('amplify-dynamodb-simulator/package.json')), 'emulator');
}

async function launch(port: number, dataDir: string | undefined, endpoint: string, timeoutMs: number): Promise<ChildProcess> {
  const dir = emulatorDir();
  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  const storage = dataDir ? ['-dbPath', dataDir] : ['-inMemory'];
  const args = [
    `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
    '-jar',
    join(dir, 'DynamoDBLocal.jar'),
    ...storage,
    '-sharedDb',
    '-port',
    String(port),
  ];
  // Not detached: the JVM stays in our process group, so Ctrl-C in the terminal reaches it too.
  const child = spawn(java, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  killWithParent(child);

  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`Could not start ${java} for DynamoDB Local: ${error.message}`)));
    child.once('exit', (code, signal) =>
      reject(new Error(`DynamoDB Local exited during startup (code ${code}, signal ${signal}): ${stderr.trim()}`)),
    );
  });
  exited.catch(() => undefined);

  try {
    await Promise.race([waitUntilAnswering(endpoint, timeoutMs), exited]);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return child;
}

async function waitUntilAnswering(endpoint: string, timeoutMs: number): Promise<void> {
  const client = new DynamoDBClient({ ...LOCAL_CLIENT_CONFIG, endpoint, maxAttempts: 1 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`DynamoDB Local did not answer on ${endpoint} within ${timeoutMs} ms`, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
      }
    }
  } finally {
    client.destroy();
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const children = new Set<ChildProcess>();
let parentHooksInstalled = false;

/**
 * The JVM must not outlive us. On a normal exit, kill it synchronously ('exit' handlers cannot wait).
 * A SIGINT/SIGTERM sent to this process alone (not the whole group) would otherwise end Node without
 * 'exit' handlers: kill the JVM, then, if nobody else handles the signal, exit the way Node would have.
 */
function killWithParent(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (parentHooksInstalled) return;
  parentHooksInstalled = true;

  const killAll = () => {
    for (const running of children) running.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      killAll();
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
