// enqueuePing and the CLI's `ping --async` write jobs exactly as Ruby's Resque.enqueue(PingJob, ...).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { enqueuePing } from '../src/library.js';
import { PingParamsError } from '../src/ping/ping-params.js';
import { enqueuePingJob, resqueFailure, resqueTimestamp } from '../src/queue/resque-queue.js';
import { normalizePingParams } from '../src/ping/ping-params.js';
import { settingsYaml } from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';
import { ADMIN_TOKEN, entrySettings } from './helpers/entry-points.js';

const redis = useRedisServer();
const r = () => redis.client();
const dir = mkdtempSync(join(tmpdir(), 'rhopush-queue-test-'));

beforeEach(async () => {
  await r().flushall();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('enqueuePingJob', () => {
  it('does SADD resque:queues ping and RPUSH resque:queue:ping with the job JSON', async () => {
    const queued = await enqueuePingJob(
      r(),
      normalizePingParams({
        user_id: 'alice',
        sources: ['Product', 'Customer'],
        message: 'hello world',
        vibrate: 2000,
        sound: 'hello.mp3',
      }),
    );
    expect(queued).toMatchObject({ queue: 'ping', queued: 1 });
    expect(await r().smembers('resque:queues')).toEqual(['ping']);
    expect(await r().lrange('resque:queue:ping', 0, -1)).toEqual([
      '{"class":"Rhoconnect::PingJob","args":[{"user_id":["alice"],"sources":["Product","Customer"],"message":"hello world","sound":"hello.mp3","vibrate":"2000"}]}',
    ]);
  });

  it('appends at the tail, so jobs run in the order they were queued', async () => {
    await enqueuePingJob(r(), normalizePingParams({ user_id: 'first' }));
    const second = await enqueuePingJob(r(), normalizePingParams({ user_id: 'second', badge: 4 }), 'urgent');
    await enqueuePingJob(r(), normalizePingParams({ user_id: 'third' }));
    expect(second.queued).toBe(1);
    expect((await r().smembers('resque:queues')).sort()).toEqual(['ping', 'urgent']);
    const users = (await r().lrange('resque:queue:ping', 0, -1)).map(
      (j) => (JSON.parse(j) as { args: [{ user_id: string[] }] }).args[0].user_id[0],
    );
    expect(users).toEqual(['first', 'third']);
    expect(JSON.parse((await r().lindex('resque:queue:urgent', 0))!)).toEqual({
      class: 'Rhoconnect::PingJob',
      args: [{ user_id: ['second'], badge: '4' }],
    });
  });
});

describe('Resque formats', () => {
  it('writes failed_at as Resque does (%Y/%m/%d %H:%M:%S %Z)', () => {
    expect(resqueTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe('2026/01/02 03:04:05 UTC');
  });

  it('builds a failure record with the error class, message and backtrace', () => {
    const failure = resqueFailure(
      { class: 'PingJob', args: [] },
      new PingParamsError('args', 'expected [params]'),
      'host:1:ping',
      'ping',
      new Date(Date.UTC(2026, 5, 7, 8, 9, 10)),
    );
    expect(failure).toMatchObject({
      failed_at: '2026/06/07 08:09:10 UTC',
      payload: { class: 'PingJob', args: [] },
      exception: 'PingParamsError',
      error: 'args: expected [params]',
      worker: 'host:1:ping',
      queue: 'ping',
    });
    expect(failure.backtrace.length).toBeGreaterThan(0);
    expect(failure.backtrace[0]).toMatch(/^at /);
  });
});

describe('enqueuePing (library)', () => {
  it('queues on an open connection, leaving it open', async () => {
    const queued = await enqueuePing({ user_id: ['alice', 'bob'], sources: 'all' }, { redis: r() });
    expect(queued.job).toEqual({
      class: 'Rhoconnect::PingJob',
      args: [{ user_id: ['alice', 'bob'], sources: ['all'], ping_id: queued.id, queued_at: expect.any(Number) }],
    });
    // The ping's record exists from now on, queued.
    expect(JSON.parse((await r().get(`rhopush:ping:{${queued.id}}`))!)).toMatchObject({
      id: queued.id,
      status: 'queued',
      trigger: 'queue',
      users: ['alice', 'bob'],
    });
    expect(await r().llen('resque:queue:ping')).toBe(1);
    expect(r().status).toBe('ready');
  });

  it('connects with the settings file when no connection is given, to the first :queues: entry', async () => {
    const file = join(dir, 'settings.yml');
    writeFileSync(file, settingsYaml({ redis: redis.server().port, apiToken: ADMIN_TOKEN, rhopush: { queues: ['pings_high', 'ping'] } }));
    const queued = await enqueuePing({ user_id: 'alice' }, { settings: file, environment: 'test', env: {} });
    expect(queued.queue).toBe('pings_high');
    expect(await r().llen('resque:queue:pings_high')).toBe(1);
    expect(await r().sismember('resque:queues', 'pings_high')).toBe(1);
  });

  it('refuses bad parameters before writing anything', async () => {
    await expect(enqueuePing({ user_id: [] }, { redis: r() })).rejects.toThrow(PingParamsError);
    await expect(enqueuePing({ user_id: 'a', badge: 'x' }, { redis: r() })).rejects.toThrow(/^badge: /);
    const settings = entrySettings(redis.server().port, { max_users_per_ping: 1 });
    await expect(enqueuePing({ user_id: ['a', 'b'] }, { redis: r(), settings })).rejects.toThrow(/at most 1 users/);
    expect(await r().exists('resque:queue:ping', 'resque:queues')).toBe(0);
  });
});

describe('rhopush ping --async', () => {
  it('queues the ping and prints where it went', async () => {
    const file = join(dir, 'cli-settings.yml');
    writeFileSync(file, settingsYaml({ redis: redis.server().port, apiToken: ADMIN_TOKEN }));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli.ts',
        'ping',
        '--settings',
        file,
        '--env',
        'test',
        '--user',
        'alice',
        '--user',
        'bob',
        '--sources',
        'Product',
        '--message',
        'hi',
        '--async',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, API_TOKEN: '', REDIS_URL: '' } },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/^queued on resque:queue:ping \(1 waiting\)/);
    expect(JSON.parse((await r().lindex('resque:queue:ping', 0))!)).toEqual({
      class: 'Rhoconnect::PingJob',
      args: [
        { user_id: ['alice', 'bob'], sources: ['Product'], message: 'hi', ping_id: expect.any(String), queued_at: expect.any(Number) },
      ],
    });
  });
});
