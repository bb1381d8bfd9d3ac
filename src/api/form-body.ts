// Form-encoded bodies and query strings with bracket notation, as Ruby's RestClient and Rack write
// them: `user_id[]=a&user_id[]=b`, `user_id=a&user_id=b`, `user_id[0]=a`, `hash[key]=v`.
//
// Written here rather than taken from `qs`, whose merging of repeated keys is quadratic: a 1 MiB
// body of `user_id[]=...` took over a minute there. This parser is linear in the body size, builds
// objects without prototypes, and reports a malformed field by name.

import { RhopushError } from '../errors.js';

/** A malformed field, named. */
export class FormBodyError extends RhopushError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super('FORM_INVALID', { field, reason });
    this.name = 'FormBodyError';
  }
}

type FormValue = string | FormValue[] | FormObject;
interface FormObject {
  [key: string]: FormValue;
}

/** Deeper nesting than this is refused (RhoConnect's parameters are at most one level deep). */
export const MAX_FORM_DEPTH = 5;

const KEY_PATTERN = /^([^[\]]+)((?:\[[^[\]]*\])*)$/;

/** Parses `application/x-www-form-urlencoded` text (also a query string) into plain values. */
export function parseFormBody(text: string): Record<string, unknown> {
  const root: FormObject = Object.create(null) as FormObject;
  for (const [key, value] of new URLSearchParams(text)) {
    if (key === '') continue;
    const match = KEY_PATTERN.exec(key);
    const name = match ? match[1]! : key;
    const segments = match && match[2] ? match[2].slice(1, -1).split('][') : [];
    if (segments.length > MAX_FORM_DEPTH) throw new FormBodyError(name, `nested deeper than ${MAX_FORM_DEPTH} levels`);
    insert(root, name, segments, value);
  }
  return finish(root) as Record<string, unknown>;
}

function insert(container: FormObject, name: string, segments: string[], value: string): void {
  let holder: FormObject | FormValue[] = container;
  let slot: string = name;
  for (const segment of segments) {
    const child: FormValue | undefined = Array.isArray(holder) ? undefined : holder[slot];
    let next: FormObject | FormValue[];
    if (segment === '') {
      // `name[]`: append to a list.
      if (child === undefined) next = [];
      else if (Array.isArray(child)) next = child;
      else throw new FormBodyError(name, 'mixes a list with other kinds of value');
    } else {
      if (child === undefined) next = Object.create(null) as FormObject;
      else if (typeof child === 'object' && !Array.isArray(child)) next = child;
      else throw new FormBodyError(name, 'mixes nested fields with other kinds of value');
    }
    if (Array.isArray(holder)) holder.push(next);
    else holder[slot] = next;
    holder = next;
    slot = segment;
  }
  if (Array.isArray(holder)) {
    holder.push(value);
    return;
  }
  const existing = holder[slot];
  if (existing === undefined) holder[slot] = value;
  // A repeated plain key (`user_id=a&user_id=b`) collects its values, as qs does.
  else if (typeof existing === 'string') holder[slot] = [existing, value];
  else if (Array.isArray(existing)) existing.push(value);
  else throw new FormBodyError(name, 'mixes a value with nested fields');
}

/** Turns `[n]`-indexed objects into arrays ordered by index; everything else is kept. */
function finish(value: FormValue): unknown {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(finish);
  const keys = Object.keys(value);
  const out: Record<string, unknown> = {};
  if (keys.length > 0 && keys.every((k) => /^\d{1,9}$/.test(k))) {
    return keys
      .map(Number)
      .sort((a, b) => a - b)
      .map((k) => finish(value[String(k)]!));
  }
  for (const k of keys) {
    if (k === '__proto__') continue;
    out[k] = finish(value[k]!);
  }
  return out;
}

/** Where `parseQueryString` leaves the error of a malformed query string. */
export const QUERY_ERROR: unique symbol = Symbol('rhopush.queryError');

/**
 * The query string parser for the router. The router calls it outside fastify's error handling,
 * where a throw would end the process, so a malformed query becomes an empty query carrying its error.
 */
export function parseQueryString(text: string): Record<string, unknown> {
  // Most requests carry no query string: no parser to start for them.
  if (text === '') return {};
  try {
    return parseFormBody(text);
  } catch (err) {
    const empty: Record<string | symbol, unknown> = {};
    Object.defineProperty(empty, QUERY_ERROR, { value: err, enumerable: false });
    return empty as Record<string, unknown>;
  }
}

/** The error `parseQueryString` left on a query, if any. */
export function queryError(query: unknown): Error | undefined {
  if (query === null || typeof query !== 'object') return undefined;
  const err = (query as Record<symbol, unknown>)[QUERY_ERROR];
  return err instanceof Error ? err : undefined;
}
