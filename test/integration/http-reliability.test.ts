import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { buildApp } from '../../daemon/http/server.js';
import { makeClip } from '../helpers/media.js';

// The LAN server when things go wrong on the box or the Wi-Fi: the process is killed in the
// middle of an upload, the disk fills up, a client sends its request head a byte at a time.
// Real server processes, real files, a real tmpfs; nothing mocked.

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const RUNNER = join(root, 'test/helpers/http-runner.ts');
const PASSWORD = 'correct horse battery';

interface Child { proc: ChildProcess; port: number; pid: number; url: string; stderr: () => string }

/** Starts `cmd args…` (which ends up exec'ing the runner) and waits for its `{port}` line. */
function startChild(t: Test, cmd: string, args: string[]): Promise<Child> {
  const proc = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`server child did not start: ${err}`)), 20_000);
    const lines = createInterface({ input: proc.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const { port, pid } = JSON.parse(line) as { port: number; pid: number };
      resolvePort({ proc, port, pid, url: `http://127.0.0.1:${port}`, stderr: () => err });
    });
    proc.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`server child exited (${code ?? sig}): ${err}`)); });
  });
}

const startRunner = (t: Test, dataDir: string): Promise<Child> =>
  startChild(t, process.execPath, ['--import', 'tsx', RUNNER, dataDir]);

function killed(proc: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return done();
    proc.once('exit', () => done());
    proc.kill('SIGKILL');
  });
}

async function login(url: string): Promise<Record<string, string>> {
  const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'maestra', password: PASSWORD, bearer: true }) });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  return { authorization: `Bearer ${((await res.json()) as { token: string }).token}` };
}

const listed = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Sends a body with node:http, tolerating the server closing the socket before the body is all
 * written (a refusal with Connection: close); resolves with the answer.
 */
function send(url: string, method: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; headers: Record<string, unknown>; json: Record<string, unknown> }> {
  return new Promise((done, fail) => {
    const req = request(url, { method, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        done({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) as Record<string, unknown> : {} });
      });
      res.on('error', fail);
    });
    req.on('error', (err) => { if (!(req as { res?: unknown }).res) fail(err); });
    for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
    req.end();
  });
}

t.test('kill -9 in the middle of an upload: resumes at the persisted offset, exact file', async (t) => {
  const dir = t.testdir();
  const data = join(dir, 'data');
  const clip = readFileSync(makeClip(dir, 'clip', { seconds: 3, width: 320, height: 240 }));
  t.ok(clip.length > 60_000, `a real mp4 (${clip.length} bytes)`);
  const uploads = join(data, 'uploads');
  const sources = join(data, 'sources');
  const a = Math.floor(clip.length / 4);
  const b = Math.floor(clip.length / 2);

  let child = await startRunner(t, data);
  let auth = await login(child.url);
  const created = await fetch(`${child.url}/api/uploads?title=kill9`, {
    method: 'POST', headers: { ...auth, 'upload-length': String(clip.length) }, body: clip.subarray(0, a),
  });
  t.equal(created.status, 201);
  const { id } = (await created.json()) as { id: string };
  const p1 = await fetch(`${child.url}/api/uploads/${id}`, {
    method: 'PATCH', headers: { ...auth, 'upload-offset': String(a) }, body: clip.subarray(a, b),
  });
  t.equal(p1.status, 200);
  t.match(await p1.json(), { offset: b, complete: false });

  // a second PATCH is streaming when the process dies: some of its bytes are on disk
  const inFlight = request(`${child.url}/api/uploads/${id}`, {
    method: 'PATCH', headers: { ...auth, 'upload-offset': String(b), 'content-length': String(clip.length - b) },
  });
  inFlight.on('error', () => { /* the server is killed under it */ });
  inFlight.write(clip.subarray(b, b + 8_000));
  await waitFor(() => statSync(join(uploads, `${id}.part`)).size > b, 5_000, 'the in-flight PATCH to reach the disk');
  await killed(child.proc);
  inFlight.destroy();
  t.same(listed(sources), [], 'nothing in sources/ while the upload is unfinished');
  t.same(listed(uploads), [`${id}.json`, `${id}.part`], 'the partial and its metadata survive the kill');

  child = await startRunner(t, data);
  auth = await login(child.url);
  const head = await fetch(`${child.url}/api/uploads/${id}`, { method: 'HEAD', headers: auth });
  t.equal(head.status, 200);
  const offset = Number(head.headers.get('upload-offset'));
  t.equal(head.headers.get('upload-length'), String(clip.length));
  t.equal(offset, statSync(join(uploads, `${id}.part`)).size, 'HEAD reports the bytes that were persisted');
  t.ok(offset > b && offset < clip.length, `offset ${offset} is past the first PATCH and short of the end`);
  t.ok(readFileSync(join(uploads, `${id}.part`)).equals(clip.subarray(0, offset)), 'what was persisted is an exact prefix');
  t.same(listed(sources), [], 'still nothing in sources/ after the restart');

  const stale = await fetch(`${child.url}/api/uploads/${id}`, { method: 'PATCH', headers: { ...auth, 'upload-offset': String(b) }, body: clip.subarray(b) });
  t.equal(stale.status, 409, 'resuming from the old offset is refused');
  t.equal(stale.headers.get('upload-offset'), String(offset));

  const rest = await fetch(`${child.url}/api/uploads/${id}`, {
    method: 'PATCH', headers: { ...auth, 'upload-offset': String(offset) }, body: clip.subarray(offset),
  });
  t.equal(rest.status, 200);
  t.match(await rest.json(), { id, offset: clip.length, length: clip.length, complete: true, lessonId: 'les-new' });
  t.same(listed(sources), [`${id}.mp4`]);
  t.ok(readFileSync(join(sources, `${id}.mp4`)).equals(clip), 'the finished file is byte-identical');
  t.same(listed(uploads), [], 'nothing left in uploads/');
  await killed(child.proc);
});

