import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { YachayError } from '../errors.js';
import type { ErrorCode } from '../errors.js';

// media/child.ts (the hub's servers) takes the type from here, not from node:child_process
export type { ChildProcess };

/**
 * The one module that starts child processes (test/unit/layering.test.ts keeps it so).
 * Every ffmpeg, ffprobe, tesseract and espeak-ng call goes through run(): argument arrays only
 * (never a shell string), the child in its own process group so an abort takes its helpers
 * with it, in the set a second Ctrl-C kills, stderr kept for the error message, and
 * `-progress` lines turned into a callback. The hub's long-lived servers use spawnGroup().
 */
// tar unpacks release bundles for the updater (issue 11 item 7)
export type Tool = 'ffmpeg' | 'ffprobe' | 'tesseract' | 'espeak-ng' | 'tar';

/** Which catalogue entries a tool's absence and failure map to (their hints name the package). */
const TOOL_ERRORS: Record<Tool, { missing: ErrorCode; failed: ErrorCode }> = {
  ffmpeg: { missing: 'YCH_ERR_FFMPEG_MISSING', failed: 'YCH_ERR_FFMPEG_FAILED' },
  ffprobe: { missing: 'YCH_ERR_FFMPEG_MISSING', failed: 'YCH_ERR_FFMPEG_FAILED' },
  tesseract: { missing: 'YCH_ERR_OCR_MISSING', failed: 'YCH_ERR_OCR_FAILED' },
  'espeak-ng': { missing: 'YCH_ERR_ESPEAK_MISSING', failed: 'YCH_ERR_ESPEAK_FAILED' },
  tar: { missing: 'YCH_ERR_TAR_MISSING', failed: 'YCH_ERR_UPDATE_BUNDLE' },
};

export interface RunOptions {
  signal?: AbortSignal | undefined;
  /** called with seconds of output written so far (from `-progress pipe:1` out_time) */
  onProgress?: ((outSeconds: number) => void) | undefined;
  /** feed stdout to the caller instead of parsing progress (raw pipes for analysis) */
  onStdout?: ((chunk: Buffer) => void) | undefined;
  /** a second raw output, ffmpeg's `pipe:3` (the analysis decode's frames for a model) */
  onPipe3?: ((chunk: Buffer) => void) | undefined;
  /** how long to wait after SIGINT before SIGKILL on abort */
  killGraceMs?: number;
  /** extra environment for the child (added to the box's own) */
  env?: Record<string, string> | undefined;
}

export interface RunResult { stdout: string; stderr: string }

/**
 * Cuts a rawvideo pipe into frames of `frameBytes` as chunks arrive; each frame is a copy
 * (the stream reuses a chunk's memory), numbered from 0.
 */
export function rawFrames(frameBytes: number, onFrame: (index: number, frame: Uint8Array) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  let index = 0;
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= frameBytes) {
      onFrame(index++, new Uint8Array(pending.subarray(0, frameBytes)));
      pending = pending.subarray(frameBytes);
    }
  };
}

const live = new Set<ChildProcess>();

/**
 * A box killed with -9 (outside systemd, which kills the whole cgroup) used to leave ffmpeg
 * encoding for half a minute more. util-linux's setpriv asks the kernel to kill the child when
 * its parent dies (PR_SET_PDEATHSIG) and then execs ffmpeg itself: same pid, no extra process.
 */
const PDEATHSIG = process.platform === 'linux' && existsSync('/usr/bin/setpriv');
/**
 * Run as root (a technician's shell, a test machine), SVT-AV1 gives each of its threads
 * real-time priority (SCHED_FIFO 99), and an AV1 encode then starves the box's own event loop
 * and every nice'd job on a 2-core box. Without CAP_SYS_NICE the library warns and keeps its
 * threads at normal priority; the box running as its own user never had the capability.
 */
const NO_REALTIME = PDEATHSIG && process.getuid?.() === 0 ? ['--bounding-set', '-sys_nice', '--inh-caps', '-sys_nice'] : [];

let paused = false;

/**
 * The thermal governor's brake: every running ffmpeg (and the ones started while paused) is
 * stopped with SIGSTOP and continued with SIGCONT. The web server is never slowed; an encode
 * just takes longer on a hot afternoon.
 */
export function pauseEncodes(): void {
  paused = true;
  for (const child of live) killGroup(child, 'SIGSTOP');
}

export function resumeEncodes(): void {
  paused = false;
  for (const child of live) killGroup(child, 'SIGCONT');
}

export function encodesPaused(): boolean {
  return paused;
}

/** Kill every ffmpeg still running (used on a second Ctrl-C and at exit). */
export function killAllChildren(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
}

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try { child.kill(sig); } catch { /* already gone */ }
  }
}

