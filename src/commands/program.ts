// rhopush command line: run | ping | replay | doctor | demo. `cli.ts` runs it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadSettings } from '../config/load-settings.js';
import { SettingsError } from '../config/settings-error.js';
import type { Settings } from '../config/settings.js';
import { createDaemon } from '../daemon.js';
import { createLogger } from '../logger.js';
import { replayFiles } from '../replay/replay.js';
import { runDemo } from './demo.js';
import { enqueuePing } from '../library.js';
import { NotifyConfigError } from '../intake/notify-config.js';
import { formatDoctorReport, runDoctor } from '../doctor.js';
import type { Daemon } from '../daemon.js';
import type { Logger } from '../logger.js';
import type { PingResult } from '../ping/ping-job.js';
import type { PushOutcome } from '../push/adapter.js';
import { terminalProgress } from '../util/progress.js';

const pkg = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8')) as { version: string };

interface SettingsFlags {
  settings?: string;
  env?: string;
}

function settingsFile(flags: SettingsFlags): string {
  return flags.settings ?? process.env.RHOPUSH_SETTINGS ?? 'settings.yml';
}

function readSettings(flags: SettingsFlags): Settings {
  return loadSettings(settingsFile(flags), { environment: flags.env });
}

function withSettingsOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-s, --settings <file>', 'RhoConnect settings.yml').env('RHOPUSH_SETTINGS').default('settings.yml'))
    .addOption(new Option('-e, --env <name>', 'environment section of settings.yml').env('RACK_ENV').default('development'));
}

