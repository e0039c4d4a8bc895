import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FfmpegFailure, run } from '../media/run.js';
import { YachayError } from '../errors.js';
import { roiForRendition } from '../media/roi.js';
import { shotTree } from '../media/expr.js';
import type { Plan, RenditionPlan } from './plan.js';

/**
 * One ffmpeg process decodes the source once and writes every rendition: each video branch
 * keeps, per shot, only the frames its plan asks for (variable frame rate), and x264's
 * rate-control zones give each shot its own quality. Output: one HLS fMP4 folder per
 * rendition; the master playlist is written by package.ts.
 */
export interface EncodeOptions {
  preset: string;
  threads: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((outSeconds: number) => void) | undefined;
  /** only these renditions (re-encode after a missed floor); audio too when true */
  only?: string[] | undefined;
  audio?: boolean;
}

const EPS = 1e-4;
const SLOT_EPS = 1e-6;
/**
 * x264 with B-frames (pyramid) delays decoding by two frames, and the fMP4 muxer, which writes no
 * edit list, starts the video that much later. At 1 fps that is 2 s of lip-sync error; so the
 * first three source frames are always kept (delay 2/baseFps) and the audio is offset to match.
 */
const LEAD_FRAMES = 3;
export const VIDEO_DELAY_FRAMES = 2;

/** A frame is kept when it enters a new 1/fps time slot of its shot: exact average rate on any source grid. */
function newSlot(t: number, prev: number, fps: number): boolean {
  return Math.floor(t * fps + SLOT_EPS) > Math.floor(prev * fps + SLOT_EPS);
}

/**
 * A stretch of the source re-encoded on its own (splice.ts): the frames in [from, to) seconds,
 * timestamps kept as in the whole encode (-copyts), and no lead frames: the window starts on a
 * frame the whole encode selected, so every later choice is the same as there.
 */
export interface EncodeWindow { from: number; to: number }

/** The same rule as selectExpr(), run here to know which output frame starts each shot. */
export function simulateSelect(plan: Plan, r: RenditionPlan, win?: EncodeWindow, times?: number[]): { total: number; firstFrame: number[] } {
  const F = plan.baseFps;
  const n = Math.floor(plan.duration * F + EPS);
  const firstFrame = plan.shots.map(() => -1);
  let prev = Number.NaN;
  let out = 0;
  let i = 0; // frames come in time order: the shot index only moves forward
  const k0 = win ? Math.max(0, Math.ceil(win.from * F - 1e-3)) : 0;
  const kEnd = win ? Math.min(n, Math.ceil(win.to * F - 1e-3)) : n;
  for (let k = k0; k < kEnd; k++) {
    const t = k / F;
    while (i + 1 < plan.shots.length && t >= plan.shots[i + 1]!.start - EPS) i++;
    const s = plan.shots[i]!.start;
    const e = plan.shots[i + 1]?.start ?? plan.duration;
    const atStart = t >= s - EPS && t < s + 1 / F - 1e-3;
    const atEnd = t >= e - 1 / F - EPS && t < e - EPS;
    if (Number.isNaN(prev) || (!win && k < LEAD_FRAMES) || atStart || atEnd || newSlot(t, prev, r.shots[i]!.fps)) {
      if (firstFrame[i] === -1) firstFrame[i] = out;
      times?.push(t);
      prev = t;
      out++;
    }
  }
  return { total: out, firstFrame };
}

/** ffmpeg `select` expression, the same rule as simulateSelect(): first frame of every shot, then one per time slot. */
export function selectExpr(plan: Plan, r: RenditionPlan, win?: EncodeWindow): string {
  const F = plan.baseFps;
  const leaf = (i: number): string => {
    const s = plan.shots[i]!;
    const e = plan.shots[i + 1]?.start ?? plan.duration;
    const fps = r.shots[i]!.fps;
    const atStart = `between(t,${(s.start - EPS).toFixed(4)},${(s.start + 1 / F - 1e-3).toFixed(4)})`;
    // the last frame before each cut (and before the end): ffmpeg gives every packet 1/30 s, so
    // without it a fragment of 1 fps slides would end up to a second early, a hole in the timeline
    const atEnd = `gte(t,${(e - 1 / F - EPS).toFixed(4)})*lt(t,${(e - EPS).toFixed(4)})`;
    const slot = `gt(floor(t*${fps}+${SLOT_EPS}),floor(prev_selected_t*${fps}+${SLOT_EPS}))`;
    return `${atStart}+${atEnd}+${slot}`;
  };
  const tree = shotTree(plan.shots.map((s) => s.start), leaf);
  if (!win) return `isnan(prev_selected_t)+lt(n,${LEAD_FRAMES})+${tree}`;
  // frames a seek lets through before the window, or past its end, are never selected
  return `gte(t,${(win.from - EPS).toFixed(4)})*lt(t,${(win.to - EPS).toFixed(4)})*(isnan(prev_selected_t)+${tree})`;
}

