// A private Redis Cluster built from redis-server processes on free loopback ports (tests, benchmarks):
// masters with their slots, replicas, and the operations fault tests need (failover, a new master,
// moving slots with their keys).
import { Redis } from 'ioredis';
import { CLUSTER_SLOTS } from '../store/cluster-slots.js';
import { startRedisServer, type RedisServerProcess } from './redis-server-process.js';
import { waitUntil, type WaitOptions } from './wait.js';

export interface ClusterNodeProcess {
  server: RedisServerProcess;
  /** The node id Redis Cluster gave it (CLUSTER MYID). */
  id: string;
  host: string;
  port: number;
  /** Cluster bus port (port + 10000). */
  busPort: number;
  /** An admin connection to this node. */
  admin: Redis;
}

export interface RedisClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** cluster-node-timeout: how fast a dead master is failed over (default 2000 ms). */
  nodeTimeoutMs?: number;
  /** Extra redis-server arguments for every node. */
  args?: string[];
  binary?: string;
}

export interface RedisClusterProcess {
  nodes: ClusterNodeProcess[];
  /** `host:port` of every node, for settings `:redis:` seeds. */
  seeds(): string[];
  /** Current masters with slots, as the cluster reports them. */
  masters(): Promise<Array<{ id: string; port: number; slots: Array<[number, number]> }>>;
  replicaOf(masterPort: number): Promise<ClusterNodeProcess | undefined>;
  /** CLUSTER FAILOVER on a replica; resolves when every node agrees it is the master. */
  failover(replicaPort: number): Promise<void>;
  /** Starts an empty master and joins it to the cluster (no slots yet). */
  addMaster(): Promise<ClusterNodeProcess>;
  /** Moves `count` slots (the highest the source owns) with their keys from one master to another. */
  moveSlots(fromPort: number, toPort: number, count: number): Promise<number[]>;
  /** Resolves when every node reports cluster_state:ok and the same slot owners. */
  waitStable(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterProcess> {
  const masterCount = options.masters ?? 3;
  const replicasPer = options.replicasPerMaster ?? 1;
  const nodeArgs = [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-node-timeout',
    String(options.nodeTimeoutMs ?? 2000),
    // Keep serving the slots that are up while another shard fails over.
    '--cluster-require-full-coverage',
    'no',
    // Replicas sync at once instead of after the default five-second wait for more replicas.
    '--repl-diskless-sync-delay',
    '0',
    ...(options.args ?? []),
  ];
  const nodes: ClusterNodeProcess[] = [];
  const launch = async (): Promise<ClusterNodeProcess> => {
    // The bus port is port + 10000: the port is chosen where both are free, and a start that loses
    // either to another process is tried again on other ports.
    const server = await startRedisServer({ args: nodeArgs, binary: options.binary, clusterBus: true });
    const busPort = server.busPort!;
    const admin = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 3, retryStrategy: (t) => Math.min(t * 50, 500) });
    admin.on('error', () => undefined);
    const id = (await admin.call('CLUSTER', 'MYID')) as string;
    return { server, id, host: server.host, port: server.port, busPort, admin };
  };

  try {
    const launched = await Promise.allSettled(Array.from({ length: masterCount * (1 + replicasPer) }, () => launch()));
    for (const r of launched) if (r.status === 'fulfilled') nodes.push(r.value);
    const failed = launched.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const masters = nodes.slice(0, masterCount);
    const replicas = nodes.slice(masterCount);

    const per = Math.floor(CLUSTER_SLOTS / masterCount);
    await Promise.all(
      masters.map((m, i) => {
        const start = i * per;
        const end = i === masterCount - 1 ? CLUSTER_SLOTS - 1 : start + per - 1;
        return m.admin.call('CLUSTER', 'ADDSLOTSRANGE', String(start), String(end));
      }),
    );
    for (const n of nodes.slice(1)) await nodes[0]!.admin.call('CLUSTER', 'MEET', n.host, String(n.port), String(n.busPort));
    await waitUntil(
      async () => {
        for (const n of nodes) if (knownNodes(await clusterNodes(n.admin)) < nodes.length) return false;
        return true;
      },
      clusterWait('cluster nodes to meet', 15_000),
    );
    for (const [i, r] of replicas.entries()) {
      const master = masters[i % masterCount]!;
      await r.admin.call('CLUSTER', 'REPLICATE', master.id);
    }
    const cluster = handle(nodes, launch);
    await cluster.waitStable();
    await waitUntil(
      async () => {
        for (const r of replicas) if (!/master_link_status:up/.test(await r.admin.info('replication'))) return false;
        return true;
      },
      clusterWait('replicas to sync', 15_000),
    );
    return cluster;
  } catch (err) {
    await Promise.allSettled(nodes.map((n) => stopNode(n)));
    throw err;
  }
}

