// Writes RhoConnect-shaped data into Redis the way RhoConnect does, for tests, benchmarks and
// `rhopush demo`: users and clients as registration leaves them, a plugin's push_objects, a
// device's own sync and a device's own create (its CUD queue run included).
//
// Each write is a list of steps (the commands, in RhoConnect's order, from the recorded scenarios
// in test/fixtures/rhoconnect/), and each step says where RhoConnect sends it: with several Redis
// instances (`:redis:` as a list) users, clients, locks and CUD queues live in instance 0 and a
// user's documents in the instance RhoConnect's `compute_store_index` picks; in a Redis Cluster
// ioredis sends each command to its key's node. Reads RhoConnect makes along the way are left out,
// and so are DELs of keys that never exist (the bucketed document's bare key): neither changes
// anything or sends a keyspace event.
import { createHash } from 'node:crypto';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';

/** A standalone Redis, or a Redis Cluster (through ioredis' cluster client). */
export type RedisConnection = Redis | Cluster;

/** The partition of app-partitioned sources. */
export const SHARED_PARTITION = '__shared__';

/** A master document: `source:application:<partition>:<source>:md`. */
export interface DocRef {
  partition: string;
  source: string;
}

/** One command of a RhoConnect write. */
export interface WriteStep {
  /** The user document the key belongs to; none: instance 0 (users, clients, locks, CUD queues). */
  doc?: DocRef;
  cmd: [name: string, ...args: string[]];
}

/** Objects by id, each a map of attribute → value (what a plugin's push_objects sends). */
export type RhoObjects = Record<string, Record<string, string>>;

/** A client as `POST /rc/v1/clients` and `/register` leave it (fields other than `id` are set as given). */
export interface RhoClient {
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

/**
 * The instance RhoConnect keeps a document in, among `instances` (`Document#compute_store_index`):
 * app-partitioned data in instance 0; a user's source documents (md, md_size, and the client
 * documents of that source) in 1 … n-1, by the first hex digit of SHA-1(`<user>:<source>`).
 */
export function rhoconnectStoreIndex(doc: DocRef, instances: number): number {
  const userStores = instances - 1;
  if (doc.partition === SHARED_PARTITION || userStores <= 0) return 0;
  const digit = Number.parseInt(sha1(`${doc.partition}:${doc.source}`)[0]!, 16);
  return Math.min(Math.floor(digit / Math.floor(16 / userStores)), userStores - 1) + 1;
}

/** Several Redis instances, as RhoConnect uses a `:redis:` list. */
export class RhoConnectInstances {
  /**
   * `placement` picks a document's instance (default: RhoConnect's own); a test may spread
   * documents differently, e.g. over instance 0 too.
   */
  constructor(
    readonly instances: RedisConnection[],
    private readonly placement: (doc: DocRef, instances: number) => number = rhoconnectStoreIndex,
  ) {}

  /** Instance 0: users, clients, API tokens, locks, CUD queues, app-partitioned data. */
  get system(): RedisConnection {
    return this.instances[0]!;
  }

