/** A settings problem, told the way an operator can fix it: file, line, key and what was wrong. */
export class SettingsError extends Error {
  /** Every problem the file has (this one first); more than one when several were found. */
  readonly problems: SettingsError[];

  constructor(
    readonly file: string,
    readonly keyPath: string[] | undefined,
    readonly reason: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(`${where(file, line, column)}:${describeKey(keyPath)} ${reason}`);
    this.name = 'SettingsError';
    this.problems = [this];
  }

  /** One error for every problem found: the first's file and line, a message listing them all. */
  static combine(problems: SettingsError[]): SettingsError {
    if (problems.length === 1) return problems[0]!;
    const first = problems[0]!;
    const combined = new SettingsError(first.file, first.keyPath, first.reason, first.line, first.column);
    combined.message = `${first.file}: ${problems.length} problems:\n${problems.map((p) => `  ${p.message}`).join('\n')}`;
    (combined as { problems: SettingsError[] }).problems = problems;
    return combined;
  }
}

/** Something in the file that works but is probably not what was meant (an unknown key). */
export class SettingsWarning {
  readonly message: string;

  constructor(
    readonly file: string,
    readonly keyPath: string[],
    readonly reason: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    this.message = `${where(file, line, column)}:${describeKey(keyPath)} ${reason}`;
  }

  toString(): string {
    return this.message;
  }
}

function where(file: string, line?: number, column?: number): string {
  return line ? `${file}:${line}${column ? `:${column}` : ''}` : file;
}

function describeKey(keyPath: string[] | undefined): string {
  return keyPath && keyPath.length > 0 ? ` ${keyPath.map((k) => `:${k}:`).join(' ')}` : '';
}
