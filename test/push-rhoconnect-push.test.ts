// RhoConnect Push delivery against a loopback HTTP stand-in that checks basic auth and the body.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RhoconnectPushAdapter, rhoconnectPushRequest } from '../src/push/rhoconnect-push.js';
import { errorMessage } from '../src/errors.js';

const INVALID_PUSH_REQUEST = errorMessage('PUSH_REQUEST_INVALID');
const MISSING_PUSH_SERVER = errorMessage('PUSH_SERVER_INVALID');
import { silentLogger } from '../src/logger.js';
import type { Settings } from '../src/config/settings.js';
import { buildSettings, PushStandIn } from '../src/kit/index.js';
import { ping, pushRequest, recordingClock } from './helpers/delivery.js';

describe('RhoConnect Push request', () => {
  it('POSTs to /messageQueue/<device_pin> on the server, basic auth from the userinfo', () => {
    expect(rhoconnectPushRequest('http://app%40x:p%3Ass@push.example:8675/ignored/path', 'pin 1')).toEqual({
      url: 'http://push.example:8675/messageQueue/pin%201',
      authorization: `Basic ${Buffer.from('app@x:p:ss').toString('base64')}`,
    });
    expect(rhoconnectPushRequest('https://push.example/', 'p')).toEqual({ url: 'https://push.example/messageQueue/p' });
    expect(rhoconnectPushRequest('not a url', 'p')).toBeUndefined();
    expect(rhoconnectPushRequest('ftp://push.example', 'p')).toBeUndefined();
  });
});

describe('RhoConnect Push through a loopback server', () => {
  let server: PushStandIn;
  let adapter: RhoconnectPushAdapter;

  beforeAll(async () => {
    server = await PushStandIn.start({ credentials: 'rhoapp:s3cret' });
  });
  afterEach(() => server.answerByDefault({ status: 200 }));
  afterAll(() => server.close());

  function settings(pushServer: string | null = server.url, timeoutMs = 10_000): Settings {
    return buildSettings({
      pushServer: pushServer ?? undefined,
      delivery: 'live',
      rhopush: { retry: { attempts: 3, base_ms: 5, max_ms: 20 }, rhoconnect_push: { request_timeout_ms: timeoutMs } },
    });
  }

  it("sends RhoConnect's body with basic auth; 200 and 204 are success", async () => {
    const s = settings();
    adapter = new RhoconnectPushAdapter(() => s, silentLogger);
    const before = server.requests.length;
    const p = ping({ sources: ['Product', 'Contact'], message: 'hello world', vibrate: 2000, sound: 'hello.mp3', badge: 5 });
    expect(await adapter.send(pushRequest('rhoconnect_push', 'rps-pin-1', p))).toEqual({ outcome: 'sent' });
    server.answerNext('rps-pin-2', { status: 204 });
    expect(await adapter.send(pushRequest('rhoconnect_push', 'rps-pin-2', ping({ sources: ['Product'] })))).toEqual({ outcome: 'sent' });
    const [a, b] = server.requests.slice(before);
    expect(a).toMatchObject({ method: 'POST', path: '/messageQueue/rps-pin-1', credentials: 'rhoapp:s3cret', status: 200 });
    expect(a!.contentType).toMatch(/^application\/json/);
    expect(JSON.parse(a!.body)).toEqual({
      collapseId: 5,
      data: { alert: 'hello world', sound: 'hello.mp3', vibrate: '2000', do_sync: ['Product', 'Contact'] },
    });
    expect(JSON.parse(b!.body)).toEqual({ data: { do_sync: ['Product'] } });
    expect(b!.status).toBe(204);
  });

  it('400 fails with "Invalid push request." and is not retried', async () => {
    const s = settings();
    adapter = new RhoconnectPushAdapter(() => s, silentLogger);
    server.answerNext('rps-bad', { status: 400 });
    const before = server.requests.length;
    expect(await adapter.send(pushRequest('rhoconnect_push', 'rps-bad', ping()))).toEqual({
      outcome: 'failed',
      reason: INVALID_PUSH_REQUEST,
    });
    expect(server.requests.length - before).toBe(1);
  });

  it('wrong credentials: the 401 is reported', async () => {
    const s = settings(server.url.replace('s3cret', 'wrong'));
    adapter = new RhoconnectPushAdapter(() => s, silentLogger);
    expect(await adapter.send(pushRequest('rhoconnect_push', 'rps-x', ping()))).toEqual({
      outcome: 'failed',
      reason: 'RhoConnect Push server answered 401',
    });
  });

  it('503 with Retry-After is retried after at least that long; retries stop at the bound', async () => {
    const { clock, sleeps } = recordingClock();
    const s = settings();
    adapter = new RhoconnectPushAdapter(() => s, silentLogger, clock);
    server.answerNext('rps-busy', { status: 503, retryAfter: 2 });
    expect(await adapter.send(pushRequest('rhoconnect_push', 'rps-busy', ping()))).toEqual({ outcome: 'sent', retries: 1 });
    expect(sleeps).toEqual([2000]);
    server.answerNext('rps-down', { status: 500 }, { status: 500 }, { status: 500 }, { status: 500 });
    expect(await adapter.send(pushRequest('rhoconnect_push', 'rps-down', ping()))).toEqual({
      outcome: 'failed',
      reason: 'RhoConnect Push server answered 500 (gave up after 3 attempts)',
      retries: 2,
    });
    expect(server.requests.filter((r) => r.pin === 'rps-down')).toHaveLength(3);
  });

  it('a server that does not answer: the request deadline settles the push', async () => {
    const s = settings(server.url, 200);
    adapter = new RhoconnectPushAdapter(() => s, silentLogger);
    server.answerNext('rps-stall', { stall: true }, { stall: true }, { stall: true });
    expect(await adapter.send(pushRequest('rhoconnect_push', 'rps-stall', ping()))).toEqual({
      outcome: 'failed',
      reason: 'RhoConnect Push connection: no answer within 200 ms (gave up after 3 attempts)',
      retries: 2,
    });
  });

  it('a missing or invalid :push_server: fails with a message naming it', async () => {
    for (const value of [null, 'not a url']) {
      const s = settings(value);
      adapter = new RhoconnectPushAdapter(() => s, silentLogger);
      expect(await adapter.send(pushRequest('rhoconnect_push', 'p', ping()))).toEqual({ outcome: 'failed', reason: MISSING_PUSH_SERVER });
    }
    expect(MISSING_PUSH_SERVER).toBe('Missing or invalid `:push_server` in settings/settings.yml.');
  });
});
