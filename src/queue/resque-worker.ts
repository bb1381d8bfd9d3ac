// A reliable consumer of Resque ping jobs (`resque:queue:ping`), compatible with the jobs Ruby's
// `Resque.enqueue(PingJob, ...)` writes and with resque-web's view of failures.
//
// Plain Resque pops a job and loses it when the worker dies mid-job. Here a job is moved atomically
// (LMOVE) from its queue into this worker's own processing list and removed only when it is done
// or recorded in `resque:failed`. Every worker keeps a heartbeat key alive; a worker that finds the
// heartbeat of another one expired returns that worker's unfinished jobs to the head of their queue.
// Delivery is therefore at least once: a ping interrupted by a crash is sent again.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { HealthPart } from '../util/health.js';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import { RHOPUSH_PREFIX } from '../store/keys.js';
import { connectRedis } from '../store/redis-connection.js';
import { clip } from '../util/log-text.js';
import { PingError, type PingResult } from '../ping/ping-job.js';
import { normalizePingParams, PingParamsError, type NormalizedPing, type PingParams } from '../ping/ping-params.js';
import { PING_JOB_CLASSES, resqueFailure, resqueKeys, resqueWorkerName } from './resque-queue.js';

/** rhopush's own bookkeeping for its queue workers (Ruby's Resque never reads these keys). */
export const workerKeys = {
  /** Hash: worker id → JSON {name, queues, host, pid, started}. */
  registry: `${RHOPUSH_PREFIX}queue:workers`,
  heartbeat: (workerId: string) => `${RHOPUSH_PREFIX}queue:worker:${workerId}:heartbeat`,
  processing: (workerId: string, queue: string) => `${RHOPUSH_PREFIX}queue:worker:${workerId}:processing:${queue}`,
} as const;

/** The queue item is not a JSON object. */
export class JobDecodeError extends Error {
  override name = 'JobDecodeError';
}

/** The job names a class rhopush does not run. */
export class UnknownJobClassError extends Error {
  override name = 'UnknownJobClassError';
}

export interface ResqueWorkerOptions {
  /** Command connection to the Redis that holds the queues (shared with the rest of the daemon). */
  redis: Redis;
  /** Opens the dedicated connection the worker blocks on while it waits for jobs. */
  blockingConnection: () => Redis;
  /** Queue names in priority order (`ping` → `resque:queue:ping`). */
  queues: readonly string[];
  /** Jobs run at once at most. */
  concurrency: number;
  /** Heartbeat lifetime: the worker counts as dead this long after its last beat. */
  heartbeatTtlMs: number;
  /** Largest user list a job may name (read per job, so settings reloads apply). */
  maxUsers: () => number;
  /** Runs one ping (with the record rhopush queued it under, if it did); failures are in `errors`. */
  run: (ping: NormalizedPing, queued?: QueuedRecord) => Promise<PingResult>;
  logger: Logger;
  /** Longest single blocking wait, in seconds; with several queues, how often the others are looked at. */
  pollSeconds?: number;
  /** Force the fetch method (tests of servers older than Redis 6.2); default: detected. */
  fetchMethod?: FetchMethod;
  /** Metrics: each finished job, and each queue's depth at every heartbeat. */
  onJobFinished?: (queue: string, outcome: 'done' | 'failed') => void;
  onQueueDepth?: (queue: string, depth: number) => void;
}

/** `blmove`: BLMOVE (Redis ≥ 6.2). `script`: an atomic LPOP+RPUSH script, polled (older servers). */
export type FetchMethod = 'blmove' | 'script';

export interface ResqueWorkerStatus {
  running: boolean;
  inHand: number;
  processed: number;
  failed: number;
  recovered: number;
}

// LPOP from the queue and RPUSH onto the processing list in one step: LMOVE for servers without it.
const MOVE_SCRIPT = "local v = redis.call('LPOP', KEYS[1]) if v then redis.call('RPUSH', KEYS[2], v) end return v";

const FINISH_ATTEMPTS = 5;

