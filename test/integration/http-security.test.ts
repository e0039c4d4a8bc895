import t, { type Test } from 'tap';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { buildApp, HttpService, MAX_HEADER_BYTES, type AppDeps } from '../../daemon/http/server.js';

// What a hostile client on the school Wi-Fi may try: leave the content store, oversize headers
// and bodies, upload what is not media, skip the login.

const PASSWORD = 'correct horse battery';

async function fixture(t: Test): Promise<{ dir: string; deps: AppDeps; url: string; svc: HttpService }> {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const store = join(dir, 'store');
  mkdirSync(join(store, 'les1', 'v0'), { recursive: true });
  writeFileSync(join(store, 'les1', 'master.m3u8'), '#EXTM3U\n');
  writeFileSync(join(store, 'les1', 'v0', 'seg_00000.m4s'), 'segment');
  writeFileSync(join(dir, 'secret.m3u8'), 'SECRET OUTSIDE THE STORE');
  // symlinks inside the store that point outside it
  symlinkSync('/etc/passwd', join(store, 'les1', 'v0', 'passwd.m3u8'));
  symlinkSync('/etc', join(store, 'etc'));
  symlinkSync(join(dir, 'secret.m3u8'), join(store, 'les1', 'secret.m3u8'));
  symlinkSync(dir, join(store, 'les1', 'up'));
  const users = new Users(db);
  await users.add('maestra', PASSWORD, 'teacher');
  await users.add('sensor1', PASSWORD, 'device');
  const deps: AppDeps = {
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 1, loginAttemptsPerMinute: 5, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store,
    lessons: { list: () => [], get: () => undefined },
    users, health: () => ({ db: true }),
    onUpload: async () => ({ lessonId: 'x' }),
  };
  const svc = new HttpService(deps);
  await svc.start(new AbortController().signal);
  t.teardown(() => svc.stop());
  return { dir, deps, url: svc.url, svc };
}

/** Sends bytes exactly as written (fetch would normalise `..` away) and returns the answer. */
function raw(port: number, text: string | Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const s = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(s)?.[1] ?? 0), text: s });
    });
    // write, not end: a half-closed socket may be dropped before a slow answer; the request
    // says Connection: close, so the server ends it
    sock.write(text);
  });
}

async function login(url: string, username = 'maestra'): Promise<string> {
  const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD, bearer: true }) });
  return ((await res.json()) as { token: string }).token;
}

