// "Why didn't my phone sync?" for one user, from what rhopush keeps in Redis: the user's devices
// (RhoConnect's clients, and rhopush's dead tokens), the captured changes and what was decided for
// each, the pings and each device's outcome, what settings.yml says about each source (through the
// same decide() live capture uses), and a verdict per device. `rhopush why`, the API and the console
// all show this one explanation; nothing here needs a running daemon.
import { sourcePolicy, type Settings } from '../config/settings.js';
import type { HistoryReader } from '../history/ping-history.js';
import type { DecisionEntry, PingRecord } from '../history/ping-record.js';
import { platformOf, pushToken, shortenToken, type Platform } from '../push/adapter.js';
import type { DeadToken } from '../push/dead-tokens.js';
import { decide } from '../rules/decide.js';
import { keys } from '../store/keys.js';
import type { ClientRecord, RhoconnectStore } from '../store/rhoconnect-store.js';
import { clip } from '../util/log-text.js';

export interface WhyContext {
  settings: Settings;
  store: RhoconnectStore;
  history: HistoryReader;
  /** rhopush's dead-token records (`rhopush:dead:<platform>:<token>`). */
  deadTokens: { find(platform: string, token: string): Promise<DeadToken | undefined> };
}

export interface WhyOptions {
  /** Only this source's changes and pings. */
  source?: string;
  /** Only what happened since then (ms since the epoch). */
  since?: number;
  /** The time of the explanation (default now). */
  now?: number;
  /** IANA zone the verdict's times are written in (default: this machine's). */
  timeZone?: string;
}

export interface WhyDevice {
  clientId: string;
  /** What the device is, in words: `iPhone`, `Android phone`, ... */
  label: string;
  /** The platform rhopush pushes it through; absent when it has none. */
  platform?: Platform;
  /** device_push_type, else device_type, as registered. */
  deviceType?: string;
  /** The push token, shortened. */
  token?: string;
  /** Pings reach it. */
  registered: boolean;
  /** Why pings do not reach it. */
  problem?: string;
  /** The platform reported its token dead (rhopush skips it until the device registers a new one). */
  dead?: { reason: string; at: string };
  lastSync?: string;
}

export interface WhySource {
  source: string;
  listed: boolean;
  partition: 'user' | 'app';
  pushNotify: boolean;
  /** A plugin write of this user's data pings. */
  pings: boolean;
  /** The decision rule a plugin write of this user meets (decide()). */
  rule: string;
  text: string;
}

export interface WhyDeviceOutcome {
  clientId: string;
  platform: string;
  label: string;
  /** Shortened. */
  token: string;
  outcome: string;
  reason?: string;
  text: string;
}

export interface WhyEvent {
  /** When it happened: the ping's start (queued pings: when queued), the change's capture. */
  at: number;
  kind: 'ping' | 'decision';
  sources: string[];
  /** Decisions: the rule. */
  rule?: string;
  /** Decisions collapsed into this one (the same source and rule, one after another), and the first one's time. */
  count?: number;
  firstAt?: number;
  pinged: boolean;
  text: string;
  ping?: {
    id: string;
    trigger: string;
    status: string;
    /** This user's device pushes. */
    devices: WhyDeviceOutcome[];
    /** The user was skipped: unknown, or without a registered client at the time. */
    skipped?: boolean;
    incomplete?: string;
    errors?: string[];
  };
}

export interface WhyNotPinged {
  source: string;
  rule: string;
  /** When the change was captured; absent when settings.yml alone says so. */
  at?: number;
  text: string;
}

export interface WhyVerdict {
  kind: 'unknown-user' | 'no-devices' | 'devices';
  /** A ping ran for the user (for `source`, when given) in the time looked at. */
  pinged: boolean;
  /** The sources those pings told the devices to sync. */
  sources: string[];
  lastPingAt?: number;
  lastPingId?: string;
  /** Sources whose latest captured change was not followed by a ping, and why. */
  notPinged: WhyNotPinged[];
  /** One line per device (registered first), or one line for the user. */
  lines: string[];
}

export interface WhyReport {
  user: string;
  source?: string;
  since?: number;
  at: number;
  timeZone: string;
  /** RhoConnect has this user (`user:<login>:rho__id`). */
  known: boolean;
  history: { enabled: boolean; ttlHours: number; perUser: number };
  devices: WhyDevice[];
  sources: WhySource[];
  /** Newest first. */
  events: WhyEvent[];
  notes: string[];
  verdict: WhyVerdict;
}

