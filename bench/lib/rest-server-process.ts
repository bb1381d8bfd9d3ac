// HTTP servers for the REST benchmark, each in its own process so the load generator (autocannon,
// in the benchmark process) never shares their core.
//  - `rhopush <redisPort> <apiToken>`: rhopush's HTTP API alone (no capture, no queue worker), so
//    `POST /rc/v1/users/ping` with `async` only checks the token, validates and enqueues;
//  - `floor <redisPort> <apiToken>`: the least an async ping route can do: a fastify POST route that
//    validates the body with rhopush's ping body schema (fastify's own validator), checks the API
//    token the same way (constant-time against the configured one), queues the Resque job with SADD
//    resque:queues + RPUSH resque:queue:ping on an auto-pipelined ioredis connection, and answers
//    the same shape; no history record, no aliases, no form bodies;
//  - `hello`: a fastify hello-world route (POST, JSON body parsed, small JSON answer).
// Prints `ready <port>`; stops on SIGTERM.
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { sameToken } from '../../src/api/auth.js';
import { pingBodySchema } from '../../src/api/ping-routes.js';
import { createDaemon } from '../../src/daemon.js';
import { buildSettings } from '../../src/kit/index.js';

const [mode, redisPort, apiToken] = process.argv.slice(2) as [string, string?, string?];
let port: number;
let stop: () => Promise<unknown>;
if (mode === 'rhopush') {
  const settings = buildSettings({ environment: 'bench', redis: Number(redisPort), apiToken });
  const daemon = createDaemon({ settings, capture: false, queue: false });
  await daemon.start();
  port = daemon.apiAddress!.port;
  stop = () => daemon.stop();
} else if (mode === 'floor') {
  const redis = new Redis(Number(redisPort), '127.0.0.1', { enableAutoPipelining: true });
  // Without coercion: fastify's default would turn ['a'] into 'a', which then matches both of the
  // schema's `oneOf` branches and is refused.
  const app = Fastify({ ajv: { customOptions: { coerceTypes: false } } });
  let counter = 0;
  app.post('/rc/v1/users/ping', { schema: { body: pingBodySchema } }, async (request, reply) => {
    const token = request.headers['x-rhoconnect-api-token'];
    if (typeof token !== 'string' || !sameToken(token, apiToken!)) return reply.code(422).send({ error: 'Invalid/missing API user' });
    const body = request.body as { user_id: string | string[]; sources?: string | string[] };
    const users = Array.isArray(body.user_id) ? body.user_id : [body.user_id];
    const sources = body.sources === undefined ? [] : Array.isArray(body.sources) ? body.sources : [body.sources];
    const id = `${Date.now().toString(36)}${(counter = (counter + 1) % 46_656).toString(36)}`;
    const job = JSON.stringify({ class: 'Rhoconnect::PingJob', args: [{ user_id: users, sources, ping_id: id }] });
    await Promise.all([redis.sadd('resque:queues', 'ping'), redis.rpush('resque:queue:ping', job)]);
    return { id, queued: true, queue: 'ping', users, sources };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  stop = async () => {
    await app.close();
    redis.disconnect();
  };
} else {
  const app = Fastify();
  app.post('/hello', async () => ({ hello: 'world' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  stop = () => app.close();
}
process.stdout.write(`ready ${port}\n`);
process.on('SIGTERM', () => void stop().finally(() => process.exit(0)));
