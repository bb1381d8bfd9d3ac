// PingJob's input, as RhoConnect accepts it from REST, Resque and Ruby calls: loosely typed,
// normalised once here so every entry point behaves the same.
import { RhopushError } from '../errors.js';

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

/** A parameter that cannot be used, named (Resque records it under this class name). */
export class PingParamsError extends RhopushError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super('PARAMS_INVALID', { field, reason }, { field });
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

/**
 * A list given as an array (nested one level deep, as RhoConnect's Ruby example `[array_of_users]`
 * produces), or, when `commas` is set, as a comma-separated string.
 */
function list(field: string, v: unknown, commas: boolean): string[] {
  if (v === undefined || v === null || v === '') return [];
  const items =
    typeof v === 'string' ? (commas ? v.split(',') : [v]) : Array.isArray(v) ? v.flat(1) : typeof v === 'number' ? [v] : undefined;
  if (!items)
    throw new PingParamsError(field, commas ? 'expected a list or a comma-separated string' : 'expected a string or a list of strings');
  const out: string[] = [];
  for (const item of items) {
    const s = scalar(field, item);
    if (s === undefined) throw new PingParamsError(field, 'expected names, got null');
    const name = commas ? s.trim() : s;
    if (name.length > 0) out.push(name);
  }
  return out;
}

export interface NormalizeOptions {
  /** Refuse calls naming more users than this (`:rhopush: :max_users_per_ping:`). */
  maxUsers?: number;
}

/**
 * Validates and normalises ping parameters. Throws PingParamsError naming the field. A login is
 * taken as written (RhoConnect does not split or trim user_id); sources may be comma-separated.
 */
export function normalizePingParams(params: PingParams, options: NormalizeOptions = {}): NormalizedPing {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new PingParamsError('params', 'expected an object');
  }
  const users = list('user_id', params.user_id, false);
  if (users.length === 0) throw new PingParamsError('user_id', 'expected one login or a list of logins');
  if (options.maxUsers !== undefined && users.length > options.maxUsers) {
    throw new PingParamsError('user_id', `at most ${options.maxUsers} users per ping (got ${users.length})`);
  }
  const sourcesField = params.sources !== undefined && params.sources !== null ? 'sources' : 'source_id';
  const sources = list(sourcesField, params[sourcesField], true);
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

/** Params as given, or already normalised (the daemon normalises once at its entry points). */
export function asNormalized(params: PingParams | NormalizedPing): NormalizedPing {
  return Array.isArray((params as NormalizedPing).users) ? (params as NormalizedPing) : normalizePingParams(params as PingParams);
}
