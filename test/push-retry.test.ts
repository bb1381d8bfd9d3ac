import { describe, expect, it } from 'vitest';
import { backoffDelay, parseRetryAfter, withRetries, type AttemptOutcome } from '../src/push/retry.js';
import { recordingClock } from './helpers/delivery.js';

const policy = { attempts: 5, baseMs: 100, maxMs: 1_000, totalMs: 10_000 };
const transient = (reason = 'busy', extra: Partial<{ retryAfterMs: number; reconnect: boolean }> = {}): AttemptOutcome<string> => ({
  retry: reason,
  giveUp: `failed: ${reason}`,
  ...extra,
});

describe('withRetries', () => {
  it('stops at the attempt bound and reports the last failure', async () => {
    const { clock, sleeps } = recordingClock();
    let calls = 0;
    const r = await withRetries(async () => (calls++, transient()), policy, clock);
    expect(calls).toBe(5);
    expect(r).toEqual({ result: 'failed: busy', retries: 4, exhausted: 'gave up after 5 attempts' });
    // Full jitter (random 0.5) over 100, 200, 400, 800.
    expect(sleeps).toEqual([50, 100, 200, 400]);
  });

  it('returns at once on a final outcome', async () => {
    const { clock, sleeps } = recordingClock();
    let calls = 0;
    const r = await withRetries(async (n) => (calls++, n < 3 ? transient() : { done: 'ok' }), policy, clock);
    expect(r).toEqual({ result: 'ok', retries: 2 });
    expect(calls).toBe(3);
    expect(sleeps).toHaveLength(2);
  });

  it('waits at least what Retry-After asks', async () => {
    const { clock, sleeps } = recordingClock();
    const r = await withRetries(async (n) => (n === 1 ? transient('429', { retryAfterMs: 3_000 }) : { done: 'ok' }), policy, clock);
    expect(r.retries).toBe(1);
    expect(sleeps).toEqual([3_000]);
  });

  it('gives up when Retry-After is beyond the total budget', async () => {
    const { clock, sleeps } = recordingClock();
    let calls = 0;
    const r = await withRetries(async () => (calls++, transient('429', { retryAfterMs: 60_000 })), policy, clock);
    expect(calls).toBe(1);
    expect(sleeps).toEqual([]);
    expect(r.exhausted).toMatch(/retry after 60 s, beyond the retry budget of 10000 ms/);
  });

  it('stops when the total time budget is used up', async () => {
    const { clock, sleeps } = recordingClock();
    const r = await withRetries(async () => transient(), { attempts: 100, baseMs: 1_000, maxMs: 4_000, totalMs: 5_000 }, clock);
    expect(sleeps.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(5_000);
    expect(r.exhausted).toMatch(/retry budget of 5000 ms used up/);
  });

  it('retries a failed connection at once, once, then backs off', async () => {
    const { clock, sleeps } = recordingClock();
    await withRetries(async () => transient('reset', { reconnect: true }), { ...policy, attempts: 4 }, clock);
    expect(sleeps).toEqual([100, 200]);
  });

  it('never retries with attempts: 1', async () => {
    let calls = 0;
    const r = await withRetries(async () => (calls++, transient()), { ...policy, attempts: 1 }, recordingClock().clock);
    expect(calls).toBe(1);
    expect(r.exhausted).toBe('gave up after 1 attempt');
  });
});

describe('backoffDelay', () => {
  it('stays within [0, min(max, base * 2^(n-1))]', () => {
    for (let n = 1; n <= 10; n += 1) {
      expect(backoffDelay(policy, n, () => 0)).toBe(0);
      expect(backoffDelay(policy, n, () => 0.999999)).toBeLessThan(Math.min(1_000, 100 * 2 ** (n - 1)));
    }
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('7')).toBe(7_000);
    expect(parseRetryAfter(['2'])).toBe(2_000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
  });

  it('ignores absent or unreadable values', () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
