import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** Pretty, human-readable lines; default: when stdout is a terminal. */
  pretty?: boolean;
  destination?: DestinationStream;
}

/** JSON lines (pino); pretty on a terminal. Device tokens are shortened before they get here. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? (process.stdout.isTTY === true && !process.env.CI);
  if (options.destination) return pino({ level, base: { name: 'rhopush' } }, options.destination);
  if (pretty) {
    return pino({
      level,
      base: { name: 'rhopush' },
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' } },
    });
  }
  return pino({ level, base: { name: 'rhopush' } });
}

export const silentLogger: Logger = pino({ level: 'silent' });
