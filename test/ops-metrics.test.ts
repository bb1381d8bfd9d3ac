// /metrics, /healthz and /docs/json scraped from a live daemon against a real redis-server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDaemon, type Daemon } from '../src/daemon.js';
import type { DevicePushRequest, PushAdapter } from '../src/push/adapter.js';
import type { PushAdapters } from '../src/push/registry.js';
import {
  createUser,
  deviceSync,
  pushObjects,
  registerClient,
  startRedisServer,
  waitUntil,
  type RedisServerProcess,
} from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';
import { entrySettings } from './helpers/entry-points.js';

const redis = useRedisServer();

/** Apple pushes succeed after two retries; FCM tokens are dead. */
const platformAdapters: PushAdapters = {
  adapterFor: (platform): PushAdapter => ({
    send: async (_r: DevicePushRequest) =>
      platform === 'fcm' ? { outcome: 'dead' as const, reason: 'UNREGISTERED' } : { outcome: 'sent' as const, retries: 2 },
    close: async () => {},
  }),
  close: async () => {},
};

/** One sample's value from Prometheus text, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v) && Object.keys(have).length === Object.keys(labels).length)
      return Number(m[3]);
  }
  return undefined;
}

describe('metrics, health and OpenAPI endpoints', () => {
  let daemon: Daemon;
  let base: string;
  const scrape = async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return res.text();
  };

  beforeAll(async () => {
    const settings = entrySettings(redis.server().port, { coalesce_ms: 60000, max_delay_ms: 60000 });
    daemon = createDaemon({ settings, adapters: platformAdapters });
    await daemon.start();
    const { host, port } = daemon.apiAddress!;
    base = `http://${host}:${port}`;
    const r = redis.client();
    await createUser(r, 'alice');
    await registerClient(r, 'alice', {
      id: 'a1',
      device_type: 'APPLE',
      device_pin: 'aaaa bbbb cccc dddd',
      phone_id: 'p1',
      last_sync: '2026-01-02T00:00:00+0000',
    });
    await registerClient(r, 'alice', {
      id: 'a2',
      device_type: 'ANDROID',
      device_push_type: 'fcm',
      device_pin: 'fcm-token-0123456789',
      phone_id: 'p2',
    });
  });

  afterAll(async () => {
    await daemon?.stop();
  });

  it('counts keyspace events, decisions, grouping, pings, device pushes, dead tokens, retries and latency', async () => {
    const r = redis.client();
    // Two plugin writes of one user, grouped into one ping; a device sync; an app-partitioned write.
    await pushObjects(r, 'alice', 'Product', { '1': { name: 'a' } });
    await pushObjects(r, 'alice', 'Contact', { '2': { name: 'b' } });
    await deviceSync(r, 'alice', 'a1', 'Product', { '1': { name: 'a' } });
    await pushObjects(r, '__shared__', 'Catalog', { '3': { name: 'c' } });
    await pushObjects(r, 'alice', 'Note', { '4': { name: 'd' } });
    await daemon.capture!.barrier();
    daemon.window.flushAll();
    await daemon.drain();
    await daemon.ping({ user_id: 'alice', sources: 'all' }, 'library');

    const text = await scrape();
    expect(sample(text, 'rhopush_keyspace_events_total', { event: 'incrby' })).toBe(4);
    // md_size SET of the sync plus cd_size SET (the canaries are not counted).
    expect(sample(text, 'rhopush_keyspace_events_total', { event: 'set' })).toBe(2);
    expect(sample(text, 'rhopush_decisions_total', { rule: 'plugin-write' })).toBe(2);
    expect(sample(text, 'rhopush_decisions_total', { rule: 'app-partition' })).toBe(1);
    expect(sample(text, 'rhopush_decisions_total', { rule: 'push-notify-off' })).toBe(1);
    expect(sample(text, 'rhopush_decisions_total', { rule: 'md-size-set' })).toBe(1);
    expect(sample(text, 'rhopush_decisions_total', { rule: 'device-edit' })).toBe(0);

    expect(sample(text, 'rhopush_changes_per_ping_count')).toBe(1);
    expect(sample(text, 'rhopush_changes_per_ping_sum')).toBe(2);
    expect(sample(text, 'rhopush_grouping_ratio')).toBe(2);
    expect(sample(text, 'rhopush_pings_total', { trigger: 'auto' })).toBe(1);
    expect(sample(text, 'rhopush_pings_total', { trigger: 'library' })).toBe(1);
    expect(sample(text, 'rhopush_pings_total', { trigger: 'rest' })).toBe(0);
    expect(sample(text, 'rhopush_ping_duration_seconds_count', { trigger: 'auto' })).toBe(1);

    expect(sample(text, 'rhopush_device_pushes_total', { platform: 'apple', outcome: 'sent' })).toBe(2);
    expect(sample(text, 'rhopush_device_pushes_total', { platform: 'fcm', outcome: 'dead' })).toBe(2);
    expect(sample(text, 'rhopush_dead_tokens_total', { platform: 'fcm' })).toBe(2);
    expect(sample(text, 'rhopush_push_retries_total', { platform: 'apple' })).toBe(4);

    expect(sample(text, 'rhopush_write_to_ping_seconds_count', { stage: 'start' })).toBe(1);
    expect(sample(text, 'rhopush_write_to_ping_seconds_count', { stage: 'finish' })).toBe(1);
    expect(sample(text, 'rhopush_write_to_ping_seconds_bucket', { stage: 'finish', le: '+Inf' })).toBe(1);
  });

  it('exposes queue depth and job outcomes reported by the worker', async () => {
    daemon.metrics.setQueueDepth(7);
    daemon.metrics.jobOutcome('done');
    daemon.metrics.jobOutcome('done');
    daemon.metrics.jobOutcome('failed');
    const text = await scrape();
    expect(sample(text, 'rhopush_queue_depth', { queue: 'ping' })).toBe(7);
    expect(sample(text, 'rhopush_queue_jobs_total', { outcome: 'done' })).toBe(2);
    expect(sample(text, 'rhopush_queue_jobs_total', { outcome: 'failed' })).toBe(1);
  });

  it('includes Node process metrics and the config reload counters', async () => {
    const text = await scrape();
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'rhopush_config_reloads_total', { result: 'rejected' })).toBe(0);
    expect(sample(text, 'rhopush_config_last_reload_ok')).toBe(1);
  });

  it('counts a keyspace subscription that comes back after its link was killed', async () => {
    const admin = redis.client();
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    const count = await waitUntil(
      async () => {
        const v = sample(await scrape(), 'rhopush_redis_reconnects_total', { node: `127.0.0.1:${redis.server().port}` });
        return v !== undefined && v >= 1 ? v : undefined;
      },
      { what: 'reconnect counted' },
    );
    expect(count).toBe(1);
    await waitUntil(async () => daemon.health().ok, { what: 'subscribed again' });
  });

  it('/healthz is 200 with every part when all is up', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; parts: Record<string, { ok: boolean }> };
    expect(body.ok).toBe(true);
    expect(Object.keys(body.parts)).toEqual(expect.arrayContaining(['redis', `capture 127.0.0.1:${redis.server().port}`, 'config']));
  });

  it('/docs/json describes the HTTP API from the route schemas', async () => {
    const res = await fetch(`${base}/docs/json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/rc/v1/users/ping', '/healthz', '/metrics']));
    expect(Object.keys(doc.paths['/healthz']!.get!.responses!)).toEqual(expect.arrayContaining(['200', '503']));
  });
});

describe('/healthz when Redis goes away', () => {
  let server: RedisServerProcess;
  let daemon: Daemon;

  beforeAll(async () => {
    server = await startRedisServer();
    const settings = entrySettings(server.port);
    daemon = createDaemon({ settings });
    await daemon.start();
  });

  afterAll(async () => {
    await daemon?.stop({ timeoutMs: 2000 });
    await server?.stop();
  });

  it('answers 503 naming the failing parts, and 200 again once Redis is back', async () => {
    const { host, port } = daemon.apiAddress!;
    const url = `http://${host}:${port}/healthz`;
    await server.kill();
    const down = await waitUntil(
      async () => {
        const res = await fetch(url);
        return res.status === 503
          ? ((await res.json()) as { ok: boolean; parts: Record<string, { ok: boolean; detail?: string }> })
          : undefined;
      },
      { what: '503' },
    );
    expect(down.ok).toBe(false);
    const failing = Object.entries(down.parts)
      .filter(([, p]) => !p.ok)
      .map(([name]) => name);
    expect(failing).toEqual(expect.arrayContaining(['redis', `capture 127.0.0.1:${server.port}`]));
    expect(down.parts.redis!.detail).not.toBe('store connection ready');

    await server.restart();
    await waitUntil(async () => (await fetch(url)).status === 200, { what: '200 again' });
  });
});
