import t from 'tap';
import { join } from 'node:path';
import { openDb } from '../../../daemon/db/db.js';
import type { Db } from '../../../daemon/db/db.js';
import { JobQueue, LEASE_EXPIRED } from '../../../daemon/jobs/queue.js';

type T = Parameters<Parameters<typeof t.test>[0]>[0];

// Real SQLite files under the test's folder; time is a number the test moves.
function setup(t: T, opts: { maxAttempts?: number } = {}): { db: Db; clock: { t: number }; q: JobQueue; file: string } {
  const file = join(t.testdir(), 'yachay.db');
  const db = openDb(file);
  t.teardown(() => db.close());
  const clock = { t: 1_000_000 };
  const q = new JobQueue(db, { now: () => clock.t, ...opts });
  return { db, clock, q, file };
}

t.test('enqueue → lease → complete', async (t) => {
  const { q } = setup(t);
  const id = q.enqueue('optimize', { lessonId: 'a', source: 'x.mp4' });
  t.same(q.stats(), { queued: 1, leased: 0, done: 0, dead: 0 });
  const job = q.lease('w1', 60_000);
  t.ok(job);
  t.equal(job!.id, id);
  t.equal(job!.state, 'leased');
  t.equal(job!.leasedBy, 'w1');
  t.equal(job!.leaseUntil, 1_000_000 + 60_000);
  t.same(job!.payload, { lessonId: 'a', source: 'x.mp4' });
  t.equal(q.lease('w2', 60_000), undefined, 'nothing else to lease');
  t.equal(q.complete(id, 'w2'), false, 'another worker cannot complete it');
  t.equal(q.complete(id, 'w1'), true);
  t.equal(q.get(id)!.state, 'done');
  t.same(q.stats(), { queued: 0, leased: 0, done: 1, dead: 0 });
  t.same(q.list({ state: 'done' }).map((j) => j.id), [id]);
  t.same(q.list({ state: 'queued' }), []);
});

t.test('jobs are leased oldest first, and not before run_after', async (t) => {
  const { q, clock } = setup(t);
  const later = q.enqueue('k', 1, { runAfter: clock.t + 5000 });
  const first = q.enqueue('k', 2);
  const second = q.enqueue('k', 3);
  t.equal(q.lease('w', 1000)!.id, first);
  t.equal(q.lease('w', 1000)!.id, second);
  t.equal(q.lease('w', 1000), undefined, 'the delayed job is not due yet');
  clock.t += 5000;
  t.equal(q.lease('w', 1000)!.id, later);
});

t.test('two queues on one file never lease the same job', async (t) => {
  const { q: a, file, clock } = setup(t);
  const db2 = openDb(file);
  t.teardown(() => db2.close());
  const b = new JobQueue(db2, { now: () => clock.t });
  const ids = Array.from({ length: 40 }, (_, i) => a.enqueue('k', { i }));
  const got: Record<string, number[]> = { a: [], b: [] };
  // interleaved the way two worker processes would poll
  for (let i = 0; i < 30; i++) {
    const ja = a.lease('wa', 60_000); if (ja) got.a!.push(ja.id);
    const jb = b.lease('wb', 60_000); if (jb) got.b!.push(jb.id);
  }
  const all = [...got.a!, ...got.b!];
  t.equal(new Set(all).size, all.length, 'no job leased twice');
  t.same([...all].sort((x, y) => x - y), ids, 'every job leased once');
  t.ok(got.a!.length > 0 && got.b!.length > 0, 'both workers got work');
  t.same(a.stats().leased, 40);
  for (const id of got.b!) t.equal(a.get(id)!.leasedBy, 'wb');
});

t.test('an expired lease lets another worker take the job, and counts the lost attempt', async (t) => {
  const { q, clock } = setup(t);
  const id = q.enqueue('k', null);
  t.equal(q.lease('w1', 10_000)!.id, id);
  clock.t += 9_999;
  t.equal(q.lease('w2', 10_000), undefined, 'still leased');
  clock.t += 2;
  const j = q.lease('w2', 10_000);
  t.equal(j?.id, id, 'taken over after expiry');
  t.equal(j!.leasedBy, 'w2');
  t.equal(j!.attempts, 1);
  t.equal(j!.lastError, LEASE_EXPIRED);
  t.equal(q.heartbeat(id, 'w1', 10_000), false, 'the old worker learns it lost the lease');
  t.equal(q.complete(id, 'w1'), false);
  t.equal(q.fail(id, 'w1', 'late', 1000), undefined);
  t.equal(q.complete(id, 'w2'), true);
});

t.test('heartbeat extends the lease', async (t) => {
  const { q, clock } = setup(t);
  const id = q.enqueue('k', null);
  q.lease('w1', 10_000);
  for (let i = 0; i < 5; i++) {
    clock.t += 6_000;
    t.equal(q.heartbeat(id, 'w1', 10_000), true);
    t.equal(q.lease('w2', 10_000), undefined, `still ours after ${(i + 1) * 6} s`);
  }
  t.equal(q.get(id)!.leaseUntil, clock.t + 10_000);
  clock.t += 10_001;
  t.equal(q.lease('w2', 10_000)?.id, id, 'without heartbeats it expires');
});

