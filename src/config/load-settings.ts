import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Document, type Node } from 'yaml';
import {
  RHOPUSH_DEFAULTS,
  hasPushCredentials,
  type AppleCertificate,
  type ApnsSettings,
  type PartitionType,
  type RedisEndpoint,
  type RhopushSettings,
  type Settings,
  type SourcePolicy,
} from './settings.js';
import { SettingsError, SettingsWarning } from './settings-error.js';

export interface LoadSettingsOptions {
  /** Environment section (`:development:` ...). Defaults to RACK_ENV, then development. */
  environment?: string;
  /** Process environment for REDIS_URL, API_TOKEN, RACK_ENV, LOG_LEVEL. */
  env?: NodeJS.ProcessEnv;
}

/** Reads settings.yml the way RhoConnect does. Throws SettingsError naming file, key and expectation. */
export function loadSettings(file: string, options: LoadSettingsOptions = {}): Settings {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SettingsError(path, undefined, `cannot read the file (${(err as Error).message})`);
  }
  return parseSettings(text, path, options);
}

type Raw = Record<string, unknown>;

/** RhoConnect writes keys as Ruby symbols (`:push_notify:`), which YAML reads as ":push_notify". */
export function normaliseKey(key: string): string {
  return key.startsWith(':') ? key.slice(1) : key;
}

function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Raw = {};
    for (const [k, v] of Object.entries(value as Raw)) out[normaliseKey(k)] = normalise(v);
    return out;
  }
  return value;
}

/**
 * Every key rhopush reads under `:rhopush:` (and in its nested sections). These are rhopush's own,
 * so a key not listed here is a typo: it is reported as a warning with the nearest known name.
 */
export const RHOPUSH_KEYS = {
  rhopush: [
    'listen',
    'coalesce_ms',
    'max_delay_ms',
    'delivery',
    'apns',
    'fcm',
    'rhoconnect_push',
    'retry',
    'cluster',
    'max_users_per_ping',
    'queues',
    'worker_concurrency',
    'log_level',
    'canary_interval_ms',
    'canary_timeout_ms',
    'lease_ms',
    'dead_token_ttl_days',
    'feedback_max_len',
    'http_request_timeout_ms',
    'history_ttl_hours',
    'history_per_user',
  ],
  apns: [
    'token_key',
    'key_id',
    'team_id',
    'topic',
    'production',
    'address',
    'port',
    'ca',
    'connections',
    'max_concurrent_streams',
    'request_timeout_ms',
    'ping_interval_ms',
  ],
  fcm: ['service_account', 'address', 'port', 'ca', 'connections', 'request_timeout_ms'],
  rhoconnect_push: ['connections', 'request_timeout_ms'],
  retry: ['attempts', 'base_ms', 'max_ms', 'total_ms'],
} as const;

/**
 * Reads settings.yml text. Throws one SettingsError listing every problem found (each with its
 * file, line, key and what was expected); warnings (unknown `:rhopush:` keys) are in `warnings`.
 */
