// The ping history over HTTP, with the ping route's token rules: one ping's record, a user's pings,
// the latest pings, and the explanation of what rhopush did for a user and why. Records carry
// shortened device tokens only.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isTimeZone, parseSince, type WhyOptions } from '../explain/why.js';
import { RhopushError } from '../errors.js';
import { API_TOKEN_HEADER, refuseToken } from './auth.js';
import { sendError, type ApiDeps } from './deps.js';
import { queryError } from './form-body.js';

/** Pings a list answers with by default, and at most. */
export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;

/** Ping ids are base-36 (time, process tag, counter): anything else names no ping. */
const PING_ID = /^[0-9a-z]{1,64}$/;

const text = { type: 'string' } as const;
const texts = { type: 'array', items: text } as const;
const epochMs = (description: string) => ({ type: 'integer', description: `${description} (ms since the epoch)` }) as const;

const countsSchema = {
  type: 'object',
  properties: Object.fromEntries(['sent', 'failed', 'dead', 'skipped', 'logged', 'dropped'].map((k) => [k, { type: 'integer' }])),
} as const;

const deviceOutcomeSchema = {
  type: 'object',
  properties: {
    user: text,
    clientId: text,
    platform: text,
    token: { type: 'string', description: 'Shortened device token (never the whole token).' },
    outcome: { type: 'string', enum: ['sent', 'logged', 'failed', 'dead', 'skipped-dead', 'dropped'] },
    reason: text,
    retries: { type: 'integer' },
  },
} as const;

export const pingRecordSchema = {
  type: 'object',
  description: "One ping's record: what started it, what it was to sync, and how each device push ended.",
  properties: {
    id: text,
    status: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed'] },
    trigger: { type: 'string', enum: ['auto', 'catch-up', 'rest', 'queue', 'library', 'cli'] },
    users: { ...texts, description: 'The first 100 users.' },
    userCount: { type: 'integer' },
    sources: texts,
    payload: { type: 'object', properties: { message: text, badge: text, sound: text, vibrate: text } },
    changes: {
      type: 'array',
      description: 'Automatic pings: the captured changes behind it and the rule that decided each.',
      items: { type: 'object', properties: { source: text, rule: text } },
    },
    changeCount: { type: 'integer' },
    queuedAt: epochMs('Queued'),
    startedAt: epochMs('Started'),
    finishedAt: epochMs('Finished'),
    platforms: { type: 'object', additionalProperties: countsSchema, description: 'Device pushes per platform, by outcome.' },
    skippedUsers: { ...texts, description: 'Users unknown, or without a registered client.' },
    errors: texts,
    devices: { type: 'array', items: deviceOutcomeSchema, description: 'The first 1000 device pushes.' },
    deviceCount: { type: 'integer' },
    incomplete: { type: 'string', description: 'A part of the record could not be written (the ping itself went on).' },
  },
  required: ['id', 'status', 'trigger', 'users', 'sources'],
} as const;

const errorSchema = { type: 'object', properties: { error: text, field: text }, required: ['error'] } as const;

const whyEventSchema = {
  type: 'object',
  properties: {
    at: epochMs('When it happened'),
    kind: { type: 'string', enum: ['ping', 'decision'] },
    sources: texts,
    rule: { type: 'string', description: 'Decisions: the rule that decided the captured change.' },
    count: { type: 'integer', description: 'The same decision, this many times in a row.' },
    firstAt: epochMs('The first of them'),
    pinged: { type: 'boolean' },
    text: { type: 'string', description: 'In words: "Product: plugin write → pinged".' },
    ping: {
      type: 'object',
      properties: {
        id: text,
        trigger: text,
        status: text,
        devices: {
          type: 'array',
          items: {
            type: 'object',
            properties: { clientId: text, platform: text, label: text, token: text, outcome: text, reason: text, text },
          },
        },
        skipped: { type: 'boolean' },
        incomplete: text,
        errors: texts,
      },
    },
  },
} as const;

