// A loopback HTTPS server that behaves like FCM HTTP v1 and Google's OAuth token endpoint, for
// tests, `rhopush demo` and benchmarks. rhopush reaches it through `:rhopush: :fcm: :address:`,
// `:port:` and `:ca:`: the real firebase-admin SDK talks to it unchanged (the loopback certificate
// names the Google hosts). It checks the service-account assertion, the bearer token, the path and
// the message, and answers like FCM or as scripted.
import { createVerify, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK_TLS, type ServerTls } from './loopback-tls.js';
import { closeServer, listenOnLoopback, readBody, ScriptedStandIn } from './stand-in-server.js';

const TOKEN_AUDIENCE = 'https://oauth2.googleapis.com/token';
const MESSAGING_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/** FCM's error codes (the `errorCode` in its error details) the stand-in can answer with. */
export type FcmErrorCode =
  'UNREGISTERED' | 'INVALID_ARGUMENT' | 'UNAVAILABLE' | 'INTERNAL' | 'QUOTA_EXCEEDED' | 'SENDER_ID_MISMATCH' | 'THIRD_PARTY_AUTH_ERROR';

export type FcmAnswer =
  { ok: true } | { error: FcmErrorCode; retryAfter?: number | string } | { stall: true } | { delayMs: number; then: FcmAnswer };

const ERROR_STATUS: Record<FcmErrorCode, [number, string, string]> = {
  UNREGISTERED: [404, 'NOT_FOUND', 'Requested entity was not found.'],
  INVALID_ARGUMENT: [400, 'INVALID_ARGUMENT', 'The registration token is not a valid FCM registration token'],
  UNAVAILABLE: [503, 'UNAVAILABLE', 'The service is currently unavailable.'],
  INTERNAL: [500, 'INTERNAL', 'Internal error encountered.'],
  QUOTA_EXCEEDED: [429, 'RESOURCE_EXHAUSTED', 'Quota exceeded for sending messages.'],
  SENDER_ID_MISMATCH: [403, 'PERMISSION_DENIED', 'SenderId mismatch'],
  THIRD_PARTY_AUTH_ERROR: [401, 'UNAUTHENTICATED', 'Auth error from APNS or Web Push Service'],
};

export interface FcmMessageRecord {
  project: string;
  /** The `message` object exactly as received. */
  message: Record<string, unknown> & { token?: string };
  /** Host the client addressed (fcm.googleapis.com when the SDK is only redirected). */
  host: string;
  status?: number;
}

export interface FcmStandInOptions {
  projectId: string;
  /** The server's TLS identity (default: the fixed loopback one, whose certificate names the Google hosts). */
  tls?: ServerTls;
  clientEmail?: string;
}

export interface ServiceAccountJson {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
}

export class FcmStandIn extends ScriptedStandIn<FcmAnswer> {
  readonly messages: FcmMessageRecord[] = [];
  /** OAuth token requests answered (each checked against the service account key). */
  tokenRequests = 0;
  private readonly issuedTokens = new Set<string>();
  private readonly held = new Set<() => void>();
  private sent = 0;

  private constructor(
    private readonly tls: ServerTls,
    readonly projectId: string,
    readonly clientEmail: string,
    private readonly privateKeyPem: string,
    private readonly publicKey: KeyObject,
    private readonly server: https.Server,
  ) {
    super({ ok: true });
  }

  static async start(options: FcmStandInOptions): Promise<FcmStandIn> {
    const tls = options.tls ?? LOOPBACK_TLS;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const server = https.createServer({ key: tls.key, cert: tls.cert });
    const standIn = new FcmStandIn(
      tls,
      options.projectId,
      options.clientEmail ?? `rhopush-test@${options.projectId}.iam.gserviceaccount.com`,
      privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      publicKey,
      server,
    );
    server.on('request', (req, res) => standIn.onRequest(req, res));
    await listenOnLoopback(server);
    return standIn;
  }

