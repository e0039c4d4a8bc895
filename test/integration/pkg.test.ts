import t from 'tap';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { makeLessonFolder, renditionsOf, serveOrigin } from '../helpers/package.js';
import { yachay } from '../helpers/cli.js';
import { openDb } from '../../daemon/db/db.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { buildManifest, manifestBytes, parseManifest } from '../../daemon/pkg/manifest.js';
import type { Manifest } from '../../daemon/pkg/manifest.js';
import { loadOrCreateHubKey, signBytes, verifyManifest } from '../../daemon/pkg/sign.js';
import { BlobStore, originPath, publishToOrigin } from '../../daemon/pkg/origin.js';
import { TokenBucket, fetchBlob, fetchBytes } from '../../daemon/pkg/fetch.js';
import { installLesson, missingBlobs } from '../../daemon/pkg/install.js';
import { isYachayError } from '../../daemon/errors.js';

async function hubLesson(dir: string, id: string, seed: number, version = 1): Promise<Manifest> {
  const folder = makeLessonFolder(join(dir, `src-${id}-${version}`), { seed });
  return buildManifest(folder, { id, title: `Lección ${id}`, channel: 'primaria', version, durationS: 4, renditions: renditionsOf(folder), misses: [] });
}

t.test('a published lesson becomes a signed manifest and content-addressed blobs; shared files are stored once', async (t) => {
  const dir = t.testdir();
  const key = await loadOrCreateHubKey(join(dir, 'hub'));
  t.equal(statSync(join(dir, 'hub', 'hub-ed25519.pem')).mode & 0o777, 0o600, 'the private key is 0600');
  const again = await loadOrCreateHubKey(join(dir, 'hub'));
  t.equal(again.publicPem, key.publicPem, 'the key is kept across starts');
  const a = await hubLesson(dir, 'agua', 1);
  const b = await hubLesson(dir, 'suelo', 2);
  t.ok(a.files.some((f) => f.path === 'master.m3u8') && a.files.some((f) => f.path === 'v0/init.mp4'), 'every file is listed');
  t.equal(a.bytes, a.files.reduce((n, f) => n + f.size, 0));
  const origin = join(dir, 'origin');
  await publishToOrigin(origin, join(dir, 'src-agua-1'), a, key.privateKey);
  await publishToOrigin(origin, join(dir, 'src-suelo-1'), b, key.privateKey);
  const shared = a.files.filter((f) => b.files.some((g) => g.sha256 === f.sha256));
  t.ok(shared.length >= 2, `${shared.length} files (the audio) are the same in both lessons`);
  const unique = new Set([...a.files, ...b.files].map((f) => f.sha256));
  t.equal((await new BlobStore(origin).list()).length, unique.size, 'a shared file is one blob');
  const bytes = readFileSync(join(origin, originPath.manifest('agua')));
  const sig = readFileSync(join(origin, originPath.signature('agua')), 'utf8');
  t.equal(verifyManifest(bytes, sig, key.publicPem, 'agua').id, 'agua', 'the signature verifies');
});

t.test('an unsigned, altered or foreign-signed manifest is refused before it is read', async (t) => {
  const dir = t.testdir();
  const key = await loadOrCreateHubKey(dir);
  const m = await hubLesson(dir, 'agua', 1);
  const bytes = manifestBytes(m);
  const sig = signBytes(bytes, key.privateKey);
  const refused = (b: Buffer, s: string | undefined, pem: string, why: string): void => {
    try { verifyManifest(b, s, pem, 'x.json'); t.fail(`${why}: accepted`); } catch (err) {
      t.ok(isYachayError(err, 'YCH_ERR_PACKAGE_SIGNATURE'), `${why}: ${(err as Error).message}`);
    }
  };
  refused(bytes, undefined, key.publicPem, 'unsigned');
  refused(Buffer.from(bytes.toString().replace('Lección agua', 'Lección falsa')), sig, key.publicPem, 'title changed');
  const other = generateKeyPairSync('ed25519');
  refused(bytes, signBytes(bytes, other.privateKey), key.publicPem, 'signed by another hub');
  // a manifest signed by the hub but naming a path outside the lesson is still refused
  const evil = { ...m, files: [...m.files, { path: '../../etc/cron.d/x', sha256: 'a'.repeat(64), size: 1 }] };
  evil.bytes += 1;
  const eb = manifestBytes(evil);
  t.throws(() => verifyManifest(eb, signBytes(eb, key.privateKey), key.publicPem, 'evil.json'), { code: 'YCH_ERR_PACKAGE_INVALID' }, 'a path leaving the lesson folder');
  t.throws(() => parseManifest(Buffer.from('{"format":"other"}'), 'x'), { code: 'YCH_ERR_PACKAGE_INVALID' });
});

