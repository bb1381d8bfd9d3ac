// The explanation of `rhopush why` as text: the verdict first (what an operator asked), then the
// devices, what happened newest first, what settings.yml says, and notes.
import { timeFormatter, type WhyEvent, type WhyReport } from './why.js';
import { clip } from '../util/log-text.js';

export function formatWhy(report: WhyReport): string {
  const time = timeFormatter(report.timeZone, report.at);
  const out: string[] = [];
  const scope = [
    report.source !== undefined ? `source ${clip(report.source)}` : undefined,
    report.since !== undefined ? `since ${time(report.since)}` : undefined,
  ].filter(Boolean);
  out.push(`${clip(report.user)}${report.known ? '' : ' (not a RhoConnect user)'}${scope.length > 0 ? ` — ${scope.join(', ')}` : ''}`);

  out.push('', 'Verdict');
  for (const line of report.verdict.lines) out.push(`  ${line}`);

  out.push('', 'Devices');
  if (report.devices.length === 0) out.push('  (none: the user has no RhoConnect client)');
  const rows = report.devices.map((d) => [
    `${d.label} ${d.token ?? ''}`.trim(),
    `client ${d.clientId}`,
    d.registered
      ? [d.dead ? `token marked dead ${d.dead.at} (${d.dead.reason})` : 'registered', d.problem].filter(Boolean).join('; ')
      : (d.problem ?? ''),
  ]);
  const widths = [0, 1].map((i) => Math.max(0, ...rows.map((r) => r[i]!.length)));
  for (const r of rows) out.push(`  ${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]}`);

  out.push('', 'What happened (newest first)');
  if (report.events.length === 0) out.push(`  nothing recorded${report.history.enabled ? '' : ' (history is off)'}`);
  for (const e of report.events) out.push(...eventLines(e, time));

  out.push('', 'settings.yml');
  for (const s of report.sources) out.push(`  ${s.text}`);
  if (report.sources.length === 0) out.push('  (no sources listed)');

  if (report.notes.length > 0) {
    out.push('', 'Notes');
    for (const n of report.notes) out.push(`  ${n}`);
  }
  return out.join('\n');
}

function eventLines(e: WhyEvent, time: (ms: number) => string): string[] {
  const when = time(e.at).padStart(8);
  const repeated = e.count && e.count > 1 ? `  (×${e.count} since ${time(e.firstAt ?? e.at)})` : '';
  if (!e.ping) return [`  ${when}  ${e.text}${repeated}`];
  const p = e.ping;
  const lines = [`  ${when}  ${e.text}  (ping ${p.id}, ${p.status})`];
  const pad = ' '.repeat(when.length + 6);
  for (const d of p.devices) lines.push(`${pad}${d.text}`);
  if (p.skipped) lines.push(`${pad}no device pushed: the user was unknown or had no registered client then`);
  if (p.incomplete) lines.push(`${pad}record incomplete: ${p.incomplete}`);
  return lines;
}
