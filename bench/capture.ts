// 1. Capture: changes classified per second by rhopush ÷ events per second counted by a bare
// ioredis psubscribe counter on the same stream; events lost; peak RSS at 100k (user, source) pairs.
import { Redis } from 'ioredis';
import { parseSettings } from '../src/config/index.js';
import { createDaemon } from '../src/daemon.js';
import type { PushAdapters } from '../src/push/registry.js';
import { startRedisServer } from '../src/store/redis-server-process.js';
import { keyspacePatterns } from '../src/store/keys.js';
import { figure, waitFor, type BenchContext, type Figure } from './lib/harness.js';
import { sourcesSettingsYaml } from './lib/plugin-writes.js';
import { generate } from './lib/processes.js';

const noDelivery: PushAdapters = {
  adapterFor: () => ({ send: async () => ({ outcome: 'logged' as const }), close: async () => {} }),
  close: async () => {},
};

export async function benchCapture(ctx: BenchContext): Promise<Figure[]> {
  const users = ctx.quick ? 1000 : 20_000;
  const sources = 5;
  const calls = users * sources; // every (user, source) pair written once: 100k pairs in the full run
  const server = await startRedisServer({ args: ['--notify-keyspace-events', 'K$'] });
  const rates: number[] = [];
  const baseRates: number[] = [];
  const lost: number[] = [];
  const rss: number[] = [];
  const baseRss: number[] = [];
  try {
    for (let run = 0; run < ctx.runs; run++) {
      // Baseline: a bare subscriber counting the same keyspace stream.
      {
        const sub = new Redis(server.port, '127.0.0.1');
        let count = 0;
        let first = 0;
        let last = 0;
        sub.on('pmessage', () => {
          const t = performance.now();
          if (count === 0) first = t;
          last = t;
          count += 1;
        });
        await sub.psubscribe(keyspacePatterns(0)[0]!);
        let peak = process.memoryUsage().rss;
        const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
        await generate(server.port, users, sources, calls);
        await waitFor(() => count >= calls, 30_000);
        clearInterval(sampler);
        baseRates.push(count / ((last - first) / 1000));
        baseRss.push(peak / 1048576);
        sub.disconnect();
        await flush(server.port);
      }
      // rhopush: the real daemon (capture, classification, grouping, PingJob), delivery switched off.
      {
        const settings = parseSettings(sourcesSettingsYaml(server.port, sources), 'bench', { environment: 'test', env: {} });
        let changes = 0;
        let first = 0;
        let last = 0;
        const daemon = createDaemon({
          settings,
          http: false,
          adapters: noDelivery,
          onChange: () => {
            const t = performance.now();
            if (changes === 0) first = t;
            last = t;
            changes += 1;
          },
        });
        await daemon.start();
        let peak = process.memoryUsage().rss;
        const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
        await generate(server.port, users, sources, calls);
        await waitFor(() => changes >= calls, 30_000);
        await daemon.capture!.barrier(10_000);
        clearInterval(sampler);
        rates.push(changes / ((last - first) / 1000));
        lost.push(calls - changes);
        rss.push(peak / 1048576);
        await daemon.stop();
        await flush(server.port);
      }
      ctx.log(`capture run ${run + 1}: rhopush ${Math.round(rates.at(-1)!)}/s, bare ${Math.round(baseRates.at(-1)!)}/s`);
    }
  } finally {
    await server.stop();
  }
  return [
    figure('capture.rate', 'changes/s', rates, baseRates, `${calls} push_objects over ${users} users × ${sources} sources; baseline: bare ioredis psubscribe counter`),
    figure('capture.lost', 'events', lost, null, 'plugin writes issued − changes classified (must be 0)'),
    figure('capture.peak_rss', 'MiB', rss, baseRss, `peak RSS at ${calls} distinct (user, source) pairs; baseline: bare subscriber process`),
  ];
}

async function flush(port: number): Promise<void> {
  const r = new Redis(port, '127.0.0.1');
  await r.flushall();
  r.disconnect();
}
