// RhoConnect's API token check for admin routes: the token comes from the X-RhoConnect-API-TOKEN
// header or an `api_token` parameter, and must be the configured `:api_token:` / API_TOKEN or a
// RhoConnect token record (`api_token:<token>:user_id`) of a user whose `admin` is 1.
import { createHash, timingSafeEqual } from 'node:crypto';
import { RhopushError } from '../errors.js';
import type { RhoconnectStore } from '../store/rhoconnect-store.js';

export const API_TOKEN_HEADER = 'x-rhoconnect-api-token';

/** Longer tokens are refused without a Redis lookup (RhoConnect's are 32 hex characters). */
const MAX_TOKEN_LENGTH = 1024;

export type ApiTokenOutcome =
  { ok: true; via: 'settings' | 'token-record'; user?: string } | { ok: false; error: 'API_TOKEN_MISSING' | 'API_USER_INVALID' };

/**
 * A presented token: its text, or null when the value given is not text (a list, an object).
 * Empty values count as not given.
 */
export type PresentedToken = string | null;

/** The tokens a request presents, header first (RhoConnect looks there first), then the parameter. */
export function presentedTokens(header: unknown, parameter: unknown): PresentedToken[] {
  const tokens: PresentedToken[] = [];
  for (const value of [header, parameter]) {
    if (value === undefined || value === null || value === '') continue;
    if (typeof value === 'string') tokens.push(value);
    else if (typeof value === 'number' && Number.isFinite(value)) tokens.push(String(value));
    else tokens.push(null);
  }
  return tokens;
}

/** The configured token's digest, worked out once per value rather than at every request. */
let configuredDigest: { token: string; digest: Buffer } | undefined;

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * Constant-time equality (digests first, so the lengths do not show either). `b` is the configured
 * token: its digest is kept while it stays the same.
 */
export function sameToken(a: string, b: string): boolean {
  if (configuredDigest?.token !== b) configuredDigest = { token: b, digest: digestOf(b) };
  return timingSafeEqual(digestOf(a), configuredDigest.digest);
}

/**
 * Accepts when any presented token is valid. A token record is looked up by key in Redis, which
 * does not compare the token character by character, so only the configured token needs the
 * constant-time comparison.
 */
export async function checkApiToken(
  tokens: PresentedToken[],
  configured: string | undefined,
  store: RhoconnectStore,
  /** Why Redis cannot answer now: a lookup would wait for it, so it throws this reason instead. */
  unavailable?: () => string | undefined,
): Promise<ApiTokenOutcome> {
  if (tokens.length === 0) return { ok: false, error: 'API_TOKEN_MISSING' };
  for (const token of tokens) {
    if (token === null || token.length > MAX_TOKEN_LENGTH) continue;
    if (configured && sameToken(token, configured)) return { ok: true, via: 'settings' };
  }
  for (const token of tokens) {
    if (token === null || token.length > MAX_TOKEN_LENGTH) continue;
    const down = unavailable?.();
    if (down) throw new Error(down);
    const user = await store.apiTokenUser(token);
    if (user !== undefined && (await store.userExists(user)) && (await store.isAdmin(user))) return { ok: true, via: 'token-record', user };
  }
  return { ok: false, error: 'API_USER_INVALID' };
}

export interface TokenCheckDeps {
  settings: () => { apiToken?: string };
  store: RhoconnectStore;
  redisUnavailable?: () => string | undefined;
}

/**
 * The common case decided without a promise: the header carries the configured token. Anything else
 * (no header, another token, a token record) goes through `refuseToken`, which would accept this
 * case the same way, header first.
 */
export function headerHasConfiguredToken(configured: string | undefined, header: unknown): boolean {
  return !!configured && typeof header === 'string' && header !== '' && header.length <= MAX_TOKEN_LENGTH && sameToken(header, configured);
}

/**
 * RhoConnect's token rule for one request (every API route but /healthz, /metrics and the console's
 * page): undefined when a presented token is valid, else the error to answer with (422 as
 * RhoConnect answers, 503 when a RhoConnect-issued token cannot be looked up now).
 */
export async function refuseToken(deps: TokenCheckDeps, header: unknown, parameter: unknown): Promise<RhopushError | undefined> {
  let auth: ApiTokenOutcome;
  try {
    auth = await checkApiToken(presentedTokens(header, parameter), deps.settings().apiToken, deps.store, () => deps.redisUnavailable?.());
  } catch (err) {
    return new RhopushError('API_TOKEN_UNCHECKED', { reason: (err as Error).message });
  }
  return auth.ok ? undefined : new RhopushError(auth.error);
}