/** unshare flags that give a private mount namespace here, or undefined. */
function mountNamespace(probeDir: string): string[] | undefined {
  const candidates = process.getuid?.() === 0 ? [['-m', '--propagation', 'private'], ['-rm']] : [['-rm']];
  for (const flags of candidates) {
    const r = spawnSync('unshare', [...flags, 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$0"', probeDir], { encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) return flags;
  }
  return undefined;
}

const probe = mkdtempSync(join(tmpdir(), 'yachay-mntns-'));
const nsFlags = mountNamespace(probe);
rmSync(probe, { recursive: true, force: true });

t.test('disk nearly full: a too-large upload is refused cleanly and the server keeps working', {
  skip: nsFlags ? false : 'no private mount namespace here (unshare -m and unshare -rm with a tmpfs mount both failed)',
}, async (t) => {
  const flags = nsFlags!;
  const dir = t.testdir();
  const data = join(dir, 'data');
  mkdirSync(data);
  // the server sees a 2 MB tmpfs at its data dir; the test reads it through /proc/<pid>/root
  const child = await startChild(t, 'unshare', [
    ...flags, 'sh', '-c', 'mount -t tmpfs -o size=2m tmpfs "$1" && exec "$0" --import tsx "$2" "$1" 5',
    process.execPath, data, RUNNER,
  ]);
  const inside = (p: string): string => join(`/proc/${child.pid}/root`, p);
  t.same(listed(data), [], 'the tmpfs is private to the server');
  t.ok(existsSync(inside(join(data, 'yachay.db'))), 'the server writes to its tmpfs');
  const auth = await login(child.url);

  const big = randomBytes(3 * 1024 * 1024);
  const refused = await send(`${child.url}/api/uploads?title=big`, 'POST', { ...auth, 'upload-length': String(big.length) }, big);
  t.equal(refused.status, 507, 'Insufficient Storage');
  t.equal(refused.headers.connection, 'close');
  t.match(refused.json, { error: 'YCH_HTTP_DISK_FULL', message: /no room/ });
  t.same(listed(inside(join(data, 'uploads'))), [], 'the partial is removed');
  t.same(listed(inside(join(data, 'sources'))), []);

  const lessons = await fetch(`${child.url}/api/lessons`);
  t.equal(lessons.status, 200, 'the server still answers');
  t.same(await lessons.json(), { lessons: [] });

  const clip = readFileSync(makeClip(dir, 'small', { seconds: 1, width: 160, height: 120 }));
  t.ok(clip.length < 512 * 1024, `a small real mp4 (${clip.length} bytes)`);
  const ok = await send(`${child.url}/api/uploads?title=small`, 'POST', { ...auth, 'upload-length': String(clip.length) }, clip);
  t.equal(ok.status, 201, 'a small upload still works');
  t.match(ok.json, { complete: true, lessonId: 'les-new' });
  const id = ok.json.id as string;
  t.ok(readFileSync(inside(join(data, 'sources', `${id}.mp4`))).equals(clip), 'and arrives whole');
  await killed(child.proc);
});

t.test('a slow client sending its head a byte at a time neither blocks others nor stays forever', async (t) => {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const app = await buildApp({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 1, loginAttemptsPerMinute: 5, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'),
    lessons: { list: () => [], get: () => undefined }, users: new Users(db), health: () => ({ db: true }),
  });
  t.teardown(() => app.close());
  // production keeps Node's 60 s head limit (checked every 30 s); here it is shortened so the
  // drop happens inside the test's time, on the same server and the same mechanism
  t.equal(app.server.headersTimeout, 60_000, 'the server has a head timeout (requestTimeout 0 does not disable it)');
  app.server.headersTimeout = 2_000;
  // read when the server starts listening (@types/node does not declare it)
  (app.server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = 250;
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;

  const started = Date.now();
  const slow = Array.from({ length: 5 }, () => {
    const sock = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('data', (c: Buffer) => got.push(c));
    sock.on('error', () => { /* reset by the server is fine */ });
    const head = Buffer.from(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(200)}`);
    let i = 0;
    const drip = setInterval(() => { if (!sock.destroyed && i < head.length) sock.write(head.subarray(i, ++i)); }, 200);
    const closed = new Promise<number>((done) => sock.once('close', () => { clearInterval(drip); done(Date.now() - started); }));
    t.teardown(() => { clearInterval(drip); sock.destroy(); });
    return { closed, answer: () => Buffer.concat(got).toString('latin1') };
  });

  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    const ms = Date.now() - t0;
    t.equal(res.status, 200);
    await res.arrayBuffer();
    t.ok(ms < 1_000, `/health answered in ${ms} ms while ${slow.length} clients dribble`);
  }

  const timeout = new Promise<never>((_r, reject) => setTimeout(() => reject(new Error('slow clients were never dropped')), 10_000).unref());
  const times = await Promise.race([Promise.all(slow.map((s) => s.closed)), timeout]);
  for (const [i, ms] of times.entries()) {
    t.ok(ms < 10_000, `slow client ${i} dropped after ${ms} ms`);
    t.match(slow[i]!.answer(), /^HTTP\/1\.1 408 /, 'answered 408 Request Timeout');
  }
});

// issue 10, item 6: SIGTERM while a teacher uploads used to close the database under the upload,
// answer 500, orphan the file and take ~50 s to exit
t.test('SIGTERM during an upload parks it resumably and the server stops at once', async (t) => {
  const dir = t.testdir();
  const data = join(dir, 'data');
  const clip = readFileSync(makeClip(dir, 'clip', { seconds: 3, width: 320, height: 240 }));
  let child = await startRunner(t, data);
  let auth = await login(child.url);
  const created = await fetch(`${child.url}/api/uploads?title=sigterm`, {
    method: 'POST', headers: { ...auth, 'upload-length': String(clip.length) }, body: clip.subarray(0, 10_000),
  });
  t.equal(created.status, 201);
  const { id } = (await created.json()) as { id: string };
  const answer = new Promise<{ status?: number; offset?: string | undefined }>((resolveAnswer) => {
    const inFlight = request(`${child.url}/api/uploads/${id}`, {
      method: 'PATCH', headers: { ...auth, 'upload-offset': '10000', 'content-length': String(clip.length - 10_000) },
    }, (res) => { res.resume(); resolveAnswer({ status: res.statusCode, offset: res.headers['upload-offset'] as string | undefined }); });
    inFlight.on('error', () => resolveAnswer({}));
    inFlight.write(clip.subarray(10_000, 30_000));
  });
  await waitFor(() => statSync(join(data, 'uploads', `${id}.part`)).size >= 30_000, 5_000, 'the in-flight bytes to reach the disk');
  const t0 = Date.now();
  const exited = new Promise<number | null>((r) => child.proc.once('exit', (code) => r(code)));
  child.proc.kill('SIGTERM');
  const got = await answer;
  t.equal(got.status, 503, 'the teacher is told the box restarts (not a 500)');
  t.equal(got.offset, '30000', 'and where the upload will resume');
  t.equal(await exited, 0, child.stderr());
  t.ok(Date.now() - t0 < 5_000, `stopped in ${Date.now() - t0} ms`);
  t.same(listed(join(data, 'sources')), [], 'nothing orphaned in sources/');
  child = await startRunner(t, data);
  auth = await login(child.url);
  const rest = await fetch(`${child.url}/api/uploads/${id}`, { method: 'PATCH', headers: { ...auth, 'upload-offset': '30000' }, body: clip.subarray(30_000) });
  t.equal(rest.status, 200, 'the upload resumes after the restart');
  t.match(await rest.json(), { complete: true, lessonId: 'les-new' });
  await killed(child.proc);
});
