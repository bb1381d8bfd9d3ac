// Capture checks itself: a subscriber can look connected while receiving nothing. Every interval
// rhopush writes its canary key on each node it captures and expects the notification back within
// a bound; when it does not come, the subscriber is reconnected (which resubscribes and, through
// the node's `node-ready`, catches up on what the silence hid).
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { LinkDownError } from '../intake/capture.js';

export interface CanaryTarget {
  /** Nodes currently captured. */
  nodes(): string[];
  /** Rejects with LinkDownError when the link was down or dropped: that is no canary failure. */
  probe(node: string, timeoutMs: number): Promise<number>;
  reconnectNode(node: string): void;
}

export interface CanaryMonitorOptions {
  intervalMs: number;
  timeoutMs: number;
  logger: Logger;
}

/** Emits `failure` (node, reason) for every canary that did not come back. */
export class CanaryMonitor extends EventEmitter {
  private timer?: NodeJS.Timeout;
  private readonly inProbe = new Set<string>();
  private stopped = false;
  probes = 0;
  failures = 0;
  lastRoundTripMs: Record<string, number> = {};

  constructor(
    private readonly target: CanaryTarget,
    private readonly options: CanaryMonitorOptions,
  ) {
    super();
  }

  start(): void {
    if (this.options.intervalMs <= 0) return; // 0 turns the check off
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.round().catch((err: Error) => this.options.logger.error({ err: err.message }, 'canary round failed'));
      this.schedule();
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Probes every captured node that is not still being probed. */
  round(): Promise<void> {
    return Promise.all(this.target.nodes().map((node) => this.check(node))).then(() => undefined);
  }

  private async check(node: string): Promise<void> {
    if (this.inProbe.has(node)) return;
    this.inProbe.add(node);
    this.probes += 1;
    try {
      this.lastRoundTripMs[node] = await this.target.probe(node, this.options.timeoutMs);
    } catch (err) {
      if (this.stopped || !this.target.nodes().includes(node)) return;
      // A link that is down or reconnecting is no silent link: its reconnection resubscribes and
      // catches up by itself, and forcing another one would only restart that.
      if (err instanceof LinkDownError) {
        this.options.logger.debug({ node, reason: err.reason }, 'canary skipped: the link is not up');
        return;
      }
      this.failures += 1;
      const reason = (err as Error).message;
      this.options.logger.warn({ node, reason }, 'capture canary failed: reconnecting the subscriber and catching up');
      this.emit('failure', node, reason);
      this.target.reconnectNode(node);
    } finally {
      this.inProbe.delete(node);
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
