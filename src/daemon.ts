// Composition root: builds the parts from Settings in flow order, starts them, stops them in
// reverse. It knows every part and does nothing else; each part's work lives in its own stage.
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ApiDeps } from './api/deps.js';
import { serveApi } from './api/server.js';
import { AutoPinger } from './coalesce/auto-pinger.js';
import { CoalescingWindow, type ChangeGroup } from './coalesce/coalescing-window.js';
import type { Settings } from './config/settings.js';
import { SettingsWatcher, type ReloadResult } from './config/settings-watcher.js';
import type { Capture, Change } from './intake/capture.js';
import { silentLogger } from './logger.js';
import { Metrics } from './metrics.js';
import type { PingResult, PingTrigger } from './ping/ping-job.js';
import type { NormalizedPing, PingParams } from './ping/ping-params.js';
import { Pinger } from './ping/pinger.js';
import { PingHistory } from './history/ping-history.js';
import { explainWhy, type WhyOptions, type WhyReport } from './explain/why.js';
import { DeadTokenStore } from './push/dead-tokens.js';
import { enqueueRecorded } from './queue/enqueue.js';
import { createPushAdapters, type PushAdapters } from './push/registry.js';
import { queueDepths, type EnqueuedPing } from './queue/resque-queue.js';
import { workerForSettings, type QueuedRecord, type ResqueWorker } from './queue/resque-worker.js';
import { CaptureSupervisor } from './recovery/capture-supervisor.js';
import type { PingSnapshot } from './recovery/fingerprint-keeper.js';
import { ChangeClassifier, type KeyspaceDecision } from './rules/classify.js';
import { topologyForSettings, type ClusterTopology } from './store/cluster-topology.js';
import { RhoconnectStore } from './store/rhoconnect-store.js';
import { StoreLink } from './store/store-link.js';
import { isCluster, resqueRedis, type StoreClient } from './store/store-connection.js';
import { healthReport, type HealthReport } from './util/health.js';
import { within } from './util/within.js';

export interface DaemonOptions {
  settings: Settings;
  logger?: Logger;
  /** Delivery override (replay, demo, tests): one adapter per platform. */
  adapters?: PushAdapters;
  /** Where `:delivery: log` prints device pushes (default: `logger`; `rhopush ping` shows them whatever its log level). */
  deliveryLogger?: Logger;
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
  /** The time the capture rules read, in ms (default Date.now; replay drives it from a fixture's timestamps). */
  clock?: () => number;
  /** Follow edits of the settings file and apply them live (`rhopush run`). */
  watchSettings?: boolean | { debounceMs?: number };
}

export interface StopOptions {
  /** Upper bound for sending grouped pings and finishing deliveries (default 10 s). */
  timeoutMs?: number;
}

const DEFAULT_STOP_TIMEOUT_MS = 10_000;

export class Daemon {
  readonly logger: Logger;
  readonly metrics: Metrics;
  // store
  private readonly link: StoreLink;
  /** Users, clients, tokens: instance 0 of `:redis:`, or the Redis Cluster. */
  readonly redis: StoreClient;
  readonly store: RhoconnectStore;
  /** Cluster mode: the masters capture follows. */
  readonly topology?: ClusterTopology;
  // ping, push, and the record of every ping
  readonly pinger: Pinger;
  readonly history: PingHistory;
  // rules, coalesce
  readonly classifier: ChangeClassifier;
  readonly window: CoalescingWindow;
  private readonly autoPinger: AutoPinger<PingSnapshot>;
  // intake and recovery: capture with leases, catch-up and canaries on every node
  readonly supervisor?: CaptureSupervisor;
  // entry points
  api?: FastifyInstance;
  worker?: ResqueWorker;
  private readonly watcher?: SettingsWatcher;
  private currentSettings: Settings;
  private stopping?: Promise<void>;

  constructor(private readonly options: DaemonOptions) {
    const settings = (this.currentSettings = options.settings);
    const logger = (this.logger = options.logger ?? silentLogger);
    const metrics = (this.metrics = options.metrics ?? new Metrics());

    this.link = new StoreLink(settings, logger, options.redis);
    this.redis = this.link.redis;
    this.store = new RhoconnectStore(this.redis);
    this.history = new PingHistory(this.redis, () => this.currentSettings.rhopush, logger);
    const adapters = options.adapters ?? createPushAdapters(() => this.currentSettings, logger, this.redis, options.deliveryLogger);
    this.pinger = new Pinger({
      store: this.store,
      adapters,
      logger,
      history: this.history,
      onPing: (result, ms) => {
        metrics.ping(result, ms);
        options.onPing?.(result, ms);
      },
    });

    this.classifier = new ChangeClassifier(settings, { now: options.clock });
    this.window = new CoalescingWindow(grouping(settings), (group) => this.autoPinger.add(group));
    if (options.capture !== false) {
      if (isCluster(this.redis)) this.topology = topologyForSettings(settings, logger);
      this.supervisor = this.buildSupervisor(settings, logger);
    }
    this.autoPinger = new AutoPinger({
      pinger: this.pinger,
      regroup: (user, source, trigger) => this.window.add(user, source, Date.now(), trigger),
      recorder: this.supervisor?.recorder,
      observer: metrics,
      onGroup: options.onGroup,
      logger,
    });
    metrics.waitingPings = () => this.autoPinger.waiting;

    if (options.watchSettings && settings.file !== '<inline>') {
      this.watcher = SettingsWatcher.forFile(settings, {
        current: () => this.currentSettings,
        apply: (next) => this.applySettings(next),
        logger,
        debounceMs: typeof options.watchSettings === 'object' ? options.watchSettings.debounceMs : undefined,
        onReload: (result) => result.status !== 'unchanged' && metrics.configReload(result.status === 'applied'),
      });
    }
  }

