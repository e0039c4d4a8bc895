import t from 'tap';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { buildApp, HttpService } from '../../daemon/http/server.js';

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

// Over a real port, files already in memory are answered before Fastify (MediaFastPath). Its
// answers must be the ones Fastify gives for the same file, and a file removed from the store
// must stop being served once the entry is re-checked.
t.test('answers from memory over a real port match the first answer, and end when the file goes', async (t) => {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const store = join(dir, 'store');
  mkdirSync(join(store, 'les1', 'v0'), { recursive: true });
  const body = Buffer.alloc(50_000, 7);
  writeFileSync(join(store, 'les1', 'v0', 'seg_00000.m4s'), body);
  const svc = new HttpService({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 10, loginAttemptsPerMinute: 5, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store, lessons: new Lessons(db), users: new Users(db), health: () => ({}), flushMs: 20,
  });
  await svc.start(new AbortController().signal);
  t.teardown(() => svc.stop());
  const url = `${svc.url}/media/les1/v0/seg_00000.m4s`;
  const ask = async (headers: Record<string, string> = {}, method = 'GET') => {
    const r = await fetch(url, { headers, method });
    const h = Object.fromEntries([...r.headers].filter(([k]) => !['date', 'connection', 'keep-alive'].includes(k)));
    return { status: r.status, headers: h, body: Buffer.from(await r.arrayBuffer()) };
  };
  const first = await ask(); // read from disk by media.ts
  t.equal(first.status, 200);
  t.ok(first.body.equals(body));
  const etag = first.headers.etag!;
  const cases: Array<[string, Record<string, string>, string?]> = [
    ['plain GET', {}],
    ['range', { range: 'bytes=100-199' }],
    ['suffix range', { range: 'bytes=-10' }],
    ['unsatisfiable range', { range: 'bytes=60000-' }],
    ['If-None-Match', { 'if-none-match': etag }],
    ['If-Range with another validator', { range: 'bytes=0-9', 'if-range': '"other"' }],
    ['HEAD', {}, 'HEAD'],
  ];
  for (const [name, headers, method] of cases) {
    const fromMemory = await ask(headers, method);
    // the same request through Fastify: inject() never passes the fast path
    const app = await buildApp({
      cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 10, loginAttemptsPerMinute: 5, studentsNeedLogin: false },
      log: pino({ level: 'silent' }), db, store, lessons: new Lessons(db), users: new Users(db), health: () => ({}),
    });
    const viaFastify = await app.inject({ url: '/media/les1/v0/seg_00000.m4s', headers, method: (method ?? 'GET') as 'GET' });
    await app.close();
    t.equal(fromMemory.status, viaFastify.statusCode, `${name}: status`);
    for (const k of ['content-type', 'content-length', 'content-range', 'etag', 'last-modified', 'cache-control', 'accept-ranges']) {
      t.equal(fromMemory.headers[k], viaFastify.headers[k] === undefined ? undefined : String(viaFastify.headers[k]), `${name}: ${k}`);
    }
    t.ok(fromMemory.body.equals(viaFastify.rawPayload), `${name}: body`);
  }

  rmSync(join(store, 'les1'), { recursive: true });
  const stillInMemory = await ask();
  t.equal(stillInMemory.status, 200, 'a file just removed is still answered from memory');
  let gone = 0;
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && gone < 3) {
    gone = (await ask()).status === 404 ? gone + 1 : 0;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(gone, 3, 'after the re-check the removed file is a 404, and stays one');
  const counts = db.prepare("SELECT bytes, requests FROM byte_counts WHERE lesson_id = 'les1'").get() as { bytes: number; requests: number } | undefined;
  t.ok(counts && counts.bytes >= 2 * body.length, 'bytes answered from memory are counted');
  const metrics = await (await fetch(`${svc.url}/metrics`)).text();
  t.match(metrics, /yachay_http_requests_total\{method="GET",route="\/media\/\*",status="206"\} [1-9]/, 'answers from memory are in /metrics');
});
