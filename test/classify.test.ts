import { describe, expect, it } from 'vitest';
import { parseSettings } from '../src/config/index.js';
import { ChangeClassifier, classifyKeyspaceEvent } from '../src/rules/classify.js';
import { DECISION_RULES, SIGNAL_RULES } from '../src/rules/signal-rules.js';
import { pingsMatch, summarisePing, type PingSummary } from '../src/replay/fixture.js';
import { buildSettings } from '../src/kit/index.js';
import { fixture, fixtureFiles } from './helpers/fixtures.js';
import { loadFixture } from '../src/replay/fixture.js';

const settings = buildSettings({
  environment: 'development',
  sources: { Product: { pushNotify: 'true' }, Note: { partition: 'user' }, Catalog: { partition: 'app', pushNotify: 'true' } },
});

const md = (user: string, source: string) => `source:application:${user}:${source}:md_size`;
const cd = (user: string, client: string, source: string) => `client:application:${user}:${client}:${source}:cd_size`;
/** A client's entry in a shared CUD queue of `source`. */
const entry = (source: string, score: number, client: string, op = 'create') =>
  `source:application:${source}:${op}:${score}:${client}:${source}:0:indices`;
/** A request running the shared queue of `source`: deletes these clients' entries, then the queue. */
const flush = (source: string, ...clients: string[]): [string, string][] => {
  const op = clients.at(-1) === 'delete' ? clients.pop()! : 'create';
  return [...clients.map((c, i): [string, string] => [entry(source, i + 1, c, op), 'del']), [`source:application:${source}:${op}`, 'del']];
};

/** Classifies a keyspace event stream and groups the ping decisions per user. */
function pingsFor(classifier: ChangeClassifier, events: [string, string][]): PingSummary[] {
  const byUser = new Map<string, Set<string>>();
  for (const [key, event] of events) {
    const d = classifier.classify(key, event);
    if (d.ping) (byUser.get(d.user) ?? byUser.set(d.user, new Set()).get(d.user)!).add(d.source);
  }
  return [...byUser].map(([u, s]) => ({ user_id: [u], sources: [...s] }));
}

