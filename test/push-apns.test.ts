// APNs delivery against a loopback HTTP/2 TLS stand-in that checks what APNs checks.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { apnsNotification, apnsToken, ApnsAdapter, classifyApnsReply } from '../src/push/apns/apns.js';
import { apnsTarget, APNS_HOSTS } from '../src/push/apns/apns-target.js';
import { silentLogger } from '../src/logger.js';
import type { Settings } from '../src/config/settings.js';
import { ApnsStandIn, apnsTokenKey, buildSettings, hexToken, waitUntil, type YamlMap } from '../src/kit/index.js';
import { createTestAuthority } from '../src/kit/test-authority.js';
import { ping, pushRequest, recordingClock, useScratchDir } from './helpers/delivery.js';

const TOPIC = 'com.example.rhodes';

describe('APNs payload (RhoConnect compatible)', () => {
  it('automatic ping: content-available and do_sync only, background priority 5', () => {
    const n = apnsNotification(ping({ sources: ['Product'] }));
    expect(JSON.stringify(n.payload)).toBe('{"aps":{"content-available":1},"do_sync":["Product"]}');
    expect(n.pushType).toBe('background');
    expect(n.priority).toBe(5);
  });

  it("the seed's example: alert, sound, vibrate as a string, alert priority 10", () => {
    const n = apnsNotification(ping({ sources: ['Product'], message: 'hello world', vibrate: 2000, sound: 'hello.mp3' }));
    expect(JSON.stringify(n.payload)).toBe(
      '{"aps":{"alert":"hello world","sound":"hello.mp3","vibrate":"2000","content-available":1},"do_sync":["Product"]}',
    );
    expect(n.pushType).toBe('alert');
    expect(n.priority).toBe(10);
  });

  it('badge is an integer and makes the push visible; empty values are left out', () => {
    const n = apnsNotification(ping({ sources: [], badge: '3', message: '', sound: '' }));
    expect(JSON.stringify(n.payload)).toBe('{"aps":{"badge":3}}');
    expect(n.pushType).toBe('alert');
  });

  it('device token is device_pin with spaces removed', () => {
    expect(apnsToken('<ab cd ef>'.slice(1, -1))).toBe('abcdef');
  });
});

describe('APNs target (credentials, topic, environment)', () => {
  /** Live delivery, RhoConnect's keys `env` and `:rhopush: :apns:` keys `apns`, as written. */
  const live = (env: YamlMap = {}, apns?: YamlMap) => buildSettings({ delivery: 'live', env, rhopush: { apns } });
  it('token auth needs a topic; takes :topic: or the device_app_id', () => {
    const s = live({}, { token_key: 'key.p8', key_id: 'K', team_id: 'T' });
    expect(apnsTarget(s, { id: 'c' })).toEqual({ error: expect.stringContaining('Missing `:rhopush: :apns: :topic:`') });
    const t = apnsTarget(s, { id: 'c', device_app_id: 'com.app' });
    expect('error' in t ? t.error : t.topic).toBe('com.app');
  });

  it('per-app :iphonecertificates: win for their device_app_id, with that id as topic', () => {
    const s = live(
      { iphonecertfile: 'global.pem', iphonecertificates: { 'com.one': { iphonecertfile: 'one.pem', iphonepassphrase: 'secret' } } },
      { topic: 'com.global' },
    );
    const one = apnsTarget(s, { id: 'c', device_app_id: 'com.one' });
    const other = apnsTarget(s, { id: 'c', device_app_id: 'com.two' });
    if ('error' in one || 'error' in other) throw new Error('unexpected error');
    expect(one.auth).toEqual({ kind: 'certificate', certFile: 'one.pem', passphrase: 'secret', setting: ':iphonecertificates: com.one' });
    expect(one.topic).toBe('com.one');
    expect(other.auth).toMatchObject({ kind: 'certificate', certFile: 'global.pem' });
    expect(other.topic).toBe('com.global');
    expect(one.key).not.toBe(other.key);
  });

  it('environment: :production:, else :iphoneserver: (sandbox host means sandbox), else the environment name', () => {
    const env = (iphoneserver?: string, apns?: YamlMap) => {
      const t = apnsTarget(live({ iphonecertfile: 'c.pem', iphoneserver }, apns), { id: 'c' });
      if ('error' in t) throw new Error(t.error);
      return [t.production, t.address];
    };
    expect(env('gateway.sandbox.push.apple.com')).toEqual([false, APNS_HOSTS.sandbox]);
    expect(env('gateway.push.apple.com')).toEqual([true, APNS_HOSTS.production]);
    expect(env('gateway.sandbox.push.apple.com', { production: true })).toEqual([true, APNS_HOSTS.production]);
    expect(env()).toEqual([false, APNS_HOSTS.sandbox]);
  });

  it('no credentials: a clear message', () => {
    expect(apnsTarget(live(), { id: 'c' })).toEqual({
      error: 'Missing `:iphonecertfile:` or `:rhopush: :apns: :token_key:` option in settings/settings.yml',
    });
  });
});

