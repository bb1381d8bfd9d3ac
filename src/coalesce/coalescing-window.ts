/** One user's grouped changes, ready to ping. */
export interface ChangeGroup {
  user: string;
  sources: string[];
  /** When the first change of the group was captured (ms since epoch). */
  firstAt: number;
  /** How many captured changes the group merges. */
  changes: number;
  /**
   * `catch-up` when every change in the group was found by catch-up after a gap; `auto` as soon as
   * one was captured live (that ping would have gone out anyway).
   */
  trigger: GroupTrigger;
}

export type GroupTrigger = 'auto' | 'catch-up';

/**
 * Groups leave the window on multiples of this many ms: those due within one tick go out as one
 * batch of pings (their reads and records shared) at the cost of at most this much more waiting.
 */
export const FLUSH_TICK_MS = 4;

interface Pending {
  sources: Set<string>;
  firstAt: number;
  lastAt: number;
  changes: number;
  trigger: GroupTrigger;
  timer: NodeJS.Timeout;
}

export interface CoalescingOptions {
  /** Quiet period: flush once a user has had no change for this long. */
  quietMs: number;
  /** Upper bound from the first change, however busy the user stays. */
  maxDelayMs: number;
}

/**
 * Groups changes per user: every source a user's data changed in within the window goes out in
 * one ping. Only users with pending changes use memory. Each pending user has one timer, which
 * is not re-armed per change: when it fires early it re-arms for the remaining time only.
 */
export class CoalescingWindow {
  private readonly pending = new Map<string, Pending>();
  private options: CoalescingOptions;

  constructor(
    options: CoalescingOptions,
    private readonly onFlush: (group: ChangeGroup) => void,
  ) {
    this.options = { ...options };
  }

  /** Takes effect for changes captured from now on (hot reload). */
  setOptions(options: CoalescingOptions): void {
    this.options = { ...options };
  }

  get size(): number {
    return this.pending.size;
  }

  add(user: string, source: string, at = Date.now(), trigger: GroupTrigger = 'auto'): void {
    const entry = this.pending.get(user);
    if (entry) {
      entry.sources.add(source);
      entry.lastAt = at;
      entry.changes += 1;
      if (trigger === 'auto') entry.trigger = 'auto';
      return;
    }
    const now = Date.now();
    const created: Pending = { sources: new Set([source]), firstAt: at, lastAt: at, changes: 1, trigger, timer: undefined as never };
    created.timer = setTimeout(() => this.onTimer(user), this.delayFor(created, now));
    this.pending.set(user, created);
  }

  /** Sends every pending group now (shutdown, replay). */
  flushAll(): number {
    const users = [...this.pending.keys()];
    for (const user of users) this.flush(user);
    return users.length;
  }

  /** Drops everything pending without sending (used only when tearing down tests). */
  clear(): void {
    for (const entry of this.pending.values()) clearTimeout(entry.timer);
    this.pending.clear();
  }

  private delayFor(entry: Pending, now: number): number {
    const quietEnd = entry.lastAt + this.options.quietMs;
    const hardEnd = entry.firstAt + this.options.maxDelayMs;
    // Due times fall on a shared tick, so users due within one tick leave together: one batch.
    const due = Math.ceil(Math.min(quietEnd, hardEnd) / FLUSH_TICK_MS) * FLUSH_TICK_MS;
    return Math.max(0, due - now);
  }

  private onTimer(user: string): void {
    const entry = this.pending.get(user);
    if (!entry) return;
    const wait = this.delayFor(entry, Date.now());
    if (wait > 0) {
      entry.timer = setTimeout(() => this.onTimer(user), wait);
      return;
    }
    this.flush(user);
  }

  private flush(user: string): void {
    const entry = this.pending.get(user);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.pending.delete(user);
    this.onFlush({ user, sources: [...entry.sources], firstAt: entry.firstAt, changes: entry.changes, trigger: entry.trigger });
  }
}