export const whySchema = {
  type: 'object',
  description: "What rhopush did for a user and why: devices, captured changes and decisions, pings and each device's outcome.",
  properties: {
    user: text,
    source: text,
    since: epochMs('Only what happened since'),
    at: epochMs('Explained at'),
    timeZone: { type: 'string', description: 'The zone the verdict lines write times in.' },
    known: { type: 'boolean', description: 'RhoConnect has this user.' },
    history: { type: 'object', properties: { enabled: { type: 'boolean' }, ttlHours: { type: 'number' }, perUser: { type: 'integer' } } },
    devices: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          clientId: text,
          label: text,
          platform: text,
          deviceType: text,
          token: { type: 'string', description: 'Shortened.' },
          registered: { type: 'boolean' },
          problem: text,
          dead: { type: 'object', properties: { reason: text, at: text } },
          lastSync: text,
        },
      },
    },
    sources: {
      type: 'array',
      description: 'What settings.yml says about each source, through the decision live capture makes.',
      items: {
        type: 'object',
        properties: {
          source: text,
          listed: { type: 'boolean' },
          partition: text,
          pushNotify: { type: 'boolean' },
          pings: { type: 'boolean' },
          rule: text,
          text,
        },
      },
    },
    events: { type: 'array', items: whyEventSchema, description: 'Newest first.' },
    notes: texts,
    verdict: {
      type: 'object',
      properties: {
        kind: { type: 'string', enum: ['unknown-user', 'no-devices', 'devices'] },
        pinged: { type: 'boolean' },
        sources: texts,
        lastPingAt: epochMs('The last ping'),
        lastPingId: text,
        notPinged: {
          type: 'array',
          items: { type: 'object', properties: { source: text, rule: text, at: { type: 'integer' }, text } },
        },
        lines: { ...texts, description: 'One line per device, or one for the user.' },
      },
    },
  },
} as const;

const tokenParts = {
  querystring: { type: 'object', properties: { api_token: { type: 'string', description: 'When not in the header.' } } },
  headers: { type: 'object', properties: { [API_TOKEN_HEADER]: { type: 'string' } } },
} as const;

const commonAnswers = {
  400: { description: 'An invalid parameter (named in `field`).', ...errorSchema },
  422: { description: 'No API token provided / Invalid/missing API user.', ...errorSchema },
  503: { description: 'Redis unreachable: the token or the history could not be read.', ...errorSchema },
} as const;

const limitQuery = {
  limit: { type: 'string', description: `How many, newest first (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT}).` },
} as const;

