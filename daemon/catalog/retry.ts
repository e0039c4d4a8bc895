import type { Db } from '../db/db.js';
import type { Job, JobQueue } from '../jobs/queue.js';
import { OPTIMIZE } from '../jobs/optimize-job.js';
import type { Lessons } from './lessons.js';

/**
 * "Reintentar": a lesson whose optimize job ended in the dead letter gets that same job back in
 * the queue with its attempts reset (its history stays in one row), or a new job when the dead
 * one is gone. Shared by POST /api/lessons/:id/retry and `yachay lessons retry`.
 */
export type RetryResult =
  | { ok: true; jobId: number; /** why it failed, as the teacher is told */ reason: string | undefined }
  | { ok: false; why: 'missing' }
  | { ok: false; why: 'not-failed'; status: string }
  | { ok: false; why: 'no-source' };

function optimizeJobs(queue: JobQueue, lessonId: string): Job[] {
  return queue.list({ kind: OPTIMIZE }).filter((j) => (j.payload as { lessonId?: unknown } | null)?.lessonId === lessonId);
}

/** the dead optimize job that decides a lesson's state: its newest job, when that one is dead */
export function deadJobOf(queue: JobQueue, lessonId: string): Job | undefined {
  const last = optimizeJobs(queue, lessonId).pop();
  return last?.state === 'dead' ? last : undefined;
}

export function retryLesson(d: { db: Db; lessons: Lessons; queue: JobQueue }, id: string): RetryResult {
  return d.db.transaction((): RetryResult => {
    const l = d.lessons.get(id);
    if (!l) return { ok: false, why: 'missing' };
    const dead = deadJobOf(d.queue, id);
    // a failed lesson, or a published one whose re-encode died (it keeps playing meanwhile)
    if (l.status !== 'failed' && !dead) return { ok: false, why: 'not-failed', status: l.status };
    if (!l.source) return { ok: false, why: 'no-source' };
    const reason = dead?.lastError ?? l.error;
    if (!l.path) d.lessons.setStatus(id, 'queued');
    const jobId = dead && d.queue.retry(dead.id) ? dead.id : d.queue.enqueue(OPTIMIZE, { lessonId: id, source: l.source });
    return { ok: true, jobId, reason };
  }).immediate();
}
