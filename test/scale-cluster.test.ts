// Redis Cluster: one subscriber per master, following a CLUSTER FAILOVER and a new master that
// takes over slots (with their keys) while writes go on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { keySlot } from '../src/store/cluster-slots.js';
import type { Change } from '../src/intake/capture.js';
import { createDaemon, type Daemon } from '../src/daemon.js';
import { startRedisCluster, type RedisClusterProcess } from '../src/kit/redis-cluster-process.js';
import { createUser, pushObjects, registerClient, waitUntil } from '../src/kit/index.js';
import { pair, PingRecord, scaleSettings, settle } from './helpers/scale.js';

let cluster: RedisClusterProcess;
let client: Cluster;
let daemon: Daemon;
/** A second rhopush instance against the same cluster: it captures whatever masters it gets the lease of. */
let standby: Daemon;
const record = new PingRecord();
const recordA = new PingRecord();
const recordB = new PingRecord();
const flagged = new Set<string>();
const devicePushes: string[] = [];
/** Pairs written before rhopush started; they must never be pinged. */
const quiet: string[] = [];
const written: string[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }], { clusterRetryStrategy: () => 100 });
  client.on('error', () => undefined);
});

afterAll(async () => {
  await standby?.stop();
  await daemon?.stop();
  client?.disconnect();
  await cluster?.stop();
});

/** A user whose md_size key for `source` hashes into one of `slots`. */
function userInSlots(prefix: string, source: string, slots: Set<number>): string {
  for (let i = 0; ; i++) {
    const user = `${prefix}${i}`;
    if (slots.has(keySlot(`source:application:${user}:${source}:md_size`))) return user;
  }
}

async function write(user: string, source: string): Promise<void> {
  // Writes may meet a slot in the middle of a failover or migration: retry like a client would.
  await waitUntil(() => pushObjects(client, user, source, { '1': { name: 'x' } }).then(() => true), {
    what: `a write of ${pair(user, source)} the cluster accepts`,
    intervalMs: 50,
    retryErrors: true,
  });
  written.push(pair(user, source));
}

/** Every master is captured by exactly one of the instances, caught up. */
async function capturedMasters(): Promise<boolean> {
  const masters = (await cluster.masters()).map((m) => `127.0.0.1:${m.port}`).sort();
  const status = [daemon, standby].filter(Boolean).flatMap((d) => d.supervisor!.status());
  const captured = status
    .filter((s) => s.leaseHeld && s.subscribed && !s.catchingUp)
    .map((s) => s.node)
    .sort();
  return JSON.stringify(masters) === JSON.stringify(captured);
}

async function settleBoth(): Promise<void> {
  await settle(daemon);
  if (standby) await settle(standby);
}

