// Firebase Cloud Messaging (HTTP v1). RhoConnect's message shape.
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { Settings } from '../../config/settings.js';
import type { DevicePushRequest, DevicePushResult, PushAdapter, PushSendOutcome } from '../adapter.js';
import { distinctCollapseKey, syncCollapseId } from '../collapse.js';
import { checkCredential, CredentialError, readCredentialFile, resolveCredentialPath } from '../credential-files.js';
import { FcmBatcher } from './fcm-batcher.js';
import { FirebaseFcmSender, type FcmSender, type FcmSendResult, type FirebaseSenderOptions } from './fcm-sender.js';
import { ProviderCache } from '../provider-cache.js';
import { retriedOutcome, withRetries, type AttemptOutcome, type RetryClock, type RetryResult } from '../retry.js';
import { errorMessage } from '../../errors.js';
import { fcmMessage } from './fcm-message.js';

export { fcmMessage, type FcmMessage, type FcmMessageOptions } from './fcm-message.js';

// ---- Sender -------------------------------------------------------------------------------

/** Error codes of the SDK worth retrying: the server or the network, not the message. */
const RETRYABLE_FCM_CODES = new Set([
  'messaging/server-unavailable',
  'messaging/internal-error',
  'messaging/message-rate-exceeded',
  'messaging/device-message-rate-exceeded',
  'messaging/quota-exceeded',
  'app/network-error',
  'app/network-timeout',
  'rhopush/timeout',
]);
const DEAD_FCM_CODES = new Set(['messaging/registration-token-not-registered']);

export interface FcmAdapterOptions {
  /** Builds the sender for a project (tests may pass another implementation). */
  createSender?: (options: FirebaseSenderOptions) => FcmSender;
  clock?: RetryClock;
}

/**
 * Delivers device pushes to FCM (HTTP v1) through the firebase-admin SDK. Pushes of one ping go
 * out in `sendEach` batches of at most 500. `gcm` registrations are FCM tokens and come here too.
 */
export class FcmAdapter implements PushAdapter {
  private readonly batchers = new ProviderCache<FcmBatcher>();

  constructor(
    private readonly settings: () => Settings,
    private readonly logger: Logger,
    private readonly options: FcmAdapterOptions = {},
  ) {}

  async send(request: DevicePushRequest): Promise<PushSendOutcome> {
    const settings = this.settings();
    const projectId = settings.push.fcmProjectId;
    if (!projectId) return { outcome: 'failed', reason: errorMessage('FCM_NO_PROJECT') };
    const packageName = settings.push.packageName;
    if (!packageName) return { outcome: 'failed', reason: errorMessage('FCM_NO_PACKAGE') };
    if (!request.token) return { outcome: 'failed', reason: 'FCM: the client has no device_pin' };
    const collapseKey = syncCollapseId(request.ping, packageName) ?? distinctCollapseKey();
    const message = fcmMessage(request.ping, request.client, { packageName, collapseKey });
    const fcm = settings.rhopush.fcm;
    const key = JSON.stringify([
      projectId,
      fcm.serviceAccount ?? null,
      fcm.address ?? null,
      fcm.port ?? null,
      fcm.ca ?? null,
      fcm.connections,
      fcm.requestTimeoutMs,
    ]);
    let sent: RetryResult<FcmPushOutcome>;
    try {
      sent = await this.batchers.use(
        key,
        settings,
        () => this.createBatcher(settings, projectId),
        (batcher) => withRetries(async () => classifyFcmResult(await batcher.submit(message)), settings.rhopush.retry, this.options.clock),
      );
    } catch (err) {
      if (err instanceof CredentialError) return { outcome: 'failed', reason: `FCM credentials: ${err.message}` };
      throw err;
    }
    return retriedOutcome(sent);
  }

  async close(): Promise<void> {
    await this.batchers.close();
  }

  private createBatcher(settings: Settings, projectId: string): FcmBatcher {
    const fcm = settings.rhopush.fcm;
    const senderOptions: FirebaseSenderOptions = { projectId, connections: fcm.connections };
    if (fcm.serviceAccount) {
      const path = resolveCredentialPath(settings.file, fcm.serviceAccount);
      readCredentialFile(settings.file, path, ':rhopush: :fcm: :service_account:');
      senderOptions.serviceAccount = path;
    }
    if (fcm.address) {
      senderOptions.endpoint = {
        host: fcm.address,
        port: fcm.port ?? 443,
        ca: fcm.ca ? readCredentialFile(settings.file, fcm.ca, ':rhopush: :fcm: :ca:') : undefined,
      };
      const ca = senderOptions.endpoint.ca;
      if (ca) checkCredential(':rhopush: :fcm: :ca:', () => createSecureContext({ ca }));
    }
    let sender: FcmSender;
    try {
      // The SDK reads and checks the service account as it builds the credential.
      sender = (this.options.createSender ?? ((o) => new FirebaseFcmSender(o)))(senderOptions);
    } catch (err) {
      throw err instanceof CredentialError ? err : new CredentialError((err as Error).message);
    }
    this.logger.debug({ project: projectId, endpoint: fcm.address ?? 'fcm.googleapis.com' }, 'FCM sender ready');
    return new FcmBatcher(sender, fcm.requestTimeoutMs);
  }
}

type FcmPushOutcome = Pick<DevicePushResult, 'outcome' | 'reason'>;

/** Sorts one FCM result into a final outcome or a retry. */
export function classifyFcmResult(result: FcmSendResult): AttemptOutcome<FcmPushOutcome> {
  if (result.ok) return { done: { outcome: 'sent' } };
  const shortCode = result.code.replace(/^messaging\//, '');
  if (DEAD_FCM_CODES.has(result.code)) return { done: { outcome: 'dead', reason: shortCode } };
  const reason = `FCM ${shortCode}: ${result.message}`;
  if (RETRYABLE_FCM_CODES.has(result.code))
    return { retry: reason, giveUp: { outcome: 'failed', reason }, retryAfterMs: result.retryAfterMs };
  return { done: { outcome: 'failed', reason } };
}
