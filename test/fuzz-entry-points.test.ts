// Deterministic fuzz of the REST API and the Resque worker: thousands of random and malformed
// requests and queue items. The process must stay up, every answer must be a 2xx or a 4xx with a
// reason, every bad job must land in resque:failed, and every good job must run.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import type { PingResult } from '../src/ping/ping-job.js';
import { resqueKeys, type ResqueFailure } from '../src/queue/resque-queue.js';
import { useRedisServer } from './helpers/redis.js';
import { waitUntil } from '../src/kit/index.js';
import { ADMIN_TOKEN, entrySettings, type RecordingAdapters, startDaemon, userWithDevices } from './helpers/entry-points.js';

const SEED = 0x5eed_2026;
const REQUESTS = 2500;
const QUEUE_ITEMS = 2000;
const MAX_USERS = 50;

/** mulberry32: small, fast, deterministic. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => next() < p;
  const text = (max = 12, alphabet = 'abcdefghijklmnopqrstuvwxyzABC0123456789 _-,:[]{}"%&=+é😀\\/\u0000') => {
    let s = '';
    const n = int(max + 1);
    for (let i = 0; i < n; i += 1) s += [...alphabet][int([...alphabet].length)];
    return s;
  };
  return { next, int, pick, chance, text };
}
type Rng = ReturnType<typeof prng>;

const USERS = ['alice', 'bob', 'ghost', 'nobody', 'ünïcödé', 'with space', 'a:b'];
const FIELDS = [
  'user_id',
  'sources',
  'source_id',
  'message',
  'badge',
  'sound',
  'vibrate',
  'async',
  'api_token',
  '__proto__',
  'constructor',
  'prototype',
  'extra',
  '',
];

function randomValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 3 ? 5 : 8)) {
    case 0:
      return rng.text();
    case 1:
      return rng.pick([0, 1, -1, 2000, 1.5, 1e308, -0, 123456789012]);
    case 2:
      return rng.pick([true, false, null]);
    case 3:
      return rng.pick(USERS);
    case 4:
      return rng.pick(['all', 'Product,Contact', 'false', '0', '', ' ']);
    case 5:
    case 6:
      return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    default: {
      const obj: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i -= 1) obj[rng.chance(0.7) ? rng.pick(FIELDS) : rng.text(6)] = randomValue(rng, depth + 1);
      return obj;
    }
  }
}

/** A mostly-plausible ping body with random damage. */
function randomParams(rng: Rng): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  if (rng.chance(0.85)) {
    params.user_id = rng.chance(0.5)
      ? rng.pick(USERS)
      : Array.from({ length: rng.chance(0.05) ? MAX_USERS + 1 : 1 + rng.int(3) }, () => rng.pick(USERS));
  }
  for (const field of ['sources', 'source_id', 'message', 'badge', 'sound', 'vibrate', 'async']) {
    if (rng.chance(0.3)) params[field] = randomValue(rng);
  }
  if (rng.chance(0.2)) params[rng.pick(FIELDS)] = randomValue(rng);
  return params;
}

function randomFormBody(rng: Rng): string {
  const parts: string[] = [];
  for (let i = rng.int(8); i > 0; i -= 1) {
    const name = rng.chance(0.8) ? rng.pick(FIELDS) : rng.text(5, 'ab[]%=&+');
    const suffix = rng.pick(['', '', '[]', '[0]', '[7]', '[x]', '[][]', '[a][b][c][d][e][f]', '[', ']', '%5B%5D']);
    const value = rng.chance(0.5) ? encodeURIComponent(rng.pick(USERS)) : rng.text(10, 'abc%zz+&=[]é😀');
    parts.push(`${name}${suffix}=${value}`);
  }
  return parts.join(rng.pick(['&', '&', '&&', ';']));
}

interface FuzzRequest {
  path: string;
  headers: Record<string, string>;
  body?: string;
}

