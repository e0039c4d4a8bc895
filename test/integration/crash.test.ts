import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BIN, ROOT } from '../helpers/cli.js';

// issue 10, item 12: a bug that escapes every handler (an exception thrown from a timer, a
// rejected promise nobody awaits) used to kill the box mid-write or leave it half working. Now
// it is logged, the services stop in order and the process exits 70 for systemd to restart a
// clean one; the data dir is whole and the next start serves.

const PRELOAD = join(ROOT, 'test/helpers/crash-on-signal-file.mjs');

interface Box { url: string; pid: number; exit: Promise<number | null>; out: () => string }

function startBox(dir: string, crashFile?: string): Promise<Box> {
  const args = crashFile ? ['--import', PRELOAD] : [];
  const child = spawn(process.execPath, [...args, BIN, 'start', '--data-dir', dir, '--http-port', '0', '--mqtt-port', '0', '--mqtt-ws-port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, YACHAY_LOG_LEVEL: 'info', YCH_TEST_CRASH_FILE: crashFile ?? '' } });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`not ready in 60 s: ${out}`)); }, 60_000);
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /ready — (http:\/\/[^\s]+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ url: m[1]!, pid: child.pid!, exit, out: () => out }); }
    });
    void exit.then((code) => { clearTimeout(timer); reject(new Error(`exited ${code} before ready: ${out}`)); });
  });
}

for (const kind of ['exception', 'rejection'] as const) {
  t.test(`an unhandled ${kind} stops the box in order with exit 70; the next start serves`, async (t) => {
    const dir = join(t.testdir(), 'data');
    const trigger = join(t.testdir(), 'crash-now');
    const box = await startBox(dir, trigger);
    t.equal((await fetch(`${box.url}/health`)).status, 200, 'serving before the bug');
    writeFileSync(trigger, kind);
    const code = await Promise.race([box.exit, new Promise<string>((r) => setTimeout(() => r('still running after 30 s'), 30_000))]);
    t.equal(code, 70, 'exit 70: systemd restarts a clean process');
    const out = box.out();
    t.match(out, /unexpected error: stopping so the service restarts clean/, 'the crash is logged as such');
    t.match(out, kind === 'rejection' ? /promesa rechazada sin manejar/ : /excepción sin manejar/, 'with the error itself');
    t.match(out, kind === 'rejection' ? /unhandledRejection/ : /uncaughtException/, 'and its kind');
    // the composition root stops every service it started, in reverse order: the database last
    const said = (msg: string): string[] => [...out.matchAll(new RegExp(`\\{[^\\n]*"svc":"([a-z-]+)"[^\\n]*"msg":"${msg}"`, 'g'))].map((m) => m[1]!);
    const started = said('started');
    const stopped = said('stopped');
    t.ok(started.includes('http') && started.includes('db'), `services started: ${started.join(', ')}`);
    t.same(stopped, [...started].reverse(), `stopped in reverse order (${stopped.join(' → ')})`);
    t.equal(stopped.at(-1), 'db', 'the database closed last');

    const db = new Database(join(dir, 'yachay.db'), { readonly: true });
    t.equal((db.pragma('integrity_check', { simple: true }) as string), 'ok', 'the database is whole');
    db.close();
    const again = await startBox(dir);
    t.equal((await fetch(`${again.url}/health`)).status, 200, 'the next start serves');
    // stopped the way systemd does
    process.kill(again.pid, 'SIGTERM');
    t.equal(await again.exit, 0, 'and stops cleanly');
  });
}
