// rhopush doctor: one line per check of the setup, exit 1 when any fails.
import type { Command } from 'commander';
import { formatDoctorReport, runDoctor } from '../doctor.js';
import { milliseconds, settingsFile, withSettingsOptions, type SettingsFlags } from './options.js';

export function registerDoctor(program: Command): void {
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
}
