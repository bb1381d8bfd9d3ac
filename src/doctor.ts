// `rhopush doctor`: finds misconfiguration before it costs a missed push. One line per check,
// ✓ or ✗ (– where a check does not apply), and for every ✗ the fix.
import { errorMessage } from './errors.js';
import { apnsTarget } from './push/apns/apns-target.js';
import { decide } from './rules/decide.js';
import { resolveCredentialPath } from './push/credential-files.js';
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { basename } from 'node:path';
import { Redis } from 'ioredis';
import { loadSettings } from './config/load-settings.js';
import { SettingsError } from './config/settings-error.js';
import type { RedisEndpoint, Settings } from './config/settings.js';
import { REQUIRED_NOTIFY_FLAGS, missingNotifyFlags } from './intake/notify-config.js';
import { keys, RHOPUSH_PREFIX } from './store/keys.js';
import { redisOptions } from './store/redis-connection.js';

/** ✓ passed, ✗ failed (with its fix), – does not apply, ! works but is probably a mistake (does not fail). */
export type CheckStatus = 'ok' | 'fail' | 'skip' | 'warn';

export interface DoctorCheck {
  status: CheckStatus;
  /** What was checked and what was found, on one line. */
  line: string;
  /** For a failed check: what to do about it. */
  fix?: string;
}

export interface SourceRow {
  source: string;
  pushNotify: boolean;
  partition: string;
  /** Whether a plugin write to this source pings automatically, and if not, why. */
  autoPing: string;
}

export interface DoctorReport {
  file: string;
  environment?: string;
  checks: DoctorCheck[];
  /** Effective per-source settings (when the file parsed). */
  sources: SourceRow[];
  ok: boolean;
}

export interface DoctorOptions {
  file: string;
  environment?: string;
  env?: NodeJS.ProcessEnv;
  /** Per network step (connect, probe). */
  timeoutMs?: number;
  /** Certificates expiring within this many days are called out (still ✓). */
  expiryWarningDays?: number;
}

const DAY_MS = 86_400_000;

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const checks: DoctorCheck[] = [];
  const report: DoctorReport = { file: options.file, environment: options.environment, checks, sources: [], ok: false };

  let settings: Settings;
  try {
    settings = loadSettings(options.file, { environment: options.environment, env });
  } catch (err) {
    const e = err instanceof SettingsError ? err : new SettingsError(options.file, undefined, (err as Error).message);
    checks.push({
      status: 'fail',
      line: `settings: ${e.message}`,
      fix: /cannot read the file/.test(e.reason)
        ? "point --settings (or RHOPUSH_SETTINGS) at your RhoConnect app's settings/settings.yml"
        : e.problems.length > 1
          ? `edit ${e.file}: correct each line listed above`
          : `edit ${e.file}${e.line ? ` line ${e.line}` : ''}: ${e.reason}`,
    });
    return report;
  }
  report.file = settings.file;
  report.environment = settings.environment;
  checks.push({
    status: 'ok',
    line: `settings: ${settings.file} parses (environment ${settings.environment}, ${settings.sources.size} sources listed, default push_notify ${settings.defaultPushNotify})`,
  });
  report.sources = sourceTable(settings);
  for (const warning of settings.warnings ?? []) checks.push({ status: 'warn', line: `settings: ${warning.message}` });

  const timeoutMs = options.timeoutMs ?? 2000;
  for (const [i, endpoint] of settings.redis.entries()) {
    checks.push(...(await checkRedis(endpoint, i, settings, timeoutMs)));
  }
  checks.push(...checkDelivery(settings));
  checks.push(...checkApns(settings, options.expiryWarningDays ?? 30));
  checks.push(...checkFcm(settings, env));
  checks.push(checkPushServer(settings));
  checks.push(await checkApiToken(settings, timeoutMs, env));

  report.ok = checks.every((c) => c.status !== 'fail');
  return report;
}

/** How the doctor words each rule that can decide a plugin write to a user's document. */
const AUTO_PING: Readonly<Record<string, string>> = {
  'plugin-write': 'yes',
  'push-notify-off': 'no (push_notify off)',
  'app-partition-settings': 'no (app-partitioned)',
};

