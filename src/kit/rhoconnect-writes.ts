// Writes RhoConnect-shaped data into Redis the way RhoConnect does (users, clients, plugin writes):
// used by tests, `rhopush demo` and the benchmarks.
import type { Redis } from 'ioredis';

export interface TestClient {
  id: string;
  device_type?: string;
  device_push_type?: string;
  device_pin?: string;
  device_port?: string;
  phone_id?: string;
  device_app_id?: string;
  device_app_version?: string;
  last_sync?: string;
}

/** A user as RhoConnect's first login creates it (recorded scenario 25). */
export async function createUser(redis: Redis, login: string, fields: Record<string, string> = {}): Promise<void> {
  await redis.set(`user:${login}:login`, login);
  await redis.set(`user:${login}:rho__id`, login);
  await redis.incrby('user:count', 1);
  await redis.sadd('app:application:users', login);
  for (const [k, v] of Object.entries(fields)) await redis.set(`user:${login}:${k}`, v);
}

/** A client as POST /rc/v1/clients + /register leave it (recorded scenario 13). */
export async function registerClient(redis: Redis, login: string, client: TestClient): Promise<void> {
  await redis.set(`client:${client.id}:user_id`, login);
  await redis.set(`client:${client.id}:app_id`, 'application');
  await redis.set(`client:${client.id}:rho__id`, client.id);
  await redis.sadd(`user:${login}:clients`, client.id);
  await redis.incrby('client:count', 1);
  for (const [k, v] of Object.entries(client)) {
    if (k !== 'id' && v !== undefined) await redis.set(`client:${client.id}:${k}`, v);
  }
}

/** The command sequence of a push_objects call (fixture 01): lock, buckets, md_size INCRBY, unlock. */
export async function pushObjects(redis: Redis, partition: string, source: string, objects: Record<string, Record<string, string>>): Promise<void> {
  const doc = `source:application:${partition}:${source}:md`;
  const lock = `lock:${doc}`;
  await redis.setnx(lock, String(Math.floor(Date.now() / 1000) + 60));
  const pipeline = redis.pipeline();
  for (const [id, obj] of Object.entries(objects)) {
    const bucket = id.length >= 2 ? id.slice(-2) : `0${id}`;
    pipeline.hsetnx(`${doc}:indices`, bucket, `${doc}:${bucket}`);
    for (const [attr, value] of Object.entries(obj)) pipeline.sadd(`${doc}:${bucket}`, `${id}:${attr}:${value}`);
  }
  pipeline.incrby(`source:application:${partition}:${source}:md_size`, Object.keys(objects).length);
  await pipeline.exec();
  await redis.del(lock);
}

/** A device's own create (fixture 14): cd_size INCRBY for its client, then the md write. */
export async function deviceCreate(redis: Redis, login: string, clientId: string, source: string, objects: Record<string, Record<string, string>>): Promise<void> {
  await redis.set(`client:${clientId}:last_sync`, new Date().toISOString());
  await redis.incrby(`client:application:${login}:${clientId}:${source}:cd_size`, Object.keys(objects).length);
  await pushObjects(redis, login, source, objects);
}

/** A device's own sync rebuilding the document (fixture 11): md_size SET. */
export async function deviceSync(redis: Redis, login: string, clientId: string, source: string, count: number): Promise<void> {
  await redis.set(`client:${clientId}:last_sync`, new Date().toISOString());
  await redis.set(`source:application:${login}:${source}:md_size`, String(count));
  await redis.set(`client:application:${login}:${clientId}:${source}:cd_size`, String(count));
}
