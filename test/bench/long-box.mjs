// The box half of `npm run bench:long` (test/bench/long.sh): starts a real school box
// (`yachay start`) on a fresh data folder, waits for its sample lesson, uploads the long lecture
// the way the teacher page does (login, POST /api/uploads, PATCH the bytes), and while the job
// runs keeps asking /health and a segment of the sample lesson ~10 times a second each and reads
// the RSS of the box and of every process under it once a second. Writes one JSON of figures.
//
//   node test/bench/long-box.mjs <lecture.mp4> <out.json> <run-dir> <cache-dir>
//
// run-dir is emptied and holds the box's data folder (the package stays there for scoring);
// cache-dir keeps the box's generated sample recording between runs, so a re-run does not make
// it again (the box itself copies <data>/samples/clase-de-ejemplo.mp4 when it finds one).
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const [lecture, outJson, runDir, cacheDir] = process.argv.slice(2);
if (!lecture || !outJson || !runDir || !cacheDir) {
  process.stderr.write('usage: long-box.mjs <lecture.mp4> <out.json> <run-dir> <cache-dir>\n');
  process.exit(64);
}
const POLL_MS = Number(process.env.POLL_MS ?? 100);
// answers slower than this are listed with the job's stage at the time, to find what stalls
const STALL_MS = 500;
const log = (msg) => process.stderr.write(`[box] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

const data = join(runDir, 'data');
await rm(runDir, { recursive: true, force: true });
await mkdir(join(data, 'samples'), { recursive: true });
const cachedSample = join(cacheDir, 'clase-de-ejemplo.mp4');
if (existsSync(cachedSample)) await copyFile(cachedSample, join(data, 'samples', 'clase-de-ejemplo.mp4'));

const yachay = (args, input) => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/yachay.mjs'), ...args, '--data-dir', data], { input, encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`yachay ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
};
// loopback only: the bench must not put the box on the machine's network
process.env.YACHAY_HTTP_HOST = '127.0.0.1';
process.env.YACHAY_MQTT_HOST = '127.0.0.1';
const school = JSON.parse(yachay(['check-config'])).school;
const teacher = { username: 'bench-teacher', password: randomBytes(18).toString('base64url') };
yachay(['users', 'add', teacher.username, '--role', 'teacher'], teacher.password + '\n');

