// 4. Dispatch: N device pushes to one loopback HTTP/2 APNs stand-in (its own process, announcing
// APNs' 1000 concurrent streams per connection, checking provider tokens) through
//  - rhopush's APNs adapter (src/push/apns.ts), settings defaults: N sends at once, as PingJob
//    issues them; the adapter keeps within the server's stream limit itself;
//  - @parse/push-adapter (Parse Server's push adapter, APNs through @parse/node-apn);
//  - @parse/node-apn's Provider used directly;
//  - the floor: a minimal client writing the same requests (headers, body, one provider-token
//    header string) on raw node:http2 sessions, as many connections and streams per connection as
//    rhopush uses, counting answers and nothing else. What sending costs on this machine.
// The two baselines send one notification to a list of tokens per call and open every stream of the
// list at once: a list longer than the server's limit loses pushes (test/push-apns-fanout.test.ts),
// so they get the tokens in lists of 1000, one list after the other: the simplest use that delivers
// everything. Every run checks at the stand-in that all N arrived.
// Two network conditions: loopback as is (answers at once; throughput is then bounded by the
// stand-in's own work per request), and every answer 50 ms late, as over a real network to Apple,
// where throughput depends on how many pushes a sender keeps in flight.
// Figures: pushes per second, and CPU time per push in the sending process.
import { fork } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomUUID, sign } from 'node:crypto';
import http2, { type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import apn from '@parse/node-apn';
import { ParsePushAdapter } from '@parse/push-adapter';
import { loadSettings } from '../src/config/load-settings.js';
import { silentLogger } from '../src/logger.js';
import { normalizePingParams } from '../src/ping/ping-params.js';
import { ApnsAdapter, apnsNotification } from '../src/push/apns/apns.js';
import { syncCollapseId } from '../src/push/collapse.js';
import type { Settings } from '../src/config/settings.js';
import { hexToken, type ApnsTokenKey } from '../src/kit/index.js';
import { BENCH_TOPIC } from './lib/devices.js';
import { figure, type BenchContext, type Figure } from './lib/harness.js';
import { settingsDir } from './lib/live-rig.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const STREAM_LIMIT = 1000;
const PAYLOAD = { aps: { 'content-available': 1 }, do_sync: ['Source0'] };

interface StandInProcess {
  port: number;
  ca: string;
  key: Pick<ApnsTokenKey, 'pem' | 'keyId' | 'teamId'>;
  /** Requests received since the last call. */
  count(): Promise<number>;
  /** Answer every request this long after it arrived (0: at once). */
  answerDelay(ms: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startStandInProcess(): Promise<StandInProcess> {
  const child = fork(join(HERE, 'lib', 'apns-stand-in-process.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ port: number; ca: string; key: StandInProcess['key'] }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as never));
    child.once('exit', (code) => reject(new Error(`APNs stand-in process exited with ${code}`)));
  });
  return {
    ...ready,
    count: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve((m as { count: number }).count));
        child.send({ count: true });
      }),
    answerDelay: (ms) =>
      new Promise((resolve) => {
        child.once('message', () => resolve());
        child.send({ answerDelayMs: ms });
      }),
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ stop: true });
      await exited;
    },
  };
}

/** One way of sending: `send` pushes to every token given and resolves when all are answered. */
interface Sender {
  send(tokens: string[]): Promise<number>;
  close(): Promise<void>;
}

export function rhopushSender(settingsFile: string): Sender {
  const settings = loadSettings(settingsFile, { environment: 'bench' });
  const adapter = new ApnsAdapter(() => settings, silentLogger);
  const ping = normalizePingParams({ user_id: 'user0', sources: ['Source0'] });
  return {
    send: async (tokens) => {
      const results = await Promise.all(
        tokens.map((token, i) =>
          adapter.send({
            platform: 'apple',
            user: `user${i}`,
            client: { id: `client${i}`, device_type: 'APPLE', device_pin: token, device_app_id: BENCH_TOPIC },
            token,
            ping,
          }),
        ),
      );
      return results.filter((r) => r.outcome === 'sent').length;
    },
    close: () => adapter.close(),
  };
}

export function parsePushAdapterSender(s: StandInProcess): Sender {
  const adapter = new ParsePushAdapter({
    ios: {
      token: { key: s.key.pem, keyId: s.key.keyId, teamId: s.key.teamId },
      topic: BENCH_TOPIC,
      production: false,
      address: '127.0.0.1',
      port: s.port,
      ca: [s.ca],
    },
  });
  return {
    send: async (tokens) => {
      let sent = 0;
      for (let i = 0; i < tokens.length; i += STREAM_LIMIT) {
        const installations = tokens
          .slice(i, i + STREAM_LIMIT)
          .map((deviceToken) => ({ deviceType: 'ios', deviceToken, appIdentifier: BENCH_TOPIC }));
        const results = (await adapter.send({ data: PAYLOAD, push_type: 'background', priority: 5 }, installations)) as Array<{
          transmitted: boolean;
        }>;
        sent += results.filter((r) => r.transmitted).length;
      }
      return sent;
    },
    close: async () => {
      for (const sender of Object.values(
        (adapter as unknown as { senderMap: Record<string, { providers: Array<{ shutdown(): Promise<void> }> }> }).senderMap,
      )) {
        await Promise.all(sender.providers.map((p) => p.shutdown()));
      }
    },
  };
}

