// Every recorded RhoConnect scenario through the real capture path: a real redis-server, the
// daemon subscribed to keyspace notifications, the fixture's writes replayed into it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayFixture } from '../src/replay/replay.js';
import { startRedisServer, type RedisServerProcess } from '../src/kit/redis-server-process.js';
import { Redis } from 'ioredis';
import type { Fixture, FixtureCommand } from '../src/replay/fixture.js';
import { fixture, fixtureFiles } from './helpers/fixtures.js';
import { loadFixture } from '../src/replay/fixture.js';

let servers: RedisServerProcess[] = [];

beforeAll(async () => {
  servers = [await startRedisServer(), await startRedisServer()];
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function replay(f: Fixture) {
  const urls = servers.map((s) => s.url);
  try {
    return await replayFixture(f, urls);
  } finally {
    await Promise.all(
      servers.map(async (s) => {
        const r = new Redis(s.port, '127.0.0.1');
        await r.flushall();
        r.disconnect();
      }),
    );
  }
}

/** Splices `inner` commands into `outer` just before the first command matching `at`. */
function interleave(outer: FixtureCommand[], inner: FixtureCommand[], at: (c: FixtureCommand) => boolean): FixtureCommand[] {
  const i = outer.findIndex(at);
  if (i < 0) throw new Error('interleave point not found');
  return [...outer.slice(0, i), ...inner, ...outer.slice(i)];
}

const writesTo = (pattern: RegExp) => (c: FixtureCommand) => c.cmd.slice(1).some((a) => pattern.test(a)) && c.cmd[0] !== 'get';

describe('recorded RhoConnect scenarios through the real capture path', () => {
  it.each(fixtureFiles())('%s', async (file) => {
    const result = await replay(loadFixture(file));
    expect(result.match, JSON.stringify({ expected: result.expected, actual: result.actual })).toBe(true);
  });
});

describe('interleaved requests (RhoConnect serves them concurrently)', () => {
  const plugin = fixture('01-push-objects-new');
  const sync = fixture('11-query-sync');
  const create = fixture('14-cud-create-from-device');

  it("a plugin write landing in the middle of the same user's device sync still pings", async () => {
    const f: Fixture = {
      ...sync,
      setup: [...sync.setup, ...plugin.setup],
      commands: interleave(sync.commands, plugin.commands, writesTo(/:Product:md_size$/)),
      rhoconnect_pings: plugin.rhoconnect_pings,
    };
    const r = await replay(f);
    expect(r.actual).toEqual([{ user_id: ['alice'], sources: ['Product'] }]);
    expect(r.decisions.map((d) => d.rule)).toContain('plugin-write');
  });

  it("a plugin write for another source inside a device's own create pings only that source", async () => {
    const contact = fixture('16-push-objects-two-sources-two-users');
    const contactWrite = contact.commands.slice(contact.commands.findIndex(writesTo(/^lock:source:application:alice:Contact:md$/)));
    const f: Fixture = {
      ...create,
      setup: [...create.setup, ...contact.setup],
      commands: interleave(create.commands, contactWrite, writesTo(/^lock:source:application:alice:Product:md$/)),
      rhoconnect_pings: [{ params: { user_id: ['alice'], sources: ['Contact'] } }],
    };
    const r = await replay(f);
    expect(r.match, JSON.stringify(r.actual)).toBe(true);
    expect(r.decisions.filter((d) => d.rule === 'device-edit')).toHaveLength(1);
  });

  it('unrelated keys of other applications sharing the Redis change nothing', async () => {
    const noise: FixtureCommand[] = [
      { db: 0, cmd: ['incrby', 'source:otherapp:alice:Product:md_size', '3'] },
      { db: 0, cmd: ['incrby', 'stats:source:application:alice:Product:md_size:hits', '1'] },
      { db: 0, cmd: ['set', 'source:application:alice:Product:md_size:backup', '1'] },
      { db: 0, cmd: ['incrby', 'client:application:alice:Product:cd_size', '1'] },
      { db: 0, cmd: ['incrby', 'source:application::md_size', '1'] },
      { db: 1, cmd: ['incrby', 'source:application:alice:Product:md_size', '1'] },
      { db: 0, cmd: ['sadd', 'sessions', 'zoë✓用户'] },
    ];
    const quiet: Fixture = { ...fixture('13-client-create-register'), commands: noise, rhoconnect_pings: [] };
    expect((await replay(quiet)).actual).toEqual([]);
    const mixed: Fixture = { ...plugin, commands: [...noise, ...plugin.commands, ...noise] };
    expect((await replay(mixed)).match).toBe(true);
  });

  it('logins with colons, spaces and unicode are pinged under their own name', async () => {
    const login = 'ops:zoë 用户';
    const commands = plugin.commands.map((c) => ({ ...c, cmd: c.cmd.map((a) => a.replace(/:alice:/g, `:${login}:`)) }));
    const f: Fixture = { ...plugin, commands, rhoconnect_pings: [{ params: { user_id: [login], sources: ['Product'] } }] };
    const r = await replay(f);
    expect(r.actual).toEqual([{ user_id: [login], sources: ['Product'] }]);
  });
});
