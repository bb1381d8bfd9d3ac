// 7. Soak: `npm run soak -- --minutes N` (default 10). Plugin writes at a steady 2k/s (push_objects
// over users × 5 sources, every user with a registered iPhone) into a private Redis, `rhopush run`
// in its own process delivering live to the loopback APNs stand-in. Every 10 s: rhopush's RSS (from
// /proc), heap, event-loop delay (from its /metrics, whose histogram restarts at every scrape),
// writes and pushes. Figures: RSS growth from minute 2 to the end (target < 10 %, no upward trend)
// and pings lost (users whose last write was never followed by a push to their device: must be 0).
//
// Flags: --minutes N, --rate W (writes/s), --sample S (seconds), --json (figures and samples as
// JSON lines), --markdown (the curve as a Markdown table, for bench/RESULTS.md).
import { fileURLToPath } from 'node:url';
import { waitUntil } from '../src/kit/index.js';
import { benchUser } from './lib/devices.js';
import { figure, printJson, printTable, round, type BenchContext, type Figure } from './lib/harness.js';
import { startLiveRig } from './lib/live-rig.js';
import { pacedWrites } from './lib/paced-writes.js';
import { queuePluginWrite } from './lib/plugin-writes.js';

const SOURCES = 5;

export interface SoakOptions {
  minutes: number;
  rate: number;
  sampleSeconds: number;
  users: number;
  /** RSS growth is measured from this minute on (warm-up before it). */
  fromMinute: number;
  log: (msg: string) => void;
}

export interface SoakSample {
  /** Seconds since writes started. */
  t: number;
  rssMiB: number;
  heapUsedMiB: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  writesPerSecond: number;
  pushesPerSecond: number;
  /** Automatic pings grouped and waiting for a slot at that moment (0: rhopush keeps up). */
  waiting: number;
}

