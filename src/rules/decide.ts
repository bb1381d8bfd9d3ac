// The one decision every caller makes the same way: live capture, catch-up after a gap, the doctor's
// source table and replay all ask `decide` whether a write to a (partition, source) pings.
import { sourcePolicy, type Settings } from '../config/settings.js';
import { DECISION_RULES, type DecisionRule } from './signal-rules.js';

export interface DataWrite {
  /** The user, or `__shared__` for app-partitioned data. */
  partition: string;
  source: string;
  /** A device's run of the same (user, source) still has this write to make (live capture only). */
  deviceEdit: boolean;
}

/** The first rule of DECISION_RULES that matches the write, with the source's current settings. */
export function decide(settings: Settings, write: DataWrite): DecisionRule {
  const facts = { ...write, policy: sourcePolicy(settings, write.source) };
  return DECISION_RULES.find((r) => r.when(facts))!;
}
