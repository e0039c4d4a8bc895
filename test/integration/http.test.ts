import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { openDb, type Db } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import type { HttpConfig } from '../../daemon/config/schema.js';
import { RUNNING_VERSION } from '../../daemon/update/version.js';
import { buildApp, HttpService, type AppDeps, type Lesson, type LessonSource } from '../../daemon/http/server.js';

// The LAN server end to end: real Fastify (inject() and a real port with fetch), real files
// under t.testdir(), a real SQLite file.

const PASSWORD = 'correct horse battery';

/** Reads lessons straight from the table, the way daemon/catalog/lessons.ts will. */
class TableLessons implements LessonSource {
  constructor(private readonly db: Db) {}
  private row(r: Record<string, unknown>): Lesson {
    return {
      id: r.id as string, title: r.title as string, status: r.status as string,
      durationS: r.duration_s as number | null, path: r.path as string | null,
      renditions: r.renditions_json ? JSON.parse(r.renditions_json as string) : [],
      createdAt: r.created_at as number, updatedAt: r.updated_at as number,
    };
  }
  list(opts: { q?: string } = {}): Lesson[] {
    const rows = opts.q
      ? this.db.prepare('SELECT * FROM lessons WHERE title LIKE ? ORDER BY created_at').all(`%${opts.q}%`)
      : this.db.prepare('SELECT * FROM lessons ORDER BY created_at').all();
    return (rows as Array<Record<string, unknown>>).map((r) => this.row(r));
  }
  get(id: string): Lesson | undefined {
    const r = this.db.prepare('SELECT * FROM lessons WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r && this.row(r);
  }
}

interface Fixture {
  dir: string; db: Db; store: string; deps: AppDeps; app: FastifyInstance;
  health: Record<string, boolean>; clock: { t: number }; seg: Buffer; uploaded: Array<{ path: string; title: string; by: string }>;
}

async function fixture(t: Test, cfg: Partial<HttpConfig> = {}, extra: Partial<AppDeps> = {}): Promise<Fixture> {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const store = join(dir, 'store');
  const seg = randomBytes(300_000);
  for (const r of ['v0', 'a-opus']) {
    mkdirSync(join(store, 'les1', r), { recursive: true });
    writeFileSync(join(store, 'les1', r, 'index.m3u8'), '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:6.0,\nseg_00000.m4s\n#EXT-X-ENDLIST\n');
    writeFileSync(join(store, 'les1', r, 'init.mp4'), randomBytes(800));
    writeFileSync(join(store, 'les1', r, 'seg_00000.m4s'), r === 'v0' ? seg : randomBytes(9_000));
  }
  writeFileSync(join(store, 'les1', 'master.m3u8'), '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=200000\nv0/index.m3u8\n');
  const ins = db.prepare(`INSERT INTO lessons (id, title, status, duration_s, path, renditions_json, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  ins.run('les1', 'Fracciones equivalentes', 'ready', 6, 'les1', JSON.stringify([
    { id: 'v0', bytes: 2_500_000, kbps: 120, playlist: 'v0/index.m3u8' },
    { id: 'v1', bytes: 9_000_000, kbps: 400, playlist: 'v1/index.m3u8' },
    { id: 'a-opus', bytes: 500_000, kbps: 12, playlist: 'a-opus/index.m3u8' },
    { id: 'a-aac', bytes: 800_000, kbps: 20, playlist: 'a-aac/index.m3u8' },
  ]), 1, 1);
  ins.run('les2', 'La fotosíntesis', 'processing', null, null, null, 2, 2);
  const users = new Users(db);
  await users.add('maestra', PASSWORD, 'teacher');
  await users.add('sensor1', PASSWORD, 'device');
  const health = { db: true, worker: true };
  const clock = { t: Date.now() };
  const uploaded: Fixture['uploaded'] = [];
  const deps: AppDeps = {
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 1, loginAttemptsPerMinute: 3, studentsNeedLogin: false, ...cfg },
    log: pino({ level: 'silent' }),
    db, store, lessons: new TableLessons(db), users,
    health: () => ({ ...health }),
    onUpload: async (f) => { uploaded.push(f); return { lessonId: 'les-new' }; },
    flushMs: 50,
    now: () => clock.t,
    ...extra,
  };
  const app = await buildApp(deps);
  t.teardown(() => app.close());
  return { dir, db, store, deps, app, health, clock, seg, uploaded };
}

async function serve(t: Test, f: Fixture): Promise<{ svc: HttpService; url: string }> {
  const svc = new HttpService(f.deps);
  await svc.start(new AbortController().signal);
  t.teardown(() => svc.stop());
  t.ok(svc.port > 0, 'listens on a free port');
  return { svc, url: svc.url };
}

/** Sessions live in one server's memory: log in where the requests go. */
async function loginAt(url: string, username = 'maestra'): Promise<string> {
  const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD, bearer: true }) });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

async function login(app: FastifyInstance, username = 'maestra'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/login', payload: { username, password: PASSWORD, bearer: true } });
  if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
  return res.json().token as string;
}

t.test('lessons: list, search and detail with bytes per rendition', async (t) => {
  const f = await fixture(t);
  const all = await f.app.inject('/api/lessons');
  t.equal(all.statusCode, 200);
  const list = all.json().lessons as Array<Record<string, unknown>>;
  t.same(list.map((l) => l.id), ['les1', 'les2']);
  t.match(list[0], {
    id: 'les1', title: 'Fracciones equivalentes', status: 'ready', durationS: 6, playlist: '/media/les1/master.m3u8',
    renditions: [{ id: 'v0', bytes: 2_500_000, kbps: 120 }, { id: 'v1', bytes: 9_000_000 }, { id: 'a-opus', bytes: 500_000 }, { id: 'a-aac' }],
    // lowest video + Opus audio
    dataSaverMB: 3,
  });
  t.match(list[1], { id: 'les2', status: 'processing', playlist: null, renditions: [], dataSaverMB: null });

  const found = await f.app.inject('/api/lessons?q=fotos');
  t.same(found.json().lessons.map((l: { id: string }) => l.id), ['les2']);
  const none = await f.app.inject('/api/lessons?q=zzz');
  t.same(none.json().lessons, []);

  const one = await f.app.inject('/api/lessons/les1');
  t.equal(one.statusCode, 200);
  t.equal(one.json().renditions.length, 4);
  const missing = await f.app.inject('/api/lessons/nope');
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().error, 'YCH_HTTP_NOT_FOUND');
});

t.test('media over a real port: types, caching, Range, HEAD, ETag', async (t) => {
  const f = await fixture(t);
  const { url } = await serve(t, f);

  const cases: Array<[string, string, string]> = [
    ['/media/les1/master.m3u8', 'application/vnd.apple.mpegurl', 'no-cache'],
    ['/media/les1/v0/index.m3u8', 'application/vnd.apple.mpegurl', 'no-cache'],
    ['/media/les1/v0/init.mp4', 'video/mp4', 'public, max-age=31536000, immutable'],
    ['/media/les1/v0/seg_00000.m4s', 'video/iso.segment', 'public, max-age=31536000, immutable'],
  ];
  for (const [path, type, cache] of cases) {
    const res = await fetch(url + path);
    t.equal(res.status, 200, path);
    t.equal(res.headers.get('content-type'), type, `${path} type`);
    t.equal(res.headers.get('cache-control'), cache, `${path} cache`);
    t.equal(res.headers.get('accept-ranges'), 'bytes');
    const body = Buffer.from(await res.arrayBuffer());
    t.same(body, readFileSync(join(f.store, ...path.split('/').slice(2))), `${path} body`);
  }

  const seg = `${url}/media/les1/v0/seg_00000.m4s`;
  const r206 = await fetch(seg, { headers: { range: 'bytes=1000-1999' } });
  t.equal(r206.status, 206);
  t.equal(r206.headers.get('content-range'), `bytes 1000-1999/${f.seg.length}`);
  t.equal(r206.headers.get('content-length'), '1000');
  t.same(Buffer.from(await r206.arrayBuffer()), f.seg.subarray(1000, 2000), 'exact bytes of the range');

  const suffix = await fetch(seg, { headers: { range: 'bytes=-500' } });
  t.equal(suffix.status, 206);
  t.same(Buffer.from(await suffix.arrayBuffer()), f.seg.subarray(f.seg.length - 500));

  const open = await fetch(seg, { headers: { range: `bytes=${f.seg.length - 10}-` } });
  t.equal(open.status, 206);
  t.equal((await open.arrayBuffer()).byteLength, 10);

  const clamp = await fetch(seg, { headers: { range: `bytes=0-${f.seg.length * 2}` } });
  t.equal(clamp.status, 206, 'end past the file is clamped');
  t.equal(clamp.headers.get('content-range'), `bytes 0-${f.seg.length - 1}/${f.seg.length}`);
  await clamp.arrayBuffer();

  const r416 = await fetch(seg, { headers: { range: `bytes=${f.seg.length}-` } });
  t.equal(r416.status, 416);
  t.equal(r416.headers.get('content-range'), `bytes */${f.seg.length}`);
  await r416.arrayBuffer();

  for (const ignored of ['bytes=abc', 'items=0-10', 'bytes=10-5', 'bytes=0-10,20-30']) {
    const res = await fetch(seg, { headers: { range: ignored } });
    t.equal(res.status, 200, `"${ignored}" is ignored: full body`);
    t.equal((await res.arrayBuffer()).byteLength, f.seg.length);
  }

  const head = await fetch(seg, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers.get('content-length'), String(f.seg.length));
  t.equal(head.headers.get('content-type'), 'video/iso.segment');
  t.equal((await head.arrayBuffer()).byteLength, 0, 'HEAD has no body');

  const first = await fetch(seg);
  await first.arrayBuffer();
  const etag = first.headers.get('etag')!;
  const lastModified = first.headers.get('last-modified')!;
  t.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
  const r304 = await fetch(seg, { headers: { 'if-none-match': etag } });
  t.equal(r304.status, 304);
  t.equal(r304.headers.get('etag'), etag);
  t.equal((await r304.arrayBuffer()).byteLength, 0);
  const ims = await fetch(seg, { headers: { 'if-modified-since': lastModified } });
  t.equal(ims.status, 304, 'If-Modified-Since');
  const stale = await fetch(seg, { headers: { 'if-none-match': '"other"', 'if-modified-since': lastModified } });
  t.equal(stale.status, 200, 'If-None-Match wins over If-Modified-Since');
  await stale.arrayBuffer();
  const ifRange = await fetch(seg, { headers: { range: 'bytes=0-9', 'if-range': '"old"' } });
  t.equal(ifRange.status, 200, 'If-Range with an old validator sends the whole file');
  await ifRange.arrayBuffer();

  const missing = await fetch(`${url}/media/les1/v9/seg_00000.m4s`);
  t.equal(missing.status, 404);
  await missing.arrayBuffer();
});

t.test('byte accounting: bytes per (lesson, rendition) reach byte_counts', async (t) => {
  const f = await fixture(t);
  const { url } = await serve(t, f);
  for (let i = 0; i < 3; i++) await (await fetch(`${url}/media/les1/v0/seg_00000.m4s`)).arrayBuffer();
  await (await fetch(`${url}/media/les1/v0/seg_00000.m4s`, { headers: { range: 'bytes=0-99' } })).arrayBuffer();
  await (await fetch(`${url}/media/les1/a-opus/seg_00000.m4s`)).arrayBuffer();
  await (await fetch(`${url}/media/les1/master.m3u8`)).arrayBuffer();
  const want = new Map([
    ['v0', 3 * f.seg.length + 100],
    ['a-opus', 9_000],
    ['master', statSync(join(f.store, 'les1', 'master.m3u8')).size],
  ]);
  let rows: Array<{ rendition: string; bytes: number; requests: number }> = [];
  for (let i = 0; i < 40; i++) {
    rows = f.db.prepare("SELECT rendition, bytes, requests FROM byte_counts WHERE lesson_id = 'les1' ORDER BY rendition").all() as typeof rows;
    if (rows.length === 3 && rows.every((r) => r.bytes === want.get(r.rendition))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.same(Object.fromEntries(rows.map((r) => [r.rendition, r.bytes])), Object.fromEntries(want));
  t.equal(rows.find((r) => r.rendition === 'v0')?.requests, 4);

  const metrics = await (await fetch(`${url}/metrics`)).text();
  t.match(metrics, new RegExp(`yachay_media_bytes_sent_total\\{rendition="v0"\\} ${3 * f.seg.length + 100}`));
});

t.test('stop() lets a download in flight finish, then flushes the counts', async (t) => {
  const f = await fixture(t, {}, { flushMs: 60_000 });
  const svc = new HttpService(f.deps);
  await svc.start(new AbortController().signal);
  const res = await fetch(`${svc.url}/media/les1/v0/seg_00000.m4s`);
  t.equal(res.status, 200);
  const stopping = svc.stop();
  const body = Buffer.from(await res.arrayBuffer());
  t.equal(body.length, f.seg.length, 'the whole segment arrived while closing');
  await stopping;
  t.equal(svc.healthy(), false);
  const row = f.db.prepare("SELECT bytes FROM byte_counts WHERE lesson_id = 'les1' AND rendition = 'v0'").get() as { bytes: number } | undefined;
  t.equal(row?.bytes, f.seg.length, 'flushed at close');
  await svc.stop(); // idempotent
});

t.test('503 for new requests while closing; the request in flight drains', async (t) => {
  const f = await fixture(t);
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  f.app.get('/slow', async () => { await gate; return { ok: true }; });
  await f.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (f.app.server.address() as { port: number }).port;
  // two kept-alive connections: one busy with /slow, one idle that asks again while closing
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  t.teardown(() => agent.destroy());
  const get = (path: string): Promise<number> => new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); }).on('error', reject).end();
  });
  t.equal(await get('/health'), 200);
  const slow = get('/slow');
  await new Promise((r) => setTimeout(r, 50));
  const closing = f.app.close();
  const during = await get('/health').catch(() => 503);
  t.equal(during, 503, 'new request while closing');
  release();
  t.equal(await slow, 200, 'in-flight request drained');
  await closing;
});

t.test('/health and /metrics', async (t) => {
  const f = await fixture(t);
  const { url } = await serve(t, f);
  const ok = await fetch(`${url}/health`);
  t.equal(ok.status, 200);
  t.same(await ok.json(), { ok: true, services: { db: true, worker: true }, version: RUNNING_VERSION });
  f.health.worker = false;
  const bad = await fetch(`${url}/health`);
  t.equal(bad.status, 503);
  t.same(await bad.json(), { ok: false, services: { db: true, worker: false }, version: RUNNING_VERSION });

  await (await fetch(`${url}/api/lessons`)).arrayBuffer();
  const m = await fetch(`${url}/metrics`);
  t.equal(m.status, 200);
  t.match(m.headers.get('content-type'), /text\/plain/);
  const text = await m.text();
  t.match(text, /yachay_http_requests_total\{method="GET",route="\/api\/lessons",status="200"\} 1/);
  t.match(text, /# TYPE yachay_media_bytes_sent_total counter/);
  t.match(text, /yachay_process_resident_memory_bytes/, 'default metrics');
});

t.test('login: 401, rate limit 429 with Retry-After, works again after the window', async (t) => {
  const f = await fixture(t);
  const wrong = { method: 'POST' as const, url: '/api/login', payload: { username: 'maestra', password: 'wrong password!' } };
  for (let i = 0; i < 3; i++) {
    const r = await f.app.inject(wrong);
    t.equal(r.statusCode, 401, `failure ${i + 1}`);
  }
  const limited = await f.app.inject({ ...wrong, payload: { username: 'maestra', password: PASSWORD } });
  t.equal(limited.statusCode, 429, 'the (N+1)th attempt in a minute, even a right one');
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60);
  const other = await f.app.inject({ ...wrong, remoteAddress: '10.0.0.9', payload: { username: 'maestra', password: PASSWORD } });
  t.equal(other.statusCode, 200, 'another device is not limited');

  f.clock.t += 61_000;
  const ok = await f.app.inject({ ...wrong, payload: { username: 'maestra', password: PASSWORD, bearer: true } });
  t.equal(ok.statusCode, 200);
  const token = ok.json().token as string;
  t.equal(Buffer.from(token, 'base64url').length, 32, '32 random bytes');
  const cookie = String(ok.headers['set-cookie']);
  t.match(cookie, /^yachay_session=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);

  const bad = await f.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'maestra' } });
  t.equal(bad.statusCode, 400, 'schema');

  // session works by header and cookie; logout ends it
  const viaCookie = await f.app.inject({ method: 'HEAD', url: `/api/uploads/${'0'.repeat(32)}`, headers: { cookie: `a=b; yachay_session=${token}` } });
  t.equal(viaCookie.statusCode, 404, 'cookie accepted (unknown upload)');
  const out = await f.app.inject({ method: 'POST', url: '/api/logout', headers: { authorization: `Bearer ${token}` } });
  t.equal(out.statusCode, 204);
  const after = await f.app.inject({ method: 'HEAD', url: `/api/uploads/${'0'.repeat(32)}`, headers: { authorization: `Bearer ${token}` } });
  t.equal(after.statusCode, 401);

  // sessions expire
  const t2 = await login(f.app);
  f.clock.t += 13 * 3600_000;
  const expired = await f.app.inject({ method: 'HEAD', url: `/api/uploads/${'0'.repeat(32)}`, headers: { authorization: `Bearer ${t2}` } });
  t.equal(expired.statusCode, 401);
});

t.test('uploads: teacher only; resumable in two PATCHes gives the exact file', async (t) => {
  const f = await fixture(t);
  const { url } = await serve(t, f);
  const teacher = await loginAt(url);
  const device = await loginAt(url, 'sensor1');

  const anon = await fetch(`${url}/api/uploads`, { method: 'POST', body: 'x' });
  t.equal(anon.status, 401);
  await anon.arrayBuffer();
  const dev = await fetch(`${url}/api/uploads`, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${device}` } });
  t.equal(dev.status, 403);
  await dev.arrayBuffer();

  // an mp4 header followed by payload
  const file = Buffer.concat([Buffer.from('0000001c667479706d703432', 'hex'), randomBytes(200_000)]);
  const auth = { authorization: `Bearer ${teacher}` };
  const created = await fetch(`${url}/api/uploads?title=${encodeURIComponent('Clase de música')}`, {
    method: 'POST', headers: { ...auth, 'upload-length': String(file.length) }, body: file.subarray(0, 50_000),
  });
  t.equal(created.status, 201);
  const c = await created.json() as { id: string; offset: number; complete: boolean };
  t.match(c, { offset: 50_000, length: file.length, complete: false });
  t.equal(created.headers.get('location'), `/api/uploads/${c.id}`);

  const head = await fetch(`${url}/api/uploads/${c.id}`, { method: 'HEAD', headers: auth });
  t.equal(head.status, 200);
  t.equal(head.headers.get('upload-offset'), '50000');

  const wrongOffset = await fetch(`${url}/api/uploads/${c.id}`, { method: 'PATCH', headers: { ...auth, 'upload-offset': '10' }, body: 'zz' });
  t.equal(wrongOffset.status, 409);
  t.equal(wrongOffset.headers.get('upload-offset'), '50000');
  await wrongOffset.arrayBuffer();

  const p1 = await fetch(`${url}/api/uploads/${c.id}`, {
    method: 'PATCH', headers: { ...auth, 'upload-offset': '50000', 'content-type': 'application/offset+octet-stream' }, body: file.subarray(50_000, 120_000),
  });
  t.equal(p1.status, 200);
  t.match(await p1.json(), { offset: 120_000, complete: false });
  const p2 = await fetch(`${url}/api/uploads/${c.id}`, {
    method: 'PATCH', headers: { ...auth, 'upload-offset': '120000' }, body: file.subarray(120_000),
  });
  t.equal(p2.status, 200);
  t.match(await p2.json(), { id: c.id, offset: file.length, complete: true, lessonId: 'les-new' });

  t.equal(f.uploaded.length, 1);
  t.match(f.uploaded[0], { title: 'Clase de música', by: 'maestra' });
  t.equal(f.uploaded[0]!.path, join(f.dir, 'sources', `${c.id}.mp4`));
  t.same(readFileSync(f.uploaded[0]!.path), file, 'exact file');
  t.same(readdirSync(join(f.dir, 'uploads')), [], 'nothing left in uploads/');

  const gone = await fetch(`${url}/api/uploads/${c.id}`, { method: 'HEAD', headers: auth });
  t.equal(gone.status, 404, 'a finished upload is no longer resumable');

  // one-shot upload with just Content-Length
  const wav = Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt ', 'latin1'), randomBytes(1000)]);
  const one = await fetch(`${url}/api/uploads`, { method: 'POST', headers: auth, body: wav });
  t.equal(one.status, 201);
  t.match(await one.json(), { complete: true, lessonId: 'les-new' });
  t.same(readFileSync(f.uploaded[1]!.path), wav);
  t.match(f.uploaded[1]!.path, /\.wav$/);
});
