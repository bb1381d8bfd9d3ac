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

const SOURCES = 5;
/** One pair in this many is written during the gap. */
const CHANGED_EVERY = 100;
const QUIET_SOURCE = 'Quiet';
/** Keys per SCAN call: catch-up's own batch size. */
const SCAN_COUNT = 500;

interface Started {
  daemon: Daemon;
  result: CatchUpResult;
  /** From start() to the catch-up's end. */
  wallMs: number;
  pinged: Set<string>;
}

async function startAndCatchUp(port: number): Promise<Started> {
  const settings = buildSettings({
    environment: 'bench',
    redis: port,
    sources: { ...numberedSources(SOURCES), [QUIET_SOURCE]: { partition: 'user', pushNotify: 'false' } },
  });
  const daemon = createDaemon({ settings, http: false, queue: false, adapters: noDelivery });
  const pinged = new Set<string>();
  let result: CatchUpResult | undefined;
  daemon.supervisor!.on('catch-up-ping', (change: Change) => pinged.add(`${change.user}\u0000${change.source}`));
  daemon.supervisor!.on('catch-up', (r: CatchUpResult) => (result ??= r));
  const started = performance.now();
  await daemon.start();
  await waitUntil(() => result !== undefined, { what: 'the catch-up to finish', timeoutMs: 120_000, intervalMs: 10 });
  const wallMs = performance.now() - started;
  // Its pings go out like any others; let them finish before the next step.
  await waitUntil(() => daemon.window.size === 0, { what: 'the catch-up pings grouped and sent', timeoutMs: 30_000 }).catch(
    () => undefined,
  );
  await daemon.drain();
  return { daemon, result: result!, wallMs, pinged };
}

/** The floor: SCAN over the md_size keys and GET each, batch by batch. */
async function bareWalk(redis: Redis): Promise<{ ms: number; keys: number }> {
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
  let id = 0;
  const write = async (list: Array<[string, string]>) => {
    for (let i = 0; i < list.length; i += 1000) {
      const p = redis.pipeline();
      for (const [u, s] of list.slice(i, i + 1000)) queuePluginWrite(p, u, s, id++);
      await p.exec();
    }
  };
  try {
    for (let run = 0; run < ctx.runs; run++) {
      await redis.flushall();
      const all: Array<[string, string]> = [];
      for (let u = 0; u < users; u++) for (let s = 0; s < SOURCES; s++) all.push([`user${u}`, `Source${s}`]);
      await write(all);

      // First start: records every pair, pings none.
      const first = await startAndCatchUp(server.port);
      await first.daemon.stop();
      baseline.push(first.result.durationMs);

      // The gap.
      const changed = all.filter((_, i) => i % CHANGED_EVERY === 0);
      await write(changed);
      await write(Array.from({ length: changed.length }, (_, i) => [`user${i}`, QUIET_SOURCE] as [string, string]));

      const second = await startAndCatchUp(server.port);
      await second.daemon.stop();
      const expected = new Set(changed.map(([u, s]) => `${u}\u0000${s}`));
      wrong.push([...second.pinged].filter((p) => !expected.has(p)).length);
      missed.push([...expected].filter((p) => !second.pinged.has(p)).length);
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
