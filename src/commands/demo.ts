// `rhopush demo`: the whole path on one machine, with nothing to configure. A private redis-server,
// loopback stand-ins for APNs, FCM and RhoConnect Push, a user with one device on each, the daemon
// delivering live to the stand-ins, and plugin writes shaped like RhoConnect's push_objects. It
// prints what happened: change captured → decision → grouped ping → device push with its payload.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadSettings } from '../config/load-settings.js';
import { createDaemon, type Daemon } from '../daemon.js';
import { silentLogger } from '../logger.js';
import { startRedisServer, type RedisServerProcess } from '../kit/redis-server-process.js';
import { ApnsStandIn } from '../kit/apns-stand-in.js';
import { createTestAuthority } from '../kit/certificates.js';
import { FcmStandIn } from '../kit/fcm-stand-in.js';
import { PushStandIn } from '../kit/push-stand-in.js';
import { createUser, pushObjects, registerClient } from '../kit/rhoconnect-writes.js';
import { terminalProgress } from '../util/progress.js';

const TOPIC = 'com.example.demo';
const PROJECT = 'rhopush-demo';
const USER = 'alice';
const DEVICES = [
  { id: 'a1c0ffee00000000000000000000apple', label: 'iPhone', device_type: 'APPLE', device_pin: 'a1b2c3d4 e5f60718 293a4b5c 6d7e8f90 a1b2c3d4 e5f60718 293a4b5c 6d7e8f90', phone_id: 'iphone-of-alice' },
  { id: 'a1c0ffee000000000000000000000fcm', label: 'Pixel', device_type: 'ANDROID', device_push_type: 'fcm', device_pin: 'fcm-registration-token-of-alices-pixel-0001', phone_id: 'pixel-of-alice' },
  { id: 'a1c0ffee000000000000000000rcpush', label: 'Zebra TC52', device_type: 'ANDROID', device_push_type: 'rhoconnect_push', device_pin: 'rhoconnect-push-pin-of-alices-zebra', phone_id: 'zebra-of-alice' },
] as const;

