// GET /healthz: 200 when every Redis link and subscription is up, 503 with the failing part.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './server.js';

export const healthRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.get('/healthz', async (_request, reply) => {
    const report = deps.health();
    return reply.code(report.ok ? 200 : 503).send(report);
  });
};
