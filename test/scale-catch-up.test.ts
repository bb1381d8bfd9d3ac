// Catch-up after gaps on one Redis instance: first start, restarts of rhopush, a killed pub/sub
// connection, a subscriber that silently stops receiving, and a restarted redis-server.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createDaemon, type Daemon } from '../src/daemon.js';
import { deviceSync, pushObjects, startRedisServer, waitUntil, type RedisServerProcess } from '../src/kit/index.js';
import { pair, PingRecord, scaleSettings, settle } from './helpers/scale.js';

let server: RedisServerProcess;
let redis: Redis;
const running: Daemon[] = [];

beforeAll(async () => {
  // Persistence, so that a restarted server comes back with its data (and rhopush's records).
  server = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  redis = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 50 });
  redis.on('error', () => undefined);
});

afterAll(async () => {
  await Promise.all(running.map((d) => d.stop()));
  redis.disconnect();
  await server.stop();
});

beforeEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
  await redis.flushall();
});

function settings() {
  return scaleSettings({ redis: [`127.0.0.1:${server.port}`] });
}

async function startDaemon(record: PingRecord): Promise<Daemon> {
  const daemon = createDaemon({ settings: settings(), http: false, onPing: (r) => record.add(r.users, r.sources) });
  running.push(daemon);
  await daemon.start();
  return daemon;
}

async function stopDaemon(daemon: Daemon): Promise<void> {
  running.splice(running.indexOf(daemon), 1);
  await daemon.stop();
}

