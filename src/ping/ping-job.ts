// PingJob: users → clients → dedupe → platform, exactly as RhoConnect's PingJob.perform, with a
// result that lists every device push instead of only raising the joined errors.
import type { Logger } from 'pino';
import type { RhoconnectStore, ClientRecord } from '../store/rhoconnect-store.js';
import type { PushAdapters } from '../push/registry.js';
import { platformOf, pushToken, shortenToken, type DevicePushRequest, type DevicePushResult } from '../push/adapter.js';
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

/** One ping of a batch. */
export interface PingRequest {
  ping: NormalizedPing;
  trigger: PingTrigger;
  id: string;
}

export class PingJob {
  constructor(
    private readonly store: RhoconnectStore,
    private readonly adapters: PushAdapters,
    private readonly logger: Logger,
    private readonly hooks: PingJobHooks = {},
  ) {}

  /** Runs a ping. Resolves with every device push; failures are in `errors`, never thrown. */
  async run(params: PingParams | NormalizedPing, trigger: PingTrigger, id: string = newPingId()): Promise<PingResult> {
    const [result] = await this.runMany([{ ping: asNormalized(params), trigger, id }]);
    return result!;
  }

  /**
   * Runs several pings at once, each as `run` would: its own devices, deduplication, result and log
   * line, resolved as soon as its own pushes are done. What they read is read together: every user's
   * clients in a few commands, every device's dead-token record in one lookup. Rejects (all of them)
   * only when users and clients cannot be read.
   */
  async runMany(requests: readonly PingRequest[]): Promise<PingResult[]> {
    const started = performance.now();
    const clientsOf = await this.store.usersClients([...new Set(requests.flatMap((r) => r.ping.users))]);
    const planned = requests.map((r) => this.plan(r, clientsOf));
    await this.adapters.screen?.(planned.flatMap((p) => p.sends.map((s) => s.request)));
    return Promise.all(
      planned.map(async ({ result, sends }) => {
        await Promise.all(sends.map((s) => this.send(s.request, s.entry, result)));
        this.hooks.onPing?.(result, performance.now() - started);
        return result;
      }),
    );
  }

  /** A ping's result with its devices chosen (RhoConnect's order, registration and dedupe rules), and the pushes to send. */
  private plan({ ping, trigger, id }: PingRequest, clientsOf: ReadonlyMap<string, ClientRecord[] | undefined>) {
    const result: PingResult = { id, users: ping.users, sources: ping.sources, trigger, pushes: [], errors: [], skippedUsers: [] };
    const sends: Array<{ request: DevicePushRequest; entry: DevicePushResult }> = [];
    // Dedupe across every user of the call: a device registered under two users is pinged once.
    const seenPhones = new Set<string>();
    const seenPins = new Set<string>();
    // Devices of platforms rhopush cannot push to, by platform name: logged once per call.
    const unsupported = new Map<string, string[]>();
    for (const user of ping.users) {
      const clients = clientsOf.get(user);
      if (!clients || clients.length === 0) {
        result.skippedUsers.push(user);
        continue;
      }
      for (const client of clients) {
        if (!this.select(client, seenPhones, seenPins)) continue;
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
          const clientsOfType = unsupported.get(type ?? '') ?? [];
          clientsOfType.push(client.id);
          unsupported.set(type ?? '', clientsOfType);
          continue;
        }
        sends.push({ request: { platform, user, client, token, ping }, entry });
      }
    }
    this.logSkipped(result.skippedUsers, unsupported);
    return { result, sends };
  }

  /** Every device is tried; failures are collected and reported together at the end. */
  private send(request: DevicePushRequest, entry: DevicePushResult, result: PingResult): Promise<void> {
    return this.adapters
      .adapterFor(request.platform)
      .send(request)
      .then(
        (outcome) => Object.assign(entry, outcome),
        (err: Error) => Object.assign(entry, { outcome: 'failed', reason: err.message }),
      )
      .then(() => {
        if (entry.outcome === 'failed') result.errors.push(entry.reason ?? `${request.platform} push failed`);
      });
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
