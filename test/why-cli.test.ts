// `rhopush why` as operators run it: a separate process reading Redis directly (no daemon needed),
// after a real daemon captured plugin writes, a device's own sync and writes that never ping.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDaemon, type Daemon } from '../src/daemon.js';
import type { WhyReport } from '../src/explain/why.js';
import {
  buildSettings,
  createUser,
  deviceSync,
  freePort,
  pushObjects,
  registerClient,
  waitUntil,
  writeSettings,
} from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';
import { runCli } from './helpers/cli.js';

const redis = useRedisServer();
let dir: string;
let settingsFile: string;
let daemon: Daemon;

const IPHONE = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhopush-why-'));
  const options = { redis: redis.server().port };
  settingsFile = writeSettings(dir, options);
  const r = redis.client();
  await createUser(r, 'alice');
  await registerClient(r, 'alice', { id: 'c1', device_type: 'APPLE', device_pin: IPHONE, phone_id: 'iphone-1' });
  await registerClient(r, 'alice', { id: 'c2', device_type: 'ANDROID', device_push_type: 'fcm', phone_id: 'pixel-1' });
  await createUser(r, 'erin');
  // The daemon captures, pings (delivery: log) and records; then it stops: `why` needs none of it.
  daemon = createDaemon({ settings: buildSettings({ ...options, listen: null }), http: false, queue: false });
  await daemon.start();
  await pushObjects(r, 'alice', 'Product', { '1': { name: 'Widget' } });
  // Finished, not only started: a ping that runs a while is listed as running first.
  const finished = async (user: string) => (await daemon.history.forUser(user)).some((p) => p.status === 'succeeded');
  await waitUntil(() => finished('alice'), { what: "alice's ping finished and recorded", timeoutMs: 10_000 });
  await deviceSync(r, 'alice', 'c1', 'Product', { '1': { name: 'Widget 2' } });
  await pushObjects(r, 'alice', 'Note', { n1: { title: 'milk' } });
  await pushObjects(r, '__shared__', 'Catalog', { c1: { sku: 'A-1' } });
  await pushObjects(r, 'erin', 'Product', { '1': { name: 'Gadget' } });
  await waitUntil(async () => (await daemon.history.decisionsOf('alice')).length >= 2, {
    what: "alice's decisions recorded",
    timeoutMs: 10_000,
  });
  await waitUntil(() => finished('erin'), { what: "erin's ping finished and recorded", timeoutMs: 10_000 });
  await daemon.stop();
});

afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const why = (...args: string[]) => runCli(['why', ...args, '--settings', settingsFile, '--env', 'test']);

