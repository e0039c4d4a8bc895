// Issue 12 item 2: Yachay's resumable upload (daemon/http/routes/uploads.ts + the page's xhr loop)
// against tus (@tus/server 2.x + @tus/file-store on the box, tus-js-client on the page), measured
// on what matters to a teacher on school Wi-Fi: a connection that drops in the middle.
//
//   TUS_MODULES=/path/with/node_modules node --import tsx test/bench/upload-tus.mts [MB] [cutMB]
//
// tus is not a dependency of the project: install it beside, not into, the project
// (mkdir /tmp/tus-bench && cd /tmp/tus-bench && npm i @tus/server@2 @tus/file-store@2 tus-js-client@4).
// Both servers run on loopback behind the same counting proxy, which cuts the first connection
// that has carried `cutMB` of upload; each client must resume on its own. Prints a table.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { HttpService } from '../../daemon/http/server.js';

const MB = 1024 * 1024;
const size = Number(process.argv[2] ?? 20) * MB;
const cutAt = Number(process.argv[3] ?? 8) * MB;
const modules = process.env.TUS_MODULES;
if (!modules) throw new Error('set TUS_MODULES to a folder whose node_modules has @tus/server, @tus/file-store and tus-js-client');
const req = createRequire(join(modules, 'package.json'));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const data = randomBytes(size);
// an MP4 head, so Yachay's upload accepts the bytes as media
data.writeUInt32BE(24, 0); data.write('ftypisom', 4, 'latin1');

interface Proxy { url: string; up: number; requests: number; cuts: number; close(): void }

/** a TCP relay that counts client→server bytes and request lines, and cuts one connection */
async function proxy(target: number): Promise<Proxy> {
  const p: Proxy = { url: '', up: 0, requests: 0, cuts: 0, close: () => server.close() };
  let cut = false;
  const server = createNetServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    let carried = 0;
    client.on('data', (c: Buffer) => {
      p.up += c.length; carried += c.length;
      p.requests += (c.toString('latin1').match(/^(?:POST|PATCH|HEAD|GET|OPTIONS|DELETE) \/\S* HTTP\/1\.1\r$/gm) ?? []).length;
      if (!cut && carried >= cutAt) { cut = true; p.cuts++; client.destroy(); upstream.destroy(); return; }
      upstream.write(c);
    });
    upstream.on('data', (c) => client.write(c));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  p.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return p;
}

/** the page's algorithm (http/player/app.js upload()): create, PATCH, on a drop HEAD and PATCH the rest */
async function yachayClient(base: string, auth: Record<string, string>): Promise<void> {
  const created = await fetch(`${base}/api/uploads?title=bench`, { method: 'POST', headers: { ...auth, 'upload-length': String(size) } });
  const id = ((await created.json()) as { id: string }).id;
  let offset = 0;
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      const r = await fetch(`${base}/api/uploads/${id}`, { method: 'PATCH', headers: { ...auth, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }, body: data.subarray(offset) });
      const j = (await r.json()) as { complete?: boolean };
      if (r.status === 200 && j.complete) return;
    } catch { await new Promise((r) => setTimeout(r, 200)); }
    const h = await fetch(`${base}/api/uploads/${id}`, { method: 'HEAD', headers: auth });
    offset = Number(h.headers.get('upload-offset'));
  }
  throw new Error('yachay upload did not complete');
}

