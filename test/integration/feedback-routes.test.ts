import t from 'tap';
import type { Test } from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { openDb } from '../../daemon/db/db.js';
import { FeedbackStore } from '../../daemon/feedback/store.js';
import { feedbackRoutes } from '../../daemon/feedback/routes.js';
import { buildApp } from '../../daemon/http/server.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import { OPTIMIZE } from '../../daemon/jobs/optimize-job.js';
import { Users } from '../../daemon/users/users.js';

// POST /api/feedback and /api/lessons/:id/flags on the real LAN server, a real SQLite file and
// the real job queue: what is stored, who may say what, and the re-encode the rule queues.

const PASSWORD = 'correct horse battery';
const SHOTS = [{ start: 0, end: 4, cls: 'slide' }, { start: 4, end: 9, cls: 'talking_head' }, { start: 9, end: 12, cls: 'slide' }];

async function box(t: Test, opts: { perHour?: number; needLogin?: boolean } = {}) {
  const dir = t.testdir();
  const db = openDb(join(dir, 'y.db'));
  const lessons = new Lessons(db);
  const users = new Users(db);
  await users.add('maestra', PASSWORD, 'teacher');
  await users.add('sensor', PASSWORD, 'device');
  const queue = new JobQueue(db, { maxAttempts: 1 });
  lessons.create({ id: 'agua', title: 'El agua', source: join(dir, 'agua.mp4') });
  lessons.markReady('agua', { durationS: 12, path: 'agua', renditions: [], report: { shots: SHOTS } });
  lessons.create({ id: 'cola', title: 'En cola', source: join(dir, 'cola.mp4') });
  const store = new FeedbackStore(db);
  const app = await buildApp({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 5, loginAttemptsPerMinute: 50, studentsNeedLogin: opts.needLogin ?? false },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'), lessons, users, health: () => ({ db: true }),
    onUpload: async () => ({ lessonId: 'x' }),
    plugins: [feedbackRoutes({
      store, lessons, studentsNeedLogin: opts.needLogin ?? false,
      cfg: { studentBadPerShot: 3, answersPerAddressPerHour: opts.perHour ?? 100 },
      reencode: (lessonId, boost, spans) => ({ jobId: queue.enqueue(OPTIMIZE, { lessonId, source: lessons.get(lessonId)!.source!, boost, spans }) }),
    })],
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => { await app.close(); db.close(); });
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const login = async (username: string): Promise<Record<string, string>> => {
    const r = await post('/api/login', { username, password: PASSWORD, bearer: true });
    return { authorization: `Bearer ${((await r.json()) as { token: string }).token}` };
  };
  return { base, db, store, queue, post, login };
}

const answer = (o: Record<string, unknown> = {}) => ({ lesson: 'agua', rendition: 'v0', kind: 'text', answer: 'bad', shots: [1], ...o });

t.test('three students say no on a shot: stored without a person, and only that shot is re-encoded, once', async (t) => {
  const b = await box(t);
  const shots = await (await fetch(`${b.base}/api/lessons/agua/shots`)).json() as { shots: unknown[]; version: number };
  t.same(shots.shots, [{ index: 0, start: 0, end: 4 }, { index: 1, start: 4, end: 9 }, { index: 2, start: 9, end: 12 }]);
  for (let i = 0; i < 2; i++) {
    const r = await b.post('/api/feedback', answer());
    t.equal(r.status, 202);
    t.same(await r.json(), { stored: 1, reencode: null }, `answer ${i + 1}: not yet`);
  }
  t.equal(b.queue.list().length, 0);
  const third = await (await b.post('/api/feedback', answer({ shots: [1, 2, 99] }))).json() as { stored: number; reencode: { jobId: number; shots: number[] } };
  t.equal(third.stored, 2, 'an unknown shot index is dropped');
  t.same(third.reencode.shots, [1], 'shot 1 reached three; shot 2 has one');
  const jobs = b.queue.list();
  t.equal(jobs.length, 1);
  t.same(jobs[0]!.payload, { lessonId: 'agua', source: (jobs[0]!.payload as { source: string }).source, boost: 1, spans: [{ start: 4, end: 9, kind: 'text' }] });
  await b.post('/api/feedback', answer());
  t.equal(b.queue.list().length, 1, 'a fourth "no" does not queue the same encode again');
  const rows = b.db.prepare('SELECT * FROM feedback ORDER BY id').all() as Array<Record<string, unknown>>;
  t.equal(rows.length, 5);
  t.same(Object.keys(rows[0]!), ['id', 'lesson_id', 'version', 'shot_index', 'rendition', 'kind', 'answer', 'source', 'at', 'job_id']);
  t.same(rows.map((r) => r.job_id), [jobs[0]!.id, jobs[0]!.id, jobs[0]!.id, null, null], 'the answers the job answered say so (not shot 2, not the one after)');
  t.equal(rows[0]!.version, shots.version);
});

