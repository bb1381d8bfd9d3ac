// Many devices of several users editing two sources at once, round after round: shared CUD queues
// run by whichever request gets there first (often two or three at once, when RhoConnect's queue
// lock expires on a second boundary), lock waits of a second, syncs rewriting :md, and plugin
// writes landing among all of it, early, in the middle and late.
import { apple, create, del, enrollAll, fcm, later, plugin, objs, sync, syncAll } from './common.mjs';

export const name = 'storm';
export const description =
  'Four users with three devices each create and delete in Product and Contact at once, with syncs; plugin writes of some pairs land among the edits.';
export const users = {
  wren: [fcm('fcm-wren-1', 'phone-wren-1'), fcm('fcm-wren-2', 'phone-wren-2'), apple('wren-ipad')],
  xan: [apple('xan-iphone'), fcm('fcm-xan-2', 'phone-xan-2'), fcm('fcm-xan-3', 'phone-xan-3')],
  yara: [fcm('fcm-yara-1', 'phone-yara-1'), apple('yara-iphone'), apple('yara-ipad')],
  zed: [fcm('fcm-zed-1', 'phone-zed-1'), fcm('fcm-zed-2', 'phone-zed-2'), fcm('fcm-zed-3', 'phone-zed-3')],
};
const names = Object.keys(users);

/** Every device of every user edits: creates in both sources, deletes of ids it may not have. */
const edits = (round) =>
  names.flatMap((u) => [
    create(u, 0, 'Product'),
    create(u, 1, 'Product', 2),
    create(u, 2, 'Contact'),
    del(u, (round + 1) % 3, 'Contact', `gone-${u}-${round}`),
    del(u, round % 3, 'Product', `product-seed-${(round % 2) + 1}`),
  ]);

export const phases = [
  enrollAll(users),
  syncAll(users, ['Product', 'Contact']),
  ...[1, 2, 3, 4].flatMap((i) => [
    {
      name: `storm-${i}`,
      description: 'Twenty device edits and two syncs at once: nothing pings.',
      concurrent: true,
      steps: [...edits(i), sync(names[i % 4], 0, 'Product'), sync(names[(i + 1) % 4], 1, 'Contact')],
    },
    {
      name: `storm-plugin-${i}`,
      description:
        'The same storm with plugin writes of three pairs at 0, 40 and 400 ms (the last one during the lock waits): exactly those pairs ping.',
      concurrent: true,
      steps: [
        ...edits(i + 10),
        plugin('push_objects', 'Product', names[i % 4], { objects: objs('Product', 1, 'st') }),
        later(40, plugin('fast_insert', 'Contact', names[(i + 1) % 4], { data: objs('Contact', 1, 'st') })),
        later(400, plugin('push_deletes', 'Product', names[(i + 2) % 4], { objects: ['no-such-id'] })),
      ],
    },
  ]),
];