  private buildSupervisor(settings: Settings, logger: Logger): CaptureSupervisor {
    const { metrics, topology } = this;
    const supervisor = new CaptureSupervisor({
      classifier: this.classifier,
      settings: () => this.currentSettings,
      store: this.redis,
      cluster:
        topology && isCluster(this.redis)
          ? { client: this.redis, slotsOf: (node) => topology.masters.find((m) => m.label === node)?.slots ?? [] }
          : undefined,
      handlers: {
        onChange: (change) => {
          this.options.onChange?.(change);
          this.window.add(change.user, change.source, change.at, change.catchUp ? 'catch-up' : 'auto');
        },
        onDecision: (decision, event, node, key) => {
          metrics.keyspaceEvent(event);
          metrics.decision(decision.rule);
          this.history.noteSkipped(decision, Date.now());
          this.options.onDecision?.(decision, event, node, key);
        },
      },
      logger,
    });
    metrics.followCapture(supervisor);
    return supervisor;
  }

  /** The keyspace capture (replay and tests wait on its canary barrier). */
  get capture(): Capture | undefined {
    return this.supervisor?.capture;
  }

  get settings(): Settings {
    return this.currentSettings;
  }

  /**
   * Starts the parts in flow order. Configuration problems are found before anything is written to
   * Redis (databases, the HTTP address); if starting fails later, whatever did start is stopped.
   */
  async start(): Promise<void> {
    await this.link.checkDatabases();
    // Watch before connecting: an edit made while rhopush starts is not missed.
    await this.watcher?.start();
    try {
      // In cluster mode the topology answers first, with a clear error when the nodes are no cluster.
      const masters = await this.topology?.start();
      await this.link.connect();
      // The HTTP address is taken before capture and the worker write their leases and heartbeats.
      if (this.options.http !== false) this.api = await serveApi(this.apiDeps(), this.logger);
      await this.supervisor?.startOn(this.settings, this.topology && masters ? { topology: this.topology, masters } : undefined);
      if (this.options.queue !== false) await this.startWorker();
    } catch (err) {
      await this.stop({ timeoutMs: 2000 }).catch(() => undefined);
      throw err;
    }
    const { environment, redis, rhopush } = this.settings;
    this.logger.info({ environment, redis: redis.map((r) => r.label), delivery: rhopush.delivery }, 'rhopush started');
  }

  private async startWorker(): Promise<void> {
    if (isCluster(this.redis)) {
      this.logger.warn('Resque ping jobs are not served in cluster mode: Resque does not run on Redis Cluster');
      return;
    }
    const run = (ping: NormalizedPing, queued?: QueuedRecord) => this.pinger.ping(ping, 'queue', queued);
    this.worker = workerForSettings(() => this.settings, resqueRedis(this.redis), run, this.logger, this.metrics);
    await this.worker.start();
  }

  private apiDeps(): ApiDeps {
    return {
      settings: () => this.settings,
      ping: (p, t) => this.ping(p, t),
      enqueue: (p) => this.enqueue(p),
      store: this.store,
      redisUnavailable: () => this.link.unavailable(),
      health: () => this.health(),
      metrics: this.metrics,
      history: this.history,
      why: (user, options) => this.why(user, options),
      status: {
        capture: this.supervisor ? () => this.supervisor!.view() : undefined,
        totals: () => this.metrics.totals,
        // No Resque on a cluster: nothing to count.
        queueDepths: async () => (isCluster(this.redis) ? undefined : queueDepths(this.redis, this.settings.rhopush.queues)),
        autoPingsWaiting: () => this.autoPinger.waiting,
        usersGrouping: () => this.window.size,
      },
    };
  }

  /** What rhopush did for a user and why, from what Redis holds (`rhopush why` reads the same). */
  why(user: string, options: WhyOptions = {}): Promise<WhyReport> {
    const { settings, store, history } = this;
    return explainWhy(
      { settings, store, history, deadTokens: DeadTokenStore.forSettings(this.redis, () => settings.rhopush) },
      user,
      options,
    );
  }

