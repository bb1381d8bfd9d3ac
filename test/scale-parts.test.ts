// The parts under capture's guarantees, each against a real redis-server: cluster key slots,
// document fingerprints, RhoConnect's lock, and the capture lease.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { DocumentLocks } from '../src/recovery/document-locks.js';
import { pairKeys } from '../src/recovery/document-pair.js';
import { documentFingerprint, NodeFingerprintStore } from '../src/recovery/fingerprint-store.js';
import { NodeLease } from '../src/recovery/node-lease.js';
import { silentLogger } from '../src/logger.js';
import { crc16, hashTagOf, keySlot, tagForSlot } from '../src/store/cluster-slots.js';
import { startRedisServer, waitUntil, type RedisServerProcess } from '../src/kit/index.js';
import { createDaemon } from '../src/daemon.js';
import { scaleSettings } from './helpers/scale.js';

describe('cluster key slots', () => {
  it('computes Redis Cluster slots, honouring hash tags', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(hashTagOf('a{}b')).toBe('a{}b');
    expect(hashTagOf('x{tag}y{other}')).toBe('tag');
    expect(keySlot('ünïcode')).toBe(crc16(Buffer.from('ünïcode', 'utf8')) % 16384);
  });

  it('finds a hash tag for every slot', () => {
    for (const slot of [0, 1, 5460, 5461, 10922, 16383]) expect(keySlot(`rhopush:lease:{${tagForSlot(slot)}}`)).toBe(slot);
    expect(() => tagForSlot(16384)).toThrow(/no such cluster slot/);
  });
});

let server: RedisServerProcess;
let redis: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis({ port: server.port, host: '127.0.0.1' });
});

afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

beforeEach(async () => {
  await redis.flushall();
});

const alice = { partition: 'alice', source: 'Product' };

async function writeDoc(members: Record<string, string[]>, size: string): Promise<void> {
  const doc = 'source:application:alice:Product:md';
  for (const [bucket, list] of Object.entries(members)) {
    await redis.hset(`${doc}:indices`, bucket, `${doc}:${bucket}`);
    for (const m of list) await redis.sadd(`${doc}:${bucket}`, m);
  }
  await redis.set(pairKeys.mdSize(alice), size);
}

describe('document fingerprints', () => {
  it('change with content and count, not with the order things were written in', async () => {
    const store = new NodeFingerprintStore(redis);
    await writeDoc({ '35': ['1:^rho&:name:a', '3:^rho&:name:c'], da: ['2:^rho&:name:b'] }, '3');
    const [first] = await store.read([alice]);
    await redis.flushall();
    await writeDoc({ da: ['2:^rho&:name:b'], '35': ['3:^rho&:name:c', '1:^rho&:name:a'] }, '3');
    const [again] = await store.read([alice]);
    expect(again!.current).toBe(first!.current);

    await redis.srem('source:application:alice:Product:md:35', '3:^rho&:name:c');
    await redis.sadd('source:application:alice:Product:md:35', '3:^rho&:name:C');
    const [updated] = await store.read([alice]);
    expect(updated!.current).not.toBe(first!.current);

    await redis.set(pairKeys.mdSize(alice), '4');
    const [recounted] = await store.read([alice]);
    expect(recounted!.current).not.toBe(updated!.current);

    await redis.del(pairKeys.mdSize(alice));
    const [gone] = await store.read([alice]);
    expect(gone!.current).toBeNull();
  });

  it('snapshot marks pending, commit records and clears it', async () => {
    const store = new NodeFingerprintStore(redis);
    await writeDoc({ '35': ['1:^rho&:name:a'] }, '1');
    const [snap] = await store.snapshot([alice], 'instance-1');
    expect(snap!.stored).toBeNull();
    const [seen] = await store.read([alice]);
    expect(seen!.pending).toEqual({ owner: 'instance-1', fp: snap!.current });
    await store.commit([{ pair: alice, fp: snap!.current }], 'instance-1 ping');
    const [after] = await store.read([alice]);
    expect(after).toMatchObject({ stored: snap!.current, pending: null });
    expect(await redis.hget(pairKeys.seen(alice), 'by')).toBe('instance-1 ping');
    expect(await store.documentsExist([alice, { partition: 'bob', source: 'Product' }])).toEqual([true, false]);
  });

  it('computes the same canonical form in the cluster implementation, independent of member order', () => {
    const a = documentFingerprint('2', [
      ['35', ['x', 'y']],
      ['da', ['z']],
    ]);
    const b = documentFingerprint('2', [
      ['35', ['y', 'x']],
      ['da', ['z']],
    ]);
    expect(a).toBe(b);
    expect(
      documentFingerprint('2', [
        ['35', ['x', 'y']],
        ['da', ['Z']],
      ]),
    ).not.toBe(a);
  });
});

