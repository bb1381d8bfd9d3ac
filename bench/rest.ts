// 5. REST API: requests per second of `POST /rc/v1/users/ping` with `async` (token check,
// validation, ping record, Resque enqueue) vs two baselines, each in its own process on this
// machine, driven by autocannon from the benchmark process with the same body and headers:
//  - the floor: a fastify route doing the same validation (schema), token check and enqueue, no more;
//  - a fastify hello-world POST route.
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/kit/redis-server-process.js';
import { figure, type BenchContext, type Figure } from './lib/harness.js';
import { startHelperProcess, type HelperProcess } from './lib/processes.js';

const API_TOKEN = 'bench-api-token-0123456789abcdef';
const CONNECTIONS = 10;
const BODY = JSON.stringify({ user_id: ['user1', 'user2'], sources: ['Source0'], async: true });

interface Load {
  rate: number;
  p99: number;
  failed: number;
}

async function load(port: number, path: string, seconds: number): Promise<Load> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-rhoconnect-api-token': API_TOKEN },
    body: BODY,
    connections: CONNECTIONS,
    duration: seconds,
  });
  return { rate: result.requests.average, p99: result.latency.p99, failed: result.non2xx + result.errors + result.timeouts };
}

export async function benchRest(ctx: BenchContext): Promise<Figure[]> {
  const seconds = ctx.quick ? 1 : 5;
  const redisServer = await startRedisServer();
  const redis = new Redis(redisServer.port, '127.0.0.1');
  const helpers: HelperProcess[] = [];
  const results: Record<'rhopush' | 'floor' | 'hello', Load[]> = { rhopush: [], floor: [], hello: [] };
  try {
    const start = async (args: string[]) => {
      const helper = await startHelperProcess('rest-server-process.ts', args);
      helpers.push(helper);
      return Number(helper.ready.split(' ')[1]);
    };
    const rhopushPort = await start(['rhopush', String(redisServer.port), API_TOKEN]);
    const floorPort = await start(['floor', String(redisServer.port), API_TOKEN]);
    const helloPort = await start(['hello']);
    // Warm-up (JIT, connections), not measured.
    await load(rhopushPort, '/rc/v1/users/ping', 1);
    await load(floorPort, '/rc/v1/users/ping', 1);
    await load(helloPort, '/hello', 1);
    for (let run = 0; run < ctx.runs; run++) {
      await redis.del('resque:queue:ping');
      const r = await load(rhopushPort, '/rc/v1/users/ping', seconds);
      const queued = await redis.llen('resque:queue:ping');
      const f = await load(floorPort, '/rc/v1/users/ping', seconds);
      const h = await load(helloPort, '/hello', seconds);
      results.rhopush.push(r);
      results.floor.push(f);
      results.hello.push(h);
      ctx.log(
        `rest run ${run + 1}: ping async ${Math.round(r.rate)} req/s (${r.failed} failed, ${queued} queued), floor ${Math.round(f.rate)} req/s (${f.failed} failed), hello-world ${Math.round(h.rate)} req/s`,
      );
    }
  } finally {
    // Every server started so far, whichever step failed.
    for (const helper of helpers) await helper.stop();
    redis.disconnect();
    await redisServer.stop();
  }
  const setup = `autocannon, ${CONNECTIONS} connections, ${seconds} s per run`;
  return [
    figure(
      'rest.ping_async',
      'req/s',
      results.rhopush.map((r) => r.rate),
      results.hello.map((r) => r.rate),
      `${setup}; baseline: fastify hello-world POST; target ≥ 0.5×`,
    ),
    figure(
      'rest.ping_async_vs_floor',
      'req/s',
      results.rhopush.map((r) => r.rate),
      results.floor.map((r) => r.rate),
      `${setup}; baseline: the floor (same schema, token check and SADD + RPUSH on a bare fastify route); target ≥ 0.9×`,
    ),
    figure(
      'rest.floor',
      'req/s',
      results.floor.map((r) => r.rate),
      results.hello.map((r) => r.rate),
      `${setup}; the floor's own rate; baseline: fastify hello-world POST`,
    ),
    figure(
      'rest.p99_latency',
      'ms',
      results.rhopush.map((r) => r.p99),
      results.hello.map((r) => r.p99),
      'request latency p99 under that load; baseline: hello-world',
    ),
    figure(
      'rest.failed',
      'requests',
      results.rhopush.map((r) => r.failed),
      results.floor.map((r) => r.failed),
      'non-2xx answers, errors and timeouts (must be 0); baseline: the floor',
    ),
  ];
}
