// The real rhopush CLI as a child process: the build in dist/ when it is up to date with src/
// (`npm test` builds first; it starts several times faster), else the sources through tsx.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

const ROOT = join(import.meta.dirname, '..', '..');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function cliEntry(): string[] {
  try {
    if (statSync(join(ROOT, 'dist', 'cli.js')).mtimeMs >= newestMtime(join(ROOT, 'src'))) return ['dist/cli.js'];
  } catch {
    // no build
  }
  return ['--import', 'tsx', 'src/cli.ts'];
}

const ENTRY = cliEntry();

/** The environment without the variables that would override a test's settings file. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of ['REDIS_URL', 'API_TOKEN', 'RACK_ENV', 'RHOPUSH_SETTINGS', 'LOG_LEVEL']) if (!(k in extra)) delete env[k];
  return env;
}

export type CliProcess = ChildProcessByStdio<null, Readable, Readable>;

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return spawn(process.execPath, [...ENTRY, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs the CLI to completion. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Collects a running daemon's JSON log lines from stdout and waits for particular ones. */
export class LogWatcher {
  readonly lines: Array<Record<string, unknown>> = [];
  stderr = '';
  private buffer = '';
  private readonly waiters: Array<{ test: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: CliProcess) {
    child.stdout.on('data', (d) => {
      this.buffer += String(d);
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const text = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 1);
        if (!text.trim()) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        this.lines.push(line);
        for (const w of [...this.waiters]) {
          if (w.test(line)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    });
    child.stderr.on('data', (d) => (this.stderr += String(d)));
    this.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  }

  /** The first line (already seen or to come) whose msg contains `text`; rejects if the process exits first. */
  waitFor(text: string): Promise<Record<string, unknown>> {
    const test = (l: Record<string, unknown>) => String(l.msg).includes(text);
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    return Promise.race([
      new Promise<Record<string, unknown>>((resolve) => this.waiters.push({ test, resolve })),
      this.exited.then((e) => {
        throw new Error(`rhopush exited (${e.code ?? e.signal}) before logging "${text}": ${this.stderr}`);
      }),
    ]);
  }
}
