// 9. Scale: how cost grows with size, each series at sizes s < m < l so a reader sees a curve.
//    Figure names carry the size label, never the size (the same names in --quick, default and
//    --full); the sizes are in the notes. The largest size (l) of catch-up and fan-out runs only
//    with --full, once (it takes minutes); by default those figures are absent.
//  - catch-up (reconcile) of 10k / 100k / 1M (user, source) pairs, bench/catch-up.ts's scene: time,
//    against the same-run SCAN + GET floor, and peak RSS of the catching-up process (its own child
//    process; baseline: its RSS just before), plus pairs wrongly pinged or missed (must be 0);
//  - fan-out: ONE library ping of a user with 1k / 10k / 100k iPhones registered in RhoConnect's
//    Redis, delivered live to the APNs stand-in process (1000 streams per connection, enforced):
//    time, pushes/s and peak RSS of the pinging process (a child), pushes lost (must be 0); baseline:
//    @parse/node-apn sending to the same tokens in lists of 1000, as in the dispatch benchmark;
//  - automatic pings at 1k / 2k / 5k plugin writes/s through `rhopush run` with default grouping
//    (quiet 100 ms, max delay 1 s): CPU per write, p50 and p99 latency, lost; baseline: the latency
//    benchmark's bare pusher at the same rate (same machinery, bench/latency.ts).
// BENCH_SCALE_SERIES=catchup,fanout,auto (any of them) runs only those series.
// Each series ends with a slope figure: the per-unit cost at the largest size measured (value)
// against the smallest (baseline), so its ratio reads 1.0 for linear growth, 2.0 for twice the cost
// per unit, and so on.
import { createPublicKey } from 'node:crypto';
import { Redis } from 'ioredis';
import { hexToken, startRedisServer } from '../src/kit/index.js';
import { bareWalk, catchUpScene, pingErrors, SOURCES } from './catch-up.js';
import { nodeApnSender, startStandInProcess } from './dispatch.js';
import { registerIphonesOfUser } from './lib/devices.js';
import { figure, type BenchContext, type Figure } from './lib/harness.js';
import { settingsDir } from './lib/live-rig.js';
import { startHelperProcess } from './lib/processes.js';
import { measureLatencies, type RunStats } from './latency.js';

const LABELS = ['s', 'm', 'l'] as const;
type Label = (typeof LABELS)[number];

interface Series {
  label: Label;
  size: number;
}

/** The sizes run: s and m always, l with --full. */
function sizes(ctx: BenchContext, quick: number[], normal: number[]): Series[] {
  const all = (ctx.quick ? quick : normal).map((size, i) => ({ label: LABELS[i]!, size }));
  return ctx.full ? all : all.slice(0, 2);
}

/** Runs at a size: the largest one (--full only) once, it takes minutes. */
function runsAt(ctx: BenchContext, s: Series): number {
  return s.label === 'l' ? 1 : ctx.runs;
}

const k = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1000 ? `${n / 1000}k` : String(n));

/** Per-unit cost at the largest size (value) against the smallest (baseline): the ratio is the slope. */
function slope(name: string, unit: string, first: Series, last: Series, at: (s: Series) => number[], what: string): Figure {
  return figure(
    name,
    unit,
    at(last).map((v) => v / last.size),
    at(first).map((v) => v / first.size),
    `${what} at ${k(last.size)} (value) vs at ${k(first.size)} (baseline); ratio = slope: 1.0 linear, above 1 worse than linear`,
  );
}

interface CatchUpRun {
  ms: number;
  floorMs: number;
  rssMiB: number;
  idleRssMiB: number;
  errors: number;
}

