// A (user, source) pair and the keys rhopush keeps or reads for it. A pair's master document is
// `source:application:<user>:<Source>:md*` plus `...:md_size`; rhopush's record of what it last
// acted on lives in `rhopush:seen:{<md_size key>}`: the hash tag keeps it in the md_size key's slot
// (and so on the same master) in a Redis Cluster.
import { keys, parseKey, RHOPUSH_PREFIX } from '../store/keys.js';

export interface DocumentPair {
  /** The user's login (RhoConnect's partition for user-partitioned sources). */
  partition: string;
  source: string;
}

export const SEEN_PREFIX = `${RHOPUSH_PREFIX}seen:{`;
/** Marks that rhopush recorded a baseline on this node (cluster: for the whole cluster). */
export const BASELINE_KEY = `${RHOPUSH_PREFIX}baseline`;

export const pairKeys = {
  mdSize: (p: DocumentPair) => keys.masterDocSize(p.partition, p.source),
  indices: (p: DocumentPair) => keys.masterDocIndices(p.partition, p.source),
  /** RhoConnect holds this (SETNX ... DEL, value = expiry in epoch seconds) around every document write. */
  lock: (p: DocumentPair) => `lock:source:application:${p.partition}:${p.source}:md`,
  seen: (p: DocumentPair) => `${SEEN_PREFIX}${keys.masterDocSize(p.partition, p.source)}}`,
};

export function pairId(p: DocumentPair): string {
  return `${p.partition}\u0000${p.source}`;
}

/** The pair an md_size key or a `rhopush:seen:` key belongs to, or undefined. */
export function pairOfKey(key: string): DocumentPair | undefined {
  const mdSize = key.startsWith(SEEN_PREFIX) && key.endsWith('}') ? key.slice(SEEN_PREFIX.length, -1) : key;
  const parsed = parseKey(mdSize);
  return parsed.kind === 'md_size' ? { partition: parsed.partition, source: parsed.source } : undefined;
}
