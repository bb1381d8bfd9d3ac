// `rhopush demo` runs to completion on a machine with nothing configured, and cleans up after itself.
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function run(): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    // No settings file, no Redis on a known port, no credentials: the demo brings its own.
    execFile(
      process.execPath,
      [join(ROOT, 'dist', 'cli.js'), 'demo'],
      { cwd: '/', env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 },
      (err, stdout) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
      },
    );
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('rhopush demo', () => {
  it('captures, decides, groups and delivers to all three stand-ins, then stops everything it started', async () => {
    const { code, stdout } = await run();
    expect(code).toBe(0);
    expect(stdout).toMatch(/captured INCRBY source:application:alice:Product:md_size {2}→ {2}ping \(plugin-write\)/);
    expect(stdout).toMatch(/captured INCRBY source:application:__shared__:Catalog:md_size {2}→ {2}no ping \(app-partition\)/);
    expect(stdout).toMatch(/grouped: alice → \[Product, Contact\] in one ping \(2 changes\)/);
    expect(stdout).toContain('apns-push-type: background, apns-priority: 5  → 200');
    expect(stdout).toContain('{"aps":{"content-available":1},"do_sync":["Product","Contact"]}');
    expect(stdout).toContain('POST /v1/projects/rhopush-demo/messages:send  → 200');
    expect(stdout).toContain('{"data":{"do_sync":["Product","Contact"]}}');
    expect(stdout).toMatch(/done: 3 plugin writes → 2 changes for alice .* → 1 ping → 3 device pushes/);
    const ports = [...stdout.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
    expect(ports.length).toBeGreaterThanOrEqual(4);
    for (const port of ports) expect(await listening(port), `port ${port} still open`).toBe(false);
  });
});
