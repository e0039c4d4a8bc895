import t from 'tap';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { dataPaths } from '../../daemon/paths.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import { OPTIMIZE } from '../../daemon/jobs/optimize-job.js';
import { JanitorService, sweep } from '../../daemon/catalog/janitor.js';

// Issue 12 item 1: abandoned .part uploads older than their resume window and recordings no
// lesson names any more are removed; everything a lesson or a job still names stays. Real
// files, real SQLite file. A file's ctime cannot be set back, so the sweeps move the clock on.

const H = 3600_000;

t.test('the janitor keeps what is resumable or named, removes the rest', async (t) => {
  const dir = t.testdir();
  const paths = dataPaths(dir);
  for (const p of [paths.uploads, paths.sources]) mkdirSync(p, { recursive: true });
  const db = openDb(paths.db);
  t.teardown(() => db.close());
  const lessons = new Lessons(db);
  const queue = new JobQueue(db);

  const up = 'a'.repeat(32);
  writeFileSync(join(paths.uploads, `${up}.part`), Buffer.alloc(5000));
  writeFileSync(join(paths.uploads, `${up}.json`), JSON.stringify({ id: up, length: 10_000, title: 'x', by: 'maestra', createdAt: Date.now() }));
  const lone = 'b'.repeat(32);
  writeFileSync(join(paths.uploads, `${lone}.part`), Buffer.alloc(100)); // its .json was lost
  writeFileSync(join(paths.uploads, 'notes.txt'), 'not an upload');

  const kept = join(paths.sources, 'kept.mp4'); writeFileSync(kept, 'k');
  lessons.create({ id: 'viva', title: 'Viva', source: kept });
  const relative = join(paths.sources, 'rel.mp4'); writeFileSync(relative, 'r');
  lessons.create({ id: 'rel', title: 'Relativa', source: 'rel.mp4' });
  const queued = join(paths.sources, 'queued.mp4'); writeFileSync(queued, 'q');
  queue.enqueue(OPTIMIZE, { lessonId: 'pronto', source: queued });
  // a lesson removed by the old `lessons delete`, which left its recording behind
  const orphan = join(paths.sources, 'orphan.mp4'); writeFileSync(orphan, Buffer.alloc(2000));
  lessons.create({ id: 'borrada', title: 'Borrada', source: orphan });
  lessons.remove('borrada');
  mkdirSync(join(paths.sources, 'a-folder'));

  const base = { db, paths, log: pino({ level: 'silent' }) };
  const now = await sweep(base);
  t.same(now, { uploads: [], sources: [], bytes: 0 }, 'right after: nothing (an upload finishing now is never taken)');

  const later = await sweep({ ...base, now: () => Date.now() + 2 * H });
  t.same(later.sources, ['orphan.mp4'], 'after the grace hour: the recording no lesson names');
  t.equal(later.bytes, 2000);
  t.same(later.uploads, [], 'uploads are still within their resume window');
  t.ok(existsSync(join(paths.uploads, `${up}.part`)), 'and can still resume');

  const size = [`${up}.part`, `${up}.json`, `${lone}.part`].reduce((n, f) => n + statSync(join(paths.uploads, f)).size, 0);
  const days = await sweep({ ...base, now: () => Date.now() + 49 * H });
  t.same(days.uploads.sort(), [up, lone], 'after 48 h untouched: abandoned');
  t.equal(days.bytes, size, 'the bytes freed are counted');
  for (const f of [`${up}.part`, `${up}.json`, `${lone}.part`]) t.notOk(existsSync(join(paths.uploads, f)), `${f} removed`);
  t.ok(existsSync(join(paths.uploads, 'notes.txt')), 'a file that is not an upload is left alone');
  for (const f of [kept, relative, queued]) t.ok(existsSync(f), `${f.slice(dir.length)} is named (lesson, relative path, queued job): kept`);
  t.ok(existsSync(join(paths.sources, 'a-folder')), 'folders are not the janitor\'s');
});

t.test('JanitorService sweeps at start and on its interval', async (t) => {
  const dir = t.testdir();
  const paths = dataPaths(dir);
  for (const p of [paths.uploads, paths.sources]) mkdirSync(p, { recursive: true });
  const db = openDb(paths.db);
  t.teardown(() => db.close());
  const shift = 2 * H;
  const orphan = (n: string): string => { const p = join(paths.sources, n); writeFileSync(p, 'o'); return p; };
  const first = orphan('one.mp4');
  const svc = new JanitorService({ db, paths, log: pino({ level: 'silent' }), everyMs: 200, now: () => Date.now() + shift });
  await svc.start(new AbortController().signal);
  t.teardown(() => svc.stop());
  await svc.idle();
  t.notOk(existsSync(first), 'swept at start');
  const second = orphan('two.mp4');
  const end = Date.now() + 5000;
  while (existsSync(second) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  t.notOk(existsSync(second), 'swept again on the interval');
  await svc.stop();
  const third = orphan('three.mp4');
  await new Promise((r) => setTimeout(r, 500));
  t.ok(existsSync(third), 'nothing after stop()');
});
