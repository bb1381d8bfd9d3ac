// Runs capture on every node this instance holds the lease for, and keeps it honest:
// - a lease per node (several rhopush instances share the nodes, one captures each);
// - catch-up after every start, reconnect, takeover and canary failure;
// - a canary per captured node;
// - fingerprint records kept in step with pings and device writes.
// The set of nodes can change while running (Redis Cluster topology).
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import type { HealthPart } from '../util/health.js';
import { parseKey, SHARED_PARTITION } from '../store/keys.js';
import type { SlotRange } from '../store/cluster-slots.js';
import type { StoreClient } from '../store/store-connection.js';
import { Capture, type Change, type CaptureHandlers } from '../intake/capture.js';
import { clusterNodes, instanceNodes, type SupervisedNode } from '../intake/capture-nodes.js';
import type { ClusterMaster, ClusterTopology } from '../store/cluster-topology.js';
import { CanaryMonitor } from './canary-monitor.js';
import { CatchUp, type CatchUpReason, type CatchUpResult } from './catch-up.js';
import type { ChangeClassifier } from '../rules/classify.js';
import { DocumentLocks } from './document-locks.js';
import type { DocumentPair } from './document-pair.js';
import { FingerprintKeeper, type PingSnapshot } from './fingerprint-keeper.js';
import { ClusterFingerprintStore, NodeFingerprintStore, type FingerprintStore } from './fingerprint-store.js';
import { NodeLease } from './node-lease.js';
import { NotifyConfigError } from '../intake/notify-config.js';
import { decide } from '../rules/decide.js';

export interface CaptureSupervisorOptions {
  classifier: ChangeClassifier;
  settings: () => Settings;
  /** Where RhoConnect's locks live (instance 0 or the cluster). */
  store: StoreClient;
  /** Cluster mode: documents span masters, so fingerprints are read through the cluster client. */
  cluster?: { client: Cluster; slotsOf: (node: string) => readonly SlotRange[] };
  handlers: CaptureHandlers;
  logger: Logger;
  instanceId?: string;
  /** Wait before recording pairs written without a ping (default 200 ms). */
  refreshDelayMs?: number;
}

interface Member {
  node: SupervisedNode;
  /** Lease renewals (its own connection, so catch-up reads never delay a renewal). */
  leaseRedis: Redis;
  /** SCAN and fingerprint scripts on this node. */
  dataRedis: Redis;
  lease: NodeLease;
  fingerprints: FingerprintStore;
  /** Why the next subscription on this node catches up. */
  nextReason?: CatchUpReason;
  capturing?: Promise<void>;
  retryTimer?: NodeJS.Timeout;
  removed: boolean;
  /** This instance held the lease once and lost it (so the next acquisition is a reconnection). */
  lostLease?: boolean;
}

/** Every node's state for the status page. */
export interface CaptureView {
  nodes: (NodeStatus & { canaryRoundTripMs?: number })[];
  canaryProbes: number;
  canaryFailures: number;
}

export interface NodeStatus {
  node: string;
  leaseHeld: boolean;
  subscribed: boolean;
  catchingUp: boolean;
  /** Another instance holds the lease (it captures this node). */
  heldElsewhere: boolean;
}

/** Counters for metrics and logs. */
export interface CaptureSupervisorStats {
  reconnects: number;
  canaryFailures: number;
  canaryProbes: number;
  catchUpRuns: number;
  catchUpAborted: number;
  catchUpPings: number;
  /** Catch-up pings another instance had already marked pending for that exact state (handover window). */
  handoverDuplicates: number;
  leaseAcquisitions: number;
  leaseLosses: number;
  recordedFingerprints: number;
  lastCatchUpMs: number;
}

/**
 * Emits `catch-up` (CatchUpResult), `catch-up-ping` (change, possibleDuplicate), `canary-failure`
 * (node, reason), `node-down` (node), `lease-acquired` (node), `lease-lost` (node).
 */
export class CaptureSupervisor extends EventEmitter {
  readonly id: string;
  readonly capture: Capture;
  readonly keeper: FingerprintKeeper;
  readonly catchUp: CatchUp;
  readonly canary: CanaryMonitor;
  private readonly members = new Map<string, Member>();
  private readonly clusterFingerprints?: FingerprintStore;
  /** setNodes calls run one after another (topology changes can come quickly). */
  private nodeChanges: Promise<void> = Promise.resolve();
  private started = false;
  private closing = false;
  private startupError?: Error;
  private leaseLossCount = 0;
  private leaseAcquiredCount = 0;

