// The REST ping API over a real socket: token checks, body forms, validation, size limits, async
// enqueue, deprecated routes and the OpenAPI description.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import { useRedisServer } from './helpers/redis.js';
import { createUser, registerClient } from '../src/kit/index.js';
import { ADMIN_TOKEN, entrySettings, type RecordingAdapters, startDaemon, userWithDevices } from './helpers/entry-points.js';

const redis = useRedisServer();
let daemon: Daemon;
let adapters: RecordingAdapters;
let base: string;

beforeAll(async () => {
  const r = redis.client();
  await userWithDevices(r, 'alice');
  await userWithDevices(r, 'bob');
  await createUser(r, 'carol');
  await registerClient(r, 'carol', {
    id: 'carol-bad',
    device_type: 'APPLE',
    device_pin: 'fail-carol-ios-token',
    phone_id: 'phone-carol-1',
  });
  await registerClient(r, 'carol', { id: 'carol-bad2', device_type: 'fcm', device_pin: 'fail-carol-fcm-token', phone_id: 'phone-carol-2' });
  // RhoConnect's own token records: one of an admin, one of an ordinary user, one of a deleted user.
  await createUser(r, 'rhoadmin', { admin: '1' });
  await r.set('api_token:admin-record-token:user_id', 'rhoadmin');
  await createUser(r, 'plain', { admin: '0' });
  await r.set('api_token:plain-record-token:user_id', 'plain');
  await r.set('api_token:orphan-token:user_id', 'nobody');
  // The worker is off so that queued jobs stay visible in Redis.
  ({ daemon, adapters, url: base } = await startDaemon(entrySettings(redis.server().port, { max_users_per_ping: 3 }), { queue: false }));
});

afterAll(async () => {
  await daemon?.stop();
});

afterEach(() => adapters.reset());

async function post(
  path: string,
  body: string | undefined,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', body, headers });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers };
}

const json = (body: unknown, headers: Record<string, string> = {}) =>
  ['/rc/v1/users/ping', JSON.stringify(body), { 'content-type': 'application/json', ...headers }] as const;
const form = (body: string, headers: Record<string, string> = {}) =>
  ['/rc/v1/users/ping', body, { 'content-type': 'application/x-www-form-urlencoded', ...headers }] as const;
const withToken = { 'X-RhoConnect-API-TOKEN': ADMIN_TOKEN };

describe('API token', () => {
  it('refuses a call without a token with 422 No API token provided', async () => {
    const res = await post(...json({ user_id: 'alice' }));
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('No API token provided');
    expect(adapters.pushes).toHaveLength(0);
  });

  it('counts an empty header as no token', async () => {
    const res = await post(...json({ user_id: 'alice' }, { 'X-RhoConnect-API-TOKEN': '' }));
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('No API token provided');
  });

  it('refuses a wrong token with 422 Invalid/missing API user', async () => {
    const res = await post(...json({ user_id: 'alice' }, { 'X-RhoConnect-API-TOKEN': 'not-the-token' }));
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('Invalid/missing API user');
    expect(adapters.pushes).toHaveLength(0);
  });

  it('refuses a token that differs from the configured one only in its last character', async () => {
    const res = await post(...json({ user_id: 'alice', api_token: `${ADMIN_TOKEN.slice(0, -1)}X` }));
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('Invalid/missing API user');
  });

  it('refuses the token record of a user who is not an admin, and of a user who no longer exists', async () => {
    for (const token of ['plain-record-token', 'orphan-token']) {
      const res = await post(...json({ user_id: 'alice' }, { 'X-RhoConnect-API-TOKEN': token }));
      expect(res.status, token).toBe(422);
      expect(res.json.error).toBe('Invalid/missing API user');
    }
  });

  it('refuses a token given as a list', async () => {
    const res = await post(...form(`api_token[]=${ADMIN_TOKEN}&user_id=alice`));
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('Invalid/missing API user');
  });

  it('accepts the configured token in the header, a JSON body, a form body and the query string', async () => {
    const calls: Array<readonly [string, string, Record<string, string>]> = [
      json({ user_id: 'alice' }, withToken),
      json({ user_id: 'alice', api_token: ADMIN_TOKEN }),
      form(`user_id=alice&api_token=${ADMIN_TOKEN}`),
      [`/rc/v1/users/ping?api_token=${ADMIN_TOKEN}`, JSON.stringify({ user_id: 'alice' }), { 'content-type': 'application/json' }] as const,
    ];
    for (const call of calls) {
      const res = await post(...call);
      expect(res.status, call[1]).toBe(200);
    }
    expect(adapters.of('alice')).toHaveLength(2 * calls.length);
  });

  it('accepts a RhoConnect token record of an admin user', async () => {
    const res = await post(...json({ user_id: 'alice' }, { 'X-RhoConnect-API-TOKEN': 'admin-record-token' }));
    expect(res.status).toBe(200);
    expect(adapters.of('alice')).toHaveLength(2);
  });

  it('falls back to the api_token parameter when the header token is not valid (as RhoConnect does)', async () => {
    const res = await post(...json({ user_id: 'alice', api_token: 'admin-record-token' }, { 'X-RhoConnect-API-TOKEN': 'stale' }));
    expect(res.status).toBe(200);
  });
});

