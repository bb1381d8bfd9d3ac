// Logins with spaces, @, colons and unicode appear raw inside RhoConnect's keys.
import { create, enrollAll, fcm, apple, later, plugin, objs, sync, syncAll } from './common.mjs';

export const name = 'odd-logins';
export const description = 'Concurrent device edits and plugin writes for logins with colons, spaces, @ and unicode.';
const A = 'ops:42';
const B = 'zoë 用户';
const C = 'm.x@example.com';
export const users = {
  [A]: [fcm('fcm-ops-1', 'phone-ops-1'), fcm('fcm-ops-2', 'phone-ops-2')],
  [B]: [apple('zoe-iphone'), fcm('fcm-zoe', 'phone-zoe')],
  [C]: [fcm('fcm-mx', 'phone-mx')],
};

export const phases = [
  enrollAll(users),
  syncAll(users, ['Product']),
  ...[1, 2].flatMap((i) => [
    {
      name: `edits-${i}`,
      description: 'Two devices of each odd login create at once while one syncs: nothing pings.',
      concurrent: true,
      steps: [
        create(A, 0, 'Product'),
        create(A, 1, 'Product'),
        sync(A, 0, 'Product'),
        create(B, 0, 'Product'),
        create(B, 1, 'Product'),
        sync(B, 1, 'Product'),
        create(C, 0, 'Product'),
      ],
    },
    {
      name: `plugin-${i}`,
      description: "Plugin writes for two of them among their devices' creates: those two ping.",
      concurrent: true,
      steps: [
        create(A, 0, 'Product'),
        create(A, 1, 'Product'),
        create(B, 0, 'Product'),
        create(C, 0, 'Product'),
        later(20, plugin('push_objects', 'Product', A, { objects: objs('Product', 1, 'oa') })),
        later(40, plugin('fast_insert', 'Product', B, { data: objs('Product', 1, 'ob') })),
      ],
    },
  ]),
];
