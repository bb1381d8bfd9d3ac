// The automatic pinger under a burst: every group is pinged once, in batches, and the pings in
// flight stay bounded however many groups wait (a burst waits as plain data, not as running pings).
import { describe, expect, it } from 'vitest';
import { AutoPinger, MAX_BATCH, MAX_PINGS_IN_FLIGHT } from '../src/coalesce/auto-pinger.js';
import type { ChangeGroup } from '../src/coalesce/coalescing-window.js';
import { silentLogger } from '../src/logger.js';
import type { Pinger } from '../src/ping/pinger.js';
import { waitUntil } from '../src/kit/index.js';

/** A Pinger whose pings take a few ms each batch, counting what is in flight. */
function slowPinger() {
  const seen: string[] = [];
  const batches: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const pinger = {
    slot: <T>(work: () => Promise<T>) => work(),
    runMany: async (items: ReadonlyArray<{ params: { user_id: string[] } }>) => {
      inFlight += items.length;
      maxInFlight = Math.max(maxInFlight, inFlight);
      batches.push(items.length);
      await new Promise((resolve) => setTimeout(resolve, 5));
      for (const item of items) seen.push(item.params.user_id[0]!);
      inFlight -= items.length;
      return [];
    },
  };
  return { pinger: pinger as unknown as Pinger, seen, batches, maxInFlight: () => maxInFlight };
}

describe('AutoPinger', () => {
  it(`pings a burst of 5000 users once each, at most ${MAX_PINGS_IN_FLIGHT} in flight and ${MAX_BATCH} per batch`, async () => {
    const slow = slowPinger();
    const auto = new AutoPinger({ pinger: slow.pinger, regroup: () => undefined, logger: silentLogger });
    const users = Array.from({ length: 5000 }, (_, i) => `u${i}`);
    for (const user of users) {
      const group: ChangeGroup = { user, sources: ['Product'], firstAt: Date.now(), changes: 1, trigger: 'auto' };
      auto.add(group);
    }
    await waitUntil(() => slow.seen.length === users.length, { what: 'every user pinged' });
    await auto.drain();
    expect([...slow.seen].sort()).toEqual([...users].sort());
    expect(slow.maxInFlight()).toBeLessThanOrEqual(MAX_PINGS_IN_FLIGHT);
    // Batched, not one by one: the whole burst went out in a handful of batches.
    expect(Math.max(...slow.batches)).toBe(MAX_BATCH);
    expect(slow.batches.length).toBe(users.length / MAX_BATCH);
  });
});
