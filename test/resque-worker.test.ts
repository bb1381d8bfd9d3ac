// The Resque ping worker against a real Redis: Ruby-format jobs, resque:failed records, bounded
// concurrency, shutdown, and recovery of the jobs of a worker process killed mid-job.
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import type { PingResult } from '../src/ping/ping-job.js';
import type { NormalizedPing } from '../src/ping/ping-params.js';
import { resqueKeys, type ResqueFailure } from '../src/queue/resque-queue.js';
import { ResqueWorker, workerKeys } from '../src/queue/resque-worker.js';
import { silentLogger } from '../src/logger.js';
import { useRedisServer } from './helpers/redis.js';
import { createUser, registerClient, waitUntil, type YamlMap } from '../src/kit/index.js';
import { entrySettings, RecordingAdapters, startDaemon, userWithDevices } from './helpers/entry-points.js';

const redis = useRedisServer();
const r = () => redis.client();
let daemons: Daemon[] = [];
const children: ChildProcess[] = [];

beforeEach(async () => {
  await r().flushall();
  await userWithDevices(r(), 'alice');
  await userWithDevices(r(), 'bob');
  await createUser(r(), 'carol');
  await registerClient(r(), 'carol', {
    id: 'carol-bad',
    device_type: 'APPLE',
    device_pin: 'fail-carol-ios-token',
    phone_id: 'phone-carol-1',
  });
  await registerClient(r(), 'carol', {
    id: 'carol-bad2',
    device_type: 'fcm',
    device_pin: 'fail-carol-fcm-token',
    phone_id: 'phone-carol-2',
  });
  for (let i = 0; i < 8; i += 1) {
    await createUser(r(), `solo${i}`);
    await registerClient(r(), `solo${i}`, {
      id: `solo${i}-ios`,
      device_type: 'APPLE',
      device_pin: `solo-token-${i}-abcdef0123`,
      phone_id: `solo-phone-${i}`,
    });
  }
});

