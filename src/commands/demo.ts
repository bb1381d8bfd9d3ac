// `rhopush demo`: the whole path on one machine, with nothing to configure. A private redis-server,
// loopback stand-ins for APNs, FCM and RhoConnect Push, a user with one device on each, the daemon
// delivering live to the stand-ins, and plugin writes shaped like RhoConnect's push_objects. It
// prints what happened: change captured → decision → grouped ping → device push with its payload.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { loadSettings } from '../config/load-settings.js';
import { createDaemon, type Daemon } from '../daemon.js';
import { silentLogger } from '../logger.js';
import {
  ApnsStandIn,
  apnsTokenKey,
  createUser,
  FcmStandIn,
  pushObjects,
  PushStandIn,
  registerClient,
  startRedisServer,
  waitUntil,
  writeSettings,
  type RedisServerProcess,
  type SettingsOptions,
} from '../kit/index.js';
import { terminalProgress, type Progress } from '../util/progress.js';

const TOPIC = 'com.example.demo';
const PROJECT = 'rhopush-demo';
const USER = 'alice';
const DEVICES = [
  {
    id: 'a1c0ffee00000000000000000000apple',
    label: 'iPhone',
    device_type: 'APPLE',
    device_pin: 'a1b2c3d4 e5f60718 293a4b5c 6d7e8f90 a1b2c3d4 e5f60718 293a4b5c 6d7e8f90',
    phone_id: 'iphone-of-alice',
  },
  {
    id: 'a1c0ffee000000000000000000000fcm',
    label: 'Pixel',
    device_type: 'ANDROID',
    device_push_type: 'fcm',
    device_pin: 'fcm-registration-token-of-alices-pixel-0001',
    phone_id: 'pixel-of-alice',
  },
  {
    id: 'a1c0ffee000000000000000000rcpush',
    label: 'Zebra TC52',
    device_type: 'ANDROID',
    device_push_type: 'rhoconnect_push',
    device_pin: 'rhoconnect-push-pin-of-alices-zebra',
    phone_id: 'zebra-of-alice',
  },
] as const;

/** The plugin writes the demo performs: two of alice's sources, then an app-partitioned one. */
const WRITES = [
  { what: `push_objects Product for ${USER}`, partition: USER, source: 'Product', objects: { '1': { name: 'iPhone 17', price: '999' } } },
  { what: `push_objects Contact for ${USER}`, partition: USER, source: 'Contact', objects: { '7': { name: 'Bob', phone: '555-0100' } } },
  {
    what: 'push_objects Catalog (app-partitioned)',
    partition: '__shared__',
    source: 'Catalog',
    objects: { '3': { name: 'Spring prices' } },
  },
] as const;

export interface DemoReport {
  lines: string[];
  /** Device pushes received by the stand-ins. */
  received: { apns: number; fcm: number; rhoconnectPush: number };
  pings: number;
  ok: boolean;
}

export interface DemoOptions {
  /** Where each line of the account goes (default: stdout). */
  print?: (line: string) => void;
  /** How long to wait for the three device pushes. */
  timeoutMs?: number;
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const out = account(options.print ?? console.log);
  const progress = terminalProgress('starting');
  const stage = new Stage();
  try {
    out.print("rhopush demo: a backend changes alice's data in RhoConnect's Redis; her three devices are told to sync.");
    out.print();
    const services = await stage.startServices(progress);
    printSetUp(out, services);
    progress.update(2, 5, 'registering devices');
    await registerDevices(services.redis);
    printDevices(out);
    progress.update(3, 5, 'starting rhopush');
    const daemon = await stage.startDaemon(services, out);
    progress.update(4, 5, 'plugin writes');
    progress.end();
    await pluginWrites(out, services.redis);
    await untilDelivered(services, () => stage.pings, options.timeoutMs ?? 10_000);
    await daemon.drain();
    printDevicePushes(out, services);
    return summarise(out, services, stage.pings);
  } finally {
    progress.end();
    await stage.stop();
  }
}

