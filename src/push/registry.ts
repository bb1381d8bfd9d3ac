import type { StoreClient } from '../store/store-connection.js';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import type { DevicePushRequest, Platform, PushAdapter } from './adapter.js';
import { ApnsAdapter } from './apns/apns.js';
import { DeadTokenGuard } from './dead-token-guard.js';
import { DeadTokenStore } from './dead-tokens.js';
import { FcmAdapter } from './fcm/fcm.js';
import { LogAdapter } from './log.js';
import { RhoconnectPushAdapter } from './rhoconnect-push.js';

/** The adapters a daemon delivers through, one per platform, built from settings. */
export interface PushAdapters {
  adapterFor(platform: Platform): PushAdapter;
  /**
   * Looks up, for a batch of pushes about to be sent, what each would look up alone (dead tokens),
   * in one go. Optional: adapters without such lookups need none. Never throws.
   */
  screen?(requests: DevicePushRequest[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * `:rhopush: :delivery: live` sends through APNs, FCM and RhoConnect Push; `log` prints each device
 * push instead. The mode is read at every push, so a settings reload switches it. Live adapters are
 * built on first use; with `redis` (the store connection, RhoConnect's instance 0) they skip tokens
 * reported dead and record new ones in rhopush's own keys. `deliveryLogger` prints the `log` pushes
 * (default: `logger`).
 */
export function createPushAdapters(
  settings: () => Settings,
  logger: Logger,
  redis?: StoreClient,
  deliveryLogger: Logger = logger,
): PushAdapters {
  const log = new LogAdapter(deliveryLogger, settings);
  const live = new Map<Platform, PushAdapter>();
  const deadTokens = redis ? DeadTokenStore.forSettings(redis, () => settings().rhopush) : undefined;

  const build = (platform: Platform): PushAdapter => {
    const adapter =
      platform === 'apple'
        ? new ApnsAdapter(settings, logger)
        : platform === 'fcm'
          ? new FcmAdapter(settings, logger)
          : new RhoconnectPushAdapter(settings, logger);
    return deadTokens ? new DeadTokenGuard(adapter, deadTokens, logger) : adapter;
  };

  return {
    adapterFor(platform) {
      if (settings().rhopush.delivery !== 'live') return log;
      let adapter = live.get(platform);
      if (!adapter) {
        adapter = build(platform);
        live.set(platform, adapter);
      }
      return adapter;
    },
    async screen(requests) {
      if (!deadTokens || settings().rhopush.delivery !== 'live') return;
      const withToken = requests.filter((r) => r.token);
      try {
        const found = await deadTokens.findMany(withToken);
        withToken.forEach((r, i) => (r.knownDead = found[i] ?? null));
      } catch (err) {
        // Each push then looks its token up itself (and sends anyway if that fails too).
        logger.warn({ err: (err as Error).message, pushes: withToken.length }, 'cannot read dead tokens for a batch of pushes');
      }
    },
    async close() {
      const adapters = [...live.values()];
      live.clear();
      await Promise.all([log.close(), ...adapters.map((a) => a.close())]);
    },
  };
}
