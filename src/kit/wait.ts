// Waiting for something to happen, for tests, benchmarks, the demo and the kit's own processes: one
// poll loop whose failure says what it waited for (never a bare timeout).

export interface WaitOptions {
  /** What the check waits for, in words: the failure reads "timed out after … waiting for <what>". */
  what: string;
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Time between checks (default 20 ms). */
  intervalMs?: number;
  /**
   * A check that throws is tried again (and its last error is quoted if the wait times out):
   * for checks that talk to a server still starting or failing over. By default a throw ends the
   * wait at once with that error.
   */
  retryErrors?: boolean;
}

/** What a check returns while the condition does not hold yet. */
export type NotYet = undefined | null | false;

/** Thrown by `waitUntil` when the deadline passes. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

/**
 * Calls `check` until it returns something other than undefined, null or false, and resolves with
 * that value (so a check can hand back what it found). Rejects with a `WaitTimeoutError` naming
 * `what` once `timeoutMs` has passed.
 */
export async function waitUntil<T>(check: () => T | NotYet | Promise<T | NotYet>, options: WaitOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value as T;
    } catch (err) {
      if (!options.retryErrors) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${options.what}${cause}`);
    }
    await sleep(options.intervalMs ?? 20);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
