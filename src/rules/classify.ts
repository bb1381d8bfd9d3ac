import { sourcePolicy, type Settings } from '../config/settings.js';
import { parseKey, SHARED_PARTITION, type ParsedKey } from '../store/keys.js';
import { SIGNAL_RULES, type SignalRule } from './signal-rules.js';
import { decide } from './decide.js';
import { DeviceEditLedger } from './device-edit-ledger.js';

/** The outcome of one keyspace event. `rule` names the table row that decided it. */
export type KeyspaceDecision =
  | { ping: true; rule: 'plugin-write'; user: string; source: string }
  | { ping: false; rule: string; user?: string; source?: string; canary?: string };

const signalIndex = new Map<string, SignalRule>();
for (const rule of SIGNAL_RULES) for (const event of rule.events) signalIndex.set(`${rule.key}\u0000${event}`, rule);

/** Stateless: what a keyspace event on a key means, by SIGNAL_RULES. */
export function classifyKeyspaceEvent(key: string, event: string): { parsed: ParsedKey; rule?: SignalRule } {
  const parsed = parseKey(key);
  if (parsed.kind === 'other') return { parsed };
  return { parsed, rule: signalIndex.get(`${parsed.kind}\u0000${event}`) };
}

/**
 * How long a device's expected master document write is waited for. get_lock sleeps whole seconds
 * and a device's lock expires a second after it is taken: live, a device's write came at most 1.04 s
 * after its mark. A device waiting longer (behind a plugin's lock, held up to 11 s) pings once more.
 */
export const DEVICE_EDIT_TTL_MS = 5_000;

/**
 * Turns keyspace events into decisions, RhoConnect-exact. Holds the little state the rules need:
 * device writes announced but not yet made (bounded by time), and the settings, which can be
 * swapped while running (hot reload).
 */
export class ChangeClassifier {
  private readonly ledger: DeviceEditLedger;

  constructor(
    private settings: Settings,
    options: { deviceEditTtlMs?: number; now?: () => number } = {},
  ) {
    this.ledger = new DeviceEditLedger(options.deviceEditTtlMs ?? DEVICE_EDIT_TTL_MS, options.now ?? Date.now);
  }

  setSettings(settings: Settings): void {
    this.settings = settings;
  }

  get pendingDeviceEdits(): number {
    return this.ledger.size;
  }

  /** A node's subscription dropped: device writes it would have shown are no longer waited for. */
  nodeDown(node: string): void {
    this.ledger.forgetNode(node);
  }

  /** `node`: where the event came from (the events of one node arrive in the order Redis ran them). */
  classify(key: string, event: string, node = ''): KeyspaceDecision {
    const { parsed, rule } = classifyKeyspaceEvent(key, event);
    if (parsed.kind === 'other') return { ping: false, rule: 'unparsed-key' };
    if (!rule || rule.signal === 'none') {
      // A document write that needs nothing (a sync's SET) still names its pair, for the history.
      const pair = parsed.kind === 'md_size' ? { user: parsed.partition, source: parsed.source } : {};
      return { ping: false, rule: rule?.name ?? 'ignored-event', ...pair };
    }
    switch (rule.signal) {
      case 'canary':
        return { ping: false, rule: 'canary', canary: parsed.kind === 'canary' && event === 'expire' ? parsed.id : undefined };
      case 'device-edit-mark': {
        if (parsed.kind !== 'cd_size') return { ping: false, rule: 'ignored-event' };
        const { user, clientId, source } = parsed;
        // The run's master document write lands where the source keeps its data.
        const partition = sourcePolicy(this.settings, source).partitionType === 'app' ? SHARED_PARTITION : user;
        this.ledger.mark(user, clientId, source, partition, node);
        return { ping: false, rule: 'device-edit-mark', user, source };
      }
      case 'cud-entry-taken':
        if (parsed.kind !== 'cud_entry') return { ping: false, rule: 'ignored-event' };
        this.ledger.entryTaken(parsed.queue, parsed.source, parsed.clientId, node);
        return { ping: false, rule: 'cud-entry-taken' };
      case 'cud-queue-taken':
        if (parsed.kind !== 'cud_queue') return { ping: false, rule: 'ignored-event' };
        this.ledger.queueTaken(parsed.queue);
        return { ping: false, rule: 'cud-queue-taken' };
      case 'data-write': {
        if (parsed.kind !== 'md_size') return { ping: false, rule: 'ignored-event' };
        const { partition, source } = parsed;
        // Taken for every write, whatever decides it, so an expected device write never outlives it.
        const deviceEdit = this.ledger.consume(partition, source);
        const decision = decide(this.settings, { partition, source, deviceEdit });
        return decision.ping
          ? { ping: true, rule: 'plugin-write', user: partition, source }
          : { ping: false, rule: decision.rule, user: partition, source };
      }
    }
  }
}
