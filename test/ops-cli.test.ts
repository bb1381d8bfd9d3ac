// The CLI operators use: help and version, `rhopush ping` with per-device outcomes, and replay
// progress that shows on a terminal only.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { terminalProgress } from '../src/util/progress.js';
import { createUser, registerClient, settingsYaml } from '../src/kit/index.js';
import { useRedisServer } from './helpers/redis.js';
import { ADMIN_TOKEN } from './helpers/entry-points.js';
import { runCli } from './helpers/cli.js';

const redis = useRedisServer();
const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };

describe('rhopush CLI', () => {
  let dir: string;
  let settings: string;
  let occupied: Server;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rhopush-cli-'));
    // :listen: points at a port something else holds: `ping` must not try to serve the API.
    occupied = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    const port = (occupied.address() as { port: number }).port;
    settings = join(dir, 'settings.yml');
    writeFileSync(settings, settingsYaml({ redis: redis.server().port, apiToken: ADMIN_TOKEN, listen: port }));
    const r = redis.client();
    await createUser(r, 'alice');
    await registerClient(r, 'alice', { id: 'c1', device_type: 'APPLE', device_pin: 'aaaa1111 bbbb2222 cccc3333', phone_id: 'phone-1' });
    await registerClient(r, 'alice', {
      id: 'c2',
      device_type: 'ANDROID',
      device_push_type: 'fcm',
      device_pin: 'fcm-registration-token-123456',
      phone_id: 'phone-2',
    });
    await registerClient(r, 'alice', { id: 'c3', device_type: 'BLACKBERRY', device_pin: 'bb-pin', phone_id: 'phone-3' });
  });

  afterAll(async () => {
    await new Promise((resolve) => occupied.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('--help lists every command, each command has its own --help, --version prints the version', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['run', 'ping', 'replay', 'doctor']) expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    const run = await runCli(['run', '--help']);
    expect(run.stdout).toContain('--shutdown-timeout');
    expect(run.stdout).toMatch(/SIGTERM, SIGINT/);
    expect(run.stdout).toMatch(/SIGHUP/);
    const version = await runCli(['--version']);
    expect(version.stdout.trim()).toBe(pkg.version);
  });

  it('ping prints one line per device and a summary, and skips unknown users', async () => {
    const result = await runCli([
      'ping',
      '-s',
      settings,
      '-e',
      'test',
      '--user',
      'alice',
      '--user',
      'ghost',
      '--sources',
      'Product',
      '--message',
      'hello',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const all = result.stdout.trim().split('\n');
    // With delivery log, each device push is printed first, as `rhopush run` prints it.
    const pushes = all
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; push: { platform: string; user: string; payload: unknown } });
    expect(pushes.map((p) => p.msg)).toEqual(['device push (delivery: log)', 'device push (delivery: log)']);
    expect(pushes.find((p) => p.push.platform === 'apple')!.push).toMatchObject({
      user: 'alice',
      client: 'c1',
      token: 'aaaa11…3333',
      payload: { aps: { alert: 'hello', 'content-available': 1 }, do_sync: ['Product'] },
    });
    const lines = all.filter((l) => !l.startsWith('{'));
    expect(lines[0]).toBe('ghost: unknown user or no registered clients');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^alice +apple +aaaa11…3333 +logged$/),
        expect.stringMatching(/^alice +fcm +fcm-re…3456 +logged$/),
        expect.stringMatching(/^alice +BLACKBERRY +bb… +dropped +unsupported platform 'BLACKBERRY'$/),
      ]),
    );
    expect(lines.at(-1)).toMatch(/^3 devices: 2 logged, 1 dropped \(ping [0-9a-z]+\)$/);
    // Device tokens are never printed whole.
    expect(result.stdout).not.toContain('fcm-registration-token-123456');
  });

  it('ping --json prints the result; bad parameters get a clear error', async () => {
    const json = await runCli(['ping', '-s', settings, '-e', 'test', '--user', 'alice', '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { users: string[]; pushes: unknown[]; trigger: string };
    // stdout holds the result alone; the device pushes went to stderr.
    expect(
      json.stderr
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { msg: string }).msg),
    ).toEqual(['device push (delivery: log)', 'device push (delivery: log)']);
    expect(parsed).toMatchObject({ users: ['alice'], trigger: 'cli' });
    expect(parsed.pushes).toHaveLength(3);
    const bad = await runCli(['ping', '-s', settings, '-e', 'test', '--user', 'alice', '--badge', 'many']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('badge: expected a whole number');
  });

  it('replay stays quiet on stderr when it is not a terminal', async () => {
    const result = await runCli(['replay', 'test/fixtures/rhoconnect/01-push-objects-new.json']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^✓ .*01-push-objects-new\.json$/m);
    expect(result.stderr).toBe('');
  });
});

describe('terminal progress', () => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        chunks.push(String(chunk));
        done();
      },
    }) as unknown as NodeJS.WriteStream;
    Object.assign(stream, { isTTY, columns: 80 });
    return { stream, chunks };
  };

  it('redraws one line on a terminal and clears it at the end', () => {
    const { stream, chunks } = sink(true);
    const progress = terminalProgress('replaying', stream);
    progress.update(1, 4, '01-push-objects-new.json');
    progress.update(4, 4, 'a-very-long-fixture-name-that-does-not-fit-in-eighty-columns-of-a-terminal.json');
    progress.end();
    // eslint-disable-next-line no-control-regex -- the terminal's erase-line sequence is the point
    expect(chunks[0]).toMatch(/^\r\x1b\[2Kreplaying █████░{15} 1\/4 {2}01-push-objects-new\.json$/);
    expect(chunks[1]!.replace('\r\x1b[2K', '').length).toBeLessThanOrEqual(79);
    expect(chunks[1]).toContain('4/4');
    expect(chunks.at(-1)).toBe('\r\x1b[2K');
  });

  it('writes nothing when the stream is not a terminal', () => {
    const { stream, chunks } = sink(false);
    const progress = terminalProgress('replaying', stream);
    progress.update(1, 2);
    progress.end();
    expect(chunks).toEqual([]);
  });
});
