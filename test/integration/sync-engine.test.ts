import t from 'tap';
import type { Test } from 'tap';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../daemon/config/load.js';
import { buildEdge } from '../../daemon/edge.js';
import type { Edge } from '../../daemon/edge.js';
import { isYachayError } from '../../daemon/errors.js';
import type { Manifest } from '../../daemon/pkg/manifest.js';
import { originPath } from '../../daemon/pkg/origin.js';
import { localClock } from '../../daemon/sync/window.js';
import { startFakeHub, until } from '../helpers/sync-hub.js';
import type { FakeHub } from '../helpers/sync-hub.js';

// A whole box (buildEdge: SQLite, Aedes, worker, HTTP, sync) against a hub of real parts:
// Mosquitto with the contract's ACL and an origin folder of signed packages made by daemon/pkg.

const log = pino({ level: 'silent' });
const S = 'escuela-1';

/** a window that is closed now and for the next hours: only runOnce() syncs */
function closedWindow(): string {
  const m = localClock(Date.now(), 'America/Lima').minute;
  const hh = (x: number): string => `${String(Math.floor(((x + 1440) % 1440) / 60)).padStart(2, '0')}:${String(((x + 1440) % 1440) % 60).padStart(2, '0')}`;
  return `${hh(m + 180)}-${hh(m + 240)}`;
}

interface BoxOpts { code?: string; window?: string; quotaBytes?: number; origin?: string; hub?: string }

async function startBox(t: Test, dir: string, hub: FakeHub | undefined, o: BoxOpts = {}): Promise<Edge> {
  const cfg = loadConfig({
    env: {},
    overrides: {
      dataDir: dir, log: { level: 'silent' }, school: S,
      http: { host: '127.0.0.1', port: 0 }, mqtt: { host: '127.0.0.1', port: 0, wsPort: 0 },
      optimize: { models: { vad: false, face: false, rate: false } },
      sync: { hub: o.hub ?? hub?.httpUrl ?? '', window: o.window ?? 'always', rateKbps: 200_000, quotaBytes: o.quotaBytes ?? 0, origin: o.origin ?? '' },
    },
  });
  const edge = await buildEdge(cfg, log, { enrollCode: o.code });
  await edge.app.start();
  t.teardown(() => edge.app.stop('test end'));
  return edge;
}

async function api(edge: Edge, path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(edge.http.url + path, init);
  const text = await res.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  return { status: res.status, body };
}

const blobRequests = (hub: FakeHub, sha: string): number => hub.requests.filter((r) => r.path.endsWith(`/${sha}`)).length;

t.test('enrollment: a wrong, expired, used or revoked code stops the start with its code; an unreachable hub does not', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  hub.codes.set('EXP-1', { status: 410, code: 'YCH_ERR_ENROLL_EXPIRED' });
  hub.codes.set('USED-1', { status: 410, code: 'YCH_ERR_ENROLL_USED' });
  hub.codes.set('REV-1', { status: 403, code: 'YCH_ERR_REVOKED' });
  for (const [code, want] of [['WRONG-1', 'YCH_ERR_ENROLL_CODE'], ['EXP-1', 'YCH_ERR_ENROLL_EXPIRED'], ['USED-1', 'YCH_ERR_ENROLL_USED'], ['REV-1', 'YCH_ERR_REVOKED']] as const) {
    const box = join(dir, `box-${code}`);
    try {
      await startBox(t, box, hub, { code });
      t.fail(`${code}: started`);
    } catch (err) {
      t.ok(isYachayError(err, want), `${code} → ${want}: ${(err as Error).message}`);
      t.equal((err as { exitCode: number }).exitCode, 77);
    }
    t.notOk(existsSync(join(box, 'sync', 'credentials.json')), 'no credentials written');
  }
  // nobody answers on this port: the box starts, serves, and says why it is not enrolled
  const edge = await startBox(t, join(dir, 'box-offline'), undefined, { code: 'OK-1', hub: 'http://127.0.0.1:9/' });
  const s = await api(edge, '/api/sync');
  t.equal(s.status, 200);
  t.equal(s.body.enrolled, false, 'not enrolled yet');
  t.match(s.body.hub.enrollError, /127\.0\.0\.1:9/, 'the reason is shown');
  t.equal((await api(edge, '/health')).status, 200, 'the box serves');
});