  constructor(private readonly options: CaptureSupervisorOptions) {
    super();
    this.id = options.instanceId ?? randomUUID();
    const logger = options.logger;
    if (options.cluster) {
      this.clusterFingerprints = new ClusterFingerprintStore(
        options.cluster.client,
        options.cluster.slotsOf,
        (node) => this.members.get(node)?.dataRedis,
      );
    }
    const handlers: CaptureHandlers = {
      onChange: (change) => this.handleChange(change),
      onDecision: (decision, event, node, key) => {
        const parsed = parseKey(key);
        // Every md_size write moves the document; the keeper records the ones that need no ping.
        if (parsed.kind === 'md_size' && parsed.partition !== SHARED_PARTITION) {
          this.keeper.observe(node, { partition: parsed.partition, source: parsed.source });
        }
        options.handlers.onDecision?.(decision, event, node, key);
      },
    };
    this.capture = new Capture([], options.classifier, handlers, logger, this.id);
    this.keeper = new FingerprintKeeper({
      owner: this.id,
      storeFor: (node) => this.fingerprintsFor(node),
      locks: new DocumentLocks(options.store),
      probe: async (node) => {
        await this.capture.probe(node, this.options.settings().rhopush.canaryTimeoutMs);
      },
      logger,
      refreshDelayMs: options.refreshDelayMs,
    });
    this.catchUp = new CatchUp({
      keeper: this.keeper,
      storeFor: (node) => this.fingerprintsFor(node),
      scanConnection: (node) => this.members.get(node)?.dataRedis,
      pings: (pair) => this.pings(pair),
      onChange: (change) => this.handleChange(change),
      logger,
    });
    this.catchUp.on('ping', (change: Change, dup: boolean) => this.emit('catch-up-ping', change, dup));
    this.catchUp.on('done', (result: CatchUpResult) => this.emit('catch-up', result));
    const settings = options.settings().rhopush;
    this.canary = new CanaryMonitor(
      {
        nodes: () => this.capture.nodes.map((n) => n.label),
        probe: (node, timeoutMs) => this.capture.probe(node, timeoutMs),
        reconnectNode: (node) => {
          const m = this.members.get(node);
          if (m) m.nextReason = 'canary';
          this.capture.reconnectNode(node);
        },
      },
      { intervalMs: settings.canaryIntervalMs, timeoutMs: settings.canaryTimeoutMs, logger },
    );
    this.canary.on('failure', (node: string, reason: string) => this.emit('canary-failure', node, reason));
    this.capture.on('node-ready', (node: string) => this.onNodeReady(node));
    this.capture.on('node-down', (node: string) => {
      this.keeper.nodeDown(node);
      options.classifier.nodeDown(node);
      this.emit('node-down', node);
    });
  }

  private fingerprintsFor(node: string): FingerprintStore | undefined {
    return this.clusterFingerprints ?? this.members.get(node)?.fingerprints;
  }

  /** Whether a change of this pair deserves a ping, by the same rules as live capture. */
  private pings(pair: DocumentPair): boolean {
    return decide(this.options.settings(), { ...pair, deviceEdit: false }).ping;
  }

  private handleChange(change: Change): void {
    this.keeper.queued(change.node, { partition: change.user, source: change.source });
    this.options.handlers.onChange(change);
  }

  /** Makes the node set `nodes` (adds, removes, replaces nodes whose keys moved). */
  setNodes(nodes: SupervisedNode[]): Promise<void> {
    this.nodeChanges = this.nodeChanges
      .then(() => this.applyNodes(nodes))
      .catch((err: Error) => this.options.logger.error({ err: err.message }, 'could not apply the node set'));
    return this.nodeChanges;
  }

  private async applyNodes(nodes: SupervisedNode[]): Promise<void> {
    if (this.closing) return;
    const wanted = new Map(nodes.map((n) => [n.label, n]));
    const removals: Promise<void>[] = [];
    for (const [label, m] of this.members) {
      const next = wanted.get(label);
      if (!next || next.leaseKey !== m.node.leaseKey || next.canaryKey !== m.node.canaryKey) removals.push(this.removeMember(m));
    }
    await Promise.all(removals);
    const additions: Promise<void>[] = [];
    for (const node of nodes) if (!this.members.has(node.label)) additions.push(this.addMember(node));
    await Promise.all(additions);
  }

