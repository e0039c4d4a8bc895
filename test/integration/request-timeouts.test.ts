import t from 'tap';
import type { Test } from 'tap';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { HttpService } from '../../daemon/http/server.js';
import { makeClip } from '../helpers/media.js';

// Issue 10 item 13, last clause: no route waits for a client for ever. Other requests already
// had a whole-body timeout; uploads had none (only the 2-minute idle timeout, which a byte a
// minute defeats), and any URL starting with /api/uploads escaped the body timeout. Real
// server on a port, raw sockets trickling bytes.

const PASSWORD = 'correct horse battery';
const WINDOW = 500;

async function server(t: Test): Promise<{ svc: HttpService; port: number; auth: string; uploads: string; clip: Buffer }> {
  const dir = t.testdir();
  const clip = readFileSync(makeClip(dir, 'clip', { seconds: 2, width: 160, height: 90 }));
  mkdirSync(join(dir, 'store', 'les1', 'v0'), { recursive: true });
  writeFileSync(join(dir, 'store', 'les1', 'v0', 'seg_00000.m4s'), 'segment');
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  await users.add('maestra', PASSWORD, 'teacher');
  const svc = new HttpService({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 5, loginAttemptsPerMinute: 100, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'), uploads: join(dir, 'uploads'), sources: join(dir, 'sources'),
    lessons: { list: () => [], get: () => undefined }, users, health: () => ({}),
    bodyTimeoutMs: WINDOW, ...({ uploadMinBytes: 4096 } as object), onUpload: async () => ({ lessonId: 'nueva' }),
  });
  await svc.start(new AbortController().signal);
  t.teardown(() => svc.stop());
  const login = await fetch(`${svc.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'maestra', password: PASSWORD, bearer: true }) });
  const auth = `Bearer ${((await login.json()) as { token: string }).token}`;
  return { svc, port: Number(new URL(svc.url).port), auth, uploads: join(dir, 'uploads'), clip };
}

/**
 * Sends `head`, then `chunks` one every `everyMs`; resolves with what came back and when the
 * server closed the socket (or `giveUpMs` with closed false).
 */
function trickle(port: number, head: string, chunks: Buffer[], everyMs: number, giveUpMs = 6000): Promise<{ closed: boolean; ms: number; text: string }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = connect(port, '127.0.0.1');
    let text = ''; let i = 0; let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true; clearInterval(tick); clearTimeout(stop); sock.destroy();
      resolve({ closed, ms: Date.now() - t0, text });
    };
    sock.on('data', (c) => { text += c.toString('latin1'); });
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    sock.write(head);
    const tick = setInterval(() => { if (i < chunks.length && !sock.destroyed) sock.write(chunks[i++]!); }, everyMs);
    const stop = setTimeout(() => finish(false), giveUpMs);
  });
}

function split(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

t.test('a stalled upload is cut and stays resumable; a slow steady one finishes', async (t) => {
  const { port, auth, uploads, clip, svc } = await server(t);
  const head = (len: number): string => `POST /api/uploads?title=lenta HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nUpload-Length: ${len}\r\nContent-Length: ${len}\r\n\r\n`;

  // 40 bytes every 100 ms: 200 bytes a window, far under the floor, but never idle
  const stalled = await trickle(port, head(clip.length), split(clip, 40), 100);
  t.ok(stalled.closed, 'the server closed the trickling upload');
  t.ok(stalled.ms >= WINDOW && stalled.ms < 4 * WINDOW, `after ${stalled.ms} ms (one or two windows)`);
  const parts = readdirSync(uploads).filter((n) => n.endsWith('.part'));
  t.equal(parts.length, 1, 'what arrived is kept');
  const id = parts[0]!.slice(0, -'.part'.length);
  const resume = await fetch(`${svc.url}/api/uploads/${id}`, { method: 'HEAD', headers: { authorization: auth } });
  t.equal(resume.status, 200);
  t.ok(Number(resume.headers.get('upload-offset')) > 0, `resumable from byte ${resume.headers.get('upload-offset')}`);

  // 2 KiB every 100 ms: 10 KiB a window, over the floor, across several windows
  const steady = await trickle(port, head(clip.length), split(clip, 4096), 100, 20_000);
  t.match(steady.text, /^HTTP\/1\.1 201 /, `a slow but steady upload finishes (${steady.ms} ms, ${Math.ceil(clip.length / 4096)} chunks)`);
  t.ok(steady.ms > 2 * WINDOW, 'it spanned more than two windows');
});

t.test('a refused upload, or a look-alike URL, is held to a timeout too', async (t) => {
  const { port } = await server(t);
  const junk = Array.from({ length: 100 }, () => Buffer.from('x'));
  const anon = await trickle(port, 'POST /api/uploads HTTP/1.1\r\nHost: x\r\nUpload-Length: 100000\r\nContent-Length: 100000\r\n\r\n', junk, 100);
  t.match(anon.text, /^HTTP\/1\.1 401 /, 'no login: 401');
  t.ok(anon.closed && anon.ms < 4 * WINDOW, `and the socket is closed after ${anon.ms} ms, not kept reading a byte at a time`);
  const lookAlike = await trickle(port, 'POST /api/uploadsX HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n', junk, 100);
  t.ok(lookAlike.closed && lookAlike.ms < 4 * WINDOW, `a URL that only starts like the upload's gets the body timeout (${lookAlike.ms} ms)`);
  const patch = await trickle(port, `PATCH /api/uploads/${'a'.repeat(32)} HTTP/1.1\r\nHost: x\r\nUpload-Offset: 0\r\nContent-Length: 100000\r\n\r\n`, junk, 100);
  t.ok(patch.closed && patch.ms < 4 * WINDOW, `PATCH on an upload too (${patch.ms} ms)`);
});

t.test('a media request that carries a trickled body is held to the body timeout too', async (t) => {
  const { port, svc } = await server(t);
  const seg = '/media/les1/v0/seg_00000.m4s';
  t.equal((await fetch(`${svc.url}${seg}`)).status, 200, 'the segment is now in memory (the fast path answers it)');
  const junk = Array.from({ length: 100 }, () => Buffer.from('x'));
  const r = await trickle(port, `GET ${seg} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n`, junk, 100);
  t.match(r.text, /^HTTP\/1\.1 200 /, 'answered');
  t.ok(r.closed && r.ms < 4 * WINDOW, `and the socket closed after ${r.ms} ms instead of reading the body a byte at a time`);
});