describe('Redis Cluster (3 masters, 3 replicas)', () => {
  it('captures every master, reads users through the cluster, and follows a CLUSTER FAILOVER mid-stream', async () => {
    await createUser(client, 'carla');
    await registerClient(client, 'carla', { id: 'c-carla', device_type: 'APPLE', device_pin: 'cc11', device_app_id: 'app' });
    for (let i = 0; i < 9; i++) {
      await pushObjects(client, `quiet${i}`, 'Product', { '1': { name: 'before' } });
      quiet.push(pair(`quiet${i}`, 'Product'));
    }
    const instance = (own: PingRecord) =>
      createDaemon({
        settings: scaleSettings({ redis: cluster.seeds(), cluster: true }),
        http: false,
        onPing: (r) => {
          own.add(r.users, r.sources);
          record.add(r.users, r.sources);
          for (const p of r.pushes) devicePushes.push(p.user);
        },
      });
    daemon = instance(recordA);
    await daemon.start();
    standby = instance(recordB);
    for (const d of [daemon, standby]) {
      d.supervisor!.on('catch-up-ping', (c: Change, possibleDuplicate: boolean) => {
        if (possibleDuplicate) flagged.add(pair(c.user, c.source));
      });
    }
    await standby.start();
    await settle(daemon);
    expect(await capturedMasters()).toBe(true);
    expect(standby.capture!.nodes).toEqual([]);
    expect(record.pairs()).toEqual([]);

    const [firstMaster] = await cluster.masters();
    const replica = await cluster.replicaOf(firstMaster!.port);
    await write('carla', 'Product');
    for (let i = 0; i < 40; i++) {
      if (i === 15) await cluster.failover(replica!.port);
      await write(`fo${i}`, i % 2 ? 'Contact' : 'Product');
    }
    await waitUntil(capturedMasters, { what: 'capture on the promoted replica', timeoutMs: 15_000 });
    await settleBoth();
    await waitUntil(() => written.every((p) => record.counts.has(p)), { what: 'a ping for every written pair', timeoutMs: 15_000 });
    await settleBoth();
    expect(record.pairs()).toEqual([...new Set(written)].sort());
    expect(daemon.supervisor!.status().map((s) => s.node)).toContain(`127.0.0.1:${replica!.port}`);
    for (const p of recordA.pairs()) if (recordB.counts.has(p)) expect(flagged.has(p)).toBe(true);
    expect(devicePushes).toContain('carla');
  }, 90_000);

  it('follows a new master that takes over slots with their keys mid-stream', async () => {
    const masters = await cluster.masters();
    const source = masters[masters.length - 1]!;
    const lastRange = source.slots[source.slots.length - 1]!;
    const moving = new Set<number>();
    for (let s = lastRange[1] - 199; s <= lastRange[1]; s++) moving.add(s);
    // Documents that move with the slots but never change: their records move along.
    for (let i = 0; i < 3; i++) {
      const user = userInSlots(`stay${i}-`, 'Product', moving);
      await pushObjects(client, user, 'Product', { '1': { name: 'before' } });
      await waitUntil(() => record.counts.has(pair(user, 'Product')), { what: 'the live ping', timeoutMs: 15_000 });
      written.push(pair(user, 'Product'));
    }
    await settleBoth();
    // Records follow each ping after a canary round trip on its master; a loaded machine slows them.
    await waitUntil(() => daemon.supervisor!.keeper.trackedPairs === 0 && standby.supervisor!.keeper.trackedPairs === 0, {
      what: 'records of the live pings',
      timeoutMs: 30_000,
    });

    const added = await cluster.addMaster();
    for (let i = 0; i < 10; i++) await write(`before-move${i}`, 'Product');
    const moved = await cluster.moveSlots(source.port, added.port, 200);
    expect(new Set(moved)).toEqual(moving);
    // Writes into the moved slots land on the new master only.
    for (let i = 0; i < 10; i++)
      await write(userInSlots(`moved${i}-`, i % 2 ? 'Contact' : 'Product', moving), i % 2 ? 'Contact' : 'Product');
    await waitUntil(capturedMasters, { what: 'capture on the new master', timeoutMs: 15_000 });
    for (let i = 0; i < 10; i++) await write(`after-move${i}`, 'Product');
    await settleBoth();
    await waitUntil(() => written.every((p) => record.counts.has(p)), { what: 'a ping for every written pair', timeoutMs: 15_000 });
    await settleBoth();
    expect(daemon.supervisor!.status().map((s) => s.node)).toContain(`127.0.0.1:${added.port}`);
    expect(standby.supervisor!.status().map((s) => s.node)).toContain(`127.0.0.1:${added.port}`);
    expect(record.pairs()).toEqual([...new Set(written)].sort());
    for (const p of quiet) expect(record.counts.has(p)).toBe(false);
    // No pair pinged by both instances outside the counted handover window.
    for (const p of recordA.pairs()) if (recordB.counts.has(p)) expect(flagged.has(p)).toBe(true);
    // Each live change was pinged once: the migration itself (DEL/RESTORE) is no plugin write.
    for (const [p, n] of record.counts) if (p.startsWith('stay')) expect(n).toBe(1);
  }, 90_000);
});
