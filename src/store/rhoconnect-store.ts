import { keys } from './keys.js';
import type { Redis } from 'ioredis';
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
  constructor(private readonly redis: StoreClient) {
    if (!isCluster(redis)) redis.defineCommand('rhopushUsersClients', { lua: USERS_CLIENTS_SCRIPT });
  }

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
    return (await this.usersClients([login])).get(login) ?? [];
  }

  /**
   * Each user's clients, most recent `last_sync` first; `undefined` for a user who does not exist.
   * Many users cost a few commands, not a few per user: one script per USERS_PER_CALL users for
   * existence and client ids, one MGET per CLIENTS_PER_CALL clients for their fields (on a cluster,
   * whose keys span slots, one command per key instead, sent together).
   */
  async usersClients(logins: readonly string[]): Promise<Map<string, ClientRecord[] | undefined>> {
    const ids = await this.clientIds(logins);
    const all = [...new Set([...ids.values()].flatMap((list) => list ?? []))];
    const fields = await this.clientFields(all);
    const byId = new Map(all.map((id, i) => [id, fields[i]!]));
    const result = new Map<string, ClientRecord[] | undefined>();
    for (const [login, list] of ids) result.set(login, list && sortByLastSync(list.map((id) => byId.get(id)!)));
    return result;
  }

  /** Per user: its client ids, or undefined when the user does not exist. */
  private async clientIds(logins: readonly string[]): Promise<Map<string, string[] | undefined>> {
    const result = new Map<string, string[] | undefined>();
    const redis = this.redis;
    if (isCluster(redis)) {
      await Promise.all(
        logins.map(async (login) => {
          const [exists, members] = await Promise.all([redis.exists(keys.userExists(login)), redis.smembers(keys.userClients(login))]);
          result.set(login, exists === 1 ? members : undefined);
        }),
      );
      return result;
    }
    const store = redis as Redis & StoreCommands;
    const calls: Promise<void>[] = [];
    for (let i = 0; i < logins.length; i += USERS_PER_CALL) {
      const chunk = logins.slice(i, i + USERS_PER_CALL);
      const userKeys = chunk.flatMap((login) => [keys.userExists(login), keys.userClients(login)]);
      calls.push(
        store.rhopushUsersClients(userKeys.length, ...userKeys).then((replies) => {
          chunk.forEach((login, j) => {
            const reply = (replies as Array<string[] | number>)[j];
            result.set(login, Array.isArray(reply) ? reply : undefined);
          });
        }),
      );
    }
    await Promise.all(calls);
    return result;
  }

  /** Each client's record, in the order of `ids`. */
  private async clientFields(ids: readonly string[]): Promise<ClientRecord[]> {
    const redis = this.redis;
    const record = (id: string, values: ReadonlyArray<string | null>): ClientRecord => {
      const r: ClientRecord = { id };
      CLIENT_FIELDS.forEach((field, j) => {
        const v = values[j];
        if (v !== null && v !== undefined) r[field] = v;
      });
      return r;
    };
    if (isCluster(redis)) {
      // A client's fields hash to different slots: one GET per key, sent together.
      return Promise.all(
        ids.map(async (id) => record(id, await Promise.all(CLIENT_FIELDS.map((f) => redis.get(keys.clientField(id, f)))))),
      );
    }
    const calls: Promise<ClientRecord[]>[] = [];
    for (let i = 0; i < ids.length; i += CLIENTS_PER_CALL) {
      const chunk = ids.slice(i, i + CLIENTS_PER_CALL);
      calls.push(
        redis
          .mget(chunk.flatMap((id) => CLIENT_FIELDS.map((f) => keys.clientField(id, f))))
          .then((values) => chunk.map((id, j) => record(id, values.slice(j * CLIENT_FIELDS.length, (j + 1) * CLIENT_FIELDS.length)))),
      );
    }
    // Sent together (a large fan-out is many calls), answered in order.
    return (await Promise.all(calls)).flat();
  }
}

/** Users a call reads at once, and clients whose fields one MGET reads: bounded, so Redis never stalls. */
const USERS_PER_CALL = 500;
const CLIENTS_PER_CALL = 500;

/**
 * KEYS: per user, its existence key and its clients set (keys.userExists, keys.userClients). Per
 * user: its client ids, or 0 when the user does not exist.
 */
const USERS_CLIENTS_SCRIPT = `local out = {}
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    out[#out + 1] = redis.call('SMEMBERS', KEYS[i + 1])
  else
    out[#out + 1] = 0
  end
end
return out`;

interface StoreCommands {
  rhopushUsersClients(numKeys: number, ...logins: string[]): Promise<unknown>;
}

function sortByLastSync(clients: ClientRecord[]): ClientRecord[] {
  return clients
    .map((c, order) => ({ c, order, t: parseLastSync(c.last_sync) }))
    .sort((a, b) => b.t - a.t || a.order - b.order)
    .map((x) => x.c);
}

/** RhoConnect writes `last_sync` as `%FT%T%z` (e.g. 2026-11-27T19:11:16+0000). */
export function parseLastSync(value: string | undefined): number {
  if (!value) return -Infinity;
  const iso = value.trim().replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  const t = Date.parse(iso);
  return Number.isNaN(t) ? -Infinity : t;
}
