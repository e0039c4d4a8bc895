import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { yachay } from '../helpers/cli.js';
import { startHub } from '../helpers/hub.js';
import type { RunningHub } from '../helpers/hub.js';
import { sleep } from '../../daemon/hub/ports.js';
import { enrollSchool } from '../../daemon/hub/enroll.js';
import { verifyManifest } from '../../daemon/pkg/sign.js';
import { fetchBlob, fetchBytes } from '../../daemon/pkg/fetch.js';
import { sha256File } from '../../daemon/pkg/manifest.js';

// One hub for the file; the quality check is off to keep one encode of an 8 s clip short
// (the optimizer itself is the box's, tested in optimize.test.ts).
let hub: RunningHub;
const dir = t.testdir();
const clip = join(dir, 'clase.mp4');

t.before(async () => {
  const [h, s] = await Promise.all([
    startHub(join(dir, 'hub'), { YACHAY_OPTIMIZE_VERIFY: 'false' }),
    yachay(['sample', '--seconds', '8', '--out', clip]),
  ]);
  hub = h;
  if (s.code !== 0) throw new Error(`sample failed: ${s.stderr}`);
});
t.teardown(async () => { await hub?.stop(); });

t.test('hub add --wait encodes, signs and publishes a lesson that verifies with daemon/pkg, and announces it retained', async (t) => {
  const db = new pg.Pool({ connectionString: hub.file().database, max: 1 });
  t.teardown(() => db.end());
  const { code } = await enrollSchool(db, 'ie-puno', 'I.E. Puno', ['ciencia']);
  const grant = await (await fetch(`${hub.http}/api/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) })).json() as
    { mqtt: { username: string; password: string }; hubKey: string; origin: string };

  const add = await yachay(['hub', 'add', clip, '--title', 'Ciencia: el ciclo del agua', '--channel', 'ciencia', '--data-dir', hub.dir, '--wait']);
  t.equal(add.code, 0, add.stderr.slice(-1500));
  const id = add.stdout.trim().split('\n').pop();
  t.equal(id, 'ciencia-el-ciclo-del-agua', 'the lesson id on stdout\'s last line');

  const { body: bytes } = await fetchBytes(`${grant.origin}manifests/${id}.json`);
  const { body: sig } = await fetchBytes(`${grant.origin}manifests/${id}.json.sig`);
  const m = verifyManifest(bytes, sig.toString('utf8'), grant.hubKey, 'hub origin');
  t.match(m, { id, title: 'Ciencia: el ciclo del agua', channel: 'ciencia', version: 1 });
  t.ok(m.durationS >= 8, `duration ${m.durationS} s (the sample adds its title card)`);
  t.ok(m.files.some((f) => f.path === 'master.m3u8'), 'master playlist listed');
  let total = 0;
  for (const f of m.files) {
    const dest = join(dir, 'fetched', f.sha256);
    const r = await fetchBlob({ url: `${grant.origin}blobs/sha256/${f.sha256.slice(0, 2)}/${f.sha256}`, dest, sha256: f.sha256, size: f.size });
    total += r.fetched;
    t.equal(await sha256File(dest), f.sha256);
  }
  t.equal(total, m.bytes, `${m.files.length} blobs, ${m.bytes} bytes, each sha256 checked`);

  const range = await fetch(`${grant.origin}blobs/sha256/${m.files[0]!.sha256.slice(0, 2)}/${m.files[0]!.sha256}`, { headers: { range: 'bytes=0-9' } });
  t.equal(range.status, 206, 'Range answered with 206');
  t.equal(range.headers.get('content-length'), '10');
  t.ok(range.headers.get('etag'), 'ETag');

  const row = await db.query('SELECT version, bytes, channel FROM lessons WHERE id = $1', [id]);
  t.match(row.rows[0], { version: 1, bytes: String(m.bytes), channel: 'ciencia' });

  // the box of a school on that channel gets the retained catalog entry, even connecting later
  const box = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { username: grant.mqtt.username, password: grant.mqtt.password, reconnectPeriod: 0 });
  const got: { topic: string; payload: Record<string, unknown> }[] = [];
  box.on('message', (topic, p) => got.push({ topic, payload: JSON.parse(p.toString()) as Record<string, unknown> }));
  await box.subscribeAsync(['yachay/catalog/ciencia/#', 'yachay/ie-puno/assign/#'], { qos: 1 });
  for (let i = 0; i < 30 && !got.length; i++) await sleep(100);
  t.match(got[0], { topic: `yachay/catalog/ciencia/${id}`, payload: { id, version: 1, bytes: m.bytes, channel: 'ciencia', manifest: `manifests/${id}.json` } });

  const as = await yachay(['hub', 'assign', 'ie-puno', id!, '--data-dir', hub.dir]);
  t.equal(as.code, 0, as.stderr);
  for (let i = 0; i < 30 && got.length < 2; i++) await sleep(100);
  t.match(got[1], { topic: `yachay/ie-puno/assign/${id}`, payload: { id, version: 1 } }, 'hub assign publishes the school\'s assign topic');

  // the box acknowledges: the hub records it against the assignment
  await box.publishAsync(`yachay/ie-puno/sync/ack/${id}`, JSON.stringify({ version: 1, at: Date.now() }), { qos: 1 });
  let acked: number | null = null;
  for (let i = 0; i < 30 && acked === null; i++) {
    await sleep(100);
    acked = (await db.query('SELECT acked_version FROM assignments WHERE school = $1 AND lesson_id = $2', ['ie-puno', id])).rows[0]?.acked_version ?? null;
  }
  t.equal(acked, 1, 'sync ack recorded');
  await box.endAsync();
});

t.test('hub add of a file that is not media fails with the error, non-zero', async (t) => {
  const bad = join(dir, 'no-es-video.mp4');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(bad, 'esto no es un video\n'.repeat(50));
  const add = await yachay(['hub', 'add', bad, '--title', 'Mala', '--data-dir', hub.dir, '--wait']);
  t.equal(add.code, 65, 'the worker\'s error code and exit status (YCH_ERR_INPUT_NOT_MEDIA)');
  t.match(add.stderr, /YCH_ERR_INPUT_NOT_MEDIA: encoding mala failed: .*not a video or audio file/i, add.stderr.slice(-600));
  t.ok(readFileSync(join(hub.dir, 'hub.json')), 'the hub keeps running');
  const health = await fetch(`${hub.http}/health`);
  t.equal(health.status, 200);
});
