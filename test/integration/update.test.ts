import t from 'tap';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { yachay } from '../helpers/cli.js';
import { processesUnder, startHub } from '../helpers/hub.js';
import { RestartLoop, buildRelease, bundle, health, install, waitFor } from '../helpers/releases.js';
import { freePort, sleep } from '../../daemon/hub/ports.js';

// Issue 11 item 7 with real processes: a real hub (PostgreSQL, Mosquitto) publishes release B
// to a real box running release A under a restart loop standing in for systemd; the box fetches,
// checks, unpacks, switches, restarts into B and reports it. Then release C, whose /health never
// turns good, is installed the same way and rolled back to B by the guard within the deadline.
// a fresh release's first start (tsx compiling every file once) took up to 10 s here under load
const HEALTH_S = 20;

t.test('a box updates A → B, then rolls C (bad /health) back to B, and tells the hub both', async (t) => {
  const dir = t.testdir();
  const t0 = Date.now();
  const lap = (what: string): void => { t.comment(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`); };
  const hub = await startHub(join(dir, 'hub'), { YACHAY_OPTIMIZE_VERIFY: 'false' });
  t.teardown(async () => { await hub.stop(); });
  const builds = join(dir, 'builds');
  const root = join(dir, 'opt');
  install(root, buildRelease(builds, '0.1.0'), '0.1.0');
  buildRelease(builds, '0.2.0');
  buildRelease(builds, '0.3.0', { brokenHealth: true });
  const [bundleB, bundleC] = [bundle(builds, '0.2.0'), bundle(builds, '0.3.0')];

  lap('releases built, hub up');
  const enroll = await yachay(['hub', 'enroll', 'ie-update', '--name', 'I.E. Update', '--data-dir', hub.dir]);
  t.equal(enroll.code, 0, enroll.stderr);
  const code = enroll.stdout.trim().split('\n').pop()!;

  const data = join(dir, 'data');
  const [hp, mp, wp] = [await freePort(), await freePort(), await freePort()];
  const url = `http://127.0.0.1:${hp}`;
  const box = new RestartLoop(root, ['--data-dir', data, '--http-port', String(hp), '--mqtt-port', String(mp), '--mqtt-ws-port', String(wp),
    '--hub', hub.http, '--enroll', code, '--sync-window', 'always'], {
    // the default cap (384 kb/s) holds a 0.8 MB bundle for 17 s: measured once, not in every run
    YACHAY_LOG_LEVEL: 'info', YACHAY_UPDATE_HEALTH_SECONDS: String(HEALTH_S), YACHAY_SYNC_RATE_KBPS: '50000',
    YACHAY_OPTIMIZE_MODELS_VAD: 'false', YACHAY_OPTIMIZE_MODELS_FACE: 'false', YACHAY_OPTIMIZE_MODELS_RATE: 'false',
  });
  t.teardown(async () => {
    lap('teardown');
    if (process.env.UPDATE_TEST_LOG) (await import('node:fs')).writeFileSync(process.env.UPDATE_TEST_LOG, box.log());
    await box.stop();
    // a guard still polling (a failed run) must not outlive the test
    for (const pid of processesUnder(data)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    lap('box stopped');
  });
  box.start();
  await waitFor('release A to answer /health', async () => (await health(url))?.version === '0.1.0', 60_000, () => box.log());
  lap('A answers');
  t.equal(box.exits.length, 0, 'A runs');

  const pool = new pg.Pool({ connectionString: hub.file().database, max: 2 });
  t.teardown(() => pool.end());
  const reports = async (): Promise<Array<{ outcome: string; from: string; to: string; code?: string; reason?: string }>> =>
    (await pool.query<{ payload: { outcome: string; from: string; to: string } }>("SELECT payload FROM sync_reports WHERE school = 'ie-update' AND kind = 'update' ORDER BY id")).rows.map((r) => r.payload);

  // B: published at the hub, installed by the box
  const relB = await yachay(['hub', 'release', bundleB, '--data-dir', hub.dir]);
  t.equal(relB.code, 0, relB.stderr);
  t.equal(relB.stdout.trim(), '0.2.0', 'hub release prints the version');
  await waitFor('the box to restart into B', async () => {
    const h = await health(url);
    return h?.ok && h.version === '0.2.0' && !existsSync(join(data, 'update', 'pending.json')) && readlinkSync(join(root, 'current')) === join('releases', '0.2.0');
  }, 60_000, () => box.log());
  lap('B answers');
  t.equal(box.exits[0]?.code, 75, 'A exited 75 after switching (the supervisor restarts it)');
  t.equal(readlinkSync(join(root, 'current')), join('releases', '0.2.0'), 'current → releases/0.2.0');
  t.equal(readFileSync(join(root, 'releases', '0.2.0', 'VERSION'), 'utf8').trim(), '0.2.0');
  const updated = await waitFor('the hub to hear "updated"', async () => (await reports()).find((r) => r.outcome === 'updated'), 20_000, () => box.log());
  t.match(updated, { from: '0.1.0', to: '0.2.0' }, 'the hub knows the box runs B');
  t.ok((await reports()).some((r) => r.outcome === 'switching' && r.to === '0.2.0'), 'and heard the switch before it');
  const box1 = await pool.query<{ version: string }>("SELECT version FROM boxes WHERE school = 'ie-update'");
  t.equal(box1.rows[0]?.version, '0.2.0', 'fleet view: version 0.2.0');

  // C: installs and starts, but /health stays bad: the guard (B's own code) rolls it back
  lap('B reported');
  const exitsBefore = box.exits.length;
  const relC = await yachay(['hub', 'release', bundleC, '--data-dir', hub.dir]);
  t.equal(relC.code, 0, relC.stderr);
  const bad = await waitFor('C to run with a bad /health', async () => {
    const h = await health(url);
    return h && h.version === '0.3.0' ? h : undefined;
  }, 60_000, () => box.log());
  lap('C runs');
  t.equal(bad.status, 503, 'C answers /health 503');
  const cSince = box.exits[exitsBefore]?.at ?? Date.now();
  t.equal(box.exits[exitsBefore]?.code, 75, 'B exited 75 after switching to C');
  await waitFor('the rollback to B', async () => {
    const h = await health(url);
    return h?.ok && h.version === '0.2.0' && readlinkSync(join(root, 'current')) === join('releases', '0.2.0');
  }, (HEALTH_S + 45) * 1000, () => box.log() + readFileSync(join(data, 'update', 'guard.log'), 'utf8'));
  lap('back on B');
  const took = (Date.now() - cSince) / 1000;
  t.equal(box.exits[exitsBefore + 1]?.code, 75, 'C was stopped by the guard (SIGUSR2) and exited 75, so a supervisor restarts it');
  t.ok(took < HEALTH_S + 30, `back on B ${took.toFixed(1)} s after the switch to C (deadline ${HEALTH_S} s + restarts)`);
  const rolled = await waitFor('the hub to hear "rolled-back"', async () => (await reports()).find((r) => r.outcome === 'rolled-back'), 20_000, () => box.log());
  t.match(rolled, { from: '0.2.0', to: '0.3.0', reason: /no good \/health from 0\.3\.0/ }, 'the hub hears the rollback and why');
  t.match(readFileSync(join(data, 'update', 'guard.log'), 'utf8'), /rolling back/, 'the guard says what it did');
  t.same(JSON.parse(readFileSync(join(data, 'update', 'refused.json'), 'utf8')), ['0.3.0'], 'C is refused from now on');
  t.notOk(existsSync(join(data, 'update', 'pending.json')), 'no update pending');
  lap('rollback reported');
  // B sees C still offered (retained) and leaves it alone
  const exitsAfter = box.exits.length;
  await sleep(2000);
  t.equal(box.exits.length, exitsAfter, 'B does not install C again');
  t.equal(readlinkSync(join(root, 'current')), join('releases', '0.2.0'));
  t.same(readdirSync(join(root, 'releases')).sort(), ['0.1.0', '0.2.0'], 'on disk: the running release and the one before it; C removed');
});
