// Shared by the scale and fault tests: their settings, a record of which (user, source) pairs got
// pinged, and waiting until a daemon has pinged everything it captured.
import type { Settings } from '../../src/config/settings.js';
import type { Daemon } from '../../src/daemon.js';
import { buildSettings, settingsYaml, type SettingsOptions } from '../../src/kit/index.js';

/** Which pairs were pinged, and how often. */
export class PingRecord {
  readonly counts = new Map<string, number>();

  add(users: string[], sources: string[]): void {
    for (const u of users) for (const s of sources) this.counts.set(pair(u, s), (this.counts.get(pair(u, s)) ?? 0) + 1);
  }

  has(user: string, source: string): boolean {
    return this.counts.has(pair(user, source));
  }

  pairs(): string[] {
    return [...this.counts.keys()].sort();
  }
}

export function pair(user: string, source: string): string {
  return `${user}/${source}`;
}

export interface ScaleSettingsOptions {
  redis: string[];
  cluster?: boolean;
  leaseMs?: number;
}

/** Product and Contact ping, Note does not, Catalog is app-partitioned; short grouping, leases and canaries. */
function scaleOptions(o: ScaleSettingsOptions): SettingsOptions {
  return {
    redis: o.redis,
    cluster: o.cluster ?? false,
    apiToken: 'test-admin-token',
    coalesceMs: 20,
    maxDelayMs: 100,
    rhopush: { lease_ms: o.leaseMs ?? 900, canary_interval_ms: 200, canary_timeout_ms: 600 },
  };
}

export function scaleSettingsYaml(o: ScaleSettingsOptions): string {
  return settingsYaml(scaleOptions(o));
}

export function scaleSettings(o: ScaleSettingsOptions): Settings {
  return buildSettings(scaleOptions(o));
}

/**
 * Waits until everything captured or caught up so far has been pinged and recorded: catch-up done,
 * a canary round trip on every captured node, the grouping window flushed, pings finished. A node
 * can drop (and its lease lapse) on a busy machine while this runs: then it starts over.
 */
export async function settle(daemon: Daemon, attempts = 5): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await daemon.supervisor!.caughtUp();
      await daemon.capture!.barrier(2000);
      break;
    } catch (err) {
      if (i >= attempts) throw err;
    }
  }
  daemon.window.flushAll();
  await daemon.drain();
}
