// Credential files named in settings.yml (certificates, keys, CAs, service accounts). RhoConnect
// resolves `:iphonecertfile:` against its application root, the parent of `settings/`; rhopush
// looks there, then next to the settings file, then in the working directory.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';

/** A credential file that cannot be read or used: a settings problem, not worth retrying. */
export class CredentialError extends Error {
  override name = 'CredentialError';
}

export function resolveCredentialPath(settingsFile: string, path: string): string {
  if (isAbsolute(path)) return path;
  const candidates: string[] = [];
  if (settingsFile !== '<inline>') {
    const dir = dirname(settingsFile);
    if (basename(dir) === 'settings') candidates.push(resolve(dir, '..', path));
    candidates.push(resolve(dir, path));
  }
  candidates.push(resolve(process.cwd(), path));
  return candidates.find((c) => existsSync(c)) ?? candidates[0]!;
}

/** Reads a credential file, failing with the settings key that named it. */
export function readCredentialFile(settingsFile: string, path: string, settingName: string): string {
  const resolved = resolveCredentialPath(settingsFile, path);
  try {
    return readFileSync(resolved, 'utf8');
  } catch (err) {
    throw new CredentialError(
      `cannot read \`${settingName}\` file ${resolved} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** Runs a check of a credential; its failure names the setting, with a hint for the usual cause. */
export function checkCredential(settingName: string, check: () => unknown): void {
  try {
    check();
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof CredentialError) throw err;
    const hint = /bad decrypt|bad password/i.test(message) ? ' (wrong passphrase?)' : '';
    throw new CredentialError(`\`${settingName}\`: ${message}${hint}`);
  }
}
