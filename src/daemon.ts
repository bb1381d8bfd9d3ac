// Composition root: the only module that knows every part. Builds them from Settings, starts and
// stops them in order.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Settings } from './config/settings.js';
import type { Capture, Change } from './intake/capture.js';
import { CaptureSupervisor } from './recovery/capture-supervisor.js';
import type { CatchUpResult } from './recovery/catch-up.js';
import type { PingSnapshot } from './recovery/fingerprint-keeper.js';
import { clusterNodes, instanceNodes } from './intake/capture-nodes.js';
import type { SlotRange } from './store/cluster-slots.js';
import { ClusterTopology, type ClusterMaster } from './store/cluster-topology.js';
import { clusterNodeOptions, connectStore, isCluster, resqueRedis, waitStoreReady, type StoreClient } from './store/store-connection.js';
import { checkDatabase, connectRedis, followAvailability, type Availability } from './store/redis-connection.js';
import { ChangeClassifier, type KeyspaceDecision } from './rules/classify.js';
import { CoalescingWindow, type ChangeGroup } from './coalesce/coalescing-window.js';
import { PingBacklog } from './coalesce/ping-backlog.js';
import { PingJob, type PingResult, type PingTrigger } from './ping/ping-job.js';
import type { NormalizedPing, PingParams } from './ping/ping-params.js';
import { enqueuePingJob, type EnqueuedPing } from './queue/resque-queue.js';
import { ResqueWorker } from './queue/resque-worker.js';
import type { Platform, PushAdapter } from './push/adapter.js';
import { createPushAdapters, type PushAdapters } from './push/registry.js';
import { RhoconnectStore } from './store/rhoconnect-store.js';
import { Limiter } from './util/limiter.js';
import { clip, firstNames } from './util/log-text.js';
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

/** Pings run concurrently up to this bound; the rest wait their turn (nothing is dropped). */
const MAX_CONCURRENT_PINGS = 64;
/** An automatic ping that could not read users or clients is grouped again after this long. */
const AUTO_PING_RETRY_MS = 1000;
/** A ping's log line lists this many users (and sources) at most, then counts them. */
const MAX_LOGGED_PING_NAMES = 20;

export class Daemon {
  readonly logger: Logger;
  /** Users, clients, tokens: instance 0 of `:redis:`, or the Redis Cluster. */
  readonly redis: StoreClient;
  readonly store: RhoconnectStore;
  readonly pingJob: PingJob;
  readonly window: CoalescingWindow;
  readonly classifier: ChangeClassifier;
  /** Capture with leases, catch-up and canaries on every node (absent with `capture: false`). */
  readonly supervisor?: CaptureSupervisor;
  /** Cluster mode: the masters capture follows. */
  readonly topology?: ClusterTopology;
  readonly metrics: Metrics;
  api?: FastifyInstance;
  private watcher?: SettingsWatcher;
  worker?: ResqueWorker;
  private readonly ownsRedis: boolean;
  private readonly adapters: PushAdapters;
  private readonly limiter = new Limiter(MAX_CONCURRENT_PINGS);
  /** Automatic pings waiting for a slot (a user's later groups join its waiting one). */
  private readonly backlog = new PingBacklog();
  private autoRunners = 0;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private currentSettings: Settings;
  private stopping?: Promise<void>;
  private lastRedisError?: string;
  /** Whether the store connection can serve commands now; logs its outages. */
  private readonly availability: Availability;

