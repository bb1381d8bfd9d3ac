// The automatic pinger: groups that leave the window wait here, one per user, and run through the
// Pinger as slots free up, in batches: every group waiting when a runner is free goes in one batch
// (never waiting for a fuller one), whose reads and records are shared while each ping keeps its
// own result, log line and record. A batch that cannot read users and clients (Redis away,
// failover) is grouped again a second later: a captured change is never dropped. Around each batch
// a recorder (catch-up's fingerprints) notes what the pings covered.
import type { Logger } from 'pino';
import type { Pinger } from '../ping/pinger.js';
import { MAX_CONCURRENT_PINGS } from '../ping/pinger.js';
import { firstNames } from '../util/log-text.js';
import type { ChangeGroup, GroupTrigger } from './coalescing-window.js';
import { PingBacklog } from './ping-backlog.js';

/** An automatic ping that could not read users or clients is grouped again after this long. */
const RETRY_MS = 1000;
/** Groups one batch takes at most (its reads stay a few commands of bounded size). */
export const MAX_BATCH = 500;
/**
 * Automatic pings in flight at most, over all batches: a burst waits in the backlog as plain data
 * (one entry per user) instead of as thousands of pings holding their reads, results and records.
 */
export const MAX_PINGS_IN_FLIGHT = 1000;

/** Notes, around each automatic ping, what it covers (recovery's fingerprints). */
export interface PingRecorder<Snapshot> {
  /** Just before the pings of a batch are sent. Never throws. */
  before(pings: ReadonlyArray<{ user: string; sources: readonly string[] }>): Promise<Snapshot>;
  /** Once it ran (or could not run). */
  after(snapshot: Snapshot, ran: boolean): Promise<void>;
  /** A pair whose ping failed goes back into the window. */
  requeue(user: string, source: string): void;
}

/** What metrics follow (Metrics has these). */
export interface AutoPingObserver {
  group(changes: number): void;
  pingStarted(firstAt: number): void;
  pingFinished(firstAt: number): void;
}

export interface AutoPingerOptions<Snapshot> {
  pinger: Pinger;
  /** Puts a pair back into the grouping window (a failed ping's retry). */
  regroup: (user: string, source: string, trigger: GroupTrigger) => void;
  recorder?: PingRecorder<Snapshot>;
  observer?: AutoPingObserver;
  onGroup?: (group: ChangeGroup) => void;
  logger: Logger;
}

export class AutoPinger<Snapshot = unknown> {
  /** Groups waiting for a slot (a user's later groups join its waiting one). */
  private readonly backlog = new PingBacklog();
  private readonly runners = new Set<Promise<void>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private starting?: NodeJS.Immediate;
  private pingsInFlight = 0;

  constructor(private readonly options: AutoPingerOptions<Snapshot>) {}

  /** Automatic pings grouped and waiting for a slot. */
  get waiting(): number {
    return this.backlog.size;
  }

  get busy(): boolean {
    return this.runners.size > 0 || this.starting !== undefined;
  }

  /** A group left the window. */
  add(group: ChangeGroup): void {
    this.options.onGroup?.(group);
    this.options.observer?.group(group.changes);
    this.backlog.add(group);
    // Runners start once the window's timers of this turn have all fired, so that the groups they
    // let go together make one batch.
    this.starting ??= setImmediate(() => {
      this.starting = undefined;
      this.startRunners();
    });
  }

  /** One runner per ping slot at most; each takes batches until nothing waits. */
  private startRunners(): void {
    while (this.backlog.size > 0 && this.runners.size < MAX_CONCURRENT_PINGS && this.pingsInFlight < MAX_PINGS_IN_FLIGHT) {
      const runner = this.run().finally(() => this.runners.delete(runner));
      this.runners.add(runner);
      // A runner takes everything waiting at once; more start only while some wait still.
      if (this.backlog.size === 0) break;
    }
  }

  /** Takes batches while groups wait and the in-flight bound allows; the runners still going take the rest. */
  private async run(): Promise<void> {
    for (;;) {
      const room = Math.min(MAX_BATCH, MAX_PINGS_IN_FLIGHT - this.pingsInFlight);
      const batch = room > 0 ? this.backlog.takeMany(room) : [];
      if (batch.length === 0) return;
      this.pingsInFlight += batch.length;
      try {
        await this.ping(batch);
      } finally {
        this.pingsInFlight -= batch.length;
      }
    }
  }

  private async ping(batch: ChangeGroup[]): Promise<void> {
    const { pinger, recorder, observer } = this.options;
    let snapshot: Snapshot | undefined;
    let ran = false;
    try {
      // Fingerprints are read when the pings are about to be sent, not when they were grouped.
      await pinger.slot(async () => {
        snapshot = await recorder?.before(batch);
        for (const group of batch) observer?.pingStarted(group.firstAt);
        return pinger.runMany(batch.map(autoPing));
      });
      for (const group of batch) observer?.pingFinished(group.firstAt);
      ran = true;
    } catch (err) {
      const users = batch.map((g) => g.user);
      this.options.logger.error(
        { users: firstNames(users, 20), pings: batch.length, err: (err as Error).message, retryMs: RETRY_MS },
        'automatic ping failed; retrying',
      );
      for (const group of batch) this.retryLater(group);
    } finally {
      if (snapshot !== undefined) await recorder!.after(snapshot, ran);
    }
  }

  private retryLater(group: ChangeGroup): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (this.stopped) return;
      for (const source of group.sources) {
        this.options.recorder?.requeue(group.user, source);
        this.options.regroup(group.user, source, group.trigger);
      }
    }, RETRY_MS);
    this.retryTimers.add(timer);
  }

  /** Waits until no automatic ping is running or waiting. */
  async drain(): Promise<void> {
    while (this.busy) {
      if (this.runners.size === 0) await new Promise((resolve) => setImmediate(resolve));
      else await Promise.allSettled([...this.runners]);
    }
  }

  /** No more retries; unsent ones stay unrecorded, so the next catch-up pings them. */
  stop(): void {
    this.stopped = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
  }
}

/** A group as the ping it becomes, with the captured changes its record lists. */
function autoPing(group: ChangeGroup) {
  const rule = group.trigger === 'catch-up' ? 'catch-up' : 'plugin-write';
  return {
    params: { user_id: [group.user], sources: group.sources },
    trigger: group.trigger,
    extra: { changes: group.sources.map((source) => ({ source, rule })), changeCount: group.changes },
  };
}
