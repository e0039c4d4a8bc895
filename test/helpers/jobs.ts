import { loadConfig } from '../../daemon/config/load.js';
import type { JobsConfig } from '../../daemon/config/schema.js';
import { openDb } from '../../daemon/db/db.js';
import type { Db } from '../../daemon/db/db.js';
import { createLogger } from '../../daemon/log.js';
import { dataPaths } from '../../daemon/paths.js';
import type { DataPaths } from '../../daemon/paths.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import { WorkerService } from '../../daemon/jobs/worker.js';
import type { JobEvent } from '../../daemon/jobs/worker.js';
import { OPTIMIZE, createOptimizeHandler } from '../../daemon/jobs/optimize-job.js';
import { recordEncodes } from '../../daemon/models/rate/store.js';

/**
 * The worker wired as the edge role wires it, over a real data dir: SQLite file, content store,
 * optimize handler. Fast settings: no verify, x264 ultrafast (the floors are optimize.test.ts's).
 * Used in-process by the tests and by worker-runner.ts in a child the tests kill.
 */
export interface JobsRig { db: Db; paths: DataPaths; lessons: Lessons; queue: JobQueue; worker: WorkerService; close(): Promise<void> }

export function jobsRig(dataDir: string, opts: { jobs?: Partial<JobsConfig>; onEvent?: (e: JobEvent) => void; logLevel?: string; verify?: boolean } = {}): JobsRig {
  const cfg = loadConfig({ env: {}, overrides: { dataDir, optimize: { verify: opts.verify ?? false, preset: 'ultrafast' } } });
  const paths = dataPaths(dataDir);
  const db = openDb(paths.db);
  const lessons = new Lessons(db);
  const jobs: JobsConfig = { ...cfg.jobs, ...opts.jobs };
  const queue = new JobQueue(db, { maxAttempts: jobs.maxAttempts });
  const log = createLogger(opts.logLevel ?? 'silent');
  const worker = new WorkerService({
    queue, cfg: jobs, log, onEvent: opts.onEvent, pollMs: 100,
    handlers: {
      [OPTIMIZE]: createOptimizeHandler({ lessons, paths, cfg: cfg.optimize, dataDir, recordEncodes: (rows) => recordEncodes(db, rows) }),
    },
  });
  return {
    db, paths, lessons, queue, worker,
    async close() { await worker.stop(); db.close(); },
  };
}
