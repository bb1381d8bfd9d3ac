import { Redis, type RedisOptions } from 'ioredis';
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
    const timer = setTimeout(() => done(new Error(`Redis ${redis.options.host}:${redis.options.port} not ready after ${timeoutMs} ms`)), timeoutMs);
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
