// Hot reload of settings.yml. RhoConnect reads its settings at boot only; rhopush follows edits
// while running so operators can toggle :push_notify: without a restart.
//
// The directory is watched, not the file: editors that save by writing a new file and renaming it
// over the old one, and config managers that replace the file (or, on Kubernetes, swap the `..data`
// symlink behind it), leave a watch on the old file pointing at nothing. Every event for the file's
// name (or a `..`-prefixed entry) leads to a read; the content decides whether anything changed.
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { HealthPart } from '../util/health.js';
import type { Settings } from './settings.js';
import { SettingsError } from './settings-error.js';
import { parseSettings } from './load-settings.js';
import { describeChanges, diffSettings, liveSettings, type SettingsDiff } from './settings-diff.js';

export type ReloadResult =
  { status: 'applied'; diff: SettingsDiff; settings: Settings } | { status: 'unchanged' } | { status: 'failed'; error: SettingsError };

/** The reason the file on disk is not the one in use, for /healthz. */
export interface SettingsProblem {
  file: string;
  line?: number;
  reason: string;
  message: string;
  since: Date;
}

export interface SettingsWatcherOptions {
  /** The file to follow (absolute). */
  file: string;
  /** The settings the daemon runs with now. */
  current: () => Settings;
  /** Parses the file's text; throws SettingsError when it does not parse or validate. */
  parse: (text: string) => Settings;
  /** Switches the running daemon to these settings (restart-only keys already kept as they were). */
  apply: (settings: Settings) => void;
  logger: Logger;
  /** Quiet time after the last file event before reading: a save can arrive in several writes. */
  debounceMs?: number;
  /** Every reload's result (metrics). */
  onReload?: (result: ReloadResult) => void;
}

const DEFAULT_DEBOUNCE_MS = 100;

export class SettingsWatcher {
  /** A watcher of `settings.file`, reading it again with its environment. */
  static forFile(settings: Settings, options: Omit<SettingsWatcherOptions, 'file' | 'parse'>): SettingsWatcher {
    const { file, environment } = settings;
    return new SettingsWatcher({ ...options, file, parse: (text) => parseSettings(text, file, { environment }) });
  }

  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  /** Text of the last read, good or bad: an event that changes nothing is not a reload. */
  private lastText?: string;
  private failure?: SettingsProblem;
  private readonly dir: string;
  private readonly name: string;
  private readonly logger: Logger;

  constructor(private readonly options: SettingsWatcherOptions) {
    this.dir = dirname(options.file);
    this.name = basename(options.file);
    this.logger = options.logger.child({ part: 'settings' });
    try {
      this.lastText = readFileSync(options.file, 'utf8');
    } catch {
      // Started from settings read elsewhere; the first event reads the file.
    }
  }

  /** Set while the file on disk is rejected and the last good settings keep running. */
  /** A rejected file is a warning, not a failure: the last good settings keep serving. */
  healthParts(): Record<string, HealthPart> {
    const problem = this.problem;
    return {
      config: problem
        ? { ok: true, warning: problem.message, detail: `running with the last good settings since ${problem.since.toISOString()}` }
        : { ok: true, detail: this.options.current().file },
    };
  }

  get problem(): SettingsProblem | undefined {
    return this.failure;
  }

  /** Resolves once the watch is in place: edits from then on are seen. */
  async start(): Promise<void> {
    const watcher = watch(this.dir, {
      depth: 0,
      ignoreInitial: true,
      persistent: true,
      ignored: (path: string) => path !== this.dir && !this.concerns(path),
    });
    this.watcher = watcher;
    watcher.on('all', (_event, path) => {
      if (this.concerns(path)) this.schedule();
    });
    // chokidar drops some file changes it deems spurious (it compares access and modification
    // times, which a quick edit after a reload defeats); the raw fs.watch events it relays do not.
    watcher.on('raw', (_event, path) => {
      if (typeof path === 'string' && this.concernsName(basename(path))) this.schedule();
    });
    watcher.on('error', (err) => this.logger.warn({ err: (err as Error).message, dir: this.dir }, 'settings watch error'));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.logger.debug({ file: this.options.file }, 'watching settings file');
  }

  private concerns(path: string): boolean {
    return dirname(path) === this.dir && this.concernsName(basename(path));
  }

  /** The file itself, or Kubernetes' `..data` swap behind a mounted ConfigMap. */
  private concernsName(name: string): boolean {
    return name === this.name || name.startsWith('..');
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      try {
        this.reload();
      } catch (err) {
        this.logger.error(
          { file: this.options.file, err: (err as Error).message },
          'settings reload failed; the running settings are kept',
        );
      }
    }, this.options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  /**
   * Reads the file now and applies it when it changed. `force` reloads even when the text is the
   * same as last read (SIGHUP). A file that fails to read, parse or validate changes nothing.
   */
  reload(force = false): ReloadResult {
    const result = this.read(force);
    this.options.onReload?.(result);
    return result;
  }

  private read(force: boolean): ReloadResult {
    const file = this.options.file;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      this.lastText = undefined;
      return this.fail(
        new SettingsError(file, undefined, `cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`),
      );
    }
    // Same bytes as the last read (a touch, a chmod, a save without edits): nothing to do, and a
    // rejected file is not reported again.
    if (!force && text === this.lastText) return { status: 'unchanged' };
    this.lastText = text;

    let next: Settings;
    try {
      next = this.options.parse(text);
    } catch (err) {
      if (err instanceof SettingsError) return this.fail(err);
      return this.fail(new SettingsError(file, undefined, (err as Error).message));
    }

    for (const warning of next.warnings ?? []) this.logger.warn({ file: warning.file, line: warning.line }, `settings: ${warning.message}`);
    const running = this.options.current();
    const diff = diffSettings(running, next);
    if (this.failure) {
      this.logger.info({ file }, 'settings file is valid again');
      this.failure = undefined;
    }
    for (const line of describeChanges(diff.restart)) {
      this.logger.warn({ file, change: line }, `settings change needs a restart, kept as running until then: ${line}`);
    }
    if (diff.live.length === 0) {
      if (diff.restart.length === 0) this.logger.info({ file }, 'settings file saved; nothing rhopush uses changed');
      return { status: 'unchanged' };
    }
    const settings = liveSettings(running, next);
    this.options.apply(settings);
    for (const line of describeChanges(diff.live)) this.logger.info({ file, change: line }, `settings reloaded: ${line}`);
    return { status: 'applied', diff, settings };
  }

  private fail(error: SettingsError): ReloadResult {
    this.failure = {
      file: error.file,
      line: error.line,
      reason: error.reason,
      message: error.message,
      since: this.failure?.since ?? new Date(),
    };
    this.logger.error(
      { file: error.file, line: error.line, column: error.column, reason: error.reason },
      `settings file rejected, the last good settings keep running: ${error.message}`,
    );
    return { status: 'failed', error };
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
