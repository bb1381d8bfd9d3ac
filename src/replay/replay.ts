// `rhopush replay`: runs recorded RhoConnect scenarios through the real capture path against a
// scratch Redis and reports the pings rhopush decides next to the ones RhoConnect sent.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { parseSettings } from '../config/load-settings.js';
import type { RedisEndpoint, Settings } from '../config/settings.js';
import type { KeyspaceDecision } from '../rules/classify.js';
import { createDaemon } from '../daemon.js';
import type { PushAdapters } from '../push/registry.js';
import { startRedisServer, type RedisServerProcess } from '../kit/redis-server-process.js';
import { silentLogger } from '../logger.js';
import { loadFixture, pingsMatch, summarisePing, type Fixture, type FixtureCommand, type PingSummary } from './fixture.js';

export interface ReplayDecision {
  key: string;
  event: string;
  rule: string;
  ping: boolean;
}

export interface ReplayResult {
  file: string;
  expected: PingSummary[];
  actual: PingSummary[];
  match: boolean;
  /** Every data-write decision made during `commands`, with the rule that made it. */
  decisions: ReplayDecision[];
  /**
   * When `commands` began (ms since the epoch, this machine's clock): what rhopush recorded since
   * then (its history, in instance 0 until the servers are flushed) is the operation's, not the setup's.
   */
  operationStartedAt: number;
}

export interface ReplayOptions {
  /** Existing Redis servers to replay into (one per fixture instance); default: private servers. */
  redis?: string[];
  logger?: Logger;
  onProgress?: (done: number, total: number, file: string) => void;
}

/** Clock jumps longer than this wait until every event written so far has been classified. */
const PACE_BARRIER_MS = 100;
/** The least time between a recorded phase's setup and its operation (the recorder's quiet gap). */
const PHASE_GAP_MS = 600;

/** Commands that change nothing or would disturb the replay connection. */
const SKIPPED = new Set([
  'multi',
  'exec',
  'discard',
  'watch',
  'unwatch',
  'select',
  'monitor',
  'subscribe',
  'psubscribe',
  'publish',
  'client',
  'quit',
]);

