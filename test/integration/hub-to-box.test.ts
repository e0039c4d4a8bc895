import t from 'tap';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BIN, ROOT, yachay } from '../helpers/cli.js';
import { startHub } from '../helpers/hub.js';
import { freePort, sleep } from '../../daemon/hub/ports.js';

// Issue 9, "Done when", with nothing but the commands the README gives an operator and a
// technician: a real hub (its own PostgreSQL and Mosquitto), `hub enroll`, `hub add --wait`, a real
// box started with --hub/--enroll; the lesson shows in the box's /api/lessons with origin hub and
// its playlist plays; then it reaches a second box, with no link, by export/import.
async function startBox(dir: string, args: string[]): Promise<{ proc: ChildProcess; url: string; log(): string }> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const proc = spawn(process.execPath, [BIN, 'start', '--data-dir', dir, '--http-port', String(ports[0]), '--mqtt-port', String(ports[1]), '--mqtt-ws-port', String(ports[2]), ...args],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, YACHAY_LOG_LEVEL: 'warn' } });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const deadline = Date.now() + 60_000;
  while (!/ready — /.test(err)) {
    if (proc.exitCode !== null) throw new Error(`box exited ${proc.exitCode}: ${err.slice(-1500)}`);
    if (Date.now() > deadline) throw new Error(`box not ready: ${err.slice(-1500)}`);
    await sleep(100);
  }
  return { proc, url: `http://127.0.0.1:${ports[0]}`, log: () => err };
}

t.test('a lesson added at the hub plays on an enrolled box, then reaches a second box by USB', async (t) => {
  const dir = t.testdir();
  const clip = join(dir, 'clase.mp4');
  const [hub, sample] = await Promise.all([
    startHub(join(dir, 'hub'), { YACHAY_OPTIMIZE_VERIFY: 'false' }),
    yachay(['sample', '--seconds', '8', '--out', clip]),
  ]);
  t.teardown(async () => { await hub.stop(); });
  t.equal(sample.code, 0, sample.stderr);

  const enroll = await yachay(['hub', 'enroll', 'ie-54321', '--name', 'I.E. 54321, Puno', '--channels', 'ciencia', '--data-dir', hub.dir]);
  t.equal(enroll.code, 0, enroll.stderr);
  const code = enroll.stdout.trim().split('\n').pop()!;
  t.match(code, /^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/, 'the code alone on the last line');
  const add = await yachay(['hub', 'add', clip, '--title', 'El ciclo del agua', '--channel', 'ciencia', '--data-dir', hub.dir, '--wait']);
  t.equal(add.code, 0, add.stderr.slice(-1500));
  const id = add.stdout.trim().split('\n').pop()!;

  const boxDir = join(dir, 'box');
  const box = await startBox(boxDir, ['--hub', hub.http, '--enroll', code, '--sync-window', 'always']);
  t.teardown(() => { if (box.proc.exitCode === null) box.proc.kill('SIGKILL'); });
  interface Listed { id: string; origin: string; status: string; playlist: string }
  const listed = async (url: string): Promise<Listed[]> => {
    const body = await (await fetch(`${url}/api/lessons`)).json() as { lessons?: Listed[] } | Listed[];
    return Array.isArray(body) ? body : body.lessons ?? [];
  };
  let lesson: Listed | undefined;
  const deadline = Date.now() + 90_000;
  while (!lesson && Date.now() < deadline) {
    lesson = (await listed(box.url)).find((l) => l.id === id && l.status === 'ready');
    if (!lesson) await sleep(500);
  }
  t.ok(lesson, `the hub's lesson ${id} is listed on the box`);
  t.equal(lesson?.origin, 'hub');
  const master = await fetch(`${box.url}${lesson!.playlist}`);
  t.equal(master.status, 200, 'its master playlist is served');
  t.match(await master.text(), /#EXTM3U/);
  const sync = await (await fetch(`${box.url}/api/sync`)).json() as { enrolled: boolean };
  t.ok(sync.enrolled, '/api/sync says the box is enrolled');

  const usb = join(dir, 'usb');
  const ex = await yachay(['export', id, '--to', usb, '--data-dir', boxDir]);
  t.equal(ex.code, 0, ex.stderr);
  const exited = new Promise((r) => box.proc.once('exit', r));
  box.proc.kill('SIGTERM');
  await exited;

  // the second school: no link, the hub's public key carried by the technician with the drive
  const second = join(dir, 'box2');
  const im = await yachay(['import', usb, '--data-dir', second, '--hub-key', join(hub.dir, 'hub-ed25519.pub.pem')]);
  t.equal(im.code, 0, im.stderr);
  const box2 = await startBox(second, []);
  t.teardown(() => { if (box2.proc.exitCode === null) box2.proc.kill('SIGKILL'); });
  const l2 = (await listed(box2.url)).find((l) => l.id === id);
  t.equal(l2?.origin, 'import', 'the second box lists it as imported');
  t.equal((await fetch(`${box2.url}${l2!.playlist}`)).status, 200, 'and plays it');
  box2.proc.kill('SIGTERM');
});