afterEach(async () => {
  for (const d of daemons) await d.stop();
  daemons = [];
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function daemonWith(extra: YamlMap = {}, adapters = new RecordingAdapters()) {
  const started = await startDaemon(entrySettings(redis.server().port, extra), { http: false, adapters });
  daemons.push(started.daemon);
  return started;
}

const rubyJob = (args: Record<string, unknown>, cls = 'Rhoconnect::PingJob') => JSON.stringify({ class: cls, args: [args] });

async function failures(): Promise<ResqueFailure[]> {
  return (await r().lrange(resqueKeys.failed, 0, -1)).map((s) => JSON.parse(s) as ResqueFailure);
}

async function processingLength(workerId: string, queue = 'ping'): Promise<number> {
  return r().llen(workerKeys.processing(workerId, queue));
}

describe("jobs in Ruby's format", () => {
  it('consumes jobs written by a raw RPUSH, as Resque.enqueue(PingJob, ...) writes them, and delivers them', async () => {
    const { adapters, daemon } = await daemonWith();
    // Exactly what Ruby writes: SADD resque:queues ping; RPUSH resque:queue:ping <json>.
    await r().sadd('resque:queues', 'ping');
    await r().rpush(
      'resque:queue:ping',
      rubyJob({ user_id: 'alice', sources: ['Product', 'Customer'], message: 'hello world', vibrate: 2000, sound: 'hello.mp3' }),
    );
    await r().rpush('resque:queue:ping', rubyJob({ user_id: ['bob'], sources: 'all' }, 'PingJob'));
    await waitUntil(() => adapters.pushes.length === 4, { what: 'four device pushes' });
    expect(adapters.of('alice')[0]!.ping).toEqual({
      users: ['alice'],
      sources: ['Product', 'Customer'],
      message: 'hello world',
      sound: 'hello.mp3',
      vibrate: '2000',
      badge: undefined,
    });
    expect(adapters.of('bob')[0]!.ping.sources).toEqual(['all']);
    await waitUntil(async () => (await r().get(resqueKeys.processed)) === '2', { what: 'resque:stat:processed = 2' });
    expect(await r().llen('resque:queue:ping')).toBe(0);
    expect(await processingLength(daemon.worker!.id)).toBe(0);
    expect(await r().llen(resqueKeys.failed)).toBe(0);
  });

  it("records a ping whose device pushes fail in resque:failed, in Resque's format", async () => {
    const { adapters } = await daemonWith();
    const job = rubyJob({ user_id: ['carol'], sources: ['Product'] });
    await r().rpush('resque:queue:ping', job);
    const [failure] = await waitUntil(
      async () => {
        const f = await failures();
        return f.length > 0 ? f : undefined;
      },
      { what: 'a failure record' },
    );
    expect(adapters.pushes).toHaveLength(2);
    expect(Object.keys(failure!).sort()).toEqual(['backtrace', 'error', 'exception', 'failed_at', 'payload', 'queue', 'worker']);
    expect(failure!.failed_at).toMatch(/^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} UTC$/);
    expect(failure!.payload).toEqual(JSON.parse(job));
    expect(failure!.exception).toBe('PingError');
    expect(failure!.error).toContain('device fail-carol-ios-token refused the push');
    expect(failure!.error).toContain('device fail-carol-fcm-token refused the push');
    expect(Array.isArray(failure!.backtrace) && failure!.backtrace.every((l) => typeof l === 'string')).toBe(true);
    expect(failure!.worker).toBe(`${hostname()}:${process.pid}:ping`);
    expect(failure!.queue).toBe('ping');
    await waitUntil(async () => (await r().get(resqueKeys.failedCount)) === '1', { what: 'resque:stat:failed = 1' });
  });

  it('records every poison job with its reason and keeps serving the good ones around them', async () => {
    const { adapters, daemon } = await daemonWith({ max_users_per_ping: 2 });
    const poison: Array<[string, string, RegExp, unknown]> = [
      ['not json at all', 'JobDecodeError', /not JSON/, { raw: 'not json at all' }],
      ['[1,2,3]', 'JobDecodeError', /not a Resque job/, { raw: '[1,2,3]' }],
      [
        '{"class":"SourceJob","args":[{"user_id":"alice"}]}',
        'UnknownJobClassError',
        /not "SourceJob"/,
        { class: 'SourceJob', args: [{ user_id: 'alice' }] },
      ],
      ['{"args":[{"user_id":"alice"}]}', 'UnknownJobClassError', /not null/, { args: [{ user_id: 'alice' }] }],
      ['{"class":"PingJob"}', 'PingParamsError', /^args: /, { class: 'PingJob' }],
      ['{"class":"PingJob","args":["alice"]}', 'PingParamsError', /^params: /, { class: 'PingJob', args: ['alice'] }],
      [rubyJob({ sources: ['Product'] }), 'PingParamsError', /^user_id: /, JSON.parse(rubyJob({ sources: ['Product'] }))],
      [
        rubyJob({ user_id: 'alice', badge: 'many' }),
        'PingParamsError',
        /^badge: /,
        JSON.parse(rubyJob({ user_id: 'alice', badge: 'many' })),
      ],
      [rubyJob({ user_id: ['a', 'b', 'c'] }), 'PingParamsError', /at most 2 users/, JSON.parse(rubyJob({ user_id: ['a', 'b', 'c'] }))],
    ];
    for (const [raw] of poison) {
      await r().rpush('resque:queue:ping', raw);
      await r().rpush('resque:queue:ping', rubyJob({ user_id: 'alice' }));
    }
    const records = await waitUntil(
      async () => {
        const f = await failures();
        return f.length === poison.length ? f : undefined;
      },
      { what: 'every poison job in resque:failed' },
    );
    await waitUntil(() => adapters.of('alice').length === 2 * poison.length, { what: 'every good job delivered' });
    const byPayload = new Map(records.map((f) => [JSON.stringify(f.payload), f]));
    for (const [raw, exception, error, payload] of poison) {
      const record = byPayload.get(JSON.stringify(payload));
      expect(record, `${raw} in ${JSON.stringify([...byPayload.keys()])}`).toBeDefined();
      expect(record!.exception, raw).toBe(exception);
      expect(record!.error, raw).toMatch(error);
      expect(record!.queue).toBe('ping');
    }
    expect(await processingLength(daemon.worker!.id)).toBe(0);
    expect(await r().llen('resque:queue:ping')).toBe(0);
  });
});

describe('concurrency and shutdown', () => {
  it('runs at most :worker_concurrency: jobs at once and takes no more than it can run', async () => {
    const adapters = new RecordingAdapters();
    adapters.hold();
    const { daemon } = await daemonWith({ worker_concurrency: 2 }, adapters);
    for (let i = 0; i < 6; i += 1) await r().rpush('resque:queue:ping', rubyJob({ user_id: `solo${i}` }));
    await waitUntil(() => adapters.parkedCount === 2, { what: 'two jobs in hand' });
    expect(await processingLength(daemon.worker!.id)).toBe(2);
    expect(await r().llen('resque:queue:ping')).toBe(4);
    for (let done = 0; done < 6; done += 1) {
      await waitUntil(() => adapters.parkedCount > 0, { what: 'a parked push' });
      expect(adapters.active).toBeLessThanOrEqual(2);
      adapters.release(1);
    }
    await waitUntil(async () => (await r().get(resqueKeys.processed)) === '6', { what: 'six jobs done' });
    expect(adapters.maxActive).toBe(2);
    expect(new Set(adapters.pushes.map((p) => p.user)).size).toBe(6);
  });

  it('finishes the jobs in hand on shutdown, leaves the others queued and unregisters', async () => {
    const adapters = new RecordingAdapters();
    adapters.hold();
    const { daemon } = await daemonWith({ worker_concurrency: 2 }, adapters);
    const workerId = daemon.worker!.id;
    for (let i = 0; i < 5; i += 1) await r().rpush('resque:queue:ping', rubyJob({ user_id: `solo${i}` }));
    await waitUntil(() => adapters.parkedCount === 2, { what: 'two jobs in hand' });
    const stopped = daemon.stop();
    let stopDone = false;
    void stopped.then(() => (stopDone = true));
    // The jobs in hand hold the shutdown until their pushes finish.
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopDone).toBe(false);
    adapters.release();
    await stopped;
    daemons = [];
    expect(adapters.pushes).toHaveLength(2);
    expect(await r().get(resqueKeys.processed)).toBe('2');
    expect(await r().llen('resque:queue:ping')).toBe(3);
    expect(await processingLength(workerId)).toBe(0);
    expect(await r().exists(workerKeys.heartbeat(workerId))).toBe(0);
    expect(await r().hexists(workerKeys.registry, workerId)).toBe(0);
    expect(await r().llen(resqueKeys.failed)).toBe(0);
  });
});

