// rhopush run: the daemon, until a signal stops it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { createDaemon, type Daemon } from '../daemon.js';
import { createLogger, type Logger } from '../logger.js';
import { milliseconds, readSettings, withSettingsOptions, type SettingsFlags } from './options.js';

export function registerRun(program: Command): void {
  withSettingsOptions(program.command('run').description('run the daemon (capture, grouping, pings, HTTP API)'))
    .option(
      '--shutdown-timeout <ms>',
      'on SIGTERM/SIGINT, how long to wait for grouped pings and deliveries in flight',
      milliseconds,
      10_000,
    )
    .option(
      '--stop-with-parent',
      'stop as on SIGTERM when the process that started rhopush exits (npm start: npm does not pass its signals on)',
    )
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
      for (const warning of settings.warnings ?? [])
        logger.warn({ file: warning.file, line: warning.line }, `settings: ${warning.message}`);
      const daemon = createDaemon({ settings, logger, watchSettings: true });
      const stop = stopOnSignals(daemon, logger, flags.shutdownTimeout);
      if (flags.stopWithParent) stopWithLauncher(logger, stop);
      process.on('SIGHUP', () => {
        logger.info('SIGHUP: reading the settings file again');
        daemon.reloadSettings();
      });
      await daemon.start();
    });
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
      const [ppid, ...command] = execFileSync('ps', ['-o', 'ppid=,comm=', '-p', String(pid)], { encoding: 'utf8' })
        .trim()
        .split(/\s+/);
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
