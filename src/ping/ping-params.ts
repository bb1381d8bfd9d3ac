// PingJob's input, as RhoConnect accepts it from REST, Resque and Ruby calls: loosely typed,
// normalised once here so every entry point behaves the same.

/** Parameters of a ping, in RhoConnect's names. */
export interface PingParams {
  /** One login or several. */
  user_id: string | string[];
  /** Sources to sync: a list, a comma-separated string, or 'all'. */
  sources?: string[] | string;
  /** Alias of `sources` sent by RhoConnect's .NET and Java examples. */
  source_id?: string[] | string;
  message?: string | number;
  badge?: string | number;
  sound?: string | number;
  vibrate?: string | number;
  /** REST and CLI only: queue the ping instead of running it. */
  async?: unknown;
  [extra: string]: unknown;
}

/** A ping after normalisation: every value a string, as PingJob passes them to the platforms. */
export interface NormalizedPing {
  users: string[];
  /** [] when none were given; ['all'] for every source. */
  sources: string[];
  message?: string;
  badge?: string;
  sound?: string;
  /** Always a string, '' when not given (RhoConnect's `params['vibrate'].to_s`). */
  vibrate: string;
}

export class PingParamsError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'PingParamsError';
  }
}

function scalar(field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return String(v);
  throw new PingParamsError(field, 'expected a string or a number');
}

function list(field: string, v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  const items = typeof v === 'string' ? v.split(',') : Array.isArray(v) ? v : undefined;
  if (!items) throw new PingParamsError(field, 'expected a list or a comma-separated string');
  return items.map((item) => {
    const s = scalar(field, item);
    if (s === undefined) throw new PingParamsError(field, 'expected names, got null');
    return s.trim();
  }).filter((s) => s.length > 0);
}

export function normalizePingParams(params: PingParams): NormalizedPing {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new PingParamsError('params', 'expected an object');
  }
  const users = list('user_id', params.user_id);
  if (users.length === 0) throw new PingParamsError('user_id', 'expected one login or a list of logins');
  const rawSources = params.sources ?? params.source_id;
  const sources = list(params.sources !== undefined ? 'sources' : 'source_id', rawSources);
  const badge = scalar('badge', params.badge);
  if (badge !== undefined && badge !== '' && !/^-?\d+$/.test(badge.trim())) {
    throw new PingParamsError('badge', 'expected a whole number');
  }
  return {
    users: [...new Set(users)],
    sources: sources.some((s) => s.toLowerCase() === 'all') ? ['all'] : [...new Set(sources)],
    message: scalar('message', params.message),
    badge: badge?.trim(),
    sound: scalar('sound', params.sound),
    vibrate: scalar('vibrate', params.vibrate) ?? '',
  };
}
