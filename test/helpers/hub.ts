import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { join } from 'node:path';
import { BIN, ROOT } from './cli.js';
import { freePort, sleep } from '../../daemon/hub/ports.js';
import type { HubFile } from '../../daemon/hub/hub.js';

/** A real `yachay hub start` (private PostgreSQL + Mosquitto) in a child process, for one test file. */
export interface RunningHub {
  dir: string; http: string; httpPort: number; mqttPort: number; proc: ChildProcess;
  stderr(): string;
  file(): HubFile;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** the exit, without asking for it */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const made = new Set<string>();
process.once('exit', () => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

/**
 * As root the hub runs PostgreSQL as the `postgres` user, which must be able to walk down to the
 * data dir. A clone under a private folder (mktemp's 0700, as CI may make) closes that path; the
 * hub then refuses with a clear error (tested in hub-enroll), so tests put such a hub's data in a
 * folder of /tmp the postgres user can reach, with a link at the path the test asked for.
 */
function reachable(dir: string): string {
  if (process.getuid?.() !== 0) return dir;
  if (existsSync(dir) && lstatSync(dir).isSymbolicLink()) return realpathSync(dir);
  mkdirSync(dir, { recursive: true });
  if (spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dir]).status === 0) return dir;
  const real = mkdtempSync('/tmp/ych-hub-');
  chmodSync(real, 0o755);
  made.add(real);
  // what the test put there first (a shared signing key) moves along
  cpSync(dir, real, { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  symlinkSync(real, dir);
  return real;
}

export async function startHub(asked: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<RunningHub> {
  const dir = reachable(asked);
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const proc = spawn(process.execPath, [BIN, 'hub', 'start', '--data-dir', dir, '--http-port', String(httpPort), '--mqtt-port', String(mqttPort), ...args], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  proc.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  const http = `http://127.0.0.1:${httpPort}`;
  // PostgreSQL, Mosquitto and pg-boss on a loaded 2-core machine (CI) once took over 45 s
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`hub exited at start: ${err.slice(-2000)}`);
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`hub not ready in 90 s: ${err.slice(-2000)}`); }
    if (/listo \/ ready/.test(err)) break;
    await sleep(100);
  }
  return {
    dir, http, httpPort, mqttPort, proc, exited,
    stderr: () => err,
    file: () => JSON.parse(readFileSync(join(dir, 'hub.json'), 'utf8')) as HubFile,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** pids of processes whose command line names `dir` (the hub's PostgreSQL and Mosquitto run with it) */
export function processesUnder(asked: string): number[] {
  const dir = existsSync(asked) ? realpathSync(asked) : asked;
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(dir) && Number(p) !== process.pid) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}
