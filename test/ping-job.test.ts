// PingJob against a real Redis holding RhoConnect users and clients: every behaviour RhoConnect's
// own ping specs check.
import { beforeEach, describe, expect, it } from 'vitest';
import { PingJob } from '../src/ping/ping-job.js';
import { RhoconnectStore } from '../src/store/rhoconnect-store.js';
import type { DevicePushRequest, Platform, PushAdapter } from '../src/push/adapter.js';
import { silentLogger } from '../src/logger.js';
import { useRedisServer } from './helpers/redis.js';
import { createUser, registerClient } from '../src/kit/index.js';
import { PingParamsError } from '../src/ping/ping-params.js';

const redis = useRedisServer();

class RecordingAdapter implements PushAdapter {
  sent: DevicePushRequest[] = [];
  failFor = new Set<string>();
  async send(r: DevicePushRequest) {
    this.sent.push(r);
    if (this.failFor.has(r.client.id)) return { outcome: 'failed' as const, reason: `push to ${r.client.id} refused` };
    return { outcome: 'sent' as const };
  }
  async close() {}
}

let adapter: RecordingAdapter;
let job: PingJob;

beforeEach(async () => {
  await redis.client().flushall();
  adapter = new RecordingAdapter();
  job = new PingJob(
    new RhoconnectStore(redis.client()),
    { adapterFor: (_p: Platform) => adapter, close: async () => undefined },
    silentLogger,
  );
});

