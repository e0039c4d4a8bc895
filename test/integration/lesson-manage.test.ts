import t from 'tap';
import type { Test } from 'tap';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { loadConfig } from '../../daemon/config/load.js';
import { buildEdge, type Edge } from '../../daemon/edge.js';
import { dataPaths } from '../../daemon/paths.js';
import { makeClip } from '../helpers/media.js';

// Issue 12 item 1, on a whole box (buildEdge: real SQLite file, Aedes, worker with real ffmpeg,
// HTTP on a port): a teacher deletes a lesson while it is being encoded, renames one, and
// retries one whose job died; pages hear each change over MQTT.

const S = 'escuela-1';
const PASSWORD = 'correct horse battery';

async function startBox(t: Test, dir = t.testdir()): Promise<{ edge: Edge; dir: string }> {
  const cfg = loadConfig({
    env: {},
    overrides: {
      dataDir: dir, log: { level: 'silent' }, school: S,
      http: { host: '127.0.0.1', port: 0 }, mqtt: { host: '127.0.0.1', port: 0, wsPort: 0 },
      optimize: { models: { vad: false, face: false, rate: false } },
      jobs: { maxAttempts: 1 },
    },
  });
  const edge = await buildEdge(cfg, pino({ level: 'silent' }));
  await edge.app.start();
  t.teardown(() => edge.app.stop('test end'));
  await edge.users.add('maestra', PASSWORD, 'teacher');
  return { edge, dir };
}

async function login(edge: Edge): Promise<Record<string, string>> {
  const res = await fetch(`${edge.http.url}/api/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'maestra', password: PASSWORD, bearer: true }),
  });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  return { authorization: `Bearer ${((await res.json()) as { token: string }).token}` };
}

async function upload(edge: Edge, auth: Record<string, string>, file: string, title: string): Promise<string> {
  const body = readFileSync(file);
  const res = await fetch(`${edge.http.url}/api/uploads?title=${encodeURIComponent(title)}`, { method: 'POST', headers: { ...auth, 'upload-length': String(body.length) }, body });
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { lessonId: string }).lessonId;
}

async function until<T>(what: string, f: () => T | undefined | false, ms = 45_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** pids of processes whose command line mentions `needle` (Linux /proc) */
function processesUsing(needle: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try { if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) pids.push(Number(d)); } catch { /* gone */ }
  }
  return pids;
}

async function listen(t: Test, edge: Edge): Promise<Array<{ topic: string; body: Record<string, unknown> }>> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${edge.broker.ports.tcp}`, { username: 'maestra', password: PASSWORD, reconnectPeriod: 0 });
  t.teardown(() => c.endAsync());
  const got: Array<{ topic: string; body: Record<string, unknown> }> = [];
  c.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }));
  await c.subscribeAsync(`yachay/${S}/catalog/+`);
  return got;
}

t.test('deleting a lesson while it is encoded aborts the encode and leaves nothing behind', async (t) => {
  // made first: ffmpeg run synchronously stalls the loop, and a kept-alive socket would expire under it
  const box = t.testdir({ clips: {} });
  const clip = makeClip(join(box, 'clips'), 'larga', { seconds: 40, width: 960, height: 540 });
  const { edge, dir } = await startBox(t, box);
  const auth = await login(edge);
  const heard = await listen(t, edge);
  const paths = dataPaths(dir);
  const id = await upload(edge, auth, clip, 'La fotosíntesis');
  const source = edge.lessons.get(id)!.source!;
  t.ok(existsSync(source), 'the recording is in sources/');
  await until('the encode to start', () => edge.lessons.get(id)?.status === 'processing' && edge.worker.runningJobs().length > 0);
  // ffmpeg is running on it (the optimizer's temp folder is named after the lesson)
  await until('an ffmpeg child on the lesson', () => processesUsing(source).length > 0 || processesUsing(`.${id}.tmp-`).length > 0, 20_000);

  const anon = await fetch(`${edge.http.url}/api/lessons/${id}`, { method: 'DELETE' });
  t.equal(anon.status, 401, 'a student may not delete');
  const del = await fetch(`${edge.http.url}/api/lessons/${id}`, { method: 'DELETE', headers: auth });
  t.equal(del.status, 204);
  t.equal((await fetch(`${edge.http.url}/api/lessons/${id}`)).status, 404, 'gone from the catalog');
  const list = (await (await fetch(`${edge.http.url}/api/lessons`)).json()) as { lessons: Array<{ id: string }> };
  t.notOk(list.lessons.some((l) => l.id === id), 'the running box no longer lists it');
  t.same(edge.worker.runningJobs(), [], 'the encode was aborted');
  t.same(processesUsing(source), [], 'no ffmpeg left on the recording');
  t.same(processesUsing(`.${id}.tmp-`), [], 'no ffmpeg left writing the package');
  t.same(readdirSync(paths.store).filter((n) => n.includes(id)), [], 'no package or temp folder in the store');
  t.notOk(existsSync(source), 'the recording is removed');
  t.same(edge.queue.list().filter((j) => (j.payload as { lessonId?: string }).lessonId === id), [], 'its jobs are gone');
  t.equal((await fetch(`${edge.http.url}/api/lessons/${id}`, { method: 'DELETE', headers: auth })).status, 404, 'twice: 404');
  await until('the MQTT event', () => heard.find((m) => m.body.change === 'deleted'), 5000);
  t.same(heard.find((m) => m.body.change === 'deleted'), { topic: `yachay/${S}/catalog/${id}`, body: { type: 'lesson', id, change: 'deleted' } });
});

