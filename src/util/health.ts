// /healthz's vocabulary: every part reports its own state under its own name.

/** One part's state. */
export interface HealthPart {
  ok: boolean;
  detail?: string;
  /** Serving, but something needs attention (a rejected settings file). */
  warning?: string;
}

/** Every part's state, by name; ok when every part is. */
export interface HealthReport {
  ok: boolean;
  parts: Record<string, HealthPart>;
}

export function healthReport(...parts: Array<Record<string, HealthPart>>): HealthReport {
  const merged = Object.assign({}, ...parts) as Record<string, HealthPart>;
  return { ok: Object.values(merged).every((p) => p.ok), parts: merged };
}
