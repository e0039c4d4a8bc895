/**
 * `npm run bench:memory` (MINUTES=30 by default): what a long lesson costs the box in memory
 * and in event-loop time.
 *  1. A generated 1-minute lecture (`yachay sample`) is looped to MINUTES minutes (stream
 *     copy) and `yachay optimize` runs on it as a child process; every 0.5 s the RSS of that
 *     node process and the total RSS of its whole process tree (ffmpeg, tesseract…) are read
 *     from /proc. Prints the peaks (plus the kernel's own high-water mark of the node
 *     process), the wall time and × real time. Targets for 60 minutes: node ≤ 600 MB, tree
 *     ≤ 1.5 GB.
 *  2. In this process, verify's speech check alone on the same long input and the Opus track
 *     of the package just made, the way it was (both tracks decoded whole, alignOffset and
 *     stoiOverIntervals on the main thread) and the way it is (tracks to 16-bit files, STOI in
 *     a worker, window by window), with the main thread's event-loop delay
 *     (perf_hooks.monitorEventLoopDelay) and this process' RSS peak while each runs. Target:
 *     p99 ≤ 100 ms.
 * YACHAY_BIN points step 1 at another checkout's bin/yachay.mjs (the version before, say).
 * Prints figures only; nothing is asserted (they depend on the machine and its load).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadNative } from '../../daemon/analysis/native.js';
import { analyseAudio } from '../../daemon/optimize/analyse.js';
import { probe } from '../../daemon/optimize/probe.js';
import { speechIntervals } from '../../daemon/optimize/shots.js';
import { decodePcm, decodePcmToFile } from '../../daemon/quality/audio.js';
import { STOI_FS, alignOffset, stoiOverIntervals } from '../../daemon/quality/stoi.js';
import { stoiInWorker } from '../../daemon/quality/stoi-worker.js';

const MINUTES = Number(process.env.MINUTES ?? 30);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// YACHAY_BIN=/other/checkout/bin/yachay.mjs measures another version's optimize on the same input
const BIN = process.env.YACHAY_BIN ?? join(ROOT, 'bin', 'yachay.mjs');
const PAGE = 4096;
const MB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'yachay-bench-memory-'));

/** pages resident, from /proc/<pid>/statm; 0 once the process is gone */
function rss(pid: number): number {
  try { return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE; } catch { return 0; }
}

function hwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

/** pid and every descendant, from the parent field of /proc/<pid>/stat */
function tree(root: number): number[] {
  const parent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const kids = parent.get(ppid) ?? [];
      kids.push(Number(name));
      parent.set(ppid, kids);
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(parent.get(p) ?? []));
  }
  return out;
}

function mb(bytes: number): string { return `${(bytes / MB).toFixed(0)} MB`; }

async function optimizeRun(input: string, duration: number): Promise<string> {
  const out = join(dir, 'pkg');
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, 'optimize', input, '--out', out, '--quiet', '--data-dir', join(dir, 'data')],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const pid = child.pid!;
  let peakNode = 0; let peakTree = 0; let peakHwm = 0;
  const sample = (): void => {
    peakNode = Math.max(peakNode, rss(pid));
    peakHwm = Math.max(peakHwm, hwm(pid));
    peakTree = Math.max(peakTree, tree(pid).reduce((s, p) => s + rss(p), 0));
  };
  const timer = setInterval(sample, 500);
  const code = await new Promise<number | null>((res) => child.on('exit', res));
  clearInterval(timer);
  const wall = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`yachay optimize exited with ${code}`);
  console.log('| lesson | node RSS peak (sampled) | node VmHWM | tree RSS peak (sampled) | wall | × real time |');
  console.log('|---|---|---|---|---|---|');
  console.log(`| ${MINUTES} min | ${mb(peakNode)} | ${mb(peakHwm)} | ${mb(peakTree)} | ${wall.toFixed(1)} s | ${(duration / wall).toFixed(2)}× |`);
  return out;
}

/** runs `fn` with the event-loop delay histogram and a 50 ms RSS sampler of this process */
async function watched(what: string, fn: () => Promise<number>): Promise<void> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 50);
  h.enable();
  const t0 = performance.now();
  const value = await fn();
  const secs = (performance.now() - t0) / 1000;
  // a stall is recorded when the histogram's timer next fires: let it fire once more
  await new Promise((res) => setTimeout(res, 50));
  h.disable();
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  console.log(`| ${what} | ${value.toFixed(4)} | ${secs.toFixed(1)} s | ${(h.percentile(99) / 1e6).toFixed(0)} ms | ${(h.max / 1e6).toFixed(0)} ms | +${mb(peak - base)} |`);
}

try {
  const sample = join(dir, 'sample.mp4');
  execFileSync(process.execPath, [BIN, 'sample', '--out', sample, '--seconds', '60'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const long = join(dir, 'long.mp4');
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-stream_loop', String(MINUTES - 1), '-i', sample, '-c', 'copy', long]);
  const info = await probe(long);
  console.log(`input: ${(info.duration / 60).toFixed(1)} min, ${mb(info.sizeBytes)}\n`);

  const pkg = await optimizeRun(long, info.duration);

  // verify gets the speech the analysis found (speechIntervals), as the optimizer passes it
  const audio = await analyseAudio(info, loadNative());
  await audio.pcmFile?.dispose();
  const speech = speechIntervals(audio);
  const opus = join(pkg, 'a-opus', 'index.m3u8');
  console.log(`\nverify's speech check, ${speech.reduce((s, iv) => s + iv.end - iv.start, 0).toFixed(0)} s of speech, in this process:\n`);
  console.log('| STOI | value | time | event-loop delay p99 | max | RSS growth |');
  console.log('|---|---|---|---|---|---|');
  // the new way first: RSS that the old way grew is not handed back, and would hide its figure
  await watched('now: 16-bit files, worker, windows', async () => {
    const w = mkdtempSync(join(dir, 'stoi-'));
    const [src, out] = await Promise.all([
      decodePcmToFile(long, join(w, 'src.pcm'), { sampleRate: STOI_FS }),
      decodePcmToFile(opus, join(w, 'out.pcm'), { sampleRate: STOI_FS }),
    ]);
    return (await stoiInWorker({ clean: src, degraded: out, intervals: speech, maxLagSec: 0.5 })).value;
  });
  await watched('before: whole tracks, main thread', async () => {
    const [src, out] = await Promise.all([decodePcm(long, { sampleRate: STOI_FS }), decodePcm(opus, { sampleRate: STOI_FS })]);
    const lag = alignOffset(src, out, STOI_FS, 0.5);
    return stoiOverIntervals(src, out, STOI_FS, speech, lag);
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
