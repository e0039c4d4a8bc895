import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Edge } from '../../daemon/edge.js';
import { startFakeHub, until } from '../helpers/sync-hub.js';
import type { FakeHub } from '../helpers/sync-hub.js';
import { api, closedWindow, startBox } from '../helpers/sync-box.js';

// The disk fills while a lesson is on its way (a teacher's upload took the space the quota
// counted on): the lesson fails with a disk-full reason the report carries, nothing half
// installed is listed, what the box already had keeps playing, and once space is freed the next
// pass resumes from the partial blobs instead of fetching them again.
// The box's data dir is a small real tmpfs (mounting needs root; CI runs as root).

const root = process.getuid?.() === 0;

t.test('disk full mid-sync: the lesson fails as disk full, nothing half installed, resumed after space is freed', {
  skip: root ? false : 'mounting a small tmpfs for the box needs root (CI runs as root)',
}, async (t) => {
  const dir = t.testdir();
  const hub: FakeHub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  hub.codes.set('OK-1', { status: 200 });
  // outside tap's fixture folder: its cleanup would meet the mount before the umount
  const boxDir = mkdtempSync(join(tmpdir(), 'ych-diskfull-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', boxDir], { encoding: 'utf8' });
  t.equal(mount.status, 0, `tmpfs mounted: ${mount.stderr}`);
  t.teardown(() => { spawnSync('umount', ['-l', boxDir]); rmSync(boxDir, { recursive: true, force: true }); });

  await hub.addLesson('agua', { seed: 1 });
  // the quota leaves room on paper: only the disk itself runs out
  const edge: Edge = await startBox(t, boxDir, hub, { code: 'OK-1', window: closedWindow(), quotaBytes: 1 << 30 });
  await until(() => edge.sync.engine && edge.sync.bridge?.connected, 10_000, 'bridge up');
  await until(() => edge.sync.mirror.get('agua'), 5000, 'agua in the mirror');
  const first = await edge.sync.engine!.runOnce();
  t.match(first, { installed: 1, failed: [] }, 'agua installed while there is room');

  const big = await hub.addLesson('grande', { seed: 5, seconds: 40 });
  await until(() => edge.sync.mirror.get('grande'), 5000, 'grande in the mirror');
  t.ok(big.bytes > 400_000, `grande is ${big.bytes} bytes`);
  // leave room for about half of it
  const s = statfsSync(boxDir);
  const filler = join(boxDir, 'subida-de-docente.bin');
  writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - Math.floor(big.bytes / 2))));
  t.ok(statfsSync(boxDir).bavail * s.bsize < big.bytes, 'less room than the lesson needs');

  const full = await edge.sync.engine!.runOnce();
  t.equal(full.installed, 0, 'nothing installed');
  t.equal(full.failed.length, 1);
  t.match(full.failed[0], { id: 'grande', code: 'YCH_ERR_DISK_FULL', message: /disk full|lleno/i }, 'the failure says the disk is full');
  t.notOk(edge.lessons.get('grande')?.status === 'ready', 'grande is not listed as ready');
  const list = await api(edge, '/api/lessons');
  t.notOk(list.body.lessons.some((l: { id: string }) => l.id === 'grande'), '/api/lessons does not list grande');
  t.same(readdirSync(join(boxDir, 'store')).filter((n) => n.includes('.tmp')), [], 'no half-installed folder in the store');
  t.equal((await api(edge, '/health')).status, 200, 'the box still serves');
  const play = await fetch(`${edge.http.url}/media/agua/master.m3u8`);
  t.equal(play.status, 200, 'agua still plays');
  await play.text();
  const st = await api(edge, '/api/sync');
  t.match(st.body.lastReport.failed, [{ id: 'grande', code: 'YCH_ERR_DISK_FULL' }], '/api/sync shows the reason');

  // space comes back (the teacher's file deleted): the next pass finishes the lesson and fetches
  // again only what was not on disk
  const before = hub.requests.filter((r) => big.files.some((f) => r.path.endsWith(`/${f.sha256}`))).length;
  rmSync(filler);
  const again = await edge.sync.engine!.runOnce();
  t.match(again, { installed: 1, failed: [] }, 'grande installed once there is room');
  t.equal(edge.lessons.get('grande')?.status, 'ready');
  const after = hub.requests.filter((r) => big.files.some((f) => r.path.endsWith(`/${f.sha256}`))).length - before;
  t.ok(after < big.files.length, `the second pass asked for ${after} of ${big.files.length} blobs (complete ones kept)`);
  await until(() => hub.seen.some((m) => m.topic.endsWith('/sync/report') && JSON.parse(m.payload).failed?.some((f: { code: string }) => f.code === 'YCH_ERR_DISK_FULL')), 10_000, 'the disk-full report reached the hub');
  t.pass('the hub heard about the full disk');
});