describe('a worker that dies with a job in hand', () => {
  async function startDoomedWorker(leaseMs: number): Promise<{ child: ChildProcess; workerId: string; pushInHand: Promise<void> }> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/helpers/resque-worker-process.ts', String(redis.server().port), String(leaseMs)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    const lines = createInterface({ input: child.stdout! });
    let workerId: ((id: string) => void) | undefined;
    let inHand: (() => void) | undefined;
    const id = new Promise<string>((resolve) => (workerId = resolve));
    const pushInHand = new Promise<void>((resolve) => (inHand = resolve));
    lines.on('line', (line) => {
      if (line.startsWith('worker ')) workerId!(line.slice('worker '.length));
      if (line === 'push-in-hand') inHand!();
    });
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`worker process exited early (${code})`))),
    );
    exited.catch(() => undefined);
    return { child, workerId: await Promise.race([id, exited]), pushInHand: Promise.race([pushInHand, exited]) };
  }

  async function kill(child: ChildProcess): Promise<void> {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  it('loses nothing: the next worker to start returns the job to the queue and delivers it', async () => {
    const { child, workerId, pushInHand } = await startDoomedWorker(500);
    const job = rubyJob({ user_id: 'solo1', message: 'survives a crash' });
    await r().rpush('resque:queue:ping', job);
    await pushInHand;
    expect(await r().lrange(workerKeys.processing(workerId, 'ping'), 0, -1)).toEqual([job]);
    expect(await r().llen('resque:queue:ping')).toBe(0);
    await kill(child);
    // The job is still in the dead worker's list until its heartbeat expires.
    expect(await r().llen(workerKeys.processing(workerId, 'ping'))).toBe(1);
    await waitUntil(async () => (await r().exists(workerKeys.heartbeat(workerId))) === 0, {
      what: "the dead worker's heartbeat to expire",
    });

    const { adapters, daemon } = await daemonWith();
    await waitUntil(() => adapters.of('solo1').length === 1, { what: 'the job delivered by the new worker' });
    expect(adapters.of('solo1')[0]!.ping.message).toBe('survives a crash');
    await waitUntil(async () => (await r().get(resqueKeys.processed)) === '1', { what: 'the job recorded as processed' });
    expect(await r().exists(workerKeys.processing(workerId, 'ping'))).toBe(0);
    expect(await r().hexists(workerKeys.registry, workerId)).toBe(0);
    expect(daemon.worker!.status().recovered).toBe(1);
    expect(await r().llen(resqueKeys.failed)).toBe(0);
  });

  it('a worker already running picks up the jobs of a peer whose heartbeat expires later', async () => {
    const { child, workerId, pushInHand } = await startDoomedWorker(10_000);
    await r().rpush('resque:queue:ping', rubyJob({ user_id: 'solo3', message: 'taken by the doomed one' }));
    await pushInHand;
    await kill(child);
    // Keep the dead worker's heartbeat alive until we let it go, so the running worker's start finds it alive.
    await r().persist(workerKeys.heartbeat(workerId));
    const { adapters, daemon } = await daemonWith({ lease_ms: 300 });
    expect(daemon.worker!.status().recovered).toBe(0);
    expect(await r().llen(workerKeys.processing(workerId, 'ping'))).toBe(1);
    await r().del(workerKeys.heartbeat(workerId));
    await waitUntil(() => adapters.of('solo3').length === 1, { what: "the dead peer's job delivered by the running worker" });
    expect(adapters.of('solo3')[0]!.ping.message).toBe('taken by the doomed one');
    expect(await r().exists(workerKeys.processing(workerId, 'ping'))).toBe(0);
    // The job may run before the recovery that returned it has finished counting.
    await waitUntil(() => daemon.worker!.status().recovered === 1, { what: 'one job counted as recovered' });
  });
});

