// 1. Capture: a load generator issues RhoConnect-shaped plugin writes (push_objects) for users ×
// sources as fast as Redis takes them. Figures: changes classified per second by rhopush ÷ events
// per second counted by a bare ioredis psubscribe counter on the same stream (both subscribed at
// once, each timing its own first and last event); events lost; peak RSS with 100k distinct (user,
// source) pairs. The generator, the bare counter and rhopush each run in their own process (peak RSS
// from each one's own resource usage).
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/kit/redis-server-process.js';
import { figure, type BenchContext, type Figure } from './lib/harness.js';
import { generate, startHelperProcess } from './lib/processes.js';

const SOURCES = 5;

interface Counted {
  count: number;
  first: number;
  last: number;
  maxRssMiB: number;
  /** CPU time of the process from subscribed to done, µs. */
  cpuUs: number;
}

/** Both consumers subscribed to the same stream at once, then the writes. */
async function consumeBoth(port: number, users: number, calls: number): Promise<{ bare: Counted; rhopush: Counted; generated: number }> {
  const bare = await startHelperProcess('capture-process.ts', ['bare', String(port), String(calls)]);
  const rhopush = await startHelperProcess('capture-process.ts', ['rhopush', String(port), String(calls), String(SOURCES)]);
  try {
    const g = await generate(port, users, SOURCES, calls);
    const [b, r] = await Promise.all([bare.nextLine(), rhopush.nextLine()]);
    return { bare: JSON.parse(b) as Counted, rhopush: JSON.parse(r) as Counted, generated: g.calls / (g.ms / 1000) };
  } finally {
    await Promise.all([bare.stop(), rhopush.stop()]);
  }
}

export async function benchCapture(ctx: BenchContext): Promise<Figure[]> {
  const users = ctx.quick ? 1000 : 20_000;
  const calls = users * SOURCES; // every (user, source) pair written once: 100k pairs in the full run
  const server = await startRedisServer({ args: ['--notify-keyspace-events', 'K$'] });
  const admin = new Redis(server.port, '127.0.0.1');
  const rates: number[] = [];
  const baseRates: number[] = [];
  const lost: number[] = [];
  const rss: number[] = [];
  const baseRss: number[] = [];
  const cpu: number[] = [];
  const baseCpu: number[] = [];
  try {
    for (let run = 0; run < ctx.runs; run++) {
      const { bare, rhopush, generated } = await consumeBoth(server.port, users, calls);
      await admin.flushall();
      baseRates.push(bare.count / ((bare.last - bare.first) / 1000));
      baseRss.push(bare.maxRssMiB);
      rates.push(rhopush.count / ((rhopush.last - rhopush.first) / 1000));
      rss.push(rhopush.maxRssMiB);
      cpu.push(rhopush.cpuUs / Math.max(1, rhopush.count));
      baseCpu.push(bare.cpuUs / Math.max(1, bare.count));
      lost.push(calls - rhopush.count);
      ctx.log(
        `capture run ${run + 1}: rhopush ${Math.round(rates.at(-1)!)}/s (${rhopush.count}/${calls}), bare ${Math.round(baseRates.at(-1)!)}/s (${bare.count}/${calls}); generator ${Math.round(generated)} writes/s; peak RSS ${Math.round(rss.at(-1)!)} vs ${Math.round(baseRss.at(-1)!)} MiB; CPU ${cpu.at(-1)!.toFixed(1)} vs ${baseCpu.at(-1)!.toFixed(1)} µs per change`,
      );
    }
  } finally {
    admin.disconnect();
    await server.stop();
  }
  return [
    figure(
      'capture.rate',
      'changes/s',
      rates,
      baseRates,
      `${calls} push_objects over ${users} users × ${SOURCES} sources; baseline: bare ioredis psubscribe counter; target ≥ 0.95×`,
    ),
    figure(
      'capture.cpu_per_change',
      'µs',
      cpu,
      baseCpu,
      "CPU time of rhopush's process (capture, classification, grouping, pings without delivery) over the changes it captured; baseline: the bare subscriber's CPU per event on the same stream",
    ),
    figure('capture.lost', 'events', lost, null, 'plugin writes issued − changes classified (must be 0)'),
    figure(
      'capture.peak_rss',
      'MiB',
      rss,
      baseRss,
      `peak RSS of the process at ${calls} distinct (user, source) pairs, grouped pings included; baseline: bare subscriber process`,
    ),
  ];
}
