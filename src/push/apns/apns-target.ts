// Which APNs credentials, topic and environment a device's push uses, from settings.yml:
//  - RhoConnect's per-app `:iphonecertificates:` entry for the client's device_app_id (topic: that id);
//  - else token auth (`:rhopush: :apns: :token_key:`, `:key_id:`, `:team_id:`; topic: `:topic:` or device_app_id);
//  - else RhoConnect's `:iphonecertfile:` / `:iphonepassphrase:` (topic: `:topic:` or device_app_id,
//    or none: APNs then takes it from the certificate).
// Environment: `:apns: :production:` when given, else RhoConnect's `:iphoneserver:` (a sandbox host
// means sandbox), else production only in the `production` environment.
import type { Settings } from '../../config/settings.js';
import { errorMessage } from '../../errors.js';
import type { ClientRecord } from '../../store/rhoconnect-store.js';

export const APNS_HOSTS = { production: 'api.push.apple.com', sandbox: 'api.sandbox.push.apple.com' } as const;

export type ApnsAuth =
  | { kind: 'token'; keyFile: string; keyId: string; teamId: string }
  | { kind: 'certificate'; certFile: string; passphrase?: string; setting: string };

export interface ApnsTarget {
  auth: ApnsAuth;
  topic?: string;
  production: boolean;
  address: string;
  port: number;
  /** CA file to trust instead of the system's (another endpoint: tests, proxies). */
  ca?: string;
  /** Identity of the provider these settings need; equal keys share connections. */
  key: string;
}

export function apnsEnvironmentIsProduction(settings: Settings): boolean {
  const explicit = settings.rhopush.apns.production;
  if (explicit !== undefined) return explicit;
  const server = settings.push.iphoneServer;
  if (server) return !/sandbox/i.test(server);
  return settings.environment === 'production';
}

export function apnsTarget(settings: Settings, client: ClientRecord): ApnsTarget | { error: string } {
  const apns = settings.rhopush.apns;
  const push = settings.push;
  const appId = client.device_app_id?.trim() || undefined;
  let auth: ApnsAuth;
  let topic: string | undefined;
  const perApp = appId ? push.iphoneCertificates[appId] : undefined;
  if (perApp) {
    auth = { kind: 'certificate', certFile: perApp.certFile, passphrase: perApp.passphrase, setting: `:iphonecertificates: ${appId}` };
    topic = appId;
  } else if (apns.tokenKey) {
    if (!apns.keyId || !apns.teamId) {
      return { error: errorMessage('APNS_TOKEN_IDS') };
    }
    auth = { kind: 'token', keyFile: apns.tokenKey, keyId: apns.keyId, teamId: apns.teamId };
    topic = apns.topic ?? appId;
    if (!topic) return { error: errorMessage('APNS_NO_TOPIC') };
  } else if (push.iphoneCertFile) {
    auth = { kind: 'certificate', certFile: push.iphoneCertFile, passphrase: push.iphonePassphrase, setting: ':iphonecertfile:' };
    topic = apns.topic ?? appId;
  } else {
    return { error: errorMessage('APNS_NO_CREDENTIALS') };
  }
  const production = apnsEnvironmentIsProduction(settings);
  const address = apns.address ?? (production ? APNS_HOSTS.production : APNS_HOSTS.sandbox);
  const port = apns.port ?? 443;
  const key = JSON.stringify([
    auth,
    topic ?? null,
    production,
    address,
    port,
    apns.ca ?? null,
    apns.connections,
    apns.maxConcurrentStreams,
    apns.requestTimeoutMs,
    apns.pingIntervalMs,
  ]);
  return { auth, topic, production, address, port, ca: apns.ca, key };
}