function randomRequest(rng: Rng): FuzzRequest {
  const path =
    rng.pick([
      '/rc/v1/users/ping',
      '/rc/v1/users/ping',
      '/rc/v1/users/ping',
      '/api/ping',
      '/api/client/ping',
      '/rc/v1/users%20/ping',
      '/rc/v1/users/pong',
    ]) + (rng.chance(0.2) ? `?${randomFormBody(rng)}` : '');
  const headers: Record<string, string> = {};
  const token = rng.int(10);
  if (token < 6) headers['x-rhoconnect-api-token'] = ADMIN_TOKEN;
  else if (token === 6) headers['x-rhoconnect-api-token'] = 'wrong-token';
  let body: string | undefined;
  switch (rng.int(7)) {
    case 0:
    case 1:
    case 2: {
      const params = rng.chance(0.9) ? randomParams(rng) : randomValue(rng);
      if (token >= 7 && rng.chance(0.5) && params && typeof params === 'object' && !Array.isArray(params))
        (params as Record<string, unknown>).api_token = ADMIN_TOKEN;
      body = JSON.stringify(params);
      if (rng.chance(0.1)) body = body.slice(0, rng.int(body.length));
      headers['content-type'] = rng.pick(['application/json', 'application/json; charset=utf-8', 'application/JSON']);
      break;
    }
    case 3:
    case 4:
      body = randomFormBody(rng);
      if (token >= 7 && rng.chance(0.5)) body += `&api_token=${ADMIN_TOKEN}`;
      headers['content-type'] = 'application/x-www-form-urlencoded';
      break;
    case 5:
      body = rng.text(40);
      headers['content-type'] = rng.pick([
        'text/plain',
        'multipart/form-data; boundary=x',
        'application/xml',
        'a/b',
        'application/x-www-form-urlencoded',
        'application/json',
      ]);
      break;
    default:
      if (rng.chance(0.5)) body = '';
  }
  return { path, headers, body };
}

/** A queue item and whether rhopush must run it (true) or record it in resque:failed (false). */
function randomQueueItem(rng: Rng): { raw: string; good: boolean } {
  const goodParams = (): Record<string, unknown> => {
    const p: Record<string, unknown> = {
      user_id: rng.chance(0.5)
        ? rng.pick(USERS)
        : rng.chance(0.8)
          ? Array.from({ length: 1 + rng.int(3) }, () => rng.pick(USERS))
          : [[rng.pick(USERS), rng.pick(USERS)]],
    };
    if (rng.chance(0.6)) p.sources = rng.pick([['Product'], ['Product', 'Contact'], 'all', ['all'], 'Product,Contact', []]);
    if (rng.chance(0.3)) p.source_id = rng.pick(['Product', ['Contact']]);
    if (rng.chance(0.6)) p.message = rng.chance(0.8) ? rng.text(30) : rng.int(1000);
    if (rng.chance(0.3)) p.badge = rng.chance(0.5) ? rng.int(99) : String(rng.int(99));
    if (rng.chance(0.4)) p.vibrate = rng.chance(0.5) ? 2000 : '2000';
    if (rng.chance(0.3)) p.sound = 'hello.mp3';
    if (rng.chance(0.2)) p[rng.text(6)] = randomValue(rng);
    return p;
  };
  const cls = () => rng.pick(['Rhoconnect::PingJob', 'PingJob']);
  if (rng.chance(0.5)) return { raw: JSON.stringify({ class: cls(), args: [goodParams()] }), good: true };
  const good = JSON.stringify({ class: cls(), args: [goodParams()] });
  const bad = rng.int(12);
  const params = goodParams();
  switch (bad) {
    case 0:
      return { raw: rng.text(30) || 'x', good: false };
    case 1:
      return { raw: good.slice(0, 1 + rng.int(good.length - 1)), good: false };
    case 2:
      return { raw: JSON.stringify(randomValue(rng, 4) ?? null), good: false };
    case 3:
      return {
        raw: JSON.stringify({ class: rng.pick(['SourceJob', 'Rhoconnect::BulkDataJob', 'pingjob', '', 42, null]), args: [params] }),
        good: false,
      };
    case 4:
      return { raw: JSON.stringify({ args: [params] }), good: false };
    case 5:
      return { raw: JSON.stringify({ class: cls(), args: rng.pick([[], {}, 'x', null, undefined]) }), good: false };
    case 6:
      return { raw: JSON.stringify({ class: cls(), args: [rng.pick(['alice', 1, null, ['alice'], true])] }), good: false };
    case 7:
      return {
        raw: JSON.stringify({
          class: cls(),
          args: [{ ...params, user_id: rng.pick([null, '', [], {}, [null], [{}], [['a', ['b']]], true]) }],
        }),
        good: false,
      };
    case 8:
      return { raw: JSON.stringify({ class: cls(), args: [{ ...params, badge: rng.pick(['many', '1.5', 'x1', {}, []]) }] }), good: false };
    case 9:
      return {
        raw: JSON.stringify({
          class: cls(),
          args: [{ ...params, [rng.pick(['message', 'sound', 'vibrate'])]: rng.pick([{}, [], [1], { a: 'b' }]) }],
        }),
        good: false,
      };
    case 10:
      return {
        raw: JSON.stringify({
          class: cls(),
          args: [{ ...params, user_id: Array.from({ length: MAX_USERS + 1 + rng.int(20) }, (_, i) => `u${i}`) }],
        }),
        good: false,
      };
    default:
      return {
        raw: JSON.stringify({ class: cls(), args: [{ ...params, sources: rng.pick([{}, [{}], [null], { all: true }]) }] }),
        good: false,
      };
  }
}

