// Every recorded RhoConnect scenario through the real capture path, then `why` for its users, read
// from the replay's Redis before it is flushed, over what happened since the operation began:
// - each user RhoConnect pinged: pinged, for every source RhoConnect pinged;
// - each user whose captured write did not ping (a device's own edit or sync, push_notify off):
//   not pinged for that source, and the reason is the rule that decided its last such write;
// - app-partitioned writes: every user is told that source never pings (settings.yml);
// - every other user RhoConnect has: nothing pinged, and nothing captured for them.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainWhy, type WhyContext, type WhyReport } from '../src/explain/why.js';
import { PingHistory } from '../src/history/ping-history.js';
import { silentLogger } from '../src/logger.js';
import { DeadTokenStore } from '../src/push/dead-tokens.js';
import { fixtureSettings, replayFixture, type ReplayResult } from '../src/replay/replay.js';
import { loadFixture, summarisePing, type Fixture } from '../src/replay/fixture.js';
import { parseKey, SHARED_PARTITION } from '../src/store/keys.js';
import { RhoconnectStore } from '../src/store/rhoconnect-store.js';
import { startRedisServer, type RedisServerProcess } from '../src/kit/redis-server-process.js';
import { fixtureFiles } from './helpers/fixtures.js';

/** The decisions the daemon keeps per user (the ones `why` can explain from history). */
const KEPT = new Set(['device-edit', 'md-size-set', 'push-notify-off', 'app-partition-settings']);

let servers: RedisServerProcess[] = [];

beforeAll(async () => {
  servers = [await startRedisServer(), await startRedisServer()];
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

interface Explained {
  fixture: Fixture;
  result: ReplayResult;
  users: string[];
  explain: (user: string, source?: string) => Promise<WhyReport>;
}

/** Replays the fixture, lets `check` ask `why` on the replay's Redis, then flushes every server. */
async function replayThenExplain(file: string, check: (e: Explained) => Promise<void>): Promise<void> {
  const fixture = loadFixture(file);
  const urls = servers.map((s) => s.url);
  const settings = fixtureSettings(fixture, urls);
  const first = settings.redis[0]!;
  const redis = new Redis({ host: first.host, port: first.port, db: first.db });
  try {
    const result = await replayFixture(fixture, urls);
    const ctx: WhyContext = {
      settings,
      store: new RhoconnectStore(redis),
      history: new PingHistory(redis, () => settings.rhopush, silentLogger),
      deadTokens: new DeadTokenStore(redis, () => ({ ttlDays: 1, feedbackMaxLen: 1 })),
    };
    const users = (await redis.keys('user:*:rho__id')).map((k) => k.slice('user:'.length, -':rho__id'.length)).sort();
    await check({
      fixture,
      result,
      users,
      explain: (user, source) => explainWhy(ctx, user, { since: result.operationStartedAt, source }),
    });
  } finally {
    redis.disconnect();
    await Promise.all(
      servers.map(async (s) => {
        const r = new Redis(s.port, '127.0.0.1');
        await r.flushall();
        r.disconnect();
      }),
    );
  }
}

describe('rhopush why explains every user of every recorded scenario', () => {
  it.each(fixtureFiles())('%s', async (file) => {
    await replayThenExplain(file, async ({ fixture, result, users, explain }) => {
      expect(result.match, 'the replay itself matches RhoConnect (test/capture-fixtures.test.ts)').toBe(true);

      // Users RhoConnect pinged, with the sources of those pings.
      const pinged = new Map<string, Set<string>>();
      for (const p of fixture.rhoconnect_pings.map((x) => summarisePing(x.params))) {
        for (const u of p.user_id) for (const s of p.sources) (pinged.get(u) ?? pinged.set(u, new Set()).get(u)!).add(s);
      }
      // Per (user, source) written without a ping, the rule of the last such write; app-partitioned sources.
      const lastRule = new Map<string, { user: string; source: string; rule: string }>();
      const shared = new Set<string>();
      for (const d of result.decisions) {
        const key = parseKey(d.key);
        if (d.ping || key.kind !== 'md_size') continue;
        if (key.partition === SHARED_PARTITION) shared.add(key.source);
        else if (KEPT.has(d.rule))
          lastRule.set(`${key.partition}\u0000${key.source}`, { user: key.partition, source: key.source, rule: d.rule });
      }

      const checked = new Set<string>();
      for (const [user, sources] of pinged) {
        checked.add(user);
        const why = await explain(user);
        expect(why.verdict.pinged, `${user} was pinged: ${why.verdict.lines.join(' | ')}`).toBe(true);
        for (const source of sources) expect(why.verdict.sources, `${user} pinged for ${source}`).toContain(source);
        expect(
          why.events.some((e) => e.kind === 'ping' && e.text.includes('→ pinged')),
          `${user}'s ping says why`,
        ).toBe(true);
        expect(why.verdict.lines.length).toBeGreaterThan(0);
        if (why.verdict.kind === 'devices') expect(why.verdict.lines[0]).toMatch(/: last ping \d\d:\d\d:\d\d for /);
      }

      for (const { user, source, rule } of lastRule.values()) {
        checked.add(user);
        if (pinged.get(user)?.has(source)) continue;
        const why = await explain(user, source);
        expect(why.verdict.pinged, `${user}/${source} was not pinged: ${why.verdict.lines.join(' | ')}`).toBe(false);
        expect(why.verdict.notPinged[0], `${user}/${source}`).toMatchObject({ source, rule });
        expect(why.events[0]).toMatchObject({ kind: 'decision', sources: [source], rule, pinged: false });
        expect(why.verdict.lines.join('\n'), `${user}/${source}`).toContain(why.verdict.notPinged[0]!.text);
      }

      for (const source of shared) {
        for (const user of users) {
          const why = await explain(user, source);
          expect(why.verdict.notPinged, `${user}/${source}`).toContainEqual({
            source,
            rule: 'app-partition-settings',
            text: `${source}: app-partitioned → never pings`,
          });
          if (!pinged.get(user)?.has(source)) expect(why.verdict.pinged).toBe(false);
        }
      }

      for (const user of users.filter((u) => !checked.has(u))) {
        const why = await explain(user);
        expect(why.verdict.pinged, `${user} was not pinged: ${why.verdict.lines.join(' | ')}`).toBe(false);
        expect(why.events, `${user}: nothing captured`).toEqual([]);
        expect(why.verdict.lines[0]).toMatch(/no ping since \d\d:\d\d:\d\d/);
      }
      // Every scenario has at least one user to explain.
      expect(checked.size + users.length).toBeGreaterThan(0);
    });
  });
});
