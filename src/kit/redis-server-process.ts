import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { sleep, waitUntil } from './wait.js';

/** A private redis-server process on a free loopback port (tests, replay, demo, benchmarks). */
export interface RedisServerProcess {
  host: string;
  port: number;
  /** Cluster bus port (port + 10000), with `clusterBus`. */
  busPort?: number;
  url: string;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
  /** kill -9, for fault tests; `restart` brings it back on the same port. */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

export interface RedisServerOptions {
  port?: number;
  args?: string[];
  binary?: string;
  /**
   * A cluster node: its bus port (port + 10000, Redis' default) must be free too, so the port is
   * chosen where both are.
   */
  clusterBus?: boolean;
}

/** Offset of a cluster node's bus port from its port (Redis' default). */
export const CLUSTER_BUS_OFFSET = 10_000;

/** Tries a start on other ports when a port chosen free was taken before the server bound it. */
const START_ATTEMPTS = 5;

/** A loopback port that was free a moment ago (the system's choice). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether `port` can be listened on now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A port free together with port + 10000. Picked below the system's ephemeral range (where
 * outgoing connections take their local ports) and so that the bus port stays a valid port.
 */
export async function freeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if ((await portFree(port)) && (await portFree(port + CLUSTER_BUS_OFFSET))) return port;
  }
  throw new Error('no free port pair (port and port + 10000) found for a cluster node');
}

/** A start that failed because the port (or the bus port) was taken meanwhile: worth another port. */
class PortTakenError extends Error {}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerProcess> {
  const binary = options.binary ?? process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const dir = mkdtempSync(join(tmpdir(), 'rhopush-redis-'));
  const pickPort = () => (options.clusterBus ? freeClusterPort() : freePort());
  let port = options.port ?? (await pickPort());
  let child: ChildProcess;

  const launch = async () => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
      ...(options.args ?? []),
    ];
    child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d) => (output += String(d)));
    child.stderr?.on('data', (d) => (output += String(d)));
    const exited = new Promise<never>((_, reject) => {
      child.once('error', (err) => reject(new Error(`cannot start ${binary}: ${err.message} (install redis-server)`)));
      child.once('exit', (code) => {
        const message = `${binary} exited with ${code}: ${output.trim()}`;
        reject(/Address already in use/.test(output) ? new PortTakenError(message) : new Error(message));
      });
    });
    exited.catch(() => undefined);
    await Promise.race([waitForPort(port, child), exited]);
  };

  /** Starts on `port`; a start that loses the port to another process tries again (new ports unless fixed). */
  const launchWithRetries = async (samePort: boolean) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await launch();
        return;
      } catch (err) {
        if (!(err instanceof PortTakenError) || attempt >= START_ATTEMPTS) throw err;
        if (samePort) await sleep(200);
        else port = await pickPort();
      }
    }
  };

  try {
    await launchWithRetries(options.port !== undefined);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const handle: RedisServerProcess = {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    get busPort() {
      return options.clusterBus ? port + CLUSTER_BUS_OFFSET : undefined;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    dir,
    get process() {
      return child;
    },
    async stop() {
      await terminate(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      await terminate(child, 'SIGKILL');
    },
    async restart() {
      await terminate(child, 'SIGKILL');
      // Same port: clients reconnect to it. Another process may hold it for a moment.
      await launchWithRetries(true);
    },
  } as RedisServerProcess;
  return handle;
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (exited(child)) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/**
 * Resolves once the child answers on `port`. When the child exits first, it stays pending: the
 * caller races it against the exit, which says why.
 */
async function waitForPort(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const seen = await waitUntil(async () => (exited(child) ? 'exited' : (await answersAsItself(port, child)) && 'ours'), {
    what: `redis-server to answer on port ${port}`,
    timeoutMs,
    intervalMs: 25,
  });
  if (seen === 'exited') return new Promise<void>(() => undefined);
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Whether the server on `port` is the child (not another one that took the port first: ours then exits). */
async function answersAsItself(port: number, child: ChildProcess): Promise<boolean> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    const pid = /process_id:(\d+)/.exec(await probe.info('server'))?.[1];
    return Number(pid) === child.pid;
  } catch {
    return false; // not listening yet
  } finally {
    probe.disconnect();
  }
}