/** How each rule that did not ping reads, after the source's name. */
const DECISION_WORDS: Record<string, string> = {
  'device-edit': "device's own edit → no ping",
  'md-size-set': "device's sync → no ping",
  'push-notify-off': 'plugin write, push_notify off → no ping',
  'app-partition-settings': 'app-partitioned → never pings',
  'app-partition': 'app-partitioned → never pings',
};

const PING_WORDS: Record<string, string> = {
  'plugin-write': 'plugin write → pinged',
  'catch-up': 'changed while rhopush was not listening, found by catch-up → pinged',
};

const TRIGGER_WORDS: Record<string, string> = {
  rest: 'REST ping',
  queue: 'Resque ping job',
  library: 'ping() call',
  cli: 'rhopush ping',
  auto: 'automatic ping',
  'catch-up': 'catch-up ping',
};

const PLATFORM_LABELS: Record<Platform, string> = { apple: 'iPhone', fcm: 'Android phone', rhoconnect_push: 'RhoConnect Push device' };
const PLATFORM_NAMES: Record<string, string> = { apple: 'APNs', fcm: 'FCM', rhoconnect_push: 'RhoConnect Push' };

/** Most records read per user (the per-user history is capped at :history_per_user:). */
const MAX_READ = 1000;

export async function explainWhy(ctx: WhyContext, user: string, options: WhyOptions = {}): Promise<WhyReport> {
  const { settings, history } = ctx;
  const now = options.now ?? Date.now();
  const timeZone = options.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  const time = timeFormatter(timeZone, now);
  const { source, since } = options;
  const limits = { enabled: history.enabled, ttlHours: settings.rhopush.historyTtlHours, perUser: settings.rhopush.historyPerUser };
  const readLimit = Math.min(MAX_READ, limits.perUser);

  const [known, clients, records, decisions] = await Promise.all([
    ctx.store.userExists(user),
    ctx.store.userClients(user),
    history.forUser(user, readLimit, since),
    history.decisionsOf(user, readLimit, since),
  ]);
  const devices = await describeDevices(ctx, clients);

  const covers = (sources: readonly string[]) => source === undefined || sources.includes(source) || sources.includes('all');
  const pings = records.filter((r) => covers(r.sources));
  const kept = decisions.filter((d) => source === undefined || d.source === source);

  const events = [...pings.map((r) => pingEvent(r, user)), ...collapse(kept)].sort((a, b) => b.at - a.at);
  const sources = sourceLines(settings, user, [...(source ? [source] : settings.sources.keys()), ...kept.map((d) => d.source)]);
  const verdict = buildVerdict({ user, known, devices, pings, decisions: kept, sources, source, since, limits, time });

  const notes: string[] = [];
  if (!limits.enabled) notes.push('history is off (:history_ttl_hours: 0): rhopush keeps no record of pings or captured changes');
  else
    notes.push(
      `rhopush keeps a user's newest ${limits.perUser} pings and captured changes for ${limits.ttlHours} h; a change shows here within a second of its capture`,
    );
  if (source !== undefined && !sourcePolicy(settings, source).listed) {
    notes.push(`${clip(source)} is not in settings.yml: RhoConnect treats it as user-partitioned, with the environment's push_notify`);
  }
  return {
    user,
    ...(source !== undefined ? { source } : {}),
    ...(since !== undefined ? { since } : {}),
    at: now,
    timeZone,
    known,
    history: limits,
    devices,
    sources,
    events,
    notes,
    verdict,
  };
}

/**
 * A client as PingJob sees it (ping/ping-job.ts, RhoConnect's rules): pushed when it has a
 * device_type and a phone_id or device_pin, through a platform rhopush knows, once per device
 * (phone_id + device_app_id, else device_pin; the most recently synced client first).
 */