export class ResqueWorker {
  /** Unique per worker instance; names its Redis keys. */
  readonly id: string;
  /** Resque's `host:pid:queues`, written into failure records. */
  readonly name: string;
  private readonly redis: Redis;
  private readonly queues: readonly string[];
  private readonly logger: Logger;
  private blocking?: Redis;
  private fetchMethod?: FetchMethod;
  private loop?: Promise<void>;
  private heartbeat?: NodeJS.Timeout;
  private beats = 0;
  private stopping = false;
  private stopped?: Promise<void>;
  private readonly inHand = new Set<Promise<void>>();
  private readonly counts = { processed: 0, failed: 0, recovered: 0 };
  private readonly sleepers = new Set<() => void>();

  constructor(private readonly options: ResqueWorkerOptions) {
    if (options.queues.length === 0) throw new Error('a queue worker needs at least one queue');
    this.redis = options.redis;
    this.queues = options.queues;
    this.logger = options.logger.child({ part: 'queue-worker' });
    this.name = resqueWorkerName(this.queues);
    this.id = `${this.name}:${randomUUID().slice(0, 8)}`;
  }

  status(): ResqueWorkerStatus {
    return { running: this.loop !== undefined && !this.stopping, inHand: this.inHand.size, ...this.counts };
  }

  healthParts(): Record<string, HealthPart> {
    const w = this.status();
    return {
      'queue worker': {
        ok: w.running,
        detail: `${w.running ? 'running' : 'stopped'}, ${w.inHand} in hand, ${w.processed} done, ${w.failed} failed`,
      },
    };
  }

