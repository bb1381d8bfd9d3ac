// Composition root: the only module that knows every part. Builds them from Settings, starts and
// stops them in order.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Settings } from './config/settings.js';
import { Capture, type CaptureNode, type Change } from './capture/capture.js';
import { ChangeClassifier, type KeyspaceDecision } from './capture/classify.js';
import { CoalescingWindow, type ChangeGroup } from './coalesce/coalescing-window.js';
import { PingJob, type PingResult, type PingTrigger } from './ping/ping-job.js';
import type { NormalizedPing, PingParams } from './ping/ping-params.js';
import { enqueuePingJob, type EnqueuedPing } from './ping/resque-queue.js';
import { ResqueWorker } from './ping/resque-worker.js';
import type { Platform, PushAdapter } from './push/adapter.js';
import { createPushAdapters, type PushAdapters } from './push/registry.js';
import { RhoconnectStore } from './store/rhoconnect-store.js';
import { connectRedis, redisOptions, waitReady } from './store/redis-connection.js';
import { Limiter } from './util/limiter.js';
import { silentLogger } from './logger.js';
import type { FastifyInstance } from 'fastify';
import { createApiServer, type HealthReport } from './api/server.js';
import { Metrics } from './metrics.js';
import { parseSettings } from './config/load-settings.js';
import { SettingsWatcher, type ReloadResult } from './config/settings-watcher.js';

export interface DaemonOptions {
  settings: Settings;
  logger?: Logger;
  /** Delivery override (replay, demo, tests): one adapter per platform. */
  adapters?: PushAdapters;
  /** Watch Redis and ping automatically (default true). */
  capture?: boolean;
  /** Serve the HTTP API on `:rhopush: :listen:` (default true). */
  http?: boolean;
  /** Consume Resque ping jobs from `:rhopush: :queues:` (default true). */
  queue?: boolean;
  /** An open connection to instance 0 of `:redis:` to use instead of opening one; left open on stop. */
  redis?: Redis;
  /** Observers, for replay, demo and metrics. */
  onDecision?: (decision: KeyspaceDecision, event: string, node: string, key: string) => void;
  onChange?: (change: Change) => void;
  onGroup?: (group: ChangeGroup) => void;
  onPing?: (result: PingResult, durationMs: number) => void;
  /** Prometheus metrics to record into (default: a fresh registry per daemon). */
  metrics?: Metrics;
  /** Follow edits of the settings file and apply them live (`rhopush run`). */
  watchSettings?: boolean | { debounceMs?: number };
}

export interface StopOptions {
  /** Upper bound for sending grouped pings and finishing deliveries (default 10 s). */
  timeoutMs?: number;
}

