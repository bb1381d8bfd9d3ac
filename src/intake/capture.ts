import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { keys, keyspacePatterns } from '../store/keys.js';
import type { ChangeClassifier, KeyspaceDecision } from '../rules/classify.js';
import { KeyspaceSubscriber } from './keyspace-subscriber.js';
import { ensureKeyspaceNotifications, NotifyConfigError, unprovenNotifications } from './notify-config.js';

/** One Redis node rhopush listens to: an instance of `:redis:` or a cluster master. */
export interface CaptureNode {
  label: string;
  options: RedisOptions;
  db: number;
  /** Key that lands on this node (cluster: a hash tag owned by the node); default: the canary key. */
  canaryKey?: string;
}

/** A change that deserves a ping, as captured. */
export interface Change {
  user: string;
  source: string;
  node: string;
  at: number;
  /** Found by catch-up after a gap rather than captured live. */
  catchUp?: boolean;
}

export interface CaptureHandlers {
  onChange: (change: Change) => void;
  /** Every decision, including the ones that do not ping (metrics, replay, demo). */
  onDecision?: (decision: KeyspaceDecision, event: string, node: string, key: string) => void;
}

interface NodeLink {
  node: CaptureNode;
  subscriber: KeyspaceSubscriber;
  command: Redis;
  canaryKey: string;
  /** Barriers waiting for their canary to come back, oldest first. */
  waiters: Array<() => void>;
}

/**
 * Keyspace capture on every node: subscribes with the patterns rhopush needs, classifies each event
 * and hands changes that deserve a ping to `onChange`. Emits `node-ready` after every
 * (re)subscription (catch-up hooks in there) and `node-down` when a link drops.
 */
export class Capture extends EventEmitter {
  readonly id: string;
  private readonly links = new Map<string, NodeLink>();
  private stopped = false;
  private pastReconnects = 0;

  constructor(
    nodes: CaptureNode[],
    private readonly classifier: ChangeClassifier,
    private readonly handlers: CaptureHandlers,
    private readonly logger: Logger,
    id: string = randomUUID(),
  ) {
    super();
    this.id = id;
    for (const node of nodes) this.addNode(node);
  }

  get nodes(): CaptureNode[] {
    return [...this.links.values()].map((l) => l.node);
  }

  /** Health: every node subscribed. */
  status(): Array<{ node: string; subscribed: boolean }> {
    return [...this.links.values()].map((l) => ({ node: l.node.label, subscribed: l.subscriber.isSubscribed }));
  }

  private addNode(node: CaptureNode): NodeLink {
    const onEvent = (key: string, event: string, label: string) => this.onKeyspaceEvent(key, event, label);
    const ensureNotifications = async (redis: Redis) => {
      const check = await ensureKeyspaceNotifications(redis, node.label);
      if (check.changed) this.logger.info({ node: node.label, from: check.current, to: check.value }, 'enabled keyspace notifications');
    };
    const subscriber = new KeyspaceSubscriber(node.label, node.options, node.db, keyspacePatterns(node.db), onEvent, ensureNotifications);
    // No offline queue: a canary written while the link is down would land after the resubscription
    // and make a healthy link look silent.
    const command = new Redis({ ...node.options, lazyConnect: true, enableOfflineQueue: false, connectionName: 'rhopush:capture-control' });
    command.on('error', (err: Error) => this.logger.debug({ node: node.label, err: err.message }, 'capture control connection error'));
    const link: NodeLink = { node, subscriber, command, canaryKey: node.canaryKey ?? keys.canary(this.id), waiters: [] };
    let downSince: number | undefined;
    subscriber.on('ready', () => {
      if (downSince === undefined) {
        this.logger.info({ node: node.label, reconnects: subscriber.reconnects }, 'keyspace capture subscribed');
      } else {
        const downMs = Date.now() - downSince;
        this.logger.info(
          { node: node.label, reconnects: subscriber.reconnects, downMs },
          `keyspace capture subscribed again after ${(downMs / 1000).toFixed(1)} s; catching up on what the gap hid`,
        );
      }
      downSince = undefined;
      this.emit('node-ready', node.label, subscriber.reconnects);
    });
    subscriber.on('down', () => {
      downSince = Date.now();
      this.logger.warn(
        { node: node.label },
        'keyspace capture link down: waiting for Redis; changes made until it is back are caught up afterwards',
      );
      this.emit('node-down', node.label);
    });
    subscriber.on('error', (err: Error) => {
      // A server that no longer accepts the notification setting needs an operator; the rest retries.
      if (err instanceof NotifyConfigError) this.logger.error({ node: node.label, err: err.message }, 'cannot resubscribe');
      else this.logger.debug({ node: node.label, err: err.message }, 'keyspace subscriber error');
    });
    this.links.set(node.label, link);
    return link;
  }

  /** Checks notify-keyspace-events on every node (adding what is missing), then subscribes. */
  async start(): Promise<void> {
    await Promise.all([...this.links.values()].map((link) => this.startLink(link)));
  }

  private async startLink(link: NodeLink): Promise<void> {
    await link.command.connect();
    // Checked here first so that a server refusing CONFIG fails the start with a clear message;
    // the subscriber checks again before every (re)subscription.
    const check = await ensureKeyspaceNotifications(link.command, link.node.label);
    if (check.changed) this.logger.info({ node: link.node.label, from: check.current, to: check.value }, 'enabled keyspace notifications');
    await link.subscriber.start();
    if (check.unreadable) {
      // Managed Redis refuses CONFIG; its notifications may still be set (parameter group). A canary
      // write proves they reach us, or the start fails naming the setting to add.
      try {
        await this.probe(link, 3000);
        this.logger.info({ node: link.node.label }, 'CONFIG is refused; a test write proved keyspace notifications arrive');
      } catch {
        await link.subscriber.stop();
        throw unprovenNotifications(link.node.label, check.unreadable.refusal);
      }
    }
  }

