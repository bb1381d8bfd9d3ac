// Keeps rhopush's per-pair records (`rhopush:seen:`) in step with what it acted on while capturing,
// so that catch-up after a gap compares against the latest state rhopush knows and pings only what
// changed while nobody listened.
//
// Two ways a record moves forward:
// - Pings. Just before a ping is sent, the pair's fingerprint is read and marked pending; once the
//   ping has run, that fingerprint is recorded. Everything it covers was written before the ping was
//   sent, so the device's sync fetches it: recording it can never hide a change.
// - Writes that need no ping (a device's own sync or edit, push_notify off). Their new state is
//   recorded only when it provably contains no unannounced plugin write: the fingerprint is read,
//   then RhoConnect's document lock is checked (a write in progress holds it), then a canary round
//   trip on the node proves every notification written before it has arrived; the record is written
//   only if no event for the pair arrived in between and the node's subscription never dropped.
//   Otherwise the pair is retried later.
// While a node has a gap (its subscriber dropped and catch-up has not finished), nothing is recorded
// for its pairs except by that catch-up itself.
import type { Logger } from 'pino';
import type { DocumentLocks } from './document-locks.js';
import { pairId, type DocumentPair } from './document-pair.js';

/** Canary round trips tried before records are deferred to a later refresh. */
const PROBE_ATTEMPTS = 3;
import type { FingerprintStore } from './fingerprint-store.js';

export interface FingerprintKeeperOptions {
  owner: string;
  storeFor: (node: string) => FingerprintStore | undefined;
  locks: DocumentLocks;
  /** Canary round trip on a node: resolves once every notification written before it has arrived. */
  probe: (node: string) => Promise<void>;
  logger: Logger;
  /** Wait before recording a pair after a write that needs no ping (lets bursts settle). */
  refreshDelayMs?: number;
  batchSize?: number;
}

interface PairState {
  pair: DocumentPair;
  node: string;
  /** Sequence number of the last keyspace event seen for the pair. */
  gen: number;
  inWindow: boolean;
  inFlight: number;
  /** Written since rhopush last recorded it. */
  dirty: boolean;
  /** Its last ping did not run: its record must not move until a ping does (catch-up re-pings it). */
  needsPing: boolean;
  notBefore: number;
  lastCommittedSeq: number;
}

interface NodeState {
  epoch: number;
  gapOpen: boolean;
}

/** What a ping took just before it was sent. */
export interface PingSnapshot {
  entries: Array<{ pair: DocumentPair; node: string; fp: string | null | undefined; seq: number }>;
}

export interface CommitItem {
  pair: DocumentPair;
  /** Fingerprint read after `gen` was taken; undefined: read it now. */
  fp?: string | null;
  gen: number;
}

export class FingerprintKeeper {
  private readonly pairs = new Map<string, PairState>();
  private readonly nodes = new Map<string, NodeState>();
  private seq = 0;
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private stopped = false;
  private readonly refreshDelayMs: number;
  private readonly batchSize: number;
  readonly stats = { recorded: 0, retriedLocked: 0, retriedChanged: 0, barrierFailures: 0, snapshotFailures: 0 };

  constructor(private readonly options: FingerprintKeeperOptions) {
    this.refreshDelayMs = options.refreshDelayMs ?? 200;
    this.batchSize = options.batchSize ?? 200;
  }

  get trackedPairs(): number {
    return this.pairs.size;
  }

  private node(label: string): NodeState {
    let n = this.nodes.get(label);
    if (!n) this.nodes.set(label, (n = { epoch: 0, gapOpen: true }));
    return n;
  }

  epochOf(node: string): number {
    return this.node(node).epoch;
  }

  hasGap(node: string): boolean {
    return this.node(node).gapOpen;
  }

  /** The node's subscriber dropped (or was never up): events may be lost from here on. */
  nodeDown(node: string): void {
    const n = this.node(node);
    n.epoch += 1;
    n.gapOpen = true;
  }

  /** A new subscription on the node; the gap stays open until catch-up for this epoch finishes. */
  nodeReady(node: string): void {
    const n = this.node(node);
    n.epoch += 1;
    n.gapOpen = true;
  }

  catchUpDone(node: string, epoch: number): boolean {
    const n = this.node(node);
    if (n.epoch !== epoch) return false;
    n.gapOpen = false;
    this.schedule();
    return true;
  }

  /** The node is no longer captured here (lease lost, node gone): whoever captures it catches up. */
  forgetNode(node: string): void {
    this.nodeDown(node);
    for (const [id, st] of this.pairs) if (st.node === node && st.inFlight === 0 && !st.inWindow) this.pairs.delete(id);
  }

  genOf(pair: DocumentPair): number {
    return this.pairs.get(pairId(pair))?.gen ?? 0;
  }

