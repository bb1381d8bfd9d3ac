// npm run bench [-- --json] [--quick] [--only name,name]
import { benchCapture } from './capture.js';
import { benchGrouping } from './grouping.js';
import { benchLatency } from './latency.js';
import { benchDispatch } from './dispatch.js';
import { benchRest } from './rest.js';
import { benchSoak } from './soak.js';
import { benchCatchUp } from './catch-up.js';
import { printJson, printTable, type BenchContext, type Figure } from './lib/harness.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const onlyArg = args[args.indexOf('--only') + 1];
const only = args.includes('--only') && onlyArg ? new Set(onlyArg.split(',')) : undefined;
const runsArg = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : undefined;

const benches: Record<string, (ctx: BenchContext) => Promise<Figure[]>> = {
  capture: benchCapture,
  grouping: benchGrouping,
  latency: benchLatency,
  dispatch: benchDispatch,
  rest: benchRest,
  catchup: benchCatchUp,
  soak: benchSoak,
};

const ctx: BenchContext = {
  quick,
  runs: runsArg && runsArg > 0 ? runsArg : quick ? 1 : 3,
  log: (msg) => {
    if (!json) process.stderr.write(`${msg}\n`);
  },
};

const figures: Figure[] = [];
for (const [name, bench] of Object.entries(benches)) {
  if (only && !only.has(name)) continue;
  figures.push(...(await bench(ctx)));
}
if (json) printJson(figures);
else printTable(figures);
process.exit(0);