/** Whether a plugin write to each source pings, as capture decides it (for a user's document). */
function sourceTable(settings: Settings): SourceRow[] {
  const pluginWrite = (source: string) => decide(settings, { partition: 'a user', source, deviceEdit: false });
  const rows: SourceRow[] = [...settings.sources.values()].map((p) => {
    const rule = pluginWrite(p.name).rule;
    return { source: p.name, pushNotify: p.pushNotify, partition: p.partitionType, autoPing: AUTO_PING[rule] ?? rule };
  });
  // A source settings.yml does not list: no name can be one, so the environment's defaults apply.
  const other = pluginWrite('\u0000');
  rows.push({
    source: '(any other)',
    pushNotify: settings.defaultPushNotify,
    partition: 'user',
    autoPing: `${other.ping ? 'yes' : 'no'} (environment default)`,
  });
  return rows;
}

// --- Redis -------------------------------------------------------------------------------------

async function checkRedis(endpoint: RedisEndpoint, index: number, settings: Settings, timeoutMs: number): Promise<DoctorCheck[]> {
  const name = `Redis ${endpoint.label}${settings.redis.length > 1 ? ` (instance ${index})` : ''}`;
  const redis = probeConnection(endpoint, timeoutMs);
  try {
    try {
      await redis.connect();
      await redis.ping();
    } catch (err) {
      return [
        {
          status: 'fail',
          line: `${name}: not reachable (${(err as Error).message})`,
          fix: `start Redis there, or correct :redis: in ${basename(settings.file)} (host:port[:db[:password]]) or REDIS_URL`,
        },
      ];
    }
    const version = /redis_version:(\S+)/.exec(String(await redis.info('server').catch(() => '')))?.[1];
    const checks: DoctorCheck[] = [{ status: 'ok', line: `${name}: reachable${version ? ` (Redis ${version})` : ''}` }];
    checks.push(...(await checkNotifications(redis, name, endpoint, timeoutMs)));
    return checks;
  } finally {
    redis.disconnect();
  }
}

function probeConnection(endpoint: RedisEndpoint, timeoutMs: number): Redis {
  const redis = new Redis({
    ...redisOptions(endpoint, { connectionName: 'rhopush:doctor', lazyConnect: true, failFast: true }),
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  return redis;
}

const WANTED = REQUIRED_NOTIFY_FLAGS.join('');

async function checkNotifications(redis: Redis, name: string, endpoint: RedisEndpoint, timeoutMs: number): Promise<DoctorCheck[]> {
  let flags: string | undefined;
  try {
    const reply = (await redis.call('CONFIG', 'GET', 'notify-keyspace-events')) as string[];
    flags = reply[1] ?? '';
  } catch {
    // Managed Redis often disables CONFIG; whether events flow is then tested directly.
  }
  const persist = `add "notify-keyspace-events ${WANTED}" (keeping any flags already set) to that server's redis.conf, or set the notify-keyspace-events parameter on managed Redis`;

  if (flags === undefined) {
    const delivered = await eventsDelivered(endpoint, redis, timeoutMs);
    return [
      delivered
        ? { status: 'ok', line: `${name}: keyspace notifications arrive (CONFIG is disabled; checked with a test key)` }
        : {
            status: 'fail',
            line: `${name}: keyspace notifications do not arrive and CONFIG is disabled, so rhopush cannot turn them on`,
            fix: persist,
          },
    ];
  }

  const missing = missingNotifyFlags(flags);
  let configSet: string | undefined;
  try {
    // Setting the value it already has changes nothing and tells whether rhopush may set it.
    await redis.call('CONFIG', 'SET', 'notify-keyspace-events', flags);
  } catch (err) {
    configSet = (err as Error).message;
  }
  const current = `notify-keyspace-events is ${JSON.stringify(flags)}`;
  const checks: DoctorCheck[] = [];
  if (missing.length === 0) {
    checks.push({ status: 'ok', line: `${name}: ${current} (has ${REQUIRED_NOTIFY_FLAGS.join(', ')})` });
    checks.push(
      configSet === undefined
        ? { status: 'ok', line: `${name}: CONFIG SET allowed` }
        : { status: 'ok', line: `${name}: CONFIG SET refused (not needed: the flags are already set)` },
    );
    return checks;
  }
  const lacking = `missing ${missing.join(', ')}`;
  if (configSet === undefined) {
    checks.push({
      status: 'fail',
      line: `${name}: ${current} (${lacking}); rhopush turns them on at start, but Redis forgets that when it restarts`,
      fix: `${persist}; or run CONFIG SET notify-keyspace-events ${flags + missing.join('')} then CONFIG REWRITE`,
    });
    checks.push({ status: 'ok', line: `${name}: CONFIG SET allowed (rhopush adds the missing flags at start)` });
  } else {
    checks.push({ status: 'fail', line: `${name}: ${current} (${lacking})`, fix: persist });
    checks.push({
      status: 'fail',
      line: `${name}: CONFIG SET refused (${configSet}), so rhopush cannot add the missing flags itself`,
      fix: persist,
    });
  }
  return checks;
}

/** Writes a short-lived key in rhopush's namespace and waits for its keyspace notification. */
async function eventsDelivered(endpoint: RedisEndpoint, redis: Redis, timeoutMs: number): Promise<boolean> {
  const key = `${RHOPUSH_PREFIX}doctor:${randomUUID()}`;
  const subscriber = probeConnection(endpoint, timeoutMs);
  try {
    await subscriber.connect();
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      // SET ... PX announces `set` ($) then `expire` (g): the second proves every flag capture needs.
      subscriber.on('message', (_channel: string, event: string) => {
        if (event !== 'expire') return;
        clearTimeout(timer);
        resolve(true);
      });
    });
    await subscriber.subscribe(`__keyspace@${endpoint.db}__:${key}`);
    await redis.set(key, '1', 'PX', 10_000);
    return await arrived;
  } catch {
    return false;
  } finally {
    subscriber.disconnect();
  }
}

