// Device tokens a platform reported dead, in rhopush's own keys (`rhopush:dead:<platform>:<token>`,
// a hash with reason, time, user and client, expiring after `:dead_token_ttl_days:`). RhoConnect's
// client records are never touched: a device that registers a new device_pin has a new token, which
// is not dead, so it is pinged again at once.
import type { Redis } from 'ioredis';
import { isCluster, type StoreClient } from '../store/store-connection.js';
import { RHOPUSH_PREFIX } from '../store/keys.js';
import type { RhopushSettings } from '../config/settings.js';
import { appendFeedback, type FeedbackEntry } from './feedback.js';

export const DEAD_TOKEN_PREFIX = `${RHOPUSH_PREFIX}dead:`;

export type DeadToken = FeedbackEntry;

export interface DeadTokenLimits {
  ttlDays: number;
  feedbackMaxLen: number;
}

export function deadTokenKey(platform: string, token: string): string {
  return `${DEAD_TOKEN_PREFIX}${platform}:${token}`;
}

/** Tokens one lookup reads at once. */
const DEAD_TOKENS_PER_CALL = 1000;

/** Each key's reason, at, user and client (nil when the token is not dead). */
const DEAD_TOKENS_SCRIPT = `local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HMGET', key, 'reason', 'at', 'user', 'client') end
return out`;

interface DeadTokenCommands {
  rhopushDeadTokens(numKeys: number, ...keys: string[]): Promise<unknown>;
}

export class DeadTokenStore {
  constructor(
    private readonly redis: StoreClient,
    private readonly limits: () => DeadTokenLimits,
  ) {
    if (!isCluster(redis)) redis.defineCommand('rhopushDeadTokens', { lua: DEAD_TOKENS_SCRIPT });
  }

  /** The store with `:dead_token_ttl_days:` and `:feedback_max_len:` as the current settings say. */
  static forSettings(redis: StoreClient, rhopush: () => RhopushSettings): DeadTokenStore {
    return new DeadTokenStore(redis, () => ({ ttlDays: rhopush().deadTokenTtlDays, feedbackMaxLen: rhopush().feedbackMaxLen }));
  }

  /** The record when this token was reported dead (and has not expired), else undefined. */
  async find(platform: string, token: string): Promise<DeadToken | undefined> {
    const [reason, at, user, client] = await this.redis.hmget(deadTokenKey(platform, token), 'reason', 'at', 'user', 'client');
    if (reason === null || reason === undefined) return undefined;
    return { token, platform, reason, at: at ?? '', user: user ?? '', client: client ?? '' };
  }

  /**
   * For each token, its record when it was reported dead, else undefined: one command for the lot
   * (per DEAD_TOKENS_PER_CALL), or one per token on a cluster, whose keys span slots.
   */
  async findMany(tokens: ReadonlyArray<{ platform: string; token: string }>): Promise<Array<DeadToken | undefined>> {
    const redis = this.redis;
    if (isCluster(redis)) return Promise.all(tokens.map((t) => this.find(t.platform, t.token)));
    const out: Array<DeadToken | undefined> = [];
    for (let i = 0; i < tokens.length; i += DEAD_TOKENS_PER_CALL) {
      const chunk = tokens.slice(i, i + DEAD_TOKENS_PER_CALL);
      const replies = (await (redis as Redis & DeadTokenCommands).rhopushDeadTokens(
        chunk.length,
        ...chunk.map((t) => deadTokenKey(t.platform, t.token)),
      )) as Array<Array<string | null>>;
      chunk.forEach(({ platform, token }, j) => {
        const [reason, at, user, client] = replies[j] ?? [];
        out.push(
          reason === null || reason === undefined
            ? undefined
            : { token, platform, reason, at: at ?? '', user: user ?? '', client: client ?? '' },
        );
      });
    }
    return out;
  }

  /** Records a dead token and appends it to the feedback stream, in one transaction. */
  async record(entry: DeadToken): Promise<void> {
    const { ttlDays, feedbackMaxLen } = this.limits();
    const key = deadTokenKey(entry.platform, entry.token);
    const tx = this.redis
      .multi()
      .hset(key, { platform: entry.platform, reason: entry.reason, at: entry.at, user: entry.user, client: entry.client })
      .expire(key, ttlDays * 86_400);
    // On a cluster the record and the stream live in different slots: two transactions there.
    const feedback = isCluster(this.redis) ? this.redis.multi() : tx;
    appendFeedback(feedback, entry, feedbackMaxLen);
    for (const t of feedback === tx ? [tx] : [tx, feedback]) {
      const replies = await t.exec();
      const failed = replies?.find(([err]) => err);
      if (!replies || failed) throw failed?.[0] ?? new Error('dead-token transaction was discarded');
    }
  }

  /** Forgets a token (an operator who knows the device is back). */
  async forget(platform: string, token: string): Promise<boolean> {
    return (await this.redis.del(deadTokenKey(platform, token))) === 1;
  }
}