// ---------------------------------------------------------------- the box
const tStart = performance.now();
const box = spawn(process.execPath, [join(ROOT, 'bin/yachay.mjs'), 'start', '--data-dir', data,
  '--http-port', '0', '--mqtt-port', '0', '--mqtt-ws-port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
const boxLog = createWriteStream(join(runDir, 'box.log'));
box.stdout.pipe(boxLog, { end: false });
let exited = null;
const exitedP = new Promise((r) => box.once('exit', (code, sig) => { exited = { code, signal: sig }; r(exited); }));
// a bench that fails half-way must not leave a box (and its ffmpeg) behind: SIGTERM lets the
// box stop its own jobs' process groups
process.on('exit', () => { if (!exited) box.kill('SIGTERM'); });
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { log(`${sig}: stopping the box`); process.exit(130); });
const ports = await new Promise((res, rej) => {
  let buf = '';
  box.stderr.on('data', (b) => {
    boxLog.write(b);
    buf += b.toString();
    const m = /ready — http:\/\/[^\s:]+:(\d+)\s+\(MQTT (\d+), WebSocket (\d+)\)/.exec(buf);
    if (m) { res({ http: Number(m[1]), mqtt: Number(m[2]) }); buf = ''; }
  });
  void exitedP.then((e) => rej(new Error(`box exited before it was ready (${JSON.stringify(e)}); see ${join(runDir, 'box.log')}`)));
});
log(`box pid ${box.pid} ready in ${((performance.now() - tStart) / 1000).toFixed(1)} s on http ${ports.http}, mqtt ${ports.mqtt}`);

const agent = () => new http.Agent({ keepAlive: true, maxSockets: 1 });
const apiAgent = agent();
function request(method, path, { headers = {}, body, agent: ag = apiAgent, timeoutMs = 30000 } = {}) {
  return new Promise((res, rej) => {
    const req = http.request({ host: '127.0.0.1', port: ports.http, method, path, headers, agent: ag, timeout: timeoutMs }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks) }));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', rej);
    if (body && typeof body.pipe === 'function') body.pipe(req);
    else req.end(body);
  });
}
const getJson = async (path, headers) => {
  const r = await request('GET', path, { headers });
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body.toString().slice(0, 200)}`);
  return JSON.parse(r.body.toString());
};

// ---------------------------------------------------------------- memory of the process tree
function procTree(rootPid) {
  const children = new Map();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const st = readFileSync(`/proc/${name}/stat`, 'utf8');
      // the command name may hold spaces and parentheses: fields are counted after the last ')'
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch { /* gone between readdir and read */ }
  }
  const out = []; const todo = [rootPid];
  while (todo.length) { const p = todo.pop(); out.push(p); todo.push(...(children.get(p) ?? [])); }
  return out;
}
function rssOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
    return { kb, name: /Name:\s+(\S+)/.exec(s)?.[1] ?? '?' };
  } catch { return { kb: 0, name: '?' }; }
}
const mem = { nodePeakKB: 0, treePeakKB: 0, treePeakAt: null, treePeakParts: null, samples: 0, series: [] };
function sampleMem(t0) {
  const node = rssOf(box.pid).kb;
  let tree = 0; const parts = {};
  for (const pid of procTree(box.pid)) {
    const r = rssOf(pid);
    tree += r.kb;
    parts[r.name] = (parts[r.name] ?? 0) + r.kb;
  }
  mem.samples++;
  if (node > mem.nodePeakKB) mem.nodePeakKB = node;
  if (tree > mem.treePeakKB) { mem.treePeakKB = tree; mem.treePeakAt = (performance.now() - t0) / 1000; mem.treePeakParts = parts; }
  mem.series.push([round((performance.now() - t0) / 1000, 0), Math.round(node / 1024), Math.round(tree / 1024)]);
  return { node, tree };
}

// ---------------------------------------------------------------- the sample lesson
let sample;
for (const t0 = performance.now(); ;) {
  const { lessons } = await getJson('/api/lessons');
  sample = lessons.find((l) => l.status === 'ready');
  if (sample) break;
  if (lessons.some((l) => l.status === 'failed')) throw new Error('the sample lesson failed; see box.log');
  if (exited) throw new Error(`box exited while making its sample lesson: ${JSON.stringify(exited)}`);
  if (performance.now() - t0 > 30 * 60e3) throw new Error('sample lesson not ready after 30 min');
  await sleep(1000);
}
log(`sample lesson ${sample.id} ready after ${((performance.now() - tStart) / 1000).toFixed(0)} s`);
if (!existsSync(cachedSample)) {
  await mkdir(cacheDir, { recursive: true });
  await copyFile(join(data, 'sources', 'clase-de-ejemplo.mp4'), cachedSample).catch(() => undefined);
}
// the sample's lowest variant, first media segment: what a phone asks for while the box works
const master = (await request('GET', sample.playlist)).body.toString();
const variants = [...master.matchAll(/#EXT-X-STREAM-INF:[^\n]*BANDWIDTH=(\d+)[^\n]*\n([^\n#]+)/g)].map((m) => ({ bw: Number(m[1]), uri: m[2].trim() }));
variants.sort((a, b) => a.bw - b.bw);
const base = sample.playlist.replace(/[^/]+$/, '');
const media = (await request('GET', base + variants[0].uri)).body.toString();
const segUri = media.split('\n').map((s) => s.trim()).find((s) => s && !s.startsWith('#'));
const segmentPath = base + variants[0].uri.replace(/[^/]+$/, '') + segUri;
const segProbe = await request('GET', segmentPath);
if (segProbe.status !== 200) throw new Error(`segment ${segmentPath}: ${segProbe.status}`);
log(`polling /health and ${segmentPath} (${segProbe.body.length} bytes) every ${POLL_MS} ms`);
const idle = sampleMem(performance.now());
mem.series = [];

// ---------------------------------------------------------------- login and upload, as the page does
const login = await request('POST', '/api/login', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...teacher, bearer: true }) });
if (login.status !== 200) throw new Error(`login: ${login.status} ${login.body}`);
const auth = { authorization: `Bearer ${JSON.parse(login.body.toString()).token}` };
const size = (await stat(lecture)).size;

// progress over MQTT as the teacher page sees it; the job topic is keyed by lesson id, known
// only once the upload finishes, so take every job event and pick ours afterwards
const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${ports.mqtt}`, { username: teacher.username, password: teacher.password, reconnectPeriod: 0 });
await client.subscribeAsync(`yachay/${school}/jobs/#`);
const allEvents = [];
client.on('message', (topic, payload) => {
  try { allEvents.push({ topic, at: performance.now(), ...JSON.parse(payload.toString()) }); } catch { /* not a job event */ }
});

