// One HTTP/2 connection to APNs, watched so it heals itself.
//
// Requests go straight onto a Node http2 session that rhopush opens: it writes each request's
// headers and reads each answer itself. Going through @parse/node-apn's client cost about twice the
// CPU per push (its promise chains, header copies and answer objects; bench/RESULTS.md, dispatch).
// node-apn still prepares and checks the credentials (certificate and key, passphrase, environment,
// expiry; the provider-token signer), so those keep node-apn's checks and messages. rhopush:
//  - reads each answer's status, reason and Retry-After,
//  - learns the server's SETTINGS_MAX_CONCURRENT_STREAMS and never exceeds it,
//  - fails a send at once when its session dies (GOAWAY, reset), instead of waiting,
//  - PINGs idle sessions and replaces one that does not answer (a silently dropped connection),
//  - retires a session whose request missed its deadline, so the retry runs on a fresh one,
//  - renews the provider token before APNs' hour is up, and at once when APNs says it expired.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';
import { parseRetryAfter } from '../retry.js';

const require = createRequire(import.meta.url);

/** Streams opened on a session before its SETTINGS arrive (the floor RFC 9113 recommends servers allow). */
const STREAMS_BEFORE_SETTINGS = 100;
/** Provider tokens are renewed after this long (APNs refuses them after an hour). */
const TOKEN_RENEW_SECONDS = 3300;

const { HTTP2_HEADER_STATUS, NGHTTP2_CANCEL } = http2.constants;

/** Options node-apn's credential preparation takes (the subset rhopush sets). */
export interface NodeApnClientOptions {
  token?: { key: string; keyId: string; teamId: string };
  cert?: string;
  key?: string;
  passphrase?: string;
  ca?: string[];
  production: boolean;
  address: string;
  port: number;
  requestTimeout: number;
}

/** node-apn's prepared provider token: the current JWT, re-signed on request. */
interface ProviderToken {
  current: string;
  generation: number;
  regenerate(generation: number): void;
  isExpired(validSeconds: number): boolean;
}

/** What node-apn's configuration hands back: TLS material ready for `tls.connect`, or a token. */
interface PreparedCredentials {
  token?: ProviderToken | null;
  cert?: string | Buffer;
  key?: string | Buffer;
  pfx?: string | Buffer;
  passphrase?: string;
  ca?: Array<string | Buffer>;
}

/** node-apn reports through `debug`; rhopush reports outcomes itself, so its chatter is off. */
const quiet = Object.assign((..._args: unknown[]) => undefined, { enabled: false });

let prepare: ((options: NodeApnClientOptions) => PreparedCredentials) | undefined;
function prepareCredentials(options: NodeApnClientOptions): PreparedCredentials {
  if (!prepare) {
    const credentials = require('@parse/node-apn/lib/credentials')({ logger: quiet }) as {
      certificate: unknown;
      token: unknown;
      ca: unknown;
    };
    prepare = require('@parse/node-apn/lib/config')({
      logger: quiet,
      prepareCertificate: credentials.certificate,
      prepareToken: credentials.token,
      prepareCA: credentials.ca,
    }) as (options: NodeApnClientOptions) => PreparedCredentials;
  }
  return prepare(options);
}

/** What one request came to: an HTTP answer, or none (connection failed, reset or timed out). */
export type ApnsReply = { status: number; reason?: string; retryAfterMs?: number; timestamp?: number } | { failure: string };

export interface ApnsConnectionOptions {
  client: NodeApnClientOptions;
  maxConcurrentStreams: number;
  requestTimeoutMs: number;
  pingIntervalMs: number;
  /** Called when this connection may take more requests (a slot freed, SETTINGS arrived). */
  onCapacity: () => void;
  logger: Logger;
  label: string;
}

/** One HTTP/2 session and what rhopush knows about it. */
interface SessionLink {
  session: ClientHttp2Session;
  /** When the session last answered (idle PING). */
  lastActivity: number;
  /** The first error or GOAWAY it reported, for failure messages. */
  error?: string;
}

/** Receives what one request came to, exactly once. */
export type ApnsDone = (reply: ApnsReply) => void;

/** What a push carries besides its device token: the same for every device of a ping (apns.ts). */
export interface ApnsPush {
  pushType: string;
  priority: string;
  topic?: string;
  collapseId?: string;
  body: string;
}

/** Every 200 answer is the same reply: no object per push. */
const OK: ApnsReply = Object.freeze({ status: 200 });

/** The request a stream carries, so one set of listeners serves every stream (no closures per push). */
const REQUEST = Symbol('apns request');
type RequestStream = ClientHttp2Stream & { [REQUEST]?: Pending };

/** A request on the wire, until it settles. */
interface Pending {
  connection: ApnsConnection;
  link: SessionLink;
  stream?: RequestStream;
  status?: number;
  /** performance.now() after which it has missed its deadline. */
  deadline: number;
  /** The provider token's generation it was sent with (renewed once on ExpiredProviderToken). */
  generation: number | undefined;
  retryAfter?: string;
  answer: string;
  streamError?: string;
  done: ApnsDone;
}

