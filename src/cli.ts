#!/usr/bin/env node
import { buildProgram, exitCodeOf, reportError } from './commands/program.js';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    reportError(err);
    process.exit(exitCodeOf(err));
  });