export function parseSettings(text: string, file = '<inline>', options: LoadSettingsOptions = {}): Settings {
  const env = options.env ?? process.env;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw SettingsError.combine(
      doc.errors.map((e) => {
        // linePos is only filled in with prettyErrors; the offset is always there.
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        return new SettingsError(file, undefined, `invalid YAML: ${e.message.split('\n')[0]}`, pos?.line, pos?.col);
      }),
    );
  }
  const root = normalise(doc.toJS({ maxAliasCount: 100 }) ?? {});
  const at = new Locator(file, doc, lines);
  if (!isObject(root)) throw at.error([], 'a mapping with :sources: and environment sections', root);

  const environment = options.environment ?? env.RACK_ENV ?? env.RHO_ENV ?? 'development';
  const envSection = root[environment] ?? (environment in root ? {} : undefined);
  if (envSection === undefined) {
    throw at.error([environment], `an environment section :${environment}: (chosen by --env or RACK_ENV)`, undefined);
  }
  if (!isObject(envSection)) throw at.error([environment], 'a mapping', envSection);

  const defaultValue = envSection.push_notify_default ?? envSection.push_notify;
  const defaultPushNotify = defaultValue === undefined ? false : at.flag([environment, 'push_notify'], defaultValue);

  const sources = new Map<string, SourcePolicy>();
  const rawSources = root.sources ?? {};
  for (const [name, cfg] of Object.entries(at.mapping(['sources'], rawSources, 'a mapping of source names to their settings'))) {
    const sc = cfg === null || cfg === undefined ? {} : at.mapping(['sources', name], cfg);
    const forceDefault = sc.force_default !== undefined && at.flag(['sources', name, 'force_default'], sc.force_default);
    const own = sc.push_notify;
    const pushNotify =
      own === undefined || own === null || (forceDefault && defaultValue !== undefined)
        ? defaultPushNotify
        : at.flag(['sources', name, 'push_notify'], own);
    sources.set(name, {
      name,
      pushNotify,
      partitionType: at.partition(['sources', name, 'partition_type'], sc.partition_type),
      listed: true,
    });
  }

  const redisUrl = env.REDIS_URL?.trim();
  let redis: RedisEndpoint[] = [];
  if (redisUrl) {
    try {
      redis = [parseRedisUrl(redisUrl, file)];
    } catch (err) {
      at.report(err as SettingsError);
    }
  } else {
    redis = at.redisList([environment, 'redis'], envSection.redis ?? 'localhost:6379');
  }

  const push = {
    iphoneCertFile: at.optString([environment, 'iphonecertfile'], envSection.iphonecertfile),
    iphonePassphrase: at.optString([environment, 'iphonepassphrase'], envSection.iphonepassphrase),
    iphoneServer: at.optString([environment, 'iphoneserver'], envSection.iphoneserver),
    iphonePort: at.optInt([environment, 'iphoneport'], envSection.iphoneport),
    iphoneCertificates: at.certificates([environment, 'iphonecertificates'], envSection.iphonecertificates),
    fcmProjectId: at.optString([environment, 'fcm_project_id'], envSection.fcm_project_id),
    packageName: at.optString([environment, 'package_name'], envSection.package_name),
    pushServer: at.optString([environment, 'push_server'], envSection.push_server),
  };

  const base = [environment, 'rhopush'];
  const rp = at.mapping(base, envSection.rhopush ?? {});
  const rhopush = readRhopushSection(at, base, rp, env);
  const delivery =
    rp.delivery === undefined
      ? hasPushCredentials(push, rhopush.apns, rhopush.fcm)
        ? 'live'
        : 'log'
      : (at.oneOf([...base, 'delivery'], rp.delivery, ['live', 'log'] as const) ?? 'log');

  const apiToken = env.API_TOKEN?.trim() || at.optString([environment, 'api_token'], envSection.api_token);

  if (rhopush.cluster) {
    for (const endpoint of redis) {
      if (endpoint.db !== 0) {
        at.fail([environment, 'redis'], `database 0 with :rhopush: :cluster: true (Redis Cluster has only database 0)`, endpoint.label);
        break;
      }
    }
  }
  if (rhopush.coalesceMs > rhopush.maxDelayMs) {
    // The window closes at the earlier of the two, so a longer quiet period would never apply:
    // every ping would wait the whole :max_delay_ms:. Refused, as it is surely not what was meant.
    const explicit = rp.coalesce_ms !== undefined;
    at.fail(
      [...base, explicit ? 'coalesce_ms' : 'max_delay_ms'],
      `:coalesce_ms: (${rhopush.coalesceMs}${explicit ? '' : ', the default'}) at most :max_delay_ms: (${rhopush.maxDelayMs}): a quiet period longer than the longest wait would never apply`,
      explicit ? rp.coalesce_ms : rp.max_delay_ms,
    );
  }

  at.throwIfAny();
  return {
    file,
    environment,
    redis,
    apiToken,
    defaultPushNotify,
    sources,
    push,
    rhopush: { ...rhopush, delivery },
    raw: envSection,
    warnings: at.warnings,
  };
}

