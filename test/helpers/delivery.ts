// Shared by the delivery tests: a scratch directory per suite, a recording clock for retry delays,
// and the ping and device push requests the adapters take.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { RetryClock } from '../../src/push/retry.js';
import type { NormalizedPing } from '../../src/ping/ping-params.js';
import { normalizePingParams, type PingParams } from '../../src/ping/ping-params.js';
import type { DevicePushRequest, Platform } from '../../src/push/adapter.js';
import type { ClientRecord } from '../../src/store/rhoconnect-store.js';

/** A scratch directory removed after the suite. */
export function useScratchDir(): () => string {
  const dir = mkdtempSync(join(tmpdir(), 'rhopush-delivery-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
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