t.test('a hub lesson is synced: signature checked, blobs fetched once, installed with origin hub, acknowledged upstream', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  hub.codes.set('OK-1', { status: 200 });
  const agua = await hub.addLesson('agua', { seed: 1 });
  const edge = await startBox(t, join(dir, 'box'), hub, { code: 'OK-1' });
  t.equal(statSync(join(dir, 'box', 'sync', 'credentials.json')).mode & 0o777, 0o600, 'credentials 0600');
  t.equal(statSync(join(dir, 'box', 'sync', 'hub-key.pem')).mode & 0o777, 0o600, 'hub key 0600');
  await until(() => edge.lessons.get('agua')?.status === 'ready', 20_000, 'agua installed');
  const list = await api(edge, '/api/lessons');
  const row = list.body.lessons.find((l: { id: string }) => l.id === 'agua');
  t.match(row, { id: 'agua', origin: 'hub', channel: 'primaria', version: 1 }, '/api/lessons says "origin":"hub"');
  t.ok(existsSync(join(dir, 'box', 'store', 'agua', 'master.m3u8')), 'the lesson folder is in the store');
  t.ok(existsSync(join(dir, 'box', 'origin', originPath.manifest('agua'))), 'the signed manifest is kept (the box can export and serve as a peer)');
  for (const f of agua.files) t.equal(blobRequests(hub, f.sha256), 1, `blob of ${f.path} fetched once`);
  await until(() => hub.seen.find((m) => m.topic === `yachay/${S}/sync/ack/agua`), 10_000, 'ack at the hub');
  t.same(JSON.parse(hub.seen.find((m) => m.topic === `yachay/${S}/sync/ack/agua`)!.payload).version, 1, 'ack with the version');
  await until(() => hub.seen.find((m) => m.topic === `yachay/${S}/sync/report`), 10_000, 'report at the hub');
  const report = JSON.parse(hub.seen.find((m) => m.topic === `yachay/${S}/sync/report`)!.payload);
  t.match(report, { installed: 1, failed: [] }, 'the sync report');
  t.ok(report.bytes >= agua.bytes, `report counts ${report.bytes} bytes`);
  const st = await api(edge, '/api/sync');
  t.match(st.body, { enrolled: true, school: S, window: 'always', hub: { connected: true }, lastReport: { installed: 1 } }, '/api/sync');

  // a play counts (the quota evicts what is least played)
  const play = await fetch(`${edge.http.url}/media/agua/master.m3u8`);
  t.equal(play.status, 200); await play.text();
  await until(() => edge.lessons.get('agua')?.plays === 1, 3000, 'play counted');
  t.pass('a master playlist served counts one play');

  // a second lesson shares the audio: those blobs are not fetched again
  const suelo = await hub.addLesson('suelo', { seed: 2 });
  const shared = suelo.files.filter((f) => agua.files.some((g) => g.sha256 === f.sha256));
  t.ok(shared.length >= 2, `${shared.length} blobs shared`);
  await until(() => edge.lessons.get('suelo')?.status === 'ready', 20_000, 'suelo installed');
  for (const f of shared) t.equal(blobRequests(hub, f.sha256), 1, `shared ${f.path} not fetched again`);

  // a new version replaces the old atomically, only changed blobs travel
  const agua2 = await hub.addLesson('agua', { seed: 3, version: 2 });
  await until(() => edge.lessons.get('agua')?.version === 2, 20_000, 'agua v2');
  const fresh = agua2.files.filter((f) => !agua.files.some((g) => g.sha256 === f.sha256) && !suelo.files.some((g) => g.sha256 === f.sha256));
  const wire = hub.requests.filter((r) => r.path.startsWith('/blobs/')).length;
  t.equal(wire, new Set([...agua.files, ...suelo.files, ...agua2.files].map((f) => f.sha256)).size, `every distinct blob fetched exactly once (${fresh.length} new in v2)`);
});