describe('catch-up on one instance', () => {
  it('records a baseline on the first start and pings exactly what changed while rhopush was stopped', async () => {
    for (const u of ['ann', 'ben', 'cid', 'dee', 'eve']) await pushObjects(redis, u, 'Product', { '1': { name: 'before' } });
    await pushObjects(redis, 'ann', 'Note', { '1': { name: 'before' } });
    await pushObjects(redis, '__shared__', 'Catalog', { '1': { name: 'before' } });

    const first = new PingRecord();
    const a = await startDaemon(first);
    await settle(a);
    expect(first.pairs()).toEqual([]);
    await stopDaemon(a);

    // While nobody listens: plugin writes, a new document, a device sync, and writes to sources
    // that never ping.
    await pushObjects(redis, 'ann', 'Product', { '2': { name: 'gap' } });
    await pushObjects(redis, 'ben', 'Product', { '1': { name: 'gap-update' } });
    await pushObjects(redis, 'fay', 'Contact', { '1': { name: 'new' } });
    await deviceSync(redis, 'cid', 'c-cid', 'Product', { '7': { name: 'synced' } });
    await pushObjects(redis, 'ann', 'Note', { '2': { name: 'gap' } });
    await pushObjects(redis, '__shared__', 'Catalog', { '2': { name: 'gap' } });

    const second = new PingRecord();
    const b = await startDaemon(second);
    await settle(b);
    // A device's sync during a gap looks like any other change (README: delivery guarantee).
    expect(second.pairs()).toEqual([pair('ann', 'Product'), pair('ben', 'Product'), pair('cid', 'Product'), pair('fay', 'Contact')].sort());
    expect(b.supervisor!.stats.catchUpPings).toBe(4);
    await stopDaemon(b);

    const third = new PingRecord();
    const c = await startDaemon(third);
    await settle(c);
    expect(third.pairs()).toEqual([]);
  });

  it('records writes that need no ping while capturing, so the next start does not ping them', async () => {
    await pushObjects(redis, 'ann', 'Product', { '1': { name: 'before' } });
    await pushObjects(redis, 'ben', 'Note', { '1': { name: 'before' } });
    const live = new PingRecord();
    const a = await startDaemon(live);
    await settle(a);
    await deviceSync(redis, 'ann', 'c-ann', 'Product', { '2': { name: 'device' } });
    await pushObjects(redis, 'ben', 'Note', { '2': { name: 'quiet' } });
    await pushObjects(redis, 'cid', 'Product', { '1': { name: 'live' } });
    await settle(a);
    // The device sync and the Note write are recorded once the canary proves nothing was missed.
    await waitUntil(() => a.supervisor!.keeper.trackedPairs === 0, { what: 'records of writes without a ping', timeoutMs: 15_000 });
    expect(live.pairs()).toEqual([pair('cid', 'Product')]);
    await stopDaemon(a);

    const next = new PingRecord();
    const b = await startDaemon(next);
    await settle(b);
    expect(next.pairs()).toEqual([]);
  });

  it('loses nothing when the pub/sub connection is killed mid-stream (CLIENT KILL TYPE pubsub)', async () => {
    for (let i = 0; i < 5; i++) await pushObjects(redis, `quiet${i}`, 'Product', { '1': { name: 'before' } });
    const record = new PingRecord();
    const daemon = await startDaemon(record);
    await settle(daemon);
    const written: string[] = [];
    for (let i = 0; i < 40; i++) {
      if (i === 15) expect(Number(await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThan(0);
      await pushObjects(redis, `user${i}`, i % 2 ? 'Contact' : 'Product', { '1': { name: `v${i}` } });
      written.push(pair(`user${i}`, i % 2 ? 'Contact' : 'Product'));
    }
    await waitUntil(() => daemon.supervisor!.status().every((s) => s.leaseHeld && s.subscribed), {
      what: 'resubscription',
      timeoutMs: 15_000,
    });
    await settle(daemon);
    await waitUntil(() => written.every((p) => record.counts.has(p)), { what: 'a ping for every written pair', timeoutMs: 15_000 });
    expect(record.pairs()).toEqual([...written].sort());
    expect(daemon.supervisor!.stats.reconnects).toBeGreaterThanOrEqual(1);
  });

  it('reconnects a subscriber that looks connected but receives nothing, when its canary does not come back', async () => {
    const record = new PingRecord();
    const daemon = await startDaemon(record);
    await settle(daemon);
    const label = daemon.capture!.nodes[0]!.label;
    // The connection stays up but no longer delivers keyspace events.
    await daemon.capture!.subscriber(label)!.connection.punsubscribe();
    const written: string[] = [];
    for (let i = 0; i < 10; i++) {
      await pushObjects(redis, `silent${i}`, 'Product', { '1': { name: 'x' } });
      written.push(pair(`silent${i}`, 'Product'));
    }
    await waitUntil(() => daemon.supervisor!.stats.canaryFailures >= 1, { what: 'the canary to notice', timeoutMs: 15_000 });
    await waitUntil(() => written.every((p) => record.counts.has(p)), { what: 'catch-up pings for the silent period', timeoutMs: 15_000 });
    await settle(daemon);
    expect(record.pairs()).toEqual([...written].sort());
    expect(daemon.supervisor!.stats.catchUpPings).toBe(written.length);
  });

  it('loses nothing when the redis-server is killed and restarted mid-stream', async () => {
    for (let i = 0; i < 5; i++) await pushObjects(redis, `quiet${i}`, 'Product', { '1': { name: 'before' } });
    const record = new PingRecord();
    const daemon = await startDaemon(record);
    await settle(daemon);
    const written: string[] = [];
    const write = async (user: string) => {
      await pushObjects(redis, user, 'Product', { '1': { name: 'x' } });
      written.push(pair(user, 'Product'));
    };
    for (let i = 0; i < 10; i++) await write(`before-restart${i}`);
    await server.restart();
    // Right after the restart, before rhopush has resubscribed: only catch-up can see these.
    for (let i = 0; i < 10; i++) await write(`after-restart${i}`);
    await waitUntil(() => daemon.supervisor!.status().every((s) => s.leaseHeld && s.subscribed), {
      what: 'resubscription',
      timeoutMs: 15_000,
    });
    for (let i = 0; i < 10; i++) await write(`later${i}`);
    await settle(daemon);
    await waitUntil(() => written.every((p) => record.counts.has(p)), { what: 'a ping for every written pair', timeoutMs: 15_000 });
    await settle(daemon);
    expect(record.pairs()).toEqual([...written].sort());
  });
});
