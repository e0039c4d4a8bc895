import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeLessonFolder, renditionsOf } from '../helpers/package.js';
import { openDb } from '../../daemon/db/db.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { checkPublished } from '../../daemon/catalog/package-check.js';

// issue 10, item 10: a damaged package used to stay listed as ready, and an empty init was
// served with a year's cache
t.test('damaged published lessons are marked failed at start, whole ones stay ready', async (t) => {
  const dir = t.testdir();
  const store = join(dir, 'store');
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const lessons = new Lessons(db);
  const cases: Record<string, ((d: string) => void) | undefined> = {
    whole: undefined,
    gone: (d) => rmSync(d, { recursive: true }),
    garbage: (d) => writeFileSync(join(d, 'v0', 'index.m3u8'), '\u0000\u0001garbage'),
    emptyinit: (d) => writeFileSync(join(d, 'v0', 'init.mp4'), ''),
  };
  for (const [id, damage] of Object.entries(cases)) {
    const d = makeLessonFolder(join(store, id));
    lessons.create({ id, title: id });
    lessons.markReady(id, { durationS: 4, path: id, renditions: renditionsOf(d), report: null });
    damage?.(d);
  }
  const broken = await checkPublished(lessons, store);
  t.same(broken.map((b) => b.id).sort(), ['emptyinit', 'garbage', 'gone']);
  t.equal(lessons.get('whole')?.status, 'ready');
  t.match(lessons.get('emptyinit'), { status: 'failed', error: /v0\/init\.mp4 is empty/ });
  t.match(lessons.get('gone'), { status: 'failed', error: /master\.m3u8 is missing/ });
});