export function buildProgram(): Command {
  const program = new Command('rhopush')
    .description('Automatic, reliable push for RhoConnect: watches its Redis and pings users\' devices.')
    .version(pkg.version)
    .showHelpAfterError();

  withSettingsOptions(program.command('run').description('run the daemon (capture, grouping, pings, HTTP API)'))
    .option('--shutdown-timeout <ms>', 'on SIGTERM/SIGINT, how long to wait for grouped pings and deliveries in flight', milliseconds, 10_000)
    .option('--stop-with-parent', 'stop as on SIGTERM when the process that started rhopush exits (npm start: npm does not pass its signals on)')
    .addHelpText(
      'after',
      `
Signals:
  SIGTERM, SIGINT  stop capturing, send the pings already grouped, finish deliveries in flight
                   (up to --shutdown-timeout), close connections, exit 0; a second signal exits at once
  SIGHUP           read the settings file again now (edits are also picked up automatically)

Settings edits apply while running (push_notify, partition_type, grouping, delivery);
:redis: and :listen: changes are logged and need a restart.`,
    )
    .action(async (flags: SettingsFlags & { shutdownTimeout: number; stopWithParent?: boolean }) => {
      const settings = readSettings(flags);
      const logger = createLogger({ level: settings.rhopush.logLevel });
      for (const warning of settings.warnings ?? []) logger.warn({ file: warning.file, line: warning.line }, `settings: ${warning.message}`);
      const daemon = createDaemon({ settings, logger, watchSettings: true });
      const stop = stopOnSignals(daemon, logger, flags.shutdownTimeout);
      if (flags.stopWithParent) stopWithLauncher(logger, stop);
      process.on('SIGHUP', () => {
        logger.info('SIGHUP: reading the settings file again');
        daemon.reloadSettings();
      });
      await daemon.start();
    });

  withSettingsOptions(
    program.command('doctor').description('check settings, Redis and push credentials; one line per check, exit 1 when any fails'),
  )
    .option('--timeout <ms>', 'per network check', milliseconds, 2000)
    .option('--json', 'print the report as JSON')
    .action(async (flags: SettingsFlags & { timeout: number; json?: boolean }) => {
      const report = await runDoctor({ file: settingsFile(flags), environment: flags.env, timeoutMs: flags.timeout });
      console.log(flags.json ? JSON.stringify(report) : formatDoctorReport(report));
      process.exitCode = report.ok ? 0 : 1;
    });

  withSettingsOptions(program.command('ping').description('send one ping and print the per-device outcome'))
    .requiredOption('-u, --user <login...>', 'user to ping (repeat for several)')
    .option('--sources <list>', "sources to sync: A,B or 'all'")
    .option('--message <text>', 'alert text')
    .option('--badge <n>', 'badge number')
    .option('--sound <file>', 'sound file')
    .option('--vibrate <n>', 'vibrate duration')
    .option('--async', 'queue the ping as a Resque job (resque:queue:ping) for a running daemon instead of sending it')
    .option('--json', 'print the result as JSON')
    .action(async (flags: SettingsFlags & { user: string[]; sources?: string; message?: string; badge?: string; sound?: string; vibrate?: string; json?: boolean; async?: boolean }) => {
      const settings = readSettings(flags);
      for (const warning of settings.warnings ?? []) console.error(`rhopush: warning: ${warning.message}`);
      const params = { user_id: flags.user, sources: flags.sources, message: flags.message, badge: flags.badge, sound: flags.sound, vibrate: flags.vibrate };
      if (flags.async) {
        const queued = await enqueuePing(params, { settings });
        if (flags.json) console.log(JSON.stringify(queued));
        else console.log(`queued on resque:queue:${queued.queue} (${queued.queued} waiting): ${JSON.stringify(queued.job)}`);
        return;
      }
      // Written at once, so that they come in order with the result printed below; with --json the
      // log goes to stderr and stdout holds the result alone.
      const fd = flags.json ? 2 : 1;
      const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', sync: { fd } });
      // With `:delivery: log` each device push is printed as `rhopush run` prints it, whatever the level.
      const deliveryLogger = createLogger({ level: 'info', sync: { fd } });
      // A one-off ping: no capture, no HTTP listener, no queue jobs taken from the running daemon.
      const daemon = createDaemon({ settings, logger, deliveryLogger, capture: false, http: false, queue: false });
      await daemon.start();
      try {
        const result = await daemon.ping(params, 'cli');
        console.log(flags.json ? JSON.stringify(result) : formatPingResult(result));
        process.exitCode = result.errors.length > 0 ? 1 : 0;
      } finally {
        await daemon.stop();
      }
    });

  program
    .command('replay')
    .description('replay recorded RhoConnect scenarios and compare the pings rhopush decides with RhoConnect\'s')
    .argument('<files...>', 'fixture files (fixtures/rhoconnect format)')
    .option('--redis <url...>', 'replay into these (empty) Redis servers instead of private ones, one per instance')
    .option('--json', 'one JSON object per file: {"file","expected","actual","match"}')
    .action(async (files: string[], flags: { redis?: string[]; json?: boolean }) => {
      const progress = terminalProgress('replaying');
      progress.update(0, files.length);
      const results = await replayFiles(files, {
        redis: flags.redis,
        onProgress: (done, total, file) => progress.update(done, total, basename(file)),
      }).finally(() => progress.end());
      for (const r of results) {
        if (flags.json) {
          console.log(JSON.stringify({ file: r.file, expected: r.expected, actual: r.actual, match: r.match }));
          continue;
        }
        console.log(`${r.match ? '✓' : '✗'} ${r.file}`);
        console.log(`    rhoconnect: ${formatPings(r.expected)}`);
        console.log(`    rhopush:    ${formatPings(r.actual)}`);
        for (const d of r.decisions) console.log(`      ${d.ping ? 'ping' : 'skip'}  ${d.rule.padEnd(22)} ${d.event} ${d.key}`);
      }
      const failed = results.filter((r) => !r.match).length;
      if (!flags.json) console.log(`${results.length - failed} matched, ${failed} did not`);
      process.exitCode = failed > 0 ? 1 : 0;
    });

  program
    .command('demo')
    .description('show the whole path on this machine: a private redis-server, APNs/FCM/RhoConnect Push stand-ins, plugin writes, pings')
    .action(async () => {
      const report = await runDemo();
      process.exitCode = report.ok ? 0 : 1;
    });

  return program;
}

/** Stops the daemon on SIGTERM/SIGINT; a second signal exits at once. Returns the stop, as SIGTERM does it. */
function stopOnSignals(daemon: Daemon, logger: Logger, timeoutMs: number): () => void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting at once, without waiting for deliveries');
      process.exit(128 + (constants.signals[signal] ?? 0));
    }
    stopping = true;
    logger.info({ signal, timeoutMs }, 'stopping: sending grouped pings and finishing deliveries (a second signal exits at once)');
    daemon.stop({ timeoutMs }).then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ err: err.message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => onSignal('SIGTERM');
}

