// Apple Push Notification service (HTTP/2). RhoConnect's payload, current protocol.
import type { NormalizedPing } from '../ping/ping-params.js';

export interface ApnsNotification {
  payload: {
    aps: { alert?: string; badge?: number; sound?: string; vibrate?: string; 'content-available'?: 1 };
    do_sync?: string[];
  };
  pushType: 'alert' | 'background';
  priority: 10 | 5;
}

const given = (v: string | undefined): v is string => v !== undefined && v !== '';

/**
 * RhoConnect's APNs payload: `aps` fields only when given, `do_sync` when sources are given.
 * `content-available` wakes the app to sync; a ping with nothing to show is a background push.
 */
export function apnsNotification(ping: NormalizedPing): ApnsNotification {
  const aps: ApnsNotification['payload']['aps'] = {};
  if (given(ping.message)) aps.alert = ping.message;
  if (given(ping.badge)) aps.badge = Number.parseInt(ping.badge, 10);
  if (given(ping.sound)) aps.sound = ping.sound;
  if (given(ping.vibrate)) aps.vibrate = ping.vibrate;
  const payload: ApnsNotification['payload'] = { aps };
  if (ping.sources.length > 0) {
    aps['content-available'] = 1;
    payload.do_sync = [...ping.sources];
  }
  const visible = aps.alert !== undefined || aps.sound !== undefined || aps.badge !== undefined;
  return { payload, pushType: visible ? 'alert' : 'background', priority: visible ? 10 : 5 };
}

/** APNs device token: RhoConnect's device_pin with spaces removed. */
export function apnsToken(devicePin: string): string {
  return devicePin.replace(/\s+/g, '');
}