describe("RhoConnect's document lock", () => {
  it('is held while its expiry lies ahead, and free once it has passed or is gone', async () => {
    const locks = new DocumentLocks(redis, () => 1_000_000_000);
    const bob = { partition: 'bob', source: 'Product' };
    const carol = { partition: 'carol', source: 'Product' };
    await redis.set(pairKeys.lock(alice), String(1_000_000 + 60));
    await redis.set(pairKeys.lock(bob), String(1_000_000 - 5));
    expect(await locks.held([alice, bob, carol])).toEqual([true, false, false]);
  });
});

describe('capture lease', () => {
  const lease = (owner: string, conn: Redis) =>
    new NodeLease({ node: 'n', redis: conn, key: 'rhopush:lease', owner, leaseMs: 300, logger: silentLogger });

  it('is held by one instance, handed over on release, and taken over when it lapses', async () => {
    const ca = new Redis({ port: server.port, host: '127.0.0.1' });
    const cb = new Redis({ port: server.port, host: '127.0.0.1' });
    try {
      const a = lease('a', ca);
      const b = lease('b', cb);
      expect(await a.start()).toBe(true);
      expect(await b.start()).toBe(false);
      expect(b.heldElsewhere).toBe(true);
      await a.release();
      expect(await redis.get('rhopush:lease')).toBeNull();
      await waitUntil(() => b.held, { what: 'b to take the released lease', timeoutMs: 15_000 });
      expect(b.sawOtherHolder).toBe(true);

      // Another instance overwrites it (as after b's lease lapsed): b notices and lets go.
      const lost = new Promise<void>((resolve) => b.once('lost', () => resolve()));
      await redis.set('rhopush:lease', 'c', 'PX', 5000);
      await lost;
      expect(b.held).toBe(false);
      await b.release();
      expect(await redis.get('rhopush:lease')).toBe('c');
    } finally {
      ca.disconnect();
      cb.disconnect();
    }
  });

  it('stops holding a lease it cannot renew before the lease could lapse', async () => {
    const conn = new Redis({
      port: server.port,
      host: '127.0.0.1',
      maxRetriesPerRequest: 0,
      commandTimeout: 100,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    conn.on('error', () => undefined);
    await new Promise((r) => conn.once('ready', r));
    const a = new NodeLease({ node: 'n', redis: conn, key: 'rhopush:lease', owner: 'a', leaseMs: 2000, logger: silentLogger });
    expect(await a.start()).toBe(true);
    const lost = new Promise<string>((resolve) => a.once('lost', (reason: string) => resolve(reason)));
    conn.disconnect();
    expect(await lost).toMatch(/could not renew in time/);
    expect(await redis.pttl('rhopush:lease')).toBeGreaterThan(0); // it lapses on its own, after we let go
    await a.release();
  });
});

describe('cluster settings against a server that is no cluster', () => {
  it('fail the start with a message naming the seeds and the fix', async () => {
    const daemon = createDaemon({ settings: scaleSettings({ redis: [`127.0.0.1:${server.port}`], cluster: true }), http: false });
    try {
      await expect(daemon.start()).rejects.toThrow(
        /no Redis Cluster node answered CLUSTER SLOTS \(seeds: 127\.0\.0\.1:\d+; last error: .*cluster support disabled\).*:cluster: false/,
      );
    } finally {
      await daemon.stop();
    }
  });
});
