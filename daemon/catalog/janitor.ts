import { readdir, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Db } from '../db/db.js';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import type { Service } from '../service.js';

/**
 * Takes back the disk that nobody will ask for again, at start and every hour:
 *   - uploads/<id>.part (and its <id>.json) untouched for longer than the resume window: the
 *     teacher's page stopped retrying long ago (routes/uploads.ts keeps them resumable);
 *   - recordings in sources/ that no lesson names any more (a lesson removed by a version of
 *     the box that kept them, a crash between the upload's rename and its catalog row), once
 *     they are older than a grace period, so an upload finishing right now is never taken.
 * Lessons themselves are removed only by removeLesson (remove.ts).
 */
export interface JanitorOptions {
  db: Db;
  paths: Pick<DataPaths, 'uploads' | 'sources'>;
  log: Logger;
  /** how long an interrupted upload stays resumable; default 48 h (a weekend on a school link) */
  resumeWindowMs?: number;
  /** a recording no lesson names is kept this long first; default 1 h */
  graceMs?: number;
  /** between sweeps; default 1 h */
  everyMs?: number;
  now?: () => number;
}

export interface Swept { uploads: string[]; sources: string[]; bytes: number }

const HOUR = 3600_000;

async function ageOf(paths: string[], now: number): Promise<{ age: number; bytes: number } | undefined> {
  let newest = -Infinity; let bytes = 0; let any = false;
  for (const p of paths) {
    try {
      const s = await stat(p);
      any = true; bytes += s.size;
      newest = Math.max(newest, s.mtimeMs, s.ctimeMs);
    } catch { /* one of the pair is missing */ }
  }
  return any ? { age: now - newest, bytes } : undefined;
}

/** One sweep; exported for the CLI and tests. */
export async function sweep(o: JanitorOptions): Promise<Swept> {
  const now = (o.now ?? Date.now)();
  const window = o.resumeWindowMs ?? 48 * HOUR;
  const grace = o.graceMs ?? HOUR;
  const out: Swept = { uploads: [], sources: [], bytes: 0 };

  const ups = await readdir(o.paths.uploads).catch(() => [] as string[]);
  const ids = new Set(ups.map((n) => /^([a-f0-9]{32})\.(?:part|json)$/.exec(n)?.[1]).filter((x): x is string => !!x));
  for (const id of ids) {
    const files = [join(o.paths.uploads, `${id}.part`), join(o.paths.uploads, `${id}.json`)];
    const a = await ageOf(files, now);
    if (!a || a.age <= window) continue;
    for (const f of files) await rm(f, { force: true });
    out.uploads.push(id); out.bytes += a.bytes;
  }

  const named = new Set<string>();
  for (const r of o.db.prepare('SELECT source FROM lessons WHERE source IS NOT NULL').all() as Array<{ source: string }>) {
    named.add(isAbsolute(r.source) ? resolve(r.source) : resolve(o.paths.sources, r.source));
  }
  // a job may still name a recording whose lesson row is being written in the same transaction
  for (const r of o.db.prepare(`SELECT json_extract(payload_json, '$.source') AS source FROM jobs WHERE state != 'done'`).all() as Array<{ source: unknown }>) {
    if (typeof r.source === 'string') named.add(isAbsolute(r.source) ? resolve(r.source) : resolve(o.paths.sources, r.source));
  }
  for (const n of await readdir(o.paths.sources).catch(() => [] as string[])) {
    const p = resolve(o.paths.sources, n);
    if (named.has(p)) continue;
    let s;
    try { s = await stat(p); } catch { continue; }
    // ctime too: the upload's rename into sources/ changes it, not the mtime of its last byte
    if (!s.isFile() || now - Math.max(s.mtimeMs, s.ctimeMs) <= grace) continue;
    await rm(p, { force: true });
    out.sources.push(n); out.bytes += s.size;
  }
  return out;
}

export class JanitorService implements Service {
  readonly name = 'janitor';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly o: JanitorOptions) {}

  async start(signal?: AbortSignal): Promise<void> {
    if (this.timer || signal?.aborted) return;
    // the first sweep runs beside the start, not in its way
    this.kick();
    this.timer = setInterval(() => this.kick(), this.o.everyMs ?? HOUR);
    this.timer.unref();
  }

  private kick(): void {
    if (this.running) return;
    this.running = sweep(this.o).then((s) => {
      if (s.uploads.length || s.sources.length) {
        this.o.log.info({ uploads: s.uploads.length, sources: s.sources, mb: Math.round(s.bytes / 1e5) / 10 }, 'abandoned uploads and unused recordings removed');
      }
    }, (err: unknown) => { this.o.log.warn({ err }, 'janitor sweep failed; next one in an hour'); })
      .finally(() => { this.running = undefined; });
  }

  /** the sweep in progress, if any (tests wait for the one start() began) */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