const DEFAULT_STOP_TIMEOUT_MS = 10_000;

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
  readonly metrics: Metrics;
  api?: FastifyInstance;
  private watcher?: SettingsWatcher;
  worker?: ResqueWorker;
  private readonly ownsRedis: boolean;
  private readonly adapters: PushAdapters;
  private readonly limiter = new Limiter(MAX_CONCURRENT_PINGS);
  private readonly inFlight = new Set<Promise<unknown>>();
  private currentSettings: Settings;
  private stopping?: Promise<void>;
  private lastRedisError?: string;

  constructor(private readonly options: DaemonOptions) {
    this.currentSettings = options.settings;
    const settings = options.settings;
    this.logger = options.logger ?? silentLogger;
    this.metrics = options.metrics ?? new Metrics();
    this.ownsRedis = options.redis === undefined;
    this.redis = options.redis ?? connectRedis(settings.redis[0]!, { connectionName: 'rhopush:store', lazyConnect: true });
    if (this.ownsRedis) {
      this.redis.on('error', (err: Error) => {
        this.lastRedisError = err.message;
        this.logger.debug({ err: err.message }, 'store connection error');
      });
    }
    this.store = new RhoconnectStore(this.redis);
    this.adapters = options.adapters ?? createPushAdapters(() => this.currentSettings, this.logger, this.redis);
    this.pingJob = new PingJob(this.store, (p: Platform): PushAdapter => this.adapters.adapterFor(p), this.logger, {
      onPing: (result, ms) => {
        logPing(this.logger, result, ms);
        this.metrics.ping(result, ms);
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
        onDecision: (decision, event, node, key) => {
          this.metrics.keyspaceEvent(event);
          this.metrics.decision(decision.rule);
          options.onDecision?.(decision, event, node, key);
        },
      }, this.logger);
      this.capture.on('node-ready', (node: string, reconnects: number) => {
        if (reconnects > 0) this.metrics.reconnect(node);
      });
    }
    if (options.watchSettings && settings.file !== '<inline>') {
      const file = settings.file;
      const environment = settings.environment;
      this.watcher = new SettingsWatcher({
        file,
        current: () => this.currentSettings,
        parse: (text) => parseSettings(text, file, { environment }),
        apply: (next) => this.applySettings(next),
        logger: this.logger,
        debounceMs: typeof options.watchSettings === 'object' ? options.watchSettings.debounceMs : undefined,
        onReload: (result) => {
          if (result.status !== 'unchanged') this.metrics.configReload(result.status === 'applied');
        },
      });
    }
  }

  get settings(): Settings {
    return this.currentSettings;
  }

  async start(): Promise<void> {
    // Watch before connecting: an edit made while rhopush starts is not missed.
    await this.watcher?.start();
    try {
      if (this.ownsRedis) await this.redis.connect();
      await waitReady(this.redis);
    } catch (err) {
      // ioredis rejects with "Connection is closed."; the reason is in the error event before it.
      const endpoint = this.settings.redis[0]!;
      throw new Error(
        `cannot connect to Redis ${endpoint.label} (${this.lastRedisError ?? (err as Error).message}): start it or correct :redis: (or REDIS_URL); \`rhopush doctor\` checks the setup`,
      );
    }
    await this.capture?.start();
    if (this.options.queue !== false) {
      const first = this.settings.redis[0]!;
      this.worker = new ResqueWorker({
        redis: this.redis,
        blockingConnection: () => connectRedis(first, { connectionName: 'rhopush:queue-fetch' }),
        queues: this.settings.rhopush.queues,
        concurrency: this.settings.rhopush.workerConcurrency,
        heartbeatTtlMs: this.settings.rhopush.leaseMs,
        maxUsers: () => this.settings.rhopush.maxUsersPerPing,
        run: (ping) => this.ping(ping, 'queue'),
        logger: this.logger,
        onJobFinished: (_queue, outcome) => this.metrics.jobOutcome(outcome),
        onQueueDepth: (queue, depth) => this.metrics.setQueueDepth(depth, queue),
      });
      await this.worker.start();
    }
    if (this.options.http !== false) {
      this.api = await createApiServer(
        {
          settings: () => this.settings,
          ping: (p, t) => this.ping(p, t),
          enqueue: (p) => this.enqueue(p),
          store: this.store,
          health: () => this.health(),
          metrics: this.metrics,
        },
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
    if (this.worker) {
      const w = this.worker.status();
      parts['queue worker'] = { ok: w.running, detail: `${w.running ? 'running' : 'stopped'}, ${w.inHand} in hand, ${w.processed} done, ${w.failed} failed` };
    }
    // A rejected settings file is a warning, not a failure: the last good settings keep serving.
    const problem = this.watcher?.problem;
    parts.config = problem
      ? { ok: true, warning: problem.message, detail: `running with the last good settings since ${problem.since.toISOString()}` }
      : { ok: true, detail: this.settings.file };
    return { ok: Object.values(parts).every((p) => p.ok), parts };
  }

  /** Reads the settings file again now (SIGHUP), even when it looks unchanged. */
  reloadSettings(): ReloadResult | undefined {
    return this.watcher?.reload(true);
  }

  /** Applies new settings to the parts that can change live. */
  applySettings(settings: Settings): void {
    // Only a logger of our caller's: the shared silent logger must stay silent.
    if (this.options.logger && settings.rhopush.logLevel !== this.currentSettings.rhopush.logLevel) this.logger.level = settings.rhopush.logLevel;
    this.currentSettings = settings;
    this.classifier.setSettings(settings);
    this.window.setOptions({ quietMs: settings.rhopush.coalesceMs, maxDelayMs: settings.rhopush.maxDelayMs });
  }

  /** Runs a ping now (REST, CLI, library, queue jobs). */
  ping(params: PingParams | NormalizedPing, trigger: PingTrigger): Promise<PingResult> {
    return this.track(this.limiter.run(() => this.pingJob.run(params, trigger)));
  }

  /** Queues a ping as a Resque job on the first of `:rhopush: :queues:`. */
  enqueue(ping: NormalizedPing): Promise<EnqueuedPing> {
    return enqueuePingJob(this.redis, ping, this.settings.rhopush.queues[0]);
  }

  private onGroup(group: ChangeGroup): void {
    this.options.onGroup?.(group);
    this.metrics.group(group.changes);
    const run = this.limiter.run(() => {
      this.metrics.pingStarted(group.firstAt);
      return this.pingJob.run({ user_id: [group.user], sources: group.sources }, 'auto');
    });
    this.track(run).then(
      () => this.metrics.pingFinished(group.firstAt),
      (err: Error) => this.logger.error({ user: group.user, sources: group.sources, err: err.message }, 'automatic ping failed'),
    );
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

  /**
   * Stop capturing, send what is grouped, finish deliveries (within `timeoutMs`), close connections.
   * A change captured before the call is still pinged.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.stopping ??= (async () => {
      const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
      const left = () => Math.max(1, deadline - Date.now());
      await this.watcher?.close();
      if (this.capture) {
        // Every event written before the stop reaches us before the subscription closes.
        try {
          await this.capture.barrier(Math.min(left(), this.settings.rhopush.canaryTimeoutMs));
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, 'stopping without confirming every change was received');
        }
        await within(this.capture.stop(), left());
      }
      // The API stops taking requests and waits for the ones it is serving; their pings drain too.
      const apiClosed = this.api?.close() ?? Promise.resolve();
      // The worker finishes the jobs in hand (their pings need the adapters, closed below).
      await within(this.worker?.stop() ?? Promise.resolve(), left());
      const pending = this.window.flushAll();
      if (pending > 0) this.logger.info({ users: pending }, 'sending grouped pings before stopping');
      if (!(await within(Promise.all([apiClosed, this.drain()]), left()))) {
        this.logger.warn({ pings: this.inFlight.size }, 'shutdown timeout: stopping with pings still in flight');
      }
      await within(this.adapters.close(), left());
      if (this.ownsRedis) {
        await within(this.redis.quit(), left());
        this.redis.disconnect();
      }
      this.logger.info('rhopush stopped');
    })();
    return this.stopping;
  }
}

/** True when `work` settled within `ms`. */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true, () => true), timedOut]);
  } finally {
    clearTimeout(timer);
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