  isBusy(pair: DocumentPair): boolean {
    const st = this.pairs.get(pairId(pair));
    return st !== undefined && (st.inWindow || st.inFlight > 0);
  }

  private state(node: string, pair: DocumentPair): PairState {
    const id = pairId(pair);
    let st = this.pairs.get(id);
    if (!st)
      this.pairs.set(
        id,
        (st = { pair, node, gen: 0, inWindow: false, inFlight: 0, dirty: false, needsPing: false, notBefore: 0, lastCommittedSeq: 0 }),
      );
    st.node = node;
    return st;
  }

  /** Any md_size event of a user-partitioned document, whatever it was decided to mean. */
  observe(node: string, pair: DocumentPair): void {
    const st = this.state(node, pair);
    st.gen = ++this.seq;
    st.dirty = true;
    st.notBefore = Date.now() + this.refreshDelayMs;
    this.schedule();
  }

  /** A ping for the pair is on its way (grouping window). */
  queued(node: string, pair: DocumentPair): void {
    this.state(node, pair).inWindow = true;
  }

  /** A pair whose ping failed is grouped again (its node is already known). */
  requeue(pair: DocumentPair): void {
    const st = this.pairs.get(pairId(pair));
    if (st) st.inWindow = true;
  }

  /**
   * Reads and marks pending the fingerprints that pings for these users' sources cover: one read
   * per node for all of them. Never throws.
   */
  async beforePing(pings: ReadonlyArray<{ user: string; sources: readonly string[] }>): Promise<PingSnapshot> {
    const entries: PingSnapshot['entries'] = [];
    for (const { user, sources } of pings) {
      for (const source of sources) {
        const st = this.pairs.get(pairId({ partition: user, source }));
        if (!st) continue;
        st.inWindow = false;
        st.inFlight += 1;
        entries.push({ pair: st.pair, node: st.node, fp: undefined, seq: ++this.seq });
      }
    }
    await Promise.all(
      groupBy(entries, (e) => e.node).map(async ([node, list]) => {
        const store = this.options.storeFor(node);
        if (!store) return;
        try {
          const readings = await store.snapshot(
            list.map((e) => e.pair),
            this.options.owner,
          );
          readings.forEach((r, i) => (list[i]!.fp = r.current));
        } catch (err) {
          this.stats.snapshotFailures += 1;
          this.options.logger.warn(
            { node, err: (err as Error).message },
            'could not read fingerprints before a ping; catch-up will ping these pairs again after the next gap',
          );
        }
      }),
    );
    return { entries };
  }

  /** Records what a ping covered (when it ran), and releases the pairs. */
  async afterPing(snapshot: PingSnapshot, ran: boolean): Promise<void> {
    const toCommit: Array<{ node: string; pair: DocumentPair; fp: string | null; state: PairState; seq: number }> = [];
    for (const e of snapshot.entries) {
      const st = this.pairs.get(pairId(e.pair));
      if (!st) continue;
      st.inFlight = Math.max(0, st.inFlight - 1);
      if (!ran) st.needsPing = true;
      if (ran && e.fp !== undefined && e.seq > st.lastCommittedSeq)
        toCommit.push({ node: e.node, pair: e.pair, fp: e.fp, state: st, seq: e.seq });
    }
    await Promise.all(
      groupBy(toCommit, (c) => c.node).map(async ([node, list]) => {
        const store = this.options.storeFor(node);
        if (!store) return;
        try {
          await store.commit(
            list.map((c) => ({ pair: c.pair, fp: c.fp })),
            `${this.options.owner} ping`,
          );
          this.stats.recorded += list.length;
          for (const c of list) {
            c.state.lastCommittedSeq = Math.max(c.state.lastCommittedSeq, c.seq);
            c.state.needsPing = false;
            // Events after the snapshot (its seq) still need their own record.
            if (c.state.gen < c.seq) c.state.dirty = false;
          }
        } catch (err) {
          this.options.logger.warn(
            { node, err: (err as Error).message },
            'could not record pinged fingerprints; catch-up will ping these pairs again after the next gap',
          );
        }
      }),
    );
    for (const e of snapshot.entries) this.release(e.pair);
    this.schedule();
  }

  private release(pair: DocumentPair): void {
    const id = pairId(pair);
    const st = this.pairs.get(id);
    if (st && !st.dirty && !st.needsPing && !st.inWindow && st.inFlight === 0) this.pairs.delete(id);
  }

