// RhoConnect settings.yml files for tests, benchmarks and `rhopush demo`, from typed options: the
// Redis to watch, the sources, the API token, delivery (log, or live to the loopback stand-ins with
// the credential files they need) and any other `:rhopush:` key.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSettings } from '../config/load-settings.js';
import type { Settings } from '../config/settings.js';
import { LOOPBACK_CA, type ApnsTokenKey } from './loopback-tls.js';

export type YamlScalar = string | number | boolean;
/** A settings value. Keys in snake_case are written as Ruby symbols (`:push_notify:`), others (source names, app ids) as they are. */
export type YamlValue = YamlScalar | YamlValue[] | { [key: string]: YamlValue | undefined };
export type YamlMap = { [key: string]: YamlValue | undefined };

export interface SourceSettings {
  /** `:partition_type:`, `user` or `app` (anything else, to test how rhopush refuses it); left out when not given: user. */
  partition?: string;
  /** `:push_notify:` as RhoConnect writes it (`'true'`); left out when not given. */
  pushNotify?: string;
  /** Other keys of the source (`force_default`, `poll_interval`, ...). */
  extra?: YamlMap;
}

/** Two user sources that ping, one that does not (push_notify unset), an app-partitioned one. */
export const STANDARD_SOURCES: Readonly<Record<string, SourceSettings>> = {
  Product: { partition: 'user', pushNotify: 'true' },
  Contact: { partition: 'user', pushNotify: 'true' },
  Note: { partition: 'user' },
  Catalog: { partition: 'app', pushNotify: 'true' },
};

/** `Source0` … `Source<n-1>`, user-partitioned, push_notify on (benchmarks). */
export function numberedSources(count: number): Record<string, SourceSettings> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`Source${i}`, { partition: 'user', pushNotify: 'true' }]));
}

/** Where an APNs stand-in listens (an `ApnsStandIn`, or its address and port). */
export interface Endpoint {
  address: string;
  port: number;
}

/** Live delivery to an APNs stand-in: token auth with `key` (else no credentials: add RhoConnect's certificate keys with `env`). */
export interface ApnsSettings {
  endpoint: Endpoint;
  key?: ApnsTokenKey;
  /** `:topic:` (default: none, so the client's device_app_id). */
  topic?: string;
  /** Other `:apns:` keys (`request_timeout_ms`, `connections`, ...). */
  extra?: YamlMap;
}

/** Live delivery to an FCM stand-in: its project, a service account it accepts, its endpoint. */
export interface FcmSettings {
  standIn: Endpoint & { projectId: string; serviceAccount(): object };
  /** `:package_name:` (default com.example.rhopush). */
  packageName?: string;
  /** Other `:fcm:` keys (`request_timeout_ms`, `connections`, ...). */
  extra?: YamlMap;
}

export interface SettingsOptions {
  /** The environment block (default `test`). */
  environment?: string;
  /** `:redis:`: a port on 127.0.0.1, a `host:port[:db[:password]]`, or a list (instances or cluster seeds). Left out when not given. */
  redis?: number | string | Array<number | string>;
  /** `:rhopush: :cluster:` (left out when not given). */
  cluster?: boolean;
  /** `:sources:` (default `STANDARD_SOURCES`). */
  sources?: Readonly<Record<string, SourceSettings>>;
  /** The environment's `:push_notify:` (default `'false'`; null leaves it out). */
  pushNotify?: string | null;
  /** `:api_token:` (left out when not given). */
  apiToken?: string;
  /** `:rhopush: :delivery:` (default `log`; null leaves it out, so rhopush chooses from the credentials). */
  delivery?: 'log' | 'live' | null;
  /** `:rhopush: :listen:`: a port on 127.0.0.1 or `host:port` (default `127.0.0.1:0`, a free port; null leaves it out). */
  listen?: string | number | null;
  coalesceMs?: number;
  maxDelayMs?: number;
  /** `:rhopush: :apns:` for an APNs stand-in. */
  apns?: ApnsSettings;
  /** `:fcm_project_id:`, `:package_name:` and `:rhopush: :fcm:` for an FCM stand-in. */
  fcm?: FcmSettings;
  /** `:push_server:`: a RhoConnect Push server's URL (a `PushStandIn`'s `url`). */
  pushServer?: string;
  /** Other keys of the environment block: RhoConnect's own (`iphonecertfile`, `iphoneserver`, ...). */
  env?: YamlMap;
  /** Other `:rhopush:` keys (`lease_ms`, `retry`, `queues`, ...). */
  rhopush?: YamlMap;
}

/** Credential files the settings name, relative to the settings file. */
export const CREDENTIAL_FILES = { apnsKey: 'AuthKey.p8', ca: 'ca.pem', serviceAccount: 'service-account.json' } as const;