function readRhopushSection(at: Locator, base: string[], rp: Raw, env: NodeJS.ProcessEnv): Omit<RhopushSettings, 'delivery'> {
  const d = RHOPUSH_DEFAULTS;
  at.unknownKeys(base, rp, RHOPUSH_KEYS.rhopush);
  const a = [...base, 'apns'];
  const f = [...base, 'fcm'];
  const rcp = [...base, 'rhoconnect_push'];
  const r = [...base, 'retry'];
  const apnsRaw = at.mapping(a, rp.apns ?? {});
  const fcmRaw = at.mapping(f, rp.fcm ?? {});
  const rcpRaw = at.mapping(rcp, rp.rhoconnect_push ?? {});
  const retryRaw = at.mapping(r, rp.retry ?? {});
  at.unknownKeys(a, apnsRaw, RHOPUSH_KEYS.apns);
  at.unknownKeys(f, fcmRaw, RHOPUSH_KEYS.fcm);
  at.unknownKeys(rcp, rcpRaw, RHOPUSH_KEYS.rhoconnect_push);
  at.unknownKeys(r, retryRaw, RHOPUSH_KEYS.retry);
  const apns: ApnsSettings = {
    tokenKey: at.optString([...a, 'token_key'], apnsRaw.token_key),
    keyId: at.optString([...a, 'key_id'], apnsRaw.key_id),
    teamId: at.optString([...a, 'team_id'], apnsRaw.team_id),
    topic: at.optString([...a, 'topic'], apnsRaw.topic),
    production: apnsRaw.production === undefined ? undefined : at.strictFlag([...a, 'production'], apnsRaw.production),
    address: at.optString([...a, 'address'], apnsRaw.address),
    port: at.optInt([...a, 'port'], apnsRaw.port),
    ca: at.optString([...a, 'ca'], apnsRaw.ca),
    connections: at.int([...a, 'connections'], apnsRaw.connections, d.apns.connections, 1),
    maxConcurrentStreams: at.int([...a, 'max_concurrent_streams'], apnsRaw.max_concurrent_streams, d.apns.maxConcurrentStreams, 1),
    requestTimeoutMs: at.int([...a, 'request_timeout_ms'], apnsRaw.request_timeout_ms, d.apns.requestTimeoutMs, 1),
    pingIntervalMs: at.int([...a, 'ping_interval_ms'], apnsRaw.ping_interval_ms, d.apns.pingIntervalMs, 100),
  };
  const queues = rp.queues === undefined ? d.queues : (at.stringList([...base, 'queues'], rp.queues) ?? d.queues);
  const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
  return {
    listen: at.listen([...base, 'listen'], rp.listen, d.listen),
    coalesceMs: at.int([...base, 'coalesce_ms'], rp.coalesce_ms, d.coalesceMs, 0),
    maxDelayMs: at.int([...base, 'max_delay_ms'], rp.max_delay_ms, d.maxDelayMs, 0),
    apns,
    fcm: {
      serviceAccount: at.optString([...f, 'service_account'], fcmRaw.service_account),
      address: at.optString([...f, 'address'], fcmRaw.address),
      port: at.optInt([...f, 'port'], fcmRaw.port),
      ca: at.optString([...f, 'ca'], fcmRaw.ca),
      connections: at.int([...f, 'connections'], fcmRaw.connections, d.fcm.connections, 1),
      requestTimeoutMs: at.int([...f, 'request_timeout_ms'], fcmRaw.request_timeout_ms, d.fcm.requestTimeoutMs, 1),
    },
    rhoconnectPush: {
      requestTimeoutMs: at.int([...rcp, 'request_timeout_ms'], rcpRaw.request_timeout_ms, d.rhoconnectPush.requestTimeoutMs, 1),
      connections: at.int([...rcp, 'connections'], rcpRaw.connections, d.rhoconnectPush.connections, 1),
    },
    retry: {
      attempts: at.int([...r, 'attempts'], retryRaw.attempts, d.retry.attempts, 1),
      baseMs: at.int([...r, 'base_ms'], retryRaw.base_ms, d.retry.baseMs, 0),
      maxMs: at.int([...r, 'max_ms'], retryRaw.max_ms, d.retry.maxMs, 0),
      totalMs: at.int([...r, 'total_ms'], retryRaw.total_ms, d.retry.totalMs, 0),
    },
    // rhopush's own flags take true or false only: RhoConnect's "anything else is off" would turn a
    // typo (`:cluster: ture`) silently into false.
    cluster: rp.cluster === undefined ? d.cluster : (at.strictFlag([...base, 'cluster'], rp.cluster) ?? d.cluster),
    maxUsersPerPing: at.int([...base, 'max_users_per_ping'], rp.max_users_per_ping, d.maxUsersPerPing, 1),
    queues,
    workerConcurrency: at.int([...base, 'worker_concurrency'], rp.worker_concurrency, d.workerConcurrency, 1),
    logLevel: env.LOG_LEVEL?.trim() || (at.oneOf([...base, 'log_level'], rp.log_level ?? d.logLevel, logLevels) ?? d.logLevel),
    canaryIntervalMs: at.int([...base, 'canary_interval_ms'], rp.canary_interval_ms, d.canaryIntervalMs, 0),
    canaryTimeoutMs: at.int([...base, 'canary_timeout_ms'], rp.canary_timeout_ms, d.canaryTimeoutMs, 1),
    leaseMs: at.int([...base, 'lease_ms'], rp.lease_ms, d.leaseMs, 100),
    deadTokenTtlDays: at.int([...base, 'dead_token_ttl_days'], rp.dead_token_ttl_days, d.deadTokenTtlDays, 1),
    feedbackMaxLen: at.int([...base, 'feedback_max_len'], rp.feedback_max_len, d.feedbackMaxLen, 1),
    httpRequestTimeoutMs: at.int([...base, 'http_request_timeout_ms'], rp.http_request_timeout_ms, d.httpRequestTimeoutMs, 1),
    historyTtlHours: at.int([...base, 'history_ttl_hours'], rp.history_ttl_hours, d.historyTtlHours, 0),
    historyPerUser: at.int([...base, 'history_per_user'], rp.history_per_user, d.historyPerUser, 1),
  };
}

function isObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** `host:port[:db[:password]]`, RhoConnect's form; `redis://` URLs are accepted too. */
export function parseRedisSpec(spec: string, file: string, keyPath: string[] = []): RedisEndpoint {
  const s = spec.trim();
  if (/^rediss?:\/\//i.test(s)) return parseRedisUrl(s, file);
  const parts = s.split(':');
  const host = parts[0] || 'localhost';
  const port = parts[1] === undefined || parts[1] === '' ? 6379 : Number(parts[1]);
  const db = parts[2] === undefined || parts[2] === '' ? 0 : Number(parts[2]);
  const password = parts.length > 3 ? parts.slice(3).join(':') : undefined;
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || !Number.isInteger(db) || db < 0) {
    throw new SettingsError(file, keyPath, `expected host:port[:db[:password]] (got ${JSON.stringify(spec)})`);
  }
  return { host, port, db, password: password || undefined, label: `${host}:${port}${db ? `/${db}` : ''}` };
}

function parseRedisUrl(url: string, file: string): RedisEndpoint {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SettingsError(file, ['REDIS_URL'], `expected a redis:// URL (got ${JSON.stringify(url)})`);
  }
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw new SettingsError(file, ['REDIS_URL'], `expected a database number in the path (got ${u.pathname})`);
  return {
    host: u.hostname || 'localhost',
    port: u.port ? Number(u.port) : 6379,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:',
    label: `${u.hostname}:${u.port || 6379}${db ? `/${db}` : ''}`,
  };
}

/**
 * Validates values and reports problems with the YAML line of the offending key. A bad value is
 * recorded and replaced by its default, so that one reading finds every problem in the file;
 * `throwIfAny` then throws them all at once.
 */
class Locator {
  private readonly problems: SettingsError[] = [];
  readonly warnings: SettingsWarning[] = [];

