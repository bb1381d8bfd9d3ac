// Fingerprints of master documents, and rhopush's record of the last one it acted on per pair.
//
// A fingerprint is a SHA-1 over md_size and every bucket of the document (buckets by name, members
// sorted), so it changes whenever the document's content or count changes. rhopush keeps, per pair,
// `fp` (the state its last ping covered, or the state it saw change without needing a ping), `by`
// (`<instance> ping` or `<instance> seen`: who recorded it, and how) and
// `pending` (`<instance> <fp>`, written just before a ping is sent and cleared once it is recorded):
// after a crash, a pair whose pending fingerprint equals its current one may already have been
// pinged, which is how catch-up tells a handover duplicate from a change nobody pinged.
//
// On a standalone node the whole read is one Lua script per batch (the document's keys all live on
// that node). In a Redis Cluster a document's keys hash to different slots, so the reads are per
// key through the cluster client and the hash is computed here.
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { keySlot, tagForSlot, type SlotRange } from '../store/cluster-slots.js';
import { BASELINE_KEY, pairKeys, type DocumentPair } from './document-pair.js';

export interface PairReading {
  pair: DocumentPair;
  /** Fingerprint of the document now; null when it has no md_size (never written or deleted). */
  current: string | null;
  /** What rhopush last recorded for the pair; null when it never did. */
  stored: string | null;
  pending: { owner: string; fp: string } | null;
}

export interface FingerprintStore {
  /** Current and recorded fingerprints. */
  read(pairs: DocumentPair[]): Promise<PairReading[]>;
  /** Same, and marks each pair's current fingerprint as pending for `owner` (just before a ping). */
  snapshot(pairs: DocumentPair[], owner: string): Promise<PairReading[]>;
  /**
   * Records fingerprints as acted on (clears pending); null deletes the record (document gone).
   * `by` says who recorded it and how (`<instance> ping` or `<instance> seen`), for operators.
   */
  commit(entries: Array<{ pair: DocumentPair; fp: string | null }>, by: string): Promise<void>;
  /** For each pair: whether its document (md_size) exists. */
  documentsExist(pairs: DocumentPair[]): Promise<boolean[]>;
  /**
   * Whether rhopush recorded a baseline where these pairs live (a pair without a record there is
   * new; elsewhere it is part of a first baseline), and how to mark it once a catch-up walked it.
   */
  baseline(node: string): Promise<Baseline>;
}

export interface Baseline {
  covers(pair: DocumentPair): boolean;
  mark(): Promise<void>;
}

// KEYS: md_size key and seen key per pair. ARGV[1]: 'read' or 'snapshot'; ARGV[2]: owner.
// Returns fp, stored fp, pending per pair (nil where missing).
const READ_SCRIPT = `
local out = {}
for i = 1, #KEYS, 2 do
  local size = redis.call('GET', KEYS[i])
  local fp = false
  if size then
    local base = string.sub(KEYS[i], 1, -6)
    local idx = redis.pcall('HGETALL', base .. ':indices')
    local buckets = {}
    if type(idx) == 'table' and not idx.err then
      for j = 1, #idx, 2 do buckets[#buckets + 1] = { idx[j], idx[j + 1] } end
    end
    table.sort(buckets, function(a, b) return a[1] < b[1] end)
    local parts = { size }
    for _, b in ipairs(buckets) do
      local members = redis.pcall('SMEMBERS', b[2])
      if type(members) ~= 'table' or members.err then members = {} end
      table.sort(members)
      parts[#parts + 1] = '#' .. b[1] .. '#' .. #members
      for _, m in ipairs(members) do parts[#parts + 1] = #m .. ':' .. m end
    end
    fp = redis.sha1hex(table.concat(parts, '\\n'))
  end
  local stored = redis.call('HMGET', KEYS[i + 1], 'fp', 'pending')
  if ARGV[1] == 'snapshot' and fp then
    redis.call('HSET', KEYS[i + 1], 'pending', ARGV[2] .. ' ' .. fp)
  end
  out[#out + 1] = fp
  out[#out + 1] = stored[1]
  out[#out + 1] = stored[2]
end
return out
`;

/** Documents hashed per script call: bounds how long one call keeps the server busy. */
const PAIRS_PER_SCRIPT = 32;

