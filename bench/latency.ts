// 3. Latency: at a fixed 5k plugin writes/s, the time from a write to the device push arriving at
// the loopback HTTP/2 APNs stand-in: p50, p99, max, for the default grouping (quiet period 100 ms,
// maximum delay 1 s) and a short one (5 ms, 50 ms); and the same at 1k writes/s, a load this
// 2-core machine carries with room to spare next to the generator, the stand-in and Redis.
//
// rhopush runs as `rhopush run` in its own process, delivering live (token auth) to the stand-in,
// which runs here next to the load generator, so writes and arrivals are timed on one clock. Each
// user is written once per run, so each write has exactly one push that answers it.
// Baseline, same run and same stand-in: a bare psubscribe that pushes through @parse/node-apn at
// once for every event (no grouping, no device lookup): the floor this machine allows.
import { waitUntil } from '../src/kit/index.js';
import { benchUser } from './lib/devices.js';
import { figure, percentile, type BenchContext, type Figure } from './lib/harness.js';
import { startLiveRig } from './lib/live-rig.js';
import { pacedWrites } from './lib/paced-writes.js';
import { queuePluginWrite } from './lib/plugin-writes.js';
import { cpuSeconds, startHelperProcess } from './lib/processes.js';

const SOURCES = 5;
/** Seconds of writes per measured run. */
const RUN_SECONDS = 4;

export interface Setting {
  name: string;
  rate: number;
  quietMs: number;
  maxDelayMs: number;
}

const SETTINGS: Setting[] = [
  { name: 'q100', rate: 5000, quietMs: 100, maxDelayMs: 1000 },
  { name: 'q5', rate: 5000, quietMs: 5, maxDelayMs: 50 },
  { name: 'q100_1k', rate: 1000, quietMs: 100, maxDelayMs: 1000 },
  { name: 'q5_1k', rate: 1000, quietMs: 5, maxDelayMs: 50 },
];

export interface RunStats {
  p50: number;
  p99: number;
  max: number;
  lost: number;
  rate: number;
  /** CPU time the pushing process used per write, µs. */
  cpuUs: number;
}

export interface LatencyOptions {
  settings: Setting[];
  /** Seconds of writes per measured run. */
  seconds: number;
  /** Writes of the warm-up before each setting's runs (at most one second's worth). */
  warm: number;
  /** Progress lines start with this. */
  label: string;
}

/**
 * Runs every setting against `rhopush run`, then the bare pusher at each setting's rate, `ctx.runs`
 * times each after a warm-up. Resolves with the runs by setting name, and by `bare@<rate>`.
 */
