// RhoConnect users with one registered iPhone each, written the way RhoConnect's login and client
// registration leave them, so that rhopush's PingJob finds a device to push to. Bench user `i`'s
// device token is the kit's `hexToken(i)` (and `tokenNumber` reads `i` back).
import type { Redis } from 'ioredis';
import { createUserSteps, hexToken, queueSteps, registerClientSteps } from '../../src/kit/index.js';

export const BENCH_TOPIC = 'com.example.rhopush.bench';

/** The login of bench user `i`. */
export function benchUser(i: number): string {
  return `user${i}`;
}

/** Registers users `from` … `from + count - 1`, each with one APPLE client. */
export async function registerIphones(redis: Redis, from: number, count: number, batch = 1000): Promise<void> {
  for (let start = from; start < from + count; start += batch) {
    const p = redis.pipeline();
    for (let i = start; i < Math.min(from + count, start + batch); i++) {
      const login = benchUser(i);
      queueSteps(p, createUserSteps(login));
      queueSteps(
        p,
        registerClientSteps(login, { id: `client${i}`, device_type: 'APPLE', device_pin: hexToken(i), device_app_id: BENCH_TOPIC }),
      );
    }
    await p.exec();
  }
}

/**
 * Registers `count` APPLE clients under one user (created too): `<login>-client<i>` with device
 * token `hexToken(firstToken + i)`. Pipelined in batches: 100k devices in a few seconds.
 */
export async function registerIphonesOfUser(redis: Redis, login: string, count: number, firstToken: number, batch = 2000): Promise<void> {
  await queueSteps(redis.pipeline(), createUserSteps(login)).exec();
  for (let start = 0; start < count; start += batch) {
    const p = redis.pipeline();
    for (let i = start; i < Math.min(count, start + batch); i++) {
      queueSteps(
        p,
        registerClientSteps(login, {
          id: `${login}-client${i}`,
          device_type: 'APPLE',
          device_pin: hexToken(firstToken + i),
          device_app_id: BENCH_TOPIC,
        }),
      );
    }
    await p.exec();
  }
}