t.test('a teacher flag re-encodes at once, one step more for a shot done before; students and devices may not flag', async (t) => {
  const b = await box(t);
  const span = { start: 5, end: 8, kind: 'text' };
  t.equal((await b.post('/api/lessons/agua/flags', span)).status, 401, 'no session');
  t.equal((await b.post('/api/lessons/agua/flags', span, await b.login('sensor'))).status, 403, 'a device account');
  const auth = await b.login('maestra');
  const r = await b.post('/api/lessons/agua/flags', span, auth);
  t.equal(r.status, 202);
  const first = await r.json() as { shots: number[]; reencode: { jobId: number } };
  t.same(first.shots, [1]);
  const again = await (await b.post('/api/lessons/agua/flags', { start: 4, end: 4, kind: 'text' }, auth)).json() as { reencode: { jobId: number } };
  const voice = await (await b.post('/api/lessons/agua/flags', { start: 0, end: 1, kind: 'voice', rendition: 'v1' }, auth)).json() as { reencode: { jobId: number } };
  const payloads = b.queue.list().map((j) => j.payload as { boost: number; spans: unknown[] });
  t.same(payloads.map((p) => [p.boost, p.spans]), [
    [1, [{ start: 4, end: 9, kind: 'text' }]],
    [2, [{ start: 4, end: 9, kind: 'text' }]],
    // shot 1's boost is kept when shot 0's voice is coded again
    [1, [{ start: 0, end: 4, kind: 'speech' }, { start: 4, end: 9, kind: 'text' }]],
  ]);
  t.ok(again.reencode.jobId && voice.reencode.jobId);
  t.equal((await b.post('/api/lessons/agua/flags', { start: 30, end: 40, kind: 'text' }, auth)).status, 400, 'outside the lesson');
  t.equal((await b.post('/api/lessons/agua/flags', { start: 8, end: 2, kind: 'text' }, auth)).status, 400, 'backwards');
  t.equal((await b.post('/api/lessons/cola/flags', span, auth)).status, 409, 'a lesson not yet published');
  t.equal((await b.post('/api/lessons/nada/flags', span, auth)).status, 404);
});

t.test('students: limited per address, small bodies, checked fields, readerGuard when logins are needed', async (t) => {
  const b = await box(t, { perHour: 3 });
  for (let i = 0; i < 3; i++) t.equal((await b.post('/api/feedback', answer({ answer: 'ok' }))).status, 202);
  const limited = await b.post('/api/feedback', answer({ answer: 'ok' }));
  t.equal(limited.status, 429, 'the fourth in an hour');
  t.equal(limited.headers.get('retry-after'), '3600');
  t.equal(((await limited.json()) as { error: string }).error, 'YCH_HTTP_FEEDBACK_LIMIT');
  const c = await box(t, { needLogin: true });
  t.equal((await c.post('/api/feedback', answer())).status, 401, 'studentsNeedLogin: the same guard as lessons');
  t.equal((await fetch(`${c.base}/api/lessons/agua/shots`)).status, 401);
  t.equal((await c.post('/api/feedback', answer(), await c.login('maestra'))).status, 202, 'logged in: accepted');
  t.equal((await c.post('/api/feedback', { ...answer({ answer: 'ok' }), user: 'ana', device: 'tel-1' }, await c.login('maestra'))).status, 202);
  const stored = JSON.stringify(c.db.prepare('SELECT * FROM feedback').all());
  t.notMatch(stored, /ana|tel-1|maestra/, 'a name or device sent along is not stored');
  t.equal((await c.post('/api/feedback', answer({ kind: 'smell' }))).status, 400);
  t.equal((await c.post('/api/feedback', answer({ shots: Array.from({ length: 600 }, (_, i) => i) }))).status, 413, 'a large body');
});
