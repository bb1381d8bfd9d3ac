// 6. Catch-up: 100k (user, source) documents exist when rhopush first starts (it records a baseline
// and pings nothing); rhopush stops; during the gap 1 % of the pairs get a plugin write and a source
// with push_notify off gets new documents; rhopush starts again and catches up. Figures: the time to
// reconcile the 100k pairs (the catch-up's own duration), pairs wrongly pinged and changed pairs
// missed (both must be 0), and the first start's baseline. Baseline for the time: the least a
// reconcile must do, one SCAN over the same md_size keys with a GET of each, in the same batches.
import { Redis } from 'ioredis';
import type { Change } from '../src/intake/capture.js';
import type { CatchUpResult } from '../src/recovery/catch-up.js';
import { createDaemon, type Daemon } from '../src/daemon.js';
import { buildSettings, numberedSources, startRedisServer, waitUntil } from '../src/kit/index.js';
import { figure, noDelivery, type BenchContext, type Figure } from './lib/harness.js';
import { queuePluginWrite } from './lib/plugin-writes.js';

export const SOURCES = 5;
/** One pair in this many is written during the gap. */
export const CHANGED_EVERY = 100;
const QUIET_SOURCE = 'Quiet';
/** Keys per SCAN call: catch-up's own batch size. */
const SCAN_COUNT = 500;

export interface Started {
  daemon: Daemon;
  result: CatchUpResult;
  /** From start() to the catch-up's end. */
  wallMs: number;
  pinged: Set<string>;
}

export async function startAndCatchUp(port: number): Promise<Started> {
  const settings = buildSettings({
    environment: 'bench',
    redis: port,
    sources: { ...numberedSources(SOURCES), [QUIET_SOURCE]: { partition: 'user', pushNotify: 'false' } },
  });
  const daemon = createDaemon({ settings, http: false, queue: false, adapters: noDelivery });
  const pinged = new Set<string>();
  let result: CatchUpResult | undefined;
  daemon.supervisor!.on('catch-up-ping', (change: Change) => pinged.add(pairKey(change.user, change.source)));
  daemon.supervisor!.on('catch-up', (r: CatchUpResult) => (result ??= r));
  const started = performance.now();
  await daemon.start();
  await waitUntil(() => result !== undefined, { what: 'the catch-up to finish', timeoutMs: 600_000, intervalMs: 10 });
  const wallMs = performance.now() - started;
  // Its pings go out like any others; let them finish before the next step.
  await waitUntil(() => daemon.window.size === 0, { what: 'the catch-up pings grouped and sent', timeoutMs: 30_000 }).catch(
    () => undefined,
  );
  await daemon.drain();
  return { daemon, result: result!, wallMs, pinged };
}

/** The floor: SCAN over the md_size keys and GET each, batch by batch. */
export async function bareWalk(redis: Redis): Promise<{ ms: number; keys: number }> {
  const started = performance.now();
  let cursor = '0';
  let keys = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', 'source:application:*:md_size', 'COUNT', String(SCAN_COUNT));
    cursor = next;
    if (found.length > 0) {
      const p = redis.pipeline();
      for (const k of found) p.get(k);
      await p.exec();
      keys += found.length;
    }
  } while (cursor !== '0');
  return { ms: performance.now() - started, keys };
}

/** `user\0source`: how pinged pairs are compared. */
export function pairKey(user: string, source: string): string {
  return `${user}\u0000${source}`;
}

/** Users × SOURCES documents in a Redis, their plugin writes, and the gap before a catch-up. */
export interface CatchUpScene {
  pairs: number;
  /** Writes every pair once (from an empty Redis); `users` × SOURCES pairs. */
  seed(): Promise<void>;
  /** The gap: one pair in CHANGED_EVERY written, and as many new documents of a push_notify-off source; the pairs that must be pinged. */
  gap(): Promise<Set<string>>;
}

