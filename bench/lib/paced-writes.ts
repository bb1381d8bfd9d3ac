// Plugin writes at a fixed rate (not as fast as Redis takes them): each tick issues, in one
// pipeline, the writes that are due by the clock, so the rate holds even when a tick is late.
import type { ChainableCommander, Redis } from 'ioredis';

export interface PacedWriteOptions {
  ratePerSecond: number;
  total: number;
  /** Queues write `i` on the pipeline. */
  write: (p: ChainableCommander, i: number) => void;
  /** Called with the time (performance.now()) write `i` was handed to Redis. */
  onSent?: (i: number, at: number) => void;
  /** Stop early when this returns true (soak: `--minutes` elapsed). */
  stop?: () => boolean;
}

/** Resolves with the achieved rate (writes per second). */
export async function pacedWrites(redis: Redis, o: PacedWriteOptions): Promise<number> {
  const started = performance.now();
  let sent = 0;
  while (sent < o.total && !o.stop?.()) {
    const due = Math.min(o.total, Math.floor(((performance.now() - started) / 1000) * o.ratePerSecond));
    if (due > sent) {
      const p = redis.pipeline();
      for (let i = sent; i < due; i++) o.write(p, i);
      const at = performance.now();
      const exec = p.exec();
      if (o.onSent) for (let i = sent; i < due; i++) o.onSent(i, at);
      sent = due;
      await exec;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return sent / ((performance.now() - started) / 1000);
}
