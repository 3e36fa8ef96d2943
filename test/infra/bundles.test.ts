/**
 * The function bundles as built for Lambda (bench/bundles.ts bundleOptions mirrors the CDK's):
 * the SDK's default credential chain is replaced by the environment provider, and an SDK client
 * bundled that way still signs with the credentials Lambda puts in the environment.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleOptions } from '../../bench/bundles';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'conversa-bundle-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A bundle of a DynamoDB client that prints the credentials it resolves, or why it could not. */
async function credentialProbe(): Promise<{ file: string; inputs: string[] }> {
  const entry = join(dir, 'probe.ts');
  writeFileSync(
    entry,
    `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
const client = new DynamoDBClient({});
try {
  const c = await client.config.credentials();
  process.stdout.write(JSON.stringify({ accessKeyId: c.accessKeyId, sessionToken: c.sessionToken }));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: error.name }));
}`,
  );
  const file = join(dir, 'probe', 'index.mjs');
  const result = await build({ ...bundleOptions(entry, file), metafile: true, nodePaths: [join(process.cwd(), 'node_modules')] });
  return { file, inputs: Object.keys(result.metafile.inputs) };
}

describe('function bundles', () => {
  it('carry only the environment credential provider, and it answers with what Lambda puts there', async () => {
    const { file, inputs } = await credentialProbe();
    expect(inputs.some((path) => path.includes('credential-provider-env'))).toBe(true);
    for (const dropped of ['credential-provider-node', 'credential-provider-sso', 'credential-provider-imds', 'nested-clients']) {
      expect(inputs.filter((path) => path.includes(dropped))).toEqual([]);
    }

    const env = { PATH: process.env.PATH ?? '', AWS_REGION: 'eu-west-1' };
    const lambdaEnv = { ...env, AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' };
    const found = await run(process.execPath, [file], { env: lambdaEnv });
    expect(JSON.parse(found.stdout)).toEqual({ accessKeyId: 'ASIAEXAMPLE', sessionToken: 'token' });
    const missing = await run(process.execPath, [file], { env });
    expect(JSON.parse(missing.stdout)).toEqual({ error: 'CredentialsProviderError' });
  });
});
