// RhoConnect's Redis key grammar (app name is always `application`).
// Logins may contain colons, spaces or any unicode, so user-scoped keys are parsed from the
// right: the source name and the fixed suffixes never contain a colon.

export const APP_NAME = 'application';
export const SHARED_PARTITION = '__shared__';

const SOURCE_PREFIX = `source:${APP_NAME}:`;
const CLIENT_DOC_PREFIX = `client:${APP_NAME}:`;
const MD_SIZE_SUFFIX = ':md_size';
const CD_SIZE_SUFFIX = ':cd_size';
/** rhopush's own namespace; RhoConnect never writes keys here. */
export const RHOPUSH_PREFIX = 'rhopush:';
export const CANARY_PREFIX = `${RHOPUSH_PREFIX}canary:`;

export type ParsedKey =
  /** `source:application:<partition>:<Source>:md_size`: object count of a master document. */
  | { kind: 'md_size'; partition: string; source: string }
  /** `client:application:<user>:<client_id>:<Source>:cd_size`: object count of a client document. */
  | { kind: 'cd_size'; user: string; clientId: string; source: string }
  /** `source:application:<Source>:<op>[:<queue_key>]`: a shared CUD queue (a sorted set of entries). */
  | { kind: 'cud_queue'; queue: string; source: string; op: CudOp }
  /** `<queue>:<score>:<client_id>:<Source>:<n>:indices`: one client's entry in a CUD queue. */
  | { kind: 'cud_entry'; queue: string; source: string; op: CudOp; clientId: string }
  /** `rhopush:canary:<id>`: rhopush's own liveness probe. */
  | { kind: 'canary'; id: string }
  | { kind: 'other' };

/** The CUD operations that move object counts (updates write neither cd_size nor md_size). */
export const CUD_OPS = ['create', 'delete'] as const;
export type CudOp = (typeof CUD_OPS)[number];

const OTHER: ParsedKey = { kind: 'other' };
/** The tail of a queue entry's index: `:<score>:<client_id>:<Source>:<n>:indices`. */
const CUD_ENTRY_TAIL = /:(\d+):([^:]+):([^:]+):(\d+):indices$/;
/** An entry's bucket (`...:<n>:<2 hex>`): deleted with its index, carries nothing new. */
const CUD_ENTRY_BUCKET = /:\d+:[^:]+:[^:]+:\d+:[0-9a-f]{2}$/;

/** Parses the keys rhopush subscribes to. Anything else, including malformed keys, is `other`. */
export function parseKey(key: string): ParsedKey {
  if (key.endsWith(MD_SIZE_SUFFIX) && key.startsWith(SOURCE_PREFIX)) {
    const middle = key.slice(SOURCE_PREFIX.length, -MD_SIZE_SUFFIX.length);
    const cut = middle.lastIndexOf(':');
    if (cut <= 0 || cut === middle.length - 1) return OTHER;
    return { kind: 'md_size', partition: middle.slice(0, cut), source: middle.slice(cut + 1) };
  }
  if (key.endsWith(CD_SIZE_SUFFIX) && key.startsWith(CLIENT_DOC_PREFIX)) {
    const middle = key.slice(CLIENT_DOC_PREFIX.length, -CD_SIZE_SUFFIX.length);
    const sourceCut = middle.lastIndexOf(':');
    const clientCut = sourceCut > 0 ? middle.lastIndexOf(':', sourceCut - 1) : -1;
    if (clientCut <= 0 || sourceCut === middle.length - 1 || sourceCut - clientCut < 2) return OTHER;
    return {
      kind: 'cd_size',
      user: middle.slice(0, clientCut),
      clientId: middle.slice(clientCut + 1, sourceCut),
      source: middle.slice(sourceCut + 1),
    };
  }
  if (key.startsWith(SOURCE_PREFIX)) return parseCudKey(key);
  if (key.startsWith(CANARY_PREFIX) && key.length > CANARY_PREFIX.length) {
    return { kind: 'canary', id: key.slice(CANARY_PREFIX.length) };
  }
  return OTHER;
}

/**
 * CUD queue keys: `source:application:<Source>:<op>` and, with a client's `queue_key`,
 * `...:<op>:<queue_key>`; entries append `:<score>:<client_id>:<Source>:<n>`. Source names are
 * Ruby class names (no colon), so the source and the operation are the first two fields.
 */
function parseCudKey(key: string): ParsedKey {
  const rest = key.slice(SOURCE_PREFIX.length);
  const first = rest.indexOf(':');
  if (first <= 0) return OTHER;
  const source = rest.slice(0, first);
  const second = rest.indexOf(':', first + 1);
  const op = rest.slice(first + 1, second < 0 ? undefined : second);
  if (!(CUD_OPS as readonly string[]).includes(op)) return OTHER;
  const cudOp = op as CudOp;
  const entry = CUD_ENTRY_TAIL.exec(key);
  if (entry) {
    const [tail, , clientId, entrySource] = entry;
    const queue = key.slice(0, key.length - tail!.length);
    if (entrySource !== source || queue.length < SOURCE_PREFIX.length + first + 1 + op.length) return OTHER;
    return { kind: 'cud_entry', queue, source, op: cudOp, clientId: clientId! };
  }
  if (CUD_ENTRY_BUCKET.test(key) || key.endsWith(':indices')) return OTHER;
  return { kind: 'cud_queue', queue: key, source, op: cudOp };
}

/** Keyspace patterns for the keys above, in one database. Only these are subscribed. */
export function keyspacePatterns(db: number): string[] {
  const ks = `__keyspace@${db}__:`;
  return [
    `${ks}${escapeGlob(SOURCE_PREFIX)}*${MD_SIZE_SUFFIX}`,
    `${ks}${escapeGlob(CLIENT_DOC_PREFIX)}*${CD_SIZE_SUFFIX}`,
    ...CUD_OPS.map((op) => `${ks}${escapeGlob(SOURCE_PREFIX)}*:${op}*`),
    `${ks}${escapeGlob(CANARY_PREFIX)}*`,
  ];
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

// Keys rhopush reads (never writes) to run a ping.
export const keys = {
  userExists: (login: string) => `user:${login}:rho__id`,
  userField: (login: string, field: string) => `user:${login}:${field}`,
  userClients: (login: string) => `user:${login}:clients`,
  clientField: (clientId: string, field: string) => `client:${clientId}:${field}`,
  apiTokenUser: (token: string) => `api_token:${token}:user_id`,
  masterDocIndices: (partition: string, source: string) => `${SOURCE_PREFIX}${partition}:${source}:md:indices`,
  masterDocBucket: (partition: string, source: string, bucket: string) => `${SOURCE_PREFIX}${partition}:${source}:md:${bucket}`,
  masterDocSize: (partition: string, source: string) => `${SOURCE_PREFIX}${partition}:${source}${MD_SIZE_SUFFIX}`,
  canary: (id: string) => `${CANARY_PREFIX}${id}`,
} as const;