describe('fetching', () => {
  function directWorker(queues: string[], runs: NormalizedPing[], fetchMethod?: 'blmove' | 'script') {
    const port = redis.server().port;
    const connection = new Redis(port, '127.0.0.1');
    const worker = new ResqueWorker({
      redis: connection,
      blockingConnection: () => new Redis(port, '127.0.0.1'),
      queues,
      concurrency: 1,
      heartbeatTtlMs: 5000,
      maxUsers: () => 100,
      run: async (ping): Promise<PingResult> => {
        runs.push(ping);
        return { id: 'test', users: ping.users, sources: ping.sources, trigger: 'queue', pushes: [], errors: [], skippedUsers: [] };
      },
      logger: silentLogger,
      pollSeconds: 0.1,
      fetchMethod,
    });
    return {
      worker,
      close: async () => {
        await worker.stop();
        connection.disconnect();
      },
    };
  }

  it('takes from the first non-empty queue in priority order', async () => {
    for (const u of ['p1', 'p2']) await r().rpush('resque:queue:ping', rubyJob({ user_id: u }));
    for (const u of ['u1', 'u2']) await r().rpush('resque:queue:urgent', rubyJob({ user_id: u }));
    const runs: NormalizedPing[] = [];
    const { worker, close } = directWorker(['urgent', 'ping'], runs);
    await worker.start();
    await waitUntil(() => runs.length === 4, { what: 'four jobs run' });
    await close();
    expect(runs.map((p) => p.users[0])).toEqual(['u1', 'u2', 'p1', 'p2']);
  });

  it('works on servers without BLMOVE (Redis before 6.2) with an atomic move script', async () => {
    const runs: NormalizedPing[] = [];
    const { worker, close } = directWorker(['ping'], runs, 'script');
    await worker.start();
    for (const u of ['s1', 's2', 's3']) await r().rpush('resque:queue:ping', rubyJob({ user_id: u }));
    await waitUntil(() => runs.length === 3, { what: 'three jobs run' });
    await close();
    expect(runs.map((p) => p.users[0])).toEqual(['s1', 's2', 's3']);
    expect(await r().llen(workerKeys.processing(worker.id, 'ping'))).toBe(0);
  });
});
