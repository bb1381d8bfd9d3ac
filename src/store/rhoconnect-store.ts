import { keys } from './keys.js';
import { isCluster, type StoreClient } from './store-connection.js';

/** The client fields PingJob reads (RhoConnect's `client:<id>:<field>` strings). */
export const CLIENT_FIELDS = [
  'device_type',
  'device_push_type',
  'device_pin',
  'device_port',
  'device_app_id',
  'device_app_version',
  'phone_id',
  'user_id',
  'last_sync',
  'app_id',
] as const;

export type ClientField = (typeof CLIENT_FIELDS)[number];
export type ClientRecord = { id: string } & Partial<Record<ClientField, string>>;

/** Read-only access to RhoConnect's users, clients and API tokens (instance 0 of `:redis:`, or the cluster). */
export class RhoconnectStore {
  constructor(private readonly redis: StoreClient) {}

  async userExists(login: string): Promise<boolean> {
    return (await this.redis.exists(keys.userExists(login))) === 1;
  }

  async isAdmin(login: string): Promise<boolean> {
    return (await this.redis.get(keys.userField(login, 'admin'))) === '1';
  }

  /** The login an API token belongs to, or undefined. */
  async apiTokenUser(token: string): Promise<string | undefined> {
    return (await this.redis.get(keys.apiTokenUser(token))) ?? undefined;
  }

  /** A user's clients, most recent `last_sync` first (clients that never synced last). */
  async userClients(login: string): Promise<ClientRecord[]> {
    const ids = await this.redis.smembers(keys.userClients(login));
    if (ids.length === 0) return [];
    const replies = await this.clientFields(ids);
    const clients = ids.map((id, i) => {
      const [err, values] = replies[i] ?? [null, []];
      if (err) throw err;
      const record: ClientRecord = { id };
      CLIENT_FIELDS.forEach((field, j) => {
        const v = (values as (string | null)[])[j];
        if (v !== null && v !== undefined) record[field] = v;
      });
      return record;
    });
    return clients
      .map((c, order) => ({ c, order, t: parseLastSync(c.last_sync) }))
      .sort((a, b) => b.t - a.t || a.order - b.order)
      .map((x) => x.c);
  }

  /** Per client, its fields in CLIENT_FIELDS order, as pipeline replies. */
  private async clientFields(ids: string[]): Promise<Array<[Error | null, unknown]>> {
    const redis = this.redis;
    const settled = (read: Promise<unknown>): Promise<[Error | null, unknown]> =>
      read.then(
        (values): [Error | null, unknown] => [null, values],
        (err: Error): [Error | null, unknown] => [err, null],
      );
    if (isCluster(redis)) {
      // A client's fields hash to different slots: one GET per key, sent concurrently.
      return Promise.all(ids.map((id) => settled(Promise.all(CLIENT_FIELDS.map((f) => redis.get(keys.clientField(id, f)))))));
    }
    // One MGET per client, issued together: the store connection auto-pipelines them with the
    // reads of other pings running at the same moment (an explicit pipeline would be a write of its own).
    return Promise.all(ids.map((id) => settled(redis.mget(CLIENT_FIELDS.map((f) => keys.clientField(id, f))))));
  }
}

/** RhoConnect writes `last_sync` as `%FT%T%z` (e.g. 2026-11-27T19:11:16+0000). */
export function parseLastSync(value: string | undefined): number {
  if (!value) return -Infinity;
  const iso = value.trim().replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  const t = Date.parse(iso);
  return Number.isNaN(t) ? -Infinity : t;
}
