import type { ChangeGroup } from './coalescing-window.js';

/**
 * Automatic pings waiting for a free slot, in order, at most one per user: when a user's next group
 * leaves the window while the previous one still waits, it joins it (one ping, every source). Under a
 * burst that outruns delivery this keeps grouping going and costs one small record per waiting user,
 * instead of one suspended ping per group.
 */
export class PingBacklog {
  private readonly byUser = new Map<string, ChangeGroup>();
  private order: Array<string | undefined> = [];
  private head = 0;

  get size(): number {
    return this.byUser.size;
  }

  /** Queues a group; false when it joined the user's waiting one. */
  add(group: ChangeGroup): boolean {
    const waiting = this.byUser.get(group.user);
    if (waiting) {
      for (const source of group.sources) if (!waiting.sources.includes(source)) waiting.sources.push(source);
      waiting.firstAt = Math.min(waiting.firstAt, group.firstAt);
      waiting.changes += group.changes;
      if (group.trigger === 'auto') waiting.trigger = 'auto';
      return false;
    }
    this.byUser.set(group.user, { ...group, sources: [...group.sources] });
    this.order.push(group.user);
    return true;
  }

  /** Up to `max` groups, longest-waiting first, removed from the backlog. */
  takeMany(max: number): ChangeGroup[] {
    const out: ChangeGroup[] = [];
    while (out.length < max) {
      const group = this.take();
      if (!group) break;
      out.push(group);
    }
    return out;
  }

  /** The group that has waited longest, removed from the backlog. */
  take(): ChangeGroup | undefined {
    while (this.head < this.order.length) {
      const user = this.order[this.head]!;
      this.order[this.head] = undefined;
      this.head += 1;
      const group = this.byUser.get(user);
      if (group) {
        this.byUser.delete(user);
        this.compact();
        return group;
      }
    }
    this.compact();
    return undefined;
  }

  private compact(): void {
    if (this.head === this.order.length) {
      this.order = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}
