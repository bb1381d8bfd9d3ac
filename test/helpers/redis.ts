// Real redis-server processes for tests: one per suite, on a free port, stopped afterwards.
import { afterAll, beforeAll } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServerProcess } from '../../src/kit/redis-server-process.js';

export { startRedisServer, type RedisServerProcess };

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

/** Settings text for a test: one user-partitioned source with push_notify on, one app source. */
export function testSettingsYaml(port: number, extra = ''): string {
  return `:sources:
  Product:
    :partition_type: user
    :push_notify: 'true'
  Contact:
    :partition_type: user
    :push_notify: 'true'
  Note:
    :partition_type: user
  Catalog:
    :partition_type: app
    :push_notify: 'true'
:test:
  :redis: 127.0.0.1:${port}
  :api_token: test-admin-token
  :push_notify: 'false'
  :rhopush:
    :delivery: log
${extra}`;
}
