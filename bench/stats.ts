/** Small statistics helpers for latency samples. */

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export const median = (samples: readonly number[]): number => percentile(samples, 50);

/** Milliseconds rounded to 0.01, for results.json. */
export const ms = (value: number): number => Math.round(value * 100) / 100;

export interface LatencySummary {
  n: number;
  p50Ms: number;
  p99Ms: number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  return { n: samples.length, p50Ms: ms(percentile(samples, 50)), p99Ms: ms(percentile(samples, 99)) };
}

export const sleep = (msToWait: number) => new Promise<void>((resolve) => setTimeout(resolve, msToWait));

/** Polls `check` until it is true; throws after `timeoutMs` with `what` in the message. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