function onResponse(this: RequestStream, h: IncomingHttpHeaders): void {
  const p = this[REQUEST]!;
  p.link.lastActivity = Date.now();
  p.status = Number(h[HTTP2_HEADER_STATUS]);
  if (p.status === 200) {
    this.resume();
    return;
  }
  const r = h['retry-after'];
  p.retryAfter = Array.isArray(r) ? r[0] : r;
  this.on('data', onData);
}

function onData(this: RequestStream, chunk: Buffer): void {
  this[REQUEST]!.answer += chunk.toString('utf8');
}

function onError(this: RequestStream, err: Error): void {
  this[REQUEST]!.streamError = err.message;
}

function onClose(this: RequestStream): void {
  const p = this[REQUEST]!;
  p.connection.answered(p, this.rstCode);
}

export class ApnsConnection {
  /** Requests handed to this connection and not yet settled. */
  inFlight = 0;
  /** HTTP/2 sessions opened so far (1 + reconnects). */
  sessionsOpened = 0;
  private link?: SessionLink;
  private remoteMaxStreams?: number;
  private readonly credentials: PreparedCredentials;
  private readonly authority: string;
  private readonly pending = new Set<Pending>();
  /** Checks deadlines while requests are in flight (one timer per connection, not one per request). */
  private sweeper?: NodeJS.Timeout;
  private authorization?: { generation: number; header: string };
  private closed = false;

  constructor(private readonly options: ApnsConnectionOptions) {
    // Throws at once for bad credentials (apns.ts reports them with the setting's name).
    this.credentials = prepareCredentials(options.client);
    this.authority = `https://${options.client.address}:${options.client.port}`;
  }

  /** Requests this connection may have in flight now. */
  get capacity(): number {
    if (this.closed) return 0;
    const remote = this.remoteMaxStreams ?? STREAMS_BEFORE_SETTINGS;
    return Math.max(1, Math.min(this.options.maxConcurrentStreams, remote));
  }

  /**
   * Sends one push; `done` gets its outcome exactly once, within the deadline (possibly before this
   * returns, when the connection is closed). Counts in `inFlight` until then.
   */
  write(token: string, push: ApnsPush, done: ApnsDone): void {
    if (this.closed) return done({ failure: 'APNs connection closed' });
    let link: SessionLink;
    try {
      link = this.usableLink();
    } catch (err) {
      return done({ failure: (err as Error).message });
    }
    const auth = this.providerToken();
    const pending: Pending = {
      connection: this,
      link,
      stream: undefined,
      status: undefined,
      deadline: performance.now() + this.options.requestTimeoutMs,
      generation: auth?.generation,
      retryAfter: undefined,
      answer: '',
      streamError: undefined,
      done,
    };
    this.inFlight += 1;
    this.pending.add(pending);
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(10, Math.min(250, this.options.requestTimeoutMs / 4)));