/** The plugin writes the demo performs: two of alice's sources, then an app-partitioned one. */
const WRITES = [
  { what: `push_objects Product for ${USER}`, partition: USER, source: 'Product', objects: { '1': { name: 'iPhone 17', price: '999' } } },
  { what: `push_objects Contact for ${USER}`, partition: USER, source: 'Contact', objects: { '7': { name: 'Bob', phone: '555-0100' } } },
  { what: 'push_objects Catalog (app-partitioned)', partition: '__shared__', source: 'Catalog', objects: { '3': { name: 'Spring prices' } } },
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
  const lines: string[] = [];
  const print = (line = '') => {
    lines.push(line);
    (options.print ?? console.log)(line);
  };
  const started = performance.now();
  const at = () => `+${String(Math.round(performance.now() - started)).padStart(4)} ms`;
  const progress = terminalProgress('starting');
  const dir = mkdtempSync(join(tmpdir(), 'rhopush-demo-'));
  let redisServer: RedisServerProcess | undefined;
  let apns: ApnsStandIn | undefined;
  let fcm: FcmStandIn | undefined;
  let push: PushStandIn | undefined;
  let daemon: Daemon | undefined;
  let redis: Redis | undefined;
  let pings = 0;

  try {
    print('rhopush demo: a backend changes alice\'s data in RhoConnect\'s Redis; her three devices are told to sync.');
    print();
    progress.update(0, 5, 'redis-server');
    redisServer = await startRedisServer();
    progress.update(1, 5, 'APNs, FCM and RhoConnect Push stand-ins');
    const authority = await createTestAuthority('rhopush demo authority');
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const token = { keyId: 'DEMOKEY001', teamId: 'DEMOTEAM01', publicKey: key.publicKey };
    apns = await ApnsStandIn.start({ authority, token, topics: [TOPIC], relay: false });
    fcm = await FcmStandIn.start({ projectId: PROJECT, authority });
    push = await PushStandIn.start({ credentials: 'demo:secret' });
    writeFileSync(join(dir, 'AuthKey_DEMOKEY001.p8'), key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    writeFileSync(join(dir, 'ca.pem'), authority.cert);
    writeFileSync(join(dir, 'service-account.json'), JSON.stringify(fcm.serviceAccount()));
    const settingsFile = join(dir, 'settings.yml');
    writeFileSync(settingsFile, demoSettings(redisServer.port, apns, fcm, push));

    print('set up');
    print(`  redis-server     127.0.0.1:${redisServer.port} (private; rhopush turns on notify-keyspace-events K$g)`);
    print(`  APNs stand-in    https://127.0.0.1:${apns.port} (HTTP/2, token auth, topic ${TOPIC})`);
    print(`  FCM stand-in     https://127.0.0.1:${fcm.port} (HTTP v1 and OAuth, project ${PROJECT})`);
    print(`  Push stand-in    http://127.0.0.1:${push.port} (RhoConnect Push, basic auth)`);

    progress.update(2, 5, 'registering devices');
    redis = new Redis(redisServer.port, '127.0.0.1');
    await createUser(redis, USER);
    for (const { label: _label, ...client } of DEVICES) await registerClient(redis, USER, client);
    print(`  user ${USER}       ${DEVICES.map((d) => `${d.label} (${d.device_type}${'device_push_type' in d ? `/${d.device_push_type}` : ''})`).join(', ')}`);
    print(`  settings         Product, Contact: user partition, :push_notify: 'true'; Catalog: app partition`);

    progress.update(3, 5, 'starting rhopush');
    const settings = loadSettings(settingsFile, { environment: 'development', env: {} });
    daemon = createDaemon({
      settings,
      logger: silentLogger,
      http: false,
      queue: false,
      onDecision: (d, event, _node, key) => {
        if (d.rule === 'device-edit-mark' || d.rule === 'unparsed-key') return;
        const verdict = d.ping ? `ping (${d.rule})` : `no ping (${d.rule})`;
        print(`  ${at()}  captured ${event.toUpperCase()} ${key}  →  ${verdict}`);
      },
      onGroup: (g) => print(`  ${at()}  grouped: ${g.user} → [${g.sources.join(', ')}] in one ping (${g.changes} changes)`),
      onPing: () => (pings += 1),
    });
    await daemon.start();
    progress.update(4, 5, 'plugin writes');
    progress.end();
    print();
    print('plugin writes (push_objects, the commands RhoConnect sends)');
    for (const w of WRITES) {
      print(`  ${at()}  ${w.what}`);
      await pushObjects(redis, w.partition, w.source, w.objects);
    }

    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    const count = () => apns!.requests.length + fcm!.messages.length + push!.requests.length;
    while (count() < DEVICES.length || pings < 1) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await daemon.drain();

    print();
    print('device pushes received by the stand-ins');
    for (const r of apns.requests) {
      print(`  APNs             POST ${r.path.replace(/[0-9a-f]{56}(?=[0-9a-f]{8}$)/, '…')}  apns-push-type: ${r.headers['apns-push-type']}, apns-priority: ${r.headers['apns-priority']}  → ${r.status}`);
      print(`                   ${r.body}`);
    }
    for (const m of fcm.messages) {
      print(`  FCM              POST /v1/projects/${m.project}/messages:send  → ${m.status}`);
      print(`                   ${JSON.stringify({ ...m.message, token: shorten(String(m.message.token)) })}`);
    }
    for (const r of push.requests) {
      print(`  RhoConnect Push  POST /messageQueue/${shorten(r.pin)}  → ${r.status}`);
      print(`                   ${r.body}`);
    }
    const received = { apns: apns.delivered().length, fcm: fcm.delivered().length, rhoconnectPush: push.delivered().length };
    const ok = received.apns === 1 && received.fcm === 1 && received.rhoconnectPush === 1 && pings === 1;
    print();
    print(
      ok
        ? `done: ${WRITES.length} plugin writes → 2 changes for ${USER} (Catalog is app-partitioned) → 1 ping → 3 device pushes, in ${((performance.now() - started) / 1000).toFixed(1)} s.`
        : `incomplete: ${pings} ping(s), device pushes received: APNs ${received.apns}, FCM ${received.fcm}, RhoConnect Push ${received.rhoconnectPush} (expected 1 each).`,
    );
    return { lines, received, pings, ok };
  } finally {
    progress.end();
    await daemon?.stop();
    redis?.disconnect();
    await Promise.allSettled([apns?.close(), fcm?.close(), push?.close()]);
    await redisServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function shorten(token: string): string {
  return token.length > 12 ? `${token.slice(0, 6)}…${token.slice(-4)}` : token;
}

/** A RhoConnect settings.yml for the demo: RhoConnect's own push keys plus rhopush's endpoints. */
function demoSettings(redisPort: number, apns: ApnsStandIn, fcm: FcmStandIn, push: PushStandIn): string {
  return `:sources:
  Product:
    :partition_type: user
    :push_notify: 'true'
  Contact:
    :partition_type: user
    :push_notify: 'true'
  Catalog:
    :partition_type: app
    :push_notify: 'true'
:development:
  :redis: 127.0.0.1:${redisPort}
  :push_notify: 'false'
  :iphoneserver: gateway.sandbox.push.apple.com
  :fcm_project_id: ${PROJECT}
  :package_name: com.example.demo
  :push_server: ${push.url}/
  :rhopush:
    :delivery: live
    :coalesce_ms: 100
    :max_delay_ms: 1000
    :apns:
      :token_key: AuthKey_DEMOKEY001.p8
      :key_id: DEMOKEY001
      :team_id: DEMOTEAM01
      :topic: ${TOPIC}
      :address: ${apns.address}
      :port: ${apns.port}
      :ca: ca.pem
    :fcm:
      :service_account: service-account.json
      :address: ${fcm.address}
      :port: ${fcm.port}
      :ca: ca.pem
`;
}
