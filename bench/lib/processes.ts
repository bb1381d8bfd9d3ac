import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * Extra node flags for every process a benchmark starts (rhopush, baselines, stand-ins), e.g.
 * `BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof"` to profile them under load; each writes its
 * profile when it stops.
 */
export const EXTRA_NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/** Runs the plugin-write generator in a child process; resolves with its report. */
export function generate(port: number, users: number, sources: number, calls: number): Promise<{ calls: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(HERE, 'generator-process.ts'), String(port), String(users), String(sources), String(calls)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`generator exited with ${code}`))));
  });
}

export interface HelperProcess {
  pid: number;
  /** The `ready…` line it printed. */
  ready: string;
  /** The next line it prints after that. */
  nextLine(timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/** A benchmark helper script in its own process; resolves once it prints a line starting with `ready`. */
export async function startHelperProcess(script: string, args: string[]): Promise<HelperProcess> {
  const child = spawn(process.execPath, [...EXTRA_NODE_ARGS, '--import', 'tsx', join(HERE, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
    if (process.env.BENCH_STDERR) process.stderr.write(d);
  });
  let exitCode: number | null | undefined;
  // 'close', not 'exit': a child can exit before its last stdout data has been read here (a long
  // last line), and nextLine must not report it gone while that line is still coming.
  const exited = new Promise<void>((resolve) => child.on('close', (code) => ((exitCode = code), resolve())));
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let partial = '';
  child.stdout!.on('data', (d) => {
    const parts = (partial + String(d)).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  void exited.then(() => {
    for (const w of waiters.splice(0)) w();
  });
  const nextLine = async (timeoutMs = 120_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (lines.length === 0) {
      if (exitCode !== undefined) throw new Error(`${script} exited with ${exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`${script} printed nothing within ${timeoutMs} ms: ${stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
    return lines.shift()!;
  };
  let ready = await nextLine(60_000);
  while (!ready.startsWith('ready')) ready = await nextLine(60_000);
  return {
    pid: child.pid!,
    ready,
    nextLine,
    stop: async () => {
      if (exitCode === undefined) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** CPU time (user + system) a process has used so far, in seconds (from /proc; USER_HZ is 100). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
