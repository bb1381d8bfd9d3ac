// FCM delivery through the real firebase-admin SDK (legacy HTTP/1.1 transport, rhopush's agent)
// against a loopback HTTPS stand-in for FCM HTTP v1 and Google's OAuth token endpoint.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { classifyFcmResult, FcmAdapter, fcmMessage } from '../src/push/fcm/fcm.js';
import { errorMessage } from '../src/errors.js';

const MISSING_FCM_PROJECT_ID = errorMessage('FCM_NO_PROJECT');
const MISSING_PACKAGE_NAME = errorMessage('FCM_NO_PACKAGE');
import { FirebaseFcmSender, type FcmSender } from '../src/push/fcm/fcm-sender.js';
import { silentLogger } from '../src/logger.js';
import type { Settings } from '../src/config/settings.js';
import { buildSettings, FcmStandIn, type YamlMap } from '../src/kit/index.js';
import { ping, pushRequest, recordingClock, useScratchDir } from './helpers/delivery.js';

const PROJECT = 'rhopush-fcm-test';
const PACKAGE = 'com.example.rhodes';

describe('FCM message (RhoConnect compatible)', () => {
  it('data values are strings, empty values left out, all → "all", body only with a message', () => {
    const m = fcmMessage(
      ping({ sources: 'all', vibrate: 2000 }),
      { id: 'c', device_pin: 'tok', phone_id: '' },
      { packageName: PACKAGE, collapseKey: 'k' },
    );
    expect(m).toEqual({
      token: 'tok',
      android: { priority: 'high', collapse_key: 'k', restricted_package_name: PACKAGE, data: { do_sync: 'all', vibrate: '2000' } },
    });
  });

  it('sorts SDK error codes into dead, retried and failed', () => {
    expect(classifyFcmResult({ ok: false, code: 'messaging/registration-token-not-registered', message: 'x' })).toEqual({
      done: { outcome: 'dead', reason: 'registration-token-not-registered' },
    });
    expect(classifyFcmResult({ ok: false, code: 'messaging/server-unavailable', message: 'x', retryAfterMs: 1000 })).toMatchObject({
      retryAfterMs: 1000,
    });
    expect(classifyFcmResult({ ok: false, code: 'app/network-error', message: 'x' })).toMatchObject({ retry: 'FCM app/network-error: x' });
    expect(classifyFcmResult({ ok: false, code: 'messaging/invalid-argument', message: 'bad' })).toEqual({
      done: { outcome: 'failed', reason: 'FCM invalid-argument: bad' },
    });
  });
});

