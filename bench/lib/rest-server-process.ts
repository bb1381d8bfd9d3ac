// HTTP servers for the REST benchmark, each in its own process so the load generator (autocannon,
// in the benchmark process) never shares their core.
//  - `rhopush <redisPort> <apiToken>`: rhopush's HTTP API alone (no capture, no queue worker), so
//    `POST /rc/v1/users/ping` with `async` only checks the token, validates and enqueues;
//  - `hello`: a fastify hello-world route (POST, JSON body parsed, small JSON answer).
// Prints `ready <port>`; stops on SIGTERM.
import Fastify from 'fastify';
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
} else {
  const app = Fastify();
  app.post('/hello', async () => ({ hello: 'world' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  stop = () => app.close();
}
process.stdout.write(`ready ${port}\n`);
process.on('SIGTERM', () => void stop().finally(() => process.exit(0)));
