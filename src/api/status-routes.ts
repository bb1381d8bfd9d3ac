// GET /rc/v1/rhopush/status: what the console shows at a glance: capture on each Redis node (lease,
// subscription, last canary), throughput over about the last minute, the Resque queues and the
// automatic pings waiting, history settings, delivery and the sources settings.yml lists.
import type { FastifyPluginAsync } from 'fastify';
import type { ActivityTotals } from '../metrics.js';
import { API_TOKEN_HEADER, refuseToken } from './auth.js';
import { sendError, type ApiDeps, type StatusSources } from './deps.js';

/** Throughput is measured over about this long (as often as the status is asked for). */
const WINDOW_MS = 60_000;
/** A sample is kept at most this often. */
const SAMPLE_EVERY_MS = 5_000;

interface Sample {
  at: number;
  totals: ActivityTotals;
}

/**
 * Rates from running totals, sampled when the status is read (the console polls every few
 * seconds): between now and the oldest sample of the last minute; before there is one, since start.
 */
export class ThroughputMeter {
  private readonly samples: Sample[] = [];

  constructor(
    private readonly totals: () => ActivityTotals,
    private readonly start: Sample = { at: Date.now(), totals: totals() },
  ) {}

  read(now = Date.now()): { windowSeconds: number; perMinute: ActivityTotals; totals: ActivityTotals } {
    const totals = this.totals();
    // Forget samples older than the window, but keep the newest of them as the window's start.
    while (this.samples.length > 1 && this.samples[1]!.at <= now - WINDOW_MS) this.samples.shift();
    const base = this.samples.find((s) => s.at <= now - SAMPLE_EVERY_MS) ?? this.samples[0] ?? this.start;
    if ((this.samples.at(-1)?.at ?? -Infinity) <= now - SAMPLE_EVERY_MS) this.samples.push({ at: now, totals });
    const seconds = Math.max(0.001, (now - base.at) / 1000);
    const rate = (k: keyof ActivityTotals) => Math.round(((totals[k] - base.totals[k]) / seconds) * 60 * 10) / 10;
    return {
      windowSeconds: Math.round(seconds * 10) / 10,
      perMinute: { pings: rate('pings'), devicePushes: rate('devicePushes'), changes: rate('changes') },
      totals,
    };
  }
}

const count = { type: 'integer' } as const;
const totalsSchema = { type: 'object', properties: { pings: count, devicePushes: count, changes: count } } as const;
const rateSchema = {
  type: 'object',
  properties: { pings: { type: 'number' }, devicePushes: { type: 'number' }, changes: { type: 'number' } },
} as const;

const statusSchema = {
  type: 'object',
  properties: {
    at: { type: 'integer', description: 'ms since the epoch' },
    delivery: { type: 'string', enum: ['live', 'log'] },
    capture: {
      type: 'object',
      properties: {
        enabled: { type: 'boolean' },
        nodes: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              node: { type: 'string' },
              leaseHeld: { type: 'boolean', description: 'This instance holds the capture lease.' },
              heldElsewhere: { type: 'boolean', description: 'Another rhopush instance captures this node.' },
              subscribed: { type: 'boolean' },
              catchingUp: { type: 'boolean' },
              canaryRoundTripMs: { type: 'number', description: 'The last canary round trip.' },
            },
          },
        },
        canaryProbes: count,
        canaryFailures: count,
      },
    },
    throughput: {
      type: 'object',
      properties: {
        windowSeconds: { type: 'number', description: 'The rates are over this long.' },
        perMinute: rateSchema,
        totals: { ...totalsSchema, description: 'Since this daemon started.' },
      },
    },
    queue: {
      type: 'object',
      properties: {
        depths: {
          type: ['object', 'null'],
          additionalProperties: count,
          description: 'Ping jobs waiting per Resque queue (null on Redis Cluster, where Resque does not run).',
        },
        autoPingsWaiting: count,
        usersGrouping: count,
      },
    },
    history: {
      type: 'object',
      properties: { enabled: { type: 'boolean' }, ttlHours: { type: 'number' }, perUser: count },
    },
    sources: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, pushNotify: { type: 'boolean' }, partition: { type: 'string' } },
      },
    },
  },
} as const;

const errorSchema = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;

export const statusRoutes: FastifyPluginAsync<ApiDeps & { status: StatusSources }> = async (app, deps) => {
  const meter = new ThroughputMeter(deps.status.totals);
  app.get(
    '/rc/v1/rhopush/status',
    {
      schema: {
        summary: "The daemon's status, for the console",
        description: 'Capture per Redis node (lease, subscription, last canary), throughput, queue depth, history and delivery.',
        tags: ['operations'],
        querystring: { type: 'object', properties: { api_token: { type: 'string' } } },
        headers: { type: 'object', properties: { [API_TOKEN_HEADER]: { type: 'string' } } },
        response: {
          200: statusSchema,
          422: { description: 'No API token provided / Invalid/missing API user.', ...errorSchema },
          503: { description: 'Redis unreachable: the token could not be checked.', ...errorSchema },
        },
      },
      validatorCompiler: () => () => true,
    },
    async (request, reply) => {
      const query = (request.query ?? {}) as Record<string, unknown>;
      const refused = await refuseToken(deps, request.headers[API_TOKEN_HEADER], query.api_token);
      if (refused) return sendError(reply, refused);
      reply.header('cache-control', 'no-store');
      const settings = deps.settings();
      const capture = deps.status.capture?.();
      // Queue depths need Redis; without it the rest of the status still answers.
      const depths = deps.redisUnavailable?.() ? undefined : await deps.status.queueDepths().catch(() => undefined);
      return reply.send({
        at: Date.now(),
        delivery: settings.rhopush.delivery,
        capture: capture ? { enabled: true, ...capture } : { enabled: false, nodes: [], canaryProbes: 0, canaryFailures: 0 },
        throughput: meter.read(),
        queue: { depths: depths ?? null, autoPingsWaiting: deps.status.autoPingsWaiting(), usersGrouping: deps.status.usersGrouping() },
        history: {
          enabled: settings.rhopush.historyTtlHours > 0,
          ttlHours: settings.rhopush.historyTtlHours,
          perUser: settings.rhopush.historyPerUser,
        },
        sources: [...settings.sources.values()].map((s) => ({ name: s.name, pushNotify: s.pushNotify, partition: s.partitionType })),
      });
    },
  );
};
