// PingJob: users → clients → dedupe → platform, exactly as RhoConnect's PingJob.perform, with a
// result that lists every device push instead of only raising the joined errors.
import type { Logger } from 'pino';
import type { RhoconnectStore, ClientRecord } from '../store/rhoconnect-store.js';
import { platformOf, pushToken, shortenToken, type DevicePushResult, type Platform, type PushAdapter } from '../push/adapter.js';
import { newPingId } from '../history/ping-record.js';
import { asNormalized, type NormalizedPing, type PingParams } from './ping-params.js';
import { clip, firstNames, listNames } from '../util/log-text.js';

/** Where a ping came from (logs and metrics). */
export type PingTrigger = 'auto' | 'rest' | 'queue' | 'library' | 'cli' | 'catch-up';

export interface PingResult {
  /** The ping's id: its record is at GET /rc/v1/pings/<id> (while history is kept). */
  id: string;
  users: string[];
  sources: string[];
  trigger: PingTrigger;
  pushes: DevicePushResult[];
  /** Adapter failures, one message per failed device push (RhoConnect raises them joined). */
  errors: string[];
  /** Users skipped because they are unknown or have no clients. */
  skippedUsers: string[];
}

export class PingError extends Error {
  constructor(readonly result: PingResult) {
    super(result.errors.join('\n'));
    this.name = 'PingError';
  }
}

export interface PingJobHooks {
  /** Called once per finished ping (logging, metrics). */
  onPing?: (result: PingResult, durationMs: number) => void;
}

export class PingJob {
  constructor(
    private readonly store: RhoconnectStore,
    private readonly adapterFor: (platform: Platform) => PushAdapter,
    private readonly logger: Logger,
    private readonly hooks: PingJobHooks = {},
  ) {}

  /** Runs a ping. Resolves with every device push; failures are in `errors`, never thrown. */
  async run(params: PingParams | NormalizedPing, trigger: PingTrigger, id: string = newPingId()): Promise<PingResult> {
    const started = performance.now();
    const ping = asNormalized(params);
    const result: PingResult = { id, users: ping.users, sources: ping.sources, trigger, pushes: [], errors: [], skippedUsers: [] };
    // Dedupe across every user of the call: a device registered under two users is pinged once.
    const seenPhones = new Set<string>();
    const seenPins = new Set<string>();
    const sends: Promise<void>[] = [];
    // Devices of platforms rhopush cannot push to, by platform name: logged once per call.
    const unsupported = new Map<string, string[]>();

    for (const user of ping.users) {
      // Both reads at once: one round trip instead of two (the clients of an unknown user are not used).
      const [exists, found] = await Promise.all([this.store.userExists(user), this.store.userClients(user)]);
      const clients = exists ? found : undefined;
      if (!clients || clients.length === 0) {
        result.skippedUsers.push(user);
        continue;
      }
      for (const client of clients) {
        const device = this.select(client, seenPhones, seenPins);
        if (!device) continue;
        const { platform, type } = platformOf(client);
        const pin = client.device_pin ?? '';
        const token = platform ? pushToken(platform, pin) : pin;
        const entry: DevicePushResult = {
          platform: platform ?? type,
          user,
          clientId: client.id,
          token: shortenToken(token),
          outcome: 'dropped',
        };
        result.pushes.push(entry);
        if (!platform) {
          entry.reason = `unsupported platform '${type}'`;
          const clientsOf = unsupported.get(type ?? '') ?? [];
          clientsOf.push(client.id);
          unsupported.set(type ?? '', clientsOf);
          continue;
        }
        // Every device is tried; failures are collected and reported together at the end.
        sends.push(
          this.adapterFor(platform)
            .send({ platform, user, client, token, ping })
            .then(
              (outcome) => Object.assign(entry, outcome),
              (err: Error) => Object.assign(entry, { outcome: 'failed', reason: err.message }),
            )
            .then(() => {
              if (entry.outcome === 'failed') result.errors.push(entry.reason ?? `${platform} push failed`);
            }),
        );
      }
    }
    this.logSkipped(result.skippedUsers, unsupported);
    await Promise.all(sends);
    this.hooks.onPing?.(result, performance.now() - started);
    return result;
  }

  /**
   * RhoConnect logs a line per skipped user and per dropped device; a call naming thousands of them
   * gets one line each here, with the count and the first few names (each cut to a bounded length).
   */
  private logSkipped(users: string[], unsupported: Map<string, string[]>): void {
    if (users.length === 1) {
      const user = clip(users[0]!);
      this.logger.info({ user }, `Skipping ping for unknown user '${user}' or '${user}' has no registered clients...`);
    } else if (users.length > 1) {
      this.logger.info(
        { skippedUsers: users.length, users: firstNames(users) },
        `Skipping ping for ${users.length.toLocaleString('en-US')} unknown users or users without registered clients: ${listNames(users)}`,
      );
    }
    for (const [type, clients] of unsupported) {
      const platform = clip(type);
      this.logger.info(
        { platform, devices: clients.length, clients: firstNames(clients) },
        `Dropping ping request for unsupported platform '${platform}'${clients.length > 1 ? ` (${clients.length.toLocaleString('en-US')} devices)` : ''}`,
      );
    }
  }

  /** RhoConnect's registration and dedupe rules; undefined when the client gets no push. */
  private select(client: ClientRecord, seenPhones: Set<string>, seenPins: Set<string>): true | undefined {
    if (!client.device_type) {
      this.logger.debug({ client: clip(client.id) }, `Skipping ping for non-registered client_id '${clip(client.id)}'...`);
      return undefined;
    }
    if (client.phone_id) {
      const combined = client.phone_id + (client.device_app_id ?? '');
      if (seenPhones.has(combined)) return this.duplicate(client);
      seenPhones.add(combined);
      return true;
    }
    if (client.device_pin) {
      if (seenPins.has(client.device_pin)) return this.duplicate(client);
      seenPins.add(client.device_pin);
      return true;
    }
    this.logger.debug({ client: clip(client.id) }, `Skipping ping for non-registered client_id '${clip(client.id)}'...`);
    return undefined;
  }

  private duplicate(client: ClientRecord): undefined {
    this.logger.debug(
      { client: clip(client.id) },
      `Dropping ping request for client_id '${clip(client.id)}' because it's already in user's device pin or phone_id list.`,
    );
    return undefined;
  }
}