async function runYachay(): Promise<Record<string, string | number>> {
  const dir = mkdtempSync(join(tmpdir(), 'ych-up-'));
  const db = openDb(join(dir, 'y.db'));
  const users = new Users(db);
  await users.add('maestra', 'correct horse battery', 'teacher');
  const svc = new HttpService({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 4096, loginAttemptsPerMinute: 100, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'), uploads: join(dir, 'uploads'), sources: join(dir, 'sources'),
    lessons: { list: () => [], get: () => undefined }, users, health: () => ({}), onUpload: async () => ({ lessonId: 'x' }),
  });
  await svc.start(new AbortController().signal);
  const login = await fetch(`${svc.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'maestra', password: 'correct horse battery', bearer: true }) });
  const auth = { authorization: `Bearer ${((await login.json()) as { token: string }).token}` };
  const px = await proxy(svc.port);
  const t0 = performance.now();
  await yachayClient(px.url, auth);
  const ms = performance.now() - t0;
  const file = join(dir, 'sources', readdirSync(join(dir, 'sources'))[0]!);
  const same = sha(readFileSync(file)) === sha(data);
  px.close(); await svc.stop(); db.close(); rmSync(dir, { recursive: true, force: true });
  return { name: 'yachay', ms: Math.round(ms), up: px.up, requests: px.requests, cuts: px.cuts, same: String(same) };
}

async function runTus(): Promise<Record<string, string | number>> {
  const { Server: TusServer } = await import(req.resolve('@tus/server')) as { Server: new (o: unknown) => { handle(a: unknown, b: unknown): void } };
  const { FileStore } = await import(req.resolve('@tus/file-store')) as { FileStore: new (o: unknown) => unknown };
  const tus = req('tus-js-client') as { Upload: new (file: Buffer, o: Record<string, unknown>) => { start(): void } };
  const dir = mkdtempSync(join(tmpdir(), 'tus-up-'));
  const tusServer = new TusServer({ path: '/files', datastore: new FileStore({ directory: dir }) });
  const http: Server = createServer((a, b) => tusServer.handle(a, b));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const px = await proxy((http.address() as AddressInfo).port);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    new tus.Upload(data, {
      endpoint: `${px.url}/files`, uploadSize: size, retryDelays: [200, 500, 1000, 2000],
      metadata: { filename: 'bench.mp4' }, onSuccess: () => resolve(), onError: (e: Error) => reject(e),
    }).start();
  });
  const ms = performance.now() - t0;
  const file = readdirSync(dir).find((n) => !n.endsWith('.json'))!;
  const same = statSync(join(dir, file)).size === size && sha(readFileSync(join(dir, file))) === sha(data);
  px.close(); http.close(); rmSync(dir, { recursive: true, force: true });
  return { name: 'tus', ms: Math.round(ms), up: px.up, requests: px.requests, cuts: px.cuts, same: String(same) };
}

function jsLines(dir: string): { files: number; lines: number } {
  let files = 0; let lines = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) { files++; lines += readFileSync(p, 'utf8').split('\n').length; }
    }
  };
  walk(dir);
  return { files, lines };
}

const rows = [await runYachay(), await runTus()];
process.stdout.write(`upload of ${size / MB} MB, connection cut once after ${cutAt / MB} MB, loopback\n`);
process.stdout.write('client        ms   bytes up   overhead   requests  cuts  intact\n');
for (const r of rows) {
  const over = Number(r.up) - size;
  process.stdout.write(`${String(r.name).padEnd(8)} ${String(r.ms).padStart(7)} ${String(r.up).padStart(10)} ${`${(over / MB).toFixed(2)} MB`.padStart(10)} ${String(r.requests).padStart(10)} ${String(r.cuts).padStart(5)}  ${r.same}\n`);
}
const ours = readFileSync(new URL('../../daemon/http/routes/uploads.ts', import.meta.url), 'utf8').split('\n').length;
const page = readFileSync(new URL('../../daemon/http/player/app.js', import.meta.url), 'utf8');
const pageLines = page.slice(page.indexOf('function xhr('), page.indexOf('// ---------- routing')).split('\n').length;
const server = ['@tus/server', '@tus/utils', '@tus/file-store'].map((m) => jsLines(join(modules, 'node_modules', m, 'dist')));
const bundle = readFileSync(join(modules, 'node_modules', 'tus-js-client', 'dist', 'tus.min.js'));
const engines = (JSON.parse(readFileSync(join(modules, 'node_modules', '@tus', 'server', 'package.json'), 'utf8')) as { engines?: { node?: string } }).engines?.node;
process.stdout.write(`code: yachay server ${ours} lines TS (uploads.ts), page ${pageLines} lines; `
  + `tus server ${server.reduce((n, s) => n + s.lines, 0)} lines JS in ${server.reduce((n, s) => n + s.files, 0)} files, `
  + `page bundle tus.min.js ${bundle.length} bytes (${gzipSync(bundle).length} gzip)\n`);
process.stdout.write(`@tus/server engines: node ${engines}; this node ${process.version}\n`);