describe('bodies', () => {
  it('pings every device of a user named by a JSON string, with the sources, message and numbers as strings', async () => {
    const res = await post(
      ...json(
        { user_id: 'alice', sources: ['Product', 'Contact'], message: 'hello', badge: 3, sound: 'hello.mp3', vibrate: 2000 },
        withToken,
      ),
    );
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      users: ['alice'],
      sources: ['Product', 'Contact'],
      outcomes: { sent: 2 },
      errors: [],
      skippedUsers: [],
    });
    expect((res.json.pushes as unknown[]).length).toBe(2);
    const pushes = adapters.of('alice');
    expect(pushes.map((p) => p.platform).sort()).toEqual(['apple', 'fcm']);
    expect(pushes[0]!.ping).toEqual({
      users: ['alice'],
      sources: ['Product', 'Contact'],
      message: 'hello',
      badge: '3',
      sound: 'hello.mp3',
      vibrate: '2000',
    });
  });

  it('accepts user_id as a JSON list, sources as a comma-separated string, and reports unknown users', async () => {
    const res = await post(...json({ user_id: ['alice', 'bob', 'ghost'], sources: 'Product, Contact' }, withToken));
    expect(res.status).toBe(200);
    expect(res.json.skippedUsers).toEqual(['ghost']);
    expect(adapters.of('alice')).toHaveLength(2);
    expect(adapters.of('bob')).toHaveLength(2);
    expect(adapters.pushes[0]!.ping.sources).toEqual(['Product', 'Contact']);
  });

  it("takes sources 'all' and the source_id alias", async () => {
    await post(...json({ user_id: 'alice', sources: 'all' }, withToken));
    expect(adapters.pushes[0]!.ping.sources).toEqual(['all']);
    adapters.reset();
    await post(...json({ user_id: 'alice', source_id: 'Product' }, withToken));
    expect(adapters.pushes[0]!.ping.sources).toEqual(['Product']);
  });

  it('accepts form arrays (user_id[]=a&user_id[]=b) and repeated plain fields', async () => {
    for (const body of [
      'user_id[]=alice&user_id[]=bob&sources[]=Product&sources[]=Contact',
      'user_id=alice&user_id=bob&sources=Product,Contact',
    ]) {
      adapters.reset();
      const res = await post(...form(body, withToken));
      expect(res.status, body).toBe(200);
      expect(res.json.users).toEqual(['alice', 'bob']);
      expect(adapters.pushes).toHaveLength(4);
      expect(adapters.pushes[0]!.ping.sources).toEqual(['Product', 'Contact']);
    }
  });

  it("accepts what Ruby's RestClient sends for a hash of parameters", async () => {
    // RestClient.post(url, {api_token: t, user_id: ['alice', 'bob'], sources: ['Product'], message: 'hello world', vibrate: 2000, sound: 'hello.mp3'})
    const body = `api_token=${ADMIN_TOKEN}&user_id%5B%5D=alice&user_id%5B%5D=bob&sources%5B%5D=Product&message=hello+world&vibrate=2000&sound=hello.mp3`;
    const res = await post(...form(body));
    expect(res.status).toBe(200);
    expect(adapters.pushes).toHaveLength(4);
    expect(adapters.pushes[0]!.ping).toMatchObject({
      users: ['alice', 'bob'],
      sources: ['Product'],
      message: 'hello world',
      vibrate: '2000',
      sound: 'hello.mp3',
    });
  });

  it('accepts indexed form lists (user_id[0]=a&user_id[1]=b) in index order', async () => {
    const res = await post(...form('user_id[1]=bob&user_id[0]=alice', withToken));
    expect(res.status).toBe(200);
    expect(res.json.users).toEqual(['alice', 'bob']);
  });

  it('takes parameters from the query string too, the body winning', async () => {
    const res = await post(`/rc/v1/users/ping?user_id=bob&message=from-query&sources=Product`, JSON.stringify({ user_id: 'alice' }), {
      'content-type': 'application/json',
      ...withToken,
    });
    expect(res.status).toBe(200);
    expect(res.json.users).toEqual(['alice']);
    expect(adapters.pushes[0]!.ping).toMatchObject({ message: 'from-query', sources: ['Product'] });
  });

  it('answers 500 with every adapter message when device pushes fail, after trying every device', async () => {
    const res = await post(...json({ user_id: ['carol', 'alice'] }, withToken));
    expect(res.status).toBe(500);
    const error = res.json.error as string;
    expect(error).toContain('device fail-carol-ios-token refused the push');
    expect(error).toContain('device fail-carol-fcm-token refused the push');
    expect(res.json.errors).toHaveLength(2);
    expect(res.json.outcomes).toEqual({ failed: 2, sent: 2 });
    expect(adapters.pushes).toHaveLength(4);
  });
});

