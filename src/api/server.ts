// The HTTP API: one fastify instance, every route group registered as a plugin on it.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import type { PingResult, PingTrigger } from '../ping/ping-job.js';
import type { PingParams } from '../ping/ping-params.js';
import type { RhoconnectStore } from '../store/rhoconnect-store.js';
import { pingRoutes } from './ping-routes.js';
import { healthRoutes } from './health-routes.js';

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
}

export const BODY_LIMIT_BYTES = 1024 * 1024;

export async function createApiServer(deps: ApiDeps, logger: Logger): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({ loggerInstance: logger.child({ part: 'api' }) as FastifyBaseLogger, bodyLimit: BODY_LIMIT_BYTES, disableRequestLogging: true });
  await app.register(swagger, {
    openapi: { info: { title: 'rhopush', description: "RhoConnect's ping API, served by rhopush", version: '1' } },
  });
  await app.register(pingRoutes, deps);
  await app.register(healthRoutes, deps);
  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