t.test('a tampered blob is rejected and fetched again; twice, the lesson fails naming the file; an unsigned or altered manifest installs nothing', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  hub.codes.set('OK-1', { status: 200 });
  const edge = await startBox(t, join(dir, 'box'), hub, { code: 'OK-1', window: closedWindow() });
  const engine = (): NonNullable<Edge['sync']['engine']> => edge.sync.engine!;
  await until(() => edge.sync.engine && edge.sync.bridge?.connected, 10_000, 'bridge up');
  const waitMirror = (id: string): Promise<unknown> => until(() => edge.sync.mirror.get(id), 5000, `${id} in the mirror`);

  const a = await hub.addLesson('uno', { seed: 1 });
  const seg = a.files.find((f) => f.path.endsWith('.m4s'))!;
  hub.tamperBlob.set(seg.sha256, 1);
  await waitMirror('uno');
  let r = await engine().runOnce();
  t.same(r.lessons, ['uno'], 'installed after fetching the altered blob again');
  t.equal(blobRequests(hub, seg.sha256), 2, 'that blob was requested twice');

  const b = await hub.addLesson('dos', { seed: 2 });
  const seg2 = b.files.find((f) => f.path.endsWith('.m4s') && !a.files.some((g) => g.sha256 === f.sha256))!;
  hub.tamperBlob.set(seg2.sha256, 2);
  await waitMirror('dos');
  r = await engine().runOnce();
  t.equal(r.failed.length, 1);
  t.equal(r.failed[0]!.code, 'YCH_ERR_PACKAGE_HASH');
  t.match(r.failed[0]!.message, seg2.path, `the file is named: ${r.failed[0]!.message}`);
  t.equal(edge.lessons.get('dos'), undefined, 'not installed');
  t.notOk(existsSync(join(dir, 'box', 'store', 'dos')), 'no folder');

  const before = hub.requests.length;
  await hub.addLesson('tres', { seed: 4 });
  hub.unsigned.add('tres');
  await hub.addLesson('cuatro', { seed: 5 });
  hub.tamperManifest.add('cuatro');
  await waitMirror('tres'); await waitMirror('cuatro');
  r = await engine().runOnce();
  const byId = Object.fromEntries(r.failed.map((f) => [f.id, f.code]));
  t.equal(byId.tres, 'YCH_ERR_PACKAGE_SIGNATURE', 'unsigned manifest refused');
  t.equal(byId.cuatro, 'YCH_ERR_PACKAGE_SIGNATURE', 'altered manifest refused');
  t.same(r.lessons, ['dos'], 'only dos (no longer tampered) installed in this pass');
  for (const id of ['tres', 'cuatro']) {
    t.equal(edge.lessons.get(id), undefined, `${id}: nothing installed`);
    t.notOk(existsSync(join(dir, 'box', 'origin', originPath.manifest(id))), `${id}: no manifest kept`);
  }
  const blobsAfter = hub.requests.slice(before).filter((x) => x.path.startsWith('/blobs/'));
  const dosBlobs = new Set(b.files.map((f) => f.sha256));
  t.ok(blobsAfter.every((x) => dosBlobs.has(x.path.split('/').pop()!)), 'no blob of an unverified lesson was fetched');
  const st = await api(edge, '/api/sync');
  t.ok(st.body.nextWindowAt > Date.now(), 'the window is closed: next opening in the future');
  t.match(st.body.lastReport.failed, [{ id: String }, { id: String }]);
});

t.test('disk quota: the least-played synced lesson is evicted, a teacher\'s lesson never', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  hub.codes.set('OK-1', { status: 200 });
  const ms: Manifest[] = [];
  for (const [i, id] of ['l1', 'l2', 'l3'].entries()) ms.push(await hub.addLesson(id, { seed: 10 + i, publish: false, seconds: 6 }));
  const all = new Map(ms.flatMap((m) => m.files.map((f) => [f.sha256, f.size] as const)));
  const bytesOf = (m: Manifest): number => [...new Set(m.files.map((f) => f.sha256))].reduce((n, s) => n + all.get(s)!, 0);
  // the audio is the same in all three: room for l1 + the larger of l2's and l3's own files,
  // so l1 + l2 fit, l3 fits only once l2 is gone, and evicting l1 too is never needed
  const ownBytes = (m: Manifest): number => bytesOf(m) - m.files.filter((f) => ms[0]!.files.some((g) => g.sha256 === f.sha256)).reduce((n, f) => n + f.size, 0);
  const quota = bytesOf(ms[0]!) + Math.max(ownBytes(ms[1]!), ownBytes(ms[2]!)) + 1000;
  t.ok(1000 < Math.min(ownBytes(ms[1]!), ownBytes(ms[2]!)), 'the slack is smaller than a lesson');
  const edge = await startBox(t, join(dir, 'box'), hub, { code: 'OK-1', window: closedWindow(), quotaBytes: quota });
  await until(() => edge.sync.bridge?.connected, 10_000, 'bridge up');
  // a teacher's own lesson on the box
  const own = edge.lessons.create({ id: 'mi-clase', title: 'Mi clase' });
  edge.lessons.markReady(own.id, { durationS: 60, path: own.id, renditions: [], report: null });
  for (const m of ms.slice(0, 2)) await hub.publish(`yachay/catalog/primaria/${m.id}`, JSON.stringify({ id: m.id, title: m.title, channel: m.channel, version: 1, bytes: m.bytes, durationS: 6, publishedAt: m.publishedAt, manifest: originPath.manifest(m.id) }), true);
  await until(() => edge.sync.mirror.get('l2'), 5000, 'l2 in the mirror');
  let r = await edge.sync.engine!.runOnce();
  t.same(r.lessons.sort(), ['l1', 'l2']);
  edge.lessons.countPlay('l1'); edge.lessons.countPlay('l1');
  const m3 = ms[2]!;
  await hub.publish(`yachay/catalog/primaria/l3`, JSON.stringify({ id: 'l3', title: m3.title, channel: 'primaria', version: 1, bytes: m3.bytes, durationS: 6, publishedAt: m3.publishedAt, manifest: originPath.manifest('l3') }), true);
  await until(() => edge.sync.mirror.get('l3'), 5000, 'l3 in the mirror');
  r = await edge.sync.engine!.runOnce();
  t.same(r.lessons, ['l3'], 'l3 installed');
  t.equal(edge.lessons.get('l2'), undefined, 'l2 (never played) evicted');
  t.notOk(existsSync(join(dir, 'box', 'store', 'l2')), 'its folder is gone');
  t.notOk(existsSync(join(dir, 'box', 'origin', originPath.manifest('l2'))), 'its manifest is gone');
  t.equal(edge.lessons.get('l1')?.status, 'ready', 'l1 (played) kept');
  t.equal(edge.lessons.get('mi-clase')?.origin, 'local', 'the teacher\'s lesson kept');
  const l2only = ms[1]!.files.filter((f) => !ms[0]!.files.some((g) => g.sha256 === f.sha256) && !m3.files.some((g) => g.sha256 === f.sha256));
  t.ok(l2only.every((f) => !existsSync(join(dir, 'box', 'origin', originPath.blob(f.sha256)))), 'blobs only l2 used were freed');
  t.ok(existsSync(join(dir, 'box', 'store', 'l1', 'master.m3u8')), 'l1 still plays');
});

