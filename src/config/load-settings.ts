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
import { SettingsError } from './settings-error.js';

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

export function parseSettings(text: string, file = '<inline>', options: LoadSettingsOptions = {}): Settings {
  const env = options.env ?? process.env;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    // linePos is only filled in with prettyErrors; the offset is always there.
    const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
    throw new SettingsError(file, undefined, `invalid YAML: ${e.message.split('\n')[0]}`, pos?.line, pos?.col);
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
  if (!isObject(rawSources)) throw at.error(['sources'], 'a mapping of source names to their settings', rawSources);
  for (const [name, cfg] of Object.entries(rawSources)) {
    const sc: Raw = cfg === null || cfg === undefined ? {} : isObject(cfg) ? cfg : {};
    if (cfg !== null && cfg !== undefined && !isObject(cfg)) throw at.error(['sources', name], 'a mapping', cfg);
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
  const redis = redisUrl
    ? [parseRedisUrl(redisUrl, file)]
    : at.redisList([environment, 'redis'], envSection.redis ?? 'localhost:6379');

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

  const rp = envSection.rhopush ?? {};
  if (!isObject(rp)) throw at.error([environment, 'rhopush'], 'a mapping', rp);
  const rhopush = readRhopushSection(at, [environment, 'rhopush'], rp, env);
  const delivery = rp.delivery === undefined
    ? hasPushCredentials(push, rhopush.apns, rhopush.fcm) ? 'live' : 'log'
    : at.oneOf([environment, 'rhopush', 'delivery'], rp.delivery, ['live', 'log'] as const);

  const apiToken = env.API_TOKEN?.trim() || at.optString([environment, 'api_token'], envSection.api_token);

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
  };
}

