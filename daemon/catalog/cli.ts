import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dataPaths } from '../paths.js';
import { openDb } from '../db/db.js';
import { YachayError } from '../errors.js';
import { Lessons } from './lessons.js';
import { JobQueue } from '../jobs/queue.js';
import { OPTIMIZE } from '../jobs/optimize-job.js';
import { removeManifest } from '../pkg/origin.js';

/**
 * `yachay lessons list|delete|retry`: what a technician does from a terminal (the teacher page
 * does the same). Works while the box runs: the box reads the catalog on every request.
 */
export async function lessonsCommand(dataDir: string, args: string[]): Promise<number> {
  const [verb, id] = args;
  const paths = dataPaths(dataDir);
  const db = openDb(paths.db);
  try {
    const lessons = new Lessons(db);
    const queue = new JobQueue(db);
    const jobsOf = (lessonId: string) => queue.list({ kind: OPTIMIZE }).filter((j) => (j.payload as { lessonId?: string }).lessonId === lessonId);
    const need = (): NonNullable<ReturnType<Lessons['get']>> => {
      if (!id) throw new YachayError('YCH_ERR_USAGE', `usage: yachay lessons ${verb} <id>`);
      const l = lessons.get(id);
      if (!l) throw new YachayError('YCH_ERR_USAGE', `no lesson "${id}" (see \`yachay lessons list\`)`);
      return l;
    };
    switch (verb) {
      case 'list': {
        for (const l of lessons.list()) {
          const why = l.status === 'failed' && l.error ? `\t${l.error.split('\n')[0]}` : '';
          process.stdout.write(`${l.id}\t${l.status}\t${l.origin}\t${l.title}${why}\n`);
        }
        return 0;
      }
      case 'delete': {
        const l = need();
        const running = jobsOf(l.id).find((j) => j.state === 'leased');
        if (running) throw new YachayError('YCH_ERR_USAGE', `lesson ${l.id} is being optimized (job ${running.id}): wait for it or stop the box first`);
        db.transaction(() => {
          for (const j of jobsOf(l.id)) db.prepare('DELETE FROM jobs WHERE id = ?').run(j.id);
          lessons.remove(l.id);
        })();
        // the catalog first: from this moment no page lists it; then its files
        await rm(join(paths.store, l.id), { recursive: true, force: true });
        const shared = lessons.list().some((o) => o.source === l.source);
        if (l.origin === 'local' && l.source?.startsWith(paths.sources) && !shared) await rm(l.source, { force: true });
        if (l.origin !== 'local') await removeManifest(paths.origin, l.id);
        process.stdout.write(`borrada / deleted ${l.id}\n`);
        return 0;
      }
      case 'retry': {
        const l = need();
        if (l.status !== 'failed') throw new YachayError('YCH_ERR_USAGE', `lesson ${l.id} is ${l.status}: only a failed lesson is retried`);
        if (!l.source) throw new YachayError('YCH_ERR_USAGE', `lesson ${l.id} has no recording on this box to optimize again`);
        const dead = jobsOf(l.id).filter((j) => j.state === 'dead').pop();
        process.stderr.write(`motivo / reason: ${dead?.lastError ?? l.error ?? '?'}\n`);
        const jobId = db.transaction(() => {
          lessons.setStatus(l.id, 'queued');
          // the dead job itself goes back with fresh attempts: its history stays in one row
          if (dead && queue.retry(dead.id)) return dead.id;
          return queue.enqueue(OPTIMIZE, { lessonId: l.id, source: l.source });
        })();
        process.stdout.write(`${l.id}\tjob ${jobId}\n`);
        return 0;
      }
      default:
        throw new YachayError('YCH_ERR_USAGE', 'usage: yachay lessons list | delete <id> | retry <id>');
    }
  } finally {
    db.close();
  }
}
