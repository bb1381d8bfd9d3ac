// The real CLI daemon under signals: SIGTERM still delivers a change captured just before it and
// exits 0; a second signal exits at once; `npm start` stops with npm; a configuration problem found
// at start exits 2 before anything is written.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createUser, pushObjects, registerClient, settingsYaml, startRedisServer } from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';
import { ADMIN_TOKEN } from './helpers/entry-points.js';
import { LogWatcher, runCli, spawnCli } from './helpers/cli.js';

const redis = useRedisServer();

describe('rhopush run: lifecycle', () => {
  let dir: string;
  let settings: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rhopush-lifecycle-'));
    settings = join(dir, 'settings.yml');
    // Grouping far longer than the test: only the shutdown can send the ping. A long canary
    // timeout keeps a stop against a frozen Redis busy long enough for the second signal.
    writeFileSync(
      settings,
      settingsYaml({
        redis: redis.server().port,
        apiToken: ADMIN_TOKEN,
        coalesceMs: 60000,
        maxDelayMs: 120000,
        rhopush: { canary_timeout_ms: 60000 },
      }),
    );
    await createUser(redis.client(), 'alice');
    await registerClient(redis.client(), 'alice', {
      id: 'c1',
      device_type: 'APPLE',
      device_pin: '0a1b2c3d 4e5f6a7b 8c9d0e1f',
      phone_id: 'phone-1',
    });
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async () => {
    const daemon = new LogWatcher(
      spawnCli(['run', '--settings', settings, '--env', 'test', '--shutdown-timeout', '90000'], { LOG_LEVEL: 'info' }),
    );
    await daemon.waitFor('rhopush started');
    return daemon;
  };

  it('SIGTERM right after a plugin write: the grouped ping is still delivered, exit 0', async () => {
    const daemon = await start();
    await pushObjects(redis.client(), 'alice', 'Product', { '1': { name: 'Widget' } });
    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    const push = daemon.lines.find((l) => l.msg === 'device push (delivery: log)')?.push as
      { platform: string; user: string; payload: { do_sync?: string[] } } | undefined;
    expect(push).toMatchObject({ platform: 'apple', user: 'alice', payload: { do_sync: ['Product'] } });
    const ping = daemon.lines.find((l) => l.msg === 'ping')?.ping as { users: string[]; sources: string[]; trigger: string } | undefined;
    expect(ping).toMatchObject({ users: ['alice'], sources: ['Product'], trigger: 'auto' });
    const order = ['stopping', 'sending grouped pings before stopping', 'device push', 'rhopush stopped'].map((text) =>
      daemon.lines.findIndex((l) => String(l.msg).includes(text)),
    );
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('a second signal exits at once, without waiting for the stop to finish', async () => {
    const daemon = await start();
    const server = redis.server().process;
    // A frozen Redis holds the stop on its first step (making sure every change was received).
    server.kill('SIGSTOP');
    try {
      daemon.child.kill('SIGTERM');
      await daemon.waitFor('stopping');
      daemon.child.kill('SIGINT');
      const exit = await daemon.exited;
      expect(exit.code).toBe(130);
      expect(daemon.lines.some((l) => String(l.msg).includes('second signal'))).toBe(true);
      expect(daemon.lines.some((l) => l.msg === 'rhopush stopped')).toBe(false);
    } finally {
      server.kill('SIGCONT');
    }
  });

  it('npm start stops when npm is killed (npm does not pass the signal on)', async () => {
    const root = join(import.meta.dirname, '..');
    // Our own npm's `start` script: npm → sh → node dist/cli.js run --stop-with-parent.
    // --ignore-scripts skips prestart's build (npm test has just built; other suites run dist meanwhile).
    const npm = spawn('npm', ['start', '--silent', '--ignore-scripts', '--', '--settings', settings, '--env', 'test'], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'info', npm_config_update_notifier: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The daemon writes to npm's stdout pipe, which it shares: it stays open until the daemon exits.
    const daemon = new LogWatcher(npm as never);
    await daemon.waitFor('rhopush started');
    npm.kill('SIGTERM');
    await daemon.waitFor('the process that started rhopush has exited: stopping');
    await daemon.waitFor('rhopush stopped');
    // The pipe closes once the last process writing to it (the daemon) has exited.
    await new Promise((resolve) => (npm.stdout.readableEnded ? resolve(undefined) : npm.stdout.once('end', resolve)));
  }, 60_000);

  it('a database the server does not have: exit 2 with a clear message, nothing written anywhere', async () => {
    const empty = await startRedisServer();
    const probe = new Redis(empty.port, '127.0.0.1');
    try {
      const result = await runCli(['run', '--settings', settings, '--env', 'test'], { REDIS_URL: `redis://127.0.0.1:${empty.port}/99` });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^rhopush: Redis 127\.0\.0\.1:\d+\/99: database 99 cannot be used \(it has 16: 0 to 15\)/);
      expect(result.stdout).not.toContain('rhopush started');
      // No lease, worker entry or heartbeat landed in any database.
      expect((await probe.info('keyspace')).trim()).toBe('# Keyspace');
    } finally {
      probe.disconnect();
      await empty.stop();
    }
  });
});
