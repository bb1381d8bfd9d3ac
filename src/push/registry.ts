import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import type { Platform, PushAdapter } from './adapter.js';
import { LogAdapter } from './log.js';

/** The adapters a daemon delivers through, one per platform, built from settings. */
export interface PushAdapters {
  adapterFor(platform: Platform): PushAdapter;
  close(): Promise<void>;
}

export function createPushAdapters(settings: () => Settings, logger: Logger): PushAdapters {
  const log = new LogAdapter(logger, settings);
  if (settings().rhopush.delivery === 'live') {
    logger.warn('live delivery is not available in this build; device pushes are logged instead');
  }
  return {
    adapterFor: () => log,
    close: () => log.close(),
  };
}
