// Composition root: the only module that knows every part. Builds them from Settings, starts and
// stops them in order.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Settings } from './config/settings.js';
import { Capture, type CaptureNode, type Change } from './capture/capture.js';
import { ChangeClassifier, type KeyspaceDecision } from './capture/classify.js';
import { CoalescingWindow, type ChangeGroup } from './coalesce/coalescing-window.js';
import { PingJob, type PingResult, type PingTrigger } from './ping/ping-job.js';
import type { PingParams } from './ping/ping-params.js';
import type { Platform, PushAdapter } from './push/adapter.js';
import { createPushAdapters, type PushAdapters } from './push/registry.js';
import { RhoconnectStore } from './store/rhoconnect-store.js';
import { connectRedis, redisOptions, waitReady } from './store/redis-connection.js';
import { Limiter } from './util/limiter.js';
import { silentLogger } from './logger.js';
import type { FastifyInstance } from 'fastify';
import { createApiServer, type HealthReport } from './api/server.js';

export interface DaemonOptions {
  settings: Settings;
  logger?: Logger;
  /** Delivery override (replay, demo, tests): one adapter per platform. */
  adapters?: PushAdapters;
  /** Watch Redis and ping automatically (default true). */
  capture?: boolean;
  /** Serve the HTTP API on `:rhopush: :listen:` (default true). */
  http?: boolean;
  /** Observers, for replay, demo and metrics. */
  onDecision?: (decision: KeyspaceDecision, event: string, node: string, key: string) => void;
  onChange?: (change: Change) => void;
  onGroup?: (group: ChangeGroup) => void;
  onPing?: (result: PingResult, durationMs: number) => void;
}

/** Pings run concurrently up to this bound; the rest wait their turn (nothing is dropped). */
const MAX_CONCURRENT_PINGS = 64;

export class Daemon {
  readonly logger: Logger;
  readonly redis: Redis;
  readonly store: RhoconnectStore;
  readonly pingJob: PingJob;
  readonly window: CoalescingWindow;
  readonly classifier: ChangeClassifier;
  readonly capture?: Capture;
  api?: FastifyInstance;
  private readonly adapters: PushAdapters;
  private readonly limiter = new Limiter(MAX_CONCURRENT_PINGS);
  private readonly inFlight = new Set<Promise<unknown>>();
  private currentSettings: Settings;
  private stopping?: Promise<void>;

  constructor(private readonly options: DaemonOptions) {
    this.currentSettings = options.settings;
    const settings = options.settings;
    this.logger = options.logger ?? silentLogger;
    this.redis = connectRedis(settings.redis[0]!, { connectionName: 'rhopush:store', lazyConnect: true });
    this.redis.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'store connection error'));
    this.store = new RhoconnectStore(this.redis);
    this.adapters = options.adapters ?? createPushAdapters(() => this.currentSettings, this.logger, this.redis);
    this.pingJob = new PingJob(this.store, (p: Platform): PushAdapter => this.adapters.adapterFor(p), this.logger, {
      onPing: (result, ms) => {
        logPing(this.logger, result, ms);
        options.onPing?.(result, ms);
      },
    });
    this.classifier = new ChangeClassifier(settings);
    this.window = new CoalescingWindow(
      { quietMs: settings.rhopush.coalesceMs, maxDelayMs: settings.rhopush.maxDelayMs },
      (group) => this.onGroup(group),
    );
    if (options.capture !== false) {
      const nodes: CaptureNode[] = settings.redis.map((endpoint) => ({
        label: endpoint.label,
        options: redisOptions(endpoint),
        db: endpoint.db,
      }));
      this.capture = new Capture(nodes, this.classifier, {
        onChange: (change) => {
          options.onChange?.(change);
          this.window.add(change.user, change.source, change.at);
        },
        onDecision: options.onDecision,
      }, this.logger);
    }
  }

  get settings(): Settings {
    return this.currentSettings;
  }

  async start(): Promise<void> {
    await this.redis.connect();
    await waitReady(this.redis);
    await this.capture?.start();
    if (this.options.http !== false) {
      this.api = await createApiServer(
        { settings: () => this.settings, ping: (p, t) => this.ping(p, t), store: this.store, health: () => this.health() },
        this.logger,
      );
      const { host, port } = this.settings.rhopush.listen;
      await this.api.listen({ host, port });
    }
    this.logger.info(
      { environment: this.settings.environment, redis: this.settings.redis.map((r) => r.label), delivery: this.settings.rhopush.delivery },
      'rhopush started',
    );
  }

  /** The address the HTTP API listens on (port 0 in settings picks a free one). */
  get apiAddress(): { host: string; port: number } | undefined {
    const addr = this.api?.server.address();
    return addr && typeof addr === 'object' ? { host: addr.address, port: addr.port } : undefined;
  }

  /** Every Redis link and subscription, for /healthz. */
  health(): HealthReport {
    const parts: HealthReport['parts'] = {
      redis: { ok: this.redis.status === 'ready', detail: `store connection ${this.redis.status}` },
    };
    for (const s of this.capture?.status() ?? []) {
      parts[`capture ${s.node}`] = { ok: s.subscribed, detail: s.subscribed ? 'subscribed' : 'not subscribed' };
    }
    return { ok: Object.values(parts).every((p) => p.ok), parts };
  }

  /** Applies new settings to the parts that can change live. */
  applySettings(settings: Settings): void {
    this.currentSettings = settings;
    this.classifier.setSettings(settings);
    this.window.setOptions({ quietMs: settings.rhopush.coalesceMs, maxDelayMs: settings.rhopush.maxDelayMs });
  }

  /** Runs a ping now (REST, CLI, library). */
  ping(params: PingParams, trigger: PingTrigger): Promise<PingResult> {
    return this.track(this.limiter.run(() => this.pingJob.run(params, trigger)));
  }

  private onGroup(group: ChangeGroup): void {
    this.options.onGroup?.(group);
    this.ping({ user_id: [group.user], sources: group.sources }, 'auto').catch((err: Error) => {
      this.logger.error({ user: group.user, sources: group.sources, err: err.message }, 'automatic ping failed');
    });
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const forget = () => this.inFlight.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** Waits until every ping started so far has finished. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Stop capturing, send what is grouped, finish deliveries, close connections. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.capture?.stop();
      await this.api?.close();
      this.window.flushAll();
      await this.drain();
      await this.adapters.close();
      try {
        await this.redis.quit();
      } catch {
        this.redis.disconnect();
      }
      this.logger.info('rhopush stopped');
    })();
    return this.stopping;
  }
}

export function createDaemon(options: DaemonOptions): Daemon {
  return new Daemon(options);
}

function logPing(logger: Logger, result: PingResult, durationMs: number): void {
  const platforms: Record<string, Record<string, number>> = {};
  for (const push of result.pushes) {
    const byOutcome = (platforms[push.platform] ??= {});
    byOutcome[push.outcome] = (byOutcome[push.outcome] ?? 0) + 1;
  }
  logger.info(
    {
      ping: { users: result.users, sources: result.sources, trigger: result.trigger, platforms, errors: result.errors.length },
      ms: Math.round(durationMs * 10) / 10,
    },
    'ping',
  );
}
