import t from 'tap';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Edge } from '../../daemon/edge.js';
import { isYachayError } from '../../daemon/errors.js';
import { originPath } from '../../daemon/pkg/origin.js';
import { startFakeHub, until } from '../helpers/sync-hub.js';
import type { FakeHub } from '../helpers/sync-hub.js';
import { S, api, closedWindow, startBox } from '../helpers/sync-box.js';

// A whole box (buildEdge: SQLite, Aedes, worker, HTTP, sync) against a hub of real parts:
// Mosquitto with the contract's ACL and an origin folder of signed packages made by daemon/pkg.

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

  // the link drops three times in the middle of the largest blob: resumed with Range each time
  const c = await hub.addLesson('cinco', { seed: 6 });
  const big = c.files.filter((f) => !a.files.some((g) => g.sha256 === f.sha256)).sort((x, y) => y.size - x.size)[0]!;
  hub.cut.set(big.sha256, { after: Math.floor(big.size / 4), times: 3 });
  await waitMirror('cinco');
  r = await engine().runOnce();
  t.ok(r.lessons.includes('cinco'), 'installed despite 3 drops');
  const tries = hub.requests.filter((x) => x.path.endsWith(big.sha256));
  t.equal(tries.length, 4, 'the blob took 4 requests');
  const q = Math.floor(big.size / 4);
  t.same(tries.map((x) => x.range ?? null), [null, `bytes=${q}-`, `bytes=${2 * q}-`, `bytes=${3 * q}-`], 'each resume starts where the last drop left off: no byte fetched twice');

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
  t.same(r.lessons, [], 'nothing installed in this pass');
  for (const id of ['tres', 'cuatro']) {
    t.equal(edge.lessons.get(id), undefined, `${id}: nothing installed`);
    t.notOk(existsSync(join(dir, 'box', 'origin', originPath.manifest(id))), `${id}: no manifest kept`);
  }
  t.equal(hub.requests.slice(before).filter((x) => x.path.startsWith('/blobs/')).length, 0, 'no blob of an unverified lesson was fetched');
  const st = await api(edge, '/api/sync');
  t.ok(st.body.nextWindowAt > Date.now(), 'the window is closed: next opening in the future');
  t.match(st.body.lastReport.failed, [{ id: String }, { id: String }]);
});

