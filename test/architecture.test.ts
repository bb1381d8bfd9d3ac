// The shape of the code, checked: folders are the pipeline's stages, imports point downstream only
// (a stage never imports an earlier one), there are no import circles, and nothing the daemon runs
// comes from the test and demo kit.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Imported by anything: they import no stage. */
const BASE = ['util', 'errors', 'logger'];

/**
 * What each part may import besides itself and BASE. The stages, in flow order: intake → rules →
 * coalesce → ping → push (→ history, which records what ping and push did); a stage calls the
 * next and owns its own input type, so imports point
 * downstream only. explain/ reads the history and explains it with rules' decide(), beside them. store/ and config/ sit under every stage; api/ and queue/ are entry points into
 * ping/; recovery/ runs beside intake/. Parts not listed (commands, replay, kit, library, index,
 * cli) are tools and entry points that may import any of these.
 */
const ALLOWED: Record<string, readonly string[]> = {
  util: [],
  errors: [],
  logger: [],
  config: [],
  store: ['config'],
  push: ['store', 'config'],
  history: ['push', 'store', 'config'],
  ping: ['history', 'push', 'store', 'config'],
  coalesce: ['ping'],
  rules: ['store', 'config'],
  intake: ['rules', 'store', 'config'],
  recovery: ['intake', 'rules', 'store', 'config'],
  queue: ['history', 'ping', 'store', 'config'],
  // Reads what history recorded and explains it with the rules' decide(): beside the pipeline.
  explain: ['history', 'rules', 'push', 'store', 'config'],
  metrics: ['rules', 'ping', 'push', 'recovery', 'queue'],
  api: ['queue', 'history', 'explain', 'ping', 'push', 'metrics', 'store', 'config'],
  daemon: ['api', 'queue', 'recovery', 'intake', 'rules', 'coalesce', 'ping', 'history', 'explain', 'push', 'store', 'config', 'metrics'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

/** The part a file belongs to: its folder under src/, or its own name for files at the top. */
function partOf(file: string): string {
  const rel = relative(SRC, file).split('/');
  return rel.length > 1 ? rel[0]! : rel[0]!.replace(/\.ts$/, '');
}

const all = files(SRC);
const graph = new Map(all.map((f) => [f, importsOf(f)]));

describe('architecture', () => {
  it('imports only point downstream: each part imports only the parts it may', () => {
    const wrong: string[] = [];
    for (const [file, deps] of graph) {
      const from = partOf(file);
      const allowed = ALLOWED[from];
      if (!allowed) continue; // entry points and tools (commands, replay, kit, library, index, cli)
      for (const dep of deps) {
        const to = partOf(dep);
        if (to !== from && !BASE.includes(to) && !allowed.includes(to)) wrong.push(`${relative(SRC, file)} → ${relative(SRC, dep)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no import circles', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' → '));
        return;
      }
      state.set(file, 'visiting');
      for (const dep of graph.get(file) ?? []) visit(dep, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('the daemon and the library never load the test and demo kit', () => {
    // The kit (stand-ins, private redis-server processes, test writers) is for tests, benchmarks,
    // `rhopush demo` and `rhopush replay`.
    const reached = new Set<string>();
    const walk = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const dep of graph.get(file) ?? []) walk(dep);
    };
    walk(join(SRC, 'daemon.ts'));
    walk(join(SRC, 'library.ts'));
    walk(join(SRC, 'index.ts'));
    expect(reached.size).toBeGreaterThan(40);
    expect([...reached].filter((f) => partOf(f) === 'kit').map((f) => relative(SRC, f))).toEqual([]);
  });
});
