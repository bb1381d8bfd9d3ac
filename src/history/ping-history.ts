// Ping history in rhopush's own keys, beside RhoConnect's data (hash-tagged per user, so it works on
// Redis Cluster):
//
//   rhopush:ping:{<id>}        one ping's record (JSON), expiring after :history_ttl_hours:
//   rhopush:pings:{<user>}     the user's pings, newest last (sorted set by time), the newest
//                              :history_per_user: kept
//   rhopush:decisions:{<user>} the user's captured changes that did not ping (list, newest first)
//   rhopush:pings:recent       every ping, the newest RECENT_KEPT
//
// Recording is best effort and never holds a ping up: writes are not awaited by the ping, go out
// with the ping's other commands (auto-pipelining), and a failure is logged and noted in the record
// when a later write of it succeeds. Decisions are buffered and written once a second per user.
import type { Logger } from 'pino';
import type { RhopushSettings } from '../config/settings.js';
import { RHOPUSH_PREFIX, SHARED_PARTITION } from '../store/keys.js';
import { isCluster, type StoreClient } from '../store/store-connection.js';
import type { DecisionEntry, PingRecord } from './ping-record.js';
import { within } from '../util/within.js';

/** Captured writes of a user's document that did not ping and that `rhopush why` explains. */
const KEPT_DECISIONS: ReadonlySet<string> = new Set(['device-edit', 'md-size-set', 'push-notify-off', 'app-partition-settings']);

export const historyKeys = {
  ping: (id: string) => `${RHOPUSH_PREFIX}ping:{${id}}`,
  userPings: (user: string) => `${RHOPUSH_PREFIX}pings:{${user}}`,
  userDecisions: (user: string) => `${RHOPUSH_PREFIX}decisions:{${user}}`,
  recent: `${RHOPUSH_PREFIX}pings:recent`,
};

/** Pings kept in the list of the latest (the console's). */
const RECENT_KEPT = 1000;
/** A ping's running state is written only once it has run this long (most finish sooner). */
const RUNNING_AFTER_MS = 250;
/** A record still running after this long lost its final write (or its daemon). */
const STALE_RUNNING_MS = 10 * 60_000;
const DECISION_FLUSH_MS = 1000;