function readRhopushSection(at: Locator, base: string[], rp: Raw, env: NodeJS.ProcessEnv): Omit<RhopushSettings, 'delivery'> {
  const d = RHOPUSH_DEFAULTS;
  const apnsRaw = rp.apns ?? {};
  if (!isObject(apnsRaw)) throw at.error([...base, 'apns'], 'a mapping', apnsRaw);
  const fcmRaw = rp.fcm ?? {};
  if (!isObject(fcmRaw)) throw at.error([...base, 'fcm'], 'a mapping', fcmRaw);
  const retryRaw = rp.retry ?? {};
  if (!isObject(retryRaw)) throw at.error([...base, 'retry'], 'a mapping', retryRaw);
  const a = [...base, 'apns'];
  const apns: ApnsSettings = {
    tokenKey: at.optString([...a, 'token_key'], apnsRaw.token_key),
    keyId: at.optString([...a, 'key_id'], apnsRaw.key_id),
    teamId: at.optString([...a, 'team_id'], apnsRaw.team_id),
    topic: at.optString([...a, 'topic'], apnsRaw.topic),
    production: apnsRaw.production === undefined ? undefined : at.flag([...a, 'production'], apnsRaw.production),
    address: at.optString([...a, 'address'], apnsRaw.address),
    port: at.optInt([...a, 'port'], apnsRaw.port),
    ca: at.optString([...a, 'ca'], apnsRaw.ca),
    connections: at.int([...a, 'connections'], apnsRaw.connections, d.apns.connections, 1),
    maxConcurrentStreams: at.int([...a, 'max_concurrent_streams'], apnsRaw.max_concurrent_streams, d.apns.maxConcurrentStreams, 1),
    requestTimeoutMs: at.int([...a, 'request_timeout_ms'], apnsRaw.request_timeout_ms, d.apns.requestTimeoutMs, 1),
    pingIntervalMs: at.int([...a, 'ping_interval_ms'], apnsRaw.ping_interval_ms, d.apns.pingIntervalMs, 100),
  };
  const f = [...base, 'fcm'];
  const rcpRaw = rp.rhoconnect_push ?? {};
  if (!isObject(rcpRaw)) throw at.error([...base, 'rhoconnect_push'], 'a mapping', rcpRaw);
  const rcp = [...base, 'rhoconnect_push'];
  const r = [...base, 'retry'];
  const queues = rp.queues === undefined ? d.queues : at.stringList([...base, 'queues'], rp.queues);
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
    cluster: rp.cluster === undefined ? d.cluster : at.flag([...base, 'cluster'], rp.cluster),
    maxUsersPerPing: at.int([...base, 'max_users_per_ping'], rp.max_users_per_ping, d.maxUsersPerPing, 1),
    queues,
    workerConcurrency: at.int([...base, 'worker_concurrency'], rp.worker_concurrency, d.workerConcurrency, 1),
    logLevel:
      env.LOG_LEVEL?.trim() ||
      at.oneOf([...base, 'log_level'], rp.log_level ?? d.logLevel, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    canaryIntervalMs: at.int([...base, 'canary_interval_ms'], rp.canary_interval_ms, d.canaryIntervalMs, 0),
    canaryTimeoutMs: at.int([...base, 'canary_timeout_ms'], rp.canary_timeout_ms, d.canaryTimeoutMs, 1),
    leaseMs: at.int([...base, 'lease_ms'], rp.lease_ms, d.leaseMs, 100),
    deadTokenTtlDays: at.int([...base, 'dead_token_ttl_days'], rp.dead_token_ttl_days, d.deadTokenTtlDays, 1),
    feedbackMaxLen: at.int([...base, 'feedback_max_len'], rp.feedback_max_len, d.feedbackMaxLen, 1),
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
  if (!Number.isInteger(db) || db < 0) throw new SettingsError(file, ['REDIS_URL'], `expected a database number in the path (got ${u.pathname})`);
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

/** Validates values and reports errors with the YAML line of the offending key. */
class Locator {
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

  /** RhoConnect: only a value whose string form is `true` turns a flag on. */
  flag(path: string[], v: unknown): boolean {
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string' || typeof v === 'number') return String(v).trim() === 'true';
    throw this.error(path, "'true' or 'false'", v);
  }

  partition(path: string[], v: unknown): PartitionType {
    if (v === undefined || v === null) return 'user';
    const s = typeof v === 'string' ? normaliseKey(v.trim()) : v;
    if (s === 'user' || s === 'app') return s;
    throw this.error(path, 'user or app', v);
  }

  optString(path: string[], v: unknown): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw this.error(path, 'a string', v);
  }

  optInt(path: string[], v: unknown): number | undefined {
    if (v === undefined || v === null || v === '') return undefined;
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n === 'number' && Number.isInteger(n)) return n;
    throw this.error(path, 'a whole number', v);
  }

  int(path: string[], v: unknown, fallback: number, min: number): number {
    const n = this.optInt(path, v) ?? fallback;
    if (n < min) throw this.error(path, `a whole number of at least ${min}`, v);
    return n;
  }

  oneOf<T extends string>(path: string[], v: unknown, allowed: readonly T[]): T {
    const s = typeof v === 'string' ? normaliseKey(v.trim()) : v;
    if (typeof s === 'string' && (allowed as readonly string[]).includes(s)) return s as T;
    throw this.error(path, `one of ${allowed.join(', ')}`, v);
  }

  stringList(path: string[], v: unknown): string[] {
    const list = typeof v === 'string' ? v.split(',') : v;
    if (Array.isArray(list) && list.length > 0 && list.every((x) => typeof x === 'string' && x.trim())) {
      return list.map((x: string) => x.trim());
    }
    throw this.error(path, 'a non-empty list of names', v);
  }

  redisList(path: string[], v: unknown): RedisEndpoint[] {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) throw this.error(path, 'host:port[:db[:password]] or a list of them', v);
    return list.map((item, i) => {
      if (typeof item !== 'string') throw this.error(path, 'host:port[:db[:password]] or a list of them', v);
      try {
        return parseRedisSpec(item, this.file, Array.isArray(v) ? [...path, String(i)] : path);
      } catch (err) {
        throw this.error(path, 'host:port[:db[:password]] with a valid port and db', item);
      }
    });
  }

  listen(path: string[], v: unknown, fallback: { host: string; port: number }): { host: string; port: number } {
    if (v === undefined || v === null) return fallback;
    const s = String(v).trim();
    const m = /^(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(s);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 0 || port > 65535) throw this.error(path, 'host:port or a port number', v);
    return { host: m[1] || fallback.host, port };
  }

  certificates(path: string[], v: unknown): Record<string, AppleCertificate> {
    if (v === undefined || v === null) return {};
    if (!isObject(v)) throw this.error(path, 'a mapping from device_app_id to :iphonecertfile:/:iphonepassphrase:', v);
    const out: Record<string, AppleCertificate> = {};
    for (const [appId, cfg] of Object.entries(v)) {
      if (!isObject(cfg) || typeof cfg.iphonecertfile !== 'string') {
        throw this.error([...path, appId], 'a mapping with :iphonecertfile:', cfg);
      }
      out[appId] = { certFile: cfg.iphonecertfile, passphrase: this.optString([...path, appId, 'iphonepassphrase'], cfg.iphonepassphrase) };
    }
    return out;
  }
}