type RedisWithFingerprints = Redis & {
  rhopushFingerprints(numKeys: number, ...args: string[]): Promise<Array<string | null>>;
};

/** Fingerprints on one standalone Redis node (one Lua call per batch). */
export class NodeFingerprintStore implements FingerprintStore {
  private readonly redis: RedisWithFingerprints;

  constructor(redis: Redis) {
    if (!('rhopushFingerprints' in redis)) redis.defineCommand('rhopushFingerprints', { lua: READ_SCRIPT });
    this.redis = redis as RedisWithFingerprints;
  }

  read(pairs: DocumentPair[]): Promise<PairReading[]> {
    return this.run(pairs, 'read', '');
  }

  snapshot(pairs: DocumentPair[], owner: string): Promise<PairReading[]> {
    return this.run(pairs, 'snapshot', owner);
  }

  private async run(pairs: DocumentPair[], mode: string, owner: string): Promise<PairReading[]> {
    // Several short scripts rather than one long one: the server serves other clients (RhoConnect,
    // rhopush's own capture) between them. They are sent together and answered in order.
    const chunks: DocumentPair[][] = [];
    for (let i = 0; i < pairs.length; i += PAIRS_PER_SCRIPT) chunks.push(pairs.slice(i, i + PAIRS_PER_SCRIPT));
    const replies = await Promise.all(
      chunks.map((chunk) => {
        const keys: string[] = [];
        for (const p of chunk) keys.push(pairKeys.mdSize(p), pairKeys.seen(p));
        return this.redis.rhopushFingerprints(keys.length, ...keys, mode, owner);
      }),
    );
    return chunks.flatMap((chunk, c) => {
      const flat = replies[c]!;
      return chunk.map((pair, i) => reading(pair, flat[i * 3] ?? null, flat[i * 3 + 1] ?? null, flat[i * 3 + 2] ?? null));
    });
  }

  async commit(entries: Array<{ pair: DocumentPair; fp: string | null }>, by: string): Promise<void> {
    if (entries.length === 0) return;
    // Plain commands rather than a pipeline of their own: on an auto-pipelined connection the
    // records of pings finishing together go out in one write.
    const replies: Promise<unknown>[] = [];
    for (const { pair, fp } of entries) {
      const key = pairKeys.seen(pair);
      if (fp === null) replies.push(this.redis.del(key));
      else replies.push(this.redis.hset(key, 'fp', fp, 'by', by), this.redis.hdel(key, 'pending'));
    }
    await Promise.all(replies);
  }

  async documentsExist(pairs: DocumentPair[]): Promise<boolean[]> {
    if (pairs.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const p of pairs) pipeline.exists(pairKeys.mdSize(p));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, n]) => {
      if (err) throw err;
      return n === 1;
    });
  }

  /** One marker per node: the node keeps its documents and rhopush's records together. */
  async baseline(): Promise<Baseline> {
    const has = (await this.redis.exists(BASELINE_KEY)) === 1;
    return {
      covers: () => has,
      mark: async () => {
        await this.redis.set(BASELINE_KEY, new Date().toISOString());
      },
    };
  }
}

/** Fingerprints across a Redis Cluster: per-key reads (issued concurrently), hashed here. */
export class ClusterFingerprintStore implements FingerprintStore {
  constructor(
    private readonly cluster: Cluster,
    /** The slots a master serves now (cluster topology). */
    private readonly slotsOf: (node: string) => readonly SlotRange[],
    /** A direct connection to a master (its baseline markers are read there). */
    private readonly connectionFor: (node: string) => Redis | undefined,
  ) {}

  read(pairs: DocumentPair[]): Promise<PairReading[]> {
    return this.run(pairs, undefined);
  }

  snapshot(pairs: DocumentPair[], owner: string): Promise<PairReading[]> {
    return this.run(pairs, owner);
  }

