import type { ClientRecord } from '../store/rhoconnect-store.js';

/** Platforms RhoConnect 7.8 pushes to, by their adapter names. */
export type Platform = 'apple' | 'fcm' | 'rhoconnect_push';

/**
 * `device_push_type`, else `device_type`, case-insensitively, to a platform. `iphone` is
 * RhoConnect's deprecated name for apple; legacy `gcm` registrations are FCM tokens.
 */
export const PLATFORM_BY_PUSH_TYPE: Readonly<Record<string, Platform>> = {
  apple: 'apple',
  iphone: 'apple',
  fcm: 'fcm',
  gcm: 'fcm',
  rhoconnect_push: 'rhoconnect_push',
};

export function platformOf(client: ClientRecord): { platform?: Platform; type: string } {
  const type = (client.device_push_type || client.device_type || '').trim();
  return { platform: PLATFORM_BY_PUSH_TYPE[type.toLowerCase()], type };
}

/** What a device push carries: the ping's sources and what to show, as RhoConnect sends them. */
export interface PushContent {
  sources: string[];
  message?: string;
  /** Strings, as every entry point hands them over (APNs sends the badge as a number). */
  badge?: string;
  sound?: string;
  /** Always a string, '' when not given. */
  vibrate: string;
}

/** A device token as its platform wants it: APNs' without spaces, the others as registered. */
export function pushToken(platform: Platform, devicePin: string): string {
  return platform === 'apple' ? devicePin.replace(/\s+/g, '') : devicePin;
}

/** One device push: what PingJob hands to a platform adapter. */
export interface DevicePushRequest {
  platform: Platform;
  user: string;
  client: ClientRecord;
  /** device_pin with spaces removed (APNs) or as stored (FCM, RhoConnect Push). */
  token: string;
  ping: PushContent;
  /**
   * Set when the adapters looked this token up already, for a whole batch of pushes (`screen`):
   * its dead-token record, or null when it is not dead.
   */
  knownDead?: { reason: string; at: string } | null;
}

export type PushOutcome = 'sent' | 'logged' | 'failed' | 'dead' | 'skipped-dead' | 'dropped';

export interface DevicePushResult {
  platform: Platform | string;
  user: string;
  clientId: string;
  /** Shortened: device tokens never appear whole in results or logs. */
  token: string;
  outcome: PushOutcome;
  reason?: string;
  /** Retries made before the final outcome. */
  retries?: number;
}

/** What an adapter reports for one device push; PingJob adds who and where. */
export type PushSendOutcome = Omit<DevicePushResult, 'user' | 'clientId' | 'token' | 'platform'>;

export interface PushAdapter {
  /** Delivers one device push. Resolves with its outcome; never rejects for a delivery failure. */
  send(request: DevicePushRequest): Promise<PushSendOutcome>;
  close(): Promise<void>;
}

/** Keeps a token recognisable in logs without exposing it. */
export function shortenToken(token: string): string {
  if (token.length <= 12) return `${token.slice(0, 2)}…`;
  return `${token.slice(0, 6)}…${token.slice(-4)}`;
}
