/**
 * The function bundles as built for Lambda (bench/bundles.ts bundleOptions mirrors the CDK's):
 * the SDK's default credential chain is replaced by the environment provider, an SDK client
 * bundled that way still signs with the credentials Lambda puts in the environment, and stack
 * traces name the TypeScript source although the map leaves the sources out.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleOptions } from '../../bench/bundles';
import { RUNTIME_NODE_OPTIONS } from '../../lib/constructs/conversa-function';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'conversa-bundle-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A bundle of a DynamoDB client that prints the credentials it resolves (or why it could not),
 * and the stack of an error thrown on line 3 of its source.
 */
async function credentialProbe(): Promise<{ file: string; inputs: string[] }> {
  const entry = join(dir, 'probe.ts');
  writeFileSync(
    entry,
    `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
function fail(): never {
  throw new Error('probe');
}
const client = new DynamoDBClient({});
let stack = '';
try {
  fail();
} catch (error) {
  stack = (error as Error).stack ?? '';
}
try {
  const c = await client.config.credentials();
  process.stdout.write(JSON.stringify({ accessKeyId: c.accessKeyId, sessionToken: c.sessionToken, stack }));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: (error as Error).name }));
}`,
  );
  const file = join(dir, 'probe', 'index.mjs');
  const result = await build({ ...bundleOptions(entry, file), metafile: true, nodePaths: [join(process.cwd(), 'node_modules')] });
  return { file, inputs: Object.keys(result.metafile.inputs) };
}

describe('function bundles', () => {
  it('carry only the environment credential provider, which answers with what Lambda puts there, and map stack traces', async () => {
    const { file, inputs } = await credentialProbe();
    expect(inputs.some((path) => path.includes('credential-provider-env'))).toBe(true);
    for (const dropped of ['credential-provider-node', 'credential-provider-sso', 'credential-provider-imds', 'nested-clients']) {
      expect(inputs.filter((path) => path.includes(dropped))).toEqual([]);
    }

    const env = { PATH: process.env.PATH ?? '', AWS_REGION: 'eu-west-1' };
    const lambdaEnv = { ...env, AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' };
    const found = JSON.parse((await run(process.execPath, [...RUNTIME_NODE_OPTIONS.split(' '), file], { env: lambdaEnv })).stdout);
    expect(found).toMatchObject({ accessKeyId: 'ASIAEXAMPLE', sessionToken: 'token' });
    expect(found.stack).toMatch(/probe\.ts:3:\d+/);
    expect(JSON.parse(readFileSync(`${file}.map`, 'utf8'))).not.toHaveProperty('sourcesContent');
    const missing = await run(process.execPath, [file], { env });
    expect(JSON.parse(missing.stdout)).toEqual({ error: 'CredentialsProviderError' });
  });
});
