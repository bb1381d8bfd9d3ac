// notify-keyspace-events: rhopush adds what it needs, never removes a flag, and explains what to
// set where CONFIG is refused (managed Redis).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createDaemon } from '../src/daemon.js';
import { missingNotifyFlags, NotifyConfigError } from '../src/intake/notify-config.js';
import { startRedisServer, waitUntil, type RedisServerProcess } from '../src/kit/index.js';
import { entrySettings } from './helpers/entry-points.js';

describe('notify-keyspace-events', () => {
  it('knows which flags are missing (A includes $ and g)', () => {
    expect(missingNotifyFlags('')).toEqual(['K', '$', 'g']);
    expect(missingNotifyFlags('Ex')).toEqual(['K', '$', 'g']);
    expect(missingNotifyFlags('KA')).toEqual([]);
    expect(missingNotifyFlags('K$g')).toEqual([]);
    expect(missingNotifyFlags('K$')).toEqual(['g']);
    expect(missingNotifyFlags('Elg')).toEqual(['K', '$']);
  });

  describe('on a Redis that allows CONFIG SET', () => {
    let server: RedisServerProcess;
    beforeAll(async () => {
      server = await startRedisServer({ args: ['--notify-keyspace-events', 'Elg'] });
    });
    afterAll(() => server.stop());

    it('adds K and $ (and keeps g) to the flags already set', async () => {
      const settings = entrySettings(server.port);
      const daemon = createDaemon({ settings, http: false });
      await daemon.start();
      await daemon.stop();
      const r = new Redis(server.port, '127.0.0.1');
      const [, flags] = (await r.call('CONFIG', 'GET', 'notify-keyspace-events')) as string[];
      r.disconnect();
      expect(new Set(flags)).toEqual(new Set(['E', 'l', 'g', 'K', '$']));
    });
  });

  describe('on a Redis that refuses CONFIG', () => {
    let server: RedisServerProcess;
    beforeAll(async () => {
      server = await startRedisServer({ args: ['--rename-command', 'CONFIG', ''] });
    });
    afterAll(() => server.stop());

    it('refuses to start and names the exact setting to add', async () => {
      const settings = entrySettings(server.port);
      const daemon = createDaemon({ settings, http: false });
      const started = daemon.start();
      await expect(started).rejects.toBeInstanceOf(NotifyConfigError);
      await expect(started).rejects.toThrow(/notify-keyspace-events .*K\$g/);
      await daemon.stop();
    });
  });

  describe('on a managed Redis: CONFIG refused, notifications set by the operator', () => {
    let server: RedisServerProcess;
    beforeAll(async () => {
      server = await startRedisServer({ args: ['--rename-command', 'CONFIG', '', '--notify-keyspace-events', 'KEA'] });
    });
    afterAll(() => server.stop());

    it('proves the notifications with a canary write and captures plugin writes', async () => {
      const settings = entrySettings(server.port, { coalesce_ms: 10 });
      const pinged: string[][] = [];
      const daemon = createDaemon({ settings, http: false, onPing: (r) => pinged.push([...r.users, ...r.sources]) });
      await daemon.start();
      const r = new Redis(server.port, '127.0.0.1');
      try {
        await r.incrby('source:application:alice:Product:md_size', 1);
        await waitUntil(() => pinged.length > 0, { what: 'the ping for the write' });
      } finally {
        r.disconnect();
        await daemon.stop();
      }
      expect(pinged).toEqual([['alice', 'Product']]);
    });
  });

  describe('on a managed Redis whose operator set K$ but not g', () => {
    let server: RedisServerProcess;
    beforeAll(async () => {
      server = await startRedisServer({ args: ['--rename-command', 'CONFIG', '', '--notify-keyspace-events', 'K$'] });
    });
    afterAll(() => server.stop());

    it('refuses to start: without g a shared CUD queue run cannot be told from a plugin write', async () => {
      const settings = entrySettings(server.port);
      const daemon = createDaemon({ settings, http: false });
      const started = daemon.start();
      await expect(started).rejects.toBeInstanceOf(NotifyConfigError);
      await expect(started).rejects.toThrow(/K\$g/);
      await daemon.stop();
    });
  });
});