describe('capture rules (data tables)', () => {
  it('are tables: every signal rule names its key kind and events, every decision says why', () => {
    expect(SIGNAL_RULES.length).toBeGreaterThan(0);
    for (const r of SIGNAL_RULES) expect(r.why.length).toBeGreaterThan(10);
    expect(DECISION_RULES.at(-1)!.rule).toBe('plugin-write');
    expect(classifyKeyspaceEvent(md('alice', 'Product'), 'incrby').rule?.signal).toBe('data-write');
    expect(classifyKeyspaceEvent(md('alice', 'Product'), 'set').rule?.signal).toBe('none');
    expect(classifyKeyspaceEvent('user:alice:clients', 'sadd').rule).toBeUndefined();
  });

  it.each(fixtureFiles())('decides as RhoConnect did on the recorded keyspace events of %s', (file) => {
    const f = loadFixture(file);
    const s = parseSettings(f.settings.settings_yml, file, { environment: f.settings.environment, env: {} });
    const classifier = new ChangeClassifier(s);
    // Live recordings carry every event since RhoConnect's bootstrap: runs announced in the setup
    // may still be waiting for their write when the operation starts.
    const raw = JSON.parse(JSON.stringify(f)) as { keyspace_events: [string, string][]; setup_keyspace_events?: [string, string][] };
    pingsFor(classifier, raw.setup_keyspace_events ?? []);
    const actual = pingsFor(classifier, raw.keyspace_events);
    const expected = f.rhoconnect_pings.map((p) => summarisePing(p.params));
    expect(pingsMatch(expected, actual), JSON.stringify({ expected, actual })).toBe(true);
  });

  it('pings for a plugin write while the same user is syncing', () => {
    const c = new ChangeClassifier(settings);
    const events: [string, string][] = [
      ['client:c1:last_sync', 'set'],
      [md('alice', 'Product'), 'incrby'], // plugin write lands in the middle of the sync
      [md('alice', 'Product'), 'set'], // the sync's own rebuild
      [cd('alice', 'c1', 'Product'), 'set'],
    ];
    expect(pingsFor(c, events)).toEqual([{ user_id: ['alice'], sources: ['Product'] }]);
  });

  it("never pings for a device's own create or delete, whatever else interleaves", () => {
    const c = new ChangeClassifier(settings);
    const events: [string, string][] = [
      ...flush('Product', 'c1'),
      [cd('alice', 'c1', 'Product'), 'incrby'], // device create announces itself
      [md('bob', 'Product'), 'incrby'], // another user's plugin write in between
      [md('alice', 'Product'), 'incrby'], // the device's own master document write
      ...flush('Product', 'c1', 'delete'),
      [cd('alice', 'c1', 'Product'), 'incrby'], // a device delete (negative INCRBY still says incrby)
      [md('alice', 'Product'), 'incrby'],
    ];
    expect(pingsFor(c, events)).toEqual([{ user_id: ['bob'], sources: ['Product'] }]);
    expect(c.pendingDeviceEdits).toBe(0);
  });

  it('one run of a shared queue for several clients of a user writes once: a later plugin write still pings', () => {
    const c = new ChangeClassifier(settings);
    expect(
      pingsFor(c, [
        ...flush('Product', 'c1', 'c2', 'b1'),
        [cd('alice', 'c1', 'Product'), 'incrby'],
        [cd('bob', 'b1', 'Product'), 'incrby'],
        [cd('alice', 'c2', 'Product'), 'incrby'],
        [md('alice', 'Product'), 'incrby'], // one write per user of the run
        [md('bob', 'Product'), 'incrby'],
        [md('alice', 'Product'), 'incrby'], // a plugin write: pings
      ]),
    ).toEqual([{ user_id: ['alice'], sources: ['Product'] }]);
  });

  it('two runs of one user, the first waiting a second for the lock behind the second: no ping', () => {
    const c = new ChangeClassifier(settings);
    expect(
      pingsFor(c, [
        ...flush('Product', 'c1'),
        [cd('alice', 'c1', 'Product'), 'incrby'], // run 1 marks, then waits for the :md lock
        ...flush('Product', 'c2'),
        [cd('alice', 'c2', 'Product'), 'incrby'],
        [md('alice', 'Product'), 'incrby'], // run 2 writes
        [md('alice', 'Product'), 'incrby'], // run 1 writes a second later
      ]),
    ).toEqual([]);
    expect(c.pendingDeviceEdits).toBe(0);
  });

  it('requests that read one queue at once (its lock expired on a second boundary) each write once', () => {
    const c = new ChangeClassifier(settings);
    expect(
      pingsFor(c, [
        ...flush('Product', 'c1', 'c2'), // only the first reader's DELs show
        [cd('alice', 'c1', 'Product'), 'incrby'],
        [cd('alice', 'c2', 'Product'), 'incrby'],
        [cd('alice', 'c1', 'Product'), 'incrby'], // second reader
        [md('alice', 'Product'), 'incrby'],
        [cd('alice', 'c2', 'Product'), 'incrby'],
        [cd('alice', 'c1', 'Product'), 'incrby'], // third reader (c1 only)
        [md('alice', 'Product'), 'incrby'],
        [md('alice', 'Product'), 'incrby'],
      ]),
    ).toEqual([]);
    expect(c.pendingDeviceEdits).toBe(0);
    expect(c.classify(md('alice', 'Product'), 'incrby').ping).toBe(true);
  });

  it('entries queued at the same moment share a score: the run files them under the first client', () => {
    const c = new ChangeClassifier(settings);
    const events: [string, string][] = [
      [entry('Product', 1, 'c1'), 'del'],
      [entry('Product', 1, 'c2'), 'del'], // same score: processed as c1's
      ['source:application:Product:create', 'del'],
      [cd('alice', 'c1', 'Product'), 'incrby'],
      [md('alice', 'Product'), 'incrby'],
      // c2's next create runs alone and is read twice; the first flush must not take its marks
      ...flush('Product', 'c2'),
      [cd('alice', 'c2', 'Product'), 'incrby'],
      [cd('alice', 'c2', 'Product'), 'incrby'],
      [md('alice', 'Product'), 'incrby'],
      [md('alice', 'Product'), 'incrby'],
    ];
    expect(pingsFor(c, events)).toEqual([]);
    expect(c.pendingDeviceEdits).toBe(0);
  });

  it("a flush's entry that no run processed does not swallow that client's later runs", () => {
    const c = new ChangeClassifier(settings);
    expect(
      pingsFor(c, [
        ...flush('Product', 'c1', 'c2'), // c2 queued after the run read the queue: deleted, never run
        [cd('alice', 'c1', 'Product'), 'incrby'],
        [md('alice', 'Product'), 'incrby'],
        ...flush('Product', 'c2'),
        [cd('alice', 'c2', 'Product'), 'incrby'],
        [cd('alice', 'c2', 'Product'), 'incrby'], // a second reader of that run
        [md('alice', 'Product'), 'incrby'],
        [md('alice', 'Product'), 'incrby'],
        [md('alice', 'Product'), 'incrby'], // plugin write
      ]),
    ).toEqual([{ user_id: ['alice'], sources: ['Product'] }]);
  });

  it('still pings once when a plugin write for the same user and source lands inside a device create', () => {
    const c = new ChangeClassifier(settings);
    const events: [string, string][] = [
      ...flush('Product', 'c1'),
      [cd('alice', 'c1', 'Product'), 'incrby'],
      [md('alice', 'Product'), 'incrby'], // plugin write (takes the run)
      [md('alice', 'Product'), 'incrby'], // the device's write
    ];
    expect(pingsFor(c, events)).toEqual([{ user_id: ['alice'], sources: ['Product'] }]);
  });

  it('lets a run whose write never came expire instead of silencing a later plugin write', () => {
    let now = 1_000;
    const c = new ChangeClassifier(settings, { deviceEditTtlMs: 5_000, now: () => now });
    c.classify(cd('alice', 'c1', 'Product'), 'incrby');
    now += 6_000;
    expect(c.classify(md('alice', 'Product'), 'incrby')).toMatchObject({ ping: true, rule: 'plugin-write' });
  });

  it('a run counted twice expires with its busy spell, however many runs follow it', () => {
    let now = 0;
    const c = new ChangeClassifier(settings, { deviceEditTtlMs: 5_000, now: () => now });
    const run = (client: string, dup = false) => {
      for (const [key, event] of [...flush('Product', client), [cd('alice', client, 'Product'), 'incrby'] as [string, string]])
        c.classify(key, event);
      if (dup) c.classify(cd('alice', 'c0', 'Product'), 'incrby'); // counted once too often
      return c.classify(md('alice', 'Product'), 'incrby').ping;
    };
    expect(run('c1', true)).toBe(false);
    // The pair never goes quiet: every two seconds another device run marks and writes.
    for (const client of ['c2', 'c3']) {
      now += 2_000;
      expect(run(client)).toBe(false);
    }
    expect(c.pendingDeviceEdits).toBe(1);
    now += 2_000; // 6 s after the spell began: the excess run has expired
    expect(c.classify(md('alice', 'Product'), 'incrby')).toMatchObject({ ping: true, rule: 'plugin-write' });
  });

  it("forgets the runs a dropped node's subscription announced", () => {
    const c = new ChangeClassifier(settings);
    c.classify(cd('alice', 'c1', 'Product'), 'incrby', 'n1');
    c.classify(cd('bob', 'b1', 'Product'), 'incrby', 'n2');
    c.nodeDown('n1');
    expect(c.classify(md('alice', 'Product'), 'incrby', 'n1').ping).toBe(true);
    expect(c.classify(md('bob', 'Product'), 'incrby', 'n2').ping).toBe(false);
  });

  it('names the rule for every kind of non-ping', () => {
    const c = new ChangeClassifier(settings);
    expect(c.classify(md('__shared__', 'Catalog'), 'incrby').rule).toBe('app-partition');
    expect(c.classify(md('alice', 'Catalog'), 'incrby').rule).toBe('app-partition-settings');
    expect(c.classify(md('alice', 'Note'), 'incrby').rule).toBe('push-notify-off');
    expect(c.classify(md('alice', 'Unlisted'), 'incrby').rule).toBe('push-notify-off');
    expect(c.classify(md('alice', 'Product'), 'set').rule).toBe('md-size-set');
    expect(c.classify(md('alice', 'Product'), 'del').rule).toBe('ignored-event');
    expect(c.classify('source:application:alice:Product:md:35', 'sadd').rule).toBe('unparsed-key');
    expect(c.classify(md('a:b c✓', 'Product'), 'incrby')).toEqual({ ping: true, rule: 'plugin-write', user: 'a:b c✓', source: 'Product' });
  });

  it('applies new settings to the next event (hot reload)', () => {
    const c = new ChangeClassifier(settings);
    expect(c.classify(md('alice', 'Note'), 'incrby').ping).toBe(false);
    c.setSettings(buildSettings({ environment: 'development', sources: { Note: { pushNotify: 'true' } } }));
    expect(c.classify(md('alice', 'Note'), 'incrby').ping).toBe(true);
  });

  it('has fixtures for every scenario kind the README of the recordings lists', () => {
    expect(fixtureFiles().length).toBe(40);
    expect(fixtureFiles().filter((f) => f.includes('/live-')).length).toBe(16);
    expect(fixture('14-cud-create-from-device').rhoconnect_pings).toEqual([]);
  });
});
