// The FCM HTTP v1 message RhoConnect sends for a ping: high priority, string data with the
// sources to sync, the alert as a notification body.
import type { ClientRecord } from '../../store/rhoconnect-store.js';
import type { PushContent } from '../adapter.js';

export interface FcmMessage {
  token: string;
  android: {
    priority: 'high';
    collapse_key?: string;
    restricted_package_name?: string;
    data: Record<string, string>;
    notification?: { body: string };
  };
}

export interface FcmMessageOptions {
  packageName?: string;
  /** Collapse key; sync-only pings share one so an offline device gets one ping, not a backlog. */
  collapseKey?: string;
}

/** Data values are all strings; empty values are left out. `['all']` gives `all`. */
export function fcmMessage(ping: PushContent, client: ClientRecord, options: FcmMessageOptions = {}): FcmMessage {
  const data: Record<string, string> = {};
  const put = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== '') data[k] = v;
  };
  put('do_sync', ping.sources.join(','));
  put('alert', ping.message);
  put('vibrate', ping.vibrate);
  put('sound', ping.sound);
  put('phone_id', client.phone_id);
  const android: FcmMessage['android'] = { priority: 'high', data };
  if (options.collapseKey) android.collapse_key = options.collapseKey;
  if (options.packageName) android.restricted_package_name = options.packageName;
  if (ping.message) android.notification = { body: ping.message };
  return { token: client.device_pin ?? '', android };
}
