// Several Redis instances (`:redis:` as an array, RhoConnect's layout): users, clients, tokens and
// locks on instance 0, user documents spread over the others, capture on every instance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createDaemon, type Daemon } from '../src/daemon.js';
import { replayFiles } from '../src/replay/replay.js';
import {
  createUser,
  deviceSync,
  pushObjects,
  registerClient,
  RhoConnectInstances,
  startRedisServer,
  waitUntil,
  type RedisServerProcess,
} from '../src/kit/index.js';
import { pair, PingRecord, scaleSettings, settle } from './helpers/scale.js';

describe('fixture 17 (two instances)', () => {
  it('replays through the real multi-instance path and matches RhoConnect', async () => {
    const [result] = await replayFiles(['test/fixtures/rhoconnect/17-multi-redis-push-objects.json']);
    expect(result!.match).toBe(true);
    expect(result!.actual).toEqual([{ user_id: ['alice'], sources: ['Product'] }]);
    // The md_size write happened on the second instance only: capture listened there.
    expect(result!.decisions).toEqual([
      { key: 'source:application:alice:Product:md_size', event: 'incrby', rule: 'plugin-write', ping: true },
    ]);
  });
});

describe('three instances', () => {
  const servers: RedisServerProcess[] = [];
  const clients: Redis[] = [];
  let daemon: Daemon | undefined;

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      const s = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
      servers.push(s);
      const c = new Redis({ port: s.port, host: '127.0.0.1', maxRetriesPerRequest: 50 });
      c.on('error', () => undefined);
      clients.push(c);
    }
  });

  afterAll(async () => {
    await daemon?.stop();
    clients.forEach((c) => c.disconnect());
    await Promise.all(servers.map((s) => s.stop()));
  });

  const settings = () => scaleSettings({ redis: servers.map((s) => `127.0.0.1:${s.port}`) });
  /** RhoConnect's layout: users and locks on instance 0, each user's documents on 1 or 2. */
  const rhoconnect = new RhoConnectInstances(clients);

  it('captures every instance, reads users from the first, and loses nothing across faults', async () => {
    const redis0 = clients[0]!;
    await createUser(redis0, 'u0');
    await registerClient(redis0, 'u0', { id: 'c-u0', device_type: 'APPLE', device_pin: 'aa11', device_app_id: 'app' });
    for (let i = 0; i < 6; i++) await pushObjects(rhoconnect, `quiet${i}`, 'Product', { '1': { name: 'before' } });

    const record = new PingRecord();
    const devicePushes: string[] = [];
    daemon = createDaemon({
      settings: settings(),
      http: false,
      onPing: (r) => {
        record.add(r.users, r.sources);
        for (const p of r.pushes) devicePushes.push(p.user);
      },
    });
    await daemon.start();
    await settle(daemon);
    expect(daemon.capture!.nodes.map((n) => n.label).sort()).toEqual(servers.map((s) => `127.0.0.1:${s.port}`).sort());
    expect(record.pairs()).toEqual([]);

    const written: string[] = [];
    const write = async (user: string, source = 'Product') => {
      await pushObjects(rhoconnect, user, source, { '1': { name: 'x' } });
      written.push(pair(user, source));
    };
    await write('u0');
    for (let i = 0; i < 12; i++) {
      if (i === 4) await clients[1]!.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      if (i === 8) await servers[2]!.restart();
      await write(`w${i}`, i % 3 ? 'Product' : 'Contact');
    }
    await waitUntil(() => daemon!.supervisor!.status().every((s) => s.leaseHeld && s.subscribed), {
      what: 'every instance captured again',
      timeoutMs: 15_000,
    });
    await settle(daemon);
    // A device's sync on a document instance needs no ping (captured live, not during a gap); its
    // record is written once instance 0 shows no lock on the document.
    await deviceSync(rhoconnect, 'd1', 'c-d1', 'Product', { '5': { name: 'device' } });
    await waitUntil(() => written.every((p) => record.counts.has(p)), { what: 'a ping for every written pair', timeoutMs: 15_000 });
    await settle(daemon);
    expect(record.pairs()).toEqual([...new Set(written)].sort());
    // u0's client lives on instance 0 and was pushed.
    expect(devicePushes).toContain('u0');
    await waitUntil(() => daemon!.supervisor!.keeper.trackedPairs === 0, { what: 'records of the device sync', timeoutMs: 15_000 });

    // A gap across every instance: rhopush stopped while documents on instances 1 and 2 change.
    await daemon.stop();
    daemon = undefined;
    const gap: string[] = [];
    for (const u of ['g1', 'g2', 'g3', 'g4']) {
      await pushObjects(rhoconnect, u, 'Contact', { '1': { name: 'gap' } });
      gap.push(pair(u, 'Contact'));
    }
    const after = new PingRecord();
    daemon = createDaemon({ settings: settings(), http: false, onPing: (r) => after.add(r.users, r.sources) });
    await daemon.start();
    await settle(daemon);
    expect(after.pairs()).toEqual(gap.sort());
  });
});
