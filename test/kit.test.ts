// The kit every test, benchmark and the demo stand on: its writes send exactly what RhoConnect sent
// in the recorded scenarios (keyspace events compared one by one, on one Redis and on two
// instances), its settings parse to what they say, its certificate is what the stand-ins need, and
// a wait that times out says what it waited for.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { sourcePolicy } from '../src/config/index.js';
import {
  buildSettings,
  createUser,
  deviceCreate,
  deviceSync,
  LOOPBACK_CA,
  LOOPBACK_TLS,
  numberedSources,
  pushObjects,
  registerClient,
  RhoConnectInstances,
  rhoconnectStoreIndex,
  settingsYaml,
  waitUntil,
  WaitTimeoutError,
  type RhoConnectTarget,
} from '../src/kit/index.js';
import { parseKey } from '../src/store/keys.js';
import { FIXTURE_DIR } from './helpers/fixtures.js';
import { useScratchDir } from './helpers/delivery.js';
import { useRedisServer } from './helpers/redis.js';

type Event = [key: string, event: string];

interface Recorded {
  keyspace_events: Event[];
  keyspace_events_by_instance?: Record<string, Event[]>;
}

function recorded(name: string): Recorded {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, `${name}.json`), 'utf8')) as Recorded;
}

const ALL_EVENTS = ['--notify-keyspace-events', 'KA'];
const first = useRedisServer(ALL_EVENTS);
const second = useRedisServer(ALL_EVENTS);

/** The keyspace events each of `connections` sent while `write` ran, in order. */
async function eventsOf(connections: Redis[], write: () => Promise<void>): Promise<Event[][]> {
  const logs = await Promise.all(
    connections.map(async (c) => {
      await c.flushall();
      const sub = new Redis(c.options.port!, '127.0.0.1');
      const events: Event[] = [];
      sub.on('pmessage', (_pattern: string, channel: string, event: string) =>
        events.push([channel.slice('__keyspace@0__:'.length), event]),
      );
      await sub.psubscribe('__keyspace@0__:*');
      return { c, sub, events };
    }),
  );
  await write();
  for (const { c, sub, events } of logs) {
    // A marker written after the writes: once its event is in, every earlier one is too.
    await c.set('kit-test:marker', '1');
    await waitUntil(() => events.some(([key]) => key === 'kit-test:marker'), { what: 'the marker event' });
    sub.disconnect();
  }
  return logs.map(({ events }) => events.filter(([key]) => key !== 'kit-test:marker'));
}

const one = async (target: RhoConnectTarget, write: (t: RhoConnectTarget) => Promise<void>) =>
  (await eventsOf([first.client()], () => write(target)))[0]!;

describe("the kit's writes are RhoConnect's", () => {
  it('createUser: scenario 25, event for event', async () => {
    expect(await one(first.client(), (r) => createUser(r, 'carol'))).toEqual(recorded('25-device-login-new-user').keyspace_events);
  });

  it('registerClient: scenario 13, event for event', async () => {
    const client = {
      id: 'e0da05ac4c626ac8e0894884a7332906',
      device_type: 'ANDROID',
      device_push_type: 'fcm',
      device_pin: 'fcm-registration-token-alice-0001',
      device_port: '100',
      phone_id: 'android-phone-alice',
      device_app_id: 'com.example.fixture',
      device_app_version: '1.0.0',
    };
    expect(await one(first.client(), (r) => registerClient(r, 'alice', client))).toEqual(
      recorded('13-client-create-register').keyspace_events,
    );
  });

  const products = {
    '1': { name: 'iPhone', brand: 'Apple', price: '199.99' },
    '2': { name: 'G2', brand: 'Android', price: '99.99' },
    '3': { name: 'Fuze', brand: 'HTC', price: '299.99' },
  };

  it('pushObjects: scenario 01, event for event, and the document holds the objects as RhoConnect stores them', async () => {
    expect(await one(first.client(), (r) => pushObjects(r, 'alice', 'Product', products))).toEqual(
      recorded('01-push-objects-new').keyspace_events,
    );
    expect(await first.client().smembers('source:application:alice:Product:md:35')).toEqual([
      '1:^rho&:name:iPhone:^rho&:brand:Apple:^rho&:price:199.99',
    ]);
    expect(await first.client().get('source:application:alice:Product:md_size')).toBe('3');
  });

  it('deviceCreate: scenario 14, queue run included, event for event (the empty update and delete queue runs left out)', async () => {
    const events = await one(first.client(), (r) =>
      deviceCreate(r, 'alice', 'f726a47f01d58cb5ec3e28978f2ce94e', 'Product', {
        srv101: { name: 'Nexus', brand: 'Google', price: '349.00' },
      }),
    );
    const expected = recorded('14-cud-create-from-device').keyspace_events.filter(
      ([key]) => !/^lock:source:application:Product:(update|delete)$/.test(key),
    );
    expect(events).toEqual(expected);
  });

  it('deviceSync: scenario 11, the same events on every key rhopush listens to', async () => {
    const watched = (events: Event[]) => events.filter(([key]) => parseKey(key).kind !== 'other');
    const events = await one(first.client(), (r) => deviceSync(r, 'alice', 'dac0b9d50c3738687f28806dc35804b8', 'Product', products));
    expect(watched(events)).toEqual(watched(recorded('11-query-sync').keyspace_events));
    expect(watched(events).length).toBeGreaterThan(0);
  });

  it('on two instances: locks on the first, the document on the second (scenario 17, per instance)', async () => {
    const [system, documents] = await eventsOf([first.client(), second.client()], () =>
      pushObjects(new RhoConnectInstances([first.client(), second.client()]), 'alice', 'Product', products),
    );
    const byInstance = recorded('17-multi-redis-push-objects').keyspace_events_by_instance!;
    expect(system).toEqual(byInstance['127.0.0.1:6401']);
    expect(documents).toEqual(byInstance['127.0.0.1:6402']);
  });

  it("places documents as RhoConnect's compute_store_index does", () => {
    expect(rhoconnectStoreIndex({ partition: 'alice', source: 'Product' }, 1)).toBe(0);
    expect(rhoconnectStoreIndex({ partition: '__shared__', source: 'Catalog' }, 3)).toBe(0);
    // SHA-1("alice:Product") starts with 5: 5 / (16 / 2) = 0, the first of two user stores: instance 1.
    expect(rhoconnectStoreIndex({ partition: 'alice', source: 'Product' }, 3)).toBe(1);
    const used = new Set(Array.from({ length: 40 }, (_, i) => rhoconnectStoreIndex({ partition: `user${i}`, source: 'Product' }, 4)));
    expect([...used].sort()).toEqual([1, 2, 3]);
  });
});

