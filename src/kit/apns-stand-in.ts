// A loopback HTTP/2 TLS server that behaves like APNs for tests, `rhopush demo` and benchmarks.
// It checks what APNs checks (method, path, topic, push type, priority, provider token or client
// certificate, body) and answers like APNs, or as scripted: errors, Retry-After, slow answers,
// stalls, GOAWAY, and a silently dropped connection (a TCP relay in front that can stop relaying,
// like a middlebox that forgot the connection).
import { createVerify, createPublicKey, type KeyObject } from 'node:crypto';
import http2, { type Http2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { LOOPBACK_TLS, type ServerTls } from './loopback-tls.js';
import { closeServer, listenOnLoopback, readBody, ScriptedStandIn } from './stand-in-server.js';

/** How the stand-in answers one request. */
export type ApnsAnswer =
  | { status: 200 }
  | { status: number; reason: string; retryAfter?: number | string; timestamp?: number }
  /** Hold the request without answering until `resume()` or until the client gives up. */
  | { stall: true }
  /** Answer after a delay. */
  | { delayMs: number; then: ApnsAnswer };

export interface ApnsTokenAuth {
  keyId: string;
  teamId: string;
  /** Public half of the .p8 key (PEM or KeyObject). */
  publicKey: string | KeyObject;
}

export interface ApnsStandInOptions {
  /** The server's TLS identity (default: the fixed loopback one, `LOOPBACK_TLS`). */
  tls?: ServerTls;
  /** The authority whose client certificates are accepted (certificate auth; default: `tls.ca`). */
  clientCa?: string;
  /** SETTINGS_MAX_CONCURRENT_STREAMS the server announces and enforces (APNs: about 1000). */
  maxConcurrentStreams?: number;
  /** Accept provider tokens signed by this key. */
  token?: ApnsTokenAuth;
  /** Accept client certificates (signed by `clientCa`) with these common names. */
  certificateNames?: string[];
  /** Topics accepted; any non-empty topic when omitted. */
  topics?: string[];
  /**
   * Put a TCP relay in front of the server so `dropConnectionsSilently()` can act like a middlebox
   * (default true). Large fan-out runs turn it off to save the extra copy.
   */
  relay?: boolean;
  /** Called for every request once its body has arrived, before it is answered (benchmarks time arrivals here). */
  onRequest?: (record: ApnsRequestRecord) => void;
  /** Keep every request in `requests` (default true); long benchmark runs turn it off to bound memory. */
  keepRequests?: boolean;
}

export interface ApnsRequestRecord {
  token: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Provider auth seen: the JWT's key id, or the client certificate's common name. */
  auth: { kind: 'token'; keyId: string; teamId: string } | { kind: 'certificate'; commonName: string } | { kind: 'none' };
  /** Which TLS connection (1-based, in order of arrival) carried it. */
  connection: number;
  /** Status answered; undefined while held or when the client gave up first. */
  status?: number;
  reason?: string;
}

interface HeldStream {
  stream: ServerHttp2Stream;
  record: ApnsRequestRecord;
}

const HEX = /^[0-9a-fA-F]+$/;

/** A well-formed APNs device token (64 hex digits) that encodes `n`; `tokenNumber` reads it back. */
export function hexToken(n: number): string {
  return n.toString(16).padStart(64, '0');
}

export function tokenNumber(token: string): number {
  return Number.parseInt(token, 16);
}
const PUSH_TYPES = new Set([
  'alert',
  'background',
  'voip',
  'complication',
  'fileprovider',
  'mdm',
  'liveactivity',
  'location',
  'pushtotalk',
]);

export class ApnsStandIn extends ScriptedStandIn<ApnsAnswer> {
  readonly requests: ApnsRequestRecord[] = [];
  /** TLS connections accepted so far. */
  connections = 0;
  /** Most streams one connection had open at once. */
  maxOpenStreams = 0;
  private stalled = false;
  private readonly held = new Set<HeldStream>();
  private readonly sessions = new Set<Http2Session>();
  private readonly relays = new Set<{ client: net.Socket; backend: net.Socket; dropped: boolean }>();
  private readonly verifiedJwts = new Map<string, { keyId: string; teamId: string } | string>();
  private readonly publicKey?: KeyObject;

  private constructor(
    private readonly tls: ServerTls,
    private readonly options: ApnsStandInOptions,
    private readonly server: http2.Http2SecureServer,
    private readonly front: net.Server | undefined,
    /** Port rhopush connects to (the relay in front of the HTTP/2 server). */
    readonly port: number,
  ) {
    super({ status: 200 });
    if (options.token) {
      this.publicKey = typeof options.token.publicKey === 'string' ? createPublicKey(options.token.publicKey) : options.token.publicKey;
    }
  }

  static async start(options: ApnsStandInOptions = {}): Promise<ApnsStandIn> {
    const tls = options.tls ?? LOOPBACK_TLS;
    const server = http2.createSecureServer({
      key: tls.key,
      cert: tls.cert,
      ca: options.clientCa ?? tls.ca,
      requestCert: true,
      // Checked per request so a missing certificate gets APNs' 403 instead of a TLS alert.
      rejectUnauthorized: false,
      allowHTTP1: false,
      settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 1000 },
    });
    const backendPort = await listenOnLoopback(server);
    // Assigned once the front relay exists; the relay's handler reads it per connection.
    // eslint-disable-next-line prefer-const
    let standIn: ApnsStandIn | undefined;
    const front = options.relay === false ? undefined : net.createServer((client) => standIn?.relay(client, backendPort));
    const port = front ? await listenOnLoopback(front) : backendPort;
    standIn = new ApnsStandIn(tls, options, server, front, port);
    standIn.listen();
    return standIn;
  }

  /** Host to give rhopush as `:apns: :address:`. */
  get address(): string {
    return '127.0.0.1';
  }

  /** PEM of the CA to trust (`:apns: :ca:`). */
  get ca(): string {
    return this.tls.ca;
  }

  /** Requests answered 200. */
  delivered(): ApnsRequestRecord[] {
    return this.requests.filter((r) => r.status === 200);
  }

  /** Hold every new request unanswered (a server that stopped answering). */
  stall(): void {
    this.stalled = true;
  }

  /** Answer held requests and stop holding new ones. */
  resume(): void {
    this.stalled = false;
    for (const h of [...this.held]) {
      this.held.delete(h);
      this.respond(h.stream, h.record, this.pickAnswer(h.record.token, true));
    }
  }

  /** Client connections open now (through the relay when there is one). */
  get openConnections(): number {
    return this.front ? this.relays.size : this.sessions.size;
  }

  /** Requests currently held (stalled) and still open. */
  get heldCount(): number {
    return this.held.size;
  }

  /** GOAWAY on every open connection, saying no stream was processed, then drop the connections. */
  goAway(): void {
    for (const session of [...this.sessions]) {
      if (session.destroyed) continue;
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, 0);
      setTimeout(() => session.destroy(), 20).unref();
    }
    for (const h of this.held) this.held.delete(h);
  }

  /** Silently stop relaying on every open connection: nothing arrives, nothing is answered, no reset. */
  dropConnectionsSilently(): void {
    if (!this.front) throw new Error('dropConnectionsSilently() needs the relay (start with relay: true)');
    for (const r of this.relays) r.dropped = true;
  }

  async close(): Promise<void> {
    for (const r of this.relays) {
      r.client.destroy();
      r.backend.destroy();
    }
    for (const s of this.sessions) s.destroy();
    await Promise.all([this.front ? closeServer(this.front) : undefined, closeServer(this.server)]);
  }

  private relay(client: net.Socket, backendPort: number): void {
    const backend = net.connect(backendPort, '127.0.0.1');
    const entry = { client, backend, dropped: false };
    this.relays.add(entry);
    client.setNoDelay(true);
    backend.setNoDelay(true);
    client.on('data', (d) => {
      if (!entry.dropped) backend.write(d);
    });
    backend.on('data', (d) => {
      if (!entry.dropped) client.write(d);
    });
    const end = () => {
      this.relays.delete(entry);
      client.destroy();
      backend.destroy();
    };
    client.on('close', end);
    backend.on('close', () => {
      if (!entry.dropped) end();
    });
    client.on('error', () => undefined);
    backend.on('error', () => undefined);
  }

  private listen(): void {
    this.server.on('session', (session) => {
      this.connections += 1;
      const connection = this.connections;
      this.sessions.add(session);
      (session as Http2Session & { rhopushConnection?: number }).rhopushConnection = connection;
      session.on('close', () => this.sessions.delete(session));
      session.on('error', () => undefined);
    });
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.server.on('sessionError', () => undefined);
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const counted = stream.session as (Http2Session & { rhopushOpenStreams?: number }) | undefined;
    if (counted) {
      counted.rhopushOpenStreams = (counted.rhopushOpenStreams ?? 0) + 1;
      this.maxOpenStreams = Math.max(this.maxOpenStreams, counted.rhopushOpenStreams);
      stream.on('close', () => (counted.rhopushOpenStreams = (counted.rhopushOpenStreams ?? 1) - 1));
    }
    void readBody(stream).then((body) => {
      const session = stream.session as (Http2Session & { rhopushConnection?: number }) | undefined;
      const path = String(headers[':path'] ?? '');
      const flat: Record<string, string> = {};
      for (const [k, v] of Object.entries(headers))
        if (!k.startsWith(':') && v !== undefined) flat[k] = Array.isArray(v) ? v.join(',') : String(v);
      const record: ApnsRequestRecord = {
        token: path.startsWith('/3/device/') ? path.slice('/3/device/'.length) : '',
        method: String(headers[':method'] ?? ''),
        path,
        headers: flat,
        body,
        auth: { kind: 'none' },
        connection: session?.rhopushConnection ?? 0,
      };
      if (this.options.keepRequests !== false) this.requests.push(record);
      this.options.onRequest?.(record);
      const invalid = this.validate(record, stream);
      if (invalid) {
        this.respond(stream, record, invalid);
        return;
      }
      this.respond(stream, record, this.pickAnswer(record.token, false));
    });
  }

  /** APNs' own checks; returns the error answer, or undefined when the request is acceptable. */
  private validate(record: ApnsRequestRecord, stream: ServerHttp2Stream): ApnsAnswer | undefined {
    if (record.method !== 'POST') return { status: 405, reason: 'MethodNotAllowed' };
    if (!record.path.startsWith('/3/device/')) return { status: 404, reason: 'BadPath' };
    if (!HEX.test(record.token)) return { status: 400, reason: 'BadDeviceToken' };

    const authorization = record.headers.authorization;
    if (authorization !== undefined) {
      if (!this.options.token) return { status: 403, reason: 'InvalidProviderToken' };
      const jwt = authorization.replace(/^bearer\s+/i, '');
      const verified = this.verifyJwt(jwt);
      if (typeof verified === 'string') return { status: 403, reason: verified };
      record.auth = { kind: 'token', ...verified };
    } else {
      const socket = stream.session?.socket as unknown as TLSSocket | undefined;
      const peer = socket?.getPeerCertificate?.();
      const commonName = peer && 'subject' in peer && peer.subject ? String(peer.subject.CN ?? '') : '';
      if (!socket?.authorized || !commonName) return { status: 403, reason: 'MissingProviderToken' };
      if (this.options.certificateNames && !this.options.certificateNames.includes(commonName)) {
        return { status: 403, reason: 'BadCertificate' };
      }
      record.auth = { kind: 'certificate', commonName };
    }

    const topic = record.headers['apns-topic'];
    if (!topic) {
      if (record.auth.kind === 'token') return { status: 400, reason: 'MissingTopic' };
    } else if (this.options.topics && !this.options.topics.includes(topic)) {
      return { status: 400, reason: record.auth.kind === 'token' ? 'TopicDisallowed' : 'BadTopic' };
    }
    const pushType = record.headers['apns-push-type'];
    if (pushType !== undefined && !PUSH_TYPES.has(pushType)) return { status: 400, reason: 'InvalidPushType' };
    const priority = record.headers['apns-priority'];
    if (priority !== undefined && !['1', '5', '10'].includes(priority)) return { status: 400, reason: 'BadPriority' };
    if (pushType === 'background' && priority === '10') return { status: 400, reason: 'BadPriority' };
    const collapseId = record.headers['apns-collapse-id'];
    if (collapseId !== undefined && Buffer.byteLength(collapseId) > 64) return { status: 400, reason: 'BadCollapseId' };
    if (record.body === '') return { status: 400, reason: 'PayloadEmpty' };
    if (Buffer.byteLength(record.body) > 4096) return { status: 413, reason: 'PayloadTooLarge' };
    try {
      const json = JSON.parse(record.body) as unknown;
      if (!json || typeof json !== 'object' || !('aps' in json)) return { status: 400, reason: 'BadMessage' };
    } catch {
      return { status: 400, reason: 'BadMessage' };
    }
    return undefined;
  }

  private verifyJwt(jwt: string): { keyId: string; teamId: string } | string {
    const cached = this.verifiedJwts.get(jwt);
    if (cached) return cached;
    const result = this.checkJwt(jwt);
    this.verifiedJwts.set(jwt, result);
    return result;
  }

  private checkJwt(jwt: string): { keyId: string; teamId: string } | string {
    const parts = jwt.split('.');
    if (parts.length !== 3 || !this.publicKey || !this.options.token) return 'InvalidProviderToken';
    const [head, body, signature] = parts as [string, string, string];
    let header: { alg?: string; kid?: string };
    let claims: { iss?: string; iat?: number };
    try {
      header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as typeof header;
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return 'InvalidProviderToken';
    }
    if (header.alg !== 'ES256' || header.kid !== this.options.token.keyId || claims.iss !== this.options.token.teamId) {
      return 'InvalidProviderToken';
    }
    const verifier = createVerify('SHA256');
    verifier.update(`${head}.${body}`);
    if (!verifier.verify({ key: this.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))) {
      return 'InvalidProviderToken';
    }
    if (typeof claims.iat !== 'number' || Date.now() / 1000 - claims.iat > 3600) return 'ExpiredProviderToken';
    return { keyId: header.kid, teamId: claims.iss };
  }

  /** A held request being answered on `resume()` is not held again by a queued or default stall. */
  private pickAnswer(token: string, resuming: boolean): ApnsAnswer {
    const queued = this.answers.takeQueued(token);
    if (queued && !(resuming && 'stall' in queued)) return queued;
    const always = this.answers.standingFor(token);
    if (always) return always;
    if (this.stalled && !resuming) return { stall: true };
    const fallback = this.answers.byDefault;
    return resuming && 'stall' in fallback ? { status: 200 } : fallback;
  }

  private respond(stream: ServerHttp2Stream, record: ApnsRequestRecord, answer: ApnsAnswer): void {
    if (stream.destroyed || stream.closed) return;
    if ('stall' in answer) {
      const held = { stream, record };
      this.held.add(held);
      stream.on('close', () => this.held.delete(held));
      return;
    }
    if ('delayMs' in answer) {
      const timer = setTimeout(() => this.respond(stream, record, answer.then), answer.delayMs);
      stream.on('close', () => clearTimeout(timer));
      return;
    }
    record.status = answer.status;
    const apnsId = record.headers['apns-id'] ?? '00000000-0000-0000-0000-000000000000';
    if (answer.status === 200) {
      stream.respond({ ':status': 200, 'apns-id': apnsId }, { endStream: true });
      return;
    }
    const a = answer as { status: number; reason: string; retryAfter?: number | string; timestamp?: number };
    record.reason = a.reason;
    const headers: http2.OutgoingHttpHeaders = { ':status': a.status, 'apns-id': apnsId, 'content-type': 'application/json' };
    if (a.retryAfter !== undefined) headers['retry-after'] = String(a.retryAfter);
    const body: Record<string, unknown> = { reason: a.reason };
    if (a.status === 410) body.timestamp = a.timestamp ?? Date.now();
    stream.respond(headers);
    stream.end(JSON.stringify(body));
  }
}
