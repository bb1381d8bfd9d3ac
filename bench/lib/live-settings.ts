// settings.yml for a rhopush that delivers live to the loopback APNs stand-in: token auth with a
// key made at run time, the stand-in's CA trusted through `:apns: :ca:`.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_TOPIC } from './devices.js';

export interface ApnsTokenKey {
  pem: string;
  publicKey: KeyObject;
  keyId: string;
  teamId: string;
}

/** A .p8-style APNs provider token key (PKCS#8 P-256). */
export function apnsTokenKey(keyId = 'BENCHKEY01', teamId = 'BENCHTEAM1'): ApnsTokenKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey, keyId, teamId };
}

export interface LiveSettingsOptions {
  redisPort: number;
  sources: number;
  listenPort: number;
  apns: { port: number; ca: string; key: ApnsTokenKey };
  coalesceMs?: number;
  maxDelayMs?: number;
  logLevel?: string;
  apiToken?: string;
}

/** A scratch directory with settings.yml, AuthKey.p8 and ca.pem; `remove()` deletes it. */
export interface SettingsDir {
  dir: string;
  file: string;
  write(options: LiveSettingsOptions): string;
  remove(): void;
}

export function settingsDir(): SettingsDir {
  const dir = mkdtempSync(join(tmpdir(), 'rhopush-bench-'));
  const file = join(dir, 'settings.yml');
  return {
    dir,
    file,
    write(o) {
      writeFileSync(join(dir, 'AuthKey.p8'), o.apns.key.pem);
      writeFileSync(join(dir, 'ca.pem'), o.apns.ca);
      writeFileSync(file, liveSettingsYaml(o));
      return file;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Environment section `bench`; Source0 … SourceN-1 user-partitioned with push_notify on. */
export function liveSettingsYaml(o: LiveSettingsOptions): string {
  const sources = Array.from({ length: o.sources }, (_, i) => `  Source${i}:\n    :partition_type: user\n    :push_notify: 'true'\n`).join('');
  return `:sources:
${sources}:bench:
  :redis: 127.0.0.1:${o.redisPort}
  :push_notify: 'false'
${o.apiToken ? `  :api_token: ${o.apiToken}\n` : ''}  :rhopush:
    :listen: 127.0.0.1:${o.listenPort}
    :log_level: ${o.logLevel ?? 'info'}
    :coalesce_ms: ${o.coalesceMs ?? 100}
    :max_delay_ms: ${o.maxDelayMs ?? 1000}
    :delivery: live
    :apns:
      :token_key: AuthKey.p8
      :key_id: ${o.apns.key.keyId}
      :team_id: ${o.apns.key.teamId}
      :topic: ${BENCH_TOPIC}
      :address: 127.0.0.1
      :port: ${o.apns.port}
      :ca: ca.pem
`;
}
