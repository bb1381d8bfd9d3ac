// The HTTP API: one fastify instance, every route group registered as a plugin on it.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import type { PingResult, PingTrigger } from '../ping/ping-job.js';
import type { PingParams } from '../ping/ping-params.js';
import type { RhoconnectStore } from '../store/rhoconnect-store.js';
import { pingRoutes } from './ping-routes.js';
import { healthRoutes } from './health-routes.js';
import { metricsRoutes } from './metrics-routes.js';
import type { Metrics } from '../metrics.js';

/** A part's state for /healthz. */
export interface HealthReport {
  ok: boolean;
  /** Failing or degraded parts, by name, with the reason. */
  parts: Record<string, { ok: boolean; detail?: string; warning?: string }>;
}

/** What the routes need from the daemon; daemon.ts provides it. */
export interface ApiDeps {
  settings: () => Settings;
  ping: (params: PingParams, trigger: PingTrigger) => Promise<PingResult>;
  store: RhoconnectStore;
  health: () => HealthReport;
  /** Served at /metrics; absent: /metrics is not served. */
  metrics?: Metrics;
}

export const BODY_LIMIT_BYTES = 1024 * 1024;

export async function createApiServer(deps: ApiDeps, logger: Logger): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: logger.child({ part: 'api' }) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // Pings are logged once each by the daemon; a line per HTTP request would double them.
    logController: new LogController({ disableRequestLogging: true }),
  });
  await app.register(swagger, {
    openapi: { info: { title: 'rhopush', description: "RhoConnect's ping API, served by rhopush", version: '1' } },
  });
  await app.register(pingRoutes, deps);
  await app.register(healthRoutes, deps);
  if (deps.metrics) await app.register(metricsRoutes, { metrics: deps.metrics });
  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
