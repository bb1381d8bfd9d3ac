// An APNs provider: the connections for one (credentials, topic, environment), reused across
// pings. A large fan-out never has more requests in flight on a connection than the server allows
// (its SETTINGS, capped by `:max_concurrent_streams:`); requests beyond that wait their turn, and a
// further connection (up to `:connections:`) opens only when the ones before it are full.
import type { OutgoingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';
import { ApnsConnection, type ApnsReply, type NodeApnClientOptions } from './apns-connection.js';

export interface ApnsProviderOptions {
  client: NodeApnClientOptions;
  connections: number;
  maxConcurrentStreams: number;
  requestTimeoutMs: number;
  pingIntervalMs: number;
  logger: Logger;
  label: string;
}

export class ApnsProvider {
  private readonly connections: ApnsConnection[] = [];
  /** FIFO of requests waiting for a slot; `waitingHead` avoids O(n) shifts on a 100,000-token fan-out. */
  private waiting: Array<(connection: ApnsConnection | undefined) => void> = [];
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

  async send(token: string, headers: OutgoingHttpHeaders, body: string): Promise<ApnsReply> {
    if (this.closed) return { failure: 'APNs provider closed' };
    const connection = await this.acquire();
    if (!connection) return { failure: 'APNs provider closed' };
    try {
      return await connection.write(token, headers, body);
    } finally {
      connection.inFlight -= 1;
      this.pump();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const waiting = this.waiting.slice(this.waitingHead);
    this.waiting = [];
    this.waitingHead = 0;
    for (const wake of waiting) wake(undefined);
    await Promise.all(this.connections.map((c) => c.close()));
  }

  private acquire(): Promise<ApnsConnection | undefined> {
    const free = this.waitingHead === this.waiting.length ? this.freeConnection() : undefined;
    if (free) {
      free.inFlight += 1;
      return Promise.resolve(free);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The first connection with a free slot: later connections open only when earlier ones are full. */
  private freeConnection(): ApnsConnection | undefined {
    return this.connections.find((c) => c.inFlight < c.capacity);
  }

  private pump(): void {
    while (this.waitingHead < this.waiting.length) {
      const free = this.freeConnection();
      if (!free) break;
      free.inFlight += 1;
      const wake = this.waiting[this.waitingHead]!;
      this.waiting[this.waitingHead] = undefined as never;
      this.waitingHead += 1;
      wake(free);
    }
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }
}