// --- delivery ----------------------------------------------------------------------------------

function checkDelivery(settings: Settings): DoctorCheck[] {
  const { delivery } = settings.rhopush;
  if (delivery === 'log') {
    return [
      { status: 'skip', line: 'delivery: log (device pushes are written to the log, not sent; :rhopush: :delivery: live sends them)' },
    ];
  }
  const configured = apnsConfigured(settings) || fcmConfigured(settings) || Boolean(settings.push.pushServer);
  return [
    configured
      ? { status: 'ok', line: 'delivery: live' }
      : {
          status: 'fail',
          line: 'delivery: live, but no push platform is configured',
          fix: 'configure APNs, FCM or :push_server:, or set :rhopush: :delivery: log',
        },
  ];
}

// --- APNs --------------------------------------------------------------------------------------

function apnsConfigured(settings: Settings): boolean {
  return Boolean(
    settings.rhopush.apns.tokenKey || settings.push.iphoneCertFile || Object.keys(settings.push.iphoneCertificates).length > 0,
  );
}

function checkApns(settings: Settings, warnDays: number): DoctorCheck[] {
  const { apns } = settings.rhopush;
  if (!apnsConfigured(settings)) {
    return [{ status: 'skip', line: 'APNs: not configured (Apple devices get no push)' }];
  }
  const checks: DoctorCheck[] = [];
  let certificateSubject: string | undefined;
  if (apns.tokenKey) {
    checks.push(checkTokenKey(resolveCredentialPath(settings.file, apns.tokenKey)));
    for (const [key, value, what] of [
      ['key_id', apns.keyId, 'the 10-character Key ID shown next to the key in your Apple developer account'],
      ['team_id', apns.teamId, 'your 10-character Apple Team ID'],
    ] as const) {
      checks.push(
        value
          ? { status: 'ok', line: `APNs :${key}: ${value}` }
          : {
              status: 'fail',
              line: `APNs :${key}: not set (token authentication needs it)`,
              fix: `set :rhopush: :apns: :${key}: to ${what}`,
            },
      );
    }
  }
  const certificates: Array<[string, string, string | undefined]> = [];
  if (settings.push.iphoneCertFile)
    certificates.push([
      ':iphonecertfile:',
      resolveCredentialPath(settings.file, settings.push.iphoneCertFile),
      settings.push.iphonePassphrase,
    ]);
  for (const [app, c] of Object.entries(settings.push.iphoneCertificates))
    certificates.push([`:iphonecertificates: ${app}`, resolveCredentialPath(settings.file, c.certFile), c.passphrase]);
  for (const [label, file, passphrase] of certificates) {
    const { check, subject } = checkCertificate(label, file, passphrase, warnDays);
    checks.push(check);
    certificateSubject ??= subject;
  }
  // Asked of delivery itself: what a device gets that registered with no device_app_id.
  const withoutAppId = apnsTarget(settings, { id: 'doctor' });
  const noTopic = 'error' in withoutAppId && (withoutAppId.error === errorMessage('APNS_NO_TOPIC') || Boolean(apns.tokenKey));
  if (apns.topic) {
    checks.push({ status: 'ok', line: `APNs topic: ${apns.topic}` });
  } else if (noTopic) {
    checks.push({
      status: 'warn',
      line: `APNs topic: not set; each device's device_app_id is used, and a device without one fails ("${errorMessage('APNS_NO_TOPIC')}")`,
      fix: "set :rhopush: :apns: :topic: to the app's bundle id (e.g. com.example.app)",
    });
  } else {
    const uid = certificateSubject ? /(?:^|\n)UID=([^\n]+)/.exec(certificateSubject)?.[1] : undefined;
    checks.push({
      status: 'ok',
      line: `APNs topic: not set; Apple takes it from the certificate${uid ? ` (UID ${uid})` : ''}`,
    });
  }
  if (apns.ca)
    checks.push(
      readable(
        'APNs :ca:',
        resolveCredentialPath(settings.file, apns.ca),
        'point :rhopush: :apns: :ca: at a readable PEM file, or remove it to use the system CAs',
      ),
    );
  return checks;
}