/** The account the demo prints: every line kept for the report, times since the start. */
interface Account {
  lines: string[];
  print(line?: string): void;
  /** `+ 392 ms`: time since the demo started. */
  at(): string;
  seconds(): string;
}

function account(sink: (line: string) => void): Account {
  const started = performance.now();
  const lines: string[] = [];
  return {
    lines,
    print(line = '') {
      lines.push(line);
      sink(line);
    },
    at: () => `+${String(Math.round(performance.now() - started)).padStart(4)} ms`,
    seconds: () => ((performance.now() - started) / 1000).toFixed(1),
  };
}

interface Services {
  redisServer: RedisServerProcess;
  apns: ApnsStandIn;
  fcm: FcmStandIn;
  push: PushStandIn;
  redis: Redis;
  settingsFile: string;
}

/** What the demo started, stopped in reverse whatever happens. */
class Stage {
  readonly dir = mkdtempSync(join(tmpdir(), 'rhopush-demo-'));
  private redisServer?: RedisServerProcess;
  private redis?: Redis;
  private readonly standIns: Array<{ close(): Promise<void> }> = [];
  private daemon?: Daemon;
  pings = 0;

  /** A private redis-server and the three stand-ins, and the settings.yml that points at them. */
  async startServices(progress: Progress): Promise<Services> {
    progress.update(0, 5, 'redis-server');
    const redisServer = (this.redisServer = await startRedisServer());
    progress.update(1, 5, 'APNs, FCM and RhoConnect Push stand-ins');
    const key = apnsTokenKey('DEMOKEY001', 'DEMOTEAM01');
    const apns = this.track(await ApnsStandIn.start({ token: key, topics: [TOPIC], relay: false }));
    const fcm = this.track(await FcmStandIn.start({ projectId: PROJECT }));
    const push = this.track(await PushStandIn.start({ credentials: 'demo:secret' }));
    const settings: SettingsOptions = {
      environment: 'development',
      redis: redisServer.port,
      sources: {
        Product: { partition: 'user', pushNotify: 'true' },
        Contact: { partition: 'user', pushNotify: 'true' },
        Catalog: { partition: 'app', pushNotify: 'true' },
      },
      env: { iphoneserver: 'gateway.sandbox.push.apple.com' },
      delivery: 'live',
      coalesceMs: 100,
      maxDelayMs: 1000,
      apns: { endpoint: apns, key, topic: TOPIC },
      fcm: { standIn: fcm, packageName: 'com.example.demo' },
      pushServer: `${push.url}/`,
    };
    const settingsFile = writeSettings(this.dir, settings);
    const redis = (this.redis = new Redis(redisServer.port, '127.0.0.1'));
    return { redisServer, apns, fcm, push, redis, settingsFile };
  }

  /** The daemon, delivering live to the stand-ins, printing each decision and group as it happens. */
  async startDaemon(services: Services, out: Account): Promise<Daemon> {
    const daemon = (this.daemon = createDaemon({
      settings: loadSettings(services.settingsFile, { environment: 'development', env: {} }),
      logger: silentLogger,
      http: false,
      queue: false,
      onDecision: (d, event, _node, key) => {
        if (d.rule === 'device-edit-mark' || d.rule === 'unparsed-key') return;
        const verdict = d.ping ? `ping (${d.rule})` : `no ping (${d.rule})`;
        out.print(`  ${out.at()}  captured ${event.toUpperCase()} ${key}  →  ${verdict}`);
      },
      onGroup: (g) => out.print(`  ${out.at()}  grouped: ${g.user} → [${g.sources.join(', ')}] in one ping (${g.changes} changes)`),
      onPing: () => (this.pings += 1),
    }));
    await daemon.start();
    return daemon;
  }

