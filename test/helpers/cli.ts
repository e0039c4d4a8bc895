import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/yachay.mjs', import.meta.url));

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs the real CLI in a child process, as a user or a script would. */
export function yachay(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; prefix?: string[]; onSpawn?: (pid: number) => void } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const cmd = opts.prefix ? opts.prefix[0]! : process.execPath;
    const argv = opts.prefix ? [...opts.prefix.slice(1), process.execPath, BIN, ...args] : [BIN, ...args];
    const child = spawn(cmd, argv, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid && opts.onSpawn) opts.onSpawn(child.pid);
    let stdout = ''; let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
