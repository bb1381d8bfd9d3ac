// The queue worker reports to /metrics: finished jobs by outcome and the depth of each queue.
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import { useRedisServer } from './helpers/redis.js';
import { waitUntil } from '../src/kit/index.js';
import { entrySettings, startDaemon, userWithDevices } from './helpers/entry-points.js';

const redis = useRedisServer();
let daemon: Daemon | undefined;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

function sample(text: string, name: string, label: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('queue metrics', () => {
  it('counts finished jobs by outcome and samples queue depth at every heartbeat', async () => {
    const r = redis.client();
    await r.flushall();
    await userWithDevices(r, 'alice');
    // Three jobs exactly as Ruby's Resque.enqueue writes them, one of them poison.
    await r.rpush(
      'resque:queue:ping',
      JSON.stringify({ class: 'Rhoconnect::PingJob', args: [{ user_id: 'alice', sources: ['Product'] }] }),
      JSON.stringify({ class: 'PingJob', args: [{ user_id: ['alice'] }] }),
      JSON.stringify({ class: 'SomethingElse', args: [{}] }),
    );
    const started = await startDaemon(entrySettings(r.options.port!, { lease_ms: 300, worker_concurrency: 1 }));
    daemon = started.daemon;
    const text = await waitUntil(
      async () => {
        const body = await (await fetch(`${started.url}/metrics`)).text();
        return sample(body, 'rhopush_queue_jobs_total', 'outcome="failed"') === 1 &&
          sample(body, 'rhopush_queue_jobs_total', 'outcome="done"') === 2
          ? body
          : undefined;
      },
      { what: 'job outcomes in /metrics' },
    );
    expect(sample(text, 'rhopush_pings_total', 'trigger="queue"')).toBe(2);
    expect(await r.llen('resque:failed')).toBe(1);
    // Depth is sampled at every heartbeat (lease_ms / 3). With one job in hand and pushes held,
    // the rest wait in the queue and show up there.
    started.adapters.hold();
    const job = JSON.stringify({ class: 'Rhoconnect::PingJob', args: [{ user_id: 'alice' }] });
    await r.rpush('resque:queue:ping', job, job, job, job);
    await waitUntil(
      async () => {
        const body = await (await fetch(`${started.url}/metrics`)).text();
        return sample(body, 'rhopush_queue_depth', 'queue="ping"') === 4 - 1 ? true : undefined;
      },
      { what: 'queue depth 3 while one job is in hand' },
    );
    started.adapters.release();
    await r.rpush('resque:queue:ping', 'not json');
    const depth = await waitUntil(
      async () => {
        const body = await (await fetch(`${started.url}/metrics`)).text();
        return sample(body, 'rhopush_queue_jobs_total', 'outcome="failed"') === 2 &&
          sample(body, 'rhopush_queue_depth', 'queue="ping"') === 0
          ? body
          : undefined;
      },
      { what: 'second failure and an empty queue in /metrics' },
    );
    expect(sample(depth, 'rhopush_queue_jobs_total', 'outcome="done"')).toBe(6);
  });
});
