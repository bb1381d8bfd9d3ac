// 2. Grouping: a burst of 10,000 plugin writes over 100 users × 5 sources; pings issued by rhopush
// vs one ping per plugin call (RhoConnect's behaviour).
import { Redis } from 'ioredis';
import { parseSettings } from '../src/config/index.js';
import { createDaemon } from '../src/daemon.js';
import type { PushAdapters } from '../src/push/registry.js';
import { startRedisServer } from '../src/kit/redis-server-process.js';
import { figure, waitFor, type BenchContext, type Figure } from './lib/harness.js';
import { pluginWriteBurst, sourcesSettingsYaml } from './lib/plugin-writes.js';

const noDelivery: PushAdapters = {
  adapterFor: () => ({ send: async () => ({ outcome: 'logged' as const }), close: async () => {} }),
  close: async () => {},
};

export async function benchGrouping(ctx: BenchContext): Promise<Figure[]> {
  const users = 100;
  const sources = 5;
  const calls = ctx.quick ? 2000 : 10_000;
  const server = await startRedisServer({ args: ['--notify-keyspace-events', 'K$'] });
  const pings: number[] = [];
  try {
    for (let run = 0; run < ctx.runs; run++) {
      const settings = parseSettings(sourcesSettingsYaml(server.port, sources), 'bench', { environment: 'test', env: {} });
      let changes = 0;
      let count = 0;
      const daemon = createDaemon({ settings, http: false, adapters: noDelivery, onChange: () => (changes += 1), onGroup: () => (count += 1) });
      await daemon.start();
      const writer = new Redis(server.port, '127.0.0.1');
      await pluginWriteBurst(writer, users, sources, calls);
      await waitFor(() => changes >= calls, 30_000);
      await daemon.capture!.barrier(10_000);
      await waitFor(() => daemon.window.size === 0, 5_000);
      pings.push(count);
      writer.disconnect();
      await daemon.stop();
      ctx.log(`grouping run ${run + 1}: ${count} pings for ${calls} writes`);
    }
  } finally {
    await server.stop();
  }
  return [figure('grouping.pings', 'pings', pings, pings.map(() => calls), `${calls} plugin writes over ${users} users × ${sources} sources; baseline: one ping per call; target: ${users}`)];
}
