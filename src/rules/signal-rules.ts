// The capture rules as data. Two tables, both tested against every recorded RhoConnect scenario:
//
// 1. SIGNAL_RULES say what a keyspace event on a subscribed key means (RHOCONNECT.md, signal table):
//    - a plugin write (push_objects, push_deletes, fast_insert/update/delete) ends by INCRBY on the
//      source's md_size, even by 0;
//    - a device's own sync rebuilds the document and SETs md_size;
//    - a device's own create/delete goes through a CUD queue shared by every client of the source:
//      the request that runs the queue deletes every entry (each names its client) and then the
//      queue, INCRBYs the cd_size of each client whose objects it stored, then writes the master
//      document once per user and INCRBYs its md_size. That write is the device's own (see
//      device-edit-ledger.ts for how writes are matched to queue runs under concurrency);
//    - a device's search INCRBYs its cd_size, then md_size: a run of its own.
//    Everything else RhoConnect writes (set_db_doc, clients, users, locks, temporary md<hex> docs,
//    read states) never touches these keys with these events, so it is not even subscribed.
//
// 2. DECISION_RULES decide, in order, whether a data write deserves a ping. First match wins.

import type { ParsedKey } from '../store/keys.js';
import type { SourcePolicy } from '../config/settings.js';
import { SHARED_PARTITION } from '../store/keys.js';

export type Signal =
  /** A write to a master document's object count that can come from a plugin. */
  | 'data-write'
  /** A device edit announced by its client document count; its user's next data-write of the run is its own. */
  | 'device-edit-mark'
  /** A CUD queue run took a client's entry. */
  | 'cud-entry-taken'
  /** A CUD queue run emptied the queue: the run's entries are all known. */
  | 'cud-queue-taken'
  /** Nothing to do (device sync, unrelated). */
  | 'none'
  /** rhopush's own canary came back. */
  | 'canary';

export interface SignalRule {
  name: string;
  key: ParsedKey['kind'];
  events: readonly string[];
  signal: Signal;
  why: string;
}

export const SIGNAL_RULES: readonly SignalRule[] = [
  {
    name: 'md-size-incrby',
    key: 'md_size',
    events: ['incrby', 'decrby'],
    signal: 'data-write',
    why: 'push_objects, push_deletes and fast_* end by INCRBY md_size (even by 0); device create/delete too, told apart by their cd_size mark',
  },
  {
    name: 'md-size-set',
    key: 'md_size',
    events: ['set'],
    signal: 'none',
    why: "a device's own sync (adapter query) rebuilds the document and SETs md_size",
  },
  {
    name: 'cd-size-incrby',
    key: 'cd_size',
    events: ['incrby', 'decrby'],
    signal: 'device-edit-mark',
    why: "a device's own create/delete (or search) INCRBYs its client document count before its user's master document write",
  },
  {
    name: 'cud-entry-del',
    key: 'cud_entry',
    events: ['del'],
    signal: 'cud-entry-taken',
    why: "a request running a shared CUD queue deletes each client's entry: that client's objects are processed by this run",
  },
  {
    name: 'cud-queue-del',
    key: 'cud_queue',
    events: ['del'],
    signal: 'cud-queue-taken',
    why: 'the run then empties the queue: one master document write per user of the run follows',
  },
  {
    name: 'cd-size-set',
    key: 'cd_size',
    events: ['set'],
    signal: 'none',
    why: "a device's sync SETs its client document count after the master document",
  },
  {
    name: 'canary',
    key: 'canary',
    // SET ... PX announces `set` ($) then `expire` (g): the second one answers the probe, which
    // proves both flags; the first is only its echo.
    events: ['set', 'expire'],
    signal: 'canary',
    why: "rhopush's own liveness probe; proves the subscription still delivers, with every flag capture needs",
  },
];

/** What a data write looks like once its key is parsed and its source's settings are known. */
export interface DataWriteFacts {
  partition: string;
  source: string;
  policy: SourcePolicy;
  /** A device's queue run (or search) of the same (user, source) still has this write to make. */
  deviceEdit: boolean;
}

export interface DecisionRule {
  rule: string;
  when: (f: DataWriteFacts) => boolean;
  ping: boolean;
  why: string;
}

export const DECISION_RULES: readonly DecisionRule[] = [
  {
    rule: 'app-partition',
    when: (f) => f.partition === SHARED_PARTITION,
    ping: false,
    why: 'app-partitioned data lives under __shared__; RhoConnect never auto-pings it',
  },
  {
    rule: 'app-partition-settings',
    when: (f) => f.policy.partitionType === 'app',
    ping: false,
    why: ':partition_type: app in settings.yml',
  },
  {
    rule: 'device-edit',
    when: (f) => f.deviceEdit,
    ping: false,
    why: "a device's own create/delete; its user already has the change",
  },
  {
    rule: 'push-notify-off',
    when: (f) => !f.policy.pushNotify,
    ping: false,
    why: ':push_notify: is not true for this source (own value or environment default)',
  },
  {
    rule: 'plugin-write',
    when: () => true,
    ping: true,
    why: 'a backend wrote user-partitioned data with push_notify on',
  },
];

/** Rules that end a keyspace event without a decision, for metrics alongside DECISION_RULES. */
export const NON_DECISION_RULES = [
  'unparsed-key',
  'ignored-event',
  'device-edit-mark',
  'cud-entry-taken',
  'cud-queue-taken',
  'canary',
] as const;