/**
 * `npm start` runs rhopush as npm → sh → node, and a signal sent to npm (a `kill` of the process the
 * operator started) stops npm alone, leaving rhopush running with nobody to stop it. With
 * --stop-with-parent rhopush watches the process that started it (npm, above the shell npm runs
 * scripts with) and stops, as on SIGTERM, once that process has exited.
 */
function stopWithLauncher(logger: Logger, stop: () => void): void {
  const launcher = launcherPid();
  const timer = setInterval(() => {
    // Gone, or our parent changed (we were handed to init). process.ppid is read once at start.
    const parent = processInfo(process.pid)?.ppid ?? launcher.parentAtStart;
    if (processAlive(launcher.pid) && parent === launcher.parentAtStart) return;
    clearInterval(timer);
    logger.info({ launcher: launcher.pid }, 'the process that started rhopush has exited: stopping');
    stop();
  }, 1000);
  timer.unref();
}

/** The process to follow: our parent, or its parent when our parent is the shell npm ran us with. */
function launcherPid(): { pid: number; parentAtStart: number } {
  const parent = process.ppid;
  const info = processInfo(parent);
  const shell = info && /^(sh|bash|dash|zsh|ash|busybox)$/.test(basename(info.command));
  return { pid: shell && info.ppid > 1 ? info.ppid : parent, parentAtStart: parent };
}

/** A process's parent and command name, from /proc (Linux) or ps (elsewhere); undefined when unknown. */
function processInfo(pid: number): { ppid: number; command: string } | undefined {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const command = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? { ppid, command } : undefined;
  } catch {
    try {
      const [ppid, ...command] = execFileSync('ps', ['-o', 'ppid=,comm=', '-p', String(pid)], { encoding: 'utf8' }).trim().split(/\s+/);
      return ppid ? { ppid: Number(ppid), command: command.join(' ') } : undefined;
    } catch {
      return undefined;
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number of milliseconds');
  return n;
}

const OUTCOME_ORDER: readonly PushOutcome[] = ['sent', 'logged', 'failed', 'dead', 'skipped-dead', 'dropped'];

/** One line per device push, aligned, then a summary. */
export function formatPingResult(result: PingResult): string {
  const lines: string[] = [];
  for (const u of result.skippedUsers) lines.push(`${u}: unknown user or no registered clients`);
  const rows = result.pushes.map((p) => [p.user, p.platform, p.token, p.outcome, p.reason ?? '']);
  const widths = [0, 1, 2, 3].map((i) => Math.max(0, ...rows.map((r) => r[i]!.length)));
  for (const r of rows) lines.push(r.map((cell, i) => (i < 4 ? cell.padEnd(widths[i]!) : cell)).join('  ').trimEnd());
  // Best outcome first, whatever order the devices came in.
  const counts = new Map<string, number>(OUTCOME_ORDER.map((o) => [o, 0]));
  for (const p of result.pushes) counts.set(p.outcome, (counts.get(p.outcome) ?? 0) + 1);
  const n = result.pushes.length;
  lines.push(
    n === 0
      ? 'no device pushed'
      : `${n} device${n === 1 ? '' : 's'}: ${[...counts].filter(([, c]) => c > 0).map(([outcome, c]) => `${c} ${outcome}`).join(', ')}`,
  );
  return lines.join('\n');
}

function formatPings(pings: { user_id: string[]; sources: string[] }[]): string {
  if (pings.length === 0) return '(no ping)';
  return pings.map((p) => `${p.user_id.join(',')} → [${p.sources.join(', ')}]`).join('; ');
}

/** Errors an operator can act on are printed plainly; anything else with its stack. */
export function reportError(err: unknown): void {
  if (err instanceof SettingsError || err instanceof NotifyConfigError) {
    console.error(`rhopush: ${err.message}`);
  } else if (err instanceof Error) {
    console.error(`rhopush: ${err.message}`);
    if (process.env.LOG_LEVEL === 'debug') console.error(err.stack);
  } else {
    console.error(`rhopush: ${String(err)}`);
  }
}
