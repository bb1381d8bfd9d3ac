/** A settings problem, told the way an operator can fix it: file, line, key and what was wrong. */
export class SettingsError extends Error {
  constructor(
    readonly file: string,
    readonly keyPath: string[] | undefined,
    readonly reason: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    const where = line ? `${file}:${line}${column ? `:${column}` : ''}` : file;
    const key = keyPath && keyPath.length > 0 ? ` ${keyPath.map((k) => `:${k}:`).join(' ')}` : '';
    super(`${where}:${key} ${reason}`);
    this.name = 'SettingsError';
  }
}