function checkTokenKey(file: string): DoctorCheck {
  const label = `APNs token key ${file}`;
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file, 'utf8'));
  } catch (err) {
    return {
      status: 'fail',
      line: `${label}: cannot load (${(err as Error).message})`,
      fix: 'point :rhopush: :apns: :token_key: at the AuthKey_<KEYID>.p8 file downloaded from your Apple developer account',
    };
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || (curve && curve !== 'prime256v1')) {
    return {
      status: 'fail',
      line: `${label}: a ${key.asymmetricKeyType ?? 'unknown'} key${curve ? ` (${curve})` : ''}, not an APNs signing key (EC P-256)`,
      fix: 'use the .p8 APNs authentication key from your Apple developer account',
    };
  }
  return { status: 'ok', line: `${label}: loads (EC P-256)` };
}

function checkCertificate(
  label: string,
  file: string,
  passphrase: string | undefined,
  warnDays: number,
): { check: DoctorCheck; subject?: string } {
  const name = `APNs certificate ${label} ${file}`;
  const convert = 'export the push certificate and its key from Keychain as .p12, then: openssl pkcs12 -in cert.p12 -out cert.pem -nodes';
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return {
      check: {
        status: 'fail',
        line: `${name}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        fix: `make the file readable by rhopush, or correct ${label}`,
      },
    };
  }
  const certPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  const keyPem = /-----BEGIN (?:[A-Z ]+ )?PRIVATE KEY-----[\s\S]+?-----END (?:[A-Z ]+ )?PRIVATE KEY-----/.exec(text)?.[0];
  if (!certPem) return { check: { status: 'fail', line: `${name}: no PEM certificate in the file`, fix: convert } };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    return { check: { status: 'fail', line: `${name}: the certificate does not load (${(err as Error).message})`, fix: convert } };
  }
  const subject = cert.subject;
  const validTo = new Date(cert.validTo);
  const validFrom = new Date(cert.validFrom);
  const now = Date.now();
  const expiry = validTo.toISOString().slice(0, 10);
  const renew =
    'renew the Apple push certificate in your Apple developer account and replace the PEM file (or switch to a .p8 token key, which does not expire)';
  if (validTo.getTime() < now) {
    return { subject, check: { status: 'fail', line: `${name}: expired on ${expiry}`, fix: renew } };
  }
  if (validFrom.getTime() > now) {
    return {
      subject,
      check: {
        status: 'fail',
        line: `${name}: not valid before ${validFrom.toISOString().slice(0, 10)}`,
        fix: 'check the clock of this machine, or use a certificate that is valid now',
      },
    };
  }
  if (!keyPem)
    return {
      subject,
      check: { status: 'fail', line: `${name}: no private key in the file (it must hold the certificate and its key)`, fix: convert },
    };
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, passphrase: passphrase ?? '' });
  } catch (err) {
    const msg = (err as Error).message;
    return {
      subject,
      check: {
        status: 'fail',
        line: `${name}: the private key does not load (${msg})`,
        fix: passphrase ? 'check :iphonepassphrase:' : 'the key is encrypted: set :iphonepassphrase:, or export it without a passphrase',
      },
    };
  }
  if (!cert.checkPrivateKey(key)) {
    return { subject, check: { status: 'fail', line: `${name}: the private key does not belong to the certificate`, fix: convert } };
  }
  const days = Math.floor((validTo.getTime() - now) / DAY_MS);
  const soon = days <= warnDays ? `, in ${days} days: renew it soon` : '';
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(subject)?.[1];
  return { subject, check: { status: 'ok', line: `${name}: loads${cn ? ` (${cn})` : ''}, expires ${expiry}${soon}` } };
}

// --- FCM ---------------------------------------------------------------------------------------

function fcmConfigured(settings: Settings): boolean {
  return Boolean(settings.rhopush.fcm.serviceAccount || settings.push.fcmProjectId);
}

function checkFcm(settings: Settings, env: NodeJS.ProcessEnv): DoctorCheck[] {
  if (!fcmConfigured(settings)) return [{ status: 'skip', line: 'FCM: not configured (Android devices get no push)' }];
  const checks: DoctorCheck[] = [];
  const configuredFile = settings.rhopush.fcm.serviceAccount;
  const file = configuredFile ? resolveCredentialPath(settings.file, configuredFile) : env.GOOGLE_APPLICATION_CREDENTIALS;
  const origin = settings.rhopush.fcm.serviceAccount ? ':rhopush: :fcm: :service_account:' : 'GOOGLE_APPLICATION_CREDENTIALS';
  let accountProject: string | undefined;
  if (file) {
    const { check, projectId } = checkServiceAccount(file, origin);
    checks.push(check);
    accountProject = projectId;
  } else {
    checks.push({
      status: 'skip',
      line: 'FCM credentials: Google application default credentials (not checked; set :rhopush: :fcm: :service_account: to check them)',
    });
  }
  // The FCM adapter, like RhoConnect, needs both names in settings.yml; it fails each push without them.
  checks.push(
    settings.push.fcmProjectId
      ? { status: 'ok', line: `FCM project id: ${settings.push.fcmProjectId}` }
      : {
          status: 'fail',
          line: `FCM project id: ${errorMessage('FCM_NO_PROJECT')}`,
          fix: `set :fcm_project_id: to your Firebase project id${accountProject ? ` (the service account's is ${accountProject})` : ''}`,
        },
  );
  checks.push(
    settings.push.packageName
      ? { status: 'ok', line: `FCM package name: ${settings.push.packageName}` }
      : {
          status: 'fail',
          line: `FCM package name: ${errorMessage('FCM_NO_PACKAGE')}`,
          fix: "set :package_name: to the Android app's package name",
        },
  );
  return checks;
}

function checkServiceAccount(file: string, origin: string): { check: DoctorCheck; projectId?: string } {
  const name = `FCM service account ${file}`;
  const fix = `point ${origin} at the service account JSON key downloaded from the Firebase console (Project settings → Service accounts)`;
  let account: Record<string, unknown>;
  try {
    account = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    return { check: { status: 'fail', line: `${name}: cannot read (${(err as Error).message})`, fix } };
  }
  if (account.type !== 'service_account') {
    return { check: { status: 'fail', line: `${name}: not a service account key (type ${JSON.stringify(account.type)})`, fix } };
  }
  const projectId = typeof account.project_id === 'string' && account.project_id ? account.project_id : undefined;
  const missing = ['project_id', 'client_email', 'private_key'].filter((k) => typeof account[k] !== 'string' || account[k] === '');
  if (missing.length > 0) return { projectId, check: { status: 'fail', line: `${name}: missing ${missing.join(', ')}`, fix } };
  try {
    createPrivateKey(account.private_key as string);
  } catch (err) {
    return { projectId, check: { status: 'fail', line: `${name}: private_key does not load (${(err as Error).message})`, fix } };
  }
  return { projectId, check: { status: 'ok', line: `${name}: ${String(account.client_email)} (project ${String(account.project_id)})` } };
}

// --- RhoConnect Push, API token ------------------------------------------------------------------

function checkPushServer(settings: Settings): DoctorCheck {
  const raw = settings.push.pushServer;
  if (!raw) return { status: 'skip', line: 'RhoConnect Push: :push_server: not set (rhoconnect_push devices get no push)' };
  const fix = 'set :push_server: to the RhoConnect Push server URL, e.g. http://user@push.example.com:8675/';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { status: 'fail', line: `RhoConnect Push: :push_server: ${JSON.stringify(raw)} is not a URL`, fix };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { status: 'fail', line: `RhoConnect Push: :push_server: uses ${url.protocol} (expected http or https)`, fix };
  }
  if (url.password) url.password = '***';
  return { status: 'ok', line: `RhoConnect Push: ${url.toString()}` };
}

/**
 * The configured `:api_token:` (or API_TOKEN) is valid because it is configured: rhopush compares it
 * itself. Only the tokens RhoConnect issues to users live in Redis; whether RhoConnect knows the
 * configured one too (it stores it at boot) is shown, but changes nothing for rhopush.
 */
async function checkApiToken(settings: Settings, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const token = settings.apiToken;
  const source = env.API_TOKEN?.trim() ? 'API_TOKEN' : ':api_token:';
  if (!token) {
    return {
      status: 'skip',
      line: 'API token: none configured; the REST ping API accepts only tokens RhoConnect issued to admin users (api_token:<token>:user_id in Redis)',
    };
  }
  const redis = probeConnection(settings.redis[0]!, timeoutMs);
  let known = '';
  try {
    await redis.connect();
    const user = await redis.get(keys.apiTokenUser(token));
    if (user)
      known =
        (await redis.get(keys.userField(user, 'admin'))) === '1'
          ? `; RhoConnect also knows it (admin user ${user})`
          : `; RhoConnect also knows it (user ${user}, not an admin)`;
  } catch {
    // Not looked up: the Redis checks above say why.
  } finally {
    redis.disconnect();
  }
  return { status: 'ok', line: `API token: configured (${source}); REST pings with it are accepted${known}` };
}

function readable(label: string, file: string, fix: string): DoctorCheck {
  try {
    readFileSync(file);
    return { status: 'ok', line: `${label} ${file}: readable` };
  } catch (err) {
    return {
      status: 'fail',
      line: `${label} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      fix,
    };
  }
}

