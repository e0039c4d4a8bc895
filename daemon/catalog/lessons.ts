import { randomBytes } from 'node:crypto';
import type { Db } from '../db/db.js';

/**
 * The lessons of this box (table `lessons`, migration 1). A lesson's id is also the name of
 * its folder in the content store and part of its URL, so ids are kept to [a-z0-9-].
 */
export type LessonStatus = 'queued' | 'processing' | 'ready' | 'failed';
/** where a lesson came from: a teacher's upload on this box, or a package signed by the hub */
export type LessonOrigin = 'local' | 'hub' | 'import' | 'peer';

export interface RenditionInfo {
  id: string;
  bytes: number;
  kbps: number;
  /** relative to the lesson's folder, e.g. v0/index.m3u8 */
  playlist: string;
}

/**
 * A part of a published lesson under its quality floor (the optimizer's Miss): the teacher is
 * told "el texto puede verse borroso en 1:20–1:45" and may ask for a re-encode.
 */
export interface LessonMiss {
  kind: 'text' | 'picture' | 'speech';
  start: number;
  end: number;
  value: number;
  floor: number;
  ceiling?: number | undefined;
}

export interface Lesson {
  id: string;
  title: string;
  status: LessonStatus;
  source?: string | undefined;
  durationS?: number | undefined;
  /** folder of the published package, relative to the content store */
  path?: string | undefined;
  renditions?: RenditionInfo[] | undefined;
  /** parts published under their floor; empty when every floor was met */
  misses?: LessonMiss[] | undefined;
  error?: string | undefined;
  origin: LessonOrigin;
  /** the hub's channel and version of a synced or imported lesson */
  channel?: string | undefined;
  version?: number | undefined;
  plays: number;
  createdAt: number;
  updatedAt: number;
}

export interface ReadyInfo {
  durationS: number;
  path: string;
  renditions: RenditionInfo[];
  report: unknown;
  misses?: LessonMiss[] | undefined;
}

/** the longest title a teacher may give (characters, not bytes) */
export const TITLE_MAX = 200;

/** what a lesson id may look like: a folder name and a URL segment, never a path */
export const LESSON_ID = /^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$/;

interface LessonRow {
  id: string; title: string; status: LessonStatus; source: string | null; error: string | null;
  duration_s: number | null; path: string | null; renditions_json: string | null; misses_json: string | null;
  origin: LessonOrigin; channel: string | null; version: number | null; plays: number;
  created_at: number; updated_at: number;
}

const COLUMNS = 'id, title, status, source, error, duration_s, path, renditions_json, misses_json, origin, channel, version, plays, created_at, updated_at';
const FOLD_FN = 'yachay_fold';

