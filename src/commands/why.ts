// rhopush why USER: what rhopush did for a user and why, read from Redis (no daemon needed).
import { type Command, InvalidArgumentError } from 'commander';
import { explainWhy, parseSince } from '../explain/why.js';
import { formatWhy } from '../explain/why-text.js';
import { PingHistory } from '../history/ping-history.js';
import { silentLogger } from '../logger.js';
import { DeadTokenStore } from '../push/dead-tokens.js';
import { RhoconnectStore } from '../store/rhoconnect-store.js';
import { StoreLink } from '../store/store-link.js';
import { readSettings, withSettingsOptions, type SettingsFlags } from './options.js';

function since(value: string): number {
  const at = parseSince(value);
  if (at === undefined)
    throw new InvalidArgumentError('expected a duration (90s, 15m, 1h, 2d, 1h30m) or a date and time (2026-12-04T10:00:00Z)');
  return at;
}

export function registerWhy(program: Command): void {
  withSettingsOptions(
    program
      .command('why')
      .argument('<user>', 'RhoConnect login')
      .description(
        "why a user's devices were or were not pinged: devices, captured changes and decisions, pings and outcomes, a verdict per device",
      ),
  )
    .option('--source <name>', 'only this source')
    .option('--since <when>', 'only what happened since: a duration back from now (90s, 15m, 1h, 2d) or a date and time', since)
    .option('--json', 'print the explanation as JSON')
    .action(async (user: string, flags: SettingsFlags & { source?: string; since?: number; json?: boolean }) => {
      const settings = readSettings(flags);
      for (const warning of settings.warnings ?? []) console.error(`rhopush: warning: ${warning.message}`);
      // Reads only: users and clients, rhopush's history and dead tokens, on instance 0 (or the cluster).
      const link = new StoreLink(settings, silentLogger);
      try {
        await link.checkDatabases();
        await link.connect();
        const redis = link.redis;
        const report = await explainWhy(
          {
            settings,
            store: new RhoconnectStore(redis),
            history: new PingHistory(redis, () => settings.rhopush, silentLogger),
            deadTokens: DeadTokenStore.forSettings(redis, () => settings.rhopush),
          },
          user,
          { source: flags.source, since: flags.since },
        );
        console.log(flags.json ? JSON.stringify(report) : formatWhy(report));
      } finally {
        await link.close();
      }
    });
}
