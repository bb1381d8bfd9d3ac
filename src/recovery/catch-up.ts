// Catch-up after a gap: finds the (user, source) pairs whose master document changed while nobody
// listened to a node, and pings them.
//
// It walks the node's keys with SCAN in bounded batches (yielding to capture between them), compares
// each document's fingerprint with rhopush's record, and
// - pings a pair whose document changed (or appeared) since the record, when its source pings;
// - records, without a ping, pairs of sources that do not ping;
// - on a node's very first catch-up (no baseline yet), records every pair and pings nothing.
// Records whose document disappeared are found in the same walk (pinged like changes).
// Pairs with a ping already on its way are left to that ping.
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { SHARED_PARTITION } from '../store/keys.js';
import type { Change } from '../intake/capture.js';
import { pairOfKey, SEEN_PREFIX, type DocumentPair } from './document-pair.js';
import type { CommitItem, FingerprintKeeper } from './fingerprint-keeper.js';
import type { Baseline, FingerprintStore, PairReading } from './fingerprint-store.js';

/** Matches `source:application:<user>:<Source>:md_size` and `rhopush:seen:{...md_size}` alike. */
const WALK_PATTERN = '*md_size*';

export type CatchUpReason = 'start' | 'reconnect' | 'takeover' | 'canary' | 'topology';

export interface CatchUpResult {
  node: string;
  reason: CatchUpReason;
  /** Some pairs had no record and no baseline where they live: recorded without a ping. */
  baseline: boolean;
  scanned: number;
  changed: number;
  pinged: number;
  /** Pinged pairs another ping (of a dead or replaced instance) had marked pending for this exact state. */
  possibleDuplicates: number;
  recorded: number;
  durationMs: number;
}

export interface CatchUpOptions {
  keeper: FingerprintKeeper;
  storeFor: (node: string) => FingerprintStore | undefined;
  /** A connection to the node itself, for SCAN. */
  scanConnection: (node: string) => Redis | undefined;
  /** Whether a change of this pair deserves a ping (settings, read at call time). */
  pings: (pair: DocumentPair) => boolean;
  /** The ping path (grouping window), same as live capture. */
  onChange: (change: Change) => void;
  logger: Logger;
  /** Keys asked per SCAN call and pairs compared per batch. */
  scanCount?: number;
  /** Wait before running a failed catch-up again. */
  retryMs?: number;
}

/**
 * Emits `ping` (change, possibleDuplicate) for each pair it pings and `done` (result) after each
 * finished run.
 */
export class CatchUp extends EventEmitter {
  private readonly running = new Map<string, Promise<CatchUpResult | undefined>>();
  private readonly rerun = new Map<string, CatchUpReason>();
  private stopped = false;
  private readonly retries = new Set<NodeJS.Timeout>();
  private readonly retryMs: number;
  readonly totals = { runs: 0, aborted: 0, pinged: 0, possibleDuplicates: 0, lastDurationMs: 0 };

  constructor(private readonly options: CatchUpOptions) {
    super();
    this.retryMs = options.retryMs ?? 1000;
  }

  /** Whether a run for the node is in progress. */
  isRunning(node: string): boolean {
    return this.running.has(node);
  }

