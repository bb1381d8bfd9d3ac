// The APNs provider token rhopush signs itself: reused while valid (one signature for many pushes),
// signed again when APNs answers 403 ExpiredProviderToken, and the push retried with the new one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/logger.js';
import { ApnsAdapter } from '../src/push/apns/apns.js';
import { ApnsStandIn, apnsTokenKey, buildSettings, hexToken } from '../src/kit/index.js';
import { ping, pushRequest, useScratchDir } from './helpers/delivery.js';

const TOPIC = 'com.example.token';

describe('APNs provider token', () => {
  const dir = useScratchDir();
  const key = apnsTokenKey();
  let standIn: ApnsStandIn;
  let adapter: ApnsAdapter;

  beforeAll(async () => {
    standIn = await ApnsStandIn.start({ token: key, topics: [TOPIC] });
    const settings = buildSettings(
      { delivery: 'live', rhopush: { retry: { attempts: 3, base_ms: 5, max_ms: 10 } }, apns: { endpoint: standIn, key, topic: TOPIC } },
      dir(),
    );
    adapter = new ApnsAdapter(() => settings, silentLogger);
  });
  afterAll(async () => {
    await adapter.close();
    await standIn.close();
  });

  it('signs once and reuses the token for every push while APNs accepts it', async () => {
    const before = standIn.requests.length;
    const results = await Promise.all([1, 2, 3].map((i) => adapter.send(pushRequest('apple', hexToken(0x100 + i), ping()))));
    expect(results).toEqual([{ outcome: 'sent' }, { outcome: 'sent' }, { outcome: 'sent' }]);
    const tokens = new Set(standIn.requests.slice(before).map((r) => r.headers.authorization));
    expect(tokens.size).toBe(1);
    expect([...tokens][0]).toMatch(/^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('after 403 ExpiredProviderToken the push is retried with a newly signed token, used from then on', async () => {
    const device = hexToken(0x403);
    standIn.answerNext(device, { status: 403, reason: 'ExpiredProviderToken' });
    const before = standIn.requests.length;
    expect(await adapter.send(pushRequest('apple', device, ping()))).toEqual({ outcome: 'sent', retries: 1 });
    const [expired, retried] = standIn.requests.slice(before);
    expect(expired).toMatchObject({ token: device, status: 403, reason: 'ExpiredProviderToken' });
    expect(retried).toMatchObject({ token: device, status: 200, auth: { kind: 'token', keyId: key.keyId } });
    expect(retried!.headers.authorization).not.toBe(expired!.headers.authorization);

    const next = standIn.requests.length;
    expect(await adapter.send(pushRequest('apple', hexToken(0x404), ping()))).toEqual({ outcome: 'sent' });
    expect(standIn.requests[next]!.headers.authorization).toBe(retried!.headers.authorization);
  });
});