describe('settings built by the kit', () => {
  const dir = useScratchDir();

  it('parse to what the options say', () => {
    const s = buildSettings({
      redis: [7000, '10.0.0.2:7001'],
      cluster: true,
      apiToken: 'token',
      sources: { ...numberedSources(2), Shared: { partition: 'app', pushNotify: 'true' } },
      coalesceMs: 20,
      rhopush: { lease_ms: 900, queues: ['urgent', 'ping'], retry: { attempts: 2 } },
      env: { iphonepassphrase: 'true', push_server: 'http://u:p@127.0.0.1:1/' },
    });
    expect(s.redis.map((r) => `${r.host}:${r.port}`)).toEqual(['127.0.0.1:7000', '10.0.0.2:7001']);
    expect(s.environment).toBe('test');
    expect(s.apiToken).toBe('token');
    expect(s.rhopush).toMatchObject({
      cluster: true,
      delivery: 'log',
      coalesceMs: 20,
      queues: ['urgent', 'ping'],
      listen: { host: '127.0.0.1', port: 0 },
    });
    expect(s.rhopush.retry.attempts).toBe(2);
    expect(sourcePolicy(s, 'Source1')).toMatchObject({ pushNotify: true, partitionType: 'user' });
    expect(sourcePolicy(s, 'Shared').partitionType).toBe('app');
    // Strings that YAML would read as something else stay strings.
    expect(s.push.iphonePassphrase).toBe('true');
    expect(s.push.pushServer).toBe('http://u:p@127.0.0.1:1/');
    expect(s.warnings ?? []).toEqual([]);
  });

  it('leave out what is set to null, so that rhopush chooses', () => {
    const text = settingsYaml({ delivery: null, listen: null, pushNotify: null });
    expect(text).not.toMatch(/:delivery:|:listen:|^ {2}:push_notify:/m);
  });

  it('write the credential files they name next to the settings file', () => {
    const s = buildSettings(
      {
        apns: { endpoint: { address: '127.0.0.1', port: 1 }, key: { pem: 'KEY', keyId: 'K', teamId: 'T' } as never, topic: 'com.example' },
        fcm: { standIn: { address: '127.0.0.1', port: 2, projectId: 'p', serviceAccount: () => ({ project_id: 'p' }) } },
      },
      dir(),
    );
    expect(s.rhopush.delivery).toBe('log');
    expect(s.push.fcmProjectId).toBe('p');
    expect(readFileSync(join(dir(), 'AuthKey.p8'), 'utf8')).toBe('KEY');
    expect(readFileSync(join(dir(), 'ca.pem'), 'utf8')).toBe(LOOPBACK_CA);
    expect(JSON.parse(readFileSync(join(dir(), 'service-account.json'), 'utf8'))).toEqual({ project_id: 'p' });
    expect(existsSync(join(dir(), 'settings.yml'))).toBe(true);
  });
});

describe('the loopback TLS identity', () => {
  it('is a server certificate for the loopback and Google hosts, issued by the loopback CA, for its key, valid long after today', () => {
    const cert = new X509Certificate(LOOPBACK_TLS.cert);
    expect(cert.checkIssued(new X509Certificate(LOOPBACK_CA))).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(LOOPBACK_TLS.key))).toBe(true);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    for (const host of ['localhost', 'fcm.googleapis.com', 'oauth2.googleapis.com']) expect(cert.checkHost(host)).toBe(host);
    expect(new Date(cert.validFrom).getTime()).toBeLessThan(Date.now());
    expect(new Date(cert.validTo).getFullYear()).toBeGreaterThan(2100);
  });
});

describe('waitUntil', () => {
  it('resolves with what the check found', async () => {
    let calls = 0;
    expect(await waitUntil(() => (++calls >= 3 ? `after ${calls}` : undefined), { what: 'three calls', intervalMs: 1 })).toBe('after 3');
  });

  it('fails saying what it waited for', async () => {
    await expect(waitUntil(() => false, { what: 'something that never happens', timeoutMs: 30 })).rejects.toThrow(
      new WaitTimeoutError('timed out after 30 ms waiting for something that never happens'),
    );
  });

  it('stops at a check that throws, unless told to try again (then quotes the last error)', async () => {
    const failing = () => {
      throw new Error('not ready');
    };
    await expect(waitUntil(failing, { what: 'x', timeoutMs: 1000 })).rejects.toThrow(/^not ready$/);
    await expect(waitUntil(failing, { what: 'x', timeoutMs: 30, retryErrors: true })).rejects.toThrow(
      'timed out after 30 ms waiting for x (last error: not ready)',
    );
  });
});