  /** The address the HTTP API listens on (port 0 in settings picks a free one). */
  get apiAddress(): { host: string; port: number } | undefined {
    const addr = this.api?.server.address();
    return addr && typeof addr === 'object' ? { host: addr.address, port: addr.port } : undefined;
  }

  /** Every part's state, for /healthz. */
  health(): HealthReport {
    return healthReport(
      this.link.healthParts(),
      this.supervisor?.healthParts() ?? {},
      this.worker?.healthParts() ?? {},
      this.watcher?.healthParts() ?? { config: { ok: true, detail: this.settings.file } },
    );
  }

  /** Reads the settings file again now (SIGHUP), even when it looks unchanged. */
  reloadSettings(): ReloadResult | undefined {
    return this.watcher?.reload(true);
  }

  /** Applies new settings to the parts that can change live. */
  applySettings(settings: Settings): void {
    // Only a logger of our caller's: the shared silent logger must stay silent.
    if (this.options.logger && settings.rhopush.logLevel !== this.currentSettings.rhopush.logLevel)
      this.logger.level = settings.rhopush.logLevel;
    this.currentSettings = settings;
    this.classifier.setSettings(settings);
    this.window.setOptions(grouping(settings));
  }

  /** Runs a ping now (REST, CLI, library, queue jobs). */
  ping(params: PingParams | NormalizedPing, trigger: PingTrigger): Promise<PingResult> {
    return this.pinger.ping(params, trigger);
  }

  /** Queues a ping as a Resque job on the first of `:rhopush: :queues:`, with its record (queued). */
  enqueue(ping: NormalizedPing): Promise<EnqueuedPing> {
    return enqueueRecorded(resqueRedis(this.redis), this.history, ping, this.settings.rhopush.queues[0]);
  }

  /** Waits until every ping started so far, automatic or not, has finished. */
  async drain(): Promise<void> {
    while (this.autoPinger.busy || this.pinger.busy) await Promise.all([this.autoPinger.drain(), this.pinger.drain()]);
  }

  /**
   * Stops capturing, sends what is grouped, finishes deliveries (within `timeoutMs`) and closes
   * connections, in reverse of the start: each step guarded, so one that fails or runs out of time
   * never keeps the next from running. A change captured before the call is still pinged.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.stopping ??= this.stopParts(options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
    return this.stopping;
  }

  private async stopParts(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const step = async (name: string, work: () => Promise<unknown> | unknown) => {
      const left = Math.max(1, deadline - Date.now());
      const finished = await within(Promise.resolve().then(work), left);
      if (!finished) this.logger.warn({ step: name }, 'shutdown timeout: going on without waiting for this step');
    };
    let apiClosed: Promise<unknown> = Promise.resolve();
    await step('settings watcher', () => this.watcher?.close());
    // Unsent retries stay unrecorded, so the next catch-up pings them.
    await step('retries', () => this.autoPinger.stop());
    await step('cluster topology', () => this.topology?.stop());
    // Every event written before the stop reaches us before capture stops.
    await step('capture barrier', () =>
      this.supervisor
        ?.barrier(Math.min(Math.max(1, deadline - Date.now()), this.settings.rhopush.canaryTimeoutMs))
        .catch((err: Error) => this.logger.warn({ err: err.message }, 'stopping without confirming every change was received')),
    );
    // Ping what is grouped and record it while this instance still holds its capture leases, so
    // whoever captures next does not ping it again.
    await step('grouped pings', () => this.flushGroups());
    await step('capture', () => this.supervisor?.stopCapturing());
    // The API stops taking requests and waits for the ones it is serving; their pings drain too.
    await step('http api', () => void (apiClosed = this.api?.close() ?? Promise.resolve()));
    // The worker finishes the jobs in hand (their pings need the adapters, closed below).
    await step('queue worker', () => this.worker?.stop());
    // Changes that arrived while capture was stopping, and every ping in flight.
    await step('pings in flight', () => Promise.all([this.flushGroups(), apiClosed]));
    await step('capture leases', () => this.supervisor?.close());
    await step('push adapters', () => this.pinger.close());
    await step('store connection', () => this.link.close());
    this.logger.info('rhopush stopped');
  }

  private async flushGroups(): Promise<void> {
    const pending = this.window.flushAll();
    if (pending > 0) this.logger.info({ users: pending }, 'sending grouped pings before stopping');
    await this.drain();
  }
}

export function createDaemon(options: DaemonOptions): Daemon {
  return new Daemon(options);
}

function grouping(settings: Settings): { quietMs: number; maxDelayMs: number } {
  return { quietMs: settings.rhopush.coalesceMs, maxDelayMs: settings.rhopush.maxDelayMs };
}
