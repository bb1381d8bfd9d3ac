import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

/** One recorded Redis command: `{"db":0,"cmd":["sadd","key","member"],"t_us":1234}`. */
export interface FixtureCommand {
  db: number;
  cmd: string[];
  t_us?: number;
  instance?: string;
  during_ping_job?: boolean;
}

export interface FixturePing {
  method?: string;
  params: { user_id: string | string[]; sources?: string[] | string; [k: string]: unknown };
}

/** A recorded RhoConnect scenario (the `fixtures/rhoconnect/` format). */
export interface Fixture {
  file: string;
  scenario: string;
  description: string;
  settings: { settings_yml: string; environment: string; redis: string | string[] };
  setup: FixtureCommand[];
  commands: FixtureCommand[];
  rhoconnect_pings: FixturePing[];
  keyspace_events?: [string, string][];
}

export class FixtureError extends Error {
  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'FixtureError';
  }
}

export function loadFixture(file: string): Fixture {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new FixtureError(file, `cannot read fixture (${(err as Error).message})`);
  }
  return validateFixture(data, file);
}

export function validateFixture(data: unknown, file: string): Fixture {
  const d = data as Partial<Fixture> | null;
  if (!d || typeof d !== 'object') throw new FixtureError(file, 'expected a JSON object');
  const s = d.settings;
  if (!s || typeof s.settings_yml !== 'string') throw new FixtureError(file, 'settings.settings_yml is missing');
  for (const part of ['setup', 'commands'] as const) {
    const list = d[part] ?? [];
    if (!Array.isArray(list)) throw new FixtureError(file, `${part} must be a list of commands`);
    list.forEach((c, i) => {
      if (!c || !Array.isArray(c.cmd) || c.cmd.length === 0 || !c.cmd.every((x) => typeof x === 'string')) {
        throw new FixtureError(file, `${part}[${i}].cmd must be a non-empty list of strings`);
      }
    });
  }
  if (d.rhoconnect_pings !== undefined && !Array.isArray(d.rhoconnect_pings)) {
    throw new FixtureError(file, 'rhoconnect_pings must be a list');
  }
  return {
    file,
    scenario: d.scenario ?? basename(file, '.json'),
    description: d.description ?? '',
    settings: { settings_yml: s.settings_yml, environment: s.environment ?? 'development', redis: s.redis ?? 'localhost:6379' },
    setup: d.setup ?? [],
    commands: d.commands ?? [],
    rhoconnect_pings: d.rhoconnect_pings ?? [],
    keyspace_events: d.keyspace_events,
  };
}

/** A ping reduced to what replay compares: who, and which sources. */
export interface PingSummary {
  user_id: string[];
  sources: string[];
}

export function summarisePing(p: FixturePing['params']): PingSummary {
  const users = Array.isArray(p.user_id) ? p.user_id : [p.user_id];
  const sources = p.sources === undefined ? [] : Array.isArray(p.sources) ? p.sources : String(p.sources).split(',');
  return { user_id: users.map(String), sources: sources.map(String) };
}

/**
 * Pings match when every user gets the same union of sources: grouping may merge one user's
 * pings from one file into one.
 */
export function pingsMatch(expected: PingSummary[], actual: PingSummary[]): boolean {
  const union = (pings: PingSummary[]) => {
    const byUser = new Map<string, Set<string>>();
    for (const p of pings) for (const u of p.user_id) for (const s of p.sources) (byUser.get(u) ?? byUser.set(u, new Set()).get(u)!).add(s);
    for (const p of pings) for (const u of p.user_id) if (!byUser.has(u)) byUser.set(u, new Set());
    return byUser;
  };
  const a = union(expected);
  const b = union(actual);
  if (a.size !== b.size) return false;
  for (const [user, sources] of a) {
    const other = b.get(user);
    if (!other || other.size !== sources.size || [...sources].some((s) => !other.has(s))) return false;
  }
  return true;
}
