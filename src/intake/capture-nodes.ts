// The Redis nodes capture listens to, and where each one's lease and canary keys live.
// Several instances (`:redis:` array): every instance, keys plain (each node is its own keyspace).
// Redis Cluster: every master; its keys carry a hash tag of a slot it serves, so they land on it.
import type { RedisOptions } from 'ioredis';
import type { RedisEndpoint } from '../config/settings.js';
import { lowestSlot, tagForSlot } from '../store/cluster-slots.js';
import type { ClusterMaster } from '../store/cluster-topology.js';
import { keys, RHOPUSH_PREFIX } from '../store/keys.js';
import { redisOptions } from '../store/redis-connection.js';
import type { CaptureNode } from './capture.js';

/** A node capture may listen to, with the key its capture lease lives in. */
export interface SupervisedNode extends CaptureNode {
  leaseKey: string;
}

export const LEASE_KEY = `${RHOPUSH_PREFIX}lease`;

export function instanceNodes(endpoints: RedisEndpoint[], instanceId: string): SupervisedNode[] {
  return endpoints.map((endpoint) => ({
    label: endpoint.label,
    options: redisOptions(endpoint),
    db: endpoint.db,
    canaryKey: keys.canary(instanceId),
    leaseKey: LEASE_KEY,
  }));
}

/** Cluster masters as capture nodes; `seed` supplies auth and TLS. */
export function clusterNodes(masters: ClusterMaster[], seed: RedisEndpoint, instanceId: string): SupervisedNode[] {
  const base: RedisOptions = redisOptions({ ...seed, db: 0 });
  return masters.flatMap((m) => {
    const slot = lowestSlot(m.slots);
    if (slot === undefined) return [];
    const tag = tagForSlot(slot);
    return [
      {
        label: m.label,
        options: { ...base, host: m.host, port: m.port, db: 0 },
        db: 0,
        canaryKey: keys.canary(`${instanceId}{${tag}}`),
        leaseKey: `${LEASE_KEY}:{${tag}}`,
      },
    ];
  });
}
