// npm run bench [-- --json] [--quick] [--full] [--only name,name] [--runs N]
// Runs every benchmark (each starts and stops its own redis-server and loopback servers) and prints
// one table, or one JSON object per figure with --json. Progress goes to stderr.
// --full adds the largest sizes of the scale benchmark (catch-up of 1M pairs, a ping of a user with
// 100k devices; minutes each, one run): without it those figures are absent, so the default run
// stays within 10 minutes on 2 cores.
import { benchCapture } from './capture.js';
import { benchCatchUp } from './catch-up.js';
import { benchDispatch } from './dispatch.js';
import { benchGrouping } from './grouping.js';
import { benchHistory } from './history.js';
import { printJson, printTable, type BenchContext, type Figure } from './lib/harness.js';
import { benchLatency } from './latency.js';
import { benchRest } from './rest.js';
import { benchScale } from './scale.js';
import { benchSoak } from './soak.js';

const benches: Record<string, (ctx: BenchContext) => Promise<Figure[]>> = {
  capture: benchCapture,
  grouping: benchGrouping,
  latency: benchLatency,
  history: benchHistory,
  dispatch: benchDispatch,
  rest: benchRest,
  catchup: benchCatchUp,
  soak: benchSoak,
  scale: benchScale,
};

const USAGE = `usage: npm run bench -- [--json] [--quick] [--full] [--only ${Object.keys(benches).join(',')}] [--runs N]
  --json    one JSON object per figure: {"name","value","unit","baseline","ratio","min","max","runs"}
  --quick   tiny sizes, one run each (the smoke test in npm test)
  --full    also the largest sizes of the scale benchmark (1M pairs, 100k devices; one run each,
            minutes): scale.*.l figures, absent otherwise
  --only    run only these benchmarks
  --runs N  runs per figure (default 3; the figure is their median)`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let json = false;
let quick = false;
let full = false;
let only: string[] | undefined;
let runs: number | undefined;
for (let i = 0; i < args.length; i++) {
  const arg = args[i]!;
  if (arg === '--json') json = true;
  else if (arg === '--quick') quick = true;
  else if (arg === '--full') full = true;
  else if (arg === '--only') only = (args[++i] ?? fail('--only needs a list of benchmarks')).split(',').filter(Boolean);
  else if (arg === '--runs') {
    runs = Number(args[++i]);
    if (!Number.isInteger(runs) || runs < 1) fail('--runs needs a whole number of at least 1');
  } else if (arg === '--help' || arg === '-h') {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  } else fail(`unknown option '${arg}'`);
}
for (const name of only ?? []) if (!(name in benches)) fail(`unknown benchmark '${name}' (known: ${Object.keys(benches).join(', ')})`);

const ctx: BenchContext = {
  quick,
  full,
  runs: runs ?? (quick ? 1 : 3),
  log: (msg) => {
    if (!json) process.stderr.write(`${msg}\n`);
  },
};

const started = performance.now();
const figures: Figure[] = [];
for (const [name, bench] of Object.entries(benches)) {
  if (only && !only.includes(name)) continue;
  const t = performance.now();
  figures.push(...(await bench(ctx)));
  ctx.log(`${name}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
}
ctx.log(`all benchmarks: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
if (json) printJson(figures);
else printTable(figures);
process.exit(0);
