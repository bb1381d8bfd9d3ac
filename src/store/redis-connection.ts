import { Redis, type RedisOptions } from 'ioredis';
import { RhopushError } from '../errors.js';
import type { RedisEndpoint } from '../config/settings.js';

export interface ConnectOptions {
  /** Name shown by CLIENT LIST, so operators can tell rhopush's connections apart. */
  connectionName?: string;
  /** Fail commands at once while disconnected instead of queueing them (subscribers, probes). */
  failFast?: boolean;
  lazyConnect?: boolean;
}

/** Connection options for one RhoConnect Redis instance. */
export function redisOptions(endpoint: RedisEndpoint, options: ConnectOptions = {}): RedisOptions {
  return {
    host: endpoint.host,
    port: endpoint.port,
    db: endpoint.db,
    username: endpoint.username,
    password: endpoint.password,
    tls: endpoint.tls ? {} : undefined,
    connectionName: options.connectionName ?? 'rhopush',
    lazyConnect: options.lazyConnect ?? false,
    enableOfflineQueue: !options.failFast,
    maxRetriesPerRequest: options.failFast ? 0 : 20,
    // Reconnect forever with a capped backoff: capture must come back by itself.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  };
}

export function connectRedis(endpoint: RedisEndpoint, options: ConnectOptions = {}): Redis {
  return new Redis(redisOptions(endpoint, options));
}

/** Waits until a connection is ready (or rejects with the first connection error). */
export async function waitReady(redis: Redis, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return;
  if (redis.status === 'wait') {
    await redis.connect();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => done(new Error(`Redis ${redis.options.host}:${redis.options.port} not ready after ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onReady = () => done();
    const onError = (err: Error) => done(err);
    function done(err?: Error) {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      if (err) reject(err);
      else resolve();
    }
    redis.once('ready', onReady);
    redis.once('error', onError);
  });
}

/** The events rhopush follows on a connection (ioredis' Redis and Cluster both emit them). */
interface ConnectionEvents {
  status: string;
  on(event: 'ready' | 'close' | 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface Availability {
  /** Why the connection cannot serve commands now, or undefined when it can. */
  unavailable(): string | undefined;
  /** Stops reporting (before closing the connection on purpose). */
  stop(): void;
}

/**
 * Follows a connection that reconnects by itself, and says so in the log: once when it drops
 * (waiting for Redis), every `reminderMs` while it stays down, and when it is back (with how long
 * it was gone). `unavailable()` answers requests that must not wait for it (REST pings, /healthz).
 */
export function followAvailability(
  redis: ConnectionEvents,
  label: string,
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void },
  reminderMs = 60_000,
): Availability {
  let stopped = false;
  let everReady = redis.status === 'ready';
  let downSince: number | undefined;
  let lastError: string | undefined;
  let reminder: NodeJS.Timeout | undefined;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  redis.on('error', (err: Error) => (lastError = err.message));
  redis.on('ready', () => {
    everReady = true;
    clearInterval(reminder);
    if (downSince !== undefined && !stopped) {
      const downMs = Date.now() - downSince;
      logger.info({ redis: label, downMs }, `Redis ${label} is back after ${seconds(downMs)}`);
    }
    downSince = undefined;
    lastError = undefined;
  });
  redis.on('close', () => {
    if (stopped || !everReady || downSince !== undefined) return;
    downSince = Date.now();
    logger.warn(
      { redis: label },
      `Redis ${label} unreachable: waiting for it (automatic pings wait and retry, REST pings answer 503, capture catches up once it is back)`,
    );
    reminder = setInterval(() => {
      if (downSince === undefined) return;
      logger.warn(
        { redis: label, downMs: Date.now() - downSince, err: lastError },
        `still waiting for Redis ${label} (down ${seconds(Date.now() - downSince)})`,
      );
    }, reminderMs);
    reminder.unref();
  });
  redis.on('end', () => clearInterval(reminder));
  return {
    unavailable() {
      if (redis.status === 'ready') return undefined;
      return `Redis ${label} unreachable (connection ${redis.status}${lastError ? `: ${lastError}` : ''})`;
    },
    stop() {
      stopped = true;
      clearInterval(reminder);
    },
  };
}

/**
 * Checks that an endpoint's database exists. ioredis selects the database after connecting and, if
 * the server refuses it, carries on in database 0: rhopush would then read and write the wrong one.
 * Throws a message naming the setting to correct; a server that cannot be reached is left to the
 * connection that follows (it reports that itself).
 */
export async function checkDatabase(endpoint: RedisEndpoint, timeoutMs = 5000): Promise<void> {
  if (endpoint.db === 0) return;
  const probe = new Redis({
    ...redisOptions({ ...endpoint, db: 0 }, { connectionName: 'rhopush:check', lazyConnect: true, failFast: true }),
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
  });
  probe.on('error', () => undefined);
  try {
    try {
      await probe.connect();
    } catch {
      return;
    }
    try {
      await probe.select(endpoint.db);
    } catch (err) {
      const count = await probe
        .call('CONFIG', 'GET', 'databases')
        .then((reply) => Number((reply as string[])[1]))
        .catch(() => NaN);
      const has = Number.isInteger(count) && count > 0 ? ` (it has ${count}: 0 to ${count - 1})` : '';
      throw new RhopushError('REDIS_DATABASE_MISSING', { endpoint: endpoint.label, db: endpoint.db, has, reason: (err as Error).message });
    }
  } finally {
    probe.disconnect();
  }
}
