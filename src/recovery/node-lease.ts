// A lease on capturing one Redis node, so that of several rhopush instances exactly one listens to
// each node and pings its changes. The lease is a key on that node (`SET NX PX`), renewed by its
// holder every third of its duration and taken over by another instance once it lapses. The holder
// stops capturing a little before its lease could have lapsed when it cannot renew, so two
// instances never capture the same node at once (beyond clock-rate differences).
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

// KEYS[1]: lease key. ARGV: owner, lease ms. 1 when the caller holds it afterwards.
const ACQUIRE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type LeaseRedis = Redis & {
  rhopushLeaseAcquire(key: string, owner: string, ms: string): Promise<number>;
  rhopushLeaseRelease(key: string, owner: string): Promise<number>;
};

export interface NodeLeaseOptions {
  node: string;
  /** A connection to the node the lease guards. */
  redis: Redis;
  key: string;
  owner: string;
  leaseMs: number;
  logger: Logger;
}

/** Emits `acquired` when this instance starts holding the lease and `lost` when it stops holding it. */
export class NodeLease extends EventEmitter {
  private readonly redis: LeaseRedis;
  private holding = false;
  /** Local time until which the lease is surely still ours (last successful renewal + lease - margin). */
  private validUntil = 0;
  private timer?: NodeJS.Timeout;
  /** Fires when the lease may no longer be ours unless renewed before. */
  private deadline?: NodeJS.Timeout;
  private stopped = false;
  private ticking?: Promise<void>;
  acquisitions = 0;
  losses = 0;
  /** The last attempt found another instance holding the lease. */
  heldElsewhere = false;
  /** Another instance was ever seen holding it (so acquiring it is a takeover). */
  sawOtherHolder = false;

  constructor(private readonly options: NodeLeaseOptions) {
    super();
    const redis = options.redis;
    if (!('rhopushLeaseAcquire' in redis)) {
      redis.defineCommand('rhopushLeaseAcquire', { numberOfKeys: 1, lua: ACQUIRE });
      redis.defineCommand('rhopushLeaseRelease', { numberOfKeys: 1, lua: RELEASE });
    }
    this.redis = redis as LeaseRedis;
  }

  get held(): boolean {
    return this.holding;
  }

  get key(): string {
    return this.options.key;
  }

  /** First attempt now; then renew or retry every third of the lease. */
  async start(): Promise<boolean> {
    await this.tick();
    this.schedule();
    return this.holding;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        void this.tick()
          .catch((err: Error) => this.options.logger.error({ node: this.options.node, err: err.message }, 'lease attempt failed'))
          .finally(() => this.schedule());
      },
      Math.max(20, Math.floor(this.options.leaseMs / 3)),
    );
    this.timer.unref();
  }

  /** One renewal or acquisition attempt. */
  tick(): Promise<void> {
    this.ticking ??= this.attempt().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async attempt(): Promise<void> {
    const sentAt = Date.now();
    let ours: boolean;
    try {
      ours = (await this.redis.rhopushLeaseAcquire(this.options.key, this.options.owner, String(this.options.leaseMs))) === 1;
    } catch (err) {
      // Capture goes on while the lease is surely ours; the deadline timer ends it in time.
      this.options.logger.debug({ node: this.options.node, err: (err as Error).message }, 'lease renewal failed');
      return;
    }
    if (this.stopped) return;
    this.heldElsewhere = !ours;
    if (!ours) this.sawOtherHolder = true;
    if (ours) {
      // A margin for timer lateness and clock-rate differences between hosts.
      this.validUntil = sentAt + this.options.leaseMs - Math.min(1000, Math.floor(this.options.leaseMs / 5));
      // Renewals stuck or failing (node down, partition) must not keep us capturing past the lease.
      clearTimeout(this.deadline);
      this.deadline = setTimeout(
        () => {
          if (this.holding) this.lose('could not renew in time');
        },
        Math.max(0, this.validUntil - Date.now()),
      );
      this.deadline.unref();
      if (!this.holding) {
        this.holding = true;
        this.acquisitions += 1;
        this.options.logger.info({ node: this.options.node, owner: this.options.owner }, 'capture lease acquired');
        this.emit('acquired');
      }
    } else if (this.holding) {
      this.lose('another instance holds it');
    }
  }

  private lose(reason: string): void {
    clearTimeout(this.deadline);
    this.holding = false;
    this.losses += 1;
    this.options.logger.warn({ node: this.options.node, reason }, 'capture lease lost');
    this.emit('lost', reason);
  }

  /** Stops renewing; deletes the lease when it is ours so another instance can take over at once. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    await this.ticking?.catch(() => undefined);
    if (!this.holding) return;
    this.holding = false;
    try {
      await this.redis.rhopushLeaseRelease(this.options.key, this.options.owner);
    } catch {
      // It lapses by itself.
    }
  }
}