const pollers = [];
let stopPolling = false;
function poller(name, path) {
  const p = { name, path, lat: [], fail: 0, failures: [], n: 0, stalls: [] };
  const ag = agent();
  p.done = (async () => {
    while (!stopPolling) {
      const t = performance.now();
      try {
        // a long timeout: a stalled box shows as the stall's length, not as a capped failure
        const r = await request('GET', path, { agent: ag, timeoutMs: 30000 });
        if (r.status !== 200) throw new Error(`status ${r.status}`);
      } catch (err) {
        p.fail++;
        if (p.failures.length < 10) p.failures.push(String(err.message ?? err));
      }
      // failures count with the time they took: a percentile of successes alone would hide them
      const ms = performance.now() - t;
      p.lat.push(ms);
      if (ms >= STALL_MS) p.stalls.push({ at: t, ms });
      p.n++;
      await sleep(Math.max(0, POLL_MS - (performance.now() - t)));
    }
  })();
  pollers.push(p);
  return p;
}
const pct = (a, q) => { if (!a.length) return null; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
// which stage ran at a moment: report.json's timings laid end to end from the job's first event
// (the MQTT events alone miss stage changes: the box sends at most one per percent)
const stageSpans = [];
const stageAt = (at) => {
  const s = (at - tQueued) / 1000;
  return stageSpans.find((x) => s >= x.from && s < x.to)?.stage ?? (s < (stageSpans[0]?.from ?? 0) ? 'upload' : null);
};
const latSummary = (p) => ({ path: p.path, requests: p.n, failures: p.fail, failure_examples: p.failures,
  p50_ms: round(pct(p.lat, 0.5)), p99_ms: round(pct(p.lat, 0.99)), max_ms: round(p.lat.length ? Math.max(...p.lat) : null),
  stalls: [...p.stalls].sort((a, b) => b.ms - a.ms).slice(0, 20)
    .map((x) => ({ at_s: round((x.at - tQueued) / 1000), ms: round(x.ms, 0), stage: stageAt(x.at) })).sort((a, b) => a.at_s - b.at_s) });

// prom-client resets its event-loop histogram at each scrape: this one starts the window, the
// scrape after the job reads the box's own loop delay over it (a tail the loop did not see
// formed outside the process: the machine, the sockets)
const loopLag = async () => {
  const body = (await request('GET', '/metrics')).body.toString();
  const get = (name) => { const m = new RegExp(`^yachay_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(body); return m ? round(Number(m[1]) * 1000) : null; };
  return { p50_ms: get('p50'), p99_ms: get('p99'), max_ms: get('max') };
};
await loopLag();
const t0 = performance.now();
const memTimer = setInterval(() => sampleMem(t0), 1000);
poller('health', '/health');
poller('segment', segmentPath);

const created = await request('POST', `/api/uploads?title=${encodeURIComponent(`Bench: ${lecture.split('/').pop()}`)}`, { headers: { ...auth, 'upload-length': String(size) } });
if (created.status !== 201) throw new Error(`upload POST: ${created.status} ${created.body}`);
const { id: uploadId } = JSON.parse(created.body.toString());
const patched = await request('PATCH', `/api/uploads/${uploadId}`, {
  headers: { ...auth, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': String(size) },
  body: createReadStream(lecture), timeoutMs: 600000,
});
if (patched.status !== 200) throw new Error(`upload PATCH: ${patched.status} ${patched.body}`);
const { lessonId } = JSON.parse(patched.body.toString());
const tQueued = performance.now();
log(`uploaded ${(size / 1e6).toFixed(1)} MB in ${((tQueued - t0) / 1000).toFixed(1)} s: lesson ${lessonId}`);

// the job starts (and reports) before the upload's answer names its lesson: events are kept from
// the start and ours picked by topic
const ourEvents = () => allEvents.filter((e) => e.topic.endsWith(`/jobs/${lessonId}`)).map((e) => ({ ...e, t: (e.at - tQueued) / 1000 }));

// ---------------------------------------------------------------- follow the job
const timeoutS = Number(process.env.BOX_TIMEOUT ?? 0) || 3600 * 3;
let lesson; let lastLine = 0; let tDone;
for (;;) {
  await sleep(1000);
  if (exited) throw new Error(`box exited during the job: ${JSON.stringify(exited)}`);
  lesson = await getJson(`/api/lessons/${lessonId}`).catch(() => lesson);
  const end = ourEvents().find((e) => e.state === 'done' || e.state === 'dead');
  if (lesson?.status === 'ready' || lesson?.status === 'failed' || end) {
    tDone = end ? tQueued + end.t * 1000 : performance.now();
    if (lesson?.status === 'ready' || lesson?.status === 'failed') break;
  }
  if ((performance.now() - tQueued) / 1000 > timeoutS) { log(`giving up after ${timeoutS} s`); break; }
  if (performance.now() - lastLine > 15000) {
    lastLine = performance.now();
    const last = ourEvents().at(-1);
    const m = mem.series.at(-1) ?? [];
    log(`${((performance.now() - tQueued) / 1000).toFixed(0)} s: ${lesson?.status} ${last?.stage ?? ''} ${last?.progress !== undefined ? Math.round(last.progress * 100) + '%' : ''}` +
      ` · node ${m[1]} MB, tree ${m[2]} MB (peaks ${Math.round(mem.nodePeakKB / 1024)}/${Math.round(mem.treePeakKB / 1024)})` +
      ` · health p99 ${round(pct(pollers[0].lat, 0.99))} ms, segment p99 ${round(pct(pollers[1].lat, 0.99))} ms`);
  }
}
stopPolling = true;
clearInterval(memTimer);
await Promise.all(pollers.map((p) => p.done));
const loop = await loopLag().catch(() => null);
const wallS = ((tDone ?? performance.now()) - tQueued) / 1000;
log(`lesson ${lesson?.status} after ${wallS.toFixed(1)} s`);

// ---------------------------------------------------------------- the package
const pkgDir = join(data, 'store', lessonId);
async function dirBytes(dir) {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    n += e.isDirectory() ? await dirBytes(join(dir, e.name)) : (await stat(join(dir, e.name))).size;
  }
  return n;
}
const report = JSON.parse(await readFile(join(pkgDir, 'report.json'), 'utf8').catch(() => 'null'));
const renditionBytes = {};
for (const e of await readdir(pkgDir, { withFileTypes: true }).catch(() => [])) {
  if (e.isDirectory()) renditionBytes[e.name] = await dirBytes(join(pkgDir, e.name));
}
const duration = report?.input?.duration ?? lesson?.durationS ?? null;
// v0 is the data-saver rendition by construction (daemon/optimize/plan.ts), heard with Opus
const lowestBytes = (renditionBytes.v0 ?? 0) + (renditionBytes['a-opus'] ?? 0);
const timings = report?.timings ?? {};
const sumOf = (re) => Object.entries(timings).filter(([k]) => re.test(k)).reduce((s, [, v]) => s + v, 0);
const encodeMs = sumOf(/^encode(#\d+)?$/);
// the cut refinement (cuts.ts) decodes the source again around each cut: analysis too
const analysisMs = sumOf(/^analyse$/) + sumOf(/^cuts$/) + sumOf(/^models$/);
// model:* timings run inside analyse (face) and models (vad, rate): not stages of their own
let at = ourEvents()[0]?.t ?? 0;
for (const [stage, ms] of Object.entries(timings)) {
  if (stage.startsWith('model:')) continue;
  stageSpans.push({ stage, from: round(at, 2), to: round(at + ms / 1000, 2) });
  at += ms / 1000;
}

// the box stops as it would under systemd: SIGTERM, drain, exit 0
const tStop = performance.now();
box.kill('SIGTERM');
await client.endAsync().catch(() => undefined);
const stopped = await Promise.race([exitedP, sleep(60000).then(() => null)]);
if (!stopped) { log('box did not stop within 60 s: SIGKILL'); box.kill('SIGKILL'); await exitedP; }
const stopS = (performance.now() - tStop) / 1000;

const out = {
  lecture, lecture_bytes: size, lesson_id: lessonId, status: lesson?.status ?? 'unknown',
  error: ourEvents().find((e) => e.error)?.error ?? null,
  package_dir: pkgDir, master: join(pkgDir, 'master.m3u8'),
  duration_s: duration,
  upload_s: round((tQueued - t0) / 1000),
  wall_s: round(wallS),
  x_realtime: duration ? round(duration / wallS, 2) : null,
  timings_ms: timings,
  encode_ms: encodeMs, analysis_models_ms: analysisMs,
  analysis_models_pct_of_encode: encodeMs ? round((100 * analysisMs) / encodeMs) : null,
  attempts: report?.attempts ?? null,
  published_attempt: report?.published ?? null,
  // re-encodes that spliced segments (how many of the rendition's) or redid the whole; misses given up
  reencodes: report?.reencodes ?? null,
  gave_up: report?.gaveUp ?? null,
  misses: report?.misses ?? report?.verify?.misses ?? null,
  verify: report?.verify ? { ocrRatio: report.verify.ocrRatio, stoi: report.verify.stoi, ssim: report.verify.ssim,
    failedClasses: report.verify.failedClasses, audioFailed: report.verify.audioFailed } : null,
  shots: Array.isArray(report?.shots) ? report.shots.length : null,
  rendition_bytes: renditionBytes,
  lowest_bytes: lowestBytes,
  lowest_mb_per_min: duration ? round(lowestBytes / 1e6 / (duration / 60), 3) : null,
  api_data_saver_mb: lesson?.dataSaverMB ?? null,
  memory: {
    node_idle_mb: round(idle.node / 1024, 0), tree_idle_mb: round(idle.tree / 1024, 0),
    node_peak_mb: round(mem.nodePeakKB / 1024, 0), tree_peak_mb: round(mem.treePeakKB / 1024, 0),
    tree_peak_at_s: round(mem.treePeakAt, 0),
    tree_peak_parts_mb: Object.fromEntries(Object.entries(mem.treePeakParts ?? {}).map(([k, v]) => [k, round(v / 1024, 0)])),
    samples: mem.samples, series_s_node_tree_mb: mem.series,
  },
  latency: { health: latSummary(pollers[0]), segment: latSummary(pollers[1]), box_event_loop: loop },
  stages: stageSpans,
  box_start_to_sample_ready_s: round((t0 - tStart) / 1000),
  box_stop_s: round(stopS), box_exit: exited,
};
await writeFile(outJson, JSON.stringify(out, null, 1));
log(`wrote ${outJson}`);
process.exit(out.status === 'ready' ? 0 : 1);
