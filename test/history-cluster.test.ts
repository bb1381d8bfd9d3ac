// Ping history on Redis Cluster: records live in their own slots ({id}), a user's lists in the
// user's ({user}); the API, the why explanation and `rhopush why` read them key by key.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import type { WhyReport } from '../src/explain/why.js';
import { historyKeys } from '../src/history/ping-history.js';
import type { PingRecord } from '../src/history/ping-record.js';
import { startRedisCluster, type RedisClusterProcess } from '../src/kit/redis-cluster-process.js';
import { buildSettings, createUser, deviceSync, pushObjects, registerClient, waitUntil, writeSettings } from '../src/kit/index.js';
import { keySlot } from '../src/store/cluster-slots.js';
import { ADMIN_TOKEN, startDaemon } from './helpers/entry-points.js';
import { runCli } from './helpers/cli.js';

let cluster: RedisClusterProcess;
let client: Cluster;
let daemon: Daemon;
let base: string;
let dir: string;

async function get(path: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, { headers: { 'X-RhoConnect-API-TOKEN': ADMIN_TOKEN } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
  client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }]);
  client.on('error', () => undefined);
  dir = mkdtempSync(join(tmpdir(), 'rhopush-history-cluster-'));
  const options = { redis: cluster.nodes.map((n) => n.port), cluster: true, apiToken: ADMIN_TOKEN };
  writeSettings(dir, options);
  ({ daemon, url: base } = await startDaemon(buildSettings(options), { capture: true, queue: false }));
  for (const user of ['alice', 'bob']) {
    await createUser(client, user);
    await registerClient(client, user, {
      id: `${user}-ios`,
      device_type: 'APPLE',
      device_pin: `ios-token-${user}-0123456789`,
      phone_id: user,
    });
  }
});

afterAll(async () => {
  await daemon?.stop();
  client?.disconnect();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('ping history on Redis Cluster', () => {
  it('records automatic and REST pings and captured decisions, and reads them across slots', async () => {
    await pushObjects(client, 'alice', 'Product', { '1': { name: 'Widget' } });
    await waitUntil(async () => (await daemon.history.forUser('alice')).some((p) => p.status === 'succeeded'), {
      what: "alice's automatic ping finished",
      timeoutMs: 15_000,
    });
    await deviceSync(client, 'alice', 'alice-ios', 'Product', { '1': { name: 'Widget 2' } });
    const rest: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${base}/rc/v1/users/ping`, {
        method: 'POST',
        headers: { 'X-RhoConnect-API-TOKEN': ADMIN_TOKEN, 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: ['alice', 'bob'], sources: ['Contact'] }),
      });
      expect(res.status).toBe(200);
      rest.push(((await res.json()) as { id: string }).id);
    }
    // The records sit in other slots than alice's list: reading it crosses slots.
    const userSlot = keySlot(historyKeys.userPings('alice'));
    expect(rest.some((id) => keySlot(historyKeys.ping(id)) !== userSlot)).toBe(true);

    const record = (await get(`/rc/v1/pings/${rest[0]}`)).json as unknown as PingRecord;
    expect(record).toMatchObject({ id: rest[0], status: 'succeeded', trigger: 'rest', users: ['alice', 'bob'] });
    const alice = (await get('/rc/v1/users/alice/pings')).json.pings as PingRecord[];
    expect(alice.map((p) => p.id)).toEqual([...[...rest].reverse(), expect.any(String)]);
    expect(alice.at(-1)!.trigger).toBe('auto');
    expect(((await get('/rc/v1/users/bob/pings')).json.pings as PingRecord[]).map((p) => p.id)).toEqual([...rest].reverse());
    expect(((await get('/rc/v1/pings?limit=5')).json.pings as PingRecord[]).map((p) => p.id)).toEqual([
      ...[...rest].reverse(),
      alice.at(-1)!.id,
    ]);

    const why = await waitUntil(
      async () => {
        const w = (await get('/rc/v1/users/alice/why')).json as unknown as WhyReport;
        return w.events.some((e) => e.kind === 'decision') ? w : undefined;
      },
      { what: "alice's sync decision in the explanation", timeoutMs: 10_000 },
    );
    expect(why.events.map((e) => e.text)).toEqual(
      expect.arrayContaining(['Product: plugin write → pinged', "Product: device's sync → no ping", 'REST ping for Contact']),
    );
    expect(why.verdict.lines[0]).toMatch(/^alice's iPhone …6789: last ping \d\d:\d\d:\d\d for Contact, delivered \(APNs 200\)$/);

    const status = (await get('/rc/v1/rhopush/status')).json as {
      capture: { nodes: Array<{ leaseHeld: boolean }> };
      queue: { depths: unknown };
    };
    expect(status.capture.nodes).toHaveLength(3);
    expect(status.capture.nodes.every((n) => n.leaseHeld)).toBe(true);
    // No Resque on a cluster: no queue to count.
    expect(status.queue.depths).toBeNull();
  });

  it('rhopush why reads the same through the cluster, without the daemon', async () => {
    const { code, stdout, stderr } = await runCli(['why', 'alice', '--json', '--settings', join(dir, 'settings.yml'), '--env', 'test']);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as WhyReport;
    expect(report.verdict).toMatchObject({ kind: 'devices', pinged: true });
    expect(report.verdict.sources.sort()).toEqual(['Contact', 'Product']);
    expect(report.events.filter((e) => e.kind === 'ping')).toHaveLength(5);
  });
});
