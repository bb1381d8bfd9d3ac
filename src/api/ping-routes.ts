// RhoConnect's ping API: POST /rc/v1/users/ping and its deprecated aliases.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './server.js';

export const pingRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.post('/rc/v1/users/ping', async (request) => {
    const result = await deps.ping(request.body as never, 'rest');
    return { pushes: result.pushes };
  });
};
