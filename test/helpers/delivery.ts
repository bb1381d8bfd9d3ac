// Helpers for delivery tests: credential files in a scratch directory, settings for the loopback
// stand-ins, a recording clock for retry delays, and polling with a deadline.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { parseSettings } from '../../src/config/load-settings.js';
import type { Settings } from '../../src/config/settings.js';
import type { RetryClock } from '../../src/push/retry.js';
import type { NormalizedPing } from '../../src/ping/ping-params.js';
import { normalizePingParams, type PingParams } from '../../src/ping/ping-params.js';
import type { DevicePushRequest, Platform } from '../../src/push/adapter.js';
import type { ClientRecord } from '../../src/store/rhoconnect-store.js';

export { ApnsStandIn } from '../../src/kit/apns-stand-in.js';
export { FcmStandIn } from '../../src/kit/fcm-stand-in.js';
export { PushStandIn } from '../../src/kit/push-stand-in.js';
export { createTestAuthority } from '../../src/kit/certificates.js';

/** A scratch directory removed after the suite. */
export function useScratchDir(): () => string {
  const dir = mkdtempSync(join(tmpdir(), 'rhopush-delivery-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

export function writeIn(dir: string, name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

export interface ApnsTokenKey {
  pem: string;
  publicKey: KeyObject;
  keyId: string;
  teamId: string;
}

/** An APNs provider token key (.p8: PKCS#8 P-256), made at run time. */
export function apnsTokenKey(keyId = 'KEY2RHOPSH', teamId = 'TEAM2RHOPS'): ApnsTokenKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey, keyId, teamId };
}

/** Settings for the `test` environment; `body` is the environment section's content, indented two spaces. */
export function testSettings(body: string, options: { redisPort?: number; file?: string } = {}): Settings {
  const text = `:sources:
  Product:
    :partition_type: user
    :push_notify: 'true'
:test:
  :redis: 127.0.0.1:${options.redisPort ?? 6390}
${body}`;
  return parseSettings(text, options.file ?? '<inline>', { environment: 'test', env: {} });
}

/** A clock whose sleeps are recorded and take no time. */
export function recordingClock(): { clock: RetryClock; sleeps: number[] } {
  let now = 1_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    clock: {
      now: () => now,
      sleep: async (ms) => {
        sleeps.push(ms);
        now += ms;
      },
      random: () => 0.5,
    },
  };
}

export function ping(params: Partial<PingParams> = {}): NormalizedPing {
  return normalizePingParams({ user_id: 'alice', sources: ['Product'], ...params } as PingParams);
}

export function pushRequest(platform: Platform, token: string, p: NormalizedPing, client: Partial<ClientRecord> = {}): DevicePushRequest {
  return { platform, user: 'alice', client: { id: `client-${token.slice(0, 8)}`, device_pin: token, ...client }, token, ping: p };
}

/** A 64-hex-digit APNs device token. */
export function hexToken(n: number): string {
  return n.toString(16).padStart(64, '0');
}

/** Polls until `condition` holds, failing after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
