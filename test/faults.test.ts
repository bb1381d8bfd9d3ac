// Faults against a live daemon: `rhopush run` as a child process, plugin writes flowing all along,
// while its Redis is killed and restarted (0.5, 4 and 10 seconds down), its pub/sub and other
// connections are killed, and APNs answers 500 then 429 with Retry-After. After each fault the same
// process is still running, /healthz is 200 again, every pair written is pinged (a device push
// arrives at the APNs stand-in), and nothing that was not written is.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerProcess } from '../src/kit/redis-server-process.js';
import { ApnsStandIn, apnsTokenKey, hexToken } from './helpers/delivery.js';
import { LogWatcher, spawnCli } from './helpers/cli.js';

const TOPIC = 'com.example.faults';
/** Users with one iPhone each; every write goes to a user of its own. */
const USERS = 3000;
/** Every fourth write goes to Note (push_notify off): those users must never be pinged. */
const isNoteWrite = (i: number) => i % 4 === 3;
const user = (i: number) => `u${i}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

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
    const source = isNoteWrite(i) ? 'Note' : 'Product';
    const doc = `source:application:${user(i)}:${source}:md`;
    const lock = `lock:${doc}`;
    const steps: Array<() => Promise<unknown>> = [
      () => this.redis.setnx(lock, String(Math.floor(Date.now() / 1000) + 60)),
      () => this.redis.hsetnx(`${doc}:indices`, '01', `${doc}:01`),
      () => this.redis.sadd(`${doc}:01`, `${i}:^rho&:name:v${i}`),
      () => this.redis.incrby(`source:application:${user(i)}:${source}:md_size`, 1),
      () => this.redis.del(lock),
    ];
    let done = 0;
    try {
      for (const step of steps) {
        await step();
        done += 1;
      }
      this.written.add(i);
    } catch {
      (done === 0 ? this.unwritten : done >= 4 ? this.written : this.partial).add(i);
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
        batch.set(`user:${user(i)}:rho__id`, user(i)).set(`user:${user(i)}:login`, user(i)).sadd(`user:${user(i)}:clients`, `c${i}`);
        batch.set(`client:c${i}:user_id`, user(i)).set(`client:c${i}:device_type`, 'APPLE').set(`client:c${i}:device_pin`, token);
      }
      await batch.exec();
    }

    const key = apnsTokenKey();
    apns = await ApnsStandIn.start({ token: key, topics: [TOPIC] });
    writeFileSync(join(dir, 'AuthKey.p8'), key.pem);
    writeFileSync(join(dir, 'ca.pem'), apns.ca);
    const settings = join(dir, 'settings.yml');
    writeFileSync(
      settings,
      `:sources:
  Product:
    :push_notify: 'true'
  Note:
    :push_notify: 'false'
:test:
  :redis: 127.0.0.1:${server.port}
  :api_token: faults-token
  :rhopush:
    :listen: 127.0.0.1:0
    :delivery: live
    :coalesce_ms: 20
    :max_delay_ms: 100
    :lease_ms: 3000
    :canary_interval_ms: 300
    :apns:
      :token_key: AuthKey.p8
      :key_id: ${key.keyId}
      :team_id: ${key.teamId}
      :topic: ${TOPIC}
      :address: ${apns.address}
      :port: ${apns.port}
      :ca: ca.pem
`,
    );
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
    await until(async () => (await health()) === 200, `/healthz 200 after ${fault}`);
    const mark = writer.next;
    if (moreWrites) await until(() => writer.productWrites().filter((i) => i >= mark).length >= 5, `writes after ${fault}`);
    await until(() => {
      const got = pinged();
      return writer.productWrites().every((i) => got.has(i));
    }, `every pair written by the end of ${fault} to be pinged`);
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
      apns.answerNext(hexToken(i + 1), { status: 500, reason: 'InternalServerError' }, { status: 429, reason: 'TooManyRequests', retryAfter: 1 });
    }
    await until(() => next.every((i) => writer.written.has(i) || writer.unwritten.has(i) || writer.partial.has(i)), 'writes to the users APNs fails');
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
