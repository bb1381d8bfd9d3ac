// The dead-token feedback stream: every token a platform reports dead is appended to the Redis
// stream `rhopush:feedback`, so a backend can prune its own records with a consumer group, durably,
// even when it was down while the pings went out. The stream is capped at `:feedback_max_len:`.
import type { ChainableCommander, Redis } from 'ioredis';
import { RHOPUSH_PREFIX } from '../store/keys.js';

export const FEEDBACK_STREAM = `${RHOPUSH_PREFIX}feedback`;

/** One dead token, as stored in the stream (every field a string). */
export interface FeedbackEntry {
  token: string;
  platform: string;
  /** The platform's reason: Unregistered, BadDeviceToken, registration-token-not-registered. */
  reason: string;
  user: string;
  /** RhoConnect client id of the device. */
  client: string;
  /** ISO 8601 time rhopush learned it. */
  at: string;
}

const FIELDS: readonly (keyof FeedbackEntry)[] = ['token', 'platform', 'reason', 'user', 'client', 'at'];

/** Queues the XADD on a pipeline or MULTI, trimming the stream to exactly `maxLen` entries. */
export function appendFeedback(commands: ChainableCommander, entry: FeedbackEntry, maxLen: number): ChainableCommander {
  const pairs = FIELDS.flatMap((f) => [f, entry[f]]);
  return commands.xadd(FEEDBACK_STREAM, 'MAXLEN', '=', String(maxLen), '*', ...pairs);
}

/** Reads feedback entries after `afterId` (exclusive), oldest first: for backends and tests. */
export async function readFeedback(redis: Redis, afterId = '-', count = 1000): Promise<Array<{ id: string } & FeedbackEntry>> {
  const start = afterId === '-' ? '-' : `(${afterId}`;
  const rows = await redis.xrange(FEEDBACK_STREAM, start, '+', 'COUNT', count);
  return rows.map(([id, flat]) => {
    const entry: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) entry[flat[i]!] = flat[i + 1]!;
    return {
      id,
      token: entry.token ?? '',
      platform: entry.platform ?? '',
      reason: entry.reason ?? '',
      user: entry.user ?? '',
      client: entry.client ?? '',
      at: entry.at ?? '',
    };
  });
}
