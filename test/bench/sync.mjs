// bench:sync (issue 9) — one run over the same satellite-like link (test/helpers/netns.ts):
//  1. one lesson to a box with Yachay's fetcher (daemon/pkg fetchBlob + TokenBucket), rsync
//     (daemon on the hub side) and a `wget -c` retry loop against nginx, with 0 and N link drops:
//     bytes on the wire ÷ payload, wall time ÷ (payload ÷ link rate);
//  2. the lesson re-encoded at the hub with one shot changed: bytes fetched again, Yachay vs rsync;
//  3. fan-out: ≥1,000 simulated boxes (MQTT.js over worker processes) get a retained catalog
//     entry from Mosquitto; time until all have acknowledged, Mosquitto's RSS.
// Run as root: `npm run bench:sync` (test/bench/sync.sh). Options: --seconds N (sample length),
// --boxes N, --workers N, --drops N, --drop-s N, --lessons DIR (reuse made lessons), --no-fanout.
import { execFileSync, fork, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { SATELLITE, exited, openSatLink, sleep } from '../helpers/netns.ts';
import { startNginx, startRsyncd } from '../helpers/origin-servers.ts';
import { buildManifest } from '../../daemon/pkg/manifest.ts';
import { loadOrCreateHubKey } from '../../daemon/pkg/sign.ts';
import { originPath, publishToOrigin } from '../../daemon/pkg/origin.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin/yachay.mjs');
const CHILD = join(ROOT, 'test/helpers/fetch-child.ts');
const WORKER = join(ROOT, 'test/bench/sync-fanout-worker.mjs');

const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : dflt; };
const SECONDS = Number(opt('seconds', 60)); // 60 s keeps the whole bench near 15 min on 2 shared cores
const BOXES = Number(opt('boxes', 1000));
const WORKERS = Number(opt('workers', 4));
const DROPS = Number(opt('drops', 5));
const DROP_S = Number(opt('drop-s', 6));
const STALL_S = 5; // every tool gives a dead connection up after this long (rsync --timeout, wget -T, idleMs)
const ID = 'bench-leccion';
// 'yachay ×4': four blobs in flight under the same bucket, against a round trip per request
const TOOLS = opt('tools', 'yachay,yachay ×4,rsync,wget').split(',');
const CHANNEL = 'primaria';

const work = mkdtempSync(join(tmpdir(), 'yachay-bench-sync-'));
const say = (s) => process.stderr.write(`${s}\n`);
const mb = (n) => (n / 1e6).toFixed(3);

// ── lessons ─────────────────────────────────────────────────────────────────────────────────
function run(cmd, args, o = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...o });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}… exited ${r.status}: ${(r.stderr || '').slice(-800)}`);
  return r.stdout;
}

/**
 * Two sources identical but for one shot (a box drawn over [40%, 52%] of the lecture), both coded
 * losslessly so every other frame decodes to the same pixels: what a teacher's corrected slide is.
 */
function makeSources(dir) {
  const sample = join(dir, 'sample.mp4');
  say(`· sample lecture (${SECONDS} s)…`);
  run(process.execPath, [BIN, 'sample', '--seconds', String(SECONDS), '--out', sample]);
  const a = (SECONDS * 0.4).toFixed(1); const b = (SECONDS * 0.52).toFixed(1);
  const enc = (out, vf) => run('ffmpeg', ['-v', 'error', '-y', '-i', sample, ...(vf ? ['-vf', vf] : []), '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-c:a', 'copy', out]);
  enc(join(dir, 'v1.mp4'));
  enc(join(dir, 'v2.mp4'), `drawbox=x=iw*0.1:y=ih*0.1:w=iw*0.3:h=ih*0.2:color=red@1:t=fill:enable='between(t,${a},${b})'`);
  return { v1: join(dir, 'v1.mp4'), v2: join(dir, 'v2.mp4'), changed: `${a}–${b} s` };
}

function optimize(src, out) {
  say(`· yachay optimize ${src}…`);
  const t0 = Date.now();
  run(process.execPath, [BIN, 'optimize', src, '--out', out, '--no-verify', '--preset', 'veryfast', '--quiet', '--data-dir', join(work, 'data')]);
  say(`  ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