export async function measureLatencies(ctx: BenchContext, o: LatencyOptions): Promise<Map<string, RunStats[]>> {
  const rates = [...new Set(o.settings.map((s) => s.rate))];
  const countAt = (rate: number) => Math.round(rate * o.seconds);
  // Users [0, measured) are written in measured runs, the next `warm` ones in warm-ups.
  const measured = Math.max(...rates.map(countAt));
  const warm = o.warm;
  // Arrival time per user (NaN until its push arrives).
  const arrivals = new Float64Array(measured + warm).fill(NaN);
  let arrived = 0;
  const rig = await startLiveRig({
    users: measured + warm,
    sources: SOURCES,
    onPush: (i) => {
      if (Number.isNaN(arrivals[i]!)) {
        arrivals[i] = performance.now();
        arrived += 1;
      }
    },
  });
  const stats = new Map<string, RunStats[]>();
  let writeCounter = 0;

  /** Writes users [from, from + count) once each at `rate`; the pushing process is `pid`. */
  const measure = async (from: number, count: number, rate: number, deadlineMs: number, pid: number): Promise<RunStats> => {
    for (let i = from; i < from + count; i++) arrivals[i] = NaN;
    arrived = 0;
    const cpuBefore = cpuSeconds(pid);
    const sentAt = new Float64Array(count);
    const achieved = await pacedWrites(rig.redis, {
      ratePerSecond: rate,
      total: count,
      write: (p, i) => queuePluginWrite(p, benchUser(from + i), `Source${(from + i) % SOURCES}`, writeCounter++),
      onSent: (i, at) => (sentAt[i] = at),
    });
    // Pushes that never arrive are counted as lost below.
    await waitUntil(() => arrived >= count, { what: 'a push per write', timeoutMs: deadlineMs, intervalMs: 10 }).catch(() => undefined);
    const cpuUs = ((cpuSeconds(pid) - cpuBefore) * 1e6) / count;
    const latencies: number[] = [];
    for (let i = 0; i < count; i++) {
      const a = arrivals[from + i]!;
      if (!Number.isNaN(a)) latencies.push(a - sentAt[i]!);
    }
    return {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: Math.max(...latencies),
      lost: count - latencies.length,
      rate: achieved,
      cpuUs,
    };
  };
  const record = (name: string, s: RunStats) => {
    stats.set(name, [...(stats.get(name) ?? []), s]);
    ctx.log(
      `${o.label} ${name}: p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, max ${s.max.toFixed(1)} ms, lost ${s.lost}, ${Math.round(s.rate)} writes/s, ${Math.round(s.cpuUs)} µs CPU per write`,
    );
  };
  const warmUp = (rate: number, pid: number) => measure(measured, Math.min(warm, rate), rate, 20_000, pid);

  try {
    for (const g of o.settings) {
      const daemon = await rig.startDaemon({ coalesceMs: g.quietMs, maxDelayMs: g.maxDelayMs });
      try {
        // Warm-up (connections, provider token, JIT), not measured.
        await warmUp(g.rate, daemon.pid);
        for (let run = 0; run < ctx.runs; run++)
          record(g.name, await measure(0, countAt(g.rate), g.rate, g.maxDelayMs + 20_000, daemon.pid));
      } finally {
        await daemon.stop();
      }
    }
    const bare = await startHelperProcess('bare-pusher-process.ts', [
      String(rig.redisServer.port),
      String(rig.standIn.port),
      rig.dir.dir,
      rig.key.keyId,
      rig.key.teamId,
    ]);
    try {
      for (const rate of rates) {
        await warmUp(rate, bare.pid);
        for (let run = 0; run < ctx.runs; run++) record(`bare@${rate}`, await measure(0, countAt(rate), rate, 20_000, bare.pid));
      }
    } finally {
      await bare.stop();
    }
  } finally {
    await rig.stop();
  }
  return stats;
}

export async function benchLatency(ctx: BenchContext): Promise<Figure[]> {
  const seconds = ctx.quick ? 0.5 : RUN_SECONDS;
  const countAt = (rate: number) => Math.round(rate * seconds);
  const stats = await measureLatencies(ctx, { settings: SETTINGS, seconds, warm: ctx.quick ? 500 : 5000, label: 'latency' });
  const figures: Figure[] = [];
  for (const g of SETTINGS) {
    const runs = stats.get(g.name)!;
    const bare = stats.get(`bare@${g.rate}`)!;
    const setting = `${g.rate} writes/s, coalesce_ms ${g.quietMs}, max_delay_ms ${g.maxDelayMs}`;
    const pick = (f: (r: RunStats) => number) => [runs.map(f), bare.map(f)] as const;
    figures.push(
      figure(
        `latency.${g.name}.p50`,
        'ms',
        ...pick((r) => r.p50),
        `${setting}; ${countAt(g.rate)} writes per run, 1 per user; baseline: bare psubscribe → node-apn push, no grouping`,
      ),
      figure(`latency.${g.name}.p99`, 'ms', ...pick((r) => r.p99), `${setting}; target ≤ ${g.quietMs + 10} ms`),
      figure(`latency.${g.name}.max`, 'ms', ...pick((r) => r.max), setting),
      figure(
        `latency.${g.name}.cpu_per_write`,
        'µs',
        ...pick((r) => r.cpuUs),
        `${setting}; CPU time of the pushing process per write (rhopush: capture, grouping, user and client reads, fingerprints, APNs)`,
      ),
      figure(`latency.${g.name}.lost`, 'pushes', ...pick((r) => r.lost), `${setting}; writes whose push never arrived (must be 0)`),
    );
  }
  return figures;
}
