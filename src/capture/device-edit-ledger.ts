/**
 * Device edits announced by a client document count (cd_size) and not yet matched by their
 * master document write (md_size). Keyed by (user, source): one user's document of one source lives
 * on one Redis node, so marks need no node. Entries expire after `ttlMs`
 * so a mark whose write never came cannot silence a later plugin write. Memory is proportional
 * to device edits in flight.
 */
export class DeviceEditLedger {
  private readonly marks = new Map<string, { at: number }>();
  private sinceSweep = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.marks.size;
  }

  mark(user: string, source: string): void {
    const key = `${user}\u0000${source}`;
    const t = this.now();
    const entry = this.marks.get(key);
    if (entry) entry.at = t;
    else this.marks.set(key, { at: t });
    if (++this.sinceSweep >= 1024) this.sweep(t);
  }

  /**
   * True when a device edit of this (user, source) is pending. Uses every pending mark: RhoConnect
   * processes a CUD queue of several clients of one user with one master document write.
   */
  consume(user: string, source: string): boolean {
    if (this.marks.size === 0) return false;
    const key = `${user}\u0000${source}`;
    const entry = this.marks.get(key);
    if (!entry) return false;
    if (this.now() - entry.at > this.ttlMs) {
      this.marks.delete(key);
      return false;
    }
    this.marks.delete(key);
    return true;
  }

  private sweep(t: number): void {
    this.sinceSweep = 0;
    for (const [key, entry] of this.marks) if (t - entry.at > this.ttlMs) this.marks.delete(key);
  }
}