const redis = useRedisServer();
let daemon: Daemon;
let adapters: RecordingAdapters;
let base: string;
const queuePings: PingResult[] = [];

beforeAll(async () => {
  await userWithDevices(redis.client(), 'alice');
  await userWithDevices(redis.client(), 'bob');
  await userWithDevices(redis.client(), 'ünïcödé');
  ({
    daemon,
    adapters,
    url: base,
  } = await startDaemon(entrySettings(redis.server().port, { max_users_per_ping: MAX_USERS }), {
    onPing: (result) => {
      if (result.trigger === 'queue') queuePings.push(result);
    },
  }));
});

afterAll(async () => {
  await daemon?.stop();
});

describe('fuzz', () => {
  it(`answers ${REQUESTS} random and malformed requests with a 2xx or a 4xx and a reason`, async () => {
    const rng = prng(SEED);
    const statuses = new Map<number, number>();
    const requests = Array.from({ length: REQUESTS }, () => randomRequest(rng));
    const problems: string[] = [];
    for (let i = 0; i < requests.length; i += 16) {
      await Promise.all(
        requests.slice(i, i + 16).map(async (req) => {
          const res = await fetch(`${base}${req.path}`, { method: 'POST', headers: req.headers, body: req.body });
          const text = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          let parsed: Record<string, unknown> | undefined;
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            problems.push(`${res.status} not JSON for ${JSON.stringify(req).slice(0, 200)}: ${text.slice(0, 100)}`);
            return;
          }
          const ok2xx = res.status >= 200 && res.status < 300 && (Array.isArray(parsed.users) || parsed.queued === true);
          const ok4xx = res.status >= 400 && res.status < 500 && typeof parsed.error === 'string' && parsed.error.length > 0;
          if (!ok2xx && !ok4xx) problems.push(`${res.status} ${text.slice(0, 200)} for ${JSON.stringify(req).slice(0, 300)}`);
        }),
      );
    }
    expect(problems).toEqual([]);
    // The mix reached every kind of answer, so the fuzz is not stuck on one path.
    for (const status of [200, 400, 404, 415, 422]) expect(statuses.get(status) ?? 0, `answers with ${status}`).toBeGreaterThan(0);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('survives malformed HTTP on a raw socket', async () => {
    const port = daemon.apiAddress!.port;
    const garbage = [
      'POST /rc/v1/users/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcdefg',
      'POST /rc/v1/users/ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      'POST /rc/v1/users/ping HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'POST /rc/v1/users/ping HTTP/1.1\r\nHo st: x\r\n\r\n',
      `POST /rc/v1/users/ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      'GARBAGE\r\n\r\n',
      'POST /rc/v1/users/ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{"user_id":',
    ];
    for (const request of garbage) {
      const answer = await new Promise<string>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(request);
          // The last case never sends the rest of its body: end our side so the server sees it cut short.
          if (request.endsWith('{"user_id":')) socket.end();
        });
        let data = '';
        socket.on('data', (d) => (data += String(d)));
        socket.on('close', () => resolve(data));
        socket.on('error', () => resolve(data));
        socket.setTimeout(5000, () => socket.destroy());
      });
      if (answer) expect(answer, request.slice(0, 80)).toMatch(/^HTTP\/1\.1 4\d\d /);
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it(`runs every good job and records every bad one in resque:failed, over ${QUEUE_ITEMS} random queue items`, async () => {
    const r = redis.client();
    // Let the REST fuzz's async jobs finish first; they were validated, so none may fail.
    await waitUntil(async () => (await r.llen('resque:queue:ping')) === 0 && daemon.worker!.status().inHand === 0, {
      what: 'the REST jobs done',
    });
    expect(await r.llen(resqueKeys.failed)).toBe(0);
    const processedBefore = Number((await r.get(resqueKeys.processed)) ?? 0);
    queuePings.length = 0;
    adapters.reset();

    const rng = prng(SEED + 1);
    const items = Array.from({ length: QUEUE_ITEMS }, () => randomQueueItem(rng));
    const pipeline = r.pipeline();
    pipeline.sadd('resque:queues', 'ping');
    for (const item of items) pipeline.rpush('resque:queue:ping', item.raw);
    await pipeline.exec();

    const bad = items.filter((i) => !i.good);
    const good = items.filter((i) => i.good);
    expect(bad.length).toBeGreaterThan(QUEUE_ITEMS / 3);
    await waitUntil(async () => Number(await r.get(resqueKeys.processed)) - processedBefore === QUEUE_ITEMS, {
      what: 'every item processed',
      timeoutMs: 30_000,
    });

    const failed = (await r.lrange(resqueKeys.failed, 0, -1)).map((s) => JSON.parse(s) as ResqueFailure);
    expect(failed).toHaveLength(bad.length);
    expect(Number(await r.get(resqueKeys.failedCount))).toBe(bad.length);
    expect(queuePings).toHaveLength(good.length);
    for (const record of failed) {
      expect(Object.keys(record).sort()).toEqual(['backtrace', 'error', 'exception', 'failed_at', 'payload', 'queue', 'worker']);
      expect(['JobDecodeError', 'UnknownJobClassError', 'PingParamsError']).toContain(record.exception);
      expect(record.error.length).toBeGreaterThan(0);
      expect(record.queue).toBe('ping');
    }
    // Each bad item is in resque:failed exactly once, recognisable by its payload.
    const recorded = failed.map((f) => JSON.stringify(f.payload)).sort();
    const expected = bad
      .map((b) => {
        try {
          const value = JSON.parse(b.raw) as unknown;
          if (value !== null && typeof value === 'object' && !Array.isArray(value)) return JSON.stringify(value);
        } catch {
          // not JSON: kept as raw text
        }
        return JSON.stringify({ raw: b.raw });
      })
      .sort();
    expect(recorded).toEqual(expected);
    expect(await r.llen('resque:queue:ping')).toBe(0);
    expect(await r.llen(`rhopush:queue:worker:${daemon.worker!.id}:processing:ping`)).toBe(0);
    expect(adapters.pushes.length).toBeGreaterThan(0);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});
