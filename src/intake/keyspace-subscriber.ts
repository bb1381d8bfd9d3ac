import { EventEmitter } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';

export type KeyspaceHandler = (key: string, event: string, node: string) => void;

/**
 * One pub/sub connection to one Redis node, subscribed to rhopush's keyspace patterns in one
 * database. Emits `ready` after every (re)subscription, so the owner can catch up on what the
 * gap hid, and `down` when the link drops.
 */
export class KeyspaceSubscriber extends EventEmitter {
  private readonly redis: Redis;
  private readonly prefixLength: number;
  private subscribed = false;
  private closing = false;
  reconnects = 0;

  constructor(
    readonly node: string,
    options: RedisOptions,
    db: number,
    private readonly patterns: string[],
    private readonly onEvent: KeyspaceHandler,
    /** Runs on the fresh connection before every subscription (a restarted server forgets CONFIG SET). */
    private readonly beforeSubscribe?: (redis: Redis) => Promise<void>,
  ) {
    super();
    this.prefixLength = `__keyspace@${db}__:`.length;
    this.redis = new Redis({
      ...options,
      lazyConnect: true,
      autoResubscribe: false,
      enableOfflineQueue: false,
      connectionName: 'rhopush:capture',
    });
    this.redis.on('pmessage', (_pattern: string, channel: string, event: string) => {
      this.onEvent(channel.slice(this.prefixLength), event, this.node);
    });
    this.redis.on('ready', () => void this.subscribe());
    this.redis.on('close', () => {
      if (this.subscribed && !this.closing) {
        this.subscribed = false;
        this.reconnects += 1;
        this.emit('down', this.node);
      }
    });
    this.redis.on('error', (err: Error) => this.emit('error', err));
  }

  get isSubscribed(): boolean {
    return this.subscribed;
  }

  /** Connects and subscribes; rejects on the first failure (the owner decides when to try again). */
  async start(): Promise<void> {
    let cleanup = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      const onReady = () => {
        cleanup();
        resolve();
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const onEnd = () => onError(new Error(`subscriber for ${this.node} closed before subscribing`));
      cleanup = () => {
        this.off('ready', onReady);
        this.off('error', onError);
        this.redis.off('end', onEnd);
      };
      this.on('ready', onReady);
      this.on('error', onError);
      this.redis.on('end', onEnd);
    });
    ready.catch(() => undefined);
    await this.redis.connect();
    await ready;
  }

  private async subscribe(): Promise<void> {
    try {
      await this.beforeSubscribe?.(this.redis);
      await this.redis.psubscribe(...this.patterns);
      this.subscribed = true;
      this.emit('ready', this.node);
    } catch (err) {
      this.emit('error', err as Error);
      // Let ioredis reconnect and call us again.
      this.redis.disconnect(true);
    }
  }

  /** Forces a fresh connection (used when the canary shows the link is silently dead). */
  reconnect(): void {
    this.redis.disconnect(true);
  }

  async stop(): Promise<void> {
    this.closing = true;
    this.subscribed = false;
    if (this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  /** Test hook: the connection, e.g. to find its id for CLIENT KILL. */
  get connection(): Redis {
    return this.redis;
  }
}