describe('FCM through firebase-admin against the loopback stand-in', () => {
  const dir = useScratchDir();
  let standIn: FcmStandIn;
  let adapter: FcmAdapter | undefined;

  beforeAll(async () => {
    standIn = await FcmStandIn.start({ projectId: PROJECT });
  });
  afterEach(async () => {
    await adapter?.close();
    adapter = undefined;
    standIn.answerByDefault({ ok: true });
  });
  afterAll(() => standIn.close());

  function settings(fcmExtra: YamlMap = {}): Settings {
    return buildSettings(
      {
        delivery: 'live',
        rhopush: { retry: { attempts: 3, base_ms: 5, max_ms: 20 } },
        fcm: { standIn, packageName: PACKAGE, extra: fcmExtra },
      },
      dir(),
    );
  }

  it('sends the automatic ping as RhoConnect does, with a stable collapse key, via the OAuth token it fetched', async () => {
    const s = settings();
    adapter = new FcmAdapter(() => s, silentLogger);
    const before = standIn.messages.length;
    const results = await Promise.all([
      adapter.send(pushRequest('fcm', 'fcm-token-1', ping({ sources: ['Product'] }))),
      adapter.send(pushRequest('fcm', 'fcm-token-2', ping({ sources: ['Product'] }))),
    ]);
    expect(results).toEqual([{ outcome: 'sent' }, { outcome: 'sent' }]);
    const [a, b] = standIn.messages.slice(before);
    expect(a!.host).toBe('fcm.googleapis.com');
    expect(a!.project).toBe(PROJECT);
    expect(a!.message).toEqual({
      token: 'fcm-token-1',
      android: {
        priority: 'high',
        collapse_key: expect.stringMatching(/^sync-[0-9a-f]{24}$/),
        restricted_package_name: PACKAGE,
        data: { do_sync: 'Product' },
      },
    });
    expect((b!.message.android as { collapse_key: string }).collapse_key).toBe(
      (a!.message.android as { collapse_key: string }).collapse_key,
    );
    expect(standIn.tokenRequests).toBeGreaterThanOrEqual(1);
  });

  it('a ping with a message: notification body, string data, distinct collapse keys', async () => {
    const s = settings();
    adapter = new FcmAdapter(() => s, silentLogger);
    const before = standIn.messages.length;
    const p = ping({ sources: ['Product', 'Contact'], message: 'hello world', vibrate: 2000, sound: 'hello.mp3' });
    await adapter.send(pushRequest('fcm', 'fcm-token-3', p, { phone_id: 'android-phone-1' }));
    await adapter.send(pushRequest('fcm', 'fcm-token-4', p));
    const [a, b] = standIn.messages.slice(before);
    expect(a!.message).toEqual({
      token: 'fcm-token-3',
      android: {
        priority: 'high',
        collapse_key: expect.any(String),
        restricted_package_name: PACKAGE,
        data: { do_sync: 'Product,Contact', alert: 'hello world', vibrate: '2000', sound: 'hello.mp3', phone_id: 'android-phone-1' },
        notification: { body: 'hello world' },
      },
    });
    expect((b!.message.android as { collapse_key: string }).collapse_key).not.toBe(
      (a!.message.android as { collapse_key: string }).collapse_key,
    );
  });

  it('many devices go out in sendEach batches of at most 500', async () => {
    const s = settings();
    const batches: number[] = [];
    adapter = new FcmAdapter(() => s, silentLogger, {
      createSender: (options): FcmSender => {
        const real = new FirebaseFcmSender(options);
        return {
          sendEach: (messages) => {
            batches.push(messages.length);
            return real.sendEach(messages);
          },
          close: () => real.close(),
        };
      },
    });
    const before = standIn.messages.length;
    const p = ping({ sources: ['Product'] });
    const results = await Promise.all(Array.from({ length: 1200 }, (_, i) => adapter!.send(pushRequest('fcm', `bulk-${i}`, p))));
    expect(results.every((r) => r.outcome === 'sent')).toBe(true);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(1200);
    expect(Math.max(...batches)).toBeLessThanOrEqual(500);
    expect(batches.length).toBe(3);
    expect(new Set(standIn.messages.slice(before).map((m) => m.message.token)).size).toBe(1200);
  });

  it('UNREGISTERED is a dead token; INVALID_ARGUMENT fails without retry', async () => {
    const s = settings();
    adapter = new FcmAdapter(() => s, silentLogger);
    standIn.answerAlways('gone', { error: 'UNREGISTERED' });
    standIn.answerAlways('garbled', { error: 'INVALID_ARGUMENT' });
    const before = standIn.messages.length;
    expect(await adapter.send(pushRequest('fcm', 'gone', ping()))).toEqual({
      outcome: 'dead',
      reason: 'registration-token-not-registered',
    });
    expect(await adapter.send(pushRequest('fcm', 'garbled', ping()))).toEqual({
      outcome: 'failed',
      reason: 'FCM invalid-argument: The registration token is not a valid FCM registration token',
    });
    expect(standIn.messages.length - before).toBe(2);
  });

  it('UNAVAILABLE with Retry-After is retried after at least that long (the SDK does not retry on its own)', async () => {
    const { clock, sleeps } = recordingClock();
    const s = settings();
    adapter = new FcmAdapter(() => s, silentLogger, { clock });
    standIn.answerNext('busy', { error: 'UNAVAILABLE', retryAfter: 3 });
    expect(await adapter.send(pushRequest('fcm', 'busy', ping()))).toEqual({ outcome: 'sent', retries: 1 });
    expect(sleeps).toEqual([3000]);
    expect(standIn.messages.filter((m) => m.message.token === 'busy').map((m) => m.status)).toEqual([503, 200]);
  });

  it('retries stop at the attempt bound', async () => {
    const s = settings();
    adapter = new FcmAdapter(() => s, silentLogger);
    standIn.answerAlways('broken', { error: 'INTERNAL' });
    const result = await adapter.send(pushRequest('fcm', 'broken', ping()));
    expect(result).toEqual({
      outcome: 'failed',
      reason: 'FCM internal-error: Internal error encountered. (gave up after 3 attempts)',
      retries: 2,
    });
    expect(standIn.messages.filter((m) => m.message.token === 'broken')).toHaveLength(3);
  });

  it('a stalled FCM never leaves a push hanging: the batch deadline fails it, bounded by retries', async () => {
    const s = settings({ request_timeout_ms: 300 });
    adapter = new FcmAdapter(() => s, silentLogger);
    standIn.answerAlways('stuck', { stall: true });
    const result = await adapter.send(pushRequest('fcm', 'stuck', ping()));
    expect(result).toEqual({
      outcome: 'failed',
      reason: 'FCM rhopush/timeout: no answer within 300 ms (gave up after 3 attempts)',
      retries: 2,
    });
  });

  it("missing :fcm_project_id: / :package_name: fail that device's push with RhoConnect's messages", async () => {
    const s = settings();
    const before = standIn.messages.length;
    const noProject = { ...s, push: { ...s.push, fcmProjectId: undefined } };
    const noPackage = { ...s, push: { ...s.push, packageName: undefined } };
    adapter = new FcmAdapter(() => noProject, silentLogger);
    expect(await adapter.send(pushRequest('fcm', 't', ping()))).toEqual({ outcome: 'failed', reason: MISSING_FCM_PROJECT_ID });
    await adapter.close();
    adapter = new FcmAdapter(() => noPackage, silentLogger);
    expect(await adapter.send(pushRequest('fcm', 't', ping()))).toEqual({ outcome: 'failed', reason: MISSING_PACKAGE_NAME });
    expect(MISSING_FCM_PROJECT_ID).toBe('Missing `:fcm_project_id:` option in settings/settings.yml');
    expect(MISSING_PACKAGE_NAME).toBe('Missing `:package_name:` option in settings/settings.yml');
    expect(standIn.messages.length).toBe(before);
  });
});