async function catchUpSeries(ctx: BenchContext): Promise<Figure[]> {
  const series = sizes(ctx, [200, 500, 1000], [10_000, 100_000, 1_000_000]);
  const runs = new Map<Label, CatchUpRun[]>();
  const server = await startRedisServer({ args: ['--notify-keyspace-events', 'K$'] });
  const redis = new Redis(server.port, '127.0.0.1');
  try {
    for (const s of series) {
      await redis.flushall();
      const scene = catchUpScene(redis, s.size / SOURCES);
      await scene.seed();
      // The first start records every pair (and pings none); each run then writes a gap and
      // measures the catch-up over it, so the seeding is paid once per size.
      const first = await startHelperProcess('scale-process.ts', ['catchup', String(server.port)]);
      try {
        await first.nextLine(600_000);
      } finally {
        await first.stop();
      }
      for (let run = 0; run < runsAt(ctx, s); run++) {
        const expected = await scene.gap();
        const child = await startHelperProcess('scale-process.ts', ['catchup', String(server.port)]);
        let r: { durationMs: number; scanned: number; pinged: string[]; idleRssMiB: number; maxRssMiB: number };
        try {
          r = JSON.parse(await child.nextLine(600_000)) as typeof r;
        } finally {
          await child.stop();
        }
        const walk = await bareWalk(redis);
        const { wrong, missed } = pingErrors(expected, r.pinged);
        const m: CatchUpRun = { ms: r.durationMs, floorMs: walk.ms, rssMiB: r.maxRssMiB, idleRssMiB: r.idleRssMiB, errors: wrong + missed };
        runs.set(s.label, [...(runs.get(s.label) ?? []), m]);
        ctx.log(
          `scale catch-up ${k(s.size)} run ${run + 1}: ${r.scanned} pairs in ${Math.round(m.ms)} ms (floor ${Math.round(m.floorMs)} ms), peak RSS ${Math.round(m.rssMiB)} MiB (${Math.round(m.idleRssMiB)} before), ${r.pinged.length} pinged, ${wrong} wrong, ${missed} missed`,
        );
      }
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
  const at = (s: Series, f: (r: CatchUpRun) => number) => runs.get(s.label)!.map(f);
  const once = (s: Series) => (s.label === 'l' ? '; one run (--full)' : '');
  const figures: Figure[] = [];
  for (const s of series) {
    figures.push(
      figure(
        `scale.catchup.${s.label}`,
        'ms',
        at(s, (r) => r.ms),
        at(s, (r) => r.floorMs),
        `${k(s.size)} pairs, 1 in 100 changed during the gap; baseline: SCAN + GET of every md_size key (the floor)${once(s)}`,
      ),
      figure(
        `scale.catchup_rss.${s.label}`,
        'MiB',
        at(s, (r) => r.rssMiB),
        at(s, (r) => r.idleRssMiB),
        `${k(s.size)} pairs: peak RSS of the catching-up process; baseline: its RSS before the catch-up started${once(s)}`,
      ),
    );
  }
  // Per run index, every size's wrong and missed pairs together (the largest size only has run 1).
  const errors = Array.from({ length: ctx.runs }, (_, i) => series.reduce((sum, s) => sum + (runs.get(s.label)![i]?.errors ?? 0), 0));
  figures.push(
    figure(
      'scale.catchup_errors',
      'pairs',
      errors,
      null,
      'pairs wrongly pinged + changed pairs missed, all sizes of a run together (must be 0)',
    ),
  );
  const first = series[0]!;
  const last = series.at(-1)!;
  figures.push(
    slope('scale.catchup.slope', 'µs/pair', first, last, (s) => at(s, (r) => r.ms * 1000), 'catch-up time per pair'),
    slope(
      'scale.catchup_rss.slope',
      'KiB/pair',
      first,
      last,
      (s) => at(s, (r) => (r.rssMiB - r.idleRssMiB) * 1024),
      'RSS growth during the catch-up per pair',
    ),
  );
  return figures;
}

interface FanoutRun {
  ms: number;
  rate: number;
  lost: number;
  rssMiB: number;
  idleRssMiB: number;
  baseMs: number;
  baseRate: number;
}

async function fanoutSeries(ctx: BenchContext): Promise<Figure[]> {
  const series = sizes(ctx, [20, 50, 100], [1000, 10_000, 100_000]);
  const runs = new Map<Label, FanoutRun[]>();
  const server = await startRedisServer();
  const redis = new Redis(server.port, '127.0.0.1');
  const dir = settingsDir();
  let standIn: Awaited<ReturnType<typeof startStandInProcess>> | undefined;
  try {
    standIn = await startStandInProcess();
    const key = { ...standIn.key, publicKey: createPublicKey(standIn.key.pem) };
    const file = dir.write({ redisPort: server.port, sources: 1, listenPort: 0, apns: { address: '127.0.0.1', port: standIn.port }, key });
    for (const s of series) {
      await redis.flushall();
      // The measured user's tokens are 1 … N; the warm-up user's follow them.
      const warm = Math.min(s.size, 1000);
      await registerIphonesOfUser(redis, 'fanout', s.size, 1);
      await registerIphonesOfUser(redis, 'fanout-warm', warm, s.size + 1);
      const tokens = Array.from({ length: s.size }, (_, i) => hexToken(i + 1));
      for (let run = 0; run < runsAt(ctx, s); run++) {
        await standIn.count();
        const child = await startHelperProcess('scale-process.ts', ['fanout', file, 'fanout', 'fanout-warm']);
        let r: { ms: number; sent: number; warmSent: number; errors: string[]; idleRssMiB: number; maxRssMiB: number };
        try {
          r = JSON.parse(await child.nextLine(600_000)) as typeof r;
        } finally {
          await child.stop();
        }
        const arrived = (await standIn.count()) - r.warmSent;

        // Baseline: the same tokens from this process, after its own warm-up.
        const sender = nodeApnSender(standIn);
        let baseMs: number;
        try {
          await sender.send(tokens.slice(0, warm));
          const t = performance.now();
          await sender.send(tokens);
          baseMs = performance.now() - t;
        } finally {
          await sender.close();
        }
        await standIn.count();

        const m: FanoutRun = {
          ms: r.ms,
          rate: r.sent / (r.ms / 1000),
          lost: s.size - Math.min(r.sent, arrived),
          rssMiB: r.maxRssMiB,
          idleRssMiB: r.idleRssMiB,
          baseMs,
          baseRate: s.size / (baseMs / 1000),
        };
        runs.set(s.label, [...(runs.get(s.label) ?? []), m]);
        ctx.log(
          `scale fan-out ${k(s.size)} run ${run + 1}: ${Math.round(m.ms)} ms (${Math.round(m.rate)} pushes/s; node-apn ${Math.round(baseMs)} ms), ${arrived} arrived, lost ${m.lost}, peak RSS ${Math.round(m.rssMiB)} MiB (${Math.round(m.idleRssMiB)} before)${r.errors.length ? `; errors: ${r.errors.join('; ')}` : ''}`,
        );
      }
    }
  } finally {
    redis.disconnect();
    await standIn?.stop();
    await server.stop();
    dir.remove();
  }
  const at = (s: Series, f: (r: FanoutRun) => number) => runs.get(s.label)!.map(f);
  const figures: Figure[] = [];
  for (const s of series) {
    const setup = `one ping of a user with ${k(s.size)} iPhones, live to the stand-in (1000 streams/connection)${s.label === 'l' ? '; one run (--full)' : ''}`;
    figures.push(
      figure(
        `scale.fanout.${s.label}`,
        'ms',
        at(s, (r) => r.ms),
        at(s, (r) => r.baseMs),
        `${setup}; rhopush: users → clients → pushes; baseline: @parse/node-apn, the same tokens in lists of 1000`,
      ),
      figure(
        `scale.fanout_rate.${s.label}`,
        'pushes/s',
        at(s, (r) => r.rate),
        at(s, (r) => r.baseRate),
        `${setup}; baseline: @parse/node-apn`,
      ),
      figure(
        `scale.fanout_rss.${s.label}`,
        'MiB',
        at(s, (r) => r.rssMiB),
        at(s, (r) => r.idleRssMiB),
        `${setup}; peak RSS of the pinging process; baseline: its RSS after the warm-up ping`,
      ),
      figure(
        `scale.fanout_lost.${s.label}`,
        'pushes',
        at(s, (r) => r.lost),
        null,
        `${setup}; devices not pushed to (must be 0)`,
      ),
    );
  }
  const first = series[0]!;
  const last = series.at(-1)!;
  figures.push(
    slope('scale.fanout.slope', 'µs/device', first, last, (s) => at(s, (r) => r.ms * 1000), 'fan-out time per device'),
    slope(
      'scale.fanout_rss.slope',
      'KiB/device',
      first,
      last,
      (s) => at(s, (r) => (r.rssMiB - r.idleRssMiB) * 1024),
      'RSS growth during the ping per device',
    ),
  );
  return figures;
}

async function autoSeries(ctx: BenchContext): Promise<Figure[]> {
  // All three rates by default, in runs of 1.5 s (the latency benchmark's are 4 s) so the default
  // `npm run bench` stays within 10 minutes; --quick: a second of writes each.
  const series = (ctx.quick ? [100, 200, 500] : [1000, 2000, 5000]).map((size, i) => ({ label: LABELS[i]!, size }));
  const seconds = ctx.quick ? 1 : 1.5;
  const stats = await measureLatencies(ctx, {
    settings: series.map((s) => ({ name: s.label, rate: s.size, quietMs: 100, maxDelayMs: 1000 })),
    seconds,
    // Enough to open connections, sign the provider token and warm the JIT.
    warm: ctx.quick ? 500 : 2000,
    label: 'scale auto',
  });
  const pick = (s: Series, f: (r: RunStats) => number) => [stats.get(s.label)!.map(f), stats.get(`bare@${s.size}`)!.map(f)] as const;
  const figures: Figure[] = [];
  for (const s of series) {
    const setting = `${k(s.size)} writes/s for ${seconds} s, coalesce_ms 100, max_delay_ms 1000`;
    figures.push(
      figure(
        `scale.auto.${s.label}.cpu_per_write`,
        'µs',
        ...pick(s, (r) => r.cpuUs),
        `${setting}; CPU time of the pushing process per write; baseline: bare psubscribe → node-apn push at the same rate`,
      ),
      figure(
        `scale.auto.${s.label}.p50`,
        'ms',
        ...pick(s, (r) => r.p50),
        `${setting}; write → push at the stand-in; baseline: bare pusher`,
      ),
      figure(`scale.auto.${s.label}.p99`, 'ms', ...pick(s, (r) => r.p99), `${setting}; baseline: bare pusher`),
      figure(`scale.auto.${s.label}.lost`, 'pushes', ...pick(s, (r) => r.lost), `${setting}; writes whose push never arrived (must be 0)`),
    );
  }
  const first = series[0]!;
  const last = series.at(-1)!;
  // CPU per write is already per unit: the slope compares it directly across rates.
  const cpu = (s: Series) => stats.get(s.label)!.map((r) => r.cpuUs);
  figures.push(
    figure(
      'scale.auto.slope',
      'µs',
      cpu(last),
      cpu(first),
      `CPU per write at ${k(last.size)} writes/s (value) vs at ${k(first.size)} writes/s (baseline); ratio = slope: 1.0 linear (grouping can make it less)`,
    ),
  );
  return figures;
}

const SERIES: Record<string, (ctx: BenchContext) => Promise<Figure[]>> = { catchup: catchUpSeries, fanout: fanoutSeries, auto: autoSeries };

export async function benchScale(ctx: BenchContext): Promise<Figure[]> {
  // BENCH_SCALE_SERIES=fanout (or a comma-separated list) reruns only some series, e.g. one --full point.
  const chosen = process.env.BENCH_SCALE_SERIES?.split(',').filter(Boolean) ?? Object.keys(SERIES);
  const unknown = chosen.filter((name) => !(name in SERIES));
  if (unknown.length > 0)
    throw new Error(`BENCH_SCALE_SERIES: unknown series ${unknown.join(', ')} (known: ${Object.keys(SERIES).join(', ')})`);
  const figures: Figure[] = [];
  for (const name of chosen) {
    const t = performance.now();
    figures.push(...(await SERIES[name]!(ctx)));
    ctx.log(`scale ${name}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  return figures;
}
