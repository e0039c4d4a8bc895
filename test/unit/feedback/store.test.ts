import t from 'tap';
import { join } from 'node:path';
import { openDb } from '../../../daemon/db/db.js';
import { FeedbackStore, type FeedbackRow } from '../../../daemon/feedback/store.js';

// The answers in a real SQLite file (migration 7): no person in them, acted on once.

const row = (o: Partial<FeedbackRow>): FeedbackRow => ({
  lesson: 'agua', version: 7, shot: 0, rendition: 'v0', kind: 'text', answer: 'bad', source: 'student', at: 1000, ...o,
});

t.test('migration 7: the feedback table, with its checks and no column for a person', async (t) => {
  const db = openDb(join(t.testdir(), 'y.db'));
  t.teardown(() => db.close());
  t.equal(db.pragma('user_version', { simple: true }), 7);
  const cols = (db.prepare('PRAGMA table_info(feedback)').all() as Array<{ name: string }>).map((c) => c.name);
  t.same(cols, ['id', 'lesson_id', 'version', 'shot_index', 'rendition', 'kind', 'answer', 'source', 'at', 'job_id']);
  const store = new FeedbackStore(db);
  t.throws(() => store.record([row({ kind: 'smell' as 'text' })]), /CHECK/, 'kind is text or voice');
  t.throws(() => store.record([row({ answer: 'meh' as 'ok' })]), /CHECK/, 'answer is ok or bad');
  t.throws(() => store.record([row({ source: 'robot' as 'student' })]), /CHECK/, 'source is student or teacher');
  t.equal(store.all().length, 0, 'a refused row leaves nothing');
});

t.test('pending answers until a re-encode answers them; acted shots are remembered with their rounds', async (t) => {
  const dir = t.testdir();
  const db = openDb(join(dir, 'y.db'));
  const store = new FeedbackStore(db);
  store.record([row({ shot: 1 }), row({ shot: 1 }), row({ shot: 2, kind: 'voice' }), row({ lesson: 'otra', shot: 1 })]);
  t.equal(store.pending('agua').length, 3);
  store.markActed('agua', [{ shot: 1, kind: 'text' }], 41);
  t.same(store.pending('agua'), [{ shot: 2, kind: 'voice', answer: 'bad', source: 'student' }], 'shot 1 answered by job 41');
  t.equal(store.pending('otra').length, 1, 'another lesson untouched');
  store.record([row({ shot: 1, source: 'teacher' })]);
  store.markActed('agua', [{ shot: 1, kind: 'text' }], 42);
  t.same(store.acted('agua'), [{ shot: 1, kind: 'text', rounds: 2 }]);
  db.close();
  // and it is all still there after a reopen (a real file)
  const again = openDb(join(dir, 'y.db'));
  t.teardown(() => again.close());
  const all = new FeedbackStore(again).forLesson('agua');
  t.same(all.map((r) => [r.shot, r.kind, r.source, r.jobId]), [[1, 'text', 'student', 41], [1, 'text', 'student', 41], [2, 'voice', 'student', null], [1, 'text', 'teacher', 42]]);
});
