/**
 * What the crash-point tests share (test/faults/*crash-points.test.ts): a crash armed for one
 * attempt (a path, such as an inbound event's ingestion, and a key, such as the customer's
 * handle) that lets one write land and then kills the attempt, the store and hook functions
 * wrapped to obey it, and the queue consumers' handlers wrapped so that a failed record comes back
 * at once, as it does at the end of its visibility timeout.
 *
 * vi.mock factories are hoisted above the file's imports, so a test file loads this module in
 * vi.hoisted and calls it from its factories:
 *
 *   const { crash, harness } = await vi.hoisted(async () => {
 *     const harness = await import('./crash-harness');
 *     return { harness, crash: harness.crashPoints() };
 *   });
 *   vi.mock('../../src/store/messages', async (orig) => harness.wrapModule(await orig(), crash, ['putMessage']));
 *
 * It imports nothing that a test mocks: a factory may run before the rest of the file is loaded.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';

type Args = unknown[];

/** The next crash: the first call of `fn` in the armed attempt for which `when` holds (given its arguments, and its result unless `before`). */
export interface Crash {
  fn: string;
  when?: (args: Args, result: unknown) => boolean;
  /** Dies right before the call instead of right after it. */
  before?: boolean;
  /** Calls made side by side with `fn` whose writes do not land (the process died first). */
  lost?: string[];
}

/** One run of a path (an event's ingestion, a job's delivery) for one key (a handle, a conversation). */
export interface Attempt {
  path: string;
  key: string;
  dead?: boolean;
}

export interface Armed extends Crash {
  path: string;
  key: string;
  fired: number;
  died: Promise<void>;
  die: () => void;
}

export interface CrashPoints {
  attempt: AsyncLocalStorage<Attempt>;
  armed: Armed | undefined;
  /** Sets the next crash, for the attempts of `path` on `key`. */
  arm(path: string, key: string, spec: Crash): void;
  /** Whether the armed crash fired. */
  fired(): boolean;
  /** Runs `fn` as an attempt of `path` on `key`. */
  during<T>(path: string, key: string, fn: () => T): T;
  /** `real`, obeying the armed crash. */
  wrap<F extends (...args: never[]) => Promise<unknown>>(fn: string, real: F): F;
  /** Sends a failed record of `queue` back (set by the test once its stack runs). */
  retry: Record<string, (receiptHandle: string) => void>;
  /** While set for a queue, its failed records wait here instead (for something to happen before their retry). */
  held: Record<string, string[] | undefined>;
}

export interface CrashOptions {
  /**
   * Once the crash fired, the dead attempt's other calls (side by side with it, or racing it)
   * throw instead of landing. Off: they run, as test/faults/crash-points.test.ts counts on.
   */
  deadAttemptsStop?: boolean;
}

export function crashPoints(options: CrashOptions = {}): CrashPoints {
  const { deadAttemptsStop = true } = options;
  const points: CrashPoints = {
    attempt: new AsyncLocalStorage<Attempt>(),
    armed: undefined,
    retry: {},
    held: {},
    arm(path, key, spec) {
      let die!: () => void;
      const died = new Promise<void>((resolve) => (die = resolve));
      points.armed = { ...spec, path, key, fired: 0, died, die };
    },
    fired: () => points.armed?.fired === 1,
    during: (path, key, fn) => points.attempt.run({ path, key }, fn),
    wrap<F extends (...args: never[]) => Promise<unknown>>(fn: string, real: F): F {
      return (async (...args: Parameters<F>) => {
        const armed = points.armed;
        const attempt = points.attempt.getStore();
        if (!armed || !attempt || attempt.path !== armed.path || attempt.key !== armed.key) return real(...args);
        if (attempt.dead && deadAttemptsStop) throw new Error(`simulated crash: ${fn} after the process died`);
        if (armed.fired > 0) return real(...args);
        if (armed.lost?.includes(fn)) {
          await armed.died;
          throw new Error(`simulated crash: ${fn} never landed`);
        }
        if (armed.fn !== fn) return real(...args);
        if (armed.before) {
          if (armed.when && !armed.when(args, undefined)) return real(...args);
        } else {
          const result = await real(...args);
          if (armed.when && !armed.when(args, result)) return result;
        }
        armed.fired += 1;
        attempt.dead = true;
        armed.die();
        throw new Error(`simulated crash ${armed.before ? 'before' : 'after'} ${fn}`);
      }) as F;
    },
  };
  return points;
}

type AsyncFunctionsOf<M> = { [K in keyof M]: M[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof M] & string;

/** The module with `names` wrapped to obey the armed crash. */
export function wrapModule<M extends object, K extends AsyncFunctionsOf<M>>(real: M, crash: CrashPoints, names: readonly K[]): M {
  const wrapped = { ...real } as Record<string, unknown>;
  for (const name of names) wrapped[name] = crash.wrap(name, real[name] as (...args: never[]) => Promise<unknown>);
  return wrapped as M;
}

/** A queue consumer's module whose failed records come back at once (or wait in `crash.held[queue]` while it is set). */
export function redeliveringHandler<M extends { handler: (event: SQSEvent) => Promise<SQSBatchResponse> }>(real: M, crash: CrashPoints, queue: string): M {
  return {
    ...real,
    handler: async (event: SQSEvent): Promise<SQSBatchResponse> => {
      const response = await real.handler(event);
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      for (const record of event.Records) {
        if (!failed.has(record.messageId)) continue;
        const held = crash.held[queue];
        if (held) held.push(record.receiptHandle);
        else crash.retry[queue]?.(record.receiptHandle);
      }
      return response;
    },
  };
}