/** Writes one command carries at most (records, or index entries). */
const WRITES_PER_CALL = 500;
/** Records per turn written as plain SETs rather than through the records script. */
const SETS_PER_TURN = 16;
/** SET each key to its value (ARGV[i + 1]) expiring after ARGV[1] ms. */
const RECORDS_SCRIPT = `for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1]) end
return #KEYS`;
/** For each index key: ZADD score member, trim to the newest `keep`, refresh the lifetime ARGV[1]. */
const INDEXES_SCRIPT = `for i, key in ipairs(KEYS) do
  local b = 1 + (i - 1) * 3
  redis.call('ZADD', key, ARGV[b + 1], ARGV[b + 2])
  redis.call('ZREMRANGEBYRANK', key, 0, -tonumber(ARGV[b + 3]) - 1)
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS`;
/** LPUSH every entry, trim to ARGV[1], refresh the lifetime to ARGV[2]. */
const DECISIONS_SCRIPT = `redis.call('LPUSH', KEYS[1], unpack(ARGV, 3))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[1]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

interface HistoryCommands {
  rhopushRecords(numKeys: number, ...keysThenArgs: Array<string | number>): Promise<unknown>;
  rhopushIndexes(numKeys: number, ...keysThenArgs: Array<string | number>): Promise<unknown>;
  rhopushDecisions(key: string, keep: number, ttlMs: number, ...entries: string[]): Promise<unknown>;
}

/** Writes waiting for the end of this turn of the event loop: a batch of pings writes them together. */
interface PendingWrites {
  records: Array<{ id: string; json: string; final: boolean }>;
  indexes: Array<{ id: string; key: string; score: number; keep: number }>;
}

/** What the API, `rhopush why` and the console read (a PingHistory, whoever wrote the records). */
export interface HistoryReader {
  readonly enabled: boolean;
  get(id: string): Promise<PingRecord | undefined>;
  forUser(user: string, limit?: number, since?: number): Promise<PingRecord[]>;
  recent(limit?: number, since?: number): Promise<PingRecord[]>;
  decisionsOf(user: string, limit?: number, since?: number): Promise<DecisionEntry[]>;
}

export class PingHistory implements HistoryReader {
  private readonly redis: StoreClient & HistoryCommands;
  private readonly running = new Map<string, NodeJS.Timeout>();
  /** Pings in flight whose record is already in the indexes. */
  private readonly indexed = new Set<string>();
  /** Ids whose record lost a write (bounded): their next write says it is incomplete. */
  private readonly lostWrites = new Map<string, string>();
  private decisions = new Map<string, DecisionEntry[]>();
  private decisionTimer?: NodeJS.Timeout;
  private recentWrites = 0;
  private writes?: PendingWrites;
  /** Writes not answered yet (close waits for them, so a one-off ping's record is not cut off). */
  private readonly pending = new Set<Promise<unknown>>();
  private lastFailureLog = 0;

  constructor(
    redis: StoreClient,
    /** `:rhopush:`'s history settings, read at every write (a reload applies at once). */
    private readonly limits: () => Pick<RhopushSettings, 'historyTtlHours' | 'historyPerUser'>,
    private readonly logger: Logger,
  ) {
    redis.defineCommand('rhopushRecords', { lua: RECORDS_SCRIPT });
    redis.defineCommand('rhopushIndexes', { lua: INDEXES_SCRIPT });
    redis.defineCommand('rhopushDecisions', { numberOfKeys: 1, lua: DECISIONS_SCRIPT });
    this.redis = redis as StoreClient & HistoryCommands;
  }

  /** Off with `:history_ttl_hours: 0`. */
  get enabled(): boolean {
    return this.limits().historyTtlHours > 0;
  }

  private get ttlMs(): number {
    return this.limits().historyTtlHours * 3_600_000;
  }

  /**
   * A ping was queued (Resque): its record exists from now on, status queued. It joins the indexes
   * once a worker runs it: queuing stays one write (REST `async` answers at the speed of Redis).
   */
  queued(record: PingRecord): void {
    if (!this.enabled) return;
    // Written as given when it already says so (enqueue builds it that way): no copy per REST ping.
    this.write(
      record.status === 'queued' && record.queuedAt !== undefined
        ? record
        : { ...record, status: 'queued', queuedAt: record.queuedAt ?? Date.now() },
      false,
    );
  }

  /**
   * A ping started. Its running state is written only if it is still running a moment later, so a
   * ping that finishes at once costs one write; `immediately` (a queued job) writes it now.
   */
  started(record: PingRecord, immediately = false): void {
    if (!this.enabled) return;
    const write = () => {
      this.running.delete(record.id);
      this.write({ ...record, status: 'running' });
    };
    if (immediately) return write();
    const timer = setTimeout(write, RUNNING_AFTER_MS);
    timer.unref();
    this.running.set(record.id, timer);
  }

  /** A ping finished (or could not run): its final record. */
  finished(record: PingRecord): void {
    clearTimeout(this.running.get(record.id));
    this.running.delete(record.id);
    if (this.enabled) this.write(record);
    this.indexed.delete(record.id);
  }

  /** Keeps a capture decision that did not ping a user's document, for `rhopush why`; others are not kept. */
  noteSkipped(decision: { ping: boolean; rule: string; user?: string; source?: string }, at: number): void {
    if (decision.ping || !KEPT_DECISIONS.has(decision.rule) || decision.user === undefined || decision.user === SHARED_PARTITION) return;
    this.noteDecision(decision.user, { at, source: decision.source!, rule: decision.rule });
  }

  /** A captured write of the user's document that did not ping (written within a second). */
  noteDecision(user: string, entry: DecisionEntry): void {
    if (!this.enabled) return;
    const list = this.decisions.get(user);
    if (list) list.push(entry);
    else this.decisions.set(user, [entry]);
    this.decisionTimer ??= setTimeout(() => this.flushDecisions(), DECISION_FLUSH_MS);
    this.decisionTimer.unref?.();
  }

  /** Writes the buffered decisions now. */
  flushDecisions(): void {
    clearTimeout(this.decisionTimer);
    this.decisionTimer = undefined;
    const batch = this.decisions;
    this.decisions = new Map();
    const { historyPerUser } = this.limits();
    for (const [user, entries] of batch) {
      const json = entries.slice(-historyPerUser).map((e) => JSON.stringify(e));
      this.track(
        this.redis
          .rhopushDecisions(historyKeys.userDecisions(user), historyPerUser, this.ttlMs, ...json)
          .catch((err: Error) => this.failure(err)),
      );
    }
  }

  /** Writes the record, and indexes it (per user, and in the latest) the first time it is asked to. */
  private write(record: PingRecord, index = true): void {
    const lost = this.lostWrites.get(record.id);
    const body = lost ? { ...record, incomplete: lost } : record;
    const batch = this.nextWrites();
    batch.records.push({ id: record.id, json: JSON.stringify(body), final: record.status === 'succeeded' || record.status === 'failed' });
    if (!index || this.indexed.has(record.id)) return;
    if (record.status !== 'succeeded' && record.status !== 'failed') this.indexed.add(record.id);
    const score = record.queuedAt ?? record.startedAt ?? Date.now();
    const keep = this.limits().historyPerUser;
    for (const user of record.users) batch.indexes.push({ id: record.id, key: historyKeys.userPings(user), score, keep });
    // The latest pings overall: trimmed now and then, not at every ping.
    const trim = ++this.recentWrites % 100 === 0 ? RECENT_KEPT : Number.MAX_SAFE_INTEGER;
    batch.indexes.push({ id: record.id, key: historyKeys.recent, score, keep: trim });
  }

  private nextWrites(): PendingWrites {
    if (!this.writes) {
      this.writes = { records: [], indexes: [] };
      setImmediate(() => this.flushWrites());
    }
    return this.writes;
  }

  /** Sends the writes of this turn: a few commands for all of them (per key on a cluster). */
  private flushWrites(): void {
    const batch = this.writes;
    this.writes = undefined;
    if (!batch) return;
    const ttl = this.ttlMs;
    const lose = (ids: readonly string[]) => (err: Error) => {
      this.failure(err);
      for (const id of ids)
        if (this.lostWrites.size < 10_000) this.lostWrites.set(id, `an earlier state of this record could not be written (${err.message})`);
    };
    const kept = (records: PendingWrites['records']) => () => {
      for (const r of records) if (r.final) this.lostWrites.delete(r.id);
    };
    if (isCluster(this.redis)) {
      for (const r of batch.records) this.track(this.redis.set(historyKeys.ping(r.id), r.json, 'PX', ttl).then(kept([r]), lose([r.id])));
      for (const x of batch.indexes) {
        const write = this.redis
          .multi()
          .zadd(x.key, x.score, x.id)
          .zremrangebyrank(x.key, 0, -x.keep - 1)
          .pexpire(x.key, ttl)
          .exec();
        this.track(write.catch(lose([x.id])));
      }
      return;
    }
    // A few records are plain SETs: in the same write as the turn's other commands, and cheaper for
    // Redis than starting a script; more of them go in one script call per WRITES_PER_CALL.
    if (batch.records.length <= SETS_PER_TURN) {
      for (const r of batch.records) this.track(this.redis.set(historyKeys.ping(r.id), r.json, 'PX', ttl).then(kept([r]), lose([r.id])));
    } else
      for (let i = 0; i < batch.records.length; i += WRITES_PER_CALL) {
        const chunk = batch.records.slice(i, i + WRITES_PER_CALL);
        const keys = chunk.map((r) => historyKeys.ping(r.id));
        this.track(
          this.redis
            .rhopushRecords(chunk.length, ...keys, ttl, ...chunk.map((r) => r.json))
            .then(kept(chunk), lose(chunk.map((r) => r.id))),
        );
      }
    for (let i = 0; i < batch.indexes.length; i += WRITES_PER_CALL) {
      const chunk = batch.indexes.slice(i, i + WRITES_PER_CALL);
      const args = chunk.flatMap((x) => [x.score, x.id, x.keep]);
      this.track(this.redis.rhopushIndexes(chunk.length, ...chunk.map((x) => x.key), ttl, ...args).catch(lose(chunk.map((x) => x.id))));
    }
  }

  private track(write: Promise<unknown>): void {
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }

  private failure(err: Error): void {
    if (Date.now() - this.lastFailureLog < 60_000) return;
    this.lastFailureLog = Date.now();
    this.logger.warn({ err: err.message }, 'ping history: a record could not be written (the pings themselves went on)');
  }

  // --- reading ---------------------------------------------------------------------------------

  async get(id: string): Promise<PingRecord | undefined> {
    const text = await this.redis.get(historyKeys.ping(id));
    return text ? settled(JSON.parse(text) as PingRecord) : undefined;
  }

  /** The user's pings, newest first; with `since` (ms), only those queued or started since then. */
  async forUser(user: string, limit = 20, since?: number): Promise<PingRecord[]> {
    return this.records(await this.newest(historyKeys.userPings(user), limit, since));
  }

  /** The latest pings of every user, newest first. */
  async recent(limit = 20, since?: number): Promise<PingRecord[]> {
    return this.records(await this.newest(historyKeys.recent, limit, since));
  }

  /** The user's captured writes that did not ping, newest first (`since`: only those made since then). */
  async decisionsOf(user: string, limit = 100, since?: number): Promise<DecisionEntry[]> {
    const list = await this.redis.lrange(historyKeys.userDecisions(user), 0, Math.max(0, limit - 1));
    const entries = list.map((e) => JSON.parse(e) as DecisionEntry);
    return since === undefined ? entries : entries.filter((e) => e.at >= since);
  }

  private newest(key: string, limit: number, since?: number): Promise<string[]> {
    const count = Math.max(1, limit);
    if (since === undefined) return this.redis.zrevrange(key, 0, count - 1);
    return this.redis.zrevrangebyscore(key, '+inf', since, 'LIMIT', 0, count);
  }

  private async records(ids: string[]): Promise<PingRecord[]> {
    // Each id lives in its own slot: one GET each (pipelined on one connection).
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found.filter((r): r is PingRecord => r !== undefined);
  }

  /** Writes what is buffered, no more timers, and waits (up to `timeoutMs`) for the writes in flight. */
  async close(timeoutMs = 2000): Promise<void> {
    for (const timer of this.running.values()) clearTimeout(timer);
    this.running.clear();
    this.flushDecisions();
    this.flushWrites();
    await within(Promise.all([...this.pending]), timeoutMs);
  }
}

/** A record whose daemon stopped (or lost its final write) while it ran says so. */
function settled(record: PingRecord): PingRecord {
  if (record.status === 'running' && record.startedAt !== undefined && Date.now() - record.startedAt > STALE_RUNNING_MS) {
    return {
      ...record,
      incomplete:
        record.incomplete ?? 'no final state was recorded: the ping may have finished while Redis was unreachable, or its rhopush stopped',
    };
  }
  return record;
}
