// Faults against a live daemon: `rhopush run` as a child process, plugin writes flowing all along,
// while its Redis is killed and restarted (0.5, 4 and 10 seconds down), its pub/sub and other
// connections are killed, and APNs answers 500 then 429 with Retry-After. After each fault the same
// process is still running, /healthz is 200 again, every pair written is pinged (a device push
// arrives at the APNs stand-in), and nothing that was not written is.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApnsStandIn,
  apnsTokenKey,
  createUserSteps,
  hexToken,
  pushObjectsSteps,
  queueSteps,
  registerClientSteps,
  sleep,
  startRedisServer,
  waitUntil,
  writeSettings,
  type RedisServerProcess,
  type WaitOptions,
} from '../src/kit/index.js';
import { LogWatcher, spawnCli } from './helpers/cli.js';

const TOPIC = 'com.example.faults';
/** Users with one iPhone each; every write goes to a user of its own. */
const USERS = 3000;
/** Every fourth write goes to Note (push_notify off): those users must never be pinged. */
const isNoteWrite = (i: number) => i % 4 === 3;
const user = (i: number) => `u${i}`;

/** Recovering from a fault may take a while on a busy machine. */
const recovery = (what: string): WaitOptions => ({ what, timeoutMs: 30_000, intervalMs: 50 });

/**
 * Plugin writes (push_objects' commands), one user each, a write every 30 ms, on a connection that
 * fails at once while Redis is down. A write none of whose commands reached Redis is "unwritten";
 * one whose md_size INCRBY was acknowledged is "written"; anything in between is left out of the
 * checks (it may or may not have changed the document).
 */
class Writer {
  private readonly redis: Redis;
  next = 0;
  readonly written = new Set<number>();
  readonly unwritten = new Set<number>();
  readonly partial = new Set<number>();
  private running = true;
  private loop?: Promise<void>;

