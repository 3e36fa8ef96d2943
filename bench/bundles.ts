/**
 * Each function bundled as the CDK bundles it (lib/constructs/conversa-function.ts: ESM,
 * minified, node22, the AWS SDK inside, the createRequire banner), then loaded by fresh Node
 * processes to time the cold module load Lambda's init phase pays.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build, type BuildOptions } from 'esbuild';
import { FUNCTIONS, type FunctionName } from '../src/manifest';
import { BUNDLE_ALIASES, ESM_REQUIRE_BANNER, RUNTIME_NODE_OPTIONS } from '../lib/constructs/conversa-function';
import { median } from './stats';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');

export interface BundleResult {
  name: FunctionName;
  bytes: number;
  initMs: number;
}

/** Configuration the handlers read at module scope; the values only have to be well-formed. */
const INIT_ENV: Record<string, string> = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  TABLE_NAME: 'conversa-bench',
  INBOUND_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/conversa-inbound.fifo',
  OUTBOUND_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/conversa-outbound.fifo',
  WS_CALLBACK_URL: 'https://example.execute-api.us-east-1.amazonaws.com/live',
  WS_PUBLIC_URL: 'wss://example.execute-api.us-east-1.amazonaws.com/live',
  JWT_ISSUER: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example',
  JWT_JWKS_URI: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example/.well-known/jwks.json',
  JWT_AUDIENCE: 'example',
  SCHEDULE_GROUP: 'conversa',
  POWERTOOLS_LOG_LEVEL: 'WARN',
};

/**
 * Imports the bundle in a new process started with the functions' Node options (source maps on,
 * as deployed) and prints how long the import took (process start excluded).
 */
const LOADER = `const t = performance.now(); await import(process.argv[1]); process.stdout.write(String(performance.now() - t));`;

async function coldLoadMs(file: string): Promise<number> {
  const { stdout } = await run(process.execPath, [...RUNTIME_NODE_OPTIONS.split(' '), '--input-type=module', '-e', LOADER, pathToFileURL(file).href], {
    env: { PATH: process.env.PATH ?? '', ...INIT_ENV },
  });
  return Number(stdout);
}

/** esbuild options that bundle a function as ConversaFunction has the CDK bundle it. */
export function bundleOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    minify: true,
    // Written next to the bundle, as the CDK does: with --enable-source-maps Node parses it at load.
    sourcemap: true,
    sourcesContent: false,
    banner: { js: ESM_REQUIRE_BANNER },
    absWorkingDir: ROOT,
    alias: { ...BUNDLE_ALIASES },
    logLevel: 'error',
  };
}

export async function measureBundles(loads: number): Promise<BundleResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'conversa-bench-'));
  try {
    const results: BundleResult[] = [];
    for (const [name, spec] of Object.entries(FUNCTIONS) as [FunctionName, (typeof FUNCTIONS)[FunctionName]][]) {
      const outfile = join(dir, name, 'index.mjs');
      await build(bundleOptions(join(ROOT, spec.entry), outfile));
      const samples: number[] = [];
      for (let i = 0; i < loads; i++) samples.push(await coldLoadMs(outfile));
      results.push({ name, bytes: statSync(outfile).size, initMs: Math.round(median(samples) * 10) / 10 });
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
