// Apple Push Notification service (HTTP/2). RhoConnect's payload, current protocol.
import { createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { Settings } from '../../config/settings.js';
import {
  pushToken,
  type DevicePushRequest,
  type DevicePushResult,
  type PushAdapter,
  type PushSendOutcome,
  type PushContent,
} from '../adapter.js';
import type { ApnsPush, ApnsReply, NodeApnClientOptions } from './apns-connection.js';
import { ApnsProvider } from './apns-provider.js';
import { apnsTarget, type ApnsTarget } from './apns-target.js';
import { syncCollapseId } from '../collapse.js';
import { checkCredential, CredentialError, readCredentialFile } from '../credential-files.js';
import { ProviderCache, type ProviderLease } from '../provider-cache.js';
import { realClock, retriedOutcome, retryAfterFirst, type AttemptOutcome, type RetryClock } from '../retry.js';

export interface ApnsNotification {
  payload: {
    aps: { alert?: string; badge?: number; sound?: string; vibrate?: string; 'content-available'?: 1 };
    do_sync?: string[];
  };
  pushType: 'alert' | 'background';
  priority: 10 | 5;
}

/** Distinct device_app_id values whose APNs target is kept per settings. */
const MAX_CACHED_APPS = 1000;

const given = (v: string | undefined): v is string => v !== undefined && v !== '';

/**
 * RhoConnect's APNs payload: `aps` fields only when given, `do_sync` when sources are given.
 * `content-available` wakes the app to sync; a ping with nothing to show is a background push.
 */
export function apnsNotification(ping: PushContent): ApnsNotification {
  const aps: ApnsNotification['payload']['aps'] = {};
  if (given(ping.message)) aps.alert = ping.message;
  if (given(ping.badge)) aps.badge = Number.parseInt(ping.badge, 10);
  if (given(ping.sound)) aps.sound = ping.sound;
  if (given(ping.vibrate)) aps.vibrate = ping.vibrate;
  const payload: ApnsNotification['payload'] = { aps };
  if (ping.sources.length > 0) {
    aps['content-available'] = 1;
    payload.do_sync = [...ping.sources];
  }
  const visible = aps.alert !== undefined || aps.sound !== undefined || aps.badge !== undefined;
  return { payload, pushType: visible ? 'alert' : 'background', priority: visible ? 10 : 5 };
}

/** APNs device token: RhoConnect's device_pin with spaces removed. */
export function apnsToken(devicePin: string): string {
  return pushToken('apple', devicePin);
}

// ---- Sender -------------------------------------------------------------------------------

/**
 * Delivers device pushes to APNs over HTTP/2. One provider per (credentials, topic, environment),
 * reused across pings and closed on shutdown. Answers are sorted into sent, dead (410 Unregistered,
 * 400 BadDeviceToken), retried (429, 5xx, expired provider token, connection failures) and failed.
 */
export class ApnsAdapter implements PushAdapter {
  private readonly providers = new ProviderCache<ApnsProvider>();
  // A fan-out sends one ping to many devices: where each device's push goes and what it carries are
  // worked out once per (settings, app) and once per (ping, topic), not once per device.
  private readonly targets = new WeakMap<Settings, Map<string, ApnsTarget | { error: string }>>();
  private readonly prepared = new WeakMap<PushContent, Map<string, ApnsPush>>();

  constructor(
    private readonly settings: () => Settings,
    private readonly logger: Logger,
    private readonly clock: RetryClock = realClock,
  ) {}

  send(request: DevicePushRequest): Promise<PushSendOutcome> {
    const settings = this.settings();
    if (!request.token) return Promise.resolve({ outcome: 'failed', reason: 'APNs: the client has no device_pin' });
    const target = this.targetFor(settings, request);
    if ('error' in target) return Promise.resolve({ outcome: 'failed', reason: target.error });
    const push = this.prepare(request.ping, target.topic);
    let lease: ProviderLease<ApnsProvider>;
    try {
      lease = this.providers.take(target.key, settings, () => this.createProvider(target, settings));
    } catch (err) {
      if (err instanceof CredentialError) return Promise.resolve({ outcome: 'failed', reason: `APNs credentials: ${err.message}` });
      return Promise.reject(err as Error);
    }
    const provider = lease.value;
    const { token } = request;
    const started = this.clock.now();
    // The first attempt is a callback on the provider; only a push that did not go through at once
    // enters the retry loop. Every device of a fan-out takes this path, so it allocates little.
    return new Promise<PushSendOutcome>((resolve, reject) => {
      provider.send(token, push, (reply) => {
        if ('status' in reply && reply.status === 200) {
          this.providers.release(lease);
          resolve({ outcome: 'sent' });
          return;
        }
        const attempt = () =>
          new Promise<AttemptOutcome<ApnsPushOutcome>>((answered) => provider.send(token, push, (r) => answered(classifyApnsReply(r))));
        retryAfterFirst(classifyApnsReply(reply), started, attempt, settings.rhopush.retry, this.clock).then(
          (sent) => {
            this.providers.release(lease);
            resolve(retriedOutcome(sent));
          },
          (err: unknown) => {
            this.providers.release(lease);
            reject(err as Error);
          },
        );
      });
    });
  }

  async close(): Promise<void> {
    await this.providers.close();
  }

  private targetFor(settings: Settings, request: DevicePushRequest): ApnsTarget | { error: string } {
    let byApp = this.targets.get(settings);
    if (!byApp) this.targets.set(settings, (byApp = new Map()));
    const app = request.client.device_app_id ?? '';
    let target = byApp.get(app);
    if (!target) {
      // Apps are few; a store where every client names another app must not grow this without end.
      if (byApp.size >= MAX_CACHED_APPS) byApp.clear();
      byApp.set(app, (target = apnsTarget(settings, request.client)));
    }
    return target;
  }

  private prepare(ping: PushContent, topic: string | undefined): ApnsPush {
    let byTopic = this.prepared.get(ping);
    if (!byTopic) this.prepared.set(ping, (byTopic = new Map()));
    const key = topic ?? '';
    let push = byTopic.get(key);
    if (!push) {
      const notification = apnsNotification(ping);
      push = {
        pushType: notification.pushType,
        priority: String(notification.priority),
        topic: topic || undefined,
        collapseId: syncCollapseId(ping, key) || undefined,
        body: JSON.stringify(notification.payload),
      };
      byTopic.set(key, push);
    }
    return push;
  }

  private createProvider(target: ApnsTarget, settings: Settings): ApnsProvider {
    const apns = settings.rhopush.apns;
    const client: NodeApnClientOptions = {
      production: target.production,
      address: target.address,
      port: target.port,
      requestTimeout: apns.requestTimeoutMs,
    };
    // Credentials are checked here, so a bad file or passphrase fails at once with the setting's
    // name instead of surfacing later as a connection error that would be retried.
    if (target.ca) {
      const ca = readCredentialFile(settings.file, target.ca, ':rhopush: :apns: :ca:');
      checkCredential(':rhopush: :apns: :ca:', () => createSecureContext({ ca }));
      client.ca = [ca];
    }
    if (target.auth.kind === 'token') {
      const key = readCredentialFile(settings.file, target.auth.keyFile, ':rhopush: :apns: :token_key:');
      checkCredential(':rhopush: :apns: :token_key:', () => {
        if (createPrivateKey(key).asymmetricKeyType !== 'ec') throw new Error('expected the .p8 EC key from Apple');
      });
      client.token = { key, keyId: target.auth.keyId, teamId: target.auth.teamId };
    } else {
      // RhoConnect's certificate file holds both the certificate and its private key.
      const pem = readCredentialFile(settings.file, target.auth.certFile, target.auth.setting);
      const passphrase = target.auth.passphrase || undefined;
      checkCredential(target.auth.setting, () => createSecureContext({ cert: pem, key: pem, passphrase }));
      client.cert = pem;
      client.key = pem;
      if (passphrase) client.passphrase = passphrase;
    }
    // node-apn validates credentials as it prepares them (e.g. a certificate for the other environment).
    try {
      return new ApnsProvider({
        client,
        connections: apns.connections,
        maxConcurrentStreams: apns.maxConcurrentStreams,
        requestTimeoutMs: apns.requestTimeoutMs,
        pingIntervalMs: apns.pingIntervalMs,
        logger: this.logger,
        label: `apns ${target.topic ?? '(certificate topic)'} ${target.production ? 'production' : 'sandbox'}`,
      });
    } catch (err) {
      throw err instanceof CredentialError ? err : new CredentialError((err as Error).message);
    }
  }
}

type ApnsPushOutcome = Pick<DevicePushResult, 'outcome' | 'reason'>;

/** Sorts one APNs answer into a final outcome or a retry. */
export function classifyApnsReply(reply: ApnsReply): AttemptOutcome<ApnsPushOutcome> {
  if ('failure' in reply) {
    const reason = `APNs connection: ${reply.failure}`;
    return { retry: reason, giveUp: { outcome: 'failed', reason }, reconnect: true };
  }
  const { status } = reply;
  if (status === 200) return { done: { outcome: 'sent' } };
  const reason = reply.reason ?? `status ${status}`;
  if (status === 410 || (status === 400 && reason === 'BadDeviceToken')) return { done: { outcome: 'dead', reason } };
  const described = `APNs ${status} ${reason}`;
  if (status === 429 || status >= 500 || (status === 403 && reason === 'ExpiredProviderToken')) {
    return { retry: described, giveUp: { outcome: 'failed', reason: described }, retryAfterMs: reply.retryAfterMs };
  }
  return { done: { outcome: 'failed', reason: described } };
}
