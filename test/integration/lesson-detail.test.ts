import t from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import { OPTIMIZE } from '../../daemon/jobs/optimize-job.js';
import { lessonManager, type LessonChange } from '../../daemon/catalog/manager.js';
import { buildApp } from '../../daemon/http/server.js';
import { dataPaths } from '../../daemon/paths.js';

// GET /api/lessons/:id for the teacher: the measured floors, the data each rendition costs per
// minute, and why a job failed; retry of a published lesson whose re-encode died. Real SQLite
// file, real catalog, queue and manager; Fastify through inject().

const PASSWORD = 'correct horse battery';

t.test('a lesson\'s floors, data use and failure, and retry of a dead re-encode', async (t) => {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  await users.add('maestra', PASSWORD, 'teacher');
  const lessons = new Lessons(db);
  const queue = new JobQueue(db, { maxAttempts: 2 });
  const heard: LessonChange[] = [];
  let woken = 0;
  const manage = lessonManager({
    db, lessons, queue, paths: dataPaths(dir), log: pino({ level: 'silent' }),
    cancel: async () => [], wake: () => { woken++; }, announce: (c) => heard.push(c),
  });
  const app = await buildApp({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 1, loginAttemptsPerMinute: 10, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'), lessons, users, health: () => ({}), manage,
  });
  t.teardown(() => app.close());

  lessons.create({ id: 'agua', title: 'El agua', source: join(dir, 'sources', 'agua.mp4') });
  lessons.markReady('agua', {
    durationS: 120, path: 'agua',
    renditions: [
      { id: 'v0', bytes: 1_200_000, kbps: 80, playlist: 'v0/index.m3u8' },
      { id: 'v1', bytes: 3_000_000, kbps: 200, playlist: 'v1/index.m3u8' },
      { id: 'a-opus', bytes: 240_000, kbps: 16, playlist: 'a-opus/index.m3u8' },
    ],
    misses: [{ kind: 'text', start: 10, end: 20, value: 0.8, floor: 0.9 }],
    report: { verify: { checks: [
      { kind: 'ocr', value: 0.95, floor: 0.9, ok: true, at: 5, weight: 10 },
      { kind: 'ocr', value: 0.8, floor: 0.9, ok: false, at: 15, weight: 8 },
      { kind: 'ssim', value: 0.97, floor: 0.93, ok: true, at: 40, weight: 20 },
      { kind: 'stoi', value: 0.91, floor: 0.85, ok: true, at: 0, weight: 120 },
    ] } },
  });
  const one = (await app.inject('/api/lessons/agua')).json();
  t.same(one.floors, [
    { kind: 'ocr', checks: 2, passed: 1, min: 0.8, floor: 0.9 },
    { kind: 'ssim', checks: 1, passed: 1, min: 0.97, floor: 0.93 },
    { kind: 'stoi', checks: 1, passed: 1, min: 0.91, floor: 0.85 },
  ], 'per measure: checks, held, lowest value, floor');
  t.same(one.dataUse, {
    renditions: [
      { id: 'v0', bytes: 1_200_000, kbps: 80, mbPerMin: 0.6 },
      { id: 'v1', bytes: 3_000_000, kbps: 200, mbPerMin: 1.5 },
      { id: 'a-opus', bytes: 240_000, kbps: 16, mbPerMin: 0.12 },
    ],
    totalBytes: 4_440_000,
    dataSaverMBPerMin: 0.72,
  }, 'MB per minute of each rendition and of the data-saver mix (v0 + Opus)');
  t.equal(one.misses.length, 1);
  t.equal(one.error, null, 'nothing failed');

  // a re-encode with more quality dies: the lesson keeps playing, the teacher sees why and may retry
  const job = queue.enqueue(OPTIMIZE, { lessonId: 'agua', source: join(dir, 'sources', 'agua.mp4'), boost: 1 });
  db.prepare(`UPDATE jobs SET state = 'dead', attempts = 2, last_error = ? WHERE id = ?`).run(`YCH_ERR_FFMPEG_FAILED: ffmpeg failed on ${dir}/store/.agua.tmp-1/v0`, job);
  lessons.setStatus('agua', 'ready', `re-encode failed, the previous package stays: YCH_ERR_FFMPEG_FAILED: ffmpeg failed on ${dir}/store/.agua.tmp-1/v0`);
  const failed = (await app.inject('/api/lessons/agua')).json();
  t.equal(failed.status, 'ready');
  t.match(failed.error, /re-encode failed.*YCH_ERR_FFMPEG_FAILED: ffmpeg failed on v0$/, 'why, without the box\'s folders');
  const login = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'maestra', password: PASSWORD, bearer: true } });
  const auth = { authorization: `Bearer ${login.json().token as string}` };
  const r = await app.inject({ method: 'POST', url: '/api/lessons/agua/retry', headers: auth });
  t.equal(r.statusCode, 202);
  t.equal(r.json().jobId, job, 'the dead re-encode itself');
  t.match(queue.get(job), { state: 'queued', attempts: 0, payload: { boost: 1 } }, 'queued again with its boost, attempts reset');
  t.equal(lessons.get('agua')!.status, 'ready', 'the published lesson keeps playing meanwhile');
  t.equal(woken, 1, 'the worker is woken');
  t.same(heard, [{ type: 'lesson', id: 'agua', change: 'retry' }]);
  t.equal((await app.inject({ method: 'POST', url: '/api/lessons/agua/retry', headers: auth })).statusCode, 409, 'nothing dead any more');

  // a failed lesson whose recording is gone
  lessons.create({ id: 'sin', title: 'Sin grabación' });
  lessons.setStatus('sin', 'failed', 'YCH_ERR_INPUT_MISSING: gone');
  t.equal((await app.inject({ method: 'POST', url: '/api/lessons/sin/retry', headers: auth })).statusCode, 410);
});
