// Which master-document writes are a device's own, under RhoConnect's real concurrency.
//
// A device create or delete is queued in a CUD queue that is per source and shared by every client
// (`source:application:<Source>:create`). A request then runs the queue ("a run"): it reads every
// entry, deletes them (one DEL per entry, naming its client) and then the queue itself, calls the
// backend, INCRBYs the `cd_size` of every client whose objects it stored ("marks"), and then, per
// user, takes the :md lock, writes :md and INCRBYs `md_size` once. A device search marks its own
// client and writes its user's :md the same way, without a queue. Hence, for one (user, source):
//
//   every run with a mark for the user makes exactly one `md_size` INCRBY, after all its marks,
//   and a run marks each of its clients at most once.
//
// The runs themselves are not visible, and they overlap: get_lock sleeps whole seconds, so a run's
// write can come a second after its marks, past other runs' marks and writes; and RhoConnect's
// queue lock expires on a whole-second boundary, so two or three requests often read the same queue
// at once and each runs it (duplicate marks, one write each), while only the first one's DELs show.
// The ledger therefore counts runs from two kinds of evidence:
//
// - a flush (entry DELs, then the queue DEL) is one run: the first mark of each of its clients
//   belongs to it, and it expects one write per user it marked;
// - a mark no flush explains (a second reader of a queue, a search, a flush rhopush did not see)
//   joins the oldest unexplained run of its (user, source) that lacks that client, else starts one:
//   the fewest runs that fit "each client at most once per run".
//
// An `md_size` INCRBY while a run of its pair is expected is the device's own and takes the oldest
// run; with none it is a plugin write. A plugin write that lands while a device run waits for the
// lock takes that run instead and the device's write then pings: one ping for the pair either way.
// Runs expire after `ttlMs`, counted from the start of their pair's busy spell (a request that died
// between its marks and its write, or a run counted twice, must not silence plugin writes for long),
// and are dropped for a node whose subscription dropped (catch-up covers the gap). Memory is
// proportional to device edits in flight.

/** A flush: the users it marked so far (each expects one write). */
interface Flush {
  users: Set<string>;
  node: string;
  at: number;
}

/** One expected device write of a (partition, source). */
interface Run {
  at: number;
  node: string;
  /** Clients of an unexplained run (others may join it); absent for a flush's run. */
  clients?: Set<string>;
}

const pairKey = (a: string, b: string) => `${a}\u0000${b}`;

export class DeviceEditLedger {
  /** Flushes in progress: entries deleted so far, per queue key, until the queue itself goes. */
  private readonly open = new Map<string, { source: string; clients: Set<string>; node: string; at: number }>();
  /** Finished flushes still waiting for a client's first mark, per (source, client), newest last. */
  private readonly awaiting = new Map<string, Flush[]>();
  /** Expected device writes per (partition, source), oldest first. */
  private readonly expected = new Map<string, Run[]>();
  private sinceSweep = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** Expected device writes pending (diagnostics, tests). */
  get size(): number {
    let n = 0;
    for (const runs of this.expected.values()) n += runs.length;
    return n;
  }

  /** A run deleted a client's entry of `queue` (the queue's key, naming source and operation). */
  entryTaken(queue: string, source: string, clientId: string, node: string): void {
    let flush = this.open.get(queue);
    if (!flush) this.open.set(queue, (flush = { source, clients: new Set(), node, at: this.now() }));
    flush.clients.add(clientId);
  }

  /** The queue itself was deleted: the flush is complete and waits for its clients' marks. */
  queueTaken(queue: string): void {
    const open = this.open.get(queue);
    if (!open) return;
    this.open.delete(queue);
    const flush: Flush = { users: new Set(), node: open.node, at: this.now() };
    for (const client of open.clients) push(this.awaiting, pairKey(open.source, client), flush);
    this.maybeSweep();
  }

  /**
   * A client's document count moved: its objects are stored and its user's :md write follows.
   * `partition` is where that write lands (the user, or `__shared__` for app partitions).
   */
  mark(user: string, clientId: string, source: string, partition: string, node: string): void {
    const t = this.now();
    const key = pairKey(partition, source);
    const flush = this.takeAwaiting(source, clientId, t);
    if (flush) {
      if (flush.users.has(user)) return;
      flush.users.add(user);
      push(this.expected, key, { at: t, node });
    } else {
      const runs = this.expected.get(key);
      const joined = runs?.find((r) => r.clients !== undefined && !r.clients.has(clientId) && t - r.at <= this.ttlMs);
      if (joined) joined.clients!.add(clientId);
      else push(this.expected, key, { at: t, node, clients: new Set([clientId]) });
    }
    this.maybeSweep();
  }

  /** True when this `md_size` INCRBY is an expected device write (and takes it). */
  consume(partition: string, source: string): boolean {
    if (this.expected.size === 0) return false;
    const key = pairKey(partition, source);
    const runs = this.expected.get(key);
    if (!runs) return false;
    const t = this.now();
    while (runs.length > 0 && t - runs[0]!.at > this.ttlMs) runs.shift();
    const taken = runs.shift();
    // The writes answer the count, not a particular run: the next run in line keeps the older time,
    // so a run counted once too often ages from the start of its pair's busy spell and expires,
    // instead of being renewed by every later run of a pair that never goes quiet.
    if (taken && runs.length > 0) runs[0]!.at = Math.min(runs[0]!.at, taken.at);
    if (runs.length === 0) this.expected.delete(key);
    return taken !== undefined;
  }

  /** The node's subscription dropped: what it would have told us about is unknown now. */
  forgetNode(node: string): void {
    this.prune((entry) => entry.node !== node);
  }

  /**
   * The newest flush waiting for this client's mark; older ones are dropped with it. A flush deletes
   * every entry present when it empties the queue, including entries queued after it read the queue
   * (RhoConnect's queue lock can expire under a waiting request): those clients never mark for it,
   * and a stale flush must not take a later run's mark.
   */
  private takeAwaiting(source: string, clientId: string, t: number): Flush | undefined {
    const key = pairKey(source, clientId);
    const list = this.awaiting.get(key);
    if (!list) return undefined;
    this.awaiting.delete(key);
    const newest = list[list.length - 1]!;
    return t - newest.at <= this.ttlMs ? newest : undefined;
  }

  private maybeSweep(): void {
    if (++this.sinceSweep < 1024) return;
    this.sinceSweep = 0;
    const t = this.now();
    this.prune((entry) => t - entry.at <= this.ttlMs);
  }

  /** Keeps only the entries `keep` accepts, in every map. */
  private prune(keep: (entry: { node: string; at: number }) => boolean): void {
    for (const [key, flush] of this.open) if (!keep(flush)) this.open.delete(key);
    filterLists(this.awaiting, keep);
    filterLists(this.expected, keep);
  }
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function filterLists<T>(map: Map<string, T[]>, keep: (value: T) => boolean): void {
  for (const [key, list] of map) {
    const kept = list.filter(keep);
    if (kept.length === 0) map.delete(key);
    else if (kept.length !== list.length) map.set(key, kept);
  }
}
