// What every command that reads settings.yml shares: --settings and --env, and how they are read.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { loadSettings } from '../config/load-settings.js';
import type { Settings } from '../config/settings.js';

export interface SettingsFlags {
  settings?: string;
  env?: string;
}

export function settingsFile(flags: SettingsFlags): string {
  return flags.settings ?? process.env.RHOPUSH_SETTINGS ?? 'settings.yml';
}

export function readSettings(flags: SettingsFlags): Settings {
  return loadSettings(settingsFile(flags), { environment: flags.env });
}

export function withSettingsOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-s, --settings <file>', 'RhoConnect settings.yml').env('RHOPUSH_SETTINGS').default('settings.yml'))
    .addOption(new Option('-e, --env <name>', 'environment section of settings.yml').env('RACK_ENV').default('development'));
}

export function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number of milliseconds');
  return n;
}
