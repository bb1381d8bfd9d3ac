// Catch-up, leases and canaries show up on /metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createDaemon } from '../src/daemon.js';
import { pushObjects, startRedisServer, type RedisServerProcess } from '../src/kit/index.js';
import { scaleSettings, settle } from './helpers/scale.js';

let server: RedisServerProcess;
let redis: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis(server.port, '127.0.0.1');
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

function sample(text: string, name: string, label = ''): number | undefined {
  const line = text.split('\n').find((l) => (label ? l.startsWith(`${name}{`) && l.includes(label) : l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('scale metrics', () => {
  it('counts catch-up runs and the pairs they pinged, and leases acquired', async () => {
    const settings = scaleSettings({ redis: [`127.0.0.1:${server.port}`] });
    const first = createDaemon({ settings, http: false });
    await first.start();
    await settle(first);
    const baseline = await first.metrics.text();
    expect(sample(baseline, 'rhopush_catch_ups_total', 'reason="start"')).toBe(1);
    expect(sample(baseline, 'rhopush_capture_leases_total', 'event="acquired"')).toBe(1);
    await first.stop();

    // Changed while nobody listened: the next start pings exactly this pair.
    await pushObjects(redis, 'ann', 'Product', { '1': { name: 'gap' } });
    const second = createDaemon({ settings, http: false });
    await second.start();
    await settle(second);
    const text = await second.metrics.text();
    expect(sample(text, 'rhopush_catch_up_pairs_total', 'result="changed"')).toBe(1);
    expect(sample(text, 'rhopush_catch_up_duration_seconds_count')).toBe(1);
    // Its ping is counted (and logged) as a catch-up ping, not as a live one.
    expect(sample(text, 'rhopush_pings_total', 'trigger="catch-up"')).toBe(1);
    expect(sample(text, 'rhopush_pings_total', 'trigger="auto"')).toBe(0);

    // A live change of the same user joining the group makes it an ordinary automatic ping.
    second.window.add('ann', 'Contact', Date.now(), 'catch-up');
    second.window.add('ann', 'Product', Date.now(), 'auto');
    second.window.flushAll();
    await second.drain();
    const after = await second.metrics.text();
    expect(sample(after, 'rhopush_pings_total', 'trigger="auto"')).toBe(1);
    expect(sample(after, 'rhopush_pings_total', 'trigger="catch-up"')).toBe(1);
    await second.stop();
  });
});