async function describeDevices(ctx: WhyContext, clients: ClientRecord[]): Promise<WhyDevice[]> {
  const phones = new Map<string, string>();
  const pins = new Map<string, string>();
  return Promise.all(
    clients.map(async (client) => {
      const { platform, type } = platformOf(client);
      const pin = client.device_pin ?? '';
      const token = platform ? pushToken(platform, pin) : pin;
      const device: WhyDevice = {
        clientId: clip(client.id, 64),
        label: platform ? PLATFORM_LABELS[platform] : type ? `${clip(type, 40)} device` : 'device',
        registered: false,
      };
      if (platform) device.platform = platform;
      if (type) device.deviceType = clip(type, 40);
      if (token) device.token = shortenToken(token);
      if (client.last_sync) device.lastSync = clip(client.last_sync, 40);
      const phone = client.phone_id ? client.phone_id + (client.device_app_id ?? '') : undefined;
      const same = phone !== undefined ? phones.get(phone) : client.device_pin ? pins.get(client.device_pin) : undefined;
      if (!client.device_type) device.problem = 'not registered for push (no device_type: the app never registered it)';
      else if (!client.phone_id && !client.device_pin) device.problem = 'not registered for push (neither device_pin nor phone_id)';
      else if (same !== undefined) device.problem = `not pushed: the same device as client ${clip(same, 64)}, which is pushed instead`;
      else if (!platform) device.problem = `not pushed: '${clip(type, 40)}' is not a platform rhopush pushes to`;
      else {
        device.registered = true;
        if (!token) device.problem = 'registered without a device_pin: its pushes have no token to go to';
      }
      if (client.device_type && same === undefined) {
        if (phone !== undefined) phones.set(phone, client.id);
        else if (client.device_pin) pins.set(client.device_pin, client.id);
      }
      if (platform && token) {
        const dead = await ctx.deadTokens.find(platform, token);
        if (dead) device.dead = { reason: clip(dead.reason, 200), at: clip(dead.at, 40) };
      }
      return device;
    }),
  );
}

function pingEvent(record: PingRecord, user: string): WhyEvent {
  const at = record.startedAt ?? record.queuedAt ?? 0;
  const sources = record.sources;
  const devices = (record.devices ?? []).filter((d) => d.user === user).map(deviceOutcome);
  let text: string;
  if (record.changes && record.changes.length > 0) {
    const byRule = new Map<string, string[]>();
    for (const c of record.changes) byRule.set(c.rule, [...new Set([...(byRule.get(c.rule) ?? []), c.source])]);
    text = [...byRule]
      .map(([rule, names]) => `${names.join(', ')}: ${PING_WORDS[rule] ?? `${rule} → pinged`}${names.length > 1 ? ' together' : ''}`)
      .join('; ');
  } else {
    const what = sources.includes('all') ? 'all sources' : sources.length > 0 ? sources.join(', ') : 'no source to sync';
    const message = record.payload.message ? ` with the message "${clip(record.payload.message, 60)}"` : '';
    text = `${TRIGGER_WORDS[record.trigger] ?? record.trigger} for ${what}${message}`;
  }
  if (record.status === 'queued') text += ' (queued, not run yet)';
  else if (record.status === 'running') text += ' (running)';
  const skipped = record.skippedUsers?.includes(user) ?? false;
  return {
    at,
    kind: 'ping',
    sources,
    pinged: record.status !== 'queued',
    text,
    ping: {
      id: record.id,
      trigger: record.trigger,
      status: record.status,
      devices,
      ...(skipped ? { skipped } : {}),
      ...(record.incomplete ? { incomplete: record.incomplete } : {}),
      ...(record.errors && record.errors.length > 0 ? { errors: record.errors } : {}),
    },
  };
}

function deviceOutcome(d: NonNullable<PingRecord['devices']>[number]): WhyDeviceOutcome {
  const label = d.platform in PLATFORM_LABELS ? PLATFORM_LABELS[d.platform as Platform] : `${d.platform} device`;
  return {
    clientId: d.clientId,
    platform: d.platform,
    label,
    token: d.token,
    outcome: d.outcome,
    ...(d.reason ? { reason: d.reason } : {}),
    text: `${label} ${d.token.length > 1 ? tokenTail(d.token) : `client ${d.clientId}`}: ${outcomeWords(d)}`,
  };
}

/** A device push's outcome in words: `delivered (APNs 200)`. */
export function outcomeWords(d: { platform: string; outcome: string; reason?: string; retries?: number }): string {
  const platform = PLATFORM_NAMES[d.platform] ?? d.platform;
  const retries = d.retries ? ` after ${d.retries} ${d.retries === 1 ? 'retry' : 'retries'}` : '';
  switch (d.outcome) {
    case 'sent':
      return d.platform === 'apple' ? `delivered (APNs 200${retries})` : `delivered (${platform} accepted it${retries})`;
    case 'logged':
      return 'logged, not sent (:delivery: log)';
    case 'failed':
      return `failed${retries}: ${d.reason ?? `${platform} push failed`}`;
    case 'dead':
      return `refused by ${platform}: the token is no longer valid (${d.reason ?? 'dead'}); marked dead`;
    case 'skipped-dead':
      return `not sent: the token was marked dead (${d.reason ?? 'dead'})`;
    case 'dropped':
      return `not sent: ${d.reason ?? 'unsupported platform'}`;
    default:
      return d.outcome;
  }
}

