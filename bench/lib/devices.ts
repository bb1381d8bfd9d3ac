// RhoConnect users with one registered iPhone each, written the way RhoConnect's login and client
// registration leave them, so that rhopush's PingJob finds a device to push to.
import type { Redis } from 'ioredis';

export const BENCH_TOPIC = 'com.example.rhopush.bench';

/** The login of bench user `i`. */
export function benchUser(i: number): string {
  return `user${i}`;
}

/** The APNs device token of bench user `i`'s iPhone: 64 hex digits that encode `i`. */
export function benchToken(i: number): string {
  return i.toString(16).padStart(64, '0');
}

/** The bench user a device token belongs to (inverse of `benchToken`). */
export function userOfToken(token: string): number {
  return Number.parseInt(token, 16);
}

/** Registers users `from` … `from + count - 1`, each with one APPLE client. */
export async function registerIphones(redis: Redis, from: number, count: number, batch = 1000): Promise<void> {
  for (let start = from; start < from + count; start += batch) {
    const p = redis.pipeline();
    for (let i = start; i < Math.min(from + count, start + batch); i++) {
      const login = benchUser(i);
      const client = `client${i}`;
      p.mset(
        `user:${login}:login`, login,
        `user:${login}:rho__id`, login,
        `client:${client}:user_id`, login,
        `client:${client}:app_id`, 'application',
        `client:${client}:rho__id`, client,
        `client:${client}:device_type`, 'APPLE',
        `client:${client}:device_pin`, benchToken(i),
        `client:${client}:device_app_id`, BENCH_TOPIC,
      );
      p.sadd(`user:${login}:clients`, client);
    }
    await p.exec();
  }
}