  constructor(
    private readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  error(path: string[], expected: string, got: unknown): SettingsError {
    const pos = this.position(path);
    const shown = got === undefined ? 'nothing' : JSON.stringify(got);
    return new SettingsError(this.file, path, `expected ${expected} (got ${shown})`, pos?.line, pos?.col);
  }

  /** Records a problem and goes on reading. */
  fail(path: string[], expected: string, got: unknown): undefined {
    this.problems.push(this.error(path, expected, got));
    return undefined;
  }

  report(err: SettingsError): void {
    this.problems.push(err);
  }

  /** Throws every problem recorded, in the order of their lines. */
  throwIfAny(): void {
    if (this.problems.length === 0) return;
    const byLine = [...this.problems].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0));
    throw SettingsError.combine(byLine);
  }

  /** Warns about keys of rhopush's own sections that it does not read, naming the nearest known one. */
  unknownKeys(path: string[], section: Raw, known: readonly string[]): void {
    for (const key of Object.keys(section)) {
      if (known.includes(key)) continue;
      const near = nearest(key, known);
      const pos = this.position([...path, key]);
      const hint = near ? `did you mean :${near}:?` : `known keys: ${known.map((k) => `:${k}:`).join(', ')}`;
      this.warnings.push(
        new SettingsWarning(this.file, [...path, key], `is not a rhopush setting and is ignored; ${hint}`, pos?.line, pos?.col),
      );
    }
  }

  /** Finds the node for a normalised key path, whichever key style the file used. */
  private position(path: string[]): { line: number; col: number } | undefined {
    let node: unknown = this.doc.contents;
    let found: Node | undefined;
    for (const key of path) {
      if (!isMap(node)) break;
      const pair = node.items.find((p) => isScalar(p.key) && normaliseKey(String(p.key.value)) === key);
      if (!pair) break;
      found = (pair.value as Node | null) ?? (pair.key as Node);
      if (isScalar(pair.value) || isSeq(pair.value) || !pair.value) found = pair.key as Node;
      node = pair.value;
    }
    const offset = found?.range?.[0];
    return offset === undefined ? undefined : this.lines.linePos(offset);
  }

  mapping(path: string[], v: unknown, expected = 'a mapping'): Raw {
    if (isObject(v)) return v;
    this.fail(path, expected, v);
    return {};
  }

  /** RhoConnect: only a value whose string form is `true` turns a flag on. */
  flag(path: string[], v: unknown): boolean {
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string' || typeof v === 'number') return String(v).trim() === 'true';
    this.fail(path, "'true' or 'false'", v);
    return false;
  }

  /** rhopush's own flags: true or false (or their strings), nothing else. */
  strictFlag(path: string[], v: unknown): boolean | undefined {
    if (typeof v === 'boolean') return v;
    const s = typeof v === 'string' ? v.trim() : undefined;
    if (s === 'true' || s === 'false') return s === 'true';
    return this.fail(path, 'true or false', v);
  }

  partition(path: string[], v: unknown): PartitionType {
    if (v === undefined || v === null) return 'user';
    const s = typeof v === 'string' ? normaliseKey(v.trim()) : v;
    if (s === 'user' || s === 'app') return s;
    this.fail(path, 'user or app', v);
    return 'user';
  }

  optString(path: string[], v: unknown): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return this.fail(path, 'a string', v);
  }

  optInt(path: string[], v: unknown): number | undefined {
    if (v === undefined || v === null || v === '') return undefined;
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n === 'number' && Number.isInteger(n)) return n;
    return this.fail(path, 'a whole number', v);
  }

  int(path: string[], v: unknown, fallback: number, min: number): number {
    const before = this.problems.length;
    const n = this.optInt(path, v) ?? fallback;
    if (this.problems.length > before) return fallback;
    if (n < min) {
      this.fail(path, `a whole number of at least ${min}`, v);
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(path: string[], v: unknown, allowed: readonly T[]): T | undefined {
    const s = typeof v === 'string' ? normaliseKey(v.trim()) : v;
    if (typeof s === 'string' && (allowed as readonly string[]).includes(s)) return s as T;
    return this.fail(path, `one of ${allowed.join(', ')}`, v);
  }

  stringList(path: string[], v: unknown): string[] | undefined {
    const list = typeof v === 'string' ? v.split(',') : v;
    if (Array.isArray(list) && list.length > 0 && list.every((x) => typeof x === 'string' && x.trim())) {
      return list.map((x: string) => x.trim());
    }
    return this.fail(path, 'a non-empty list of names', v);
  }

  redisList(path: string[], v: unknown): RedisEndpoint[] {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) {
      this.fail(path, 'host:port[:db[:password]] or a list of them', v);
      return [];
    }
    const out: RedisEndpoint[] = [];
    for (const [i, item] of list.entries()) {
      if (typeof item !== 'string') {
        this.fail(path, 'host:port[:db[:password]] or a list of them', v);
        return [];
      }
      try {
        out.push(parseRedisSpec(item, this.file, Array.isArray(v) ? [...path, String(i)] : path));
      } catch {
        this.fail(path, 'host:port[:db[:password]] with a valid port and db', item);
      }
    }
    return out;
  }

  listen(path: string[], v: unknown, fallback: { host: string; port: number }): { host: string; port: number } {
    if (v === undefined || v === null) return fallback;
    const s = String(v).trim();
    const m = /^(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(s);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 0 || port > 65535) {
      this.fail(path, 'host:port or a port number', v);
      return fallback;
    }
    return { host: m[1] || fallback.host, port };
  }

  certificates(path: string[], v: unknown): Record<string, AppleCertificate> {
    if (v === undefined || v === null) return {};
    if (!isObject(v)) {
      this.fail(path, 'a mapping from device_app_id to :iphonecertfile:/:iphonepassphrase:', v);
      return {};
    }
    const out: Record<string, AppleCertificate> = {};
    for (const [appId, cfg] of Object.entries(v)) {
      if (!isObject(cfg) || typeof cfg.iphonecertfile !== 'string') {
        this.fail([...path, appId], 'a mapping with :iphonecertfile:', cfg);
        continue;
      }
      out[appId] = { certFile: cfg.iphonecertfile, passphrase: this.optString([...path, appId, 'iphonepassphrase'], cfg.iphonepassphrase) };
    }
    return out;
  }
}

/** The known name closest to a misspelt one (edit distance), or undefined when none is close. */
export function nearest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  // Close enough to be a slip of the keyboard, or the known name contains it (`coalesce` → `coalesce_ms`).
  const contained = best !== undefined && (best.includes(word) || word.includes(best));
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) || contained ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