describe('rhopush why', () => {
  it('says in words what was captured for alice, what was decided, and how her iPhone fared; newest first', async () => {
    const { code, stdout, stderr } = await why('alice');
    expect(code, stderr).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toBe('alice');
    const verdict = lines.indexOf('Verdict');
    expect(lines[verdict + 1]).toMatch(
      /^ {2}alice's iPhone …cdef: last ping \d\d:\d\d:\d\d for Product, logged, not sent \(:delivery: log\)$/,
    );
    // c2 registered without a device_pin: PingJob still pushes it (RhoConnect's rule), to no token.
    expect(lines[verdict + 2]).toMatch(
      /^ {2}alice's Android phone \(client c2\): last ping \d\d:\d\d:\d\d for Product, logged, not sent \(:delivery: log\); registered without a device_pin: its pushes have no token to go to$/,
    );
    const happened = lines.slice(lines.indexOf('What happened (newest first)') + 1, lines.indexOf('settings.yml') - 1);
    const shown = happened.map((l) => l.replace(/^\s+\d\d:\d\d:\d\d {2}/, '').replace(/ {2}\(ping \w+, succeeded\)$/, ''));
    expect(shown.slice(0, 3)).toEqual([
      'Note: plugin write, push_notify off → no ping',
      "Product: device's sync → no ping",
      'Product: plugin write → pinged',
    ]);
    // Under the ping, each device push in the order PingJob made them.
    expect(shown.slice(3).sort()).toEqual([
      '              Android phone client c2: logged, not sent (:delivery: log)',
      '              iPhone …cdef: logged, not sent (:delivery: log)',
    ]);
    expect(stdout).toContain('  Catalog: app-partitioned → never pings');
    expect(stdout).toContain('  Note: push_notify is off in settings.yml → plugin writes do not ping');
    expect(stdout).not.toContain(IPHONE);
  });

  it('prints the same explanation as JSON with --json', async () => {
    const { code, stdout } = await why('alice', '--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as WhyReport;
    expect(report.user).toBe('alice');
    expect(report.verdict).toMatchObject({ kind: 'devices', pinged: true, sources: ['Product'] });
    expect(report.events.map((e) => e.kind)).toEqual(['decision', 'decision', 'ping']);
    expect(report.devices.map((d) => [d.clientId, d.registered, d.token])).toEqual([
      ['c1', true, '012345…cdef'],
      ['c2', true, undefined],
    ]);
  });

  it('explains a source that never pings (--source), and one settings.yml does not list', async () => {
    const catalog = JSON.parse((await why('alice', '--source', 'Catalog', '--json')).stdout) as WhyReport;
    expect(catalog.verdict.pinged).toBe(false);
    expect(catalog.verdict.notPinged).toEqual([
      { source: 'Catalog', rule: 'app-partition-settings', text: 'Catalog: app-partitioned → never pings' },
    ]);
    expect(catalog.verdict.lines[0]).toMatch(/^alice's iPhone …cdef: no ping in the last 72 h \(Catalog: app-partitioned → never pings\)$/);
    const unlisted = await why('alice', '--source', 'Inventory');
    expect(unlisted.stdout).toContain(
      "Inventory: not in settings.yml: user-partitioned, the environment's push_notify is off → plugin writes do not ping",
    );
    expect(unlisted.stdout).toContain(
      "Inventory is not in settings.yml: RhoConnect treats it as user-partitioned, with the environment's push_notify",
    );
  });

  it('explains a user without devices who was pinged, and a user RhoConnect does not know', async () => {
    const erin = await why('erin');
    expect(erin.stdout).toMatch(/\n {2}erin has no registered device: last ping \d\d:\d\d:\d\d for Product, which had nobody to send to\n/);
    expect(erin.stdout).toContain('no device pushed: the user was unknown or had no registered client then');
    const ghost = await why('ghost');
    expect(ghost.code).toBe(0);
    expect(ghost.stdout.split('\n')[0]).toBe('ghost (not a RhoConnect user)');
    expect(ghost.stdout).toContain('  ghost is not a RhoConnect user (no user:ghost:rho__id): pings find no device to send to');
    expect(ghost.stdout).toContain('  (none: the user has no RhoConnect client)');
  });

  it('--since leaves out what happened before; a since it cannot read stops with a clear message', async () => {
    const later = JSON.parse((await why('alice', '--since', '2099-01-01T00:00:00Z', '--json')).stdout) as WhyReport;
    expect(later.events).toEqual([]);
    expect(later.verdict.pinged).toBe(false);
    const recent = JSON.parse((await why('alice', '--since', '1h', '--json')).stdout) as WhyReport;
    expect(recent.events).toHaveLength(3);
    const bad = await why('alice', '--since', 'yesterday');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/option '--since <when>' argument 'yesterday' is invalid\. expected a duration/);
  });

  it('stops with exit 2 and the reason when Redis cannot be reached', async () => {
    const closed = await freePort();
    const file = writeSettings(dir, { redis: closed }, 'closed.yml');
    const res = await runCli(['why', 'alice', '--settings', file, '--env', 'test']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(new RegExp(`^rhopush: cannot connect to Redis 127\\.0\\.0\\.1:${closed} `));
  });
});
