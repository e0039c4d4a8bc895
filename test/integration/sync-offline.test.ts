import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from '../../daemon/pkg/manifest.js';
import { originPath } from '../../daemon/pkg/origin.js';
import { startFakeHub, until } from '../helpers/sync-hub.js';
import { api, closedWindow, startBox } from '../helpers/sync-box.js';

// A whole box against a hub of real parts, for what happens when space runs out or the hub is
// gone: quota eviction, the catalog mirror, teachers' requests offline, a peer box as origin.

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
  t.equal(hub.requests.filter((r) => r.path.startsWith('/blobs/')).length, readdirSync(join(dir, 'box', 'origin', 'blobs', 'sha256'), { recursive: true }).filter((x) => String(x).length > 60).length, 'the hub sent each blob once, to the first box only');
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
  const login = await api(edge, '/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'tito', password: 'teacher-password-1', bearer: true }) });
  t.equal(login.status, 200);
  t.equal((await api(edge, '/api/requests/mas', { method: 'POST' })).status, 401, 'a request needs a teacher');
  const req = await api(edge, '/api/requests/mas', { method: 'POST', headers: { authorization: `Bearer ${login.body.token}` } });
  t.equal(req.status, 202, 'Pedir / Request accepted while offline');
  t.equal((await api(edge, '/api/requests/nada', { method: 'POST', headers: { authorization: `Bearer ${login.body.token}` } })).status, 404, 'only what the hub offers');
  const st = await api(edge, '/api/sync');
  t.ok(st.body.outbox.rows >= 1, 'the request waits in the outbox');
  t.equal((await api(edge, '/api/catalog/hub')).body.lessons.find((l: { id: string }) => l.id === 'mas').requested, true);
  t.equal((await api(edge, '/api/sync/now', { method: 'POST' })).status, 401, 'sync now needs an admin');
  const page = await (await fetch(`${edge.http.url}/js/hub.js`)).text();
  t.match(page, /hub\.request/, 'the teacher page has the request button');
  t.match(page, /\/api\/requests\//);
});
