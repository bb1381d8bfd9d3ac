// Wraps a live adapter: a token reported dead is not sent to again ('skipped-dead'), and a token
// the platform reports dead now is recorded (own keys + feedback stream). A Redis failure never
// blocks delivery: the push goes out and the failure is logged.
import { clip } from '../util/log-text.js';
import type { Logger } from 'pino';
import { shortenToken, type DevicePushRequest, type PushAdapter } from './adapter.js';
import type { DeadTokenStore } from './dead-tokens.js';

export class DeadTokenGuard implements PushAdapter {
  constructor(
    private readonly inner: PushAdapter,
    private readonly store: DeadTokenStore,
    private readonly logger: Logger,
  ) {}

  async send(request: DevicePushRequest) {
    const { platform, token } = request;
    if (token) {
      try {
        const dead = request.knownDead !== undefined ? request.knownDead : await this.store.find(platform, token);
        if (dead) return { outcome: 'skipped-dead' as const, reason: `${dead.reason} since ${dead.at}` };
      } catch (err) {
        this.logger.warn({ platform, token: shortenToken(token), err: (err as Error).message }, 'cannot read dead tokens; sending anyway');
      }
    }
    const result = await this.inner.send(request);
    if (result.outcome === 'dead' && token) {
      this.logger.info(
        { platform, user: clip(request.user), client: clip(request.client.id), token: shortenToken(token), reason: result.reason },
        'device token reported dead: recorded, and skipped until the device registers a new one',
      );
      try {
        await this.store.record({
          token,
          platform,
          reason: result.reason ?? 'dead',
          user: request.user,
          client: request.client.id,
          at: new Date().toISOString(),
        });
      } catch (err) {
        this.logger.error({ platform, token: shortenToken(token), err: (err as Error).message }, 'cannot record a dead token');
      }
    }
    return result;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
