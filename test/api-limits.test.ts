// The REST API at its limits, over real sockets against a real Redis: log lines stay few and short
// whatever a call names, a body trickling in is cut off, a prototype-poisoning key is refused with
// the reason, and a ping while Redis is down is answered at once with 503.
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/logger.js';
import { createUser, registerClient, startRedisServer, waitUntil, type RedisServerProcess } from '../src/kit/index.js';
import { Redis } from 'ioredis';
import { ADMIN_TOKEN, entrySettings, startDaemon, userWithDevices } from './helpers/entry-points.js';
import { createDaemon } from '../src/daemon.js';

/** A logger whose JSON lines land in `lines`. */
function memoryLogger(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination }) };
}

const withToken = { 'content-type': 'application/json', 'X-RhoConnect-API-TOKEN': ADMIN_TOKEN };
const longLogin = 'L'.repeat(500_000);

describe('the REST API at its limits', () => {
  let server: RedisServerProcess;
  let redis: Redis;
  let daemon: Daemon;
  let base: string;
  const log = memoryLogger();

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.port, '127.0.0.1');
    await userWithDevices(redis, 'alice');
    await createUser(redis, longLogin);
    await registerClient(redis, longLogin, { id: 'bb-1', device_type: 'BLACKBERRY', device_pin: 'bb-pin' });
    ({ daemon, url: base } = await startDaemon(entrySettings(server.port, { http_request_timeout_ms: 300, max_users_per_ping: 20000 }), {
      logger: log.logger,
      queue: false,
    }));
  });

  afterAll(async () => {
    await daemon?.stop();
    redis?.disconnect();
    await server?.stop();
  });

  it('logs one line for 10,000 unknown users, naming the first few, and one for the ping', async () => {
    const users = [...Array.from({ length: 10_000 }, (_, i) => `ghost-${i}`), 'alice'];
    const before = log.lines.length;
    const res = await fetch(`${base}/rc/v1/users/ping`, {
      method: 'POST',
      headers: withToken,
      body: JSON.stringify({ user_id: users, sources: ['Product'] }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { skippedUsers: string[] }).skippedUsers).toHaveLength(10_000);
    const lines = log.lines.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.msg)).toEqual([
      "Skipping ping for 10,000 unknown users or users without registered clients: 'ghost-0', 'ghost-1', 'ghost-2', 'ghost-3', 'ghost-4' and 9,995 more",
      'ping',
    ]);
    expect(lines[0]).toMatchObject({ skippedUsers: 10_000, users: ['ghost-0', 'ghost-1', 'ghost-2', 'ghost-3', 'ghost-4'] });
    expect(lines[1]).toMatchObject({ ping: { userCount: 10_001, trigger: 'rest' } });
    expect((lines[1]!.ping as { users: string[] }).users).toHaveLength(20);
    for (const line of log.lines.slice(before)) expect(line.length).toBeLessThan(4096);
  });

  it('cuts a 500,000-character login short in every line, saying how long it was', async () => {
    const before = log.lines.length;
    const unknown = 'U'.repeat(500_000);
    const res = await fetch(`${base}/rc/v1/users/ping`, {
      method: 'POST',
      headers: withToken,
      body: JSON.stringify({ user_id: [longLogin] }),
    });
    expect(res.status).toBe(200);
    const other = await fetch(`${base}/rc/v1/users/ping`, {
      method: 'POST',
      headers: withToken,
      body: JSON.stringify({ user_id: [unknown] }),
    });
    expect(other.status).toBe(200);
    const lines = log.lines.slice(before);
    // The known login: its unsupported device and its ping; the unknown one: skipped, and its ping.
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      "Dropping ping request for unsupported platform 'BLACKBERRY'",
      'ping',
      `Skipping ping for unknown user '${'U'.repeat(200)}…(500000 characters)' or '${'U'.repeat(200)}…(500000 characters)' has no registered clients...`,
      'ping',
    ]);
    for (const line of lines) expect(line.length).toBeLessThan(4096);
    expect(lines[1]).toContain(`${'L'.repeat(200)}…(500000 characters)`);
  });

  it("refuses a body with a __proto__ key, saying which key and why, and malformed JSON with the parser's reason", async () => {
    const poisoned = await fetch(`${base}/rc/v1/users/ping`, {
      method: 'POST',
      headers: withToken,
      body: '{"user_id":"alice","__proto__":{"admin":1}}',
    });
    expect(poisoned.status).toBe(400);
    expect(((await poisoned.json()) as { error: string }).error).toMatch(/^body: the key "__proto__" is refused: .*prototype poisoning/);
    const nested = await fetch(`${base}/rc/v1/users/ping`, {
      method: 'POST',
      headers: withToken,
      body: '{"user_id":"alice","x":{"constructor":{"prototype":{}}}}',
    });
    expect(((await nested.json()) as { error: string }).error).toMatch(/^body: the key "constructor.prototype" is refused/);
    const broken = await fetch(`${base}/rc/v1/users/ping`, { method: 'POST', headers: withToken, body: '{"user_id":' });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: string }).error).toMatch(/^Body is not valid JSON: /);
  });

  it('cuts off a body trickling in a byte at a time with 408, before it is complete', async () => {
    const { port } = daemon.apiAddress!;
    const outcome = await new Promise<{ answer: string; sent: number }>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let answer = '';
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.on('connect', () => {
        // No token: a client that never authenticates must not hold the connection.
        socket.write('POST /rc/v1/users/ping HTTP/1.1\r\nHost: rhopush\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
        timer = setInterval(() => {
          if (sent < 1000 && socket.writable) {
            socket.write('{');
            sent += 1;
          }
        }, 50);
      });
      socket.on('data', (d) => (answer += String(d)));
      socket.on('error', reject);
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ answer, sent });
      });
    });
    expect(outcome.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(outcome.sent).toBeLessThan(1000);
  });
});

