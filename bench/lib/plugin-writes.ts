// RhoConnect-shaped plugin writes: the command sequence of a push_objects call as recorded in
// test/fixtures/rhoconnect/01-push-objects-new.json (lock, bucket index, buckets, md_size INCRBY,
// unlock), for any user and source.
import type { ChainableCommander, Redis } from 'ioredis';

export function queuePushObjects(p: ChainableCommander, user: string, source: string, id: number): void {
  const doc = `source:application:${user}:${source}:md`;
  const bucket = (id % 256).toString(16).padStart(2, '0');
  p.setnx(`lock:${doc}`, '1700000000');
  p.hset(`${doc}:indices`, bucket, `${doc}:${bucket}`);
  p.sadd(`${doc}:${bucket}`, `${id}:name:object ${id}`);
  p.incrby(`source:application:${user}:${source}:md_size`, 1);
  p.del(`lock:${doc}`);
}

/** Issues `calls` push_objects over users × sources, pipelined, as fast as Redis takes them. */
export async function pluginWriteBurst(redis: Redis, users: number, sources: number, calls: number, batch = 200): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < calls; i += batch) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(calls, i + batch); j++) queuePushObjects(p, `user${j % users}`, `Source${Math.floor(j / users) % sources}`, j);
    await p.exec();
  }
  return performance.now() - started;
}

export function sourcesSettingsYaml(port: number, sources: number, rhopush = ''): string {
  const list = Array.from({ length: sources }, (_, i) => `  Source${i}:\n    :partition_type: user\n    :push_notify: 'true'\n`).join('');
  return `:sources:\n${list}:test:\n  :redis: 127.0.0.1:${port}\n  :push_notify: 'false'\n  :rhopush:\n    :delivery: log\n    :listen: 127.0.0.1:0\n${rhopush}`;
}