/** The published lesson without download/ (the box remuxes it): what every tool carries. */
function stage(lessonDir, to) {
  rmSync(to, { recursive: true, force: true });
  // the optimizer's own mtimes: rsync's quick check skips a same-size file with the same mtime,
  // and two copies made in the same second would hide a changed master.m3u8 from it
  cpSync(lessonDir, to, { recursive: true, preserveTimestamps: true, filter: (p) => !p.startsWith(join(lessonDir, 'download')) });
  return to;
}

async function lessons() {
  const dir = opt('lessons', join(work, 'lessons'));
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'out-v2', 'master.m3u8'))) {
    const s = makeSources(dir);
    optimize(s.v1, join(dir, 'out-v1'));
    optimize(s.v2, join(dir, 'out-v2'));
    writeFileSync(join(dir, 'changed.txt'), s.changed);
  }
  const changed = existsSync(join(dir, 'changed.txt')) ? readFileSync(join(dir, 'changed.txt'), 'utf8').trim() : '?';
  const v = [];
  for (const n of [1, 2]) {
    const st = stage(join(dir, `out-v${n}`), join(work, `stage-v${n}`));
    const m = await buildManifest(st, { id: ID, title: 'Lección de prueba / bench lesson', channel: CHANNEL, version: n, durationS: SECONDS, renditions: [], misses: [] });
    v.push({ dir: st, manifest: m });
  }
  return { v1: v[0], v2: v[1], changed };
}

// ── the hub side: an origin (nginx) and the same files for rsync/wget ──────────────────────
async function publish(hubRoot, lesson, key) {
  await publishToOrigin(join(hubRoot, 'origin'), lesson.dir, lesson.manifest, key.privateKey);
  const tree = join(hubRoot, 'tree', ID);
  rmSync(tree, { recursive: true, force: true });
  for (const f of lesson.manifest.files) {
    mkdirSync(dirname(join(tree, f.path)), { recursive: true });
    linkSync(join(lesson.dir, f.path), join(tree, f.path));
  }
}

// ── one transfer ────────────────────────────────────────────────────────────────────────────
function sha256(path) { return createHash('sha256').update(readFileSync(path)).digest('hex'); }

function checkTree(dir, manifest) {
  return manifest.files.every((f) => existsSync(join(dir, f.path)) && sha256(join(dir, f.path)) === f.sha256);
}

function checkBlobs(dir, manifest) {
  return manifest.files.every((f) => existsSync(join(dir, originPath.blob(f.sha256))));
}

/**
 * Runs one tool in the box's namespace, dropping the link `drops` times at even shares of the
 * payload (counted on the box's interface), and measures wall time and the interfaces' bytes.
 */
async function transfer(link, name, argvBox, payload, drops) {
  const c0 = await link.counters(); const k0 = await link.carried();
  const t0 = Date.now();
  const child = link.spawnIn('box', argvBox[0], argvBox.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = ''; let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err = (err + d).slice(-20000); });
  const done = exited(child);
  let finished = false; done.then(() => { finished = true; });
  let dropped = 0;
  while (!finished && dropped < drops) {
    const c = await link.counters();
    if (c.boxRx - c0.boxRx >= ((dropped + 1) * payload) / (drops + 1)) {
      dropped++;
      await link.drop(DROP_S * 1000);
    } else {
      await Promise.race([sleep(100), done]);
    }
  }
  const code = await Promise.race([done, sleep(20 * 60_000).then(() => 'timeout')]);
  const wall = (Date.now() - t0) / 1000;
  const c1 = await link.counters(); const k1 = await link.carried();
  // WAN bytes: what the link carried down (the TUN link counts it; under netem, what the hub sent)
  const wan = k0 && k1 ? k1.hubToBox - k0.hubToBox : c1.hubTx - c0.hubTx;
  const r = { name, drops: dropped, code, wall, wan, sent: c1.hubTx - c0.hubTx, got: c1.boxRx - c0.boxRx, up: c1.boxTx - c0.boxTx, out, err };
  say(`  ${name}, ${dropped} drops: ${wall.toFixed(1)} s, WAN ${mb(r.wan)} MB, hub sent ${mb(r.sent)} MB, box got ${mb(r.got)} MB, box sent ${mb(r.up)} MB (payload ${mb(payload)} MB)${code === 0 ? '' : ` — exit ${code}: ${err.slice(0, 3000)}`}`);
  return r;
}

function yachayArgv(url, box, publicPem, rateKbps, concurrency = 1) {
  const job = { origin: url, root: box, lesson: { id: ID, publicPem }, rateKbps, idleMs: STALL_S * 1000, retryMs: 1000, concurrency };
  return [process.execPath, '--import', 'tsx', CHILD, JSON.stringify(job)];
}