  get address(): string {
    return '127.0.0.1';
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** PEM of the CA to trust (`:fcm: :ca:`). */
  get ca(): string {
    return this.tls.ca;
  }

  /** A service account whose key the stand-in's token endpoint accepts. */
  serviceAccount(): ServiceAccountJson {
    return {
      type: 'service_account',
      project_id: this.projectId,
      private_key_id: 'rhopush-test-key',
      private_key: this.privateKeyPem,
      client_email: this.clientEmail,
      client_id: '100000000000000000000',
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: TOKEN_AUDIENCE,
    };
  }

  /** Messages answered with success. */
  delivered(): FcmMessageRecord[] {
    return this.messages.filter((m) => m.status === 200);
  }

  async close(): Promise<void> {
    for (const release of this.held) release();
    await closeServer(this.server);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    void readBody(req).then((body) => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      if (req.method === 'POST' && path === '/token') return this.onToken(body, res);
      const m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(path);
      if (req.method === 'POST' && m) return this.onSend(m[1]!, req, body, res);
      json(res, 404, { error: { code: 404, message: `no such endpoint: ${req.method} ${path}`, status: 'NOT_FOUND' } });
    });
  }

  private onToken(body: string, res: ServerResponse): void {
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      return json(res, 400, { error: 'unsupported_grant_type', error_description: 'expected a JWT bearer grant' });
    }
    const problem = this.checkAssertion(form.get('assertion') ?? '');
    if (problem) return json(res, 400, { error: 'invalid_grant', error_description: problem });
    this.tokenRequests += 1;
    const token = `ya29.rhopush-test-${randomBytes(12).toString('hex')}`;
    this.issuedTokens.add(token);
    json(res, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
  }

  private checkAssertion(assertion: string): string | undefined {
    const parts = assertion.split('.');
    if (parts.length !== 3) return 'assertion is not a JWT';
    const [head, payload, signature] = parts as [string, string, string];
    let header: { alg?: string };
    let claims: { iss?: string; aud?: string; scope?: string; exp?: number; iat?: number };
    try {
      header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as typeof header;
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return 'assertion is not a JWT';
    }
    if (header.alg !== 'RS256') return `unexpected alg ${header.alg}`;
    const verifier = createVerify('RSA-SHA256');
    verifier.update(`${head}.${payload}`);
    if (!verifier.verify(this.publicKey, Buffer.from(signature, 'base64url'))) return 'invalid signature';
    if (claims.iss !== this.clientEmail) return `unexpected issuer ${claims.iss}`;
    if (claims.aud !== TOKEN_AUDIENCE) return `unexpected audience ${claims.aud}`;
    if (!claims.scope?.split(' ').includes(MESSAGING_SCOPE)) return `scope lacks ${MESSAGING_SCOPE}`;
    if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return 'assertion expired';
    return undefined;
  }

  private onSend(project: string, req: IncomingMessage, body: string, res: ServerResponse): void {
    const auth = String(req.headers.authorization ?? '');
    const bearer = auth.replace(/^Bearer\s+/i, '');
    if (!this.issuedTokens.has(bearer)) {
      return json(res, 401, {
        error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' },
      });
    }
    let parsed: { message?: FcmMessageRecord['message'] };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      return json(res, 400, { error: { code: 400, message: 'Invalid JSON payload received.', status: 'INVALID_ARGUMENT' } });
    }
    const record: FcmMessageRecord = { project, message: parsed.message ?? {}, host: String(req.headers.host ?? '') };
    this.messages.push(record);
    if (project !== this.projectId) return this.answer(record, res, { error: 'SENDER_ID_MISMATCH' });
    if (typeof record.message.token !== 'string' || record.message.token === '')
      return this.answer(record, res, { error: 'INVALID_ARGUMENT' });
    this.answer(record, res, this.answers.pick(record.message.token));
  }

  private answer(record: FcmMessageRecord, res: ServerResponse, answer: FcmAnswer): void {
    if ('stall' in answer) {
      const release = () => res.destroy();
      this.held.add(release);
      res.on('close', () => this.held.delete(release));
      return;
    }
    if ('delayMs' in answer) {
      const timer = setTimeout(() => this.answer(record, res, answer.then), answer.delayMs);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if ('ok' in answer) {
      record.status = 200;
      this.sent += 1;
      return json(res, 200, { name: `projects/${record.project}/messages/${this.sent}` });
    }
    const [status, grpcStatus, message] = ERROR_STATUS[answer.error];
    record.status = status;
    const headers: Record<string, string> = {};
    if (answer.retryAfter !== undefined) headers['retry-after'] = String(answer.retryAfter);
    json(
      res,
      status,
      {
        error: {
          code: status,
          message,
          status: grpcStatus,
          details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: answer.error }],
        },
      },
      headers,
    );
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
