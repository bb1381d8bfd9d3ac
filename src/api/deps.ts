// What the HTTP API needs from the rest of rhopush (the composition root provides it), and how it
// answers with an error from the registry.
import type { FastifyReply } from 'fastify';
import type { Settings } from '../config/settings.js';
import { RhopushError } from '../errors.js';
import type { Metrics } from '../metrics.js';
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
}

/** Answers with `err` as JSON (`{ error, ...detail }`), with its status unless one is given. */
export function sendError(reply: FastifyReply, err: Error, status?: number): FastifyReply {
  const body = err instanceof RhopushError ? err.toJSON() : { error: err.message };
  return reply.code(status ?? (err instanceof RhopushError ? err.status : undefined) ?? 500).send(body);
}