describe('APNs answers', () => {
  it('sorts statuses into sent, dead, retried and failed', () => {
    expect(classifyApnsReply({ status: 200 })).toEqual({ done: { outcome: 'sent' } });
    expect(classifyApnsReply({ status: 410, reason: 'Unregistered' })).toEqual({ done: { outcome: 'dead', reason: 'Unregistered' } });
    expect(classifyApnsReply({ status: 400, reason: 'BadDeviceToken' })).toEqual({ done: { outcome: 'dead', reason: 'BadDeviceToken' } });
    expect(classifyApnsReply({ status: 400, reason: 'DeviceTokenNotForTopic' })).toEqual({
      done: { outcome: 'failed', reason: 'APNs 400 DeviceTokenNotForTopic' },
    });
    expect(classifyApnsReply({ status: 429, reason: 'TooManyRequests', retryAfterMs: 5000 })).toMatchObject({
      retry: 'APNs 429 TooManyRequests',
      retryAfterMs: 5000,
    });
    expect(classifyApnsReply({ status: 503, reason: 'ServiceUnavailable' })).toMatchObject({ retry: 'APNs 503 ServiceUnavailable' });
    expect(classifyApnsReply({ status: 403, reason: 'ExpiredProviderToken' })).toMatchObject({ retry: 'APNs 403 ExpiredProviderToken' });
    // A connection failure is retried on a fresh connection and never makes a token dead.
    expect(classifyApnsReply({ failure: 'socket hang up' })).toMatchObject({ reconnect: true, giveUp: { outcome: 'failed' } });
  });
});

