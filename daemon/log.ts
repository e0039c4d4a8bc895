import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * Logs go to stderr so that stdout stays free for results (`--plan` JSON, progress lines) that
 * scripts read: JSON lines under systemd and in pipes (journald and the hub read them), one
 * readable line each when a technician watches a terminal. Every warning and error is also
 * counted by `errorTally`, whose summary rides the box's telemetry to the hub.
 */
export function createLogger(level: string, format: LogFormat = formatFromEnv(), sink: { write(s: string): void } = pino.destination({ fd: 2, sync: true })): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true && !process.env.JOURNAL_STREAM);
  return pino({ level, base: { app: 'yachay' } }, tallyingSink(sink, pretty));
}

function formatFromEnv(): LogFormat {
  const f = process.env.YACHAY_LOG_FORMAT;
  return f === 'json' || f === 'pretty' ? f : 'auto';
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_RE = /"level":(\d+)/;

function tallyingSink(out: { write(s: string): void }, pretty: boolean): DestinationStream {
  return {
    write(line: string): void {
      const level = Number(LEVEL_RE.exec(line)?.[1] ?? 0);
      // only warnings and worse, and the pretty printer, pay for parsing the line
      if (level < 40 && !pretty) { out.write(line); return; }
      let rec: LogRecord | undefined;
      try { rec = JSON.parse(line) as LogRecord; } catch { /* not ours: pass it on as it is */ }
      if (rec && level >= 40) errorTally.observe(rec);
      out.write(pretty && rec ? prettyLine(rec) : line);
    },
  };
}

interface LogRecord { level: number; time?: number; msg?: string; code?: string; svc?: string; err?: { message?: string; code?: string; type?: string }; [k: string]: unknown }

const SKIP = new Set(['level', 'time', 'msg', 'app', 'pid', 'hostname', 'svc', 'err']);

/** `14:03:07 WARN  [sync] lesson not synced lessonId=agua — disk full …` */
export function prettyLine(r: LogRecord): string {
  const t = new Date(r.time ?? Date.now());
  const hh = [t.getHours(), t.getMinutes(), t.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const extra = Object.entries(r).filter(([k, v]) => !SKIP.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const err = r.err?.message ? ` — ${r.err.code ? `${r.err.code}: ` : ''}${r.err.message}` : '';
  const text = `${hh} ${(LEVELS[r.level] ?? String(r.level)).padEnd(5)} ${r.svc ? `[${r.svc}] ` : ''}${r.msg ?? ''}${extra.length ? ` ${extra.join(' ')}` : ''}${err}`;
  return `${text.length > 2000 ? `${text.slice(0, 2000)}…` : text}\n`;
}

export interface ErrorEntry { code: string; level: 'warn' | 'error' | 'fatal'; count: number; lastAt: number; msg: string }

/**
 * What went wrong on the box lately, by code (or by message when a line has none): the hub's
 * fleet view shows it beside each box, so the central team sees "disk full" or "ffmpeg failed"
 * without asking the school for its journal. Bounded by time and by number of codes.
 */
export class ErrorTally {
  private readonly entries = new Map<string, ErrorEntry>();
  constructor(private readonly windowMs = 24 * 3600_000, private readonly maxCodes = 50, private readonly now: () => number = Date.now) {}

  observe(r: Pick<LogRecord, 'level' | 'code' | 'msg' | 'err' | 'time'>): void {
    const code = r.code ?? r.err?.code ?? r.msg ?? 'unknown';
    const level = r.level >= 60 ? 'fatal' : r.level >= 50 ? 'error' : 'warn';
    const at = r.time ?? this.now();
    const e = this.entries.get(code);
    if (e) {
      e.count++; e.lastAt = at; e.msg = r.msg ?? e.msg;
      if (level !== 'warn' && e.level === 'warn') e.level = level;
      // most recent last: the oldest code is the one dropped when there are too many
      this.entries.delete(code); this.entries.set(code, e);
      return;
    }
    this.entries.set(code, { code, level, count: 1, lastAt: at, msg: (r.msg ?? '').slice(0, 200) });
    if (this.entries.size > this.maxCodes) this.entries.delete(this.entries.keys().next().value!);
  }

  /** codes seen within the window (each counted since it first appeared): totals, and the most frequent (errors first) */
  summary(limit = 5): { warnings: number; errors: number; top: ErrorEntry[] } {
    const since = this.now() - this.windowMs;
    for (const [k, e] of this.entries) if (e.lastAt < since) this.entries.delete(k);
    const all = [...this.entries.values()];
    const rank = (e: ErrorEntry): number => (e.level === 'warn' ? 0 : 1);
    return {
      warnings: all.filter((e) => e.level === 'warn').reduce((n, e) => n + e.count, 0),
      errors: all.filter((e) => e.level !== 'warn').reduce((n, e) => n + e.count, 0),
      top: all.sort((a, b) => rank(b) - rank(a) || b.count - a.count).slice(0, limit).map((e) => ({ ...e })),
    };
  }
}

/** the process's one tally (every logger of the process writes through a tallying sink) */
export const errorTally = new ErrorTally();
