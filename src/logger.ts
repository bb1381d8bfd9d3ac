import { pino, type Logger, type DestinationStream, type LoggerOptions as PinoOptions } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  /** pino level; default: LOG_LEVEL, then info. */
  level?: string;
  /** Pretty, human-readable lines; default: when stdout is a terminal (and not under CI). */
  pretty?: boolean;
  destination?: DestinationStream;
  /**
   * Write each line at once (to stdout, or stderr with `fd: 2`), in order with what the command
   * prints itself: for one-off commands. The daemon buffers instead.
   */
  sync?: { fd: 1 | 2 };
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Secrets that must never reach a log line, whatever object carries them. Device tokens are
 * shortened where they are produced (push results); these paths catch raw records passed by mistake.
 */
const REDACT_PATHS = [
  'api_token',
  '*.api_token',
  'apiToken',
  '*.apiToken',
  'device_pin',
  '*.device_pin',
  'client.device_pin',
  'req.headers["x-rhoconnect-api-token"]',
  'req.headers.authorization',
];

const PRETTY = { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' };

/** JSON lines (pino); pretty on a terminal. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = resolveLevel(options.level ?? process.env.LOG_LEVEL);
  const pretty = options.pretty ?? (process.stdout.isTTY === true && !process.env.CI);
  const base: PinoOptions = { level, base: { name: 'rhopush' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (options.destination) return pino(base, options.destination);
  if (options.sync) {
    const dest = options.sync.fd;
    const tty = (dest === 1 ? process.stdout : process.stderr).isTTY === true && !process.env.CI;
    return (options.pretty ?? tty)
      ? pino(base, pinoPretty({ ...PRETTY, destination: dest, sync: true }))
      : pino(base, pino.destination({ dest, sync: true }));
  }
  if (pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: PRETTY },
    });
  }
  // Buffered writes to stdout, flushed every 100 ms: at thousands of pings a second a write per line
  // cost more CPU than everything else about logging. A line logged just before exit (shutdown) is
  // still never lost: pino writes what is buffered synchronously when the process exits.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => destination.flush(), 100).unref();
  return pino(base, destination);
}

/** A known level, or info with the unknown one reported on stderr (a typo must not silence the daemon). */
function resolveLevel(level: string | undefined): string {
  const wanted = level?.trim().toLowerCase();
  if (!wanted) return 'info';
  if ((LOG_LEVELS as readonly string[]).includes(wanted)) return wanted;
  process.stderr.write(`rhopush: unknown log level ${JSON.stringify(level)} (expected one of ${LOG_LEVELS.join(', ')}); using info\n`);
  return 'info';
}

export const silentLogger: Logger = pino({ level: 'silent' });
