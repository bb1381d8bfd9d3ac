// CUD queues are per source and shared by every client: devices that create at the same moment are
// often processed by one request with one :md write for their user. Creates alone never ping; the
// plugin write that follows (same pair) always does.
import { apple, create, enrollAll, fcm, later, plugin, objs, syncAll } from './common.mjs';

export const name = 'shared-queue';
export const description = 'Three devices of pat and two of quinn create in Product at once; then plugin writes of the same pairs.';
export const users = {
  pat: [fcm('fcm-pat-1', 'phone-pat-1'), fcm('fcm-pat-2', 'phone-pat-2'), apple('pat-ipad')],
  quinn: [apple('quinn-iphone'), fcm('fcm-quinn', 'phone-quinn')],
};

const rounds = [1, 2, 3, 4];
export const phases = [
  enrollAll(users),
  syncAll(users, ['Product']),
  ...rounds.flatMap((i) => [
    {
      name: `creates-${i}`,
      description: 'Every device creates a Product at the same moment; no plugin write, so nothing pings.',
      concurrent: true,
      steps: [
        create('pat', 0, 'Product'),
        create('pat', 1, 'Product'),
        create('pat', 2, 'Product', 2),
        create('quinn', 0, 'Product'),
        create('quinn', 1, 'Product'),
      ],
    },
    {
      name: `plugin-after-${i}`,
      description: 'A plugin write of pat/Product right after: it must ping.',
      steps: [plugin('push_objects', 'Product', 'pat', { objects: objs('Product', 1, 'sq') })],
    },
    {
      name: `creates-then-plugin-${i}`,
      description: 'Creates of pat and quinn at once and, 30-120 ms later, a plugin write of quinn/Product: only quinn/Product pings.',
      concurrent: true,
      steps: [
        create('pat', 0, 'Product'),
        create('pat', 1, 'Product'),
        create('quinn', 0, 'Product'),
        create('quinn', 1, 'Product'),
        later(30 * i, plugin('fast_insert', 'Product', 'quinn', { data: objs('Product', 1, 'sqq') })),
      ],
    },
  ]),
];
