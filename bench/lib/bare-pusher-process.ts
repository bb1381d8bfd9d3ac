// Latency baseline: the least a push-on-write service can do on this machine. A bare ioredis
// psubscribe on md_size keys that, for every event, sends one APNs push through @parse/node-apn at
// once: no grouping, no device lookup (the token is computed from the login), no bookkeeping.
// Usage: node --import tsx bench/lib/bare-pusher-process.ts <redisPort> <apnsPort> <dir> <keyId> <teamId>
// Prints "ready" once subscribed; stops on SIGTERM.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import apn from '@parse/node-apn';
import { Redis } from 'ioredis';
import { keyspacePatterns, parseKey } from '../../src/store/keys.js';
import { CREDENTIAL_FILES, hexToken } from '../../src/kit/index.js';
import { BENCH_TOPIC } from './devices.js';

const [redisPort, apnsPort, dir, keyId, teamId] = process.argv.slice(2) as [string, string, string, string, string];
const provider = new apn.Provider({
  token: { key: readFileSync(join(dir, CREDENTIAL_FILES.apnsKey), 'utf8'), keyId, teamId },
  address: '127.0.0.1',
  port: Number(apnsPort),
  ca: [readFileSync(join(dir, CREDENTIAL_FILES.ca), 'utf8')],
  production: false,
});
const sub = new Redis(Number(redisPort), '127.0.0.1');
sub.on('pmessage', (_pattern: string, channel: string, event: string) => {
  if (event !== 'incrby') return;
  const parsed = parseKey(channel.slice('__keyspace@0__:'.length));
  if (parsed.kind !== 'md_size') return;
  const n = new apn.Notification();
  n.rawPayload = { aps: { 'content-available': 1 }, do_sync: [parsed.source] };
  n.topic = BENCH_TOPIC;
  n.pushType = 'background';
  n.priority = 5;
  void provider.send(n, hexToken(Number(parsed.partition.slice('user'.length))));
});
await sub.psubscribe(keyspacePatterns(0)[0]!);
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  sub.disconnect();
  void provider.shutdown().finally(() => process.exit(0));
});
