import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BIN, ROOT, yachay } from '../helpers/cli.js';
import { startFakeHub, until } from '../helpers/sync-hub.js';

// The issue's interface, through the real CLI: `start --hub URL --enroll CODE --sync-window
// always` brings the hub's lesson into /api/lessons with "origin":"hub"; `sync now` reaches the
// running box; a refused code stops `start` with its error.

const S = 'escuela-1';
const ports = ['--http-port', '0', '--mqtt-port', '0', '--mqtt-ws-port', '0'];
const env = { YACHAY_OPTIMIZE_MODELS_VAD: 'false', YACHAY_OPTIMIZE_MODELS_FACE: 'false', YACHAY_OPTIMIZE_MODELS_RATE: 'false', YACHAY_HTTP_HOST: '127.0.0.1', YACHAY_MQTT_HOST: '127.0.0.1' };

function startBox(args: string[]): { child: ChildProcess; url: Promise<string>; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, 'start', ...ports, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      const m = /lista \/ ready — (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.on('exit', () => reject(new Error(`box exited: ${err}`)));
  });
  url.catch(() => undefined);
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, url, stderr: () => err, exit };
}

t.test('a refused code stops start with the hub\'s reason', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  hub.codes.set('USED-1', { status: 410, code: 'YCH_ERR_ENROLL_USED' });
  const r = await yachay(['start', ...ports, '--data-dir', join(dir, 'box'), '--hub', hub.httpUrl, '--enroll', 'USED-1'], { env });
  t.equal(r.code, 77, 'exit 77');
  t.match(r.stderr, /YCH_ERR_ENROLL_USED/, 'the code');
  t.match(r.stderr, /ask the central team for a new one/, 'what to do');
  t.notOk(existsSync(join(dir, 'box', 'sync', 'credentials.json')), 'nothing stored');
});

t.test('start --hub --enroll --sync-window always: the hub\'s lesson appears with origin hub; sync now; later starts need no flags', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  hub.codes.set('OK-1', { status: 200 });
  await hub.addLesson('agua', { seed: 1 });
  const data = join(dir, 'box');
  let box = startBox(['--data-dir', data, '--hub', hub.httpUrl, '--enroll', 'OK-1', '--sync-window', 'always']);
  t.teardown(() => { box.child.kill('SIGKILL'); });
  const url = await box.url;
  const lesson = await until(async () => {
    const l = await fetch(`${url}/api/lessons`).then((r) => r.json()) as { lessons: Array<{ id: string; origin: string; status: string }> };
    return l.lessons.find((x) => x.id === 'agua' && x.status === 'ready');
  }, 30_000, 'agua on the box');
  t.equal(lesson.origin, 'hub', '"origin":"hub"');
  const sync = await fetch(`${url}/api/sync`).then((r) => r.json()) as { enrolled: boolean; hub: { connected: boolean }; window: string };
  t.match(sync, { enrolled: true, window: 'always', hub: { connected: true } }, 'GET /api/sync');
  const now = await yachay(['sync', 'now', '--data-dir', data], { env });
  t.equal(now.code, 0, `sync now: ${now.stderr}`);
  t.match(now.stdout, /sincronizando \/ syncing/);
  box.child.kill('SIGTERM');
  t.equal(await box.exit, 0, 'stops cleanly on SIGTERM');
  await until(() => hub.seen.some((m) => m.topic === `yachay/${S}/status` && JSON.parse(m.payload).online === false), 5000, 'offline status');
  t.pass('the hub is told the box went offline');
  const gone = await yachay(['sync', 'now', '--data-dir', data], { env });
  t.equal(gone.code, 64, 'sync now with no running box says so');
  t.match(gone.stderr, /does not answer|no running box/);

  // second start: no --hub, no --enroll, a night window; a new lesson is told "now" by the hub
  box = startBox(['--data-dir', data]);
  const url2 = await box.url;
  await until(async () => ((await fetch(`${url2}/api/sync`).then((r) => r.json())) as { hub: { connected: boolean } }).hub.connected, 10_000, 'reconnected without flags');
  const s2 = await fetch(`${url2}/api/sync`).then((r) => r.json()) as { window: string; nextWindowAt: number };
  t.equal(s2.window, '22:00-05:00', 'the default night window');
  await hub.addLesson('suelo', { seed: 2 });
  await hub.publish(`yachay/${S}/cmd/sync-now`, '{}');
  await until(async () => {
    const l = await fetch(`${url2}/api/lessons`).then((r) => r.json()) as { lessons: Array<{ id: string; status: string }> };
    return l.lessons.find((x) => x.id === 'suelo' && x.status === 'ready');
  }, 30_000, 'suelo after the hub\'s sync-now');
  t.pass('the hub\'s cmd/sync-now overrides the window');
  box.child.kill('SIGTERM');
  t.equal(await box.exit, 0);
});