  private async addMember(node: SupervisedNode): Promise<void> {
    const settings = this.options.settings().rhopush;
    const connection = (name: string, extra: RedisOptions = {}) => {
      const r = new Redis({ ...node.options, connectionName: name, ...extra });
      r.on('error', (err: Error) => this.options.logger.debug({ node: node.label, err: err.message }, `${name} connection error`));
      return r;
    };
    // Lease commands fail fast so a dead node cannot stall the renewal past the lease.
    const leaseRedis = connection('rhopush:lease', {
      commandTimeout: Math.max(100, Math.floor(settings.leaseMs / 3)),
      maxRetriesPerRequest: 0,
    });
    // Auto-pipelined: the fingerprint reads and records of concurrent pings share socket writes.
    const dataRedis = connection('rhopush:catch-up', { enableAutoPipelining: true });
    const lease = new NodeLease({
      node: node.label,
      redis: leaseRedis,
      key: node.leaseKey,
      owner: this.id,
      leaseMs: settings.leaseMs,
      logger: this.options.logger,
    });
    const member: Member = { node, leaseRedis, dataRedis, lease, fingerprints: new NodeFingerprintStore(dataRedis), removed: false };
    this.members.set(node.label, member);
    lease.on('acquired', () => {
      this.leaseAcquiredCount += 1;
      this.emit('lease-acquired', node.label);
      // Held before and lost without anyone else taking it: Redis was unreachable for longer than the lease.
      const reason: CatchUpReason = lease.sawOtherHolder
        ? 'takeover'
        : !this.started
          ? 'start'
          : member.lostLease
            ? 'reconnect'
            : 'topology';
      member.capturing = this.startCapturing(member, reason);
    });
    lease.on('lost', () => {
      this.leaseLossCount += 1;
      member.lostLease = true;
      this.emit('lease-lost', node.label);
      this.stopCapturingNode(member).catch((err: Error) =>
        this.options.logger.error({ node: node.label, err: err.message }, 'could not stop capturing a node whose lease was lost'),
      );
    });
    await lease.start();
    await member.capturing;
  }

  /** Subscribes on a node whose lease this instance holds; retries every second until it works. Never rejects. */
  private async startCapturing(member: Member, reason: CatchUpReason): Promise<void> {
    clearTimeout(member.retryTimer);
    if (member.removed || this.closing || !member.lease.held) return;
    member.nextReason = reason;
    this.keeper.nodeDown(member.node.label);
    try {
      await this.capture.addRunningNode(member.node);
      // The lease may have been lost while subscribing.
      if (!member.lease.held || member.removed) await this.stopCapturingNode(member);
      return;
    } catch (err) {
      await this.capture.removeNode(member.node.label).catch(() => undefined);
      if (err instanceof NotifyConfigError) {
        this.startupError ??= err;
        this.options.logger.error({ node: member.node.label, err: err.message }, 'cannot capture this node');
        if (!this.started) return;
      } else {
        this.options.logger.warn({ node: member.node.label, err: (err as Error).message }, 'cannot subscribe to this node yet; retrying');
      }
    }
    if (member.removed || this.closing) return;
    member.retryTimer = setTimeout(() => void this.startCapturing(member, reason), 1000);
    member.retryTimer.unref();
  }

  private onNodeReady(node: string): void {
    const m = this.members.get(node);
    this.keeper.nodeReady(node);
    const reason = m?.nextReason ?? 'reconnect';
    if (m) m.nextReason = undefined;
    void this.catchUp.run(node, reason);
  }

  private async stopCapturingNode(member: Member): Promise<void> {
    clearTimeout(member.retryTimer);
    await this.capture.removeNode(member.node.label);
    this.keeper.forgetNode(member.node.label);
  }

  private async removeMember(member: Member): Promise<void> {
    member.removed = true;
    this.members.delete(member.node.label);
    await member.lease.release();
    await this.stopCapturingNode(member);
    member.leaseRedis.disconnect();
    member.dataRedis.disconnect();
  }

  /**
   * Captures every instance of `:redis:`, or, with a cluster topology (already started: `masters`),
   * every master as the cluster changes.
   */
  async startOn(settings: Settings, cluster?: { topology: ClusterTopology; masters: ClusterMaster[] }): Promise<void> {
    const seed = settings.redis[0]!;
    if (!cluster) {
      await this.start(instanceNodes(settings.redis, this.id));
      return;
    }
    const { topology, masters } = cluster;
    await this.start(clusterNodes(masters, seed, this.id));
    topology.on('change', () => void this.setNodes(clusterNodes(topology.masters, seed, this.id)));
    const refresh = () => {
      topology.refresh().catch((err: Error) => this.options.logger.error({ err: err.message }, 'cluster topology refresh failed'));
    };
    // A dropped subscriber or a silent canary is often a failover: look at the cluster again at once.
    this.on('node-down', refresh);
    this.on('canary-failure', refresh);
    refresh();
  }

  /**
   * Takes the first leases and subscribes on the nodes it got (catch-up runs in the background;
   * see `caughtUp`). Throws when a node refuses to send keyspace notifications.
   */
  async start(nodes: SupervisedNode[]): Promise<void> {
    await this.setNodes(nodes);
    this.started = true;
    if (this.startupError) throw this.startupError;
    this.canary.start();
  }

