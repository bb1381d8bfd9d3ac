import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings, parseSettings, SettingsError, sourcePolicy } from '../src/config/index.js';

const base = `
:sources:
  Product:
    :partition_type: user
    :push_notify: 'true'
  Memo:
    :poll_interval: 900
  PriceList:
    partition_type: app
    push_notify: true
  Forced:
    :push_notify: 'true'
    :force_default: true
:development:
  :redis: localhost:6379
  :api_token: dev-token
  :push_notify: 'false'
  :syncserver: http://localhost:9292
:production:
  :redis:
    - redis-main.internal:6379
    - redis-data1.internal:6380:2:s3cr:et
  :push_notify_default: 'true'
`;

const noEnv = { env: {} as NodeJS.ProcessEnv };

describe('settings.yml, read as RhoConnect reads it', () => {
  it('accepts symbol-style and plain keys and resolves each source like RhoConnect', () => {
    const s = parseSettings(base, 'settings.yml', noEnv);
    expect(s.environment).toBe('development');
    expect(sourcePolicy(s, 'Product')).toMatchObject({ pushNotify: true, partitionType: 'user', listed: true });
    expect(sourcePolicy(s, 'Memo')).toMatchObject({ pushNotify: false, partitionType: 'user' });
    expect(sourcePolicy(s, 'PriceList')).toMatchObject({ pushNotify: true, partitionType: 'app' });
    // force_default: the environment value wins over the source's own
    expect(sourcePolicy(s, 'Forced').pushNotify).toBe(false);
    expect(s.apiToken).toBe('dev-token');
  });

  it('takes the environment default from :push_notify_default: and applies it to unlisted sources', () => {
    const s = parseSettings(base, 'settings.yml', { environment: 'production', env: {} });
    expect(sourcePolicy(s, 'Memo').pushNotify).toBe(true);
    expect(sourcePolicy(s, 'Forced').pushNotify).toBe(true);
    expect(sourcePolicy(s, 'NotInSettings')).toEqual({ name: 'NotInSettings', pushNotify: true, partitionType: 'user', listed: false });
    expect(s.defaultPushNotify).toBe(true);
  });

  it('turns a flag on only for a value whose string form is true', () => {
    const yaml = (v: string) => `:sources:\n  A:\n    :push_notify: ${v}\n:development:\n  :redis: localhost:6379\n`;
    expect(sourcePolicy(parseSettings(yaml("'true'"), 'f', noEnv), 'A').pushNotify).toBe(true);
    expect(sourcePolicy(parseSettings(yaml('true'), 'f', noEnv), 'A').pushNotify).toBe(true);
    expect(sourcePolicy(parseSettings(yaml("'TRUE'"), 'f', noEnv), 'A').pushNotify).toBe(false);
    expect(sourcePolicy(parseSettings(yaml('false'), 'f', noEnv), 'A').pushNotify).toBe(false);
    expect(sourcePolicy(parseSettings(yaml("'yes'"), 'f', noEnv), 'A').pushNotify).toBe(false);
  });

  it('chooses the environment section from the option, then RACK_ENV, then development', () => {
    expect(parseSettings(base, 'f', { env: { RACK_ENV: 'production' } }).environment).toBe('production');
    expect(parseSettings(base, 'f', { environment: 'development', env: { RACK_ENV: 'production' } }).environment).toBe('development');
  });

  it('reads :redis: as host:port[:db[:password]] or an array, and REDIS_URL overrides it', () => {
    const prod = parseSettings(base, 'f', { environment: 'production', env: {} });
    expect(prod.redis.map((r) => [r.host, r.port, r.db, r.password])).toEqual([
      ['redis-main.internal', 6379, 0, undefined],
      ['redis-data1.internal', 6380, 2, 's3cr:et'],
    ]);
    const overridden = parseSettings(base, 'f', { env: { REDIS_URL: 'redis://:pw@10.1.2.3:7000/3', API_TOKEN: 'from-env' } });
    expect(overridden.redis).toHaveLength(1);
    expect(overridden.redis[0]).toMatchObject({ host: '10.1.2.3', port: 7000, db: 3, password: 'pw' });
    expect(overridden.apiToken).toBe('from-env');
  });

  it('fills the :rhopush: section with defaults and reads overrides', () => {
    const s = parseSettings(base, 'f', noEnv);
    expect(s.rhopush).toMatchObject({
      listen: { host: '127.0.0.1', port: 9293 },
      coalesceMs: 100,
      maxDelayMs: 1000,
      delivery: 'log',
      maxUsersPerPing: 10000,
    });
    const custom = parseSettings(
      `:development:\n  :rhopush:\n    :listen: 0.0.0.0:8080\n    :coalesce_ms: 50\n    :max_delay_ms: '500'\n    :delivery: live\n`,
      'f',
      noEnv,
    );
    expect(custom.rhopush).toMatchObject({ listen: { host: '0.0.0.0', port: 8080 }, coalesceMs: 50, maxDelayMs: 500, delivery: 'live' });
  });

  it('defaults delivery to live once push credentials are set', () => {
    const s = parseSettings(`:development:\n  :push_server: http://app@localhost:8675/\n`, 'f', noEnv);
    expect(s.rhopush.delivery).toBe('live');
  });

  it('keeps keys it does not know', () => {
    const s = parseSettings(base, 'f', noEnv);
    expect(s.raw.syncserver).toBe('http://localhost:9292');
  });

  it('reports YAML syntax errors with file, line and column', () => {
    const bad = ':sources:\n  Product:\n    :push_notify: [true\n:development:\n';
    expect(() => parseSettings(bad, '/app/settings.yml', noEnv)).toThrow(SettingsError);
    try {
      parseSettings(bad, '/app/settings.yml', noEnv);
    } catch (err) {
      const e = err as SettingsError;
      expect(e.message).toMatch(/^\/app\/settings\.yml:\d+:\d+: invalid YAML/);
      expect(e.line).toBeGreaterThanOrEqual(3);
    }
  });

  it('names the file, the line, the key and what was expected for bad values', () => {
    const bad = ':sources:\n  Product:\n    :partition_type: team\n:development:\n  :redis: localhost:6379\n';
    expect(() => parseSettings(bad, '/app/settings.yml', noEnv)).toThrow(
      '/app/settings.yml:3:5: :sources: :Product: :partition_type: expected user or app (got "team")',
    );
    const badPort = ':development:\n  :redis: localhost:http\n';
    expect(() => parseSettings(badPort, 'f', noEnv)).toThrow(/:development: :redis: expected host:port/);
    const badNumber = ':development:\n  :rhopush:\n    :coalesce_ms: soon\n';
    expect(() => parseSettings(badNumber, 'f', noEnv)).toThrow(
      /f:3:5: :development: :rhopush: :coalesce_ms: expected a whole number \(got "soon"\)/,
    );
  });

  it('says which environment section is missing', () => {
    expect(() => parseSettings(base, 'f', { environment: 'staging', env: {} })).toThrow(/:staging: expected an environment section/);
  });

  it('loads from a file and reports a missing file plainly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rhopush-settings-'));
    const file = join(dir, 'settings.yml');
    writeFileSync(file, base);
    expect(loadSettings(file, noEnv).file).toBe(file);
    expect(() => loadSettings(join(dir, 'missing.yml'), noEnv)).toThrow(/missing\.yml: cannot read the file/);
  });

  it('reads per-application APNs certificates', () => {
    const s = parseSettings(
      `:development:\n  :iphonecertificates:\n    com.example.orders:\n      :iphonecertfile: settings/a.pem\n      :iphonepassphrase: ''\n`,
      'f',
      noEnv,
    );
    expect(s.push.iphoneCertificates).toEqual({ 'com.example.orders': { certFile: 'settings/a.pem', passphrase: '' } });
    expect(s.rhopush.delivery).toBe('live');
  });

  it('reports every problem in the file at once, each with its line', () => {
    const bad = [
      ':sources:',
      '  Product:',
      '    :partition_type: team',
      ':development:',
      '  :redis: localhost:6379',
      '  :rhopush:',
      '    :coalesce_ms: soon',
      '    :cluster: maybe',
      '    :delivery: loud',
      '',
    ].join('\n');
    let error: SettingsError | undefined;
    try {
      parseSettings(bad, '/app/settings.yml', noEnv);
    } catch (err) {
      error = err as SettingsError;
    }
    expect(error).toBeInstanceOf(SettingsError);
    expect(error!.problems.map((p) => p.line)).toEqual([3, 7, 8, 9]);
    expect(error!.message.split('\n')).toEqual([
      '/app/settings.yml: 4 problems:',
      '  /app/settings.yml:3:5: :sources: :Product: :partition_type: expected user or app (got "team")',
      '  /app/settings.yml:7:5: :development: :rhopush: :coalesce_ms: expected a whole number (got "soon")',
      '  /app/settings.yml:8:5: :development: :rhopush: :cluster: expected true or false (got "maybe")',
      '  /app/settings.yml:9:5: :development: :rhopush: :delivery: expected one of live, log (got "loud")',
    ]);
    // The first problem's place is the error's own, for callers that show one line.
    expect(error!.line).toBe(3);
  });

  it("takes rhopush's own flags as true or false only; RhoConnect's push_notify keeps its rule", () => {
    const rp = (v: string) => `:development:\n  :rhopush:\n    :cluster: ${v}\n    :apns:\n      :production: ${v}\n`;
    expect(parseSettings(rp('true'), 'f', noEnv).rhopush).toMatchObject({ cluster: true, apns: { production: true } });
    expect(parseSettings(rp("'false'"), 'f', noEnv).rhopush).toMatchObject({ cluster: false, apns: { production: false } });
    expect(() => parseSettings(rp('yes'), 'f', noEnv)).toThrow(
      /:cluster: expected true or false \(got "yes"\)\n.*:apns: :production: expected true or false/,
    );
    // push_notify is RhoConnect's: anything but true is off, as RhoConnect reads it.
    const yes = parseSettings(`:sources:\n  A:\n    :push_notify: 'yes'\n:development:\n  :redis: localhost:6379\n`, 'f', noEnv);
    expect(sourcePolicy(yes, 'A').pushNotify).toBe(false);
  });

  it('warns about unknown keys under :rhopush: with the nearest known name, and keeps going', () => {
    const s = parseSettings(
      ':development:\n  :rhopush:\n    :coalesce: 50\n    :max_delay: 500\n    :delivry: log\n    :apns:\n      :topik: com.example\n    :frobnicate: 1\n',
      '/app/settings.yml',
      noEnv,
    );
    expect(s.warnings!.map((w) => w.message)).toEqual([
      '/app/settings.yml:3:5: :development: :rhopush: :coalesce: is not a rhopush setting and is ignored; did you mean :coalesce_ms:?',
      '/app/settings.yml:4:5: :development: :rhopush: :max_delay: is not a rhopush setting and is ignored; did you mean :max_delay_ms:?',
      '/app/settings.yml:5:5: :development: :rhopush: :delivry: is not a rhopush setting and is ignored; did you mean :delivery:?',
      expect.stringMatching(
        /^\/app\/settings\.yml:8:5: :development: :rhopush: :frobnicate: is not a rhopush setting and is ignored; known keys: :listen:, /,
      ),
      '/app/settings.yml:7:7: :development: :rhopush: :apns: :topik: is not a rhopush setting and is ignored; did you mean :topic:?',
    ]);
    // Keys outside :rhopush: are RhoConnect's (or the app's): never warned about.
    expect(parseSettings(base, 'f', noEnv).warnings).toEqual([]);
  });

  it('refuses a quiet period longer than the longest wait, which could never apply', () => {
    const rp = (body: string) => `:development:\n  :rhopush:\n${body}`;
    expect(() => parseSettings(rp('    :coalesce_ms: 2000\n    :max_delay_ms: 1000\n'), 'f', noEnv)).toThrow(
      /f:3:5: :development: :rhopush: :coalesce_ms: expected :coalesce_ms: \(2000\) at most :max_delay_ms: \(1000\)/,
    );
    // Only :max_delay_ms: set, below the default quiet period: that one is named.
    expect(() => parseSettings(rp('    :max_delay_ms: 50\n'), 'f', noEnv)).toThrow(
      /:max_delay_ms: expected :coalesce_ms: \(100, the default\) at most :max_delay_ms: \(50\)/,
    );
    expect(parseSettings(rp('    :coalesce_ms: 1000\n    :max_delay_ms: 1000\n'), 'f', noEnv).rhopush).toMatchObject({
      coalesceMs: 1000,
      maxDelayMs: 1000,
    });
  });

  it('refuses a database other than 0 with Redis Cluster, which has only database 0', () => {
    expect(() => parseSettings(':development:\n  :redis: 10.0.0.1:7000:3\n  :rhopush:\n    :cluster: true\n', 'f', noEnv)).toThrow(
      /:development: :redis: expected database 0 with :rhopush: :cluster: true/,
    );
  });
});