describe('invalid input', () => {
  const cases: Array<[string, unknown, string]> = [
    ['no user_id', { sources: 'all' }, 'user_id'],
    ['empty user_id', { user_id: '' }, 'user_id'],
    ['user_id an object', { user_id: { a: 1 } }, 'user_id'],
    ['user_id nested too deep', { user_id: [['a', ['b']]] }, 'user_id'],
    ['sources an object', { user_id: 'alice', sources: { a: 1 } }, 'sources'],
    ['source_id a list of objects', { user_id: 'alice', source_id: [{}] }, 'source_id'],
    ['badge not a number', { user_id: 'alice', badge: 'three' }, 'badge'],
    ['message an object', { user_id: 'alice', message: { text: 'x' } }, 'message'],
    ['vibrate a list', { user_id: 'alice', vibrate: [1] }, 'vibrate'],
    ['more users than :max_users_per_ping:', { user_id: ['a', 'b', 'c', 'd'] }, 'user_id'],
  ];
  it.each(cases)('%s: 400 naming the field', async (_name, body, field) => {
    const res = await post(...json(body, withToken));
    expect(res.status).toBe(400);
    expect(res.json.field).toBe(field);
    expect(res.json.error).toMatch(new RegExp(`^${field}: `));
    expect(adapters.pushes).toHaveLength(0);
  });

  it('refuses a JSON body that is not an object', async () => {
    for (const body of ['[1,2]', '"alice"', '42']) {
      const res = await post('/rc/v1/users/ping', body, { 'content-type': 'application/json', ...withToken });
      expect(res.status, body).toBe(400);
      expect(res.json.error).toMatch(/^body: /);
    }
  });

  it('refuses malformed JSON, an empty JSON body and a prototype-poisoning key with 400', async () => {
    for (const body of ['{"user_id":', '', '{"__proto__":{"admin":1},"user_id":"alice"}']) {
      const res = await post('/rc/v1/users/ping', body, { 'content-type': 'application/json', ...withToken });
      expect(res.status, body).toBe(400);
      expect(typeof res.json.error).toBe('string');
    }
  });

  it('refuses a form that mixes a value with nested fields, or nests too deep, naming the field', async () => {
    let res = await post(...form('user_id=alice&user_id[x]=bob', withToken));
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/^user_id: /);
    res = await post(...form('user_id[a][b][c][d][e][f]=x', withToken));
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/^user_id: nested deeper/);
  });

  it('refuses a malformed query string with 400 instead of failing', async () => {
    const res = await post(`/rc/v1/users/ping?user_id=a&user_id[x]=b`, JSON.stringify({ user_id: 'alice' }), {
      'content-type': 'application/json',
      ...withToken,
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/^query string: user_id/);
  });

  it('refuses other content types with 415', async () => {
    const res = await post('/rc/v1/users/ping', 'user_id=alice', { 'content-type': 'text/plain', ...withToken });
    expect(res.status).toBe(415);
    expect(typeof res.json.error).toBe('string');
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await post('/rc/v1/users/pong', '{}', { 'content-type': 'application/json' });
    expect(res.status).toBe(404);
    expect(res.json.error).toContain('/rc/v1/users/pong');
  });
});

describe('size limits', () => {
  it('accepts a body just under 1 MiB', async () => {
    const message = 'x'.repeat(1024 * 1024 - 200);
    const res = await post(...json({ user_id: 'alice', message }, withToken));
    expect(res.status).toBe(200);
    expect(adapters.pushes[0]!.ping.message).toHaveLength(message.length);
  });

  it('refuses JSON and form bodies over 1 MiB with 413', async () => {
    let res = await post(...json({ user_id: 'alice', message: 'x'.repeat(1024 * 1024) }, withToken));
    expect(res.status).toBe(413);
    expect(typeof res.json.error).toBe('string');
    res = await post(...form(`user_id=alice&message=${'x'.repeat(1024 * 1024)}`, withToken));
    expect(res.status).toBe(413);
    expect(adapters.pushes).toHaveLength(0);
  });
});