export function nodeApnSender(s: StandInProcess): Sender {
  const provider = new apn.Provider({
    token: { key: s.key.pem, keyId: s.key.keyId, teamId: s.key.teamId },
    address: '127.0.0.1',
    port: s.port,
    ca: [s.ca],
    production: false,
  });
  const notification = new apn.Notification();
  notification.rawPayload = PAYLOAD;
  notification.topic = BENCH_TOPIC;
  notification.pushType = 'background';
  notification.priority = 5;
  return {
    send: async (tokens) => {
      let sent = 0;
      for (let i = 0; i < tokens.length; i += STREAM_LIMIT)
        sent += (await provider.send(notification, tokens.slice(i, i + STREAM_LIMIT))).sent.length;
      return sent;
    },
    close: () => provider.shutdown(),
  };
}

/**
 * The floor: the same APNs requests as rhopush's (headers, body, provider-token header reused) on
 * one raw http2 session per connection, at most `streams` in flight on each (the least of rhopush's
 * `:max_concurrent_streams:` and the server's SETTINGS), the rest queued; only answers are counted.
 */
export function floorSender(s: StandInProcess, settings: Settings): Sender {
  const { connections, maxConcurrentStreams } = settings.rhopush.apns;
  const ping = normalizePingParams({ user_id: 'user0', sources: ['Source0'] });
  const notification = apnsNotification(ping);
  const body = JSON.stringify(notification.payload);
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const unsigned = `${b64({ alg: 'ES256', kid: s.key.keyId })}.${b64({ iss: s.key.teamId, iat: Math.floor(Date.now() / 1000) })}`;
  const signature = sign('sha256', Buffer.from(unsigned), { key: createPrivateKey(s.key.pem), dsaEncoding: 'ieee-p1363' });
  const authorization = `bearer ${unsigned}.${signature.toString('base64url')}`;
  const pushType = notification.pushType;
  const priority = String(notification.priority);
  const collapseId = syncCollapseId(ping, BENCH_TOPIC);
  const sessions: Array<{ session: ClientHttp2Session; limit: number; inFlight: number; ready: Promise<void> }> = [];
  for (let i = 0; i < connections; i++) {
    const session = http2.connect(`https://127.0.0.1:${s.port}`, { ca: [s.ca] });
    session.on('error', () => undefined);
    const link = { session, limit: 1, inFlight: 0, ready: Promise.resolve() };
    // A session that closes before its SETTINGS does not hold the run up: its requests then fail.
    link.ready = new Promise((resolve) => {
      session.once('remoteSettings', (settings) => {
        link.limit = Math.min(maxConcurrentStreams, settings.maxConcurrentStreams ?? maxConcurrentStreams);
        resolve();
      });
      session.once('close', resolve);
    });
    sessions.push(link);
  }
  return {
    send: async (tokens) => {
      await Promise.all(sessions.map((l) => l.ready));
      return new Promise<number>((resolve) => {
        let next = 0;
        let answered = 0;
        let ok = 0;
        const pump = () => {
          for (const link of sessions) {
            while (link.inFlight < link.limit && next < tokens.length) {
              const headers: OutgoingHttpHeaders = {
                ':method': 'POST',
                ':path': `/3/device/${tokens[next++]!}`,
                authorization,
                'apns-push-type': pushType,
                'apns-priority': priority,
                'apns-topic': BENCH_TOPIC,
                'apns-collapse-id': collapseId,
                'apns-id': randomUUID(),
              };
              link.inFlight++;
              const stream = link.session.request(headers);
              stream.on('response', (h) => {
                if (h[':status'] === 200) ok++;
              });
              stream.on('error', () => undefined);
              stream.on('close', () => {
                link.inFlight--;
                if (++answered === tokens.length) resolve(ok);
                else pump();
              });
              stream.resume();
              stream.end(body);
            }
          }
        };
        pump();
      });
    },
    close: async () => {
      await Promise.all(
        sessions.map((l) =>
          l.session.closed || l.session.destroyed ? undefined : new Promise<void>((resolve) => l.session.close(resolve)),
        ),
      );
    },
  };
}

interface Measured {
  rate: number;
  cpuUsPerPush: number;
  lost: number;
}

/** Answer delays measured: loopback as is, and a round trip to Apple over a real network. */
const CONDITIONS = [
  { name: '', delayMs: 0, what: 'loopback, answered at once' },
  { name: '_rtt50', delayMs: 50, what: 'every answer 50 ms late (round trip to Apple)' },
];

