// Helpers for the scale and fault tests: RhoConnect-shaped plugin writes that also work on a Redis
// Cluster, a record of which (user, source) pairs got pinged, and polling with a deadline.
import type { Cluster, Redis } from 'ioredis';
import { parseSettings } from '../../src/config/load-settings.js';
import type { Settings } from '../../src/config/settings.js';
import type { Daemon } from '../../src/daemon.js';

export type AnyRedis = Redis | Cluster;

export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * push_objects as RhoConnect runs it (fixture 01), one command at a time so that it works across
 * cluster slots: lock, bucket index, bucket, md_size INCRBY, unlock.
 */
export async function pluginWrite(redis: AnyRedis, user: string, source: string, id: string, value: string, lockRedis: AnyRedis = redis): Promise<void> {
  const doc = `source:application:${user}:${source}:md`;
  const lock = `lock:${doc}`;
  await lockRedis.setnx(lock, String(Math.floor(Date.now() / 1000) + 60));
  const bucket = id.slice(-2).padStart(2, '0');
  await redis.hsetnx(`${doc}:indices`, bucket, `${doc}:${bucket}`);
  await redis.sadd(`${doc}:${bucket}`, `${id}:^rho&:name:${value}`);
  await redis.incrby(`source:application:${user}:${source}:md_size`, 1);
  await lockRedis.del(lock);
}

/** A device's own sync rewriting the document (fixture 20): md_size SET, no ping. */
export async function deviceSyncWrite(redis: AnyRedis, user: string, source: string, id: string, value: string, lockRedis: AnyRedis = redis): Promise<void> {
  const doc = `source:application:${user}:${source}:md`;
  const lock = `lock:${doc}`;
  await lockRedis.setnx(lock, String(Math.floor(Date.now() / 1000) + 60));
  const bucket = id.slice(-2).padStart(2, '0');
  await redis.hsetnx(`${doc}:indices`, bucket, `${doc}:${bucket}`);
  await redis.sadd(`${doc}:${bucket}`, `${id}:^rho&:name:${value}`);
  await redis.set(`source:application:${user}:${source}:md_size`, '99');
  await lockRedis.del(lock);
}

/** Which pairs were pinged, and how often. */
export class PingRecord {
  readonly counts = new Map<string, number>();

  add(users: string[], sources: string[]): void {
    for (const u of users) for (const s of sources) this.counts.set(pair(u, s), (this.counts.get(pair(u, s)) ?? 0) + 1);
  }

  has(user: string, source: string): boolean {
    return this.counts.has(pair(user, source));
  }

  pairs(): string[] {
    return [...this.counts.keys()].sort();
  }
}

export function pair(user: string, source: string): string {
  return `${user}/${source}`;
}

export interface ScaleSettingsOptions {
  redis: string[];
  cluster?: boolean;
  leaseMs?: number;
  canaryIntervalMs?: number;
  canaryTimeoutMs?: number;
  listen?: string;
}

/** Settings text for scale tests: Product and Contact ping, Note does not, Catalog is app-partitioned. */
export function scaleSettingsYaml(o: ScaleSettingsOptions): string {
  return `:sources:
  Product:
    :partition_type: user
    :push_notify: 'true'
  Contact:
    :partition_type: user
    :push_notify: 'true'
  Note:
    :partition_type: user
  Catalog:
    :partition_type: app
    :push_notify: 'true'
:test:
  :redis:
${o.redis.map((r) => `    - ${r}`).join('\n')}
  :api_token: test-admin-token
  :push_notify: 'false'
  :rhopush:
    :delivery: log
    :listen: ${o.listen ?? '127.0.0.1:0'}
    :coalesce_ms: 20
    :max_delay_ms: 100
    :cluster: ${o.cluster ? 'true' : 'false'}
    :lease_ms: ${o.leaseMs ?? 900}
    :canary_interval_ms: ${o.canaryIntervalMs ?? 200}
    :canary_timeout_ms: ${o.canaryTimeoutMs ?? 600}
`;
}

export function scaleSettings(o: ScaleSettingsOptions): Settings {
  return parseSettings(scaleSettingsYaml(o), '<scale test>', { environment: 'test', env: {} });
}

/**
 * Waits until everything captured or caught up so far has been pinged and recorded: catch-up done,
 * a canary round trip on every captured node, the grouping window flushed, pings finished. A node
 * can drop (and its lease lapse) on a busy machine while this runs: then it starts over.
 */
export async function settle(daemon: Daemon, attempts = 5): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await daemon.supervisor!.caughtUp();
      await daemon.capture!.barrier(2000);
      break;
    } catch (err) {
      if (i >= attempts) throw err;
    }
  }
  daemon.window.flushAll();
  await daemon.drain();
}
