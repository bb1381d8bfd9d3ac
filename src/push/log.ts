// `log` delivery: one JSON line per device push with the exact payload that would be sent.
import type { Logger } from 'pino';
import { apnsNotification } from './apns/apns.js';
import { fcmMessage } from './fcm/fcm.js';
import { syncCollapseId } from './collapse.js';
import { rhoconnectPushBody } from './rhoconnect-push.js';
import { shortenToken, type DevicePushRequest, type PushAdapter } from './adapter.js';
import type { Settings } from '../config/settings.js';
import { clipStrings } from '../util/log-text.js';

export class LogAdapter implements PushAdapter {
  constructor(
    private readonly logger: Logger,
    private readonly settings: () => Settings,
  ) {}

  async send(request: DevicePushRequest) {
    this.logger.info(
      {
        // Texts from the ping (a message, sources) are cut to a bounded length for the log line.
        push: clipStrings({
          platform: request.platform,
          user: request.user,
          client: request.client.id,
          token: shortenToken(request.token),
          ...payloadFor(request, this.settings()),
        }),
      },
      'device push (delivery: log)',
    );
    return { outcome: 'logged' as const };
  }

  async close(): Promise<void> {}
}

/** What the live adapter would send for this device push. */
export function payloadFor(request: DevicePushRequest, settings: Settings): Record<string, unknown> {
  switch (request.platform) {
    case 'apple': {
      const n = apnsNotification(request.ping);
      const topic = settings.rhopush.apns.topic ?? request.client.device_app_id ?? '';
      const collapseId = syncCollapseId(request.ping, topic);
      return { payload: n.payload, pushType: n.pushType, priority: n.priority, ...(collapseId ? { collapseId } : {}) };
    }
    case 'fcm': {
      const packageName = settings.push.packageName;
      // A ping with a message gets a fresh random key when sent; the log shows where it goes.
      const collapseKey = syncCollapseId(request.ping, packageName ?? '') ?? '<random>';
      const message = fcmMessage(request.ping, request.client, { packageName, collapseKey });
      return { payload: { ...message, token: shortenToken(message.token) } };
    }
    case 'rhoconnect_push':
      return { payload: rhoconnectPushBody(request.ping) };
  }
}