function handle(nodes: ClusterNodeProcess[], launch: () => Promise<ClusterNodeProcess>): RedisClusterProcess {
  const byPort = (port: number) => {
    const n = nodes.find((x) => x.port === port);
    if (!n) throw new Error(`no cluster node on port ${port}`);
    return n;
  };
  const live = () => nodes.filter((n) => n.server.process.exitCode === null && n.server.process.signalCode === null);
  const view = async () => {
    for (const n of live()) {
      try {
        return parseNodes(await clusterNodes(n.admin));
      } catch {
        // try the next node
      }
    }
    throw new Error('no cluster node answers');
  };
  const cluster: RedisClusterProcess = {
    nodes,
    seeds: () => nodes.map((n) => `${n.host}:${n.port}`),
    async masters() {
      return (await view())
        .filter((n) => n.master && n.slots.length > 0 && !n.failed)
        .map((n) => ({ id: n.id, port: n.port, slots: n.slots }));
    },
    async replicaOf(masterPort) {
      const master = byPort(masterPort);
      // Each replica knows its own master first; other nodes learn it by gossip.
      for (const n of live()) {
        const me = parseNodes(await clusterNodes(n.admin)).find((x) => x.myself);
        if (me && !me.master && me.masterId === master.id) return n;
      }
      return undefined;
    },
    async failover(replicaPort) {
      const replica = byPort(replicaPort);
      const promoted = async () => parseNodes(await clusterNodes(replica.admin)).find((x) => x.myself)?.master === true;
      // A manual failover is abandoned by Redis after 5 s (e.g. while votes are slow on a busy
      // machine); ask again, the last time without waiting for the old master's agreement.
      for (let attempt = 0; !(await promoted()); attempt++) {
        if (attempt === 3) throw new Error(`replica ${replicaPort} was not promoted`);
        await replica.admin.call('CLUSTER', 'FAILOVER', ...(attempt === 2 ? ['FORCE'] : []));
        await waitUntil(promoted, clusterWait(`failover to ${replicaPort}`, 6000)).catch(() => undefined);
      }
      await waitUntil(
        async () => {
          for (const n of live()) {
            const me = parseNodes(await clusterNodes(n.admin)).find((x) => x.id === replica.id);
            if (!me?.master) return false;
          }
          return true;
        },
        clusterWait(`failover to ${replicaPort}`, 15_000),
      );
      await cluster.waitStable();
    },
    async addMaster() {
      const node = await launch();
      nodes.push(node);
      await nodes[0]!.admin.call('CLUSTER', 'MEET', node.host, String(node.port), String(node.busPort));
      await waitUntil(
        async () => {
          for (const n of live()) if (!(await clusterNodes(n.admin)).includes(node.id)) return false;
          if (knownNodes(await clusterNodes(node.admin)) < live().length) return false;
          return /cluster_state:ok/.test((await node.admin.call('CLUSTER', 'INFO')) as string);
        },
        clusterWait('new master to join', 15_000),
      );
      return node;
    },
    async moveSlots(fromPort, toPort, count) {
      const from = byPort(fromPort);
      const to = byPort(toPort);
      const mine = parseNodes(await clusterNodes(from.admin)).find((n) => n.id === from.id);
      const owned: number[] = [];
      for (const [s, e] of mine?.slots ?? []) for (let x = s; x <= e; x++) owned.push(x);
      const slots = owned.slice(-count);
      for (const slot of slots) {
        await to.admin.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', from.id);
        await from.admin.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', to.id);
        for (;;) {
          const keys = (await from.admin.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '100')) as string[];
          if (keys.length === 0) break;
          await from.admin.call('MIGRATE', to.host, String(to.port), '', '0', '5000', 'REPLACE', 'KEYS', ...keys);
        }
        for (const n of [to, from, ...live().filter((x) => x !== to && x !== from)]) {
          try {
            await n.admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id);
          } catch {
            // Replicas refuse SETSLOT; they learn the owner from their master.
          }
        }
      }
      await cluster.waitStable();
      return slots;
    },
    async waitStable(timeoutMs = 15_000) {
      await waitUntil(
        async () => {
          let reference: string | undefined;
          for (const n of live()) {
            const info = (await n.admin.call('CLUSTER', 'INFO')) as string;
            if (!/cluster_state:ok/.test(info)) return false;
            const owners = parseNodes(await clusterNodes(n.admin))
              .filter((x) => x.master && x.slots.length > 0)
              .map((x) => `${x.id}:${JSON.stringify(x.slots)}`)
              .sort()
              .join('|');
            if (reference === undefined) reference = owners;
            else if (owners !== reference) return false;
          }
          return true;
        },
        clusterWait('cluster to agree on slot owners', timeoutMs),
      );
    },
    async stop() {
      await Promise.allSettled(nodes.map((n) => stopNode(n)));
    },
  };
  return cluster;
}

async function stopNode(n: ClusterNodeProcess): Promise<void> {
  n.admin.disconnect();
  await n.server.stop();
}

async function clusterNodes(admin: Redis): Promise<string> {
  return (await admin.call('CLUSTER', 'NODES')) as string;
}

function knownNodes(text: string): number {
  return text.split('\n').filter((l) => l.trim() && !/\bhandshake\b|\bnoaddr\b/.test(l)).length;
}

interface NodeLine {
  id: string;
  port: number;
  master: boolean;
  myself: boolean;
  failed: boolean;
  masterId?: string;
  slots: Array<[number, number]>;
}

/** CLUSTER NODES lines: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
function parseNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((line) => {
      const parts = line.trim().split(' ');
      const flags = parts[2]!.split(',');
      const addr = parts[1]!.split('@')[0]!;
      const slots: Array<[number, number]> = [];
      for (const s of parts.slice(8)) {
        if (s.startsWith('[')) continue; // slot in migration
        const [a, b] = s.split('-');
        slots.push([Number(a), Number(b ?? a)]);
      }
      return {
        id: parts[0]!,
        port: Number(addr.slice(addr.lastIndexOf(':') + 1)),
        master: flags.includes('master'),
        myself: flags.includes('myself'),
        failed: flags.includes('fail') || flags.includes('fail?'),
        masterId: parts[3] === '-' ? undefined : parts[3],
        slots,
      };
    });
}

/** Cluster nodes answer errors while they meet, fail over or migrate: such a check is tried again. */
function clusterWait(what: string, timeoutMs: number): WaitOptions {
  return { what, timeoutMs, intervalMs: 50, retryErrors: true };
}
