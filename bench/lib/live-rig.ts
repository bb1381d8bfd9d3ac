// rhopush delivering live to the loopback APNs stand-in (token auth with a key made at run time,
// the stand-in's CA trusted through `:apns: :ca:`): its settings in a scratch directory, and the
// whole rig the latency and soak benchmarks drive (Redis, registered iPhones, stand-in, `rhopush run`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  ApnsStandIn,
  apnsTokenKey,
  numberedSources,
  startRedisServer,
  tokenNumber,
  writeSettings,
  type ApnsTokenKey,
  type Endpoint,
  type RedisServerProcess,
  type SettingsOptions,
  type YamlMap,
} from '../../src/kit/index.js';
import { startDaemonOnFreePort, type DaemonProcess } from './daemon-process.js';
import { BENCH_TOPIC, registerIphones } from './devices.js';

export interface LiveSettingsOptions {
  redisPort: number;
  /** Source0 … SourceN-1, user-partitioned with push_notify on. */
  sources: number;
  listenPort: number;
  apns: Endpoint;
  key: ApnsTokenKey;
  coalesceMs?: number;
  maxDelayMs?: number;
  logLevel?: string;
  apiToken?: string;
  /** Other `:rhopush:` keys (e.g. `history_ttl_hours`). */
  rhopush?: YamlMap;
}

/** Environment `bench`, live delivery through token auth to the stand-in, for `BENCH_TOPIC`. */
export function liveSettings(o: LiveSettingsOptions): SettingsOptions {
  return {
    environment: 'bench',
    redis: o.redisPort,
    sources: numberedSources(o.sources),
    apiToken: o.apiToken,
    listen: o.listenPort,
    delivery: 'live',
    coalesceMs: o.coalesceMs ?? 100,
    maxDelayMs: o.maxDelayMs ?? 1000,
    rhopush: { log_level: o.logLevel ?? 'info', ...o.rhopush },
    apns: { endpoint: o.apns, key: o.key, topic: BENCH_TOPIC },
  };
}

/** A scratch directory for settings.yml and its credential files; `remove()` deletes it. */
export interface SettingsDir {
  dir: string;
  /** Writes the settings and their files; returns the settings file. */
  write(options: LiveSettingsOptions): string;
  remove(): void;
}

export function settingsDir(): SettingsDir {
  const dir = mkdtempSync(join(tmpdir(), 'rhopush-bench-'));
  return {
    dir,
    write: (o) => writeSettings(dir, liveSettings(o)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface LiveRig {
  redisServer: RedisServerProcess;
  /** A connection to write with. */
  redis: Redis;
  standIn: ApnsStandIn;
  key: ApnsTokenKey;
  dir: SettingsDir;
  /** `rhopush run` on a free port, delivering live to the stand-in with this grouping. */
  startDaemon(grouping?: { coalesceMs?: number; maxDelayMs?: number }): Promise<DaemonProcess>;
  stop(): Promise<void>;
}

/**
 * A private Redis (notifications on) with bench users 0 … `users - 1` and their iPhones, and the
 * APNs stand-in in this process, calling `onPush` with the bench user of every push that arrives.
 */
export async function startLiveRig(o: { users: number; sources: number; onPush: (user: number) => void }): Promise<LiveRig> {
  const redisServer = await startRedisServer({ args: ['--notify-keyspace-events', 'K$'] });
  const redis = new Redis(redisServer.port, '127.0.0.1');
  const key = apnsTokenKey();
  const standIn = await ApnsStandIn.start({
    token: key,
    topics: [BENCH_TOPIC],
    relay: false,
    keepRequests: false,
    onRequest: (r) => o.onPush(tokenNumber(r.token)),
  });
  const dir = settingsDir();
  const stop = async () => {
    redis.disconnect();
    await standIn.close();
    await redisServer.stop();
    dir.remove();
  };
  try {
    await registerIphones(redis, 0, o.users);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    redisServer,
    redis,
    standIn,
    key,
    dir,
    startDaemon: (grouping = {}) =>
      startDaemonOnFreePort((listenPort) =>
        dir.write({ redisPort: redisServer.port, sources: o.sources, listenPort, apns: standIn, key, ...grouping }),
      ),
    stop,
  };
}
