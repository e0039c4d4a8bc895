import t, { type Test } from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import { OPTIMIZE, parsePayload } from '../../daemon/jobs/optimize-job.js';
import { buildApp } from '../../daemon/http/server.js';

// A lesson published under its floor in places: the catalog keeps the misses, the lesson API
// shows them, and a teacher (only) queues a re-encode with more quality. Real SQLite file, real
// catalog and job queue, Fastify through inject().

const PASSWORD = 'correct horse battery';

async function box(t: Test): Promise<{ app: FastifyInstance; lessons: Lessons; queue: JobQueue }> {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  await users.add('maestra', PASSWORD, 'teacher');
  await users.add('sensor1', PASSWORD, 'device');
  const lessons = new Lessons(db);
  const queue = new JobQueue(db, { maxAttempts: 3 });
  const les = lessons.create({ id: 'cara', title: 'La cara del astronauta', source: join(dir, 'cara.mp4') });
  lessons.markReady(les.id, {
    durationS: 7, path: les.id, report: {},
    renditions: [{ id: 'v0', bytes: 100_000, kbps: 110, playlist: 'v0/index.m3u8' }],
    misses: [{ kind: 'picture', start: 80, end: 105, value: 0.91, floor: 0.93, ceiling: 0.94 }],
  });
  lessons.create({ id: 'pendiente', title: 'Aún procesando', source: join(dir, 'p.mp4') });
  const app = await buildApp({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 1, loginAttemptsPerMinute: 10, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'), lessons, users, health: () => ({ db: true }),
    reencode: (lessonId, boost) => {
      const source = lessons.get(lessonId)?.source;
      return source ? { jobId: queue.enqueue(OPTIMIZE, { lessonId, source, boost }) } : undefined;
    },
  });
  t.teardown(() => app.close());
  return { app, lessons, queue };
}

async function login(app: FastifyInstance, username: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/login', payload: { username, password: PASSWORD, bearer: true } });
  if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
  return res.json().token as string;
}

t.test('the lesson API shows where a published lesson is under its floor', async (t) => {
  const { app, lessons } = await box(t);
  const one = await app.inject('/api/lessons/cara');
  t.equal(one.statusCode, 200);
  t.match(one.json(), { status: 'ready', playlist: '/media/cara/master.m3u8' });
  t.same(one.json().misses, [{ kind: 'picture', start: 80, end: 105, value: 0.91, floor: 0.93, ceiling: 0.94 }]);
  t.same((await app.inject('/api/lessons/pendiente')).json().misses, [], 'nothing published, nothing missed');
  // the catalog keeps only its own fields of whatever the optimizer reported
  lessons.markReady('pendiente', { durationS: 1, path: 'pendiente', renditions: [], report: {}, misses: [{ kind: 'text', start: 0, end: 2, value: 0.5, floor: 0.97, shot: 3 } as never] });
  t.same(lessons.get('pendiente')!.misses, [{ kind: 'text', start: 0, end: 2, value: 0.5, floor: 0.97 }]);
});

t.test('re-encode with more quality: teachers only, queues an optimize job with a boost', async (t) => {
  const { app, queue } = await box(t);
  const url = '/api/lessons/cara/reencode';
  const anon = await app.inject({ method: 'POST', url, payload: { boost: 1 } });
  t.equal(anon.statusCode, 401, 'a student (no session) may not');
  const device = await login(app, 'sensor1');
  const dev = await app.inject({ method: 'POST', url, payload: { boost: 1 }, headers: { authorization: `Bearer ${device}` } });
  t.equal(dev.statusCode, 403, 'a device account may not');
  t.equal(queue.stats().queued, 0, 'nothing queued by the refused requests');

  const token = await login(app, 'maestra');
  const auth = { authorization: `Bearer ${token}` };
  const bad = await app.inject({ method: 'POST', url, payload: { boost: 9 }, headers: auth });
  t.equal(bad.statusCode, 400, 'boost out of range');
  const pending = await app.inject({ method: 'POST', url: '/api/lessons/pendiente/reencode', payload: {}, headers: auth });
  t.equal(pending.statusCode, 409, 'a lesson not yet published is not re-encoded');
  const nope = await app.inject({ method: 'POST', url: '/api/lessons/nope/reencode', payload: {}, headers: auth });
  t.equal(nope.statusCode, 404);

  const ok = await app.inject({ method: 'POST', url, payload: { boost: 1 }, headers: auth });
  t.equal(ok.statusCode, 202, ok.body);
  const job = queue.get(ok.json().jobId as number)!;
  t.equal(job.kind, OPTIMIZE);
  t.match(parsePayload(job.payload), { lessonId: 'cara', boost: 1 }, 'the job handler reads the boost');
  const still = await app.inject('/api/lessons/cara');
  t.match(still.json(), { status: 'ready', playlist: '/media/cara/master.m3u8' }, 'the lesson stays playable meanwhile');
});