export const historyRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  // Every route here needs the API token, as the ping route does.
  app.addHook('preHandler', async (request, reply) => {
    const badQuery = queryError(request.query);
    if (badQuery) return sendError(reply, new RhopushError('QUERY_INVALID', { reason: badQuery.message }));
    const query = (request.query ?? {}) as Record<string, unknown>;
    const refused = await refuseToken(deps, request.headers[API_TOKEN_HEADER], query.api_token);
    if (refused) return sendError(reply, refused);
    reply.header('cache-control', 'no-store');
  });
  // The schemas document; the handlers check parameters themselves and name the one at fault.
  const document = { validatorCompiler: () => () => true };

  app.get(
    '/rc/v1/pings/:id',
    {
      ...document,
      schema: {
        summary: "One ping's record",
        description: 'The id is in every ping answer (REST, async REST, `ping()`, `rhopush ping`, queued jobs as `ping_id`).',
        tags: ['history'],
        params: { type: 'object', properties: { id: text } },
        ...tokenParts,
        response: {
          200: pingRecordSchema,
          404: { description: 'No such ping: unknown, its record expired, or history is off.', ...errorSchema },
          ...commonAnswers,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const history = deps.history;
      if (!history?.enabled) return sendError(reply, new RhopushError('PING_UNKNOWN', { id: shown(id), reason: historyOff() }));
      if (!PING_ID.test(id)) return sendError(reply, new RhopushError('PING_UNKNOWN', { id: shown(id), reason: 'this is not a ping id' }));
      const record = await read(deps, reply, () => history.get(id));
      if (record === null) return reply;
      if (!record) {
        const ttl = deps.settings().rhopush.historyTtlHours;
        return sendError(
          reply,
          new RhopushError('PING_UNKNOWN', {
            id,
            reason: `unknown, or its record expired (records are kept ${ttl} h: :history_ttl_hours:)`,
          }),
        );
      }
      return reply.send(record);
    },
  );

  app.get(
    '/rc/v1/pings',
    {
      ...document,
      schema: {
        summary: 'The latest pings',
        description: 'Every user, newest first.',
        tags: ['history'],
        querystring: { type: 'object', properties: { ...limitQuery, ...tokenParts.querystring.properties } },
        headers: tokenParts.headers,
        response: { 200: { type: 'object', properties: { pings: { type: 'array', items: pingRecordSchema } } }, ...commonAnswers },
      },
    },
    async (request, reply) => {
      const limit = limitOf(request, reply);
      if (limit === undefined) return reply;
      const pings = deps.history?.enabled ? await read(deps, reply, () => deps.history!.recent(limit)) : [];
      return pings === null ? reply : reply.send({ pings });
    },
  );

  app.get(
    '/rc/v1/users/:user_id/pings',
    {
      ...document,
      schema: {
        summary: "A user's pings",
        description: 'Newest first, from the newest :history_per_user: kept for :history_ttl_hours:.',
        tags: ['history'],
        params: { type: 'object', properties: { user_id: text } },
        querystring: { type: 'object', properties: { ...limitQuery, ...tokenParts.querystring.properties } },
        headers: tokenParts.headers,
        response: {
          200: { type: 'object', properties: { user: text, pings: { type: 'array', items: pingRecordSchema } } },
          ...commonAnswers,
        },
      },
    },
    async (request, reply) => {
      const { user_id: user } = request.params as { user_id: string };
      const limit = limitOf(request, reply);
      if (limit === undefined) return reply;
      const pings = deps.history?.enabled ? await read(deps, reply, () => deps.history!.forUser(user, limit)) : [];
      return pings === null ? reply : reply.send({ user, pings });
    },
  );

  app.get(
    '/rc/v1/users/:user_id/why',
    {
      ...document,
      schema: {
        summary: 'Why a user’s devices were or were not pinged',
        description:
          'The same explanation as `rhopush why`: devices, dead tokens, captured changes and the rule that decided each, ' +
          "pings and each device's outcome, what settings.yml says about each source, and a verdict per device.",
        tags: ['history'],
        params: { type: 'object', properties: { user_id: text } },
        querystring: {
          type: 'object',
          properties: {
            source: { type: 'string', description: 'Only this source.' },
            since: { type: 'string', description: 'A duration back from now (`90s`, `15m`, `1h`, `2d`) or a date and time.' },
            tz: { type: 'string', description: 'IANA time zone for the times in the verdict lines (default: the server’s).' },
            ...tokenParts.querystring.properties,
          },
        },
        headers: tokenParts.headers,
        response: { 200: whySchema, ...commonAnswers },
      },
    },
    async (request, reply) => {
      const { user_id: user } = request.params as { user_id: string };
      const query = (request.query ?? {}) as Record<string, unknown>;
      const options: WhyOptions = {};
      for (const [name, value] of Object.entries({ source: query.source, since: query.since, tz: query.tz })) {
        if (value === undefined || value === '') continue;
        if (typeof value !== 'string') return invalid(reply, name, 'expected one value');
        if (name === 'source') options.source = value;
        if (name === 'since') {
          const since = parseSince(value);
          if (since === undefined) return invalid(reply, 'since', 'expected a duration (90s, 15m, 1h, 2d) or a date and time');
          options.since = since;
        }
        if (name === 'tz') {
          if (!isTimeZone(value)) return invalid(reply, 'tz', 'expected an IANA time zone such as Europe/Paris');
          options.timeZone = value;
        }
      }
      const why = deps.why;
      if (!why) return sendError(reply, new RhopushError('NO_ROUTE', { method: 'GET', path: request.url.split('?')[0]!.slice(0, 200) }));
      const report = await read(deps, reply, () => why(user, options));
      return report === null ? reply : reply.send(report);
    },
  );
};

function historyOff(): string {
  return 'history is off (:history_ttl_hours: 0), so no ping is recorded';
}

function shown(id: string): string {
  return id.length > 80 ? `${id.slice(0, 80)}…` : id;
}

function invalid(reply: FastifyReply, field: string, reason: string): FastifyReply {
  return sendError(reply, new RhopushError('PARAMS_INVALID', { field, reason }, { field }));
}

/** `limit` from the query string; undefined once an error has been answered. */
function limitOf(request: FastifyRequest, reply: FastifyReply): number | undefined {
  const value = ((request.query ?? {}) as Record<string, unknown>).limit;
  if (value === undefined || value === '') return DEFAULT_LIMIT;
  const n = typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
    invalid(reply, 'limit', `expected a whole number from 1 to ${MAX_LIMIT}`);
    return undefined;
  }
  return n;
}

/**
 * Reads from Redis, answering 503 at once while it is unreachable (a command would wait in the
 * connection's queue until it is back). Null once an error has been answered.
 */
async function read<T>(deps: ApiDeps, reply: FastifyReply, work: () => Promise<T>): Promise<T | null> {
  const down = deps.redisUnavailable?.();
  if (down) {
    sendError(reply, new RhopushError('HISTORY_UNREAD', { reason: down }));
    return null;
  }
  try {
    return await work();
  } catch (err) {
    sendError(reply, new RhopushError('HISTORY_UNREAD', { reason: (err as Error).message }));
    return null;
  }
}
