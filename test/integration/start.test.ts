import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT } from '../helpers/cli.js';

// `yachay start` as a technician runs it: every service up, /health green, SIGTERM → exit 0.
t.test('yachay start serves, reports health and stops cleanly on SIGTERM', async (t) => {
  const dir = t.testdir();
  const child = spawn(process.execPath, [BIN, 'start', '--data-dir', dir, '--http-port', '0', '--mqtt-port', '0', '--mqtt-ws-port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, YACHAY_LOG_LEVEL: 'warn' } });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 60 s: ${err}`)), 60_000);
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /ready — (http:\/\/[^\s]+)/.exec(err);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  const health = await fetch(`${url}/health`);
  t.equal(health.status, 200);
  const body = await health.json() as { ok: boolean; services: Record<string, boolean> };
  t.same(body.services, { db: true, janitor: true, governor: true, broker: true, sync: true, worker: true, http: true, update: true });
  const lessons = await fetch(`${url}/api/lessons`);
  t.equal(lessons.status, 200);
  t.match(err, /no admin yet/, 'tells the technician how to create the first admin');
  t.ok(existsSync(join(dir, 'sync', 'control.json')), 'an unenrolled box still leaves `yachay sync now` its address');
  // the one-time setup link: the same code is in <data-dir>/setup-token, readable by the owner only
  const code = /#\/setup\/([A-Za-z0-9_-]+)/.exec(err)?.[1];
  t.ok(code, 'prints a setup link with a one-time code');
  const file = join(dir, 'setup-token');
  t.equal(readFileSync(file, 'utf8').trim(), code);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.same(await (await fetch(`${url}/api/setup`)).json(), { needed: true });
  const made = await fetch(`${url}/api/setup`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: code, username: 'directora', password: 'una clave larga 123' }),
  });
  t.equal(made.status, 201, 'the code creates the first admin');
  t.equal(((await made.json()) as { role: string }).role, 'admin');
  t.same(await (await fetch(`${url}/api/setup`)).json(), { needed: false });
  t.notOk(existsSync(file), 'the used code is removed from disk');
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.equal(await exit, 0, err);
});

// issue 10, item 12: a taken port is the technician's to fix, not a reason to restart forever
t.test('an HTTP port in use stops start with exit 78 and says which port', async (t) => {
  const { createServer } = await import('node:net');
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '0.0.0.0', () => r()));
  t.teardown(() => new Promise<void>((r) => taken.close(() => r())));
  const port = (taken.address() as { port: number }).port;
  const { yachay } = await import('../helpers/cli.js');
  const r = await yachay(['start', '--data-dir', t.testdir(), '--http-port', String(port), '--mqtt-port', '0', '--mqtt-ws-port', '0']);
  t.equal(r.code, 78, r.stderr.slice(-400));
  t.match(r.stderr, new RegExp(`YCH_ERR_CONFIG: http.port: cannot listen on .*:${port}: EADDRINUSE`));
});

// issue 11, item 2: Type=notify — READY when serving, WATCHDOG while alive, STOPPING on SIGTERM
t.test('under systemd the box says READY, pings the watchdog and says STOPPING', async (t) => {
  const dir = t.testdir();
  // a Unix socket path must fit in 108 bytes: tap's test folders are longer
  const { mkdtempSync, rmSync } = await import('node:fs');
  const short = mkdtempSync('/tmp/ych-notify-');
  t.teardown(() => rmSync(short, { recursive: true, force: true }));
  const sock = join(short, 'notify.sock');
  // systemd's side of the socket: a Unix datagram server (python3 has them, Node does not)
  const listener = spawn('python3', ['-u', '-c', `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", "|"), flush=True)
`, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { listener.kill(); });
  const got: string[] = [];
  await new Promise<void>((resolve) => listener.stdout!.on('data', (c: Buffer) => {
    for (const l of c.toString().split('\n').filter(Boolean)) { if (l === 'bound') resolve(); else got.push(l); }
  }));
  const box = spawn(process.execPath, [BIN, 'start', '--data-dir', join(dir, 'd'), '--http-port', '0', '--mqtt-port', '0', '--mqtt-ws-port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '1000000', YACHAY_LOG_LEVEL: 'warn' } });
  t.teardown(() => { if (box.exitCode === null) box.kill('SIGKILL'); });
  box.stderr!.resume();
  const until = async (pred: () => boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    return pred();
  };
  t.ok(await until(() => got.some((m) => m.startsWith('READY=1')), 60_000), `READY=1 (${got[0]})`);
  t.ok(await until(() => got.filter((m) => m === 'WATCHDOG=1').length >= 2, 5_000), 'watchdog pings every half second for a 1 s WatchdogSec');
  const exited = new Promise<number | null>((r) => box.once('exit', (c) => r(c)));
  box.kill('SIGTERM');
  t.equal(await exited, 0);
  t.ok(await until(() => got.includes('STOPPING=1'), 2_000), 'STOPPING=1 on SIGTERM');
});
