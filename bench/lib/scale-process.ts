// One measured side of the scale benchmark in its own process, so its peak RSS is its own and not
// the seeding bench process's (the pattern of capture-process.ts).
//  - `catchup <redisPort>`: rhopush starts on a Redis whose pairs it recorded before, catches up
//    (bench/catch-up.ts's startAndCatchUp, delivery off) and stops;
//  - `fanout <settingsFile> <login> <warmLogin>`: a Pinger as the library's ping() opens it,
//    delivering live to the APNs stand-in; pings `warmLogin` (connection, provider token, JIT), then
//    times one ping of `login`.
// Prints `ready` once its modules are loaded, then one JSON line: the measurement, `idleRssMiB` (its
// RSS just before the measured work) and `maxRssMiB` (its peak RSS).
import { loadSettings } from '../../src/config/load-settings.js';
import { normalizePingParams } from '../../src/ping/ping-params.js';
import { openPinger } from '../../src/ping/pinger.js';
import { startAndCatchUp } from '../catch-up.js';

const [mode, ...args] = process.argv.slice(2) as [string, ...string[]];
const rssMiB = () => process.memoryUsage.rss() / 2 ** 20;
process.stdout.write('ready\n');

let report: Record<string, unknown>;
if (mode === 'catchup') {
  const idleRssMiB = rssMiB();
  const started = await startAndCatchUp(Number(args[0]));
  await started.daemon.stop();
  report = {
    idleRssMiB,
    durationMs: started.result.durationMs,
    scanned: started.result.scanned,
    pinged: [...started.pinged],
  };
} else if (mode === 'fanout') {
  const [file, login, warmLogin] = args as [string, string, string];
  const pinger = await openPinger(loadSettings(file, { environment: 'bench' }));
  try {
    const warm = await pinger.ping(normalizePingParams({ user_id: warmLogin, sources: ['Source0'] }), 'library');
    const idleRssMiB = rssMiB();
    const t = performance.now();
    const result = await pinger.ping(normalizePingParams({ user_id: login, sources: ['Source0'] }), 'library');
    const ms = performance.now() - t;
    report = {
      idleRssMiB,
      ms,
      warmSent: warm.pushes.filter((p) => p.outcome === 'sent').length,
      sent: result.pushes.filter((p) => p.outcome === 'sent').length,
      errors: result.errors.slice(0, 3),
    };
  } finally {
    await pinger.close();
  }
} else {
  throw new Error(`unknown mode '${mode}'`);
}
// Exits once the line is written: a long one (a million pairs' pinged list) is cut short by an exit
// while the pipe is still full.
process.stdout.write(`${JSON.stringify({ ...report, maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`, () => process.exit(0));