  constructor(private readonly options: DaemonOptions) {
    this.currentSettings = options.settings;
    const settings = options.settings;
    this.logger = options.logger ?? silentLogger;
    this.metrics = options.metrics ?? new Metrics();
    this.ownsRedis = options.redis === undefined;
    this.redis = options.redis ?? connectStore(settings, { connectionName: 'rhopush:store', lazyConnect: true });
    if (this.ownsRedis) {
      this.redis.on('error', (err: Error) => {
        this.lastRedisError = err.message;
        this.logger.debug({ err: err.message }, 'store connection error');
      });
    }
    const first = settings.redis[0]!;
    this.availability = followAvailability(this.redis, settings.rhopush.cluster ? `cluster ${first.label}` : first.label, this.logger);
    this.store = new RhoconnectStore(this.redis);
    this.adapters = options.adapters ?? createPushAdapters(() => this.currentSettings, this.logger, this.redis, options.deliveryLogger);
    this.pingJob = new PingJob(this.store, (p: Platform): PushAdapter => this.adapters.adapterFor(p), this.logger, {
      onPing: (result, ms) => {
        logPing(this.logger, result, ms);
        this.metrics.ping(result, ms);
        options.onPing?.(result, ms);
      },
    });
    this.classifier = new ChangeClassifier(settings, { now: options.clock });
    this.metrics.waitingPings = () => this.backlog.size;
    this.window = new CoalescingWindow(
      { quietMs: settings.rhopush.coalesceMs, maxDelayMs: settings.rhopush.maxDelayMs },
      (group) => this.onGroup(group),
    );
    if (options.capture !== false) {
      // --- scale: capture on every node (leases, catch-up, canaries; cluster topology) ---
      let cluster: { client: Cluster; slotsOf: (node: string) => readonly SlotRange[] } | undefined;
      if (isCluster(this.redis)) {
        const topology = new ClusterTopology({
          seeds: settings.redis.map((e) => ({ host: e.host, port: e.port })),
          nodeOptions: clusterNodeOptions(settings.redis[0]!, { connectionName: 'rhopush:topology' }),
          refreshMs: Math.max(250, Math.min(settings.rhopush.canaryIntervalMs || 1000, 2000)),
          logger: this.logger,
        });
        this.topology = topology;
        cluster = { client: this.redis, slotsOf: (node) => topology.masters.find((m) => m.label === node)?.slots ?? [] };
      }
      this.supervisor = new CaptureSupervisor({
        classifier: this.classifier,
        settings: () => this.currentSettings,
        store: this.redis,
        cluster,
        handlers: {
          onChange: (change) => {
            options.onChange?.(change);
            this.window.add(change.user, change.source, change.at, change.catchUp ? 'catch-up' : 'auto');
          },
          onDecision: (decision, event, node, key) => {
            this.metrics.keyspaceEvent(event);
            this.metrics.decision(decision.rule);
            options.onDecision?.(decision, event, node, key);
          },
        },
        logger: this.logger,
      });
      this.supervisor.on('node-down', (node: string) => this.metrics.reconnect(node));
      this.supervisor.on('canary-failure', (node: string) => this.metrics.canaryFailure(node));
      this.supervisor.on('catch-up', (result: CatchUpResult) => this.metrics.catchUp(result));
      this.supervisor.on('lease-acquired', () => this.metrics.lease('acquired'));
      this.supervisor.on('lease-lost', () => this.metrics.lease('lost'));
      // --- end scale ---
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

  /** The keyspace capture (replay and tests wait on its canary barrier). */
  get capture(): Capture | undefined {
    return this.supervisor?.capture;
  }

  get settings(): Settings {
    return this.currentSettings;
  }

  /**
   * Checks what can only be checked against the servers (databases, the HTTP address), then starts
   * capture and the queue worker. Configuration problems are found before anything is written to
   * Redis; if starting fails later, whatever did start is stopped again (leases released).
   */
  async start(): Promise<void> {
    // ioredis would quietly fall back to database 0 for a database the server does not have.
    if (!this.settings.rhopush.cluster) for (const endpoint of this.settings.redis) await checkDatabase(endpoint);
    // Watch before connecting: an edit made while rhopush starts is not missed.
    await this.watcher?.start();
    try {
      await this.startParts();
    } catch (err) {
      await this.stop({ timeoutMs: 2000 }).catch(() => undefined);
      throw err;
    }
    this.logger.info(
      { environment: this.settings.environment, redis: this.settings.redis.map((r) => r.label), delivery: this.settings.rhopush.delivery },
      'rhopush started',
    );
  }

  private async startParts(): Promise<void> {
    // In cluster mode the topology answers first, with a clear error when the nodes are no cluster.
    const masters = await this.topology?.start();
    try {
      if (this.ownsRedis && this.redis.status === 'wait') await this.redis.connect();
      await waitStoreReady(this.redis);
    } catch (err) {
      // ioredis rejects with "Connection is closed."; the reason is in the error event before it.
      const endpoint = this.settings.redis[0]!;
      throw new Error(
        `cannot connect to Redis ${endpoint.label} (${this.lastRedisError ?? (err as Error).message}): start it or correct :redis: (or REDIS_URL); \`rhopush doctor\` checks the setup`,
      );
    }
    // The HTTP address is taken before capture and the worker write their leases and heartbeats.
    if (this.options.http !== false) {
      this.api = await createApiServer(
        {
          settings: () => this.settings,
          ping: (p, t) => this.ping(p, t),
          enqueue: (p) => this.enqueue(p),
          store: this.store,
          redisUnavailable: () => this.availability.unavailable(),
          health: () => this.health(),
          metrics: this.metrics,
        },
        this.logger,
      );
      const { host, port } = this.settings.rhopush.listen;
      try {
        await this.api.listen({ host, port });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
        throw new Error(`cannot serve the HTTP API on ${host}:${port} (${why}): correct :rhopush: :listen:, or stop what holds the port`);
      }
    }
    if (this.supervisor) await this.startCapture(this.supervisor, masters);
    if (this.options.queue !== false && isCluster(this.redis)) {
      this.logger.warn('Resque ping jobs are not served in cluster mode: Resque does not run on Redis Cluster');
    } else if (this.options.queue !== false) {
      const first = this.settings.redis[0]!;
      this.worker = new ResqueWorker({
        redis: resqueRedis(this.redis),
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
  }

  /** Capture on every instance of `:redis:`, or on every master of the cluster as it changes. */
  private async startCapture(supervisor: CaptureSupervisor, masters: ClusterMaster[] | undefined): Promise<void> {
    const seed = this.settings.redis[0]!;
    const topology = this.topology;
    if (!topology || !masters) {
      await supervisor.start(instanceNodes(this.settings.redis, supervisor.id));
      return;
    }
    await supervisor.start(clusterNodes(masters, seed, supervisor.id));
    topology.on('change', () => void supervisor.setNodes(clusterNodes(topology.masters, seed, supervisor.id)));
    const refresh = () => {
      topology.refresh().catch((err: Error) => this.logger.error({ err: err.message }, 'cluster topology refresh failed'));
    };
    // A dropped subscriber or a silent canary is often a failover: look at the cluster again at once.
    supervisor.on('node-down', refresh);
    supervisor.on('canary-failure', refresh);
    refresh();
  }

  /** The address the HTTP API listens on (port 0 in settings picks a free one). */
  get apiAddress(): { host: string; port: number } | undefined {
    const addr = this.api?.server.address();
    return addr && typeof addr === 'object' ? { host: addr.address, port: addr.port } : undefined;
  }

  /** Every Redis link and subscription, for /healthz. */
  health(): HealthReport {
    const parts: HealthReport['parts'] = {
      redis: { ok: this.redis.status === 'ready', detail: this.availability.unavailable() ?? `store connection ${this.redis.status}` },
    };
    for (const s of this.supervisor?.status() ?? []) {
      // A node another instance holds the lease for is captured there.
      const ok = s.leaseHeld ? s.subscribed : s.heldElsewhere;
      const detail = s.leaseHeld
        ? s.subscribed ? (s.catchingUp ? 'subscribed, catching up' : 'subscribed') : 'lease held, not subscribed'
        : s.heldElsewhere ? 'captured by another rhopush instance' : 'no instance holds the capture lease';
      parts[`capture ${s.node}`] = { ok, detail };
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
    return enqueuePingJob(resqueRedis(this.redis), ping, this.settings.rhopush.queues[0]);
  }

  private onGroup(group: ChangeGroup): void {
    this.options.onGroup?.(group);
    this.metrics.group(group.changes);
    this.backlog.add(group);
    // One runner per ping slot at most; each takes the longest-waiting group until none is left.
    if (this.autoRunners < MAX_CONCURRENT_PINGS) {
      this.autoRunners += 1;
      void this.track(this.runAutoPings());
    }
  }

  private async runAutoPings(): Promise<void> {
    try {
      for (let group = this.backlog.take(); group; group = this.backlog.take()) await this.autoPing(group);
    } finally {
      this.autoRunners -= 1;
    }
  }

  /** An automatic ping, with what it covers recorded for catch-up (see capture/fingerprint-keeper). */
  private async autoPing(group: ChangeGroup): Promise<void> {
    let snapshot: PingSnapshot | undefined;
    let ran = false;
    try {
      // Fingerprints are read when the ping is about to be sent, not when it was grouped.
      await this.limiter.run(async () => {
        snapshot = await this.supervisor?.beforePing(group.user, group.sources);
        this.metrics.pingStarted(group.firstAt);
        return this.pingJob.run({ user_id: [group.user], sources: group.sources }, group.trigger);
      });
      this.metrics.pingFinished(group.firstAt);
      ran = true;
    } catch (err) {
      // Reading users and clients failed (Redis unreachable, failover): the change is not dropped.
      this.logger.error(
        { user: clip(group.user), sources: firstNames(group.sources, MAX_LOGGED_PING_NAMES), err: (err as Error).message, retryMs: AUTO_PING_RETRY_MS },
        'automatic ping failed; retrying',
      );
      this.retryLater(group);
    } finally {
      if (snapshot) await this.supervisor!.afterPing(snapshot, ran);
    }
  }

  private retryLater(group: ChangeGroup): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (this.stopping) return;
      for (const source of group.sources) {
        this.supervisor?.requeue(group.user, source);
        this.window.add(group.user, source, Date.now(), group.trigger);
      }
    }, AUTO_PING_RETRY_MS);
    this.retryTimers.add(timer);
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

  private flushForStop(): void {
    const pending = this.window.flushAll();
    if (pending > 0) this.logger.info({ users: pending }, 'sending grouped pings before stopping');
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
      // Unsent retries stay unrecorded, so the next catch-up pings them.
      for (const t of this.retryTimers) clearTimeout(t);
      this.topology?.stop();
      // Every event written before the stop reaches us before capture stops.
      if (this.supervisor) {
        try {
          await this.supervisor.barrier(Math.min(left(), this.settings.rhopush.canaryTimeoutMs));
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, 'stopping without confirming every change was received');
        }
      }
      // Ping what is grouped and record it while this instance still holds its capture leases, so
      // whoever captures next does not ping it again.
      this.flushForStop();
      await within(this.drain(), left());
      await within(this.supervisor?.stopCapturing() ?? Promise.resolve(), left());
      // The API stops taking requests and waits for the ones it is serving; their pings drain too.
      const apiClosed = this.api?.close() ?? Promise.resolve();
      // The worker finishes the jobs in hand (their pings need the adapters, closed below).
      await within(this.worker?.stop() ?? Promise.resolve(), left());
      // Changes that arrived while capture was stopping.
      this.flushForStop();
      if (!(await within(Promise.all([apiClosed, this.drain()]), left()))) {
        this.logger.warn({ pings: this.inFlight.size }, 'shutdown timeout: stopping with pings still in flight');
      }
      await within(this.supervisor?.close() ?? Promise.resolve(), left());
      await within(this.adapters.close(), left());
      this.availability.stop();
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
  // A REST call may name thousands of users (and sources): the line lists the first ones and counts.
  const users = result.users.length > MAX_LOGGED_PING_NAMES ? { users: firstNames(result.users, MAX_LOGGED_PING_NAMES), userCount: result.users.length } : { users: result.users.map((u) => clip(u)) };
  const sources =
    result.sources.length > MAX_LOGGED_PING_NAMES
      ? { sources: firstNames(result.sources, MAX_LOGGED_PING_NAMES), sourceCount: result.sources.length }
      : { sources: result.sources.map((u) => clip(u)) };
  logger.info(
    {
      ping: { ...users, ...sources, trigger: result.trigger, platforms, errors: result.errors.length },
      ms: Math.round(durationMs * 10) / 10,
    },
    'ping',
  );
}
