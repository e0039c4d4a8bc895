import type { ChildProcess } from './run.js';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { spawnGroup } from './run.js';

/**
 * The hub's one process module: PostgreSQL and Mosquitto run as children in their own process
 * group, their output appended to a log file (the path a crash report names), never via a shell.
 * As root, PostgreSQL refuses to run: `asUser` runs it through runuser (NOTES "Hub parts").
 */
export interface ChildOptions {
  /** stdout and stderr are appended here */
  logFile: string;
  /** run as this system user (only when we are root) */
  asUser?: string | undefined;
}

export interface Exit { code: number | null; signal: NodeJS.Signals | null }

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function wrap(cmd: string, args: string[], asUser: string | undefined): [string, string[]] {
  return asUser && isRoot() ? ['runuser', ['-u', asUser, '--', cmd, ...args]] : [cmd, args];
}

export class Child {
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;
  private stopping = false;

  private constructor(readonly name: string, private readonly proc: ChildProcess, readonly logFile: string) {
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
      proc.on('error', () => { this.exit ??= { code: 127, signal: null }; resolve(this.exit); });
    });
  }

  static spawn(name: string, cmd: string, args: string[], opts: ChildOptions): Child {
    const fd = openSync(opts.logFile, 'a', 0o640);
    try {
      const [c, a] = wrap(cmd, args, opts.asUser);
      const proc = spawnGroup(c, a, { stdio: ['ignore', fd, fd] });
      return new Child(name, proc, opts.logFile);
    } finally {
      closeSync(fd);
    }
  }

  get pid(): number | undefined { return this.proc.pid; }
  get running(): boolean { return this.exit === undefined; }
  /** true when stop() was asked for: an exit before that is a crash */
  get stopRequested(): boolean { return this.stopping; }

  signal(sig: NodeJS.Signals, pid = this.proc.pid): void {
    if (pid === undefined || !this.running) return;
    try { process.kill(pid, sig); } catch { /* gone */ }
  }

  /** `sig` to `pid` (the real server when a wrapper sits between), then the whole group after `graceMs` */
  async stop(sig: NodeJS.Signals, opts: { pid?: number | undefined; graceMs?: number } = {}): Promise<Exit> {
    this.stopping = true;
    if (!this.running) return this.exit!;
    this.signal(sig, opts.pid ?? this.proc.pid);
    const timer = setTimeout(() => {
      try { process.kill(-this.proc.pid!, 'SIGKILL'); } catch { /* gone */ }
    }, opts.graceMs ?? 15_000);
    try { return await this.exited; } finally { clearTimeout(timer); }
  }
}

/** Runs a command to its end; rejects with the tail of its output when it fails. */
export async function runToEnd(cmd: string, args: string[], opts: ChildOptions): Promise<void> {
  const c = Child.spawn(cmd, cmd, args, opts);
  const { code, signal } = await c.exited;
  if (code !== 0) {
    let tail = '';
    try { tail = readFileSync(opts.logFile, 'utf8').trim().split('\n').slice(-4).join(' | '); } catch { /* no log */ }
    throw new Error(`${cmd} failed (${signal ?? `exit ${code}`}): ${tail || 'no output'} (log: ${opts.logFile})`);
  }
}
