import { dataPaths } from '../paths.js';
import { openDb } from '../db/db.js';
import { YachayError } from '../errors.js';
import { Lessons } from './lessons.js';
import { JobQueue } from '../jobs/queue.js';
import { removeLesson } from './remove.js';
import { retryLesson } from './retry.js';

/**
 * `yachay lessons list|delete|retry|rename`: what a technician does from a terminal (the teacher
 * page does the same through the same functions). Works while the box runs: the box reads the
 * catalog on every request.
 */
export async function lessonsCommand(dataDir: string, args: string[], opts: { title?: string | undefined } = {}): Promise<number> {
  const [verb, id] = args;
  const paths = dataPaths(dataDir);
  const db = openDb(paths.db);
  try {
    const lessons = new Lessons(db);
    const queue = new JobQueue(db);
    const need = (): string => {
      if (!id) throw new YachayError('YCH_ERR_USAGE', `usage: yachay lessons ${verb} <id>${verb === 'rename' ? ' --title T' : ''}`);
      if (!lessons.get(id)) throw new YachayError('YCH_ERR_USAGE', `no lesson "${id}" (see \`yachay lessons list\`)`);
      return id;
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
        // no worker in this process: a job the running box is encoding makes this refuse
        const r = await removeLesson({ db, lessons, paths }, need());
        if (!r) throw new YachayError('YCH_ERR_USAGE', `no lesson "${id}"`);
        process.stdout.write(`borrada / deleted ${r.lesson.id}\n`);
        return 0;
      }
      case 'rename': {
        const lessonId = need();
        if (opts.title === undefined) throw new YachayError('YCH_ERR_USAGE', 'usage: yachay lessons rename <id> --title T');
        try {
          lessons.rename(lessonId, opts.title);
        } catch (err) {
          if (err instanceof RangeError) throw new YachayError('YCH_ERR_USAGE', `--title: ${err.message}`);
          throw err;
        }
        process.stdout.write(`${lessonId}\t${lessons.get(lessonId)!.title}\n`);
        return 0;
      }
      case 'retry': {
        const r = retryLesson({ db, lessons, queue }, need());
        if (!r.ok) {
          if (r.why === 'not-failed') throw new YachayError('YCH_ERR_USAGE', `lesson ${id} is ${r.status}: only a failed lesson is retried`);
          throw new YachayError('YCH_ERR_USAGE', `lesson ${id} has no recording on this box to optimize again`);
        }
        process.stderr.write(`motivo / reason: ${r.reason ?? '?'}\n`);
        process.stdout.write(`${id}\tjob ${r.jobId}\n`);
        return 0;
      }
      default:
        throw new YachayError('YCH_ERR_USAGE', 'usage: yachay lessons list | delete <id> | retry <id> | rename <id> --title T');
    }
  } finally {
    db.close();
  }
}
