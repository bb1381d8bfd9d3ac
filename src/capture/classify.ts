import { sourcePolicy, type Settings } from '../config/settings.js';
import { parseKey, type ParsedKey } from '../store/keys.js';
import { DECISION_RULES, SIGNAL_RULES, type SignalRule } from './signal-rules.js';
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
 * Turns keyspace events into decisions, RhoConnect-exact. Holds the little state the rules need:
 * device edits announced but not yet written (bounded by time), and the settings, which can be
 * swapped while running (hot reload).
 */
export class ChangeClassifier {
  private readonly ledger: DeviceEditLedger;

  constructor(
    private settings: Settings,
    options: { deviceEditTtlMs?: number; now?: () => number } = {},
  ) {
    this.ledger = new DeviceEditLedger(options.deviceEditTtlMs ?? 5000, options.now ?? Date.now);
  }

  setSettings(settings: Settings): void {
    this.settings = settings;
  }

  get pendingDeviceEdits(): number {
    return this.ledger.size;
  }

  classify(key: string, event: string): KeyspaceDecision {
    const { parsed, rule } = classifyKeyspaceEvent(key, event);
    if (parsed.kind === 'other') return { ping: false, rule: 'unparsed-key' };
    if (!rule || rule.signal === 'none') return { ping: false, rule: rule?.name ?? 'ignored-event' };
    switch (rule.signal) {
      case 'canary':
        return { ping: false, rule: 'canary', canary: parsed.kind === 'canary' ? parsed.id : undefined };
      case 'device-edit-mark':
        if (parsed.kind !== 'cd_size') return { ping: false, rule: 'ignored-event' };
        this.ledger.mark(parsed.user, parsed.source);
        return { ping: false, rule: 'device-edit-mark', user: parsed.user, source: parsed.source };
      case 'data-write': {
        if (parsed.kind !== 'md_size') return { ping: false, rule: 'ignored-event' };
        const { partition, source } = parsed;
        const facts = {
          partition,
          source,
          policy: sourcePolicy(this.settings, source),
          // Consumed for every write so a device's mark never outlives its own write.
          deviceEdit: this.ledger.consume(partition, source),
        };
        const decision = DECISION_RULES.find((r) => r.when(facts))!;
        return decision.ping
          ? { ping: true, rule: 'plugin-write', user: partition, source }
          : { ping: false, rule: decision.rule, user: partition, source };
      }
    }
  }
}
