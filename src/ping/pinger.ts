// A Pinger is what every entry point pings through: RhoConnect's store, the push adapters and
// PingJob, with a bound on pings running at once and one log line per ping. The daemon holds one;
// `ping()` from the library and `rhopush ping` build their own without a daemon.
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import { silentLogger } from '../logger.js';
import { createPushAdapters, type PushAdapters } from '../push/registry.js';
import { RhoconnectStore } from '../store/rhoconnect-store.js';
import type { StoreClient } from '../store/store-connection.js';
import { StoreLink } from '../store/store-link.js';
import { Limiter } from '../util/limiter.js';
import { clip, firstNames } from '../util/log-text.js';
import { PingJob, type PingResult, type PingTrigger } from './ping-job.js';
import { asNormalized, type NormalizedPing, type PingParams } from './ping-params.js';
import { PingHistory } from '../history/ping-history.js';
import { newPingId, pingHead, pingOutcome, type CapturedChange, type PingRecord } from '../history/ping-record.js';

/** Pings run concurrently up to this bound; the rest wait their turn (nothing is dropped). */
export const MAX_CONCURRENT_PINGS = 64;
/** A ping's log line lists this many users (and sources) at most, then counts them. */
const MAX_LOGGED_NAMES = 20;

export interface PingerOptions {
  store: RhoconnectStore;
  adapters: PushAdapters;
  logger: Logger;
  /** Called once per finished ping, after its log line (metrics, observers). */
  onPing?: (result: PingResult, durationMs: number) => void;
  /** A connection this Pinger opened for itself, closed with it. */
  link?: StoreLink;
  /** Where each ping's record is kept (absent: no history). */
  history?: PingHistory;
}

/** What a caller knows about a ping before it runs. */
export interface PingExtra {
  /** The id given when it was queued (its record exists already). */
  id?: string;
  /** It was queued: its record says running at once, keeping when it was queued. */
  queuedAt?: number;
  /** Automatic pings: the captured changes it covers. */
  changes?: CapturedChange[];
  changeCount?: number;
}

export class Pinger {
  readonly job: PingJob;
  private readonly limiter = new Limiter(MAX_CONCURRENT_PINGS);
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly options: PingerOptions) {
    const { store, adapters, logger, onPing } = options;
    this.job = new PingJob(store, adapters, logger, {
      onPing: (result, ms) => {
        logPing(logger, result, ms);
        onPing?.(result, ms);
      },
    });
  }

  /** Runs a ping now, within the bound (REST, CLI, library, queue jobs). */
  ping(params: PingParams | NormalizedPing, trigger: PingTrigger, extra?: PingExtra): Promise<PingResult> {
    return this.slot(() => this.run(params, trigger, extra));
  }

  /** Runs a ping, recording it, without waiting for a slot (callers inside `slot`). */
  async run(params: PingParams | NormalizedPing, trigger: PingTrigger, extra: PingExtra = {}): Promise<PingResult> {
    const [result] = await this.runMany([{ params, trigger, extra }]);
    return result!;
  }

  /**
   * Runs several pings together (a batch of automatic pings), each recorded and logged as its own:
   * their reads are shared (see PingJob.runMany). Rejects, for all of them, only when users and
   * clients cannot be read.
   */
  async runMany(
    items: ReadonlyArray<{ params: PingParams | NormalizedPing; trigger: PingTrigger; extra?: PingExtra }>,
  ): Promise<PingResult[]> {
    const history = this.options.history;
    const startedAt = Date.now();
    const requests = items.map(({ params, trigger, extra = {} }) => {
      const ping = asNormalized(params);
      const head: PingRecord = { ...pingHead(extra.id ?? newPingId(), 'running', trigger, ping, extra.changes), startedAt };
      if (extra.queuedAt !== undefined) head.queuedAt = extra.queuedAt;
      if (extra.changeCount !== undefined) head.changeCount = extra.changeCount;
      history?.started(head, extra.queuedAt !== undefined);
      return { ping, trigger, id: head.id, head };
    });
    try {
      const results = await this.job.runMany(requests);
      const finishedAt = Date.now();
      results.forEach((r, i) =>
        history?.finished({ ...requests[i]!.head, ...pingOutcome(r.pushes, r.errors, r.skippedUsers), finishedAt }),
      );
      return results;
    } catch (err) {
      const errors = [clip((err as Error).message, 500)];
      for (const { head } of requests) history?.finished({ ...head, status: 'failed', finishedAt: Date.now(), errors });
      throw err;
    }
  }

  /** Runs `work`, which pings through `run`, within the same bound (automatic pings). */
  slot<T>(work: () => Promise<T>): Promise<T> {
    const p = this.limiter.run(work);
    this.inFlight.add(p);
    const forget = () => this.inFlight.delete(p);
    p.then(forget, forget);
    return p;
  }

  get busy(): boolean {
    return this.inFlight.size > 0;
  }

  /** Waits until every ping started so far has finished. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Closes the push adapters (their connections), and the store connection if it is its own. */
  async close(): Promise<void> {
    await this.options.history?.close();
    await this.options.adapters.close();
    await this.options.link?.close();
  }
}

export interface OpenPingerOptions {
  logger?: Logger;
  /** An open connection to RhoConnect's Redis (instance 0 of `:redis:`); used and left open. */
  redis?: StoreClient;
  /** Delivery override: one adapter per platform. */
  adapters?: PushAdapters;
  /** Where `:delivery: log` prints device pushes (default: `logger`). */
  deliveryLogger?: Logger;
}

/**
 * A Pinger on its own connection (the library's `ping()`, `rhopush ping`): connected and checked
 * like the daemon's; `close()` closes the adapters and the connection it opened.
 */
export async function openPinger(settings: Settings, options: OpenPingerOptions = {}): Promise<Pinger> {
  const logger = options.logger ?? silentLogger;
  const link = new StoreLink(settings, logger, options.redis);
  try {
    await link.checkDatabases();
    await link.connect();
  } catch (err) {
    await link.close();
    throw err;
  }
  const adapters = options.adapters ?? createPushAdapters(() => settings, logger, link.redis, options.deliveryLogger);
  const history = new PingHistory(link.redis, () => settings.rhopush, logger);
  return new Pinger({ store: new RhoconnectStore(link.redis), adapters, logger, link, history });
}

/** One line per ping: who, which sources, why, and each platform's outcomes. */
function logPing(logger: Logger, result: PingResult, durationMs: number): void {
  const platforms: Record<string, Record<string, number>> = {};
  for (const push of result.pushes) {
    const byOutcome = (platforms[push.platform] ??= {});
    byOutcome[push.outcome] = (byOutcome[push.outcome] ?? 0) + 1;
  }
  // A REST call may name thousands of users (and sources): the line lists the first ones and counts.
  const named = (key: 'users' | 'sources', list: string[]) =>
    list.length > MAX_LOGGED_NAMES
      ? { [key]: firstNames(list, MAX_LOGGED_NAMES), [`${key.slice(0, -1)}Count`]: list.length }
      : { [key]: list.map((n) => clip(n)) };
  logger.info(
    {
      ping: {
        ...named('users', result.users),
        ...named('sources', result.sources),
        trigger: result.trigger,
        platforms,
        errors: result.errors.length,
      },
      ms: Math.round(durationMs * 10) / 10,
    },
    'ping',
  );
}