  /** Resolves when no catch-up is running (tests, replay, benchmarks). */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const subscribed = () => new Map(this.capture.status().map((s) => [s.node, s.subscribed]));
    for (;;) {
      const links = subscribed();
      // Busy: a catch-up runs, or a node is ours (or nobody's yet) but not subscribed and caught up.
      const busy = [...this.members.values()].some((m) => {
        const n = m.node.label;
        if (this.catchUp.isRunning(n)) return true;
        if (!m.lease.held) return !m.lease.heldElsewhere;
        return !links.get(n) || this.keeper.hasGap(n);
      });
      if (!busy) return;
      if (Date.now() > deadline) throw new Error('catch-up did not finish in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** What automatic pings note around each ping (the fingerprints they cover), for catch-up. */
  readonly recorder = {
    before: (pings: ReadonlyArray<{ user: string; sources: readonly string[] }>): Promise<PingSnapshot> => this.keeper.beforePing(pings),
    after: (snapshot: PingSnapshot, ran: boolean): Promise<void> => this.keeper.afterPing(snapshot, ran),
    /** A pair whose ping failed goes back into the grouping window. */
    requeue: (user: string, source: string): void => this.keeper.requeue({ partition: user, source }),
  };

  /** Each node: captured here, or by another instance (which holds its lease). */
  healthParts(): Record<string, HealthPart> {
    const parts: Record<string, HealthPart> = {};
    for (const s of this.status()) {
      const ok = s.leaseHeld ? s.subscribed : s.heldElsewhere;
      const detail = s.leaseHeld
        ? s.subscribed
          ? s.catchingUp
            ? 'subscribed, catching up'
            : 'subscribed'
          : 'lease held, not subscribed'
        : s.heldElsewhere
          ? 'captured by another rhopush instance'
          : 'no instance holds the capture lease';
      parts[`capture ${s.node}`] = { ok, detail };
    }
    return parts;
  }

  /** What the console and /rc/v1/rhopush/status show: each node's state with its last canary round trip. */
  view(): CaptureView {
    const roundTrips = this.canary.lastRoundTripMs;
    return {
      nodes: this.status().map((n) => ({
        ...n,
        ...(roundTrips[n.node] !== undefined ? { canaryRoundTripMs: Math.round(roundTrips[n.node]! * 10) / 10 } : {}),
      })),
      canaryProbes: this.canary.probes,
      canaryFailures: this.canary.failures,
    };
  }

  status(): NodeStatus[] {
    const subscribed = new Map(this.capture.status().map((s) => [s.node, s.subscribed]));
    return [...this.members.values()].map((m) => ({
      node: m.node.label,
      leaseHeld: m.lease.held,
      subscribed: subscribed.get(m.node.label) ?? false,
      catchingUp: this.catchUp.isRunning(m.node.label),
      heldElsewhere: m.lease.heldElsewhere,
    }));
  }

  get stats(): CaptureSupervisorStats {
    return {
      reconnects: this.capture.reconnects,
      canaryFailures: this.canary.failures,
      canaryProbes: this.canary.probes,
      catchUpRuns: this.catchUp.totals.runs,
      catchUpAborted: this.catchUp.totals.aborted,
      catchUpPings: this.catchUp.totals.pinged,
      handoverDuplicates: this.catchUp.totals.possibleDuplicates,
      leaseAcquisitions: this.leaseAcquiredCount,
      leaseLosses: this.leaseLossCount,
      recordedFingerprints: this.keeper.stats.recorded,
      lastCatchUpMs: this.catchUp.totals.lastDurationMs,
    };
  }

  /** Resolves once every event written before the call on the nodes this instance captures has arrived. */
  barrier(timeoutMs: number): Promise<void> {
    return this.capture.barrier(timeoutMs);
  }

  /**
   * Graceful stop, first half: no more canaries, records written for what can be recorded, then
   * unsubscribes. Leases are kept until `close` so pings still in flight are recorded first.
   */
  async stopCapturing(): Promise<void> {
    // No new subscriptions from here on, whatever the leases do meanwhile.
    this.closing = true;
    this.canary.stop();
    await this.keeper.flush();
    this.catchUp.stop();
    await this.capture.stop();
  }

  /** Second half: releases leases (another instance takes over at once) and closes connections. */
  async close(): Promise<void> {
    this.closing = true;
    this.keeper.stop();
    await Promise.all(
      [...this.members.values()].map(async (m) => {
        clearTimeout(m.retryTimer);
        await m.lease.release();
        m.leaseRedis.disconnect();
        m.dataRedis.disconnect();
      }),
    );
    this.members.clear();
  }
}
