// The automatic pinger: groups that leave the window wait here, one per user, and run through the
// Pinger as slots free up. A ping that cannot read users and clients (Redis away, failover) is
// grouped again a second later: a captured change is never dropped. Around each ping a recorder
// (catch-up's fingerprints) notes what the ping covered.
import type { Logger } from 'pino';
import type { Pinger } from '../ping/pinger.js';
import { MAX_CONCURRENT_PINGS } from '../ping/pinger.js';
import { clip, firstNames } from '../util/log-text.js';
import type { ChangeGroup, GroupTrigger } from './coalescing-window.js';
import { PingBacklog } from './ping-backlog.js';

/** An automatic ping that could not read users or clients is grouped again after this long. */
const RETRY_MS = 1000;

/** Notes, around each automatic ping, what it covers (recovery's fingerprints). */
export interface PingRecorder<Snapshot> {
  /** Just before the ping is sent. Never throws. */
  before(user: string, sources: string[]): Promise<Snapshot>;
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

  constructor(private readonly options: AutoPingerOptions<Snapshot>) {}

  /** Automatic pings grouped and waiting for a slot. */
  get waiting(): number {
    return this.backlog.size;
  }

  get busy(): boolean {
    return this.runners.size > 0;
  }

  /** A group left the window. */
  add(group: ChangeGroup): void {
    this.options.onGroup?.(group);
    this.options.observer?.group(group.changes);
    this.backlog.add(group);
    // One runner per ping slot at most; each takes the longest-waiting group until none is left.
    if (this.runners.size < MAX_CONCURRENT_PINGS) {
      const runner = this.run().finally(() => this.runners.delete(runner));
      this.runners.add(runner);
    }
  }

  private async run(): Promise<void> {
    for (let group = this.backlog.take(); group; group = this.backlog.take()) await this.ping(group);
  }

  private async ping(group: ChangeGroup): Promise<void> {
    const { pinger, recorder, observer } = this.options;
    let snapshot: Snapshot | undefined;
    let ran = false;
    try {
      // Fingerprints are read when the ping is about to be sent, not when it was grouped.
      await pinger.slot(async () => {
        snapshot = await recorder?.before(group.user, group.sources);
        observer?.pingStarted(group.firstAt);
        const rule = group.trigger === 'catch-up' ? 'catch-up' : 'plugin-write';
        const changes = group.sources.map((source) => ({ source, rule }));
        return pinger.run({ user_id: [group.user], sources: group.sources }, group.trigger, { changes, changeCount: group.changes });
      });
      observer?.pingFinished(group.firstAt);
      ran = true;
    } catch (err) {
      this.options.logger.error(
        { user: clip(group.user), sources: firstNames(group.sources, 20), err: (err as Error).message, retryMs: RETRY_MS },
        'automatic ping failed; retrying',
      );
      this.retryLater(group);
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
    while (this.runners.size > 0) await Promise.allSettled([...this.runners]);
  }

  /** No more retries; unsent ones stay unrecorded, so the next catch-up pings them. */
  stop(): void {
    this.stopped = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
  }
}
