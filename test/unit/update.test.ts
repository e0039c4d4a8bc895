import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { RELEASE_FORMAT, signRelease, verifyOffer } from '../../daemon/update/manifest.js';
import type { ReleaseManifest } from '../../daemon/update/manifest.js';
import { switchCurrent, unpackRelease } from '../../daemon/update/releases.js';
import { runGuard } from '../../daemon/update/guard.js';
import { flushReports, readPending, writePending } from '../../daemon/update/state.js';
import { compareVersions, detectRoot, normalizeArch } from '../../daemon/update/version.js';
import { switchBlocker } from '../../daemon/update/service.js';
import { openDb } from '../../daemon/db/db.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import { freePort } from '../../daemon/hub/ports.js';

const log = pino({ level: 'silent' });

t.test('versions order part by part, numbers as numbers', async (t) => {
  t.equal(compareVersions('0.10.0', '0.9.1'), 1);
  t.equal(compareVersions('0.2.0', '0.2.0'), 0);
  t.equal(compareVersions('2026.12.3-1', '2026.12.3-2'), -1);
  t.equal(compareVersions('1.0', '1.0.1'), -1);
  t.equal(compareVersions('1.0.0-b', '1.0.0-a'), 1);
  t.equal(normalizeArch('aarch64'), 'arm64');
  t.equal(normalizeArch('amd64'), 'x64');
  t.equal(detectRoot('/opt/yachay/releases/0.2.0'), '/opt/yachay');
  t.equal(detectRoot('/home/dev/yachay'), undefined, 'a checkout is not a release');
});

t.test('a release offer counts only with the hub key\'s signature over its exact bytes', async (t) => {
  const hub = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  const pem = hub.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const m: ReleaseManifest = { format: RELEASE_FORMAT, version: '0.2.0', arch: 'arm64', sha256: 'b'.repeat(64), size: 123, name: 'yachay-0.2.0-linux-arm64.tar.gz', publishedAt: '2026-12-03T00:00:00Z' };
  const offer = signRelease(m, hub.privateKey);
  t.same(verifyOffer(JSON.stringify(offer), pem, 'test'), m);
  const altered = { ...offer, manifest: offer.manifest.replace('0.2.0', '0.2.1') };
  t.throws(() => verifyOffer(JSON.stringify(altered), pem, 'test'), { code: 'YCH_ERR_UPDATE_SIGNATURE', message: /does not match/ });
  t.throws(() => verifyOffer(JSON.stringify(signRelease(m, other.privateKey)), pem, 'test'), { code: 'YCH_ERR_UPDATE_SIGNATURE' });
  t.throws(() => verifyOffer(JSON.stringify({ manifest: offer.manifest, signature: '' }), pem, 'test'), { code: 'YCH_ERR_UPDATE_SIGNATURE', message: /no manifest or no signature/ });
  t.throws(() => verifyOffer('not json', pem, 'test'), { code: 'YCH_ERR_UPDATE_SIGNATURE' });
  const badVersion = signRelease({ ...m, version: '../etc' }, hub.privateKey);
  t.throws(() => verifyOffer(JSON.stringify(badVersion), pem, 'test'), { message: /version/ }, 'a signed but odd version never becomes a path');
});

function makeBundle(dir: string, version: string, stamped = version): string {
  const top = join(dir, `src-${version}-${stamped}`, `yachay-${version}`);
  for (const f of ['bin/yachay.mjs', 'daemon/main.ts', 'package.json']) { mkdirSync(join(top, f, '..'), { recursive: true }); writeFileSync(join(top, f), '// x\n'); }
  writeFileSync(join(top, 'VERSION'), `${stamped}\n`);
  const file = join(dir, `yachay-${version}-${stamped}.tar.gz`);
  if (spawnSync('tar', ['-czf', file, '-C', join(top, '..'), `yachay-${version}`]).status !== 0) throw new Error('tar failed');
  return file;
}

t.test('a bundle is unpacked whole into releases/<v>, or not at all', async (t) => {
  const dir = t.testdir();
  const root = join(dir, 'opt');
  const dest = await unpackRelease(makeBundle(dir, '1.2.3'), root, '1.2.3');
  t.equal(dest, join(root, 'releases', '1.2.3'));
  t.equal(readFileSync(join(dest, 'VERSION'), 'utf8').trim(), '1.2.3');
  t.same(readdirSync(join(root, 'releases')), ['1.2.3'], 'no temp folder left');

  await t.rejects(unpackRelease(makeBundle(dir, '1.2.4', '9.9.9'), root, '1.2.4'), { code: 'YCH_ERR_UPDATE_BUNDLE', message: /VERSION says 9\.9\.9/ });
  await t.rejects(unpackRelease(makeBundle(dir, '1.2.5'), root, '1.2.6'), { code: 'YCH_ERR_UPDATE_BUNDLE', message: /no yachay-1\.2\.6\/bin\/yachay\.mjs/ }, 'the top folder must name the signed version');
  const junk = join(dir, 'junk.tar.gz');
  writeFileSync(junk, Buffer.alloc(4096, 7));
  await t.rejects(unpackRelease(junk, root, '1.2.7'), { code: 'YCH_ERR_UPDATE_BUNDLE', message: /tar could not unpack/ });
  t.same(readdirSync(join(root, 'releases')), ['1.2.3'], 'the refused bundles left nothing');
});