function rsyncArgv(url, box) {
  mkdirSync(box, { recursive: true });
  // the usual unattended rsync: --partial keeps a cut file as the basis of the next attempt
  return ['bash', '-c', `until rsync -a --partial --timeout=${STALL_S} --contimeout=${STALL_S} '${url}${ID}/' '${box}/'; do sleep 1; done`];
}

function wgetArgv(url, box, manifest) {
  // Kolibri's way: each file by HTTP, `-c` resumes with Range; a loop retries a dropped link
  const lines = ['set -u'];
  for (const f of manifest.files) {
    const d = join(box, dirname(f.path));
    lines.push(`mkdir -p '${d}'; until wget -c -q -T ${STALL_S} -t 1 -P '${d}' '${url}tree/${ID}/${f.path}'; do sleep 1; done`);
  }
  const script = join(work, `wget-${randomBytes(3).toString('hex')}.sh`);
  writeFileSync(script, lines.join('\n') + '\n');
  return ['bash', script];
}

// ── fan-out ─────────────────────────────────────────────────────────────────────────────────
function rssOf(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function fanout() {
  const dir = join(work, 'mosquitto'); mkdirSync(dir, { recursive: true });
  const port = 20000 + Math.floor(Math.random() * 30000);
  const boxes = Array.from({ length: BOXES }, (_, i) => ({ school: `s${String(i + 1).padStart(5, '0')}`, password: randomBytes(12).toString('hex') }));
  const hubPass = randomBytes(12).toString('hex');
  writeFileSync(join(dir, 'passwd'), [`hub:${hubPass}`, ...boxes.map((b) => `box-${b.school}:${b.password}`)].join('\n') + '\n');
  run('mosquitto_passwd', ['-U', join(dir, 'passwd')]);
  const acl = ['user hub', 'topic readwrite #', ''];
  for (const b of boxes) acl.push(`user box-${b.school}`, `topic read yachay/catalog/${CHANNEL}/#`, `topic write yachay/${b.school}/sync/#`, '');
  writeFileSync(join(dir, 'acl'), acl.join('\n'));
  writeFileSync(join(dir, 'mosquitto.conf'), [
    // as root Mosquitto would switch to its own user, who cannot read this private temp folder
    'user root', 'per_listener_settings false', 'allow_anonymous false', `password_file ${join(dir, 'passwd')}`, `acl_file ${join(dir, 'acl')}`,
    'persistence true', `persistence_location ${dir}/`, 'max_queued_messages 10000', 'log_dest stderr', 'log_type error',
    `listener ${port} 127.0.0.1`, 'max_connections -1', '',
  ].join('\n'));
  const broker = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let berr = ''; broker.stderr.on('data', (d) => { berr += d; });
  await sleep(500);
  if (broker.exitCode !== null) throw new Error(`mosquitto: ${berr}`);
  const url = `mqtt://127.0.0.1:${port}`;
  const rss0 = rssOf(broker.pid);
  const t0 = Date.now();
  const per = Math.ceil(BOXES / WORKERS);
  const workers = [];
  for (let w = 0; w < WORKERS; w++) {
    const slice = boxes.slice(w * per, (w + 1) * per);
    const child = fork(WORKER, [JSON.stringify({ url, boxes: slice, channel: CHANNEL })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    workers.push({ child, ready: new Promise((r) => child.once('message', r)) });
  }
  await Promise.all(workers.map((w) => w.ready));
  const connectS = (Date.now() - t0) / 1000;
  const rss1 = rssOf(broker.pid);
  const hub = await mqtt.connectAsync(url, { username: 'hub', password: hubPass, clientId: 'hub-bench' });
  const acked = new Set();
  let allAcked;
  const all = new Promise((r) => { allAcked = r; });
  hub.on('message', (topic) => { acked.add(topic.split('/')[1]); if (acked.size === BOXES) allAcked(Date.now()); });
  await hub.subscribeAsync('yachay/+/sync/ack/#', { qos: 1 });
  const entry = { id: ID, title: 'Lección de prueba', channel: CHANNEL, version: 1, bytes: 1, durationS: SECONDS, publishedAt: new Date().toISOString(), manifest: originPath.manifest(ID) };
  const p0 = Date.now();
  await hub.publishAsync(`yachay/catalog/${CHANNEL}/${ID}`, JSON.stringify(entry), { qos: 1, retain: true });
  const tAll = await Promise.race([all, sleep(60_000).then(() => NaN)]);
  const notifiedS = (tAll - p0) / 1000;
  const rss2 = rssOf(broker.pid);
  for (const w of workers) w.child.send('stop');
  await Promise.all(workers.map((w) => exited(w.child)));
  await hub.endAsync();
  broker.kill('SIGTERM'); await exited(broker);
  return { boxes: BOXES, workers: WORKERS, connectS, notifiedS, acked: acked.size, rssIdle: rss0, rssConnected: rss1, rssAfter: rss2 };
}

// ── main ────────────────────────────────────────────────────────────────────────────────────
const started = Date.now();
const L = await lessons();
const payload = L.v1.manifest.bytes;
const link = await openSatLink({ ...SATELLITE, congestion: 'bbr' });
const cleanup = () => { link.close(); rmSync(work, { recursive: true, force: true }); };
process.on('exit', cleanup);
say(`· ${link.describe}`);
const hubRoot = join(work, 'hub');
const key = await loadOrCreateHubKey(join(work, 'hub-key'));
await publish(hubRoot, L.v1, key);
// one nginx root holds both the origin layout and the plain tree: the same files, two ways
cpSync(join(hubRoot, 'origin'), join(hubRoot, 'www'), { recursive: true });
const www = join(hubRoot, 'www');
const syncWww = () => { rmSync(www, { recursive: true, force: true }); cpSync(join(hubRoot, 'origin'), www, { recursive: true }); cpSync(join(hubRoot, 'tree'), join(www, 'tree'), { recursive: true }); };
syncWww();
const nginx = await startNginx(link, www, join(work, 'nginx'));
const rsyncd = await startRsyncd(link, join(hubRoot, 'tree'), join(work, 'rsyncd'));
const rate = link.shape.rateKbit;
const ideal = payload / ((rate * 1000) / 8);

const rows = [];
const boxes = {};
for (const drops of [...new Set([0, DROPS])]) {
  for (const tool of TOOLS) {
    const box = join(work, `box-${tool}-${drops}`);
    boxes[`${tool}-${drops}`] = box;
    const a = tool === 'yachay' ? yachayArgv(nginx.url, box, key.publicPem, rate)
      : tool === 'yachay ×4' ? yachayArgv(nginx.url, box, key.publicPem, rate, 4)
      : tool === 'rsync' ? rsyncArgv(rsyncd.url, box) : wgetArgv(nginx.url, box, L.v1.manifest);
    const r = await transfer(link, tool, a, payload, drops);
    r.ok = r.code === 0 && (tool.startsWith('yachay') ? checkBlobs(box, L.v1.manifest) : checkTree(box, L.v1.manifest));
    rows.push(r);
  }
}

// re-encoded at the hub: v2 replaces v1 at the origin and in the tree
await publish(hubRoot, L.v2, key);
syncWww();
const v1 = new Set(L.v1.manifest.files.map((f) => f.sha256));
const newFiles = L.v2.manifest.files.filter((f) => !v1.has(f.sha256));
const newBytes = newFiles.reduce((n, f) => n + f.size, 0);
say(`· v2: ${newFiles.length} of ${L.v2.manifest.files.length} files changed (${mb(newBytes)} of ${mb(L.v2.manifest.bytes)} MB)`);
const again = [];
if (boxes['yachay-0']) {
  const y = await transfer(link, 'yachay v2', yachayArgv(nginx.url, boxes['yachay-0'], key.publicPem, rate, Number(opt('v2-concurrency', 1))), newBytes, 0);
  y.ok = y.code === 0 && checkBlobs(boxes['yachay-0'], L.v2.manifest);
  again.push(y);
}
if (boxes['rsync-0']) {
  const r = await transfer(link, 'rsync v2', rsyncArgv(rsyncd.url, boxes['rsync-0']), newBytes, 0);
  r.ok = r.code === 0 && checkTree(boxes['rsync-0'], L.v2.manifest);
  again.push(r);
}
nginx.stop(); rsyncd.stop();

const fan = argv.includes('--no-fanout') ? undefined : await fanout();

// ── table ───────────────────────────────────────────────────────────────────────────────────
const cpu = (cpus()[0]?.model ?? '?').replace(/\s+/g, ' ');
const lines = [];
const p = (s) => lines.push(s);
p('');
p(`bench:sync — ${new Date().toISOString().slice(0, 16)}Z, ${cpus().length} × ${cpu}, Linux ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}`);
p(`link: ${link.describe}; TCP ${link.shape.congestion ?? 'default'}; a drop = ${DROP_S} s of total loss; every tool gives up a silent connection after ${STALL_S} s and retries`);
p(`lesson: ${SECONDS} s sample lecture, optimized (veryfast), ${L.v1.manifest.files.length} files, payload ${mb(payload)} MB; ideal time at ${rate} kbit/s = ${ideal.toFixed(1)} s`);
p('');
p('WAN = bytes the link carried hub→box (IP packets, delivered or lost on the way); hub sent also counts what the modem buffer refused or a dropped link swallowed; up = box→hub (requests, ACKs)');
p('| tool | drops | ok | wall s | wall ÷ ideal | same, outage excluded | link use | WAN ÷ payload | hub sent ÷ payload | box got ÷ payload | up ÷ payload |');
p('|---|---:|:-:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const busy = r.wall - r.drops * DROP_S;
  p(`| ${r.name} | ${r.drops} | ${r.ok ? 'yes' : 'NO'} | ${r.wall.toFixed(1)} | ${(r.wall / ideal).toFixed(2)} | ${(busy / ideal).toFixed(2)} | ${((100 * ideal) / busy).toFixed(0)}% | ${(r.wan / payload).toFixed(3)} | ${(r.sent / payload).toFixed(3)} | ${(r.got / payload).toFixed(3)} | ${(r.up / payload).toFixed(3)} |`);
}
p('');
p(`re-encoded at the hub, one shot changed (${L.changed}): ${newFiles.length} of ${L.v2.manifest.files.length} files differ, ${mb(newBytes)} MB of ${mb(L.v2.manifest.bytes)} MB`);
p('| tool | ok | wall s | WAN MB | ÷ changed files\' bytes | ÷ whole v2 |');
p('|---|:-:|---:|---:|---:|---:|');
for (const r of again) p(`| ${r.name} | ${r.ok ? 'yes' : 'NO'} | ${r.wall.toFixed(1)} | ${mb(r.wan)} | ${newBytes ? (r.wan / newBytes).toFixed(2) : '—'} | ${(r.wan / L.v2.manifest.bytes).toFixed(3)} |`);
if (fan) {
  p('');
  p(`fan-out (Mosquitto ${spawnSync('mosquitto', ['-h'], { encoding: 'utf8' }).stdout.split('\n')[0].replace(/^mosquitto version /, '')}, loopback, persistence on, password file + ACL, QoS 1):`);
  p(`${fan.boxes} boxes over ${fan.workers} worker processes connected and subscribed in ${fan.connectS.toFixed(1)} s; retained catalog entry → all ${fan.acked} acks in ${fan.notifiedS.toFixed(2)} s; Mosquitto RSS ${mb(fan.rssIdle)} MB idle, ${mb(fan.rssConnected)} MB with ${fan.boxes} sessions, ${mb(fan.rssAfter)} MB after`);
}
p('');
p('targets:');
for (const y of rows.filter((r) => r.name.startsWith('yachay') && r.drops === DROPS)) {
  p(`  WAN bytes ≤ 1.02× payload with ${DROPS} drops (${y.name}): ${(y.wan / payload).toFixed(3)}× (box got ${(y.got / payload).toFixed(3)}×) — ${y.wan / payload <= 1.02 ? 'met' : 'MISSED'}`);
}
for (const y of rows.filter((r) => r.name.startsWith('yachay') && r.drops === 0)) {
  p(`  link use ≥ 90% of the cap, no drops (${y.name}): ${((100 * ideal) / y.wall).toFixed(0)}% — ${ideal / y.wall >= 0.9 ? 'met' : 'MISSED'}`);
}
if (fan) p(`  ${fan.boxes} boxes notified in ≤ 10 s: ${fan.notifiedS.toFixed(2)} s — ${fan.notifiedS <= 10 ? 'met' : 'MISSED'}`);
p(`bench time ${((Date.now() - started) / 60000).toFixed(1)} min`);
process.stdout.write(lines.join('\n') + '\n');
link.close();
process.exit(rows.every((r) => r.ok) && again.every((r) => r.ok) ? 0 : 1);
