import type { Db } from '../db/db.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import type { Lesson, Lessons } from './lessons.js';
import { removeLesson } from './remove.js';
import { retryLesson, type RetryResult } from './retry.js';

/** what pages hear on yachay/<school>/catalog/<id> when a teacher changes a lesson */
export interface LessonChange { type: 'lesson'; id: string; change: 'deleted' | 'renamed' | 'retry'; title?: string }

export interface ManagerDeps {
  db: Db;
  lessons: Lessons;
  queue: JobQueue;
  paths: Pick<DataPaths, 'store' | 'origin' | 'sources'>;
  log: Logger;
  /** WorkerService.cancel: a lesson being encoded is aborted before its files go */
  cancel: (jobIds: number[]) => Promise<unknown>;
  /** a queued job should start now (WorkerService.wake) */
  wake: () => void;
  /** tells every page (MQTT); must not throw */
  announce: (change: LessonChange) => void;
}

/**
 * The running box's side of the teacher page's lesson actions (http/routes/lessons.ts): the same
 * functions `yachay lessons` uses, plus the worker's abort and an MQTT word to the pages.
 */
export function lessonManager(d: ManagerDeps): {
  remove(id: string, by: string): Promise<boolean>;
  rename(id: string, title: string, by: string): Lesson | undefined;
  retry(id: string, by: string): RetryResult;
} {
  return {
    async remove(id, by) {
      const r = await removeLesson({
        db: d.db, lessons: d.lessons, paths: d.paths, log: d.log.child({ by }), cancel: d.cancel,
        removed: (l) => d.announce({ type: 'lesson', id: l.id, change: 'deleted' }),
      }, id);
      return r !== undefined;
    },
    rename(id, title) {
      if (!d.lessons.rename(id, title)) return undefined;
      const l = d.lessons.get(id);
      if (l) d.announce({ type: 'lesson', id, change: 'renamed', title: l.title });
      return l;
    },
    retry(id, by) {
      const r = retryLesson(d, id);
      if (r.ok) {
        d.log.info({ lessonId: id, jobId: r.jobId, by }, 'dead job queued again');
        d.wake();
        d.announce({ type: 'lesson', id, change: 'retry' });
      }
      return r;
    },
  };
}
