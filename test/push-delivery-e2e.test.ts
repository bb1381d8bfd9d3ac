// End to end: the real daemon on a real Redis, live delivery to the loopback APNs and FCM
// stand-ins. A recorded plugin write (fixture 01) reaches the device with the automatic-ping body;
// a dead token is skipped on the next ping; retries stop at their bound.
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDaemon, type Daemon } from '../src/daemon.js';
import type { PingResult } from '../src/ping/ping-job.js';
import { deadTokenKey } from '../src/push/dead-tokens.js';
import { readFeedback } from '../src/push/feedback.js';
import { silentLogger } from '../src/logger.js';
import { writeFilter } from '../src/replay/replay.js';
import { ApnsStandIn, apnsTokenKey, buildSettings, FcmStandIn, pushObjects, registerClient, waitUntil } from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';
import { useScratchDir } from './helpers/delivery.js';

interface FixtureCommand {
  cmd: string[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/rhoconnect/01-push-objects-new.json', import.meta.url), 'utf8')) as {
  setup: FixtureCommand[];
  commands: FixtureCommand[];
};

const TOPIC = 'com.example.fixture';
/** As some apps register it: hex groups separated by spaces (RhoConnect removes the spaces). */
const ALICE_APPLE_PIN = '1f2e3d4c 5b6a7988 a7b6c5d4 e3f2a1b0 0a1b2c3d 4e5f6a7b 8c9d0e1f 2a3b4c5d';
const ALICE_APPLE_TOKEN = ALICE_APPLE_PIN.replace(/ /g, '');
const BOB_APPLE_TOKEN = '3c5a9f0e7d2b4c61a8e9f0d1c2b3a4958e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b';
const ALICE_FCM_TOKEN = 'fcm-registration-token-alice-0001';

/** Replays a fixture's writes (reads are skipped: Redis says which commands are read-only). */
async function replayWrites(redis: Redis, commands: FixtureCommand[]): Promise<void> {
  const isWrite = await writeFilter(redis);
  for (const { cmd } of commands) {
    const [name, ...args] = cmd as [string, ...string[]];
    if (await isWrite(name)) await redis.call(name, ...args);
  }
}

describe('live delivery through the daemon', () => {
  const redis = useRedisServer();
  const dir = useScratchDir();
  const key = apnsTokenKey();
  let apns: ApnsStandIn;
  let fcm: FcmStandIn;
  let daemon: Daemon;
  const pings: PingResult[] = [];

  beforeAll(async () => {
    apns = await ApnsStandIn.start({ token: key, topics: [TOPIC] });
    fcm = await FcmStandIn.start({ projectId: 'fixture-project' });
    // No :delivery: key: with push credentials rhopush delivers live by default.
    const settings = buildSettings(
      {
        redis: redis.server().port,
        sources: { Product: { partition: 'user', pushNotify: 'true' }, Contact: { partition: 'user', pushNotify: 'true' } },
        env: { iphoneserver: 'gateway.sandbox.push.apple.com' },
        delivery: null,
        coalesceMs: 20,
        maxDelayMs: 200,
        rhopush: { retry: { attempts: 3, base_ms: 5, max_ms: 20 } },
        apns: { endpoint: apns, key, topic: TOPIC },
        fcm: { standIn: fcm, packageName: 'com.example.fixture' },
      },
      dir(),
    );
    expect(settings.rhopush.delivery).toBe('live');

    // RhoConnect's state before the plugin call: users and devices as the fixture recorded them
    // (alice on FCM, bob on APPLE), plus an iPhone for alice and a legacy GCM registration.
    await replayWrites(redis.client(), fixture.setup);
    await registerClient(redis.client(), 'alice', {
      id: 'alice-iphone',
      device_type: 'APPLE',
      device_pin: ALICE_APPLE_PIN,
      device_port: '100',
      device_app_id: TOPIC,
      last_sync: '2026-11-27T19:11:16+0000',
    });
    await registerClient(redis.client(), 'alice', {
      id: 'alice-old-android',
      device_type: 'ANDROID',
      device_push_type: 'gcm',
      device_pin: 'legacy-gcm-token',
    });

    daemon = createDaemon({ settings, logger: silentLogger, onPing: (r) => pings.push(r) });
    await daemon.start();
  });
  afterAll(async () => {
    await daemon?.stop();
    await apns?.close();
    await fcm?.close();
  });

  async function settle(): Promise<void> {
    await daemon.capture!.barrier();
    daemon.window.flushAll();
    await daemon.drain();
  }

  it("fixture 01's push_objects reaches the iPhone with RhoConnect's automatic-ping body, and the Android devices through FCM", async () => {
    expect(daemon.apiAddress?.port).toBeGreaterThan(0);
    await replayWrites(redis.client(), fixture.commands);
    await waitUntil(() => pings.length >= 1, { what: 'the automatic ping' });
    await settle();

    const [req, ...more] = apns.requests;
    expect(more).toHaveLength(0);
    expect(req).toMatchObject({
      method: 'POST',
      path: `/3/device/${ALICE_APPLE_TOKEN}`,
      status: 200,
      body: '{"aps":{"content-available":1},"do_sync":["Product"]}',
      auth: { kind: 'token', keyId: key.keyId },
    });
    expect(req!.headers).toMatchObject({ 'apns-topic': TOPIC, 'apns-push-type': 'background', 'apns-priority': '5' });

    expect(fcm.messages.map((m) => m.message.token).sort()).toEqual([ALICE_FCM_TOKEN, 'legacy-gcm-token']);
    const fixtureDevice = fcm.messages.find((m) => m.message.token === ALICE_FCM_TOKEN)!;
    expect(fixtureDevice.message.android).toMatchObject({
      priority: 'high',
      restricted_package_name: 'com.example.fixture',
      data: { do_sync: 'Product', phone_id: 'android-phone-alice' },
    });

    const ping = pings[0]!;
    expect(ping).toMatchObject({ users: ['alice'], sources: ['Product'], trigger: 'auto', errors: [] });
    expect(ping.pushes.map((p) => [p.platform, p.clientId, p.outcome]).sort()).toEqual(
      [
        ['apple', 'alice-iphone', 'sent'],
        ['fcm', '1249fafe73682378b3554bdcf4e99640', 'sent'],
        ['fcm', 'alice-old-android', 'sent'],
      ].sort(),
    );
    // Tokens are shortened in results (and so in logs).
    for (const p of ping.pushes) expect(p.token).toMatch(/…/);
    expect(JSON.stringify(ping)).not.toContain(ALICE_APPLE_TOKEN);
  });

  it('a token APNs reports dead is recorded and skipped on the next ping', async () => {
    apns.answerAlways(BOB_APPLE_TOKEN, { status: 410, reason: 'Unregistered' });
    pings.length = 0;
    await pushObjects(redis.client(), 'bob', 'Product', { '10': { name: 'Pixel' } });
    await waitUntil(() => pings.length >= 1, { what: "bob's first ping" });
    await settle();
    expect(pings[0]!.pushes).toEqual([
      expect.objectContaining({ platform: 'apple', user: 'bob', outcome: 'dead', reason: 'Unregistered' }),
    ]);
    expect(await redis.client().exists(deadTokenKey('apple', BOB_APPLE_TOKEN))).toBe(1);
    expect((await readFeedback(redis.client())).map((e) => [e.token, e.user, e.client])).toEqual([
      [BOB_APPLE_TOKEN, 'bob', '112c97a7d063ea257ba6a3a1a1bcddd9'],
    ]);

    const tries = apns.requests.filter((r) => r.token === BOB_APPLE_TOKEN).length;
    pings.length = 0;
    await pushObjects(redis.client(), 'bob', 'Contact', { '11': { name: 'Ann' } });
    await waitUntil(() => pings.length >= 1, { what: "bob's second ping" });
    await settle();
    expect(pings[0]!.pushes).toEqual([expect.objectContaining({ platform: 'apple', user: 'bob', outcome: 'skipped-dead' })]);
    expect(apns.requests.filter((r) => r.token === BOB_APPLE_TOKEN)).toHaveLength(tries);
    expect(await redis.client().get('client:112c97a7d063ea257ba6a3a1a1bcddd9:device_pin')).toBe(BOB_APPLE_TOKEN);
  });

  it('retries stop at the bound and the failure is reported with the retry count', async () => {
    apns.answerAlways(ALICE_APPLE_TOKEN, { status: 503, reason: 'ServiceUnavailable' });
    const before = apns.requests.filter((r) => r.token === ALICE_APPLE_TOKEN).length;
    const result = await daemon.ping({ user_id: 'alice', sources: ['Product'], message: 'hello world' }, 'library');
    const apple = result.pushes.find((p) => p.platform === 'apple')!;
    expect(apple).toMatchObject({ outcome: 'failed', reason: 'APNs 503 ServiceUnavailable (gave up after 3 attempts)', retries: 2 });
    expect(result.errors).toEqual(['APNs 503 ServiceUnavailable (gave up after 3 attempts)']);
    expect(apns.requests.filter((r) => r.token === ALICE_APPLE_TOKEN).length - before).toBe(3);
    // The Android devices were still delivered.
    expect(result.pushes.filter((p) => p.platform === 'fcm').map((p) => p.outcome)).toEqual(['sent', 'sent']);
  });
});
