// The rhopush command line: each command is a file of its own beside this one. `cli.ts` runs it.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { RhopushError } from '../errors.js';
import { registerDemo } from './demo.js';
import { registerDoctor } from './doctor.js';
import { registerPing } from './ping.js';
import { registerReplay } from './replay.js';
import { registerRun } from './run.js';
import { registerWhy } from './why.js';

const pkg = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('rhopush')
    .description("Automatic, reliable push for RhoConnect: watches its Redis and pings users' devices.")
    .version(pkg.version)
    .showHelpAfterError();
  registerRun(program);
  registerDoctor(program);
  registerPing(program);
  registerReplay(program);
  registerWhy(program);
  registerDemo(program);
  return program;
}

/** The exit code for an error that stopped a command: the registry's, else 2 (the setup). */
export function exitCodeOf(err: unknown): number {
  return err instanceof RhopushError && err.exit !== undefined ? err.exit : 2;
}

/** Errors an operator can act on are printed plainly; anything else with its stack. */
export function reportError(err: unknown): void {
  if (err instanceof Error) {
    console.error(`rhopush: ${err.message}`);
    if (process.env.LOG_LEVEL === 'debug') console.error(err.stack);
  } else {
    console.error(`rhopush: ${String(err)}`);
  }
}
