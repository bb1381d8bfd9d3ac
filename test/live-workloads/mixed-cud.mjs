// Creates, updates and deletes mixed, from three devices of one user at once, and one request that
// carries all three operations; plugin writes of the same pair after them and among them.
import { create, del, enrollAll, fcm, apple, later, plugin, objs, sync, syncAll, update, next, obj } from './common.mjs';

export const name = 'mixed-cud';
export const description =
  'Three devices of sam create, update and delete in Product at once; a combined create+update+delete request; plugin writes after and among them.';
export const users = {
  sam: [fcm('fcm-sam-1', 'phone-sam-1'), apple('sam-iphone'), fcm('fcm-sam-3', 'phone-sam-3')],
};

const cud = (device) => ({
  op: 'cud',
  user: 'sam',
  device,
  source: 'Product',
  create: { [`temp-${next()}`]: obj('Product') },
  update: { 'product-seed-2': { price: String(next()) } },
  delete: { [`gone-${next()}`]: { name: 'x' } },
});

export const phases = [
  enrollAll(users),
  syncAll(users, ['Product']),
  ...[1, 2, 3].flatMap((i) => [
    {
      name: `mixed-${i}`,
      description: 'create, update, delete and a combined request at once, with a sync: nothing pings.',
      concurrent: true,
      steps: [
        create('sam', 0, 'Product'),
        update('sam', 1, 'Product', 'product-seed-1'),
        del('sam', 2, 'Product', `missing-${i}`),
        cud(1),
        sync('sam', 2, 'Product'),
      ],
    },
    {
      name: `updates-only-${i}`,
      description: 'Updates alone write no :md at all; a plugin write among them pings.',
      concurrent: true,
      steps: [
        update('sam', 0, 'Product', 'product-seed-1'),
        update('sam', 1, 'Product', 'product-seed-2'),
        later(10 * i, plugin('fast_update', 'Product', 'sam', { data: { 'product-seed-1': { price: '9' } } })),
      ],
    },
    {
      name: `mixed-plugin-${i}`,
      description: 'The mix again with a plugin write of the same pair among it: it pings.',
      concurrent: true,
      steps: [
        create('sam', 0, 'Product'),
        del('sam', 2, 'Product', `missing-b${i}`),
        cud(1),
        later(5 * i, plugin('push_deletes', 'Product', 'sam', { objects: ['no-such'] })),
      ],
    },
  ]),
];
