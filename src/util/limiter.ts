/** Runs at most `concurrency` tasks at once; the rest wait in order. */
export class Limiter {
  private active = 0;
  // FIFO with a moving head: Array#shift is linear, and a burst can queue tens of thousands of
  // tasks (one automatic ping per user), which made dequeuing quadratic.
  private queue: Array<(() => void) | undefined> = [];
  private head = 0;

  constructor(private concurrency: number) {}

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length - this.head;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.active += 1;
    try {
      return await task();
    } finally {
      this.active -= 1;
      this.next();
    }
  }

  private next(): void {
    if (this.head === this.queue.length) return;
    const wake = this.queue[this.head]!;
    this.queue[this.head] = undefined;
    this.head += 1;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    wake();
  }
}
