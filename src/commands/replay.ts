// rhopush replay: recorded RhoConnect scenarios through the real capture path, compared.
import { basename } from 'node:path';
import type { Command } from 'commander';
import { replayFiles } from '../replay/replay.js';
import { terminalProgress } from '../util/progress.js';

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description("replay recorded RhoConnect scenarios and compare the pings rhopush decides with RhoConnect's")
    .argument('<files...>', 'fixture files (fixtures/rhoconnect format)')
    .option('--redis <url...>', 'replay into these (empty) Redis servers instead of private ones, one per instance')
    .option('--json', 'one JSON object per file: {"file","expected","actual","match"}')
    .action(async (files: string[], flags: { redis?: string[]; json?: boolean }) => {
      const progress = terminalProgress('replaying');
      progress.update(0, files.length);
      const results = await replayFiles(files, {
        redis: flags.redis,
        onProgress: (done, total, file) => progress.update(done, total, basename(file)),
      }).finally(() => progress.end());
      for (const r of results) {
        if (flags.json) {
          console.log(JSON.stringify({ file: r.file, expected: r.expected, actual: r.actual, match: r.match }));
          continue;
        }
        console.log(`${r.match ? '✓' : '✗'} ${r.file}`);
        console.log(`    rhoconnect: ${formatPings(r.expected)}`);
        console.log(`    rhopush:    ${formatPings(r.actual)}`);
        for (const d of r.decisions) console.log(`      ${d.ping ? 'ping' : 'skip'}  ${d.rule.padEnd(22)} ${d.event} ${d.key}`);
      }
      const failed = results.filter((r) => !r.match).length;
      if (!flags.json) console.log(`${results.length - failed} matched, ${failed} did not`);
      process.exitCode = failed > 0 ? 1 : 0;
    });
}

function formatPings(pings: { user_id: string[]; sources: string[] }[]): string {
  if (pings.length === 0) return '(no ping)';
  return pings.map((p) => `${p.user_id.join(',')} → [${p.sources.join(', ')}]`).join('; ');
}
