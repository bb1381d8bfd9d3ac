// rhopush doctor against real redis-servers (notifications off, CONFIG disabled) and real key
// material made at run time (valid, expired, mismatched and encrypted certificates).
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatDoctorReport, runDoctor, type DoctorReport } from '../src/doctor.js';
import { createUser, freePort, startRedisServer, writeSettings, type RedisServerProcess, type YamlMap } from '../src/kit/index.js';
import { runCli } from './helpers/cli.js';
import { Redis } from 'ioredis';

const ADMIN_TOKEN = 'doctor-admin-token';
const CONFIG_DISABLED = ['--rename-command', 'CONFIG', ''];

interface Setup {
  redis: string;
  apiToken?: string;
  /** RhoConnect's own keys of the environment. */
  env?: YamlMap;
  rhopush?: YamlMap;
}

let dir: string;
let n = 0;
/** Writes a settings file for one environment and returns its path. */
function settingsFile(s: Setup): string {
  const sources = { Product: { partition: 'user', pushNotify: 'true' }, Catalog: { partition: 'app', pushNotify: 'true' } };
  return writeSettings(
    dir,
    { redis: s.redis, apiToken: s.apiToken, sources, listen: null, env: s.env, rhopush: s.rhopush },
    `settings-${++n}.yml`,
  );
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const doctor = (path: string) => runDoctor({ file: path, environment: 'test', env: {}, timeoutMs: 1500 });
const failures = (r: DoctorReport) => r.checks.filter((c) => c.status === 'fail');
const line = (r: DoctorReport, pattern: RegExp) => {
  const found = r.checks.find((c) => pattern.test(c.line));
  if (!found) throw new Error(`no check matching ${pattern} in:\n${formatDoctorReport(r)}`);
  return found;
};

describe('rhopush doctor', () => {
  let ready: RedisServerProcess;
  let notificationsOff: RedisServerProcess;
  let locked: RedisServerProcess;
  let managed: RedisServerProcess;
  let goodCert: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rhopush-doctor-'));
    [ready, notificationsOff, locked, managed] = await Promise.all([
      startRedisServer({ args: ['--notify-keyspace-events', 'K$g'] }),
      startRedisServer(),
      startRedisServer({ args: CONFIG_DISABLED }),
      startRedisServer({ args: ['--notify-keyspace-events', 'KEA', ...CONFIG_DISABLED] }),
    ]);
    for (const server of [ready, notificationsOff, locked, managed]) {
      const r = new Redis(server.port, '127.0.0.1');
      await createUser(r, 'rhoadmin', { admin: '1' });
      await r.set(`api_token:${ADMIN_TOKEN}:user_id`, 'rhoadmin');
      await createUser(r, 'alice');
      await r.set('api_token:alice-token:user_id', 'alice');
      r.disconnect();
    }
    const pems = await generate([{ name: 'commonName', value: 'Apple Push Services: com.example.app' }], { keyType: 'ec' });
    goodCert = file('apns.pem', pems.cert + pems.private);
  });

  afterAll(async () => {
    await Promise.all([ready, notificationsOff, locked, managed].map((s) => s?.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes a complete setup: every check ✓, the source table, certificate expiry shown', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const account = file(
      'service-account.json',
      JSON.stringify({
        type: 'service_account',
        project_id: 'rhopush-test',
        client_email: 'push@rhopush-test.iam.gserviceaccount.com',
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      }),
    );
    const report = await doctor(
      settingsFile({
        redis: `127.0.0.1:${ready.port}`,
        apiToken: ADMIN_TOKEN,
        env: {
          iphonecertfile: goodCert,
          push_server: 'http://push:secret@127.0.0.1:8675/',
          fcm_project_id: 'rhopush-test',
          package_name: 'com.example.app',
        },
        rhopush: { apns: { topic: 'com.example.app' }, fcm: { service_account: account } },
      }),
    );
    expect(failures(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(line(report, /notify-keyspace-events is "[K$g]{3}" \(has K, \$, g\)/).status).toBe('ok');
    expect(line(report, /APNs certificate .*expires \d{4}-\d{2}-\d{2}/).status).toBe('ok');
    expect(line(report, /FCM service account/).line).toContain('project rhopush-test');
    expect(line(report, /RhoConnect Push/).line).not.toContain('secret');
    expect(line(report, /API token/).line).toContain('admin user rhoadmin');
    expect(report.sources).toEqual(
      expect.arrayContaining([
        { source: 'Product', pushNotify: true, partition: 'user', autoPing: 'yes' },
        { source: 'Catalog', pushNotify: true, partition: 'app', autoPing: 'no (app-partitioned)' },
      ]),
    );
    const text = formatDoctorReport(report);
    expect(text).toMatch(/^✓ settings: /);
    expect(text).toMatch(/^ {4}Product +true +user +yes$/m);
    expect(text).toContain('All checks passed.');
  });

  it('fails a Redis with keyspace notifications off, and says how to keep them on', async () => {
    const report = await doctor(settingsFile({ redis: `127.0.0.1:${notificationsOff.port}`, apiToken: ADMIN_TOKEN }));
    const notify = line(report, /notify-keyspace-events is ""/);
    expect(notify.status).toBe('fail');
    expect(notify.line).toContain('missing K, $');
    expect(notify.fix).toContain('redis.conf');
    expect(line(report, /CONFIG SET allowed/).status).toBe('ok');
    expect(report.ok).toBe(false);
    expect(formatDoctorReport(report)).toMatch(/^✗ Redis .*\n {4}fix: /m);
  });

  it('fails a Redis with notifications off where CONFIG is disabled (rhopush cannot fix it)', async () => {
    const report = await doctor(settingsFile({ redis: `127.0.0.1:${locked.port}`, apiToken: ADMIN_TOKEN }));
    const notify = line(report, /keyspace notifications do not arrive/);
    expect(notify.status).toBe('fail');
    expect(notify.line).toContain('CONFIG is disabled');
    expect(notify.fix).toContain('notify-keyspace-events');
  });

  it('passes a Redis where CONFIG is disabled but notifications are on (checked with a test key)', async () => {
    const report = await doctor(settingsFile({ redis: `127.0.0.1:${managed.port}`, apiToken: ADMIN_TOKEN }));
    expect(line(report, /keyspace notifications arrive/).status).toBe('ok');
    expect(report.ok).toBe(true);
  });

  it('fails a Redis that is not reachable', async () => {
    const report = await doctor(settingsFile({ redis: `127.0.0.1:${await freePort()}`, apiToken: ADMIN_TOKEN }));
    const down = line(report, /not reachable/);
    expect(down.status).toBe('fail');
    expect(down.fix).toContain(':redis:');
  });

  it('fails an expired APNs certificate and shows when it expired', async () => {
    const pems = await generate([{ name: 'commonName', value: 'expired' }], {
      keyType: 'ec',
      notBeforeDate: new Date('2020-01-01T00:00:00Z'),
      notAfterDate: new Date('2021-01-01T00:00:00Z'),
    });
    const cert = file('expired.pem', pems.cert + pems.private);
    const report = await doctor(settingsFile({ redis: `127.0.0.1:${ready.port}`, apiToken: ADMIN_TOKEN, env: { iphonecertfile: cert } }));
    const check = line(report, /APNs certificate/);
    expect(check.status).toBe('fail');
    expect(check.line).toContain('expired on 2021-01-01');
    expect(check.fix).toMatch(/renew/);
    expect(report.ok).toBe(false);
  });

  it('fails a certificate whose key is not its own, a file without a certificate, and a missing file', async () => {
    const a = await generate([{ name: 'commonName', value: 'a' }], { keyType: 'ec' });
    const b = await generate([{ name: 'commonName', value: 'b' }], { keyType: 'ec' });
    const mismatched = file('mismatched.pem', a.cert + b.private);
    const noCert = file('garbage.pem', 'this is not a certificate\n');
    const report = await doctor(
      settingsFile({
        redis: `127.0.0.1:${ready.port}`,
        apiToken: ADMIN_TOKEN,
        env: {
          iphonecertfile: mismatched,
          iphonecertificates: {
            'com.example.one': { iphonecertfile: noCert },
            'com.example.two': { iphonecertfile: join(dir, 'missing.pem') },
          },
        },
      }),
    );
    expect(line(report, /mismatched\.pem/).line).toContain('does not belong to the certificate');
    expect(line(report, /garbage\.pem/).line).toContain('no PEM certificate');
    expect(line(report, /missing\.pem/).line).toContain('ENOENT');
    expect(failures(report)).toHaveLength(3);
  });

  it('needs the passphrase of an encrypted certificate key', async () => {
    const pems = await generate([{ name: 'commonName', value: 'locked' }], { keyType: 'ec', passphrase: 'open sesame' });
    const cert = file('encrypted.pem', pems.cert + pems.private);
    const without = await doctor(settingsFile({ redis: `127.0.0.1:${ready.port}`, apiToken: ADMIN_TOKEN, env: { iphonecertfile: cert } }));
    expect(line(without, /encrypted\.pem/).status).toBe('fail');
    expect(line(without, /encrypted\.pem/).fix).toContain(':iphonepassphrase:');
    const withIt = await doctor(
      settingsFile({
        redis: `127.0.0.1:${ready.port}`,
        apiToken: ADMIN_TOKEN,
        env: { iphonecertfile: cert, iphonepassphrase: 'open sesame' },
      }),
    );
    expect(line(withIt, /encrypted\.pem/).status).toBe('ok');
  });

  it('checks an APNs token key: EC P-256, key id, team id and topic', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const good = file('AuthKey_ABC123DEFG.p8', ec);
    const wrong = file('rsa.p8', rsa);
    const incomplete = await doctor(
      settingsFile({ redis: `127.0.0.1:${ready.port}`, apiToken: ADMIN_TOKEN, rhopush: { apns: { token_key: good } } }),
    );
    expect(line(incomplete, /APNs token key/).status).toBe('ok');
    expect(line(incomplete, /:key_id:/).status).toBe('fail');
    expect(line(incomplete, /:team_id:/).status).toBe('fail');
    // Delivery falls back to each device's device_app_id: a warning, as delivery decides it.
    expect(line(incomplete, /APNs topic/).status).toBe('warn');
    expect(line(incomplete, /APNs topic/).line).toMatch(/device_app_id is used, and a device without one fails/);
    const wrongKey = await doctor(
      settingsFile({
        redis: `127.0.0.1:${ready.port}`,
        apiToken: ADMIN_TOKEN,
        rhopush: { apns: { token_key: wrong, key_id: 'ABC123DEFG', team_id: 'TEAM123456', topic: 'com.example.app' } },
      }),
    );
    expect(line(wrongKey, /APNs token key/).line).toContain('not an APNs signing key');
    expect(failures(wrongKey)).toHaveLength(1);
  });

  it('checks the FCM service account and project id, the push server URL and the API token', async () => {
    const account = file(
      'bad-account.json',
      JSON.stringify({ type: 'service_account', project_id: 'p', client_email: 'x@p.iam.gserviceaccount.com' }),
    );
    const report = await doctor(
      settingsFile({
        redis: `127.0.0.1:${ready.port}`,
        apiToken: 'alice-token',
        env: { push_server: 'ftp://push.example.com/' },
        rhopush: { fcm: { service_account: account } },
      }),
    );
    expect(line(report, /FCM service account/).line).toContain('missing private_key');
    // Like RhoConnect (and rhopush's FCM adapter), the project id comes from settings.yml only.
    expect(line(report, /FCM project id/)).toMatchObject({
      status: 'fail',
      line: 'FCM project id: Missing `:fcm_project_id:` option in settings/settings.yml',
    });
    expect(line(report, /FCM project id/).fix).toContain("the service account's is p");
    expect(line(report, /FCM package name/).line).toBe('FCM package name: Missing `:package_name:` option in settings/settings.yml');
    expect(line(report, /RhoConnect Push/).status).toBe('fail');
    // A configured token is valid because it is configured; whom RhoConnect gave it to is shown.
    expect(line(report, /API token/)).toMatchObject({ status: 'ok', line: expect.stringContaining('(user alice, not an admin)') });

    // RhoConnect not knowing the configured token changes nothing: rhopush accepts it.
    const noProject = await doctor(
      settingsFile({
        redis: `127.0.0.1:${ready.port}`,
        apiToken: 'unknown-token',
        env: { fcm_project_id: '', package_name: 'com.example' },
      }),
    );
    expect(line(noProject, /API token/)).toMatchObject({
      status: 'ok',
      line: 'API token: configured (:api_token:); REST pings with it are accepted',
    });

    // Without one, the REST API takes the tokens RhoConnect issued to admins: nothing to fix.
    const noToken = await doctor(settingsFile({ redis: `127.0.0.1:${ready.port}` }));
    expect(line(noToken, /API token/).status).toBe('skip');
    expect(line(noToken, /API token/).line).toContain('only tokens RhoConnect issued to admin users');
  });

  it('reports a settings file that does not parse with its line, and nothing else', async () => {
    const path = file('broken.yml', ':sources:\n  Product:\n    :push_notify: [true\n:test:\n  :redis: 127.0.0.1:1\n');
    const report = await doctor(path);
    expect(report.checks).toHaveLength(1);
    expect(report.checks[0]!.status).toBe('fail');
    expect(report.checks[0]!.line).toMatch(/broken\.yml:\d+/);
    expect(report.checks[0]!.fix).toMatch(/line \d+/);
  });

  it('passes on the settings.yml rhopush ships (pointed at a running Redis with REDIS_URL)', async () => {
    const shipped = join(import.meta.dirname, '..', 'settings.yml');
    const result = await runCli(['doctor', '-s', shipped, '-e', 'development'], { REDIS_URL: `redis://127.0.0.1:${ready.port}` });
    expect(result.stdout).toMatch(/^✓ API token: configured \(:api_token:\); REST pings with it are accepted$/m);
    expect(result.stdout).toContain('All checks passed.');
    expect(result.code).toBe(0);
  });

  it('shows unknown :rhopush: keys as warnings (!) that do not fail, with the nearest known name', async () => {
    const report = await doctor(settingsFile({ redis: `127.0.0.1:${ready.port}`, apiToken: ADMIN_TOKEN, rhopush: { coalesce: 50 } }));
    expect(line(report, /coalesce:/)).toMatchObject({
      status: 'warn',
      line: expect.stringMatching(/:test: :rhopush: :coalesce: is not a rhopush setting and is ignored; did you mean :coalesce_ms:\?$/),
    });
    expect(formatDoctorReport(report)).toMatch(/^! settings: .*:coalesce: is not a rhopush setting/m);
    expect(report.ok).toBe(true);
  });

  it('the CLI prints one line per check and exits 1 when anything is ✗, 0 when all pass', async () => {
    const failing = await runCli([
      'doctor',
      '-s',
      settingsFile({ redis: `127.0.0.1:${notificationsOff.port}`, apiToken: ADMIN_TOKEN }),
      '-e',
      'test',
    ]);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/^✗ Redis 127\.0\.0\.1:\d+: notify-keyspace-events/m);
    expect(failing.stdout).toMatch(/^ {4}fix: /m);
    expect(failing.stdout).toMatch(/1 problem found\.$/m);

    const passing = await runCli(['doctor', '-s', settingsFile({ redis: `127.0.0.1:${ready.port}`, apiToken: ADMIN_TOKEN }), '-e', 'test']);
    expect(passing.stdout).toContain('All checks passed.');
    expect(passing.code).toBe(0);
  });
});
