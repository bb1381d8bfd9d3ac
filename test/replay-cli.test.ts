// `rhopush replay` as operators and scripts run it: the built CLI in a child process.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fixtureFiles, FIXTURE_DIR } from './helpers/fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');

function rhopush(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'silent' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('rhopush replay', () => {
  it('--json prints one matching object per recorded scenario and exits 0', async () => {
    const { code, stdout } = await rhopush(['replay', '--json', ...fixtureFiles()]);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { file: string; match: boolean; expected: unknown[]; actual: unknown[] });
    expect(lines).toHaveLength(40);
    expect(lines.filter((l) => !l.match)).toEqual([]);
    expect(Object.keys(lines[0]!)).toEqual(['file', 'expected', 'actual', 'match']);
    expect(code).toBe(0);
  });

  it('exits 1 and says why when a file does not match', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rhopush-replay-'));
    const tampered = JSON.parse(readFileSync(join(FIXTURE_DIR, '09-push-objects-push-notify-false.json'), 'utf8'));
    tampered.rhoconnect_pings = [{ method: 'PingJob.perform', params: { user_id: ['alice'], sources: ['Note'] } }];
    const file = join(dir, 'tampered.json');
    writeFileSync(file, JSON.stringify(tampered));
    const { code, stdout } = await rhopush(['replay', file, join(FIXTURE_DIR, '01-push-objects-new.json')]);
    expect(code).toBe(1);
    expect(stdout).toContain(`✗ ${file}`);
    expect(stdout).toMatch(/skip\s+push-notify-off\s+incrby source:application:alice:Note:md_size/);
    expect(stdout).toContain('1 matched, 1 did not');
  });

  it('exits 2 with a plain message for a file it cannot read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rhopush-replay-'));
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ not json');
    const { code, stderr, stdout } = await rhopush(['replay', '--json', file]);
    expect(code).toBe(2);
    expect(stderr).toContain(`rhopush: ${file}: cannot read fixture`);
    expect(stdout).toBe('');
  });
});
