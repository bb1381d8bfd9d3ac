// Typed view of RhoConnect's settings.yml as rhopush uses it.
// The raw environment section is kept too: RhoConnect's file carries many keys rhopush ignores.
import type { SettingsWarning } from './settings-error.js';

export type PartitionType = 'user' | 'app';
export type DeliveryMode = 'live' | 'log';

export interface RedisEndpoint {
  host: string;
  port: number;
  db: number;
  password?: string;
  username?: string;
  tls?: boolean;
  /** As written in settings (or REDIS_URL), for messages. */
  label: string;
}

export interface SourcePolicy {
  name: string;
  pushNotify: boolean;
  partitionType: PartitionType;
  /** True when settings.yml lists the source; unlisted sources take the environment defaults. */
  listed: boolean;
}

export interface AppleCertificate {
  certFile: string;
  passphrase?: string;
}

export interface ApnsSettings {
  tokenKey?: string;
  keyId?: string;
  teamId?: string;
  topic?: string;
  production?: boolean;
  address?: string;
  port?: number;
  ca?: string;
  /** Connections per provider for large fan-outs. */
  connections: number;
  /** In-flight requests per connection (APNs allows about 1000 streams). */
  maxConcurrentStreams: number;
  requestTimeoutMs: number;
  /** HTTP/2 PING interval on open sessions: a session that does not answer is replaced. */
  pingIntervalMs: number;
}

export interface FcmSettings {
  serviceAccount?: string;
  /** Another endpoint for FCM and its OAuth token requests (tests, proxies), with the CA to trust. */
  address?: string;
  port?: number;
  ca?: string;
  /** HTTPS connections to FCM (bounds in-flight requests). */
  connections: number;
  /** Deadline for one batch (sendEach call, including the OAuth token fetch). */
  requestTimeoutMs: number;
}

export interface RhoconnectPushSettings {
  /** Deadline for one POST to the RhoConnect Push server. */
  requestTimeoutMs: number;
  /** Requests in flight to the RhoConnect Push server. */
  connections: number;
}

export interface RetrySettings {
  attempts: number;
  baseMs: number;
  maxMs: number;
  totalMs: number;
}

export interface PushSettings {
  iphoneCertFile?: string;
  iphonePassphrase?: string;
  iphoneServer?: string;
  iphonePort?: number;
  iphoneCertificates: Record<string, AppleCertificate>;
  fcmProjectId?: string;
  packageName?: string;
  pushServer?: string;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface RhopushSettings {
  listen: ListenAddress;
  coalesceMs: number;
  maxDelayMs: number;
  delivery: DeliveryMode;
  apns: ApnsSettings;
  fcm: FcmSettings;
  rhoconnectPush: RhoconnectPushSettings;
  retry: RetrySettings;
  cluster: boolean;
  maxUsersPerPing: number;
  queues: string[];
  workerConcurrency: number;
  logLevel: string;
  /** Keyspace database RhoConnect writes to (from `:redis:`), subscribed on every node. */
  canaryIntervalMs: number;
  canaryTimeoutMs: number;
  leaseMs: number;
  deadTokenTtlDays: number;
  feedbackMaxLen: number;
  /** A client must send a whole HTTP request (headers and body) within this; slower ones get 408. */
  httpRequestTimeoutMs: number;
  /** How long ping records and captured decisions are kept (0: no history is recorded). */
  historyTtlHours: number;
  /** The newest this many pings (and decisions) are kept per user. */
  historyPerUser: number;
}

export interface Settings {
  /** Absolute path of the file read, or '<inline>' . */
  file: string;
  environment: string;
  redis: RedisEndpoint[];
  apiToken?: string;
  defaultPushNotify: boolean;
  sources: ReadonlyMap<string, SourcePolicy>;
  push: PushSettings;
  rhopush: RhopushSettings;
  /** The environment section as parsed, with normalised keys (unknown keys kept). */
  raw: Record<string, unknown>;
  /** What in the file is probably a mistake but does not stop rhopush (unknown `:rhopush:` keys). */
  warnings?: SettingsWarning[];
}

export const RHOPUSH_DEFAULTS: Omit<RhopushSettings, 'delivery'> = {
  listen: { host: '127.0.0.1', port: 9293 },
  coalesceMs: 100,
  maxDelayMs: 1000,
  apns: { connections: 2, maxConcurrentStreams: 900, requestTimeoutMs: 10_000, pingIntervalMs: 60_000 },
  fcm: { connections: 32, requestTimeoutMs: 30_000 },
  rhoconnectPush: { requestTimeoutMs: 10_000, connections: 32 },
  retry: { attempts: 5, baseMs: 200, maxMs: 10_000, totalMs: 30_000 },
  cluster: false,
  maxUsersPerPing: 10_000,
  queues: ['ping'],
  workerConcurrency: 4,
  logLevel: 'info',
  canaryIntervalMs: 5_000,
  canaryTimeoutMs: 3_000,
  leaseMs: 10_000,
  deadTokenTtlDays: 90,
  feedbackMaxLen: 100_000,
  httpRequestTimeoutMs: 30_000,
  historyTtlHours: 72,
  historyPerUser: 100,
};

/** The policy RhoConnect applies to a source, including sources settings.yml does not list. */
export function sourcePolicy(settings: Settings, source: string): SourcePolicy {
  return (
    settings.sources.get(source) ?? {
      name: source,
      pushNotify: settings.defaultPushNotify,
      partitionType: 'user',
      listed: false,
    }
  );
}

/** True when any push credential is configured, which makes `live` the default delivery. */
export function hasPushCredentials(push: PushSettings, apns: ApnsSettings, fcm: FcmSettings): boolean {
  return Boolean(
    push.iphoneCertFile ||
    Object.keys(push.iphoneCertificates).length > 0 ||
    apns.tokenKey ||
    fcm.serviceAccount ||
    push.fcmProjectId ||
    push.pushServer,
  );
}
