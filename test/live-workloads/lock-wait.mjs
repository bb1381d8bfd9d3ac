// get_lock sleeps a whole second between tries: a device edit that meets the :md lock (held by a
// sync of the same pair) writes :md a second later, with other requests' writes in between, among
// them plugin writes of the same pair, which RhoConnect pings.
import { create, del, enrollAll, fcm, later, plugin, objs, sync, syncAll } from './common.mjs';

export const name = 'lock-wait';
export const description =
  "Device creates and deletes meeting a sync's :md lock, with and without a plugin write of the same pair during the wait.";
export const users = {
  rita: [fcm('fcm-rita-1', 'phone-rita-1'), fcm('fcm-rita-2', 'phone-rita-2'), fcm('fcm-rita-3', 'phone-rita-3')],
};

const rounds = [1, 2, 3];
export const phases = [
  enrollAll(users),
  syncAll(users, ['Contact']),
  ...rounds.flatMap((i) => [
    {
      name: `edits-in-sync-${i}`,
      description: 'Two creates and a delete while a sync holds the lock; no plugin write: nothing pings.',
      concurrent: true,
      steps: [
        sync('rita', 0, 'Contact'),
        create('rita', 1, 'Contact'),
        create('rita', 2, 'Contact'),
        del('rita', 0, 'Contact', `contact-seed-${i === 1 ? 1 : 2}`),
      ],
    },
    {
      name: `plugin-in-wait-${i}`,
      description: 'A sync holds the lock, two creates wait for it, and a plugin write of the same pair lands during the wait: it pings.',
      concurrent: true,
      steps: [
        sync('rita', 0, 'Contact'),
        create('rita', 1, 'Contact'),
        create('rita', 2, 'Contact'),
        later(20 + 40 * i, plugin('push_objects', 'Contact', 'rita', { objects: objs('Contact', 1, 'lw') })),
      ],
    },
    {
      name: `after-${i}`,
      description: 'Quiet: no late ping for the device writes.',
      quietMs: 1500,
      steps: [],
    },
  ]),
];
