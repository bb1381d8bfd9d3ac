// rhopush's Prometheus metrics: one registry per daemon (several daemons may share a process in
// tests and replay), plus Node's process metrics once per process. The capture path calls
// `keyspaceEvent` and `decision` for every event, so their label children are looked up in a
// small map instead of going through prom-client's label hashing each time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DECISION_RULES, NON_DECISION_RULES, SIGNAL_RULES } from './rules/signal-rules.js';
import type { PingResult, PingTrigger } from './ping/ping-job.js';
import type { Platform, PushOutcome } from './push/adapter.js';
import type { CaptureSupervisor } from './recovery/capture-supervisor.js';
import type { CatchUpResult } from './recovery/catch-up.js';

const PREFIX = 'rhopush_';

/** Label values seen on the hot path beyond this many per metric are counted as `other`. */
const MAX_LABEL_VALUES = 64;

const PING_TRIGGERS: readonly PingTrigger[] = ['auto', 'rest', 'queue', 'library', 'cli', 'catch-up'];
const PLATFORMS: readonly Platform[] = ['apple', 'fcm', 'rhoconnect_push'];
const PUSH_OUTCOMES: readonly PushOutcome[] = ['sent', 'logged', 'failed', 'dead', 'skipped-dead', 'dropped'];
/** Redis keyspace events rhopush's patterns receive in practice (others are cached on first sight). */
const KNOWN_EVENTS = ['incrby', 'decrby', 'set', 'del', 'expire', 'expired', 'rename_from', 'rename_to'];

/** Outcomes a queue job can end with; the worker may report others (cached on first sight). */
export type JobOutcome = 'done' | 'failed' | 'retried' | 'invalid' | (string & {});

interface Incrementable {
  inc(value?: number): void;
}

/** Label children of one single-label counter, created once per value. */
class LabelledCounter {
  private readonly children = new Map<string, Incrementable>();

  constructor(
    private readonly counter: Counter<string>,
    known: readonly string[],
  ) {
    // inc(0) exports the known series at zero from the start, so rates and alerts see them.
    for (const value of known) {
      const child = counter.labels(value);
      child.inc(0);
      this.children.set(value, child);
    }
  }

  inc(value: string, by = 1): void {
    let child = this.children.get(value);
    if (child === undefined) {
      child = this.children.size < MAX_LABEL_VALUES ? this.counter.labels(value) : this.other();
      this.children.set(value, child);
    }
    child.inc(by);
  }

  private other(): Incrementable {
    return this.children.get('other') ?? this.counter.labels('other');
  }
}

let processRegistry: Registry | undefined;

/** Node's process metrics (CPU, memory, event loop, GC), collected once per process. */
function processMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface ActivityTotals {
  pings: number;
  devicePushes: number;
  changes: number;
}

export interface MetricsOptions {
  /** Include Node's process metrics in `text()` (default true). */
  processMetrics?: boolean;
}

