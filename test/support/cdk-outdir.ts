/**
 * One synth output directory per test file, removed when the file ends. An App given none makes a
 * `cdk.out*` temp directory per synth and never removes it: hundreds of megabytes a run.
 * (CDK_OUTDIR would do it too, but it also makes every App synth again as its process exits.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

export const testOutdir = mkdtempSync(join(tmpdir(), 'conversa-synth-'));

afterAll(() => rmSync(testOutdir, { recursive: true, force: true }));