    let stream: RequestStream;
    try {
      // One object in one shape per request; absent headers are undefined, which http2 leaves out.
      stream = link.session.request({
        // Literal keys: computed ones make V8 build the object the slow way.
        ':method': 'POST',
        ':path': `/3/device/${token}`,
        authorization: auth?.header,
        'apns-push-type': push.pushType,
        'apns-priority': push.priority,
        'apns-topic': push.topic,
        'apns-collapse-id': push.collapseId,
        // Drawn as the request goes out, not when it is queued: a queued push holds no id of its own.
        'apns-id': randomUUID(),
      });
    } catch (err) {
      // The session closed between the check and the request (GOAWAY): the retry gets a fresh one.
      this.retire(link, (err as Error).message);
      this.settle(pending, { failure: (err as Error).message });
      return;
    }
    pending.stream = stream;
    stream[REQUEST] = pending;
    stream.on('response', onResponse);
    stream.on('error', onError);
    stream.on('close', onClose);
    stream.end(push.body);
  }

  /** A request's stream closed: its answer, or why there is none. */
  answered(p: Pending, rstCode: number | undefined): void {
    const status = p.status;
    if (status === 200) this.settle(p, OK);
    else if (status !== undefined) this.settle(p, this.fromAnswer(status, p.answer, p.retryAfter, p.generation));
    else this.settle(p, { failure: this.lostReason(p.link, p.streamError, rstCode) });
  }

  /** Hands a request its outcome once, frees its slot and lets the next request in. */
  private settle(p: Pending, reply: ApnsReply): void {
    if (!this.pending.delete(p)) return;
    this.inFlight -= 1;
    p.stream = undefined;
    p.done(reply);
    this.options.onCapacity();
  }

  /** Fails the requests past their deadline and retires their sessions (the retry gets a fresh one). */
  private sweep(): void {
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const now = performance.now();
    for (const p of this.pending) {
      if (p.deadline > now) continue;
      p.stream?.close(NGHTTP2_CANCEL);
      this.retire(p.link, 'a request missed its deadline');
      this.settle(p, { failure: `no answer within ${this.options.requestTimeoutMs} ms` });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const session = this.link?.session;
    if (!session || session.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        session.destroy();
        resolve();
      }, 2000);
      timer.unref();
      session.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (!session.closed) session.close();
    });
  }

  /** `bearer <jwt>` for token auth, renewed before APNs' hour is up; undefined for certificates. */
  private providerToken(): { generation: number; header: string } | undefined {
    const token = this.credentials.token;
    if (!token) return undefined;
    if (token.isExpired(TOKEN_RENEW_SECONDS)) token.regenerate(token.generation);
    if (this.authorization?.generation !== token.generation) {
      this.authorization = { generation: token.generation, header: `bearer ${token.current}` };
    }
    return this.authorization;
  }

  private fromAnswer(status: number, answer: string, retryAfter: string | undefined, generation: number | undefined): ApnsReply {
    let reason: string | undefined;
    let timestamp: number | undefined;
    if (answer) {
      try {
        const parsed = JSON.parse(answer) as { reason?: string; timestamp?: number };
        reason = parsed.reason;
        timestamp = parsed.timestamp;
      } catch {
        // An answer without APNs' JSON body: the status alone says enough.
      }
    }
    // The retry (apns.ts) signs a fresh token; concurrent requests renew it only once.
    if (status === 403 && reason === 'ExpiredProviderToken' && generation !== undefined) this.credentials.token?.regenerate(generation);
    return { status, reason, timestamp, retryAfterMs: parseRetryAfter(retryAfter) };
  }

  private lostReason(link: SessionLink, streamError: string | undefined, rstCode: number | undefined): string {
    if (link.error) return `connection closed before the answer (${link.error})`;
    if (streamError) return streamError;
    return `stream closed before the answer${rstCode ? ` (HTTP/2 error ${rstCode})` : ''}`;
  }

  /** The open session, or a new one when there is none (or it is closing). */
  private usableLink(): SessionLink {
    const current = this.link;
    if (current && !current.session.closed && !current.session.destroyed) return current;
    const c = this.credentials;
    const session = http2.connect(this.authority, {
      ca: c.ca,
      cert: c.cert,
      key: c.key,
      pfx: c.pfx,
      passphrase: c.passphrase,
      rejectUnauthorized: true,
    });
    return this.adopt(session);
  }

  /** Watches a session just opened. */
  private adopt(session: ClientHttp2Session): SessionLink {
    const link: SessionLink = { session, lastActivity: Date.now() };
    this.link = link;
    this.remoteMaxStreams = undefined;
    this.sessionsOpened += 1;
    const { logger, label } = this.options;

    session.on('remoteSettings', (settings) => {
      if (this.link !== link) return;
      this.remoteMaxStreams = settings.maxConcurrentStreams ?? this.options.maxConcurrentStreams;
      this.options.onCapacity();
    });
    session.on('error', (err: Error) => (link.error ??= err.message));
    session.on('goaway', (code: number) => {
      link.error ??= `GOAWAY (code ${code})`;
      logger.debug({ connection: label, code }, 'APNs sent GOAWAY');
      // New requests go to a fresh session; the streams the server kept finish on this one.
      if (this.link === link) this.link = undefined;
      if (!session.closed && !session.destroyed) session.close();
    });
    session.on('close', () => {
      clearInterval(pinger);
      if (this.link === link) {
        this.link = undefined;
        this.remoteMaxStreams = undefined;
      }
      // Requests still waiting for an answer on this session will never get one: fail them now.
      for (const p of this.pending) {
        if (p.link === link && p.status === undefined) this.settle(p, { failure: this.lostReason(link, undefined, undefined) });
      }
      this.options.onCapacity();
    });

    // PING a session that has been quiet for a while; one that does not answer is gone.
    const pinger = setInterval(() => {
      if (session.destroyed || session.closed || Date.now() - link.lastActivity < this.options.pingIntervalMs) return;
      this.checkAlive(session, () => (link.lastActivity = Date.now()));
    }, this.options.pingIntervalMs);
    pinger.unref();
    return link;
  }

  private checkAlive(session: ClientHttp2Session, onAnswer: () => void): void {
    const timeoutMs = Math.min(this.options.requestTimeoutMs, this.options.pingIntervalMs);
    const timer = setTimeout(() => {
      this.options.logger.warn({ connection: this.options.label }, `APNs did not answer a PING within ${timeoutMs} ms; reconnecting`);
      session.destroy();
    }, timeoutMs);
    timer.unref();
    try {
      const sent = session.ping((err) => {
        clearTimeout(timer);
        if (!err) onAnswer();
      });
      if (!sent) clearTimeout(timer);
    } catch {
      clearTimeout(timer);
      session.destroy();
    }
  }

  /** Stops using a session that left a request unanswered: new requests go to a fresh one. */
  private retire(link: SessionLink, why: string): void {
    const { session } = link;
    if (session.destroyed) return;
    if (this.link === link) this.link = undefined;
    if (!session.closed) {
      this.options.logger.warn({ connection: this.options.label }, `APNs session retired: ${why}`);
      session.close();
    }
    // A session that no longer answers PING is dead: fail its other requests now.
    this.checkAlive(session, () => undefined);
  }
}