/**
 * Every counter rhopush exposes on /metrics. Parts call the methods below; none of them reads
 * a metric back except tests, through `registry`.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly includeProcess: boolean;

  private readonly keyspaceEvents: LabelledCounter;
  private readonly decisions: LabelledCounter;
  private readonly pings: LabelledCounter;
  private readonly pingDuration: Histogram<string>;
  private readonly devicePushes: Counter<'platform' | 'outcome'>;
  private readonly devicePushChildren = new Map<string, Incrementable>();
  private readonly deadTokens: LabelledCounter;
  private readonly retries: LabelledCounter;
  private readonly queueDepth: Gauge<'queue'>;
  private readonly jobs: LabelledCounter;
  private readonly groupChanges: Histogram<string>;
  private readonly writeToPing: Histogram<string>;
  private readonly writeToPingStart: Histogram.Internal<string>;
  private readonly writeToPingFinish: Histogram.Internal<string>;
  private readonly reconnects: LabelledCounter;
  private readonly configReloads: LabelledCounter;
  private readonly configOk: Gauge<string>;
  private readonly canaryFailures: LabelledCounter;
  private readonly catchUps: LabelledCounter;
  private readonly catchUpDuration: Histogram<string>;
  private readonly catchUpPairs: LabelledCounter;
  private readonly leaseEvents: LabelledCounter;
  private groupedChanges = 0;
  private groups = 0;
  private pingCount = 0;
  private devicePushCount = 0;

  constructor(options: MetricsOptions = {}) {
    this.includeProcess = options.processMetrics !== false;
    // capture
    this.keyspaceEvents = this.labelled(
      'keyspace_events_total',
      'Keyspace notifications received from Redis (rhopush canaries excluded), by event type',
      'event',
      KNOWN_EVENTS,
    );
    this.decisions = this.labelled(
      'decisions_total',
      'Capture decisions, by the rule that made them (plugin-write is the only one that pings)',
      'rule',
      [...DECISION_RULES.map((r) => r.rule), ...NON_DECISION_RULES, ...SIGNAL_RULES.map((r) => r.name)],
    );
    // pings and device pushes
    this.pings = this.labelled('pings_total', 'Pings run, by trigger', 'trigger', PING_TRIGGERS);
    this.pingDuration = this.histogram(
      'ping_duration_seconds',
      'Time to run one ping (read clients, push every device), by trigger',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      ['trigger'],
    );
    this.devicePushes = new Counter({
      name: `${PREFIX}device_pushes_total`,
      help: 'Device pushes, by platform and outcome',
      labelNames: ['platform', 'outcome'],
      registers: [this.registry],
    });
    for (const platform of PLATFORMS) {
      for (const outcome of PUSH_OUTCOMES) {
        const child = this.devicePushes.labels(platform, outcome);
        child.inc(0);
        this.devicePushChildren.set(`${platform}\u0000${outcome}`, child);
      }
    }
    this.deadTokens = this.labelled(
      'dead_tokens_total',
      'Device tokens the platform reported as no longer valid, by platform',
      'platform',
      PLATFORMS,
    );
    this.retries = this.labelled(
      'push_retries_total',
      'Retries of device pushes before their final outcome, by platform',
      'platform',
      PLATFORMS,
    );
    // the Resque queue
    this.queueDepth = new Gauge({
      name: `${PREFIX}queue_depth`,
      help: 'Ping jobs waiting in a Resque queue, as last seen by the worker',
      labelNames: ['queue'],
      registers: [this.registry],
    });
    this.jobs = this.labelled('queue_jobs_total', 'Queue jobs finished, by outcome', 'outcome', ['done', 'failed', 'retried', 'invalid']);
    // grouping and latency
    this.groupChanges = this.histogram(
      'changes_per_ping',
      'Captured changes merged into one automatic ping (grouping); sum/count is the grouping ratio',
      [1, 2, 3, 5, 10, 20, 50, 100, 500],
    );
    this.gauge('grouping_ratio', 'Captured changes per automatic ping since start (1 means no grouping happened)', () =>
      this.groups === 0 ? 0 : this.groupedChanges / this.groups,
    );
    this.gauge(
      'auto_pings_waiting',
      'Automatic pings grouped and waiting for a free slot (stays near 0 while rhopush keeps up)',
      () => this.waitingPings?.() ?? 0,
    );
    this.writeToPing = this.histogram(
      'write_to_ping_seconds',
      'From capturing the first change of a group to its ping starting (stage=start) and finishing (stage=finish)',
      [0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 1.5, 2.5, 5, 10, 30],
      ['stage'],
    );
    this.writeToPingStart = this.writeToPing.labels('start');
    this.writeToPingFinish = this.writeToPing.labels('finish');
    // settings
    this.configReloads = this.labelled(
      'config_reloads_total',
      'Reloads of settings.yml, by result (applied; rejected: the file did not parse or validate, the last good settings kept)',
      'result',
      ['applied', 'rejected'],
    );
    this.configOk = new Gauge({
      name: `${PREFIX}config_last_reload_ok`,
      help: '1 when the settings file in use is the one on disk, 0 while a bad file is being ignored',
      registers: [this.registry],
    });
    this.configOk.set(1);
    // recovery: reconnects, canaries, catch-up, leases
    this.reconnects = this.labelled(
      'redis_reconnects_total',
      'Keyspace subscriptions re-established after a dropped link, by node',
      'node',
      [],
    );
    this.canaryFailures = this.labelled(
      'canary_failures_total',
      'Canaries that did not come back in time on a node (capture reconnected and caught up), by node',
      'node',
      [],
    );
    this.catchUps = this.labelled(
      'catch_ups_total',
      'Catch-up runs after a gap, by reason (start, reconnect, takeover, canary, new node)',
      'reason',
      [],
    );
    this.catchUpDuration = this.histogram(
      'catch_up_duration_seconds',
      'Time one catch-up run took on one node',
      [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    );
    this.catchUpPairs = this.labelled(
      'catch_up_pairs_total',
      '(user, source) pairs seen by catch-up, by result: scanned, changed (pinged), recorded, handover_duplicate',
      'result',
      ['scanned', 'changed', 'recorded', 'handover_duplicate'],
    );
    this.leaseEvents = this.labelled(
      'capture_leases_total',
      'Capture leases on Redis nodes acquired or lost by this instance (several rhopush instances)',
      'event',
      ['acquired', 'lost'],
    );
  }

  private labelled(name: string, help: string, label: string, known: readonly string[]): LabelledCounter {
    return new LabelledCounter(new Counter({ name: `${PREFIX}${name}`, help, labelNames: [label], registers: [this.registry] }), known);
  }

  private histogram<L extends string = string>(name: string, help: string, buckets: number[], labelNames: L[] = []): Histogram<L> {
    return new Histogram({ name: `${PREFIX}${name}`, help, labelNames, buckets, registers: [this.registry] });
  }

  private gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** Follows capture's recovery events: reconnects, canary failures, catch-up runs, leases. */
  followCapture(supervisor: CaptureSupervisor): void {
    supervisor.on('node-down', (node: string) => this.reconnect(node));
    supervisor.on('canary-failure', (node: string) => this.canaryFailure(node));
    supervisor.on('catch-up', (result: CatchUpResult) => this.catchUp(result));
    supervisor.on('lease-acquired', () => this.lease('acquired'));
    supervisor.on('lease-lost', () => this.lease('lost'));
  }

  /**
   * Running totals since start, read without prom-client (the console's throughput): pings run,
   * device pushes made, captured changes grouped into automatic pings.
   */
  get totals(): ActivityTotals {
    return { pings: this.pingCount, devicePushes: this.devicePushCount, changes: this.groupedChanges };
  }

  /** Content type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric (rhopush's, then the process's). */
  async text(): Promise<string> {
    const own = await this.registry.metrics();
    if (!this.includeProcess) return own;
    return `${own}\n${await processMetricsRegistry().metrics()}`;
  }

  // --- capture -------------------------------------------------------------------------------

  /** One keyspace notification received (hot path). */
  keyspaceEvent(event: string): void {
    this.keyspaceEvents.inc(event);
  }

  /** The rule that decided one keyspace event (hot path). */
  decision(rule: string): void {
    this.decisions.inc(rule);
  }

  /** A keyspace subscription came back after its link dropped. */
  reconnect(node: string): void {
    this.reconnects.inc(node);
  }

  /** A node's canary did not come back in time. */
  canaryFailure(node: string): void {
    this.canaryFailures.inc(node);
  }

  /** One catch-up run finished on one node. */
  catchUp(result: {
    reason: string;
    scanned: number;
    changed: number;
    recorded: number;
    possibleDuplicates: number;
    durationMs: number;
  }): void {
    this.catchUps.inc(result.reason);
    this.catchUpDuration.observe(result.durationMs / 1000);
    this.catchUpPairs.inc('scanned', result.scanned);
    this.catchUpPairs.inc('changed', result.changed);
    this.catchUpPairs.inc('recorded', result.recorded);
    this.catchUpPairs.inc('handover_duplicate', result.possibleDuplicates);
  }

  /** This instance acquired or lost the capture lease of a node. */
  lease(event: 'acquired' | 'lost'): void {
    this.leaseEvents.inc(event);
  }

  // --- grouping and pings --------------------------------------------------------------------

  /** A group of `changes` captured changes became one automatic ping. */
  group(changes: number): void {
    this.groupChanges.observe(changes);
    this.groupedChanges += changes;
    this.groups += 1;
  }

  /** An automatic ping whose first change was captured at `firstAt` (ms since epoch) starts now. */
  pingStarted(firstAt: number): void {
    this.writeToPingStart.observe(Math.max(0, Date.now() - firstAt) / 1000);
  }

  /** ...and has finished now. */
  pingFinished(firstAt: number): void {
    this.writeToPingFinish.observe(Math.max(0, Date.now() - firstAt) / 1000);
  }

  /** One finished ping from any entry point, with every device push it made. */
  ping(result: PingResult, durationMs: number): void {
    this.pingCount += 1;
    this.devicePushCount += result.pushes.length;
    this.pings.inc(result.trigger);
    this.pingDuration.labels(result.trigger).observe(durationMs / 1000);
    for (const push of result.pushes) this.devicePush(push.platform, push.outcome, push.retries ?? 0);
  }

  /** One device push's final outcome (PingJob results call this; adapters need not). */
  devicePush(platform: string, outcome: string, retries = 0): void {
    const key = `${platform}\u0000${outcome}`;
    let child = this.devicePushChildren.get(key);
    if (child === undefined) {
      child = this.devicePushes.labels(platform, outcome);
      if (this.devicePushChildren.size < MAX_LABEL_VALUES * 4) this.devicePushChildren.set(key, child);
    }
    child.inc();
    if (outcome === 'dead') this.deadTokens.inc(platform);
    if (retries > 0) this.retries.inc(platform, retries);
  }

  // --- queue (called by the Resque worker) ---------------------------------------------------

  /** Jobs waiting in `queue` (default `ping`), as the worker last saw it. */
  /** Where `rhopush_auto_pings_waiting` reads the number of automatic pings waiting for a slot. */
  waitingPings?: () => number;

  setQueueDepth(depth: number, queue = 'ping'): void {
    this.queueDepth.labels(queue).set(depth);
  }

  /** One queue job finished with `outcome` (done, failed, retried, invalid). */
  jobOutcome(outcome: JobOutcome): void {
    this.jobs.inc(outcome);
  }

  // --- settings --------------------------------------------------------------------------------

  /** A settings reload was applied, or the file was rejected and the last good settings kept. */
  configReload(ok: boolean): void {
    this.configReloads.inc(ok ? 'applied' : 'rejected');
    this.configOk.set(ok ? 1 : 0);
  }
}