/** Replays fixture files one after another; servers are shared and flushed between files. */
export async function replayFiles(files: string[], options: ReplayOptions = {}): Promise<ReplayResult[]> {
  const fixtures = files.map((f) => loadFixture(f));
  const needed = Math.max(1, ...fixtures.map((f) => instancesOf(f).length));
  const servers: RedisServerProcess[] = [];
  const urls = options.redis ?? [];
  if (urls.length > 0 && urls.length < needed) {
    throw new Error(`these fixtures use ${needed} Redis instances; --redis gave ${urls.length}`);
  }
  try {
    if (urls.length === 0) for (let i = 0; i < needed; i++) servers.push(await startRedisServer());
    const endpoints = urls.length > 0 ? urls : servers.map((s) => s.url);
    await assertEmpty(endpoints, urls.length > 0);
    const results: ReplayResult[] = [];
    for (const [i, fixture] of fixtures.entries()) {
      results.push(await replayFixture(fixture, endpoints, options.logger ?? silentLogger));
      await flush(endpoints);
      options.onProgress?.(i + 1, fixtures.length, fixture.file);
    }
    return results;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

function instancesOf(f: Fixture): string[] {
  return Array.isArray(f.settings.redis) ? f.settings.redis : [f.settings.redis];
}

async function withClients<T>(urls: string[], fn: (clients: Redis[]) => Promise<T>): Promise<T> {
  const clients = urls.map((u) => new Redis(u, { lazyConnect: false, maxRetriesPerRequest: 1 }));
  try {
    return await fn(clients);
  } finally {
    clients.forEach((c) => c.disconnect());
  }
}

async function assertEmpty(urls: string[], userGiven: boolean): Promise<void> {
  if (!userGiven) return;
  await withClients(urls, async (clients) => {
    for (const [i, c] of clients.entries()) {
      const size = await c.dbsize();
      if (size > 0) throw new Error(`refusing to replay into ${urls[i]}: it holds ${size} keys (give an empty scratch Redis)`);
    }
  });
}

async function flush(urls: string[]): Promise<void> {
  await withClients(urls, async (clients) => {
    await Promise.all(clients.map((c) => c.flushall()));
  });
}

/** The fixture's own settings, pointed at the replay servers. */
export function fixtureSettings(fixture: Fixture, urls: string[]): Settings {
  const settings = parseSettings(fixture.settings.settings_yml, fixture.file, { environment: fixture.settings.environment, env: {} });
  const redis: RedisEndpoint[] = instancesOf(fixture).map((_, i) => {
    const u = new URL(urls[i]!);
    const db = settings.redis[i]?.db ?? 0;
    return { host: u.hostname, port: Number(u.port || 6379), db, label: `${u.hostname}:${u.port}`, password: u.password || undefined };
  });
  return {
    ...settings,
    redis,
    // Replay decides; it never delivers. Grouping waits for the replay's own flush.
    rhopush: { ...settings.rhopush, delivery: 'log', coalesceMs: 60_000, maxDelayMs: 60_000 },
  };
}

const recordingAdapters: PushAdapters = {
  adapterFor: () => ({ send: async () => ({ outcome: 'logged' as const }), close: async () => {} }),
  close: async () => {},
};

export async function replayFixture(fixture: Fixture, urls: string[], logger: Logger = silentLogger): Promise<ReplayResult> {
  const settings = fixtureSettings(fixture, urls);
  const pings: PingSummary[] = [];
  const decisions: ReplayDecision[] = [];
  let recording = false;
  let operationStartedAt: number | undefined;
  // The capture rules' clock follows the recording, so that what expired live expires here too.
  let clock = 0;
  const daemon = createDaemon({
    settings,
    logger,
    clock: () => clock,
    adapters: recordingAdapters,
    // Replay needs no HTTP API; binding :listen: would collide with a running daemon.
    http: false,
    onPing: (r) => {
      if (recording) pings.push({ user_id: r.users, sources: r.sources });
    },
    onDecision: (d: KeyspaceDecision, event, _node, key) => {
      if (recording && d.user !== undefined && d.rule !== 'device-edit-mark') decisions.push({ key, event, rule: d.rule, ping: d.ping });
    },
  });
  const instanceIndex = new Map(instancesOf(fixture).map((label, i) => [label, i]));
  const connections = new Map<string, Redis>();
  const connection = (c: FixtureCommand): Redis => {
    const index = c.instance === undefined ? 0 : (instanceIndex.get(c.instance) ?? 0);
    const id = `${index}/${c.db ?? 0}`;
    let conn = connections.get(id);
    if (!conn) {
      conn = new Redis(urls[index]!, { db: c.db ?? 0, maxRetriesPerRequest: 1 });
      connections.set(id, conn);
    }
    return conn;
  };
  try {
    await daemon.start();
    const writes = await writeFilter(connection({ db: 0, cmd: ['ping'] }));
    const settle = async () => {
      await daemon.capture!.barrier();
      daemon.window.flushAll();
      await daemon.drain();
    };
    // Setup times count from the recording's start, the operation's from its own start, which came
    // after the setup's last command and the recorder's quiet gap.
    const pace = async (ms: number) => {
      // Events already written are classified at their own time before the clock jumps ahead.
      if (ms - clock > PACE_BARRIER_MS) await daemon.capture!.barrier();
      clock = Math.max(clock, ms);
    };
    await runCommands(fixture.setup, connection, writes, (c) => pace((c.t_us ?? 0) / 1000));
    await settle();
    recording = true;
    operationStartedAt = Date.now();
    const start = clock + PHASE_GAP_MS;
    await runCommands(fixture.commands, connection, writes, (c) => pace(start + (c.t_us ?? 0) / 1000));
    await settle();
  } finally {
    await daemon.stop();
    for (const c of connections.values()) c.disconnect();
  }
  const expected = fixture.rhoconnect_pings.map((p) => summarisePing(p.params));
  return {
    file: fixture.file,
    expected,
    actual: pings,
    match: pingsMatch(expected, pings),
    decisions,
    operationStartedAt: operationStartedAt ?? Date.now(),
  };
}

async function runCommands(
  commands: FixtureCommand[],
  connection: (c: FixtureCommand) => Redis,
  isWrite: (name: string) => Promise<boolean>,
  pace: (c: FixtureCommand) => Promise<void>,
): Promise<void> {
  for (const c of commands) {
    const [name, ...args] = c.cmd;
    if (!(await isWrite(name!))) continue;
    await pace(c);
    await connection(c).call(name!, ...args);
  }
}

/** Writes only: Redis itself says which commands are read-only (COMMAND INFO flags). */
export async function writeFilter(redis: Redis): Promise<(name: string) => Promise<boolean>> {
  const cache = new Map<string, boolean>();
  return async (raw: string) => {
    const name = raw.toLowerCase();
    if (SKIPPED.has(name)) return false;
    let write = cache.get(name);
    if (write === undefined) {
      const info = (await redis.call('COMMAND', 'INFO', name)) as Array<[string, number, string[]] | null>;
      const flags = info[0]?.[2] ?? [];
      write = info[0] !== null && info[0] !== undefined && !flags.includes('readonly');
      cache.set(name, write);
    }
    return write;
  };
}