export async function benchDispatch(ctx: BenchContext): Promise<Figure[]> {
  const n = ctx.quick ? 2000 : 20_000;
  const tokens = Array.from({ length: n }, (_, i) => hexToken(i + 1));
  const warm = tokens.slice(0, STREAM_LIMIT);
  const standIn = await startStandInProcess();
  const dir = settingsDir();
  const key = { ...standIn.key, publicKey: createPublicKey(standIn.key.pem) };
  const file = dir.write({ redisPort: 6379, sources: 1, listenPort: 0, apns: { address: '127.0.0.1', port: standIn.port }, key });
  const settings = loadSettings(file, { environment: 'bench' });
  const senders: Record<string, () => Sender> = {
    rhopush: () => rhopushSender(file),
    floor: () => floorSender(standIn, settings),
    'parse-push-adapter': () => parsePushAdapterSender(standIn),
    'node-apn': () => nodeApnSender(standIn),
  };
  const results = new Map<string, Measured[]>();
  try {
    for (const condition of CONDITIONS) {
      await standIn.answerDelay(condition.delayMs);
      for (let run = 0; run < ctx.runs; run++) {
        for (const [name, make] of Object.entries(senders)) {
          const sender = make();
          try {
            // Warm-up (connection, provider token, JIT), then the measured fan-out.
            await sender.send(warm);
            await standIn.count();
            const cpu = process.cpuUsage();
            const started = performance.now();
            const sent = await sender.send(tokens);
            const seconds = (performance.now() - started) / 1000;
            const used = process.cpuUsage(cpu);
            const arrived = await standIn.count();
            const m = { rate: sent / seconds, cpuUsPerPush: (used.user + used.system) / n, lost: n - Math.min(sent, arrived) };
            const key = `${name}${condition.name}`;
            results.set(key, [...(results.get(key) ?? []), m]);
            ctx.log(
              `dispatch ${key} run ${run + 1}: ${Math.round(m.rate)} pushes/s, ${m.cpuUsPerPush.toFixed(0)} µs CPU/push, lost ${m.lost}`,
            );
          } finally {
            await sender.close();
          }
        }
      }
    }
  } finally {
    await standIn.stop();
    dir.remove();
  }
  const r = (name: string, pick: (m: Measured) => number) => results.get(name)!.map(pick);
  const figures: Figure[] = [];
  for (const c of CONDITIONS) {
    const setup = `${n} pushes, ${c.what}, server limit ${STREAM_LIMIT} streams/connection`;
    const k = (sender: string) => `${sender}${c.name}`;
    figures.push(
      figure(
        `dispatch.rate${c.name}`,
        'pushes/s',
        r(k('rhopush'), (m) => m.rate),
        r(k('parse-push-adapter'), (m) => m.rate),
        `${setup}; baseline: @parse/push-adapter; target ≥ ${c.delayMs ? 1.5 : 1.2}×`,
      ),
      figure(
        `dispatch.rate_vs_node_apn${c.name}`,
        'pushes/s',
        r(k('rhopush'), (m) => m.rate),
        r(k('node-apn'), (m) => m.rate),
        `${setup}; baseline: @parse/node-apn Provider used directly`,
      ),
      figure(
        `dispatch.cpu_per_push${c.name}`,
        'µs',
        r(k('rhopush'), (m) => m.cpuUsPerPush),
        r(k('parse-push-adapter'), (m) => m.cpuUsPerPush),
        `${c.what}; CPU time of the sending process per push; baseline: @parse/push-adapter; target ≤ 1.0×`,
      ),
      figure(
        `dispatch.floor${c.name}`,
        'pushes/s',
        r(k('floor'), (m) => m.rate),
        null,
        `${setup}; the floor client's own rate: same requests on raw node:http2 sessions, rhopush's connections and stream limit`,
      ),
      figure(
        `dispatch.cpu_per_push_floor${c.name}`,
        'µs',
        r(k('floor'), (m) => m.cpuUsPerPush),
        null,
        `${c.what}; the floor client's CPU time per push (sending process)`,
      ),
      figure(
        `dispatch.rate_vs_floor${c.name}`,
        'pushes/s',
        r(k('rhopush'), (m) => m.rate),
        r(k('floor'), (m) => m.rate),
        `${setup}; baseline: the floor client`,
      ),
      figure(
        `dispatch.cpu_per_push_vs_floor${c.name}`,
        'µs',
        r(k('rhopush'), (m) => m.cpuUsPerPush),
        r(k('floor'), (m) => m.cpuUsPerPush),
        `${c.what}; CPU time per push; baseline: the floor client; target ≤ 1.15×`,
      ),
      figure(
        `dispatch.lost${c.name}`,
        'pushes',
        r(k('rhopush'), (m) => m.lost),
        r(k('parse-push-adapter'), (m) => m.lost),
        `${c.what}; pushes not delivered (must be 0); baseline: @parse/push-adapter`,
      ),
    );
  }
  return figures;
}
