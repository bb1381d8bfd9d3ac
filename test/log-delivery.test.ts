// `log` delivery end to end: a push_objects-shaped write for a registered user gives one JSON
// line per device push with the platform, a shortened token and the exact payload.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createDaemon, type Daemon } from '../src/daemon.js';
import { createLogger } from '../src/logger.js';
import { createUser, pushObjects, registerClient, waitUntil } from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';
import { entrySettings } from './helpers/entry-points.js';

const redis = useRedisServer();

function collectingLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination }) };
}

let daemon: Daemon | undefined;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

describe('log delivery', () => {
  it('prints one JSON line per device push with the exact payload, token shortened', async () => {
    const r = redis.client();
    await r.flushall();
    await createUser(r, 'alice');
    await registerClient(r, 'alice', { id: 'c-apple', device_type: 'APPLE', device_pin: 'a1b2c3d4 e5f6a7b8 c9d0e1f2' });
    await registerClient(r, 'alice', {
      id: 'c-fcm',
      device_type: 'ANDROID',
      device_push_type: 'fcm',
      device_pin: 'fcm-registration-token-0001',
      phone_id: 'ph1',
    });
    await registerClient(r, 'alice', {
      id: 'c-rc',
      device_type: 'ANDROID',
      device_push_type: 'rhoconnect_push',
      device_pin: 'rhoconnect-push-pin-0001',
      phone_id: 'ph2',
    });
    const { lines, logger } = collectingLogger();
    const settings = entrySettings(redis.server().port, { coalesce_ms: 20 });
    daemon = createDaemon({ settings, logger });
    await daemon.start();

    await pushObjects(r, 'alice', 'Product', { '1': { name: 'iPhone' } });
    await pushObjects(r, 'alice', 'Catalog', { '9': { name: 'shared' } }); // app partition: no ping (written under alice only to prove settings win)

    const pushes = await waitUntil(
      () => {
        const found = lines.filter((l) => l.push);
        return found.length >= 3 ? found : undefined;
      },
      { what: 'a device push line per device' },
    );
    const byPlatform = Object.fromEntries(pushes.map((l) => [(l.push as { platform: string }).platform, l.push]));
    expect(byPlatform.apple).toMatchObject({
      user: 'alice',
      token: 'a1b2c3…e1f2',
      payload: { aps: { 'content-available': 1 }, do_sync: ['Product'] },
      pushType: 'background',
      priority: 5,
    });
    expect(byPlatform.fcm).toMatchObject({
      token: 'fcm-re…0001',
      payload: { android: { priority: 'high', data: { do_sync: 'Product', phone_id: 'ph1' } } },
    });
    expect((byPlatform.fcm as { payload: { android: object } }).payload.android).not.toHaveProperty('notification');
    // The same collapse identifiers live delivery sends: stable for a sync ping without a message.
    expect((byPlatform.fcm as { payload: { android: { collapse_key: string } } }).payload.android.collapse_key).toMatch(
      /^sync-[0-9a-f]{24}$/,
    );
    expect((byPlatform.apple as { collapseId: string }).collapseId).toMatch(/^sync-[0-9a-f]{24}$/);
    expect(byPlatform.rhoconnect_push).toMatchObject({ payload: { data: { do_sync: ['Product'] } } });
    const raw = JSON.stringify(lines);
    expect(raw).not.toContain('fcm-registration-token-0001');
    expect(raw).not.toContain('a1b2c3d4e5f6a7b8c9d0e1f2');
    const pings = lines.filter((l) => l.ping);
    expect(pings).toHaveLength(1);
    expect(pings[0]!.ping).toMatchObject({
      users: ['alice'],
      sources: ['Product'],
      trigger: 'auto',
      platforms: { apple: { logged: 1 }, fcm: { logged: 1 }, rhoconnect_push: { logged: 1 } },
    });
  });

  it('writes the seed example payload for a ping with a message', async () => {
    const r = redis.client();
    await r.flushall();
    await createUser(r, 'alice');
    await registerClient(r, 'alice', { id: 'c-apple', device_type: 'APPLE', device_pin: 'abcdef0123456789' });
    const { lines, logger } = collectingLogger();
    const settings = entrySettings(redis.server().port);
    daemon = createDaemon({ settings, logger, capture: false, http: false });
    await daemon.start();
    await daemon.ping({ user_id: ['alice'], sources: ['Product'], message: 'hello world', vibrate: 2000, sound: 'hello.mp3' }, 'library');
    const push = lines.find((l) => l.push)!.push as Record<string, unknown>;
    expect(JSON.stringify(push.payload)).toBe(
      '{"aps":{"alert":"hello world","sound":"hello.mp3","vibrate":"2000","content-available":1},"do_sync":["Product"]}',
    );
    expect(push).toMatchObject({ pushType: 'alert', priority: 10 });
  });
});
