// With poll_interval 0 every sync and every token acknowledgement queries the backend again and
// SETs md_size: many syncs at once beside device creates and plugin writes.
import { create, enrollAll, fcm, apple, later, plugin, objs, sync, syncAll } from './common.mjs';

export const name = 'poll-zero';
export const description = 'Bursts of syncs (poll_interval 0) beside device creates and plugin writes of the same pairs.';
export const users = {
  vic: [fcm('fcm-vic-1', 'phone-vic-1'), apple('vic-iphone'), fcm('fcm-vic-3', 'phone-vic-3')],
};

export const phases = [
  enrollAll(users),
  syncAll(users, ['Product']),
  ...[1, 2, 3].flatMap((i) => [
    {
      name: `syncs-and-creates-${i}`,
      description: 'Three syncs and two creates at once: nothing pings.',
      concurrent: true,
      steps: [
        sync('vic', 0, 'Product'),
        sync('vic', 1, 'Product'),
        sync('vic', 2, 'Product'),
        create('vic', 0, 'Product'),
        create('vic', 2, 'Product'),
      ],
    },
    {
      name: `syncs-and-plugin-${i}`,
      description: 'Three syncs, a create, and plugin writes of the same pair: it pings.',
      concurrent: true,
      steps: [
        sync('vic', 0, 'Product'),
        sync('vic', 1, 'Product'),
        create('vic', 2, 'Product'),
        later(10 * i, plugin('push_objects', 'Product', 'vic', { objects: objs('Product', 2, 'pz') })),
        later(30 * i, plugin('push_deletes', 'Product', 'vic', { objects: ['product-seed-1'] })),
      ],
    },
  ]),
];
