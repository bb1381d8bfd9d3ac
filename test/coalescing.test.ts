import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CoalescingWindow, FLUSH_TICK_MS, type ChangeGroup } from '../src/coalesce/coalescing-window.js';

describe('CoalescingWindow', () => {
  let groups: ChangeGroup[];
  let window: CoalescingWindow;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    groups = [];
    window = new CoalescingWindow({ quietMs: 100, maxDelayMs: 1000 }, (g) => groups.push(g));
  });
  afterEach(() => {
    window.clear();
    vi.useRealTimers();
  });

  it('sends one ping per user with every changed source, deduplicated, after the quiet period', () => {
    window.add('alice', 'Product');
    vi.advanceTimersByTime(50);
    window.add('alice', 'Contact');
    window.add('alice', 'Product');
    window.add('bob', 'Product');
    vi.advanceTimersByTime(99);
    expect(groups).toEqual([]);
    // Quiet for 100 ms: out on the next flush tick.
    vi.advanceTimersByTime(FLUSH_TICK_MS);
    expect(groups.sort((a, b) => a.user.localeCompare(b.user))).toEqual([
      { user: 'alice', sources: ['Product', 'Contact'], firstAt: 1_000_000, changes: 3, trigger: 'auto' },
      { user: 'bob', sources: ['Product'], firstAt: 1_000_050, changes: 1, trigger: 'auto' },
    ]);
    expect(window.size).toBe(0);
  });

  it('never holds a busy user longer than the maximum delay from the first change', () => {
    window.add('alice', 'Product');
    for (let t = 0; t < 30; t++) {
      vi.advanceTimersByTime(60);
      window.add('alice', 'Product');
    }
    // 30 * 60 ms = 1800 ms of constant changes: the first ping went out at 1000 ms.
    expect(groups[0]).toMatchObject({ user: 'alice', firstAt: 1_000_000 });
    expect(groups[0]!.changes).toBe(17);
    expect(groups.length).toBe(1);
    vi.advanceTimersByTime(100);
    expect(groups.length).toBe(2);
  });

  it('keeps nothing for idle users', () => {
    for (let i = 0; i < 1000; i++) window.add(`user${i}`, 'Product');
    expect(window.size).toBe(1000);
    vi.advanceTimersByTime(100);
    expect(window.size).toBe(0);
    expect(groups.length).toBe(1000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('flushAll sends every pending group at once (shutdown, replay)', () => {
    window.add('alice', 'Product');
    window.add('bob', 'Contact');
    expect(window.flushAll()).toBe(2);
    expect(groups.map((g) => g.user)).toEqual(['alice', 'bob']);
    vi.advanceTimersByTime(5000);
    expect(groups.length).toBe(2);
  });

  it('uses new window settings for changes captured after them', () => {
    window.setOptions({ quietMs: 10, maxDelayMs: 20 });
    window.add('alice', 'Product');
    vi.advanceTimersByTime(10 + FLUSH_TICK_MS);
    expect(groups.length).toBe(1);
  });

  it('with a zero quiet period pings on the next tick', () => {
    window.setOptions({ quietMs: 0, maxDelayMs: 0 });
    window.add('alice', 'Product');
    vi.advanceTimersByTime(FLUSH_TICK_MS);
    expect(groups.length).toBe(1);
  });

  it('lets users who fall due within one flush tick go together', () => {
    const flushes: number[] = [];
    window = new CoalescingWindow({ quietMs: 100, maxDelayMs: 1000 }, () => flushes.push(Date.now()));
    vi.advanceTimersByTime(1); // just past a tick: carol's and dan's due times share the next one
    window.add('carol', 'Product');
    vi.advanceTimersByTime(1);
    window.add('dan', 'Product');
    vi.advanceTimersByTime(200);
    expect(flushes).toHaveLength(2);
    expect(flushes[0]).toBe(flushes[1]);
    expect(flushes[0]! % FLUSH_TICK_MS).toBe(0);
  });
});