  /**
   * Records fingerprints for pairs that need no ping, with the checks in the header. `epoch` is the
   * node's epoch when the caller's reads began; `duringCatchUp` lets catch-up record while the
   * node's gap is still open (it is the one closing it). Pairs that cannot be recorded yet are
   * marked dirty and retried.
   */
  async commitProtected(node: string, items: CommitItem[], epoch: number, duringCatchUp = false): Promise<number> {
    if (items.length === 0) return 0;
    const store = this.options.storeFor(node);
    const retry = (list: CommitItem[]) => {
      for (const item of list) {
        const st = this.state(node, item.pair);
        st.dirty = true;
        st.notBefore = Date.now() + this.refreshDelayMs;
      }
      this.schedule();
    };
    if (!store) return 0;
    const unread = items.filter((i) => i.fp === undefined);
    if (unread.length > 0) {
      const readings = await store.read(unread.map((i) => i.pair));
      readings.forEach((r, i) => (unread[i]!.fp = r.current));
    }
    const locked = await this.options.locks.held(items.map((i) => i.pair));
    // A slow canary on a busy machine is not a dead link: ask again before deferring the records
    // (a first catch-up marks its baseline after this, and deferred records could be lost in a crash).
    let confirmed = false;
    for (let attempt = 1; attempt <= PROBE_ATTEMPTS && !confirmed; attempt++) {
      try {
        await this.options.probe(node);
        confirmed = true;
      } catch (err) {
        this.stats.barrierFailures += 1;
        this.options.logger.debug({ node, attempt, err: (err as Error).message }, 'canary did not confirm the node');
      }
    }
    if (!confirmed) {
      retry(items);
      return 0;
    }
    const n = this.node(node);
    if (n.epoch !== epoch || (n.gapOpen && !duringCatchUp)) {
      retry(items);
      return 0;
    }
    const ready: CommitItem[] = [];
    const later: CommitItem[] = [];
    items.forEach((item, i) => {
      const st = this.pairs.get(pairId(item.pair));
      const busy = st !== undefined && (st.inWindow || st.inFlight > 0 || st.needsPing);
      if (busy) return; // its ping records it
      if (locked[i]) {
        this.stats.retriedLocked += 1;
        later.push(item);
      } else if ((st?.gen ?? 0) !== item.gen) {
        this.stats.retriedChanged += 1;
        later.push(item);
      } else ready.push(item);
    });
    if (ready.length > 0) {
      await store.commit(
        ready.map((i) => ({ pair: i.pair, fp: i.fp ?? null })),
        `${this.options.owner} seen`,
      );
      this.stats.recorded += ready.length;
      for (const item of ready) {
        const st = this.pairs.get(pairId(item.pair));
        if (st && st.gen === item.gen) {
          st.dirty = false;
          this.release(item.pair);
        }
      }
    }
    if (later.length > 0) retry(later);
    return ready.length;
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, this.refreshDelayMs);
    this.timer.unref();
  }

  /** One round over dirty pairs that need no ping. Rounds never overlap. */
  refresh(): Promise<void> {
    this.refreshing ??= this.refreshRound().finally(() => {
      this.refreshing = undefined;
      if ([...this.pairs.values()].some((st) => st.dirty && !st.needsPing && !st.inWindow && st.inFlight === 0)) this.schedule();
    });
    return this.refreshing;
  }

  private async refreshRound(): Promise<void> {
    const now = Date.now();
    const byNode = new Map<string, CommitItem[]>();
    for (const st of this.pairs.values()) {
      if (!st.dirty || st.needsPing || st.inWindow || st.inFlight > 0 || st.notBefore > now) continue;
      if (this.node(st.node).gapOpen) continue;
      const list = byNode.get(st.node) ?? [];
      if (list.length >= this.batchSize) continue;
      list.push({ pair: st.pair, gen: st.gen });
      byNode.set(st.node, list);
    }
    await Promise.all(
      [...byNode].map(async ([node, items]) => {
        try {
          await this.commitProtected(node, items, this.epochOf(node));
        } catch (err) {
          this.options.logger.debug({ node, err: (err as Error).message }, 'recording fingerprints failed; retried later');
          for (const item of items) {
            const st = this.pairs.get(pairId(item.pair));
            if (st) st.notBefore = Date.now() + this.refreshDelayMs * 5;
          }
        }
      }),
    );
  }

  /** Records everything that can be recorded now (graceful stop), within `timeoutMs`. */
  async flush(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const pending = [...this.pairs.values()].filter(
        (st) => st.dirty && !st.needsPing && !st.inWindow && st.inFlight === 0 && !this.node(st.node).gapOpen,
      );
      if (pending.length === 0) return;
      for (const st of pending) st.notBefore = 0;
      await this.refresh();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

function groupBy<T>(list: T[], key: (t: T) => string): Array<[string, T[]]> {
  const map = new Map<string, T[]>();
  for (const item of list) {
    const k = key(item);
    const l = map.get(k);
    if (l) l.push(item);
    else map.set(k, [item]);
  }
  return [...map];
}
