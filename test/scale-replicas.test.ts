// Two rhopush instances against the same Redis: one captures each node (lease), the other stands
// by and takes over, with catch-up covering the handover. A real `rhopush run` process is killed
// with SIGKILL mid-stream and started again.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { Change } from '../src/intake/capture.js';
import type { CatchUpResult } from '../src/recovery/catch-up.js';
import { NodeFingerprintStore } from '../src/recovery/fingerprint-store.js';
import { createDaemon, type Daemon } from '../src/daemon.js';
import { pushObjects, RhoConnectInstances, sleep, startRedisServer, waitUntil, type RedisServerProcess } from '../src/kit/index.js';
import { pair, PingRecord, scaleSettings, scaleSettingsYaml, settle } from './helpers/scale.js';

const servers: RedisServerProcess[] = [];
const clients: Redis[] = [];
const daemons: Daemon[] = [];
const children: ChildProcess[] = [];
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhopush-replicas-'));
  for (let i = 0; i < 2; i++) {
    const s = await startRedisServer();
    servers.push(s);
    clients.push(new Redis({ port: s.port, host: '127.0.0.1' }));
  }
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(daemons.map((d) => d.stop()));
  clients.forEach((c) => c.disconnect());
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
  await Promise.all(clients.map((c) => c.flushall()));
});

const redisList = () => servers.map((s) => `127.0.0.1:${s.port}`);
/** Documents spread over both instances (instance 0 too, unlike RhoConnect's own layout). */
const rhoconnect = new RhoConnectInstances(clients, (doc) => doc.partition.length % 2);

async function startDaemon(record: PingRecord, http = false, leaseMs?: number): Promise<Daemon> {
  const d = createDaemon({
    settings: scaleSettings({ redis: redisList(), leaseMs }),
    http,
    onPing: (r) => {
      // Live captures and catch-ups alike (REST pings of the standby check are left out).
      if (r.trigger === 'auto' || r.trigger === 'catch-up') record.add(r.users, r.sources);
    },
  });
  daemons.push(d);
  await d.start();
  return d;
}

/** Pairs whose record says `instance` pinged them. */
async function recordedAsPingedBy(instance: string): Promise<string[]> {
  const pairs: string[] = [];
  for (const c of clients) {
    for (const key of await c.keys('rhopush:seen:*')) {
      if ((await c.hget(key, 'by')) !== `${instance} ping`) continue;
      const m = /^rhopush:seen:\{source:application:(.+):([^:]+):md_size\}$/.exec(key);
      if (m) pairs.push(pair(m[1]!, m[2]!));
    }
  }
  return pairs;
}