  constructor(port: number) {
    this.redis = new Redis({ port, host: '127.0.0.1', enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    this.redis.on('error', () => undefined);
  }

  start(): void {
    this.loop = (async () => {
      while (this.running && this.next < USERS) {
        await this.write(this.next++);
        await sleep(30);
      }
    })();
  }

  /** Product writes acknowledged so far. */
  productWrites(): number[] {
    return [...this.written].filter((i) => !isNoteWrite(i));
  }

  private async write(i: number): Promise<void> {
    const steps = pushObjectsSteps(user(i), isNoteWrite(i) ? 'Note' : 'Product', { [String(i)]: { name: `v${i}` } });
    const incrby = steps.findIndex((s) => s.cmd[0] === 'incrby');
    let done = 0;
    try {
      for (const step of steps) {
        await this.redis.call(...step.cmd);
        done += 1;
      }
      this.written.add(i);
    } catch {
      (done === 0 ? this.unwritten : done > incrby ? this.written : this.partial).add(i);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.redis.disconnect();
    expect(this.next, 'the writer ran out of users').toBeLessThan(USERS);
  }
}

describe('faults never stop the daemon', () => {
  let dir: string;
  let server: RedisServerProcess;
  let admin: Redis;
  let apns: ApnsStandIn;
  let daemon: LogWatcher;
  let writer: Writer;
  let health: () => Promise<number>;
  const userOfToken = new Map<string, number>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rhopush-faults-'));
    // Every acknowledged write survives a SIGKILL (rhopush's own records and baseline included).
    server = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    admin = new Redis({ port: server.port, host: '127.0.0.1', retryStrategy: () => 50 });
    admin.on('error', () => undefined);
    for (let from = 0; from < USERS; from += 500) {
      const batch = admin.pipeline();
      for (let i = from; i < from + 500; i++) {
        const token = hexToken(i + 1);
        userOfToken.set(token, i);
        queueSteps(batch, [
          ...createUserSteps(user(i)),
          ...registerClientSteps(user(i), { id: `c${i}`, device_type: 'APPLE', device_pin: token }),
        ]);
      }
      await batch.exec();
    }

    const key = apnsTokenKey();
    apns = await ApnsStandIn.start({ token: key, topics: [TOPIC] });
    const settings = writeSettings(dir, {
      redis: server.port,
      sources: { Product: { pushNotify: 'true' }, Note: { pushNotify: 'false' } },
      apiToken: 'faults-token',
      delivery: 'live',
      coalesceMs: 20,
      maxDelayMs: 100,
      rhopush: { lease_ms: 3000, canary_interval_ms: 300 },
      apns: { endpoint: apns, key, topic: TOPIC },
    });
    daemon = new LogWatcher(spawnCli(['run', '-s', settings, '-e', 'test']));
    const listening = await daemon.waitFor('Server listening at');
    const url = /http:\/\/[\d.]+:\d+/.exec(String(listening.msg))![0];
    health = async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status ?? 0;
    await daemon.waitFor('rhopush started');
    writer = new Writer(server.port);
    writer.start();
  }, 60_000);

  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
    if (daemon && daemon.child.exitCode === null) {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
    }
    admin?.disconnect();
    await apns?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Users whose device got a push (answered 200). */
  const pinged = () => new Set(apns.delivered().map((r) => userOfToken.get(r.token)));

  /** After a fault: same process, /healthz 200, more writes made, and every write so far pinged. */
  async function recovered(fault: string, moreWrites = true): Promise<void> {
    await waitUntil(async () => (await health()) === 200, recovery(`/healthz 200 after ${fault}`));
    const mark = writer.next;
    if (moreWrites) await waitUntil(() => writer.productWrites().filter((i) => i >= mark).length >= 5, recovery(`writes after ${fault}`));
    await waitUntil(
      () => {
        const got = pinged();
        return writer.productWrites().every((i) => got.has(i));
      },
      recovery(`every pair written by the end of ${fault} to be pinged`),
    );
    expect(daemon.child.exitCode, `rhopush exited after ${fault}: ${daemon.stderr}`).toBeNull();
    expect(() => process.kill(daemon.child.pid!, 0)).not.toThrow();
  }

  async function redisDown(ms: number): Promise<void> {
    await server.kill();
    await sleep(ms);
    await server.restart();
  }

  it('rides through Redis outages, killed connections and APNs errors, losing and inventing nothing', async () => {
    const pid = daemon.child.pid;
    await recovered('the start');

    for (const ms of [500, 4000, 10_000]) {
      await redisDown(ms);
      await recovered(`a ${ms} ms Redis outage`);
    }

    // The keyspace subscription, then every other connection of rhopush's (store, capture control,
    // lease, catch-up, queue), each found by its name.
    await admin.client('KILL', 'TYPE', 'pubsub');
    await recovered('killing the pub/sub connection');
    const clients = String(await admin.client('LIST'))
      .split('\n')
      .map((l) => ({ id: /\bid=(\d+)/.exec(l)?.[1], name: /\bname=(\S*)/.exec(l)?.[1] ?? '' }))
      .filter((c) => c.id && c.name.startsWith('rhopush:') && c.name !== 'rhopush:capture');
    expect(clients.map((c) => c.name)).toEqual(expect.arrayContaining(['rhopush:store', 'rhopush:capture-control', 'rhopush:lease']));
    for (const c of clients) await admin.client('KILL', 'ID', c.id!);
    await recovered('killing the store and other connections by name');

    // APNs fails the next users' first push with 500, the retry with 429 and Retry-After: 1.
    const next = Array.from({ length: 40 }, (_, k) => writer.next + k).filter((i) => !isNoteWrite(i));
    for (const i of next) {
      apns.answerNext(
        hexToken(i + 1),
        { status: 500, reason: 'InternalServerError' },
        { status: 429, reason: 'TooManyRequests', retryAfter: 1 },
      );
    }
    await waitUntil(
      () => next.every((i) => writer.written.has(i) || writer.unwritten.has(i) || writer.partial.has(i)),
      recovery('writes to the users APNs fails'),
    );
    await recovered('APNs answering 500 then 429');
    for (const i of next.filter((k) => writer.written.has(k))) {
      const statuses = apns.requests.filter((r) => r.token === hexToken(i + 1)).map((r) => r.status);
      expect(statuses.slice(0, 3), `APNs answers for ${user(i)}`).toEqual([500, 429, 200]);
    }

    await writer.stop();
    await recovered('the last write', false);
    expect(daemon.child.pid).toBe(pid);

    // Nothing unwritten was pinged: no user whose write never reached Redis, no Note user.
    const got = pinged();
    const wrong = [...got].filter((i) => i === undefined || isNoteWrite(i) || !(writer.written.has(i) || writer.partial.has(i)));
    expect(wrong.map((i) => (i === undefined ? 'unknown token' : user(i)))).toEqual([]);
    expect(writer.unwritten.size, 'some writes must have failed during the outages').toBeGreaterThan(0);
    expect([...writer.written].filter((i) => isNoteWrite(i)).length).toBeGreaterThan(0);

    // What the log says: waiting for Redis and back again at each outage, a catch-up after each
    // reconnection, and no canary false alarm.
    const msgs = daemon.lines.map((l) => String(l.msg));
    expect(msgs.filter((m) => /^Redis 127\.0\.0\.1:\d+ unreachable: waiting for it/.test(m)).length).toBeGreaterThanOrEqual(3);
    expect(msgs.filter((m) => /^Redis 127\.0\.0\.1:\d+ is back after/.test(m)).length).toBeGreaterThanOrEqual(3);
    const catchUps = daemon.lines.filter((l) => l.msg === 'catch-up finished' && l.reason === 'reconnect');
    expect(catchUps.length).toBeGreaterThanOrEqual(4);
    expect(msgs.filter((m) => m.includes('capture canary failed'))).toEqual([]);

    daemon.child.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
  }, 150_000);
});
