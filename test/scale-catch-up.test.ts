// Catch-up after gaps on one Redis instance: first start, restarts of rhopush, a killed pub/sub
// connection, a subscriber that silently stops receiving, and a restarted redis-server.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createDaemon, type Daemon } from '../src/daemon.js';
import { startRedisServer, type RedisServerProcess } from '../src/kit/redis-server-process.js';
import { deviceSyncWrite, pair, PingRecord, pluginWrite, scaleSettings, settle, waitFor } from './helpers/scale.js';

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
    for (const u of ['ann', 'ben', 'cid', 'dee', 'eve']) await pluginWrite(redis, u, 'Product', '1', 'before');
    await pluginWrite(redis, 'ann', 'Note', '1', 'before');
    await pluginWrite(redis, '__shared__', 'Catalog', '1', 'before');

    const first = new PingRecord();
    const a = await startDaemon(first);
    await settle(a);
    expect(first.pairs()).toEqual([]);
    await stopDaemon(a);

    // While nobody listens: plugin writes, a new document, a device sync, and writes to sources
    // that never ping.
    await pluginWrite(redis, 'ann', 'Product', '2', 'gap');
    await pluginWrite(redis, 'ben', 'Product', '1', 'gap-update');
    await pluginWrite(redis, 'fay', 'Contact', '1', 'new');
    await deviceSyncWrite(redis, 'cid', 'Product', '7', 'synced');
    await pluginWrite(redis, 'ann', 'Note', '2', 'gap');
    await pluginWrite(redis, '__shared__', 'Catalog', '2', 'gap');

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
    await pluginWrite(redis, 'ann', 'Product', '1', 'before');
    await pluginWrite(redis, 'ben', 'Note', '1', 'before');
    const live = new PingRecord();
    const a = await startDaemon(live);
    await settle(a);
    await deviceSyncWrite(redis, 'ann', 'Product', '2', 'device');
    await pluginWrite(redis, 'ben', 'Note', '2', 'quiet');
    await pluginWrite(redis, 'cid', 'Product', '1', 'live');
    await settle(a);
    // The device sync and the Note write are recorded once the canary proves nothing was missed.
    await waitFor(() => a.supervisor!.keeper.trackedPairs === 0, 'records of writes without a ping');
    expect(live.pairs()).toEqual([pair('cid', 'Product')]);
    await stopDaemon(a);

    const next = new PingRecord();
    const b = await startDaemon(next);
    await settle(b);
    expect(next.pairs()).toEqual([]);
  });

  it('loses nothing when the pub/sub connection is killed mid-stream (CLIENT KILL TYPE pubsub)', async () => {
    for (let i = 0; i < 5; i++) await pluginWrite(redis, `quiet${i}`, 'Product', '1', 'before');
    const record = new PingRecord();
    const daemon = await startDaemon(record);
    await settle(daemon);
    const written: string[] = [];
    for (let i = 0; i < 40; i++) {
      if (i === 15) expect(Number(await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThan(0);
      await pluginWrite(redis, `user${i}`, i % 2 ? 'Contact' : 'Product', '1', `v${i}`);
      written.push(pair(`user${i}`, i % 2 ? 'Contact' : 'Product'));
    }
    await waitFor(() => daemon.supervisor!.status().every((s) => s.leaseHeld && s.subscribed), 'resubscription');
    await settle(daemon);
    await waitFor(() => written.every((p) => record.counts.has(p)), 'a ping for every written pair');
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
      await pluginWrite(redis, `silent${i}`, 'Product', '1', 'x');
      written.push(pair(`silent${i}`, 'Product'));
    }
    await waitFor(() => daemon.supervisor!.stats.canaryFailures >= 1, 'the canary to notice');
    await waitFor(() => written.every((p) => record.counts.has(p)), 'catch-up pings for the silent period');
    await settle(daemon);
    expect(record.pairs()).toEqual([...written].sort());
    expect(daemon.supervisor!.stats.catchUpPings).toBe(written.length);
  });

  it('loses nothing when the redis-server is killed and restarted mid-stream', async () => {
    for (let i = 0; i < 5; i++) await pluginWrite(redis, `quiet${i}`, 'Product', '1', 'before');
    const record = new PingRecord();
    const daemon = await startDaemon(record);
    await settle(daemon);
    const written: string[] = [];
    const write = async (user: string) => {
      await pluginWrite(redis, user, 'Product', '1', 'x');
      written.push(pair(user, 'Product'));
    };
    for (let i = 0; i < 10; i++) await write(`before-restart${i}`);
    await server.restart();
    // Right after the restart, before rhopush has resubscribed: only catch-up can see these.
    for (let i = 0; i < 10; i++) await write(`after-restart${i}`);
    await waitFor(() => daemon.supervisor!.status().every((s) => s.leaseHeld && s.subscribed), 'resubscription');
    for (let i = 0; i < 10; i++) await write(`later${i}`);
    await settle(daemon);
    await waitFor(() => written.every((p) => record.counts.has(p)), 'a ping for every written pair');
    await settle(daemon);
    expect(record.pairs()).toEqual([...written].sort());
  });
});
