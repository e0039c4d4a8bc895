import t, { type Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { HttpService } from '../../daemon/http/server.js';
import { parseHead } from '../../daemon/http/front.js';

// HttpFront reads every connection first and answers only the plainest requests for files in
// memory; everything else must reach Node's HTTP server exactly as the client sent it.

t.test('parseHead takes only plain GET/HEAD heads', async (t) => {
  const ok = parseHead('GET /media/a/v0/seg_00000.m4s HTTP/1.1\r\nHost: box\r\nRange: bytes=0-9\r\nConnection: keep-alive');
  t.same(ok, { method: 'GET', target: '/media/a/v0/seg_00000.m4s', headers: { range: 'bytes=0-9' } });
  t.same(parseHead('HEAD /media/x HTTP/1.1\r\nIf-None-Match:  "a-1" ')?.headers, { 'if-none-match': '"a-1"' }, 'spaces around a value are not part of it');
  const refused: Array<[string, string]> = [
    ['POST /media/x HTTP/1.1', 'another method'],
    ['GET /media/x HTTP/1.0', 'HTTP/1.0'],
    ['GET /media/a b HTTP/1.1', 'a space in the target'],
    ['GET http://box/media/x HTTP/1.1', 'an absolute target'],
    ['GET /media/x HTTP/1.1\r\nContent-Length: 5', 'a body'],
    ['GET /media/x HTTP/1.1\r\nTransfer-Encoding: chunked', 'a chunked body'],
    ['GET /media/x HTTP/1.1\r\nConnection: close', 'Connection: close'],
    ['GET /media/x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket', 'an upgrade'],
    ['GET /media/x HTTP/1.1\r\nRange: bytes=0-1\r\nrange: bytes=2-3', 'a repeated Range'],
    ['GET /media/x HTTP/1.1\r\nRange : bytes=0-1', 'a space before the colon'],
    ['GET /media/x HTTP/1.1\r\n folded: line', 'an obsolete line fold'],
    ['GET /media/x HTTP/1.1\nHost: box', 'a bare LF'],
    ['GET /media/x HTTP/1.1\r\nX: a\x00b', 'a control character in a value'],
  ];
  for (const [head, what] of refused) t.equal(parseHead(head), undefined, `refused: ${what}`);
});

async function box(t: Test): Promise<{ url: string; port: number; svc: HttpService; seg: Buffer; big: Buffer }> {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  const store = join(dir, 'store');
  mkdirSync(join(store, 'les1', 'v0'), { recursive: true });
  const seg = Buffer.from('SEGMENT-ZERO');
  const big = Buffer.alloc(1_500_000);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  writeFileSync(join(store, 'les1', 'v0', 'seg_00000.m4s'), seg);
  writeFileSync(join(store, 'les1', 'v0', 'seg_00001.m4s'), big);
  const svc = new HttpService({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 10, loginAttemptsPerMinute: 5, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store, lessons: new Lessons(db), users: new Users(db), health: () => ({ db: true }), flushMs: 20,
  });
  await svc.start(new AbortController().signal);
  t.teardown(async () => { await svc.stop(); db.close(); });
  // the first request of each file reads it from disk through Fastify and fills the cache
  for (const n of ['seg_00000.m4s', 'seg_00001.m4s']) await (await fetch(`${svc.url}/media/les1/v0/${n}`)).arrayBuffer();
  return { url: svc.url, port: svc.port, svc, seg, big };
}

interface Response { status: number; headers: Record<string, string>; body: Buffer }

/** A client that writes raw bytes and parses the responses it gets back (Content-Length bodies). */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  ended = false;
  readonly socket: Socket;
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (c: Buffer) => { this.buf = Buffer.concat([this.buf, c]); this.wake(); });
    this.socket.on('end', () => { this.ended = true; this.wake(); });
    this.socket.on('close', () => { this.ended = true; this.wake(); });
    this.socket.on('error', () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(s: string | Buffer): void {
    this.socket.write(s);
  }

  /** the next response; HEAD and 304 answers have no body whatever Content-Length says */
  async next(noBody = false): Promise<Response> {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const lines = this.buf.toString('latin1', 0, end).split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
        const len = noBody || status === 304 ? 0 : Number(headers['content-length'] ?? 0);
        if (this.buf.length >= end + 4 + len) {
          const body = this.buf.subarray(end + 4, end + 4 + len);
          this.buf = this.buf.subarray(end + 4 + len);
          return { status, headers, body };
        }
      }
      if (this.ended) throw new Error(`connection ended; unparsed: ${this.buf.toString('latin1').slice(0, 200)}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async closed(): Promise<boolean> {
    const deadline = Date.now() + 3000;
    while (!this.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.ended;
  }
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: box\r\n${extra}\r\n`;

t.test('pipelined requests: the front answers what it knows, Node the rest, in order', async (t) => {
  const { port, seg } = await box(t);
  const c = new RawClient(port);
  t.teardown(() => c.socket.destroy());
  c.send(get('/media/les1/v0/seg_00000.m4s') + get('/media/les1/v0/seg_00000.m4s', 'Range: bytes=0-6\r\n')
    + get('/health') + get('/media/les1/v0/seg_00000.m4s'));
  const a = await c.next();
  t.equal(a.status, 200);
  t.ok(a.body.equals(seg));
  t.equal(a.headers['content-type'], 'video/iso.segment');
  t.equal(a.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.ok(a.headers.date, 'a Date header');
  const b = await c.next();
  t.equal(b.status, 206);
  t.equal(b.body.toString(), 'SEGMENT');
  t.equal(b.headers['content-range'], `bytes 0-6/${seg.length}`);
  const h = await c.next();
  t.equal(h.status, 200, '/health answered by Fastify on the same connection');
  t.match(h.body.toString(), /db/);
  const d = await c.next();
  t.ok(d.body.equals(seg), 'and a segment after it, by Node this time');
});

t.test('a body on a GET is not read as the next request', async (t) => {
  const { port, seg } = await box(t);
  const c = new RawClient(port);
  t.teardown(() => c.socket.destroy());
  // if the front ignored Content-Length, the body would be answered as a request of its own
  const smuggled = get('/media/les1/v0/seg_00000.m4s', 'Range: bytes=0-1\r\n');
  c.send(`GET /media/les1/v0/seg_00000.m4s HTTP/1.1\r\nHost: box\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`
    + get('/media/les1/v0/seg_00000.m4s', 'Connection: close\r\n'));
  const a = await c.next();
  t.equal(a.status, 200);
  t.ok(a.body.equals(seg));
  const b = await c.next();
  t.equal(b.status, 200, 'the second answer is the last request, not the smuggled range');
  t.equal(b.headers.connection, 'close');
  t.ok(await c.closed(), 'Connection: close is honoured');
});

t.test('heads the front refuses get Node\'s answers', async (t) => {
  const { port } = await box(t);
  const big = new RawClient(port);
  t.teardown(() => big.socket.destroy());
  big.send(get('/media/les1/v0/seg_00000.m4s', `X-Filler: ${'a'.repeat(20_000)}\r\n`));
  t.equal((await big.next()).status, 431, 'an oversized head: 431');
  const bad = new RawClient(port);
  t.teardown(() => bad.socket.destroy());
  bad.send('GET /media/les1/v0/seg_00000.m4s HTTP/1.1\r\nHost: box\r\nRange : bytes=0-1\r\n\r\n');
  t.equal((await bad.next()).status, 400, 'a malformed header: 400');
  const old = new RawClient(port);
  t.teardown(() => old.socket.destroy());
  old.send('GET /media/les1/v0/seg_00000.m4s HTTP/1.0\r\n\r\n');
  const r = await old.next();
  t.equal(r.status, 200, 'HTTP/1.0 is served by Node');
  t.ok(await old.closed(), 'and closed, as HTTP/1.0 asks');
  // the front can only answer files media.ts put in memory, under keys parseMediaPath made;
  // a keep-alive request (no Connection: close) is the one the front reads
  for (const path of ['/media/les1/%2e%2e/%2e%2e/etc/passwd', '/media/les1/v0/../v0/seg_00000.m4s', '/media/les1/v0/%2e%2e%2fv0%2fseg_00000.m4s',
    '/media/les1//v0/seg_00000.m4s', '/media/les1/v0/seg_00000.m4s%00', '/media/les1/v0/seg_00000.m4s/', '/media/les1\\v0\\seg_00000.m4s']) {
    const c = new RawClient(port);
    t.teardown(() => c.socket.destroy());
    c.send(get(path));
    const r = await c.next();
    t.ok([400, 404].includes(r.status), `${path} → ${r.status}`);
  }
});

t.test('a reader that does not read gets every byte once it does', async (t) => {
  const { port, big } = await box(t);
  const c = new RawClient(port);
  t.teardown(() => c.socket.destroy());
  c.socket.pause();
  const n = 12;
  c.send(Array.from({ length: n }, () => get('/media/les1/v0/seg_00001.m4s')).join(''));
  await new Promise((r) => setTimeout(r, 300)); // the box has filled the socket buffers by now
  c.socket.resume();
  for (let i = 0; i < n; i++) {
    const r = await c.next();
    t.equal(r.status, 200);
    if (!r.body.equals(big)) { t.fail(`answer ${i} differs`); break; }
  }
  t.pass(`${n} answers of ${big.length} bytes, in full`);
});

t.test('a client that half-closes after its requests gets every answer, then the end', async (t) => {
  const { port, seg } = await box(t);
  const c = new RawClient(port);
  t.teardown(() => c.socket.destroy());
  c.socket.end(get('/media/les1/v0/seg_00000.m4s') + get('/media/les1/v0/seg_00000.m4s', 'Range: bytes=8-11\r\n'));
  const a = await c.next();
  t.ok(a.body.equals(seg), 'first answer');
  t.equal((await c.next()).body.toString(), 'ZERO', 'second answer');
  t.ok(await c.closed(), 'then the box closes its side');
});

t.test('stopping the server closes idle front connections at once', async (t) => {
  const { port, svc } = await box(t);
  const c = new RawClient(port);
  t.teardown(() => c.socket.destroy());
  c.send(get('/media/les1/v0/seg_00000.m4s'));
  t.equal((await c.next()).status, 200);
  const t0 = Date.now();
  await svc.stop();
  t.ok(Date.now() - t0 < 2000, `stop took ${Date.now() - t0} ms with an idle keep-alive connection`);
  t.ok(await c.closed(), 'the idle connection was closed');
});