t.test('fetchBlob resumes a dropped transfer with Range and fetches every byte once', async (t) => {
  const dir = t.testdir();
  const origin = join(dir, 'origin'); const blob = Buffer.alloc(600_000);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 7919) % 251;
  const { createHash } = await import('node:crypto');
  const sha = createHash('sha256').update(blob).digest('hex');
  mkdirSync(join(origin, 'blobs', 'sha256', sha.slice(0, 2)), { recursive: true });
  writeFileSync(join(origin, originPath.blob(sha)), blob);
  const srv = await serveOrigin(origin);
  t.teardown(() => srv.close());
  const dest = join(dir, 'box', originPath.blob(sha));
  srv.cutAfter = 250_000;
  await t.rejects(fetchBlob({ url: srv.url + originPath.blob(sha), dest, sha256: sha, size: blob.length }), { code: 'YCH_ERR_HUB_UNREACHABLE' }, 'the dropped link is an error the sync retries');
  const kept = statSync(`${dest}.part`).size;
  t.ok(kept > 0 && kept <= 250_000, `${kept} bytes kept in .part`);
  const r = await fetchBlob({ url: srv.url + originPath.blob(sha), dest, sha256: sha, size: blob.length });
  t.ok(r.resumed, 'resumed');
  t.equal(r.fetched + kept, blob.length, 'the second request fetched only the rest');
  t.equal(srv.requests.at(-1)?.range, `bytes=${kept}-`);
  t.same(readFileSync(dest), blob, 'the blob is whole');
  t.notOk(existsSync(`${dest}.part`), 'no .part left');
});

t.test('a blob whose content differs from its hash is refused and removed', async (t) => {
  const dir = t.testdir();
  const origin = join(dir, 'origin'); const sha = 'b'.repeat(64);
  mkdirSync(join(origin, 'blobs', 'sha256', 'bb'), { recursive: true });
  writeFileSync(join(origin, originPath.blob(sha)), 'not what the manifest says');
  const srv = await serveOrigin(origin);
  t.teardown(() => srv.close());
  const dest = join(dir, 'box', originPath.blob(sha));
  await t.rejects(fetchBlob({ url: srv.url + originPath.blob(sha), dest, sha256: sha, size: 26 }), { code: 'YCH_ERR_PACKAGE_HASH' });
  t.notOk(existsSync(dest) || existsSync(`${dest}.part`), 'nothing kept');
  const res = await fetchBytes(srv.url + 'nothing-here');
  t.equal(res.status, 404);
});

t.test('the token bucket holds a transfer to the cap', async (t) => {
  // 400 kb/s = 50 kB/s with a 16 KiB burst: 150 kB cannot arrive in under ~2.6 s
  const bucket = new TokenBucket(400);
  const start = Date.now();
  for (let i = 0; i < 10; i++) await bucket.take(15_000);
  const s = (Date.now() - start) / 1000;
  t.ok(s >= 2.5, `150 kB at 400 kb/s took ${s.toFixed(2)} s`);
  const ac = new AbortController();
  const p = bucket.take(1_000_000, ac.signal);
  ac.abort(new Error('stop'));
  await t.rejects(p, { message: 'stop' }, 'a waiting fetch can be aborted');
});

t.test('installLesson links blobs into a whole lesson, remuxes the downloads, and a new version replaces it', async (t) => {
  const dir = t.testdir();
  const key = await loadOrCreateHubKey(join(dir, 'hub'));
  const hubOrigin = join(dir, 'hub-origin');
  const box = join(dir, 'box'); const store = join(box, 'store'); mkdirSync(store, { recursive: true });
  const db = openDb(join(box, 'yachay.db')); t.teardown(() => db.close());
  const lessons = new Lessons(db);
  const blobs = new BlobStore(join(box, 'origin'));
  for (const version of [1, 2]) {
    const m = await hubLesson(dir, 'agua', version, version);
    const { bytes, signature } = await publishToOrigin(hubOrigin, join(dir, `src-agua-${version}`), m, key.privateKey);
    const missing = await missingBlobs(m, blobs);
    if (version === 2) t.ok(missing.length < m.files.length, `version 2 needs ${missing.length} of ${m.files.length} files: the audio is held`);
    await t.rejects(installLesson({ store, blobs, manifest: m, manifestBytes: bytes, signature, lessons, origin: 'hub' }), { code: 'YCH_ERR_PACKAGE_INVALID' }, 'not before every blob is held');
    t.notOk(lessons.get('agua')?.version === version, 'nothing listed while blobs are missing');
    for (const f of missing) await blobs.putFile(join(hubOrigin, originPath.blob(f.sha256)), f.sha256);
    await installLesson({ store, blobs, manifest: m, manifestBytes: bytes, signature, lessons, origin: 'hub' });
    const l = lessons.get('agua')!;
    t.match(l, { status: 'ready', origin: 'hub', channel: 'primaria', version, path: 'agua' });
    const seg = m.files.find((f) => f.path === 'v0/seg_00001.m4s')!;
    t.equal(statSync(join(store, 'agua', seg.path)).ino, statSync(blobs.path(seg.sha256)).ino, 'the lesson file is a hard link to its blob');
    t.ok(statSync(join(store, 'agua', 'download', 'leccion.mp4')).size > 1000, 'the phone download was remuxed on the box');
    t.equal(JSON.parse(readFileSync(join(store, 'agua', 'report.json'), 'utf8')).seed, version, `version ${version} is in place`);
  }
  t.same(readdirSync(store).filter((n) => n.startsWith('.')), [], 'no temp folder left');
  // a teacher's own lesson is never overwritten by a package with its id
  lessons.create({ id: 'mia', title: 'Mi clase', source: '/x.mp4' });
  const mine = await hubLesson(dir, 'mia', 3);
  const pub = await publishToOrigin(hubOrigin, join(dir, 'src-mia-1'), mine, key.privateKey);
  for (const f of await missingBlobs(mine, blobs)) await blobs.putFile(join(hubOrigin, originPath.blob(f.sha256)), f.sha256);
  await t.rejects(installLesson({ store, blobs, manifest: mine, manifestBytes: pub.bytes, signature: pub.signature, lessons, origin: 'hub' }));
  t.equal(lessons.get('mia')?.origin, 'local');
});

