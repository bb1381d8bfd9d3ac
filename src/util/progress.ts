// Progress of a long operation on one terminal line; nothing at all when output is not a terminal
// (logs, pipes, CI), so scripts see only the results.

export interface Progress {
  update(done: number, total: number, label?: string): void;
  /** Clears the line. */
  end(): void;
}

const BAR_WIDTH = 20;

export function terminalProgress(verb: string, stream: NodeJS.WriteStream = process.stderr, enabled = stream.isTTY === true): Progress {
  if (!enabled) return { update: () => undefined, end: () => undefined };
  let drawn = false;
  return {
    update(done, total, label) {
      const filled = total > 0 ? Math.round((done / total) * BAR_WIDTH) : 0;
      const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
      const text = `${verb} ${bar} ${done}/${total}${label ? `  ${label}` : ''}`;
      const columns = stream.columns && stream.columns > 10 ? stream.columns : 80;
      // \r and erase-line redraw in place; the line is cut to the terminal width so it never wraps.
      stream.write(`\r\x1b[2K${text.length > columns - 1 ? text.slice(0, columns - 2) + '…' : text}`);
      drawn = true;
    },
    end() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}
