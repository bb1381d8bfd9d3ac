// A real redis-server per suite: started before its tests, stopped after them.
import { afterAll, beforeAll } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServerProcess } from '../../src/kit/index.js';

/** Starts a redis-server before the suite's tests and stops it after them. */
export function useRedisServer(args: string[] = []): { server: () => RedisServerProcess; client: () => Redis } {
  let server: RedisServerProcess | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    server = await startRedisServer({ args });
    client = new Redis(server.port, '127.0.0.1');
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });
  return {
    server: () => server!,
    client: () => client!,
  };
}
