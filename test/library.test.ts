// The library call `ping()` (PingJob.perform's counterpart) against a real Redis.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ping, enqueuePing, PingError, PingParamsError, createDaemon } from '../src/index.js';
import { createUser, freePort, registerClient, settingsYaml } from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';
import { ADMIN_TOKEN, entrySettings, RecordingAdapters, userWithDevices } from './helpers/entry-points.js';

const redis = useRedisServer();
const dir = mkdtempSync(join(tmpdir(), 'rhopush-library-test-'));
let settingsFile: string;

beforeAll(async () => {
  await userWithDevices(redis.client(), 'alice');
  await createUser(redis.client(), 'carol');
  await registerClient(redis.client(), 'carol', {
    id: 'carol-bad',
    device_type: 'APPLE',
    device_pin: 'fail-carol-ios-token',
    phone_id: 'phone-carol-1',
  });
  await registerClient(redis.client(), 'carol', {
    id: 'carol-ok',
    device_type: 'fcm',
    device_pin: 'carol-fcm-token-0123456',
    phone_id: 'phone-carol-2',
  });
  settingsFile = join(dir, 'settings.yml');
  writeFileSync(settingsFile, settingsYaml({ redis: redis.server().port, apiToken: ADMIN_TOKEN }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ping()', () => {
  it("runs the ping with RhoConnect's settings.yml and resolves with every device push (log delivery)", async () => {
    const result = await ping(
      { user_id: 'alice', sources: ['Product'], message: 'There are new products!', vibrate: 2000 },
      { settings: settingsFile, environment: 'test', env: {} },
    );
    expect(result.users).toEqual(['alice']);
    expect(result.trigger).toBe('library');
    expect(result.pushes.map((p) => [p.platform, p.outcome]).sort()).toEqual([
      ['apple', 'logged'],
      ['fcm', 'logged'],
    ]);
    expect(result.errors).toEqual([]);
  });

  it('uses an open Redis connection and leaves it open', async () => {
    const connection = new Redis(redis.server().port, '127.0.0.1');
    const adapters = new RecordingAdapters();
    try {
      const result = await ping(
        { user_id: ['alice', 'nobody'], sources: 'all', badge: 1 },
        { settings: entrySettings(redis.server().port), redis: connection, adapters },
      );
      expect(result.skippedUsers).toEqual(['nobody']);
      expect(adapters.pushes.map((p) => p.ping.badge)).toEqual(['1', '1']);
      expect(connection.status).toBe('ready');
      expect(await connection.ping()).toBe('PONG');
    } finally {
      connection.disconnect();
    }
  });

  it('rejects with PingError carrying every message and the result when device pushes fail', async () => {
    const adapters = new RecordingAdapters();
    const failure = await ping({ user_id: 'carol' }, { settings: entrySettings(redis.server().port), adapters }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(PingError);
    const err = failure as PingError;
    expect(err.message).toBe('device fail-carol-ios-token refused the push');
    expect(err.result.pushes.map((p) => p.outcome).sort()).toEqual(['failed', 'sent']);
    // Every device was tried.
    expect(adapters.pushes).toHaveLength(2);
  });

  it('rejects bad parameters with PingParamsError naming the field, before touching Redis', async () => {
    const nowhere = await freePort();
    const settings = entrySettings(nowhere);
    await expect(ping({ user_id: 'alice', message: { html: true } as never }, { settings })).rejects.toThrow(PingParamsError);
    await expect(ping({ user_id: 'alice', message: { html: true } as never }, { settings })).rejects.toThrow(/^message: /);
  });

  it('rejects, instead of waiting forever, when Redis is unreachable', async () => {
    const nowhere = await freePort();
    await expect(ping({ user_id: 'alice' }, { settings: entrySettings(nowhere) })).rejects.toThrow(/ECONNREFUSED|not ready|Connection/);
  });

  it('pings through a running daemon when given one', async () => {
    const adapters = new RecordingAdapters();
    const daemon = createDaemon({ settings: entrySettings(redis.server().port), adapters, capture: false, http: false, queue: false });
    await daemon.start();
    try {
      const first = await ping({ user_id: 'alice' }, { daemon });
      const second = await ping({ user_id: 'alice', message: 'again' }, { daemon });
      expect(first.pushes).toHaveLength(2);
      expect(second.pushes).toHaveLength(2);
      expect(adapters.pushes.map((p) => p.ping.message)).toEqual([undefined, undefined, 'again', 'again']);
      // enqueuePing reuses the daemon's connection and settings too.
      const queued = await enqueuePing({ user_id: 'alice' }, { daemon });
      expect(queued.queue).toBe('ping');
      expect(await redis.client().llen('resque:queue:ping')).toBe(1);
    } finally {
      await daemon.stop();
    }
  });
});