  async stop(): Promise<void> {
    await this.daemon?.stop();
    this.redis?.disconnect();
    await Promise.allSettled(this.standIns.map((s) => s.close()));
    await this.redisServer?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private track<T extends { close(): Promise<void> }>(standIn: T): T {
    this.standIns.push(standIn);
    return standIn;
  }
}

function printSetUp(out: Account, s: Services): void {
  out.print('set up');
  out.print(`  redis-server     127.0.0.1:${s.redisServer.port} (private; rhopush turns on notify-keyspace-events K$g)`);
  out.print(`  APNs stand-in    https://127.0.0.1:${s.apns.port} (HTTP/2, token auth, topic ${TOPIC})`);
  out.print(`  FCM stand-in     https://127.0.0.1:${s.fcm.port} (HTTP v1 and OAuth, project ${PROJECT})`);
  out.print(`  Push stand-in    http://127.0.0.1:${s.push.port} (RhoConnect Push, basic auth)`);
}

/** alice and her three devices, registered the way RhoConnect does. */
async function registerDevices(redis: Redis): Promise<void> {
  await createUser(redis, USER);
  for (const { label: _label, ...client } of DEVICES) await registerClient(redis, USER, client);
}

function printDevices(out: Account): void {
  out.print(
    `  user ${USER}       ${DEVICES.map((d) => `${d.label} (${d.device_type}${'device_push_type' in d ? `/${d.device_push_type}` : ''})`).join(', ')}`,
  );
  out.print(`  settings         Product, Contact: user partition, :push_notify: 'true'; Catalog: app partition`);
}

async function pluginWrites(out: Account, redis: Redis): Promise<void> {
  out.print();
  out.print('plugin writes (push_objects, the commands RhoConnect sends)');
  for (const w of WRITES) {
    out.print(`  ${out.at()}  ${w.what}`);
    await pushObjects(redis, w.partition, w.source, w.objects);
  }
}

/** Until every device's push arrived and the ping finished; past the deadline the summary says what is missing. */
async function untilDelivered(s: Services, pings: () => number, timeoutMs: number): Promise<void> {
  const arrived = () => s.apns.requests.length + s.fcm.messages.length + s.push.requests.length;
  await waitUntil(() => arrived() >= DEVICES.length && pings() >= 1, { what: 'the device pushes', timeoutMs, intervalMs: 10 }).catch(
    () => undefined,
  );
}

function printDevicePushes(out: Account, s: Services): void {
  out.print();
  out.print('device pushes received by the stand-ins');
  for (const r of s.apns.requests) {
    out.print(
      `  APNs             POST ${r.path.replace(/[0-9a-f]{56}(?=[0-9a-f]{8}$)/, '…')}  apns-push-type: ${r.headers['apns-push-type']}, apns-priority: ${r.headers['apns-priority']}  → ${r.status}`,
    );
    out.print(`                   ${r.body}`);
  }
  for (const m of s.fcm.messages) {
    out.print(`  FCM              POST /v1/projects/${m.project}/messages:send  → ${m.status}`);
    out.print(`                   ${JSON.stringify({ ...m.message, token: shorten(String(m.message.token)) })}`);
  }
  for (const r of s.push.requests) {
    out.print(`  RhoConnect Push  POST /messageQueue/${shorten(r.pin)}  → ${r.status}`);
    out.print(`                   ${r.body}`);
  }
}

function summarise(out: Account, s: Services, pings: number): DemoReport {
  const received = { apns: s.apns.delivered().length, fcm: s.fcm.delivered().length, rhoconnectPush: s.push.delivered().length };
  const ok = received.apns === 1 && received.fcm === 1 && received.rhoconnectPush === 1 && pings === 1;
  out.print();
  out.print(
    ok
      ? `done: ${WRITES.length} plugin writes → 2 changes for ${USER} (Catalog is app-partitioned) → 1 ping → 3 device pushes, in ${out.seconds()} s.`
      : `incomplete: ${pings} ping(s), device pushes received: APNs ${received.apns}, FCM ${received.fcm}, RhoConnect Push ${received.rhoconnectPush} (expected 1 each).`,
  );
  return { lines: out.lines, received, pings, ok };
}

function shorten(token: string): string {
  return token.length > 12 ? `${token.slice(0, 6)}…${token.slice(-4)}` : token;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('show the whole path on this machine: a private redis-server, APNs/FCM/RhoConnect Push stand-ins, plugin writes, pings')
    .action(async () => {
      const report = await runDemo();
      process.exitCode = report.ok ? 0 : 1;
    });
}