  /**
   * Catches up one node for its current subscription epoch. A request while a run is in progress
   * runs once more afterwards. Resolves with the result of the run that completed (undefined when
   * aborted because the node dropped again; its next subscription starts another).
   */
  run(node: string, reason: CatchUpReason): Promise<CatchUpResult | undefined> {
    const current = this.running.get(node);
    if (current) {
      this.rerun.set(node, reason);
      return current.then(() => this.running.get(node) ?? current);
    }
    const p = this.runOnce(node, reason)
      .catch((err: Error) => {
        this.options.logger.warn({ node, reason, err: err.message, retryMs: this.retryMs }, 'catch-up failed; retrying');
        this.totals.aborted += 1;
        // The node's gap stays open (nothing is recorded for it) until a run completes.
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          if (!this.stopped && this.options.scanConnection(node)) void this.run(node, reason);
        }, this.retryMs);
        this.retries.add(timer);
        return undefined;
      })
      .finally(() => {
        this.running.delete(node);
        const again = this.rerun.get(node);
        if (again && !this.stopped) {
          this.rerun.delete(node);
          void this.run(node, again);
        }
      });
    this.running.set(node, p);
    return p;
  }

  private async runOnce(node: string, reason: CatchUpReason): Promise<CatchUpResult | undefined> {
    const { keeper } = this.options;
    const store = this.options.storeFor(node);
    const scan = this.options.scanConnection(node);
    if (!store || !scan) return undefined;
    const epoch = keeper.epochOf(node);
    const started = performance.now();
    const baseline = await store.baseline(node);
    const result: CatchUpResult = {
      node,
      reason,
      baseline: false,
      scanned: 0,
      changed: 0,
      pinged: 0,
      possibleDuplicates: 0,
      recorded: 0,
      durationMs: 0,
    };
    const count = String(this.options.scanCount ?? 1000);
    const stillValid = () => !this.stopped && keeper.epochOf(node) === epoch;

    // One walk finds both RhoConnect's md_size keys and rhopush's records of them (whose names end
    // in `md_size}`); the next SCAN call is in flight while a batch is compared.
    let cursor = '0';
    // The SCAN issued ahead is awaited only after the batch is compared: if the comparison fails
    // first (Redis gone), its rejection must not go unobserved.
    const scanFrom = (from: string) => {
      const call = scan.scan(from, 'MATCH', WALK_PATTERN, 'COUNT', count);
      call.catch(() => undefined);
      return call;
    };
    let next: Promise<[string, string[]]> | undefined = scanFrom(cursor);
    while (next) {
      const [nextCursor, found] = await next;
      cursor = nextCursor;
      next = cursor === '0' ? undefined : scanFrom(cursor);
      const documents: DocumentPair[] = [];
      const records: DocumentPair[] = [];
      for (const key of found) {
        const p = pairOfKey(key);
        if (!p || p.partition === SHARED_PARTITION) continue;
        (key.startsWith(SEEN_PREFIX) ? records : documents).push(p);
      }
      const pairs = unique(documents);
      result.scanned += pairs.length;
      // Records whose document is gone: the document was deleted while nobody listened.
      const vanished = records.length > 0 ? await this.vanished(node, unique(records)) : [];
      if (pairs.length + vanished.length > 0) await this.compare(node, store, [...pairs, ...vanished], baseline, epoch, result);
      if (!stillValid()) {
        await next?.catch(() => undefined);
        this.totals.aborted += 1;
        this.options.logger.info({ node, reason }, 'catch-up interrupted by a reconnect; the next one starts over');
        return undefined;
      }
      // Let capture's events through between batches.
      await new Promise((r) => setImmediate(r));
    }

    await baseline.mark();
    if (!keeper.catchUpDone(node, epoch)) {
      this.totals.aborted += 1;
      return undefined;
    }
    result.durationMs = performance.now() - started;
    this.totals.runs += 1;
    this.totals.pinged += result.pinged;
    this.totals.possibleDuplicates += result.possibleDuplicates;
    this.totals.lastDurationMs = result.durationMs;
    this.options.logger.info(
      {
        node,
        reason,
        baseline: result.baseline,
        scanned: result.scanned,
        changed: result.changed,
        pinged: result.pinged,
        possibleDuplicates: result.possibleDuplicates,
        ms: Math.round(result.durationMs),
      },
      result.baseline ? 'catch-up recorded a baseline (existing data is not pinged)' : 'catch-up finished',
    );
    this.emit('done', result);
    return result;
  }

  /** Pairs among rhopush's records whose md_size no longer exists. */
  private async vanished(node: string, pairs: DocumentPair[]): Promise<DocumentPair[]> {
    const exist = await this.options.storeFor(node)!.documentsExist(pairs);
    return pairs.filter((_, i) => !exist[i]);
  }

  private async compare(
    node: string,
    store: FingerprintStore,
    pairs: DocumentPair[],
    baseline: Baseline,
    epoch: number,
    result: CatchUpResult,
  ): Promise<void> {
    const { keeper } = this.options;
    const free = pairs.filter((p) => !keeper.isBusy(p));
    if (free.length === 0) return;
    const gens = free.map((p) => keeper.genOf(p));
    const readings = await store.read(free);
    const toRecord: CommitItem[] = [];
    readings.forEach((r: PairReading, i) => {
      if (r.current === r.stored) return;
      if (r.stored === null && !baseline.covers(r.pair)) {
        result.baseline = true;
        toRecord.push({ pair: r.pair, fp: r.current, gen: gens[i]! });
        return;
      }
      result.changed += 1;
      if (!this.options.pings(r.pair)) {
        toRecord.push({ pair: r.pair, fp: r.current, gen: gens[i]! });
        return;
      }
      const possibleDuplicate = r.current !== null && r.pending !== null && r.pending.fp === r.current;
      result.pinged += 1;
      if (possibleDuplicate) result.possibleDuplicates += 1;
      const change: Change = { user: r.pair.partition, source: r.pair.source, node, at: Date.now(), catchUp: true };
      this.emit('ping', change, possibleDuplicate);
      this.options.onChange(change);
    });
    result.recorded += await keeper.commitProtected(node, toRecord, epoch, true);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.retries) clearTimeout(t);
  }
}

function unique(pairs: DocumentPair[]): DocumentPair[] {
  const seen = new Set<string>();
  return pairs.filter((p) => {
    const id = `${p.partition}\u0000${p.source}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
