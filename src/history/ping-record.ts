// What rhopush keeps about one ping, and about a user's captured changes that did not ping: the
// answer to "why didn't my phone sync?". Tokens appear shortened only, and every piece of outside
// text is bounded.
import { randomBytes } from 'node:crypto';
import type { DevicePushResult } from '../push/adapter.js';
import { clip } from '../util/log-text.js';

export type PingStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/** Where a ping came from (the same words as the ping log line and the metrics). */
export type PingOrigin = 'auto' | 'rest' | 'queue' | 'library' | 'cli' | 'catch-up';

/** A captured change behind an automatic ping: which source, decided by which rule. */
export interface CapturedChange {
  source: string;
  /** `plugin-write` (captured live) or `catch-up` (found changed after a gap). */
  rule: string;
}

/** Tells this process's ids from other rhopush processes' (drawn once: no entropy per ping). */
const PROCESS_TAG = randomBytes(4).toString('hex');
let idCounter = 0;

/** A new ping id: time-ordered, unique across processes (time, process tag, counter). */
export function newPingId(): string {
  idCounter = (idCounter + 1) % 46_656;
  return `${Date.now().toString(36)}${PROCESS_TAG}${idCounter.toString(36).padStart(3, '0')}`;
}

/** Per platform: how its devices' pushes ended. */
export type PlatformCounts = Record<
  string,
  { sent: number; failed: number; dead: number; skipped: number; logged: number; dropped: number }
>;

export interface DeviceOutcome {
  user: string;
  clientId: string;
  platform: string;
  /** Shortened: `012345…cdef`. */
  token: string;
  outcome: string;
  reason?: string;
  retries?: number;
}

export interface PingRecord {
  id: string;
  status: PingStatus;
  trigger: PingOrigin;
  /** The first users (all of them up to MAX_USERS), and how many there were. */
  users: string[];
  userCount: number;
  sources: string[];
  /** What the device shows, bounded. */
  payload: { message?: string; badge?: string; sound?: string; vibrate?: string };
  /** Automatic pings: the captured changes it covers, and how many writes they were. */
  changes?: CapturedChange[];
  changeCount?: number;
  queuedAt?: number;
  startedAt?: number;
  finishedAt?: number;
  platforms?: PlatformCounts;
  /** Users skipped: unknown, or no registered clients. */
  skippedUsers?: string[];
  errors?: string[];
  /** One entry per device push (the first MAX_DEVICES), and how many there were. */
  devices?: DeviceOutcome[];
  deviceCount?: number;
  /** Set when a part of the record could not be written (the ping itself went on regardless). */
  incomplete?: string;
}

/** A captured write of a user's document that did not ping, and the rule that decided so. */
export interface DecisionEntry {
  at: number;
  source: string;
  rule: string;
}

const MAX_USERS = 100;
const MAX_DEVICES = 1000;
const MAX_ERRORS = 20;

export interface PingContent {
  users: string[];
  sources: string[];
  message?: string;
  badge?: string;
  sound?: string;
  vibrate?: string;
}

/** The parts of a record known before the ping runs. */
export function pingHead(id: string, status: PingStatus, trigger: PingOrigin, ping: PingContent, changes?: CapturedChange[]): PingRecord {
  const payload: PingRecord['payload'] = {};
  if (ping.message) payload.message = clip(ping.message, 500);
  if (ping.badge) payload.badge = clip(ping.badge, 20);
  if (ping.sound) payload.sound = clip(ping.sound);
  if (ping.vibrate) payload.vibrate = clip(ping.vibrate, 20);
  return {
    id,
    status,
    trigger,
    users: ping.users.slice(0, MAX_USERS).map((u) => clip(u)),
    userCount: ping.users.length,
    sources: ping.sources.slice(0, MAX_USERS).map((s) => clip(s)),
    payload,
    ...(changes ? { changes } : {}),
  };
}

/** The outcome of a ping that ran: per platform counts and each device's outcome. */
export function pingOutcome(
  pushes: readonly DevicePushResult[],
  errors: readonly string[],
  skippedUsers: readonly string[],
): Partial<PingRecord> {
  const platforms: PlatformCounts = {};
  for (const p of pushes) {
    const counts = (platforms[p.platform] ??= { sent: 0, failed: 0, dead: 0, skipped: 0, logged: 0, dropped: 0 });
    if (p.outcome === 'skipped-dead') counts.skipped += 1;
    else if (p.outcome in counts) counts[p.outcome as keyof typeof counts] += 1;
  }
  const devices = pushes.slice(0, MAX_DEVICES).map((p) => {
    const d: DeviceOutcome = {
      user: clip(p.user),
      clientId: clip(p.clientId, 64),
      platform: clip(p.platform, 40),
      token: p.token,
      outcome: p.outcome,
    };
    if (p.reason) d.reason = clip(p.reason, 500);
    if (p.retries) d.retries = p.retries;
    return d;
  });
  return {
    status: errors.length > 0 ? 'failed' : 'succeeded',
    platforms,
    devices,
    deviceCount: pushes.length,
    errors: errors.slice(0, MAX_ERRORS).map((e) => clip(e, 500)),
    skippedUsers: skippedUsers.slice(0, MAX_USERS).map((u) => clip(u)),
  };
}