export function catchUpScene(redis: Redis, users: number): CatchUpScene {
  let id = 0;
  // Pipelined in batches: a million pairs would otherwise take minutes to write.
  const write = async (count: number, pair: (i: number) => [string, string]) => {
    for (let i = 0; i < count; i += 1000) {
      const p = redis.pipeline();
      for (let j = i; j < Math.min(count, i + 1000); j++) {
        const [u, s] = pair(j);
        queuePluginWrite(p, u, s, id++);
      }
      await p.exec();
    }
  };
  const pairs = users * SOURCES;
  const pairAt = (i: number): [string, string] => [`user${Math.floor(i / SOURCES)}`, `Source${i % SOURCES}`];
  const changed = Math.ceil(pairs / CHANGED_EVERY);
  return {
    pairs,
    seed: () => write(pairs, pairAt),
    gap: async () => {
      await write(changed, (i) => pairAt(i * CHANGED_EVERY));
      await write(changed, (i) => [`user${i}`, QUIET_SOURCE]);
      return new Set(Array.from({ length: changed }, (_, i) => pairKey(...pairAt(i * CHANGED_EVERY))));
    },
  };
}

/** Pairs pinged that should not have been, and pairs that should have been and were not. */
export function pingErrors(expected: ReadonlySet<string>, pinged: Iterable<string>): { wrong: number; missed: number } {
  const got = new Set(pinged);
  return { wrong: [...got].filter((p) => !expected.has(p)).length, missed: [...expected].filter((p) => !got.has(p)).length };
}

export async function benchCatchUp(ctx: BenchContext): Promise<Figure[]> {
  const users = ctx.quick ? 400 : 20_000;
  const pairs = users * SOURCES;
  const server = await startRedisServer({ args: ['--notify-keyspace-events', 'K$'] });
  const redis = new Redis(server.port, '127.0.0.1');
  const reconcile: number[] = [];
  const floor: number[] = [];
  const wrong: number[] = [];
  const missed: number[] = [];
  const baseline: number[] = [];
  try {
    for (let run = 0; run < ctx.runs; run++) {
      await redis.flushall();
      const scene = catchUpScene(redis, users);
      await scene.seed();

      // First start: records every pair, pings none.
      const first = await startAndCatchUp(server.port);
      await first.daemon.stop();
      baseline.push(first.result.durationMs);

      const expected = await scene.gap();

      const second = await startAndCatchUp(server.port);
      await second.daemon.stop();
      const errors = pingErrors(expected, second.pinged);
      wrong.push(errors.wrong);
      missed.push(errors.missed);
      reconcile.push(second.result.durationMs);
      const walk = await bareWalk(redis);
      floor.push(walk.ms);
      ctx.log(
        `catch-up run ${run + 1}: ${second.result.scanned} pairs scanned in ${Math.round(second.result.durationMs)} ms (start to done ${Math.round(second.wallMs)} ms), ${second.pinged.size} pinged, ${wrong.at(-1)} wrong, ${missed.at(-1)} missed; bare walk of ${walk.keys} keys ${Math.round(walk.ms)} ms; first-start baseline ${Math.round(first.result.durationMs)} ms`,
      );
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
  const setup = `${pairs} pairs, ${pairs / CHANGED_EVERY} changed during the gap, ${pairs / CHANGED_EVERY} new documents of a push_notify-off source`;
  return [
    figure('catchup.reconcile', 'ms', reconcile, floor, `${setup}; baseline: SCAN + GET of every md_size key (the floor)`),
    figure('catchup.wrong_pings', 'pairs', wrong, null, 'pairs pinged that did not change or never ping (must be 0)'),
    figure('catchup.missed', 'pairs', missed, null, 'pairs changed during the gap and not pinged (must be 0)'),
    figure(
      'catchup.first_baseline',
      'ms',
      baseline,
      floor,
      `first start: records all ${pairs} pairs, pings none; baseline: the same floor`,
    ),
  ];
}
