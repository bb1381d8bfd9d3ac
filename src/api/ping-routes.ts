// RhoConnect's ping API: POST /rc/v1/users/ping and its deprecated aliases, with RhoConnect's token
// check, JSON and form bodies, and the `async` parameter that queues a Resque job instead.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { normalizePingParams, PingParamsError, type NormalizedPing } from '../ping/ping-params.js';
import type { PingResult } from '../ping/ping-job.js';
import type { EnqueuedPing } from '../queue/resque-queue.js';
import { API_TOKEN_HEADER, headerHasConfiguredToken, refuseToken } from './auth.js';
import { queryError } from './form-body.js';
import { RhopushError } from '../errors.js';
import { sendError, type ApiDeps } from './deps.js';

export const PING_PATH = '/rc/v1/users/ping';

/** The header RhoConnect adds to answers on a deprecated route, word for word. */
export function deprecationWarning(path: string): string {
  return `Use of the POST ${path} is deprecated. Use Rhoconnect API v1 instead.`;
}

/**
 * The seed document's .NET example builds its URL as "/rc/v1/users /ping"; .NET sends the space as
 * %20. RhoConnect answers that with 404, but the example is what .NET backends copied, so rhopush
 * serves the path as an alias and says in a Warning header which path to use.
 */
export const DOTNET_EXAMPLE_PATH = '/rc/v1/users /ping';
export const DOTNET_EXAMPLE_WARNING = `POST /rc/v1/users%20/ping is not a RhoConnect route; use POST ${PING_PATH}.`;

interface PingRoute {
  path: string;
  warning?: string;
  deprecated?: boolean;
  hide?: boolean;
}

const ROUTES: PingRoute[] = [
  { path: PING_PATH },
  { path: '/api/ping', warning: deprecationWarning('/api/ping'), deprecated: true },
  { path: '/api/client/ping', warning: deprecationWarning('/api/client/ping'), deprecated: true },
  { path: DOTNET_EXAMPLE_PATH, warning: DOTNET_EXAMPLE_WARNING, hide: true },
];

/** `async` queues the ping unless it is absent or false, "false", 0 or "0" (or empty). */
export function wantsAsync(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0) return false;
  if (typeof value === 'string') return !['', 'false', '0'].includes(value.trim().toLowerCase());
  return true;
}

// The schemas describe the API in /docs/json. Requests are checked by normalizePingParams instead of
// the schema validator, which would coerce loosely typed values and name fields less clearly.
const nameOrNames = {
  oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
} as const;
const textOrNumber = { oneOf: [{ type: 'string' }, { type: 'number' }] } as const;

export const pingBodySchema = {
  type: 'object',
  properties: {
    user_id: { ...nameOrNames, description: 'Login, or a list of logins, whose devices are pinged.' },
    sources: { ...nameOrNames, description: "Sources to sync: a list, a comma-separated string, or 'all'." },
    source_id: { ...nameOrNames, description: 'Alias of `sources`.' },
    message: { ...textOrNumber, description: 'Alert text.' },
    badge: { ...textOrNumber, description: 'Badge number (APNs).' },
    sound: { ...textOrNumber, description: 'Sound file to play.' },
    vibrate: { ...textOrNumber, description: 'Vibrate duration.' },
    async: { description: 'Queue the ping as a Resque job and answer at once (anything but false, "false", 0).' },
    api_token: { type: 'string', description: 'API token, when not sent in the X-RhoConnect-API-TOKEN header.' },
  },
  required: ['user_id'],
} as const;

const pushSchema = {
  type: 'object',
  properties: {
    platform: { type: 'string' },
    user: { type: 'string' },
    clientId: { type: 'string' },
    token: { type: 'string', description: 'Shortened device token.' },
    outcome: { type: 'string', enum: ['sent', 'logged', 'failed', 'dead', 'skipped-dead', 'dropped'] },
    reason: { type: 'string' },
    retries: { type: 'integer' },
  },
} as const;

const summaryProperties = {
  id: { type: 'string', description: "The ping's id: GET /rc/v1/pings/{id} shows its record (for an async ping, once queued)." },
  users: { type: 'array', items: { type: 'string' } },
  sources: { type: 'array', items: { type: 'string' } },
  pushes: { type: 'array', items: pushSchema },
  outcomes: { type: 'object', additionalProperties: { type: 'integer' }, description: 'Device pushes by outcome.' },
  skippedUsers: { type: 'array', items: { type: 'string' }, description: 'Unknown users and users without registered devices.' },
  errors: { type: 'array', items: { type: 'string' } },
} as const;

const errorSchema = {
  type: 'object',
  properties: {
    error: { type: 'string' },
    field: { type: 'string', description: 'The parameter at fault.' },
  },
  required: ['error'],
} as const;

