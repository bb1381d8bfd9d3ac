// Resque's queue format for ping jobs: the keys, the job JSON Ruby's `Resque.enqueue(PingJob, ...)`
// writes, the failure record resque-web shows, and `enqueuePingJob` writing exactly that.
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { NormalizedPing } from '../ping/ping-params.js';

/** RhoConnect's Resque uses the default `resque:` namespace. */
export const resqueKeys = {
  queues: 'resque:queues',
  queue: (name: string) => `resque:queue:${name}`,
  failed: 'resque:failed',
  processed: 'resque:stat:processed',
  failedCount: 'resque:stat:failed',
} as const;

/** The class rhopush writes; `PingJob` is what apps written for older RhoConnect versions enqueue. */
export const PING_JOB_CLASS = 'Rhoconnect::PingJob';
export const PING_JOB_CLASSES: ReadonlySet<string> = new Set([PING_JOB_CLASS, 'PingJob']);

/** A Resque job as stored in `resque:queue:<name>`. */
export interface ResqueJob {
  class: string;
  args: unknown[];
}

/** One entry of `resque:failed`, in Resque's own field names. */
export interface ResqueFailure {
  failed_at: string;
  payload: unknown;
  exception: string;
  error: string;
  backtrace: string[];
  worker: string;
  queue: string;
}

/** The job arguments a ping is stored as: RhoConnect's parameter names, string keys, no empty fields. */
export function pingJobArgs(ping: NormalizedPing, record?: { id: string; queuedAt: number }): Record<string, unknown> {
  const args: Record<string, unknown> = { user_id: ping.users };
  if (ping.sources.length > 0) args.sources = ping.sources;
  if (ping.message !== undefined) args.message = ping.message;
  if (ping.badge !== undefined && ping.badge !== '') args.badge = ping.badge;
  if (ping.sound !== undefined) args.sound = ping.sound;
  if (ping.vibrate !== '') args.vibrate = ping.vibrate;
  // rhopush's worker finds the ping's record by these; Ruby's PingJob ignores keys it does not use.
  if (record) Object.assign(args, { ping_id: record.id, queued_at: record.queuedAt });
  return args;
}

export function pingJob(ping: NormalizedPing, record?: { id: string; queuedAt: number }): ResqueJob {
  return { class: PING_JOB_CLASS, args: [pingJobArgs(ping, record)] };
}

export interface EnqueuedPing {
  /** The ping's id, once a worker runs it: GET /rc/v1/pings/<id>. */
  id?: string;
  queue: string;
  /** Length of the queue after the push. */
  queued: number;
  job: ResqueJob;
}

/** A job waiting for the end of this turn of the event loop (see enqueuePingJob). */
interface TurnJob {
  payload: string;
  settle: (err: Error | null, length?: number) => void;
}

/** Per connection, per queue: the jobs enqueued during the current turn, written together. */
const turnBatches = new WeakMap<Redis, Map<string, TurnJob[]>>();

function flushTurn(redis: Redis): void {
  const byQueue = turnBatches.get(redis);
  turnBatches.delete(redis);
  if (!byQueue) return;
  for (const [queue, jobs] of byQueue) {
    const payloads = jobs.map((j) => j.payload);
    Promise.all([redis.sadd(resqueKeys.queues, queue), redis.rpush(resqueKeys.queue(queue), ...payloads)]).then(
      ([, length]) => {
        // RPUSH appends in order: each job's own position is the length it would have seen alone.
        for (let i = 0; i < jobs.length; i++) jobs[i]!.settle(null, length - (jobs.length - 1 - i));
      },
      (err: Error) => {
        for (const j of jobs) j.settle(err);
      },
    );
  }
}

/**
 * Queues a ping as `Resque.enqueue(PingJob, params)` does: SADD resque:queues, then RPUSH
 * resque:queue:<q>, on one connection and in that order, so a reader never sees the job before its
 * queue is registered. On an auto-pipelined connection (rhopush's own) the jobs of one turn of the
 * event loop go out together, one SADD and one RPUSH for all of them, so concurrent REST requests
 * cost Redis two commands per turn instead of two each; elsewhere one pipeline per job.
 */
export async function enqueuePingJob(
  redis: Redis,
  ping: NormalizedPing,
  queue = 'ping',
  record?: { id: string; queuedAt: number },
): Promise<EnqueuedPing> {
  const job = pingJob(ping, record);
  const id = record?.id;
  const payload = JSON.stringify(job);
  if (redis.options.enableAutoPipelining) {
    let byQueue = turnBatches.get(redis);
    if (!byQueue) {
      turnBatches.set(redis, (byQueue = new Map()));
      setImmediate(flushTurn, redis);
    }
    let jobs = byQueue.get(queue);
    if (!jobs) byQueue.set(queue, (jobs = []));
    const batch = jobs;
    const queued = await new Promise<number>((resolve, reject) =>
      batch.push({ payload, settle: (err, length) => (err ? reject(err) : resolve(length!)) }),
    );
    return { id, queue, queued, job };
  }
  const replies = await redis.pipeline().sadd(resqueKeys.queues, queue).rpush(resqueKeys.queue(queue), payload).exec();
  const failed = replies?.find(([err]) => err);
  if (!replies || failed) throw failed?.[0] ?? new Error(`enqueue on ${resqueKeys.queue(queue)} was aborted`);
  return { id, queue, queued: Number(replies[1]?.[1] ?? 0), job };
}

/** Resque names a worker `host:pid:queues`; resque-web splits it on ':' to show those parts. */
export function resqueWorkerName(queues: readonly string[], pid: number = process.pid): string {
  return `${hostname()}:${pid}:${queues.join(',')}`;
}

/** Resque's `failed_at`: `%Y/%m/%d %H:%M:%S %Z`, written here in UTC. */
export function resqueTimestamp(date: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getUTCFullYear()}/${p(date.getUTCMonth() + 1)}/${p(date.getUTCDate())} ${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())} UTC`;
}

/** The record Resque's Redis failure backend pushes onto `resque:failed`. */
export function resqueFailure(payload: unknown, error: Error, worker: string, queue: string, at: Date = new Date()): ResqueFailure {
  return {
    failed_at: resqueTimestamp(at),
    payload,
    exception: error.name || 'Error',
    error: error.message,
    backtrace: (error.stack ?? '')
      .split('\n')
      .slice(1)
      .map((line) => line.trim())
      .filter((line) => line.length > 0),
    worker,
    queue,
  };
}

/** Ping jobs waiting in each queue, for the status page. */
export async function queueDepths(redis: Pick<Redis, 'llen'>, queues: readonly string[]): Promise<Record<string, number>> {
  const depths = await Promise.all(queues.map((q) => redis.llen(resqueKeys.queue(q))));
  return Object.fromEntries(queues.map((q, i) => [q, depths[i]!]));
}
