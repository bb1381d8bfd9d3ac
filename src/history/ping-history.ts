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
import { RHOPUSH_PREFIX } from '../store/keys.js';
import type { StoreClient } from '../store/store-connection.js';
import type { DecisionEntry, PingRecord } from './ping-record.js';
import { within } from '../util/within.js';

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

/** ZADD, trim to the newest ARGV[3], refresh the lifetime: one command per user and ping. */
const INDEX_SCRIPT = `redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`;
/** LPUSH every entry, trim to ARGV[1], refresh the lifetime to ARGV[2]. */
const DECISIONS_SCRIPT = `redis.call('LPUSH', KEYS[1], unpack(ARGV, 3))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[1]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

interface HistoryCommands {
  rhopushIndex(key: string, score: number, member: string, keep: number, ttlMs: number): Promise<unknown>;
  rhopushDecisions(key: string, keep: number, ttlMs: number, ...entries: string[]): Promise<unknown>;
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
  /** Writes not answered yet (close waits for them, so a one-off ping's record is not cut off). */
  private readonly pending = new Set<Promise<unknown>>();
  private lastFailureLog = 0;

  constructor(
    redis: StoreClient,
    /** `:rhopush:`'s history settings, read at every write (a reload applies at once). */
    private readonly limits: () => Pick<RhopushSettings, 'historyTtlHours' | 'historyPerUser'>,
    private readonly logger: Logger,
  ) {
    redis.defineCommand('rhopushIndex', { numberOfKeys: 1, lua: INDEX_SCRIPT });
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
    this.write({ ...record, status: 'queued', queuedAt: record.queuedAt ?? Date.now() }, false);
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
    const ttl = this.ttlMs;
    const note = (err: Error) => {
      this.failure(err);
      if (this.lostWrites.size < 10_000)
        this.lostWrites.set(record.id, `an earlier state of this record could not be written (${err.message})`);
    };
    this.track(
      this.redis.set(historyKeys.ping(record.id), JSON.stringify(body), 'PX', ttl).then(() => {
        if (record.status === 'succeeded' || record.status === 'failed') this.lostWrites.delete(record.id);
      }, note),
    );
    if (!index || this.indexed.has(record.id)) return;
    if (record.status !== 'succeeded' && record.status !== 'failed') this.indexed.add(record.id);
    const at = record.queuedAt ?? record.startedAt ?? Date.now();
    const keep = this.limits().historyPerUser;
    for (const user of record.users) this.track(this.redis.rhopushIndex(historyKeys.userPings(user), at, record.id, keep, ttl).catch(note));
    // The latest pings overall: trimmed now and then, not at every ping.
    const trim = ++this.recentWrites % 100 === 0 ? RECENT_KEPT : Number.MAX_SAFE_INTEGER;
    this.track(this.redis.rhopushIndex(historyKeys.recent, at, record.id, trim, ttl).catch(note));
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