t.test('hub unreachable: lessons stay, the catalog is served from the mirror, a teacher\'s request waits in the outbox; a peer box serves as origin', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'), { otherSchools: ['escuela-2'] });
  hub.codes.set('OK-1', { status: 200 }); hub.codes.set('OK-2', { status: 200, school: 'escuela-2' });
  await hub.addLesson('agua', { seed: 1 });
  let edge = await startBox(t, join(dir, 'box'), hub, { code: 'OK-1' });
  await until(() => edge.lessons.get('agua')?.status === 'ready', 20_000, 'agua installed');
  // a second box on the same LAN takes the bytes from the first
  const peer = await startBox(t, join(dir, 'peer'), hub, { code: 'OK-2', origin: edge.http.url + '/' });
  const probe = await fetch(`${edge.http.url}/manifests/agua.json`);
  t.equal(probe.status, 200, 'the first box serves its origin');
  await until(() => peer.lessons.get('agua')?.status === 'ready', 20_000, 'agua on the peer').catch((err: unknown) => { t.comment(JSON.stringify(peer.sync.status())); throw err; });
  t.equal(peer.lessons.get('agua')?.origin, 'peer', 'installed from the peer box');
  t.equal(hub.requests.filter((r) => r.path.startsWith('/blobs/')).length, (await import('node:fs')).readdirSync(join(dir, 'box', 'origin', 'blobs', 'sha256'), { recursive: true }).filter((x) => String(x).length > 60).length, 'the hub sent each blob once, to the first box only');
  await hub.addLesson('mas', { seed: 2 }).then(() => until(() => edge.sync.mirror.get('mas'), 5000, 'mas in the mirror'));
  await edge.app.stop('restart');
  await hub.close();
  edge = await startBox(t, join(dir, 'box'), undefined, { window: closedWindow() });
  t.equal((await api(edge, '/api/lessons/agua')).body.origin, 'hub', 'the synced lesson is still there');
  const cat = await api(edge, '/api/catalog/hub');
  t.equal(cat.status, 200);
  t.equal(cat.body.hub.connected, false, 'the hub is not reachable');
  const ids = Object.fromEntries(cat.body.lessons.map((l: { id: string; onBox: boolean }) => [l.id, l.onBox]));
  t.same(ids, { agua: true, mas: false }, 'the catalog as last seen, with what is on the box');
  await edge.users.add('tito', 'teacher-password-1', 'teacher');
  const login = await api(edge, '/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'tito', password: 'teacher-password-1' }) });
  t.equal(login.status, 200);
  t.equal((await api(edge, '/api/requests/mas', { method: 'POST' })).status, 401, 'a request needs a teacher');
  const req = await api(edge, '/api/requests/mas', { method: 'POST', headers: { authorization: `Bearer ${login.body.token}` } });
  t.equal(req.status, 202, 'Pedir / Request accepted while offline');
  t.equal((await api(edge, '/api/requests/nada', { method: 'POST', headers: { authorization: `Bearer ${login.body.token}` } })).status, 404, 'only what the hub offers');
  const st = await api(edge, '/api/sync');
  t.ok(st.body.outbox.rows >= 1, 'the request waits in the outbox');
  t.equal((await api(edge, '/api/catalog/hub')).body.lessons.find((l: { id: string }) => l.id === 'mas').requested, true);
  t.equal((await api(edge, '/api/sync/now', { method: 'POST' })).status, 401, 'sync now needs an admin');
});