describe('a REST ping while Redis is down', () => {
  it('answers 503 at once with the reason, and pings again once Redis is back', async () => {
    const server = await startRedisServer();
    const redis = new Redis({ port: server.port, host: '127.0.0.1', retryStrategy: () => 50 });
    redis.on('error', () => undefined);
    await userWithDevices(redis, 'alice');
    const log = memoryLogger();
    const { daemon, url } = await startDaemon(entrySettings(server.port), { logger: log.logger, queue: false });
    const ping = (body: unknown) => fetch(`${url}/rc/v1/users/ping`, { method: 'POST', headers: withToken, body: JSON.stringify(body) });
    try {
      expect((await ping({ user_id: 'alice' })).status).toBe(200);
      await server.kill();
      for (const body of [{ user_id: 'alice' }, { user_id: 'alice', async: true }]) {
        // Answered without waiting for the reconnection (which never comes while it is down).
        const res = await ping(body);
        expect(res.status).toBe(503);
        expect(((await res.json()) as { error: string }).error).toMatch(
          /^Redis 127\.0\.0\.1:\d+ unreachable \(connection \w+.*\): the ping was not (sent|queued); try again once it is back$/,
        );
      }
      // A token RhoConnect issued needs Redis to be checked: 503 too, not 422.
      const record = await fetch(`${url}/rc/v1/users/ping`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'X-RhoConnect-API-TOKEN': 'some-record-token' },
        body: '{"user_id":"alice"}',
      });
      expect(record.status).toBe(503);
      expect(((await record.json()) as { error: string }).error).toMatch(/^cannot check the API token: Redis .* unreachable/);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(503);
      expect(((await health.json()) as { parts: { redis: { detail: string } } }).parts.redis.detail).toMatch(/unreachable/);

      await server.restart();
      const status = await waitUntil(
        async () => {
          const answered = (await ping({ user_id: 'alice' })).status;
          return answered === 200 && answered;
        },
        { what: 'a ping answered 200 once Redis is back', intervalMs: 50 },
      );
      expect(status).toBe(200);
      const msgs = log.lines.map((l) => String((JSON.parse(l) as { msg: string }).msg));
      expect(msgs).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^Redis 127\.0\.0\.1:\d+ unreachable: waiting for it/),
          expect.stringMatching(/^Redis 127\.0\.0\.1:\d+ is back after \d+\.\d s$/),
        ]),
      );
    } finally {
      await daemon.stop();
      redis.disconnect();
      await server.stop();
    }
  });
});

describe('a database the server does not have', () => {
  it('stops the start with a clear error before anything is written', async () => {
    const server = await startRedisServer();
    const redis = new Redis(server.port, '127.0.0.1');
    try {
      const settings = entrySettings(server.port);
      const daemon = createDaemon({
        settings: { ...settings, redis: [{ ...settings.redis[0]!, db: 99, label: `127.0.0.1:${server.port}/99` }] },
      });
      await expect(daemon.start()).rejects.toThrow(
        /^Redis 127\.0\.0\.1:\d+\/99: database 99 cannot be used \(it has 16: 0 to 15\): ERR DB index is out of range\. Correct the database number in :redis:/,
      );
      const keyspace = await redis.info('keyspace');
      expect(keyspace.trim()).toBe('# Keyspace');
    } finally {
      redis.disconnect();
      await server.stop();
    }
  });
});
