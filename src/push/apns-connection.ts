// One HTTP/2 connection to APNs through @parse/node-apn's client, watched so it heals itself.
//
// node-apn's client is built through its dependency-injection factory (the seam its own index.js
// and tests use) with an http2 module that hands rhopush every session it opens. That lets rhopush:
//  - read each answer's status, reason and Retry-After (node-apn drops Retry-After),
//  - learn the server's SETTINGS_MAX_CONCURRENT_STREAMS and never exceed it,
//  - fail a send at once when its session dies (GOAWAY, reset), instead of waiting,
//  - PING idle sessions and replace one that does not answer (a silently dropped connection),
//  - retire a session whose request missed its deadline, so the retry runs on a fresh one.
import { createRequire } from 'node:module';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';
import { parseRetryAfter } from './retry.js';

const require = createRequire(import.meta.url);

/** Streams opened on a session before its SETTINGS arrive (the floor RFC 9113 recommends servers allow). */
const STREAMS_BEFORE_SETTINGS = 100;
/** A request the node-apn client has not settled this long after its own timeout is failed by rhopush. */
const DEADLINE_GRACE_MS = 1000;

/** Options node-apn's client takes (the subset rhopush sets). */
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
  heartBeat: number;
  connectionRetryLimit: number;
}

interface NodeApnClient {
  write(notification: { headers: OutgoingHttpHeaders; body: string }, device: string, type: 'device', method: 'post'): Promise<unknown>;
  shutdown(callback?: () => void): Promise<void>;
}

type NodeApnClientClass = new (options: NodeApnClientOptions) => NodeApnClient;

interface Http2Module {
  constants: typeof http2.constants;
  connect(authority: string, options: http2.SecureClientSessionOptions): ClientHttp2Session;
}

/** node-apn reports through `debug`; rhopush reports outcomes itself, so its chatter is off. */
const quiet = Object.assign((..._args: unknown[]) => undefined, { enabled: false });

let credentialsAndConfig: { config: unknown } | undefined;
function nodeApnConfig(): unknown {
  if (!credentialsAndConfig) {
    const credentials = require('@parse/node-apn/lib/credentials')({ logger: quiet }) as {
      certificate: unknown;
      token: unknown;
      ca: unknown;
    };
    const config = require('@parse/node-apn/lib/config')({
      logger: quiet,
      prepareCertificate: credentials.certificate,
      prepareToken: credentials.token,
      prepareCA: credentials.ca,
    }) as unknown;
    credentialsAndConfig = { config };
  }
  return credentialsAndConfig.config;
}

function nodeApnClientClass(http2Module: Http2Module): NodeApnClientClass {
  return require('@parse/node-apn/lib/client')({ logger: quiet, errorLogger: quiet, config: nodeApnConfig(), http2: http2Module }) as NodeApnClientClass;
}

/** What one request came to: an HTTP answer, or none (connection failed, reset or timed out). */
export type ApnsReply =
  | { status: number; reason?: string; retryAfterMs?: number; timestamp?: number }
  | { failure: string };

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

interface Tracked {
  session?: ClientHttp2Session;
  stream?: ClientHttp2Stream;
  status?: number;
  retryAfter?: string;
  body: string;
  settle?: (reply: ApnsReply) => void;
}

export class ApnsConnection {
  /** Requests handed to this connection and not yet settled. */
  inFlight = 0;
  /** HTTP/2 sessions opened so far (1 + reconnects). */
  sessionsOpened = 0;
  private session?: ClientHttp2Session;
  private remoteMaxStreams?: number;
  private readonly client: NodeApnClient;
  private readonly tracked = new Map<string, Tracked>();
  private closed = false;

  constructor(private readonly options: ApnsConnectionOptions) {
    const facade: Http2Module = {
      constants: http2.constants,
      connect: (authority, sessionOptions) => this.adopt(http2.connect(authority, sessionOptions)),
    };
    const Client = nodeApnClientClass(facade);
    this.client = new Client(options.client);
  }

  /** Requests this connection may have in flight now. */
  get capacity(): number {
    if (this.closed) return 0;
    const remote = this.remoteMaxStreams ?? STREAMS_BEFORE_SETTINGS;
    return Math.max(1, Math.min(this.options.maxConcurrentStreams, remote));
  }

