import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './ffmpeg.js';
import { roiForRendition } from '../models/roi.js';
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

function shotAt(plan: Plan, t: number): number {
  for (let i = plan.shots.length - 1; i >= 0; i--) if (t >= plan.shots[i]!.start - EPS) return i;
  return 0;
}

/** The same rule as selectExpr(), run here to know which output frame starts each shot. */
export function simulateSelect(plan: Plan, r: RenditionPlan): { total: number; firstFrame: number[] } {
  const F = plan.baseFps;
  const n = Math.floor(plan.duration * F + EPS);
  const firstFrame = plan.shots.map(() => -1);
  let prev = Number.NaN;
  let out = 0;
  for (let k = 0; k < n; k++) {
    const t = k / F;
    const i = shotAt(plan, t);
    const s = plan.shots[i]!.start;
    const e = plan.shots[i + 1]?.start ?? plan.duration;
    const atStart = t >= s - EPS && t < s + 1 / F - 1e-3;
    const atEnd = t >= e - 1 / F - EPS && t < e - EPS;
    if (Number.isNaN(prev) || k < LEAD_FRAMES || atStart || atEnd || newSlot(t, prev, r.shots[i]!.fps)) {
      if (firstFrame[i] === -1) firstFrame[i] = out;
      prev = t;
      out++;
    }
  }
  return { total: out, firstFrame };
}

/** ffmpeg `select` expression, the same rule as simulateSelect(): first frame of every shot, then one per time slot. */
export function selectExpr(plan: Plan, r: RenditionPlan): string {
  const F = plan.baseFps;
  const starts = plan.shots.map((s) => `between(t,${(s.start - EPS).toFixed(4)},${(s.start + 1 / F - 1e-3).toFixed(4)})`);
  // the last frame before each cut (and before the end): ffmpeg gives every packet 1/30 s, so
  // without it a fragment of 1 fps slides would end up to a second early, a hole in the timeline
  const ends = plan.shots.map((s, i) => {
    const e = plan.shots[i + 1]?.start ?? plan.duration;
    return `gte(t,${(e - 1 / F - EPS).toFixed(4)})*lt(t,${(e - EPS).toFixed(4)})`;
  });
  let fps = String(r.shots[r.shots.length - 1]!.fps);
  for (let i = plan.shots.length - 2; i >= 0; i--) {
    fps = `if(lt(t,${(plan.shots[i + 1]!.start - EPS).toFixed(4)}),${r.shots[i]!.fps},${fps})`;
  }
  return `isnan(prev_selected_t)+lt(n,${LEAD_FRAMES})+${starts.join('+')}+${ends.join('+')}+gt(floor(t*(${fps})+${SLOT_EPS}),floor(prev_selected_t*(${fps})+${SLOT_EPS}))`;
}

/** x264 zones: the quantiser of every shot, in output frame numbers. */
export function zones(plan: Plan, r: RenditionPlan): string {
  const { total, firstFrame } = simulateSelect(plan, r);
  const parts: string[] = [];
  plan.shots.forEach((_, i) => {
    const a = firstFrame[i]!;
    if (a < 0) return;
    const next = firstFrame.slice(i + 1).find((f) => f >= 0) ?? total;
    if (next - 1 >= a) parts.push(`${a},${next - 1},q=${r.shots[i]!.qp}`);
  });
  return parts.join('/');
}

function hlsOut(dir: string, segmentSeconds: number): string[] {
  return [
    '-f', 'hls', '-hls_time', String(segmentSeconds), '-hls_playlist_type', 'vod',
    '-hls_segment_type', 'fmp4', '-hls_fmp4_init_filename', 'init.mp4',
    '-hls_segment_filename', join(dir, 'seg_%05d.m4s'), '-hls_flags', 'independent_segments',
    join(dir, 'index.m3u8'),
  ];
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
      // the lowest rendition only: measured there (QP 37), and it is the one every student pays
      const roi = r.effort === 'max' ? roiForRendition(plan, r) : undefined;
      graph.push(`[s${r.id}]select='${selectExpr(plan, r)}',scale=${r.width}:${r.height}:flags=lanczos,format=yuv420p${roi?.filter ?? ''}[o${r.id}]`);
    }
    args.push('-filter_complex', graph.join(';'));
  }
  for (const r of wanted) {
    const z = zones(plan, r);
    // B-frames much coarser than P (pbratio 4): in a VFR lecture they carry little the eye keeps;
    // psy-rd off: it spends bits on grain that OCR and SSIM both read as noise
    // me=umh/subme 9/trellis/6 refs: 25% fewer bytes on motion shots for little time, since
    // few frames are coded at all
    const x264 = ['scenecut=0', 'pbratio=4.0', 'psy=0'];
    if (r.effort === 'max') x264.push('me=umh', 'subme=9', 'trellis=2', 'ref=6');
    if (z) x264.push(`zones=${z}`);
    args.push('-map', `[o${r.id}]`, '-an', '-fps_mode', 'vfr',
      '-c:v', 'libx264', '-preset', r.effort === 'max' ? opts.preset : 'veryfast', '-qp', String(Math.min(...r.shots.map((s) => s.qp))), '-profile:v', 'high', '-level:v', '4.0',
      '-g', '100000', '-keyint_min', '1', '-bf', '3', '-x264-params', x264.join(':'),
      '-force_key_frames', plan.keyframes.join(','), '-pix_fmt', 'yuv420p',
      ...hlsOut(join(outDir, r.id), plan.segmentSeconds));
  }
  if (plan.audio && opts.audio !== false) {
    const a = plan.audio;
    const offset = plan.renditions.length > 0 ? ['-output_ts_offset', (VIDEO_DELAY_FRAMES / plan.baseFps).toFixed(6)] : [];
    // pauses become exact zeros, which Opus and AAC code in a few bytes a frame
    const gate = a.gate?.length ? ['-af', `volume=0:enable='${a.gate.map((g) => `between(t,${g.start.toFixed(3)},${g.end.toFixed(3)})`).join('+')}'`] : [];
    args.push('-map', '0:a:0', '-vn', '-ac', '1', ...offset, ...gate, '-c:a', 'libopus', '-b:a', String(a.opus.bitrate),
      '-application', a.opus.application, '-frame_duration', String(a.opus.frameMs), '-ar', String(a.opus.sampleRate),
      ...hlsOut(join(outDir, 'a-opus'), plan.segmentSeconds));
    args.push('-map', '0:a:0', '-vn', '-ac', '1', ...offset, ...gate, '-c:a', 'aac', '-b:a', String(a.aac.bitrate), '-ar', String(a.aac.sampleRate),
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
  await run('ffmpeg', encodeArgs(plan, input, outDir, opts), { signal: opts.signal, onProgress: opts.onProgress });
}
