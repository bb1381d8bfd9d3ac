// 8. History: what recording every ping costs. Automatic pings at a fixed 1k plugin writes/s (one
// write per user, so one ping per write), delivered live to the APNs stand-in by `rhopush run` in its
// own process; the CPU time that process uses per write, with history on (the default 72 h) and off
// (`:history_ttl_hours: 0`). Both in the same process, switched by editing settings.yml and SIGHUP
// (history settings apply live), in alternating order run after run, so warm-up and drift cancel.
// Each measurement checks that history was really on (records appear) or off (none do).
import type { Redis } from 'ioredis';
import { historyKeys } from '../src/history/ping-history.js';
import { waitUntil } from '../src/kit/index.js';
import { benchUser } from './lib/devices.js';
import { startDaemonOnFreePort, type DaemonProcess } from './lib/daemon-process.js';
import { figure, type BenchContext, type Figure } from './lib/harness.js';
import { startLiveRig, type LiveSettingsOptions } from './lib/live-rig.js';
import { pacedWrites } from './lib/paced-writes.js';
import { queuePluginWrite } from './lib/plugin-writes.js';
import { cpuSeconds } from './lib/processes.js';

const SOURCES = 5;
const RATE = 1000;
/** Seconds of writes per measurement. */
const RUN_SECONDS = 4;
/** Users whose history indexes are counted to tell whether history was on. */
const PROBED_USERS = 10;
const RELOADS_APPLIED = 'rhopush_config_reloads_total{result="applied"}';

interface Measured {
  cpuUs: number;
  lost: number;
}

export async function benchHistory(ctx: BenchContext): Promise<Figure[]> {
  const count = Math.round(RATE * (ctx.quick ? 0.5 : RUN_SECONDS));
  const arrivals = new Uint8Array(count);
  let arrived = 0;
  const rig = await startLiveRig({
    users: count,
    sources: SOURCES,
    onPush: (i) => {
      if (i < count && arrivals[i] === 0) {
        arrivals[i] = 1;
        arrived += 1;
      }
    },
  });
  let settings: LiveSettingsOptions | undefined;
  let daemon: DaemonProcess | undefined;
  let writeCounter = 0;

  /** Writes every user once at RATE, waits for every push, and returns the CPU per write. */
  const measure = async (history: boolean): Promise<Measured> => {
    arrivals.fill(0);
    arrived = 0;
    const recordsBefore = await probeRecords(rig.redis);
    const cpuBefore = cpuSeconds(daemon!.pid);
    await pacedWrites(rig.redis, {
      ratePerSecond: RATE,
      total: count,
      write: (p, i) => queuePluginWrite(p, benchUser(i), `Source${i % SOURCES}`, writeCounter++),
    });
    // Pushes that never arrive are counted as lost.
    await waitUntil(() => arrived >= count, { what: 'a push per write', timeoutMs: 20_000, intervalMs: 10 }).catch(() => undefined);
    // The ping's records are written after its pushes: let the last ones land before reading the CPU.
    await new Promise((r) => setTimeout(r, 300));
    const cpuUs = ((cpuSeconds(daemon!.pid) - cpuBefore) * 1e6) / count;
    const added = (await probeRecords(rig.redis)) - recordsBefore;
    if (history && added < PROBED_USERS) throw new Error(`history.overhead: history was to be on, but only ${added} records appeared`);
    if (!history && added !== 0) throw new Error(`history.overhead: history was to be off, but ${added} records appeared`);
    return { cpuUs, lost: count - arrived };
  };

  /** Rewrites settings.yml with history on or off and reloads it (SIGHUP), waiting until applied. */
  const switchHistory = async (on: boolean) => {
    const before = (await daemon!.metrics()).get(RELOADS_APPLIED) ?? 0;
    rig.dir.write({ ...settings!, rhopush: { history_ttl_hours: on ? 72 : 0 } });
    process.kill(daemon!.pid, 'SIGHUP');
    await waitUntil(async () => ((await daemon!.metrics()).get(RELOADS_APPLIED) ?? 0) > before, {
      what: `settings reloaded with history ${on ? 'on' : 'off'}`,
      timeoutMs: 10_000,
    });
  };

  const on: number[] = [];
  const off: number[] = [];
  const overhead: number[] = [];
  const lost: number[] = [];
  try {
    daemon = await startDaemonOnFreePort((listenPort) => {
      settings = { redisPort: rig.redisServer.port, sources: SOURCES, listenPort, apns: rig.standIn, key: rig.key };
      return rig.dir.write({ ...settings, rhopush: { history_ttl_hours: 72 } });
    });
    // Warm-up (connections, provider token, JIT), not counted.
    await measure(true);
    let historyOn = true;
    for (let run = 0; run < ctx.runs; run++) {
      // Alternate which comes first: on, off | off, on | ...
      const order = run % 2 === 0 ? [true, false] : [false, true];
      const pair: Record<string, number> = {};
      let lostInRun = 0;
      for (const mode of order) {
        if (mode !== historyOn) {
          await switchHistory(mode);
          historyOn = mode;
        }
        const m = await measure(mode);
        lostInRun += m.lost;
        pair[String(mode)] = m.cpuUs;
        ctx.log(`history ${mode ? 'on ' : 'off'} run ${run + 1}: ${Math.round(m.cpuUs)} µs CPU per write, lost ${m.lost}`);
      }
      on.push(pair.true!);
      off.push(pair.false!);
      overhead.push((pair.true! / pair.false! - 1) * 100);
      lost.push(lostInRun);
    }
  } finally {
    await daemon?.stop();
    await rig.stop();
  }
  const setting = `${RATE} writes/s, ${count} per run, one ping per write, live delivery to the APNs stand-in`;
  return [
    figure(
      'history.cpu_per_write',
      'µs',
      on,
      off,
      `${setting}; CPU of rhopush run per write with history on (72 h); baseline: the same process with :history_ttl_hours: 0`,
    ),
    figure('history.overhead', '%', overhead, null, `${setting}; (CPU with history ÷ CPU without − 1) per run pair; target ≤ 10 %`),
    figure('history.lost', 'pushes', lost, null, `${setting}; writes whose push never arrived, with and without history (must be 0)`),
  ];
}

/** Records in the first users' ping indexes (how many pings history kept for them). */
async function probeRecords(redis: Redis): Promise<number> {
  const counts = await Promise.all(Array.from({ length: PROBED_USERS }, (_, i) => redis.zcard(historyKeys.userPings(benchUser(i)))));
  return counts.reduce((a, b) => a + b, 0);
}
