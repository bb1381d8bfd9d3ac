// Shared by the entry-point tests (REST, Resque, library): a push adapter that records every device
// push, and a daemon built on a test Redis with it.
import type { Redis } from 'ioredis';
import type { Settings } from '../../src/config/settings.js';
import { createDaemon, type Daemon, type DaemonOptions } from '../../src/daemon.js';
import type { DevicePushRequest, PushAdapter } from '../../src/push/adapter.js';
import type { PushAdapters } from '../../src/push/registry.js';
import { buildSettings, createUser, registerClient, type YamlMap } from '../../src/kit/index.js';

export const ADMIN_TOKEN = 'test-admin-token';

/** Records device pushes. A push whose token starts with `fail-` fails; `hold()` parks pushes until released. */
export class RecordingAdapters implements PushAdapters {
  readonly pushes: DevicePushRequest[] = [];
  private holding = false;
  private readonly parked: Array<() => void> = [];
  /** Pushes currently being sent (parked ones included). */
  active = 0;
  maxActive = 0;

  adapterFor(): PushAdapter {
    return {
      send: async (request) => {
        this.active += 1;
        this.maxActive = Math.max(this.maxActive, this.active);
        try {
          this.pushes.push(request);
          if (this.holding) await new Promise<void>((resolve) => this.parked.push(resolve));
          if (request.token.startsWith('fail-')) return { outcome: 'failed' as const, reason: `device ${request.token} refused the push` };
          return { outcome: 'sent' as const };
        } finally {
          this.active -= 1;
        }
      },
      close: async () => undefined,
    };
  }

  async close(): Promise<void> {
    this.release();
  }

  hold(): void {
    this.holding = true;
  }

  get parkedCount(): number {
    return this.parked.length;
  }

  /** Lets `count` parked pushes go (all by default); with no count, stops holding new ones too. */
  release(count?: number): void {
    if (count === undefined) this.holding = false;
    const n = count ?? this.parked.length;
    for (const resolve of this.parked.splice(0, n)) resolve();
  }

  /** The pushes of one user, in order. */
  of(user: string): DevicePushRequest[] {
    return this.pushes.filter((p) => p.user === user);
  }

  reset(): void {
    this.pushes.length = 0;
    this.maxActive = this.active;
  }
}

/** Settings for a test Redis with the admin token, log delivery and an API on a free port; `rhopush`: more `:rhopush:` keys. */
export function entrySettings(port: number, rhopush: YamlMap = {}): Settings {
  return buildSettings({ redis: port, apiToken: ADMIN_TOKEN, rhopush });
}

export async function startDaemon(
  settings: Settings,
  options: Partial<DaemonOptions> = {},
): Promise<{ daemon: Daemon; adapters: RecordingAdapters; url: string }> {
  const adapters = (options.adapters as RecordingAdapters | undefined) ?? new RecordingAdapters();
  const daemon = createDaemon({ settings, capture: false, ...options, adapters });
  await daemon.start();
  const address = daemon.apiAddress;
  return { daemon, adapters, url: address ? `http://127.0.0.1:${address.port}` : '' };
}

/** A user with one iPhone and one Android device (FCM), each with its own token. */
export async function userWithDevices(redis: Redis, login: string, fields: Record<string, string> = {}): Promise<void> {
  await createUser(redis, login, fields);
  await registerClient(redis, login, {
    id: `${login}-ios`,
    device_type: 'APPLE',
    device_pin: `ios-token-${login}-0123456789`,
    phone_id: `phone-${login}-1`,
  });
  await registerClient(redis, login, {
    id: `${login}-android`,
    device_type: 'ANDROID',
    device_push_type: 'fcm',
    device_pin: `fcm-token-${login}-0123456789`,
    phone_id: `phone-${login}-2`,
  });
}