/** settings.yml text. Credential files are named relative to it (`writeSettings` writes them). */
export function settingsYaml(o: SettingsOptions = {}): string {
  const sources: YamlMap = {};
  for (const [name, s] of Object.entries(o.sources ?? STANDARD_SOURCES)) {
    sources[name] = { partition_type: s.partition, push_notify: s.pushNotify, ...s.extra };
  }
  const redis = o.redis === undefined ? undefined : Array.isArray(o.redis) ? o.redis.map(endpoint) : endpoint(o.redis);
  const rhopush: YamlMap = {
    delivery: o.delivery === undefined ? 'log' : (o.delivery ?? undefined),
    listen: o.listen === undefined ? '127.0.0.1:0' : o.listen === null ? undefined : endpoint(o.listen),
    coalesce_ms: o.coalesceMs,
    max_delay_ms: o.maxDelayMs,
    cluster: o.cluster,
    ...o.rhopush,
  };
  if (o.apns) rhopush.apns = apnsBlock(o.apns);
  if (o.fcm) rhopush.fcm = { service_account: CREDENTIAL_FILES.serviceAccount, ...endpointBlock(o.fcm.standIn), ...o.fcm.extra };
  const environment: YamlMap = {
    redis,
    api_token: o.apiToken,
    push_notify: o.pushNotify === undefined ? 'false' : (o.pushNotify ?? undefined),
    fcm_project_id: o.fcm?.standIn.projectId,
    package_name: o.fcm ? (o.fcm.packageName ?? 'com.example.rhopush') : undefined,
    push_server: o.pushServer,
    ...o.env,
    rhopush,
  };
  return yaml({ sources, [o.environment ?? 'test']: environment });
}

/**
 * Writes settings.yml (or `name`) into `dir` with the credential files it names: the APNs token
 * key, the loopback CA, the FCM service account. Returns the settings file's path.
 */
export function writeSettings(dir: string, o: SettingsOptions = {}, name = 'settings.yml'): string {
  if (o.apns?.key) writeFileSync(join(dir, CREDENTIAL_FILES.apnsKey), o.apns.key.pem);
  if (o.apns || o.fcm) writeFileSync(join(dir, CREDENTIAL_FILES.ca), LOOPBACK_CA);
  if (o.fcm) writeFileSync(join(dir, CREDENTIAL_FILES.serviceAccount), JSON.stringify(o.fcm.standIn.serviceAccount()));
  const file = join(dir, name);
  writeFileSync(file, settingsYaml(o));
  return file;
}

/**
 * The parsed settings, as rhopush reads them (no process environment). With `dir`, the file and
 * its credentials are written there first, so relative paths resolve as they do for RhoConnect apps.
 */
export function buildSettings(o: SettingsOptions = {}, dir?: string): Settings {
  const options = { environment: o.environment ?? 'test', env: {} };
  if (dir === undefined) return parseSettings(settingsYaml(o), '<kit settings>', options);
  const file = writeSettings(dir, o);
  return parseSettings(settingsYaml(o), file, options);
}

function endpoint(redis: number | string): string {
  return typeof redis === 'number' ? `127.0.0.1:${redis}` : redis;
}

function endpointBlock(e: Endpoint): YamlMap {
  return { address: e.address, port: e.port, ca: CREDENTIAL_FILES.ca };
}

function apnsBlock(a: ApnsSettings): YamlMap {
  const token = a.key ? { token_key: CREDENTIAL_FILES.apnsKey, key_id: a.key.keyId, team_id: a.key.teamId } : {};
  return { ...token, topic: a.topic, ...endpointBlock(a.endpoint), ...a.extra };
}

// ---- a small YAML writer: the shapes settings.yml uses, written as RhoConnect apps write them ----

const SYMBOL_KEY = /^[a-z][a-z0-9_]*$/;
const PLAIN = /^[A-Za-z0-9_./@+-][A-Za-z0-9_./:@+ -]*$/;
const RESERVED = /^(?:true|false|yes|no|on|off|null|~|y|n)$/i;
const NUMBER = /^[-+]?(?:\d[\d_]*(?:\.\d*)?(?:e[-+]?\d+)?|\.\d+|0x[\da-f]+|0o[0-7]+|\.inf|\.nan)$/i;

function yaml(map: YamlMap, indent = ''): string {
  let out = '';
  for (const [key, value] of Object.entries(map)) {
    if (value === undefined) continue;
    const name = SYMBOL_KEY.test(key) ? `:${key}:` : `${key}:`;
    if (Array.isArray(value)) {
      out += `${indent}${name}\n`;
      for (const item of value) out += `${indent}  - ${scalar(item as YamlScalar)}\n`;
    } else if (typeof value === 'object') {
      const body = yaml(value, `${indent}  `);
      out += body ? `${indent}${name}\n${body}` : `${indent}${name} {}\n`;
    } else {
      out += `${indent}${name} ${scalar(value)}\n`;
    }
  }
  return out;
}

function scalar(value: YamlScalar): string {
  if (typeof value !== 'string') return String(value);
  const plain =
    PLAIN.test(value) &&
    !RESERVED.test(value) &&
    !NUMBER.test(value) &&
    !value.endsWith(' ') &&
    !value.includes(': ') &&
    !value.includes(' #');
  return plain ? value : `'${value.replace(/'/g, "''")}'`;
}
