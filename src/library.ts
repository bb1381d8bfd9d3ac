// The library call: `ping()` is the TypeScript counterpart of RhoConnect's `PingJob.perform`, and
// `enqueuePing()` of `Resque.enqueue(PingJob, ...)`.
import { resqueRedis } from './store/store-connection.js';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadSettings } from './config/load-settings.js';
import { RHOPUSH_DEFAULTS, type Settings } from './config/settings.js';
import type { Daemon } from './daemon.js';
import { openPinger } from './ping/pinger.js';
import { PingError, type PingResult } from './ping/ping-job.js';
import { normalizePingParams, type NormalizedPing, type PingParams } from './ping/ping-params.js';
import type { EnqueuedPing } from './queue/resque-queue.js';
import { enqueueRecorded } from './queue/enqueue.js';
import { PingHistory } from './history/ping-history.js';
import { silentLogger } from './logger.js';
import type { PushAdapters } from './push/registry.js';
import { connectRedis, waitReady } from './store/redis-connection.js';

export interface PingOptions {
  /**
   * Settings, or the path of RhoConnect's settings.yml. Default: RHOPUSH_SETTINGS, else ./settings.yml.
   * Not read by `enqueuePing` when `redis` is given.
   */
  settings?: Settings | string;
  /** Environment section of settings.yml (default: RACK_ENV, else development). */
  environment?: string;
  /** Process environment for RHOPUSH_SETTINGS, REDIS_URL, API_TOKEN, RACK_ENV (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** An open connection to RhoConnect's Redis (instance 0 of `:redis:`); used and left open. */
  redis?: Redis;
  /** A running daemon to ping through, reusing its connections and push adapters. */
  daemon?: Daemon;
  /** Delivery override: one adapter per platform (tests, custom delivery). */
  adapters?: PushAdapters;
  logger?: Logger;
}

export interface EnqueueOptions extends PingOptions {
  /** Resque queue (default: the first of `:rhopush: :queues:`, i.e. `ping`). */
  queue?: string;
}

function resolveSettings(options: PingOptions): Settings {
  if (options.settings !== undefined && typeof options.settings !== 'string') return options.settings;
  const env = options.env ?? process.env;
  const file = options.settings ?? env.RHOPUSH_SETTINGS ?? 'settings.yml';
  return loadSettings(file, { environment: options.environment, env });
}

/**
 * Pings every registered device of the users, as `PingJob.perform` does. Resolves with the result
 * (one entry per device push); rejects with PingParamsError for bad parameters and with PingError
 * (all adapter messages joined, the result attached) when any device push failed.
 */
export async function ping(params: PingParams, options: PingOptions = {}): Promise<PingResult> {
  if (options.daemon) {
    const normalized = normalizePingParams(params, { maxUsers: options.daemon.settings.rhopush.maxUsersPerPing });
    return raiseOnErrors(await options.daemon.ping(normalized, 'library'));
  }
  const settings = resolveSettings(options);
  const normalized = normalizePingParams(params, { maxUsers: settings.rhopush.maxUsersPerPing });
  const pinger = await openPinger(settings, { logger: options.logger, adapters: options.adapters, redis: options.redis });
  try {
    return raiseOnErrors(await pinger.ping(normalized, 'library'));
  } finally {
    await pinger.close();
  }
}

function raiseOnErrors(result: PingResult): PingResult {
  if (result.errors.length > 0) throw new PingError(result);
  return result;
}

/**
 * Queues a ping as a Resque job exactly as `Resque.enqueue(PingJob, params)` writes it, for a
 * rhopush daemon (or a Ruby Resque worker) to run. Rejects with PingParamsError for bad parameters.
 */
export async function enqueuePing(params: PingParams, options: EnqueueOptions = {}): Promise<EnqueuedPing> {
  const redis = options.redis ?? (options.daemon ? resqueRedis(options.daemon.redis) : undefined);
  const settings = options.daemon?.settings ?? (redis && options.settings === undefined ? undefined : resolveSettings(options));
  const queue = options.queue ?? settings?.rhopush.queues[0] ?? RHOPUSH_DEFAULTS.queues[0]!;
  const normalized = normalizePingParams(params, { maxUsers: settings?.rhopush.maxUsersPerPing ?? RHOPUSH_DEFAULTS.maxUsersPerPing });
  if (options.daemon && !options.queue) return options.daemon.enqueue(normalized);
  const history = (r: Redis) => new PingHistory(r, () => settings?.rhopush ?? RHOPUSH_DEFAULTS, options.logger ?? silentLogger);
  if (redis) return enqueueAndRecord(redis, history(redis), normalized, queue);
  const own = connectRedis(settings!.redis[0]!, { connectionName: 'rhopush:enqueue', lazyConnect: true });
  own.on('error', () => undefined);
  try {
    await waitReady(own);
    return await enqueueAndRecord(own, history(own), normalized, queue);
  } finally {
    await own.quit().catch(() => own.disconnect());
  }
}

/** Queues the job and waits until its record is written too (the connection may close next). */
async function enqueueAndRecord(redis: Redis, history: PingHistory, ping: NormalizedPing, queue: string): Promise<EnqueuedPing> {
  try {
    return await enqueueRecorded(redis, history, ping, queue);
  } finally {
    await history.close();
  }
}