describe('PingJob', () => {
  it("pings every registered device of a user, most recent last_sync first, with RhoConnect's params", async () => {
    const r = redis.client();
    await createUser(r, 'alice');
    await registerClient(r, 'alice', { id: 'old', device_type: 'APPLE', device_pin: 'aaaa 1111', last_sync: '2026-01-01T10:00:00+0000' });
    await registerClient(r, 'alice', {
      id: 'new',
      device_type: 'ANDROID',
      device_push_type: 'fcm',
      device_pin: 'fcm-token',
      phone_id: 'p1',
      last_sync: '2026-06-01T10:00:00+0200',
    });
    await registerClient(r, 'alice', { id: 'never', device_type: 'ANDROID', device_push_type: 'rhoconnect_push', device_pin: 'rc-pin' });

    const result = await job.run(
      { user_id: 'alice', sources: ['Product'], badge: 5, vibrate: 2000, message: 'hi', sound: 'a.mp3' },
      'library',
    );

    expect(adapter.sent.map((s) => [s.client.id, s.platform])).toEqual([
      ['new', 'fcm'],
      ['old', 'apple'],
      ['never', 'rhoconnect_push'],
    ]);
    expect(adapter.sent[1]!.token).toBe('aaaa1111'); // APNs token: spaces removed
    expect(adapter.sent[0]!.ping).toEqual({
      users: ['alice'],
      sources: ['Product'],
      message: 'hi',
      badge: '5',
      sound: 'a.mp3',
      vibrate: '2000',
    });
    expect(result.pushes.map((p) => p.outcome)).toEqual(['sent', 'sent', 'sent']);
    expect(result.errors).toEqual([]);
  });

  it('sends vibrate as a string, empty when not given, and accepts string or integer params alike', async () => {
    const r = redis.client();
    await createUser(r, 'alice');
    await registerClient(r, 'alice', { id: 'c1', device_type: 'APPLE', device_pin: 'pin1' });
    await job.run({ user_id: ['alice'], sources: 'Product,Contact' }, 'rest');
    await job.run({ user_id: 'alice', sources: 'all', badge: '7', vibrate: '300' }, 'rest');
    expect(adapter.sent[0]!.ping).toMatchObject({ sources: ['Product', 'Contact'], vibrate: '' });
    expect(adapter.sent[1]!.ping).toMatchObject({ sources: ['all'], badge: '7', vibrate: '300' });
  });

  it('skips clients without device_type, or with neither device_pin nor phone_id, and drops unknown platforms', async () => {
    const r = redis.client();
    await createUser(r, 'alice');
    await registerClient(r, 'alice', { id: 'no-type', device_pin: 'x1' });
    await registerClient(r, 'alice', { id: 'no-pin', device_type: 'APPLE' });
    await registerClient(r, 'alice', { id: 'blackberry', device_type: 'BLACKBERRY', device_pin: 'bb' });
    await registerClient(r, 'alice', { id: 'legacy', device_type: 'IPHONE', device_pin: 'ip' });
    await registerClient(r, 'alice', { id: 'gcm', device_type: 'ANDROID', device_push_type: 'GCM', device_pin: 'g1' });
    const result = await job.run({ user_id: 'alice', sources: ['Product'] }, 'auto');
    expect(adapter.sent.map((s) => [s.client.id, s.platform]).sort()).toEqual([
      ['gcm', 'fcm'],
      ['legacy', 'apple'],
    ]);
    const dropped = result.pushes.find((p) => p.clientId === 'blackberry');
    expect(dropped).toMatchObject({ outcome: 'dropped', platform: 'BLACKBERRY', reason: "unsupported platform 'BLACKBERRY'" });
    expect(result.errors).toEqual([]);
  });

  it('deduplicates by phone_id + device_app_id, else by device_pin, across all users of the call', async () => {
    const r = redis.client();
    await createUser(r, 'alice');
    await createUser(r, 'bob');
    await registerClient(r, 'alice', { id: 'a1', device_type: 'APPLE', device_pin: 'same-pin', last_sync: '2026-02-01T00:00:00+0000' });
    await registerClient(r, 'bob', { id: 'b1', device_type: 'APPLE', device_pin: 'same-pin' });
    await registerClient(r, 'alice', {
      id: 'a2',
      device_type: 'ANDROID',
      device_push_type: 'fcm',
      device_pin: 't1',
      phone_id: 'phone',
      device_app_id: 'app.one',
    });
    await registerClient(r, 'bob', {
      id: 'b2',
      device_type: 'ANDROID',
      device_push_type: 'fcm',
      device_pin: 't2',
      phone_id: 'phone',
      device_app_id: 'app.one',
    });
    await registerClient(r, 'bob', {
      id: 'b3',
      device_type: 'ANDROID',
      device_push_type: 'fcm',
      device_pin: 't3',
      phone_id: 'phone',
      device_app_id: 'app.two',
    });
    await job.run({ user_id: ['alice', 'bob'], sources: ['Product'] }, 'rest');
    expect(adapter.sent.map((s) => s.client.id).sort()).toEqual(['a1', 'a2', 'b3']);
  });

  it('skips unknown users and users without clients, and still pings the others', async () => {
    const r = redis.client();
    await createUser(r, 'lonely');
    await createUser(r, 'alice');
    await registerClient(r, 'alice', { id: 'c1', device_type: 'APPLE', device_pin: 'pin1' });
    const result = await job.run({ user_id: ['ghost', 'lonely', 'alice'], sources: ['Product'] }, 'rest');
    expect(result.skippedUsers).toEqual(['ghost', 'lonely']);
    expect(adapter.sent.map((s) => s.user)).toEqual(['alice']);
  });

  it('tries every device and reports all adapter errors together at the end', async () => {
    const r = redis.client();
    await createUser(r, 'alice');
    for (const id of ['c1', 'c2', 'c3']) await registerClient(r, 'alice', { id, device_type: 'APPLE', device_pin: `pin-${id}` });
    adapter.failFor = new Set(['c1', 'c3']);
    const result = await job.run({ user_id: 'alice', sources: ['Product'] }, 'queue');
    expect(adapter.sent).toHaveLength(3);
    expect(result.errors.sort()).toEqual(['push to c1 refused', 'push to c3 refused']);
    expect(result.pushes.filter((p) => p.outcome === 'sent').map((p) => p.clientId)).toEqual(['c2']);
  });

  it('never shows a device token whole in its result', async () => {
    const r = redis.client();
    await createUser(r, 'alice');
    const token = 'f'.repeat(64);
    await registerClient(r, 'alice', { id: 'c1', device_type: 'APPLE', device_pin: token });
    const result = await job.run({ user_id: 'alice' }, 'cli');
    expect(JSON.stringify(result)).not.toContain(token);
    expect(result.pushes[0]!.token).toBe('ffffff…ffff');
  });

  it('rejects params it cannot use, naming the field', async () => {
    await expect(job.run({ user_id: [] }, 'rest')).rejects.toThrow(PingParamsError);
    await expect(job.run({ user_id: 'a', badge: 'many' }, 'rest')).rejects.toThrow('badge: expected a whole number');
    await expect(job.run({ user_id: 'a', sources: { x: 1 } as never }, 'rest')).rejects.toThrow(/^sources:/);
  });
});
