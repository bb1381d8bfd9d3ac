// JSON request bodies. fastify's own parser refuses keys that could poison prototypes, but answers
// them (like any other failure) with "Body is not valid JSON", which is wrong for a valid document
// and hides the reason. This parser refuses the same keys and says which key, and why.
import { RhopushError } from '../errors.js';

/** The key a body must not carry, or undefined. `constructor` counts only with a `prototype` inside. */
function poisonousKey(key: string, value: unknown): string | undefined {
  if (key === '__proto__') return '__proto__';
  if (key === 'constructor' && value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype'))
    return 'constructor.prototype';
  return undefined;
}

/** fastify content-type parser (`parseAs: 'string'`) for application/json. */
export function parseJsonBody(_request: unknown, body: string | Buffer, done: (err: Error | null, value?: unknown) => void): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.length === 0) {
    done(new RhopushError('JSON_EMPTY'));
    return;
  }
  let refused: string | undefined;
  let value: unknown;
  try {
    // A reviver costs a call per value; only a body that names one of the keys can carry it (an
    // escaped spelling such as "\u005f_proto__" takes the reviver too, through the backslash).
    value =
      text.includes('__proto__') || text.includes('constructor') || text.includes('\\u')
        ? JSON.parse(text, (key, v: unknown) => {
            refused ??= poisonousKey(key, v);
            return v;
          })
        : JSON.parse(text);
  } catch (err) {
    done(new RhopushError('JSON_INVALID', { reason: (err as Error).message }));
    return;
  }
  if (refused) {
    done(new RhopushError('JSON_KEY_REFUSED', { key: refused }));
    return;
  }
  done(null, value);
}
