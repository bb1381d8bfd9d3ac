// Bounds for what log lines carry from outside: logins, platform names, paths. A REST call may name
// 10,000 users and a login may be half a megabyte long; a log line stays one readable line.

/** Longest piece of outside text a log line carries. */
export const MAX_LOGGED_TEXT = 200;
/** How many names a summary line lists before it only counts. */
export const MAX_LOGGED_NAMES = 5;

/** The text, cut to `max` characters with a note of how long it was. */
export function clip(text: string, max = MAX_LOGGED_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length} characters)`;
}

/** The first few names, each clipped. */
export function firstNames(names: readonly string[], count = MAX_LOGGED_NAMES, max = MAX_LOGGED_TEXT): string[] {
  return names.slice(0, count).map((n) => clip(n, max));
}

/** `a, b, c and 9,997 more`: the first few names for a message. */
export function listNames(names: readonly string[], count = MAX_LOGGED_NAMES): string {
  const shown = firstNames(names, count)
    .map((n) => `'${n}'`)
    .join(', ');
  const more = names.length - Math.min(count, names.length);
  return more > 0 ? `${shown} and ${more.toLocaleString('en-US')} more` : shown;
}

/** A copy of a JSON-like value with every string clipped (payloads shown in log lines). */
export function clipStrings(value: unknown, max = 1000): unknown {
  if (typeof value === 'string') return clip(value, max);
  if (Array.isArray(value)) return value.map((v) => clipStrings(v, max));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = clipStrings(v, max);
    return out;
  }
  return value;
}
