import t from 'tap';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { buildApp } from '../../daemon/http/server.js';

// Segments are served from memory; a lesson published again (a new folder renamed into place)
// must be served fresh within the revalidation interval, never the old bytes forever.
t.test('a republished lesson replaces the cached files', async (t) => {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const store = join(dir, 'store');
  const publish = (content: string): void => {
    const tmp = join(store, '.les1.tmp');
    mkdirSync(join(tmp, 'v0'), { recursive: true });
    writeFileSync(join(tmp, 'v0', 'seg_00000.m4s'), content);
    rmSync(join(store, 'les1'), { recursive: true, force: true });
    renameSync(tmp, join(store, 'les1'));
  };
  publish('first version');
  const app = await buildApp({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 10, loginAttemptsPerMinute: 5, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store, lessons: new Lessons(db), users: new Users(db), health: () => ({}),
  });
  t.teardown(() => app.close());
  const get = async (): Promise<string> => (await app.inject({ url: '/media/les1/v0/seg_00000.m4s' })).body;
  t.equal(await get(), 'first version');
  t.equal(await get(), 'first version', 'served again from memory');
  const ranged = await app.inject({ url: '/media/les1/v0/seg_00000.m4s', headers: { range: 'bytes=0-4' } });
  t.equal(ranged.statusCode, 206);
  t.equal(ranged.body, 'first', 'ranges from the cache too');
  publish('second version, longer');
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(await get(), 'second version, longer');
});
