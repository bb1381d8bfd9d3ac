import { describe, expect, it } from 'vitest';
import { ProviderCache } from '../src/push/provider-cache.js';
import { waitUntil } from '../src/kit/index.js';

class Sender {
  closed = false;
  constructor(readonly name: string) {}
  async close() {
    this.closed = true;
  }
}

describe('ProviderCache', () => {
  it('reuses an entry per key and closes everything on close()', async () => {
    const cache = new ProviderCache<Sender>(20);
    const settings = {};
    let created = 0;
    const make = () => new Sender(`s${++created}`);
    const a = await cache.use('k', settings, make, async (s) => s);
    const b = await cache.use('k', settings, make, async (s) => s);
    expect(a).toBe(b);
    expect(created).toBe(1);
    await cache.close();
    expect(a.closed).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('a failing create caches nothing', async () => {
    const cache = new ProviderCache<Sender>(20);
    await expect(
      cache.use(
        'k',
        {},
        () => {
          throw new Error('bad key file');
        },
        async (s) => s,
      ),
    ).rejects.toThrow('bad key file');
    expect(cache.size).toBe(0);
  });

  it('after a settings reload, entries no longer asked for are closed once idle; the rest stay', async () => {
    const cache = new ProviderCache<Sender>(20);
    const before = {};
    const after = {};
    const old = await cache.use(
      'old-key',
      before,
      () => new Sender('old'),
      async (s) => s,
    );
    const kept = await cache.use(
      'same-key',
      before,
      () => new Sender('kept'),
      async (s) => s,
    );
    let release!: () => void;
    const busy = cache.use(
      'busy-key',
      before,
      () => new Sender('busy'),
      (s) => new Promise<Sender>((resolve) => (release = () => resolve(s))),
    );
    // The reload: new settings ask for 'same-key' again, not for 'old-key' or 'busy-key'.
    await cache.use(
      'same-key',
      after,
      () => new Sender('unexpected'),
      async (s) => s,
    );
    await waitUntil(() => old.closed, { what: 'the stale entry to close' });
    expect(kept.closed).toBe(false);
    expect(cache.size).toBe(2);
    release();
    const busySender = await busy;
    expect(busySender.closed).toBe(false);
    await waitUntil(() => busySender.closed, { what: 'the busy stale entry to close once idle' });
    expect(cache.size).toBe(1);
    await cache.close();
  });
});