t.test('media paths never leave the content store', async (t) => {
  const f = await fixture(t);
  const app = await buildApp(f.deps);
  t.teardown(() => app.close());
  const attempts = [
    '/media/../yachay.db',
    '/media/les1/../../yachay.db',
    '/media/%2e%2e/yachay.db',
    '/media/les1/%2e%2e%2f%2e%2e%2fyachay.db',
    '/media/%2e%2e%2fsecret.m3u8',
    '/media/les1/%252e%252e%252f%252e%252e%252fsecret.m3u8',
    '/media/les1/..%5c..%5csecret.m3u8',
    '/media/les1/..\\..\\secret.m3u8',
    '/media/les1/v0/seg_00000.m4s%00.m3u8',
    '/media/les1/%2fetc%2fpasswd',
    '/media//etc/passwd',
    '/media/les1/v0/passwd.m3u8',
    '/media/etc/passwd',
    '/media/etc/hostname.m3u8',
    '/media/les1/secret.m3u8',
    '/media/les1/up/secret.m3u8',
    '/media/les1/up/yachay.db',
    '/media/les1/.hidden.m3u8',
    '/media/les1/%c0%ae%c0%ae/secret.m3u8',
  ];
  for (const path of attempts) {
    const viaSocket = await raw(f.svc.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    t.ok([400, 404].includes(viaSocket.status), `${path} over a socket → ${viaSocket.status}`);
    t.notMatch(viaSocket.text, /SQLite format|root:|SECRET/, `${path}: nothing leaked`);
    const viaInject = await app.inject({ method: 'GET', url: path });
    t.ok([400, 404].includes(viaInject.statusCode), `${path} via inject → ${viaInject.statusCode}`);
    t.notMatch(viaInject.body, /SQLite format|root:|SECRET/);
  }
  const ok = await raw(f.svc.port, 'GET /media/les1/v0/seg_00000.m4s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.equal(ok.status, 200, 'the store itself still serves');
});

t.test('a 64 KB header is refused with 431', async (t) => {
  const f = await fixture(t);
  t.ok(MAX_HEADER_BYTES < 64 * 1024);
  const res = await raw(f.svc.port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\nConnection: close\r\n\r\n`);
  t.equal(res.status, 431);
  const fine = await fetch(`${f.url}/health`);
  t.equal(fine.status, 200, 'the server is still up');
});

t.test('uploads: login, size limit, media type', async (t) => {
  const f = await fixture(t);
  const uploads = join(f.dir, 'uploads');
  const sources = join(f.dir, 'sources');
  const listed = (d: string): string[] => (existsSync(d) ? readdirSync(d) : []);

  t.equal((await fetch(`${f.url}/api/uploads`, { method: 'POST', body: 'x' })).status, 401, 'no token');
  const forged = await fetch(`${f.url}/api/uploads`, { method: 'POST', body: 'x', headers: { authorization: 'Bearer AAAA' } });
  t.equal(forged.status, 401, 'unknown token');
  const device = await login(f.url, 'sensor1');
  t.equal((await fetch(`${f.url}/api/uploads`, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${device}` } })).status, 403, 'device role');
  const teacher = await login(f.url);
  const auth = { authorization: `Bearer ${teacher}` };

  // declared too large: refused before a byte is stored
  const big = await fetch(`${f.url}/api/uploads`, { method: 'POST', headers: { ...auth, 'upload-length': String(2 * 1024 * 1024) }, body: 'x' });
  t.equal(big.status, 413);
  t.equal(big.headers.get('connection'), 'close');
  t.same(listed(uploads), []);

  // a body larger than it said: streamed, cut at the limit, the partial removed
  const app = await buildApp(f.deps);
  t.teardown(() => app.close());
  const tokenRes = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'maestra', password: PASSWORD, bearer: true } });
  const injAuth = { authorization: `Bearer ${tokenRes.json().token as string}` };
  const chunks = Array.from({ length: 40 }, () => Buffer.alloc(64 * 1024, 7));
  const lying = await app.inject({
    method: 'POST', url: '/api/uploads', headers: { ...injAuth, 'upload-length': String(1024 * 1024), 'content-type': 'video/mp4' },
    payload: Readable.from(chunks),
  });
  t.equal(lying.statusCode, 413);
  t.same(listed(uploads), [], 'no partial left behind');

  const unlimited = await app.inject({ method: 'POST', url: '/api/uploads', headers: { ...injAuth, 'transfer-encoding': 'chunked' }, payload: Readable.from(chunks) });
  t.equal(unlimited.statusCode, 411, 'no length at all');

  // text dressed as video
  const text = Buffer.from('Hola, esto no es un video.\n'.repeat(100));
  const fake = await fetch(`${f.url}/api/uploads?title=x`, { method: 'POST', headers: { ...auth, 'content-type': 'video/mp4' }, body: text });
  t.equal(fake.status, 415);
  t.same(listed(uploads), [], 'nothing kept in uploads/');
  t.same(listed(sources), [], 'nothing kept in sources/');

  // another teacher's upload is not theirs to continue
  const started = await fetch(`${f.url}/api/uploads`, { method: 'POST', headers: { ...auth, 'upload-length': '100' }, body: '' });
  const { id } = (await started.json()) as { id: string };
  await new Users(f.deps.db).add('otra', PASSWORD, 'teacher');
  const other = await login(f.url, 'otra');
  const foreign = await fetch(`${f.url}/api/uploads/${id}`, { method: 'PATCH', headers: { authorization: `Bearer ${other}`, 'upload-offset': '0' }, body: 'x' });
  t.equal(foreign.status, 403);
  const badId = await fetch(`${f.url}/api/uploads/..%2f..%2fyachay.db`, { method: 'HEAD', headers: auth });
  t.equal(badId.status, 404);
});

t.test('login body and header limits', async (t) => {
  const f = await fixture(t);
  const huge = await fetch(`${f.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'a', password: 'x'.repeat(200_000) }) });
  t.equal(huge.status, 413);
  const notJson = await fetch(`${f.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
  t.equal(notJson.status, 400);
  const extra = await fetch(`${f.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'maestra', password: PASSWORD, role: 'admin' }) });
  t.equal(extra.status, 200, 'unknown fields are dropped, not obeyed');
  t.equal(((await extra.json()) as { role: string }).role, 'teacher');
});

// issue 10, item 5: failures used to be written down only after each hash finished, so forty
// guesses sent at once were all checked (and the right password then let in at once)
t.test('a burst of wrong passwords sent at once is counted before hashing', async (t) => {
  const f = await fixture(t);
  const attempt = (password: string): Promise<number> => fetch(`${f.url}/api/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'maestra', password }),
  }).then(async (r) => { await r.arrayBuffer(); return r.status; });
  const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => attempt(`wrong-password-${i}`)));
  const checked = statuses.filter((s) => s === 401).length;
  t.ok(checked <= 5, `${checked} of 40 were checked (limit 5 a minute)`);
  t.ok(statuses.every((s) => s === 401 || s === 429 || s === 503), `the rest refused: ${[...new Set(statuses)].join(', ')}`);
  t.equal(await attempt(PASSWORD), 429, 'the right password waits for the window too');
});

