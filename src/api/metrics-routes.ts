// GET /metrics: Prometheus text exposition of rhopush's metrics and Node's process metrics.
import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../metrics.js';

export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app, { metrics }) => {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        description: 'Keyspace events, capture decisions, pings, device pushes, queue, grouping, latency, reloads and process metrics.',
        tags: ['operations'],
        produces: ['text/plain'],
        response: { 200: { type: 'string', description: 'Prometheus text format 0.0.4' } },
      },
    },
    async (_request, reply) => {
      const text = await metrics.text();
      return reply.type(metrics.contentType).send(text);
    },
  );
};