  /** Registers, returns the jobs of dead workers to their queues, then starts taking jobs. */
  async start(): Promise<void> {
    this.fetchMethod = this.options.fetchMethod ?? (await this.detectFetchMethod());
    await this.beat();
    await this.recoverAbandoned();
    const interval = Math.max(50, Math.floor(this.options.heartbeatTtlMs / 3));
    this.heartbeat = setInterval(() => void this.tick(), interval);
    this.heartbeat.unref();
    if (this.fetchMethod === 'blmove') {
      this.blocking = this.options.blockingConnection();
      this.blocking.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'queue fetch connection error'));
    }
    this.loop = this.fetchLoop();
    this.logger.info(
      { worker: this.id, queues: this.queues, concurrency: this.options.concurrency, fetch: this.fetchMethod },
      'queue worker started',
    );
  }

  /** Stops taking jobs, finishes the ones in hand, returns anything left to its queue, unregisters. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      if (this.heartbeat) clearInterval(this.heartbeat);
      // Cuts a blocking wait short. A job moved just before the cut is in our list and goes back below.
      this.blocking?.disconnect();
      for (const wake of [...this.sleepers]) wake();
      await this.loop;
      while (this.inHand.size > 0) await Promise.allSettled([...this.inHand]);
      try {
        const returned = await this.returnJobs(this.id, this.queues);
        if (returned > 0) this.logger.info({ returned }, 'returned unfinished jobs to their queues');
        await this.redis.multi().del(workerKeys.heartbeat(this.id)).hdel(workerKeys.registry, this.id).exec();
      } catch (err) {
        // The heartbeat then expires and another worker returns what is left.
        this.logger.warn({ err: (err as Error).message }, 'queue worker could not unregister');
      }
      this.logger.info({ worker: this.id, ...this.counts }, 'queue worker stopped');
    })();
    return this.stopped;
  }

  private async detectFetchMethod(): Promise<FetchMethod> {
    const info = await this.redis.info('server');
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    const [major, minor] = version ? [Number(version[1]), Number(version[2])] : [0, 0];
    return major > 6 || (major === 6 && minor >= 2) ? 'blmove' : 'script';
  }

  private async beat(): Promise<void> {
    const info = JSON.stringify({
      name: this.name,
      queues: this.queues,
      host: hostname(),
      pid: process.pid,
      started: new Date().toISOString(),
    });
    // Heartbeat before registry entry: a worker is never listed without a live heartbeat.
    await this.redis
      .multi()
      .set(workerKeys.heartbeat(this.id), String(Date.now()), 'PX', this.options.heartbeatTtlMs)
      .hset(workerKeys.registry, this.id, info)
      .exec();
  }

  private async tick(): Promise<void> {
    if (this.stopping) return;
    // While Redis is away (the daemon says so once), beats would only pile up in the connection's
    // queue and each fail with a warning; the next tick after it is back beats again.
    if (this.redis.status !== 'ready') return;
    try {
      await this.beat();
      if (this.options.onQueueDepth) {
        const depths = await Promise.all(this.queues.map((q) => this.redis.llen(resqueKeys.queue(q))));
        depths.forEach((depth, i) => this.options.onQueueDepth!(this.queues[i]!, depth));
      }
      // Look for dead peers now and then, not only at start: a peer may die while we run.
      this.beats += 1;
      if (this.beats % 3 === 0) await this.recoverAbandoned();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'queue worker heartbeat failed');
    }
  }

  /** Returns the unfinished jobs of every registered worker whose heartbeat has expired. */
  async recoverAbandoned(): Promise<number> {
    const registry = await this.redis.hgetall(workerKeys.registry);
    let total = 0;
    for (const [workerId, info] of Object.entries(registry)) {
      if (workerId === this.id) continue;
      if ((await this.redis.exists(workerKeys.heartbeat(workerId))) === 1) continue;
      const returned = await this.returnJobs(workerId, queuesOf(info) ?? this.queues);
      // Counted at once: the returned jobs may already be running.
      this.counts.recovered += returned;
      await this.redis.hdel(workerKeys.registry, workerId);
      total += returned;
      this.logger.warn({ deadWorker: workerId, returned }, 'queue worker heartbeat expired: returned its unfinished jobs');
    }
    return total;
  }

  /** Moves a worker's processing lists back to the head of their queues, oldest job first. */
  private async returnJobs(workerId: string, queues: readonly string[]): Promise<number> {
    let moved = 0;
    for (const queue of queues) {
      const from = workerKeys.processing(workerId, queue);
      let count = 0;
      // RPOPLPUSH: tail of the processing list to the head of the queue, one job per atomic step.
      while ((await this.redis.rpoplpush(from, resqueKeys.queue(queue))) !== null) count += 1;
      if (count > 0) await this.redis.sadd(resqueKeys.queues, queue);
      moved += count;
    }
    return moved;
  }

  private async fetchLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      if (this.inHand.size >= this.options.concurrency) {
        await Promise.race(this.inHand);
        continue;
      }
      let taken: { queue: string; raw: string } | undefined;
      try {
        taken = await this.fetch();
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        failures += 1;
        this.logger.warn({ err: (err as Error).message }, 'queue fetch failed; retrying');
        await this.pause(Math.min(100 * 2 ** Math.min(failures, 5), 3000));
        continue;
      }
      if (!taken) continue;
      const job = this.perform(taken.queue, taken.raw);
      this.inHand.add(job);
      void job.finally(() => this.inHand.delete(job));
    }
  }

  /** Takes the next job into this worker's processing list, or undefined after a quiet wait. */
  private async fetch(): Promise<{ queue: string; raw: string } | undefined> {
    const pollSeconds = this.options.pollSeconds ?? 1;
    if (this.fetchMethod === 'script') {
      for (const queue of this.queues) {
        const raw = (await this.redis.eval(MOVE_SCRIPT, 2, resqueKeys.queue(queue), workerKeys.processing(this.id, queue))) as
          string | null;
        if (raw !== null) return { queue, raw };
      }
      await this.pause(pollSeconds * 1000);
      return undefined;
    }
    // Several queues: take from the first non-empty one in priority order, then block on the first.
    if (this.queues.length > 1) {
      for (const queue of this.queues) {
        const raw = await this.redis.lmove(resqueKeys.queue(queue), workerKeys.processing(this.id, queue), 'LEFT', 'RIGHT');
        if (raw !== null) return { queue, raw };
      }
    }
    const queue = this.queues[0]!;
    const raw = await this.blocking!.blmove(resqueKeys.queue(queue), workerKeys.processing(this.id, queue), 'LEFT', 'RIGHT', pollSeconds);
    return raw === null ? undefined : { queue, raw };
  }

  /** Runs one job to its end; never rejects. */
  private async perform(queue: string, raw: string): Promise<void> {
    let payload: unknown = { raw };
    let failure: Error | undefined;
    try {
      const job = decodeResqueJob(raw);
      payload = job;
      const params = pingParamsOf(job);
      const ping = normalizePingParams(params, { maxUsers: this.options.maxUsers() });
      const result = await this.options.run(ping, queuedRecordOf(params));
      if (result.errors.length > 0) failure = new PingError(result);
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    const processing = workerKeys.processing(this.id, queue);
    if (failure) {
      this.counts.failed += 1;
      this.options.onJobFinished?.(queue, 'failed');
      // The message lists every failed device push: the whole of it goes to resque:failed, a bounded part to the log.
      this.logger.warn(
        { queue, exception: failure.name, error: clip(failure.message, 1000) },
        'queue job failed: recorded in resque:failed',
      );
      const record = JSON.stringify(resqueFailure(payload, failure, this.name, queue));
      await this.finish(() =>
        this.redis
          .multi()
          .rpush(resqueKeys.failed, record)
          .lrem(processing, 1, raw)
          .incr(resqueKeys.processed)
          .incr(resqueKeys.failedCount)
          .exec(),
      );
    } else {
      this.counts.processed += 1;
      this.options.onJobFinished?.(queue, 'done');
      await this.finish(() => this.redis.multi().lrem(processing, 1, raw).incr(resqueKeys.processed).exec());
    }
  }

  /** Writes a job's outcome, retrying while Redis is unreachable; a job never finished is run again later. */
  private async finish(write: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await write();
        return;
      } catch (err) {
        if (attempt >= FINISH_ATTEMPTS) {
          this.logger.error(
            { err: (err as Error).message },
            'could not record a finished queue job; it stays in the processing list and runs again',
          );
          return;
        }
        await this.pause(100 * 2 ** attempt);
      }
    }
  }

  /** Sleeps, but wakes at once when the worker stops. */
  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }
}