/** lower case without accents: "Fotosíntesis" and "fotosintesis" match */
export function fold(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

/** "La célula: partes y funciones" → "la-celula-partes-y-funciones" */
export function slugify(title: string, max = 48): string {
  const slug = fold(title).replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return slug.slice(0, max).replace(/-+$/, '') || 'leccion';
}

function suffix(): string {
  // 6 base-36 characters: ~2e9 ids per slug, enough to never collide in one school
  return (randomBytes(5).readUInt32BE(0) % 36 ** 6).toString(36).padStart(6, '0');
}

/** only what the catalog promises, whatever the optimizer's report carries besides */
function toMiss(m: LessonMiss): LessonMiss {
  return { kind: m.kind, start: m.start, end: m.end, value: m.value, floor: m.floor, ceiling: m.ceiling };
}

function toLesson(r: LessonRow): Lesson {
  return {
    id: r.id, title: r.title, status: r.status, source: r.source ?? undefined,
    durationS: r.duration_s ?? undefined, path: r.path ?? undefined,
    renditions: r.renditions_json ? JSON.parse(r.renditions_json) as RenditionInfo[] : undefined,
    misses: r.misses_json ? JSON.parse(r.misses_json) as LessonMiss[] : undefined,
    error: r.error ?? undefined, origin: r.origin, channel: r.channel ?? undefined, version: r.version ?? undefined,
    plays: r.plays, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export class Lessons {
  private readonly now: () => number;

  constructor(private readonly db: Db, opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
    // SQLite's lower() folds ASCII only; search needs Spanish and Quechua accents folded too
    db.function(FOLD_FN, { deterministic: true }, (s: unknown) => (typeof s === 'string' ? fold(s) : s));
  }

  create(input: { id?: string; title: string; source?: string | undefined }): Lesson {
    const title = input.title.trim();
    if (!title) throw new RangeError('a lesson needs a title');
    if (input.id !== undefined && !LESSON_ID.test(input.id)) {
      throw new RangeError(`lesson id must be lower-case letters, digits and dashes (got ${JSON.stringify(input.id)})`);
    }
    const now = this.now();
    const insert = this.db.prepare(
      `INSERT INTO lessons (id, title, status, source, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?, ?)`,
    );
    // a generated id that collides (one in billions) just gets another suffix
    for (let i = 0; ; i++) {
      const id = input.id ?? `${slugify(title)}-${suffix()}`;
      try {
        insert.run(id, title, input.source ?? null, now, now);
        return this.get(id)!;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (input.id === undefined && code === 'SQLITE_CONSTRAINT_PRIMARYKEY' && i < 5) continue;
        throw err;
      }
    }
  }

  get(id: string): Lesson | undefined {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM lessons WHERE id = ?`).get(id) as LessonRow | undefined;
    return row ? toLesson(row) : undefined;
  }

  /** the optimizer's report (floors measured, timings, shots) of a ready lesson */
  report(id: string): unknown {
    const row = this.db.prepare('SELECT report_json FROM lessons WHERE id = ?').get(id) as { report_json: string | null } | undefined;
    return row?.report_json ? JSON.parse(row.report_json) as unknown : undefined;
  }

  /** newest first; `q` matches every word in the title, case- and accent-insensitive */
  list(filter: { q?: string; status?: LessonStatus; limit?: number } = {}): Lesson[] {
    const where: string[] = []; const params: unknown[] = [];
    if (filter.status) { where.push('status = ?'); params.push(filter.status); }
    for (const word of fold(filter.q ?? '').split(/\s+/).filter(Boolean)) {
      where.push(`${FOLD_FN}(title) LIKE ? ESCAPE '\\'`);
      params.push(`%${word.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    params.push(filter.limit ?? -1);
    const rows = this.db.prepare(
      `SELECT ${COLUMNS} FROM lessons ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`,
    ).all(...params) as LessonRow[];
    return rows.map(toLesson);
  }

  /** false when there is no such lesson (it was removed while its job ran) */
  setStatus(id: string, status: LessonStatus, error?: string): boolean {
    const r = this.db.prepare('UPDATE lessons SET status = ?, error = ?, updated_at = ? WHERE id = ?')
      .run(status, error ?? null, this.now(), id);
    return r.changes === 1;
  }

  markReady(id: string, info: ReadyInfo): boolean {
    const r = this.db.prepare(
      `UPDATE lessons SET status = 'ready', error = NULL, duration_s = ?, path = ?, renditions_json = ?, report_json = ?, misses_json = ?, updated_at = ?
       WHERE id = ?`,
    ).run(info.durationS, info.path, JSON.stringify(info.renditions), JSON.stringify(info.report ?? null),
      JSON.stringify((info.misses ?? []).map(toMiss)), this.now(), id);
    return r.changes === 1;
  }

  /**
   * A lesson installed from a signed package (sync, USB, peer): inserted ready, or moved to the
   * newer version. A teacher's own lesson with the same id is never overwritten.
   */
  upsertInstalled(input: { id: string; title: string; origin: Exclude<LessonOrigin, 'local'>; channel: string; version: number } & Omit<ReadyInfo, 'report'>): void {
    const now = this.now();
    this.db.transaction(() => {
      const row = this.db.prepare('SELECT origin FROM lessons WHERE id = ?').get(input.id) as { origin: LessonOrigin } | undefined;
      if (row?.origin === 'local') {
        throw new RangeError(`lesson ${input.id} is a teacher's lesson of this box: a package with the same id is not installed over it`);
      }
      this.db.prepare(
        `INSERT INTO lessons (id, title, status, duration_s, path, renditions_json, misses_json, report_json, origin, channel, version, created_at, updated_at)
         VALUES (?, ?, 'ready', ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, status = 'ready', error = NULL, duration_s = excluded.duration_s,
           path = excluded.path, renditions_json = excluded.renditions_json, misses_json = excluded.misses_json,
           origin = excluded.origin, channel = excluded.channel, version = excluded.version, updated_at = excluded.updated_at`,
      ).run(input.id, input.title, input.durationS, input.path, JSON.stringify(input.renditions),
        JSON.stringify((input.misses ?? []).map(toMiss)), input.origin, input.channel, input.version, now, now);
    })();
  }

  /** one more play (the master playlist was served): eviction keeps what students watch */
  countPlay(id: string): void {
    this.db.prepare('UPDATE lessons SET plays = plays + 1, last_played_at = ? WHERE id = ?').run(this.now(), id);
  }

  /**
   * A new title (trimmed, 1..TITLE_MAX characters); the id, and so the lesson's URLs, stay.
   * false when there is no such lesson.
   */
  rename(id: string, title: string): boolean {
    const t = title.trim();
    if (!t || [...t].length > TITLE_MAX) throw new RangeError(`a lesson title has 1 to ${TITLE_MAX} characters (got ${[...t].length})`);
    return this.db.prepare('UPDATE lessons SET title = ?, updated_at = ? WHERE id = ?').run(t, this.now(), id).changes === 1;
  }

  /**
   * Removes the catalog row only. Callers outside this folder use removeLesson() (remove.ts),
   * which also takes the lesson's jobs, files and blobs with it.
   */
  remove(id: string): boolean {
    return this.db.prepare('DELETE FROM lessons WHERE id = ?').run(id).changes === 1;
  }
}