/** Decisions in a row with the same source and rule become one event with a count. */
function collapse(decisions: DecisionEntry[]): WhyEvent[] {
  const events: WhyEvent[] = [];
  for (const d of decisions) {
    const last = events.at(-1);
    if (last && last.rule === d.rule && last.sources[0] === d.source) {
      last.count = (last.count ?? 1) + 1;
      last.firstAt = d.at;
      continue;
    }
    events.push({ at: d.at, kind: 'decision', sources: [d.source], rule: d.rule, pinged: false, text: decisionText(d.source, d.rule) });
  }
  return events;
}

function decisionText(source: string, rule: string): string {
  return `${clip(source)}: ${DECISION_WORDS[rule] ?? `${rule} → no ping`}`;
}

/** What settings.yml says about each source (each once), through the decision live capture makes. */
function sourceLines(settings: Settings, user: string, names: string[]): WhySource[] {
  return [...new Set(names)].map((name) => {
    const policy = sourcePolicy(settings, name);
    const rule = decide(settings, { partition: user, source: name, deviceEdit: false });
    const shown = clip(name);
    let text: string;
    if (rule.ping) {
      text = policy.listed
        ? `${shown}: plugin writes ping (push_notify on)`
        : `${shown}: not in settings.yml: user-partitioned, the environment's push_notify is on → plugin writes ping`;
    } else if (rule.rule === 'app-partition-settings') {
      text = `${shown}: app-partitioned → never pings`;
    } else if (rule.rule === 'push-notify-off') {
      text = policy.listed
        ? `${shown}: push_notify is off in settings.yml → plugin writes do not ping`
        : `${shown}: not in settings.yml: user-partitioned, the environment's push_notify is off → plugin writes do not ping`;
    } else {
      text = `${shown}: ${rule.why} → no ping`;
    }
    return {
      source: name,
      listed: policy.listed,
      partition: policy.partitionType,
      pushNotify: policy.pushNotify,
      pings: rule.ping,
      rule: rule.rule,
      text,
    };
  });
}

interface VerdictInput {
  user: string;
  known: boolean;
  devices: WhyDevice[];
  /** Newest first. */
  pings: PingRecord[];
  /** Newest first. */
  decisions: DecisionEntry[];
  sources: WhySource[];
  source?: string;
  since?: number;
  limits: WhyReport['history'];
  time: (ms: number) => string;
}