describe('two rhopush instances', () => {
  it('captures each node once, keeps serving HTTP on the standby, and hands over on a graceful stop without duplicates', async () => {
    const recordA = new PingRecord();
    const recordB = new PingRecord();
    // A long lease: only the graceful release hands over here, never a lapse on a busy machine.
    const a = await startDaemon(recordA, false, 3000);
    const b = await startDaemon(recordB, true, 3000);
    expect(a.supervisor!.status().every((s) => s.leaseHeld && s.subscribed)).toBe(true);
    expect(b.supervisor!.status().every((s) => !s.leaseHeld && s.heldElsewhere)).toBe(true);
    expect(b.capture!.nodes).toEqual([]);
    // The standby serves the API (only capture is leased): healthy, and pings on request.
    const res = await fetch(`http://127.0.0.1:${b.apiAddress!.port}/healthz`);
    expect(res.status).toBe(200);
    expect((await b.ping({ user_id: 'nobody', sources: ['Product'] }, 'rest')).skippedUsers).toEqual(['nobody']);

    const written: string[] = [];
    for (let i = 0; i < 30; i++) {
      if (i === 10) {
        await settle(a);
        await a.stop();
      }
      const user = `user${i}`;
      await pushObjects(rhoconnect, user, 'Product', { '1': { name: 'x' } });
      written.push(pair(user, 'Product'));
    }
    await waitUntil(() => b.supervisor!.status().every((s) => s.leaseHeld && s.subscribed), {
      what: 'the standby to take over',
      timeoutMs: 15_000,
    });
    await settle(b);
    const all = () => new Set([...recordA.pairs(), ...recordB.pairs()]);
    await waitUntil(() => written.every((p) => all().has(p)), { what: 'a ping for every written pair', timeoutMs: 15_000 });
    await settle(b);
    expect([...all()].sort()).toEqual([...written].sort());
    const both = recordA.pairs().filter((p) => recordB.has(...(p.split('/') as [string, string])));
    expect(both).toEqual([]);
    expect(b.supervisor!.stats.handoverDuplicates).toBe(0);
  });

  it('takes over from a rhopush process killed with SIGKILL mid-stream; duplicates only in the counted handover window', async () => {
    const settingsFile = join(dir, 'settings.yml');
    writeFileSync(settingsFile, scaleSettingsYaml({ redis: redisList() }));
    const childPings = new PingRecord();
    const startChild = async (): Promise<{ child: ChildProcess; pings: PingRecord }> => {
      const own = new PingRecord();
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'run', '--settings', settingsFile, '--env', 'test'], {
        cwd: process.cwd(),
        env: { ...process.env, LOG_LEVEL: 'info', RACK_ENV: 'test' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let started = false;
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let entry: { msg?: string; ping?: { users: string[]; sources: string[]; trigger: string } };
        try {
          entry = JSON.parse(line);
        } catch {
          return;
        }
        if (entry.msg === 'rhopush started') started = true;
        if (entry.msg === 'ping' && (entry.ping?.trigger === 'auto' || entry.ping?.trigger === 'catch-up')) {
          own.add(entry.ping.users, entry.ping.sources);
          childPings.add(entry.ping.users, entry.ping.sources);
        }
      });
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += String(d)));
      await waitUntil(() => started || child.exitCode !== null, { what: 'rhopush run to start', timeoutMs: 20_000 });
      if (!started) throw new Error(`rhopush run exited: ${stderr}`);
      return { child, pings: own };
    };

    for (let i = 0; i < 6; i++) await pushObjects(rhoconnect, `quiet${i}`, 'Product', { '1': { name: 'before' } });
    const first = await startChild();
    const firstId = await clients[0]!.get('rhopush:lease');
    expect(firstId).toMatch(/^[0-9a-f-]{36}$/);
    const recordB = new PingRecord();
    const b = await startDaemon(recordB);
    const flagged = new Set<string>();
    const takeovers: CatchUpResult[] = [];
    b.supervisor!.on('catch-up-ping', (c: Change, possibleDuplicate: boolean) => {
      if (possibleDuplicate) flagged.add(pair(c.user, c.source));
    });
    b.supervisor!.on('catch-up', (r: CatchUpResult) => {
      if (r.reason === 'takeover') takeovers.push(r);
    });
    expect(b.capture!.nodes).toEqual([]);

    const written: string[] = [];
    let second: { child: ChildProcess; pings: PingRecord } | undefined;
    for (let i = 0; i < 60; i++) {
      if (i === 20) first.child.kill('SIGKILL');
      if (i === 45) second = await startChild();
      const user = `user${i}`;
      const source = i % 2 ? 'Contact' : 'Product';
      await pushObjects(rhoconnect, user, source, { '1': { name: 'x' } });
      written.push(pair(user, source));
      await sleep(25);
    }
    await waitUntil(() => b.supervisor!.status().every((s) => s.leaseHeld && s.subscribed), {
      what: 'the in-process instance to take over',
      timeoutMs: 15_000,
    });
    await settle(b);
    // The killed process's pings: its log lines, and (since a SIGKILL can cut the last log line
    // short) the pairs it recorded as pinged, which it does only after a ping ran.
    const firstPinged = async () => new Set([...first.pings.pairs(), ...(await recordedAsPingedBy(firstId!))]);
    const all = async () => new Set([...(await firstPinged()), ...childPings.pairs(), ...recordB.pairs()]);
    await waitUntil(
      async () => {
        const pinged = await all();
        return written.every((p) => pinged.has(p));
      },
      { what: 'a ping for every written pair', timeoutMs: 15_000 },
    );
    await settle(b);

    expect([...(await all())].sort()).toEqual([...written].sort());
    expect(takeovers.length).toBe(2); // one per Redis instance
    // The restarted process stands by: the lease is held by the live instance.
    expect(second!.pings.pairs()).toEqual([]);
    // A pair pinged by both instances was marked pending by the killed one for that exact state:
    // the handover window, counted as such.
    const both = [...(await firstPinged())].filter((p) => recordB.counts.has(p));
    for (const p of both) expect(flagged.has(p)).toBe(true);
    expect(b.supervisor!.stats.handoverDuplicates).toBeGreaterThanOrEqual(both.length);
  });

  it('pings again, and counts as a handover duplicate, a change a dead instance was about to ping', async () => {
    const first = new PingRecord();
    const a = await startDaemon(first);
    await pushObjects(rhoconnect, 'pat', 'Product', { '1': { name: 'v1' } });
    await pushObjects(rhoconnect, 'quinn', 'Product', { '1': { name: 'v1' } });
    await waitUntil(() => first.has('pat', 'Product') && first.has('quinn', 'Product'), { what: 'live pings', timeoutMs: 15_000 });
    await settle(a);
    await a.stop();
    daemons.splice(daemons.indexOf(a), 1);

    // Changes nobody captured; for pat, an instance read the state and marked it pending just
    // before sending its ping, then died before recording it.
    await pushObjects(rhoconnect, 'pat', 'Product', { '2': { name: 'v2' } });
    await pushObjects(rhoconnect, 'quinn', 'Product', { '2': { name: 'v2' } });
    const dead = new NodeFingerprintStore(rhoconnect.documents({ partition: 'pat', source: 'Product' }) as Redis);
    const [marked] = await dead.snapshot([{ partition: 'pat', source: 'Product' }], 'dead-instance');
    expect(marked!.current).not.toBe(marked!.stored);

    const next = new PingRecord();
    const flagged: string[] = [];
    const b = createDaemon({
      settings: scaleSettings({ redis: redisList() }),
      http: false,
      onPing: (r) => next.add(r.users, r.sources),
    });
    daemons.push(b);
    b.supervisor!.on('catch-up-ping', (c: Change, possibleDuplicate: boolean) => {
      if (possibleDuplicate) flagged.push(pair(c.user, c.source));
    });
    await b.start();
    await settle(b);
    expect(next.pairs()).toEqual([pair('pat', 'Product'), pair('quinn', 'Product')]);
    expect(flagged).toEqual([pair('pat', 'Product')]);
    expect(b.supervisor!.stats.handoverDuplicates).toBe(1);
    // Recorded after the ping: pending is gone and the next start pings nothing.
    const [after] = await dead.read([{ partition: 'pat', source: 'Product' }]);
    expect(after!.pending).toBeNull();
    expect(after!.stored).toBe(after!.current);
  });
});
