// RhoConnect Push server: POST <push_server>/messageQueue/<device_pin>.
import type { NormalizedPing } from '../ping/ping-params.js';

export interface RhoconnectPushBody {
  collapseId?: number;
  data: { alert?: string; sound?: string; vibrate?: string; do_sync?: string[] };
}

export function rhoconnectPushBody(ping: NormalizedPing): RhoconnectPushBody {
  const data: RhoconnectPushBody['data'] = {};
  if (ping.message) data.alert = ping.message;
  if (ping.sound) data.sound = ping.sound;
  if (ping.vibrate) data.vibrate = ping.vibrate;
  if (ping.sources.length > 0) data.do_sync = [...ping.sources];
  const body: RhoconnectPushBody = { data };
  if (ping.badge) body.collapseId = Number.parseInt(ping.badge, 10);
  return body;
}
