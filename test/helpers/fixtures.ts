import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFixture, type Fixture } from '../../src/replay/fixture.js';

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'rhoconnect');

export function fixtureFiles(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(FIXTURE_DIR, f));
}

export function fixture(name: string): Fixture {
  return loadFixture(join(FIXTURE_DIR, name.endsWith('.json') ? name : `${name}.json`));
}
