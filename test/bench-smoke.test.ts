// The benchmarks run in miniature (`npm run bench -- --quick --json`) so they do not rot: every figure
// is printed with its fields, and nothing is lost or wrongly pinged. Sizes are tiny and no figure's
// value is compared with a time (performance is for `npm run bench` itself).
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Figure } from '../bench/lib/harness.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A figure as `--json` prints it: everything but the note. */
type FigureLine = Omit<Figure, 'note'>;

const EXPECTED = [
  'capture.rate',
  'capture.lost',
  'capture.cpu_per_change',
  'capture.peak_rss',
  'grouping.pings',
  ...['q100', 'q5', 'q100_1k', 'q5_1k'].flatMap((g) => ['p50', 'p99', 'max', 'cpu_per_write', 'lost'].map((f) => `latency.${g}.${f}`)),
  'history.cpu_per_write',
  'history.overhead',
  'history.lost',
  ...['', '_rtt50'].flatMap((c) =>
    ['rate', 'rate_vs_node_apn', 'cpu_per_push', 'floor', 'cpu_per_push_floor', 'rate_vs_floor', 'cpu_per_push_vs_floor', 'lost'].map(
      (f) => `dispatch.${f}${c}`,
    ),
  ),
  'rest.ping_async',
  'rest.ping_async_vs_floor',
  'rest.floor',
  'rest.p99_latency',
  'rest.failed',
  'catchup.reconcile',
  'catchup.wrong_pings',
  'catchup.missed',
  'catchup.first_baseline',
  'soak.rss_growth',
  'soak.rss_slope',
  'soak.rss_caught_up_growth',
  'soak.rss_caught_up_slope',
  'soak.lost',
  'soak.event_loop_p99',
  // scale: sizes s and m (l only with --full), then the slopes.
  ...['s', 'm'].flatMap((z) => [`scale.catchup.${z}`, `scale.catchup_rss.${z}`]),
  'scale.catchup_errors',
  'scale.catchup.slope',
  'scale.catchup_rss.slope',
  ...['s', 'm'].flatMap((z) => ['fanout', 'fanout_rate', 'fanout_rss', 'fanout_lost'].map((f) => `scale.${f}.${z}`)),
  'scale.fanout.slope',
  'scale.fanout_rss.slope',
  ...['s', 'm', 'l'].flatMap((z) => ['cpu_per_write', 'p50', 'p99', 'lost'].map((f) => `scale.auto.${z}.${f}`)),
  'scale.auto.slope',
];

/** Figures that count something lost or wrong: zero whatever the machine's speed. */
const MUST_BE_ZERO = [
  'capture.lost',
  'latency.q100.lost',
  'latency.q5.lost',
  'latency.q100_1k.lost',
  'latency.q5_1k.lost',
  'history.lost',
  'dispatch.lost',
  'dispatch.lost_rtt50',
  'rest.failed',
  'catchup.wrong_pings',
  'catchup.missed',
  'soak.lost',
  'scale.catchup_errors',
  'scale.fanout_lost.s',
  'scale.fanout_lost.m',
  'scale.auto.s.lost',
  'scale.auto.m.lost',
  'scale.auto.l.lost',
];

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run bench -- --quick --json', () => {
  it('prints every figure as one JSON object with its baseline, and loses nothing', { timeout: 300_000 }, async () => {
    const { code, stdout, stderr } = await runBench(['--quick', '--json']);
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    const figures = lines.map((l) => JSON.parse(l) as FigureLine);
    expect(figures.map((f) => f.name).sort()).toEqual([...EXPECTED].sort());
    for (const f of figures) {
      expect(Number.isFinite(f.value), `${f.name} value`).toBe(true);
      expect(typeof f.unit, f.name).toBe('string');
      expect(f.baseline === null || Number.isFinite(f.baseline), `${f.name} baseline`).toBe(true);
      expect(f.ratio === null || Number.isFinite(f.ratio), `${f.name} ratio`).toBe(true);
      expect(f.min, f.name).toBeLessThanOrEqual(f.value);
      expect(f.max, f.name).toBeGreaterThanOrEqual(f.value);
      expect(f.runs, f.name).toBe(1);
    }
    const byName = new Map(figures.map((f) => [f.name, f]));
    for (const name of MUST_BE_ZERO) expect(byName.get(name)!.value, name).toBe(0);
    // Every user of the grouping burst gets at least its one ping; RhoConnect's baseline pings per call.
    expect(byName.get('grouping.pings')!.value).toBeGreaterThanOrEqual(100);
    expect(byName.get('grouping.pings')!.value).toBeLessThan(byName.get('grouping.pings')!.baseline!);
    // Rates and memory are real measurements, not placeholders.
    for (const name of [
      'capture.rate',
      'dispatch.rate',
      'rest.ping_async',
      'capture.peak_rss',
      'history.cpu_per_write',
      'scale.catchup.m',
      'scale.catchup_rss.m',
      'scale.fanout_rate.m',
      'scale.fanout_rss.m',
      'scale.auto.l.cpu_per_write',
    ]) {
      expect(byName.get(name)!.value, name).toBeGreaterThan(0);
      expect(byName.get(name)!.baseline, name).toBeGreaterThan(0);
    }
  });

  it('refuses an unknown benchmark name with a clear message', async () => {
    const { code, stderr } = await runBench(['--only', 'nosuch']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/unknown benchmark 'nosuch'.*capture/);
  });
});