describe('APNs over HTTP/2 with token auth', () => {
  const dir = useScratchDir();
  const key = apnsTokenKey();
  let standIn: ApnsStandIn;
  let adapter: ApnsAdapter | undefined;

  beforeAll(async () => {
    standIn = await ApnsStandIn.start({ token: key, topics: [TOPIC] });
  });
  afterEach(async () => {
    await adapter?.close();
    adapter = undefined;
    standIn.answerByDefault({ status: 200 });
  });
  afterAll(() => standIn.close());

  /** Paths relative to the settings file, as RhoConnect apps write them. */
  function settings(): Settings {
    return buildSettings(
      {
        delivery: 'live',
        rhopush: { retry: { attempts: 3, base_ms: 10, max_ms: 50, total_ms: 60000 } },
        apns: { endpoint: standIn, key, topic: TOPIC },
      },
      dir(),
    );
  }

  it('sends the automatic ping with the exact wire format and a valid ES256 provider token', async () => {
    const s = settings();
    adapter = new ApnsAdapter(() => s, silentLogger);
    const token = hexToken(0xa1);
    const before = standIn.requests.length;
    const result = await adapter.send(pushRequest('apple', token, ping({ sources: ['Product'] })));
    expect(result).toEqual({ outcome: 'sent' });
    const [req] = standIn.requests.slice(before);
    expect(req).toMatchObject({
      method: 'POST',
      path: `/3/device/${token}`,
      status: 200,
      auth: { kind: 'token', keyId: key.keyId, teamId: key.teamId },
      body: '{"aps":{"content-available":1},"do_sync":["Product"]}',
    });
    expect(req!.headers['apns-topic']).toBe(TOPIC);
    expect(req!.headers['apns-push-type']).toBe('background');
    expect(req!.headers['apns-priority']).toBe('5');
    expect(req!.headers['apns-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sync pings share a stable collapse id; pings with a message have none', async () => {
    const s = settings();
    adapter = new ApnsAdapter(() => s, silentLogger);
    const before = standIn.requests.length;
    await adapter.send(pushRequest('apple', hexToken(1), ping({ sources: ['Product'] })));
    await adapter.send(pushRequest('apple', hexToken(2), ping({ sources: ['Product'] })));
    await adapter.send(pushRequest('apple', hexToken(3), ping({ sources: ['Contact'] })));
    await adapter.send(
      pushRequest('apple', hexToken(4), ping({ sources: ['Product'], message: 'hello world', vibrate: 2000, sound: 'hello.mp3' })),
    );
    const [a, b, c, d] = standIn.requests.slice(before);
    expect(a!.headers['apns-collapse-id']).toMatch(/^sync-[0-9a-f]{24}$/);
    expect(b!.headers['apns-collapse-id']).toBe(a!.headers['apns-collapse-id']);
    expect(c!.headers['apns-collapse-id']).not.toBe(a!.headers['apns-collapse-id']);
    expect(d!.headers['apns-collapse-id']).toBeUndefined();
    expect(d!.headers['apns-push-type']).toBe('alert');
    expect(d!.headers['apns-priority']).toBe('10');
    expect(d!.body).toBe(
      '{"aps":{"alert":"hello world","sound":"hello.mp3","vibrate":"2000","content-available":1},"do_sync":["Product"]}',
    );
  });

  it('reuses one provider and one connection across pings, and closes it on shutdown', async () => {
    const s = settings();
    adapter = new ApnsAdapter(() => s, silentLogger);
    const connectionsBefore = standIn.connections;
    for (let i = 0; i < 3; i += 1) {
      await adapter.send(pushRequest('apple', hexToken(100 + i), ping()));
    }
    expect(standIn.connections - connectionsBefore).toBe(1);
    await adapter.close();
    adapter = undefined;
    await waitUntil(() => standIn.openConnections === 0, { what: 'the connection to close' });
  });

  it('410 Unregistered and 400 BadDeviceToken make the token dead; other 4xx fail without retry', async () => {
    const s = settings();
    adapter = new ApnsAdapter(() => s, silentLogger);
    standIn.answerAlways(hexToken(410), { status: 410, reason: 'Unregistered' });
    standIn.answerAlways(hexToken(400), { status: 400, reason: 'BadDeviceToken' });
    standIn.answerAlways(hexToken(401), { status: 400, reason: 'DeviceTokenNotForTopic' });
    const before = standIn.requests.length;
    expect(await adapter.send(pushRequest('apple', hexToken(410), ping()))).toEqual({ outcome: 'dead', reason: 'Unregistered' });
    expect(await adapter.send(pushRequest('apple', hexToken(400), ping()))).toEqual({ outcome: 'dead', reason: 'BadDeviceToken' });
    expect(await adapter.send(pushRequest('apple', hexToken(401), ping()))).toEqual({
      outcome: 'failed',
      reason: 'APNs 400 DeviceTokenNotForTopic',
    });
    expect(standIn.requests.length - before).toBe(3);
  });

  it('429 with Retry-After is retried after at least that long', async () => {
    const { clock, sleeps } = recordingClock();
    const s = settings();
    adapter = new ApnsAdapter(() => s, silentLogger, clock);
    const token = hexToken(429);
    standIn.answerNext(token, { status: 429, reason: 'TooManyRequests', retryAfter: 4 });
    const result = await adapter.send(pushRequest('apple', token, ping()));
    expect(result).toEqual({ outcome: 'sent', retries: 1 });
    expect(sleeps).toEqual([4000]);
    expect(standIn.requests.filter((r) => r.token === token).map((r) => r.status)).toEqual([429, 200]);
  });

  it('500s are retried until the attempt bound, then fail with the reason', async () => {
    const s = settings();
    adapter = new ApnsAdapter(() => s, silentLogger);
    const token = hexToken(500);
    standIn.answerAlways(token, { status: 500, reason: 'InternalServerError' });
    const result = await adapter.send(pushRequest('apple', token, ping()));
    expect(result).toEqual({ outcome: 'failed', reason: 'APNs 500 InternalServerError (gave up after 3 attempts)', retries: 2 });
    expect(standIn.requests.filter((r) => r.token === token)).toHaveLength(3);
  });

  it('an invalid provider token is reported, not retried', async () => {
    const other = apnsTokenKey(key.keyId, key.teamId);
    writeFileSync(join(dir(), 'WrongKey.p8'), other.pem);
    const s = settings();
    const wrong = { ...s, rhopush: { ...s.rhopush, apns: { ...s.rhopush.apns, tokenKey: 'WrongKey.p8' } } };
    adapter = new ApnsAdapter(() => wrong, silentLogger);
    expect(await adapter.send(pushRequest('apple', hexToken(7), ping()))).toEqual({
      outcome: 'failed',
      reason: 'APNs 403 InvalidProviderToken',
    });
  });

  it('an unreadable key file fails the push with the setting that named it', async () => {
    const s = settings();
    const missing = { ...s, rhopush: { ...s.rhopush, apns: { ...s.rhopush.apns, tokenKey: 'NoSuchKey.p8' } } };
    adapter = new ApnsAdapter(() => missing, silentLogger);
    const result = await adapter.send(pushRequest('apple', hexToken(8), ping()));
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/^APNs credentials: cannot read `:rhopush: :apns: :token_key:` file .*NoSuchKey\.p8 \(ENOENT\)$/);
  });
});

describe('APNs with RhoConnect certificate files', () => {
  const dir = useScratchDir();
  let standIn: ApnsStandIn;
  let adapter: ApnsAdapter | undefined;

  beforeAll(async () => {
    const authority = await createTestAuthority();
    standIn = await ApnsStandIn.start({ clientCa: authority.cert, certificateNames: ['rhopush global app', 'com.example.one'] });
    // RhoConnect's :iphonecertfile: holds the certificate and its private key in one PEM file.
    const pem = (name: string, c: { cert: string; key: string }) => writeFileSync(join(dir(), name), `${c.cert.trimEnd()}\n${c.key}`);
    pem('apple_push_cert.pem', await authority.clientCertificate('rhopush global app'));
    pem('one.pem', await authority.clientCertificate('com.example.one', 'one-secret'));
    pem('stranger.pem', await authority.clientCertificate('someone else'));
  });
  afterEach(async () => {
    await adapter?.close();
    adapter = undefined;
  });
  afterAll(() => standIn.close());

  function settings(certFile = 'apple_push_cert.pem'): Settings {
    const env = {
      iphonecertfile: certFile,
      iphonepassphrase: '',
      iphoneserver: 'gateway.sandbox.push.apple.com',
      iphoneport: 2195,
      iphonecertificates: { 'com.example.one': { iphonecertfile: 'one.pem', iphonepassphrase: 'one-secret' } },
    };
    return buildSettings({ env, delivery: 'live', apns: { endpoint: standIn } }, dir());
  }

  it('authenticates with :iphonecertfile:; without a topic APNs takes it from the certificate', async () => {
    const s = settings();
    adapter = new ApnsAdapter(() => s, silentLogger);
    const before = standIn.requests.length;
    expect(await adapter.send(pushRequest('apple', hexToken(11), ping()))).toEqual({ outcome: 'sent' });
    const [req] = standIn.requests.slice(before);
    expect(req!.auth).toEqual({ kind: 'certificate', commonName: 'rhopush global app' });
    expect(req!.headers['apns-topic']).toBeUndefined();
    expect(req!.headers.authorization).toBeUndefined();
  });

  it('uses the per-app certificate (with its passphrase) for that device_app_id, topic = device_app_id', async () => {
    const s = settings();
    adapter = new ApnsAdapter(() => s, silentLogger);
    const before = standIn.requests.length;
    const sent = await adapter.send(pushRequest('apple', hexToken(12), ping(), { device_app_id: 'com.example.one' }));
    const other = await adapter.send(pushRequest('apple', hexToken(13), ping(), { device_app_id: 'com.example.two' }));
    expect([sent, other]).toEqual([{ outcome: 'sent' }, { outcome: 'sent' }]);
    const [one, two] = standIn.requests.slice(before);
    expect(one!.auth).toEqual({ kind: 'certificate', commonName: 'com.example.one' });
    expect(one!.headers['apns-topic']).toBe('com.example.one');
    expect(two!.auth).toEqual({ kind: 'certificate', commonName: 'rhopush global app' });
    expect(two!.headers['apns-topic']).toBe('com.example.two');
  });

  it('a wrong passphrase fails the push at once, naming the setting', async () => {
    const s = settings();
    const wrong = { ...s, push: { ...s.push, iphoneCertificates: { 'com.example.one': { certFile: 'one.pem', passphrase: 'not-it' } } } };
    adapter = new ApnsAdapter(() => wrong, silentLogger);
    const before = standIn.connections;
    const result = await adapter.send(pushRequest('apple', hexToken(15), ping(), { device_app_id: 'com.example.one' }));
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/^APNs credentials: `:iphonecertificates: com\.example\.one`: .*bad decrypt \(wrong passphrase\?\)$/);
    expect(standIn.connections).toBe(before);
  });

  it('a certificate APNs does not accept fails the push', async () => {
    const s = settings('stranger.pem');
    adapter = new ApnsAdapter(() => s, silentLogger);
    expect(await adapter.send(pushRequest('apple', hexToken(14), ping()))).toEqual({
      outcome: 'failed',
      reason: 'APNs 403 BadCertificate',
    });
  });
});

describe('APNs sessions heal themselves', () => {
  const dir = useScratchDir();
  const key = apnsTokenKey();
  let standIn: ApnsStandIn;
  let adapter: ApnsAdapter | undefined;

  beforeAll(async () => {
    standIn = await ApnsStandIn.start({ token: key });
  });
  afterEach(async () => {
    await adapter?.close();
    adapter = undefined;
    standIn.resume();
  });
  afterAll(() => standIn.close());

  function settings(requestTimeoutMs: number, pingIntervalMs = 60_000, attempts = 3): Settings {
    return buildSettings(
      {
        delivery: 'live',
        rhopush: { retry: { attempts, base_ms: 10, max_ms: 20 } },
        apns: { endpoint: standIn, key, topic: TOPIC, extra: { request_timeout_ms: requestTimeoutMs, ping_interval_ms: pingIntervalMs } },
      },
      dir(),
    );
  }

  it('a request the server never answers misses its deadline and is retried once on a fresh connection', async () => {
    const s = settings(300);
    adapter = new ApnsAdapter(() => s, silentLogger);
    const token = hexToken(0x5a11);
    standIn.answerNext(token, { stall: true });
    const connectionsBefore = standIn.connections;
    const result = await adapter.send(pushRequest('apple', token, ping()));
    expect(result).toEqual({ outcome: 'sent', retries: 1 });
    const tries = standIn.requests.filter((r) => r.token === token);
    expect(tries).toHaveLength(2);
    expect(tries[1]!.connection).not.toBe(tries[0]!.connection);
    expect(standIn.connections - connectionsBefore).toBe(2);
  });

  it('a server that stops answering altogether: every send settles, failed at the attempt bound', async () => {
    const s = settings(200, 60_000, 2);
    adapter = new ApnsAdapter(() => s, silentLogger);
    standIn.stall();
    const results = await Promise.all([1, 2, 3].map((i) => adapter!.send(pushRequest('apple', hexToken(0x600 + i), ping()))));
    for (const r of results) {
      expect(r.outcome).toBe('failed');
      expect(r.reason).toMatch(/^APNs connection: .*\(gave up after 2 attempts\)$/);
      expect(r.retries).toBe(1);
    }
  });

  it('an endpoint that accepts TCP but never completes TLS: the push still settles', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const s = settings(300, 60_000, 2);
    const port = (silent.address() as net.AddressInfo).port;
    const blackhole = { ...s, rhopush: { ...s.rhopush, apns: { ...s.rhopush.apns, port } } };
    adapter = new ApnsAdapter(() => blackhole, silentLogger);
    try {
      const result = await adapter.send(pushRequest('apple', hexToken(0x901), ping()));
      expect(result).toMatchObject({ outcome: 'failed', retries: 1 });
      expect(result.reason).toMatch(/^APNs connection: .*\(gave up after 2 attempts\)$/);
    } finally {
      await adapter.close();
      adapter = undefined;
      silent.close();
    }
  });

  it('GOAWAY with requests in flight: they fail over to a new connection and are delivered', async () => {
    const s = settings(5_000);
    adapter = new ApnsAdapter(() => s, silentLogger);
    standIn.stall();
    const tokens = [1, 2, 3, 4, 5].map((i) => hexToken(0x700 + i));
    const sends = tokens.map((t) => adapter!.send(pushRequest('apple', t, ping())));
    await waitUntil(() => standIn.heldCount === 5, { what: 'five requests held by the server' });
    const connectionsBefore = standIn.connections;
    // The server drops the held requests with GOAWAY; their retries are answered once it resumes.
    standIn.goAway();
    standIn.resume();
    const results = await Promise.all(sends);
    expect(results.every((r) => r.outcome === 'sent' && (r.retries ?? 0) >= 1)).toBe(true);
    expect(standIn.connections).toBeGreaterThan(connectionsBefore);
    for (const t of tokens) expect(standIn.delivered().filter((r) => r.token === t)).toHaveLength(1);
  });

  it('a connection silently dropped while idle is found by PING and replaced; the next push goes out', async () => {
    const s = settings(10_000, 150);
    adapter = new ApnsAdapter(() => s, silentLogger);
    expect(await adapter.send(pushRequest('apple', hexToken(0x801), ping()))).toEqual({ outcome: 'sent' });
    expect(standIn.openConnections).toBe(1);
    standIn.dropConnectionsSilently();
    // Nothing is sent meanwhile: only an unanswered PING can make rhopush give the connection up.
    await waitUntil(() => standIn.openConnections === 0, { what: 'rhopush to drop the dead connection' });
    const connectionsBefore = standIn.connections;
    expect(await adapter.send(pushRequest('apple', hexToken(0x802), ping()))).toEqual({ outcome: 'sent' });
    expect(standIn.connections - connectionsBefore).toBe(1);
  });
});
