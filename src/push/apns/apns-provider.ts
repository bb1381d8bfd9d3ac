// An APNs provider: the connections for one (credentials, topic, environment), reused across
// pings. A large fan-out never has more requests in flight on a connection than the server allows
// (its SETTINGS, capped by `:max_concurrent_streams:`); requests beyond that wait their turn, and a
// further connection (up to `:connections:`) opens only when the ones before it are full.
import type { Logger } from 'pino';
import { ApnsConnection, type ApnsDone, type ApnsPush, type NodeApnClientOptions } from './apns-connection.js';

export interface ApnsProviderOptions {
  client: NodeApnClientOptions;
  connections: number;
  maxConcurrentStreams: number;
  requestTimeoutMs: number;
  pingIntervalMs: number;
  logger: Logger;
  label: string;
}

/** A push waiting for a free stream. */
interface Waiting {
  token: string;
  push: ApnsPush;
  done: ApnsDone;
}

export class ApnsProvider {
  private readonly connections: ApnsConnection[] = [];
  /** FIFO of requests waiting for a slot; `waitingHead` avoids O(n) shifts on a 100,000-token fan-out. */
  private waiting: Array<Waiting | undefined> = [];
  private waitingHead = 0;
  private closed = false;

  constructor(options: ApnsProviderOptions) {
    for (let i = 0; i < options.connections; i += 1) {
      this.connections.push(
        new ApnsConnection({
          client: options.client,
          maxConcurrentStreams: options.maxConcurrentStreams,
          requestTimeoutMs: options.requestTimeoutMs,
          pingIntervalMs: options.pingIntervalMs,
          onCapacity: () => this.pump(),
          logger: options.logger,
          label: `${options.label}#${i + 1}`,
        }),
      );
    }
  }

  /** Requests in flight and waiting, for metrics and tests. */
  get load(): { inFlight: number; waiting: number; sessionsOpened: number } {
    return {
      inFlight: this.connections.reduce((n, c) => n + c.inFlight, 0),
      waiting: this.waiting.length - this.waitingHead,
      sessionsOpened: this.connections.reduce((n, c) => n + c.sessionsOpened, 0),
    };
  }

  /**
   * Sends one push on the first connection with a free stream, or queues it until one frees up.
   * `done` gets the outcome exactly once (at once when the provider is closed). Callbacks rather
   * than promises: this runs for every device of a fan-out.
   */
  send(token: string, push: ApnsPush, done: ApnsDone): void {
    if (this.closed) return done({ failure: 'APNs provider closed' });
    if (this.waitingHead === this.waiting.length) {
      const free = this.freeConnection();
      if (free) return free.write(token, push, done);
    }
    this.waiting.push({ token, push, done });
  }

  async close(): Promise<void> {
    this.closed = true;
    const waiting = this.waiting.slice(this.waitingHead);
    this.waiting = [];
    this.waitingHead = 0;
    for (const w of waiting) w?.done({ failure: 'APNs provider closed' });
    await Promise.all(this.connections.map((c) => c.close()));
  }

  /** The first connection with a free slot: later connections open only when earlier ones are full. */
  private freeConnection(): ApnsConnection | undefined {
    for (const c of this.connections) if (c.inFlight < c.capacity) return c;
    return undefined;
  }

  private pump(): void {
    while (this.waitingHead < this.waiting.length) {
      const free = this.freeConnection();
      if (!free) break;
      const w = this.waiting[this.waitingHead]!;
      this.waiting[this.waitingHead] = undefined;
      this.waitingHead += 1;
      free.write(w.token, w.push, w.done);
    }
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }
}