/**
 * Pauses coded as digital silence: `volume=0` enabled inside any gate interval, as a balanced
 * tree over the sorted intervals (a flat sum of 1,000 `between` terms is parsed and evaluated
 * for every audio frame; the tree is log2(n) comparisons).
 */
export function gateExpr(gate: Array<{ start: number; end: number }>): string {
  // sorted and merged: within [start_i, start_i+1) only interval i can hold t
  const g: Array<{ start: number; end: number }> = [];
  for (const x of [...gate].sort((a, b) => a.start - b.start)) {
    const last = g[g.length - 1];
    if (last && x.start <= last.end) last.end = Math.max(last.end, x.end);
    else g.push({ ...x });
  }
  const leaf = (i: number): string => `between(t,${g[i]!.start.toFixed(3)},${g[i]!.end.toFixed(3)})`;
  // shotTree splits EPS before each start; shifted by EPS the split falls on the start itself
  return shotTree(g.map((x) => x.start + EPS), leaf);
}

/** x264 zones: the quantiser of every shot, in output frame numbers. */
export function zones(plan: Plan, r: RenditionPlan, win?: EncodeWindow): string {
  const { total, firstFrame } = simulateSelect(plan, r, win);
  const parts: string[] = [];
  let next = total; // first output frame of the next shot that has one, walking backwards
  for (let i = plan.shots.length - 1; i >= 0; i--) {
    const a = firstFrame[i]!;
    if (a < 0) continue;
    if (next - 1 >= a) parts.push(`${a},${next - 1},q=${r.shots[i]!.qp}`);
    next = a;
  }
  return parts.reverse().join('/');
}

function hlsOut(dir: string, segmentSeconds: number): string[] {
  return [
    '-f', 'hls', '-hls_time', String(segmentSeconds), '-hls_playlist_type', 'vod',
    '-hls_segment_type', 'fmp4', '-hls_fmp4_init_filename', 'init.mp4',
    '-hls_segment_filename', join(dir, 'seg_%05d.m4s'), '-hls_flags', 'independent_segments',
    join(dir, 'index.m3u8'),
  ];
}

/** Frame selection, size and (lowest rendition) region of interest of one rendition's branch. */
function videoChain(plan: Plan, r: RenditionPlan, win?: EncodeWindow): string {
  // the lowest rendition only: measured there (QP 37), and it is the one every student pays
  const roi = r.effort === 'max' ? roiForRendition(plan, r) : undefined;
  return `select='${selectExpr(plan, r, win)}',scale=${r.width}:${r.height}:flags=lanczos,format=yuv420p${roi?.filter ?? ''}`;
}

/**
 * The quantiser x264 writes into the picture parameter set (pic_init_qp, with constant QP):
 * every frame's own QP comes from the zones, so this only has to be the same for every encode
 * of a rendition whose segments are spliced together (splice.ts keeps the first encode's).
 */
export function headerQp(r: RenditionPlan): number {
  return Math.min(...r.shots.map((s) => s.qp));
}

/** x264 settings of one rendition; `win` and `qp` for a stretch re-encoded to splice into it. */
export function videoCodecArgs(plan: Plan, r: RenditionPlan, preset: string, win?: EncodeWindow, qp = headerQp(r)): string[] {
  const z = zones(plan, r, win);
  // B-frames much coarser than P (pbratio 4): in a VFR lecture they carry little the eye keeps;
  // psy-rd off: it spends bits on grain that OCR and SSIM both read as noise
  // me=umh/subme 9/trellis/6 refs: 25% fewer bytes on motion shots for little time, since
  // few frames are coded at all
  const x264 = ['scenecut=0', 'pbratio=4.0', 'psy=0'];
  if (r.effort === 'max') x264.push('me=umh', 'subme=9', 'trellis=2', 'ref=6');
  if (z) x264.push(`zones=${z}`);
  const keys = win ? plan.keyframes.filter((k) => k > win.from + EPS && k < win.to - EPS) : plan.keyframes;
  return ['-an', '-fps_mode', 'vfr',
    '-c:v', 'libx264', '-preset', r.effort === 'max' ? preset : 'veryfast', '-qp', String(qp), '-profile:v', 'high', '-level:v', '4.0',
    '-g', '100000', '-keyint_min', '1', '-bf', '3', '-x264-params', x264.join(':'),
    ...(keys.length ? ['-force_key_frames', keys.join(',')] : []), '-pix_fmt', 'yuv420p'];
}

/**
 * One stretch of one rendition as a single HLS segment in `outDir` (splice.ts moves it into
 * the rendition): the source is read from just before `win.from` with its own timestamps.
 */
