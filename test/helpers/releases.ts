import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT } from './cli.js';
import { sleep } from '../../daemon/hub/ports.js';

/**
 * Real builds of this tree as release bundles (the provisioning contract: one folder
 * yachay-<version>/ with bin/, daemon/, VERSION…). The sources are copied; node_modules and the
 * native build are links to this checkout's (copying 1 GB per release would take minutes).
 */
export function buildRelease(outDir: string, version: string, opts: { brokenHealth?: boolean } = {}): string {
  const top = join(outDir, `yachay-${version}`);
  const files = spawnSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const f of files) {
    if (f.startsWith('node_modules/') || f.startsWith('native/build/') || f === 'node_modules') continue;
    mkdirSync(dirname(join(top, f)), { recursive: true });
    try { copyFileSync(join(ROOT, f), join(top, f)); } catch { /* listed but deleted in the work tree */ }
  }
  symlinkSync(join(ROOT, 'node_modules'), join(top, 'node_modules'));
  mkdirSync(join(top, 'native'), { recursive: true });
  symlinkSync(join(ROOT, 'native', 'build'), join(top, 'native', 'build'));
  writeFileSync(join(top, 'VERSION'), `${version}\n`);
  if (opts.brokenHealth) {
    // a release that starts and serves, but whose /health never says ok
    const api = join(top, 'daemon', 'http', 'routes', 'api.ts');
    const src = readFileSync(api, 'utf8');
    const line = 'const ok = Object.values(services).every(Boolean);';
    if (!src.includes(line)) throw new Error(`${api}: the /health line to break is gone; update the test helper`);
    writeFileSync(api, src.replace(line, 'const ok = false; // broken on purpose (update test)'));
  }
  return top;
}

/** `yachay-<version>-linux-<arch>.tar.gz` of a built release folder */
export function bundle(outDir: string, version: string, arch = process.arch): string {
  const file = join(outDir, `yachay-${version}-linux-${arch}.tar.gz`);
  const r = spawnSync('tar', ['-czf', file, '-C', outDir, `yachay-${version}`]);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  return file;
}

/** `<root>/releases/<version>` from a built folder, `<root>/current` pointing at it */
export function install(root: string, built: string, version: string): void {
  mkdirSync(join(root, 'releases'), { recursive: true });
  renameSync(built, join(root, 'releases', version));
  symlinkSync(join('releases', version), join(root, 'current'));
}

/**
 * What systemd does with Restart=always, in small: start `<root>/current/bin/yachay.mjs start …`,
 * and whenever it exits, start `current` again (whatever it points at by then).
 */
export class RestartLoop {
  readonly exits: Array<{ code: number | null; signal: NodeJS.Signals | null; at: number }> = [];
  starts = 0;
  private child: ChildProcess | undefined;
  private stopping = false;
  private out = '';

  constructor(private readonly root: string, private readonly args: string[], private readonly env: NodeJS.ProcessEnv) {}

  log(): string { return this.out; }

  start(): void {
    if (this.stopping) return;
    this.starts++;
    const child = spawn(process.execPath, [join(this.root, 'current', 'bin', 'yachay.mjs'), 'start', ...this.args], {
      cwd: this.root, env: { ...process.env, ...this.env }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (c: Buffer) => { this.out += c.toString(); });
    child.on('exit', (code, signal) => {
      this.exits.push({ code, signal, at: Date.now() });
      if (!this.stopping) setTimeout(() => this.start(), 300).unref();
    });
    this.child = child;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([gone, sleep(20_000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

/** the box's /health: status, ok and the version it names (undefined while nothing answers) */
export async function health(url: string): Promise<{ status: number; ok: boolean; version?: string } | undefined> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    const body = await res.json() as { ok?: boolean; version?: string };
    return { status: res.status, ok: body.ok === true, version: body.version };
  } catch { return undefined; }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms: number, log?: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${log ? `\n--- log tail ---\n${log().slice(-3000)}` : ''}`);
    await sleep(250);
  }
}
