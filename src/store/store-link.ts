// The daemon's link to RhoConnect's Redis: the store connection (instance 0 of `:redis:`, or the
// cluster), opened with a clear error when it cannot be, followed while it reconnects (the log
// says when Redis goes and comes back), and reported on /healthz.
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import { RhopushError } from '../errors.js';
import type { HealthPart } from '../util/health.js';
import { checkDatabase, followAvailability, type Availability } from './redis-connection.js';
import { connectStore, waitStoreReady, type StoreClient } from './store-connection.js';

export class StoreLink {
  readonly redis: StoreClient;
  private readonly availability: Availability;
  /** Opened here (closed on `close`), or the caller's (left open). */
  private readonly owned: boolean;
  private lastError?: string;

  constructor(
    private readonly settings: Settings,
    logger: Logger,
    given?: StoreClient,
  ) {
    this.owned = given === undefined;
    this.redis = given ?? connectStore(settings, { connectionName: 'rhopush:store', lazyConnect: true });
    if (this.owned) {
      this.redis.on('error', (err: Error) => {
        this.lastError = err.message;
        logger.debug({ err: err.message }, 'store connection error');
      });
    }
    const first = settings.redis[0]!;
    this.availability = followAvailability(this.redis, settings.rhopush.cluster ? `cluster ${first.label}` : first.label, logger);
  }

  /** Checks every database of `:redis:` exists, writing nothing (ioredis would fall back to 0). */
  async checkDatabases(): Promise<void> {
    if (this.settings.rhopush.cluster) return;
    for (const endpoint of this.settings.redis) await checkDatabase(endpoint);
  }

  /** Connects (when it is ours) and waits until commands can be served. */
  async connect(): Promise<void> {
    try {
      if (this.owned && this.redis.status === 'wait') await this.redis.connect();
      await waitStoreReady(this.redis);
    } catch (err) {
      // ioredis rejects with "Connection is closed."; the reason is in the error event before it.
      throw new RhopushError('REDIS_UNREACHABLE_AT_START', {
        endpoint: this.settings.redis[0]!.label,
        reason: this.lastError ?? (err as Error).message,
      });
    }
  }

  /** Why Redis cannot serve a command now (it is reconnecting), or undefined when it can. */
  unavailable(): string | undefined {
    return this.availability.unavailable();
  }

  healthParts(): Record<string, HealthPart> {
    return {
      redis: { ok: this.redis.status === 'ready', detail: this.availability.unavailable() ?? `store connection ${this.redis.status}` },
    };
  }

  async close(): Promise<void> {
    this.availability.stop();
    if (!this.owned) return;
    await this.redis.quit().catch(() => undefined);
    this.redis.disconnect();
  }
}