t.test('yachay export / import carry a lesson on a USB drive; a tampered drive installs nothing', async (t) => {
  const dir = t.testdir();
  const key = await loadOrCreateHubKey(join(dir, 'hub'));
  writeFileSync(join(dir, 'hub.pub'), key.publicPem);
  // box A got the lesson from the hub
  const a = join(dir, 'a'); mkdirSync(join(a, 'store'), { recursive: true });
  const m = await hubLesson(dir, 'agua', 1);
  const pub = await publishToOrigin(join(dir, 'hub-origin'), join(dir, 'src-agua-1'), m, key.privateKey);
  {
    const db = openDb(join(a, 'yachay.db'));
    const blobs = new BlobStore(join(a, 'origin'));
    for (const f of m.files) await blobs.putFile(join(dir, 'hub-origin', originPath.blob(f.sha256)), f.sha256);
    await installLesson({ store: join(a, 'store'), blobs, manifest: m, manifestBytes: pub.bytes, signature: pub.signature, lessons: new Lessons(db), origin: 'hub' });
    new Lessons(db).create({ id: 'propia', title: 'Clase propia' });
    db.close();
  }
  const usb = join(dir, 'usb');
  const local = await yachay(['export', 'propia', '--to', usb, '--data-dir', a]);
  t.equal(local.code, 64, `a lesson made on the box has no signature to travel with: ${local.stderr.trim().split('\n')[0]}`);
  const ex = await yachay(['export', 'agua', '--to', usb, '--data-dir', a]);
  t.equal(ex.code, 0, ex.stderr);
  t.ok(existsSync(join(usb, 'manifests', 'agua.json')) && existsSync(join(usb, 'manifests', 'agua.json.sig')));

  // box C: a drive whose segment was altered is refused, naming the file; nothing is listed
  const bad = join(dir, 'usb-bad'); cpSync(usb, bad, { recursive: true });
  const seg = m.files.find((f) => f.path === 'v0/seg_00002.m4s')!;
  const segPath = join(bad, originPath.blob(seg.sha256));
  const buf = readFileSync(segPath); buf[buf.length - 10] = buf[buf.length - 10]! ^ 0xff; writeFileSync(segPath, buf);
  const c = join(dir, 'c');
  const tampered = await yachay(['import', bad, '--data-dir', c, '--hub-key', join(dir, 'hub.pub')]);
  t.equal(tampered.code, 65, 'exit 65');
  t.match(tampered.stderr, seg.sha256, 'the message names the bad file');
  t.match(tampered.stderr, 'v0/seg_00002.m4s');
  {
    const db = openDb(join(c, 'yachay.db'));
    t.same(new Lessons(db).list(), [], 'nothing listed');
    db.close();
  }
  t.equal((await new BlobStore(join(c, 'origin')).list()).length, 0, 'no blob of the bad import kept');
  // an altered manifest is refused by its signature
  const badManifest = join(dir, 'usb-bad-manifest'); cpSync(usb, badManifest, { recursive: true });
  const mp = join(badManifest, 'manifests', 'agua.json');
  writeFileSync(mp, readFileSync(mp, 'utf8').replace('"version": 1', '"version": 9'));
  const forged = await yachay(['import', badManifest, '--data-dir', c, '--hub-key', join(dir, 'hub.pub')]);
  t.equal(forged.code, 65);
  t.match(forged.stderr, 'agua.json');

  // box B imports the good drive: the lesson is listed as imported and plays from its folder
  const b = join(dir, 'b');
  const noKey = await yachay(['import', usb, '--data-dir', b]);
  t.equal(noKey.code, 65, 'a box with no hub key cannot check a package');
  const im = await yachay(['import', usb, '--data-dir', b, '--hub-key', join(dir, 'hub.pub')]);
  t.equal(im.code, 0, im.stderr);
  t.equal(im.stdout.trim(), 'agua');
  const db = openDb(join(b, 'yachay.db'));
  t.match(new Lessons(db).get('agua'), { status: 'ready', origin: 'import', version: 1 });
  db.close();
  t.ok(existsSync(join(b, 'store', 'agua', 'master.m3u8')) && existsSync(join(b, 'sync', 'hub-key.pem')), 'installed, and the key is now the box\'s');
  const again = await yachay(['import', usb, '--data-dir', b]);
  t.equal(again.code, 0, 'a second import uses the stored key');
});
