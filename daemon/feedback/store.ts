import type { Db } from '../db/db.js';
import type { Answer, FeedbackAnswer, FeedbackKind, FeedbackSource } from './rule.js';

/** One answer about one shot: never who gave it (migration 7). */
export interface FeedbackRow {
  lesson: string;
  /** the package version the answer concerns (lessons.version, else its publish time) */
  version: number | null;
  shot: number;
  rendition: string;
  kind: FeedbackKind;
  answer: FeedbackAnswer;
  source: FeedbackSource;
  at: number;
}

interface DbRow {
  lesson_id: string; version: number | null; shot_index: number; rendition: string;
  kind: FeedbackKind; answer: FeedbackAnswer; source: FeedbackSource; at: number; job_id: number | null;
}

const fromDb = (r: DbRow): FeedbackRow & { jobId: number | null } => ({
  lesson: r.lesson_id, version: r.version, shot: r.shot_index, rendition: r.rendition,
  kind: r.kind, answer: r.answer, source: r.source, at: r.at, jobId: r.job_id,
});

export class FeedbackStore {
  constructor(private readonly db: Db) {}

  record(rows: readonly FeedbackRow[]): number {
    const ins = this.db.prepare(`INSERT INTO feedback (lesson_id, version, shot_index, rendition, kind, answer, source, at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.db.transaction(() => {
      for (const r of rows) ins.run(r.lesson, r.version, r.shot, r.rendition, r.kind, r.answer, r.source, r.at);
    })();
    return rows.length;
  }

  /** answers about a lesson that no re-encode has answered yet */
  pending(lesson: string): Answer[] {
    return (this.db.prepare('SELECT * FROM feedback WHERE lesson_id = ? AND job_id IS NULL ORDER BY id').all(lesson) as DbRow[])
      .map((r) => ({ shot: r.shot_index, kind: r.kind, answer: r.answer, source: r.source }));
  }

  /**
   * Shots already re-encoded for what people said, and how many times: a later re-encode (for
   * another shot) codes the lesson again from its recording, so it must keep those boosts.
   */
  acted(lesson: string): Array<{ shot: number; kind: FeedbackKind; rounds: number }> {
    return this.db.prepare(`SELECT shot_index AS shot, kind, COUNT(DISTINCT job_id) AS rounds FROM feedback
      WHERE lesson_id = ? AND job_id IS NOT NULL AND answer = 'bad' GROUP BY shot_index, kind ORDER BY shot_index`).all(lesson) as Array<{ shot: number; kind: FeedbackKind; rounds: number }>;
  }

  /** marks the pending answers on these shots as answered by `jobId` */
  markActed(lesson: string, shots: ReadonlyArray<{ shot: number; kind: FeedbackKind }>, jobId: number): void {
    const upd = this.db.prepare('UPDATE feedback SET job_id = ? WHERE lesson_id = ? AND shot_index = ? AND kind = ? AND job_id IS NULL');
    this.db.transaction(() => { for (const s of shots) upd.run(jobId, lesson, s.shot, s.kind); })();
  }

  /** every answer, oldest first: the rate model's person labels (models/rate/labels.ts) */
  all(): Array<FeedbackRow & { jobId: number | null }> {
    return (this.db.prepare('SELECT * FROM feedback ORDER BY id').all() as DbRow[]).map(fromDb);
  }

  forLesson(lesson: string): Array<FeedbackRow & { jobId: number | null }> {
    return (this.db.prepare('SELECT * FROM feedback WHERE lesson_id = ? ORDER BY id').all(lesson) as DbRow[]).map(fromDb);
  }
}
