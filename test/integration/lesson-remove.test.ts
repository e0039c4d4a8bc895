import t from 'tap';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { openDb } from '../../daemon/db/db.js';
import { dataPaths } from '../../daemon/paths.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import { OPTIMIZE } from '../../daemon/jobs/optimize-job.js';
import { removeLesson } from '../../daemon/catalog/remove.js';
import { buildManifest } from '../../daemon/pkg/manifest.js';
import { BlobStore, publishToOrigin } from '../../daemon/pkg/origin.js';
import { isYachayError } from '../../daemon/errors.js';
import { makeLessonFolder, renditionsOf } from '../helpers/package.js';

// The one removal (daemon/catalog/remove.ts) on real files: two synced lessons share their
// audio blobs, a teacher's lesson has its recording in sources/ and a job. Real SQLite file.

t.test('removeLesson: catalog, jobs, package, manifest, own blobs and recording; shared ones stay', async (t) => {
  const dir = t.testdir();
  const paths = dataPaths(dir);
  for (const p of [paths.store, paths.sources, paths.origin]) mkdirSync(p, { recursive: true });
  const db = openDb(paths.db);
  t.teardown(() => db.close());
  const lessons = new Lessons(db);
  const queue = new JobQueue(db);
  const { privateKey } = generateKeyPairSync('ed25519');

  // two synced lessons: the same tone (audio blobs shared), different pictures
  const manifests = [];
  for (const [id, seed] of [['l1', 0], ['l2', 1]] as const) {
    const folder = makeLessonFolder(join(dir, 'pub', id), { seed, seconds: 2 });
    const m = await buildManifest(folder, { id, title: id, channel: 'ciencia', version: 1, durationS: 2, renditions: renditionsOf(folder), misses: [] });
    await publishToOrigin(paths.origin, folder, m, privateKey);
    cpSync(folder, join(paths.store, id), { recursive: true });
    lessons.upsertInstalled({ id, title: id, origin: 'hub', channel: 'ciencia', version: 1, durationS: 2, path: id, renditions: renditionsOf(folder) });
    manifests.push(m);
  }
  const [m1, m2] = manifests as [typeof manifests[0], typeof manifests[0]];
  const shared = m1.files.filter((f) => m2.files.some((g) => g.sha256 === f.sha256)).map((f) => f.sha256);
  const own1 = m1.files.map((f) => f.sha256).filter((s) => !shared.includes(s));
  t.ok(shared.length > 0 && own1.length > 0, 'the two lessons share some blobs and not others');
  const blobs = new BlobStore(paths.origin);

  const r1 = await removeLesson({ db, lessons, paths }, 'l1');
  t.equal(r1?.lesson.id, 'l1');
  t.equal(lessons.get('l1'), undefined, 'gone from the catalog');
  t.notOk(existsSync(join(paths.store, 'l1')), 'its package is gone');
  t.notOk(existsSync(join(paths.origin, 'manifests', 'l1.json')), 'its manifest is gone');
  t.notOk(existsSync(join(paths.origin, 'manifests', 'l1.json.sig')), 'and its signature');
  for (const sha of own1) t.notOk(await blobs.has(sha), `own blob ${sha.slice(0, 8)} collected`);
  for (const sha of shared) t.ok(await blobs.has(sha), `shared blob ${sha.slice(0, 8)} kept for l2`);
  t.ok(r1!.blobBytes > 0, 'the bytes freed are counted');
  t.ok(existsSync(join(paths.store, 'l2', 'master.m3u8')), 'l2 still plays');

  // the sync fetching a lesson keeps blobs no installed manifest names yet
  const inFlight = m2.files[0]!.sha256;
  await removeLesson({ db, lessons, paths }, 'l2', { keepBlobs: [inFlight] });
  t.ok(await blobs.has(inFlight), 'a blob the sync still needs stays');
  t.notOk(await blobs.has(m2.files[1]!.sha256), 'the others go');

  // a teacher's lesson: its recording goes, unless another lesson uses it too
  const rec = join(paths.sources, 'rec.mp4'); writeFileSync(rec, 'x');
  const solo = join(paths.sources, 'solo.mp4'); writeFileSync(solo, 'y');
  lessons.create({ id: 'a', title: 'A', source: rec });
  lessons.create({ id: 'b', title: 'B', source: rec });
  lessons.create({ id: 'c', title: 'C', source: 'solo.mp4' });
  const job = queue.enqueue(OPTIMIZE, { lessonId: 'c', source: 'solo.mp4' });
  mkdirSync(join(paths.store, '.c.tmp-4242'), { recursive: true });
  t.equal(queue.lease('other-box:1', 60_000)?.id, job, 'another process encodes c');
  const refused = await removeLesson({ db, lessons, paths }, 'c').then(() => undefined, (err: unknown) => err);
  t.ok(isYachayError(refused, 'YCH_ERR_USAGE') && /being optimized/.test(refused.message), 'without the worker, a live encode elsewhere makes it refuse');
  t.ok(lessons.get('c') && existsSync(solo), 'nothing removed');
  db.prepare('UPDATE jobs SET lease_until = 0 WHERE id = ?').run(job);
  const rc = await removeLesson({ db, lessons, paths }, 'c');
  t.ok(rc?.sourceRemoved, 'a lease that ran out (a dead box) does not block it');
  t.notOk(existsSync(solo), 'its recording (a path relative to sources/) is removed');
  t.notOk(existsSync(join(paths.store, '.c.tmp-4242')), 'the temp folder of an interrupted encode too');
  t.equal(queue.get(job), undefined, 'its job is gone');
  const ra = await removeLesson({ db, lessons, paths }, 'a');
  t.notOk(ra?.sourceRemoved);
  t.ok(existsSync(rec), 'a recording lesson b still uses is kept');
  await removeLesson({ db, lessons, paths }, 'b');
  t.notOk(existsSync(rec), 'and goes with the last lesson that used it');
  t.equal(await removeLesson({ db, lessons, paths }, 'b'), undefined, 'an unknown lesson: undefined');

  // a recording outside sources/ (a technician's own file given to `yachay optimize`) is never touched
  const outside = join(dir, 'mine.mp4'); writeFileSync(outside, 'z');
  lessons.create({ id: 'd', title: 'D', source: outside });
  await removeLesson({ db, lessons, paths }, 'd');
  t.ok(existsSync(outside));
});
