// Retries for transient delivery failures (429, 5xx, connection errors): exponential backoff with
// full jitter, at least what the server asked for in Retry-After, bounded by `:rhopush: :retry:`
// in both attempts and total time, so a ping always finishes.
import type { RetrySettings } from '../config/settings.js';
import type { PushSendOutcome } from './adapter.js';

/** What one attempt came to. */
export type AttemptOutcome<T> =
  /** Final: success, or a failure that retrying cannot fix. */
  | { done: T }
  /** Transient failure. `giveUp` is reported if no attempt is left. */
  | {
      retry: string;
      giveUp: T;
      /** The server's Retry-After, in ms. */
      retryAfterMs?: number;
      /** A failed connection: the next attempt runs at once on a fresh one (once), then backs off. */
      reconnect?: boolean;
    };

export interface RetryResult<T> {
  result: T;
  /** Attempts made after the first. */
  retries: number;
  /** Why retrying stopped, when the last attempt still failed transiently. */
  exhausted?: string;
}

/** Time source, replaceable in tests. */
export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
  random(): number;
}

export const realClock: RetryClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: () => Math.random(),
};

/** Delay before retry number `retry` (1-based): full jitter over an exponentially growing cap. */
export function backoffDelay(policy: RetrySettings, retry: number, random: () => number): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * cap);
}

export async function withRetries<T>(
  attempt: (attemptNumber: number) => Promise<AttemptOutcome<T>>,
  policy: RetrySettings,
  clock: RetryClock = realClock,
): Promise<RetryResult<T>> {
  const started = clock.now();
  return retryAfterFirst(await attempt(1), started, attempt, policy, clock);
}

/**
 * `withRetries` once the first attempt (started at `started`) came to `first`: a sender can make
 * that attempt itself and come here only when it did not succeed, so a push that goes through at
 * once costs no retry bookkeeping.
 */
export async function retryAfterFirst<T>(
  first: AttemptOutcome<T>,
  started: number,
  attempt: (attemptNumber: number) => Promise<AttemptOutcome<T>>,
  policy: RetrySettings,
  clock: RetryClock = realClock,
): Promise<RetryResult<T>> {
  let reconnected = false;
  let outcome = first;
  for (let n = 1; ; n += 1) {
    if (n > 1) outcome = await attempt(n);
    if ('done' in outcome) return { result: outcome.done, retries: n - 1 };
    if (n >= policy.attempts) {
      return { result: outcome.giveUp, retries: n - 1, exhausted: `gave up after ${n} attempt${n === 1 ? '' : 's'}` };
    }
    let delay = backoffDelay(policy, n, clock.random);
    if (outcome.reconnect && !reconnected) {
      reconnected = true;
      delay = 0;
    }
    if (outcome.retryAfterMs !== undefined) delay = Math.max(delay, outcome.retryAfterMs);
    const elapsed = clock.now() - started;
    if (elapsed + delay > policy.totalMs) {
      const why =
        outcome.retryAfterMs !== undefined && outcome.retryAfterMs >= delay
          ? `server asked to retry after ${Math.ceil(outcome.retryAfterMs / 1000)} s, beyond the retry budget of ${policy.totalMs} ms`
          : `retry budget of ${policy.totalMs} ms used up after ${n} attempt${n === 1 ? '' : 's'}`;
      return { result: outcome.giveUp, retries: n - 1, exhausted: why };
    }
    if (delay > 0) await clock.sleep(delay);
  }
}

/** Retry-After: delta-seconds or an HTTP date. Undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | number | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === '') return undefined;
  const text = String(v).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** A device push's outcome after its retries: the last answer, why retrying stopped, how often. */
export function retriedOutcome(sent: RetryResult<PushSendOutcome>): PushSendOutcome {
  const outcome: PushSendOutcome = { ...sent.result };
  if (sent.exhausted) outcome.reason = `${sent.result.reason} (${sent.exhausted})`;
  if (sent.retries > 0) outcome.retries = sent.retries;
  return outcome;
}