  /** Sends one notification. Never rejects: every outcome is an ApnsReply, within the deadline. */
  async write(token: string, headers: OutgoingHttpHeaders, body: string): Promise<ApnsReply> {
    const id = String(headers['apns-id']);
    const track: Tracked = { body: '' };
    this.tracked.set(id, track);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<ApnsReply>((resolve) => {
        let settled = false;
        const settle = (reply: ApnsReply) => {
          if (settled) return;
          settled = true;
          resolve(reply);
        };
        track.settle = settle;
        timer = setTimeout(() => {
          track.stream?.close(http2.constants.NGHTTP2_CANCEL);
          this.retire(track.session, 'a request missed its deadline');
          settle({ failure: `no answer within ${this.options.requestTimeoutMs} ms` });
        }, this.options.requestTimeoutMs + DEADLINE_GRACE_MS);
        this.client.write({ headers, body }, token, 'device', 'post').then(
          () => settle({ status: 200 }),
          (rejection: unknown) => settle(this.fromRejection(rejection, track)),
        );
      });
    } finally {
      clearTimeout(timer);
      this.tracked.delete(id);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    // node-apn's shutdown stops its timers at once; its own wait for the session can hang when the
    // session was already destroyed (Node never calls back close() then), so rhopush waits itself.
    void this.client.shutdown().catch(() => undefined);
    const session = this.session;
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

  private fromRejection(rejection: unknown, track: Tracked): ApnsReply {
    const r = (rejection ?? {}) as { status?: unknown; response?: { reason?: string; timestamp?: number }; error?: { message?: string } };
    const status = track.status ?? (typeof r.status === 'number' ? r.status : undefined);
    if (status !== undefined && status !== 200) {
      let reason = r.response?.reason;
      let timestamp = r.response?.timestamp;
      if (!reason && track.body) {
        try {
          const parsed = JSON.parse(track.body) as { reason?: string; timestamp?: number };
          reason = parsed.reason;
          timestamp = parsed.timestamp;
        } catch {
          // An answer without APNs' JSON body: the status alone says enough.
        }
      }
      return { status, reason, timestamp, retryAfterMs: parseRetryAfter(track.retryAfter) };
    }
    const message = r.error?.message ?? (rejection instanceof Error ? rejection.message : String(rejection));
    if (/timeout/i.test(message)) this.retire(track.session, 'a request timed out');
    return { failure: message };
  }

  /** Watches a session node-apn just opened. */
  private adopt(session: ClientHttp2Session): ClientHttp2Session {
    this.session = session;
    this.remoteMaxStreams = undefined;
    this.sessionsOpened += 1;
    let lastActivity = Date.now();
    const { logger, label } = this.options;

    session.on('remoteSettings', (settings) => {
      if (this.session !== session) return;
      this.remoteMaxStreams = settings.maxConcurrentStreams ?? this.options.maxConcurrentStreams;
      this.options.onCapacity();
    });
    let sessionError: string | undefined;
    session.on('error', (err: Error) => (sessionError = err.message));
    session.on('goaway', (code: number) => {
      sessionError ??= `GOAWAY (code ${code})`;
      logger.debug({ connection: label, code }, 'APNs sent GOAWAY');
    });
    session.on('close', () => {
      clearInterval(pinger);
      if (this.session === session) {
        this.session = undefined;
        this.remoteMaxStreams = undefined;
      }
      // Requests still waiting for an answer on this session will never get one: fail them now.
      for (const t of this.tracked.values()) {
        if (t.session === session && t.status === undefined) {
          t.settle?.({ failure: `connection closed before the answer${sessionError ? ` (${sessionError})` : ''}` });
        }
      }
      this.options.onCapacity();
    });

    const request = session.request.bind(session);
    session.request = ((headers?: OutgoingHttpHeaders, options?: http2.ClientSessionRequestOptions) => {
      const stream = request(headers, options);
      const track = this.tracked.get(String(headers?.['apns-id']));
      if (track) {
        track.session = session;
        track.stream = stream;
        stream.once('response', (h: IncomingHttpHeaders) => {
          lastActivity = Date.now();
          track.status = Number(h[':status']);
          const retryAfter = h['retry-after'];
          track.retryAfter = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
          if (track.status !== 200) stream.on('data', (chunk: string | Buffer) => (track.body += String(chunk)));
        });
      }
      return stream;
    }) as typeof session.request;

    // PING a session that has been quiet for a while; one that does not answer is gone.
    const pinger = setInterval(() => {
      if (session.destroyed || session.closed || Date.now() - lastActivity < this.options.pingIntervalMs) return;
      this.checkAlive(session, () => (lastActivity = Date.now()));
    }, this.options.pingIntervalMs);
    pinger.unref();
    return session;
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
  private retire(session: ClientHttp2Session | undefined, why: string): void {
    if (!session || session.destroyed) return;
    if (!session.closed) {
      this.options.logger.warn({ connection: this.options.label }, `APNs session retired: ${why}`);
      session.close();
    }
    // A session that no longer answers PING is dead: fail its other requests now.
    this.checkAlive(session, () => undefined);
  }
}
