// The FCM sender: a batch of messages in, one result per message out. The real one is the
// firebase-admin SDK (HTTP v1 `messages:send`), over HTTP/1.1 keep-alive connections through an
// agent rhopush controls (bounded sockets; or `:fcm: :address:` for another endpoint).
import { randomUUID } from 'node:crypto';
import type https from 'node:https';
import { cert, applicationDefault, initializeApp, deleteApp, type App } from 'firebase-admin/app';
import { getMessaging, type Message, type Messaging } from 'firebase-admin/messaging';
import type { FcmMessage } from './fcm-message.js';
import { boundedAgent, EndpointAgent, type Endpoint } from './endpoint-agent.js';
import { parseRetryAfter } from '../retry.js';

/** One message's result: sent, or the SDK's error code (`messaging/...`, `app/...`). */
export type FcmSendResult = { ok: true; messageId?: string } | { ok: false; code: string; message: string; retryAfterMs?: number };

export interface FcmSender {
  /** Sends at most 500 messages; resolves with one result per message, in order. Never rejects. */
  sendEach(messages: FcmMessage[]): Promise<FcmSendResult[]>;
  close(): Promise<void>;
}

export interface FirebaseSenderOptions {
  projectId: string;
  /** Service account JSON file; Google application default credentials when omitted. */
  serviceAccount?: string;
  /** Another endpoint for FCM and its OAuth token requests (tests, proxies). */
  endpoint?: Endpoint;
  /** HTTPS connections (bounds requests in flight). */
  connections: number;
}

/** The SDK's request client, as far as rhopush needs to reach into it (see `takeOverRetries`). */
interface SdkHttpClient {
  retry: unknown;
  send(request: { data?: { message?: { token?: string } } }): Promise<unknown>;
}

export class FirebaseFcmSender implements FcmSender {
  private readonly app: App;
  private readonly messaging: Messaging;
  private readonly agent: https.Agent;
  /** Retry-After of the last failed request per device token (the SDK's results drop headers). */
  private readonly retryAfter = new Map<string, number>();

  constructor(options: FirebaseSenderOptions) {
    this.agent = options.endpoint ? new EndpointAgent(options.endpoint, options.connections) : boundedAgent(options.connections);
    const credential = options.serviceAccount ? cert(options.serviceAccount, this.agent) : applicationDefault(this.agent);
    this.app = initializeApp({ credential, projectId: options.projectId, httpAgent: this.agent }, `rhopush-fcm-${randomUUID()}`);
    this.messaging = getMessaging(this.app);
    // HTTP/1.1 through rhopush's agent: the SDK's HTTP/2 transport takes no agent, so it could
    // neither be bounded nor pointed at another endpoint.
    this.messaging.enableLegacyHttpTransport();
    this.takeOverRetries();
  }

  async sendEach(messages: FcmMessage[]): Promise<FcmSendResult[]> {
    try {
      const batch = await this.messaging.sendEach(messages.map(toSdkMessage));
      return batch.responses.map((r, i) => {
        if (r.success) return { ok: true, messageId: r.messageId };
        const token = messages[i]!.token;
        const retryAfterMs = this.retryAfter.get(token);
        this.retryAfter.delete(token);
        return { ok: false, code: r.error?.code ?? 'messaging/unknown-error', message: r.error?.message ?? 'unknown error', retryAfterMs };
      });
    } catch (err) {
      // The whole batch failed before any message was sent (credentials, token endpoint).
      const e = err as { code?: string; message?: string };
      for (const m of messages) this.retryAfter.delete(m.token);
      return messages.map(() => ({ ok: false, code: e.code ?? 'app/unknown-error', message: e.message ?? String(err) }));
    }
  }

  async close(): Promise<void> {
    await deleteApp(this.app);
    this.agent.destroy();
  }

  /**
   * rhopush owns retries: they are bounded by `:rhopush: :retry:` and counted in each push's result.
   * The SDK would otherwise retry 503s itself (up to 4 times, unbounded by those settings and
   * invisible in results), and it drops the Retry-After header from the results it returns. Both
   * live in its internal request client, which rhopush adjusts here; if a future SDK moves it, the
   * SDK's own retries simply stay on.
   */
  private takeOverRetries(): void {
    const handler = (this.messaging as unknown as { messagingRequestHandler?: { httpClient?: SdkHttpClient } }).messagingRequestHandler;
    const client = handler?.httpClient;
    if (!client || typeof client.send !== 'function' || !('retry' in client)) return;
    client.retry = null;
    const send = client.send.bind(client);
    client.send = (request) =>
      send(request).catch((err: { response?: { headers?: Record<string, string | string[] | undefined> } }) => {
        const token = request.data?.message?.token;
        const retryAfter = parseRetryAfter(err.response?.headers?.['retry-after']);
        if (token && retryAfter !== undefined) this.retryAfter.set(token, retryAfter);
        throw err;
      });
  }
}

/** RhoConnect's message in the SDK's (camelCase) shape; the SDK writes it back in wire form. */
function toSdkMessage(m: FcmMessage): Message {
  const a = m.android;
  return {
    token: m.token,
    android: {
      priority: a.priority,
      ...(a.collapse_key ? { collapseKey: a.collapse_key } : {}),
      ...(a.restricted_package_name ? { restrictedPackageName: a.restricted_package_name } : {}),
      data: a.data,
      ...(a.notification ? { notification: { body: a.notification.body } } : {}),
    },
  };
}
