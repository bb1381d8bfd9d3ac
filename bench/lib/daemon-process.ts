// `rhopush run` as its own process, the way it is deployed: the benchmark process only generates
// load and observes, so its work never counts against rhopush.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitUntil, WaitTimeoutError } from '../../src/kit/index.js';
import { EXTRA_NODE_ARGS } from './processes.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface DaemonProcess {
  pid: number;
  port: number;
  /** Resident set size now, MiB (from /proc). */
  rssMiB(): number;
  /** GET /metrics, parsed into name{labels} → value. */
  metrics(): Promise<Map<string, number>>;
  /** SIGTERM; resolves when the process has exited (rhopush sends what is grouped first). */
  stop(): Promise<void>;
}

export async function startDaemonProcess(settingsFile: string, port: number, environment = 'bench'): Promise<DaemonProcess> {
  const child = spawn(
    process.execPath,
    [...EXTRA_NODE_ARGS, '--import', 'tsx', join(ROOT, 'src', 'cli.ts'), 'run', '--settings', settingsFile, '--env', environment],
    {
      cwd: ROOT,
      // Logs go nowhere (as they would to a log file); the last of stderr is kept for errors.
      stdio: ['ignore', process.env.BENCH_DAEMON_STDOUT ? 'inherit' : 'ignore', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));

  const base = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (exitCode !== undefined) throw new Error(`rhopush run exited with ${exitCode}: ${stderr}`);
      const res = await fetch(`${base}/healthz`).catch(() => undefined); // not listening yet
      return res?.status === 200;
    },
    { what: 'rhopush run to answer /healthz with 200', timeoutMs: 30_000, intervalMs: 100 },
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err instanceof WaitTimeoutError ? new Error(`${err.message}: ${stderr}`) : err;
  });

  return {
    pid: child.pid!,
    port,
    rssMiB: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
      return kb / 1024;
    },
    metrics: async () => parseMetrics(await (await fetch(`${base}/metrics`)).text()),
    stop: async () => {
      if (exitCode === undefined) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Starts `rhopush run` on a port free a moment ago; when another process takes that port before
 * rhopush listens on it, tries again on another one. `write` writes the settings for a port and
 * returns the file.
 */
export async function startDaemonOnFreePort(write: (port: number) => string, environment = 'bench'): Promise<DaemonProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await startDaemonProcess(write(port), port, environment);
    } catch (err) {
      if (attempt >= 5 || !/address is in use/.test((err as Error).message)) throw err;
    }
  }
}

/** Prometheus text format → `name{labels}` → value (comments skipped). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}