t.test('rename: 1–200 characters, teachers only, the page hears it', async (t) => {
  const { edge } = await startBox(t);
  const auth = { ...await login(edge), 'content-type': 'application/json' };
  const heard = await listen(t, edge);
  const l = edge.lessons.create({ id: 'agua', title: 'El ciclo del agua' });
  const url = `${edge.http.url}/api/lessons/${l.id}`;
  const patch = (body: unknown, headers: Record<string, string> = auth): Promise<Response> => fetch(url, { method: 'PATCH', headers, body: JSON.stringify(body) });
  t.equal((await patch({ title: 'x' }, { 'content-type': 'application/json' })).status, 401);
  t.equal((await patch({ title: '' })).status, 400, 'empty');
  t.equal((await patch({ title: '   ' })).status, 400, 'blank');
  t.equal((await patch({ title: 'á'.repeat(201) })).status, 400, '201 characters');
  t.equal((await patch({})).status, 400, 'no title');
  t.equal(edge.lessons.get('agua')!.title, 'El ciclo del agua', 'refused renames change nothing');
  const ok = await patch({ title: '  El agua en la Tierra  ' });
  t.equal(ok.status, 200);
  t.match(await ok.json(), { id: 'agua', title: 'El agua en la Tierra', status: 'queued' });
  t.equal(edge.lessons.get('agua')!.title, 'El agua en la Tierra');
  t.equal((await patch({ title: 'ñ'.repeat(200) })).status, 200, '200 characters (not bytes) are fine');
  t.equal((await fetch(`${edge.http.url}/api/lessons/nada`, { method: 'PATCH', headers: auth, body: JSON.stringify({ title: 'x' }) })).status, 404);
  await until('the MQTT event', () => heard.find((m) => m.body.change === 'renamed'), 5000);
  t.match(heard.find((m) => m.body.change === 'renamed')!.body, { id: 'agua', title: 'El agua en la Tierra' });
});

t.test('retry: a dead-lettered lesson shows why, and goes back to the queue with fresh attempts', async (t) => {
  const { edge, dir } = await startBox(t);
  const auth = await login(edge);
  // looks like an MP4 to the upload's sniffer, but ffprobe finds no movie in it
  const broken = join(t.testdir(), 'rota.mp4');
  const head = Buffer.alloc(64); head.writeUInt32BE(24, 0); head.write('ftypisom', 4, 'latin1');
  writeFileSync(broken, Buffer.concat([head, Buffer.alloc(4000, 7)]));
  const id = await upload(edge, auth, broken, 'Rota');
  await until('the lesson to fail', () => edge.lessons.get(id)?.status === 'failed');
  const one = (await (await fetch(`${edge.http.url}/api/lessons/${id}`)).json()) as { status: string; error: string };
  t.equal(one.status, 'failed');
  t.match(one.error, /YCH_ERR_INPUT_CORRUPT/, 'the reason is given');
  t.notMatch(one.error, dir, 'without the box\'s folders');
  const listed = ((await (await fetch(`${edge.http.url}/api/lessons`)).json()) as { lessons: Array<{ id: string; error: string | null }> }).lessons.find((l) => l.id === id);
  t.equal(listed?.error, one.error, 'the list carries the same reason');
  const dead = edge.queue.list({ state: 'dead' }).find((j) => (j.payload as { lessonId?: string }).lessonId === id)!;
  t.equal(dead.attempts, 1);

  t.equal((await fetch(`${edge.http.url}/api/lessons/${id}/retry`, { method: 'POST' })).status, 401);
  // the worker must not pick it up before the test has looked at the queue
  await edge.worker.stop();
  const r = await fetch(`${edge.http.url}/api/lessons/${id}/retry`, { method: 'POST', headers: auth });
  t.equal(r.status, 202);
  const body = (await r.json()) as { lessonId: string; jobId: number; reason: string };
  t.equal(body.jobId, dead.id, 'the same job, its history in one row');
  t.match(body.reason, /YCH_ERR_INPUT_CORRUPT/);
  t.match(edge.queue.get(dead.id), { state: 'queued', attempts: 0 }, 'attempts reset');
  t.equal(edge.lessons.get(id)!.status, 'queued');
  const again = await fetch(`${edge.http.url}/api/lessons/${id}/retry`, { method: 'POST', headers: auth });
  t.equal(again.status, 409, 'a queued lesson is not retried');
  t.equal(((await again.json()) as { error: string }).error, 'YCH_HTTP_NOT_FAILED');
  t.equal((await fetch(`${edge.http.url}/api/lessons/nada/retry`, { method: 'POST', headers: auth })).status, 404);
});
