import type { Redis } from 'ioredis';

/**
 * Keyspace notifications rhopush needs: K (keyspace channel) and $ (string commands: INCRBY/SET on
 * md_size, cd_size and rhopush's canary). `A` already includes `$`.
 */
export const REQUIRED_NOTIFY_FLAGS = ['K', '$'] as const;

export class NotifyConfigError extends Error {
  constructor(
    readonly node: string,
    readonly current: string,
    readonly wanted: string,
    cause: string,
  ) {
    super(
      `Redis ${node} does not send the keyspace notifications rhopush needs and refuses CONFIG SET (${cause}). ` +
        `Set notify-keyspace-events to "${wanted}" (currently "${current}") in that server's configuration ` +
        `(redis.conf: notify-keyspace-events ${wanted}; on managed Redis, the notify-keyspace-events parameter), then start rhopush again.`,
    );
    this.name = 'NotifyConfigError';
  }
}

/** The flags to set: the current ones plus what is missing. Never removes a flag. */
export function missingNotifyFlags(current: string): string[] {
  const has = (f: string) => current.includes(f) || (f === '$' && current.includes('A'));
  return REQUIRED_NOTIFY_FLAGS.filter((f) => !has(f));
}

export interface NotifyCheck {
  current: string;
  changed: boolean;
  value: string;
}

/** Adds the missing flags with CONFIG SET; throws NotifyConfigError where CONFIG is refused. */
export async function ensureKeyspaceNotifications(redis: Redis, node: string): Promise<NotifyCheck> {
  let current: string;
  try {
    const reply = (await redis.call('CONFIG', 'GET', 'notify-keyspace-events')) as string[];
    current = reply[1] ?? '';
  } catch (err) {
    throw new NotifyConfigError(node, 'unknown', `K$ plus the flags already set`, (err as Error).message);
  }
  const missing = missingNotifyFlags(current);
  if (missing.length === 0) return { current, changed: false, value: current };
  const value = current + missing.join('');
  try {
    await redis.call('CONFIG', 'SET', 'notify-keyspace-events', value);
  } catch (err) {
    throw new NotifyConfigError(node, current, value, (err as Error).message);
  }
  return { current, changed: true, value };
}
