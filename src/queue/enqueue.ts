// Queuing a ping with its record: the record (status queued) first, then the Resque job carrying its
// id, so the job's status can be fetched once a worker ran it.
import type { Redis } from 'ioredis';
import type { PingHistory } from '../history/ping-history.js';
import { newPingId, pingHead } from '../history/ping-record.js';
import type { NormalizedPing } from '../ping/ping-params.js';
import { enqueuePingJob, type EnqueuedPing } from './resque-queue.js';

export function enqueueRecorded(
  redis: Redis,
  history: PingHistory | undefined,
  ping: NormalizedPing,
  queue?: string,
): Promise<EnqueuedPing> {
  const record = { id: newPingId(), queuedAt: Date.now() };
  if (history?.enabled) {
    const head = pingHead(record.id, 'queued', 'queue', ping);
    head.queuedAt = record.queuedAt;
    history.queued(head);
  }
  return enqueuePingJob(redis, ping, queue, record);
}