describe('async', () => {
  afterEach(async () => {
    await redis.client().del('resque:queue:ping', 'resque:queues');
  });

  it("queues a Resque job in Ruby's format and answers at once", async () => {
    const res = await post(
      ...json({ user_id: ['alice', 'bob'], sources: 'Product', message: 'hi', vibrate: 2000, async: true, api_token: ADMIN_TOKEN }),
    );
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      id: expect.stringMatching(/^[0-9a-z]{16,}$/),
      queued: true,
      queue: 'ping',
      users: ['alice', 'bob'],
      sources: ['Product'],
    });
    expect(adapters.pushes).toHaveLength(0);
    expect(await redis.client().smembers('resque:queues')).toEqual(['ping']);
    const jobs = await redis.client().lrange('resque:queue:ping', 0, -1);
    expect(jobs).toHaveLength(1);
    // No api_token and no async in the job: the token is a secret, and the job is already queued. The
    // ping's id and queuing time come last; Ruby's PingJob ignores keys it does not use.
    expect(jobs[0]).toMatch(
      /^\{"class":"Rhoconnect::PingJob","args":\[\{"user_id":\["alice","bob"\],"sources":\["Product"\],"message":"hi","vibrate":"2000","ping_id":"[0-9a-z]+","queued_at":\d+\}\]\}$/,
    );
    expect(JSON.parse(jobs[0]!).args[0].ping_id).toBe(res.json.id);
  });

  it('queues for async "true", 1 and "1" in JSON and forms, and runs at once for false, "false", 0 and "0"', async () => {
    for (const value of [true, 'true', 1, '1', 'yes']) {
      const res = await post(...json({ user_id: 'alice', async: value }, withToken));
      expect(res.json.queued, String(value)).toBe(true);
    }
    const res = await post(...form('user_id=alice&async=true', withToken));
    expect(res.json.queued).toBe(true);
    expect(await redis.client().llen('resque:queue:ping')).toBe(6);
    for (const value of [false, 'false', 0, '0']) {
      const sync = await post(...json({ user_id: 'alice', async: value }, withToken));
      expect(sync.json.queued, String(value)).toBeUndefined();
      expect(sync.json.outcomes, String(value)).toEqual({ sent: 2 });
    }
    const sync = await post(...form('user_id=alice&async=false', withToken));
    expect(sync.json.outcomes).toEqual({ sent: 2 });
    expect(await redis.client().llen('resque:queue:ping')).toBe(6);
  });

  it('validates before queueing', async () => {
    const res = await post(...json({ user_id: ['a', 'b', 'c', 'd'], async: true }, withToken));
    expect(res.status).toBe(400);
    expect(await redis.client().llen('resque:queue:ping')).toBe(0);
  });
});

describe('deprecated routes', () => {
  it.each(['/api/ping', '/api/client/ping'])("%s pings and adds RhoConnect's Warning header", async (path) => {
    const res = await post(path, JSON.stringify({ user_id: 'alice' }), { 'content-type': 'application/json', ...withToken });
    expect(res.status).toBe(200);
    expect(res.headers.get('warning')).toBe(`Use of the POST ${path} is deprecated. Use Rhoconnect API v1 instead.`);
    expect(adapters.of('alice')).toHaveLength(2);
  });

  it('the current route has no Warning header', async () => {
    const res = await post(...json({ user_id: 'alice' }, withToken));
    expect(res.headers.get('warning')).toBeNull();
  });

  it('checks the token on deprecated routes too', async () => {
    const res = await post('/api/ping', JSON.stringify({ user_id: 'alice' }), { 'content-type': 'application/json' });
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('No API token provided');
  });
});

describe('OpenAPI', () => {
  it('describes the ping routes, their bodies, token and answers at /docs/json', async () => {
    const res = await fetch(`${base}/docs/json`);
    expect(res.status).toBe(200);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- an OpenAPI document, read as plain JSON
    const doc = (await res.json()) as { paths: Record<string, { post?: Record<string, any> }> };
    const ping = doc.paths['/rc/v1/users/ping']?.post;
    expect(ping).toBeDefined();
    expect(Object.keys(ping!.requestBody.content).sort()).toEqual(['application/json', 'application/x-www-form-urlencoded']);
    expect(Object.keys(ping!.requestBody.content['application/json'].schema.properties)).toEqual(
      expect.arrayContaining(['user_id', 'sources', 'source_id', 'message', 'badge', 'sound', 'vibrate', 'async', 'api_token']),
    );
    expect(ping!.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['api_token', 'x-rhoconnect-api-token']));
    expect(Object.keys(ping!.responses)).toEqual(expect.arrayContaining(['200', '400', '413', '422', '500']));
    expect(doc.paths['/api/ping']?.post?.deprecated).toBe(true);
    expect(doc.paths['/api/client/ping']?.post?.deprecated).toBe(true);
    expect(doc.paths['/rc/v1/users /ping']).toBeUndefined();
  });
});