  private async run(pairs: DocumentPair[], owner: string | undefined): Promise<PairReading[]> {
    const c = this.cluster;
    return Promise.all(
      pairs.map(async (pair) => {
        const [size, indices, stored] = await Promise.all([
          c.get(pairKeys.mdSize(pair)),
          c.hgetall(pairKeys.indices(pair)).catch(() => ({}) as Record<string, string>),
          c.hmget(pairKeys.seen(pair), 'fp', 'pending'),
        ]);
        let fp: string | null = null;
        if (size !== null) {
          const buckets = Object.entries(indices).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
          const members = await Promise.all(buckets.map(([, key]) => c.smembers(key).catch(() => [] as string[])));
          fp = documentFingerprint(
            size,
            buckets.map(([name], i) => [name, members[i]!]),
          );
          if (owner !== undefined) await c.hset(pairKeys.seen(pair), 'pending', `${owner} ${fp}`);
        }
        return reading(pair, fp, stored[0] ?? null, stored[1] ?? null);
      }),
    );
  }

  async commit(entries: Array<{ pair: DocumentPair; fp: string | null }>, by: string): Promise<void> {
    await Promise.all(
      entries.map(({ pair, fp }) =>
        fp === null
          ? this.cluster.del(pairKeys.seen(pair))
          : Promise.all([this.cluster.hset(pairKeys.seen(pair), 'fp', fp, 'by', by), this.cluster.hdel(pairKeys.seen(pair), 'pending')]),
      ),
    );
  }

  async documentsExist(pairs: DocumentPair[]): Promise<boolean[]> {
    return Promise.all(pairs.map(async (p) => (await this.cluster.exists(pairKeys.mdSize(p))) === 1));
  }

  /**
   * One marker per slot (`rhopush:baseline:{<tag of the slot>}`): markers move with their slots to
   * other masters and survive failovers with the replicas, as the records they vouch for do. They
   * are read and written on the master itself, a few thousand per script call.
   */
  async baseline(node: string): Promise<Baseline> {
    const redis = this.connectionFor(node);
    if (!redis) throw new Error(`no connection to ${node}`);
    const slots: number[] = [];
    for (const [start, end] of this.slotsOf(node)) for (let s = start; s <= end; s++) slots.push(s);
    const marked = new Set<number>();
    for (let i = 0; i < slots.length; i += MARKERS_PER_CALL) {
      const chunk = slots.slice(i, i + MARKERS_PER_CALL);
      const exists = (await redis.eval(CHECK_MARKERS, 0, ...chunk.map(slotBaselineKey))) as number[];
      chunk.forEach((s, j) => {
        if (exists[j] === 1) marked.add(s);
      });
    }
    return {
      covers: (pair) => marked.has(keySlot(pairKeys.seen(pair))),
      mark: async () => {
        const unmarked = slots.filter((s) => !marked.has(s));
        const at = new Date().toISOString();
        for (let i = 0; i < unmarked.length; i += MARKERS_PER_CALL) {
          await redis.eval(SET_MARKERS, 0, at, ...unmarked.slice(i, i + MARKERS_PER_CALL).map(slotBaselineKey));
        }
      },
    };
  }
}

const MARKERS_PER_CALL = 2000;
// Keys are local to the master the script runs on (one per slot it serves), so none is declared.
const CHECK_MARKERS = `local out = {} for i = 1, #ARGV do out[i] = redis.call('EXISTS', ARGV[i]) end return out`;
const SET_MARKERS = `for i = 2, #ARGV do redis.call('SET', ARGV[i], ARGV[1], 'NX') end return #ARGV - 1`;

function slotBaselineKey(slot: number): string {
  return `${BASELINE_KEY}:{${tagForSlot(slot)}}`;
}

/**
 * The fingerprint of a document from its md_size and buckets (name, members): the script's canonical
 * form. Members are sorted by bytes here and by the server's collation there; each implementation only
 * ever compares with its own records.
 */
export function documentFingerprint(size: string, buckets: Array<[string, string[]]>): string {
  const hash = createHash('sha1');
  hash.update(size);
  for (const [name, members] of buckets) {
    const sorted = [...members].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    hash.update(`\n#${name}#${sorted.length}`);
    for (const m of sorted) hash.update(`\n${Buffer.byteLength(m)}:${m}`);
  }
  return hash.digest('hex');
}

function reading(pair: DocumentPair, current: string | null, stored: string | null, pending: string | null): PairReading {
  let p: PairReading['pending'] = null;
  if (pending) {
    const cut = pending.lastIndexOf(' ');
    if (cut > 0) p = { owner: pending.slice(0, cut), fp: pending.slice(cut + 1) };
  }
  return { pair, current, stored, pending: p };
}
