// The connection rhopush reads RhoConnect's users, clients and tokens through: instance 0 of
// `:redis:`, or the whole Redis Cluster (seed nodes in `:redis:`) when `:rhopush: :cluster:` is on.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisEndpoint, Settings } from '../config/settings.js';
import { redisOptions, type ConnectOptions } from './redis-connection.js';

/** A standalone instance or a cluster; both speak the same commands for single-key reads. */
export type StoreClient = Redis | Cluster;

export function isCluster(client: StoreClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * The plain Redis that Resque queues live on. Resque (Ruby's and rhopush's worker alike) moves jobs
 * between keys in other hash slots, which Redis Cluster refuses, so queued pings need a standalone
 * instance.
 */
export function resqueRedis(client: StoreClient): Redis {
  if (isCluster(client)) {
    throw new Error('Resque ping jobs need a standalone Redis: Resque does not run on Redis Cluster (:rhopush: :cluster: true)');
  }
  return client;
}

/** Node options (auth, TLS, reconnects) shared by every connection to a cluster node. */
export function clusterNodeOptions(seed: RedisEndpoint, options: ConnectOptions = {}): RedisOptions {
  const { host: _host, port: _port, db: _db, ...rest } = redisOptions(seed, options);
  return rest;
}

/**
 * No store command waits longer: one sent just as Redis went away (before the connection noticed)
 * would otherwise wait in the reconnection queue for the whole outage, holding its REST answer.
 */
export const STORE_COMMAND_TIMEOUT_MS = 5000;

export function connectStore(settings: Settings, options: ConnectOptions = {}): StoreClient {
  const first = settings.redis[0]!;
  // Auto-pipelining: commands issued in the same tick (many pings reading clients and recording
  // fingerprints at once) share one socket write instead of one write each.
  if (!settings.rhopush.cluster) {
    return new Redis({ ...redisOptions(first, options), enableAutoPipelining: true, commandTimeout: STORE_COMMAND_TIMEOUT_MS });
  }
  return new Cluster(
    settings.redis.map((e) => ({ host: e.host, port: e.port })),
    {
      lazyConnect: options.lazyConnect ?? false,
      // No auto-pipelining: ioredis retries a pipeline after MOVED only when every command in it got
      // the same error, so batches spanning slots would fail during a failover or slot migration.
      enableAutoPipelining: false,
      scaleReads: 'master',
      redisOptions: { ...clusterNodeOptions(first, options), commandTimeout: STORE_COMMAND_TIMEOUT_MS },
      clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
      slotsRefreshTimeout: 2000,
    },
  );
}

/** Resolves once the client can serve commands (or rejects after `timeoutMs`). */
export async function waitStoreReady(client: StoreClient, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'wait') {
    await client.connect();
    if ((client.status as string) === 'ready') return;
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`Redis not ready after ${timeoutMs} ms (${client.status})`)), timeoutMs);
    const onReady = () => done();
    function done(err?: Error) {
      clearTimeout(timer);
      client.off('ready', onReady);
      if (err) reject(err);
      else resolve();
    }
    client.once('ready', onReady);
  });
}