export function run(bin: Tool, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new YachayError('YCH_ERR_ABORTED', `${bin} not started: aborted`));
      return;
    }
    let child: ChildProcess;
    try {
      const [cmd, argv] = PDEATHSIG ? ['setpriv', ['--pdeathsig', 'KILL', ...NO_REALTIME, '--', bin, ...args]] : [bin, args];
      child = spawn(cmd, argv, {
        stdio: opts.onPipe3 ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'], detached: true,
        ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
      });
    } catch (err) {
      reject(missing(bin, err));
      return;
    }
    live.add(child);
    if (paused) killGroup(child, 'SIGSTOP');
    const out: Buffer[] = [];
    let err = '';
    let progressBuf = '';
    // a reader that throws (a model, a kernel fed a bad frame) ends this run with its error,
    // instead of an uncaught exception in a stream event taking the whole box down
    let readerFailure: unknown;
    const guarded = (fn: (chunk: Buffer) => void) => (chunk: Buffer): void => {
      if (readerFailure !== undefined) return;
      try {
        fn(chunk);
      } catch (e) {
        readerFailure = e;
        killGroup(child, 'SIGKILL');
      }
    };
    child.stdout!.on('data', guarded((chunk: Buffer) => {
      if (opts.onStdout) { opts.onStdout(chunk); return; }
      if (opts.onProgress) {
        progressBuf += chunk.toString('utf8');
        let nl: number;
        while ((nl = progressBuf.indexOf('\n')) >= 0) {
          const line = progressBuf.slice(0, nl);
          progressBuf = progressBuf.slice(nl + 1);
          const m = /^out_time_(?:us|ms)=(\d+)/.exec(line);
          if (m) opts.onProgress(Number(m[1]) / 1e6);
        }
        return;
      }
      out.push(chunk);
    }));
    if (opts.onPipe3) (child.stdio[3] as NodeJS.ReadableStream).on('data', guarded(opts.onPipe3));
    child.stderr!.on('data', (chunk: Buffer) => {
      // keep the tail only: ffmpeg can be chatty for hours
      err = (err + chunk.toString('utf8')).slice(-16384);
    });
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      aborted = true;
      killGroup(child, 'SIGINT');
      // a child stopped by the governor cannot act on SIGINT until it is continued
      if (paused) killGroup(child, 'SIGCONT');
      killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), opts.killGraceMs ?? 2000);
      killTimer.unref();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      live.delete(child);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(missing(bin, e));
    });
    child.on('close', (code, sig) => {
      live.delete(child);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (readerFailure !== undefined) {
        reject(readerFailure);
      } else if (aborted) {
        reject(new YachayError('YCH_ERR_ABORTED', `${bin} stopped: aborted`));
      } else if (code === 0) {
        resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: err });
      } else if (PDEATHSIG && code === 127 && /setpriv: failed to execute/.test(err)) {
        reject(missing(bin, Object.assign(new Error(err.trim()), { code: 'ENOENT' })));
      } else {
        reject(new ToolFailure(bin, args, code, sig, err));
      }
    });
  });
}

/** A tool that ran and failed: its exit and the tail of its stderr (callers read both). */
export class ToolFailure extends YachayError {
  constructor(readonly bin: Tool, readonly args: string[], readonly exit: number | null,
    readonly sig: NodeJS.Signals | null, readonly stderr: string) {
    const last = stderr.trim().split('\n').slice(-3).join(' | ');
    super(/No space left on device/i.test(stderr) ? 'YCH_ERR_DISK_FULL' : TOOL_ERRORS[bin].failed,
      `${bin} failed (${sig ?? `exit ${exit}`}): ${last || 'no message'}`);
  }
}

/** The name callers used while only ffmpeg ran here. */
export const FfmpegFailure = ToolFailure;
export type FfmpegFailure = ToolFailure;

function missing(bin: Tool, cause: unknown): YachayError {
  const e = cause as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') {
    return new YachayError(TOOL_ERRORS[bin].missing, `${bin} is not installed or not on PATH`, { cause });
  }
  return new YachayError(TOOL_ERRORS[bin].failed, `${bin} could not start: ${e?.message ?? String(cause)}`, { cause });
}

export interface GroupOptions {
  stdio: StdioOptions;
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * A long-lived server (the hub's PostgreSQL and Mosquitto) in its own process group. Not in the
 * governor's pause set nor killed by killAllChildren: the hub stops its servers in order itself.
 */
export function spawnGroup(cmd: string, args: string[], opts: GroupOptions): ChildProcess {
  return spawn(cmd, args, { stdio: opts.stdio, detached: true, ...(opts.env ? { env: opts.env } : {}) });
}

/** Exit status of a short check (`runuser -u postgres -- test -x DIR`); null when it could not run. */
export function exitStatus(cmd: string, args: string[]): number | null {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status;
}