  /** The instance holding a document. */
  documents(doc: DocRef): RedisConnection {
    return this.instances[this.placement(doc, this.instances.length)]!;
  }
}

/** Where writes go: one Redis, a Redis Cluster, or several instances. */
export type RhoConnectTarget = RedisConnection | RhoConnectInstances;

// ---- the writes, as steps ----------------------------------------------------------------------

/** A user as RhoConnect's first login creates it (recorded scenario 25), with extra user fields. */
export function createUserSteps(login: string, fields: Record<string, string> = {}): WriteStep[] {
  return [
    { cmd: ['set', `user:${login}:login`, login] },
    { cmd: ['set', `user:${login}:rho__id`, login] },
    { cmd: ['incr', 'user:count'] },
    { cmd: ['sadd', 'app:application:users', login] },
    ...Object.entries(fields).map(([field, value]): WriteStep => ({ cmd: ['set', `user:${login}:${field}`, value] })),
  ];
}

/** A client as `POST /rc/v1/clients` and `/register` leave it (recorded scenario 13). */
export function registerClientSteps(login: string, client: RhoClient): WriteStep[] {
  const steps: WriteStep[] = [
    { cmd: ['set', `client:${client.id}:user_id`, login] },
    { cmd: ['set', `client:${client.id}:app_id`, 'application'] },
    { cmd: ['set', `client:${client.id}:rho__id`, client.id] },
    { cmd: ['sadd', `user:${login}:clients`, client.id] },
    { cmd: ['incr', 'client:count'] },
  ];
  for (const [field, value] of Object.entries(client)) {
    if (field !== 'id' && value !== undefined) steps.push({ cmd: ['set', `client:${client.id}:${field}`, value] });
  }
  return steps;
}

/**
 * A plugin's push_objects of new objects (recorded scenario 01): the document lock, a bucket
 * index entry per object, one SADD per bucket, INCRBY md_size by the number of objects, unlock.
 */
export function pushObjectsSteps(partition: string, source: string, objects: RhoObjects): WriteStep[] {
  const doc = { partition, source };
  const name = masterDoc(doc);
  return [
    lock(name),
    ...bucketSteps(doc, name, objects),
    { doc, cmd: ['incrby', `${name}_size`, String(Object.keys(objects).length)] },
    unlock(name),
  ];
}

/**
 * A device's own sync that rebuilt the document with `objects` (recorded scenarios 11 and 20): the
 * client's last_sync, the document (locked) with md_size SET to the object count, then the client
 * document's cd_size SET. RhoConnect builds the new document under a temporary name and renames
 * its buckets into place; the kit writes the buckets in place (the same keys end up written).
 */
export function deviceSyncSteps(login: string, clientId: string, source: string, objects: RhoObjects): WriteStep[] {
  const doc = { partition: login, source };
  const name = masterDoc(doc);
  const count = String(Object.keys(objects).length);
  return [
    { cmd: ['set', `client:${clientId}:last_sync`, rubyTime()] },
    lock(name),
    ...bucketSteps(doc, name, objects),
    { doc, cmd: ['set', `${name}_size`, count] },
    unlock(name),
    { doc, cmd: ['set', `${clientDoc(login, clientId, source)}:cd_size`, count] },
  ];
}

/**
 * A device's own create of `objects` (recorded scenario 14; ids are the ids the backend gave them):
 * the create is queued in the source's CUD queue (one entry for the client, under score `score`),
 * then the request runs the queue: it deletes the entry's keys and empties the queue (which deletes
 * it), links the device's temporary ids to the backend's, stores the objects in the client's
 * document and INCRBYs its cd_size, then writes the master document and INCRBYs md_size.
 */
export function deviceCreateSteps(login: string, clientId: string, source: string, objects: RhoObjects, score = 1): WriteStep[] {
  const doc = { partition: login, source };
  const queue = `source:application:${source}:create`;
  const entry = `${queue}:${score}:${clientId}:${source}:0`;
  const count = String(Object.keys(objects).length);
  const temporary = Object.fromEntries(Object.entries(objects).map(([, obj], i) => [`${i}_temp-${i + 1}`, obj]));
  const links = Object.fromEntries(Object.keys(objects).map((id, i) => [`temp-${i + 1}`, { l: id }]));
  const client = clientDoc(login, clientId, source);
  const master = masterDoc(doc);
  return [
    { cmd: ['set', `client:${clientId}:last_sync`, rubyTime()] },
    // The device's request queues its create.
    lock(queue),
    ...bucketSteps(undefined, entry, temporary),
    { cmd: ['zadd', queue, String(score), `${score}:${clientId}:${source}:0`] },
    unlock(queue),
    // The request that runs the queue takes every entry, then empties the queue.
    lock(queue),
    { cmd: ['del', `${entry}:indices`] },
    ...[...new Set(Object.keys(temporary).map(bucketOf))].map((bucket): WriteStep => ({ cmd: ['del', `${entry}:${bucket}`] })),
    { cmd: ['zremrangebyrank', queue, '0', '-1'] },
    unlock(queue),
    // The backend created the objects: the client's links and document, then the master document.
    ...bucketSteps(doc, `${client}:create_links`, links),
    ...bucketSteps(doc, `${client}:cd`, objects),
    { doc, cmd: ['incrby', `${client}:cd_size`, count] },
    lock(master),
    ...bucketSteps(doc, master, objects),
    { doc, cmd: ['incrby', `${master}_size`, count] },
    unlock(master),
  ];
}

// ---- running them ------------------------------------------------------------------------------

/**
 * Runs the steps in order, each on its instance. On one standalone Redis they go in one pipeline;
 * across instances or in a cluster, one command at a time (a cluster pipeline must stay in one slot).
 */
export async function runSteps(target: RhoConnectTarget, steps: WriteStep[]): Promise<void> {
  if (!(target instanceof RhoConnectInstances) && !target.isCluster) {
    const results = (await queueSteps(target.pipeline(), steps).exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    return;
  }
  for (const step of steps) await connectionFor(target, step).call(...step.cmd);
}

/** Adds the steps to a pipeline on one standalone Redis (bulk writes: benchmarks, large setups). */
export function queueSteps(pipeline: ChainableCommander, steps: WriteStep[]): ChainableCommander {
  for (const { cmd } of steps) pipeline.call(...cmd);
  return pipeline;
}

/** The connection a step goes to. */
export function connectionFor(target: RhoConnectTarget, step: WriteStep): RedisConnection {
  if (!(target instanceof RhoConnectInstances)) return target;
  return step.doc ? target.documents(step.doc) : target.system;
}

export function createUser(target: RhoConnectTarget, login: string, fields: Record<string, string> = {}): Promise<void> {
  return runSteps(target, createUserSteps(login, fields));
}

export function registerClient(target: RhoConnectTarget, login: string, client: RhoClient): Promise<void> {
  return runSteps(target, registerClientSteps(login, client));
}

export function pushObjects(target: RhoConnectTarget, partition: string, source: string, objects: RhoObjects): Promise<void> {
  return runSteps(target, pushObjectsSteps(partition, source, objects));
}

export function deviceSync(target: RhoConnectTarget, login: string, clientId: string, source: string, objects: RhoObjects): Promise<void> {
  return runSteps(target, deviceSyncSteps(login, clientId, source, objects));
}

/** A device's create; the queue entry's score follows the queue's highest, as RhoConnect reads it. */
export async function deviceCreate(
  target: RhoConnectTarget,
  login: string,
  clientId: string,
  source: string,
  objects: RhoObjects,
): Promise<void> {
  const system = target instanceof RhoConnectInstances ? target.system : target;
  const top = await system.zrevrange(`source:application:${source}:create`, 0, 0, 'WITHSCORES');
  await runSteps(target, deviceCreateSteps(login, clientId, source, objects, Number(top[1] ?? 0) + 1));
}

// ---- RhoConnect's document layout --------------------------------------------------------------

function masterDoc(doc: DocRef): string {
  return `source:application:${doc.partition}:${doc.source}:md`;
}

function clientDoc(login: string, clientId: string, source: string): string {
  return `client:application:${login}:${clientId}:${source}`;
}

/** A lock as `Store#get_lock` takes it: SETNX with the second it expires. */
function lock(docName: string): WriteStep {
  return { cmd: ['setnx', `lock:${docName}`, String(Math.floor(Date.now() / 1000) + 61)] };
}

function unlock(docName: string): WriteStep {
  return { cmd: ['del', `lock:${docName}`] };
}

/** `Store#_put_objects`: an index entry per object (HSETNX), then one SADD per bucket. */
function bucketSteps(doc: DocRef | undefined, docName: string, objects: RhoObjects): WriteStep[] {
  const steps: WriteStep[] = [];
  const buckets = new Map<string, string[]>();
  for (const [id, obj] of Object.entries(objects)) {
    const bucket = bucketOf(id);
    steps.push({ doc, cmd: ['hsetnx', `${docName}:indices`, bucket, `${docName}:${bucket}`] });
    buckets.set(bucket, [...(buckets.get(bucket) ?? []), element(id, obj)]);
  }
  for (const [bucket, elements] of buckets) steps.push({ doc, cmd: ['sadd', `${docName}:${bucket}`, ...elements] });
  return steps;
}

/** `Store#_create_obj_index`: the first two hex digits of SHA-1 of the object id. */
function bucketOf(id: string): string {
  return sha1(id).slice(0, 2);
}

/** `Store#set_obj_element`: `<id>:^rho&:<attr>:<value>…`, without the reserved attributes. */
function element(id: string, obj: Record<string, string>): string {
  let text = id;
  for (const [attr, value] of Object.entries(obj)) if (attr !== 'id' && attr !== 'attrib_type') text += `:^rho&:${attr}:${value}`;
  return text;
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/** `Time#to_s` as RhoConnect stores last_sync: `2026-11-27T18:50:09+0000`. */
function rubyTime(): string {
  return `${new Date().toISOString().slice(0, 19)}+0000`;
}
