// Every error an operator or a caller acts on, in one registry: a code, one message (a template
// filled from named values) and, for the HTTP API, a status. The daemon, the API and `rhopush doctor`
// use the same entries, so a message is written once. RhoConnect's own messages are kept word for
// word where rhopush answers in its place.

interface ErrorEntry {
  message: string;
  /** HTTP status where the API answers with it. */
  status?: number;
  /** Process exit code where start-up stops with it (2: the setup needs correcting). */
  exit?: number;
}

export const ERRORS = {
  // --- configuration and start-up (exit 2) ---
  REDIS_DATABASE_MISSING: {
    message:
      'Redis {endpoint}: database {db} cannot be used{has}: {reason}. Correct the database number in :redis: (host:port:db) or REDIS_URL (redis://host:port/db)',
    exit: 2,
  },
  REDIS_UNREACHABLE_AT_START: {
    message: 'cannot connect to Redis {endpoint} ({reason}): start it or correct :redis: (or REDIS_URL); `rhopush doctor` checks the setup',
    exit: 2,
  },
  HTTP_LISTEN: {
    message: 'cannot serve the HTTP API on {address} ({reason}): correct :rhopush: :listen:, or stop what holds the port',
    exit: 2,
  },
  NOTIFY_FLAGS: {
    message:
      'Redis {node} does not send the keyspace notifications rhopush needs and refuses CONFIG SET ({reason}). Set notify-keyspace-events to "{wanted}" (currently "{current}") in that server\'s configuration (redis.conf: notify-keyspace-events {wanted}; on managed Redis, the notify-keyspace-events parameter), then start rhopush again.',
    exit: 2,
  },

  // --- delivery (a device push's reason; RhoConnect's message where it has one) ---
  APNS_NO_CREDENTIALS: { message: 'Missing `:iphonecertfile:` or `:rhopush: :apns: :token_key:` option in settings/settings.yml' },
  APNS_TOKEN_IDS: { message: 'Missing `:key_id:` or `:team_id:` next to `:rhopush: :apns: :token_key:` in settings/settings.yml' },
  APNS_NO_TOPIC: {
    message: 'Missing `:rhopush: :apns: :topic:` (the app bundle id) in settings/settings.yml, and the client has no device_app_id',
  },
  FCM_NO_PROJECT: { message: 'Missing `:fcm_project_id:` option in settings/settings.yml' },
  FCM_NO_PACKAGE: { message: 'Missing `:package_name:` option in settings/settings.yml' },
  PUSH_SERVER_INVALID: { message: 'Missing or invalid `:push_server` in settings/settings.yml.' },
  PUSH_REQUEST_INVALID: { message: 'Invalid push request.' },

  // --- the HTTP API (RhoConnect's 422 messages word for word) ---
  API_TOKEN_MISSING: { message: 'No API token provided', status: 422 },
  API_USER_INVALID: { message: 'Invalid/missing API user', status: 422 },
  API_TOKEN_UNCHECKED: { message: 'cannot check the API token: {reason}', status: 503 },
  REDIS_UNAVAILABLE: { message: '{reason}: {what}; try again once it is back', status: 503 },
  PING_UNREAD: { message: 'cannot read users and clients from Redis: {reason}', status: 503 },
  PING_NOT_QUEUED: { message: 'cannot queue the ping: {reason}', status: 503 },
  PARAMS_INVALID: { message: '{field}: {reason}', status: 400 },
  QUERY_INVALID: { message: 'query string: {reason}', status: 400 },
  FORM_INVALID: { message: '{field}: {reason}', status: 400 },
  BODY_NOT_OBJECT: { message: 'body: expected a JSON object or form fields', status: 400 },
  JSON_EMPTY: { message: "Body cannot be empty when content-type is set to 'application/json'", status: 400 },
  JSON_INVALID: { message: 'Body is not valid JSON: {reason}', status: 400 },
  JSON_KEY_REFUSED: {
    message:
      'body: the key "{key}" is refused: code that copies the body into objects could change their prototype with it (prototype poisoning); remove or rename it',
    status: 400,
  },
  NO_ROUTE: { message: 'no route {method} {path}', status: 404 },
  PING_UNKNOWN: { message: 'no ping {id}: {reason}', status: 404 },
  HISTORY_UNREAD: { message: 'cannot read the ping history from Redis: {reason}', status: 503 },
  CONSOLE_MISSING: { message: 'the console is not installed here: {dir} is missing', status: 404 },
  INTERNAL: { message: 'internal error: {reason}', status: 500 },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERRORS;

/** The message of `code` with its `{name}` placeholders filled. */
export function errorMessage(code: ErrorCode, values: Record<string, string | number> = {}): string {
  return ERRORS[code].message.replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));
}

/** An error from the registry: `code` names it, `status` and `exit` come with it. */
export class RhopushError extends Error {
  readonly status?: number;
  readonly exit?: number;

  constructor(
    readonly code: ErrorCode,
    values: Record<string, string | number> = {},
    /** Extra fields an API answer carries (e.g. the parameter at fault). */
    readonly detail: Record<string, unknown> = {},
  ) {
    super(errorMessage(code, values));
    this.name = 'RhopushError';
    const entry: ErrorEntry = ERRORS[code];
    this.status = entry.status;
    this.exit = entry.exit;
  }

  /** The JSON body of an API answer: `{ error, ...detail }`. */
  toJSON(): Record<string, unknown> {
    return { error: this.message, ...this.detail };
  }
}
