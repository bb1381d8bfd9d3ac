// Collapse identifiers. A device that was offline should get one sync ping, not a backlog: sync
// pings without a message carry an identifier derived from the app and the sources it syncs, so a
// newer one replaces an older one only when it syncs the same sources (collapsing never drops a
// source). Pings with a message stay distinct.
import { createHash, randomBytes } from 'node:crypto';
import type { PushContent } from './adapter.js';

/** Stable identifier for a sync ping without a message; undefined for a ping with a message. */
export function syncCollapseId(ping: PushContent, app: string): string | undefined {
  if (ping.message) return undefined;
  const sources = [...ping.sources].sort().join(',');
  // 64 bytes is APNs' limit for apns-collapse-id; a digest keeps any number of sources under it.
  return `sync-${createHash('sha256').update(`${app}\n${sources}`).digest('hex').slice(0, 24)}`;
}

/** A fresh identifier, for pings that must not collapse with others (RhoConnect's random FCM key). */
export function distinctCollapseKey(): string {
  return randomBytes(6).toString('hex');
}