/** A queue item → the Resque job it holds, or JobDecodeError. */
export function decodeResqueJob(raw: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new JobDecodeError(`queue item is not JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new JobDecodeError('queue item is not a Resque job: expected {"class": ..., "args": [...]}');
  }
  return value as Record<string, unknown>;
}

/** A Resque job → the ping parameters it carries, or UnknownJobClassError / PingParamsError. */
export function pingParamsOf(job: Record<string, unknown>): PingParams {
  const cls = job.class;
  if (typeof cls !== 'string' || !PING_JOB_CLASSES.has(cls)) {
    throw new UnknownJobClassError(`rhopush runs ${[...PING_JOB_CLASSES].join(' and ')} jobs, not ${JSON.stringify(cls ?? null)}`);
  }
  const args = job.args;
  if (!Array.isArray(args) || args.length === 0) throw new PingParamsError('args', 'expected [params] with the ping parameters');
  return args[0] as PingParams;
}

function queuesOf(info: string): string[] | undefined {
  try {
    const parsed = JSON.parse(info) as { queues?: unknown };
    if (Array.isArray(parsed.queues) && parsed.queues.every((q) => typeof q === 'string')) return parsed.queues as string[];
  } catch {
    // A damaged entry: fall back to this worker's queues.
  }
  return undefined;
}

/** The worker `:rhopush:` describes (queues, concurrency, heartbeat), on instance 0 of `:redis:`. */
export function workerForSettings(
  settings: () => Settings,
  redis: Redis,
  run: (ping: NormalizedPing, queued?: QueuedRecord) => Promise<PingResult>,
  logger: Logger,
  observer?: { jobOutcome(outcome: string): void; setQueueDepth(depth: number, queue: string): void },
): ResqueWorker {
  const { rhopush, redis: endpoints } = settings();
  return new ResqueWorker({
    redis,
    blockingConnection: () => connectRedis(endpoints[0]!, { connectionName: 'rhopush:queue-fetch' }),
    queues: rhopush.queues,
    concurrency: rhopush.workerConcurrency,
    heartbeatTtlMs: rhopush.leaseMs,
    maxUsers: () => settings().rhopush.maxUsersPerPing,
    run,
    logger,
    onJobFinished: (_queue, outcome) => observer?.jobOutcome(outcome),
    onQueueDepth: (queue, depth) => observer?.setQueueDepth(depth, queue),
  });
}

/** The record a job was queued under by rhopush (`ping_id`, `queued_at`); Ruby's jobs have none. */
export interface QueuedRecord {
  id: string;
  queuedAt: number;
}

function queuedRecordOf(params: PingParams): QueuedRecord | undefined {
  const { ping_id: id, queued_at: at } = params as { ping_id?: unknown; queued_at?: unknown };
  if (typeof id !== 'string' || !/^[0-9a-z]{8,40}$/.test(id)) return undefined;
  return { id, queuedAt: typeof at === 'number' && Number.isFinite(at) ? at : Date.now() };
}