export interface SoakResult {
  samples: SoakSample[];
  writes: number;
  pushes: number;
  lost: number;
  /** RSS growth from `fromMinute` to the end, percent. */
  rssGrowthPercent: number;
  /** Least-squares slope of RSS from `fromMinute` on, MiB per minute. */
  rssSlopeMiBPerMinute: number;
  /**
   * The same two over the samples taken while rhopush kept up (pings waiting under a tenth of a
   * second's writes): other work on the
   * machine can make pings wait, and the backlog lifts RSS until it clears; a leak does not clear.
   */
  rssCaughtUpGrowthPercent: number;
  rssCaughtUpSlopeMiBPerMinute: number;
  /**
   * Samples those two are over. Fewer than two kept up (a machine so busy that rhopush never caught
   * up during a short run): every steady sample instead, so the figures stay defined, and the note says so.
   */
  caughtUpSamples: number;
  /** Writes minus device pushes: a user written again while its ping waited gets one push for both. */
  merged: number;
  eventLoopP99MaxMs: number;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const lastWrite = new Float64Array(o.users).fill(NaN);
  const lastPush = new Float64Array(o.users).fill(NaN);
  let pushes = 0;
  const rig = await startLiveRig({
    users: o.users,
    sources: SOURCES,
    onPush: (user) => {
      lastPush[user] = performance.now();
      pushes += 1;
    },
  });
  const samples: SoakSample[] = [];
  let writes = 0;
  try {
    const daemon = await rig.startDaemon();
    try {
      await daemon.metrics(); // starts the event-loop histogram's first interval
      const started = performance.now();
      const endAt = started + o.minutes * 60_000;
      let lastSample = { t: started, writes: 0, pushes: 0 };
      const sampler = setInterval(() => {
        const now = performance.now();
        const rssMiB = daemon.rssMiB();
        void daemon.metrics().then((m) => {
          const seconds = (now - lastSample.t) / 1000;
          const sample: SoakSample = {
            t: round((now - started) / 1000, 0),
            rssMiB: round(rssMiB, 1),
            heapUsedMiB: round((m.get('nodejs_heap_size_used_bytes') ?? NaN) / 1048576, 1),
            eventLoopP99Ms: round((m.get('nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000, 1),
            eventLoopMaxMs: round((m.get('nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000, 1),
            writesPerSecond: round((writes - lastSample.writes) / seconds, 0),
            pushesPerSecond: round((pushes - lastSample.pushes) / seconds, 0),
            waiting: m.get('rhopush_auto_pings_waiting') ?? NaN,
          };
          lastSample = { t: now, writes, pushes };
          samples.push(sample);
          o.log(
            `soak ${sample.t}s: RSS ${sample.rssMiB} MiB, heap ${sample.heapUsedMiB} MiB, event loop p99 ${sample.eventLoopP99Ms} ms (max ${sample.eventLoopMaxMs}), ${sample.writesPerSecond} writes/s, ${sample.pushesPerSecond} pushes/s, ${sample.waiting} pings waiting`,
          );
        });
      }, o.sampleSeconds * 1000);
      await pacedWrites(rig.redis, {
        ratePerSecond: o.rate,
        total: Number.MAX_SAFE_INTEGER,
        stop: () => performance.now() >= endAt,
        write: (p, i) => {
          const user = i % o.users;
          queuePluginWrite(p, benchUser(user), `Source${Math.floor(i / o.users) % SOURCES}`, i);
        },
        onSent: (i, at) => {
          lastWrite[i % o.users] = at;
          writes = i + 1;
        },
      });
      clearInterval(sampler);
      // Every write's ping is due within the maximum delay; allow for the backlog of a busy moment.
      // What never got its push is counted as lost below.
      await waitUntil(() => unanswered(lastWrite, lastPush) === 0, {
        what: 'a push after every write',
        timeoutMs: 30_000,
        intervalMs: 50,
      }).catch(() => undefined);
    } finally {
      await daemon.stop();
    }
  } finally {
    await rig.stop();
  }
  const steady = samples.filter((s) => s.t >= o.fromMinute * 60);
  const first = steady[0]?.rssMiB ?? NaN;
  const last = steady.at(-1)?.rssMiB ?? NaN;
  // Keeping up: fewer pings waiting than a tenth of a second of writes brings.
  const keptUp = steady.filter((s) => s.waiting <= o.rate / 10);
  const caughtUp = keptUp.length >= 2 ? keptUp : steady;
  const firstCaughtUp = caughtUp[0]?.rssMiB ?? NaN;
  const lastCaughtUp = caughtUp.at(-1)?.rssMiB ?? NaN;
  return {
    samples,
    writes,
    pushes,
    lost: unanswered(lastWrite, lastPush),
    rssGrowthPercent: round(((last - first) / first) * 100, 1),
    rssSlopeMiBPerMinute: round(slope(steady.map((s) => [s.t / 60, s.rssMiB])), 3),
    rssCaughtUpGrowthPercent: round(((lastCaughtUp - firstCaughtUp) / firstCaughtUp) * 100, 1),
    rssCaughtUpSlopeMiBPerMinute: round(slope(caughtUp.map((s) => [s.t / 60, s.rssMiB])), 3),
    caughtUpSamples: keptUp.length,
    merged: writes - pushes,
    eventLoopP99MaxMs: Math.max(...samples.map((s) => s.eventLoopP99Ms)),
  };
}

/** Users written since their last push arrived (or never pushed at all). */
function unanswered(lastWrite: Float64Array, lastPush: Float64Array): number {
  let n = 0;
  for (let i = 0; i < lastWrite.length; i++) {
    const w = lastWrite[i]!;
    if (!Number.isNaN(w) && !(lastPush[i]! > w)) n += 1;
  }
  return n;
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  if (points.length < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / points.length;
  const my = points.reduce((s, [, y]) => s + y, 0) / points.length;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return num / den;
}

export function soakFigures(r: SoakResult, o: SoakOptions): Figure[] {
  const one = (name: string, unit: string, value: number, note: string) => figure(name, unit, [value], null, note);
  const setup = `${o.minutes} min at ${o.rate} writes/s over ${o.users} users × ${SOURCES} sources, live APNs delivery`;
  return [
    one('soak.rss_growth', '%', r.rssGrowthPercent, `RSS from minute ${o.fromMinute} to the end; ${setup}; target < 10 %`),
    one('soak.rss_slope', 'MiB/min', r.rssSlopeMiBPerMinute, `least-squares trend of RSS from minute ${o.fromMinute}`),
    one(
      'soak.rss_caught_up_growth',
      '%',
      r.rssCaughtUpGrowthPercent,
      `RSS from minute ${o.fromMinute} to the end, samples where rhopush kept up (pings waiting < 0.1 s of writes) only (a backlog while the machine is busy lifts RSS until it clears; a leak does not clear)` +
        (r.caughtUpSamples < 2 ? `; only ${r.caughtUpSamples} sample(s) kept up, so every sample counts here` : ''),
    ),
    one('soak.rss_caught_up_slope', 'MiB/min', r.rssCaughtUpSlopeMiBPerMinute, 'least-squares trend of those samples'),
    one(
      'soak.lost',
      'pings',
      r.lost,
      `users whose last write got no push after it (must be 0); ${r.writes} writes, ${r.pushes} pushes (${r.merged} writes joined a ping already waiting)`,
    ),
    one('soak.event_loop_p99', 'ms', r.eventLoopP99MaxMs, `worst ${o.sampleSeconds} s interval's event-loop delay p99 in rhopush`),
  ];
}

/** For `npm run bench`: a short soak (the full one is `npm run soak`). */
export async function benchSoak(ctx: BenchContext): Promise<Figure[]> {
  const o: SoakOptions = ctx.quick
    ? { minutes: 0.25, rate: 500, sampleSeconds: 3, users: 2000, fromMinute: 0.05, log: ctx.log }
    : { minutes: 2, rate: 2000, sampleSeconds: 10, users: 20_000, fromMinute: 1, log: ctx.log };
  return soakFigures(await runSoak(o), o);
}

function markdown(r: SoakResult): string {
  const lines = [
    '| t (s) | RSS (MiB) | heap used (MiB) | event loop p99 (ms) | event loop max (ms) | writes/s | pushes/s | pings waiting |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of r.samples)
    lines.push(
      `| ${s.t} | ${s.rssMiB} | ${s.heapUsedMiB} | ${s.eventLoopP99Ms} | ${s.eventLoopMaxMs} | ${s.writesPerSecond} | ${s.pushesPerSecond} | ${s.waiting} |`,
    );
  return lines.join('\n');
}

const USAGE = `usage: npm run soak -- [--minutes N] [--rate W] [--sample S] [--users U] [--json] [--markdown]
  --minutes N  how long to write (default 10); RSS growth is measured from minute 2 (or half-way when shorter)
  --rate W     plugin writes per second (default 2000)
  --sample S   seconds between samples (default 10)
  --users U    users written in turn, each with one iPhone (default 20000)
  --json       figures, then one {"sample": …} object per sample, as JSON lines
  --markdown   the curve as a Markdown table after the figures`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const fail = (message: string): never => {
    process.stderr.write(`${message}\n${USAGE}\n`);
    process.exit(2);
  };
  const numbers: Record<string, number> = { '--minutes': 10, '--rate': 2000, '--sample': 10, '--users': 20_000 };
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg in numbers) {
      const v = Number(args[++i]);
      if (!Number.isFinite(v) || v <= 0) fail(`${arg} needs a positive number`);
      numbers[arg] = v;
    } else if (arg === '--json' || arg === '--markdown') flags.add(arg);
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else fail(`unknown option '${arg}'`);
  }
  const json = flags.has('--json');
  const minutes = numbers['--minutes']!;
  const o: SoakOptions = {
    minutes,
    rate: numbers['--rate']!,
    sampleSeconds: numbers['--sample']!,
    users: Math.round(numbers['--users']!),
    fromMinute: Math.min(2, minutes / 2),
    log: (msg) => {
      if (!json) process.stderr.write(`${msg}\n`);
    },
  };
  const result = await runSoak(o);
  const figures = soakFigures(result, o);
  if (json) {
    printJson(figures);
    for (const s of result.samples) console.log(JSON.stringify({ sample: s }));
  } else {
    printTable(figures);
    if (flags.has('--markdown')) console.log(`\n${markdown(result)}`);
  }
  process.exit(0);
}
