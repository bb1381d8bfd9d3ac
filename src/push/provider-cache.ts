// Long-lived senders (APNs providers, FCM apps) keyed by the settings they were built from. A
// settings reload can make some of them unreachable (a new key file, another endpoint); those are
// closed once idle, a grace period after the reload, so reloads never leak connections.
export interface Closable {
  close(): Promise<void>;
}

/** An entry taken with `take`: in use (never swept) until given to `release`. */
export interface ProviderLease<T> {
  readonly value: T;
}

interface Entry<T> extends ProviderLease<T> {
  value: T;
  /** The settings object that last asked for this entry. */
  generation: object;
  busy: number;
}

const SWEEP_GRACE_MS = 30_000;

export class ProviderCache<T extends Closable> {
  private readonly entries = new Map<string, Entry<T>>();
  private generation?: object;
  private sweepTimer?: NodeJS.Timeout;

  constructor(private readonly graceMs = SWEEP_GRACE_MS) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Runs `use` with the entry for `key`, creating it if needed (a throwing `create` leaves nothing
   * cached). `generation` is the current settings object: when it changes, entries no longer asked
   * for are closed once idle.
   */
  async use<R>(key: string, generation: object, create: () => T, use: (value: T) => Promise<R>): Promise<R> {
    const entry = this.take(key, generation, create);
    try {
      return await use(entry.value);
    } finally {
      this.release(entry);
    }
  }

  /**
   * `use` without a promise of its own, for per-push paths: the entry for `key` (created if needed),
   * kept from the sweep until `release`d.
   */
  take(key: string, generation: object, create: () => T): ProviderLease<T> {
    if (generation !== this.generation) {
      const first = this.generation === undefined;
      this.generation = generation;
      if (!first) this.scheduleSweep();
    }
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { value: create(), generation, busy: 0 };
      this.entries.set(key, entry);
    }
    entry.generation = generation;
    entry.busy += 1;
    return entry;
  }

  release(lease: ProviderLease<T>): void {
    (lease as Entry<T>).busy -= 1;
  }

  async close(): Promise<void> {
    clearTimeout(this.sweepTimer);
    const values = [...this.entries.values()].map((e) => e.value);
    this.entries.clear();
    await Promise.all(values.map((v) => v.close()));
  }

  private scheduleSweep(): void {
    clearTimeout(this.sweepTimer);
    this.sweepTimer = setTimeout(() => this.sweep(), this.graceMs);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    let pending = false;
    for (const [key, entry] of this.entries) {
      if (entry.generation === this.generation) continue;
      if (entry.busy > 0) {
        pending = true;
        continue;
      }
      this.entries.delete(key);
      void entry.value.close().catch(() => undefined);
    }
    if (pending) this.scheduleSweep();
  }
}
