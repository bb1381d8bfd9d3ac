// Plugin writes for the benchmarks: the kit's push_objects (RhoConnect's command sequence, recorded
// in test/fixtures/rhoconnect/01-push-objects-new.json) queued on pipelines, one object per call.
import type { ChainableCommander, Redis } from 'ioredis';
import { pushObjectsSteps, queueSteps } from '../../src/kit/index.js';
import { benchUser } from './devices.js';

/** Queues a push_objects of object `id` for `user` and `source`. */
export function queuePluginWrite(p: ChainableCommander, user: string, source: string, id: number): void {
  queueSteps(p, pushObjectsSteps(user, source, { [String(id)]: { name: `object ${id}` } }));
}

/** Issues `calls` push_objects over users × sources, pipelined, as fast as Redis takes them. */
export async function pluginWriteBurst(redis: Redis, users: number, sources: number, calls: number, batch = 200): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < calls; i += batch) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(calls, i + batch); j++)
      queuePluginWrite(p, benchUser(j % users), `Source${Math.floor(j / users) % sources}`, j);
    await p.exec();
  }
  return performance.now() - started;
}
