// RhoConnect Push server: POST <push_server>/messageQueue/<device_pin>.
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import { Limiter } from '../util/limiter.js';
import type { DevicePushRequest, DevicePushResult, PushAdapter, PushSendOutcome, PushContent } from './adapter.js';
import { parseRetryAfter, realClock, retriedOutcome, withRetries, type AttemptOutcome, type RetryClock } from './retry.js';

export interface RhoconnectPushBody {
  collapseId?: number;
  data: { alert?: string; sound?: string; vibrate?: string; do_sync?: string[] };
}

export function rhoconnectPushBody(ping: PushContent): RhoconnectPushBody {
  const data: RhoconnectPushBody['data'] = {};
  if (ping.message) data.alert = ping.message;
  if (ping.sound) data.sound = ping.sound;
  if (ping.vibrate) data.vibrate = ping.vibrate;
  if (ping.sources.length > 0) data.do_sync = [...ping.sources];
  const body: RhoconnectPushBody = { data };
  if (ping.badge) body.collapseId = Number.parseInt(ping.badge, 10);
  return body;
}

// ---- Sender -------------------------------------------------------------------------------

/** The POST for one device: URL without userinfo, and basic auth taken from it. */
export function rhoconnectPushRequest(pushServer: string, devicePin: string): { url: string; authorization?: string } | undefined {
  let base: URL;
  try {
    base = new URL(pushServer);
  } catch {
    return undefined;
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') return undefined;
  const url = new URL(`/messageQueue/${encodeURIComponent(devicePin)}`, base);
  let authorization: string | undefined;
  if (base.username || base.password) {
    const user = decodeURIComponent(base.username);
    const password = decodeURIComponent(base.password);
    authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  }
  url.username = '';
  url.password = '';
  return { url: url.toString(), authorization };
}

/**
 * Delivers device pushes to a RhoConnect Push server: `POST <push_server>/messageQueue/<device_pin>`
 * with RhoConnect's JSON body. 200/204 sent; 400 "Invalid push request."; 429/5xx and connection
 * failures retried. RhoConnect Push reports no dead tokens.
 */
export class RhoconnectPushAdapter implements PushAdapter {
  private limiter?: { size: number; limiter: Limiter };

  constructor(
    private readonly settings: () => Settings,
    private readonly logger: Logger,
    private readonly clock: RetryClock = realClock,
  ) {}

  async send(request: DevicePushRequest): Promise<PushSendOutcome> {
    const settings = this.settings();
    const server = settings.push.pushServer;
    const target = server ? rhoconnectPushRequest(server, request.token) : undefined;
    if (!target) return { outcome: 'failed', reason: errorMessage('PUSH_SERVER_INVALID') };
    if (!request.token) return { outcome: 'failed', reason: 'RhoConnect Push: the client has no device_pin' };
    const body = JSON.stringify(rhoconnectPushBody(request.ping));
    const { requestTimeoutMs, connections } = settings.rhopush.rhoconnectPush;
    const limiter = this.limiterFor(connections);
    return retriedOutcome(
      await withRetries(() => limiter.run(() => this.post(target, body, requestTimeoutMs)), settings.rhopush.retry, this.clock),
    );
  }

  async close(): Promise<void> {}

  private limiterFor(size: number): Limiter {
    if (!this.limiter || this.limiter.size !== size) this.limiter = { size, limiter: new Limiter(size) };
    return this.limiter.limiter;
  }

  private async post(
    target: { url: string; authorization?: string },
    body: string,
    timeoutMs: number,
  ): Promise<AttemptOutcome<Pick<DevicePushResult, 'outcome' | 'reason'>>> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (target.authorization) headers.authorization = target.authorization;
    let response: Response;
    try {
      response = await fetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
      // The body is not used; reading it lets the connection be reused.
      await response.arrayBuffer().catch(() => undefined);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
      const reason = `RhoConnect Push connection: ${why}`;
      this.logger.debug({ err: why }, 'RhoConnect Push request failed');
      return { retry: reason, giveUp: { outcome: 'failed', reason } };
    }
    const { status } = response;
    if (status === 200 || status === 204) return { done: { outcome: 'sent' } };
    if (status === 400) return { done: { outcome: 'failed', reason: errorMessage('PUSH_REQUEST_INVALID') } };
    const reason = `RhoConnect Push server answered ${status}`;
    if (status === 429 || status >= 500) {
      return {
        retry: reason,
        giveUp: { outcome: 'failed', reason },
        retryAfterMs: parseRetryAfter(response.headers.get('retry-after') ?? undefined),
      };
    }
    return { done: { outcome: 'failed', reason } };
  }
}
