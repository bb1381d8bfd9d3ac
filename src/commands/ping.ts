// rhopush ping: one ping now (or queued with --async), one line per device push.
import type { Command } from 'commander';
import { enqueuePing } from '../library.js';
import { createLogger } from '../logger.js';
import type { PingResult } from '../ping/ping-job.js';
import { openPinger } from '../ping/pinger.js';
import type { PushOutcome } from '../push/adapter.js';
import { readSettings, withSettingsOptions, type SettingsFlags } from './options.js';

export function registerPing(program: Command): void {
  withSettingsOptions(program.command('ping').description('send one ping and print the per-device outcome'))
    .requiredOption('-u, --user <login...>', 'user to ping (repeat for several)')
    .option('--sources <list>', "sources to sync: A,B or 'all'")
    .option('--message <text>', 'alert text')
    .option('--badge <n>', 'badge number')
    .option('--sound <file>', 'sound file')
    .option('--vibrate <n>', 'vibrate duration')
    .option('--async', 'queue the ping as a Resque job (resque:queue:ping) for a running daemon instead of sending it')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        flags: SettingsFlags & {
          user: string[];
          sources?: string;
          message?: string;
          badge?: string;
          sound?: string;
          vibrate?: string;
          json?: boolean;
          async?: boolean;
        },
      ) => {
        const settings = readSettings(flags);
        for (const warning of settings.warnings ?? []) console.error(`rhopush: warning: ${warning.message}`);
        const params = {
          user_id: flags.user,
          sources: flags.sources,
          message: flags.message,
          badge: flags.badge,
          sound: flags.sound,
          vibrate: flags.vibrate,
        };
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
        const pinger = await openPinger(settings, { logger, deliveryLogger });
        try {
          const result = await pinger.ping(params, 'cli');
          console.log(flags.json ? JSON.stringify(result) : formatPingResult(result));
          process.exitCode = result.errors.length > 0 ? 1 : 0;
        } finally {
          await pinger.close();
        }
      },
    );
}

const OUTCOME_ORDER: readonly PushOutcome[] = ['sent', 'logged', 'failed', 'dead', 'skipped-dead', 'dropped'];

/** One line per device push, aligned, then a summary. */
export function formatPingResult(result: PingResult): string {
  const lines: string[] = [];
  for (const u of result.skippedUsers) lines.push(`${u}: unknown user or no registered clients`);
  const rows = result.pushes.map((p) => [p.user, p.platform, p.token, p.outcome, p.reason ?? '']);
  const widths = [0, 1, 2, 3].map((i) => Math.max(0, ...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    lines.push(
      r
        .map((cell, i) => (i < 4 ? cell.padEnd(widths[i]!) : cell))
        .join('  ')
        .trimEnd(),
    );
  // Best outcome first, whatever order the devices came in.
  const counts = new Map<string, number>(OUTCOME_ORDER.map((o) => [o, 0]));
  for (const p of result.pushes) counts.set(p.outcome, (counts.get(p.outcome) ?? 0) + 1);
  const n = result.pushes.length;
  // The id finds the ping's record (GET /rc/v1/pings/<id>, rhopush why).
  lines.push(
    (n === 0
      ? 'no device pushed'
      : `${n} device${n === 1 ? '' : 's'}: ${[...counts]
          .filter(([, c]) => c > 0)
          .map(([outcome, c]) => `${c} ${outcome}`)
          .join(', ')}`) + ` (ping ${result.id})`,
  );
  return lines.join('\n');
}
