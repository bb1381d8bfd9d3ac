// Composition root: the only module that knows every part. Builds them from Settings, starts and
// stops them in order.
import type { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { Settings } from './config/settings.js';
import type { Capture, Change } from './capture/capture.js';
import { CaptureSupervisor } from './capture/capture-supervisor.js';
import { clusterNodes, instanceNodes } from './capture/capture-nodes.js';
import type { SlotRange } from './store/cluster-slots.js';
import { ClusterTopology, type ClusterMaster } from './store/cluster-topology.js';
import { clusterNodeOptions, connectStore, isCluster, waitStoreReady, type StoreClient } from './store/store-connection.js';
import { ChangeClassifier, type KeyspaceDecision } from './capture/classify.js';
import { CoalescingWindow, type ChangeGroup } from './coalesce/coalescing-window.js';
import { PingJob, type PingResult, type PingTrigger } from './ping/ping-job.js';
import type { PingParams } from './ping/ping-params.js';
import type { Platform, PushAdapter } from './push/adapter.js';
import { createPushAdapters, type PushAdapters } from './push/registry.js';
import { RhoconnectStore } from './store/rhoconnect-store.js';
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
/** An automatic ping that could not read users or clients is grouped again after this long. */
const AUTO_PING_RETRY_MS = 1000;

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
  api?: FastifyInstance;
  private readonly adapters: PushAdapters;
  private readonly limiter = new Limiter(MAX_CONCURRENT_PINGS);
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private currentSettings: Settings;
  private stopping?: Promise<void>;

  constructor(private readonly options: DaemonOptions) {
    this.currentSettings = options.settings;
    const settings = options.settings;
    this.logger = options.logger ?? silentLogger;
    this.redis = connectStore(settings, { connectionName: 'rhopush:store', lazyConnect: true });
    this.redis.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'store connection error'));
    this.store = new RhoconnectStore(this.redis);
    this.adapters = options.adapters ?? createPushAdapters(() => this.currentSettings, this.logger);
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
            this.window.add(change.user, change.source, change.at);
          },
          onDecision: options.onDecision,
        },
        logger: this.logger,
      });
      // --- end scale ---
    }
  }

  /** The keyspace capture (replay and tests wait on its canary barrier). */
  get capture(): Capture | undefined {
    return this.supervisor?.capture;
  }

  get settings(): Settings {
    return this.currentSettings;
  }

  async start(): Promise<void> {
    // In cluster mode the topology answers first, with a clear error when the nodes are no cluster.
    const masters = await this.topology?.start();
    await waitStoreReady(this.redis);
    if (this.supervisor) await this.startCapture(this.supervisor, masters);
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
    // A dropped subscriber or a silent canary is often a failover: look at the cluster again at once.
    supervisor.on('node-down', () => void topology.refresh());
    supervisor.on('canary-failure', () => void topology.refresh());
    void topology.refresh();
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
    for (const s of this.supervisor?.status() ?? []) {
      // A node another instance holds the lease for is captured there.
      const ok = s.leaseHeld ? s.subscribed : s.heldElsewhere;
      const detail = s.leaseHeld
        ? s.subscribed ? (s.catchingUp ? 'subscribed, catching up' : 'subscribed') : 'lease held, not subscribed'
        : s.heldElsewhere ? 'captured by another rhopush instance' : 'no instance holds the capture lease';
      parts[`capture ${s.node}`] = { ok, detail };
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
    void this.track(this.autoPing(group));
  }

  /** An automatic ping, with what it covers recorded for catch-up (see capture/fingerprint-keeper). */
  private async autoPing(group: ChangeGroup): Promise<void> {
    const snapshot = await this.supervisor?.beforePing(group.user, group.sources);
    let ran = false;
    try {
      await this.ping({ user_id: [group.user], sources: group.sources }, 'auto');
      ran = true;
    } catch (err) {
      // Reading users and clients failed (Redis unreachable, failover): the change is not dropped.
      this.logger.error({ user: group.user, sources: group.sources, err: (err as Error).message, retryMs: AUTO_PING_RETRY_MS }, 'automatic ping failed; retrying');
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
        this.window.add(group.user, source);
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

  /** Stop capturing, send what is grouped, finish deliveries, close connections. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // Unsent retries stay unrecorded, so the next catch-up pings them.
      for (const t of this.retryTimers) clearTimeout(t);
      this.topology?.stop();
      // Ping what is grouped and record it while this instance still holds its capture leases, so
      // whoever captures next does not ping it again.
      this.window.flushAll();
      await this.drain();
      await this.supervisor?.stopCapturing();
      await this.api?.close();
      this.window.flushAll();
      await this.drain();
      await this.supervisor?.close();
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
