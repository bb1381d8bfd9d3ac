// Up-front checks of the delivery settings, without sending anything (for `rhopush doctor`): which
// APNs environment and credentials, whether every credential file reads and parses, and the
// settings whose absence would fail a platform's pushes (with RhoConnect's messages).
import { createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Settings } from '../config/settings.js';
import type { Platform } from './adapter.js';
import { APNS_HOSTS, apnsEnvironmentIsProduction } from './apns-target.js';
import { checkCredential, readCredentialFile } from './credential-files.js';
import { MISSING_FCM_PROJECT_ID, MISSING_PACKAGE_NAME } from './fcm.js';
import { MISSING_PUSH_SERVER, rhoconnectPushRequest } from './rhoconnect-push.js';

export interface DeliveryCheck {
  platform: Platform;
  level: 'ok' | 'warn' | 'error';
  message: string;
}

export function checkDelivery(settings: Settings): DeliveryCheck[] {
  return [...checkApns(settings), ...checkFcm(settings), ...checkRhoconnectPush(settings)];
}

function attempt(platform: Platform, setting: string, check: () => void): DeliveryCheck | undefined {
  try {
    checkCredential(setting, check);
    return undefined;
  } catch (err) {
    return { platform, level: 'error', message: (err as Error).message };
  }
}

function checkApns(settings: Settings): DeliveryCheck[] {
  const out: DeliveryCheck[] = [];
  const { apns } = settings.rhopush;
  const push = settings.push;
  const file = settings.file;
  const production = apnsEnvironmentIsProduction(settings);
  const host = `${apns.address ?? (production ? APNS_HOSTS.production : APNS_HOSTS.sandbox)}:${apns.port ?? 443}`;
  const methods: string[] = [];
  const problem = (p: DeliveryCheck | undefined) => p && out.push(p);

  if (apns.tokenKey) {
    methods.push('token');
    if (!apns.keyId || !apns.teamId) {
      out.push({ platform: 'apple', level: 'error', message: 'Missing `:key_id:` or `:team_id:` next to `:rhopush: :apns: :token_key:` in settings/settings.yml' });
    }
    problem(
      attempt('apple', ':rhopush: :apns: :token_key:', () => {
        const key = readCredentialFile(file, apns.tokenKey!, ':rhopush: :apns: :token_key:');
        if (createPrivateKey(key).asymmetricKeyType !== 'ec') throw new Error('expected the .p8 EC key from Apple');
      }),
    );
    if (!apns.topic) {
      out.push({ platform: 'apple', level: 'warn', message: 'No `:rhopush: :apns: :topic:`: each client\'s device_app_id is used as the topic' });
    }
  }
  const certificates: Array<[string, string, string | undefined]> = [];
  if (push.iphoneCertFile) certificates.push([':iphonecertfile:', push.iphoneCertFile, push.iphonePassphrase]);
  for (const [appId, c] of Object.entries(push.iphoneCertificates)) certificates.push([`:iphonecertificates: ${appId}`, c.certFile, c.passphrase]);
  for (const [setting, path, passphrase] of certificates) {
    methods.push(setting === ':iphonecertfile:' ? 'certificate' : setting);
    problem(
      attempt('apple', setting, () => {
        const pem = readCredentialFile(file, path, setting);
        createSecureContext({ cert: pem, key: pem, passphrase: passphrase || undefined });
      }),
    );
  }
  if (apns.ca) {
    problem(attempt('apple', ':rhopush: :apns: :ca:', () => void createSecureContext({ ca: readCredentialFile(file, apns.ca!, ':rhopush: :apns: :ca:') })));
  }
  if (methods.length === 0) {
    out.push({ platform: 'apple', level: 'warn', message: 'Missing `:iphonecertfile:` or `:rhopush: :apns: :token_key:` option in settings/settings.yml' });
  } else if (!out.some((c) => c.level === 'error')) {
    out.unshift({ platform: 'apple', level: 'ok', message: `APNs ${production ? 'production' : 'sandbox'} at ${host}, auth: ${methods.join(', ')}` });
  }
  return out;
}

function checkFcm(settings: Settings): DeliveryCheck[] {
  const out: DeliveryCheck[] = [];
  const { fcm } = settings.rhopush;
  if (!settings.push.fcmProjectId) out.push({ platform: 'fcm', level: 'warn', message: MISSING_FCM_PROJECT_ID });
  if (!settings.push.packageName) out.push({ platform: 'fcm', level: 'warn', message: MISSING_PACKAGE_NAME });
  if (fcm.serviceAccount) {
    const p = attempt('fcm', ':rhopush: :fcm: :service_account:', () => {
      const text = readCredentialFile(settings.file, fcm.serviceAccount!, ':rhopush: :fcm: :service_account:');
      let json: { client_email?: unknown; private_key?: unknown };
      try {
        json = JSON.parse(text) as typeof json;
      } catch {
        throw new Error('not JSON (expected a service account key file)');
      }
      if (typeof json.client_email !== 'string' || typeof json.private_key !== 'string') {
        throw new Error('expected a service account key file with client_email and private_key');
      }
      createPrivateKey(json.private_key);
    });
    if (p) out.push(p);
  }
  if (fcm.ca) {
    const p = attempt('fcm', ':rhopush: :fcm: :ca:', () => void createSecureContext({ ca: readCredentialFile(settings.file, fcm.ca!, ':rhopush: :fcm: :ca:') }));
    if (p) out.push(p);
  }
  if (settings.push.fcmProjectId && settings.push.packageName && !out.some((c) => c.level === 'error')) {
    const credentials = fcm.serviceAccount ? 'service account file' : 'Google application default credentials';
    const endpoint = fcm.address ? ` via ${fcm.address}:${fcm.port ?? 443}` : '';
    out.unshift({ platform: 'fcm', level: 'ok', message: `FCM project ${settings.push.fcmProjectId}, package ${settings.push.packageName}, ${credentials}${endpoint}` });
  }
  return out;
}

function checkRhoconnectPush(settings: Settings): DeliveryCheck[] {
  const server = settings.push.pushServer;
  if (!server) return [{ platform: 'rhoconnect_push', level: 'warn', message: MISSING_PUSH_SERVER }];
  const target = rhoconnectPushRequest(server, 'check');
  if (!target) return [{ platform: 'rhoconnect_push', level: 'error', message: MISSING_PUSH_SERVER }];
  const origin = new URL(target.url).origin;
  return [{ platform: 'rhoconnect_push', level: 'ok', message: `RhoConnect Push at ${origin}${target.authorization ? ' with basic auth' : ''}` }];
}
