// rhopush command line: run | ping | replay | doctor | demo. `cli.ts` runs it.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { loadSettings } from './config/load-settings.js';
import { SettingsError } from './config/settings-error.js';
import type { Settings } from './config/settings.js';
import { createDaemon } from './daemon.js';
import { createLogger } from './logger.js';
import { replayFiles } from './replay/replay.js';
import { enqueuePing } from './library.js';
import { NotifyConfigError } from './capture/notify-config.js';

const pkg = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8')) as { version: string };

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

  withSettingsOptions(program.command('run').description('run the daemon (capture, grouping, pings)')).action(async (flags: SettingsFlags) => {
    const settings = readSettings(flags);
    const logger = createLogger({ level: settings.rhopush.logLevel });
    const daemon = createDaemon({ settings, logger });
    let signals = 0;
    const onSignal = (signal: string) => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting at once');
        process.exit(1);
      }
      logger.info({ signal }, 'stopping: sending grouped pings and finishing deliveries');
      daemon.stop().then(
        () => process.exit(0),
        (err: Error) => {
          logger.error({ err: err.message }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    await daemon.start();
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
      const params = { user_id: flags.user, sources: flags.sources, message: flags.message, badge: flags.badge, sound: flags.sound, vibrate: flags.vibrate };
      if (flags.async) {
        const queued = await enqueuePing(params, { settings });
        if (flags.json) console.log(JSON.stringify(queued));
        else console.log(`queued on resque:queue:${queued.queue} (${queued.queued} waiting): ${JSON.stringify(queued.job)}`);
        return;
      }
      const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
      // A one-off ping: no capture, no HTTP listener, no queue jobs taken from the running daemon.
      const daemon = createDaemon({ settings, logger, capture: false, http: false, queue: false });
      await daemon.start();
      try {
        const result = await daemon.ping(params, 'cli');
        if (flags.json) console.log(JSON.stringify(result));
        else {
          for (const u of result.skippedUsers) console.log(`${u}: unknown user or no registered clients`);
          for (const p of result.pushes) console.log(`${p.user}  ${p.platform}  ${p.token}  ${p.outcome}${p.reason ? `  (${p.reason})` : ''}`);
          if (result.pushes.length === 0) console.log('no device pushed');
        }
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
      const tty = process.stderr.isTTY === true && !flags.json;
      const results = await replayFiles(files, {
        redis: flags.redis,
        onProgress: tty ? (done, total) => process.stderr.write(`\rreplaying ${done}/${total}`) : undefined,
      });
      if (tty) process.stderr.write('\n');
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

  return program;
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
