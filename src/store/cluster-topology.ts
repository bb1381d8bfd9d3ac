// Which masters a Redis Cluster has right now, and which slots each serves. Keyspace
// notifications are local to the node that runs the write, so capture needs one subscriber per
// master; this follows failovers, added and removed masters and slot migrations by polling
// CLUSTER SLOTS (and at once when asked, e.g. when a subscriber drops).
import { EventEmitter } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import type { SlotRange } from './cluster-slots.js';
import { clusterNodeOptions } from './store-connection.js';

export interface ClusterMaster {
  id: string;
  host: string;
  port: number;
  /** `host:port`, the label capture uses for this node. */
  label: string;
  slots: SlotRange[];
}

export interface ClusterTopologyOptions {
  seeds: Array<{ host: string; port: number }>;
  /** Auth/TLS options for node connections (no host/port). */
  nodeOptions?: RedisOptions;
  refreshMs: number;
  logger: Logger;
}

/** Emits `change` (masters, previous) whenever the set of masters or their slots changes. */
export class ClusterTopology extends EventEmitter {
  private current: ClusterMaster[] = [];
  private fingerprint = '';
  private timer?: NodeJS.Timeout;
  private running?: Promise<boolean>;
  private again = false;
  private stopped = false;
  private connection?: { label: string; redis: Redis };
  /** Every node seen, so a refresh can still find someone to ask when the seeds are gone. */
  private readonly known = new Map<string, { host: string; port: number }>();
  refreshes = 0;
  changes = 0;
  private lastError?: string;

  constructor(private readonly options: ClusterTopologyOptions) {
    super();
    for (const s of options.seeds) this.known.set(`${s.host}:${s.port}`, s);
  }

  get masters(): ClusterMaster[] {
    return this.current;
  }

  /** First view of the cluster; throws when no seed answers. */
  async start(): Promise<ClusterMaster[]> {
    if (!(await this.refresh()) && this.current.length === 0) {
      throw new Error(
        `no Redis Cluster node answered CLUSTER SLOTS (seeds: ${[...this.known.keys()].join(', ')}; last error: ${this.lastError ?? 'none'}). ` +
          'Check :redis: and that these nodes run with cluster-enabled yes, or set :rhopush: :cluster: false.',
      );
    }
    this.schedule();
    return this.current;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.refresh()
        .catch((err: Error) => this.options.logger.error({ err: err.message }, 'cluster topology refresh failed'))
        .finally(() => this.schedule());
    }, this.options.refreshMs);
    this.timer.unref();
  }

  /** Asks the cluster now; concurrent calls share one query (and one more after it). */
  refresh(): Promise<boolean> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let changed = false;
      do {
        this.again = false;
        changed = (await this.query()) || changed;
      } while (this.again && !this.stopped);
      return changed;
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private candidates(): Array<{ label: string; host: string; port: number }> {
    const list: Array<{ label: string; host: string; port: number }> = [];
    const add = (label: string, host: string, port: number) => {
      if (!list.some((c) => c.label === label)) list.push({ label, host, port });
    };
    if (this.connection) {
      const [host, port] = splitLabel(this.connection.label);
      add(this.connection.label, host, port);
    }
    for (const m of this.current) add(m.label, m.host, m.port);
    for (const [label, n] of this.known) add(label, n.host, n.port);
    return list;
  }

  /** True when the view changed. A node that does not answer is skipped for the next one. */
  private async query(): Promise<boolean> {
    if (this.stopped) return false;
    this.refreshes += 1;
    for (const candidate of this.candidates()) {
      try {
        const redis = this.connect(candidate);
        const reply = (await redis.call('CLUSTER', 'SLOTS')) as SlotsReply;
        const masters = parseSlots(reply, candidate.host);
        if (masters.length === 0) throw new Error('node serves no slots yet');
        for (const row of reply)
          for (const n of row.slice(2) as NodeReply[]) {
            const host = n[0] || candidate.host;
            this.known.set(`${host}:${n[1]}`, { host, port: Number(n[1]) });
          }
        return this.apply(masters);
      } catch (err) {
        this.lastError = (err as Error).message;
        this.options.logger.debug({ node: candidate.label, err: this.lastError }, 'cluster topology query failed; asking another node');
        this.dropConnection();
      }
    }
    return false;
  }

  private connect(candidate: { label: string; host: string; port: number }): Redis {
    if (this.connection?.label === candidate.label) return this.connection.redis;
    this.dropConnection();
    const redis = new Redis({
      ...this.options.nodeOptions,
      host: candidate.host,
      port: candidate.port,
      connectionName: 'rhopush:topology',
      enableOfflineQueue: true,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      commandTimeout: 2000,
      retryStrategy: () => null,
    });
    redis.on('error', () => undefined);
    this.connection = { label: candidate.label, redis };
    return redis;
  }

  private dropConnection(): void {
    this.connection?.redis.disconnect();
    this.connection = undefined;
  }

  private apply(masters: ClusterMaster[]): boolean {
    const print = masters.map((m) => `${m.id}@${m.label}:${m.slots.map(([a, b]) => `${a}-${b}`).join(',')}`).join(' ');
    if (print === this.fingerprint) return false;
    const previous = this.current;
    this.current = masters;
    this.fingerprint = print;
    this.changes += 1;
    this.options.logger.info({ masters: masters.map((m) => ({ node: m.label, slots: m.slots.length })) }, 'cluster topology');
    this.emit('change', masters, previous);
    return true;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.dropConnection();
  }
}

type NodeReply = [string, number, string, ...unknown[]];
type SlotsReply = Array<[number, number, ...NodeReply[]]>;

/** CLUSTER SLOTS rows `[start, end, master, ...replicas]` grouped by master, sorted by label. */
export function parseSlots(reply: SlotsReply, fallbackHost: string): ClusterMaster[] {
  const byId = new Map<string, ClusterMaster>();
  for (const row of reply) {
    const [start, end, master] = row as [number, number, NodeReply];
    if (!master) continue;
    const host = master[0] || fallbackHost;
    const port = Number(master[1]);
    const id = String(master[2] ?? `${host}:${port}`);
    let m = byId.get(id);
    if (!m) byId.set(id, (m = { id, host, port, label: `${host}:${port}`, slots: [] }));
    m.slots.push([Number(start), Number(end)]);
  }
  const masters = [...byId.values()];
  for (const m of masters) m.slots.sort((a, b) => a[0] - b[0]);
  return masters.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

function splitLabel(label: string): [string, number] {
  const cut = label.lastIndexOf(':');
  return [label.slice(0, cut), Number(label.slice(cut + 1))];
}

/** The topology of the cluster `:redis:` seeds, refreshed about as often as canaries run. */
export function topologyForSettings(settings: Settings, logger: Logger): ClusterTopology {
  return new ClusterTopology({
    seeds: settings.redis.map((e) => ({ host: e.host, port: e.port })),
    nodeOptions: clusterNodeOptions(settings.redis[0]!, { connectionName: 'rhopush:topology' }),
    refreshMs: Math.max(250, Math.min(settings.rhopush.canaryIntervalMs || 1000, 2000)),
    logger,
  });
}
