// What changed between two Settings, in settings.yml's own words, for the reload log; and which
// changes cannot take effect without a restart.
import type { Settings, SourcePolicy } from './settings.js';

export interface SettingChange {
  /** `source Product`, `environment`, `rhopush`: where the key lives in settings.yml. */
  scope: string;
  /** settings.yml key, e.g. `push_notify`, `apns.topic`. */
  key: string;
  from: string;
  to: string;
}

export interface SettingsDiff {
  /** Applied at once by the running daemon. */
  live: SettingChange[];
  /** Kept as they were: they take effect at the next start. */
  restart: SettingChange[];
}

/**
 * Settings the running daemon was built from and cannot swap: its Redis connections and
 * subscriptions, the HTTP listener, the cluster topology and the queue worker's loop.
 */
export const RESTART_ONLY_RHOPUSH_KEYS: ReadonlySet<string> = new Set([
  'listen',
  'cluster',
  'queues',
  'worker_concurrency',
  'http_request_timeout_ms',
]);

/** Keys whose values are secrets: the log says that they changed, not what to. */
const SECRET_KEYS = new Set(['api_token', 'iphonepassphrase', 'passphrase', 'password']);

export function diffSettings(from: Settings, to: Settings): SettingsDiff {
  const diff: SettingsDiff = { live: [], restart: [] };
  const add = (list: SettingChange[], scope: string, key: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    const hidden = secret(key) && a !== undefined && b !== undefined;
    list.push({ scope, key, from: show(key, a), to: hidden ? '(changed)' : show(key, b) });
  };

  // Sources, in the order of the new file, then the ones it dropped.
  const names = [...new Set([...to.sources.keys(), ...from.sources.keys()])];
  for (const name of names) {
    const a = from.sources.get(name);
    const b = to.sources.get(name);
    const scope = `source ${name}`;
    add(diff.live, scope, 'push_notify', effective(from, a).pushNotify, effective(to, b).pushNotify);
    add(diff.live, scope, 'partition_type', effective(from, a).partitionType, effective(to, b).partitionType);
    if (!a !== !b) add(diff.live, scope, 'listed', Boolean(a), Boolean(b));
  }

  add(diff.live, 'environment', 'push_notify', from.defaultPushNotify, to.defaultPushNotify);
  add(diff.live, 'environment', 'api_token', from.apiToken, to.apiToken);
  add(diff.restart, 'environment', 'redis', from.redis.map((r) => r.label).join(', '), to.redis.map((r) => r.label).join(', '));
  for (const key of union(from.push, to.push)) {
    add(diff.live, 'environment', pushKey(key), pick(from.push, key), pick(to.push, key));
  }

  const a = flatten(from.rhopush as unknown as Record<string, unknown>);
  const b = flatten(to.rhopush as unknown as Record<string, unknown>);
  for (const key of union(a, b)) {
    const yamlKey = key.split('.').map(snake).join('.');
    const target = RESTART_ONLY_RHOPUSH_KEYS.has(yamlKey.split('.')[0]!) ? diff.restart : diff.live;
    add(target, 'rhopush', yamlKey, a[key], b[key]);
  }
  return diff;
}

/**
 * The settings a running daemon switches to: everything from `next` except what needs a restart,
 * which stays as the daemon was started.
 */
export function liveSettings(running: Settings, next: Settings): Settings {
  return {
    ...next,
    redis: running.redis,
    rhopush: {
      ...next.rhopush,
      listen: running.rhopush.listen,
      cluster: running.rhopush.cluster,
      queues: running.rhopush.queues,
      workerConcurrency: running.rhopush.workerConcurrency,
      httpRequestTimeoutMs: running.rhopush.httpRequestTimeoutMs,
    },
  };
}

/** One line per scope: `source Product: push_notify true → false, partition_type user → app`. */
export function describeChanges(changes: SettingChange[]): string[] {
  const byScope = new Map<string, string[]>();
  for (const c of changes) {
    const list = byScope.get(c.scope) ?? [];
    list.push(`${c.key} ${c.from} → ${c.to}`);
    byScope.set(c.scope, list);
  }
  return [...byScope].map(([scope, parts]) => `${scope}: ${parts.join(', ')}`);
}

function effective(settings: Settings, policy: SourcePolicy | undefined): { pushNotify: boolean; partitionType: string } {
  // An unlisted source takes the environment default, as RhoConnect does.
  return policy ?? { pushNotify: settings.defaultPushNotify, partitionType: 'user' };
}

function secret(key: string): boolean {
  return SECRET_KEYS.has(lastPart(key));
}

function lastPart(key: string): string {
  return key.slice(key.lastIndexOf('.') + 1);
}

function show(key: string, v: unknown): string {
  if (v === undefined || v === null) return '(unset)';
  if (secret(key)) return '(set)';
  if (typeof v === 'string') return key === 'push_server' ? withoutPassword(v) : v;
  if (key === 'iphonecertificates') {
    // Per-app certificates carry passphrases: show the files only.
    const files = Object.entries(v as Record<string, { certFile: string }>).map(([app, c]) => `${app}=${c.certFile}`);
    return files.length > 0 ? files.join(' ') : '(none)';
  }
  return JSON.stringify(v);
}

/** settings.yml's spelling of a push setting: RhoConnect's iphone* keys have no underscores. */
function pushKey(key: string): string {
  return key.startsWith('iphone') ? key.toLowerCase() : snake(key);
}

/** RhoConnect Push URLs may carry `user:password@`; the password stays out of logs. */
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

function pick(o: object, key: string): unknown {
  return (o as Record<string, unknown>)[key];
}

function union(a: object, b: object): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])];
}

/** camelCase → snake_case (settings.yml's spelling). */
function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Nested plain objects to dotted keys; arrays and scalars are leaves. */
function flatten(o: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key, out);
    else out[key] = v;
  }
  return out;
}