function buildVerdict(v: VerdictInput): WhyVerdict {
  const ran = v.pings.filter((p) => p.status !== 'queued');
  const startOf = (p: PingRecord) => p.startedAt ?? p.queuedAt ?? 0;
  const last = ran[0];
  const pingedSources = new Set<string>();
  for (const p of ran) for (const s of p.sources) if (v.source === undefined || s === v.source || s === 'all') pingedSources.add(s);
  if (v.source !== undefined && pingedSources.has('all')) pingedSources.add(v.source);

  // Per source, its latest captured change that no later ping covered.
  const notPinged: WhyNotPinged[] = [];
  const seen = new Set<string>();
  for (const d of v.decisions) {
    if (seen.has(d.source)) continue;
    seen.add(d.source);
    const covered = ran.some((p) => startOf(p) >= d.at && (p.sources.includes(d.source) || p.sources.includes('all')));
    if (!covered) notPinged.push({ source: d.source, rule: d.rule, at: d.at, text: decisionText(d.source, d.rule) });
  }
  // The source asked about never pings automatically: settings.yml says why, change or not.
  for (const s of v.sources) {
    if (s.source === v.source && !s.pings && !notPinged.some((n) => n.source === s.source)) {
      notPinged.push({ source: s.source, rule: s.rule, text: s.text });
    }
  }

  const name = clip(v.user);
  const window = v.since !== undefined ? ` since ${v.time(v.since)}` : v.limits.enabled ? ` in the last ${v.limits.ttlHours} h` : '';
  const lastText = last ? `last ping ${v.time(startOf(last))} for ${sourcesText(last.sources)}` : `no ping${window}`;
  const why = notPinged[0] ? ` (${notPinged[0].text})` : !last && v.limits.enabled ? `, and no change captured for ${name}${window}` : '';
  const historyOff = v.limits.enabled ? '' : ' (history is off: :history_ttl_hours: 0)';

  const lines: string[] = [];
  let kind: WhyVerdict['kind'];
  const registered = v.devices.filter((d) => d.registered);
  if (!v.known) {
    kind = 'unknown-user';
    lines.push(
      `${name} is not a RhoConnect user (no ${keys.userExists(name)}): pings find no device to send to` +
        (last ? `; ${lastText}, which reached nobody` : '') +
        historyOff,
    );
  } else if (registered.length === 0) {
    kind = 'no-devices';
    const unregistered =
      v.devices.length > 0 ? ` (${v.devices.length} client${v.devices.length === 1 ? '' : 's'}, none registered for push)` : '';
    lines.push(
      `${name} has no registered device${unregistered}: ${last ? `${lastText}, which had nobody to send to` : `a ping would have nobody to send to; ${lastText}${why}`}${historyOff}`,
    );
  } else {
    kind = 'devices';
  }
  // Registered devices first, then the clients pings do not reach, each with the reason.
  const listed = kind === 'devices' ? [...registered, ...v.devices.filter((d) => !d.registered)] : [];
  for (const device of listed) {
    const who = `${name}'s ${device.label} ${device.token ? tokenTail(device.token) : `(client ${device.clientId})`}`;
    if (!device.registered) {
      lines.push(`${who}${device.token ? ` (client ${device.clientId})` : ''}: ${device.problem}`);
      continue;
    }
    const dead = device.dead
      ? `; its token was marked dead ${deadTime(device.dead.at, v.time)} (${device.dead.reason}): later pings skip it until the device registers a new one`
      : '';
    const reached = ran.find((p) => p.devices?.some((d) => d.clientId === device.clientId && d.user === v.user));
    const outcome = reached?.devices?.find((d) => d.clientId === device.clientId && d.user === v.user);
    if (reached && outcome) {
      const later = reached === last ? '' : ` (a later ping at ${v.time(startOf(last!))} did not include it)`;
      const warning = device.problem ? `; ${device.problem}` : '';
      lines.push(
        `${who}: last ping ${v.time(startOf(reached))} for ${sourcesText(reached.sources)}, ${outcomeWords(outcome)}${later}${dead}${warning}`,
      );
    } else if (last) {
      lines.push(`${who}: not in the pings${window} (registered after them?); ${lastText}${dead}`);
    } else {
      lines.push(`${who}: ${lastText}${why}${dead}${historyOff}`);
    }
  }
  return {
    kind,
    pinged: last !== undefined,
    sources: [...pingedSources],
    ...(last ? { lastPingAt: startOf(last), lastPingId: last.id } : {}),
    notPinged,
    lines,
  };
}

function sourcesText(sources: readonly string[]): string {
  if (sources.includes('all')) return 'all sources';
  return sources.length > 0 ? sources.map((s) => clip(s)).join(', ') : 'no source';
}

/** `…cdef` from a shortened token `012345…cdef`. */
function tokenTail(short: string): string {
  const cut = short.indexOf('…');
  return cut >= 0 && cut < short.length - 1 ? short.slice(cut) : short;
}

function deadTime(at: string, time: (ms: number) => string): string {
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? at : time(ms);
}

/** `10:02:03`, or `4 Dec 10:02:03` when not the day of `now`, in `timeZone`. */
export function timeFormatter(timeZone: string, now: number): (ms: number) => string {
  const clock = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const day = new Intl.DateTimeFormat('en-GB', { timeZone, day: 'numeric', month: 'short', year: 'numeric' });
  const today = day.format(now);
  return (ms) => {
    const d = day.format(ms);
    return d === today ? clock.format(ms) : `${d} ${clock.format(ms)}`;
  };
}

/** A time zone Intl knows (the API takes the browser's). */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * `--since` and `since=`: a duration back from `now` (`90s`, `15m`, `1h`, `2d`, `1h30m`) or a date
 * and time (`2026-12-04T10:00:00Z`, anything Date.parse reads with a date). Undefined when not one.
 */
export function parseSince(text: string, now = Date.now()): number | undefined {
  const t = text.trim();
  const duration = /^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(t);
  if (duration && t !== '') {
    const [, d = '0', h = '0', m = '0', s = '0'] = duration;
    return now - (Number(d) * 86_400 + Number(h) * 3600 + Number(m) * 60 + Number(s)) * 1000;
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(t)) return undefined;
  const at = Date.parse(t);
  return Number.isNaN(at) ? undefined : at;
}