  /** Adds a node while running (leases, cluster topology). On failure the node is not kept. */
  async addRunningNode(node: CaptureNode): Promise<void> {
    if (this.stopped) throw new Error('capture is stopped');
    if (this.links.has(node.label)) return;
    const link = this.addNode(node);
    try {
      await this.startLink(link);
    } catch (err) {
      if (this.links.get(node.label) === link) this.links.delete(node.label);
      await this.closeLink(link);
      throw err;
    }
  }

  /** Subscriber reconnections so far, over every node (metrics). */
  get reconnects(): number {
    return this.pastReconnects + [...this.links.values()].reduce((sum, l) => sum + l.subscriber.reconnects, 0);
  }

  async removeNode(label: string): Promise<void> {
    const link = this.links.get(label);
    if (!link) return;
    this.links.delete(label);
    this.pastReconnects += link.subscriber.reconnects;
    await this.closeLink(link);
  }

  /** A node's subscriber (fault tests reach its connection). */
  subscriber(label: string): KeyspaceSubscriber | undefined {
    return this.links.get(label)?.subscriber;
  }

  /** Forces a node's subscriber to reconnect (canary failure). */
  reconnectNode(label: string): void {
    this.links.get(label)?.subscriber.reconnect();
  }

  private onKeyspaceEvent(key: string, event: string, node: string): void {
    const decision = this.classifier.classify(key, event, node);
    if (decision.rule === 'canary') {
      if (decision.canary && this.ownsCanary(key)) this.links.get(node)?.waiters.shift()?.();
      return;
    }
    this.handlers.onDecision?.(decision, event, node, key);
    if (decision.ping) this.handlers.onChange({ user: decision.user, source: decision.source, node, at: Date.now() });
  }

  private ownsCanary(key: string): boolean {
    for (const link of this.links.values()) if (link.canaryKey === key) return true;
    return false;
  }

  /**
   * Resolves once every event written to every node before this call has been received: writes
   * rhopush's canary key on each node and waits for its notification, which comes after them on
   * the same ordered channel. Rejects with the nodes that did not answer within `timeoutMs`.
   */
  async barrier(timeoutMs = 5000): Promise<void> {
    const failures: string[] = [];
    await Promise.all(
      [...this.links.values()].map(async (link) => {
        try {
          await this.probe(link, timeoutMs);
        } catch (err) {
          failures.push(`${link.node.label}: ${(err as Error).message}`);
        }
      }),
    );
    if (failures.length > 0) throw new Error(`capture barrier failed on ${failures.join('; ')}`);
  }

  /**
   * One canary round trip on one node. Rejects with LinkDownError, without writing anything, while
   * the node's link is down or reconnecting (nothing would come back, and the reconnection itself
   * resubscribes and catches up), and when the link dropped during the round trip; rejects with a
   * plain Error when the link looked up the whole time but the canary did not come back.
   */
  async probe(link: NodeLink | string, timeoutMs: number): Promise<number> {
    const l = typeof link === 'string' ? this.links.get(link) : link;
    if (!l) throw new Error(`unknown node ${String(link)}`);
    const down = linkDown(l);
    if (down) throw new LinkDownError(l.node.label, down);
    const subscription = l.subscriber.reconnects;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    let waiter!: () => void;
    const arrived = new Promise<void>((resolve) => (waiter = resolve));
    // One deadline for the whole round trip, the write included; Promise.race observes both sides,
    // so whichever settles last cannot reject unobserved.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`canary not seen within ${timeoutMs} ms`)), timeoutMs);
    });
    l.waiters.push(waiter);
    try {
      await Promise.race([l.command.set(l.canaryKey, String(Date.now()), 'PX', 60_000).then(() => arrived), deadline]);
    } catch (err) {
      const dropped = linkDown(l) ?? (l.subscriber.reconnects !== subscription ? 'the subscription dropped meanwhile' : undefined);
      if (dropped) throw new LinkDownError(l.node.label, `${dropped} (${(err as Error).message})`);
      throw err;
    } finally {
      clearTimeout(timer);
      const i = l.waiters.indexOf(waiter);
      if (i >= 0) l.waiters.splice(i, 1);
    }
    return performance.now() - started;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.links.values()].map((link) => this.closeLink(link)));
  }

  private async closeLink(link: NodeLink): Promise<void> {
    // Barriers waiting on this node cannot be answered any more.
    link.waiters.length = 0;
    await link.subscriber.stop();
    // QUIT on a link that is down would wait in the offline queue for a node that may never return.
    if (link.command.status !== 'ready') {
      link.command.disconnect();
      return;
    }
    try {
      await link.command.quit();
    } catch {
      link.command.disconnect();
    }
  }
}

/** A canary that could not tell anything: the node's link was down, reconnecting, or dropped meanwhile. */
export class LinkDownError extends Error {
  override name = 'LinkDownError';
  constructor(
    readonly node: string,
    readonly reason: string,
  ) {
    super(`${node}: ${reason}`);
  }
}

/** Why a node's link cannot carry a canary now, or undefined when both connections are up. */
function linkDown(l: NodeLink): string | undefined {
  if (!l.subscriber.isSubscribed) return 'the keyspace subscription is down (waiting for Redis)';
  if (l.command.status !== 'ready') return `the control connection is ${l.command.status} (waiting for Redis)`;
  return undefined;
}
