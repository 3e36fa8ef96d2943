/**
 * `npm start` as a platform team (or a test harness) runs it: up on the ports it is given, and
 * a SIGTERM to the npm process stops every part, DynamoDB Local's JVM included.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { expect, it } from 'vitest';
import { eventually } from '../support/clients';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const answers = async (url: string) => {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
};

it('stops every part when the npm process gets SIGTERM', { timeout: 120_000 }, async () => {
  // Prepare
  const [httpPort, wsPort] = [await freePort(), await freePort()];
  const npm = spawn('npm', ['start'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, CONVERSA_HTTP_PORT: String(httpPort), CONVERSA_WS_PORT: String(wsPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A group of its own, so that a failing run can still clean up everything npm started.
    detached: true,
  });
  let output = '';
  npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
  try {
    await eventually(() => output.includes('is up'), 90_000, 200);
    const health = await fetch(`http://127.0.0.1:${httpPort}/local/health`);
    expect(await health.json()).toEqual({ ok: true });
    const dynamodb = /DynamoDB\s+(http:\/\/\S+)/.exec(output)![1]!;
    expect(await answers(dynamodb)).toBe(true);

    // Act
    npm.kill('SIGTERM');

    // Assess: npm exits, and nothing it started still answers
    expect(await exited).toBe(0);
    await eventually(async () => !(await answers(`http://127.0.0.1:${httpPort}/local/health`)) && !(await answers(dynamodb)), 15_000, 200);
  } finally {
    try {
      process.kill(-npm.pid!, 'SIGKILL');
    } catch {
      // Already gone, as it should be.
    }
  }
});

it('says which port is taken, and what to do, when another process holds it; nothing it started is left running', { timeout: 120_000 }, async () => {
  // Prepare: something already listens on the HTTP port
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const httpPort = (holder.address() as { port: number }).port;
  const npm = spawn('npm', ['start'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, CONVERSA_HTTP_PORT: String(httpPort), CONVERSA_WS_PORT: String(await freePort()) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    // Act
    const code = await new Promise<number | null>((resolve) => npm.on('exit', (exit) => resolve(exit)));

    // Assess: a clear line, no stack trace, and no DynamoDB Local left behind in its group
    expect(code).toBe(1);
    expect(output).toContain(`Port ${httpPort} is in use: stop what listens on it, or set CONVERSA_HTTP_PORT`);
    expect(output).not.toMatch(/\n\s+at /);
    let alive = true;
    await eventually(() => {
      try {
        process.kill(-npm.pid!, 0);
      } catch {
        alive = false;
      }
      return !alive;
    }, 15_000, 200);
  } finally {
    holder.close();
    try {
      process.kill(-npm.pid!, 'SIGKILL');
    } catch {
      // Already gone, as it should be.
    }
  }
});