t.test('a failure retries with exponential backoff', async (t) => {
  const { q, clock } = setup(t);
  const id = q.enqueue('k', null, { maxAttempts: 4 });
  const t0 = clock.t;
  q.lease('w', 60_000);
  let j = q.fail(id, 'w', 'ffmpeg crashed', 1000)!;
  t.equal(j.state, 'queued');
  t.equal(j.attempts, 1);
  t.equal(j.lastError, 'ffmpeg crashed');
  t.equal(j.runAfter, t0 + 1000, 'first retry after the base backoff');
  clock.t = t0 + 999;
  t.equal(q.lease('w', 60_000), undefined, 'not before its time');
  clock.t = t0 + 1000;
  t.equal(q.lease('w', 60_000)?.id, id);
  j = q.fail(id, 'w', 'again', 1000)!;
  t.equal(j.attempts, 2);
  t.equal(j.runAfter, clock.t + 2000, 'doubled');
  clock.t = j.runAfter;
  q.lease('w', 60_000);
  j = q.fail(id, 'w', 'again', 1000)!;
  t.equal(j.attempts, 3);
  t.equal(j.runAfter, clock.t + 4000, 'doubled again');
});

t.test('dead letter after maxAttempts, with the reason', async (t) => {
  const { q, clock } = setup(t);
  const id = q.enqueue('k', null, { maxAttempts: 2 });
  q.lease('w', 60_000);
  t.equal(q.fail(id, 'w', 'first', 0)!.state, 'queued');
  clock.t += 1;
  q.lease('w', 60_000);
  const j = q.fail(id, 'w', 'YCH_ERR_FFMPEG_FAILED: ffmpeg failed (exit 1)', 0)!;
  t.equal(j.state, 'dead');
  t.equal(j.attempts, 2);
  t.equal(j.lastError, 'YCH_ERR_FFMPEG_FAILED: ffmpeg failed (exit 1)');
  clock.t += 1_000_000;
  t.equal(q.lease('w', 60_000), undefined, 'dead jobs are never leased');
  t.same(q.list({ state: 'dead' }).map((x) => x.id), [id]);
  t.same(q.stats(), { queued: 0, leased: 0, done: 0, dead: 1 });
  t.equal(q.retry(id), true, 'an operator can send it back');
  t.equal(q.lease('w', 60_000)?.attempts, 0);
});

t.test('a permanent failure goes to the dead letter at once', async (t) => {
  const { q } = setup(t);
  const id = q.enqueue('k', null, { maxAttempts: 5 });
  q.lease('w', 60_000);
  const j = q.fail(id, 'w', 'YCH_ERR_INPUT_NOT_MEDIA: not a video', 1000, { permanent: true })!;
  t.equal(j.state, 'dead');
  t.equal(j.attempts, 1);
});

t.test('a job whose lease keeps expiring ends in the dead letter', async (t) => {
  const { q, clock } = setup(t);
  const id = q.enqueue('k', null, { maxAttempts: 2 });
  q.lease('w1', 1000);
  clock.t += 1001;
  t.equal(q.lease('w2', 1000)?.attempts, 1, 'second chance');
  clock.t += 1001;
  t.equal(q.lease('w3', 1000), undefined, 'no third run: the last attempt was lost too');
  const dead = q.reapExpired();
  t.same(dead.map((j) => j.id), [id]);
  t.equal(dead[0]!.state, 'dead');
  t.equal(dead[0]!.attempts, 2);
  t.equal(dead[0]!.lastError, LEASE_EXPIRED);
  t.same(q.reapExpired(), [], 'reaped once');
});

t.test('release on shutdown does not count an attempt', async (t) => {
  const { q, clock } = setup(t);
  const id = q.enqueue('k', null, { maxAttempts: 1 });
  for (let i = 0; i < 3; i++) {
    const j = q.lease('w', 60_000);
    t.equal(j?.id, id);
    t.equal(j!.attempts, 0);
    t.equal(q.release(id, 'other'), false, 'only the owner releases');
    t.equal(q.release(id, 'w'), true);
    const now = q.get(id)!;
    t.equal(now.state, 'queued');
    t.equal(now.leasedBy, undefined);
    t.equal(now.runAfter, clock.t, 'due at once');
    clock.t += 10;
  }
  q.lease('w', 60_000);
  t.equal(q.fail(id, 'w', 'boom', 0)!.state, 'dead', 'its one real attempt is still there');
});

t.test('the queue survives a reopen of the file', async (t) => {
  const { q, file, db } = setup(t);
  const id = q.enqueue('optimize', { lessonId: 'l1', source: 's.mp4' }, { maxAttempts: 7 });
  q.lease('w', 60_000);
  db.close();
  const db2 = openDb(file);
  t.teardown(() => db2.close());
  const j = new JobQueue(db2).get(id)!;
  t.equal(j.state, 'leased');
  t.equal(j.maxAttempts, 7);
  t.same(j.payload, { lessonId: 'l1', source: 's.mp4' });
});
