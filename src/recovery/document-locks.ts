// RhoConnect's document locks, read (never written) to tell whether a write is in progress.
// `lock:<docname>` is SETNX'd with an expiry in epoch seconds and deleted when the write ends; a value
// in the past is a lock its holder abandoned, which RhoConnect itself treats as free.
import type { StoreClient } from '../store/store-connection.js';
import { isCluster } from '../store/store-connection.js';
import { pairKeys, type DocumentPair } from './document-pair.js';

export class DocumentLocks {
  constructor(
    /** Where RhoConnect keeps locks: instance 0 of `:redis:`, or the cluster. */
    private readonly store: StoreClient,
    private readonly now: () => number = Date.now,
  ) {}

  /** For each pair: true while RhoConnect holds its master document's lock. */
  async held(pairs: DocumentPair[]): Promise<boolean[]> {
    if (pairs.length === 0) return [];
    const lockKeys = pairs.map((p) => pairKeys.lock(p));
    const values = isCluster(this.store) ? await Promise.all(lockKeys.map((k) => this.store.get(k))) : await this.store.mget(lockKeys);
    const nowSeconds = Math.floor(this.now() / 1000);
    return values.map((v) => {
      if (v === null) return false;
      const expiry = Number(v);
      // Not a number: someone else's lock format; assume held (a retry costs little).
      return !Number.isFinite(expiry) || expiry >= nowSeconds;
    });
  }
}
