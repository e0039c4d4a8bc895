import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, openSync, readSync, readdirSync, readlinkSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { yachay } from '../helpers/cli.js';
import { processesUnder, startHub } from '../helpers/hub.js';
import { RestartLoop, buildRelease, bundle, health, install, waitFor } from '../helpers/releases.js';
import { freePort, sleep } from '../../daemon/hub/ports.js';
import { RELEASE_FORMAT, signRelease } from '../../daemon/update/manifest.js';

// Issue 11 item 7, bad input: a bundle with one byte changed on the way (the origin's copy) and
// a release signed by another key. Each is refused and named, nothing is unpacked, the box keeps
// running release A and the hub hears why.
t.test('a tampered bundle and a forged release are refused, nothing unpacked', async (t) => {
  const dir = t.testdir();
  const hub = await startHub(join(dir, 'hub'), { YACHAY_OPTIMIZE_VERIFY: 'false' });
  t.teardown(async () => { await hub.stop(); });
  const builds = join(dir, 'builds');
  const root = join(dir, 'opt');
  install(root, buildRelease(builds, '0.1.0'), '0.1.0');
  buildRelease(builds, '0.2.0');
  const bundleB = bundle(builds, '0.2.0');

  const enroll = await yachay(['hub', 'enroll', 'ie-tamper', '--name', 'I.E. Tamper', '--data-dir', hub.dir]);
  t.equal(enroll.code, 0, enroll.stderr);
  const code = enroll.stdout.trim().split('\n').pop()!;

  // published, then one byte of the hub's stored copy flipped (a bad disk, a proxy, an attacker)
  const rel = await yachay(['hub', 'release', bundleB, '--data-dir', hub.dir]);
  t.equal(rel.code, 0, rel.stderr);
  const sha = /sha256 ([0-9a-f]{12})/.exec(rel.stderr)?.[1];
  const blobDir = join(hub.dir, 'origin', 'blobs', 'sha256', sha!.slice(0, 2));
  const blob = join(blobDir, readdirSync(blobDir).find((n) => n.startsWith(sha!))!);
  const fd = openSync(blob, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, 1000);
  writeSync(fd, Buffer.from([b[0]! ^ 0xff]), 0, 1, 1000);
  closeSync(fd);

  const data = join(dir, 'data');
  const [hp, mp, wp] = [await freePort(), await freePort(), await freePort()];
  const url = `http://127.0.0.1:${hp}`;
  const box = new RestartLoop(root, ['--data-dir', data, '--http-port', String(hp), '--mqtt-port', String(mp), '--mqtt-ws-port', String(wp),
    '--hub', hub.http, '--enroll', code, '--sync-window', 'always'], {
    YACHAY_LOG_LEVEL: 'info', YACHAY_SYNC_RATE_KBPS: '50000',
    YACHAY_OPTIMIZE_MODELS_VAD: 'false', YACHAY_OPTIMIZE_MODELS_FACE: 'false', YACHAY_OPTIMIZE_MODELS_RATE: 'false',
  });
  t.teardown(async () => {
    await box.stop();
    for (const pid of processesUnder(data)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  });
  box.start();
  await waitFor('release A to answer /health', async () => (await health(url))?.version === '0.1.0', 60_000, () => box.log());

  const pool = new pg.Pool({ connectionString: hub.file().database, max: 2 });
  t.teardown(() => pool.end());
  const refused = async (): Promise<Array<{ outcome: string; to: string; code: string; reason: string }>> =>
    (await pool.query<{ payload: { outcome: string; to: string; code: string; reason: string } }>("SELECT payload FROM sync_reports WHERE school = 'ie-tamper' AND kind = 'update' ORDER BY id")).rows.map((r) => r.payload).filter((p) => p.outcome === 'refused');

  const tampered = await waitFor('the hub to hear the tampered bundle refused', async () => (await refused()).find((r) => r.to === '0.2.0'), 30_000, () => box.log());
  t.equal(tampered.code, 'YCH_ERR_PACKAGE_HASH', 'refused for its hash');
  t.match(tampered.reason, new RegExp(`blob ${sha}`), 'the report names the blob');
  t.match(box.log(), /release refused: nothing switched/, 'the box log says it');

  // a release signed by a key that is not the hub's, sent on the hub's own broker
  const { privateKey } = generateKeyPairSync('ed25519');
  const forged = signRelease({ format: RELEASE_FORMAT, version: '0.9.0', arch: process.arch, sha256: 'a'.repeat(64), size: 1000, name: 'yachay-0.9.0-linux-x64.tar.gz', publishedAt: new Date().toISOString() }, privateKey);
  const f = hub.file();
  const c = await mqtt.connectAsync(f.broker.url, { username: f.broker.username, password: f.broker.password, clientId: 'forger', reconnectPeriod: 0 });
  await c.publishAsync(`yachay/release/${process.arch}`, JSON.stringify(forged), { qos: 1, retain: true });
  await c.endAsync();
  const sig = await waitFor('the hub to hear the forged release refused', async () => (await refused()).find((r) => r.code === 'YCH_ERR_UPDATE_SIGNATURE'), 30_000, () => box.log());
  t.match(sig.reason, /signature does not match/, 'named as a bad signature');
  t.match(box.log(), /release refused: nothing installed/);

  await sleep(500);
  t.same(readdirSync(join(root, 'releases')), ['0.1.0'], 'nothing unpacked: no 0.2.0, no 0.9.0, no temp folder');
  t.equal(readlinkSync(join(root, 'current')), join('releases', '0.1.0'), 'current untouched');
  t.notOk(existsSync(join(data, 'update', 'pending.json')), 'no update pending');
  t.equal(box.exits.length, 0, 'the box never restarted');
  t.equal((await health(url))?.version, '0.1.0', 'A still serves');
});