const routeSchema = {
  summary: 'Ping the devices of one or more users',
  description:
    "RhoConnect's ping: every registered device of the users gets a push that makes the app sync the sources. " +
    'The token must be the configured :api_token: or the token of an admin user.',
  consumes: ['application/json', 'application/x-www-form-urlencoded'],
  body: pingBodySchema,
  querystring: { type: 'object', properties: { api_token: { type: 'string' } } },
  headers: { type: 'object', properties: { [API_TOKEN_HEADER]: { type: 'string' } } },
  response: {
    200: {
      description: 'Pinged (the summary of device pushes), or queued when `async` is set.',
      type: 'object',
      properties: {
        ...summaryProperties,
        queued: { type: 'boolean' },
        queue: { type: 'string', description: 'Resque queue the job went to (async).' },
      },
    },
    400: { description: 'Invalid parameters (the field is named), or too many users.', ...errorSchema },
    413: { description: 'Body larger than 1 MiB.', ...errorSchema },
    415: { description: 'Neither JSON nor form-encoded.', ...errorSchema },
    422: { description: "No API token provided / Invalid/missing API user (RhoConnect's answers).", ...errorSchema },
    503: {
      description: 'Redis unreachable: the token could not be checked, or the ping not sent or queued (the reason says which).',
      ...errorSchema,
    },
    500: {
      description: 'Some device pushes failed: every message, and the whole summary.',
      type: 'object',
      properties: { error: { type: 'string' }, ...summaryProperties },
      required: ['error'],
    },
  },
};

export const pingRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  for (const route of ROUTES) {
    app.post(
      route.path,
      {
        schema: { ...routeSchema, ...(route.deprecated ? { deprecated: true } : {}), ...(route.hide ? { hide: true } : {}) },
        // The schemas document; normalizePingParams validates (see above).
        validatorCompiler: () => () => true,
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-cache');
        if (route.warning) reply.header('warning', route.warning);
        return handlePing(request, reply, deps);
      },
    );
  }
};

async function handlePing(request: FastifyRequest, reply: FastifyReply, deps: ApiDeps) {
  const badQuery = queryError(request.query);
  if (badQuery) return sendError(reply, new RhopushError('QUERY_INVALID', { reason: badQuery.message }));
  const query = (request.query ?? {}) as Record<string, unknown>;
  const body = request.body;
  const bodyIsObject = body !== null && typeof body === 'object' && !Array.isArray(body);
  // Sinatra's params: query string and body together, the body winning (no copy without a query).
  const params: Record<string, unknown> = !hasKeys(query)
    ? bodyIsObject
      ? (body as Record<string, unknown>)
      : {}
    : { ...query, ...(bodyIsObject ? (body as Record<string, unknown>) : {}) };

  const settings = deps.settings();
  const header = request.headers[API_TOKEN_HEADER];
  if (!headerHasConfiguredToken(settings.apiToken, header)) {
    const refused = await refuseToken(deps, header, params.api_token);
    if (refused) return sendError(reply, refused);
  }

  if (body !== undefined && body !== null && !bodyIsObject) {
    return sendError(reply, new RhopushError('BODY_NOT_OBJECT', {}, { field: 'body' }));
  }
  let ping: NormalizedPing;
  try {
    ping = normalizePingParams(params as never, { maxUsers: settings.rhopush.maxUsersPerPing });
  } catch (err) {
    if (err instanceof PingParamsError) return sendError(reply, err);
    throw err;
  }

  // While Redis is reconnecting, a command would wait in the connection's queue until it is back:
  // answer at once instead, saying why.
  const down = deps.redisUnavailable?.();
  if (down) {
    const what = wantsAsync(params.async) ? 'the ping was not queued' : 'the ping was not sent';
    return sendError(reply, new RhopushError('REDIS_UNAVAILABLE', { reason: down, what }));
  }
  if (wantsAsync(params.async)) {
    let queued: EnqueuedPing;
    try {
      queued = await deps.enqueue(ping);
    } catch (err) {
      return sendError(reply, new RhopushError('PING_NOT_QUEUED', { reason: (err as Error).message }));
    }
    return reply.code(200).send({ id: queued.id, queued: true, queue: queued.queue, users: ping.users, sources: ping.sources });
  }
  let result: PingResult;
  try {
    result = await deps.ping(ping, 'rest');
  } catch (err) {
    // Device push failures are in the result; a ping only throws when it cannot read users and clients.
    const gone = deps.redisUnavailable?.();
    if (gone) return sendError(reply, new RhopushError('REDIS_UNAVAILABLE', { reason: gone, what: 'the ping was not sent' }));
    return sendError(reply, new RhopushError('PING_UNREAD', { reason: (err as Error).message }));
  }
  const summary = summarize(result);
  if (result.errors.length > 0) return reply.code(500).send({ error: result.errors.join('\n'), ...summary });
  return reply.code(200).send(summary);
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

function summarize(result: PingResult) {
  const outcomes: Record<string, number> = {};
  for (const push of result.pushes) outcomes[push.outcome] = (outcomes[push.outcome] ?? 0) + 1;
  return {
    id: result.id,
    users: result.users,
    sources: result.sources,
    pushes: result.pushes,
    outcomes,
    skippedUsers: result.skippedUsers,
    errors: result.errors,
  };
}