t.test('current is switched by a rename, never to a release that is not there', async (t) => {
  const root = t.testdir({ releases: { a: { bin: { 'yachay.mjs': '' } }, b: { bin: { 'yachay.mjs': '' } } } });
  symlinkSync(join('releases', 'a'), join(root, 'current'));
  await switchCurrent(root, 'b');
  t.equal(readlinkSync(join(root, 'current')), join('releases', 'b'));
  await t.rejects(switchCurrent(root, 'c'), { code: 'YCH_ERR_UPDATE_BUNDLE' });
  t.equal(readlinkSync(join(root, 'current')), join('releases', 'b'), 'unchanged after a refused switch');
  t.same(readdirSync(root).sort(), ['current', 'releases'], 'no temp link left');
});

/** a /health that answers what the test says */
async function fakeHealth(t: { teardown(fn: () => unknown): void }, answer: () => { status: number; ok: boolean; version: string }): Promise<string> {
  const srv = createServer((_req, res) => { const a = answer(); res.writeHead(a.status, { 'content-type': 'application/json' }); res.end(JSON.stringify({ ok: a.ok, version: a.version })); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/health`;
}

for (const [name, answer, want] of [
  ['a new release whose /health stays 503 is rolled back', { status: 503, ok: false, version: '2.0.0' }, 'rolled-back'],
  ['an ok /health from another version (the old box, say) does not count', { status: 200, ok: true, version: '1.0.0' }, 'rolled-back'],
  ['a good /health from the new release keeps it', { status: 200, ok: true, version: '2.0.0' }, 'healthy'],
] as const) {
  t.test(`guard: ${name}`, async (t) => {
    const dir = t.testdir({ opt: { releases: { '1.0.0': { bin: { 'yachay.mjs': '' } }, '2.0.0': { bin: { 'yachay.mjs': '' } } } }, data: {} });
    const root = join(dir, 'opt'); const data = join(dir, 'data');
    symlinkSync(join('releases', '2.0.0'), join(root, 'current'));
    const url = await fakeHealth(t, () => answer);
    const now = Date.now();
    await writePending(data, { from: '1.0.0', to: '2.0.0', deadline: now + 1500, startedAt: now, root, healthUrl: url });
    const r = await runGuard({ dataDir: data, log, pollMs: 100, clearWaitMs: 300 });
    t.equal(r, want);
    const sent: unknown[] = [];
    await flushReports(data, (x) => sent.push(x));
    if (want === 'rolled-back') {
      t.equal(readlinkSync(join(root, 'current')), join('releases', '1.0.0'), 'current back on the old release');
      t.equal(await readPending(data), undefined, 'pending cleared');
      t.same(JSON.parse(readFileSync(join(data, 'update', 'refused.json'), 'utf8')), ['2.0.0']);
      t.match(sent, [{ outcome: 'rolled-back', from: '1.0.0', to: '2.0.0', reason: /no good \/health from 2\.0\.0 within 2 s/ }]);
    } else {
      t.equal(readlinkSync(join(root, 'current')), join('releases', '2.0.0'), 'current stays on the new release');
      t.ok(await readPending(data), 'the new release clears the record itself');
      t.same(sent, []);
    }
    t.notOk(existsSync(join(data, 'update', 'guard.lock')), 'lock released');
  });
}

t.test('guard: a new release that never listens (a crash loop) is rolled back too', async (t) => {
  const dir = t.testdir({ opt: { releases: { '1.0.0': { bin: { 'yachay.mjs': '' } }, '2.0.0': { bin: { 'yachay.mjs': '' } } } }, data: {} });
  const root = join(dir, 'opt'); const data = join(dir, 'data');
  symlinkSync(join('releases', '2.0.0'), join(root, 'current'));
  // a port that was just free: nothing answers there
  const url = `http://127.0.0.1:${await freePort()}/health`;
  const now = Date.now();
  await writePending(data, { from: '1.0.0', to: '2.0.0', deadline: now + 1000, startedAt: now, root, healthUrl: url });
  t.equal(await runGuard({ dataDir: data, log, pollMs: 100 }), 'rolled-back');
  t.equal(readlinkSync(join(root, 'current')), join('releases', '1.0.0'));
  const sent: Array<{ reason?: string }> = [];
  await flushReports(data, (x) => sent.push(x));
  t.match(sent, [{ reason: /last: .*(ECONNREFUSED|fetch failed)/ }], 'the reason names the refused connection');
});

t.test('guard: nothing pending, nothing done', async (t) => {
  t.equal(await runGuard({ dataDir: t.testdir(), log }), 'nothing');
});

t.test('the switch waits for a running encode and a recent upload, not for old leftovers', async (t) => {
  const dir = t.testdir({ uploads: {} });
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const queue = new JobQueue(db);
  const uploads = join(dir, 'uploads');
  t.equal(await switchBlocker(queue, uploads), undefined, 'an idle box may restart');
  queue.enqueue('optimize', { lessonId: 'x' });
  t.equal(await switchBlocker(queue, uploads), undefined, 'a queued job is not running: it resumes after the restart');
  const job = queue.lease('w1', 60_000)!;
  t.equal(await switchBlocker(queue, uploads), 'an encode is running');
  queue.complete(job.id, 'w1');
  writeFileSync(join(uploads, 'abc.part'), 'bytes');
  t.equal(await switchBlocker(queue, uploads), 'an upload is in progress');
  const old = new Date(Date.now() - 11 * 60_000);
  utimesSync(join(uploads, 'abc.part'), old, old);
  t.equal(await switchBlocker(queue, uploads), undefined, 'an upload left 11 minutes ago does not hold updates back');
});
