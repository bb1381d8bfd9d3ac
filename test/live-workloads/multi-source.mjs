// One user's devices edit two sources at once while plugin writes hit one of them.
import { create, del, enrollAll, fcm, apple, later, plugin, objs, sync, syncAll } from './common.mjs';

export const name = 'multi-source';
export const description = 'Two devices of tess edit Product and Contact at once; plugin writes for one source only.';
export const users = {
  tess: [fcm('fcm-tess-1', 'phone-tess-1'), apple('tess-iphone')],
  uma: [fcm('fcm-uma', 'phone-uma')],
};

export const phases = [
  enrollAll(users),
  syncAll(users, ['Product', 'Contact']),
  ...[1, 2, 3].flatMap((i) => [
    {
      name: `both-sources-${i}`,
      description: 'tess creates in Product and Contact from both devices, syncs both; uma too: nothing pings.',
      concurrent: true,
      steps: [
        create('tess', 0, 'Product'),
        create('tess', 1, 'Product'),
        create('tess', 0, 'Contact'),
        create('tess', 1, 'Contact'),
        sync('tess', 0, 'Product'),
        sync('tess', 1, 'Contact'),
        create('uma', 0, 'Product'),
        create('uma', 0, 'Contact'),
      ],
    },
    {
      name: `plugin-one-source-${i}`,
      description: 'The same edits with a plugin write of tess/Contact among them: only tess/Contact pings.',
      concurrent: true,
      steps: [
        create('tess', 0, 'Product'),
        create('tess', 1, 'Product'),
        create('tess', 0, 'Contact'),
        del('tess', 1, 'Contact', `nope-${i}`),
        sync('tess', 1, 'Product'),
        create('uma', 0, 'Contact'),
        later(15 * i, plugin('push_objects', 'Contact', 'tess', { objects: objs('Contact', 1, 'ms') })),
      ],
    },
  ]),
];
