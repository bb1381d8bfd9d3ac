// The HTTP API: one fastify instance, every route group registered as a plugin on it.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import formbody from '@fastify/formbody';
import type { Logger } from 'pino';
import { RhopushError } from '../errors.js';
import { sendError, type ApiDeps } from './deps.js';
import { pingRoutes } from './ping-routes.js';
import { healthRoutes } from './health-routes.js';
import { metricsRoutes } from './metrics-routes.js';
import { historyRoutes } from './history-routes.js';
import { statusRoutes } from './status-routes.js';
import { consoleRoutes } from './console-routes.js';
import { parseFormBody, parseQueryString } from './form-body.js';
import { parseJsonBody } from './json-body.js';
import { clip } from '../util/log-text.js';

export const BODY_LIMIT_BYTES = 1024 * 1024;

export async function createApiServer(deps: ApiDeps, logger: Logger): Promise<FastifyInstance> {
  // A client gets this long to send a whole request, headers and body: slower ones (a body trickling
  // in a byte at a time) get 408 and lose the connection, so nobody holds connections without
  // ever presenting a token. Node looks at open connections every checking interval.
  const requestTimeout = deps.settings().rhopush.httpRequestTimeoutMs;
  const app: FastifyInstance = Fastify({
    loggerInstance: logger.child({ part: 'api' }) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    requestTimeout,
    http: {
      requestTimeout,
      headersTimeout: requestTimeout,
      connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(requestTimeout / 4))),
    },
    // Pings are logged once each by the daemon; a line per HTTP request would double them.
    logController: new LogController({ disableRequestLogging: true }),
    // Bracket notation (`api_token=...&user_id[]=a`) in query strings too, as RhoConnect reads them.
    routerOptions: { querystringParser: parseQueryString },
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'rhopush',
        description: "RhoConnect's ping API served by rhopush, the ping history, and what the console at /console reads",
        version: '1',
      },
    },
  });
  // Form bodies as Ruby's RestClient sends them (`user_id[]=a&user_id[]=b`).
  await app.register(formbody, { parser: parseFormBody });
  // Only JSON and forms carry parameters; a text body would be ignored silently, so it gets 415.
  app.removeContentTypeParser('text/plain');
  // JSON that says why a body is refused (see json-body.ts).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonBody);
  // Every error a client can cause is a 4xx with a JSON reason; anything else is a logged 500.
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    // rhopush's own errors carry their status; fastify's (413, 415, 408, ...) their statusCode.
    const known = err instanceof RhopushError ? err.status : err.statusCode;
    const status = typeof known === 'number' && known >= 400 && known < 600 ? known : 500;
    // The path only: the query string may carry an api_token.
    if (status >= 500) request.log.error({ err: clip(err.message, 1000), path: clip(request.url.split('?')[0]!) }, 'request failed');
    return sendError(reply, known === undefined ? new RhopushError('INTERNAL', { reason: err.message }) : err, status);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new RhopushError('NO_ROUTE', { method: request.method, path: request.url.split('?')[0]!.slice(0, 200) })),
  );
  await app.register(pingRoutes, deps);
  await app.register(historyRoutes, deps);
  if (deps.status) await app.register(statusRoutes, { ...deps, status: deps.status });
  await app.register(healthRoutes, deps);
  if (deps.metrics) await app.register(metricsRoutes, { metrics: deps.metrics });
  await app.register(consoleRoutes, {});
  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

/** Builds the API and listens on `:rhopush: :listen:`; an address it cannot take is a setup error. */
export async function serveApi(deps: ApiDeps, logger: Logger): Promise<FastifyInstance> {
  const app = await createApiServer(deps, logger);
  const { host, port } = deps.settings().rhopush.listen;
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new RhopushError('HTTP_LISTEN', { address: `${host}:${port}`, reason });
  }
  return app;
}
