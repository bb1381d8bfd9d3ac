import type { Redis } from 'ioredis';
import { RhopushError } from '../errors.js';

/**
 * Keyspace notifications rhopush needs: K (keyspace channel), $ (string commands: INCRBY/SET on
 * md_size, cd_size and rhopush's canary) and g (generic commands: the DELs that show which clients'
 * entries a CUD queue run took). `A` includes both `$` and `g`.
 */
export const REQUIRED_NOTIFY_FLAGS = ['K', '$', 'g'] as const;

export class NotifyConfigError extends RhopushError {
  constructor(
    readonly node: string,
    readonly current: string,
    readonly wanted: string,
    cause: string,
  ) {
    super('NOTIFY_FLAGS', { node, current, wanted, reason: cause });
    this.name = 'NotifyConfigError';
  }
}

/** The flags to set: the current ones plus what is missing. Never removes a flag. */
export function missingNotifyFlags(current: string): string[] {
  const has = (f: string) => current.includes(f) || (f !== 'K' && current.includes('A'));
  return REQUIRED_NOTIFY_FLAGS.filter((f) => !has(f));
}

export interface NotifyCheck {
  current: string;
  changed: boolean;
  value: string;
  /**
   * CONFIG GET itself was refused (managed Redis): the flags cannot be read, so the caller proves
   * them with a canary write instead. `refusal` is the server's answer.
   */
  unreadable?: { refusal: string };
}

/**
 * Adds the missing flags with CONFIG SET. Throws NotifyConfigError when flags are known to be
 * missing and CONFIG SET is refused; reports `unreadable` when CONFIG GET is refused.
 */
export async function ensureKeyspaceNotifications(redis: Redis, node: string): Promise<NotifyCheck> {
  let current: string;
  try {
    const reply = (await redis.call('CONFIG', 'GET', 'notify-keyspace-events')) as string[];
    current = reply[1] ?? '';
  } catch (err) {
    if (!isRefusal(err)) throw err;
    return { current: 'unknown', changed: false, value: 'unknown', unreadable: { refusal: (err as Error).message } };
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

/** A server's "no" (renamed or forbidden command), as opposed to a lost connection. */
function isRefusal(err: unknown): boolean {
  return /ERR|NOPERM|unknown command|disabled|not allowed/i.test((err as Error)?.message ?? '');
}

/** The error for a node whose flags cannot be read and whose canary never came back. */
export function unprovenNotifications(node: string, refusal: string): NotifyConfigError {
  return new NotifyConfigError(
    node,
    'unknown',
    'K$g (plus the flags already set)',
    `${refusal}; and a test write sent no keyspace notification`,
  );
}
