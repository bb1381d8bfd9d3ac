// 2. Grouping: a burst of 10,000 plugin writes over 100 users × 5 sources; pings issued by rhopush
// vs one ping per plugin call (RhoConnect's behaviour).
import { Redis } from 'ioredis';
import { createDaemon } from '../src/daemon.js';
import { buildSettings, numberedSources, startRedisServer, waitUntil } from '../src/kit/index.js';
import { figure, noDelivery, type BenchContext, type Figure } from './lib/harness.js';
import { pluginWriteBurst } from './lib/plugin-writes.js';

export async function benchGrouping(ctx: BenchContext): Promise<Figure[]> {
  const users = 100;
  const sources = 5;
  const calls = ctx.quick ? 2000 : 10_000;
  const server = await startRedisServer({ args: ['--notify-keyspace-events', 'K$'] });
  const pings: number[] = [];
  try {
    for (let run = 0; run < ctx.runs; run++) {
      const settings = buildSettings({ redis: server.port, sources: numberedSources(sources) });
      let changes = 0;
      let count = 0;
      const daemon = createDaemon({
        settings,
        http: false,
        adapters: noDelivery,
        onChange: () => (changes += 1),
        onGroup: () => (count += 1),
      });
      await daemon.start();
      const writer = new Redis(server.port, '127.0.0.1');
      await pluginWriteBurst(writer, users, sources, calls);
      // Past a deadline the run goes on: the pings counted say what grouping did with what arrived.
      await waitUntil(() => changes >= calls, { what: 'every write captured', timeoutMs: 30_000, intervalMs: 5 }).catch(() => undefined);
      await daemon.capture!.barrier(10_000);
      await waitUntil(() => daemon.window.size === 0, { what: 'every group sent', timeoutMs: 5_000, intervalMs: 5 }).catch(() => undefined);
      pings.push(count);
      writer.disconnect();
      await daemon.stop();
      ctx.log(`grouping run ${run + 1}: ${count} pings for ${calls} writes`);
    }
  } finally {
    await server.stop();
  }
  return [
    figure(
      'grouping.pings',
      'pings',
      pings,
      pings.map(() => calls),
      `${calls} plugin writes over ${users} users × ${sources} sources; baseline: one ping per call; target: ${users}`,
    ),
  ];
}
