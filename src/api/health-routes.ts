// GET /healthz: 200 when every Redis link and subscription is up, 503 with the failing part.
// A rejected settings file shows as a `config` warning with 200: the daemon still serves.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.js';

const partSchema = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    detail: { type: 'string' },
    warning: { type: 'string', description: 'Serving, but something needs attention (e.g. a rejected settings file)' },
  },
  required: ['ok'],
} as const;

const reportSchema = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    parts: { type: 'object', additionalProperties: partSchema, description: 'Each Redis link, capture subscription and the settings file' },
    warnings: { type: 'array', items: { type: 'string' } },
  },
  required: ['ok', 'parts'],
} as const;

export const healthRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Health of the daemon',
        description: '200 when every Redis link and keyspace subscription is up; 503 naming the failing part otherwise.',
        tags: ['operations'],
        response: { 200: reportSchema, 503: reportSchema },
      },
    },
    async (_request, reply) => {
      const report = deps.health();
      const warnings = Object.entries(report.parts).flatMap(([name, part]) => (part.warning ? [`${name}: ${part.warning}`] : []));
      return reply.code(report.ok ? 200 : 503).send(warnings.length > 0 ? { ...report, warnings } : report);
    },
  );
};