// --- output ------------------------------------------------------------------------------------

const MARK: Record<CheckStatus, string> = { ok: '✓', fail: '✗', skip: '–', warn: '!' };

/** The report as the terminal shows it. */
export function formatDoctorReport(report: DoctorReport): string {
  const out: string[] = [];
  for (const [i, check] of report.checks.entries()) {
    out.push(`${MARK[check.status]} ${check.line}`);
    if (check.fix) out.push(`    fix: ${check.fix}`);
    if (i === 0 && report.sources.length > 0) out.push(...formatSources(report.sources));
  }
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  out.push('');
  out.push(failed === 0 ? 'All checks passed.' : `${failed} problem${failed === 1 ? '' : 's'} found.`);
  return out.join('\n');
}

function formatSources(rows: SourceRow[]): string[] {
  const header = { source: 'source', pushNotify: 'push_notify', partition: 'partition', autoPing: 'plugin writes ping' };
  const cells = [header, ...rows.map((r) => ({ ...r, pushNotify: String(r.pushNotify) }))];
  const width = (k: keyof typeof header) => Math.max(...cells.map((c) => String(c[k]).length));
  const w = { source: width('source'), pushNotify: width('pushNotify'), partition: width('partition') };
  return cells.map(
    (c) =>
      `    ${String(c.source).padEnd(w.source)}  ${String(c.pushNotify).padEnd(w.pushNotify)}  ${String(c.partition).padEnd(w.partition)}  ${c.autoPing}`,
  );
}
