// Benchmark plumbing: figures as ratios against a baseline measured in the same run, each the
// median of several runs with min and max, printed as a table or as JSON lines.
import type { PushAdapters } from '../../src/push/registry.js';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
  min: number;
  max: number;
  runs: number;
  /** What the baseline is, and any setting that matters to read the figure. */
  note: string;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Summarises per-run measurements of a value and of its baseline into one figure. */
export function figure(name: string, unit: string, values: number[], baselines: number[] | null, note: string): Figure {
  const value = median(values);
  const baseline = baselines ? median(baselines) : null;
  return {
    name,
    value: round(value),
    unit,
    baseline: baseline === null ? null : round(baseline),
    ratio: baseline ? round(value / baseline, 3) : null,
    min: round(Math.min(...values)),
    max: round(Math.max(...values)),
    runs: values.length,
    note,
  };
}

export function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function printTable(figures: Figure[]): void {
  const rows = figures.map((f) => [
    f.name,
    `${f.value} ${f.unit}`,
    f.baseline === null ? '—' : `${f.baseline} ${f.unit}`,
    f.ratio === null ? '—' : `${f.ratio}×`,
    `${f.min}…${f.max}`,
    String(f.runs),
    f.note,
  ]);
  const head = ['figure', 'rhopush', 'baseline', 'ratio', 'min…max', 'runs', 'notes'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
}

export function printJson(figures: Figure[]): void {
  for (const f of figures) {
    console.log(
      JSON.stringify({
        name: f.name,
        value: f.value,
        unit: f.unit,
        baseline: f.baseline,
        ratio: f.ratio,
        min: f.min,
        max: f.max,
        runs: f.runs,
      }),
    );
  }
}

/** Delivery switched off: every device push counts as logged, nothing is printed or sent. */
export const noDelivery: PushAdapters = {
  adapterFor: () => ({ send: async () => ({ outcome: 'logged' as const }), close: async () => {} }),
  close: async () => {},
};

export interface BenchContext {
  /** Smaller sizes and one run: for the smoke test in `npm test`. */
  quick: boolean;
  /** The largest sizes too (the scale benchmark's 1M pairs and 100k devices): `--full`. */
  full: boolean;
  runs: number;
  log: (msg: string) => void;
}
