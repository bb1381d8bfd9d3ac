// One side of the capture benchmark in its own process, so each is measured alone (time and peak
// RSS) while the load generator runs in another.
//  - `bare <redisPort> <expected>`: an ioredis psubscribe on the md_size keyspace pattern that only
//    counts events;
//  - `rhopush <redisPort> <expected> <sources>`: the real daemon (capture with leases, catch-up and
//    canaries, classification, grouping, PingJob) with delivery switched off.
// Prints `ready` once subscribed, then one JSON line {count, first, last, maxRssMiB, cpuUs} once
// `expected` changes were counted (rhopush: and every grouped ping has run) or 60 s passed without
// one; cpuUs is the process's CPU time (user + system) from `ready` to then.
// Stops on SIGTERM.
import { Redis } from 'ioredis';
import { createDaemon } from '../../src/daemon.js';
import { buildSettings, numberedSources, waitUntil } from '../../src/kit/index.js';
import { keyspacePatterns } from '../../src/store/keys.js';
import { noDelivery } from './harness.js';

const [mode, port, expectedArg, sourcesArg] = process.argv.slice(2) as [string, string, string, string?];
const expected = Number(expectedArg);
let count = 0;
let first = 0;
let last = 0;
const counted = () => {
  const t = performance.now();
  if (count === 0) first = t;
  last = t;
  count += 1;
};

let stop: () => Promise<unknown>;
let settle: () => Promise<unknown> = async () => undefined;
if (mode === 'bare') {
  const sub = new Redis(Number(port), '127.0.0.1');
  sub.on('pmessage', counted);
  await sub.psubscribe(keyspacePatterns(0)[0]!);
  stop = async () => sub.disconnect();
} else {
  const settings = buildSettings({ redis: Number(port), sources: numberedSources(Number(sourcesArg ?? 5)) });
  const daemon = createDaemon({ settings, http: false, queue: false, adapters: noDelivery, onChange: counted });
  await daemon.start();
  await daemon.supervisor?.caughtUp();
  stop = () => daemon.stop();
  settle = async () => {
    await daemon.capture?.barrier(10_000);
    // Past the deadline the count is reported as it stands: what is missing shows as lost.
    await waitUntil(() => daemon.window.size === 0, { what: 'every group sent', timeoutMs: 30_000 }).catch(() => undefined);
    await daemon.drain();
  };
}
process.on('SIGTERM', () => void stop().finally(() => process.exit(0)));
const cpuAtReady = process.cpuUsage();
process.stdout.write('ready\n');

let lastCount = -1;
let idleSince = performance.now();
await waitUntil(
  () => {
    if (count !== lastCount) {
      lastCount = count;
      idleSince = performance.now();
    }
    return count >= expected || performance.now() - idleSince > 60_000;
  },
  { what: 'every change counted, or a minute without one', timeoutMs: Number.POSITIVE_INFINITY, intervalMs: 5 },
);
await settle();
const cpu = process.cpuUsage(cpuAtReady);
const cpuUs = cpu.user + cpu.system;
process.stdout.write(`${JSON.stringify({ count, first, last, maxRssMiB: process.resourceUsage().maxRSS / 1024, cpuUs })}\n`);