// issue 10, item 4: a session used to keep the user and role it was created with
t.test('removal and demotion take effect on open sessions', async (t) => {
  const f = await fixture(t);
  await f.deps.users.add('jefa', PASSWORD, 'admin');
  const admin = await login(f.url, 'jefa');
  const teacher = await login(f.url);
  const makeUser = (token: string, username: string): Promise<number> => fetch(`${f.url}/api/users`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ username, password: 'another-password-1', role: 'admin' }),
  }).then(async (r) => { await r.arrayBuffer(); return r.status; });
  t.equal(await makeUser(admin, 'nueva1'), 201, 'the admin creates an admin');
  await f.deps.users.add('jefa', PASSWORD, 'teacher');
  t.equal(await makeUser(admin, 'nueva2'), 403, 'demoted: the old session can no longer');
  (f.deps.users as Users).remove('maestra');
  const res = await fetch(`${f.url}/api/lessons/les1/reencode`, { method: 'POST', headers: { authorization: `Bearer ${teacher}`, 'content-type': 'application/json' }, body: '{}' });
  t.equal(res.status, 401, 'removed: the old session is not logged in any more');
});

// issue 10, item 10: no Origin check; /metrics public; student tokens minted without bound
t.test('cross-site writes are refused; /metrics is for the box and its operators', async (t) => {
  const f = await fixture(t);
  const post = (headers: Record<string, string>): Promise<number> => fetch(`${f.url}/api/login`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ username: 'maestra', password: PASSWORD }),
  }).then(async (r) => { await r.arrayBuffer(); return r.status; });
  t.equal(await post({ origin: 'http://evil.example' }), 403, 'Origin of another site');
  t.equal(await post({ 'sec-fetch-site': 'cross-site' }), 403, 'Sec-Fetch-Site: cross-site');
  t.equal(await post({ origin: 'null' }), 403, 'an opaque origin');
  t.equal(await post({ origin: f.url }), 200, 'the box\'s own page');
  t.equal(await post({}), 200, 'a tool that sends no Origin');
  const app = await buildApp(f.deps);
  t.teardown(() => app.close());
  t.equal((await app.inject({ url: '/metrics', remoteAddress: '192.168.1.23' })).statusCode, 401, 'a phone on the Wi-Fi gets no metrics');
  t.equal((await app.inject({ url: '/metrics', remoteAddress: '127.0.0.1' })).statusCode, 200, 'the box\'s Prometheus does');
  const device = (await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'sensor1', password: PASSWORD, bearer: true } })).json().token as string;
  t.equal((await app.inject({ url: '/metrics', remoteAddress: '192.168.1.23', headers: { authorization: `Bearer ${device}` } })).statusCode, 200, 'a monitoring device account does');
  const teacher = (await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'maestra', password: PASSWORD, bearer: true } })).json().token as string;
  t.equal((await app.inject({ url: '/metrics', remoteAddress: '192.168.1.23', headers: { authorization: `Bearer ${teacher}` } })).statusCode, 403, 'a teacher does not');
});

// issue 10, item 11: one HTTP parser (Node's) for every request, with RFC 9112's Host rules,
// also for a segment already answered from memory
t.test('no Host or two Host headers get 400, for a cached segment as for any route', async (t) => {
  const f = await fixture(t);
  const port = Number(new URL(f.url).port);
  const seg = '/media/les1/v0/seg_00000.m4s';
  t.equal((await raw(port, `GET ${seg} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).status, 200, 'a good request');
  t.equal((await raw(port, `GET ${seg} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).status, 200, 'again, from memory');
  t.equal((await raw(port, `GET ${seg} HTTP/1.1\r\nConnection: close\r\n\r\n`)).status, 400, 'no Host');
  t.equal((await raw(port, `GET ${seg} HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n`)).status, 400, 'two Host headers');
  t.equal((await raw(port, `GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n`)).status, 400, 'two Host headers, any route');
  const smuggle = await raw(port, `GET ${seg} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`);
  t.equal(smuggle.status, 400, 'Content-Length with Transfer-Encoding');
});

// issue 10, item 13
t.test('a trickled request body is cut off; uploads are not', async (t) => {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const svc = new HttpService({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 1, loginAttemptsPerMinute: 5, studentsNeedLogin: true },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'), lessons: { list: () => [], get: () => undefined },
    users: new Users(db), health: () => ({ db: true }), bodyTimeoutMs: 500,
    plugins: [async (app) => { app.get('/api/session', async () => ({ studentToken: 'would-be-a-token' })); }],
  });
  await svc.start(new AbortController().signal);
  t.teardown(() => svc.stop());
  const port = Number(new URL(svc.url).port);
  const t0 = Date.now();
  const r = await new Promise<{ closedAfter: number; text: string }>((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let text = '';
    sock.on('data', (c) => { text += c.toString(); });
    sock.on('close', () => resolve({ closedAfter: Date.now() - t0, text }));
    sock.write('POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"username":');
  });
  t.ok(r.closedAfter >= 400 && r.closedAfter < 5000, `the socket was closed after ${r.closedAfter} ms`);
  const session = await fetch(`${svc.url}/api/session`);
  t.equal(session.status, 401, 'with studentsNeedLogin, the session answer (and its MQTT token) needs a login');
});

t.test('an empty init or segment is not served (nor cached for a year)', async (t) => {
  const f = await fixture(t);
  writeFileSync(join(f.deps.store, 'les1', 'v0', 'init.mp4'), '');
  const res = await fetch(`${f.url}/media/les1/v0/init.mp4`);
  t.equal(res.status, 503);
  t.equal(res.headers.get('cache-control'), 'no-store');
});
