// Dead tokens in rhopush's own Redis keys and the feedback stream, against a real redis-server and
// the loopback APNs stand-in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPushAdapters, type PushAdapters } from '../src/push/registry.js';
import { deadTokenKey, DeadTokenStore } from '../src/push/dead-tokens.js';
import { FEEDBACK_STREAM, readFeedback } from '../src/push/feedback.js';
import { silentLogger } from '../src/logger.js';
import type { Settings } from '../src/config/settings.js';
import { ApnsStandIn, apnsTokenKey, buildSettings, createUser, hexToken, registerClient } from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';
import { ping, useScratchDir } from './helpers/delivery.js';
import type { DevicePushRequest } from '../src/push/adapter.js';

const TOPIC = 'com.example.rhodes';

describe('dead tokens', () => {
  const redis = useRedisServer();
  const dir = useScratchDir();
  const key = apnsTokenKey();
  let standIn: ApnsStandIn;
  let settings: Settings;
  let adapters: PushAdapters;

  beforeAll(async () => {
    standIn = await ApnsStandIn.start({ token: key });
    settings = buildSettings(
      {
        redis: redis.server().port,
        delivery: 'live',
        rhopush: { dead_token_ttl_days: 30, feedback_max_len: 3, retry: { attempts: 2, base_ms: 5 } },
        apns: { endpoint: standIn, key, topic: TOPIC, extra: { request_timeout_ms: 2000 } },
      },
      dir(),
    );
    adapters = createPushAdapters(() => settings, silentLogger, redis.client());
  });
  afterAll(async () => {
    await adapters.close();
    await standIn.close();
  });

  const request = (token: string, clientId: string, user = 'alice'): DevicePushRequest => ({
    platform: 'apple',
    user,
    client: { id: clientId, device_type: 'APPLE', device_pin: token },
    token,
    ping: ping(),
  });

  it('a 410 marks the token dead in rhopush keys only, feeds the stream, and later pings skip it', async () => {
    const r = redis.client();
    const dead = hexToken(0xdead);
    await createUser(r, 'alice');
    await registerClient(r, 'alice', { id: 'c-dead', device_type: 'APPLE', device_pin: dead });
    const keysBefore = new Set(await r.keys('*'));
    const clientBefore = await r.mget('client:c-dead:device_pin', 'client:c-dead:device_type');
    standIn.answerAlways(dead, { status: 410, reason: 'Unregistered' });

    const apple = adapters.adapterFor('apple');
    expect(await apple.send(request(dead, 'c-dead'))).toEqual({ outcome: 'dead', reason: 'Unregistered' });

    const record = await r.hgetall(deadTokenKey('apple', dead));
    expect(record).toEqual({
      platform: 'apple',
      reason: 'Unregistered',
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      user: 'alice',
      client: 'c-dead',
    });
    const ttl = await r.ttl(deadTokenKey('apple', dead));
    expect(ttl).toBeGreaterThan(29 * 86_400);
    expect(ttl).toBeLessThanOrEqual(30 * 86_400);
    const [entry] = await readFeedback(r);
    expect(entry).toMatchObject({ token: dead, platform: 'apple', reason: 'Unregistered', user: 'alice', client: 'c-dead' });

    // Nothing of RhoConnect's was written: every new key is rhopush's own, the client is untouched.
    const added = (await r.keys('*')).filter((k) => !keysBefore.has(k));
    expect(added.sort()).toEqual([FEEDBACK_STREAM, deadTokenKey('apple', dead)].sort());
    expect(await r.mget('client:c-dead:device_pin', 'client:c-dead:device_type')).toEqual(clientBefore);

    const sentBefore = standIn.requests.filter((q) => q.token === dead).length;
    expect(await apple.send(request(dead, 'c-dead'))).toEqual({ outcome: 'skipped-dead', reason: `Unregistered since ${record.at}` });
    expect(standIn.requests.filter((q) => q.token === dead)).toHaveLength(sentBefore);

    // The device registers again with a new device_pin: it is pinged at once.
    expect(await apple.send(request(hexToken(0xbeef), 'c-dead'))).toEqual({ outcome: 'sent' });
  });

  it('400 BadDeviceToken is dead too; the feedback stream stays capped at :feedback_max_len:', async () => {
    const r = redis.client();
    const tokens = [1, 2, 3, 4, 5].map((i) => hexToken(0xbad00 + i));
    for (const t of tokens) standIn.answerAlways(t, { status: 400, reason: 'BadDeviceToken' });
    const apple = adapters.adapterFor('apple');
    for (const [i, t] of tokens.entries()) {
      expect(await apple.send(request(t, `c-bad-${i}`))).toEqual({ outcome: 'dead', reason: 'BadDeviceToken' });
    }
    expect(await r.xlen(FEEDBACK_STREAM)).toBe(3);
    expect((await readFeedback(r)).map((e) => e.token)).toEqual(tokens.slice(2));
  });

  it('a backend consumes the feedback durably with a consumer group', async () => {
    const r = redis.client();
    await r.xgroup('CREATE', FEEDBACK_STREAM, 'backend', '0');
    const gone = hexToken(0x9012);
    standIn.answerAlways(gone, { status: 410, reason: 'Unregistered' });
    await adapters.adapterFor('apple').send(request(gone, 'c-gone', 'bob'));
    const reply = (await r.xreadgroup('GROUP', 'backend', 'worker-1', 'COUNT', 10, 'STREAMS', FEEDBACK_STREAM, '>')) as [
      string,
      [string, string[]][],
    ][];
    const entries = reply[0]![1].map(([, fields]) =>
      Object.fromEntries(fields.flatMap((_, i) => (i % 2 ? [] : [[fields[i], fields[i + 1]]]))),
    );
    expect(entries.at(-1)).toMatchObject({ token: gone, platform: 'apple', reason: 'Unregistered', user: 'bob', client: 'c-gone' });
  });

  it('connection failures never mark a token dead', async () => {
    const r = redis.client();
    const unreachable = { ...settings, rhopush: { ...settings.rhopush, apns: { ...settings.rhopush.apns, port: 1 } } };
    const local = createPushAdapters(() => unreachable, silentLogger, r);
    const token = hexToken(0xc0ffee);
    try {
      const result = await local.adapterFor('apple').send(request(token, 'c-x'));
      expect(result.outcome).toBe('failed');
      expect(result.reason).toMatch(/^APNs connection: .*ECONNREFUSED.*\(gave up after 2 attempts\)$/);
    } finally {
      await local.close();
    }
    expect(await r.exists(deadTokenKey('apple', token))).toBe(0);
  });

  it('log delivery never sends and never reads dead tokens', async () => {
    const logged = { ...settings, rhopush: { ...settings.rhopush, delivery: 'log' as const } };
    const local = createPushAdapters(() => logged, silentLogger, redis.client());
    const before = standIn.requests.length;
    expect(await local.adapterFor('apple').send(request(hexToken(0xdead), 'c-dead'))).toEqual({ outcome: 'logged' });
    expect(standIn.requests.length).toBe(before);
    await local.close();
  });

  it('DeadTokenStore.forget lets an operator bring a token back', async () => {
    const store = new DeadTokenStore(redis.client(), () => ({ ttlDays: 1, feedbackMaxLen: 10 }));
    await store.record({
      token: 't1',
      platform: 'fcm',
      reason: 'registration-token-not-registered',
      user: 'u',
      client: 'c',
      at: new Date().toISOString(),
    });
    expect(await store.find('fcm', 't1')).toMatchObject({ reason: 'registration-token-not-registered' });
    expect(await store.forget('fcm', 't1')).toBe(true);
    expect(await store.find('fcm', 't1')).toBeUndefined();
  });
});
