// RhoConnect's PingJob sorts a user's clients by last_sync and raises when one of two clients never
// synced: the plugin call answers 500 after its data is written and no device is pushed. rhopush
// pings such a user (every registered device, never-synced ones last).
import { apple, create, fcm, plugin, objs, sync } from './common.mjs';

export const name = 'unsynced-client';
export const description =
  'A user with two registered devices, only one of which ever synced, gets plugin writes; device edits of the synced one beside them.';
export const users = {
  olga: [fcm('fcm-olga-1', 'phone-olga-1'), apple('olga-ipad')],
};

export const phases = [
  {
    name: 'setup',
    description: 'Both devices enroll; only the first syncs.',
    steps: [{ op: 'enroll', user: 'olga', device: 0 }, { op: 'enroll', user: 'olga', device: 1 }, sync('olga', 0, 'Product')],
  },
  {
    name: 'plugin',
    description: "A plugin write: RhoConnect's PingJob raises (the call answers 500); it still counts as RhoConnect's ping of the pair.",
    steps: [{ ...plugin('push_objects', 'Product', 'olga', { objects: objs('Product', 1, 'us') }), expect: 500 }],
  },
  {
    name: 'device-and-plugin',
    description: 'The synced device creates while a plugin write lands.',
    concurrent: true,
    steps: [create('olga', 0, 'Product'), { ...plugin('fast_insert', 'Contact', 'olga', { data: objs('Contact', 1, 'us') }), expect: 500 }],
  },
];