export function windowArgs(plan: Plan, r: RenditionPlan, input: string, outDir: string, win: EncodeWindow, opts: { preset: string; threads: number; qp: number }): string[] {
  const F = plan.baseFps;
  return ['-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-y', '-threads', String(opts.threads),
    '-ss', Math.max(0, win.from - 0.5 / F).toFixed(6), '-t', (win.to - win.from + 1).toFixed(6), '-copyts', '-start_at_zero', '-i', input,
    '-filter_complex', `[0:v:0]fps=${F},${videoChain(plan, r, win)}[o]`,
    '-map', '[o]', ...videoCodecArgs(plan, r, opts.preset, win, opts.qp),
    // one segment however long the stretch: the segment boundaries are the whole encode's
    ...hlsOut(outDir, 1e6)];
}

export function encodeArgs(plan: Plan, input: string, outDir: string, opts: EncodeOptions): string[] {
  const wanted = plan.renditions.filter((r) => !opts.only || opts.only.includes(r.id));
  const args = ['-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-y',
    '-threads', String(opts.threads), '-i', input];
  const graph: string[] = [];
  if (wanted.length > 0) {
    const labels = wanted.map((r) => `[s${r.id}]`).join('');
    graph.push(`[0:v:0]fps=${plan.baseFps}${wanted.length > 1 ? `,split=${wanted.length}${labels}` : labels}`);
    for (const r of wanted) {
      graph.push(`[s${r.id}]${videoChain(plan, r)}[o${r.id}]`);
    }
  }
  const withAudio = plan.audio !== undefined && opts.audio !== false;
  // pauses become exact zeros, which Opus and AAC code in a few bytes a frame; one gate feeds both
  const gated = withAudio && (plan.audio!.gate?.length ?? 0) > 0;
  if (gated) graph.push(`[0:a:0]volume=0:enable='${gateExpr(plan.audio!.gate!)}',asplit=2[aopus][aaac]`);
  if (graph.length > 0) args.push('-filter_complex', graph.join(';'));
  for (const r of wanted) args.push('-map', `[o${r.id}]`, ...videoCodecArgs(plan, r, opts.preset), ...hlsOut(join(outDir, r.id), plan.segmentSeconds));
  if (withAudio) {
    const a = plan.audio!;
    const offset = plan.renditions.length > 0 ? ['-output_ts_offset', (VIDEO_DELAY_FRAMES / plan.baseFps).toFixed(6)] : [];
    args.push('-map', gated ? '[aopus]' : '0:a:0', '-vn', '-ac', '1', ...offset, '-c:a', 'libopus', '-b:a', String(a.opus.bitrate),
      '-application', a.opus.application, '-frame_duration', String(a.opus.frameMs), '-ar', String(a.opus.sampleRate),
      ...hlsOut(join(outDir, 'a-opus'), plan.segmentSeconds));
    args.push('-map', gated ? '[aaac]' : '0:a:0', '-vn', '-ac', '1', ...offset, '-c:a', 'aac', '-b:a', String(a.aac.bitrate), '-ar', String(a.aac.sampleRate),
      ...hlsOut(join(outDir, 'a-aac'), plan.segmentSeconds));
  }
  return args;
}

export async function encode(plan: Plan, input: string, outDir: string, opts: EncodeOptions): Promise<void> {
  const ids = plan.renditions.filter((r) => !opts.only || opts.only.includes(r.id)).map((r) => r.id);
  if (plan.audio && opts.audio !== false) ids.push('a-opus', 'a-aac');
  // a re-encode starts from an empty folder: fewer segments must not leave stale ones behind
  for (const id of ids) {
    await rm(join(outDir, id), { recursive: true, force: true });
    await mkdir(join(outDir, id), { recursive: true });
  }
  await runGraph(encodeArgs(plan, input, outDir, opts), join(outDir, '.filter_complex.txt'), opts);
}

/**
 * Runs ffmpeg with its filter graph in a file (`script`): with hundreds of shots it outgrows
 * what Linux lets one command-line argument hold (128 KiB).
 */
export async function runGraph(args: string[], script: string, opts: { signal?: AbortSignal | undefined; onProgress?: ((s: number) => void) | undefined }): Promise<void> {
  const at = args.indexOf('-filter_complex');
  if (at >= 0) {
    await writeFile(script, args[at + 1]!);
    args = [...args];
    args.splice(at, 2, '-filter_complex_script', script);
  }
  try {
    await run('ffmpeg', args, { signal: opts.signal, onProgress: opts.onProgress });
  } catch (err) {
    throw refusedPlan(err) ?? err;
  } finally {
    await rm(script, { force: true });
  }
}

/**
 * ffmpeg refusing the filter graph or an encoder option is a fault of the plan, not of the
 * moment: the same plan fails the same way on every retry, so it is reported as permanent.
 */
export function refusedPlan(err: unknown): YachayError | undefined {
  if (!(err instanceof FfmpegFailure) || err.code !== 'YCH_ERR_FFMPEG_FAILED') return undefined;
  if (!/Error (?:re)?initializing (?:complex )?filters?|Error parsing (?:a )?filter|Failed to (?:set value|configure)|Error setting option|Invalid argument/i.test(err.stderr)) return undefined;
  return new YachayError('YCH_ERR_ENCODE_REFUSED', err.message, { cause: err });
}
