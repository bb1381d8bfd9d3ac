// What the HTTP API needs from the rest of rhopush (the composition root provides it), and how it
// answers with an error from the registry.
import type { FastifyReply } from 'fastify';
import type { Settings } from '../config/settings.js';
import { RhopushError } from '../errors.js';
import type { WhyOptions, WhyReport } from '../explain/why.js';
import type { HistoryReader } from '../history/ping-history.js';
import type { ActivityTotals, Metrics } from '../metrics.js';
import type { PingResult, PingTrigger } from '../ping/ping-job.js';
import type { NormalizedPing, PingParams } from '../ping/ping-params.js';
import type { EnqueuedPing } from '../queue/resque-queue.js';
import type { RhoconnectStore } from '../store/rhoconnect-store.js';
import type { HealthReport } from '../util/health.js';

export interface ApiDeps {
  settings: () => Settings;
  ping: (params: PingParams | NormalizedPing, trigger: PingTrigger) => Promise<PingResult>;
  /** Queues a ping as a Resque job (the REST `async` parameter). */
  enqueue: (ping: NormalizedPing) => Promise<EnqueuedPing>;
  store: RhoconnectStore;
  /** Why Redis cannot serve the request now (it is reconnecting), or undefined when it can. */
  redisUnavailable?: () => string | undefined;
  health: () => HealthReport;
  /** Served at /metrics; absent: /metrics is not served. */
  metrics?: Metrics;
  /** Every ping's record and each user's captured changes (GET /rc/v1/pings/..., /rc/v1/users/.../pings). */
  history?: HistoryReader;
  /** The explanation of what rhopush did for one user, and why (GET /rc/v1/users/:user_id/why). */
  why?: (user: string, options: WhyOptions) => Promise<WhyReport>;
  /** What the console's status shows (GET /rc/v1/rhopush/status). */
  status?: StatusSources;
}

/** One Redis node as capture follows it. */
export interface CaptureNodeView {
  node: string;
  /** This instance holds the node's capture lease. */
  leaseHeld: boolean;
  /** Another rhopush instance holds it (and captures the node). */
  heldElsewhere: boolean;
  subscribed: boolean;
  catchingUp: boolean;
  /** The last canary's round trip on this node, ms; absent before the first one came back. */
  canaryRoundTripMs?: number;
}

export interface StatusSources {
  /** Absent when this daemon does not capture. */
  capture?: () => { nodes: CaptureNodeView[]; canaryProbes: number; canaryFailures: number };
  totals: () => ActivityTotals;
  /** Ping jobs waiting per Resque queue; undefined where Resque does not run (Redis Cluster). */
  queueDepths: () => Promise<Record<string, number> | undefined>;
  /** Automatic pings grouped and waiting for a free slot. */
  autoPingsWaiting: () => number;
  /** Users whose changes are being grouped now. */
  usersGrouping: () => number;
}

/** Answers with `err` as JSON (`{ error, ...detail }`), with its status unless one is given. */
export function sendError(reply: FastifyReply, err: Error, status?: number): FastifyReply {
  const body = err instanceof RhopushError ? err.toJSON() : { error: err.message };
  return reply.code(status ?? (err instanceof RhopushError ? err.status : undefined) ?? 500).send(body);
}
